"""A lean JSON-RPC 2.0 client over one WebSocket, for the ingest hot path.

Why not web3's ``WebSocketProvider`` here: the agent needs the node's *raw* answers,
validated field by field (:mod:`edge.rpc.codec`), JSON-RPC batches, ``eth_subscribe``
notifications as plain wake-ups, and its *own* reconnect-and-backfill policy. web3 8's
persistent provider formats subscription payloads (and validates PoA ``extraData``
lengths there), keeps listener-task exceptions in a side task, and retries on its own;
it also costs about 1 s of import (6 s on arm64 under emulation). web3 is still used
where it is the right tool (building and signing transactions, contract calls).

Spec: JSON-RPC 2.0 (https://www.jsonrpc.org/specification), Ethereum's ``eth_subscribe``
pub/sub over WebSocket (geth "RPC pub/sub"). Transport: the ``websockets`` library
(RFC 6455).

Errors: every failure surfaces as an :class:`edge.errors.ChainError`:

- :class:`~edge.errors.NodeUnavailable`: cannot connect, connection lost;
  :class:`~edge.errors.RpcTimeout` (a subclass): no answer within ``timeout``.
- :class:`~edge.errors.RpcError` / :class:`~edge.errors.MethodNotSupported`: the node
  answered with an error object.
- :class:`~edge.errors.RpcProtocolError`: the answer is not JSON, not JSON-RPC 2.0, or a
  notification/answer nobody asked for. A frame that cannot be attributed to a request
  poisons the connection: every pending request fails and the connection is closed, so
  the caller reconnects instead of trusting a confused stream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Sequence
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from edge.errors import (
    AnswerTooLarge,
    ChainError,
    NodeUnavailable,
    RpcProtocolError,
    RpcTimeout,
)
from edge.rpc.base import Call
from edge.rpc.errors import error_from_object
from edge.rpc.meter import AnswerMeter, current_meter

__all__ = ["WsRpc", "Call"]

log = logging.getLogger("edge.rpc")

_MAX_FRAME = 64 * 2**20  # a block with receipts or traces can be large


class WsRpc:
    """JSON-RPC over one WebSocket connection (a :class:`edge.rpc.base.JsonRpc`). An async
    context manager, entered once by its owner.

    Args:
        url: ``ws://`` or ``wss://`` endpoint of the node.
        timeout: seconds to wait for each answer (and for the connection).

    Raises (on enter): NodeUnavailable when the node cannot be reached.

    After ``await rpc.subscribe_heads()``, :attr:`heads` is an :class:`asyncio.Queue`
    that receives the block number of every ``newHeads`` notification (bounded; when
    full, the oldest is dropped: a wake-up, not data).

    :attr:`largest_frame` is the size (characters, i.e. bytes of JSON text) of the largest
    frame received since the caller last set it to 0: the ingest stage sizes its batches
    by it (a batch answer is one frame). With several readers on the connection, each
    counts its own answers in an :class:`edge.rpc.meter.AnswerMeter` (:func:`~edge.rpc.meter.metered`).
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.heads: asyncio.Queue[int] = asyncio.Queue(maxsize=64)
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._meters: dict[int, AnswerMeter] = {}  # request id -> the meter open when it was sent
        self._subs: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._failure: ChainError | None = None
        self.largest_frame = 0

    async def __aenter__(self) -> WsRpc:
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: it can lose a cancel (gh-86296)
                self._ws = await websockets.connect(self.url, max_size=_MAX_FRAME, open_timeout=self.timeout)
        except TimeoutError as e:
            raise RpcTimeout(f"cannot connect to {self.url}: no answer within {self.timeout:g} s") from e
        except (OSError, websockets.exceptions.WebSocketException, ValueError) as e:
            # ValueError: websockets' InvalidURI and friends for a URL it cannot parse
            raise NodeUnavailable(f"cannot connect to {self.url}: {e or type(e).__name__}") from e
        self._reader = asyncio.create_task(self._read_loop(), name=f"rpc-reader {self.url}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; pending requests fail with NodeUnavailable."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.cancel()
            await asyncio.wait({reader})  # the reader's end is not ours to raise; a cancel of ours is
            if not reader.cancelled():
                reader.exception()  # retrieved: closing anyway
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._fail_all(NodeUnavailable(f"connection to {self.url} closed"))

    # -- requests ---------------------------------------------------------------------

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Send one request; return its ``result``.

        Raises: NodeUnavailable, RpcError (MethodNotSupported for -32601), RpcProtocolError.
        """
        rid = next(self._ids)
        fut = self._expect(rid, method)
        await self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}, [fut])
        return await self._wait(fut, method)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Send a JSON-RPC batch; return the results in request order.

        If any request of the batch failed, its error is raised (the first in request
        order) after all answers are in; use small batches of related calls.
        """
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        futs = [self._expect(i, m) for i, (m, _) in zip(ids, calls)]
        await self._send(
            [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, calls)
            ],
            futs,
        )
        # every future is awaited (and its exception retrieved), whatever fails first
        outcomes = await asyncio.gather(*(self._wait(f, m) for f, (m, _) in zip(futs, calls)),
                                        return_exceptions=True)
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
        return list(outcomes)

    async def subscribe_heads(self) -> str:
        """``eth_subscribe("newHeads")``; notifications feed :attr:`heads`. Returns the id."""
        # the id is registered by the reader the moment the answer arrives (see
        # _dispatch), so a notification right behind the answer is never "unknown"
        sid = await self.call("eth_subscribe", ["newHeads"])
        if not isinstance(sid, str):
            raise RpcProtocolError("eth_subscribe", f"subscription id is not a string: {sid!r:.80}")
        return sid

    # -- internals --------------------------------------------------------------------

    def _expect(self, rid: int, method: str) -> asyncio.Future[Any]:
        if self._failure is not None:
            raise self._failure
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        meter = current_meter()
        if meter is not None:
            self._meters[rid] = meter
        return fut

    async def _send(self, payload: Any, futs: Sequence[asyncio.Future[Any]]) -> None:
        """Send one frame; on failure the requests' futures are settled and retrieved
        (no "Future exception was never retrieved"), and the error is raised."""
        try:
            if self._ws is None:
                raise NodeUnavailable(f"not connected to {self.url}")
            try:
                await self._ws.send(json.dumps(payload, separators=(",", ":")))
            except (OSError, websockets.exceptions.WebSocketException) as e:
                err = NodeUnavailable(f"connection to {self.url} lost while sending: {e}")
                self._fail_all(err)
                raise err from e
        except BaseException:
            for f in futs:
                if f.done() and not f.cancelled():
                    f.exception()
                else:
                    f.cancel()
            raise

    async def _wait(self, fut: asyncio.Future[Any], method: str) -> Any:
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: it can lose a cancel (gh-86296)
                return await fut
        except TimeoutError:
            raise RpcTimeout(f"{method}: no answer from {self.url} within {self.timeout:g} s") from None

    def _fail_all(self, err: ChainError) -> None:
        self._failure = self._failure or err
        pending, self._pending = self._pending, {}
        self._meters.clear()
        for _, fut in pending.values():
            if not fut.done():
                fut.set_exception(err)

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                self._on_frame(frame)
                del frame  # not held while the next frame is awaited (a batch answer can be tens of MB)
            self._fail_all(NodeUnavailable(f"node {self.url} closed the connection"))
        except RpcProtocolError as e:
            log.error("%s; closing connection to %s", e, self.url)
            self._fail_all(e)
            await self._ws.close()
        except (OSError, websockets.exceptions.WebSocketException) as e:
            closed = e.sent if isinstance(e, websockets.exceptions.ConnectionClosed) else None
            if closed is not None and closed.code == 1009:  # our side closed: "message too big"
                self._fail_all(AnswerTooLarge(f"connection to {self.url} lost: {e} (ask for less per request)"))
            else:
                self._fail_all(NodeUnavailable(f"connection to {self.url} lost: {e}"))

    def _on_frame(self, frame: str | bytes) -> None:
        self.largest_frame = max(self.largest_frame, len(frame))
        try:
            msg = json.loads(frame)
        except ValueError:
            raise RpcProtocolError(self._pending_methods(), f"frame is not JSON: {str(frame)[:80]!r}") from None
        for item in msg if isinstance(msg, list) else [msg]:
            self._dispatch(item, len(frame))

    def _pending_methods(self) -> str:
        names = sorted({m for m, _ in self._pending.values()})
        return ",".join(names) if names else "<no request>"

    def _dispatch(self, item: Any, size: int) -> None:
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
            raise RpcProtocolError(self._pending_methods(), f"not a JSON-RPC 2.0 object: {item!r:.120}")
        if item.get("method") == "eth_subscription":
            params = item.get("params")
            if not isinstance(params, dict) or params.get("subscription") not in self._subs:
                raise RpcProtocolError("eth_subscription", f"unknown subscription: {item!r:.120}")
            self._on_head(params.get("result"))
            return
        rid = item.get("id")
        entry = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if entry is None:
            raise RpcProtocolError(self._pending_methods(), f"answer to unknown id {rid!r:.40}")
        meter = self._meters.pop(rid, None) if isinstance(rid, int) else None
        if meter is not None:
            meter.saw(size)
        method, fut = entry
        if fut.done():
            return
        if "error" in item:
            fut.set_exception(error_from_object(method, item["error"]))
        elif "result" in item:
            if method == "eth_subscribe" and isinstance(item["result"], str):
                self._subs.add(item["result"])
            fut.set_result(item["result"])
        else:
            fut.set_exception(RpcProtocolError(method, "neither result nor error in answer"))

    def _on_head(self, header: Any) -> None:
        number = header.get("number") if isinstance(header, dict) else None
        if not isinstance(number, str):
            raise RpcProtocolError("eth_subscription", f"newHeads without a number: {header!r:.120}")
        try:
            n = int(number, 16)
        except ValueError:
            raise RpcProtocolError("eth_subscription", f"newHeads number {number!r:.40}") from None
        if self.heads.full():
            self.heads.get_nowait()
        self.heads.put_nowait(n)
