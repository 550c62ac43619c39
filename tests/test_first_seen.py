"""First-seen times of block numbers (edge.ingest.seen), the p99 used by the demo and the
score-latency histogram the metrics export (edge.scoring.latency)."""

from __future__ import annotations

import math

import pytest

from edge.ingest.seen import FirstSeen, p99
from edge.scoring.latency import LatencyHistogram, quantile_from_buckets


def test_a_head_observation_dates_every_number_up_to_it() -> None:
    seen = FirstSeen()
    seen.observe(10, 1.0, cursor=4)  # blocks 0..4 were stored by an earlier life
    seen.observe(10, 2.0, cursor=6)  # the same head again: no news
    seen.observe(12, 3.0, cursor=10)
    assert [seen.at(n) for n in (4, 5, 10, 11, 12, 13)] == [None, 1.0, 1.0, 3.0, 3.0, None]
    seen.observe(11, 4.0, cursor=12)  # a lower head (a lagging node) changes nothing
    assert seen.at(12) == 3.0 and len(seen) == 2


def test_the_window_is_bounded_and_the_floor_moves_up() -> None:
    seen = FirstSeen(max_entries=3)
    for h in range(1, 7):
        seen.observe(h * 10, float(h), cursor=0)
    assert len(seen) == 3
    assert seen.at(30) is None and seen.at(31) == 4.0 and seen.at(60) == 6.0
    with pytest.raises(ValueError, match="max_entries"):
        FirstSeen(0)


def test_p99_is_nearest_rank() -> None:
    assert p99([]) is None
    assert p99([5.0]) == 5.0
    assert p99([float(i) for i in range(1, 101)]) == 99.0
    assert p99([float(i) for i in range(1, 201)]) == 198.0


def test_latency_histogram_buckets_and_quantiles() -> None:
    hist = LatencyHistogram(bounds=(0.1, 0.5, 1.0))
    for s in (0.05, 0.1, 0.3, 0.7, 2.0, -1.0, float("nan")):
        hist.add(s)
    # le is inclusive (Prometheus): 0.1 falls in the first bucket; -1 counts as 0; NaN is dropped
    assert hist.cumulative() == [(0.1, 3), (0.5, 4), (1.0, 5), (math.inf, 6)]
    assert hist.count == 6 and hist.sum_s == pytest.approx(3.15)
    b = [(le, float(n)) for le, n in hist.cumulative()]
    # rank 3 of 6 is the first bucket's top; rank 4.5 lies half-way through (0.5, 1.0]
    assert quantile_from_buckets(0.5, b) == pytest.approx(0.1)
    assert quantile_from_buckets(0.75, b) == pytest.approx(0.75)
    assert quantile_from_buckets(0.99, b) == 1.0  # in the +Inf bucket: the highest finite bound
    assert quantile_from_buckets(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    with pytest.raises(ValueError, match="quantile"):
        quantile_from_buckets(0.0, b)
    with pytest.raises(ValueError, match="increasing"):
        LatencyHistogram(bounds=(1.0, 0.5))
