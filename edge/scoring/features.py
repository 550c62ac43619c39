"""Runtime bytecode -> fixed-length float32 feature vector (the scorer's hot path).

Two implementations compute the *same bits*: a C extension (``edge.scoring._features``,
built by ``setup.py``) and the pure-Python fallback in this module. :data:`BACKEND` says
which one is in use; ``EDGE_FEATURES=python`` in the environment forces the fallback.
The C module holds no layout of its own: this module passes it every table (opcode
slots, named selectors, bucket sizes) once at import, so the layout lives in one place.

Pipeline for one contract (the EVM instruction set is that of the Yellow Paper up to
Cancun, EIP-7516 / EIP-5656 / EIP-1153 included):

1. :func:`strip_metadata` cuts the Solidity CBOR metadata trailer (it encodes the
   compiler version and a source hash, which correlate with the label in the training
   data; the model must learn behaviour, not compiler era).
2. One linear scan over the instructions, PUSH immediates skipped (a PUSH cut off by the
   end of the code is counted and ends the scan). It counts opcodes, hashed opcode
   bigrams, the distinct 4-byte function selectors the dispatcher compares the call
   data with (``PUSH4 s`` followed by ``EQ``/``GT``/``LT``, or by ``DUP2 EQ``) and the
   other ``PUSH4`` constants.
3. Everything is counted in integers; the only floating-point operation is one IEEE-754
   double division per ratio, rounded once to float32. Division and rounding are
   correctly rounded on every IEEE platform, so x86 and ARM give identical bits.

Feature groups (see :data:`FEATURE_NAMES` for the exact order):

* ``size_bytes``, ``n_instr``, ``n_selectors`` (distinct), ``n_push4_other``,
  ``push_truncated`` (0/1), ``n_undefined`` (bytes that are no defined opcode);
* ``count:<OP>``: absolute counts of security-relevant opcodes (SELFDESTRUCT,
  DELEGATECALL, CALLCODE, ORIGIN, CALL, CREATE2, PUSH20, ...);
* ``ratio:<OP>``: count / n_instr for every defined opcode, plus ``ratio:UNDEFINED``;
* ``bigram:<k>``: hashed opcode bigrams (Knuth multiplicative hash), count / (n_instr-1);
* ``selbucket:<k>``: distinct dispatcher selectors per hash bucket;
* ``sel:<signature>``: 1 if the dispatcher declares that well-known function.

Bad input never crashes: empty code gives an all-zero vector; code over
the EIP-170 limit (24,576 bytes) is featurized like any other (``size_bytes`` shows it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edge.errors import BytecodeError
from edge.chain.records import EIP170_MAX_CODE_SIZE

__all__ = [
    "BACKEND",
    "EIP170_MAX_CODE_SIZE",
    "FEATURE_NAMES",
    "KNOWN_SELECTORS",
    "N_FEATURES",
    "featurize",
    "featurize_many",
    "parse_bytecode",
    "strip_metadata",
]


_OPCODES: Final[dict[int, str]] = {
    0x00: "STOP", 0x01: "ADD", 0x02: "MUL", 0x03: "SUB", 0x04: "DIV", 0x05: "SDIV",
    0x06: "MOD", 0x07: "SMOD", 0x08: "ADDMOD", 0x09: "MULMOD", 0x0A: "EXP",
    0x0B: "SIGNEXTEND",
    0x10: "LT", 0x11: "GT", 0x12: "SLT", 0x13: "SGT", 0x14: "EQ", 0x15: "ISZERO",
    0x16: "AND", 0x17: "OR", 0x18: "XOR", 0x19: "NOT", 0x1A: "BYTE", 0x1B: "SHL",
    0x1C: "SHR", 0x1D: "SAR",
    0x20: "KECCAK256",
    0x30: "ADDRESS", 0x31: "BALANCE", 0x32: "ORIGIN", 0x33: "CALLER", 0x34: "CALLVALUE",
    0x35: "CALLDATALOAD", 0x36: "CALLDATASIZE", 0x37: "CALLDATACOPY", 0x38: "CODESIZE",
    0x39: "CODECOPY", 0x3A: "GASPRICE", 0x3B: "EXTCODESIZE", 0x3C: "EXTCODECOPY",
    0x3D: "RETURNDATASIZE", 0x3E: "RETURNDATACOPY", 0x3F: "EXTCODEHASH",
    0x40: "BLOCKHASH", 0x41: "COINBASE", 0x42: "TIMESTAMP", 0x43: "NUMBER",
    0x44: "PREVRANDAO", 0x45: "GASLIMIT", 0x46: "CHAINID", 0x47: "SELFBALANCE",
    0x48: "BASEFEE", 0x49: "BLOBHASH", 0x4A: "BLOBBASEFEE",
    0x50: "POP", 0x51: "MLOAD", 0x52: "MSTORE", 0x53: "MSTORE8", 0x54: "SLOAD",
    0x55: "SSTORE", 0x56: "JUMP", 0x57: "JUMPI", 0x58: "PC", 0x59: "MSIZE", 0x5A: "GAS",
    0x5B: "JUMPDEST", 0x5C: "TLOAD", 0x5D: "TSTORE", 0x5E: "MCOPY", 0x5F: "PUSH0",
    **{0x60 + i: f"PUSH{i + 1}" for i in range(32)},
    **{0x80 + i: f"DUP{i + 1}" for i in range(16)},
    **{0x90 + i: f"SWAP{i + 1}" for i in range(16)},
    0xA0: "LOG0", 0xA1: "LOG1", 0xA2: "LOG2", 0xA3: "LOG3", 0xA4: "LOG4",
    0xF0: "CREATE", 0xF1: "CALL", 0xF2: "CALLCODE", 0xF3: "RETURN",
    0xF4: "DELEGATECALL", 0xF5: "CREATE2", 0xFA: "STATICCALL", 0xFD: "REVERT",
    0xFE: "INVALID", 0xFF: "SELFDESTRUCT",
}  # fmt: skip

_RAW_COUNT_OPS: Final[tuple[int, ...]] = (
    0xFF, 0xF4, 0xF2, 0x32, 0xF1, 0xFA, 0xF0, 0xF5, 0x55, 0x54, 0x33, 0x34, 0x42,
    0x43, 0x40, 0x41, 0x44, 0x3A, 0x31, 0x47, 0x3B, 0x73, 0xA3, 0xA4, 0x57, 0x5B,
)  # fmt: skip
"""Opcodes whose absolute count is a feature (ratios hide a single SELFDESTRUCT)."""

KNOWN_SELECTORS: Final[tuple[tuple[int, str], ...]] = (
    (0x18160DDD, "totalSupply()"),
    (0x70A08231, "balanceOf(address)"),
    (0xA9059CBB, "transfer(address,uint256)"),
    (0x23B872DD, "transferFrom(address,address,uint256)"),
    (0x095EA7B3, "approve(address,uint256)"),
    (0xDD62ED3E, "allowance(address,address)"),
    (0x39509351, "increaseAllowance(address,uint256)"),
    (0xA457C2D7, "decreaseAllowance(address,uint256)"),
    (0x8DA5CB5B, "owner()"),
    (0x715018A6, "renounceOwnership()"),
    (0xF2FDE38B, "transferOwnership(address)"),
    (0x40C10F19, "mint(address,uint256)"),
    (0xA0712D68, "mint(uint256)"),
    (0x42966C68, "burn(uint256)"),
    (0x79CC6790, "burnFrom(address,uint256)"),
    (0x8456CB59, "pause()"),
    (0x3F4BA83A, "unpause()"),
    (0x3CCFD60B, "withdraw()"),
    (0x2E1A7D4D, "withdraw(uint256)"),
    (0x41C0E1B5, "kill()"),
    (0x83197EF0, "destroy()"),
    (0x69FE0E2D, "setFee(uint256)"),
    (0x061C82D0, "setTaxFeePercent(uint256)"),
    (0xD543DBEB, "setMaxTxPercent(uint256)"),
    (0xEC28438A, "setMaxTxAmount(uint256)"),
    (0x437823EC, "excludeFromFee(address)"),
    (0xEA2F0B37, "includeInFee(address)"),
    (0xC49B9A80, "setSwapAndLiquifyEnabled(bool)"),
    (0x49BD5A5E, "uniswapV2Pair()"),
    (0x1694505E, "uniswapV2Router()"),
    (0xC9567BF9, "openTrading()"),
    (0xC3C8CD80, "manualswap()"),
    (0x6FC3EAEC, "manualsend()"),
    (0xB515566A, "setBots(address[])"),
    (0x273123B7, "delBot(address)"),
    (0x44337EA1, "addToBlacklist(address)"),
    (0xF9F92BE4, "blacklist(address)"),
    (0xFE575A87, "isBlacklisted(address)"),
    (0x5932EAD1, "setCooldownEnabled(bool)"),
    (0xDD467064, "lock(uint256)"),
    (0xA69DF4B5, "unlock()"),
    (0xAC9650D8, "multicall(bytes[])"),
    (0x3659CFE6, "upgradeTo(address)"),
    (0x4F1EF286, "upgradeToAndCall(address,bytes)"),
    (0xB61D27F6, "execute(address,uint256,bytes)"),
    (0xE8B5E51F, "invest()"),
    (0x03F9C793, "invest(address)"),
    (0xFDB5A03E, "reinvest()"),
    (0x12065FE0, "getBalance()"),
    (0xD0E30DB0, "deposit()"),
    (0x42842E0E, "safeTransferFrom(address,address,uint256)"),
    (0xA22CB465, "setApprovalForAll(address,bool)"),
    (0x01FFC9A7, "supportsInterface(bytes4)"),
    (0xD505ACCF, "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
)
"""Well-known function selectors (first 4 bytes of keccak-256 of the signature, as in
the Solidity ABI specification) reported as named 0/1 features."""

_BIGRAM_BITS: Final = 8
_SELECTOR_BITS: Final = 6
_BIGRAM_MULT: Final = 2654435761  # Knuth's multiplicative hash constant (2^32 / phi)
_SELECTOR_MULT: Final = 2246822519  # xxHash32 PRIME32_2
_N_SCALARS: Final = 6

_DEFINED_OPS: Final[tuple[int, ...]] = tuple(sorted(_OPCODES))
_UNDEFINED_SLOT: Final = len(_DEFINED_OPS)
_OP_SLOT: Final[bytes] = bytes(
    _DEFINED_OPS.index(op) if op in _OPCODES else _UNDEFINED_SLOT for op in range(256)
)
_DEFINED_TABLE: Final[bytes] = bytes(1 if op in _OPCODES else 0 for op in range(256))

_OFF_RAW: Final = _N_SCALARS
_OFF_RATIO: Final = _OFF_RAW + len(_RAW_COUNT_OPS)
_OFF_BIGRAM: Final = _OFF_RATIO + len(_DEFINED_OPS) + 1
_OFF_SELBUCKET: Final = _OFF_BIGRAM + (1 << _BIGRAM_BITS)
_OFF_KNOWN: Final = _OFF_SELBUCKET + (1 << _SELECTOR_BITS)
N_FEATURES: Final = _OFF_KNOWN + len(KNOWN_SELECTORS)
"""Length of every feature vector."""

FEATURE_NAMES: Final[tuple[str, ...]] = (
    ("size_bytes", "n_instr", "n_selectors", "n_push4_other", "push_truncated",
     "n_undefined")
    + tuple(f"count:{_OPCODES[op]}" for op in _RAW_COUNT_OPS)
    + tuple(f"ratio:{_OPCODES[op]}" for op in _DEFINED_OPS)
    + ("ratio:UNDEFINED",)
    + tuple(f"bigram:{k:03d}" for k in range(1 << _BIGRAM_BITS))
    + tuple(f"selbucket:{k:02d}" for k in range(1 << _SELECTOR_BITS))
    + tuple(f"sel:{sig}" for _, sig in KNOWN_SELECTORS)
)  # fmt: skip
"""Name of each feature, in vector order (``len == N_FEATURES``)."""

assert len(FEATURE_NAMES) == N_FEATURES

_KNOWN_INDEX: Final[dict[int, int]] = {s: i for i, (s, _) in enumerate(KNOWN_SELECTORS)}
_KNOWN_TABLE: Final[bytes] = b"".join(s.to_bytes(4, "big") for s, _ in KNOWN_SELECTORS)

_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def parse_bytecode(value: str | bytes | bytearray | memoryview) -> bytes:
    """Turn runtime bytecode given as hex text or raw bytes into ``bytes``.

    Args:
        value: ``"0x..."``/``"..."`` hex text (either case, surrounding whitespace
            ignored), or bytes-like raw code (returned as ``bytes`` unchanged).

    Returns:
        The code bytes (possibly empty: ``"0x"`` is valid, empty code).

    Raises:
        BytecodeError: text that is not hex, has an odd number of digits, or a value
            of another type.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if not isinstance(value, str):
        raise BytecodeError(f"bytecode must be hex text or bytes, not {type(value).__name__}")
    text = value.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) % 2 and all(c in _HEX_DIGITS for c in text):
        raise BytecodeError(f"bytecode hex has an odd number of digits ({len(text)})")
    try:
        code = bytes.fromhex(text)
    except ValueError:
        code = b""
    if 2 * len(code) != len(text):  # fromhex failed, or skipped whitespace inside
        bad = next((c for c in text if c not in _HEX_DIGITS), "?")
        raise BytecodeError(f"bytecode is not hex (found {bad!r})")
    return code


def _cbor_item_end(buf: bytes, pos: int, end: int, depth: int) -> int:
    """End offset of the CBOR data item at ``pos`` (RFC 8949), or -1 if not plausible.

    Only definite-length items of the kinds solc and vyper emit are accepted: unsigned
    and negative integers, byte and text strings, arrays, maps, and the simple values
    false/true/null/undefined.
    """
    if pos >= end or depth > 4:
        return -1
    ib = buf[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info <= 27:
        width = 1 << (info - 24)
        if pos + width > end:
            return -1
        arg = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
    else:
        return -1
    if major in (0, 1):
        return pos
    if major in (2, 3):
        return pos + arg if arg <= end - pos else -1
    if major in (4, 5):
        items = arg * (2 if major == 5 else 1)
        if items > end - pos:
            return -1
        for _ in range(items):
            pos = _cbor_item_end(buf, pos, end, depth + 1)
            if pos < 0:
                return -1
        return pos
    if major == 7 and 20 <= info <= 23:
        return pos
    return -1


def _metadata_len(code: bytes) -> int:
    """Length in bytes of the CBOR metadata trailer (map + 2 length bytes), or 0."""
    n = len(code)
    if n < 3:
        return 0
    length = (code[n - 2] << 8) | code[n - 1]
    if length == 0 or length + 2 > n:
        return 0
    start = n - 2 - length
    if code[start] >> 5 != 5:  # must be a CBOR map
        return 0
    if _cbor_item_end(code, start, n - 2, 0) != n - 2:
        return 0
    return length + 2


def strip_metadata(code: bytes) -> bytes:
    """Remove the Solidity CBOR metadata trailer from runtime code, if there is one.

    solc (>= 0.4.7) appends ``CBOR-map || uint16-big-endian(len(CBOR-map))`` to the
    runtime code (Solidity docs, "Encoding of the Metadata Hash in the Bytecode"; CBOR
    is RFC 8949). The trailer is cut only when the last two bytes give a length that
    fits and the bytes before them parse, exactly and completely, as a definite-length
    CBOR map; otherwise the code is returned unchanged.

    Args:
        code: runtime bytecode.

    Returns:
        The code without the trailer (a new ``bytes``, or ``code`` itself).
    """
    m = _metadata_len(code)
    return code[: len(code) - m] if m else code


def _bigram_bucket(prev: int, op: int) -> int:
    """Hash bucket of the opcode pair (prev, op); 32-bit unsigned arithmetic."""
    return (((prev << 8) | op) * _BIGRAM_MULT & 0xFFFFFFFF) >> (32 - _BIGRAM_BITS)


def _selector_bucket(sel: int) -> int:
    """Hash bucket of a 4-byte selector; 32-bit unsigned arithmetic."""
    return ((sel * _SELECTOR_MULT) & 0xFFFFFFFF) >> (32 - _SELECTOR_BITS)


def _featurize_py(code: bytes, out: npt.NDArray[np.float32]) -> None:
    """Pure-Python featurizer: writes the N_FEATURES values for ``code`` into ``out``.

    The reference implementation; ``_features.c`` must give the same bits.
    """
    code = code[: len(code) - _metadata_len(code)]
    n = len(code)
    counts = [0] * 256
    bigrams = [0] * (1 << _BIGRAM_BITS)
    selectors: set[int] = set()
    push4_other = 0
    truncated = 0
    n_instr = 0
    prev = -1
    i = 0
    while i < n:
        op = code[i]
        counts[op] += 1
        n_instr += 1
        if prev >= 0:
            bigrams[_bigram_bucket(prev, op)] += 1
        prev = op
        if 0x60 <= op <= 0x7F:
            width = op - 0x5F
            if i + 1 + width > n:
                truncated = 1
                break
            if op == 0x63:
                nxt = i + 5
                follow = code[nxt] if nxt < n else -1
                if follow in (0x14, 0x11, 0x10) or (
                    follow == 0x81 and nxt + 1 < n and code[nxt + 1] == 0x14
                ):
                    selectors.add(int.from_bytes(code[i + 1 : i + 5], "big"))
                else:
                    push4_other += 1
            i += 1 + width
        else:
            i += 1

    out[:] = 0.0
    undefined = sum(c for op, c in enumerate(counts) if not _DEFINED_TABLE[op])
    out[0] = n
    out[1] = n_instr
    out[2] = len(selectors)
    out[3] = push4_other
    out[4] = truncated
    out[5] = undefined
    for k, op in enumerate(_RAW_COUNT_OPS):
        out[_OFF_RAW + k] = counts[op]
    if n_instr:
        for op in range(256):
            if counts[op] and _DEFINED_TABLE[op]:
                out[_OFF_RATIO + _OP_SLOT[op]] = counts[op] / n_instr
        if undefined:
            out[_OFF_RATIO + _UNDEFINED_SLOT] = undefined / n_instr
    if n_instr > 1:
        pairs = n_instr - 1
        for k, c in enumerate(bigrams):
            if c:
                out[_OFF_BIGRAM + k] = c / pairs
    for sel in selectors:
        out[_OFF_SELBUCKET + _selector_bucket(sel)] += 1
        known = _KNOWN_INDEX.get(sel)
        if known is not None:
            out[_OFF_KNOWN + known] = 1


_c: Any = None
BACKEND: str = "python"
"""``"c"`` when the C extension is in use, ``"python"`` for the fallback."""

if os.environ.get("EDGE_FEATURES", "").lower() != "python":
    try:
        import importlib

        _c_mod = importlib.import_module("edge.scoring._features")
        _c_mod.configure(
            _OP_SLOT,
            _DEFINED_TABLE,
            bytes(_RAW_COUNT_OPS),
            _KNOWN_TABLE,
            _BIGRAM_BITS,
            _SELECTOR_BITS,
            _N_SCALARS,
            N_FEATURES,
        )
        _c = _c_mod
        BACKEND = "c"
    except ImportError:  # not built (no compiler): the fallback gives the same bits
        _c = None


def _as_bytes(code: object) -> bytes:
    """Accept bytes-like code only; a clear BytecodeError otherwise."""
    if isinstance(code, bytes):
        return code
    if isinstance(code, (bytearray, memoryview)):
        return bytes(code)
    raise BytecodeError(
        f"featurize expects raw code bytes, not {type(code).__name__}"
        " (use parse_bytecode for hex text)"
    )


def featurize(code: bytes) -> npt.NDArray[np.float32]:
    """Feature vector of one runtime bytecode.

    Args:
        code: raw runtime bytecode (metadata trailer included or not: it is stripped
            here). Any length, including empty and over EIP-170's 24,576 bytes.

    Returns:
        float32 array of shape ``(N_FEATURES,)``, laid out as :data:`FEATURE_NAMES`.

    Raises:
        BytecodeError: ``code`` is not bytes-like (hex text: use :func:`parse_bytecode`).
    """
    row: npt.NDArray[np.float32] = featurize_many((code,))[0]
    return row


def featurize_many(codes: Iterable[bytes]) -> npt.NDArray[np.float32]:
    """Feature matrix of many runtime bytecodes (one C call for the whole batch).

    Args:
        codes: raw runtime bytecodes (bytes-like).

    Returns:
        float32 array of shape ``(len(codes), N_FEATURES)``, C-contiguous.

    Raises:
        BytecodeError: an element is not bytes-like.
    """
    seq: Sequence[bytes] = codes if isinstance(codes, (list, tuple)) else list(codes)
    out = np.empty((len(seq), N_FEATURES), dtype=np.float32)
    if _c is not None:
        try:
            _c.featurize_into(seq, out)
        except TypeError as exc:
            raise BytecodeError(f"featurize expects raw code bytes: {exc}") from None
        return out
    for row, code in enumerate(seq):
        _featurize_py(_as_bytes(code), out[row])
    return out
