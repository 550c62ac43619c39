"""An outbox written by an older agent opens in this one: its rows survive each migration
under the new column names, and the store's queries read them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store import forwarding as fwd
from edge.store.db import APPLICATION_ID, Outbox
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

CHAIN = 7201


def _outbox_at(path: Path, version: int) -> sqlite3.Connection:
    """A database as an agent of schema ``version`` left it (its migrations only)."""
    con = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        con.executescript(f"BEGIN;\n{script}\nCOMMIT;")
    con.execute(f"PRAGMA user_version={version}")
    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
    return con


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in con.execute(f"PRAGMA table_info({table})")]


async def test_version_6_outbox_migrates_to_confirmed_and_last_block_hash(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    con = _outbox_at(db, 6)
    # blocks 0..9 stored, 0..6 final (confirmations = 3 at head 9), cursor at 9
    con.executemany(
        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp, miner, tx_count, final)"
        " VALUES (?,?,?,?,?,?,?,?)",
        [(CHAIN, n, bytes([n]) * 32, bytes([n - 1 if n else 0]) * 32, 1000 + n, b"\x11" * 20, 0, int(n <= 6))
         for n in range(10)])
    con.execute("INSERT INTO cursor VALUES (?,?,?,?,?)", (CHAIN, 9, bytes([9]) * 32, 9, 1.0))
    cp_id, last, root = b"\xc1" * 32, bytes([6]) * 32, b"\x7e" * 32
    con.execute("INSERT INTO checkpoints (id, chain_id, from_block, to_block, last_hash, root, leaves, created_at,"
                " state) VALUES (?,?,?,?,?,?,?,?,?)", (cp_id, CHAIN, 0, 6, last, root, 9, 1.0, "sealed"))
    con.execute("INSERT INTO anchors (id, chain_id, from_block, to_block, last_hash, root, locator, members, state,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", (cp_id, CHAIN, 0, 6, last, root, b"\x10" * 32, cp_id,
                                                              "queued", 1.0))
    con.execute("INSERT INTO attestations (id, device, chain_id, from_block, to_block, last_hash, root, signature,"
                " block_number, log_index) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (cp_id, "0x" + "22" * 20, CHAIN, 0, 6, last, root, b"\x01" * 65, 8, 0))
    con.close()

    async with Outbox(db) as ob:
        (version,) = await ob.fetchone("PRAGMA user_version")  # type: ignore[misc]
        counts = await chain_data.counts(ob, CHAIN)
        tip = await cps.confirmed_tip(ob, CHAIN)
        cp = await cps.get_checkpoint(ob, cp_id)
        anchor = await fwd.get_anchor(ob, cp_id)
    assert SCHEMA_VERSION >= 7 and version == SCHEMA_VERSION
    assert (counts.blocks, counts.confirmed_blocks) == (10, 7)
    assert tip == 6
    assert cp is not None and (cp.to_block, cp.last_block_hash, cp.root, cp.state) == (6, last, root, "sealed")
    assert anchor is not None and (anchor.last_block_hash, anchor.members) == (last, (cp_id,))

    con = sqlite3.connect(db)
    try:
        cols = _columns(con, "blocks")
        assert "confirmed" in cols and "final" not in cols
        for table in ("checkpoints", "anchors", "attestations"):
            cols = _columns(con, table)
            assert "last_block_hash" in cols and "last_hash" not in cols, table
        assert con.execute("SELECT last_block_hash FROM attestations").fetchall() == [(last,)]
        assert con.execute("SELECT number FROM blocks WHERE confirmed=1 ORDER BY number DESC LIMIT 1").fetchone() == (6,)
    finally:
        con.close()

