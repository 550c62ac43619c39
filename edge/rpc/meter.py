"""Answer sizes counted for the requests that asked for them, even when other requests
share the connection at the same time.

A transport's ``largest_frame`` is the largest frame the connection received since it was
reset: with two readers on one connection (the ingest stage writing batch n while batch
n+1 is fetched ahead) it mixes their answers. :func:`metered` opens an
:class:`AnswerMeter` in the current task's context (a :class:`contextvars.ContextVar`;
every asyncio task runs in its own copy), and a transport adds the size of each answer
frame to the meter that was current when its request was *sent*
(:class:`edge.rpc.ws.WsRpc`, :class:`edge.rpc.http.HttpRpc`; :class:`edge.rpc.mock.MockRpc`
counts nothing). A primitive: no edge imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["AnswerMeter", "metered", "current_meter"]


@dataclass(slots=True)
class AnswerMeter:
    """Sizes (bytes of JSON text, i.e. characters) of the answers to the requests sent
    while this meter was current. ``largest``: the largest frame (a batch answer is one
    frame); ``frames``: how many frames were counted. A frame answering several requests
    of one batch is counted once per request: ``largest`` is exact, ``frames`` an upper
    bound."""

    largest: int = 0
    frames: int = 0

    def saw(self, size: int) -> None:
        """Count one answer frame of ``size`` bytes."""
        self.frames += 1
        if size > self.largest:
            self.largest = size


_METER: ContextVar[AnswerMeter | None] = ContextVar("edge_rpc_answer_meter", default=None)


def current_meter() -> AnswerMeter | None:
    """The meter requests sent now are counted in (None: none open). For transports."""
    return _METER.get()


@contextmanager
def metered() -> Iterator[AnswerMeter]:
    """Open a fresh :class:`AnswerMeter` for the requests this task sends inside the
    ``with`` block (nested blocks: the inner one counts, the outer does not see it)."""
    meter = AnswerMeter()
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)
