"""Pipelined ingest against a real anvil: the batch read ahead (while the one before it is
written) is used only when it links to the stored tip; one read across a reorg is dropped
and read again, never written; the read ahead ends with its session; each reader on a
shared connection counts only its own answers' bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.errors import RpcTimeout
from edge.ingest.adapter import ChainReader, FetchedBlock
from edge.ingest.stage import Ingester, _ahead_end
from edge.rpc import open_rpc
from edge.rpc.http import HttpRpc
from edge.rpc.meter import metered
from edge.rpc.ws import WsRpc
from edge.store import chain_data
from edge.store.db import Outbox
from tests.conftest import make_config


def test_the_read_ahead_fits_the_byte_budget_beside_the_batch_being_written() -> None:
    mib = 2**20
    assert _ahead_end(10, 8, 4, 1 * mib, 8 * mib, 100) == 17  # room for 28 blocks: the next batch, 8
    assert _ahead_end(10, 8, 4, 4 * mib, 8 * mib, 100) == 13  # 1 MiB a block: 4 fit beside 4 MiB
    assert _ahead_end(10, 8, 1, 6 * mib, 8 * mib, 100) is None  # not one block of that size fits
    assert _ahead_end(10, 8, 4, 1 * mib, 8 * mib, 12) == 12  # never past the head (or stop_at)
    assert _ahead_end(10, 8, 4, 1 * mib, 8 * mib, 9) is None  # nothing left to read
    assert _ahead_end(10, 8, 4, 0, 8 * mib, 100) == 17  # a transport that does not tell: small
    assert _ahead_end(10, 8, 4, 1, 0, 100) is None  # max_inflight_mib = 0: off


@pytest.mark.parametrize("inflight_mib", [8.0, 0.0])
async def test_a_batch_read_ahead_across_a_reorg_is_dropped_and_read_again(chain_factory: Callable[..., Any],
                                                                           tmp_path: Path, inflight_mib: float) -> None:
    """Batches grow 1, 2, 4 (slow start, tiny answers; ``batch_blocks`` 4). The node
    reorgs (blocks 2.. replaced) just as blocks 3..6 are read: ahead, while 1..2 is
    written (pipelined), or by the writer itself (``max_inflight_mib = 0``)."""
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0xc")  # blocks 1..12
    cfg = make_config(chain, tmp_path / "edge.sqlite",
                      ingest={"batch_blocks": 4, "confirmations": 2, "max_inflight_mib": inflight_mib})
    reads: list[tuple[int, int]] = []

    class Racing(ChainReader):
        async def blocks(self, lo: int, hi: int) -> list[FetchedBlock]:
            if lo == 3 and (3, 6) not in reads:
                await chain.rpc("anvil_rollback", 11)  # head 1
                await chain.rpc("anvil_mine", "0xc", "0x7")  # new 2..13, other timestamps: other hashes
            reads.append((lo, hi))
            return await super().blocks(lo, hi)

    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob, open_rpc(chain.ws_url) as rpc:
        async with Ingester(cfg, ob, rpc_factory=open_rpc) as ing, ing.pipelined():
            ing.stats.chain_id = chain.chain_id
            reader = Racing(rpc, frozenset(), "auto", "strict")
            assert await ing.step(reader, 12)  # block 0
            assert await ing.step(reader, 12)  # 1..2 written while 3..6 is read ahead, across the reorg
            old2 = (await chain_data.stored_hashes(ob, chain.chain_id, 2, 2))[2]
            assert await ing.step(reader, 12)  # the read ahead does not link: dropped, read again: reorg
            assert (ing.stats.reorgs, ing.stats.cursor, ing.stats.rolled_back) == (1, 1, 1)
            head = await reader.head()
            while ing.stats.cursor < head:
                assert await ing.step(reader, head)
            used, dropped = ing.stats.ahead_used, ing.stats.ahead_dropped
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("ingest-ahead")] == []
        stored = await chain_data.stored_hashes(ob, chain.chain_id, 0, head)
        canon = await reader.canonical_hashes(0, head)
    assert head == 13 and stored == canon and stored[2] != old2
    if inflight_mib:  # 3..6 read ahead across the reorg, then again by the writer; after it each batch once, ahead
        assert reads == [(0, 0), (1, 2), (3, 6), (3, 6), (2, 5), (6, 9), (10, 13)]
        assert (used, dropped) == (3, 1)
    else:
        assert reads == [(0, 0), (1, 2), (3, 6), (2, 5), (6, 9), (10, 13)]
        assert (used, dropped) == (0, 0)


async def test_an_error_of_the_read_ahead_is_raised_by_the_step_that_takes_it(chain_factory: Callable[..., Any],
                                                                              tmp_path: Path) -> None:
    """A node fault met while reading ahead (a lying node, a timeout) is never dropped in
    silence: the step that takes the range raises it, as its own read would have."""
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0xc")
    cfg = make_config(chain, tmp_path / "edge.sqlite", ingest={"batch_blocks": 4, "confirmations": 2})
    reads: list[tuple[int, int]] = []

    class Flaky(ChainReader):
        async def blocks(self, lo: int, hi: int) -> list[FetchedBlock]:
            reads.append((lo, hi))
            if reads.count((3, 6)) == 1 and lo == 3:
                raise RpcTimeout("eth_getBlockByNumber: no answer within 10 s (injected)")
            return await super().blocks(lo, hi)

    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob, open_rpc(chain.ws_url) as rpc:
        async with Ingester(cfg, ob, rpc_factory=open_rpc) as ing, ing.pipelined():
            ing.stats.chain_id = chain.chain_id
            reader = Flaky(rpc, frozenset(), "auto", "strict")
            assert await ing.step(reader, 12) and await ing.step(reader, 12)  # 0; 1..2 while 3..6 fails ahead
            with pytest.raises(RpcTimeout, match="injected"):
                await ing.step(reader, 12)
            assert ing.stats.cursor == 2 and ing.stats.ahead_dropped == 1
            assert await ing.step(reader, 12)  # read again by the writer itself
            assert ing.stats.cursor == 6
    assert reads == [(0, 0), (1, 2), (3, 6), (3, 6), (7, 10)]


async def test_run_reads_ahead_and_leaves_no_task_behind(chain_factory: Callable[..., Any], tmp_path: Path) -> None:
    """``run`` to ``stop_at`` with the default budget: batches come from the read ahead,
    every block is stored once, and no read-ahead task outlives the session."""
    chain = await chain_factory(extra_args=("--no-mining",))
    await chain.rpc("anvil_mine", "0x20")  # blocks 1..32
    cfg = make_config(chain, tmp_path / "edge.sqlite", ingest={"batch_blocks": 8, "confirmations": 2})
    async with Outbox(cfg.resolve(cfg.outbox.path)) as ob:
        async with Ingester(cfg, ob, rpc_factory=open_rpc) as ing:
            await ing.run(stop_at=30)
            assert [t for t in asyncio.all_tasks() if t.get_name().startswith("ingest-ahead")] == []
            assert ing.stats.cursor == 30 and ing.stats.blocks == 31
            assert ing.stats.ahead_used >= 3 and ing.stats.ahead_dropped == 0
        async with open_rpc(chain.ws_url) as rpc:
            canon = await ChainReader(rpc, frozenset()).canonical_hashes(0, 30)
        assert await chain_data.stored_hashes(ob, chain.chain_id, 0, 30) == canon


async def test_each_reader_on_a_shared_connection_counts_its_own_answers(chain_factory: Callable[..., Any]) -> None:
    """Two tasks on one connection at once: a large batch answer is counted only in the
    meter of the task that asked for it (the transports' ``largest_frame`` mixes them)."""
    chain = await chain_factory()
    big: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", ["0x0", True])] * 64

    async def ask(rpc: WsRpc | HttpRpc, calls: list[tuple[str, list[Any]]]) -> tuple[int, int]:
        with metered() as m:
            res = await rpc.batch(calls)
        return m.largest, len(str(res))

    for transport in (WsRpc(chain.ws_url, timeout=5.0), HttpRpc(chain.http_url)):
        async with transport as rpc:
            (large, big_len), (small, _) = await asyncio.gather(ask(rpc, big), ask(rpc, [("eth_chainId", [])]))
            assert large > big_len // 2 and 0 < small < 200, type(rpc).__name__
            assert rpc.largest_frame == large
