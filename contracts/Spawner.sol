// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Spawner: creates contracts from a contract (CREATE and CREATE2).
/// @notice Used by tests and the demo to produce contracts that have no receipt
///         `contractAddress` of their own, so that the ingest must find them through
///         call traces (`trace_block` / `debug_traceBlockByNumber`).
/// @dev A failing init code bubbles its revert data; with no revert data (e.g. out of
///      gas, code over EIP-170, CREATE2 address collision) it reverts `SpawnFailed`.
contract Spawner {
    /// @notice A child contract was created at `child`.
    event Spawned(address indexed child);

    /// @notice The creation failed without revert data.
    error SpawnFailed();

    /// @notice Run `initCode` with CREATE; returns the new contract's address.
    function spawn(bytes calldata initCode) external returns (address child) {
        child = _create(initCode, 0, false);
    }

    /// @notice Run `initCode` with CREATE2 (EIP-1014) and `salt`; returns the address.
    function spawn2(bytes calldata initCode, bytes32 salt) external returns (address child) {
        child = _create(initCode, salt, true);
    }

    /// @notice Run each of `initCodes` with CREATE, in order; returns the addresses.
    function spawnMany(bytes[] calldata initCodes) external returns (address[] memory children) {
        uint256 n = initCodes.length;
        children = new address[](n);
        for (uint256 i; i < n; ++i) {
            children[i] = _create(initCodes[i], 0, false);
        }
    }

    function _create(bytes calldata initCode, bytes32 salt, bool useCreate2)
        private
        returns (address child)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, initCode.offset, initCode.length)
            switch useCreate2
            case 0 { child := create(0, ptr, initCode.length) }
            default { child := create2(0, ptr, initCode.length, salt) }
            if iszero(child) {
                let size := returndatasize()
                if size {
                    returndatacopy(ptr, 0, size)
                    revert(ptr, size)
                }
            }
        }
        if (child == address(0)) revert SpawnFailed();
        emit Spawned(child);
    }
}
