"""Ingest against real anvil nodes: completeness, reorgs, node restarts, oversize code,
backpressure. No mocked JSON-RPC: every answer comes from a real node."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChain
from edge.agent import Agent
from edge.store.db import Outbox
from tests.conftest import corpus_codes, dump_outbox, ingest_to, make_config, mine_all, running, until

BIG_BLOCKS = ("--no-mining", "--gas-limit", "300000000")


@pytest.mark.slow
async def test_500_real_contracts_and_1000_logs_each_found_once(chain_factory, tmp_path: Path) -> None:
    chain = await chain_factory(extra_args=BIG_BLOCKS)
    act = Activity(chain)
    await act.setup(mine=True)
    codes = corpus_codes(520)
    assert len(set(codes)) == len(codes)
    # half top-level deployments, half created by a contract (found through trace_block)
    for i in range(0, 260, 20):
        await act.deploy(codes[i:i + 20])
        await act.spawn(codes[260 + i:260 + i + 20])
        await act.crud_writes(80)
        await mine_all(chain)
        await act.settle()
    head = await mine_all(chain)
    assert act.failed == 0
    assert len(act.deployed) == 520 and act.logs >= 1000

    db = tmp_path / "edge.sqlite"
    agent = await ingest_to(make_config(chain, db, ingest={"batch_blocks": 7}), head)
    assert agent.stats.cursor == head

    con = sqlite3.connect(db)
    rows = con.execute("SELECT address, code_hash, create_index FROM contracts").fetchall()
    by_addr: dict[bytes, list[bytes]] = {}
    for a, h, _ in rows:
        by_addr.setdefault(bytes(a), []).append(bytes(h))
    # every deployment exactly once with the right code hash (+ CrudStore and Spawner)
    for addr, d in act.deployed.items():
        assert by_addr.get(addr) == [d.code_hash], addr.hex()
    assert len(rows) == len(act.deployed) + 2
    assert {r[2] for r in rows} >= set(range(20)), "internal creations carry their ordinal"
    log_keys = set(con.execute("SELECT block_number, log_index FROM logs").fetchall())
    assert log_keys == act.log_keys
    assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == act.logs
    assert con.execute("SELECT count(*) FROM blocks").fetchone()[0] == head + 1
    con.close()


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
async def test_reorg_leaves_only_canonical_records(chain_factory, tmp_path: Path, depth: int) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    act = Activity(chain)
    await act.setup(mine=True)
    codes = corpus_codes(40)
    for i in range(8):
        await act.deploy(codes[i * 2:i * 2 + 2])
        await act.crud_writes(5)
        await chain.rpc("evm_mine")
    await act.settle()
    head = int(await chain.rpc("eth_blockNumber"), 16)
    db = tmp_path / "edge.sqlite"
    cfg = make_config(chain, db, ingest={"confirmations": 8})
    await ingest_to(cfg, head)
    before = dump_outbox(db)

    # replace the last `depth` blocks with blocks holding other transactions
    await chain.rpc("anvil_rollback", depth)
    await act.use_account(1)
    await act.deploy(codes[20:20 + depth])
    await act.crud_writes(3)
    for _ in range(depth + 1):
        await chain.rpc("evm_mine")
    new_head = int(await chain.rpc("eth_blockNumber"), 16)
    agent = await ingest_to(cfg, new_head)
    assert agent.stats.reorgs >= 1 and agent.stats.rolled_back == depth

    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh, ingest={"confirmations": 8}), new_head)
    after, expect = dump_outbox(db), dump_outbox(fresh)
    assert after == expect
    assert after["blocks"] != before["blocks"]
    # blocks at or below the fork point are kept, every replaced block is gone
    canonical = {r[2] for r in after["blocks"]}
    for r in before["blocks"]:
        assert (r[2] in canonical) == (r[1] <= head - depth), r[1]


async def test_truncated_chain_is_lag_until_a_replacing_block_proves_the_reorg(chain_factory, tmp_path: Path) -> None:
    """A node whose head drops below the cursor with no new block on top cannot be told
    from a lagging node: nothing is rolled back. The first block that replaces a stored
    one proves the reorg, and exactly the replaced blocks are rolled back."""
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0xa")
    db = tmp_path / "edge.sqlite"
    cfg = make_config(chain, db, ingest={"confirmations": 5})
    await ingest_to(cfg, 10)
    await chain.rpc("anvil_rollback", 3)  # head 7, no new block on top
    async with Agent(cfg, score=False) as agent, running(agent) as task:
        await until(agent, "the lag to be seen", lambda s: s.lagging >= 1, 30, task)
        assert agent.stats.reorgs == 0 and dump_outbox(db)["cursor"][0][1] == 10
        await chain.rpc("evm_mine")  # a new block 8 replaces the stored block 8
        await until(agent, "the reorg and block 8", lambda s: s.reorgs >= 1 and s.cursor >= 8, 30, task)
    assert agent.stats.reorgs == 1 and agent.stats.rolled_back == 3
    assert dump_outbox(db)["cursor"][0][1] == 8


async def test_node_killed_and_restarted_is_reconnected_and_backfilled(chain_factory, tmp_path: Path) -> None:
    state = tmp_path / "anvil-state.json"
    chain = await chain_factory(block_time=0.5, extra_args=("--state", str(state)))
    db = tmp_path / "edge.sqlite"
    cfg = make_config(chain, db)
    async with Agent(cfg, score=False) as agent, running(agent) as task:
        await until(agent, "block 4", lambda s: s.cursor >= 4, 60, task)
        await chain.stop()  # the node goes away (dumps its state, as a restarted node keeps its chain)
        await until(agent, "the lost connection", lambda s: not s.connected and s.reconnects >= 1, 60, task)
        await chain.start()  # same port, same chain
        await chain.rpc("anvil_mine", "0x6")
        head = int(await chain.rpc("eth_blockNumber"), 16)
        await until(agent, f"the backfill to block {head}", lambda s: s.cursor >= head, 120, task)
    assert agent.stats.reconnects >= 1
    assert agent.stats.cursor >= head
    await chain.rpc("evm_setIntervalMining", 0)  # freeze the chain for the reference read
    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh), agent.stats.cursor)
    got, want = dump_outbox(db), dump_outbox(fresh)
    # which blocks count as confirmed depends on the head each agent saw (the chain kept
    # moving): the flags form a prefix; every other field and table is identical
    flags = [r[-1] for r in got["blocks"]]
    assert flags == sorted(flags, reverse=True) and any(flags), flags
    assert [r[:-1] for r in got["blocks"]] == [r[:-1] for r in want["blocks"]]
    for table in ("logs", "contracts", "codes", "cursor"):
        assert got[table] == want[table], table


async def test_node_killed_hard_loses_blocks_agent_follows_new_chain(chain_factory, tmp_path: Path) -> None:
    """SIGKILL: the node restarts from older state, so blocks the agent saw are gone."""
    state = tmp_path / "anvil-state.json"
    chain = await chain_factory(extra_args=("--no-mining", "--state", str(state)))
    await chain.rpc("anvil_mine", "0x3")
    await chain.stop()  # state at block 3 on disk
    await chain.start()
    await chain.rpc("anvil_mine", "0x5")  # blocks 4..8 only in memory
    db = tmp_path / "edge.sqlite"
    cfg = make_config(chain, db, ingest={"confirmations": 10})
    await ingest_to(cfg, 8)
    await chain.kill()
    await chain.start()  # back at block 3
    await chain.rpc("evm_setNextBlockTimestamp", int(await _ts(chain)) + 100)
    await chain.rpc("anvil_mine", "0x7")  # a different block 4..10
    agent = await ingest_to(cfg, 10)
    assert agent.stats.reorgs >= 1
    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh, ingest={"confirmations": 10}), 10)
    assert dump_outbox(db) == dump_outbox(fresh)


async def _ts(chain: DevChain) -> int:
    b = await chain.rpc("eth_getBlockByNumber", "latest", False)
    return int(b["timestamp"], 16)


async def test_oversized_code_is_recorded_and_flagged(chain_factory, tmp_path: Path, caplog) -> None:
    chain = await chain_factory(extra_args=("--disable-code-size-limit",))
    act = Activity(chain)
    await act.setup()
    big = bytes([0x5B]) * 30_000  # JUMPDEST x 30,000: larger than EIP-170 allows
    await act.deploy([big])
    await act.settle()
    head = int(await chain.rpc("eth_blockNumber"), 16)
    db = tmp_path / "edge.sqlite"
    with caplog.at_level(logging.WARNING, logger="edge.ingest"):
        agent = await ingest_to(make_config(chain, db), head)
    assert agent.stats.oversize == 1
    con = sqlite3.connect(db)
    (size, over), = con.execute("SELECT code_size, oversize FROM contracts WHERE code_size > 24576").fetchall()
    assert (size, over) == (30_000, 1)
    assert any("EIP-170" in r.getMessage() for r in caplog.records)


async def test_full_outbox_pauses_ingest_and_loses_nothing(chain_factory, tmp_path: Path, caplog) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0x40")
    db = tmp_path / "edge.sqlite"
    cfg = make_config(chain, db, ingest={"batch_blocks": 4})
    with caplog.at_level(logging.WARNING):
        async with Agent(cfg, score=False) as agent:
            agent.ingester.pause_s = 0.2
            agent.outbox.max_bytes = agent.outbox.size_bytes() + 40_000  # room for a few blocks only
            task = asyncio.create_task(agent.run(stop_at=64))
            for _ in range(100):
                if agent.stats.paused:
                    break
                await asyncio.sleep(0.05)
            assert agent.stats.paused and not task.done()
            paused_at = agent.stats.cursor
            assert 0 <= paused_at < 64
            await asyncio.sleep(0.5)
            assert agent.stats.cursor == paused_at  # nothing written while paused
            agent.outbox.max_bytes = None  # space is freed
            await asyncio.wait_for(task, 30)
    assert sum("ingest paused, nothing dropped" in r.getMessage() for r in caplog.records) == 1
    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh), 64)
    assert dump_outbox(db) == dump_outbox(fresh)


async def test_wrong_chain_id_is_an_alarm_and_a_wait_naming_the_key(chain_factory, tmp_path: Path) -> None:
    """A node reporting another chain id may be a sick node's transient answer: the agent
    says which key to check and keeps waiting; it stores nothing and never exits."""
    chain = await chain_factory()
    cfg = make_config(chain, tmp_path / "edge.sqlite", node={"chain_id": 1, "reconnect_max_s": 0.2})
    async with Agent(cfg, score=False) as agent:
        task = asyncio.create_task(agent.run())
        await asyncio.wait_for(agent.ingester.wait_until(lambda s: s.reconnects >= 3), 60)
        assert not task.done()
        assert "reports chain id 7201, but node.chain_id is 1" in agent.stats.last_error
        assert agent.stats.cursor == -1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_logs_filtered_by_watch_list(chain_factory, tmp_path: Path) -> None:
    chain = await chain_factory()
    act = Activity(chain)
    await act.setup()
    await act.crud_writes(10)
    await act.spawn(corpus_codes(2))
    await act.settle()
    head = int(await chain.rpc("eth_blockNumber"), 16)
    db = tmp_path / "edge.sqlite"
    await ingest_to(make_config(chain, db, ingest={"watch": [act.crud]}), head)
    async with Outbox(db) as ob:
        emitters = {bytes(r[0]) for r in await ob.fetchall("SELECT DISTINCT address FROM logs")}
    assert emitters == {bytes.fromhex(act.crud[2:])}
