"""Verified ingest end to end: the agent reads a real anvil through the fault proxy.

Each fault rewrites one field of one kind of answer the agent stores (a runtime code cut
short, a flipped byte in a log, a swapped pair of logs, a header field, an account proof
node) for a few answers; every one is detected before anything is stored, the agent never
exits, and once the faults stop it catches up to an outbox equal, table by table, to a
clean ingest of the same chain. A fault that does not stop becomes one alarm naming the
block, and ingest waits on that block. A lagging node causes no rollback and no alarm.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent
from edge.devnet.activity import Activity
from tests.conftest import corpus_codes, dump_outbox, ingest_to, make_config
from tests.faultproxy import Fault, FaultProxy


async def _chain_with_activity(chain_factory: Any) -> tuple[Any, Activity, int]:
    chain = await chain_factory(extra_args=("--no-mining",))
    act = Activity(chain)
    await act.setup(mine=True)
    codes = corpus_codes(24)
    for i in range(6):
        await act.deploy(codes[i * 2:i * 2 + 2])
        await act.spawn(codes[12 + i:13 + i])
        await chain.rpc("evm_mine")
        await act.crud_writes(6)  # blocks of CRUD writes only: receipts 0 and 1 each hold a log
        await chain.rpc("evm_mine")
    await act.settle()
    return chain, act, int(await chain.rpc("eth_blockNumber"), 16)


FAULTS = [
    # the runtime code comes from the creation's trace (strict: proven, not read again)
    Fault("trace_block", "cut", path="[0].result.code", times=2),           # code cut short, still valid hex
    Fault("trace_block", "flip", path="[0].result.code", times=2),          # one byte of code changed
    Fault("eth_getBlockReceipts", "flip", path="[0].logs[0].data", times=2),  # a byte of a log's data
    Fault("eth_getBlockReceipts", "swap", path="[0].logs[0]", other="[1].logs[0]", times=2),  # two logs swapped
    Fault("eth_getBlockByNumber", "flip", path="stateRoot", times=2),       # a header field
    Fault("eth_getBlockByNumber", "flip", path="hash", times=2),
    Fault("eth_getProof", "flip", path="accountProof[1]", times=2),         # a node of the account proof
    Fault("eth_getProof", "flip", path="codeHash", times=2),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.method}-{f.action}-{f.path or 'result'}")
async def test_a_lying_node_puts_nothing_wrong_in_the_outbox(chain_factory: Any, tmp_path: Path,
                                                             fault: Fault) -> None:
    chain, act, head = await _chain_with_activity(chain_factory)
    async with FaultProxy(chain.ws_url) as proxy:
        proxy.add(Fault(**{**fault.__dict__}))  # a fresh copy: `times` is consumed
        db = tmp_path / "edge.sqlite"
        cfg = make_config(chain, db, node={"ws_url": proxy.url, "reconnect_max_s": 0.2}, ingest={"batch_blocks": 4})
        async with Agent(cfg, score=False) as agent:
            await asyncio.wait_for(agent.run(stop_at=head), 120)
        applied = sum(n for (m, _), n in proxy.applied.items() if m == fault.method)
    assert applied >= 1, f"the fault was never applied: {proxy.applied}"  # not vacuous
    assert agent.stats.mismatches >= 1  # detected as a mismatch with the sealed header ...
    assert f"{fault.method}: node serves data that does not match block" in agent.stats.last_error  # ... and named
    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh), head)
    assert dump_outbox(db) == dump_outbox(fresh)
    assert len(dump_outbox(db)["contracts"]) == len(act.deployed) + 2


async def test_a_fault_that_does_not_stop_is_one_alarm_and_a_wait(chain_factory: Any, tmp_path: Path) -> None:
    chain, _, head = await _chain_with_activity(chain_factory)
    async with FaultProxy(chain.ws_url) as proxy:
        proxy.add(Fault("trace_block", "cut", path="[0].result.code"))  # every deployment's code, until cleared
        db = tmp_path / "edge.sqlite"
        cfg = make_config(chain, db, node={"ws_url": proxy.url, "reconnect_max_s": 0.2})
        async with Agent(cfg, score=False) as agent:
            task = asyncio.create_task(agent.run(stop_at=head))
            await asyncio.wait_for(agent.ingester.wait_until(lambda s: s.mismatches >= 4), 120)
            assert not task.done()
            con = sqlite3.connect(db)
            alarms = con.execute("SELECT kind, block_number, detail FROM alarms WHERE kind='node_mismatch'").fetchall()
            last_contract = con.execute("SELECT coalesce(max(block_number), -1) FROM contracts").fetchone()[0]
            con.close()
            assert len(alarms) == 1, alarms
            assert "does not match block" in alarms[0][2] and "nothing of it is stored" in alarms[0][2]
            assert agent.stats.cursor < alarms[0][1]  # ingest waits before the lying block ...
            assert last_contract < alarms[0][1]  # ... and nothing of it is stored
            proxy.clear()  # the node is healthy again
            await asyncio.wait_for(task, 120)
    fresh = tmp_path / "fresh.sqlite"
    await ingest_to(make_config(chain, fresh), head)
    assert dump_outbox(db) == dump_outbox(fresh)


async def test_a_lagging_node_causes_no_rollback_and_no_alarm(chain_factory: Any, tmp_path: Path) -> None:
    chain = await chain_factory(block_time=0.5)
    db = tmp_path / "edge.sqlite"
    async with FaultProxy(chain.ws_url) as proxy:
        cfg = make_config(chain, db, node={"ws_url": proxy.url, "reconnect_max_s": 0.5})
        async with Agent(cfg, score=False) as agent:
            task = asyncio.create_task(agent.run())
            await asyncio.wait_for(agent.ingester.wait_until(lambda s: s.cursor >= 3), 60)
            for window in (5.0, 8.0):  # head and blocks withheld for 5-8 s, twice
                frozen = await proxy.lag(window)
                await proxy.drop_connections()  # and the node restarts: the agent reconnects into the lag
                # the agent follows again only once the window is over (the proxy's wall clock)
                await asyncio.wait_for(agent.ingester.wait_until(lambda s, f=frozen: s.cursor > f + 2), window + 60)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert agent.stats.reorgs == 0 and agent.stats.rolled_back == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM alarms").fetchone()[0] == 0
    con.close()
