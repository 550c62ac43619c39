"""An outbox written by an older agent opens in this one: its rows survive each migration
under the new column names, and the store's queries read them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.store import chain_data
from edge.store import checkpoints as cps
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


async def test_version_6_outbox_migrates_final_to_confirmed(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    con = _outbox_at(db, 6)
    # blocks 0..9 stored, 0..6 final (confirmations = 3 at head 9), cursor at 9
    con.executemany(
        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp, miner, tx_count, final)"
        " VALUES (?,?,?,?,?,?,?,?)",
        [(CHAIN, n, bytes([n]) * 32, bytes([n - 1 if n else 0]) * 32, 1000 + n, b"\x11" * 20, 0, int(n <= 6))
         for n in range(10)])
    con.execute("INSERT INTO cursor VALUES (?,?,?,?,?)", (CHAIN, 9, bytes([9]) * 32, 9, 1.0))
    con.close()

    async with Outbox(db) as ob:
        (version,) = await ob.fetchone("PRAGMA user_version")  # type: ignore[misc]
        counts = await chain_data.counts(ob, CHAIN)
        tip = await cps.confirmed_tip(ob, CHAIN)
    assert SCHEMA_VERSION >= 7 and version == SCHEMA_VERSION
    assert (counts.blocks, counts.confirmed_blocks) == (10, 7)
    assert tip == 6

    con = sqlite3.connect(db)
    try:
        cols = _columns(con, "blocks")
        assert "confirmed" in cols and "final" not in cols
        assert con.execute("SELECT number FROM blocks WHERE confirmed=1 ORDER BY number DESC LIMIT 1").fetchone() == (6,)
    finally:
        con.close()

