"""kill -9 of a real `edge run` process at random instants while blocks are produced:
after a restart the outbox equals one uninterrupted ingest of the same chain."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from edge.devnet.activity import Activity
from tests.conftest import corpus_codes, dump_outbox, eventually, ingest_to, make_config

KILLS = 14


def _write_config(path: Path, ws_url: str, chain_id: int) -> None:
    path.write_text(
        f'[node]\nws_url = "{ws_url}"\nchain_id = {chain_id}\nreconnect_max_s = 1.0\n\n'
        '[ingest]\nconfirmations = 3\nbatch_blocks = 3\n\n'
        '[outbox]\npath = "edge.sqlite"\n\n[log]\nlevel = "warning"\n\n[metrics]\nport = 0\n'
    )


async def _spawn(cfg: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge", "run", "--config", str(cfg), "--no-score", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


def _cursor(db: Path) -> int:
    if not db.exists():
        return -1
    con = sqlite3.connect(db, timeout=5)
    try:
        row = con.execute("SELECT block_number FROM cursor").fetchone()
        return int(row[0]) if row else -1
    except sqlite3.OperationalError:
        return -1
    finally:
        con.close()


async def _cursor_beyond(db: Path, last: int, proc: asyncio.subprocess.Process, timeout: float = 60.0) -> int:
    """Wait (bounded) until the agent's cursor in the outbox file passes ``last``, and
    return it; fail at once with its stderr if the agent died."""
    async def past() -> int | None:
        assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
        cur = _cursor(db)
        return cur if cur > last else None

    cur: int = await eventually(f"the agent's progress past block {last}", past, timeout)
    return cur


@pytest.mark.slow
async def test_kill9_at_random_instants_equals_uninterrupted_ingest(chain_factory, tmp_path: Path) -> None:
    rng = random.Random(20261122)
    chain = await chain_factory(block_time=0.25)
    act = Activity(chain)
    await act.setup()
    codes = corpus_codes(300)
    stop = asyncio.Event()

    async def drive() -> None:
        i = 0
        while not stop.is_set():
            await act.deploy(codes[i % 300:(i % 300) + 3])
            await act.spawn(codes[(i + 150) % 300:((i + 150) % 300) + 2])
            await act.crud_writes(8)
            await act.settle()
            i += 5

    driver = asyncio.create_task(drive())
    cfg = tmp_path / "edge.toml"
    db = tmp_path / "edge.sqlite"
    _write_config(cfg, chain.ws_url, chain.chain_id)
    cursors = []
    try:
        for _ in range(KILLS):
            proc = await _spawn(cfg)
            # kill at a random instant while the agent is making progress (after it has
            # written a block in this life), not while it is still starting up
            await _cursor_beyond(db, cursors[-1] if cursors else -1, proc)
            await asyncio.sleep(rng.uniform(0.0, 0.8))
            assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            cursors.append(_cursor(db))
    finally:
        stop.set()
        await driver
    await act.settle()
    await chain.rpc("evm_setIntervalMining", 0)  # freeze the chain
    head = int(await chain.rpc("eth_blockNumber"), 16)

    # the kills landed while the agent was making progress, not only during start-up
    assert len(set(cursors)) >= KILLS // 2, cursors
    proc = await _spawn(cfg, "--stop-at", str(head))
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]

    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh), head)
    got, want = dump_outbox(db), dump_outbox(fresh)
    # confirmation depends on the head seen at the time; everything else must be identical
    strip = lambda rows: [r[:-1] for r in rows]  # noqa: E731
    assert strip(got["blocks"]) == strip(want["blocks"])
    for table in ("logs", "contracts", "codes", "cursor"):
        assert got[table] == want[table], table
    assert len(got["contracts"]) == len(act.deployed) + 2
    assert len(got["logs"]) == act.logs
