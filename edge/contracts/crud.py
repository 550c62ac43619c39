"""Calldata for the generic CRUD store (``contracts/CrudStore.sol``) and decoding of its
answers, with eth-abi (no web3 import on the agent's path).

Two ways to store a blob: ``createMany`` keeps the value in storage (``read`` returns it);
``publishMany`` keeps only the writer, the block and keccak256(value) (``publication``) and
carries the value in a ``Published(bytes32 indexed key, address indexed by, bytes value)``
log, which a reader fetches with ``eth_getLogs`` and checks against the digest
(:func:`published_value`). The forward stage publishes; the auditor reads both forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from edge.errors import RpcProtocolError

__all__ = ["encode_create_many", "encode_publish_many", "encode_publication", "encode_read", "encode_exists",
           "encode_update", "decode_read", "decode_bool", "decode_publication", "published_value", "Publication",
           "PUBLISHED_TOPIC"]


def _sel(sig: str) -> bytes:
    return keccak(sig.encode())[:4]


_CREATE_MANY = _sel("createMany(bytes32[],bytes[])")
_PUBLISH_MANY = _sel("publishMany(bytes32[],bytes[])")
_PUBLICATION = _sel("publication(bytes32)")
PUBLISHED_TOPIC = keccak(b"Published(bytes32,address,bytes)")
"""topic 0 of ``Published(bytes32 indexed key, address indexed by, bytes value)``."""
_READ = _sel("read(bytes32)")
_EXISTS = _sel("exists(bytes32)")
_UPDATE = _sel("update(bytes32,bytes)")


def encode_create_many(keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """``createMany(bytes32[] keys, bytes[] values)`` calldata (keys 32 bytes each)."""
    return _CREATE_MANY + abi_encode(["bytes32[]", "bytes[]"], [list(keys), list(values)])


def encode_publish_many(keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """``publishMany(bytes32[] keys, bytes[] values)`` calldata (keys 32 bytes each): same
    ABI shape, hence the same calldata length, as :func:`encode_create_many`."""
    return _PUBLISH_MANY + abi_encode(["bytes32[]", "bytes[]"], [list(keys), list(values)])


def encode_publication(key: bytes) -> bytes:
    """``publication(bytes32 key)`` calldata (reverts KeyMissing for a key not published)."""
    return _PUBLICATION + abi_encode(["bytes32"], [key])


@dataclass(frozen=True, slots=True)
class Publication:
    """What the store keeps of one published key.

    Attributes:
        writer: 20-byte address of the publisher. block: the block number of its
        ``Published`` log. digest: keccak256 of the value (32 bytes).
    """

    writer: bytes
    block: int
    digest: bytes


def decode_publication(result: bytes) -> Publication:
    """Decode ``publication``'s ``(address, uint64, bytes32)``. Raises RpcProtocolError
    when malformed."""
    try:
        writer, block, digest = abi_decode(["address", "uint64", "bytes32"], result)
    except Exception as e:  # noqa: BLE001 - eth_abi raises several decoding errors
        raise RpcProtocolError("eth_call", f"CrudStore.publication answer is not (address, uint64, bytes32): {e}") from e
    return Publication(bytes.fromhex(writer[2:]), int(block), bytes(digest))


def published_value(logs: Sequence[dict[str, Any]], key: bytes, pub: Publication) -> bytes:
    """The value of ``key`` out of ``eth_getLogs`` answers for its ``Published`` log: the
    first log with topics ``[PUBLISHED_TOPIC, key, writer]`` whose value hashes to
    ``pub.digest``.

    Raises:
        RpcProtocolError: no such log, a malformed one, or only values whose keccak256
            differs from the digest the store keeps (the node's answer was changed).
    """
    want = ["0x" + PUBLISHED_TOPIC.hex(), "0x" + key.hex(), "0x" + pub.writer.rjust(32, b"\0").hex()]
    seen = 0
    for lg in logs:
        topics = lg.get("topics") if isinstance(lg, dict) else None
        if not isinstance(topics, list) or [str(t).lower() for t in topics] != want:
            continue
        seen += 1
        try:
            (value,) = abi_decode(["bytes"], bytes.fromhex(str(lg.get("data", ""))[2:]))
        except Exception as e:  # noqa: BLE001
            raise RpcProtocolError("eth_getLogs", f"Published log of key 0x{key.hex()[:16]}.. carries no ABI "
                                                  f"bytes: {e}") from e
        if keccak(bytes(value)) == pub.digest:
            return bytes(value)
    if seen:
        raise RpcProtocolError("eth_getLogs", f"the Published log of key 0x{key.hex()[:16]}.. in block {pub.block} "
                                              "does not hash to the digest the store keeps (the answer was changed)")
    raise RpcProtocolError("eth_getLogs", f"no Published log of key 0x{key.hex()[:16]}.. by "
                                          f"0x{pub.writer.hex()} in block {pub.block}")


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
