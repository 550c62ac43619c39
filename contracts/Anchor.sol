// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CHECKPOINT_TYPEHASH, Checkpoint} from "./Checkpoint.sol";
import {DeviceSet} from "./DeviceSet.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Anchor: the light mainnet index of sealed checkpoints of a private chain.
/// @notice Holds one slot per anchored checkpoint (id -> Merkle root); the chain, block
///         range, locator of the testnet metadata and signers are in the `Anchored`
///         event. An anchor is accepted only with signatures of at least
///         `quorum()` distinct registered devices over the EIP-712 `Checkpoint` struct
///         (domain "EdgeAnchor", "1", this chain, this contract). Anyone may submit;
///         safety comes from the signatures. The first valid anchor of an id wins and
///         any later one reverts `AlreadyAnchored` before any signature work.
/// @dev Gas: the call is packed (the id is computed, not sent; no ABI words: see
///      `anchor`), the device set is checked against ONE stored commitment (`rosterHash`, a cold SLOAD) instead
///      of one `isDevice` slot per signer, and signatures are recovered with the
///      `ecrecover` precompile directly under OpenZeppelin ECDSA's rules (low s, v 27/28).
///      Batching: K checkpoints are anchored as ONE `Checkpoint` whose `root` is the
///      OpenZeppelin-compatible (sorted-pair) Merkle root over the K member checkpoint
///      ids, with fromBlock/toBlock/lastBlockHash of the first/last member; an auditor
///      proves a member with `verifyMember`. A single checkpoint (K = 1) is anchored as
///      itself and a record leaf is proved against its root with `verifyRecord`.
///      `root` must be non-zero: zero marks "not anchored" (a checkpoint always holds at
///      least the header summary of its blocks, so its root is never zero).
contract Anchor is EIP712, DeviceSet {
    /// @dev secp256k1n / 2: the largest `s` accepted (EIP-2, as OZ ECDSA).
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The root anchored under checkpoint id `id`, or zero if none.
    mapping(bytes32 id => bytes32 root) public anchoredRoot;

    /// @notice Checkpoint `id` was anchored. The mainnet reference is the id, the root
    ///         (stored: `anchoredRoot(id)`), the chain and block range and the locator;
    ///         the last block hash is in the metadata, and the id commits to it and to
    ///         the root (an auditor recomputes the id from the metadata's fields).
    /// @param span the private chain id, first and last block: `chainId << 128 |
    ///        fromBlock << 64 | toBlock` (three uint64 in one word).
    /// @param locator where the encrypted metadata is found on the testnets.
    /// @param signers bit i set: the device at index i of the roster in force (the
    ///        `devices()` list of the last `DevicesChanged` before this log) signed.
    /// @dev The submitter (who paid the gas) is the transaction's sender.
    event Anchored(
        bytes32 indexed id, uint256 span, bytes32 locator, uint256 signers
    );

    /// @notice Checkpoint `id` is anchored already (the first valid anchor wins).
    error AlreadyAnchored(bytes32 id);
    /// @notice `fromBlock > toBlock`.
    error BadRange(uint64 fromBlock, uint64 toBlock);
    /// @notice The root is zero (reserved for "not anchored").
    error EmptyRoot(bytes32 id);
    /// @notice No device set is registered yet.
    error NoDevices();
    /// @notice The packed call is malformed: too short, a signer bit beyond the roster, or
    ///         a length that does not match the bitmap (the length is shown).
    error BadAuth(uint256 length);
    /// @notice The roster rebuilt from the call (recovered signers, given non-signers)
    ///         hashes to `given`, the registered one to `registered`: a signature is not
    ///         the registered device's at its index, or the roster is not the current one.
    error RosterMismatch(bytes32 given, bytes32 registered);
    /// @notice `valid` signatures given where `quorum` are needed.
    error QuorumNotMet(uint256 valid, uint256 quorum);
    /// @notice As OpenZeppelin ECDSA: no signer recovers (bad v, r or s).
    error ECDSAInvalidSignature();
    /// @notice As OpenZeppelin ECDSA: `s` in the upper half (malleable signature).
    error ECDSAInvalidSignatureS(bytes32 s);

    /// @dev The deployer owns the contract; it registers devices with `setDevices`.
    constructor() EIP712("EdgeAnchor", "1") {}

    // --------------------------------------------------------------------- anchoring

    /// @notice Anchor the checkpoint (chainId, fromBlock, toBlock, lastBlockHash, root)
    ///         with `locator`, signed by at least `quorum()` registered devices.
    /// @dev The arguments are PACKED after the selector (no ABI words), offsets in bytes
    ///      of the calldata (n devices in the roster, m of them signing, b = ceil(n / 8)):
    ///
    ///                4  uint64 chainId | uint64 fromBlock | uint64 toBlock  (24 bytes)
    ///               28  bytes32 lastBlockHash
    ///               60  bytes32 root
    ///               92  bytes32 locator
    ///              124  uint8 n | uint8 quorum
    ///              126  signer bitmap, b bytes big-endian: bit i set = device i signed
    ///          126 + b  m x (r | s | uint8 v): 65-byte EIP-712 signatures of the
    ///                   `Checkpoint` struct (id included), by increasing device index
    ///   126 + b + 65 m  (n - m) x address: the devices that did not sign, by index
    ///
    ///      The roster `n | quorum | n x address` (devices in `devices()` order: the
    ///      signers' addresses are the ones recovered, the others are given) must hash to
    ///      `rosterHash()`: so each signer IS the registered device at its index, and
    ///      distinct bits are distinct devices. The id is `keccak256(abi.encode(uint256
    ///      (chainId), fromBlock, toBlock, lastBlockHash, root))`, computed here.
    ///      Checks, cheapest first: length; already anchored; range; root; bitmap and
    ///      length; quorum; then per signature low s (EIP-2) and `ecrecover` (v 27/28);
    ///      then the roster. Reverts `BadAuth`, `AlreadyAnchored`, `BadRange`,
    ///      `EmptyRoot`, `NoDevices`, `QuorumNotMet`, `ECDSAInvalidSignatureS`,
    ///      `ECDSAInvalidSignature`, `RosterMismatch`.
    function anchor() external {
        bytes32 domain = _domainSeparatorV4();
        bytes32 typeHash = CHECKPOINT_TYPEHASH;
        bytes32 topic = Anchored.selector;
        uint256 fault; // which error (see `_fail`), with its arguments
        uint256 arg1;
        uint256 arg2;
        assembly ("memory-safe") {
            // scratch memory from the free pointer p (never allocated: nothing follows):
            //   p+0x000..0x0e0  hashStruct preimage; later the ecrecover input
            //   p+0x100..0x160  event data (span, locator, signer bitmap)
            //   p+0x180, 0x1a0  the id and its anchoredRoot slot
            //   p+0x1c0..0x202  the digest preimage, then the digest at p+0x1c0
            //   p+0x220..       the roster being rebuilt
            let p := mload(0x40)
            let len := calldatasize()
            for {} 1 {} {
                if lt(len, 126) {
                    fault := 1
                    arg1 := len
                    break
                }
                {
                    let span := shr(64, calldataload(4))
                    let root := calldataload(60)
                    mstore(add(p, 0x100), span)
                    mstore(add(p, 0x120), calldataload(92))
                    // id = keccak256(abi.encode(uint256 chainId, from, to, lastBlockHash, root))
                    mstore(add(p, 0x40), shr(128, span))
                    mstore(add(p, 0x60), and(shr(64, span), 0xffffffffffffffff))
                    mstore(add(p, 0x80), and(span, 0xffffffffffffffff))
                    mstore(add(p, 0xa0), calldataload(28))
                    mstore(add(p, 0xc0), root)
                    let id := keccak256(add(p, 0x40), 0xa0)
                    mstore(0x00, id)
                    mstore(0x20, anchoredRoot.slot)
                    let slot := keccak256(0x00, 0x40)
                    mstore(add(p, 0x180), id)
                    mstore(add(p, 0x1a0), slot)
                    if sload(slot) {
                        fault := 2
                        arg1 := id
                        break
                    }
                    if gt(mload(add(p, 0x60)), mload(add(p, 0x80))) {
                        fault := 3
                        arg1 := mload(add(p, 0x60))
                        arg2 := mload(add(p, 0x80))
                        break
                    }
                    if iszero(root) {
                        fault := 4
                        arg1 := id
                        break
                    }
                    mstore(p, typeHash)
                    mstore(add(p, 0x20), id)
                    // digest = keccak256(0x1901 || domainSeparator || hashStruct)  (EIP-712)
                    mstore(add(p, 0x1c0), shl(240, 0x1901))
                    mstore(add(p, 0x1c2), domain)
                    mstore(add(p, 0x1e2), keccak256(p, 0xe0))
                    mstore(add(p, 0x1c0), keccak256(add(p, 0x1c0), 0x42))
                }
                let n := byte(0, calldataload(124))
                let sig := add(126, shr(3, add(n, 7)))
                let bits := shr(sub(256, shl(3, sub(sig, 126))), calldataload(126))
                mstore(add(p, 0x140), bits)
                let other := 0
                {
                    let m := 0
                    for { let b := bits } b { b := and(b, sub(b, 1)) } { m := add(m, 1) }
                    other := add(sig, mul(65, m))
                    if or(shr(n, bits), iszero(eq(len, add(other, mul(20, sub(n, m)))))) {
                        fault := 1
                        arg1 := len
                        break
                    }
                    let q := byte(1, calldataload(124))
                    if lt(m, q) {
                        fault := 7
                        arg1 := m
                        arg2 := q
                        break
                    }
                }
                // rebuild the roster: recovered signers where a bit is set, given addresses elsewhere
                mstore8(add(p, 0x220), n)
                mstore8(add(p, 0x221), byte(1, calldataload(124)))
                mstore(p, mload(add(p, 0x1c0)))
                for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                    let device := 0
                    switch and(shr(i, bits), 1)
                    case 0 {
                        device := shr(96, calldataload(other))
                        other := add(other, 20)
                    }
                    default {
                        let sv := calldataload(add(sig, 32))
                        if gt(sv, HALF_N) {
                            fault := 9
                            arg1 := sv
                            break
                        }
                        mstore(add(p, 0x20), byte(0, calldataload(add(sig, 64))))
                        mstore(add(p, 0x40), calldataload(sig))
                        mstore(add(p, 0x60), sv)
                        mstore(0x00, 0)
                        pop(staticcall(gas(), 0x01, p, 0x80, 0x00, 0x20))
                        device := mload(0x00)
                        if iszero(device) {
                            fault := 10
                            break
                        }
                        sig := add(sig, 65)
                    }
                    mstore(add(p, add(0x222, mul(i, 20))), shl(96, device))
                }
                if fault { break }
                {
                    let registered := sload(rosterHash.slot)
                    if iszero(registered) {
                        fault := 5
                        break
                    }
                    let given := keccak256(add(p, 0x220), add(2, mul(n, 20)))
                    if iszero(eq(given, registered)) {
                        fault := 6
                        arg1 := given
                        arg2 := registered
                        break
                    }
                }
                sstore(mload(add(p, 0x1a0)), calldataload(60))
                log2(add(p, 0x100), 0x60, topic, mload(add(p, 0x180)))
                break
            }
        }
        if (fault != 0) _fail(fault, arg1, arg2);
    }

    /// @dev Reverts with the error numbered `fault` by `anchor`.
    function _fail(uint256 fault, uint256 arg1, uint256 arg2) private pure {
        if (fault == 1) revert BadAuth(arg1);
        if (fault == 2) revert AlreadyAnchored(bytes32(arg1));
        if (fault == 3) revert BadRange(uint64(arg1), uint64(arg2));
        if (fault == 4) revert EmptyRoot(bytes32(arg1));
        if (fault == 5) revert NoDevices();
        if (fault == 6) revert RosterMismatch(bytes32(arg1), bytes32(arg2));
        if (fault == 7) revert QuorumNotMet(arg1, arg2);
        if (fault == 9) revert ECDSAInvalidSignatureS(bytes32(arg1));
        revert ECDSAInvalidSignature();
    }

    // ---------------------------------------------------------------------- auditing

    /// @notice Whether checkpoint `memberId` is in the batch anchored as `anchorId`
    ///         (OZ MerkleProof, sorted pairs, over the stored root). False if
    ///         `anchorId` is not anchored.
    /// @dev As with any Merkle proof, an internal node with a shorter proof verifies
    ///      too: the auditor computes `memberId` itself from the member's fields.
    function verifyMember(bytes32 anchorId, bytes32 memberId, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return _verify(anchorId, memberId, proof);
    }

    /// @notice Whether record leaf `leaf` is in the checkpoint anchored (alone) as
    ///         `anchorId` (OZ MerkleProof over the stored root). False if not anchored.
    /// @dev The auditor computes `leaf` itself (keccak256 of the record's encoding).
    function verifyRecord(bytes32 anchorId, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return _verify(anchorId, leaf, proof);
    }

    /// @notice The EIP-712 digest the devices sign for `cp` under this contract's domain.
    function checkpointDigest(Checkpoint calldata cp) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CHECKPOINT_TYPEHASH, cp)));
    }

    /// @notice The EIP-712 domain separator (name "EdgeAnchor", version "1", this chain,
    ///         this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _verify(bytes32 anchorId, bytes32 leaf, bytes32[] calldata proof) private view returns (bool) {
        bytes32 root = anchoredRoot[anchorId];
        return root != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
    }
}
