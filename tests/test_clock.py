"""MockClock: virtual time that moves only when a test says so."""

from __future__ import annotations

import asyncio

import pytest

from edge.clock import MockClock, SystemClock


async def test_sleepers_wake_in_deadline_order_only_when_time_is_advanced() -> None:
    clock = MockClock()
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 5.0)), asyncio.create_task(sleeper("early", 1.0))]
    await clock.wait_sleepers(2)
    assert woke == []
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert woke == ["early"]
    assert clock.advance_to_next() == pytest.approx(4.0)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"] and clock.monotonic() == pytest.approx(5.0)


async def test_wait_for_times_out_in_mock_time_and_cancels_the_awaitable() -> None:
    clock = MockClock()
    never = asyncio.Event()
    waiter = asyncio.create_task(clock.wait_for(never.wait(), 30.0))
    await clock.wait_sleepers(1)
    clock.advance(29.9)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(0.2)
    with pytest.raises(TimeoutError, match="30 s of mock time"):
        await waiter


async def test_wait_for_returns_the_result_before_the_timeout() -> None:
    clock = MockClock()

    async def quick() -> int:
        return 7

    assert await clock.wait_for(quick(), 1.0) == 7
    assert await SystemClock().wait_for(quick(), 1.0) == 7


def test_wall_time_moves_with_monotonic_time() -> None:
    clock = MockClock(start=10.0, wall=1_000.0)
    clock.advance(2.5)
    assert clock.monotonic() == 12.5 and clock.time() == 1_002.5
