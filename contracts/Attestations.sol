// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {CHECKPOINT_TYPEHASH, Checkpoint, checkpointIdOf} from "./Checkpoint.sol";
import {DeviceSet} from "./DeviceSet.sol";

/// @title Attestations: the fleet's bulletin board on the local PoA chain.
/// @notice Each device posts its EIP-712 signature of every checkpoint it computed, as an
///         event; devices read each other's attestations from the chain only (outbound
///         connections, no device-to-device sockets). The signature is over the mainnet
///         `Anchor`'s domain (its separator is fixed at deployment), so the duty holder
///         submits the collected signatures to `Anchor.anchor` as they are.
///         `locate` publishes where the duty holder stored a checkpoint's metadata, so a
///         device that takes the duty over can reuse it.
contract Attestations is DeviceSet {


    /// @notice The EIP-712 domain separator of the mainnet `Anchor` the signatures are for.
    bytes32 public immutable anchorDomainSeparator;

    /// @notice Device `device` signed checkpoint `id` (its fields and signature follow).
    event Attested(
        bytes32 indexed id,
        address indexed device,
        uint64 indexed fromBlock,
        uint64 toBlock,
        uint64 chainId,
        bytes32 lastBlockHash,
        bytes32 root,
        bytes signature
    );

    /// @notice Device `device` stored the metadata of checkpoint `id` under `locator`.
    event Located(bytes32 indexed id, address indexed device, bytes32 locator);

    /// @notice The id is not keccak256(abi.encode(chainId, from, to, lastBlockHash, root)).
    error BadCheckpointId(bytes32 id, bytes32 expected);
    /// @notice The signature is not the sender's.
    error SignerMismatch(address signer, address sender);

    /// @param domainSeparator the mainnet Anchor's `domainSeparator()`.
    constructor(bytes32 domainSeparator) {
        anchorDomainSeparator = domainSeparator;
    }

    /// @notice Post the sender's signature of `cp` (sender must be a registered device and
    ///         the signer). Reverts `NotADevice`, `BadCheckpointId`, `SignerMismatch` or an
    ///         OZ ECDSA error (malleable s, bad v or length).
    function attest(Checkpoint calldata cp, bytes calldata signature) external {
        if (!isDevice[msg.sender]) revert NotADevice(msg.sender);
        bytes32 expected = checkpointIdOf(cp);
        if (expected != cp.id) revert BadCheckpointId(cp.id, expected);
        bytes32 digest = MessageHashUtils.toTypedDataHash(
            anchorDomainSeparator, keccak256(abi.encode(CHECKPOINT_TYPEHASH, cp))
        );
        address signer = ECDSA.recoverCalldata(digest, signature);
        if (signer != msg.sender) revert SignerMismatch(signer, msg.sender);
        emit Attested(cp.id, msg.sender, cp.fromBlock, cp.toBlock, cp.chainId, cp.lastBlockHash, cp.root, signature);
    }

    /// @notice Publish the locator of checkpoint `id`'s metadata (registered devices only).
    function locate(bytes32 id, bytes32 locator) external {
        if (!isDevice[msg.sender]) revert NotADevice(msg.sender);
        emit Located(id, msg.sender, locator);
    }
}
