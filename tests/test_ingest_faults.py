"""Ingest under node faults that a real node cannot be made to produce on cue: a garbled
chain id, a connection that drops at a chosen request. A fake chain behind MockRpc, and
MockClock so every backoff is observed exactly, without waiting for it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge.clock import MockClock
from edge.config import parse_config
import pytest

from edge.errors import AnswerTooLarge, NodeUnavailable, RpcTimeout
from edge.ingest.stage import Ingester
from edge.store.db import Outbox
from tests.fakechain import FakeChain, FakeNetwork


class RecordingClock(MockClock):
    """A MockClock that remembers every sleep it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


def _cfg(tmp_path: Path) -> Any:
    return parse_config({"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": 7201, "reconnect_max_s": 30.0},
                         "ingest": {"confirmations": 0, "verify": "off"}, "poa": {"engine": "none"},
                         "outbox": {"path": str(tmp_path / "edge.sqlite")}}, base_dir=tmp_path)


async def _drive(clock: MockClock, task: asyncio.Task[None], until: Any) -> None:
    """Advance mock time to each next deadline until ``until()`` holds (bounded)."""
    for _ in range(400):
        if until():
            return
        sleeping = asyncio.ensure_future(clock.wait_sleepers(1))
        await asyncio.wait({sleeping, task}, return_when=asyncio.FIRST_COMPLETED)
        sleeping.cancel()
        if task.done():
            task.result()  # raises what the stage raised
            if until():
                return
            raise AssertionError("the stage returned before the condition held")
        clock.advance_to_next()
        await asyncio.sleep(0)
    raise AssertionError("condition not reached in 400 clock steps")


async def test_a_garbled_chain_id_is_a_wait_not_an_exit_and_backoff_resets_after_a_healthy_connection(
        tmp_path: Path) -> None:
    chain = FakeChain(head=5)
    chain.chain_id_answers = [1, 1]  # two garbled answers, then the right one
    drop: set[int] = set()  # connections that drop at their next eth_blockNumber
    chain.fail = lambda conn, m: NodeUnavailable("dropped") if conn in drop and m == "eth_blockNumber" else None
    clock = RecordingClock()
    async with Outbox(tmp_path / "edge.sqlite") as ob:
        ing = Ingester(_cfg(tmp_path), ob, rpc_factory=FakeNetwork(chain), clock=clock, poll_s=1.0)
        task = asyncio.create_task(ing.run())
        await _drive(clock, task, lambda: ing.stats.reconnects >= 2)
        assert not task.done()  # the agent never exits on a chain id it may have misread
        assert "reports chain id 1, but node.chain_id is 7201" in ing.stats.last_error
        backoffs = list(clock.slept)
        assert len(backoffs) == 2 and backoffs[1] > backoffs[0]  # doubling while unhealthy
        await _drive(clock, task, lambda: ing.stats.cursor == 5)  # the third connection is healthy
        drop.add(3)
        await _drive(clock, task, lambda: ing.stats.reconnects >= 3)
        chain.head = 8
        await _drive(clock, task, lambda: ing.stats.cursor == 8)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # after the third connection made progress, the backoff starts again from the bottom
    after = [s for s in clock.slept if s != 1.0][2]
    assert after <= 0.5 * 1.2 + 1e-9, clock.slept


async def test_a_node_whose_head_falls_behind_the_cursor_is_waited_for_not_rolled_back(tmp_path: Path) -> None:
    chain = FakeChain(head=6)
    clock = MockClock()
    async with Outbox(tmp_path / "edge.sqlite") as ob:
        ing = Ingester(_cfg(tmp_path), ob, rpc_factory=FakeNetwork(chain), clock=clock, poll_s=1.0)
        task = asyncio.create_task(ing.run())
        await _drive(clock, task, lambda: ing.stats.cursor == 6)
        chain.head = 3  # a lagging node (a restarted one catching up): blocks 4..6 unknown to it
        await _drive(clock, task, lambda: ing.stats.lagging >= 1)
        for _ in range(5):  # several polls while it lags
            clock.advance_to_next()
            await asyncio.sleep(0)
        chain.head = 9
        await _drive(clock, task, lambda: ing.stats.cursor == 9)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ing.stats.reorgs == 0 and ing.stats.rolled_back == 0


@pytest.mark.parametrize("fault", [RpcTimeout, AnswerTooLarge])
async def test_a_node_too_slow_for_big_batches_gets_smaller_ones_not_a_stall(tmp_path: Path, fault: type) -> None:
    """A node that times out on batches of more than 4 blocks (or whose answer to them is
    over the frame limit): the agent halves its batch on each such failure and ingests
    everything, instead of retrying the same batch forever."""
    chain = FakeChain(head=40)
    seen: dict[int, int] = {}  # connection -> block requests since its last eth_blockNumber

    def fail(conn: int, method: str) -> BaseException | None:
        if method == "eth_blockNumber":
            seen[conn] = 0
        elif method == "eth_getBlockByNumber":
            seen[conn] = seen.get(conn, 0) + 1
            if seen[conn] > 4:
                return fault(f"{method}: no answer within 10 s, or answer too large (injected)")
        return None

    chain.fail = fail
    clock = MockClock()
    async with Outbox(tmp_path / "edge.sqlite") as ob:
        ing = Ingester(_cfg(tmp_path), ob, rpc_factory=FakeNetwork(chain), clock=clock, poll_s=1.0)
        task = asyncio.create_task(ing.run(stop_at=40))
        await _drive(clock, task, lambda: task.done())
        task.result()
    assert ing.stats.cursor == 40 and ing.stats.reconnects >= 1
