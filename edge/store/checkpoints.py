"""Outbox queries for checkpoints: the leaves of a block range, checkpoint rows, states.

A checkpoint row is inserted in the same transaction that checks its range is fully
ingested and confirmed, so a checkpoint never covers a block the outbox does not hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.evidence.leaves import (
    KIND_BLOCK,
    KIND_CONTRACT,
    KIND_LOG,
    KIND_SIGNERS,
    Finding,
    Leaf,
    RecordKey,
    encode_block,
    encode_contract,
    encode_log,
    encode_signer_change,
    make_leaf,
)
from edge.store.clique import signer_changes
from edge.store.db import DbTx, Outbox

__all__ = ["CheckpointRow", "Finding", "range_leaves", "range_findings", "last_checkpoint_end",
           "confirmed_tip", "insert_checkpoint", "checkpoints_in_state", "set_checkpoint_state",
           "get_checkpoint"]


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A stored checkpoint: id (32 bytes), chain id, inclusive block range, hash of the last
    block, Merkle root, number of leaves, forwarding state, locator, anchor unit id."""

    id: bytes
    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes
    leaves: int
    state: str
    locator: bytes | None
    anchor_id: bytes | None


_COLS = "id, chain_id, from_block, to_block, last_block_hash, root, leaves, state, locator, anchor_id"


def _row(r: Sequence[Any]) -> CheckpointRow:
    return CheckpointRow(bytes(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4]), bytes(r[5]), int(r[6]),
                         str(r[7]), bytes(r[8]) if r[8] is not None else None,
                         bytes(r[9]) if r[9] is not None else None)


async def range_leaves(ob: Outbox | DbTx, chain_id: int, lo: int, hi: int) -> list[Leaf]:
    """Leaves of every record of blocks ``lo..hi`` (inclusive) in key order: headers,
    deployments, logs and the Clique signer-set changes (not the ``start`` records)."""
    out: list[Leaf] = []
    hashes: dict[int, bytes] = {}
    for n, h, ph, ts, miner, txc in await ob.fetchall(
        "SELECT number, hash, parent_hash, timestamp, miner, tx_count FROM blocks"
        " WHERE chain_id=? AND number BETWEEN ? AND ?", (chain_id, lo, hi)):
        hashes[n] = bytes(h)
        out.append(make_leaf(RecordKey(n, KIND_BLOCK, 0, 0),
                             encode_block(chain_id, n, bytes(h), bytes(ph), ts, bytes(miner), txc)))
    for n, ti, ci, txh, addr, creator, ch in await ob.fetchall(
        "SELECT block_number, tx_index, create_index, tx_hash, address, creator, code_hash FROM contracts"
        " WHERE chain_id=? AND block_number BETWEEN ? AND ?", (chain_id, lo, hi)):
        out.append(make_leaf(RecordKey(n, KIND_CONTRACT, ti, ci),
                             encode_contract(chain_id, n, hashes[n], ti, ci, bytes(txh), bytes(addr),
                                             bytes(creator), bytes(ch))))
    for n, ti, li, txh, addr, topics, data in await ob.fetchall(
        "SELECT block_number, tx_index, log_index, tx_hash, address, topics, data FROM logs"
        " WHERE chain_id=? AND block_number BETWEEN ? AND ?", (chain_id, lo, hi)):
        t = bytes(topics)
        out.append(make_leaf(RecordKey(n, KIND_LOG, ti, li),
                             encode_log(chain_id, n, hashes[n], ti, li, bytes(txh), bytes(addr),
                                        [t[i:i + 32] for i in range(0, len(t), 32)], bytes(data))))
    for c in await signer_changes(ob, chain_id, lo, hi, with_start=False):
        out.append(make_leaf(RecordKey(c.block_number, KIND_SIGNERS, 0, c.seq),
                             encode_signer_change(chain_id, c.block_number, c.block_hash, c.seq, c.kind, c.address,
                                                  list(c.voters), list(c.signers))))
    out.sort(key=lambda lf: lf.key.sort_key)
    return out


async def range_findings(ob: Outbox, chain_id: int, lo: int, hi: int) -> list[Finding]:
    """Risk findings (latest score per code, and the code's capability flags: None when no
    capability report is stored) of the deployments of blocks ``lo..hi``."""
    rows = await ob.fetchall(
        "SELECT c.block_number, c.tx_index, c.create_index, c.address, c.code_hash, s.score, s.flagged,"
        " s.model_id, a.flags FROM contracts c LEFT JOIN scores s ON s.code_hash = c.code_hash"
        " LEFT JOIN capabilities a ON a.code_hash = c.code_hash"
        " WHERE c.chain_id=? AND c.block_number BETWEEN ? AND ?"
        " ORDER BY c.block_number, c.tx_index, c.create_index, s.scored_at DESC", (chain_id, lo, hi))
    seen: set[tuple[int, int, int]] = set()
    out: list[Finding] = []
    for n, ti, ci, addr, ch, score, flagged, model, flags in rows:
        if (n, ti, ci) in seen:
            continue
        seen.add((n, ti, ci))
        out.append(Finding(RecordKey(n, KIND_CONTRACT, ti, ci), bytes(addr), bytes(ch),
                           None if score is None else float(score), bool(flagged), model,
                           None if flags is None else tuple(str(f) for f in json.loads(flags))))
    return out


async def last_checkpoint_end(ob: Outbox | DbTx, chain_id: int) -> int | None:
    """``to_block`` of the newest checkpoint of ``chain_id``, or None."""
    row = await ob.fetchone("SELECT max(to_block) FROM checkpoints WHERE chain_id=?", (chain_id,))
    return int(row[0]) if row and row[0] is not None else None


async def confirmed_tip(ob: Outbox | DbTx, chain_id: int) -> int | None:
    """Highest block that is stored, confirmed, and below the cursor (contiguous), or None."""
    row = await ob.fetchone(
        "SELECT max(b.number) FROM blocks b JOIN cursor c ON c.chain_id = b.chain_id"
        " WHERE b.chain_id=? AND b.confirmed=1 AND b.number <= c.block_number", (chain_id,))
    return int(row[0]) if row and row[0] is not None else None


async def insert_checkpoint(tx: DbTx, cp: CheckpointRow) -> None:
    """Insert a checkpoint (state ``sealed``) inside the caller's transaction."""
    await tx.execute(
        f"INSERT INTO checkpoints ({_COLS}, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (cp.id, cp.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root, cp.leaves, cp.state,
         cp.locator, cp.anchor_id, time.time()),
    )


async def checkpoints_in_state(ob: Outbox | DbTx, state: str, chain_id: int | None = None) -> list[CheckpointRow]:
    """Checkpoints in ``state``, oldest range first."""
    if chain_id is None:
        rows = await ob.fetchall(f"SELECT {_COLS} FROM checkpoints WHERE state=? ORDER BY from_block", (state,))
    else:
        rows = await ob.fetchall(
            f"SELECT {_COLS} FROM checkpoints WHERE state=? AND chain_id=? ORDER BY from_block", (state, chain_id))
    return [_row(r) for r in rows]


async def get_checkpoint(ob: Outbox | DbTx, cp_id: bytes) -> CheckpointRow | None:
    """One checkpoint by id, or None."""
    r = await ob.fetchone(f"SELECT {_COLS} FROM checkpoints WHERE id=?", (cp_id,))
    return _row(r) if r else None


async def set_checkpoint_state(tx: DbTx, cp_id: bytes, state: str, *, locator: bytes | None = None,
                               anchor_id: bytes | None = None) -> None:
    """Move a checkpoint to ``state`` (optionally setting locator / anchor id)."""
    await tx.execute(
        "UPDATE checkpoints SET state=?, locator=coalesce(?, locator), anchor_id=coalesce(?, anchor_id)"
        " WHERE id=?", (state, locator, anchor_id, cp_id))


# -- on-demand sync requests (``edge sync-now``, the GPIO button) ------------------------


async def add_sync_request(ob: Outbox, now: float) -> int:
    """Record a request for an on-demand checkpoint at wall time ``now`` (s); returns its id."""
    async with ob.transaction() as tx:
        await tx.execute("INSERT INTO sync_requests (requested_at) VALUES (?)", (now,))
        row = await tx.fetchone("SELECT last_insert_rowid()")
    assert row is not None
    return int(row[0])


async def sync_requested(tx: DbTx) -> bool:
    """True while an on-demand checkpoint request is open."""
    row = await tx.fetchone("SELECT count(*) FROM sync_requests WHERE done_at IS NULL")
    return bool(row and row[0])


async def close_sync_requests(tx: DbTx, now: float) -> None:
    """Mark every open sync request done at wall time ``now`` (s)."""
    await tx.execute("UPDATE sync_requests SET done_at=? WHERE done_at IS NULL", (now,))


async def block_hash_at(ob: Outbox | DbTx, chain_id: int, number: int) -> bytes | None:
    """The stored 32-byte hash of block ``number``, or None when it is not stored."""
    row = await ob.fetchone("SELECT hash FROM blocks WHERE chain_id=? AND number=?", (chain_id, number))
    return bytes(row[0]) if row else None


async def created_at_in_state(ob: Outbox | DbTx, chain_id: int, state: str) -> dict[bytes, float]:
    """When each checkpoint of ``chain_id`` now in ``state`` was cut (wall seconds), by id."""
    rows = await ob.fetchall("SELECT id, created_at FROM checkpoints WHERE chain_id=? AND state=?", (chain_id, state))
    return {bytes(i): float(t) for i, t in rows}
