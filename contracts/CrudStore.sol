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
///      `publishMany` is the bulk form for write-once blobs (the checkpoint metadata): it
///      keeps only the writer, the block and the keccak256 of each value in storage (two
///      slots) and carries the value in its `Published` event, about 13x less gas per byte
///      than `createMany`, which stores every 32-byte word (22,100 gas a fresh slot).
///      A reader finds the value with `publication(key)` (the block to ask for logs) and
///      `eth_getLogs`, and checks it against the stored digest. Published keys share the
///      key space of created ones (`exists`, `writerOf`) and are never updated or removed.
contract CrudStore {
    struct Entry {
        address writer;
        bytes value;
    }

    /// @dev One published key: writer and block in one slot, the value's digest in a second.
    struct Publication {
        address writer;
        uint64 blockNumber;
        bytes32 digest;
    }

    mapping(bytes32 => Entry) private _entries;
    mapping(bytes32 => Publication) private _published;

    /// @notice `key` was created by `by` with `value`.
    event Created(bytes32 indexed key, address indexed by, bytes value);
    /// @notice The value under `key` was replaced by `by` with `value`.
    event Updated(bytes32 indexed key, address indexed by, bytes value);
    /// @notice `key` and its value were removed by `by`.
    event Deleted(bytes32 indexed key, address indexed by);
    /// @notice `key` was published by `by` with `value` (only its keccak256 is stored).
    event Published(bytes32 indexed key, address indexed by, bytes value);

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

    /// @notice Publish `keys[i] -> values[i]` for every i, in order (all or nothing):
    ///         storage keeps the writer, this block and keccak256(value); the value itself
    ///         is in the `Published` event. Reverts `KeyExists` for a key already created
    ///         or published, `LengthMismatch` for arrays of different lengths.
    function publishMany(bytes32[] calldata keys, bytes[] calldata values) external {
        uint256 n = keys.length;
        if (n != values.length) revert LengthMismatch(n, values.length);
        for (uint256 i; i < n; ++i) {
            bytes32 key = keys[i];
            if (_writerOf(key) != address(0)) revert KeyExists(key);
            bytes calldata value = values[i];
            _published[key] = Publication(msg.sender, uint64(block.number), keccak256(value));
            emit Published(key, msg.sender, value);
        }
    }

    /// @notice Who published `key`, in which block (where its `Published` event is) and the
    ///         keccak256 of its value. Reverts `KeyMissing` if `key` was not published.
    function publication(bytes32 key) external view returns (address writer, uint64 blockNumber, bytes32 digest) {
        Publication storage p = _published[key];
        if (p.writer == address(0)) revert KeyMissing(key);
        return (p.writer, p.blockNumber, p.digest);
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

    /// @notice Whether `key` exists, created or published (an empty value still exists).
    function exists(bytes32 key) external view returns (bool) {
        return _writerOf(key) != address(0);
    }

    /// @notice The account that created or published `key`, or the zero address if absent.
    function writerOf(bytes32 key) external view returns (address) {
        return _writerOf(key);
    }

    function _writerOf(bytes32 key) private view returns (address writer) {
        writer = _entries[key].writer;
        if (writer == address(0)) writer = _published[key].writer;
    }

    function _create(bytes32 key, bytes calldata value) private {
        if (_writerOf(key) != address(0)) revert KeyExists(key);
        Entry storage e = _entries[key];
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
