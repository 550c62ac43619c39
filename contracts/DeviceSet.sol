// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DeviceSet: the fleet's registered devices and quorum M, kept by an owner.
/// @notice Shared by the mainnet `Anchor` and its local-chain twin `Attestations`, so both
///         hold the same membership rules.
abstract contract DeviceSet is Ownable {
    /// @notice The largest device set (signers are counted in a uint8 quorum).
    uint256 public constant MAX_DEVICES = 255;

    /// @dev Packs into the slot of Ownable's owner: one cold SLOAD reads both.
    uint8 private _quorum;
    address[] private _devices;

    /// @notice Whether `account` is a registered device.
    mapping(address account => bool) public isDevice;

    /// @notice keccak256 of the roster `uint8 n || uint8 quorum || n x address` (the
    ///         devices in `devices()` order, 20 bytes each); zero while no set is registered.
    /// @dev One slot that commits to the whole set: a signature check reads it once
    ///      (the caller passes the roster) instead of one `isDevice` slot per signer.
    bytes32 public rosterHash;

    /// @notice The device set or quorum changed.
    event DevicesChanged(address[] devices, uint8 quorum);

    /// @notice Quorum must be 1 <= quorum <= devices <= 255.
    error BadQuorum(uint256 devices, uint256 quorum);
    /// @notice A zero or repeated device address.
    error BadDevice(address device);
    /// @notice `renounceOwnership` is disabled (it would freeze the device set).
    error RenounceDisabled();
    /// @notice The caller or signer is not a registered device.
    error NotADevice(address account);

    constructor() Ownable(msg.sender) {}

    /// @notice Replace the device set with `newDevices` and the quorum with `newQuorum`
    ///         (owner only). Reverts `BadQuorum` unless 1 <= quorum <= n <= 255, and
    ///         `BadDevice` for a zero or repeated address.
    function setDevices(address[] calldata newDevices, uint8 newQuorum) external onlyOwner {
        uint256 n = newDevices.length;
        if (newQuorum == 0 || newQuorum > n || n > MAX_DEVICES) revert BadQuorum(n, newQuorum);
        address[] storage old = _devices;
        for (uint256 i = old.length; i != 0; --i) {
            isDevice[old[i - 1]] = false;
            old.pop();
        }
        for (uint256 i; i < n; ++i) {
            address d = newDevices[i];
            if (d == address(0) || isDevice[d]) revert BadDevice(d);
            isDevice[d] = true;
            old.push(d);
        }
        _quorum = newQuorum;
        bytes32 h;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, n)
            mstore8(add(p, 1), newQuorum)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(add(p, 2), mul(i, 20)), shl(96, calldataload(add(newDevices.offset, mul(i, 0x20)))))
            }
            h := keccak256(p, add(2, mul(n, 20)))
        }
        rosterHash = h;
        emit DevicesChanged(newDevices, newQuorum);
    }

    /// @notice Always reverts `RenounceDisabled` (use `transferOwnership`).
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    /// @notice The registered devices, in the order they were given.
    function devices() external view returns (address[] memory) {
        return _devices;
    }

    /// @notice The number of distinct device signatures needed (0: no set yet).
    function quorum() public view returns (uint8) {
        return _quorum;
    }
}
