"""ECIES (secp256k1, HKDF-SHA256, AES-256-GCM), envelopes and padding: edge.crypto.ecies."""

from __future__ import annotations

import os

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import CryptoError, DecryptionError
from edge.crypto.ecies import (
    DEFAULT_BUCKETS,
    ECIES_OVERHEAD,
    SLOT_SIZE,
    decrypt,
    decrypt_from,
    encrypt,
    encrypt_for,
    envelope_size,
    pad_to_bucket,
    public_key_of,
    unpad,
)


def _keypair() -> tuple[bytes, bytes]:
    priv = coincurve.PrivateKey()
    return priv.secret, bytes(priv.public_key.format(compressed=True))


# ------------------------------------------------- spec check with another library
#
# The wire format is re-implemented here from the module docstring with the
# `cryptography` package's own secp256k1 ECDH (not coincurve), so a drift of either
# side from the documented format fails.


def _spec_key(shared_x: bytes, eph_pub: bytes, rcpt_pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, b"edge-ecies-v1" + eph_pub + rcpt_pub).derive(shared_x)


def _spec_decrypt(priv: bytes, blob: bytes, aad: bytes) -> bytes:
    key = ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256K1())
    rcpt = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    assert blob[0] == 1
    eph_pub, nonce = blob[1:34], blob[34:46]
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), eph_pub)
    shared_x = key.exchange(ec.ECDH(), peer)
    return AESGCM(_spec_key(shared_x, eph_pub, rcpt)).decrypt(nonce, blob[46:], blob[:46] + aad)


def _spec_encrypt(rcpt_pub: bytes, plaintext: bytes, aad: bytes) -> bytes:
    eph = ec.generate_private_key(ec.SECP256K1())
    eph_pub = eph.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), rcpt_pub)
    shared_x = eph.exchange(ec.ECDH(), peer)
    nonce = os.urandom(12)
    header = b"\x01" + eph_pub + nonce
    key = _spec_key(shared_x, eph_pub, rcpt_pub)
    return header + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def test_wire_format_matches_independent_implementation() -> None:
    priv, pub = _keypair()
    blob = encrypt(pub, b"checkpoint metadata", b"ctx")
    assert _spec_decrypt(priv, blob, b"ctx") == b"checkpoint metadata"
    assert decrypt(priv, _spec_encrypt(pub, b"other way", b"ctx"), b"ctx") == b"other way"


# ------------------------------------------------------------------ single ECIES


@pytest.mark.parametrize("size", [0, 1, 31, 1000, 70_000])
def test_round_trip(size: int) -> None:
    priv, pub = _keypair()
    msg = os.urandom(size)
    blob = encrypt(pub, msg, b"aad")
    assert len(blob) == size + ECIES_OVERHEAD == size + 62
    assert decrypt(priv, blob, b"aad") == msg


def test_every_public_key_form_works() -> None:
    priv = coincurve.PrivateKey()
    forms = [
        bytes(priv.public_key.format(compressed=True)),
        bytes(priv.public_key.format(compressed=False)),
        bytes(priv.public_key.format(compressed=False))[1:],  # bare x || y
    ]
    for form in forms:
        assert decrypt(priv.secret, encrypt(form, b"hello")) == b"hello"
    assert public_key_of(priv.secret) == forms[0]


def test_encryption_is_randomised() -> None:
    _, pub = _keypair()
    a, b = encrypt(pub, b"same"), encrypt(pub, b"same")
    assert a != b and a[1:34] != b[1:34] and a[34:46] != b[34:46]


def test_wrong_key_fails() -> None:
    _, pub = _keypair()
    other, _ = _keypair()
    with pytest.raises(DecryptionError, match="wrong private key"):
        decrypt(other, encrypt(pub, b"secret"))


def test_wrong_aad_fails() -> None:
    priv, pub = _keypair()
    blob = encrypt(pub, b"secret", b"checkpoint 1")
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt(priv, blob, b"checkpoint 2")
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt(priv, blob)


@pytest.mark.parametrize(
    ("region", "first", "last"),
    [("version", 0, 1), ("ephemeral key", 1, 34), ("nonce", 34, 46), ("body", 46, 66),
     ("tag", 66, 82)],
)
def test_tampering_any_byte_fails(region: str, first: int, last: int) -> None:
    priv, pub = _keypair()
    blob = encrypt(pub, bytes(range(20)), b"aad")
    assert len(blob) == 82
    for i in range(first, last):
        for flip in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= flip
            with pytest.raises(DecryptionError) as info:
                decrypt(priv, bytes(bad), b"aad")
            if region == "version":
                assert "unknown version" in str(info.value)
            elif region == "ephemeral key":
                msg = str(info.value)
                assert "not a valid secp256k1 point" in msg or "authentication failed" in msg
            else:
                assert "authentication failed" in str(info.value)


def test_truncated_or_extended_fails() -> None:
    priv, pub = _keypair()
    blob = encrypt(pub, b"x" * 10)
    for n in range(len(blob)):
        with pytest.raises(DecryptionError) as info:
            decrypt(priv, blob[:n])
        if n < ECIES_OVERHEAD:
            assert f"truncated: {n} bytes, at least 62" in str(info.value)
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt(priv, blob + b"\x00")


def test_malformed_keys_are_crypto_errors() -> None:
    priv, pub = _keypair()
    with pytest.raises(CryptoError, match="33 .*65 .*64 .* got 32"):
        encrypt(pub[1:], b"x")
    with pytest.raises(CryptoError, match="not a valid secp256k1 public key"):
        encrypt(b"\x02" + b"\xff" * 32, b"x")  # x >= p: no such point
    with pytest.raises(CryptoError, match="must be 32 bytes, got 31"):
        decrypt(priv[:31], encrypt(pub, b"x"))
    with pytest.raises(CryptoError, match="scalar is 0"):
        decrypt(bytes(32), encrypt(pub, b"x"))
    with pytest.raises(CryptoError, match="expected bytes, got str"):
        encrypt(pub, "text")  # type: ignore[arg-type]


# ------------------------------------------------------------------- envelopes


def test_envelope_opens_for_every_recipient_only() -> None:
    keys = [_keypair() for _ in range(3)]
    outsider, _ = _keypair()
    payload = os.urandom(500)
    env = encrypt_for([pub for _, pub in keys], payload, b"cp-7")
    assert len(env) == envelope_size(3, 500) == 31 + 3 * SLOT_SIZE + 500
    for priv, _ in keys:
        assert decrypt_from(priv, env, b"cp-7") == payload
    with pytest.raises(DecryptionError, match="none of the 3 recipient slots"):
        decrypt_from(outsider, env, b"cp-7")
    with pytest.raises(DecryptionError, match="none of the 3 recipient slots"):
        decrypt_from(keys[0][0], env, b"cp-8")


def test_envelope_slots_are_each_plain_ecies_of_one_data_key() -> None:
    keys = [_keypair() for _ in range(2)]
    env = encrypt_for([pub for _, pub in keys], b"payload", b"a")
    slots = [env[3 + i * SLOT_SIZE : 3 + (i + 1) * SLOT_SIZE] for i in range(2)]
    data_keys = set()
    for priv, _ in keys:
        opened = []
        for slot in slots:
            try:
                opened.append(_spec_decrypt(priv, slot, b"edge-seal-v1a"))
            except Exception:
                pass
        assert len(opened) == 1  # exactly one slot per recipient
        data_keys.add(opened[0])
    (data_key,) = data_keys  # the same 32-byte key in both slots
    head_end = 3 + 2 * SLOT_SIZE + 12
    nonce = env[head_end - 12 : head_end]
    assert AESGCM(data_key).decrypt(nonce, env[head_end:], env[:head_end] + b"a") == b"payload"


def test_envelope_tampering_any_region_fails() -> None:
    priv, pub = _keypair()
    _, pub2 = _keypair()
    env = encrypt_for([pub, pub2], b"p" * 40, b"aad")
    n_head = 3 + 2 * SLOT_SIZE
    regions = {
        "version": [0],
        "count": [1, 2],
        "slots": list(range(3, n_head, 7)),
        "nonce": list(range(n_head, n_head + 12)),
        "payload": list(range(n_head + 12, len(env) - 16)),
        "tag": list(range(len(env) - 16, len(env))),
    }
    for region, positions in regions.items():
        for i in positions:
            bad = bytearray(env)
            bad[i] ^= 0x04
            with pytest.raises(DecryptionError):
                decrypt_from(priv, bytes(bad), b"aad")
    for n in range(0, len(env), 5):
        with pytest.raises(DecryptionError):
            decrypt_from(priv, env[:n], b"aad")


def test_envelope_swapping_in_a_foreign_slot_fails() -> None:
    priv, pub = _keypair()
    _, pub2 = _keypair()
    env_a = encrypt_for([pub, pub2], b"A" * 40)
    env_b = encrypt_for([pub, pub2], b"B" * 40)
    n_head = 3 + 2 * SLOT_SIZE
    mixed = env_a[:n_head] + env_b[n_head:]  # slots of A, payload of B
    with pytest.raises(DecryptionError, match="payload authentication failed"):
        decrypt_from(priv, mixed)


def test_envelope_bad_arguments() -> None:
    priv, pub = _keypair()
    with pytest.raises(CryptoError, match="need 1..65535 recipients, got 0"):
        encrypt_for([], b"x")
    with pytest.raises(CryptoError, match="recipient 1 public key"):
        encrypt_for([pub, b"\x05" * 33], b"x")
    with pytest.raises(DecryptionError, match="unknown version 0x02"):
        decrypt_from(priv, b"\x02" + encrypt_for([pub], b"x")[1:])
    with pytest.raises(DecryptionError, match="0 recipient slots"):
        decrypt_from(priv, b"\x01\x00\x00" + bytes(40))


# --------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    ("size", "padded"),
    [(0, 1024), (1, 1024), (1020, 1024), (1021, 4096), (4092, 4096), (4093, 16384),
     (1048572, 1048576), (1048573, 2 * 1048576), (3 * 1048576, 4 * 1048576)],
)
def test_pad_picks_the_smallest_bucket(size: int, padded: int) -> None:
    data = os.urandom(size)
    out = pad_to_bucket(data)
    assert len(out) == padded
    assert unpad(out) == data
    assert out[:4] == size.to_bytes(4, "big")


def test_padding_hides_size_inside_a_bucket() -> None:
    _, pub = _keypair()
    sizes = {len(encrypt_for([pub], pad_to_bucket(os.urandom(n)))) for n in (0, 17, 500, 1020)}
    assert sizes == {envelope_size(1, DEFAULT_BUCKETS[0])}
    assert len(encrypt_for([pub], pad_to_bucket(os.urandom(1021)))) == envelope_size(1, 4096)


def test_padding_fill_is_random_not_zero() -> None:
    a, b = pad_to_bucket(b"abc"), pad_to_bucket(b"abc")
    assert a[:7] == b[:7] and a[7:] != b[7:]
    assert a[7:] != bytes(len(a) - 7)


def test_custom_buckets_and_errors() -> None:
    assert len(pad_to_bucket(b"x" * 10, (16, 64))) == 16
    assert len(pad_to_bucket(b"x" * 13, (16, 64))) == 64
    assert len(pad_to_bucket(b"x" * 200, (16, 64))) == 256  # multiple of the largest
    for bad in [(), (4,), (64, 16), (16, 16), (16.0,)]:
        with pytest.raises(CryptoError, match="buckets"):
            pad_to_bucket(b"x", bad)  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="shorter than the 4-byte"):
        unpad(b"\x00\x00")
    with pytest.raises(CryptoError, match="says 100 bytes but only 4 follow"):
        unpad((100).to_bytes(4, "big") + b"abcd")


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.integers(5, 3000), min_size=1, max_size=4,
                                           unique=True))
def test_property_pad_round_trip(data: bytes, buckets: list[int]) -> None:
    bs = sorted(buckets)
    out = pad_to_bucket(data, bs)
    assert unpad(out) == data
    fits = [b for b in bs if b >= len(data) + 4]
    assert len(out) == (fits[0] if fits else -(-(len(data) + 4) // bs[-1]) * bs[-1])


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_property_ecies_round_trip(msg: bytes, aad: bytes) -> None:
    priv, pub = _keypair()
    assert decrypt(priv, encrypt(pub, msg, aad), aad) == msg
