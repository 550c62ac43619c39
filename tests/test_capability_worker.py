"""CapabilityWorker: analysis in a child process, hard limit, bounded backlog, no orphan."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from edge.errors import EdgeError
from edge.scoring import capabilities as cap
from edge.scoring.capability_worker import CapabilityBacklogFull, CapabilityWorker

REPO = Path(__file__).resolve().parents[1]
_STALL = b"\x00stall"


def _code(name: str = "OwnerMintToken") -> bytes:
    art = json.loads((REPO / "contracts/capabilities/artifacts/solc-0.8.37-opt.json").read_text())
    return bytes.fromhex(art["contracts"][name]["deployedBytecode"][2:])


def stalling_analyze(code: bytes, **kw: object) -> cap.CapabilityReport:
    """Runs in the child: never answers for the marker code (a stuck analysis)."""
    if code == _STALL:
        time.sleep(120)
    return cap.analyze(code, **kw)  # type: ignore[arg-type]


def _pids(worker: CapabilityWorker) -> list[int]:
    pool = worker._pool
    assert pool is not None
    return list(getattr(pool, "_processes", {}))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_report_from_the_child_equals_the_in_process_one() -> None:
    code = _code()
    async with CapabilityWorker(budget_s=10) as w:
        rep = await w.analyze(code, "0x" + "11" * 32)
        pids = _pids(w)
    here = cap.analyze(code, code_hash="0x" + "11" * 32, budget_s=10)
    a, b = rep.to_json(functions=True), here.to_json(functions=True)
    a.pop("elapsed_ms")
    b.pop("elapsed_ms")
    assert a == b and rep.flag_names == ("is_mintable",)
    assert pids and all(_gone(p) for p in pids)


async def test_the_child_runs_below_the_agent_on_the_cpu() -> None:
    async with CapabilityWorker(budget_s=10, nice=7) as w, CapabilityWorker(budget_s=10, nice=0) as same:
        for worker in (w, same):
            await worker.analyze(_code(), "0x" + "11" * 32)  # the child is started by the first code
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert [os.getpriority(os.PRIO_PROCESS, p) for p in _pids(w)] == [min(19, mine + 7)]
        assert [os.getpriority(os.PRIO_PROCESS, p) for p in _pids(same)] == [mine]
    with pytest.raises(EdgeError, match="nice must be 0..19"):
        CapabilityWorker(nice=20)


async def test_stuck_child_is_killed_and_replaced() -> None:
    async with CapabilityWorker(budget_s=0.5, hard_timeout_s=2, analyze_fn=stalling_analyze) as w:
        first = _pids(w)
        t = time.perf_counter()
        rep = await w.analyze(_STALL, "0xstall")
        assert rep.status == "timeout" and rep.flags == () and rep.code_hash == "0xstall"
        assert time.perf_counter() - t < 30 and w.restarts == 1
        assert all(_gone(p) for p in first)
        ok = await w.analyze(_code(), "0xok")  # the replacement child answers
        assert ok.status == "ok" and ok.flag_names == ("is_mintable",)


async def test_backlog_is_bounded_and_errors_are_named() -> None:
    async with CapabilityWorker(max_pending=1, hard_timeout_s=2, analyze_fn=stalling_analyze) as w:
        task = asyncio.create_task(w.analyze(_STALL, "0xa"))
        await asyncio.sleep(0)  # let the task take its place in the backlog
        assert w.pending == 1
        with pytest.raises(CapabilityBacklogFull, match="max_pending"):
            await w.analyze(_code(), "0xb")
        assert (await task).status == "timeout"
        assert w.pending == 0
    with pytest.raises(EdgeError, match="not running"):
        await CapabilityWorker().analyze(b"\x00", "0x")
    with pytest.raises(EdgeError, match="budget_s"):
        CapabilityWorker(budget_s=0)
