"""Calldata and event decoding for ``contracts/Attestations.sol`` (the fleet's bulletin
board on the local PoA chain), with eth-abi; no web3 on the agent's path.

``Attested(bytes32 indexed id, address indexed device, uint64 indexed fromBlock, uint64
toBlock, uint64 chainId, bytes32 lastBlockHash, bytes32 root, bytes signature)`` and
``Located(bytes32 indexed id, address indexed device, bytes32 locator)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from edge.rpc import codec
from edge.errors import RpcProtocolError
from edge.evidence.eip712 import CheckpointMessage

__all__ = ["ATTESTED_TOPIC", "LOCATED_TOPIC", "Attestation", "Location", "encode_attest", "encode_locate",
           "decode_attested", "decode_located", "attestations_init_code", "DEVICES_CALL", "QUORUM_CALL",
           "decode_devices", "decode_quorum"]

ATTESTED_TOPIC = keccak(b"Attested(bytes32,address,uint64,uint64,uint64,bytes32,bytes32,bytes)")
LOCATED_TOPIC = keccak(b"Located(bytes32,address,bytes32)")
_ATTEST = keccak(b"attest((bytes32,uint64,uint64,uint64,bytes32,bytes32),bytes)")[:4]
_LOCATE = keccak(b"locate(bytes32,bytes32)")[:4]
DEVICES_CALL = keccak(b"devices()")[:4]
QUORUM_CALL = keccak(b"quorum()")[:4]


@dataclass(frozen=True, slots=True)
class Attestation:
    """One ``Attested`` event: the checkpoint as signed, the device (EIP-55), its 65-byte
    signature, and where the log is (block number, log index)."""

    checkpoint: CheckpointMessage
    device: str
    signature: bytes
    block_number: int
    log_index: int


@dataclass(frozen=True, slots=True)
class Location:
    """One ``Located`` event: checkpoint id, device (EIP-55), 32-byte locator."""

    id: bytes
    device: str
    locator: bytes
    block_number: int


def attestations_init_code(anchor_domain_separator: bytes) -> bytes:
    """Creation code of ``Attestations`` with its constructor argument (the mainnet
    Anchor's EIP-712 domain separator, 32 bytes)."""
    from edge.contracts.artifacts import load_artifact

    return load_artifact("Attestations").bytecode + abi_encode(["bytes32"], [anchor_domain_separator])


def encode_attest(cp: CheckpointMessage, signature: bytes) -> bytes:
    """``attest(Checkpoint cp, bytes signature)`` calldata."""
    return _ATTEST + abi_encode(
        ["(bytes32,uint64,uint64,uint64,bytes32,bytes32)", "bytes"],
        [(cp.id, cp.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root), signature])


def encode_locate(cp_id: bytes, locator: bytes) -> bytes:
    """``locate(bytes32 id, bytes32 locator)`` calldata."""
    return _LOCATE + abi_encode(["bytes32", "bytes32"], [cp_id, locator])


def _log_parts(log: Mapping[str, Any], topic0: bytes, n_topics: int, what: str) -> tuple[list[bytes], bytes, int, int]:
    m = "eth_getLogs"
    topics = [codec.hash32(t, m, f"{what}.topics") for t in codec.as_list(codec.field(log, "topics", m, what), m, what)]
    if len(topics) != n_topics or topics[0] != topic0:
        raise RpcProtocolError(m, f"{what}: not the expected event")
    data = codec.data(codec.field(log, "data", m, what), m, f"{what}.data")
    block = codec.quantity(codec.field(log, "blockNumber", m, what), m, f"{what}.blockNumber")
    index = codec.quantity(codec.field(log, "logIndex", m, what), m, f"{what}.logIndex")
    return topics, data, block, index


def decode_attested(log: Mapping[str, Any]) -> Attestation:
    """Decode an ``Attested`` log (JSON-RPC log object). Raises RpcProtocolError."""
    topics, data, block, index = _log_parts(log, ATTESTED_TOPIC, 4, "Attested")
    try:
        to_block, chain_id, last_block_hash, root, sig = abi_decode(["uint64", "uint64", "bytes32", "bytes32", "bytes"], data)
        cp = CheckpointMessage(topics[1], chain_id, int.from_bytes(topics[3], "big"), to_block, last_block_hash, root)
    except Exception as e:  # noqa: BLE001 - eth_abi / dataclass validation
        raise RpcProtocolError("eth_getLogs", f"Attested data malformed: {e}") from e
    return Attestation(cp, to_checksum_address(topics[2][-20:]), bytes(sig), block, index)


def decode_located(log: Mapping[str, Any]) -> Location:
    """Decode a ``Located`` log. Raises RpcProtocolError."""
    topics, data, block, _ = _log_parts(log, LOCATED_TOPIC, 3, "Located")
    if len(data) != 32:
        raise RpcProtocolError("eth_getLogs", "Located data is not one bytes32")
    return Location(topics[1], to_checksum_address(topics[2][-20:]), data, block)


def decode_devices(data: bytes) -> list[str]:
    """Decode ``devices()`` (address[]) to EIP-55 addresses."""
    try:
        (devs,) = abi_decode(["address[]"], data)
    except Exception as e:  # noqa: BLE001
        raise RpcProtocolError("eth_call", f"devices() answer malformed: {e}") from e
    return [to_checksum_address(d) for d in devs]


def decode_quorum(data: bytes) -> int:
    """Decode ``quorum()`` (uint8)."""
    try:
        (q,) = abi_decode(["uint8"], data)
    except Exception as e:  # noqa: BLE001
        raise RpcProtocolError("eth_call", f"quorum() answer malformed: {e}") from e
    return int(q)
