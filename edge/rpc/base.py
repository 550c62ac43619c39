"""The one JSON-RPC interface every chain-facing component is given (a protocol).

A :class:`JsonRpc` is an open connection to one node: WebSocket (:class:`edge.rpc.ws.WsRpc`),
HTTP (:class:`edge.rpc.http.HttpRpc`) or an in-memory stand-in for tests
(:class:`edge.rpc.mock.MockRpc`, in the spirit of httpx's ``MockTransport``). Components
never build one themselves: they are handed an :data:`RpcFactory` at start-up (as
gpiozero's devices are handed a pin factory) and enter what it returns.

Spec: JSON-RPC 2.0 (https://www.jsonrpc.org/specification); Ethereum's ``eth_subscribe``
pub/sub (geth "RPC pub/sub").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

__all__ = ["Call", "JsonRpc", "RpcFactory"]

Call = tuple[str, Sequence[Any]]
"""One request of a batch: ``(method, params)``."""


@runtime_checkable
class JsonRpc(Protocol):
    """An open JSON-RPC connection to one node; an async context manager.

    Attributes:
        url: the endpoint (used in messages only).
        heads: after :meth:`subscribe_heads`, receives the block number (int) of every
            ``newHeads`` notification; a wake-up, not data (bounded, oldest dropped).

    Every method raises only :class:`edge.errors.ChainError` subclasses:
    ``NodeUnavailable`` (cannot connect, connection lost), ``RpcTimeout`` (no answer in
    time), ``RpcError``/``MethodNotSupported`` (an error object), ``RpcProtocolError``
    (not JSON-RPC, or an answer nobody asked for).
    """

    url: str
    heads: asyncio.Queue[int]

    async def __aenter__(self) -> JsonRpc: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Send one request; return its ``result`` (any JSON value)."""
        ...

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Send a batch; return the results in request order. When any request failed,
        the first error in request order is raised after every answer is in."""
        ...

    async def subscribe_heads(self) -> str:
        """``eth_subscribe("newHeads")``; notifications feed :attr:`heads`. Returns the
        subscription id. Raises MethodNotSupported where the transport or node has none."""
        ...


class RpcFactory(Protocol):
    """Makes a (not yet entered) :class:`JsonRpc` for an endpoint.

    The default is :func:`edge.rpc.open_rpc` (WebSocket for ``ws(s)://``, HTTP for
    ``http(s)://``); tests inject one that returns :class:`~edge.rpc.mock.MockRpc` or
    wraps a real node.
    """

    def __call__(self, url: str, *, timeout: float) -> JsonRpc: ...
