// SPDX-License-Identifier: Apache-2.0
// expect LockOwnerToken: can_take_back_ownership
// expect HiddenOwnerToken: hidden_owner, can_take_back_ownership
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

// The "lock" pattern: renounce ownership for a while, keep the old owner, take it back.
contract LockOwnerToken is TokenBase, Owned {
    address private previousOwner;
    uint256 private lockTime;

    function lock(uint256 time) public onlyOwner {
        previousOwner = owner;
        owner = address(0);
        lockTime = block.timestamp + time;
    }

    function unlock() public {
        require(previousOwner == msg.sender, "not previous owner");
        require(block.timestamp > lockTime, "locked");
        owner = previousOwner;
    }
}

contract HiddenOwnerToken is TokenBase, Owned {
    function reclaim() public {
        require(msg.sender == 0x5B38Da6a701c568545dCfcB03FcB875f56beddC4, "no");
        owner = msg.sender;
    }
}
