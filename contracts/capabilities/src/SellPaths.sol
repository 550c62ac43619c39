// SPDX-License-Identifier: Apache-2.0
// Ground truth for the sell paths of contracts with no transfer function (sales, vaults,
// deposit ledgers; edge/scoring/capabilities.py, analyzer cap-3), patterns seen in the
// CRPWarner rug-pull rows: a function that pays ether out to the caller or debits the
// caller's ledger entry is how a holder sells; a switch, stage, limit or time lock on it
// that a privileged caller sets is sell-limiting; a privileged credit to an entry of that
// ledger is a mint. In a token, a function that pays ether for the caller's own tokens (a
// buy-back) is a sell path next to transfer. Each positive has a control whose guard
// nobody privileged can move.
// expect RefundSwitchSale: transfer_pausable
// expect OpenRefundSale: none
// expect StageRefundSale: transfer_pausable
// expect WithdrawCapVault: anti_whale_modifiable
// expect FixedCapVault: none
// expect TimeLockVault: trading_cooldown
// expect FixedLockVault: none
// expect CreditLedger: is_mintable
// expect PaidCreditLedger: none
// expect FallbackSaleToken: slippage_modifiable
// expect FixedFallbackSaleToken: none
// expect SwitchBuybackToken: transfer_pausable
// expect OpenBuybackToken: none
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

// Refunds of a sale only while the owner keeps them open.
contract RefundSwitchSale is Owned {
    mapping(address => uint256) public deposits;
    bool public refundsOpen;

    function buy() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function setRefundsOpen(bool open) public onlyOwner {
        refundsOpen = open;
    }

    function refund() public {
        require(refundsOpen, "closed");
        uint256 amount = deposits[msg.sender];
        require(amount > 0, "nothing");
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the switch is thrown by anyone once the sale time is over, not by the owner.
contract OpenRefundSale is Owned {
    mapping(address => uint256) public deposits;
    bool public closed;
    uint256 public endTime = 1900000000;

    function buy() public payable {
        require(!closed, "closed");
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function close() public {
        require(block.timestamp > endTime, "running");
        closed = true;
    }

    function refund() public {
        require(closed, "running");
        uint256 amount = deposits[msg.sender];
        require(amount > 0, "nothing");
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Refunds only in the stage the owner moves the sale to.
contract StageRefundSale is Owned {
    enum Stage { Active, Closed, Refunding }
    Stage public stage;
    mapping(address => uint256) public deposits;

    function buy() public payable {
        require(stage == Stage.Active, "not active");
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function enableRefunds() public onlyOwner {
        stage = Stage.Refunding;
    }

    function refund() public {
        require(stage == Stage.Refunding, "no refunds");
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// A vault whose owner can lower the most a depositor may take out at once (to zero).
contract WithdrawCapVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public maxWithdraw = 10 ether;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function setMaxWithdraw(uint256 value) public onlyOwner {
        maxWithdraw = value;
    }

    function withdraw(uint256 amount) public {
        require(amount <= maxWithdraw, "too much");
        require(deposits[msg.sender] >= amount, "balance");
        deposits[msg.sender] = deposits[msg.sender] - amount;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the same cap, fixed in the code.
contract FixedCapVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public constant MAX_WITHDRAW = 10 ether;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function withdraw(uint256 amount) public {
        require(amount <= MAX_WITHDRAW, "too much");
        require(deposits[msg.sender] >= amount, "balance");
        deposits[msg.sender] = deposits[msg.sender] - amount;
        PAYABLE_SENDER.transfer(amount);
    }
}

// A vault locked until a time the owner can move (forever).
contract TimeLockVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public unlockTime = 1900000000;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function setUnlockTime(uint256 time) public onlyOwner {
        unlockTime = time;
    }

    function withdraw() public {
        require(block.timestamp >= unlockTime, "locked");
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the lock time is fixed in the code.
contract FixedLockVault is Owned {
    mapping(address => uint256) public deposits;
    uint256 public constant UNLOCK_TIME = 1900000000;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function withdraw() public {
        require(block.timestamp >= UNLOCK_TIME, "locked");
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// The owner credits any address in the ledger that withdraw pays out: ether from nothing
// (taken from the other depositors).
contract CreditLedger is Owned {
    mapping(address => uint256) public deposits;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function credit(address who, uint256 amount) public onlyOwner {
        deposits[who] = deposits[who] + amount;
    }

    function withdraw() public {
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// Control: the owner deposits for someone else, paying the ether in.
contract PaidCreditLedger is Owned {
    mapping(address => uint256) public deposits;

    function deposit() public payable {
        deposits[msg.sender] = deposits[msg.sender] + msg.value;
    }

    function depositFor(address who) public payable onlyOwner {
        deposits[who] = deposits[who] + msg.value;
    }

    function withdraw() public {
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        PAYABLE_SENDER.transfer(amount);
    }
}

// A token sold from the owner's balance by the fallback, at a price the owner sets.
contract FallbackSaleToken is TokenBase, Owned {
    uint256 public tokensPerWei = 100;

    function setPrice(uint256 value) public onlyOwner {
        tokensPerWei = value;
    }

    FALLBACK {
        _move(owner, msg.sender, msg.value * tokensPerWei);
    }
}

// Control: the same sale at a price fixed in the code.
contract FixedFallbackSaleToken is TokenBase, Owned {
    uint256 public constant TOKENS_PER_WEI = 100;

    FALLBACK {
        _move(owner, msg.sender, msg.value * TOKENS_PER_WEI);
    }
}

// A token that buys its tokens back for ether only while the owner keeps the buy-back on.
contract SwitchBuybackToken is TokenBase, Owned {
    uint256 public constant WEI_PER_TOKEN = 1000;
    bool public buybackOn = true;

    function setBuyback(bool on) public onlyOwner {
        buybackOn = on;
    }

    function sell(uint256 amount) public {
        require(buybackOn, "buy-back off");
        require(balanceOf[msg.sender] >= amount, "balance");
        balanceOf[msg.sender] = balanceOf[msg.sender] - amount;
        totalSupply = totalSupply - amount;
        PAYABLE_SENDER.transfer(amount / WEI_PER_TOKEN);
    }
}

// Control: the same buy-back, always on.
contract OpenBuybackToken is TokenBase, Owned {
    uint256 public constant WEI_PER_TOKEN = 1000;

    function sell(uint256 amount) public {
        require(balanceOf[msg.sender] >= amount, "balance");
        balanceOf[msg.sender] = balanceOf[msg.sender] - amount;
        totalSupply = totalSupply - amount;
        PAYABLE_SENDER.transfer(amount / WEI_PER_TOKEN);
    }
}
