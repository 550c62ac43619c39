"""JSON-RPC error objects -> the error tree (shared by every transport).

Spec: JSON-RPC 2.0 section 5.1 (error object: ``code``, ``message``, optional ``data``).
"""

from __future__ import annotations

from typing import Any

from edge.errors import MethodNotSupported, RpcError, RpcProtocolError

__all__ = ["error_from_object", "is_unsupported"]


def is_unsupported(code: int, message: str) -> bool:
    """True when an error object means "this node has no such method": -32601 per
    JSON-RPC 2.0, or a node's own wording (anvil answers -32602 "data did not match any
    variant of untagged enum EthRpcCall"; others say "method ... not found/supported")."""
    m = message.lower()
    if code == -32601 or "did not match any variant" in m:
        return True
    return "method" in m and any(w in m for w in ("not found", "not supported", "does not exist", "not available"))


def error_from_object(method: str, err: Any) -> RpcError | RpcProtocolError:
    """The exception for the error object ``err`` a node answered to ``method``.

    Returns (never raises): MethodNotSupported, RpcError (``data`` appended to the
    message when present), or RpcProtocolError when the object is malformed (no int code).
    """
    if not isinstance(err, dict) or not isinstance(err.get("code"), int) or isinstance(err.get("code"), bool):
        return RpcProtocolError(method, f"error object malformed: {str(err)[:120]!r}")
    code: int = err["code"]
    msg = str(err.get("message", ""))
    if is_unsupported(code, msg):
        return MethodNotSupported(method, code, msg)
    data = err.get("data")
    return RpcError(method, code, msg + (f" {data}" if data else ""))
