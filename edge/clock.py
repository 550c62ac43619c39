"""Time, injected: every component that waits or reads the time is given a :class:`Clock`.

:class:`SystemClock` is the real one (``time.monotonic``, ``time.time``,
``asyncio.sleep``). :class:`MockClock` is virtual time for tests (in the spirit of trio's
``MockClock``): nothing sleeps for real; :meth:`MockClock.advance` moves time forward and
wakes the sleepers whose deadline has passed, so a test of a 60 s batch timeout or a
30 s backoff runs in microseconds and never depends on the machine's load.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "SystemClock", "MockClock", "SYSTEM_CLOCK"]

T = TypeVar("T")


class Clock(Protocol):
    """What components need of time. Units: seconds (float)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals and deadlines)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (for stored timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (<= 0: just yield)."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        """``aw``'s result, or TimeoutError after ``timeout`` seconds of this clock
        (``aw`` is then cancelled)."""
        ...


class SystemClock:
    """The real clock (``time`` and ``asyncio``)."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        """``aw``'s result, or TimeoutError after ``timeout`` s.

        Built on ``asyncio.timeout`` (not ``asyncio.wait_for``): Python 3.11's
        ``wait_for`` loses a cancel that arrives as ``aw`` completes (CPython gh-86296),
        and a lost cancel leaves a stage running after its owner stopped it."""
        async with asyncio.timeout(timeout):
            return await aw


SYSTEM_CLOCK = SystemClock()
"""The process-wide real clock (the default wherever a clock is optional)."""


class MockClock:
    """Virtual time. Sleepers wake only when a test calls :meth:`advance` (or
    :meth:`advance_to_next`).

    Args: start: the initial monotonic reading. wall: the wall-clock reading at ``start``.
    """

    def __init__(self, start: float = 0.0, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall0 = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()

    def monotonic(self) -> float:
        """The virtual monotonic time."""
        return self._now

    def time(self) -> float:
        """The virtual wall-clock time (moves with :meth:`monotonic`)."""
        return self._wall0 + self._now

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock right now."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` has moved time by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        self._changed.set()
        await fut

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        """``aw``'s result, or TimeoutError once virtual time passes ``timeout``."""
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.sleep(timeout))
        try:
            done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        raise TimeoutError(f"no result within {timeout:g} s of mock time")

    async def wait_sleepers(self, n: int = 1) -> None:
        """Wait (in real time, by events, no polling) until at least ``n`` tasks sleep."""
        while self.sleepers < n:
            self._changed.clear()
            await self._changed.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due (they run at
        the loop's next turns)."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance_to_next(self) -> float:
        """Jump to the earliest pending deadline (if any); returns the seconds moved."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return 0.0
        dt = max(0.0, self._sleepers[0][0] - self._now)
        self.advance(dt)
        return dt
