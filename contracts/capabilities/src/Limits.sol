// SPDX-License-Identifier: Apache-2.0
// Ground truth for limits scaled by a stored factor and for switches set to a constant
// (edge/scoring/capabilities.py, analyzer cap-2); patterns seen in the CRPWarner rug-pull rows.
// expect ScaledLimitToken: anti_whale_modifiable
// expect FeeSwitchToken: slippage_modifiable
// expect FixedScaledLimitToken: none
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

// max transaction = 1 % of the supply until the owner lifts it (to a constant).
contract ScaledLimitToken is TokenBase, Owned {
    uint256 public maxTxBasisPoints = 100;

    function removeLimits() public onlyOwner {
        maxTxBasisPoints = 10000;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        from; to;
        require(value <= totalSupply * maxTxBasisPoints / 10000, "max tx");
    }
}

// The owner switches the transfer fee to 100 % with a function that takes no argument.
contract FeeSwitchToken is TokenBase, Owned {
    uint256 public feePercent = 2;

    function maxFee() public onlyOwner {
        feePercent = 100;
    }

    function transfer(address to, uint256 value) public OVERRIDE returns (bool) {
        uint256 fee = value * feePercent / 100;
        _move(msg.sender, owner, fee);
        _move(msg.sender, to, value - fee);
        return true;
    }
}

// Control: the same scaled limit with a factor no function writes.
contract FixedScaledLimitToken is TokenBase, Owned {
    uint256 public maxTxBasisPoints = 100;

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        from; to;
        require(value <= totalSupply * maxTxBasisPoints / 10000, "max tx");
    }
}
