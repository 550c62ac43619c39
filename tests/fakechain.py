"""A tiny in-memory chain answered through :class:`edge.rpc.mock.MockNetwork`, for the
ingest edge cases a real node cannot be made to produce on cue (a garbled chain id, a
connection that drops at a chosen request). Blocks are empty; hashes are made up but
consistent (each block names its parent's hash) but not real headers: tests using it set
``ingest.verify = "off"`` (verified ingest is tested against anvil)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.errors import MethodNotSupported, NodeUnavailable

ZERO = "0x" + "00" * 32


def _hash(n: int, fork: int = 0) -> str:
    return "0x" + (n.to_bytes(8, "big") + fork.to_bytes(8, "big")).hex().rjust(64, "a")


class FakeChain:
    """``head`` empty blocks 0..head; ``fail`` decides, per ``(connection, method)``,
    whether that request raises (a callable returning an exception or None)."""

    def __init__(self, head: int, chain_id: int = 7201) -> None:
        self.head = head
        self.chain_id = chain_id
        self.connection = 0
        self.fail: Callable[[int, str], BaseException | None] = lambda conn, method: None
        self.chain_id_answers: list[int] = []

    def block(self, n: int) -> dict[str, Any] | None:
        if n > self.head:
            return None
        return {"number": hex(n), "hash": _hash(n), "parentHash": _hash(n - 1) if n else ZERO,
                "timestamp": hex(1_700_000_000 + n), "miner": "0x" + "11" * 20, "transactions": [],
                "extraData": "0x", "difficulty": "0x0"}

    def handler(self) -> Callable[[str, list[Any]], Any]:
        """A fresh connection's handler (each call counts as a new connection)."""
        self.connection += 1
        conn = self.connection

        def answer(method: str, params: list[Any]) -> Any:
            err = self.fail(conn, method)
            if err is not None:
                raise err
            if method == "eth_chainId":
                cid = self.chain_id_answers.pop(0) if self.chain_id_answers else self.chain_id
                return hex(cid)
            if method == "eth_blockNumber":
                return hex(self.head)
            if method == "eth_getBlockByNumber":
                return self.block(int(params[0], 16))
            if method == "eth_getBlockReceipts":
                return [] if int(params[0], 16) <= self.head else None
            if method == "trace_block":
                raise MethodNotSupported(method, -32601, "the method trace_block does not exist")
            if method == "debug_traceBlockByNumber":
                raise MethodNotSupported(method, -32601, "the method debug_traceBlockByNumber does not exist")
            raise NodeUnavailable(f"fake chain: unexpected {method}")

        return answer


class FakeNetwork:
    """An :class:`edge.rpc.base.RpcFactory` whose every connection is a new MockRpc on
    ``chain`` (no subscriptions: the agent polls)."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self.connections = 0

    def __call__(self, url: str, *, timeout: float) -> Any:
        from edge.rpc.mock import MockRpc

        self.connections += 1
        return MockRpc(self.chain.handler(), url=url, subscriptions=False)
