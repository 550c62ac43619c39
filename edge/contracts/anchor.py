"""Binding of the mainnet ``Anchor`` contract (``contracts/Anchor.sol``) without web3.

Calldata is built with ``eth_abi`` and 4-byte selectors (keccak256 of the Solidity
signature, as the Solidity ABI specification defines them); logs and return values are
decoded strictly (canonical ABI encoding only). The node transport is the caller's (the
tx sender signs and sends the calldata; ``eth_call`` / ``eth_getLogs`` read).

The contract, in short (see its NatSpec for the full rules):

* ``anchor(Checkpoint cp, bytes32 locator, bytes[] signatures)``: the EIP-712 struct
  ``Checkpoint(bytes32 id,uint64 chainId,uint64 fromBlock,uint64 toBlock,bytes32
  lastBlockHash,bytes32 root)`` (:mod:`edge.evidence.eip712`) signed by at least ``quorum()``
  registered devices; signatures sorted by strictly increasing signer address
  (:func:`order_signatures` does that). The first valid anchor per id wins; a duplicate
  reverts ``AlreadyAnchored(id)`` before any signature work. ``root`` must be non-zero.
* Batching: K checkpoints go as one ``Checkpoint`` whose ``root`` is the Merkle root
  (:mod:`edge.evidence.merkle`, OpenZeppelin sorted pairs) over the K member ids
  (:func:`batch_root`, :func:`batch_checkpoint`); an auditor proves a member with
  ``verifyMember(anchorId, memberId, proof)`` and a record of a checkpoint anchored alone
  with ``verifyRecord(anchorId, leaf, proof)``.
* ``setDevices(address[] devices, uint8 quorum)`` (owner only) replaces the device set.

Errors: bad arguments raise :class:`~edge.errors.CryptoError` naming the argument
(checkpoints, signatures, device addresses, quorum); malformed logs or return data from
a node raise :class:`~edge.errors.RpcProtocolError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from edge.rpc import codec
from edge.errors import CryptoError, RpcProtocolError
from edge.evidence.eip712 import CheckpointMessage, Eip712Domain, recover_checkpoint_signer
from edge.evidence.merkle import merkle_root

__all__ = [
    "ANCHOR_ERRORS",
    "ANCHORED_EVENT",
    "ANCHORED_TOPIC",
    "ANCHOR_SIGNATURE",
    "DEVICES_CHANGED_TOPIC",
    "MAX_DEVICES",
    "AnchorRevert",
    "AnchoredEvent",
    "anchor_init_code",
    "anchored_root_call",
    "batch_checkpoint",
    "batch_root",
    "decode_address_list",
    "decode_anchor_error",
    "decode_anchored",
    "decode_bool",
    "decode_bytes32",
    "decode_uint",
    "devices_call",
    "encode_anchor_call",
    "encode_set_devices",
    "is_device_call",
    "order_signatures",
    "quorum_call",
    "verify_member_call",
    "verify_record_call",
]

_CP_TUPLE = "(bytes32,uint64,uint64,uint64,bytes32,bytes32)"

ANCHOR_SIGNATURE = f"anchor({_CP_TUPLE},bytes32,bytes[])"
"""Solidity signature of ``Anchor.anchor`` (its selector is keccak256 of it, 4 bytes)."""

ANCHORED_EVENT = (
    "Anchored(bytes32,uint64,uint64,uint64,bytes32,bytes32,bytes32,address,address[])"
)
"""Signature of the ``Anchored`` event; ``id`` and ``chainId`` are indexed."""

ANCHORED_TOPIC: bytes = keccak(ANCHORED_EVENT.encode())
"""topic0 of ``Anchored`` logs (32 bytes), for ``eth_getLogs`` filters."""

DEVICES_CHANGED_TOPIC: bytes = keccak(b"DevicesChanged(address[],uint8)")
"""topic0 of ``DevicesChanged(address[] devices, uint8 quorum)`` logs."""

MAX_DEVICES = 255
"""Largest device set the contract accepts (``MAX_DEVICES``; quorum is a uint8)."""

_ANCHORED_DATA = ["uint64", "uint64", "bytes32", "bytes32", "bytes32", "address", "address[]"]
_U64 = 1 << 64
_LOGS = "eth_getLogs"
_CALL = "eth_call"


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


_SEL_ANCHOR = _selector(ANCHOR_SIGNATURE)
_SEL_SET_DEVICES = _selector("setDevices(address[],uint8)")
_SEL_ANCHORED_ROOT = _selector("anchoredRoot(bytes32)")
_SEL_DEVICES = _selector("devices()")
_SEL_QUORUM = _selector("quorum()")
_SEL_IS_DEVICE = _selector("isDevice(address)")
_SEL_VERIFY_MEMBER = _selector("verifyMember(bytes32,bytes32,bytes32[])")
_SEL_VERIFY_RECORD = _selector("verifyRecord(bytes32,bytes32,bytes32[])")

_ERROR_SIGNATURES = (
    "AlreadyAnchored(bytes32)",
    "BadCheckpointId(bytes32,bytes32)",
    "BadRange(uint64,uint64)",
    "EmptyRoot(bytes32)",
    "NoDevices()",
    "QuorumNotMet(uint256,uint256)",
    "SignersNotAscending(uint256,address)",
    "NotADevice(address)",
    "BadQuorum(uint256,uint256)",
    "BadDevice(address)",
    "RenounceDisabled()",
    "ECDSAInvalidSignature()",
    "ECDSAInvalidSignatureLength(uint256)",
    "ECDSAInvalidSignatureS(bytes32)",
    "OwnableUnauthorizedAccount(address)",
    "OwnableInvalidOwner(address)",
    "StringTooLong(string)",
    "InvalidShortString()",
    "Error(string)",
    "Panic(uint256)",
)


def _error_entry(signature: str) -> tuple[bytes, tuple[str, tuple[str, ...]]]:
    name, _, rest = signature.partition("(")
    types = tuple(t for t in rest[:-1].split(",") if t)
    return _selector(signature), (name, types)


ANCHOR_ERRORS: dict[bytes, tuple[str, tuple[str, ...]]] = dict(
    _error_entry(s) for s in _ERROR_SIGNATURES
)
"""Revert selector (4 bytes) -> (error name, ABI argument types) for every error the
Anchor contract can revert with (its own, OpenZeppelin ECDSA/Ownable/ShortStrings,
``Error``, ``Panic``)."""


# ----------------------------------------------------------------------- small helpers


def _bytes32(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != 32:
        got = f"{len(value)} bytes" if isinstance(value, (bytes, bytearray, memoryview)) else (
            type(value).__name__
        )
        raise CryptoError(f"anchor: {what} must be 32 bytes, got {got}")
    return bytes(value)


def _address(value: object, what: str) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        value = "0x" + bytes(value).hex()
    if isinstance(value, str) and len(value) == 42 and value[:2] in ("0x", "0X"):
        try:
            bytes.fromhex(value[2:])
        except ValueError:
            pass
        else:
            digits = value[2:]
            checksummed = str(to_checksum_address(value))
            if digits in (digits.lower(), digits.upper()) or value == checksummed:
                return checksummed
    raise CryptoError(
        f"anchor: {what} {value!r:.60} is not an address (0x + 40 hex digits with a valid "
        "EIP-55 checksum if mixed case, or 20 bytes)"
    )


def _checkpoint(cp: object, what: str = "checkpoint") -> CheckpointMessage:
    if not isinstance(cp, CheckpointMessage):
        raise CryptoError(f"anchor: {what} must be a CheckpointMessage, got {type(cp).__name__}")
    if not cp.id_matches():
        raise CryptoError(f"anchor: {what} id 0x{cp.id.hex()} does not match its fields")
    return cp


def _cp_tuple(cp: CheckpointMessage) -> tuple[bytes, int, int, int, bytes, bytes]:
    return (cp.id, cp.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root)


def _proof(proof: Sequence[bytes]) -> list[bytes]:
    if isinstance(proof, (bytes, bytearray, str)):
        raise CryptoError("anchor: proof must be a sequence of 32-byte nodes, not one value")
    return [_bytes32(node, f"proof[{i}]") for i, node in enumerate(proof)]


def _raw(value: object, method: str, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return codec.data(value, method, what)


def _int(value: object, method: str, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return codec.quantity(value, method, what)


# --------------------------------------------------------------------------- anchoring


def order_signatures(
    domain: Eip712Domain,
    cp: CheckpointMessage,
    signatures: Iterable[bytes],
    *,
    devices: Iterable[str] | None = None,
    limit: int | None = None,
) -> list[tuple[str, bytes]]:
    """Recover, deduplicate, filter and sort device signatures as ``anchor`` needs them.

    Args:
        domain: the EIP-712 domain of the target Anchor (its chain id and address).
        cp: the checkpoint signed (its id must match its fields).
        signatures: 65-byte ``r || s || v`` EIP-712 signatures (any order, duplicates
            allowed: the first signature of each signer is kept).
        devices: if given, signatures of signers not in this set are dropped (e.g. the
            contract's ``devices()``), so a stray attestation cannot make the call revert
            ``NotADevice``.
        limit: if given (>= 1), keep only the first ``limit`` after sorting: pass the
            quorum M to pay for exactly M ``ecrecover`` s.

    Returns:
        ``[(signer, signature), ...]`` sorted by strictly increasing signer address
        (numeric order of the 20 bytes), signers EIP-55 checksummed.

    Raises:
        CryptoError: a signature does not recover under OpenZeppelin ECDSA's rules
            (length, high s, bad v; the message names its index and the error), ``cp``
            is inconsistent, a device address is malformed, or ``limit`` < 1.
    """
    _checkpoint(cp)
    allowed = None if devices is None else {
        _address(d, f"devices[{i}]") for i, d in enumerate(devices)
    }
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise CryptoError(f"anchor: limit must be an int >= 1, got {limit!r}")
    by_signer: dict[str, bytes] = {}
    for i, sig in enumerate(signatures):
        try:
            signer = recover_checkpoint_signer(domain, cp, sig)
        except CryptoError as exc:
            raise CryptoError(f"anchor: signature {i}: {exc}") from exc
        if allowed is not None and signer not in allowed:
            continue
        by_signer.setdefault(signer, bytes(sig))
    ordered = sorted(by_signer.items(), key=lambda item: int(item[0], 16))
    return ordered if limit is None else ordered[:limit]


def encode_anchor_call(
    cp: CheckpointMessage,
    locator: bytes,
    signatures: Iterable[bytes],
    *,
    domain: Eip712Domain,
    devices: Iterable[str] | None = None,
    limit: int | None = None,
) -> bytes:
    """Calldata of ``anchor(cp, locator, signatures)`` with signatures in contract order.

    Args:
        cp: the checkpoint (or batch checkpoint, :func:`batch_checkpoint`) to anchor;
            its id must match its fields and its root must be non-zero.
        locator: 32 bytes telling an auditor where the testnet metadata is.
        signatures: device signatures over ``cp`` under ``domain`` (see
            :func:`order_signatures`: recovered, deduplicated by signer, optionally
            filtered by ``devices`` and cut to ``limit``, sorted by signer address).
        domain: EIP-712 domain of the Anchor the call goes to (needed to recover the
            signers, hence to sort them).
        devices: optional device set; signatures of other signers are dropped.
        limit: optional cap on the signatures sent (pass the quorum M: each extra
            signature costs about 8,250 gas).

    Returns:
        ``selector || abi.encode(cp, locator, signatures)``; send it to the Anchor address.

    Raises:
        CryptoError: ``cp`` inconsistent or with a zero root (the contract would revert
            ``EmptyRoot``), ``locator`` not 32 bytes, a signature that does not recover,
            or no signature left.
    """
    _checkpoint(cp)
    if cp.root == bytes(32):
        raise CryptoError("anchor: checkpoint root is zero; the contract reverts EmptyRoot")
    loc = _bytes32(locator, "locator")
    ordered = order_signatures(domain, cp, signatures, devices=devices, limit=limit)
    if not ordered:
        raise CryptoError("anchor: no usable signature for the checkpoint")
    return _SEL_ANCHOR + abi_encode(
        [_CP_TUPLE, "bytes32", "bytes[]"], [_cp_tuple(cp), loc, [s for _, s in ordered]]
    )


def encode_set_devices(devices: Sequence[str | bytes], quorum: int) -> bytes:
    """Calldata of ``setDevices(devices, quorum)`` (owner only on chain).

    Args:
        devices: the new device set, 1..255 distinct non-zero addresses (hex strings,
            EIP-55 if mixed case, or 20 bytes), kept in the given order.
        quorum: signatures an anchor needs, 1..len(devices).

    Raises:
        CryptoError: an address is malformed, zero or repeated, or ``quorum`` is out of
            range (what the contract would revert as ``BadDevice`` / ``BadQuorum``).
    """
    if isinstance(devices, (str, bytes, bytearray)):
        raise CryptoError("anchor: devices must be a sequence of addresses, not one value")
    addrs = [_address(d, f"devices[{i}]") for i, d in enumerate(devices)]
    n = len(addrs)
    if not 1 <= n <= MAX_DEVICES:
        raise CryptoError(f"anchor: {n} devices given; the set holds 1..{MAX_DEVICES}")
    seen: set[str] = set()
    for i, a in enumerate(addrs):
        if int(a, 16) == 0:
            raise CryptoError(f"anchor: devices[{i}] is the zero address")
        if a in seen:
            raise CryptoError(f"anchor: devices[{i}] {a} is repeated")
        seen.add(a)
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= n:
        raise CryptoError(f"anchor: quorum {quorum!r} out of range 1..{n}")
    return _SEL_SET_DEVICES + abi_encode(["address[]", "uint8"], [addrs, quorum])


def anchor_init_code() -> bytes:
    """Creation code of ``Anchor`` (no constructor arguments; the sender becomes owner).

    Raises:
        ContractBuildError: the artifact is missing or malformed (build it with
            ``node contracts/build.mjs``).
    """
    from edge.contracts.artifacts import load_artifact

    return load_artifact("Anchor").bytecode


# ----------------------------------------------------------------------------- batches


def batch_root(member_ids: Sequence[bytes]) -> bytes:
    """Merkle root over K checkpoint ids (the ``root`` of a batch anchor).

    OpenZeppelin-compatible tree of :mod:`edge.evidence.merkle` over the ids in the given
    order (leaves are the ids themselves: keccak256 outputs of 160-byte preimages, so
    they cannot pose as 64-byte internal nodes). Proofs: ``MerkleTree(ids).proof(i)``,
    checked on chain by ``verifyMember(anchorId, ids[i], proof)``. K = 1 gives the id.

    Raises:
        CryptoError: no ids, an id not 32 bytes, or an id repeated.
    """
    if isinstance(member_ids, (bytes, bytearray)):
        raise CryptoError("anchor: member ids must be a sequence of 32-byte ids, not one value")
    ids = [_bytes32(m, f"member id {i}") for i, m in enumerate(member_ids)]
    if not ids:
        raise CryptoError("anchor: a batch needs at least one member")
    if len(set(ids)) != len(ids):
        raise CryptoError("anchor: a member id is repeated in the batch")
    return merkle_root(ids)


def batch_checkpoint(members: Sequence[CheckpointMessage]) -> CheckpointMessage:
    """The one ``Checkpoint`` that anchors K member checkpoints together.

    ``chainId`` is the members' chain, ``fromBlock`` the first member's, ``toBlock`` and
    ``lastBlockHash`` the last member's, ``root`` :func:`batch_root` of the member ids in
    the given order, and ``id`` the usual checkpoint id of those fields. To anchor a
    single checkpoint, anchor it as itself (its root is then the record root and
    ``verifyRecord`` applies); a batch of one is allowed but commits to the id instead.

    Args:
        members: K >= 1 checkpoints of one chain, ordered by block range and not
            overlapping (``members[i].from_block > members[i-1].to_block``; gaps allowed).

    Raises:
        CryptoError: no members, a member that is not a consistent CheckpointMessage
            (index named), mixed chain ids, or ranges out of order or overlapping.
    """
    if not members:
        raise CryptoError("anchor: a batch needs at least one member")
    cps = [_checkpoint(m, f"member {i}") for i, m in enumerate(members)]
    first, last = cps[0], cps[-1]
    for i in range(1, len(cps)):
        prev, cur = cps[i - 1], cps[i]
        if cur.chain_id != first.chain_id:
            raise CryptoError(
                f"anchor: member {i} is of chain {cur.chain_id}, member 0 of {first.chain_id}"
            )
        if cur.from_block <= prev.to_block:
            raise CryptoError(
                f"anchor: member {i} starts at block {cur.from_block}, not after member "
                f"{i - 1}'s last block {prev.to_block} (members must be ordered, disjoint)"
            )
    root = batch_root([c.id for c in cps])
    return CheckpointMessage.create(
        first.chain_id, first.from_block, last.to_block, last.last_block_hash, root
    )


# ------------------------------------------------------------------------------- views


def anchored_root_call(checkpoint_id: bytes) -> bytes:
    """Calldata of ``anchoredRoot(id)``; decode the answer with :func:`decode_bytes32`
    (zero: not anchored). Raises CryptoError if ``checkpoint_id`` is not 32 bytes."""
    return _SEL_ANCHORED_ROOT + _bytes32(checkpoint_id, "checkpoint id")


def devices_call() -> bytes:
    """Calldata of ``devices()``; decode with :func:`decode_address_list`."""
    return _SEL_DEVICES


def quorum_call() -> bytes:
    """Calldata of ``quorum()``; decode with :func:`decode_uint` (0: no device set)."""
    return _SEL_QUORUM


def is_device_call(account: str | bytes) -> bytes:
    """Calldata of ``isDevice(account)``; decode with :func:`decode_bool`.
    Raises CryptoError on a malformed address."""
    return _SEL_IS_DEVICE + abi_encode(["address"], [_address(account, "account")])


def verify_member_call(anchor_id: bytes, member_id: bytes, proof: Sequence[bytes]) -> bytes:
    """Calldata of ``verifyMember(anchorId, memberId, proof)`` (batch membership, OZ
    MerkleProof over the anchored root); decode with :func:`decode_bool`.
    Raises CryptoError if an id or proof node is not 32 bytes."""
    return _SEL_VERIFY_MEMBER + abi_encode(
        ["bytes32", "bytes32", "bytes32[]"],
        [_bytes32(anchor_id, "anchor id"), _bytes32(member_id, "member id"), _proof(proof)],
    )


def verify_record_call(anchor_id: bytes, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Calldata of ``verifyRecord(anchorId, leaf, proof)`` (a record leaf against a
    checkpoint anchored alone); decode with :func:`decode_bool`.
    Raises CryptoError if an id, the leaf or a proof node is not 32 bytes."""
    return _SEL_VERIFY_RECORD + abi_encode(
        ["bytes32", "bytes32", "bytes32[]"],
        [_bytes32(anchor_id, "anchor id"), _bytes32(leaf, "leaf"), _proof(proof)],
    )


def _decode_exact(types: list[str], raw: bytes, method: str, what: str) -> tuple[Any, ...]:
    try:
        values = abi_decode(types, raw)
    except DecodingError as exc:
        raise RpcProtocolError(
            method, f"{what}: not a valid ABI encoding of {types}: {exc}"
        ) from None
    if abi_encode(types, values) != raw:
        raise RpcProtocolError(method, f"{what}: not the canonical ABI encoding of {types}")
    return tuple(values)


def decode_bytes32(data: bytes | str) -> bytes:
    """Decode an ``eth_call`` result that is one ``bytes32`` (hex string or bytes).
    Raises RpcProtocolError unless it is exactly 32 bytes."""
    raw = _raw(data, _CALL, "result")
    if len(raw) != 32:
        raise RpcProtocolError(_CALL, f"result: expected 32 bytes (bytes32), got {len(raw)}")
    return raw


def decode_uint(data: bytes | str) -> int:
    """Decode an ``eth_call`` result that is one unsigned integer (any uintN <= 256).
    Raises RpcProtocolError unless it is exactly one 32-byte word."""
    return int.from_bytes(decode_bytes32(data), "big")


def decode_bool(data: bytes | str) -> bool:
    """Decode an ``eth_call`` result that is one ``bool``.
    Raises RpcProtocolError unless it is the word 0 or 1."""
    value = decode_uint(data)
    if value > 1:
        raise RpcProtocolError(_CALL, f"result: expected a bool word (0 or 1), got {value:#x}")
    return value == 1


def decode_address_list(data: bytes | str) -> tuple[str, ...]:
    """Decode an ``eth_call`` result that is one ``address[]`` (e.g. ``devices()``) to
    EIP-55 addresses. Raises RpcProtocolError on a malformed or non-canonical encoding."""
    (addrs,) = _decode_exact(["address[]"], _raw(data, _CALL, "result"), _CALL, "result")
    return tuple(str(to_checksum_address(a)) for a in addrs)


# -------------------------------------------------------------------- events, reverts


@dataclass(frozen=True, slots=True)
class AnchoredEvent:
    """One ``Anchored`` log of the Anchor contract.

    Attributes:
        id: the anchored checkpoint id (32 bytes; topic 1).
        chain_id: the private chain's id (topic 2).
        from_block, to_block: the inclusive block range.
        last_block_hash: hash of block ``to_block`` (32 bytes).
        root: the anchored root (records' root, or member ids' root for a batch).
        locator: 32 bytes pointing at the testnet metadata.
        submitter: EIP-55 address that sent the anchoring transaction.
        signers: EIP-55 addresses of the devices whose signatures were checked, ascending.
        address: the emitting contract (EIP-55), if the log says.
        block_number, block_hash, transaction_hash, log_index: where the log is, if the
            log says (None otherwise).
        removed: True if the node reports the log as removed by a reorg.
    """

    id: bytes
    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes
    locator: bytes
    submitter: str
    signers: tuple[str, ...]
    address: str | None = None
    block_number: int | None = None
    block_hash: bytes | None = None
    transaction_hash: bytes | None = None
    log_index: int | None = None
    removed: bool = False

    def checkpoint(self) -> CheckpointMessage:
        """The anchored checkpoint as a :class:`CheckpointMessage` (``id`` as logged; the
        contract checked that it matches the fields)."""
        return CheckpointMessage(
            self.id, self.chain_id, self.from_block, self.to_block, self.last_block_hash,
            self.root,
        )


def decode_anchored(log: Mapping[str, Any]) -> AnchoredEvent:
    """Decode an ``Anchored`` log (a JSON-RPC log object, or web3's AttributeDict).

    Args:
        log: mapping with ``topics`` (list of 32-byte values: hex strings or bytes) and
            ``data`` (hex string or bytes); ``address``, ``blockNumber``, ``blockHash``,
            ``transactionHash``, ``logIndex`` and ``removed`` are read if present.

    Returns:
        The :class:`AnchoredEvent`.

    Raises:
        RpcProtocolError: not a mapping, topics missing or not 3, topic0 is not
            :data:`ANCHORED_TOPIC`, chain id topic above uint64, data not the canonical
            ABI encoding of the event's non-indexed fields, ``fromBlock > toBlock``, or a
            malformed optional field (the message names it).
    """
    log = codec.as_dict(log, _LOGS, "log")
    topics_raw = codec.field(log, "topics", _LOGS, "log")
    if isinstance(topics_raw, (str, bytes)) or not isinstance(topics_raw, Sequence):
        raise RpcProtocolError(_LOGS, "log.topics: expected an array")
    topics = [_raw(t, _LOGS, f"log.topics[{i}]") for i, t in enumerate(topics_raw)]
    if len(topics) != 3 or any(len(t) != 32 for t in topics):
        raise RpcProtocolError(
            _LOGS, f"log.topics: an Anchored log has 3 topics of 32 bytes, got {len(topics)}"
        )
    if topics[0] != ANCHORED_TOPIC:
        raise RpcProtocolError(_LOGS, f"log.topics[0]: 0x{topics[0].hex()} is not Anchored")
    chain_id = int.from_bytes(topics[2], "big")
    if chain_id >= _U64:
        raise RpcProtocolError(_LOGS, f"log.topics[2]: chain id {chain_id:#x} exceeds uint64")
    data = _raw(codec.field(log, "data", _LOGS, "log"), _LOGS, "log.data")
    frm, to, last_hash, root, locator, submitter, signers = _decode_exact(
        _ANCHORED_DATA, data, _LOGS, "log.data"
    )
    if frm > to:
        raise RpcProtocolError(_LOGS, f"log.data: fromBlock {frm} > toBlock {to}")
    address = log.get("address")
    block_number = log.get("blockNumber")
    block_hash = log.get("blockHash")
    tx_hash = log.get("transactionHash")
    log_index = log.get("logIndex")
    removed = log.get("removed", False)
    if not isinstance(removed, bool):
        raise RpcProtocolError(_LOGS, f"log.removed: expected a bool, got {removed!r:.40}")
    return AnchoredEvent(
        id=topics[1],
        chain_id=chain_id,
        from_block=frm,
        to_block=to,
        last_block_hash=bytes(last_hash),
        root=bytes(root),
        locator=bytes(locator),
        submitter=str(to_checksum_address(submitter)),
        signers=tuple(str(to_checksum_address(s)) for s in signers),
        address=None if address is None else str(
            to_checksum_address(_fixed(address, 20, "log.address"))
        ),
        block_number=None if block_number is None else _int(block_number, _LOGS, "log.blockNumber"),
        block_hash=None if block_hash is None else _fixed(block_hash, 32, "log.blockHash"),
        transaction_hash=None if tx_hash is None else _fixed(tx_hash, 32, "log.transactionHash"),
        log_index=None if log_index is None else _int(log_index, _LOGS, "log.logIndex"),
        removed=removed,
    )


def _fixed(value: object, size: int, what: str) -> bytes:
    raw = _raw(value, _LOGS, what)
    if len(raw) != size:
        raise RpcProtocolError(_LOGS, f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class AnchorRevert:
    """A decoded revert of an Anchor call.

    Attributes:
        name: the error's name (``"AlreadyAnchored"``, ``"QuorumNotMet"``,
            ``"ECDSAInvalidSignatureS"``, ``"Error"``, ``"Panic"``, ...).
        args: its decoded arguments (bytes for bytesN, int for uintN, EIP-55 str for
            addresses, str for ``Error(string)``).
    """

    name: str
    args: tuple[Any, ...]


def decode_anchor_error(data: bytes | str) -> AnchorRevert:
    """Decode the revert data of a failed Anchor call or transaction.

    A tx sender treats ``AlreadyAnchored`` as "another device won" (done, not a fault).

    Raises:
        RpcProtocolError: the data is not the canonical encoding of one of
            :data:`ANCHOR_ERRORS` (the message shows the selector).
    """
    raw = _raw(data, _CALL, "revert data")
    entry = ANCHOR_ERRORS.get(raw[:4]) if len(raw) >= 4 else None
    if entry is None:
        raise RpcProtocolError(
            _CALL, f"revert data 0x{raw[:4].hex()}...: not an error of the Anchor contract"
        )
    name, types = entry
    args = _decode_exact(list(types), raw[4:], _CALL, f"revert {name}")
    return AnchorRevert(
        name,
        tuple(str(to_checksum_address(a)) if t == "address" else a for t, a in zip(types, args)),
    )
