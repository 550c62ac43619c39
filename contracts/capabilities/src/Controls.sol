// SPDX-License-Identifier: Apache-2.0
// Negative controls: tokens with an owner or a burn, and no capability flag.
// expect OwnedToken: none
// expect BurnOnlyToken: none
// expect FixedSupplyToken: none
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

contract OwnedToken is TokenBase, Owned {
    string public note;

    function setNote(string memory text) public onlyOwner {
        note = text;
    }
}

contract BurnOnlyToken is TokenBase {
    function burn(uint256 value) public {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] = balanceOf[msg.sender] - value;
        totalSupply = totalSupply - value;
        emit Transfer(msg.sender, address(0), value);
    }
}

contract FixedSupplyToken is TokenBase {
    function increaseAllowance(address spender, uint256 added) public returns (bool) {
        allowance[msg.sender][spender] = allowance[msg.sender][spender] + added;
        return true;
    }
}
