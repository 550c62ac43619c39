"""Bounded memory (issue 14): glibc arenas and trim, block batches sized by answer bytes,
the transports' answer sizes (against a real node)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest

from edge import memory
from edge.ingest.stage import _ANSWER_BUDGET, _next_batch
from edge.rpc.http import HttpRpc
from edge.rpc.ws import WsRpc

GLIBC = platform.libc_ver()[0] == "glibc"


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_batches_double_while_answers_are_small_and_shrink_to_the_byte_budget() -> None:
    assert _next_batch(1, 10_000, 32) == 2
    assert _next_batch(16, 0, 32) == 32  # a transport that does not tell: taken as small
    assert _next_batch(32, _ANSWER_BUDGET // 2, 32) == 32  # capped by ingest.batch_blocks
    assert _next_batch(32, 4 * _ANSWER_BUDGET, 32) == 8  # same bytes per block, within the budget
    assert _next_batch(32, _ANSWER_BUDGET * 3 // 4, 64) == 42  # over half the budget: what fits, no doubling
    assert _next_batch(2, 100 * _ANSWER_BUDGET, 32) == 1  # never below one block


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trim_gives_freed_heap_pages_back() -> None:
    blobs = [bytes(30_000 + i) for i in range(2_000)]  # about 60 MB of malloc'd (not pymalloc) blocks
    keep = blobs[::40]  # the survivors pin the heap: only a trim inside it can release the rest
    del blobs
    before = _rss_kb()
    assert memory.trim() is True
    assert before - _rss_kb() > 30_000, "malloc_trim released less than half of what was freed"
    assert len(keep) == 50


def test_limit_arenas_keeps_the_operators_environment_and_refuses_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="arenas must be >= 1"):
        memory.limit_arenas(0)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_arenas(2) is False  # glibc read the variable at start: not overridden
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert memory.limit_arenas(8) is GLIBC  # 8 per core is glibc's own default: harmless here


async def test_transports_report_the_size_of_the_largest_answer(chain_factory: Any) -> None:
    chain = await chain_factory()
    calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", ["0x0", True])] * 8
    async with WsRpc(chain.ws_url, timeout=5.0) as ws:
        res = await ws.batch(calls)
        assert ws.largest_frame >= len(json.dumps(res, separators=(",", ":")))
        ws.largest_frame = 0
        await ws.call("eth_chainId")
        assert 0 < ws.largest_frame < 200
    async with HttpRpc(chain.http_url) as http:
        res = await http.batch(calls)
        assert http.largest_frame >= len(json.dumps(res, separators=(",", ":")))
