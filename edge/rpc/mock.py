"""An in-memory :class:`edge.rpc.base.JsonRpc` for tests (like httpx's ``MockTransport``).

Only for what a real node cannot be made to produce (a malformed answer, a timeout at a
chosen request, a notification racing an answer): where a node can answer, tests use
anvil. The handler sees every request and returns its ``result`` (any JSON value) or
raises a :class:`edge.errors.ChainError` (``RpcError``, ``NodeUnavailable`` ...), which
the caller receives exactly as from a real transport.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from edge.errors import MethodNotSupported, NodeUnavailable
from edge.rpc.base import Call, JsonRpc

__all__ = ["Handler", "MockRpc", "MockNetwork"]

Handler = Callable[[str, list[Any]], Any | Awaitable[Any]]
"""``handler(method, params) -> result`` (or an awaitable of it); raise to fail the request."""


class MockRpc:
    """A :class:`JsonRpc` answered by ``handler``. An async context manager.

    Args:
        handler: see :data:`Handler`.
        url: shown in messages (default ``mock://``).
        subscriptions: whether ``eth_subscribe`` is offered (else MethodNotSupported).

    Attributes:
        calls: every ``(method, params)`` received, in order (batches flattened).
        heads: newHeads wake-ups, fed by :meth:`push_head`.

    Raises NodeUnavailable when used before it is entered or after it is closed.
    """

    def __init__(self, handler: Handler, *, url: str = "mock://", subscriptions: bool = True) -> None:
        self.url = url
        self.handler = handler
        self.subscriptions = subscriptions
        self.heads: asyncio.Queue[int] = asyncio.Queue(maxsize=64)
        self.calls: list[tuple[str, list[Any]]] = []
        self.open = False

    async def __aenter__(self) -> MockRpc:
        self.open = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.open = False

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Answer one request through the handler (see class doc)."""
        if not self.open:
            raise NodeUnavailable(f"{method}: {self.url} is not open")
        self.calls.append((method, list(params)))
        res = self.handler(method, list(params))
        if inspect.isawaitable(res):
            res = await res
        return res

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Answer each request in order; raise the first failure after all are answered."""
        out: list[Any] = []
        first: BaseException | None = None
        for m, p in calls:
            try:
                out.append(await self.call(m, p))
            except Exception as e:  # noqa: BLE001 - re-raised below, like a real batch
                first = first or e
                out.append(None)
        if first is not None:
            raise first
        return out

    async def subscribe_heads(self) -> str:
        """``eth_subscribe("newHeads")``: an id, or MethodNotSupported when disabled."""
        if not self.subscriptions:
            raise MethodNotSupported("eth_subscribe", -32601, "the method eth_subscribe does not exist")
        self.calls.append(("eth_subscribe", ["newHeads"]))
        return "0x1"

    def push_head(self, number: int) -> None:
        """Deliver a ``newHeads`` wake-up for block ``number`` (oldest dropped when full)."""
        if self.heads.full():
            self.heads.get_nowait()
        self.heads.put_nowait(number)


@dataclass
class MockNetwork:
    """An :class:`edge.rpc.base.RpcFactory` whose connections are :class:`MockRpc`.

    Args: handlers: URL -> handler; an unknown URL fails to connect (NodeUnavailable).

    Attributes: connections: every MockRpc made, in order (a reconnect makes a new one).
    """

    handlers: dict[str, Handler]
    subscriptions: bool = True
    connections: list[MockRpc] = field(default_factory=list)

    def __call__(self, url: str, *, timeout: float) -> JsonRpc:
        """A new, not yet entered MockRpc for ``url`` (``timeout`` is ignored)."""
        if url not in self.handlers:
            return _Unreachable(url)  # type: ignore[return-value]
        rpc = MockRpc(self.handlers[url], url=url, subscriptions=self.subscriptions)
        self.connections.append(rpc)
        return rpc


class _Unreachable:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> JsonRpc:
        raise NodeUnavailable(f"cannot connect to {self.url}: no such mock endpoint")

    async def __aexit__(self, *exc: object) -> None:
        return None
