"""The forward stage's state in the outbox: uploads to the testnets and mainnet anchors.

Tables (:mod:`edge.store.schema`): ``uploads`` (one row per stored blob: checkpoint or
anchor id ``ref``, ``part`` (-1 for a manifest), testnet chain id, CrudStore address,
32-byte key, bytes, the tx that carries it) and ``anchors`` (one row per mainnet anchor:
a checkpoint alone or a batch, its range, root, locator, the 32-byte member ids
concatenated, state ``uploading | signing | sending | anchored | failed``, its tx).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.store.db import DbTx, Outbox

__all__ = [
    "UploadRow", "AnchorRow", "unanchored_count", "add_uploads", "upload_txs", "uploads_of",
    "insert_anchor", "open_anchors", "get_anchor", "set_anchor_state", "drop_uploads", "anchors_in_states",
]


@dataclass(frozen=True, slots=True)
class UploadRow:
    """One blob to store on a testnet (see the module doc)."""

    part: int
    chain_id: int
    store: bytes
    key: bytes
    data: bytes
    tx_id: int


@dataclass(frozen=True, slots=True)
class AnchorRow:
    """One mainnet anchor (see the module doc); ``members`` are the 32-byte checkpoint ids."""

    id: bytes
    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes
    locator: bytes
    members: tuple[bytes, ...]
    state: str
    tx_id: int | None


async def unanchored_count(ob: Outbox, chain_id: int) -> int:
    """Checkpoints of ``chain_id`` not yet anchored."""
    row = await ob.fetchone("SELECT count(*) FROM checkpoints WHERE chain_id=? AND state != 'anchored'", (chain_id,))
    return int(row[0]) if row else 0


async def add_uploads(tx: DbTx, ref: bytes, rows: Sequence[UploadRow]) -> None:
    """Record the blobs of ``ref`` with their tx, inside the caller's transaction (with the
    tx intent that carries them); a re-queued blob replaces its row."""
    await tx.executemany(
        "INSERT OR REPLACE INTO uploads (checkpoint_id, part, chain_id, store, key, data, tx_id)"
        " VALUES (?,?,?,?,?,?,?)", [(ref, r.part, r.chain_id, r.store, r.key, r.data, r.tx_id) for r in rows])


async def upload_txs(ob: Outbox, ref: bytes) -> list[tuple[int, int]]:
    """The distinct ``(chain id, tx id)`` carrying the blobs of ``ref``."""
    return [(int(c), int(t)) for c, t in
            await ob.fetchall("SELECT DISTINCT chain_id, tx_id FROM uploads WHERE checkpoint_id=?", (ref,))]


async def uploads_of(ob: Outbox, ref: bytes) -> list[UploadRow]:
    """Every blob of ``ref``, by chain and part."""
    rows = await ob.fetchall("SELECT part, chain_id, store, key, data, tx_id FROM uploads WHERE checkpoint_id=?"
                             " ORDER BY chain_id, part", (ref,))
    return [UploadRow(int(p), int(c), bytes(s), bytes(k), bytes(d), int(t)) for p, c, s, k, d, t in rows]


async def drop_uploads(tx: DbTx, ref: bytes) -> None:
    """Forget every blob of ``ref`` (its upload starts over, re-encrypted)."""
    await tx.execute("DELETE FROM uploads WHERE checkpoint_id=?", (ref,))


async def insert_anchor(tx: DbTx, a: AnchorRow, now: float) -> None:
    """Insert anchor ``a`` (no tx yet) inside the caller's transaction."""
    await tx.execute(
        "INSERT INTO anchors (id, chain_id, from_block, to_block, last_block_hash, root, locator, members,"
        " state, tx_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,NULL,?)",
        (a.id, a.chain_id, a.from_block, a.to_block, a.last_block_hash, a.root, a.locator, b"".join(a.members),
         a.state, now))


def _anchor(r: Sequence[Any]) -> AnchorRow:
    members = bytes(r[7])
    return AnchorRow(bytes(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4]), bytes(r[5]), bytes(r[6]),
                     tuple(members[i:i + 32] for i in range(0, len(members), 32)), str(r[8]),
                     None if r[9] is None else int(r[9]))


_COLS = "id, chain_id, from_block, to_block, last_block_hash, root, locator, members, state, tx_id"


async def open_anchors(ob: Outbox, chain_id: int) -> list[AnchorRow]:
    """Anchors of ``chain_id`` not yet ``anchored``, oldest range first."""
    return [_anchor(r) for r in await ob.fetchall(
        f"SELECT {_COLS} FROM anchors WHERE chain_id=? AND state != 'anchored' ORDER BY from_block", (chain_id,))]


async def get_anchor(ob: Outbox | DbTx, anchor_id: bytes) -> AnchorRow | None:
    """Anchor ``anchor_id``, or None."""
    r = await ob.fetchone(f"SELECT {_COLS} FROM anchors WHERE id=?", (anchor_id,))
    return None if r is None else _anchor(r)


async def set_anchor_state(tx: DbTx, anchor_id: bytes, state: str, *, tx_id: int | None = None,
                           only_from: str | None = None) -> None:
    """Move anchor ``anchor_id`` to ``state`` (recording its mainnet tx when given; only
    while it is in state ``only_from`` when given)."""
    cond = "" if only_from is None else " AND state=?"
    extra: tuple[str, ...] = () if only_from is None else (only_from,)
    if tx_id is None:
        await tx.execute(f"UPDATE anchors SET state=? WHERE id=?{cond}", (state, anchor_id, *extra))
    else:
        await tx.execute(f"UPDATE anchors SET state=?, tx_id=? WHERE id=?{cond}", (state, tx_id, anchor_id, *extra))


async def anchors_in_states(ob: Outbox, chain_id: int, states: Sequence[str]) -> list[tuple[bytes, str]]:
    """``(id, state)`` of the anchors of ``chain_id`` in ``states``, oldest range first."""
    marks = ",".join("?" * len(states))
    rows = await ob.fetchall(f"SELECT id, state FROM anchors WHERE chain_id=? AND state IN ({marks}) ORDER BY from_block",
                             (chain_id, *states))
    return [(bytes(i), str(s)) for i, s in rows]
