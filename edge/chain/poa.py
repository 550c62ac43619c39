"""Proof-of-Authority seal checks: who sealed a block, and may they?

A private PoA chain is sealed by a known set of authorities. This module recovers the
sealer of a block header, as returned by ``eth_getBlockByNumber``, and checks it against
the configured authority set. Two engines are understood:

* **Clique** (EIP-225; geth, Besu, Nethermind,
  https://eips.ethereum.org/EIPS/eip-225). ``extraData = vanity(32) ‖ [signers] ‖
  seal(65)``. The seal hash is keccak256 of the RLP of the full header with only the last
  65 bytes of ``extraData`` removed; the seal is ``r(32) ‖ s(32) ‖ v(1)``, ``v ∈ {0,1}``.
  The in-turn signer of block ``n`` is ``sorted(signers)[n % len(signers)]``; in-turn
  blocks have difficulty 2, the others difficulty 1.
* **AuRa** (OpenEthereum/Parity engine ``authorityRound``, also Nethermind). The sealed
  header is ``RLP([13 pre-seal fields, step, signature])``; the seal hash ("bare hash")
  is keccak256 of the RLP of the 13 pre-seal fields; the signer must equal the block's
  author (``miner``). The primary of a step is ``validators[step % len(validators)]``.
  Later header fields (``baseFeePerGas`` …) follow the seal in the sealed encoding and
  follow ``extraData`` in the bare one (OpenEthereum ``Header::stream_rlp``).

A header is a JSON-RPC block mapping (camelCase keys, ``0x`` hex strings; ints and bytes
such as web3's ``HexBytes`` are accepted too). The header fields used, in RLP order, are
``parentHash, sha3Uncles, miner, stateRoot, transactionsRoot, receiptsRoot, logsBloom,
difficulty, number, gasLimit, gasUsed, timestamp, extraData, mixHash, nonce`` followed,
when present, by ``baseFeePerGas`` (EIP-1559), ``withdrawalsRoot`` (EIP-4895),
``blobGasUsed, excessBlobGas`` (EIP-4844), ``parentBeaconBlockRoot`` (EIP-4788) and
``requestsHash`` (EIP-7685). Integers are RLP-encoded as minimal big-endian bytes
(Ethereum Yellow Paper, appendix B).

The genesis block (number 0) is never sealed: :meth:`SealChecker.check` reports it with
signer None instead of failing on its zero seal (a Clique genesis lists the initial
signers in extraData; :mod:`edge.chain.clique` tracks the set from there).

On a dev chain (anvil) blocks carry no seal: :class:`SealChecker` then reports engine
``"none"`` and logs once (logger ``edge.poa``) that the check is off. A malformed seal
raises :class:`edge.errors.SealError` naming the block number and what was wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import rlp
from coincurve import PublicKey
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from edge.errors import ConfigError, SealError

__all__ = [
    "Engine",
    "EngineSetting",
    "SealResult",
    "SealChecker",
    "block_hash",
    "detect_engine",
    "clique_seal_hash",
    "clique_signer",
    "aura_seal_hash",
    "aura_signer",
]

Engine = Literal["clique", "aura", "none"]
"""A seal engine as detected or configured (``"none"``: no seal, check off)."""

EngineSetting = Literal["auto", "clique", "aura", "none"]
"""The ``engine`` setting of :class:`SealChecker`; ``"auto"`` detects it per chain."""

_LOG: Final = logging.getLogger("edge.poa")

_SIG_LEN: Final = 65
_VANITY_LEN: Final = 32
_CLIQUE_MIN_EXTRA: Final = _VANITY_LEN + _SIG_LEN  # 97
_ADDRESS_RE: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")

# (key, kind, fixed byte length or None). kind "b" = byte string, "i" = integer.
_FieldSpec = tuple[str, Literal["b", "i"], int | None]

_PRE_SEAL_FIELDS: Final[tuple[_FieldSpec, ...]] = (
    ("parentHash", "b", 32),
    ("sha3Uncles", "b", 32),
    ("miner", "b", 20),
    ("stateRoot", "b", 32),
    ("transactionsRoot", "b", 32),
    ("receiptsRoot", "b", 32),
    ("logsBloom", "b", 256),
    ("difficulty", "i", None),
    ("number", "i", None),
    ("gasLimit", "i", None),
    ("gasUsed", "i", None),
    ("timestamp", "i", None),
    ("extraData", "b", None),
)
_POW_FIELDS: Final[tuple[_FieldSpec, ...]] = (
    ("mixHash", "b", 32),
    ("nonce", "b", 8),
)
# Later forks append these, in this order; a header has a prefix of them.
_LATER_FIELDS: Final[tuple[_FieldSpec, ...]] = (
    ("baseFeePerGas", "i", None),  # EIP-1559 (London)
    ("withdrawalsRoot", "b", 32),  # EIP-4895 (Shanghai)
    ("blobGasUsed", "i", None),  # EIP-4844 (Cancun)
    ("excessBlobGas", "i", None),  # EIP-4844 (Cancun)
    ("parentBeaconBlockRoot", "b", 32),  # EIP-4788 (Cancun)
    ("requestsHash", "b", 32),  # EIP-7685 (Prague)
)
_EXTRA_DATA_INDEX: Final = 12


# --------------------------------------------------------------------------- parsing


def _label(header: Mapping[str, Any]) -> str:
    """``"block 123"`` for error messages, tolerant of a missing or bad number."""
    raw = header.get("number") if isinstance(header, Mapping) else None
    try:
        return f"block {_to_int(raw)}"
    except (TypeError, ValueError):
        return f"block {raw!r}"


def _to_int(value: Any) -> int:
    """Parse a JSON-RPC quantity (``"0x1a"``), a decimal string or an int."""
    if isinstance(value, bool):
        raise TypeError("bool is not a quantity")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative quantity")
        return value
    if isinstance(value, str):
        if value[:2] in ("0x", "0X"):
            return int(value[2:], 16) if len(value) > 2 else 0
        if value.isdigit():
            return int(value, 10)
        raise ValueError(f"not a quantity: {value[:20]!r}")
    raise TypeError(f"not a quantity: {type(value).__name__}")


def _to_bytes(value: Any) -> bytes:
    """Parse ``0x`` hex data (or take ``bytes``/``HexBytes`` as they are)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        return bytes.fromhex(value[2:])
    raise ValueError(f"not 0x-prefixed hex data: {str(value)[:20]!r}")


def _field(header: Mapping[str, Any], spec: _FieldSpec) -> bytes | int:
    """One header field, parsed and length-checked; :class:`SealError` if bad."""
    key, kind, size = spec
    if key not in header or header[key] is None:
        raise SealError(f"{_label(header)}: header field {key!r} is missing")
    try:
        if kind == "i":
            return _to_int(header[key])
        data = _to_bytes(header[key])
    except (TypeError, ValueError) as exc:
        raise SealError(f"{_label(header)}: header field {key!r} is malformed: {exc}") from exc
    if size is not None and len(data) != size:
        raise SealError(
            f"{_label(header)}: header field {key!r} is {len(data)} bytes, expected {size}"
        )
    return data


def _int_field(header: Mapping[str, Any], key: str) -> int:
    value = _field(header, (key, "i", None))
    assert isinstance(value, int)
    return value


def _bytes_field(header: Mapping[str, Any], key: str, size: int | None = None) -> bytes:
    value = _field(header, (key, "b", size))
    assert isinstance(value, bytes)
    return value


def _present(header: Mapping[str, Any], key: str) -> bool:
    return header.get(key) is not None


def _later_fields(header: Mapping[str, Any]) -> list[bytes | int]:
    """The post-London fields the header carries, in canonical order.

    A consensus-valid header has a gap-free prefix of :data:`_LATER_FIELDS`. anvil's
    genesis block on pre-Cancun hardforks, however, states ``blobGasUsed`` and
    ``excessBlobGas`` without ``baseFeePerGas``/``withdrawalsRoot`` and hashes exactly
    the fields it has (alloy's encoding); so do we, to reproduce the stated hash.
    """
    return [_field(header, spec) for spec in _LATER_FIELDS if _present(header, spec[0])]


def _pre_seal(header: Mapping[str, Any]) -> list[bytes | int]:
    if not isinstance(header, Mapping):
        raise SealError(f"header must be a mapping, got {type(header).__name__}")
    return [_field(header, spec) for spec in _PRE_SEAL_FIELDS]


def _keccak_rlp(items: list[Any]) -> bytes:
    return bytes(keccak(rlp.encode(items)))


def _recover(label: str, what: str, digest: bytes, sig: bytes) -> str:
    """EIP-55 address of the key that made the 65-byte ``r‖s‖v`` signature over digest."""
    if len(sig) != _SIG_LEN:
        raise SealError(f"{label}: {what} is {len(sig)} bytes, expected {_SIG_LEN}")
    if sig[64] not in (0, 1):
        raise SealError(f"{label}: {what} has recovery id v={sig[64]}, expected 0 or 1")
    try:
        pub = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    except ValueError as exc:  # r/s out of range or no point: coincurve says ValueError
        raise SealError(f"{label}: {what} is not a valid secp256k1 signature: {exc}") from exc
    raw = pub.format(compressed=False)[1:]
    return str(to_checksum_address(bytes(keccak(raw))[-20:]))


# --------------------------------------------------------------------------- Clique


def _clique_parts(header: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(seal hash, 65-byte seal)`` of a Clique header (EIP-225)."""
    pre = _pre_seal(header)
    extra = pre[_EXTRA_DATA_INDEX]
    assert isinstance(extra, bytes)
    if len(extra) < _CLIQUE_MIN_EXTRA:
        raise SealError(
            f"{_label(header)}: Clique extraData is {len(extra)} bytes, needs at least "
            f"{_CLIQUE_MIN_EXTRA} (32 vanity + 65 seal)"
        )
    pre[_EXTRA_DATA_INDEX] = extra[:-_SIG_LEN]
    pow_ = [_field(header, spec) for spec in _POW_FIELDS]
    return _keccak_rlp(pre + pow_ + _later_fields(header)), extra[-_SIG_LEN:]


def clique_seal_hash(header: Mapping[str, Any]) -> bytes:
    """The 32-byte hash a Clique sealer signed (EIP-225 ``SealHash``).

    keccak256 of RLP([parentHash … timestamp, extraData[:-65], mixHash, nonce,
    later fields if present]).

    Raises:
        SealError: a field is missing or malformed, or extraData is shorter than 97 bytes.
    """
    return _clique_parts(header)[0]


def clique_signer(header: Mapping[str, Any]) -> str:
    """EIP-55 address that sealed a Clique block (EIP-225 ``ecrecover``).

    The seal is ``extraData[-65:] = r ‖ s ‖ v`` with ``v ∈ {0,1}``, over
    :func:`clique_seal_hash`; the address is the last 20 bytes of keccak256 of the
    uncompressed public key without its ``0x04`` prefix.

    Raises:
        SealError: malformed header, short extraData, ``v`` not 0/1, or a signature
            from which no public key can be recovered.
    """
    digest, seal = _clique_parts(header)
    return _recover(_label(header), "Clique seal", digest, seal)


# --------------------------------------------------------------------------- AuRa


def _aura_seal(header: Mapping[str, Any]) -> tuple[int, bytes]:
    """``(step, signature)`` from ``sealFields`` and/or the ``step``/``signature`` keys.

    ``sealFields`` (OpenEthereum) is ``[rlp(step), rlp(signature)]`` and is preferred;
    the ``step`` key may be hex (Nethermind) or decimal (OpenEthereum); if both forms are
    present and readable they must agree.
    """
    label = _label(header)
    step: int | None = None
    sig: bytes | None = None
    fields = header.get("sealFields")
    if fields is not None:
        if not isinstance(fields, (list, tuple)):
            raise SealError(f"{label}: AuRa sealFields is not a list")
        if len(fields) != 2:
            raise SealError(
                f"{label}: AuRa sealFields has {len(fields)} items, expected 2 "
                "[rlp(step), rlp(signature)] (empty-steps seals are not supported)"
            )
        try:
            raw_step = rlp.decode(_to_bytes(fields[0]))
            raw_sig = rlp.decode(_to_bytes(fields[1]))
        except (ValueError, rlp.exceptions.DecodingError) as exc:
            raise SealError(f"{label}: AuRa sealFields are not valid RLP: {exc}") from exc
        if not isinstance(raw_step, bytes) or not isinstance(raw_sig, bytes):
            raise SealError(f"{label}: AuRa sealFields items must be RLP strings")
        if raw_step[:1] == b"\x00":
            raise SealError(f"{label}: AuRa step in sealFields is not minimally encoded")
        step, sig = int.from_bytes(raw_step, "big"), raw_sig
    key_step: int | None = None
    key_sig: bytes | None = None
    try:
        if _present(header, "step"):
            key_step = _to_int(header["step"])
        if _present(header, "signature"):
            key_sig = _to_bytes(header["signature"])
    except (TypeError, ValueError) as exc:
        if step is None:  # no sealFields to fall back on
            raise SealError(f"{label}: AuRa step/signature malformed: {exc}") from exc
    if step is None:
        if key_step is None or key_sig is None:
            raise SealError(f"{label}: no AuRa seal (neither sealFields nor step+signature)")
        return key_step, key_sig
    assert sig is not None
    if key_step is not None and key_step != step:
        raise SealError(f"{label}: AuRa step {key_step} disagrees with sealFields step {step}")
    if key_sig is not None and len(key_sig) == _SIG_LEN and key_sig != sig:
        raise SealError(f"{label}: AuRa signature disagrees with sealFields signature")
    return step, sig


def aura_seal_hash(header: Mapping[str, Any]) -> bytes:
    """The 32-byte AuRa "bare hash" the author signed (OpenEthereum ``bare_hash``).

    keccak256 of RLP([parentHash … extraData, later fields if present]) - the 13
    pre-seal fields, without step and signature.

    Raises:
        SealError: a field is missing or malformed.
    """
    return _keccak_rlp(_pre_seal(header) + _later_fields(header))


def aura_signer(header: Mapping[str, Any]) -> str:
    """EIP-55 address that signed an AuRa block: ecrecover(bare hash, signature).

    A valid AuRa block has signer == ``miner`` (author); this function does not
    enforce that (see :meth:`SealChecker.check`).

    Raises:
        SealError: malformed header, missing/inconsistent seal, or bad signature.
    """
    return _aura_step_signer(header)[1]


def _aura_step_signer(header: Mapping[str, Any]) -> tuple[int, str]:
    step, sig = _aura_seal(header)
    return step, _recover(_label(header), "AuRa signature", aura_seal_hash(header), sig)


# --------------------------------------------------------------------------- generic


def _has_aura_seal(header: Mapping[str, Any]) -> bool:
    if _present(header, "step") and _present(header, "signature"):
        return True
    fields = header.get("sealFields")
    if not isinstance(fields, (list, tuple)) or len(fields) < 2:
        return False
    # OpenEthereum also fills sealFields for Ethash/Clique: [rlp(mixHash), rlp(nonce)].
    try:
        second = rlp.decode(_to_bytes(fields[1]))
    except (ValueError, rlp.exceptions.DecodingError):
        return True  # looks like an AuRa seal that is broken: let the AuRa path say why
    return not (isinstance(second, bytes) and len(second) == 8)


def block_hash(header: Mapping[str, Any]) -> bytes:
    """keccak256 of the RLP of the full sealed header: the block hash a node states.

    AuRa headers (``sealFields`` or ``step``+``signature``) encode as
    ``[13 pre-seal fields, step, signature, later fields]``; all others as
    ``[13 pre-seal fields, mixHash, nonce, later fields]`` (Yellow Paper §4.3 plus
    EIP-1559/4895/4844/4788/7685 appendices).

    Raises:
        SealError: a field is missing or malformed.
    """
    pre = _pre_seal(header)
    if _has_aura_seal(header):
        step, sig = _aura_seal(header)
        middle: list[bytes | int] = [step, sig]
    else:
        middle = [_field(header, spec) for spec in _POW_FIELDS]
    return _keccak_rlp(pre + middle + _later_fields(header))


def detect_engine(header: Mapping[str, Any]) -> Engine:
    """Which seal a header carries.

    * ``"aura"``: it has ``sealFields`` with a signature (not the 8-byte Ethash nonce),
      or both ``step`` and ``signature``;
    * ``"clique"``: extraData >= 97 bytes (32 vanity + 65 seal) and difficulty 1 or 2;
    * ``"none"``: anything else (anvil and other dev chains, PoS, PoW).

    Raises:
        SealError: ``header`` is not a mapping, or extraData/difficulty are malformed.
    """
    if not isinstance(header, Mapping):
        raise SealError(f"header must be a mapping, got {type(header).__name__}")
    if _has_aura_seal(header):
        return "aura"
    extra = _bytes_field(header, "extraData")
    difficulty = _int_field(header, "difficulty")
    if len(extra) >= _CLIQUE_MIN_EXTRA and difficulty in (1, 2):
        return "clique"
    return "none"


# --------------------------------------------------------------------------- checker


@dataclass(frozen=True, slots=True)
class SealResult:
    """Outcome of :meth:`SealChecker.check` for one block.

    Attributes:
        engine: the engine the block was checked as (``"none"``: no check).
        signer: EIP-55 address recovered from the seal, or None when unchecked.
        authorized: signer is in the authority set (AuRa: and equals the author);
            None when unchecked or when no authority set is configured.
        in_turn: signer is the in-turn sealer (Clique ``sorted(set)[number % n]``,
            AuRa ``validators[step % n]``); None when not computable.
        reason: one human-readable line explaining the verdict.
        number: the block number.
    """

    engine: Engine
    signer: str | None
    authorized: bool | None
    in_turn: bool | None
    reason: str
    number: int


class SealChecker:
    """Checks each block's sealer against a configured authority set (EIP-225 / AuRa).

    Args:
        engine: ``"auto"`` (detect per block, see below), ``"clique"``, ``"aura"`` or
            ``"none"`` (check off).
        authorities: the authority addresses (any case). For AuRa their order is the
            validator order used for ``in_turn``; for Clique they are sorted. Empty
            means "recover and report the signer, but authorized/in_turn are None".

    With ``"auto"``, the first sealed block fixes the engine: later blocks without that
    seal raise :class:`SealError` (a stripped seal is not taken for a dev chain), and
    blocks before that are reported as engine ``"none"``.

    Raises:
        ConfigError: unknown engine, malformed or duplicate authority address.
    """

    __slots__ = ("_engine", "_authorities", "_lower", "_sorted", "_locked", "_off_logged")

    def __init__(self, engine: str = "auto", authorities: Iterable[str] = ()) -> None:
        if engine not in ("auto", "clique", "aura", "none"):
            raise ConfigError(
                "poa.engine", f"unknown engine {engine!r} (use auto, clique, aura or none)"
            )
        lower: list[str] = []
        for addr in authorities:
            if not isinstance(addr, str) or not _ADDRESS_RE.match(addr):
                raise ConfigError("poa.authorities", f"not a 20-byte 0x address: {addr!r}")
            if addr.lower() in lower:
                raise ConfigError("poa.authorities", f"duplicate address {addr}")
            lower.append(addr.lower())
        self._engine: EngineSetting = engine  # type: ignore[assignment]
        self._lower: tuple[str, ...] = tuple(lower)
        self._sorted: tuple[str, ...] = tuple(sorted(lower))
        self._authorities: tuple[str, ...] = tuple(str(to_checksum_address(a)) for a in lower)
        self._locked: Engine | None = None
        self._off_logged = False

    @property
    def engine(self) -> EngineSetting:
        """The configured engine setting."""
        return self._engine

    @property
    def authorities(self) -> tuple[str, ...]:
        """The authority set, EIP-55 checksummed, in configured order."""
        return self._authorities

    def _off(self, number: int, why: str) -> SealResult:
        if not self._off_logged:
            self._off_logged = True
            _LOG.info("seal check is off on this chain: %s (first seen at block %d)", why, number)
        return SealResult("none", None, None, None, f"seal check off: {why}", number)

    def check(self, header: Mapping[str, Any]) -> SealResult:
        """Recover the sealer of ``header`` and judge it against the authority set.

        Returns:
            a :class:`SealResult`; engine ``"none"`` (and one log line per checker,
            logger ``edge.poa``) for an unsealed block on a dev chain. Block 0 (the
            genesis, never sealed) gives signer None: a Clique genesis is reported as
            engine ``"clique"`` (its extraData lists the initial signers), an AuRa one
            as ``"aura"`` when configured, else ``"none"`` without logging.

        Raises:
            SealError: malformed header or seal (short extraData, bad signature, missing
                AuRa seal), naming the block number; with ``"auto"``, an unsealed block
                after sealed ones.
        """
        if not isinstance(header, Mapping):
            raise SealError(f"header must be a mapping, got {type(header).__name__}")
        number = _int_field(header, "number")
        engine: Engine
        if self._engine == "none":
            return self._off(number, "engine set to none")
        if number == 0:
            return self._genesis(header)
        if self._engine == "auto":
            engine = detect_engine(header)
            if engine == "none":
                if self._locked is not None:
                    raise SealError(
                        f"block {number}: carries no seal, but earlier blocks of this "
                        f"chain were sealed as {self._locked}"
                    )
                return self._off(number, "blocks carry no Clique or AuRa seal (dev chain?)")
            if self._locked is None:
                _LOG.info("seal engine detected at block %d: %s", number, engine)
                self._locked = engine
            elif engine != self._locked:
                raise SealError(
                    f"block {number}: sealed as {engine}, but earlier blocks of this "
                    f"chain were sealed as {self._locked}"
                )
        else:
            engine = self._engine
        if engine == "clique":
            return self._check_clique(header, number)
        return self._check_aura(header, number)

    def _genesis(self, header: Mapping[str, Any]) -> SealResult:
        """Block 0 carries no seal on any engine: it is the genesis that defines the set.

        A Clique genesis states the initial signers in extraData (EIP-225: vanity(32) ‖
        signers ‖ 65 zero bytes); :mod:`edge.chain.clique` takes them from there. Forcing
        Clique on a genesis without that layout is still an error (not a Clique chain).
        """
        extra = _bytes_field(header, "extraData")
        body = len(extra) - _CLIQUE_MIN_EXTRA
        clique_layout = body > 0 and body % 20 == 0 and extra[-_SIG_LEN:] == bytes(_SIG_LEN)
        if clique_layout and self._engine in ("auto", "clique"):
            return SealResult("clique", None, None, None,
                              f"genesis block: no seal; its extraData names {body // 20} signer(s)", 0)
        if self._engine == "aura":
            return SealResult("aura", None, None, None, "genesis block: no seal", 0)
        if self._engine == "auto":
            return SealResult("none", None, None, None, "seal check off: the genesis block carries no seal", 0)
        _clique_parts(header)  # forced Clique on a genesis that is not one: say why
        return SealResult("clique", None, None, None, "genesis block: no seal", 0)

    def _check_clique(self, header: Mapping[str, Any], number: int) -> SealResult:
        signer = clique_signer(header)
        if not self._lower:
            return SealResult("clique", signer, None, None, "no authority set configured", number)
        low = signer.lower()
        if low not in self._lower:
            return SealResult(
                "clique", signer, False, False, f"signer {signer} is not an authority", number
            )
        expected = self._sorted[number % len(self._sorted)]
        in_turn = low == expected
        difficulty = _int_field(header, "difficulty")
        reason = "authorized, in turn" if in_turn else "authorized, out of turn"
        if difficulty != (2 if in_turn else 1):
            reason += f" (but difficulty is {difficulty}, EIP-225 wants {2 if in_turn else 1})"
        return SealResult("clique", signer, True, in_turn, reason, number)

    def _check_aura(self, header: Mapping[str, Any], number: int) -> SealResult:
        step, signer = _aura_step_signer(header)
        author = _bytes_field(header, "miner", 20)
        if signer.lower() != "0x" + author.hex():
            return SealResult(
                "aura",
                signer,
                False,
                None,
                f"signer {signer} is not the block author {to_checksum_address(author)}",
                number,
            )
        if not self._lower:
            return SealResult("aura", signer, None, None, "no authority set configured", number)
        low = signer.lower()
        if low not in self._lower:
            return SealResult(
                "aura", signer, False, False, f"signer {signer} is not a validator", number
            )
        in_turn = self._lower[step % len(self._lower)] == low
        reason = "authorized, step primary" if in_turn else "authorized, not the step primary"
        return SealResult("aura", signer, True, in_turn, reason, number)
