"""Strict decoding of JSON-RPC values (Ethereum JSON-RPC hex encoding).

Each decoder takes the method name and the field path only to build a clear
:class:`edge.errors.RpcProtocolError` when a node answers something malformed, e.g.
``eth_getBlockByNumber: malformed answer: result.number: expected a hex quantity, got 12``.
Spec: the Ethereum execution-apis "hex encoding" rules (quantities: ``0x`` + minimal
hex; data: ``0x`` + an even number of hex digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.errors import RpcProtocolError

__all__ = ["quantity", "data", "hash32", "address", "field", "as_dict", "as_list"]


def quantity(v: Any, method: str, path: str) -> int:
    """Decode a hex quantity (``"0x1a"``) to a non-negative int."""
    if not isinstance(v, str) or not v.startswith(("0x", "0X")) or len(v) < 3:
        raise RpcProtocolError(method, f"{path}: expected a hex quantity, got {v!r:.80}")
    try:
        return int(v, 16)
    except ValueError:
        raise RpcProtocolError(method, f"{path}: not a hex quantity: {v!r:.80}") from None


def data(v: Any, method: str, path: str) -> bytes:
    """Decode hex data (``"0x"`` + even number of hex digits) to bytes."""
    if not isinstance(v, str) or not v.startswith(("0x", "0X")):
        raise RpcProtocolError(method, f"{path}: expected hex data, got {v!r:.80}")
    try:
        return bytes.fromhex(v[2:])
    except ValueError:
        raise RpcProtocolError(method, f"{path}: not valid hex data: {v!r:.80}") from None


def hash32(v: Any, method: str, path: str) -> bytes:
    """Decode a 32-byte hash."""
    b = data(v, method, path)
    if len(b) != 32:
        raise RpcProtocolError(method, f"{path}: expected 32 bytes, got {len(b)}")
    return b


def address(v: Any, method: str, path: str) -> bytes:
    """Decode a 20-byte address (any letter case)."""
    b = data(v, method, path)
    if len(b) != 20:
        raise RpcProtocolError(method, f"{path}: expected a 20-byte address, got {len(b)} bytes")
    return b


def as_dict(v: Any, method: str, path: str) -> Mapping[str, Any]:
    """Check that ``v`` is a JSON object."""
    if not isinstance(v, Mapping):
        raise RpcProtocolError(method, f"{path}: expected an object, got {type(v).__name__}")
    return v


def as_list(v: Any, method: str, path: str) -> list[Any]:
    """Check that ``v`` is a JSON array."""
    if not isinstance(v, list):
        raise RpcProtocolError(method, f"{path}: expected an array, got {type(v).__name__}")
    return v


def field(obj: Mapping[str, Any], key: str, method: str, path: str) -> Any:
    """``obj[key]``, or RpcProtocolError naming the missing field."""
    try:
        return obj[key]
    except KeyError:
        raise RpcProtocolError(method, f"{path}.{key}: missing") from None
