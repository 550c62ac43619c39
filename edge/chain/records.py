"""Records of the local chain that the agent carries out (plain, frozen dataclasses).

A record's key is ``(chain_id, block_number, tx_index, index)`` where ``index`` is the
block-wide ``logIndex`` for a :class:`LogRecord` and the creation ordinal inside the
transaction for a :class:`ContractRecord` (see ``edge.store.schema``). Hashes are 32
raw bytes, addresses 20 raw bytes; block numbers and indexes are non-negative ints.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EIP170_MAX_CODE_SIZE", "BlockRecord", "LogRecord", "ContractRecord", "BlockBundle"]

EIP170_MAX_CODE_SIZE = 24_576
"""Maximum runtime code size in bytes (EIP-170, Spurious Dragon)."""


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A canonical block header summary.

    Attributes:
        number: block number. hash / parent_hash: 32 bytes. timestamp: seconds since epoch.
        miner: 20-byte coinbase. tx_count: transactions in the block.
        sealer: 20-byte address recovered from the PoA seal, or None (no seal / check off).
        seal_ok: True/False when the sealer was checked against the authority set, else None.
    """

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    miner: bytes
    tx_count: int
    sealer: bytes | None = None
    seal_ok: bool | None = None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event log of a canonical block (from the block's receipts).

    Attributes:
        block_number, tx_index, log_index: the record key (log_index is block-wide).
        tx_hash: 32 bytes. address: 20-byte emitter. topics: 0-4 topics of 32 bytes each.
        data: the non-indexed data (any length).
    """

    block_number: int
    tx_index: int
    log_index: int
    tx_hash: bytes
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class ContractRecord:
    """One contract deployment (top-level or created by a contract).

    Attributes:
        block_number, tx_index, create_index: the record key.
        tx_hash: 32 bytes. address: 20-byte new contract. creator: 20-byte sender (top
        level) or creating contract (internal).
        code: runtime bytecode at the end of the block: ``eth_getCode`` at the block, or
            (outside ``ingest.verify = "strict"``) the code the creation's trace returned,
            where that is the same (:attr:`edge.chain.extract.Creation.code`).
        code_hash: keccak256 of ``code`` (the EXTCODEHASH value), 32 bytes.
    """

    block_number: int
    tx_index: int
    create_index: int
    tx_hash: bytes
    address: bytes
    creator: bytes
    code: bytes
    code_hash: bytes

    @property
    def oversize(self) -> bool:
        """True when the runtime is larger than EIP-170 allows (24,576 bytes)."""
        return len(self.code) > EIP170_MAX_CODE_SIZE


@dataclass(frozen=True, slots=True)
class BlockBundle:
    """Everything extracted from one block: its header summary, logs and deployments."""

    block: BlockRecord
    logs: tuple[LogRecord, ...]
    contracts: tuple[ContractRecord, ...]
