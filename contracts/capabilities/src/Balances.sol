// SPDX-License-Identifier: Apache-2.0
// expect OwnerMoveToken: owner_change_balance
// expect SetBalanceToken: owner_change_balance
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

contract OwnerMoveToken is TokenBase, Owned {
    function adminTransfer(address from, address to, uint256 value) public onlyOwner {
        balanceOf[from] = balanceOf[from] - value;
        balanceOf[to] = balanceOf[to] + value;
        emit Transfer(from, to, value);
    }
}

contract SetBalanceToken is TokenBase, Owned {
    function setBalance(address who, uint256 value) public onlyOwner {
        balanceOf[who] = value;
    }
}
