"""A fault-injecting JSON-RPC proxy: a small asyncio WebSocket server on 127.0.0.1 that
sits between the agent and a real node (anvil) and rewrites the node's answers.

Every client connection gets its own upstream connection; requests go up unchanged, and
each answer (also inside a batch) passes through the faults whose method matches:

============  ==============================================================
``cut``       a hex string (the result, or ``path`` in it) cut to 3/4 of its
              bytes, still valid hex (an ``eth_getCode`` cut short)
``flip``      one hex digit in the middle of that string changed
``swap``      the values at ``path`` and ``other`` exchanged (two logs, two
              fields, two receipts ...)
``set``       the value at ``path`` replaced by ``value``
``drop``      the answer is not sent (the client times out)
``delay``     the frame carrying the answer is sent ``delay_s`` later
``duplicate`` the answer is sent twice
``error``     a JSON-RPC error object instead of the result
``garble``    the frame is replaced by bytes that are not JSON
``reorder``   the answers of a batch are sent in reverse order
============  ==============================================================

A fault applies ``times`` times (None: until removed), optionally only when ``when``
accepts the request's params; a rewrite applies only to answers that have its field
(a swap of two logs skips a block without two logs), and only those are counted. :meth:`FaultProxy.lag` opens a window during which the
node seems to be behind: ``eth_blockNumber`` answers the head frozen at the start,
blocks and receipts above it answer ``null``, and ``newHeads`` above it are withheld.
:attr:`FaultProxy.applied` counts what was done, per ``(method, action)``.

Paths are relative to the result: ``""`` (the result itself), ``"logs[0].data"``,
``"[2].logs"``, ``"transactions[1].input"``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve

from edge.devnet.anvil import free_port

__all__ = ["Fault", "FaultProxy", "get_path", "set_path"]

Action = Literal["cut", "flip", "swap", "set", "drop", "delay", "duplicate", "error", "garble", "reorder"]

_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in _SEG.findall(path)]


def get_path(obj: Any, path: str) -> Any:
    """The value at ``path`` inside ``obj`` (see the module doc). Raises KeyError/IndexError."""
    for seg in _parse(path):
        obj = obj[seg]
    return obj


def set_path(obj: Any, path: str, value: Any) -> Any:
    """Set the value at ``path`` (``""``: return ``value`` as the new root); returns the root."""
    segs = _parse(path)
    if not segs:
        return value
    parent = obj
    for seg in segs[:-1]:
        parent = parent[seg]
    parent[segs[-1]] = value
    return obj


def _cut(v: Any) -> Any:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise ValueError(f"cut needs a hex string, got {v!r:.40}")
    n = (len(v) - 2) // 2
    return v[: 2 + 2 * (n * 3 // 4)]


def _flip(v: Any) -> Any:
    if not isinstance(v, str) or not v.startswith("0x") or len(v) < 3:
        raise ValueError(f"flip needs a non-empty hex string, got {v!r:.40}")
    i = 2 + (len(v) - 2) // 2
    return v[:i] + ("1" if v[i] == "0" else "0") + v[i + 1:]


_REWRITES = ("cut", "flip", "swap", "set")


def _applies(f: "Fault", item: dict[str, Any]) -> bool:
    """True when a rewrite fault finds its field(s) in this answer."""
    result = item.get("result")
    if result is None:
        return False
    try:
        for path in (f.path, f.other) if f.action == "swap" else (f.path,):
            v = get_path(result, path)
            if f.action in ("cut", "flip") and not (isinstance(v, str) and v.startswith("0x") and len(v) >= 3):
                return False  # what _cut and _flip can rewrite (a hex string with a digit)
    except (KeyError, IndexError, TypeError):
        return False
    return True


@dataclass
class Fault:
    """One rewrite rule (see the module doc). ``method`` ``"*"`` matches every method."""

    method: str
    action: Action
    path: str = ""
    other: str = ""
    value: Any = None
    delay_s: float = 0.0
    times: int | None = None
    when: Callable[[list[Any]], bool] | None = None
    error: tuple[int, str] = (-32000, "internal error (injected)")

    def matches(self, method: str, params: list[Any]) -> bool:
        """True when this fault applies to a request (and has uses left)."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method not in ("*", method):
            return False
        return self.when is None or bool(self.when(params))


@dataclass
class _Lag:
    head: int
    until: float


@dataclass
class FaultProxy:
    """The proxy. An async context manager; :attr:`url` is its ``ws://127.0.0.1:PORT``.

    Args:
        upstream: the node's WebSocket URL (``ws://127.0.0.1:...``; loopback only).
    """

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    applied: Counter[tuple[str, str]] = field(default_factory=Counter)
    port: int = 0
    _server: Server | None = None
    _lag: _Lag | None = None
    _conns: set[ServerConnection] = field(default_factory=set)

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` to give the agent instead of the node's URL."""
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        if not self.upstream.startswith("ws://127.0.0.1:"):
            raise ValueError("the fault proxy forwards to a loopback node only")
        self.port = self.port or free_port()
        self._server = await serve(self._handle, "127.0.0.1", self.port, max_size=None)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def add(self, *faults: Fault) -> None:
        """Add faults (applied in the order added)."""
        self.faults.extend(faults)

    def clear(self) -> None:
        """Remove every fault and end a lag window: the node is healthy again."""
        self.faults.clear()
        self._lag = None

    async def drop_connections(self) -> None:
        """Close every client connection (a node restart, seen from the agent)."""
        for c in list(self._conns):
            await c.close()

    async def lag(self, seconds: float) -> int:
        """Make the node seem ``seconds`` behind from now; returns the frozen head."""
        async with connect(self.upstream) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}))
            head = int(json.loads(await ws.recv())["result"], 16)
        self._lag = _Lag(head, asyncio.get_running_loop().time() + seconds)
        return head

    def lagging_head(self) -> int | None:
        """The frozen head while a lag window is open, else None."""
        if self._lag is not None and asyncio.get_running_loop().time() < self._lag.until:
            return self._lag.head
        self._lag = None
        return None

    # -- plumbing -----------------------------------------------------------------------

    async def _handle(self, client: ServerConnection) -> None:
        self._conns.add(client)
        methods: dict[Any, tuple[str, list[Any]]] = {}
        try:
            async with connect(self.upstream, max_size=None) as up:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._up(client, up, methods))
                    tg.create_task(self._down(client, up, methods))
        except* (websockets.exceptions.ConnectionClosed, OSError):
            pass
        finally:
            self._conns.discard(client)

    async def _up(self, client: ServerConnection, up: ClientConnection,
                  methods: dict[Any, tuple[str, list[Any]]]) -> None:
        async for frame in client:
            try:
                msg = json.loads(frame)
                for r in msg if isinstance(msg, list) else [msg]:
                    methods[r.get("id")] = (str(r.get("method")), list(r.get("params") or []))
            except (ValueError, AttributeError):
                pass
            await up.send(frame)
        await up.close()

    async def _down(self, client: ServerConnection, up: ClientConnection,
                    methods: dict[Any, tuple[str, list[Any]]]) -> None:
        async for frame in up:
            msg = json.loads(frame)
            batch = isinstance(msg, list)
            items = msg if batch else [msg]
            out: list[Any] = []
            delay = 0.0
            dup = garble = reorder = False
            for item in items:
                if item.get("method") == "eth_subscription":
                    if not self._withhold_head(item):
                        out.append(item)
                    continue
                method, params = methods.pop(item.get("id"), ("", []))
                item = self._lagged(method, params, item)
                keep = True
                for f in self.faults:
                    if not f.matches(method, params):
                        continue
                    if f.action in _REWRITES and not _applies(f, item):
                        continue  # this answer has no such field (an empty block): not counted
                    if f.times is not None:
                        f.times -= 1
                    self.applied[(method, f.action)] += 1
                    if f.action == "drop":
                        keep = False
                    elif f.action == "delay":
                        delay = max(delay, f.delay_s)
                    elif f.action == "duplicate":
                        dup = True
                    elif f.action == "garble":
                        garble = True
                    elif f.action == "reorder":
                        reorder = True
                    elif f.action == "error":
                        item = {"jsonrpc": "2.0", "id": item.get("id"),
                                "error": {"code": f.error[0], "message": f.error[1]}}
                    elif "result" in item and item["result"] is not None:
                        item["result"] = _rewrite(f, item["result"])
                if keep:
                    out.append(item)
            if not out:
                continue
            if reorder:
                out.reverse()
            if delay:
                await asyncio.sleep(delay)  # the injected latency itself, not synchronisation
            text = "<html>502 Bad Gateway</html>" if garble else json.dumps(out if batch else out[0])
            await client.send(text)
            if dup:
                await client.send(text)

    def _withhold_head(self, item: dict[str, Any]) -> bool:
        frozen = self.lagging_head()
        if frozen is None:
            return False
        try:
            n = int(item["params"]["result"]["number"], 16)
        except (KeyError, TypeError, ValueError):
            return False
        if n > frozen:
            self.applied[("eth_subscription", "lag")] += 1
            return True
        return False

    def _lagged(self, method: str, params: list[Any], item: dict[str, Any]) -> dict[str, Any]:
        frozen = self.lagging_head()
        if frozen is None or "result" not in item:
            return item
        if method == "eth_blockNumber":
            self.applied[(method, "lag")] += 1
            return dict(item, result=hex(frozen))
        if method in ("eth_getBlockByNumber", "eth_getBlockReceipts", "trace_block") and params:
            tag = params[0]
            if isinstance(tag, str) and tag.startswith("0x") and int(tag, 16) > frozen:
                self.applied[(method, "lag")] += 1
                return dict(item, result=None)
        return item


def _rewrite(f: Fault, result: Any) -> Any:
    if f.action == "cut":
        return set_path(result, f.path, _cut(get_path(result, f.path)))
    if f.action == "flip":
        return set_path(result, f.path, _flip(get_path(result, f.path)))
    if f.action == "set":
        return set_path(result, f.path, f.value)
    if f.action == "swap":
        a, b = get_path(result, f.path), get_path(result, f.other)
        set_path(result, f.path, b)
        return set_path(result, f.other, a)
    raise ValueError(f"unknown action {f.action}")  # pragma: no cover

