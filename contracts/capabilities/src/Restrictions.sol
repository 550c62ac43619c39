// SPDX-License-Identifier: Apache-2.0
// expect PausableToken: transfer_pausable
// expect BlacklistToken: is_blacklisted
// expect WhitelistToken: is_whitelisted
// expect MaxTxToken: anti_whale_modifiable
// expect CooldownToken: trading_cooldown
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

contract PausableToken is TokenBase, Owned {
    bool public paused;

    function pause() public onlyOwner {
        paused = true;
    }

    function unpause() public onlyOwner {
        paused = false;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        from; to; value;
        require(!paused, "paused");
    }
}

contract BlacklistToken is TokenBase, Owned {
    mapping(address => bool) public isBlacklisted;

    function setBlacklist(address who, bool value) public onlyOwner {
        isBlacklisted[who] = value;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        value;
        require(!isBlacklisted[from], "blacklisted");
        require(!isBlacklisted[to], "blacklisted");
    }
}

contract WhitelistToken is TokenBase, Owned {
    mapping(address => bool) public isWhitelisted;

    function setWhitelist(address who, bool value) public onlyOwner {
        isWhitelisted[who] = value;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        to; value;
        require(isWhitelisted[from], "not whitelisted");
    }
}

contract MaxTxToken is TokenBase, Owned {
    uint256 public maxTxAmount = 1000 * 10 ** 18;

    function setMaxTxAmount(uint256 value) public onlyOwner {
        maxTxAmount = value;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        from; to;
        require(value <= maxTxAmount, "max tx");
    }
}

contract CooldownToken is TokenBase, Owned {
    mapping(address => uint256) public lastTransfer;

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        to; value;
        require(block.timestamp >= lastTransfer[from] + 60, "cooldown");
        lastTransfer[from] = block.timestamp;
    }
}
