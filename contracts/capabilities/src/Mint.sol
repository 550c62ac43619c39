// SPDX-License-Identifier: Apache-2.0
// expect OwnerMintToken: is_mintable
// expect HiddenMintToken: is_mintable
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

contract OwnerMintToken is TokenBase, Owned {
    function mint(address to, uint256 value) public onlyOwner {
        totalSupply = totalSupply + value;
        balanceOf[to] = balanceOf[to] + value;
        emit Transfer(address(0), to, value);
    }
}

// Mint under another name and without touching totalSupply (the "hidden mint" pattern).
contract HiddenMintToken is TokenBase, Owned {
    function rewardHolders(uint256 value) public onlyOwner {
        balanceOf[owner] = balanceOf[owner] + value;
    }
}
