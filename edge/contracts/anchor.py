"""Binding of the mainnet ``Anchor`` contract (``contracts/Anchor.sol``) without web3.

Calldata is built with ``eth_abi`` and 4-byte selectors (keccak256 of the Solidity
signature, as the Solidity ABI specification defines them); logs and return values are
decoded strictly (canonical ABI encoding only). The node transport is the caller's (the
tx sender signs and sends the calldata; ``eth_call`` / ``eth_getLogs`` read).

The contract, in short (see its NatSpec for the full rules):

* ``anchor()`` followed by PACKED arguments ``span (24 bytes) || lastBlockHash || root ||
  locator || auth`` (:func:`encode_anchor_raw`), the packed form of the EIP-712 struct ``Checkpoint(bytes32 id,uint64 chainId,uint64
  fromBlock,uint64 toBlock,bytes32 lastBlockHash,bytes32 root)`` (:mod:`edge.evidence.eip712`):
  ``span = chainId << 128 | fromBlock << 64 | toBlock``, the id is computed by the contract.
  ``auth`` (:func:`pack_auth`) carries the roster size and quorum, a signer bitmap, at
  least ``quorum`` signatures by increasing device index and the addresses of the devices
  that did not sign: the contract rebuilds the roster (recovered signers, given others)
  and checks it against ``rosterHash()`` (:func:`roster_hash`), one storage read for the
  whole device set. :func:`encode_anchor_call` builds it all. The first valid anchor
  per id wins; a duplicate reverts ``AlreadyAnchored(id)`` before any signature work.
  ``root`` must be non-zero.
* ``Anchored(bytes32 indexed id, uint256 span, bytes32 locator, uint256 signers)``: the
  root is stored (``anchoredRoot(id)``), not logged, and the last block hash is in the
  metadata (the id commits to both). ``signers`` is a bitmap over the roster in force
  (the last ``DevicesChanged`` before the log); :func:`decode_anchored` resolves it to
  addresses when given that roster (:func:`roster_at`). The submitter is the sender of
  the transaction. :mod:`edge.contracts.anchor_events` reads the logs with all of that filled.
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
    "DevicesChangedEvent",
    "anchor_init_code",
    "anchored_root_call",
    "batch_checkpoint",
    "batch_root",
    "decode_address_list",
    "decode_anchor_error",
    "decode_anchored",
    "decode_bool",
    "decode_bytes32",
    "decode_devices_changed",
    "decode_uint",
    "devices_call",
    "encode_anchor_call",
    "encode_anchor_raw",
    "encode_set_devices",
    "is_device_call",
    "order_signatures",
    "pack_auth",
    "pack_span",
    "quorum_call",
    "roster_at",
    "roster_hash",
    "roster_hash_call",
    "roster_signatures",
    "verify_member_call",
    "verify_record_call",
]

ANCHOR_SIGNATURE = "anchor()"
"""Solidity signature of ``Anchor.anchor`` (its selector is keccak256 of it, 4 bytes); the
arguments follow the selector PACKED (:func:`encode_anchor_raw`), not ABI-encoded."""

ANCHORED_EVENT = "Anchored(bytes32,uint256,bytes32,uint256)"
"""Signature of the ``Anchored`` event; ``id`` is indexed."""

ANCHORED_TOPIC: bytes = keccak(ANCHORED_EVENT.encode())
"""topic0 of ``Anchored`` logs (32 bytes), for ``eth_getLogs`` filters."""

DEVICES_CHANGED_TOPIC: bytes = keccak(b"DevicesChanged(address[],uint8)")
"""topic0 of ``DevicesChanged(address[] devices, uint8 quorum)`` logs."""

MAX_DEVICES = 255
"""Largest device set the contract accepts (``MAX_DEVICES``; quorum is a uint8)."""

_ANCHORED_DATA = ["uint256", "bytes32", "uint256"]
_SIG_BYTES = 66  # one signature in auth: index (1) || r (32) || s (32) || v (1)
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
_SEL_ROSTER_HASH = _selector("rosterHash()")
_SEL_IS_DEVICE = _selector("isDevice(address)")
_SEL_VERIFY_MEMBER = _selector("verifyMember(bytes32,bytes32,bytes32[])")
_SEL_VERIFY_RECORD = _selector("verifyRecord(bytes32,bytes32,bytes32[])")

_ERROR_SIGNATURES = (
    "AlreadyAnchored(bytes32)",
    "BadSpan(uint256)",
    "BadRange(uint64,uint64)",
    "EmptyRoot(bytes32)",
    "NoDevices()",
    "BadAuth(uint256)",
    "RosterMismatch(bytes32,bytes32)",
    "QuorumNotMet(uint256,uint256)",
    "BadDeviceIndex(uint256,uint256)",
    "WrongSigner(uint256,address)",
    "NotADevice(address)",
    "BadQuorum(uint256,uint256)",
    "BadDevice(address)",
    "RenounceDisabled()",
    "ECDSAInvalidSignature()",
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
Anchor contract can revert with (its own, including OpenZeppelin ECDSA's names for bad
signatures, OpenZeppelin Ownable/ShortStrings, ``Error``, ``Panic``)."""


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


def _roster(devices: Iterable[str | bytes], quorum: int) -> list[str]:
    if isinstance(devices, (str, bytes, bytearray)):
        raise CryptoError("anchor: devices must be a sequence of addresses, not one value")
    roster = [_address(d, f"devices[{i}]") for i, d in enumerate(devices)]
    if not 1 <= len(roster) <= MAX_DEVICES:
        raise CryptoError(f"anchor: roster of {len(roster)} devices; the set holds 1..{MAX_DEVICES}")
    if len(set(roster)) != len(roster):
        raise CryptoError("anchor: a device is repeated in the roster")
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= len(roster):
        raise CryptoError(f"anchor: quorum {quorum!r} out of range 1..{len(roster)}")
    return roster


def roster_hash(devices: Sequence[str | bytes], quorum: int) -> bytes:
    """The contract's ``rosterHash``: keccak256(``uint8 n || uint8 quorum || n x address``).

    Args:
        devices: the registered devices in ``devices()`` order (1..255 distinct addresses).
        quorum: the registered quorum M (1..n).

    Raises:
        CryptoError: a malformed or repeated address, or ``quorum`` out of range.
    """
    roster = _roster(devices, quorum)
    return keccak(bytes((len(roster), quorum)) + b"".join(bytes.fromhex(a[2:]) for a in roster))


def pack_span(chain_id: int, from_block: int, to_block: int) -> int:
    """``chainId << 128 | fromBlock << 64 | toBlock`` (the ``span`` word; uint64 each).

    Raises:
        CryptoError: a field is not a uint64.
    """
    for what, v in (("chain id", chain_id), ("from block", from_block), ("to block", to_block)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _U64:
            raise CryptoError(f"anchor: {what} {v!r} is not a uint64")
    return chain_id << 128 | from_block << 64 | to_block


def pack_auth(devices: Sequence[str | bytes], quorum: int, signatures: Iterable[tuple[int, bytes]]) -> bytes:
    """The packed tail of an ``anchor()`` call: roster size and quorum, signer bitmap, the
    signatures, then the addresses of the devices that did not sign.

    Layout (the contract's NatSpec): ``uint8 n || uint8 quorum || bitmap (ceil(n/8) bytes,
    big-endian, bit i = device i signed) || signatures (65 bytes each, in the order given)
    || the other devices' addresses (20 bytes each, by index)``. No check beyond shapes (a
    test may pack a call the contract must refuse).

    Args:
        devices: the roster (``devices()`` order). quorum: the registered quorum.
        signatures: ``(index into devices, 65-byte r || s || v signature)`` pairs, by
            increasing index for a call the contract accepts.

    Raises:
        CryptoError: a malformed roster, an index out of the roster or repeated, or a
            signature not 65 bytes.
    """
    roster = _roster(devices, quorum)
    n = len(roster)
    bits = 0
    sigs = bytearray()
    for i, (idx, sig) in enumerate(signatures):
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < n or bits >> idx & 1:
            raise CryptoError(f"anchor: signature {i}: device index {idx!r} out of the roster or repeated")
        if not isinstance(sig, (bytes, bytearray)) or len(sig) != 65:
            raise CryptoError(f"anchor: signature {i} must be 65 bytes (r || s || v)")
        bits |= 1 << idx
        sigs += sig
    others = b"".join(bytes.fromhex(a[2:]) for i, a in enumerate(roster) if not bits >> i & 1)
    return bytes((n, quorum)) + bits.to_bytes((n + 7) // 8, "big") + bytes(sigs) + others


def roster_signatures(
    domain: Eip712Domain,
    cp: CheckpointMessage,
    signatures: Iterable[bytes],
    devices: Sequence[str | bytes],
    *,
    limit: int | None = None,
) -> list[tuple[int, bytes]]:
    """Signatures as ``anchor`` takes them: ``(device index, signature)`` by increasing index.

    Recovers each signature (OpenZeppelin ECDSA's rules), drops those of signers not in
    ``devices`` and repeats of a signer (the first is kept), sorts by the signer's index in
    ``devices`` and keeps the first ``limit`` (pass the quorum M to pay for exactly M
    ``ecrecover`` s).

    Raises:
        CryptoError: a signature does not recover (its index and OZ's error are named), a
            malformed device address, ``cp`` inconsistent, or ``limit`` < 1.
    """
    index = {a: i for i, a in enumerate(_address(d, f"devices[{i}]") for i, d in enumerate(devices))}
    ordered = order_signatures(domain, cp, signatures, devices=list(index), limit=None)
    pairs = sorted((index[signer], sig) for signer, sig in ordered)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise CryptoError(f"anchor: limit must be an int >= 1, got {limit!r}")
    return pairs if limit is None else pairs[:limit]


def encode_anchor_raw(cp: CheckpointMessage, locator: bytes, auth: bytes) -> bytes:
    """Calldata of the packed ``anchor()`` call with ``auth`` (:func:`pack_auth`) as given.

    Layout: ``selector || uint64 chainId || uint64 fromBlock || uint64 toBlock ||
    lastBlockHash || root || locator || auth`` (big-endian, no padding; the contract's
    NatSpec gives the offsets). No signature check (a test may pack a call the contract
    must refuse). Raises CryptoError on a malformed field.
    """
    span = pack_span(cp.chain_id, cp.from_block, cp.to_block)
    return (_SEL_ANCHOR + span.to_bytes(24, "big") + _bytes32(cp.last_block_hash, "last block hash")
            + _bytes32(cp.root, "root") + _bytes32(locator, "locator") + bytes(auth))


def encode_anchor_call(
    cp: CheckpointMessage,
    locator: bytes,
    signatures: Iterable[bytes],
    *,
    domain: Eip712Domain,
    devices: Sequence[str | bytes],
    quorum: int,
    limit: int | None = None,
) -> bytes:
    """Calldata of ``anchor`` for ``cp`` with the signatures the contract needs.

    Args:
        cp: the checkpoint (or batch checkpoint, :func:`batch_checkpoint`) to anchor;
            its id must match its fields and its root must be non-zero.
        locator: 32 bytes telling an auditor where the testnet metadata is.
        signatures: device signatures over ``cp`` under ``domain`` (any order; see
            :func:`roster_signatures`: signers outside ``devices`` and repeats dropped).
        domain: EIP-712 domain of the Anchor the call goes to.
        devices: the registered roster in ``devices()`` order, and ``quorum`` the
            registered M (together they must hash to the contract's ``rosterHash``, or
            it reverts ``RosterMismatch``).
        limit: optional cap on the signatures sent (pass the quorum M: each extra
            signature costs about 3,300 gas net).

    Returns:
        the packed calldata (:func:`encode_anchor_raw`); send it to the Anchor address.

    Raises:
        CryptoError: ``cp`` inconsistent or with a zero root (the contract would revert
            ``EmptyRoot``), ``locator`` not 32 bytes, a malformed roster, a signature that
            does not recover, or no signature of a roster device left.
    """
    _checkpoint(cp)
    if cp.root == bytes(32):
        raise CryptoError("anchor: checkpoint root is zero; the contract reverts EmptyRoot")
    loc = _bytes32(locator, "locator")
    roster = _roster(devices, quorum)
    pairs = roster_signatures(domain, cp, signatures, roster, limit=limit)
    if not pairs:
        raise CryptoError("anchor: no usable signature of a roster device for the checkpoint")
    return encode_anchor_raw(cp, loc, pack_auth(roster, quorum, pairs))


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


def roster_hash_call() -> bytes:
    """Calldata of ``rosterHash()``; decode with :func:`decode_bytes32` (zero: no set)."""
    return _SEL_ROSTER_HASH


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
        chain_id: the private chain's id.
        from_block, to_block: the inclusive block range.
        locator: 32 bytes pointing at the testnet metadata.
        signer_bits: bit i set: device i of the roster in force signed.
        root: the anchored root (records' root, or member ids' root for a batch): not in
            the log (read ``anchoredRoot(id)``); None until filled in.
        last_block_hash: hash of block ``to_block``: not in the log (it is in the
            metadata; the id commits to it); None until filled in.
        signers: EIP-55 addresses of those devices, ascending by roster index, when the
            roster was given to :func:`decode_anchored` (else empty).
        submitter: EIP-55 sender of the anchoring transaction, when known (the log does
            not hold it: read it from the transaction), else None.
        address: the emitting contract (EIP-55), if the log says.
        block_number, block_hash, transaction_hash, log_index: where the log is, if the
            log says (None otherwise).
        removed: True if the node reports the log as removed by a reorg.
    """

    id: bytes
    chain_id: int
    from_block: int
    to_block: int
    locator: bytes
    signer_bits: int
    root: bytes | None = None
    last_block_hash: bytes | None = None
    signers: tuple[str, ...] = ()
    submitter: str | None = None
    address: str | None = None
    block_number: int | None = None
    block_hash: bytes | None = None
    transaction_hash: bytes | None = None
    log_index: int | None = None
    removed: bool = False

    def checkpoint(self) -> CheckpointMessage:
        """The anchored checkpoint as a :class:`CheckpointMessage` (``id`` as logged; the
        contract computed it from the fields).

        Raises:
            CryptoError: ``root`` or ``last_block_hash`` not filled in yet.
        """
        if self.root is None or self.last_block_hash is None:
            raise CryptoError("anchor: the event's root and last block hash are not known yet")
        return CheckpointMessage(
            self.id, self.chain_id, self.from_block, self.to_block, self.last_block_hash,
            self.root,
        )


@dataclass(frozen=True, slots=True)
class DevicesChangedEvent:
    """One ``DevicesChanged(address[] devices, uint8 quorum)`` log: the roster from then on.

    Attributes:
        devices: EIP-55 addresses in roster order. quorum: M.
        block_number, log_index: where the log is (None if the log does not say).
    """

    devices: tuple[str, ...]
    quorum: int
    block_number: int | None = None
    log_index: int | None = None


def _topics(log: Mapping[str, Any], n: int, topic0: bytes, name: str) -> list[bytes]:
    topics_raw = codec.field(log, "topics", _LOGS, "log")
    if isinstance(topics_raw, (str, bytes)) or not isinstance(topics_raw, Sequence):
        raise RpcProtocolError(_LOGS, "log.topics: expected an array")
    topics = [_raw(t, _LOGS, f"log.topics[{i}]") for i, t in enumerate(topics_raw)]
    if len(topics) != n or any(len(t) != 32 for t in topics):
        raise RpcProtocolError(
            _LOGS, f"log.topics: a {name} log has {n} topics of 32 bytes, got {len(topics)}"
        )
    if topics[0] != topic0:
        raise RpcProtocolError(_LOGS, f"log.topics[0]: 0x{topics[0].hex()} is not {name}")
    return topics


def _position(log: Mapping[str, Any]) -> tuple[int | None, int | None]:
    bn, li = log.get("blockNumber"), log.get("logIndex")
    return (None if bn is None else _int(bn, _LOGS, "log.blockNumber"),
            None if li is None else _int(li, _LOGS, "log.logIndex"))


def decode_devices_changed(log: Mapping[str, Any]) -> DevicesChangedEvent:
    """Decode a ``DevicesChanged`` log (JSON-RPC log object).

    Raises:
        RpcProtocolError: not that event, or its data not the canonical ABI encoding.
    """
    log = codec.as_dict(log, _LOGS, "log")
    _topics(log, 1, DEVICES_CHANGED_TOPIC, "DevicesChanged")
    data = _raw(codec.field(log, "data", _LOGS, "log"), _LOGS, "log.data")
    devices, quorum = _decode_exact(["address[]", "uint8"], data, _LOGS, "log.data")
    bn, li = _position(log)
    return DevicesChangedEvent(tuple(str(to_checksum_address(d)) for d in devices), int(quorum), bn, li)


def roster_at(changes: Sequence[DevicesChangedEvent], block_number: int, log_index: int) -> tuple[str, ...]:
    """The roster in force at log position ``(block_number, log_index)``: the devices of the
    last ``DevicesChanged`` before it (``changes`` in any order, positions known).

    Raises:
        RpcProtocolError: no device set was registered before that position, or a change
            without a position.
    """
    best: DevicesChangedEvent | None = None
    for c in changes:
        if c.block_number is None or c.log_index is None:
            raise RpcProtocolError(_LOGS, "DevicesChanged log without blockNumber/logIndex")
        if (c.block_number, c.log_index) < (block_number, log_index) and (
                best is None or (c.block_number, c.log_index) > (best.block_number or 0, best.log_index or 0)):
            best = c
    if best is None:
        raise RpcProtocolError(_LOGS, f"no device set registered before block {block_number} log {log_index}")
    return best.devices


def decode_anchored(log: Mapping[str, Any], roster: Sequence[str] | None = None) -> AnchoredEvent:
    """Decode an ``Anchored`` log (a JSON-RPC log object, or web3's AttributeDict).

    Args:
        log: mapping with ``topics`` (list of 32-byte values: hex strings or bytes) and
            ``data`` (hex string or bytes); ``address``, ``blockNumber``, ``blockHash``,
            ``transactionHash``, ``logIndex`` and ``removed`` are read if present.
        roster: the devices in force at the log (:func:`roster_at`); if given, the signer
            bitmap is resolved to :attr:`AnchoredEvent.signers`.

    Returns:
        The :class:`AnchoredEvent`.

    Raises:
        RpcProtocolError: not a mapping, topics missing or not 2, topic0 is not
            :data:`ANCHORED_TOPIC`, span with bits above its uint64 fields, data not the
            canonical ABI encoding of the event's non-indexed fields, ``fromBlock >
            toBlock``, a signer bit beyond the roster, or a malformed optional field.
    """
    log = codec.as_dict(log, _LOGS, "log")
    topics = _topics(log, 2, ANCHORED_TOPIC, "Anchored")
    data = _raw(codec.field(log, "data", _LOGS, "log"), _LOGS, "log.data")
    span, locator, bits = _decode_exact(_ANCHORED_DATA, data, _LOGS, "log.data")
    if span >> 192:
        raise RpcProtocolError(_LOGS, f"log.data: span {span:#x} has bits above its uint64 fields")
    chain_id, frm, to = span >> 128, (span >> 64) & (_U64 - 1), span & (_U64 - 1)
    if frm > to:
        raise RpcProtocolError(_LOGS, f"log.data: fromBlock {frm} > toBlock {to}")
    signers: tuple[str, ...] = ()
    if roster is not None:
        if bits >> len(roster):
            raise RpcProtocolError(_LOGS, f"log.data: signer bitmap {bits:#x} beyond the {len(roster)}-device roster")
        signers = tuple(str(to_checksum_address(roster[i])) for i in range(len(roster)) if bits >> i & 1)
    address = log.get("address")
    block_hash = log.get("blockHash")
    tx_hash = log.get("transactionHash")
    block_number, log_index = _position(log)
    removed = log.get("removed", False)
    if not isinstance(removed, bool):
        raise RpcProtocolError(_LOGS, f"log.removed: expected a bool, got {removed!r:.40}")
    return AnchoredEvent(
        id=topics[1],
        chain_id=chain_id,
        from_block=frm,
        to_block=to,
        locator=bytes(locator),
        signer_bits=int(bits),
        signers=signers,
        address=None if address is None else str(
            to_checksum_address(_fixed(address, 20, "log.address"))
        ),
        block_number=block_number,
        block_hash=None if block_hash is None else _fixed(block_hash, 32, "log.blockHash"),
        transaction_hash=None if tx_hash is None else _fixed(tx_hash, 32, "log.transactionHash"),
        log_index=log_index,
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
