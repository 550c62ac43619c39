"""edge.aio: all-or-nothing entry of async context managers, and picking a TaskGroup's cause."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from edge.aio import enter_all, first_error


def test_enter_all_exits_the_entered_ones_when_one_fails() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def part(name: str, fail: bool = False) -> AsyncIterator[None]:
        if fail:
            raise OSError(f"{name} cannot start")
        events.append(f"enter {name}")
        try:
            yield
        finally:
            events.append(f"exit {name}")

    async def main() -> None:
        stack = AsyncExitStack()
        with pytest.raises(OSError, match="c cannot start"):
            await enter_all(stack, [part("a"), part("b"), part("c", fail=True), part("d")])

    asyncio.run(main())
    assert events == ["enter a", "enter b", "exit b", "exit a"]


def test_first_error_skips_cancellations_and_nesting() -> None:
    cause = ValueError("the stage failed")
    eg = BaseExceptionGroup("tg", [asyncio.CancelledError(), BaseExceptionGroup("inner", [cause])])
    assert first_error(eg) is cause
    only_cancelled = BaseExceptionGroup("tg", [asyncio.CancelledError()])
    assert isinstance(first_error(only_cancelled), asyncio.CancelledError)
