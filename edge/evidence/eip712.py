"""EIP-712 typed-data signatures of checkpoints, and the checkpoint id.

Domain (EIP-712 ``EIP712Domain``; what OpenZeppelin's ``EIP712("EdgeAnchor", "1")``
builds with ``block.chainid`` and ``address(this)``)::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
    name = "EdgeAnchor", version = "1", chainId = the chain holding the Anchor contract,
    verifyingContract = the Anchor contract's address

Message::

    Checkpoint(bytes32 id,uint64 chainId,uint64 fromBlock,uint64 toBlock,bytes32 lastBlockHash,bytes32 root)

``chainId`` in the message is the *private* chain's id, ``[fromBlock, toBlock]`` the
inclusive block range, ``lastBlockHash`` the hash of block ``toBlock`` and ``root`` the
Merkle root of the records (:mod:`edge.evidence.merkle`). ``id`` is::

    id = keccak256(abi.encode(uint256 chainId, uint64 fromBlock, uint64 toBlock,
                              bytes32 lastBlockHash, bytes32 root))

i.e. keccak256 of five 32-byte big-endian words (160 bytes); a contract recomputes it
with ``keccak256(abi.encode(uint256(chainId), fromBlock, toBlock, lastBlockHash, root))``.

The digest signed is ``keccak256(0x19 || 0x01 || domainSeparator || hashStruct(cp))``
(EIP-712, EIP-191 version 0x01). Signatures are 65 bytes ``r || s || v`` with
``v in {27, 28}`` and low ``s`` (EIP-2). Recovery applies OpenZeppelin 5
``ECDSA.tryRecover``'s rules in its order: length 65, ``s <= secp256k1n / 2``, then
``ecrecover`` (which yields nothing for ``v`` not 27/28, ``r`` or ``s`` out of range,
or no point), and names OpenZeppelin's error in the :class:`~edge.errors.CryptoError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import coincurve
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

from edge.errors import CryptoError

if TYPE_CHECKING:
    from eth_account.messages import SignableMessage

__all__ = [
    "ANCHOR_NAME",
    "ANCHOR_VERSION",
    "CHECKPOINT_TYPE",
    "CHECKPOINT_TYPEHASH",
    "DOMAIN_TYPE",
    "DOMAIN_TYPEHASH",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "CheckpointMessage",
    "Eip712Domain",
    "checkpoint_digest",
    "checkpoint_id",
    "domain_separator",
    "recover_checkpoint_signer",
    "sign_checkpoint",
    "struct_hash",
]

ANCHOR_NAME = "EdgeAnchor"
"""EIP-712 domain name of the Anchor contract."""
ANCHOR_VERSION = "1"
"""EIP-712 domain version of the Anchor contract."""
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
"""EIP-712 encodeType of the domain."""
DOMAIN_TYPEHASH: bytes = keccak(DOMAIN_TYPE.encode())
"""keccak256 of :data:`DOMAIN_TYPE`."""
CHECKPOINT_TYPE = (
    "Checkpoint(bytes32 id,uint64 chainId,uint64 fromBlock,uint64 toBlock,"
    "bytes32 lastBlockHash,bytes32 root)"
)
"""EIP-712 encodeType of the Checkpoint struct (Solidity: the same string)."""
CHECKPOINT_TYPEHASH: bytes = keccak(CHECKPOINT_TYPE.encode())
"""keccak256 of :data:`CHECKPOINT_TYPE`."""

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group."""
SECP256K1_HALF_N = SECP256K1_N // 2
"""Largest accepted ``s`` (0x7FFF...5D576E7357A4501DDFE92F46681B20A0, as in OZ ECDSA)."""

_U64 = 1 << 64
_U256 = 1 << 256

_MESSAGE_TYPES: dict[str, list[dict[str, str]]] = {
    "Checkpoint": [
        {"name": "id", "type": "bytes32"},
        {"name": "chainId", "type": "uint64"},
        {"name": "fromBlock", "type": "uint64"},
        {"name": "toBlock", "type": "uint64"},
        {"name": "lastBlockHash", "type": "bytes32"},
        {"name": "root", "type": "bytes32"},
    ]
}


def _b32(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise CryptoError(f"eip712: {what} must be 32 bytes, got {type(value).__name__}")
    if len(value) != 32:
        raise CryptoError(f"eip712: {what} must be 32 bytes, got {len(value)} bytes")
    return bytes(value)


def _uint(value: object, what: str, bound: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CryptoError(f"eip712: {what} must be an int, got {type(value).__name__}")
    if not minimum <= value < bound:
        raise CryptoError(f"eip712: {what} = {value} out of range [{minimum}, {bound})")
    return value


def _is_hex_address(addr: object) -> TypeGuard[str]:
    if not isinstance(addr, str) or len(addr) != 42 or not is_hex_address(addr):
        return False
    digits = addr[2:]
    if digits == digits.lower() or digits == digits.upper():
        return True
    return bool(is_checksum_address(addr))  # mixed case: must be a valid EIP-55 checksum


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The EIP-712 domain of an Anchor contract (replay across chains/contracts fails).

    Attributes:
        chain_id: id of the chain the Anchor contract lives on (``block.chainid``), >= 1.
        verifying_contract: the Anchor's address; given as ``0x`` + 40 hex digits (a
            mixed-case one must be a valid EIP-55 checksum) or 20 bytes, stored
            EIP-55 checksummed.
        name: domain name, :data:`ANCHOR_NAME` by default.
        version: domain version, :data:`ANCHOR_VERSION` by default.

    Raises:
        CryptoError: a field is malformed (the message names it).
    """

    chain_id: int
    verifying_contract: str
    name: str = ANCHOR_NAME
    version: str = ANCHOR_VERSION

    def __post_init__(self) -> None:
        _uint(self.chain_id, "domain chain_id", _U256, 1)
        addr: object = self.verifying_contract
        if isinstance(addr, (bytes, bytearray)) and len(addr) == 20:
            addr = "0x" + bytes(addr).hex()
        if not _is_hex_address(addr):
            raise CryptoError(
                f"eip712: domain verifying_contract {addr!r} is not a 0x-prefixed address "
                "(40 hex digits, valid EIP-55 checksum if mixed case)"
            )
        object.__setattr__(self, "verifying_contract", to_checksum_address(addr))
        for field_name in ("name", "version"):
            if not isinstance(getattr(self, field_name), str):
                raise CryptoError(f"eip712: domain {field_name} must be a str")

    def as_dict(self) -> dict[str, Any]:
        """Return the domain as EIP-712 JSON field names (``chainId``, ...)."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def checkpoint_id(
    chain_id: int, from_block: int, to_block: int, last_block_hash: bytes, root: bytes
) -> bytes:
    """Return a checkpoint's 32-byte id (see the module docstring for the encoding).

    ``keccak256(abi.encode(uint256 chainId, uint64 fromBlock, uint64 toBlock,
    bytes32 lastBlockHash, bytes32 root))``.

    Args:
        chain_id: the private chain's id (uint64, >= 1).
        from_block: first block of the range (inclusive, uint64).
        to_block: last block of the range (inclusive, uint64, >= ``from_block``).
        last_block_hash: hash of block ``to_block`` (32 bytes).
        root: Merkle root of the range's records (32 bytes).

    Raises:
        CryptoError: a field is out of range or of the wrong size (named).
    """
    cid = _uint(chain_id, "chain_id", _U64, 1)
    frm = _uint(from_block, "from_block", _U64)
    to = _uint(to_block, "to_block", _U64)
    if frm > to:
        raise CryptoError(f"eip712: from_block {frm} > to_block {to}")
    encoded = abi_encode(
        ["uint256", "uint64", "uint64", "bytes32", "bytes32"],
        [cid, frm, to, _b32(last_block_hash, "last_block_hash"), _b32(root, "root")],
    )
    return keccak(encoded)


@dataclass(frozen=True, slots=True)
class CheckpointMessage:
    """A checkpoint as signed by devices (EIP-712 struct ``Checkpoint``).

    Attributes:
        id: :func:`checkpoint_id` of the other fields (32 bytes).
        chain_id: the private chain's id (uint64, >= 1).
        from_block: first block, inclusive (uint64).
        to_block: last block, inclusive (uint64, >= ``from_block``).
        last_block_hash: hash of block ``to_block`` (32 bytes).
        root: Merkle root of the records (32 bytes).

    Construct with :meth:`create` to compute ``id``; the constructor accepts any id
    (e.g. one read from a chain) and :meth:`id_matches` tells whether it is consistent.

    Raises:
        CryptoError: a field is out of range or of the wrong size (named).
    """

    id: bytes
    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _b32(self.id, "id"))
        object.__setattr__(self, "last_block_hash", _b32(self.last_block_hash, "last_block_hash"))
        object.__setattr__(self, "root", _b32(self.root, "root"))
        _uint(self.chain_id, "chain_id", _U64, 1)
        _uint(self.from_block, "from_block", _U64)
        _uint(self.to_block, "to_block", _U64)
        if self.from_block > self.to_block:
            raise CryptoError(f"eip712: from_block {self.from_block} > to_block {self.to_block}")

    @classmethod
    def create(
        cls, chain_id: int, from_block: int, to_block: int, last_block_hash: bytes, root: bytes
    ) -> CheckpointMessage:
        """Build a message whose ``id`` is :func:`checkpoint_id` of the fields.

        Raises:
            CryptoError: a field is out of range or of the wrong size (named).
        """
        cid = checkpoint_id(chain_id, from_block, to_block, last_block_hash, root)
        return cls(cid, chain_id, from_block, to_block, last_block_hash, root)

    def id_matches(self) -> bool:
        """Return True iff ``id`` equals :func:`checkpoint_id` of the other fields."""
        return self.id == checkpoint_id(
            self.chain_id, self.from_block, self.to_block, self.last_block_hash, self.root
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the message as EIP-712 JSON field names (bytes stay bytes)."""
        return {
            "id": self.id,
            "chainId": self.chain_id,
            "fromBlock": self.from_block,
            "toBlock": self.to_block,
            "lastBlockHash": self.last_block_hash,
            "root": self.root,
        }


def _signable(domain: Eip712Domain, cp: CheckpointMessage) -> SignableMessage:
    if not isinstance(domain, Eip712Domain):
        raise CryptoError(f"eip712: domain must be an Eip712Domain, got {type(domain).__name__}")
    if not isinstance(cp, CheckpointMessage):
        raise CryptoError(
            f"eip712: checkpoint must be a CheckpointMessage, got {type(cp).__name__}"
        )
    # eth_account costs ~0.6 s to import: only paid by code that signs or verifies.
    from eth_account.messages import encode_typed_data

    return encode_typed_data(domain.as_dict(), _MESSAGE_TYPES, cp.as_dict())


def domain_separator(domain: Eip712Domain) -> bytes:
    """Return the 32-byte EIP-712 domain separator (``hashStruct(domain)``).

    Raises:
        CryptoError: ``domain`` is not an :class:`Eip712Domain`.
    """
    if not isinstance(domain, Eip712Domain):
        raise CryptoError(f"eip712: domain must be an Eip712Domain, got {type(domain).__name__}")
    from eth_account.messages import encode_typed_data

    return bytes(encode_typed_data(domain.as_dict(), _MESSAGE_TYPES, _ZERO_CP.as_dict()).header)


def struct_hash(cp: CheckpointMessage) -> bytes:
    """Return the 32-byte EIP-712 ``hashStruct(cp)`` of a checkpoint message.

    Raises:
        CryptoError: ``cp`` is not a :class:`CheckpointMessage`.
    """
    return bytes(_signable(_ZERO_DOMAIN, cp).body)


def checkpoint_digest(domain: Eip712Domain, cp: CheckpointMessage) -> bytes:
    """Return the 32-byte EIP-712 digest ``keccak256(0x1901 || domainSep || hashStruct)``.

    Computed with ``eth_account.messages.encode_typed_data``; this is the hash devices
    sign and the Anchor contract passes to ``ecrecover`` (OpenZeppelin
    ``_hashTypedDataV4(structHash)``).

    Raises:
        CryptoError: an argument is not of the expected type.
    """
    msg = _signable(domain, cp)
    return keccak(b"\x19" + bytes(msg.version) + bytes(msg.header) + bytes(msg.body))


def _address_of(pub: coincurve.PublicKey) -> str:
    return str(to_checksum_address(keccak(bytes(pub.format(compressed=False))[1:])[12:]))


def sign_checkpoint(private_key: bytes, domain: Eip712Domain, cp: CheckpointMessage) -> bytes:
    """Sign ``cp`` under ``domain`` (EIP-712) with a 32-byte secp256k1 private key.

    Returns:
        65 bytes ``r (32) || s (32) || v (1)``, ``v in {27, 28}``, low ``s`` (EIP-2),
        deterministic (RFC 6979 nonce, libsecp256k1 via coincurve). This is the
        ``bytes signature`` OpenZeppelin ``ECDSA.recover(digest, signature)`` takes.

    Raises:
        CryptoError: the key is not 32 bytes or not a valid scalar; ``cp.id`` does not
            match its fields (a device never signs an inconsistent checkpoint).
    """
    if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
        raise CryptoError("eip712: private key must be 32 bytes")
    try:
        key = coincurve.PrivateKey(bytes(private_key))
    except ValueError as exc:
        raise CryptoError("eip712: private key is 0 or not below the secp256k1 order") from exc
    digest = checkpoint_digest(domain, cp)
    if not cp.id_matches():
        raise CryptoError(
            f"eip712: refusing to sign checkpoint 0x{cp.id.hex()}: id does not match "
            "keccak256(abi.encode(chainId, fromBlock, toBlock, lastBlockHash, root))"
        )
    sig = bytes(key.sign_recoverable(digest, hasher=None))
    return sig[:64] + bytes((sig[64] + 27,))


def recover_checkpoint_signer(
    domain: Eip712Domain, cp: CheckpointMessage, signature: bytes
) -> str:
    """Return the EIP-55 address that signed ``cp`` under ``domain``.

    Applies OpenZeppelin 5 ``ECDSA.tryRecover`` (65-byte form) in its order, so a
    signature accepted here is accepted on chain and vice versa.

    Raises:
        CryptoError: ``cp.id`` does not match its fields; or, naming OpenZeppelin's
            error: ``InvalidSignatureLength`` (not 65 bytes), ``InvalidSignatureS``
            (``s > secp256k1n/2``: malleable high-s), ``InvalidSignature`` (``v`` not
            27/28, ``r`` or ``s`` zero or >= n, or no public key recovers).
    """
    if not isinstance(signature, (bytes, bytearray, memoryview)):
        raise CryptoError(f"eip712: signature must be bytes, got {type(signature).__name__}")
    sig = bytes(signature)
    digest = checkpoint_digest(domain, cp)
    if not cp.id_matches():
        raise CryptoError(
            f"eip712: checkpoint id 0x{cp.id.hex()} does not match its fields"
        )
    if len(sig) != 65:
        raise CryptoError(f"eip712: InvalidSignatureLength: {len(sig)} bytes, expected 65")
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    v = sig[64]
    if s > SECP256K1_HALF_N:
        raise CryptoError("eip712: InvalidSignatureS: s is in the upper half (malleable)")
    if v not in (27, 28):
        raise CryptoError(f"eip712: InvalidSignature: v = {v}, must be 27 or 28")
    if not (0 < r < SECP256K1_N and 0 < s):
        raise CryptoError("eip712: InvalidSignature: r or s is zero or not below n")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            sig[:64] + bytes((v - 27,)), digest, hasher=None
        )
    except ValueError:
        raise CryptoError("eip712: InvalidSignature: no public key recovers") from None
    return _address_of(pub)


_ZERO_DOMAIN = Eip712Domain(1, "0x" + "00" * 20)
_ZERO_CP = CheckpointMessage(bytes(32), 1, 0, 0, bytes(32), bytes(32))
