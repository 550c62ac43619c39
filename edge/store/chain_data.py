"""Outbox queries for chain data: the cursor (sync point), blocks, logs, contracts, codes.

The cursor and the records of the blocks it covers are always written in ONE
transaction (:func:`write_blocks`), and rolled back in one (:func:`rollback_to`): after
any crash the outbox holds exactly the records of blocks ``start..cursor``, never a
partial block. Inserts are idempotent (``INSERT OR IGNORE`` on the record keys).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from edge.chain.records import BlockBundle
from edge.store.clique import CliqueWrite, write_verdicts
from edge.store.db import DbTx, Outbox

__all__ = [
    "Cursor",
    "Counts",
    "get_cursor",
    "write_blocks",
    "rollback_to",
    "stored_hashes",
    "set_head",
    "add_alarm",
    "counts",
]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The sync point of one chain: last fully written block, its hash, newest head seen."""

    chain_id: int
    block_number: int
    block_hash: bytes
    head: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class Counts:
    """Row counts of one chain's records in the outbox (for ``edge status``)."""

    blocks: int
    confirmed_blocks: int
    logs: int
    contracts: int
    codes: int
    scored: int
    flagged: int
    alarms: int


async def get_cursor(ob: Outbox, chain_id: int) -> Cursor | None:
    """The cursor of ``chain_id``, or None before the first block was written."""
    row = await ob.fetchone(
        "SELECT chain_id, block_number, block_hash, head, updated_at FROM cursor WHERE chain_id=?",
        (chain_id,),
    )
    return Cursor(*row) if row else None


async def write_blocks(
    ob: Outbox, chain_id: int, bundles: Sequence[BlockBundle], head: int, confirmations: int,
    clique: CliqueWrite | None = None,
) -> None:
    """Write consecutive blocks and all their records, move the cursor, mark confirmations.

    One transaction: either all of ``bundles`` and the new cursor are stored, or none.

    Args:
        chain_id: chain of the blocks.
        bundles: consecutive blocks in ascending order (may be empty: then only the head
            and confirmations are updated).
        head: the newest block number the node reported.
        confirmations: a block is confirmed once ``head - number >= confirmations``.
        clique: the Clique verdicts of these blocks (snapshots, signer-set changes,
            alarms; :func:`edge.store.clique.write_verdicts`), written in the same
            transaction; None when the chain is not followed as Clique.

    Raises:
        OutboxFull / OutboxError: from the transaction (rolled back whole).
    """
    now = time.time()
    async with ob.transaction() as tx:
        if bundles:
            await tx.executemany(
                "INSERT OR REPLACE INTO blocks (chain_id, number, hash, parent_hash, timestamp,"
                " miner, sealer, seal_ok, tx_count, confirmed) VALUES (?,?,?,?,?,?,?,?,?,0)",
                [
                    (
                        chain_id,
                        b.block.number,
                        b.block.hash,
                        b.block.parent_hash,
                        b.block.timestamp,
                        b.block.miner,
                        b.block.sealer,
                        None if b.block.seal_ok is None else int(b.block.seal_ok),
                        b.block.tx_count,
                    )
                    for b in bundles
                ],
            )
            await tx.executemany(
                "INSERT OR IGNORE INTO logs (chain_id, block_number, tx_index, log_index, tx_hash,"
                " address, topics, data) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        chain_id,
                        lg.block_number,
                        lg.tx_index,
                        lg.log_index,
                        lg.tx_hash,
                        lg.address,
                        b"".join(lg.topics),
                        lg.data,
                    )
                    for b in bundles
                    for lg in b.logs
                ],
            )
            contracts = [c for b in bundles for c in b.contracts]
            await tx.executemany(
                "INSERT OR IGNORE INTO codes (code_hash, code, size) VALUES (?,?,?)",
                [(c.code_hash, c.code, len(c.code)) for c in contracts],
            )
            await tx.executemany(
                "INSERT OR IGNORE INTO contracts (chain_id, block_number, tx_index, create_index,"
                " tx_hash, address, creator, code_hash, code_size, oversize)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        chain_id,
                        c.block_number,
                        c.tx_index,
                        c.create_index,
                        c.tx_hash,
                        c.address,
                        c.creator,
                        c.code_hash,
                        len(c.code),
                        int(c.oversize),
                    )
                    for c in contracts
                ],
            )
            last = bundles[-1].block
            await tx.execute(
                "INSERT INTO cursor (chain_id, block_number, block_hash, head, updated_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT(chain_id) DO UPDATE SET"
                " block_number=excluded.block_number, block_hash=excluded.block_hash,"
                " head=excluded.head, updated_at=excluded.updated_at",
                (chain_id, last.number, last.hash, head, now),
            )
            if clique is not None:
                await write_verdicts(tx, chain_id, clique)
        else:
            await tx.execute(
                "UPDATE cursor SET head=?, updated_at=? WHERE chain_id=?", (head, now, chain_id)
            )
        await _mark_confirmed(tx, chain_id, head - confirmations)


async def _mark_confirmed(tx: DbTx, chain_id: int, upto: int) -> None:
    await tx.execute(
        "UPDATE blocks SET confirmed=1 WHERE chain_id=? AND confirmed=0 AND number<=?", (chain_id, upto)
    )


async def set_head(ob: Outbox, chain_id: int, head: int, confirmations: int) -> None:
    """Record the newest head seen and mark blocks confirmed accordingly (one transaction)."""
    await write_blocks(ob, chain_id, (), head, confirmations)


async def stored_hashes(ob: Outbox, chain_id: int, lo: int, hi: int) -> dict[int, bytes]:
    """Hashes of the stored blocks ``lo..hi`` (inclusive) of ``chain_id``, by number."""
    rows = await ob.fetchall(
        "SELECT number, hash FROM blocks WHERE chain_id=? AND number BETWEEN ? AND ?",
        (chain_id, lo, hi),
    )
    return {int(n): bytes(h) for n, h in rows}


async def rollback_to(ob: Outbox, chain_id: int, number: int) -> tuple[int, int]:
    """Undo every block above ``number`` with its records, and move the cursor back.

    Used on a reorg: afterwards the outbox holds blocks up to ``number`` only, with their
    Clique snapshots and signer-set changes (alarms are events and are kept) (if
    ``number`` is below the first stored block, the cursor is removed and ingest starts
    again from the configured start block). One transaction.

    Returns:
        ``(blocks_removed, confirmed_blocks_removed)``; the second is > 0 only for a reorg
        deeper than the confirmation depth, which the caller must report as an alarm.
    """
    async with ob.transaction() as tx:
        row = await tx.fetchone(
            "SELECT count(*), coalesce(sum(confirmed), 0) FROM blocks WHERE chain_id=? AND number>?",
            (chain_id, number),
        )
        removed, confirmed_removed = (int(row[0]), int(row[1])) if row else (0, 0)
        for table, col in (("logs", "block_number"), ("contracts", "block_number"), ("blocks", "number"),
                           ("clique_snapshots", "number"), ("signer_changes", "block_number")):
            await tx.execute(f"DELETE FROM {table} WHERE chain_id=? AND {col}>?", (chain_id, number))
        kept = await tx.fetchone(
            "SELECT hash FROM blocks WHERE chain_id=? AND number=?", (chain_id, number)
        )
        if kept is None:
            await tx.execute("DELETE FROM cursor WHERE chain_id=?", (chain_id,))
        else:
            await tx.execute(
                "UPDATE cursor SET block_number=?, block_hash=?, updated_at=? WHERE chain_id=?",
                (number, kept[0], time.time(), chain_id),
            )
    return removed, confirmed_removed


async def add_alarm(
    ob: Outbox, chain_id: int, block_number: int | None, kind: str, detail: str
) -> None:
    """Store an alarm (``kind``: e.g. ``foreign_sealer``, ``deep_reorg``) for operators."""
    async with ob.transaction() as tx:
        await tx.execute(
            "INSERT INTO alarms (chain_id, block_number, kind, detail, at) VALUES (?,?,?,?,?)",
            (chain_id, block_number, kind, detail, time.time()),
        )


async def counts(ob: Outbox, chain_id: int) -> Counts:
    """Row counts for ``edge status`` (one consistent read)."""
    row = await ob.fetchone(
        "SELECT"
        " (SELECT count(*) FROM blocks WHERE chain_id=:c),"
        " (SELECT count(*) FROM blocks WHERE chain_id=:c AND confirmed=1),"
        " (SELECT count(*) FROM logs WHERE chain_id=:c),"
        " (SELECT count(*) FROM contracts WHERE chain_id=:c),"
        " (SELECT count(DISTINCT code_hash) FROM contracts WHERE chain_id=:c),"
        " (SELECT count(DISTINCT s.code_hash) FROM scores s JOIN contracts k"
        "   ON k.code_hash = s.code_hash WHERE k.chain_id=:c),"
        " (SELECT count(DISTINCT s.code_hash) FROM scores s JOIN contracts k"
        "   ON k.code_hash = s.code_hash WHERE k.chain_id=:c AND s.flagged=1),"
        " (SELECT count(*) FROM alarms WHERE chain_id=:c)",
        {"c": chain_id},  # type: ignore[arg-type]
    )
    assert row is not None
    return Counts(*(int(x) for x in row))


async def block_timestamp(ob: Outbox, chain_id: int, number: int) -> int | None:
    """The stored timestamp (seconds since the epoch) of block ``number``, or None."""
    row = await ob.fetchone("SELECT timestamp FROM blocks WHERE chain_id=? AND number=?", (chain_id, number))
    return int(row[0]) if row else None
