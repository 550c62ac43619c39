"""Manifests of any size: split into a tree of encrypted parts, and followed back.

A manifest lists one entry per chunk (or per member, for a batch). A large checkpoint
has hundreds of chunks, and its encrypted manifest outgrows what one upload transaction
can store. :func:`split_manifest` then cuts the entry list into ``"part"`` manifests,
each encrypted within ``max_blob`` bytes and stored under its own random key, and makes the
manifest list those parts (key and keccak256 of the encrypted blob) instead; if even that
list is too large, the same is done again one level up (a manifest of manifests of
manifests...). The root keeps its kind, id, metadata hash and device signature, and is
stored under the locator, so mainnet still holds exactly one locator per anchor.

:func:`expand_manifest` is the auditor's side: it fetches every part (any testnet),
checks it against the keccak256 its parent lists, opens it and puts the entries back in
order, depth first, so the result is the manifest as it was before the split.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from eth_hash.auto import keccak

from edge.errors import CryptoError
from edge.crypto.ecies import envelope_size, pad_to_bucket
from edge.evidence.metadata import Manifest, _manifest_json, compress, decrypt_manifest, encrypt_manifest

__all__ = ["MAX_DEPTH", "expand_manifest", "encrypted_manifest_size", "split_manifest"]

MAX_DEPTH = 8
"""Deepest part tree :func:`expand_manifest` follows (a tree of 8 levels of 16 KB parts
lists far more chunks than any checkpoint has)."""


def encrypted_manifest_size(m: Manifest, n_auditors: int) -> int:
    """Bytes of ``encrypt_manifest(m, auditors)`` for ``n_auditors`` auditors (exact: the
    compressed JSON is padded to a bucket, and the envelope size depends on its length)."""
    return envelope_size(n_auditors, len(pad_to_bucket(compress(_manifest_json(m)))))


def _part(m: Manifest, name: str, entries: tuple[Any, ...]) -> Manifest:
    if name == "parts":
        return Manifest("part", m.id, parts=entries)
    if name == "members":
        return Manifest("part", m.id, members=entries)
    return Manifest("part", m.id, chunks=entries)


def _entries(m: Manifest) -> tuple[str, tuple[Any, ...]]:
    if m.parts:
        return "parts", m.parts
    if m.members or m.kind == "batch":
        return "members", m.members
    return "chunks", m.chunks


def split_manifest(m: Manifest, auditors: Sequence[bytes], max_blob: int) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """Encrypt ``m`` so that no blob exceeds ``max_blob`` bytes.

    Args:
        m: the manifest (any kind). auditors: secp256k1 public keys it is encrypted for.
        max_blob: the largest blob one upload transaction can store (bytes).

    Returns:
        ``(root blob, parts)``: the encrypted root (store it under the locator) and the
        ``(key, blob)`` of every part manifest (store each under its key, on every
        testnet, like the root). ``parts`` is empty when ``m`` fits whole.

    Raises:
        CryptoError: ``max_blob`` cannot hold even one entry, or bad auditor keys.
    """
    n = len(auditors)
    if encrypted_manifest_size(m, n) <= max_blob:
        return encrypt_manifest(m, auditors), ()
    name, entries = _entries(m)
    if len(entries) < 2:
        raise CryptoError(f"manifest: {max_blob} bytes cannot hold a manifest of {len(entries)} entry")
    out: list[tuple[bytes, bytes]] = []
    refs: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(entries):
        def fits(j: int) -> bool:
            return encrypted_manifest_size(_part(m, name, entries[i:j]), n) <= max_blob

        if not fits(i + 1):
            raise CryptoError(f"manifest: {max_blob} bytes cannot hold one manifest entry")
        lo, hi = i + 1, len(entries)  # lo fits; find the largest j in [lo, hi] that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        blob = encrypt_manifest(_part(m, name, entries[i:lo]), auditors)
        key = os.urandom(32)
        out.append((key, blob))
        refs.append((key, keccak(blob)))
        i = lo
    if len(refs) >= len(entries):
        raise CryptoError(f"manifest: {max_blob} bytes are too few to split the manifest")
    root = replace(m, chunks=(), members=(), parts=tuple(refs))
    root_blob, more = split_manifest(root, auditors, max_blob)
    return root_blob, tuple(out) + more


async def expand_manifest(m: Manifest, read_blob: Callable[[bytes, bytes], Awaitable[bytes]], auditor_key: bytes,
                          *, _depth: int = 0) -> Manifest:
    """The manifest with its parts followed: chunks / members back in order, no parts.

    Args:
        m: an opened manifest (a root or a part). read_blob: ``(key, keccak256 wanted)``
            -> the encrypted blob stored under the key (any testnet; it may use the hash to
            pick an intact replica). auditor_key: the auditor's private key.

    Raises:
        CryptoError: a part whose keccak256 differs from the one its parent lists (named
            by index and key), a part that does not open, is not a ``"part"`` of the same
            id, or a tree deeper than :data:`MAX_DEPTH`.
        EdgeError: from ``read_blob`` (a part not found).
    """
    if not m.parts:
        return m
    if _depth >= MAX_DEPTH:
        raise CryptoError(f"manifest: part tree deeper than {MAX_DEPTH} levels")
    chunks: list[Any] = []
    members: list[Any] = []
    for i, (key, want) in enumerate(m.parts):
        blob = await read_blob(key, want)
        if keccak(blob) != want:
            raise CryptoError(f"manifest part {i} (key 0x{key.hex()[:16]}..) was changed: its keccak256 differs "
                              "from the one its parent lists")
        part = decrypt_manifest(auditor_key, blob)
        if part.kind != "part" or part.id != m.id:
            raise CryptoError(f"manifest part {i} (key 0x{key.hex()[:16]}..) is not a part of 0x{m.id.hex()[:16]}..")
        part = await expand_manifest(part, read_blob, auditor_key, _depth=_depth + 1)
        chunks.extend(part.chunks)
        members.extend(part.members)
    return replace(m, chunks=tuple(chunks), members=tuple(members), parts=())
