// SPDX-License-Identifier: Apache-2.0
// expect FeeToken: slippage_modifiable
// expect HookToken: external_call, transfer_pausable
// expect ValidatorToken: external_call, transfer_pausable
// expect FixedHookToken: external_call
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

// The owner can replace the hook with one that reverts: transfers can be stopped.
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

interface ITransferValidator {
    function canTransfer(address from, address to, uint256 value) external view returns (bool);
}

// Transfers ask a validator (a view call; STATICCALL from solc 0.5) that the owner replaces.
contract ValidatorToken is TokenBase, Owned {
    address public validator;

    function setValidator(address v) public onlyOwner {
        validator = v;
    }

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        require(ITransferValidator(validator).canTransfer(from, to, value), "refused");
    }
}

// Control: the hook's address is a constant, no one can swap it (external_call only).
contract FixedHookToken is TokenBase {
    address constant HOOK = 0x1111111111111111111111111111111111111111;

    function _check(address from, address to, uint256 value) internal OVERRIDE {
        ITransferHook(HOOK).onTransfer(from, to, value);
    }
}
