// SPDX-License-Identifier: Apache-2.0
// The OpenZeppelin Contracts 4.9.6 presets (npm alias oz4), compiled with solc 0.8 only.
// expect ERC20PresetMinterPauser: is_mintable, transfer_pausable
// expect ERC20PresetFixedSupply: none
pragma solidity ^0.8.0;

import "oz4/token/ERC20/presets/ERC20PresetMinterPauser.sol";
import "oz4/token/ERC20/presets/ERC20PresetFixedSupply.sol";
