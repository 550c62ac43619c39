"""Block first seen -> its contracts scored: a cumulative latency histogram (for metrics).

The scoring stage adds one sample per scored code whose block's first-seen time is known
(:meth:`edge.scoring.stage.ScoreStage`); ``edge run`` exports it as the Prometheus
histogram ``edge_score_latency_seconds`` (buckets ``le`` in seconds, ``_sum``, ``_count``),
so an operator's ``histogram_quantile(0.99, rate(edge_score_latency_seconds_bucket[5m]))``
gives the p99 over any window. Fixed bounds, O(buckets) memory whatever the run's length.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

__all__ = ["BOUNDS_S", "LatencyHistogram", "quantile_from_buckets"]

BOUNDS_S: tuple[float, ...] = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
                               1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (s) of the finite buckets; the last bucket (+Inf) holds the rest. Dense
around the 100 ms goal of issue 14, coarse above a block time."""


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of latency samples per bucket (not cumulative inside; :meth:`cumulative`
    gives Prometheus' ``le`` view), their sum (s) and their count.

    Not thread-safe; the scoring stage adds from the event loop.
    """

    bounds: tuple[float, ...] = BOUNDS_S
    counts: list[int] = field(default_factory=list)
    sum_s: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)) or not self.bounds:
            raise ValueError(f"histogram bounds must be strictly increasing and non-empty, got {self.bounds}")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def add(self, seconds: float) -> None:
        """One sample of ``seconds`` (>= 0; a negative value counts as 0, NaN is ignored)."""
        if math.isnan(seconds):
            return
        s = max(0.0, seconds)
        self.counts[bisect.bisect_left(self.bounds, s)] += 1
        self.sum_s += s
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``[(le, samples <= le), ...]`` ending with ``(inf, count)``: Prometheus buckets."""
        out: list[tuple[float, int]] = []
        total = 0
        for le, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append((le, total))
        return out


def quantile_from_buckets(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of cumulative buckets ``[(le, count <= le), ...]``
    by linear interpolation inside the bucket that holds it, as Prometheus'
    ``histogram_quantile`` does (a quantile in the +Inf bucket is the highest finite
    bound). None when there are no samples.

    Raises:
        ValueError: ``q`` outside (0, 1].
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    bs = sorted(buckets)
    if not bs or bs[-1][1] <= 0:
        return None
    rank = q * bs[-1][1]
    lower_le, lower_n = 0.0, 0.0
    for le, n in bs:
        if n >= rank:
            if math.isinf(le):
                return lower_le
            if n == lower_n:
                return le
            return lower_le + (le - lower_le) * (rank - lower_n) / (n - lower_n)
        lower_le, lower_n = le, n
    return lower_le
