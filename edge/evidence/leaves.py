"""Canonical encodings of records, their Merkle leaves and CRCs.

Every honest device must compute the same leaf from the same chain, bit for bit, on
ARM and on x86: so a leaf holds chain data only (never model outputs) and is defined
by a Solidity ABI encoding (``abi.encode``, the Solidity ABI specification), which a
contract can recompute:

- block header summary, kind 0::

    abi.encode(uint8 0, uint64 chainId, uint64 number, bytes32 hash, bytes32 parentHash,
               uint64 timestamp, address miner, uint32 txCount)

- contract deployment, kind 1::

    abi.encode(uint8 1, uint64 chainId, uint64 blockNumber, bytes32 blockHash,
               uint32 txIndex, uint32 createIndex, bytes32 txHash, address contract,
               address creator, bytes32 codeHash)

- log, kind 2::

    abi.encode(uint8 2, uint64 chainId, uint64 blockNumber, bytes32 blockHash,
               uint32 txIndex, uint32 logIndex, bytes32 txHash, address emitter,
               bytes32[] topics, bytes data)

- signer-set change (Clique, EIP-225), kind 3::

    abi.encode(uint8 3, uint64 chainId, uint64 blockNumber, bytes32 blockHash,
               uint32 seq, uint8 change, address signer, address[] voters,
               address[] signers)

  ``change``: 0 genesis (the initial set), 1 authorized, 2 dropped (a vote passed;
  ``signer`` is the one added/dropped, ``voters`` the signers whose votes passed it),
  3 checkpoint (an epoch checkpoint's list replaced a different tracked set); ``signer``
  is the zero address and ``voters`` empty unless 1/2; ``signers`` is the full set after
  the change, ascending; ``seq`` orders changes within a block. The set applies from
  block ``blockNumber + 1`` on: so an auditor sees who was allowed to seal, and when.

``leaf = keccak256(encoding)`` (see :func:`edge.evidence.merkle.record_leaf`) and
``crc = CRC-32C(encoding)`` (RFC 3720). Leaves of a checkpoint are ordered by
:attr:`RecordKey.sort_key` = ``(block_number, kind, tx_index, index)``: in each block
the header first, then deployments, then logs, each in transaction order, then the
signer-set changes (key ``(block, 3, 0, seq)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode

from edge.evidence.crc import crc32c
from edge.evidence.merkle import record_leaf

__all__ = ["KIND_BLOCK", "KIND_CONTRACT", "KIND_LOG", "KIND_SIGNERS", "KIND_NAMES", "SIGNER_CHANGES", "RecordKey",
           "Leaf", "Finding", "encode_block", "encode_contract", "encode_log", "encode_signer_change", "make_leaf"]

KIND_BLOCK = 0
KIND_CONTRACT = 1
KIND_LOG = 2
KIND_SIGNERS = 3
KIND_NAMES = ("block", "contract", "log", "signers")
"""The name of each record kind, by kind number (``edge verify --record BLOCK:KIND:TX:INDEX``)."""
SIGNER_CHANGES = ("genesis", "authorized", "dropped", "checkpoint")
"""The ``change`` code of a signer-set change leaf is its index here (module doc)."""


@dataclass(frozen=True, slots=True, order=True)
class RecordKey:
    """Key of a record inside a checkpoint; orders leaves. ``index`` is 0 for a block,
    the creation ordinal for a deployment, the block-wide logIndex for a log."""

    block_number: int
    kind: int
    tx_index: int
    index: int

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        """``(block_number, kind, tx_index, index)``."""
        return (self.block_number, self.kind, self.tx_index, self.index)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A record's key, Merkle leaf (32 bytes) and CRC-32C (uint32) of its encoding."""

    key: RecordKey
    leaf: bytes
    crc: int


@dataclass(frozen=True, slots=True)
class Finding:
    """The risk finding of one deployment in a checkpoint (travels in the metadata only):
    key, 20-byte address, 32-byte code hash, score 0..1 (None: not scored, e.g. oversize),
    flagged, model id, and the code's capability flags (GoPlus token-security names, see
    :mod:`edge.scoring.capabilities`; None: no report stored yet, ``()``: none found or
    the analysis timed out)."""

    key: RecordKey
    address: bytes
    code_hash: bytes
    score: float | None
    flagged: bool
    model_id: str | None
    capabilities: tuple[str, ...] | None = None


def encode_block(chain_id: int, number: int, block_hash: bytes, parent_hash: bytes, timestamp: int,
                 miner: bytes, tx_count: int) -> bytes:
    """ABI encoding of a block header summary (kind 0; module doc)."""
    return abi_encode(
        ["uint8", "uint64", "uint64", "bytes32", "bytes32", "uint64", "address", "uint32"],
        [KIND_BLOCK, chain_id, number, block_hash, parent_hash, timestamp, miner, tx_count],
    )


def encode_contract(chain_id: int, block_number: int, block_hash: bytes, tx_index: int, create_index: int,
                    tx_hash: bytes, address: bytes, creator: bytes, code_hash: bytes) -> bytes:
    """ABI encoding of a contract deployment (kind 1; module doc)."""
    return abi_encode(
        ["uint8", "uint64", "uint64", "bytes32", "uint32", "uint32", "bytes32", "address", "address", "bytes32"],
        [KIND_CONTRACT, chain_id, block_number, block_hash, tx_index, create_index, tx_hash, address, creator,
         code_hash],
    )


def encode_log(chain_id: int, block_number: int, block_hash: bytes, tx_index: int, log_index: int,
               tx_hash: bytes, emitter: bytes, topics: list[bytes], data: bytes) -> bytes:
    """ABI encoding of a log (kind 2; module doc). ``topics``: 0-4 of 32 bytes."""
    return abi_encode(
        ["uint8", "uint64", "uint64", "bytes32", "uint32", "uint32", "bytes32", "address", "bytes32[]", "bytes"],
        [KIND_LOG, chain_id, block_number, block_hash, tx_index, log_index, tx_hash, emitter, topics, data],
    )


def encode_signer_change(chain_id: int, block_number: int, block_hash: bytes, seq: int, change: str,
                         signer: bytes | None, voters: list[bytes], signers: list[bytes]) -> bytes:
    """ABI encoding of a signer-set change (kind 3; module doc). ``change`` is a name of
    :data:`SIGNER_CHANGES` (ValueError otherwise); addresses are 20 bytes; ``signers``
    is sorted here (ascending, the EIP-225 order)."""
    if change not in SIGNER_CHANGES:
        raise ValueError(f"signer-set change {change!r} is not a checkpoint record (one of {SIGNER_CHANGES})")
    return abi_encode(
        ["uint8", "uint64", "uint64", "bytes32", "uint32", "uint8", "address", "address[]", "address[]"],
        [KIND_SIGNERS, chain_id, block_number, block_hash, seq, SIGNER_CHANGES.index(change),
         signer if signer is not None else bytes(20), voters, sorted(signers)],
    )


def make_leaf(key: RecordKey, encoding: bytes) -> Leaf:
    """The :class:`Leaf` of a record from its key and canonical encoding."""
    return Leaf(key, record_leaf(encoding), crc32c(encoding))
