"""ECIES on secp256k1 for auditors, a multi-recipient envelope, and size-bucket padding.

Single recipient, wire format v1 (:func:`encrypt` / :func:`decrypt`)::

    offset  size  field
    0       1     version = 0x01
    1       33    ephemeral public key E, SEC1 compressed (0x02/0x03 || x)
    34      12    AES-GCM nonce (random)
    46      n+16  AES-256-GCM ciphertext of the n-byte plaintext, then the 16-byte tag

    z   = x-coordinate (32 bytes, big-endian) of e * R          (ECDH, SEC 1 §3.3.1)
    key = HKDF-SHA256(IKM = z, salt = none (RFC 5869: 32 zero bytes),
                      info = b"edge-ecies-v1" || E (33) || R (33, compressed), L = 32)
    ct  = AES-256-GCM(key, nonce, plaintext, AAD = bytes 0..45 of the blob || aad)

``e`` is a fresh random ephemeral scalar per message, ``R`` the recipient's public key.
The header is authenticated (it is part of the GCM AAD, and ``E`` and ``R`` are bound
into the key), so a change to *any* byte of the blob, a wrong recipient key or a wrong
``aad`` all end in the same tag failure; GCM cannot tell them apart, and
:class:`~edge.errors.DecryptionError` says so. The blob overhead is 62 bytes.

Multi-recipient envelope, format v1 (:func:`encrypt_for` / :func:`decrypt_from`)::

    offset      size    field
    0           1       version = 0x01
    1           2       N = number of recipient slots, big-endian, 1..65535
    3           94*N    N slots; slot = encrypt(R_i, data_key (32 bytes),
                                                aad = b"edge-seal-v1" || aad)
    3+94N       12      payload nonce (random)
    15+94N      n+16    AES-256-GCM(data_key, nonce, plaintext,
                                    AAD = bytes 0..14+94N of the envelope || aad)

The 32-byte data key is random per envelope; the payload is encrypted once. Slots carry
no recipient identifier (an observer cannot tell which auditors can read an envelope,
only how many) and are written in random order; a recipient tries each slot with its
key. The payload AAD covers every slot, so slots cannot be added, removed or swapped
without detection. Envelope overhead: 31 + 94 N bytes.

Padding (:func:`pad_to_bucket` / :func:`unpad`), applied to the plaintext *before*
encryption: ``uint32 big-endian length || data || random bytes`` filled up to the
smallest bucket that holds ``4 + len(data)`` bytes (beyond the largest bucket: the next
multiple of the largest). An envelope's size then reveals only the bucket and N.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge.errors import CryptoError, DecryptionError

__all__ = [
    "DEFAULT_BUCKETS",
    "ECIES_OVERHEAD",
    "ECIES_VERSION",
    "ENVELOPE_VERSION",
    "SLOT_SIZE",
    "decrypt",
    "decrypt_from",
    "encrypt",
    "encrypt_for",
    "envelope_size",
    "pad_to_bucket",
    "public_key_of",
    "unpad",
]

ECIES_VERSION = 0x01
"""Version byte of the single-recipient ECIES blob."""
ENVELOPE_VERSION = 0x01
"""Version byte of the multi-recipient envelope."""

_HKDF_INFO = b"edge-ecies-v1"
_SLOT_AAD_PREFIX = b"edge-seal-v1"
_PUB_LEN = 33
_NONCE_LEN = 12
_TAG_LEN = 16
_KEY_LEN = 32
_HEADER_LEN = 1 + _PUB_LEN + _NONCE_LEN  # 46

ECIES_OVERHEAD = _HEADER_LEN + _TAG_LEN
"""Bytes an ECIES blob adds to its plaintext (62)."""
SLOT_SIZE = ECIES_OVERHEAD + _KEY_LEN
"""Size of one recipient slot of an envelope (94 bytes)."""
_ENV_FIXED = 1 + 2  # version + count
_MAX_RECIPIENTS = 0xFFFF

DEFAULT_BUCKETS: tuple[int, ...] = (1024, 4096, 16384, 65536, 262144, 1048576)
"""Default padded sizes in bytes: 1 KiB to 1 MiB by powers of 4."""
_LEN_PREFIX = 4


# --------------------------------------------------------------------------- keys


def _bytes_arg(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise CryptoError(f"{what}: expected bytes, got {type(value).__name__}")
    return bytes(value)


def _parse_public(pub: object, what: str) -> coincurve.PublicKey:
    raw = _bytes_arg(pub, what)
    if len(raw) == 64:  # bare x || y (eth-keys style)
        raw = b"\x04" + raw
    if len(raw) not in (33, 65):
        raise CryptoError(
            f"{what}: a secp256k1 public key is 33 (compressed), 65 (uncompressed) or "
            f"64 (x||y) bytes, got {len(raw)}"
        )
    try:
        return coincurve.PublicKey(raw)
    except ValueError as exc:
        raise CryptoError(f"{what}: not a valid secp256k1 public key") from exc


def _parse_private(priv: object, what: str = "private key") -> coincurve.PrivateKey:
    raw = _bytes_arg(priv, what)
    if len(raw) != 32:
        raise CryptoError(f"{what}: must be 32 bytes, got {len(raw)}")
    try:
        return coincurve.PrivateKey(raw)
    except ValueError as exc:
        raise CryptoError(f"{what}: scalar is 0 or not below the secp256k1 order") from exc


def public_key_of(priv: bytes) -> bytes:
    """Return the 33-byte compressed secp256k1 public key of a 32-byte private key.

    Raises:
        CryptoError: ``priv`` is not 32 bytes or not a valid scalar (0 or >= n).
    """
    return bytes(_parse_private(priv).public_key.format(compressed=True))


def _derive_key(secret: bytes, peer: coincurve.PublicKey, eph_pub: bytes, rcpt: bytes) -> bytes:
    shared_x = bytes(peer.multiply(secret).format(compressed=True))[1:]
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_LEN, salt=None,
                info=_HKDF_INFO + eph_pub + rcpt)
    return hkdf.derive(shared_x)


# -------------------------------------------------------------------- single ECIES


def encrypt(recipient_pub: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` for the holder of ``recipient_pub`` (ECIES v1, module doc).

    Args:
        recipient_pub: secp256k1 public key, 33, 65 or 64 bytes.
        plaintext: any bytes (pad first with :func:`pad_to_bucket` to hide the size).
        aad: associated data, authenticated but not encrypted; ``decrypt`` needs the
            same bytes.

    Returns:
        ``len(plaintext) + 62`` bytes: version || ephemeral pub || nonce || ct || tag.

    Raises:
        CryptoError: the public key is malformed or not on the curve; an argument is
            not bytes.
    """
    rcpt = _parse_public(recipient_pub, "ecies: recipient public key")
    plaintext = _bytes_arg(plaintext, "ecies: plaintext")
    aad = _bytes_arg(aad, "ecies: aad")
    eph = coincurve.PrivateKey()
    eph_pub = bytes(eph.public_key.format(compressed=True))
    key = _derive_key(eph.secret, rcpt, eph_pub, bytes(rcpt.format(compressed=True)))
    nonce = os.urandom(_NONCE_LEN)
    header = bytes((ECIES_VERSION,)) + eph_pub + nonce
    return header + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def _decrypt(priv: coincurve.PrivateKey, own_pub: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < ECIES_OVERHEAD:
        raise DecryptionError(
            f"ecies: blob truncated: {len(blob)} bytes, at least {ECIES_OVERHEAD} needed"
        )
    if blob[0] != ECIES_VERSION:
        raise DecryptionError(
            f"ecies: unknown version 0x{blob[0]:02x} (this build reads 0x{ECIES_VERSION:02x})"
        )
    eph_pub = blob[1 : 1 + _PUB_LEN]
    try:
        eph = coincurve.PublicKey(eph_pub)
    except ValueError as exc:
        raise DecryptionError(
            "ecies: ephemeral public key is not a valid secp256k1 point (header tampered)"
        ) from exc
    nonce = blob[1 + _PUB_LEN : _HEADER_LEN]
    key = _derive_key(priv.secret, eph, eph_pub, own_pub)
    try:
        return AESGCM(key).decrypt(nonce, blob[_HEADER_LEN:], blob[:_HEADER_LEN] + aad)
    except InvalidTag:
        raise DecryptionError(
            "ecies: authentication failed: wrong private key, wrong associated data, "
            "or tampered blob (AES-GCM tag mismatch)"
        ) from None


def decrypt(priv: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Decrypt an ECIES v1 ``blob`` made by :func:`encrypt` with the 32-byte ``priv``.

    Returns:
        The plaintext.

    Raises:
        CryptoError: ``priv`` is malformed (not 32 bytes / not a valid scalar).
        DecryptionError: the blob is truncated (shorter than 62 bytes), has an unknown
            version byte, carries an invalid ephemeral key, or fails authentication
            (wrong key, wrong ``aad``, or any byte tampered; indistinguishable by
            design). The message names which.
    """
    key = _parse_private(priv, "ecies: private key")
    blob = _bytes_arg(blob, "ecies: blob")
    aad = _bytes_arg(aad, "ecies: aad")
    return _decrypt(key, bytes(key.public_key.format(compressed=True)), blob, aad)


# ------------------------------------------------------------ multi-recipient envelope


def envelope_size(n_recipients: int, plaintext_len: int) -> int:
    """Return the byte size of a :func:`encrypt_for` envelope: ``31 + 94 N + len``."""
    return _ENV_FIXED + SLOT_SIZE * n_recipients + _NONCE_LEN + plaintext_len + _TAG_LEN


def encrypt_for(recipients: Sequence[bytes], plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` once for several recipients (envelope v1, module doc).

    Args:
        recipients: 1..65535 secp256k1 public keys (33, 65 or 64 bytes each).
        plaintext: the payload (pad it first to hide its size).
        aad: associated data bound to every slot and to the payload.

    Returns:
        The envelope, :func:`envelope_size` bytes. Slots are in random order.

    Raises:
        CryptoError: no recipients, more than 65535, or a malformed public key (the
            message names its index).
    """
    if not isinstance(recipients, Sequence) or isinstance(recipients, (bytes, bytearray)):
        raise CryptoError("encrypt_for: recipients must be a sequence of public keys")
    n = len(recipients)
    if not 1 <= n <= _MAX_RECIPIENTS:
        raise CryptoError(f"encrypt_for: need 1..{_MAX_RECIPIENTS} recipients, got {n}")
    pubs = [
        bytes(_parse_public(p, f"encrypt_for: recipient {i} public key").format(compressed=True))
        for i, p in enumerate(recipients)
    ]
    plaintext = _bytes_arg(plaintext, "encrypt_for: plaintext")
    aad = _bytes_arg(aad, "encrypt_for: aad")
    data_key = os.urandom(_KEY_LEN)
    slot_aad = _SLOT_AAD_PREFIX + aad
    slots = [encrypt(p, data_key, slot_aad) for p in pubs]
    secrets.SystemRandom().shuffle(slots)
    nonce = os.urandom(_NONCE_LEN)
    head = bytes((ENVELOPE_VERSION,)) + n.to_bytes(2, "big") + b"".join(slots) + nonce
    return head + AESGCM(data_key).encrypt(nonce, plaintext, head + aad)


def decrypt_from(priv: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Decrypt an envelope made by :func:`encrypt_for` with one recipient's 32-byte ``priv``.

    Returns:
        The plaintext.

    Raises:
        CryptoError: ``priv`` is malformed.
        DecryptionError: the envelope is truncated or has an unknown version or a zero
            recipient count; no slot opens with this key (not a recipient, wrong
            ``aad``, or slots tampered); or the payload fails authentication (tampered
            payload, nonce, header or ``aad``). The message names which.
    """
    key = _parse_private(priv, "decrypt_from: private key")
    blob = _bytes_arg(blob, "decrypt_from: envelope")
    aad = _bytes_arg(aad, "decrypt_from: aad")
    if len(blob) < _ENV_FIXED:
        raise DecryptionError(f"decrypt_from: envelope truncated: {len(blob)} bytes")
    if blob[0] != ENVELOPE_VERSION:
        raise DecryptionError(
            f"decrypt_from: unknown version 0x{blob[0]:02x} "
            f"(this build reads 0x{ENVELOPE_VERSION:02x})"
        )
    n = int.from_bytes(blob[1:3], "big")
    if n == 0:
        raise DecryptionError("decrypt_from: envelope declares 0 recipient slots")
    need = envelope_size(n, 0)
    if len(blob) < need:
        raise DecryptionError(
            f"decrypt_from: envelope truncated: {len(blob)} bytes, {n} slots need at "
            f"least {need}"
        )
    own_pub = bytes(key.public_key.format(compressed=True))
    slot_aad = _SLOT_AAD_PREFIX + aad
    data_key: bytes | None = None
    for i in range(n):
        start = _ENV_FIXED + i * SLOT_SIZE
        try:
            data_key = _decrypt(key, own_pub, blob[start : start + SLOT_SIZE], slot_aad)
        except DecryptionError:
            continue
        break
    if data_key is None or len(data_key) != _KEY_LEN:
        raise DecryptionError(
            f"decrypt_from: none of the {n} recipient slots opens with this key "
            "(not a recipient, wrong associated data, or slots tampered)"
        )
    body = _ENV_FIXED + n * SLOT_SIZE
    head_end = body + _NONCE_LEN
    nonce = blob[body:head_end]
    try:
        return AESGCM(data_key).decrypt(nonce, blob[head_end:], blob[:head_end] + aad)
    except InvalidTag:
        raise DecryptionError(
            "decrypt_from: payload authentication failed: tampered payload, nonce or "
            "slots, or wrong associated data (AES-GCM tag mismatch)"
        ) from None


# ----------------------------------------------------------------------- padding


def _check_buckets(buckets: Sequence[int]) -> tuple[int, ...]:
    try:
        bs = tuple(buckets)
    except TypeError:
        raise CryptoError("pad_to_bucket: buckets must be a sequence of ints") from None
    if not bs:
        raise CryptoError("pad_to_bucket: buckets must not be empty")
    prev = _LEN_PREFIX
    for b in bs:
        if isinstance(b, bool) or not isinstance(b, int) or b <= prev:
            raise CryptoError(
                f"pad_to_bucket: buckets must be strictly increasing ints > {_LEN_PREFIX}, "
                f"got {bs!r}"
            )
        prev = b
    return bs


def pad_to_bucket(data: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS) -> bytes:
    """Pad ``data`` to a bucket size: ``uint32be(len) || data || random fill``.

    Args:
        data: at most 2**32 - 1 bytes.
        buckets: strictly increasing sizes in bytes (each > 4).

    Returns:
        Bytes whose length is the smallest bucket >= ``4 + len(data)``; when even the
        largest bucket is too small, the smallest multiple of the largest bucket that
        fits. The fill is random (``os.urandom``).

    Raises:
        CryptoError: bad ``buckets``; ``data`` is not bytes or is 4 GiB or more.
    """
    data = _bytes_arg(data, "pad_to_bucket: data")
    bs = _check_buckets(buckets)
    if len(data) > 0xFFFFFFFF:
        raise CryptoError(f"pad_to_bucket: data too long ({len(data)} bytes, max 2**32-1)")
    need = _LEN_PREFIX + len(data)
    size = next((b for b in bs if b >= need), 0)
    if not size:
        top = bs[-1]
        size = -(-need // top) * top
    return len(data).to_bytes(_LEN_PREFIX, "big") + data + os.urandom(size - need)


def unpad(padded: bytes) -> bytes:
    """Return the data inside a :func:`pad_to_bucket` result (fill discarded).

    Raises:
        CryptoError: shorter than the 4-byte prefix, or the prefix claims more bytes
            than follow it.
    """
    padded = _bytes_arg(padded, "unpad: padded")
    if len(padded) < _LEN_PREFIX:
        raise CryptoError(f"unpad: {len(padded)} bytes, shorter than the 4-byte length prefix")
    n = int.from_bytes(padded[:_LEN_PREFIX], "big")
    if n > len(padded) - _LEN_PREFIX:
        raise CryptoError(
            f"unpad: length prefix says {n} bytes but only {len(padded) - _LEN_PREFIX} follow"
        )
    return padded[_LEN_PREFIX : _LEN_PREFIX + n]
