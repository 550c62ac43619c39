"""Typed reads over any :class:`edge.rpc.base.JsonRpc` (the ``eth_*`` calls the public
tiers and the fleet need), each answer decoded strictly by :mod:`edge.rpc.codec`.

Spec: the Ethereum execution-apis JSON-RPC specification (``eth_call``, ``eth_getLogs``,
``eth_blockNumber``, ``eth_chainId``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.rpc import codec
from edge.rpc.base import JsonRpc

__all__ = ["eth_call", "chain_id", "block_number", "get_logs"]


async def eth_call(rpc: JsonRpc, to: bytes, data: bytes, block: str = "latest") -> bytes:
    """``eth_call`` of calldata ``data`` on the 20-byte contract ``to`` at ``block``;
    returns the raw return data. Raises ChainError (RpcError carries a revert's data)."""
    res = await rpc.call("eth_call", [{"to": "0x" + to.hex(), "data": "0x" + data.hex()}, block])
    return codec.data(res, "eth_call", "result")


async def chain_id(rpc: JsonRpc) -> int:
    """``eth_chainId`` as an int (EIP-695). Raises ChainError."""
    return codec.quantity(await rpc.call("eth_chainId"), "eth_chainId", "result")


async def block_number(rpc: JsonRpc) -> int:
    """``eth_blockNumber`` (the node's head) as an int. Raises ChainError."""
    return codec.quantity(await rpc.call("eth_blockNumber"), "eth_blockNumber", "result")


async def get_logs(rpc: JsonRpc, address: bytes, topics: Sequence[bytes | None], from_block: int = 0,
                   to_block: str | int = "latest") -> list[dict[str, Any]]:
    """``eth_getLogs`` for one 20-byte ``address`` and a topic filter (None = any) over
    ``[from_block, to_block]``; returns the raw log objects. Raises ChainError."""
    flt = {"address": "0x" + address.hex(), "fromBlock": hex(from_block),
           "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
           "topics": [None if t is None else "0x" + t.hex() for t in topics]}
    res = await rpc.call("eth_getLogs", [flt])
    return codec.as_list(res, "eth_getLogs", "result")
