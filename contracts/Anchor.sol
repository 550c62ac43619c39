// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CHECKPOINT_TYPEHASH, Checkpoint, checkpointIdOf} from "./Checkpoint.sol";
import {DeviceSet} from "./DeviceSet.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Anchor: the light mainnet index of sealed checkpoints of a private chain.
/// @notice Holds one slot per anchored checkpoint (id -> Merkle root); everything else
///         (range, last block hash, locator of the testnet metadata, signers) is in the
///         `Anchored` event. An anchor is accepted only with signatures of at least
///         `quorum()` distinct registered devices over the EIP-712 `Checkpoint` struct
///         (domain "EdgeAnchor", "1", this chain, this contract). Anyone may submit;
///         safety comes from the signatures. The first valid anchor of an id wins and
///         any later one reverts `AlreadyAnchored` before any signature work.
/// @dev Batching: K checkpoints are anchored as ONE `Checkpoint` whose `root` is the
///      OpenZeppelin-compatible (sorted-pair) Merkle root over the K member checkpoint
///      ids, with fromBlock/toBlock/lastBlockHash of the first/last member; an auditor
///      proves a member with `verifyMember`. A single checkpoint (K = 1) is anchored as
///      itself and a record leaf is proved against its root with `verifyRecord`.
///      `root` must be non-zero: zero marks "not anchored" (a checkpoint always holds at
///      least the header summary of its blocks, so its root is never zero).
contract Anchor is EIP712, DeviceSet {


    /// @notice The root anchored under checkpoint id `id`, or zero if none.
    mapping(bytes32 id => bytes32 root) public anchoredRoot;

    /// @notice Checkpoint `id` of private chain `chainId` was anchored with `root`.
    /// @param locator where the encrypted metadata is found on the testnets.
    /// @param submitter the account that sent the transaction (paid its gas).
    /// @param signers the devices whose signatures were checked, ascending.
    event Anchored(
        bytes32 indexed id,
        uint64 indexed chainId,
        uint64 fromBlock,
        uint64 toBlock,
        bytes32 lastBlockHash,
        bytes32 root,
        bytes32 locator,
        address submitter,
        address[] signers
    );

    /// @notice Checkpoint `id` is anchored already (the first valid anchor wins).
    error AlreadyAnchored(bytes32 id);
    /// @notice `id` is not keccak256 of the checkpoint's fields; `expected` is.
    error BadCheckpointId(bytes32 id, bytes32 expected);
    /// @notice `fromBlock > toBlock`.
    error BadRange(uint64 fromBlock, uint64 toBlock);
    /// @notice The root is zero (reserved for "not anchored").
    error EmptyRoot(bytes32 id);
    /// @notice No device set is registered yet.
    error NoDevices();
    /// @notice `valid` signatures given where `quorum` are needed.
    error QuorumNotMet(uint256 valid, uint256 quorum);
    /// @notice Signature `index` recovers to `signer`, which is not above the previous
    ///         signer: signatures must be sorted by strictly increasing signer address.
    error SignersNotAscending(uint256 index, address signer);

    /// @dev The deployer owns the contract; it registers devices with `setDevices`.
    constructor() EIP712("EdgeAnchor", "1") {}

    // --------------------------------------------------------------------- anchoring

    /// @notice Anchor checkpoint `cp` with `locator`, signed by at least `quorum()`
    ///         registered devices (65-byte r||s||v signatures over the EIP-712 digest,
    ///         sorted by strictly increasing signer address).
    /// @dev Order of checks (cheapest first): already anchored; id; range; root;
    ///      signature count; then per signature OZ ECDSA (length 65, low s, v 27/28),
    ///      ascending signer, registered device.
    function anchor(Checkpoint calldata cp, bytes32 locator, bytes[] calldata signatures) external {
        bytes32 id = cp.id;
        if (anchoredRoot[id] != 0) revert AlreadyAnchored(id);
        bytes32 root = cp.root;
        bytes32 expected = checkpointIdOf(cp);
        if (expected != id) revert BadCheckpointId(id, expected);
        if (cp.fromBlock > cp.toBlock) revert BadRange(cp.fromBlock, cp.toBlock);
        if (root == 0) revert EmptyRoot(id);

        address[] memory signers = _checkSignatures(cp, signatures);
        anchoredRoot[id] = root;
        _emitAnchored(cp, locator, signers);
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

    /// @dev The signers of `signatures` over `cp` (ascending), or a revert: `NoDevices`,
    ///      `QuorumNotMet`, an OZ ECDSA error, `SignersNotAscending`, `NotADevice`.
    function _checkSignatures(Checkpoint calldata cp, bytes[] calldata signatures)
        private
        view
        returns (address[] memory signers)
    {
        uint256 q = quorum();
        if (q == 0) revert NoDevices();
        uint256 n = signatures.length;
        if (n < q) revert QuorumNotMet(n, q);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CHECKPOINT_TYPEHASH, cp)));
        signers = new address[](n);
        address last;
        for (uint256 i; i < n; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i]);
            if (signer <= last) revert SignersNotAscending(i, signer);
            if (!isDevice[signer]) revert NotADevice(signer);
            signers[i] = signer;
            last = signer;
        }
    }

    function _emitAnchored(Checkpoint calldata cp, bytes32 locator, address[] memory signers) private {
        emit Anchored(
            cp.id, cp.chainId, cp.fromBlock, cp.toBlock, cp.lastBlockHash, cp.root, locator, msg.sender, signers
        );
    }

    function _verify(bytes32 anchorId, bytes32 leaf, bytes32[] calldata proof) private view returns (bool) {
        bytes32 root = anchoredRoot[anchorId];
        return root != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
    }
}
