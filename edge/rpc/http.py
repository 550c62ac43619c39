"""JSON-RPC 2.0 over HTTP (the public tiers, and nodes without WebSocket).

Outbound HTTP only (no inbound port on the device). Transport: aiohttp (a web3
dependency). Answers are checked as in :mod:`edge.rpc.ws`; every failure is an
:class:`edge.errors.ChainError` naming the method and URL. A JSON-RPC error's ``data``
(for example a revert's ABI-encoded error) is appended to the message, where
:func:`edge.forward.node_errors.revert_data` finds it.

Spec: JSON-RPC 2.0 (https://www.jsonrpc.org/specification), batches included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp

from edge.errors import MethodNotSupported, NodeUnavailable, RpcProtocolError, RpcTimeout
from edge.rpc.base import Call
from edge.rpc.errors import error_from_object
from edge.rpc.meter import current_meter

__all__ = ["HttpRpc"]


class HttpRpc:
    """JSON-RPC over HTTP to one node (a :class:`edge.rpc.base.JsonRpc`). An async
    context manager, entered once by its owner.

    Args: url: ``http(s)://`` endpoint. timeout: seconds per request.

    HTTP has no subscriptions: :meth:`subscribe_heads` raises MethodNotSupported and
    :attr:`heads` stays empty (callers poll).
    """

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self.timeout = timeout
        self.heads: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self.largest_frame = 0
        """Size (characters of JSON text) of the largest answer body since the caller last
        set it to 0. Each answer is also counted in the :class:`edge.rpc.meter.AnswerMeter`
        open in the sender's task, if any (:func:`edge.rpc.meter.metered`)."""

    async def __aenter__(self) -> HttpRpc:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, what: str, body: Any) -> Any:
        if self._session is None:
            raise NodeUnavailable(f"{what}: HTTP client for {self.url} is not open")
        meter = current_meter()
        try:
            async with self._session.post(self.url, json=body) as resp:
                text = await resp.text()
        except TimeoutError as e:
            raise RpcTimeout(f"{what}: no answer from {self.url} within {self.timeout:g} s") from e
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise NodeUnavailable(f"{what}: {self.url} unreachable: {e or type(e).__name__}") from e
        self.largest_frame = max(self.largest_frame, len(text))
        if meter is not None:
            meter.saw(len(text))
        try:
            return json.loads(text)
        except ValueError:
            raise RpcProtocolError(what, f"answer is not JSON: {text[:80]!r}") from None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One request; returns ``result``. Raises NodeUnavailable (RpcTimeout), RpcError
        (MethodNotSupported), RpcProtocolError."""
        rid = next(self._ids)
        ans = await self._post(method, {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)})
        return _result(method, ans)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """A JSON-RPC batch in one POST; results in request order. Raises the first error
        in request order (after every answer is in), as :meth:`call` does."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        what = ",".join(sorted({m for m, _ in calls}))
        ans = await self._post(what, [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                                      for i, (m, p) in zip(ids, calls)])
        if isinstance(ans, dict) and "error" in ans:  # the whole batch refused
            raise error_from_object(what, ans["error"])
        if not isinstance(ans, list):
            raise RpcProtocolError(what, f"batch answer is not an array: {str(ans)[:80]!r}")
        by_id = {a.get("id"): a for a in ans if isinstance(a, dict)}
        out: list[Any] = []
        for rid, (m, _) in zip(ids, calls):
            if rid not in by_id:
                raise RpcProtocolError(m, f"no answer to batch request id {rid}")
            out.append(_result(m, by_id[rid]))
        return out

    async def subscribe_heads(self) -> str:
        """HTTP has no subscriptions. Raises: MethodNotSupported."""
        raise MethodNotSupported("eth_subscribe", -32601, f"{self.url} is HTTP: no subscriptions")


def _result(method: str, ans: Any) -> Any:
    if not isinstance(ans, dict) or ans.get("jsonrpc") != "2.0":
        raise RpcProtocolError(method, f"not a JSON-RPC 2.0 object: {str(ans)[:120]!r}")
    if "error" in ans:
        raise error_from_object(method, ans["error"])
    if "result" not in ans:
        raise RpcProtocolError(method, "neither result nor error in answer")
    return ans["result"]

