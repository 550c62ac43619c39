"""Checkpoint metadata for the testnet tier: format, encryption ("mixing and shaking"), opening.

What travels (encrypted) per checkpoint:

- the **metadata**: header (chain id, range, last block hash, root, id, leaf count, the
  device that produced it), per record its key, CRC-32C and leaf, and the risk findings
  of its deployments: ``[block, tx_index, index, address, code_hash, score, flagged,
  model_id, capabilities]`` (``capabilities``: the code's capability flag names, or null
  when no report was stored yet; a finding of 8 fields, from an agent before the
  capability analysis, decodes with ``capabilities`` None). Binary layout::

      b"EDGM" | u8 version=1 | u32 header_len | header (UTF-8 JSON, sorted keys)
      | n x (u64 block | u8 kind | u32 tx_index | u32 index | u32 crc | bytes32 leaf)

- the **manifest**: where the chunks are (testnet chain id, store address, key) with the
  keccak256 of each chunk in order, the keccak256 of the metadata and the device's
  signature of it (EIP-191 ``personal_sign`` of that hash). A batch manifest lists the
  member checkpoints (id, manifest key) instead of chunks. JSON, encrypted likewise.

A manifest too large for one upload transaction is split (:mod:`edge.evidence.manifest_tree`):
it then lists ``parts`` (key and keccak256 of encrypted ``"part"`` manifests stored on every
testnet, each holding a slice of the chunks, members or parts) instead of its chunks;
the locator still names the one root manifest.

Compression: before padding, metadata and manifests are deflated (zlib, RFC 1950, with
ISA-L's ``isal_zlib``) when that is shorter; a compressed plaintext starts with
``b"EDGZ"`` (never the start of a metadata blob, ``b"EDGM"``, or of a JSON manifest,
``{``). The device signs the keccak256 of the UNcompressed metadata. Sizes still leak
only a bucket (record contents an attacker chose could shift which bucket: CRIME-style
leaks are bounded by the bucket sizes).

Encryption: ``pad_to_bucket(bytes)`` (sizes leak only a bucket), then ``encrypt_for(auditors,
...)`` (ECIES envelope: :mod:`edge.crypto.ecies`), then the metadata envelope is cut into
fixed-size chunks. Chunk keys are ``keccak256(chunk_secret || u32 i)`` with a fresh random
secret, so they look random to anyone without the manifest; chunks are spread over the
testnets by a random permutation and uploaded in shuffled order. The manifest is stored
under a random 32-byte key on every testnet; that key is the **locator** anchored on
mainnet.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from edge.errors import CryptoError
from edge.crypto.ecies import decrypt_from, encrypt_for, pad_to_bucket, unpad
from edge.evidence.leaves import Finding, Leaf, RecordKey

__all__ = ["Metadata", "ChunkRef", "Manifest", "Chunk", "EncryptedMetadata", "encode_metadata",
           "decode_metadata", "encrypt_metadata", "encrypt_manifest", "decrypt_manifest", "decrypt_metadata",
           "sign_hash", "recover_hash_signer", "chunk_metadata", "compress", "decompress"]

_MAGIC = b"EDGM"
_VERSION = 1
_REC = struct.Struct(">QBIII32s")
_AAD_MD = b"edge-metadata-v1"
_AAD_MF = b"edge-manifest-v1"
_Z = b"EDGZ"
_MAX_INFLATED = 256 * 1024 * 1024  # a plaintext larger than this is refused (no zip bombs)


def compress(plain: bytes) -> bytes:
    """``b"EDGZ" || zlib(plain)`` (RFC 1950; ISA-L level 3, its best) when shorter, else ``plain``."""
    from isal import isal_zlib

    z = _Z + isal_zlib.compress(plain, 3)
    return z if len(z) < len(plain) else plain


def decompress(raw: bytes) -> bytes:
    """Inverse of :func:`compress` (a plaintext without the marker is returned as is).

    Raises:
        CryptoError: the deflate stream is malformed or inflates beyond 256 MiB.
    """
    if raw[:4] != _Z:
        return raw
    from isal import isal_zlib

    d = isal_zlib.decompressobj()
    try:
        out = d.decompress(raw[4:], _MAX_INFLATED)
    except Exception as e:  # noqa: BLE001 - isal_zlib.error (zlib.error's twin)
        raise CryptoError(f"compressed plaintext is malformed: {e}") from e
    if d.unconsumed_tail or not d.eof:
        raise CryptoError("compressed plaintext is truncated or inflates beyond 256 MiB")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Metadata:
    """Decoded checkpoint metadata (module doc). Hashes 32 bytes; device an EIP-55 address."""

    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes
    id: bytes
    device: str
    records: tuple[Leaf, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where one chunk lives: testnet chain id, 20-byte store address, 32-byte key, and the
    keccak256 of its bytes."""

    chain_id: int
    store: bytes
    key: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Manifest:
    """A decoded manifest. ``kind`` is ``"checkpoint"`` (``chunks``, ``metadata_hash``,
    ``device_sig`` set), ``"batch"`` (``members``: (checkpoint id, manifest key) pairs) or
    ``"part"`` (a slice of a split manifest). A split manifest lists ``parts`` instead of
    its chunks or members: (key, keccak256 of the encrypted part blob) pairs, in order."""

    kind: str
    id: bytes
    chunks: tuple[ChunkRef, ...] = ()
    metadata_hash: bytes = b""
    device_sig: bytes = b""
    members: tuple[tuple[bytes, bytes], ...] = ()
    parts: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One blob to store: testnet chain id, 20-byte store address, 32-byte key, data."""

    chain_id: int
    store: bytes
    key: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class EncryptedMetadata:
    """Output of :func:`encrypt_metadata`: the chunks (in upload order, shuffled), the
    encrypted manifest blob and its key (the locator)."""

    chunks: tuple[Chunk, ...]
    manifest: bytes
    manifest_key: bytes


def encode_metadata(md: Metadata) -> bytes:
    """Binary encoding of :class:`Metadata` (module doc)."""
    header = {
        "chain_id": md.chain_id, "from_block": md.from_block, "to_block": md.to_block,
        "last_hash": md.last_block_hash.hex(),  # wire key: auditors read "last_hash"
        "root": md.root.hex(), "id": md.id.hex(), "device": md.device,
        "leaves": len(md.records),
        "findings": [
            [f.key.block_number, f.key.tx_index, f.key.index, f.address.hex(), f.code_hash.hex(), f.score,
             f.flagged, f.model_id, None if f.capabilities is None else list(f.capabilities)]
            for f in md.findings
        ],
    }
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    recs = b"".join(_REC.pack(r.key.block_number, r.key.kind, r.key.tx_index, r.key.index, r.crc, r.leaf)
                    for r in md.records)
    return _MAGIC + bytes((_VERSION,)) + struct.pack(">I", len(h)) + h + recs


def decode_metadata(blob: bytes) -> Metadata:
    """Parse :func:`encode_metadata` output. Raises CryptoError naming what is malformed."""
    if blob[:4] != _MAGIC or len(blob) < 9:
        raise CryptoError("metadata: bad magic (not edge metadata, or decrypted with the wrong key)")
    if blob[4] != _VERSION:
        raise CryptoError(f"metadata: unknown version {blob[4]}")
    (hlen,) = struct.unpack(">I", blob[5:9])
    try:
        h: dict[str, Any] = json.loads(blob[9:9 + hlen])
        body = blob[9 + hlen:]
        if len(body) % _REC.size:
            raise CryptoError(f"metadata: record table of {len(body)} bytes is not a multiple of {_REC.size}")
        recs = tuple(Leaf(RecordKey(b, k, t, i), leaf, crc) for b, k, t, i, crc, leaf in _REC.iter_unpack(body))
        findings = tuple(
            Finding(RecordKey(f[0], 1, f[1], f[2]), bytes.fromhex(f[3]), bytes.fromhex(f[4]), f[5], bool(f[6]), f[7],
                    None if len(f) < 9 or f[8] is None else tuple(str(x) for x in f[8]))
            for f in h["findings"])
        md = Metadata(int(h["chain_id"]), int(h["from_block"]), int(h["to_block"]), bytes.fromhex(h["last_hash"]),
                      bytes.fromhex(h["root"]), bytes.fromhex(h["id"]), str(h["device"]), recs, findings)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise CryptoError(f"metadata: malformed header ({e})") from e
    if int(h["leaves"]) != len(recs):
        raise CryptoError(f"metadata: header says {h['leaves']} records, table holds {len(recs)}")
    return md


def sign_hash(private_key: bytes, digest: bytes) -> bytes:
    """EIP-191 ``personal_sign`` of a 32-byte digest (65 bytes r||s||v, v 27/28)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    return bytes(Account.sign_message(encode_defunct(primitive=digest), private_key).signature)


def recover_hash_signer(digest: bytes, signature: bytes) -> str:
    """Signer (EIP-55) of an EIP-191 signature of ``digest``. Raises CryptoError."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return str(Account.recover_message(encode_defunct(primitive=digest), signature=signature))
    except Exception as e:  # noqa: BLE001 - eth_account raises several types
        raise CryptoError(f"bad metadata signature: {e}") from e


def _manifest_json(m: Manifest) -> bytes:
    d: dict[str, Any] = {"v": 1, "kind": m.kind, "id": m.id.hex()}
    if m.kind == "checkpoint":
        d["metadata_hash"] = m.metadata_hash.hex()
        d["device_sig"] = m.device_sig.hex()
    if m.parts:
        d["parts"] = [[k.hex(), h.hex()] for k, h in m.parts]
    elif m.kind == "batch" or m.members:
        d["members"] = [[i.hex(), k.hex()] for i, k in m.members]
    else:
        d["chunks"] = [[c.chain_id, c.store.hex(), c.key.hex(), c.hash.hex()] for c in m.chunks]
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def encrypt_manifest(m: Manifest, auditors: Sequence[bytes]) -> bytes:
    """Compress, pad and encrypt a manifest for the auditors."""
    return encrypt_for(auditors, pad_to_bucket(compress(_manifest_json(m))), _AAD_MF)


def chunk_metadata(md: Metadata, *, auditors: Sequence[bytes], device_key: bytes,
                   stores: Sequence[tuple[int, bytes]], chunk_bytes: int) -> tuple[tuple[Chunk, ...], Manifest]:
    """Compress, pad, encrypt and chunk one checkpoint's metadata (module doc); returns the
    chunks (shuffled upload order) and the manifest that lists them, not yet encrypted.

    Args:
        md: the metadata. auditors: secp256k1 public keys. device_key: 32-byte private key
        of this device (signs the metadata hash). stores: (testnet chain id, CRUD store
        address) pairs, >= 1. chunk_bytes: chunk size in bytes (>= 1).

    Raises: CryptoError for bad keys, no stores or a chunk size < 1.
    """
    if not stores:
        raise CryptoError("encrypt_metadata: no testnet stores configured")
    if chunk_bytes < 1:
        raise CryptoError(f"encrypt_metadata: chunk size {chunk_bytes} < 1")
    plain = encode_metadata(md)
    envelope = encrypt_for(auditors, pad_to_bucket(compress(plain)), _AAD_MD)
    parts = [envelope[i:i + chunk_bytes] for i in range(0, len(envelope), chunk_bytes)]
    secret = os.urandom(32)
    rng = secrets.SystemRandom()
    placement = [stores[i % len(stores)] for i in range(len(parts))]
    rng.shuffle(placement)
    refs, chunks = [], []
    for i, (data, (cid, store)) in enumerate(zip(parts, placement)):
        key = keccak(secret + i.to_bytes(4, "big"))
        refs.append(ChunkRef(cid, store, key, keccak(data)))
        chunks.append(Chunk(cid, store, key, data))
    rng.shuffle(chunks)
    mhash = keccak(plain)
    return tuple(chunks), Manifest("checkpoint", md.id, tuple(refs), mhash, sign_hash(device_key, mhash))


def encrypt_metadata(md: Metadata, *, auditors: Sequence[bytes], device_key: bytes,
                  stores: Sequence[tuple[int, bytes]], chunk_bytes: int) -> EncryptedMetadata:
    """Encrypt, pad and chunk one checkpoint's metadata for ``auditors`` (module doc), with
    its manifest encrypted whole (:func:`chunk_metadata`, then :func:`encrypt_manifest`; for a
    manifest sized to fit a transaction use :func:`edge.evidence.manifest_tree.split_manifest`).

    Raises: CryptoError for bad keys or no stores.
    """
    chunks, manifest = chunk_metadata(md, auditors=auditors, device_key=device_key, stores=stores,
                                      chunk_bytes=chunk_bytes)
    return EncryptedMetadata(chunks, encrypt_manifest(manifest, auditors), os.urandom(32))


def decrypt_manifest(auditor_key: bytes, blob: bytes) -> Manifest:
    """Decrypt and parse a manifest. Raises DecryptionError / CryptoError naming the fault."""
    raw = decompress(unpad(decrypt_from(auditor_key, blob, _AAD_MF)))
    try:
        d = json.loads(raw)
        if d.get("v") != 1:
            raise CryptoError(f"manifest: unknown version {d.get('v')!r}")
        if d["kind"] not in ("checkpoint", "batch", "part"):
            raise CryptoError(f"manifest: unknown kind {d['kind']!r}")
        chunks = tuple(ChunkRef(int(c[0]), bytes.fromhex(c[1]), bytes.fromhex(c[2]), bytes.fromhex(c[3]))
                       for c in d.get("chunks", ()))
        members = tuple((bytes.fromhex(i), bytes.fromhex(k)) for i, k in d.get("members", ()))
        parts = tuple((bytes.fromhex(k), bytes.fromhex(h)) for k, h in d.get("parts", ()))
        if d["kind"] == "checkpoint":
            return Manifest("checkpoint", bytes.fromhex(d["id"]), chunks, bytes.fromhex(d["metadata_hash"]),
                            bytes.fromhex(d["device_sig"]), parts=parts)
        return Manifest(d["kind"], bytes.fromhex(d["id"]), chunks, members=members, parts=parts)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise CryptoError(f"manifest: malformed ({e})") from e


def decrypt_metadata(auditor_key: bytes, chunks_in_order: Sequence[bytes]) -> tuple[Metadata, bytes]:
    """Reassemble, decrypt and parse metadata; returns it with its plaintext bytes (whose
    keccak256 the manifest signs). Raises DecryptionError / CryptoError."""
    plain = decompress(unpad(decrypt_from(auditor_key, b"".join(chunks_in_order), _AAD_MD)))
    return decode_metadata(plain), plain
