"""When ingest first saw each block number, in memory and bounded (for latency figures).

Ingest learns of blocks by the node's head: an observation "head ``h`` at time ``t``"
means every block number in ``(previous head, h]`` was first seen at ``t``. So a backlog
of a million blocks costs one entry, not a million. Numbers at or below the cursor of
the first observation were stored by an earlier life of the agent: unknown (None).

Only the newest :data:`MAX_ENTRIES` observations are kept; the floor moves up as old
ones are dropped, so memory stays bounded whatever the chain's length. A reorg does not
reset a number's time: the replacement block counts from when its number was first seen.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

__all__ = ["FirstSeen", "MAX_ENTRIES", "p99"]

MAX_ENTRIES = 4096
"""Head observations kept (each two numbers); older ones raise the floor."""


class FirstSeen:
    """First-seen time of block numbers, from head observations.

    Times are the owner's ``clock.monotonic()`` seconds (the same clock must be used to
    compare them). Not thread-safe; used from the event loop.

    Args:
        max_entries: head observations kept (>= 1).
    """

    __slots__ = ("_heads", "_times", "_floor", "_max")

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._heads: deque[int] = deque()
        self._times: deque[float] = deque()
        self._floor: int | None = None
        self._max = max_entries

    def observe(self, head: int, t: float, cursor: int) -> None:
        """Note that the node's head was ``head`` at time ``t`` while ingest's cursor
        (last block stored) was ``cursor``. A head not above the highest one seen is
        ignored (its numbers were seen earlier)."""
        if self._floor is None:
            self._floor = cursor
        if head <= (self._heads[-1] if self._heads else self._floor):
            return
        self._heads.append(head)
        self._times.append(t)
        if len(self._heads) > self._max:
            self._floor = self._heads.popleft()
            self._times.popleft()

    def at(self, number: int) -> float | None:
        """When block ``number`` was first seen (monotonic s), or None when unknown
        (stored by an earlier life, dropped from the window, or not seen yet)."""
        if self._floor is None or number <= self._floor or not self._heads or number > self._heads[-1]:
            return None
        return self._times[bisect.bisect_left(self._heads, number)]

    def __len__(self) -> int:
        return len(self._heads)


def p99(values: Iterable[float]) -> float | None:
    """The 99th percentile of ``values`` by the nearest-rank method (the smallest value
    with at least 99% of the values at or below it); None when there are none."""
    xs = sorted(values)
    if not xs:
        return None
    return xs[max(0, math.ceil(0.99 * len(xs)) - 1)]
