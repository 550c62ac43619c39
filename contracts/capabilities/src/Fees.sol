// SPDX-License-Identifier: Apache-2.0
// expect FeeToken: slippage_modifiable
// expect HookToken: external_call
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

contract FeeToken is TokenBase, Owned {
    uint256 public feePercent = 2;

    function setFee(uint256 value) public onlyOwner {
        feePercent = value;
    }

    function transfer(address to, uint256 value) public OVERRIDE returns (bool) {
        uint256 fee = value * feePercent / 100;
        _move(msg.sender, owner, fee);
        _move(msg.sender, to, value - fee);
        return true;
    }
}

interface ITransferHook {
    function onTransfer(address from, address to, uint256 value) external;
}

contract HookToken is TokenBase, Owned {
    address public hook;

    function setHook(address h) public onlyOwner {
        hook = h;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        if (hook != address(0)) {
            ITransferHook(hook).onTransfer(from, to, value);
        }
    }
}
