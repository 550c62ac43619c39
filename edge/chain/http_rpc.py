"""JSON-RPC 2.0 over HTTP for the public tiers (reads: ``eth_call``, ``eth_getLogs``, ...).

Outbound HTTP only (no inbound port on the device). Transport: aiohttp (a web3
dependency). Answers are checked as in :mod:`edge.chain.rpc`; every failure is an
:class:`edge.errors.ChainError` naming the method and URL.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp

from edge.chain import codec
from edge.errors import NodeUnavailable, RpcError, RpcProtocolError

__all__ = ["HttpRpc"]


class HttpRpc:
    """JSON-RPC over HTTP to one node. An async context manager.

    Args: url: ``http(s)://`` endpoint. timeout: seconds per request.
    """

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> HttpRpc:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One request; returns ``result``. Raises NodeUnavailable, RpcError, RpcProtocolError."""
        if self._session is None:
            raise NodeUnavailable(f"{method}: HTTP client for {self.url} is not open")
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            async with self._session.post(self.url, json=body) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise NodeUnavailable(f"{method}: {self.url} unreachable: {e or type(e).__name__}") from e
        try:
            import json

            ans = json.loads(text)
        except ValueError:
            raise RpcProtocolError(method, f"answer is not JSON: {text[:80]!r}") from None
        if not isinstance(ans, dict) or ans.get("jsonrpc") != "2.0":
            raise RpcProtocolError(method, f"not a JSON-RPC 2.0 object: {text[:120]!r}")
        if "error" in ans:
            err = ans["error"] if isinstance(ans["error"], dict) else {}
            raise RpcError(method, int(err.get("code", 0)), str(err.get("message", ""))
                           + (f" {err['data']}" if err.get("data") else ""))
        if "result" not in ans:
            raise RpcProtocolError(method, "neither result nor error in answer")
        return ans["result"]

    async def eth_call(self, to: bytes, data: bytes, block: str = "latest") -> bytes:
        """``eth_call`` of ``data`` on contract ``to``; returns the raw return data."""
        res = await self.call("eth_call", [{"to": "0x" + to.hex(), "data": "0x" + data.hex()}, block])
        return codec.data(res, "eth_call", "result")

    async def chain_id(self) -> int:
        """``eth_chainId`` as an int."""
        return codec.quantity(await self.call("eth_chainId"), "eth_chainId", "result")

    async def block_number(self) -> int:
        """``eth_blockNumber`` as an int."""
        return codec.quantity(await self.call("eth_blockNumber"), "eth_blockNumber", "result")

    async def get_logs(self, address: bytes, topics: Sequence[bytes | None], from_block: int = 0,
                       to_block: str | int = "latest") -> list[dict[str, Any]]:
        """``eth_getLogs`` for one address and topic filter; returns raw log objects."""
        flt = {"address": "0x" + address.hex(), "fromBlock": hex(from_block),
               "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
               "topics": [None if t is None else "0x" + t.hex() for t in topics]}
        res = await self.call("eth_getLogs", [flt])
        return codec.as_list(res, "eth_getLogs", "result")
