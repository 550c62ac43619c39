"""Forwarding survives kill -9 at random instants (one anchor per checkpoint, no nonce
gap, nothing lost) and a testnet that goes down for a while (backlog kept, sent in order)."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from edge.devnet.anvil import TierSpec
from edge.rpc.http import HttpRpc
from tests.conftest import corpus_codes
from tests.test_forward import FAST_TIERS, run_until_anchored, start_net
from tests.test_crash import _cursor_beyond

KILLS = 30


def _states(db: Path) -> dict[str, int]:
    if not db.exists():  # connecting would create a 0-byte file, which the agent refuses
        return {}
    con = sqlite3.connect(db, timeout=5)
    try:
        return dict(con.execute("SELECT state, count(*) FROM checkpoints GROUP BY state").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


async def _entered(db: Path, state: str, before: dict[str, int], proc: asyncio.subprocess.Process,
                   timeout: float = 90.0) -> bool:
    """True once more checkpoints are in ``state`` in the outbox file than ``before`` said
    (read every 20 ms: another process's SQLite file offers no notification); False after
    ``timeout`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if _states(db).get(state, 0) > before.get(state, 0):
            return True
        assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
        await asyncio.sleep(0.02)
    return False


async def _anchored_events(net) -> list:  # type: ignore[no-untyped-def]
    async with net.auditor() as a:
        return await a.anchored()


@pytest.mark.slow
async def test_kill9_during_forwarding(tmp_path: Path) -> None:
    rng = random.Random(7)
    net, act = await start_net(tmp_path)
    try:
        codes = corpus_codes(60)
        stop = asyncio.Event()

        async def drive() -> None:
            i = 0
            while not stop.is_set():
                await act.deploy(codes[i % 60:i % 60 + 2])
                await act.crud_writes(10)
                await act.settle()
                i += 2

        driver = asyncio.create_task(drive())
        cfg_path = tmp_path / "edge.toml"
        seen_states = []
        last = -1
        try:
            for life in range(KILLS):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "edge", "run", "--config", str(cfg_path), "--no-score",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                # kill once this life has written a block (not during start-up); until kills
                # have hit uploading and then anchoring, every other life right after a
                # checkpoint entered that state in it, the others at a random instant: the
                # kills hit every phase of forwarding however fast this machine is
                before = _states(tmp_path / "edge.sqlite")
                last = await _cursor_beyond(tmp_path / "edge.sqlite", last, proc)
                missed = [p for p in ("uploading", "anchoring") if p not in {s for st in seen_states for s in st}]
                if life % 2 or not missed or \
                        not await _entered(tmp_path / "edge.sqlite", missed[0], before, proc):
                    await asyncio.sleep(rng.uniform(0.3, 2.0))
                assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                seen_states.append(_states(tmp_path / "edge.sqlite"))
        finally:
            stop.set()
            await driver
        # kills hit every phase of forwarding
        phases = {s for st in seen_states for s in st}
        assert {"uploading", "anchoring"} <= phases | {"anchored"}, seen_states
        # a last, uninterrupted run anchors the whole backlog
        before = _states(tmp_path / "edge.sqlite")
        n_cut = sum(before.values())
        await run_until_anchored(net.cfg, act, n=max(1, n_cut - before.get("anchored", 0)), timeout=180)
        events = await _anchored_events(net)
        ids = [e.id for e in events]
        assert len(ids) == len(set(ids)), "a checkpoint was anchored twice"
        con = sqlite3.connect(tmp_path / "edge.sqlite")
        anchored = {bytes(r[0]) for r in con.execute("SELECT id FROM checkpoints WHERE state='anchored'")}
        ranges = sorted(con.execute("SELECT from_block, to_block FROM checkpoints").fetchall())
        con.close()
        assert anchored <= set(ids) and len(anchored) >= n_cut
        assert ranges == [(k, k + 3) for k in range(0, 4 * len(ranges), 4)], "a checkpoint was lost"
        # no nonce gap on any public chain: everything the device signed gets mined (the last
        # one may still sit in the node's pool for a block when the agent stops)
        for c in net.cfg.forward.testnets + (net.cfg.forward.mainnet,):  # type: ignore[operator]
            async with HttpRpc(c.url) as rpc:
                for _ in range(50):
                    latest = int(await rpc.call("eth_getTransactionCount", [net.device, "latest"]), 16)
                    pending = int(await rpc.call("eth_getTransactionCount", [net.device, "pending"]), 16)
                    if latest == pending:
                        break
                    await asyncio.sleep(0.2)
            con = sqlite3.connect(tmp_path / "edge.sqlite")
            rows = con.execute("SELECT nonce, state FROM txs WHERE chain_id=? AND nonce IS NOT NULL"
                               " ORDER BY nonce", (c.chain_id,)).fetchall()
            con.close()
            nonces = [n for n, _ in rows]
            assert latest == pending, (c.chain_id, latest, pending)
            assert nonces == list(range(len(nonces))), (c.chain_id, nonces)  # no gap, none twice
            # what the agent had signed but not yet seen mined when it was stopped stays in
            # the outbox to go out at its next start (at most the one in flight): never lost
            kept = [(n, st) for n, st in rows if n >= latest]
            assert len(kept) <= 1 and all(st in ("signed", "sent") for _, st in kept), (c.chain_id, latest, kept)
        verdicts = await net.verdicts(local=True)  # `edge verify --local`: re-read from the PoA chain
        assert verdicts and all(v.ok and v.local_checked for v in verdicts.values()), \
            [v.reasons for v in verdicts.values() if not v.ok]
    finally:
        await net.chains.__aexit__(None, None, None)


@pytest.mark.slow
async def test_testnet_down_backlog_is_kept_and_sent_in_order(tmp_path: Path) -> None:
    state = tmp_path / "testnet-b.state"
    tiers = tuple(TierSpec(t.name, t.chain_id, t.block_time, ("--state", str(state)))
                  if t.name == "testnet-b" else t for t in FAST_TIERS)
    net, act = await start_net(tmp_path, tiers=tiers)
    try:
        await run_until_anchored(net.cfg, act, 2)
        before = len(await _anchored_events(net))
        await net.chains["testnet-b"].stop()  # dumps its state, as a node that is restarted later

        from edge.agent import Agent

        async with Agent(net.cfg, score=False) as agent:
            task = asyncio.create_task(agent.run())
            codes = corpus_codes(20)
            for i in range(8):
                await act.deploy(codes[i:i + 1])
                await act.crud_writes(5)
                await act.settle()
                await asyncio.sleep(0.5)
            assert not task.done()
            await asyncio.sleep(3)
            backlog = await agent.forwarder.backlog()
            assert backlog >= 2, "checkpoints wait while a testnet is down"
            assert len(await _anchored_events(net)) <= before + 1  # nothing new gets through
            await net.chains["testnet-b"].start()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while await agent.forwarder.backlog() > 1:  # the newest may still be in flight
                assert loop.time() < deadline
                if task.done():
                    task.result()
                await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        events = await _anchored_events(net)
        assert len(events) >= before + backlog - 1
        starts = [e.from_block for e in events]
        assert starts == sorted(starts), "anchored in checkpoint order"
        verdicts = await net.verdicts()
        assert all(v.ok for v in verdicts.values())
    finally:
        await net.chains.__aexit__(None, None, None)
