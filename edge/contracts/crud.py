"""Calldata for the generic CRUD store (``contracts/CrudStore.sol``) and decoding of its
answers, with eth-abi (no web3 import on the agent's path)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from edge.errors import RpcProtocolError

__all__ = ["encode_create_many", "encode_read", "encode_exists", "encode_update", "decode_read", "decode_bool",
           "create_many_gas"]


def _sel(sig: str) -> bytes:
    return keccak(sig.encode())[:4]


_CREATE_MANY = _sel("createMany(bytes32[],bytes[])")
_READ = _sel("read(bytes32)")
_EXISTS = _sel("exists(bytes32)")
_UPDATE = _sel("update(bytes32,bytes)")


def encode_create_many(keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """``createMany(bytes32[] keys, bytes[] values)`` calldata (keys 32 bytes each)."""
    return _CREATE_MANY + abi_encode(["bytes32[]", "bytes[]"], [list(keys), list(values)])


def encode_update(key: bytes, value: bytes) -> bytes:
    """``update(bytes32 key, bytes value)`` calldata."""
    return _UPDATE + abi_encode(["bytes32", "bytes"], [key, value])


def encode_read(key: bytes) -> bytes:
    """``read(bytes32 key)`` calldata (reverts KeyMissing for an absent key)."""
    return _READ + abi_encode(["bytes32"], [key])


def encode_exists(key: bytes) -> bytes:
    """``exists(bytes32 key)`` calldata."""
    return _EXISTS + abi_encode(["bytes32"], [key])


def decode_read(result: bytes) -> bytes:
    """Decode the ``bytes`` returned by ``read``. Raises RpcProtocolError when malformed."""
    try:
        (value,) = abi_decode(["bytes"], result)
    except Exception as e:  # noqa: BLE001 - eth_abi raises several decoding errors
        raise RpcProtocolError("eth_call", f"CrudStore.read answer is not ABI bytes: {e}") from e
    return bytes(value)


def decode_bool(result: bytes) -> bool:
    """Decode an ABI ``bool``. Raises RpcProtocolError when malformed."""
    try:
        (value,) = abi_decode(["bool"], result)
    except Exception as e:  # noqa: BLE001
        raise RpcProtocolError("eth_call", f"answer is not an ABI bool: {e}") from e
    return bool(value)


def create_many_gas(values: Sequence[bytes]) -> int:
    """A safe gas limit for ``createMany``: ~22.1k per 32-byte word stored (SSTORE to a
    fresh slot plus calldata), per-key overhead, base cost."""
    words = sum((len(v) + 31) // 32 + 2 for v in values)
    return 60_000 + 23_000 * words + 8_000 * len(values)
