// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CrudStore: a generic key/value store of `bytes` under `bytes32` keys.
/// @notice The user activity of the local dev chain (the demo writes to it) and, later,
///         the public-testnet store of encrypted checkpoint metadata.
/// @dev Gas matters on the public tier, so an entry is one slot for its writer plus the
///      usual `bytes` layout for its value (values < 32 bytes are inline in one slot).
///      A key exists while its writer is non-zero, so empty values are allowed.
///      Only the account that created a key may update or delete it. Every change emits
///      an event carrying the full new value, so the store's history can be rebuilt from
///      logs alone.
contract CrudStore {
    struct Entry {
        address writer;
        bytes value;
    }

    mapping(bytes32 => Entry) private _entries;

    /// @notice `key` was created by `by` with `value`.
    event Created(bytes32 indexed key, address indexed by, bytes value);
    /// @notice The value under `key` was replaced by `by` with `value`.
    event Updated(bytes32 indexed key, address indexed by, bytes value);
    /// @notice `key` and its value were removed by `by`.
    event Deleted(bytes32 indexed key, address indexed by);

    /// @notice `create` of a key that already exists.
    error KeyExists(bytes32 key);
    /// @notice `read`, `update` or `delete` of a key that does not exist.
    error KeyMissing(bytes32 key);
    /// @notice `update` or `delete` by an account other than the key's writer.
    error NotWriter(bytes32 key, address writer);
    /// @notice `createMany` with arrays of different lengths.
    error LengthMismatch(uint256 keys, uint256 values);

    /// @notice Store `value` under the new key `key`. Reverts `KeyExists` if present.
    function create(bytes32 key, bytes calldata value) external {
        _create(key, value);
    }

    /// @notice Create `keys[i] -> values[i]` for every i, in order (all or nothing).
    /// @dev For chunked uploads: one transaction, one `Created` event per key.
    function createMany(bytes32[] calldata keys, bytes[] calldata values) external {
        uint256 n = keys.length;
        if (n != values.length) revert LengthMismatch(n, values.length);
        for (uint256 i; i < n; ++i) {
            _create(keys[i], values[i]);
        }
    }

    /// @notice Replace the value under `key`. Reverts `KeyMissing` or `NotWriter`.
    function update(bytes32 key, bytes calldata value) external {
        Entry storage e = _writable(key);
        e.value = value;
        emit Updated(key, msg.sender, value);
    }

    /// @notice Remove `key` and its value. Reverts `KeyMissing` or `NotWriter`.
    function remove(bytes32 key) external {
        _writable(key);
        delete _entries[key];
        emit Deleted(key, msg.sender);
    }

    /// @notice The value under `key`. Reverts `KeyMissing` if absent.
    function read(bytes32 key) external view returns (bytes memory) {
        Entry storage e = _entries[key];
        if (e.writer == address(0)) revert KeyMissing(key);
        return e.value;
    }

    /// @notice Whether `key` exists (an empty value still exists).
    function exists(bytes32 key) external view returns (bool) {
        return _entries[key].writer != address(0);
    }

    /// @notice The account that created `key`, or the zero address if absent.
    function writerOf(bytes32 key) external view returns (address) {
        return _entries[key].writer;
    }

    function _create(bytes32 key, bytes calldata value) private {
        Entry storage e = _entries[key];
        if (e.writer != address(0)) revert KeyExists(key);
        e.writer = msg.sender;
        if (value.length != 0) e.value = value;
        emit Created(key, msg.sender, value);
    }

    function _writable(bytes32 key) private view returns (Entry storage e) {
        e = _entries[key];
        address writer = e.writer;
        if (writer == address(0)) revert KeyMissing(key);
        if (writer != msg.sender) revert NotWriter(key, writer);
    }
}
