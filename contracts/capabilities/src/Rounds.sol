// SPDX-License-Identifier: Apache-2.0
// Ground truth for time locks one store away from their privileged setter (analyzer cap-4),
// the pattern of a CRPWarner rug-pull lottery: a public function stores a time computed
// from a clock and a duration the owner sets (roundEnd = block.number + roundLength), and
// the withdraw waits for that time, by refusing before it (a vault) or by crediting the
// winner's ledger entry only after it (a lottery). The owner can push the time out of
// reach. Each positive has a control whose duration is fixed in the code.
// expect RoundLockVault: trading_cooldown
// expect FixedRoundLockVault: none
// expect RoundLottery: trading_cooldown
// expect FixedRoundLottery: none
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

// Every deposit locks the vault until now + a lock period that the owner sets.
contract RoundLockVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public lockPeriod = 30 days;
    uint256 public unlockAt;

    function setLockPeriod(uint256 period) public onlyOwner {
        lockPeriod = period;
    }

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
        unlockAt = block.timestamp + lockPeriod;
    }

    function withdraw() public {
        require(block.timestamp >= unlockAt, "locked");
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the same lock with a period fixed in the code.
contract FixedRoundLockVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public constant LOCK_PERIOD = 30 days;
    uint256 public unlockAt;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
        unlockAt = block.timestamp + LOCK_PERIOD;
    }

    function withdraw() public {
        require(block.timestamp >= unlockAt, "locked");
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// The last bidder wins the pot once no one has bid for a round length (in blocks) that
// the owner sets; withdraw credits the winner first, then pays the caller's entry.
contract RoundLottery is Owned {
    mapping(address => uint256) public pending;
    uint256 public constant PRICE = 1 ether;
    uint256 public roundLength = 100;
    uint256 public roundEnd;
    uint256 public pot;
    address public leader;

    function setRoundLength(uint256 blocks) public onlyOwner {
        roundLength = blocks;
    }

    FALLBACK {
        require(msg.value == PRICE, "price");
        settle();
        pot = pot + msg.value;
        leader = msg.sender;
        roundEnd = block.number + roundLength;
    }

    function settle() internal {
        if (pot > 0 && block.number > roundEnd) {
            pending[leader] = pending[leader] + pot;
            pot = 0;
        }
    }

    function withdraw() public {
        settle();
        uint256 amount = pending[msg.sender];
        pending[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the same lottery with a round length fixed in the code.
contract FixedRoundLottery is Owned {
    mapping(address => uint256) public pending;
    uint256 public constant PRICE = 1 ether;
    uint256 public constant ROUND_LENGTH = 100;
    uint256 public roundEnd;
    uint256 public pot;
    address public leader;

    FALLBACK {
        require(msg.value == PRICE, "price");
        settle();
        pot = pot + msg.value;
        leader = msg.sender;
        roundEnd = block.number + ROUND_LENGTH;
    }

    function settle() internal {
        if (pot > 0 && block.number > roundEnd) {
            pending[leader] = pending[leader] + pot;
            pot = 0;
        }
    }

    function withdraw() public {
        settle();
        uint256 amount = pending[msg.sender];
        pending[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}
