// SPDX-License-Identifier: Apache-2.0
// Ground truth for the "set, not add" mint rules and the owner-set payout rate
// (edge/scoring/capabilities.py, analyzer cap-2); patterns seen in the CRPWarner rug-pull rows.
// expect SelfBalanceToken: is_mintable
// expect AsmSelfBalanceToken: is_mintable
// expect ResetSupplyToken: is_mintable, owner_change_balance
// expect PricedSaleToken: owner_can_withdraw, slippage_modifiable
// expect SupplyLabelToken: none
pragma solidity >=0.4.24 <0.9.0;

import "./TokenBase.sol";

// The privileged caller writes its own balance to any value (no "+": the balance is set).
contract SelfBalanceToken is TokenBase, Owned {
    function sync(uint256 value) public onlyOwner {
        balanceOf[msg.sender] = value;
    }
}

// The same through inline assembly, the mapping key hashed in free memory (mload(0x40))
// instead of the scratch space. Slot 4 is balanceOf in TokenBase's layout.
contract AsmSelfBalanceToken is TokenBase, Owned {
    function sync(uint256 value) public onlyOwner {
        assembly {
            let p := mload(0x40)
            mstore(p, caller())
            mstore(add(p, 0x20), 4)
            sstore(keccak256(p, 0x40), value)
        }
    }
}

// "initialize" that can be called again: total supply and one balance set at will.
contract ResetSupplyToken is TokenBase, Owned {
    function reset(address holder, uint256 supply) public onlyOwner {
        totalSupply = supply;
        balanceOf[holder] = supply;
    }
}

// ethereum.org MyAdvancedToken style: the owner sets the prices; sell() pays ether at the
// owner's sell price, so the owner can set it high and drain the ether buyers paid in.
contract PricedSaleToken is TokenBase, Owned {
    uint256 public sellPrice;
    uint256 public buyPrice;

    function setPrices(uint256 newSellPrice, uint256 newBuyPrice) public onlyOwner {
        sellPrice = newSellPrice;
        buyPrice = newBuyPrice;
    }

    function buy() public payable {
        require(buyPrice > 0, "closed");
        _move(address(this), msg.sender, msg.value / buyPrice);
    }

    function sell(uint256 amount) public {
        require(address(this).balance >= amount * sellPrice, "no ether");
        _move(msg.sender, address(this), amount);
        PAYABLE_SENDER.transfer(amount * sellPrice);
    }
}

// Negative control: the owner rewrites the reported total supply, but credits no balance
// and no one can pay out anything: no token is created.
contract SupplyLabelToken is TokenBase, Owned {
    function setReportedSupply(uint256 supply) public onlyOwner {
        totalSupply = supply;
    }
}
