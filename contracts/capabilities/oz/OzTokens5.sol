// SPDX-License-Identifier: Apache-2.0
// OpenZeppelin Contracts 5.7.0 (npm @openzeppelin/contracts), compiled with solc 0.8 only.
// expect OzPlainToken: none
// expect OzBurnableToken: none
// expect OzOwnableMintToken: is_mintable
// expect OzPausableToken: transfer_pausable
// expect ERC1967Proxy: is_proxy
pragma solidity ^0.8.20;

import "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";
import "@openzeppelin/contracts/access/Ownable.sol";
import "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";

contract OzPlainToken is ERC20 {
    constructor() ERC20("Plain", "PLN") {
        _mint(msg.sender, 1e24);
    }
}

contract OzBurnableToken is ERC20Burnable {
    constructor() ERC20("Burn", "BRN") {
        _mint(msg.sender, 1e24);
    }
}

contract OzOwnableMintToken is ERC20, Ownable {
    constructor() ERC20("Mint", "MNT") Ownable(msg.sender) {}

    function mint(address to, uint256 value) external onlyOwner {
        _mint(to, value);
    }
}

contract OzPausableToken is ERC20Pausable, Ownable {
    constructor() ERC20("Pause", "PAU") Ownable(msg.sender) {
        _mint(msg.sender, 1e24);
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }
}
