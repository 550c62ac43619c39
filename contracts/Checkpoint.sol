// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice A checkpoint as the devices sign it (EIP-712 struct `Checkpoint`), shared by
///         the mainnet `Anchor` and the local-chain `Attestations`.
/// @dev `chainId` is the private chain's id; [fromBlock, toBlock] the inclusive block
///      range; `lastBlockHash` the hash of block `toBlock`; `root` the Merkle root of the
///      records (or of the member ids, for a batch);
///      `id == keccak256(abi.encode(uint256(chainId), fromBlock, toBlock, lastBlockHash, root))`.
struct Checkpoint {
    bytes32 id;
    uint64 chainId;
    uint64 fromBlock;
    uint64 toBlock;
    bytes32 lastBlockHash;
    bytes32 root;
}

// keccak256 of the EIP-712 encodeType of `Checkpoint`.
bytes32 constant CHECKPOINT_TYPEHASH = keccak256(
    "Checkpoint(bytes32 id,uint64 chainId,uint64 fromBlock,uint64 toBlock,bytes32 lastBlockHash,bytes32 root)"
);

/// @notice The checkpoint id: keccak256(abi.encode(uint256 chainId, fromBlock, toBlock,
///         lastBlockHash, root)).
function checkpointIdOf(Checkpoint calldata cp) pure returns (bytes32) {
    return keccak256(abi.encode(uint256(cp.chainId), cp.fromBlock, cp.toBlock, cp.lastBlockHash, cp.root));
}
