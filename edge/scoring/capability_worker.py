"""Capability analysis off the event loop: one worker process, a bounded backlog, budgets.

:func:`edge.scoring.capabilities.analyze` is pure Python and holds the GIL for tens of
milliseconds (seconds for the largest codes), so it never runs on the event loop nor in
a thread of the agent: :class:`CapabilityWorker` runs it in ONE child process (``spawn``
start method: no copy of the agent's threads or sockets), one code at a time.

Budgets, in two layers:

* the analyzer's own cooperative budget (``budget_s``): past it the report comes back
  with ``status="timeout"`` and no flags;
* a hard limit (``budget_s * 3 + 5`` seconds by default) on the round trip: if the child
  does not answer in time (stuck, or killed by the OOM killer) it is killed, a fresh one
  is started for the next code, and the caller gets a ``timeout`` report for this one.

The backlog is bounded (``max_pending``): :meth:`CapabilityWorker.analyze` raises
:class:`CapabilityBacklogFull` instead of queueing without limit, so the caller (the
scoring side) decides to retry later; nothing is lost and ingest never waits on it.

The child runs ``nice`` steps below the agent (default 10, ``capabilities.nice``): on a
2-core device the node, ingest, scoring and forwarding get the cores first, and the
analysis takes what is left (it is behind anyway whenever new codes come faster than it).

The child dies with the agent (``PR_SET_PDEATHSIG`` SIGKILL, Linux) and ignores SIGINT
(a Ctrl-C goes to the agent, which kills the child itself): no orphan, no second
traceback. The agent's :class:`edge.scoring.analysis.AnalysisStage` owns one worker.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from edge.errors import EdgeError
from edge.scoring.capabilities import CapabilityReport, analyze

__all__ = ["CapabilityBacklogFull", "CapabilityWorker", "CapabilityWorkerUnavailable"]

AnalyzeFn = Callable[..., CapabilityReport]


class CapabilityBacklogFull(EdgeError):
    """More codes are waiting for analysis than ``max_pending``; try again later."""


class CapabilityWorkerUnavailable(EdgeError):
    """The analysis child process did not start (a transient fault: try again later)."""


class CapabilityWorker:
    """Async context manager owning the analysis child process.

    Args:
        budget_s: analyzer budget per code, seconds (> 0).
        max_pending: most codes submitted and not yet answered (>= 1).
        hard_timeout_s: round-trip limit per code before the child is killed, seconds;
            default ``3 * budget_s + 5``.
        analyze_fn: the analysis function run in the child (a module-level callable with
            the signature of :func:`edge.scoring.capabilities.analyze`; for tests).
        nice: how many steps below this process the child runs on the CPU (0..19).

    Raises:
        EdgeError: a bad argument (on construction).
    """

    def __init__(
        self,
        *,
        budget_s: float = 2.0,
        max_pending: int = 64,
        hard_timeout_s: float | None = None,
        analyze_fn: AnalyzeFn = analyze,
        nice: int = 10,
    ) -> None:
        if not budget_s > 0:
            raise EdgeError(f"capabilities: budget_s must be > 0, got {budget_s!r}")
        if max_pending < 1:
            raise EdgeError(f"capabilities: max_pending must be >= 1, got {max_pending!r}")
        if not 0 <= nice <= 19:
            raise EdgeError(f"capabilities: nice must be 0..19, got {nice!r}")
        self.nice = nice
        self.budget_s = budget_s
        self.max_pending = max_pending
        self.hard_timeout_s = hard_timeout_s if hard_timeout_s else 3 * budget_s + 5
        self._fn = analyze_fn
        self._pool: ProcessPoolExecutor | None = None
        self._pending = 0
        self._lock = asyncio.Lock()
        self._warm = False
        self.restarts = 0
        """How many times the child was killed and replaced."""

    async def __aenter__(self) -> CapabilityWorker:
        self._pool = self._new_pool()
        return self

    async def __aexit__(self, *exc: object) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill(pool)

    @property
    def pending(self) -> int:
        """Codes submitted and not yet answered."""
        return self._pending

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_child_init, initargs=(self.nice,))

    async def analyze(self, code: bytes, code_hash: str) -> CapabilityReport:
        """The capability report of one code, computed in the child process.

        Args:
            code: raw runtime bytecode. code_hash: its ``0x`` keccak-256 hex (recorded).

        Returns:
            The report; ``status="timeout"`` when either budget ran out.

        Raises:
            CapabilityBacklogFull: ``max_pending`` codes are already waiting.
            CapabilityWorkerUnavailable: a fresh child did not start (it is replaced).
            EdgeError: the worker is not entered.
        """
        if self._pool is None:
            raise EdgeError("capabilities: the worker is not running (use `async with`)")
        if self._pending >= self.max_pending:
            raise CapabilityBacklogFull(
                f"capabilities: {self._pending} codes already waiting (max_pending)"
            )
        self._pending += 1
        try:
            async with self._lock:  # one code at a time: the hard limit is per code
                return await self._run(code, code_hash)
        finally:
            self._pending -= 1

    async def _run(self, code: bytes, code_hash: str) -> CapabilityReport:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        if not self._warm:  # start the child first: the hard limit is per code, not per spawn
            try:
                async with asyncio.timeout(_SPAWN_LIMIT_S):  # not wait_for: it can lose a cancel (gh-86296)
                    await loop.run_in_executor(self._pool, _ready, self._fn)
            except (TimeoutError, BrokenProcessPool) as e:
                self._restart()
                raise CapabilityWorkerUnavailable(f"capabilities: the analysis worker did not start within {_SPAWN_LIMIT_S:.0f} s"
                                f" ({type(e).__name__})") from e
            self._warm = True
        t0 = time.perf_counter()
        fut = loop.run_in_executor(
            self._pool, _call, self._fn, bytes(code), code_hash, self.budget_s
        )
        try:
            async with asyncio.timeout(self.hard_timeout_s):  # not wait_for: it can lose a cancel (gh-86296)
                return await fut
        except (TimeoutError, BrokenProcessPool):
            self._restart()
            return CapabilityReport(code_hash, "timeout", (), (), time.perf_counter() - t0)

    def _restart(self) -> None:
        assert self._pool is not None
        _kill(self._pool)
        self._pool = self._new_pool()
        self._warm = False
        self.restarts += 1


_SPAWN_LIMIT_S = 120.0
"""Longest wait for a fresh child to start (interpreter, imports) before its first code."""


def _ready(fn: AnalyzeFn) -> bool:
    """Runs in the child: answers once it is up and has imported ``fn``'s module."""
    return callable(fn)


def _child_init(nice: int = 0) -> None:
    """In the child, once: die with the parent (PR_SET_PDEATHSIG, prctl(2); the parent
    forks it from the event loop's thread, which lives as long as the agent), ignore SIGINT,
    and lower its CPU priority by ``nice`` (nice(2); the kernel caps it at 19; refused, it
    stays as it is: a worker that does not start would be worse)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass  # a sandbox that filters setpriority(2): the analysis still runs, at the agent's priority
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _call(fn: AnalyzeFn, code: bytes, code_hash: str, budget_s: float) -> CapabilityReport:
    return fn(code, code_hash=code_hash, budget_s=budget_s)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: kill its child (no orphan), do not wait for running work."""
    procs = list(getattr(pool, "_processes", {}).values())  # no public kill in the stdlib
    for p in procs:
        if p.is_alive():
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)
