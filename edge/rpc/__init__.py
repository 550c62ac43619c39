"""JSON-RPC to chain nodes: one protocol, three transports, one factory.

- :class:`JsonRpc` (:mod:`edge.rpc.base`): ``call``, ``batch``, ``subscribe_heads``.
- :class:`WsRpc` (WebSocket, the ingest hot path), :class:`HttpRpc` (HTTP, the public
  tiers), :class:`MockRpc` (in memory, for tests).
- :func:`open_rpc`: the default :class:`RpcFactory`, by URL scheme.
- :mod:`edge.rpc.codec`: strict decoding of JSON-RPC hex values.

Transports are imported on use, so ``import edge.rpc`` loads neither websockets nor aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.rpc.base import Call, JsonRpc, RpcFactory

if TYPE_CHECKING:
    from edge.rpc.http import HttpRpc
    from edge.rpc.mock import MockRpc
    from edge.rpc.ws import WsRpc

__all__ = ["Call", "JsonRpc", "RpcFactory", "open_rpc", "WsRpc", "HttpRpc", "MockRpc"]


def open_rpc(url: str, *, timeout: float = 10.0) -> JsonRpc:
    """The default :class:`RpcFactory`: a :class:`WsRpc` for ``ws://``/``wss://``, an
    :class:`HttpRpc` for ``http://``/``https://`` (not yet entered).

    Args: url: the node's endpoint. timeout: seconds per answer (and to connect).
    Raises: ValueError for any other scheme (configs are checked at load, so this is a
        programming error).
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("ws", "wss"):
        from edge.rpc.ws import WsRpc

        return WsRpc(url, timeout=timeout)
    if scheme in ("http", "https"):
        from edge.rpc.http import HttpRpc

        return HttpRpc(url, timeout=timeout)
    raise ValueError(f"no JSON-RPC transport for {url!r}: expected ws(s):// or http(s)://")


def __getattr__(name: str) -> object:
    if name == "WsRpc":
        from edge.rpc.ws import WsRpc

        return WsRpc
    if name == "HttpRpc":
        from edge.rpc.http import HttpRpc

        return HttpRpc
    if name == "MockRpc":
        from edge.rpc.mock import MockRpc

        return MockRpc
    raise AttributeError(name)
