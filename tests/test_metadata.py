"""Checkpoint metadata: binary round trip, encryption for several auditors, chunking that
leaks only a size bucket, and clear errors on wrong keys or malformed input."""

from __future__ import annotations

import json
import os
import struct

import coincurve
import pytest
from eth_hash.auto import keccak

from edge.errors import CryptoError, DecryptionError
from edge.evidence.eip712 import checkpoint_id
from edge.crypto.keys import DeviceKey
from edge.evidence.leaves import Finding, Leaf, RecordKey
from edge.evidence.merkle import MerkleTree
from edge.evidence.metadata import (
    Metadata,
    decode_metadata,
    encode_metadata,
    decrypt_manifest,
    decrypt_metadata,
    recover_hash_signer,
    encrypt_metadata,
)

STORES = [(7301, b"\x11" * 20), (7302, b"\x22" * 20)]


def _metadata(n: int, device: DeviceKey) -> Metadata:
    recs = tuple(Leaf(RecordKey(10 + i // 3, i % 3, i, i), keccak(os.urandom(8)), i * 7) for i in range(n))
    root = MerkleTree([r.leaf for r in recs]).root
    last = os.urandom(32)
    finding = Finding(RecordKey(11, 1, 0, 0), os.urandom(20), os.urandom(32), 0.93, True, "ab" * 32)
    return Metadata(7201, 10, 25, last, root, checkpoint_id(7201, 10, 25, last, root), device.address, recs,
                    (finding,))


def _keys() -> tuple[DeviceKey, list[bytes], list[bytes]]:
    dev = DeviceKey.from_private_key(os.urandom(32))
    privs = [os.urandom(32) for _ in range(3)]
    pubs = [coincurve.PrivateKey(p).public_key.format() for p in privs]
    return dev, privs, pubs


def test_encode_decode_round_trip() -> None:
    dev, _, _ = _keys()
    md = _metadata(40, dev)
    assert decode_metadata(encode_metadata(md)) == md


def test_the_wire_keeps_its_field_names() -> None:
    """Python calls it last_block_hash; the header auditors decode still says last_hash."""
    dev, _, _ = _keys()
    md = _metadata(3, dev)
    blob = encode_metadata(md)
    (hlen,) = struct.unpack(">I", blob[5:9])
    header = json.loads(blob[9:9 + hlen])
    assert header["last_hash"] == md.last_block_hash.hex() and "last_block_hash" not in header


def test_every_auditor_opens_and_the_device_signature_holds() -> None:
    dev, privs, pubs = _keys()
    md = _metadata(100, dev)
    sm = encrypt_metadata(md, auditors=pubs, device_key=dev.private_key, stores=STORES, chunk_bytes=1024)
    assert {c.chain_id for c in sm.chunks} == {7301, 7302}  # spread over both testnets
    for priv in privs:
        man = decrypt_manifest(priv, sm.manifest)
        by_key = {c.key: c.data for c in sm.chunks}
        got, plain = decrypt_metadata(priv, [by_key[r.key] for r in man.chunks])
        assert got == md
        assert keccak(plain) == man.metadata_hash
        assert recover_hash_signer(man.metadata_hash, man.device_sig) == dev.address
    with pytest.raises(DecryptionError):
        decrypt_manifest(os.urandom(32), sm.manifest)


def test_sizes_leak_only_the_bucket_and_keys_look_random() -> None:
    dev, _, pubs = _keys()
    a = encrypt_metadata(_metadata(2, dev), auditors=pubs, device_key=dev.private_key, stores=STORES, chunk_bytes=512)
    b = encrypt_metadata(_metadata(7, dev), auditors=pubs, device_key=dev.private_key, stores=STORES, chunk_bytes=512)
    assert sum(len(c.data) for c in a.chunks) == sum(len(c.data) for c in b.chunks)
    assert len(a.manifest) == len(b.manifest)
    keys = [c.key for c in a.chunks + b.chunks] + [a.manifest_key, b.manifest_key]
    assert len(set(keys)) == len(keys)


def test_out_of_order_chunks_do_not_decrypt() -> None:
    dev, privs, pubs = _keys()
    sm = encrypt_metadata(_metadata(60, dev), auditors=pubs, device_key=dev.private_key, stores=STORES, chunk_bytes=256)
    man = decrypt_manifest(privs[0], sm.manifest)
    by_key = {c.key: c.data for c in sm.chunks}
    ordered = [by_key[r.key] for r in man.chunks]
    assert len(ordered) >= 2
    ordered[0], ordered[1] = ordered[1], ordered[0]
    with pytest.raises(DecryptionError):
        decrypt_metadata(privs[0], ordered)


@pytest.mark.parametrize("blob, fragment", [
    (b"nope" + bytes(20), "bad magic"),
    (b"EDGM\x07" + bytes(10), "unknown version"),
    (b"EDGM\x01\x00\x00\x00\x02{}", "malformed header"),
])
def test_malformed_metadata_is_named(blob: bytes, fragment: str) -> None:
    with pytest.raises(CryptoError, match=fragment):
        decode_metadata(blob)


def test_findings_carry_capability_flags_and_old_findings_still_decode() -> None:
    import dataclasses
    import json
    import struct

    dev, privs, pubs = _keys()
    md = _metadata(3, dev)
    flagged = dataclasses.replace(md.findings[0], capabilities=("is_mintable", "transfer_pausable"))
    pending = Finding(RecordKey(12, 1, 0, 0), os.urandom(20), os.urandom(32), 0.1, False, "ab" * 32, None)
    md = dataclasses.replace(md, findings=(flagged, pending))
    sm = encrypt_metadata(md, auditors=pubs, device_key=dev.private_key, stores=STORES, chunk_bytes=1024)
    man = decrypt_manifest(privs[0], sm.manifest)
    by_key = {c.key: c.data for c in sm.chunks}
    got, _ = decrypt_metadata(privs[0], [by_key[r.key] for r in man.chunks])
    assert got.findings[0].capabilities == ("is_mintable", "transfer_pausable")  # the auditor reads them
    assert got.findings[1].capabilities is None
    # metadata written before the capability analysis: findings of 8 fields
    blob = encode_metadata(md)
    (hlen,) = struct.unpack(">I", blob[5:9])
    header = json.loads(blob[9:9 + hlen])
    header["findings"] = [f[:8] for f in header["findings"]]
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    old = blob[:5] + struct.pack(">I", len(h)) + h + blob[9 + hlen:]
    assert [f.capabilities for f in decode_metadata(old).findings] == [None, None]
