"""First-seen times of block numbers (edge.ingest.seen) and the p99 used by the demo."""

from __future__ import annotations

import pytest

from edge.ingest.seen import FirstSeen, p99


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
