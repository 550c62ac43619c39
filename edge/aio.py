"""Small asyncio helpers shared by the long-lived components (a primitive: no edge imports).

* :func:`enter_all` enters several async context managers on one
  :class:`contextlib.AsyncExitStack`, all or nothing.
* :func:`first_error` picks the error that matters out of a :class:`BaseExceptionGroup`
  raised by an :class:`asyncio.TaskGroup`.
* :func:`cancel_and_wait` stops a task and waits for its end without swallowing a
  cancel of the caller's own.
* :class:`Changed`: a broadcast "my state changed", so a caller waits for a condition
  by notification instead of polling or sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

__all__ = ["enter_all", "first_error", "cancel_and_wait", "Changed"]


async def enter_all(stack: AsyncExitStack, cms: Iterable[AbstractAsyncContextManager[Any]]) -> None:
    """Enter every context manager of ``cms`` in order on ``stack``, all or nothing.

    Args:
        stack: the owner's exit stack; closing it later exits them in reverse order.
        cms: async context managers (their ``__aenter__`` results are not kept: the
            components here return ``self``).

    Raises:
        BaseException: whatever an ``__aenter__`` raises, after the ones already entered
            have been exited (``stack`` is closed), so a failed start leaks no socket,
            process or database handle.
    """
    try:
        for cm in cms:
            await stack.enter_async_context(cm)
    except BaseException:
        await stack.aclose()
        raise


def first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in ``eg`` (depth first) that is not a cancellation.

    A :class:`asyncio.TaskGroup` wraps the failing task's error together with the
    ``CancelledError`` of its siblings; the caller wants the cause. Falls back to the
    group's first member when every member is a cancellation. Never raises.
    """
    for e in eg.exceptions:
        if isinstance(e, BaseExceptionGroup):
            return first_error(e)
        if not isinstance(e, asyncio.CancelledError):
            return e
    return eg.exceptions[0]


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended.

    Unlike ``task.cancel(); await task`` inside ``except CancelledError: pass``, a
    cancel of the *caller* that arrives meanwhile is not swallowed: it is raised.

    Raises:
        BaseException: the task's own error when it ended with one other than its
            cancellation; CancelledError when the caller itself is cancelled.
    """
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


class Changed:
    """A broadcast notification without payload: the owner calls :meth:`notify` after
    each change of its state; any number of tasks :meth:`wait_until` a predicate holds.

    Unlike :class:`asyncio.Condition` it has no lock to re-acquire, so a cancelled waiter
    leaves at once and :meth:`notify` never waits (it may be called from any coroutine).
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every waiter (each re-checks its predicate)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true (checked now and after each notify)."""
        while not predicate():
            await self._event.wait()
