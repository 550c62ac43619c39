"""The device key: an Ethereum v3 keystore file, its passphrase, and the loaded key.

A device's secp256k1 key (its fleet identity, see the Anchor contract's device set)
lives in a Web3 Secret Storage v3 JSON file (the format of geth, eth-account and
MetaMask exports) written and read with eth-account (``Account.encrypt`` /
``Account.decrypt``): scrypt (default) or PBKDF2-HMAC-SHA256, AES-128-CTR,
keccak256 MAC.

Cost: the production default is scrypt ``n = 2**18, r = 8, p = 1``
(:data:`DEFAULT_SCRYPT_N`, the geth/eth-keyfile "standard" parameters): 256 MiB of
memory and about 0.5 s on an x86 core, a few seconds on a Raspberry Pi 4, paid once at
start. Tests pass ``work_factor=2**12``. A keystore demanding more than 1 GiB of scrypt
memory is refused when loaded (a tampered file must not exhaust the device).

A new keystore's passphrase must be strong (:func:`check_passphrase_strength`): at
least :data:`MIN_PASSPHRASE_LENGTH` characters and a zxcvbn score of at least
:data:`MIN_PASSPHRASE_SCORE` of 4 (zxcvbn, Wheeler 2016, USENIX Security: "zxcvbn:
Low-Budget Password Strength Estimation"; the ``zxcvbn`` package). Binary secrets
(not UTF-8, e.g. from a credential store) need 16 bytes. :func:`generate_passphrase`
makes one (about 155 bits).

The passphrase comes from one of (:func:`read_passphrase`)::

    file:PATH          the bytes of a file (one trailing newline stripped)
    env:NAME           the environment variable NAME
    credential:NAME    a systemd credential: $CREDENTIALS_DIRECTORY/NAME
                       (LoadCredential= / LoadCredentialEncrypted= in the unit)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import coincurve
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from edge.errors import CryptoError

__all__ = [
    "DEFAULT_PBKDF2_ITERATIONS",
    "DEFAULT_SCRYPT_N",
    "DeviceKey",
    "Kdf",
    "MIN_PASSPHRASE_LENGTH",
    "MIN_PASSPHRASE_SCORE",
    "check_passphrase_strength",
    "create_keystore",
    "generate_passphrase",
    "load_key",
    "read_passphrase",
    "write_passphrase_file",
]

MIN_PASSPHRASE_LENGTH = 12
"""Fewest characters a new keystore passphrase may have."""
MIN_PASSPHRASE_SCORE = 3
"""Lowest zxcvbn score (0-4; 3: "safely unguessable", about 10^10 guesses) accepted."""
_MIN_BINARY_LENGTH = 16
_ZXCVBN_MAX_CHARS = 72  # zxcvbn's matching grows fast with length; the head decides

DEFAULT_SCRYPT_N = 2**18
"""Production scrypt cost ``n`` (with ``r = 8, p = 1``): 256 MiB, ~0.5 s on x86."""
DEFAULT_PBKDF2_ITERATIONS = 1_000_000
"""Production PBKDF2-HMAC-SHA256 iteration count when ``kdf="pbkdf2"``."""

_MAX_SCRYPT_MEMORY = 1 << 30  # 128 * n * r bytes
_MAX_PBKDF2_ITERATIONS = 10_000_000

Kdf = Literal["scrypt", "pbkdf2"]
"""Key derivation functions a keystore can use."""


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A loaded device key. ``repr``/``str`` never show the private key.

    Attributes:
        address: EIP-55 checksummed Ethereum address (``0x`` + 40 hex digits).
        private_key: the 32-byte secp256k1 secret (hidden from ``repr``).
        public_key_compressed: 33-byte SEC1 compressed public key (give this to
            :func:`edge.crypto.ecies.encrypt` peers).
        public_key_uncompressed: 65-byte SEC1 uncompressed public key (``0x04 || x || y``).
    """

    address: str
    private_key: bytes = field(repr=False)
    public_key_compressed: bytes
    public_key_uncompressed: bytes

    @classmethod
    def from_private_key(cls, private_key: bytes) -> DeviceKey:
        """Derive a :class:`DeviceKey` from a 32-byte secret.

        Raises:
            CryptoError: not 32 bytes, or 0 / not below the secp256k1 order.
        """
        if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
            raise CryptoError("device key: private key must be 32 bytes")
        try:
            pub = coincurve.PrivateKey(bytes(private_key)).public_key
        except ValueError as exc:
            raise CryptoError("device key: scalar is 0 or not below the secp256k1 order") from exc
        unc = bytes(pub.format(compressed=False))
        return cls(
            address=str(to_checksum_address(keccak(unc[1:])[12:])),
            private_key=bytes(private_key),
            public_key_compressed=bytes(pub.format(compressed=True)),
            public_key_uncompressed=unc,
        )


def _check_passphrase(passphrase: object) -> bytes:
    if not isinstance(passphrase, (bytes, bytearray)):
        raise CryptoError(f"keystore: passphrase must be bytes, got {type(passphrase).__name__}")
    if not passphrase:
        raise CryptoError("keystore: passphrase is empty")
    return bytes(passphrase)


def check_passphrase_strength(passphrase: bytes) -> None:
    """Refuse a passphrase too weak to protect a device key (see the module doc).

    Raises:
        CryptoError: ``"passphrase too weak: ..."`` naming the rule that failed, with
            zxcvbn's warning where it has one.
    """
    pw = _check_passphrase(passphrase)
    try:
        text = pw.decode("utf-8")
    except UnicodeDecodeError:
        if len(pw) < _MIN_BINARY_LENGTH:
            raise CryptoError(f"passphrase too weak: a binary passphrase needs at least {_MIN_BINARY_LENGTH} "
                              f"bytes, got {len(pw)}") from None
        return
    if len(text) < MIN_PASSPHRASE_LENGTH:
        raise CryptoError(f"passphrase too weak: {len(text)} characters, at least {MIN_PASSPHRASE_LENGTH} needed")
    from zxcvbn import zxcvbn  # imported here: only `edge keys new` needs it

    verdict = zxcvbn(text[:_ZXCVBN_MAX_CHARS])
    score = int(verdict["score"])
    if score < MIN_PASSPHRASE_SCORE:
        warning = str(verdict.get("feedback", {}).get("warning") or "").rstrip(".")
        raise CryptoError(
            f"passphrase too weak: zxcvbn score {score} of 4, at least {MIN_PASSPHRASE_SCORE} needed"
            + (f" ({warning})" if warning else "")
        )


def generate_passphrase() -> str:
    """A random passphrase: 6 groups of 5 characters from ``a-z0-9`` (about 155 bits),
    e.g. ``"k7q2m-x9d4a-..."``; from :mod:`secrets` (the OS CSPRNG)."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(6))


def write_passphrase_file(path: str | os.PathLike[str], passphrase: str) -> None:
    """Write ``passphrase`` and a newline to a NEW file with mode 0600 (fsynced).

    Raises: CryptoError: the file exists (never overwritten) or cannot be written.
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise CryptoError(f"passphrase file {target}: already exists, refusing to overwrite") from None
    except OSError as exc:
        raise CryptoError(f"passphrase file {target}: cannot create: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(passphrase.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _as_password(passphrase: bytes) -> str:
    # eth-account types the password as str but turns str into UTF-8 bytes and passes
    # bytes through unchanged; giving bytes keeps non-UTF-8 (binary) passphrases exact.
    return cast(str, passphrase)


def create_keystore(
    path: str | os.PathLike[str],
    passphrase: bytes,
    *,
    kdf: Kdf = "scrypt",
    work_factor: int | None = None,
    private_key: bytes | None = None,
) -> str:
    """Create a v3 keystore holding a new (or the given) key; return its address.

    The file is written to a temporary name in the same directory with mode 0600,
    fsynced, then linked into place, so it appears complete or not at all and an
    existing file is never replaced.

    Args:
        path: where to write the keystore (its directory must exist).
        passphrase: non-empty bytes (see :func:`read_passphrase`).
        kdf: ``"scrypt"`` (default) or ``"pbkdf2"``.
        work_factor: scrypt ``n`` (a power of two >= 2) or PBKDF2 iterations; default
            :data:`DEFAULT_SCRYPT_N` / :data:`DEFAULT_PBKDF2_ITERATIONS`.
        private_key: 32-byte secret to store; default a fresh random key.

    Returns:
        The EIP-55 address of the stored key.

    Raises:
        CryptoError: the file already exists, the directory is missing or not
            writable, or an argument is invalid (named).
    """
    pw = _check_passphrase(passphrase)
    if kdf not in ("scrypt", "pbkdf2"):
        raise CryptoError(f"keystore: kdf must be 'scrypt' or 'pbkdf2', got {kdf!r}")
    if work_factor is None:
        work_factor = DEFAULT_SCRYPT_N if kdf == "scrypt" else DEFAULT_PBKDF2_ITERATIONS
    if isinstance(work_factor, bool) or not isinstance(work_factor, int) or work_factor < 2:
        raise CryptoError(f"keystore: work_factor must be an int >= 2, got {work_factor!r}")
    if kdf == "scrypt" and work_factor & (work_factor - 1):
        raise CryptoError(f"keystore: scrypt work_factor must be a power of two, got {work_factor}")
    key = DeviceKey.from_private_key(private_key if private_key is not None else os.urandom(32))

    from eth_account import Account  # ~0.6 s import: only when keys are made or loaded

    doc = Account.encrypt(key.private_key, _as_password(pw), kdf=kdf, iterations=work_factor)
    data = json.dumps(doc, indent=2).encode() + b"\n"
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise CryptoError(f"keystore {target}: already exists, refusing to overwrite")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".keystore-", dir=target.parent)
    except OSError as exc:
        raise CryptoError(f"keystore {target}: cannot write in {target.parent}: {exc.strerror}") \
            from exc
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, target)
    except FileExistsError:
        raise CryptoError(f"keystore {target}: already exists, refusing to overwrite") from None
    except OSError as exc:
        raise CryptoError(f"keystore {target}: cannot write: {exc.strerror}") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    _fsync_dir(target.parent)
    return key.address


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory if str(directory) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _check_kdf_cost(doc: dict[str, Any], where: str) -> None:
    crypto = doc.get("crypto", doc.get("Crypto"))
    if not isinstance(crypto, dict):
        raise CryptoError(f"{where}: not a v3 keystore (no 'crypto' object)")
    params = crypto.get("kdfparams")
    if not isinstance(params, dict):
        raise CryptoError(f"{where}: not a v3 keystore (no 'kdfparams')")
    try:
        if crypto.get("kdf") == "scrypt":
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            if n < 2 or r < 1 or p < 1 or 128 * n * r > _MAX_SCRYPT_MEMORY or p > 16:
                raise CryptoError(
                    f"{where}: scrypt parameters n={n} r={r} p={p} refused "
                    "(more than 1 GiB of memory or p > 16)"
                )
        elif crypto.get("kdf") == "pbkdf2":
            c = int(params["c"])
            if not 1 <= c <= _MAX_PBKDF2_ITERATIONS:
                raise CryptoError(f"{where}: pbkdf2 iteration count {c} refused")
        else:
            raise CryptoError(f"{where}: unsupported kdf {crypto.get('kdf')!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise CryptoError(f"{where}: malformed kdfparams ({exc})") from None


def load_key(path: str | os.PathLike[str], passphrase: bytes) -> DeviceKey:
    """Load and decrypt a v3 keystore (as written by :func:`create_keystore` or geth).

    Raises:
        CryptoError: the file is unreadable or missing; not JSON / not a v3 keystore;
            asks for an unreasonable KDF cost; the passphrase is wrong (MAC mismatch);
            its ``address`` field disagrees with the decrypted key. The message names
            the file and which of these it was.
    """
    where = f"keystore {Path(path)}"
    pw = _check_passphrase(passphrase)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CryptoError(f"{where}: unreadable: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CryptoError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != 3:
        raise CryptoError(f"{where}: not a version 3 keystore")
    _check_kdf_cost(doc, where)

    from eth_account import Account

    try:
        secret = bytes(Account.decrypt(doc, _as_password(pw)))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise CryptoError(f"{where}: wrong passphrase (MAC mismatch)") from None
        raise CryptoError(f"{where}: malformed keystore ({exc})") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise CryptoError(f"{where}: malformed keystore ({exc!r})") from None
    key = DeviceKey.from_private_key(secret)
    stored = doc.get("address")
    if isinstance(stored, str) and stored:
        if stored.lower().removeprefix("0x") != key.address.lower().removeprefix("0x"):
            raise CryptoError(
                f"{where}: address field {stored} does not match the key it holds "
                f"({key.address})"
            )
    return key


def _strip_newline(value: bytes) -> bytes:
    if value.endswith(b"\r\n"):
        return value[:-2]
    if value.endswith(b"\n"):
        return value[:-1]
    return value


def read_passphrase(spec: str) -> bytes:
    """Read a keystore passphrase from ``file:PATH``, ``env:NAME`` or ``credential:NAME``.

    ``credential:NAME`` reads ``$CREDENTIALS_DIRECTORY/NAME`` (systemd credentials,
    ``LoadCredential=NAME:...`` in the unit). One trailing ``\\n`` (or ``\\r\\n``) is
    stripped from every source; the rest is returned as raw bytes.

    Raises:
        CryptoError: unknown source prefix; the file or credential is unreadable;
            ``$CREDENTIALS_DIRECTORY`` or the environment variable is unset; the
            credential name is not a plain file name; the passphrase is empty. The
            message names which.
    """
    if not isinstance(spec, str):
        raise CryptoError(f"passphrase: spec must be a str, got {type(spec).__name__}")
    kind, sep, arg = spec.partition(":")
    if not sep or not arg or kind not in ("file", "env", "credential"):
        raise CryptoError(
            f"passphrase: source {spec!r} not understood; use file:PATH, env:NAME or "
            "credential:NAME"
        )
    if kind == "env":
        value = os.environb.get(arg.encode())
        if value is None:
            raise CryptoError(f"passphrase: environment variable {arg} is not set")
        where = f"environment variable {arg}"
    else:
        if kind == "credential":
            if "/" in arg or arg in (".", ".."):
                raise CryptoError(f"passphrase: credential name {arg!r} must be a plain name")
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            if not cred_dir:
                raise CryptoError(
                    f"passphrase: systemd credential {arg}: $CREDENTIALS_DIRECTORY is not "
                    "set (LoadCredential= missing in the unit?)"
                )
            file = Path(cred_dir) / arg
            where = f"systemd credential {arg} ({file})"
        else:
            file = Path(arg)
            where = f"passphrase file {file}"
        try:
            value = file.read_bytes()
        except OSError as exc:
            raise CryptoError(f"passphrase: {where}: unreadable: {exc.strerror or exc}") \
                from exc
    value = _strip_newline(value)
    if not value:
        raise CryptoError(f"passphrase: {where} is empty")
    return value
