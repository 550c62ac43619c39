"""Fast streaming reader of bytecode corpora for ``edge bench`` and ``edge score``.

The corpus format is that of ``shared/data/contracts``: gzip-compressed (or plain) JSON
Lines, one object per line with at least a ``bytecode`` field (``0x`` hex) and usually a
``bytecode_keccak``. Rows are streamed one at a time (a 10,000-row corpus never sits in
memory).

The hot path does not run a full JSON parse per row: it finds the ``"bytecode":`` and
``"bytecode_keccak":`` string values directly in the line (inside a JSON string every
``"`` is escaped, so the key followed by ``":`` can only be a real key) and decodes the
hex with :func:`binascii.unhexlify`. Any line where that shortcut does not apply cleanly
(escapes, odd spacing, non-hex, missing key) goes through :func:`json.loads` and
:func:`edge.scoring.features.parse_bytecode`, so the result is always that of a real
JSON parser.

Decompression uses ``isal.igzip`` (ISA-L, about 2.7x faster inflate than zlib here) when
the ``isal`` package is installed, else the standard :mod:`gzip`; both read the same
bytes.
"""

from __future__ import annotations

import binascii
import gzip
import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge.errors import BytecodeError, EdgeError
from edge.scoring.features import parse_bytecode

__all__ = ["CodeRow", "GZIP_BACKEND", "count_rows", "iter_codes"]

_KEY_CODE = b'"bytecode":'
_KEY_HASH = b'"bytecode_keccak":'


@dataclass(frozen=True, slots=True)
class CodeRow:
    """One corpus row.

    Attributes:
        index: 0-based index among the non-blank lines.
        line: 1-based line number in the file.
        code: runtime bytecode, or None when the row is bad (see ``error``).
        keccak: the row's ``bytecode_keccak`` (32 bytes) if it has a valid one, else None.
        error: why the row is unusable, or None.
    """

    index: int
    line: int
    code: bytes | None
    keccak: bytes | None
    error: str | None = None


_gzip_impl: types.ModuleType
try:  # optional accelerator (aarch64 and x86-64 wheels); same output as gzip
    import isal.igzip as _isal_igzip

    _gzip_impl = _isal_igzip
except ImportError:  # pragma: no cover - depends on the environment
    _gzip_impl = gzip

GZIP_BACKEND: str = "isal" if _gzip_impl is not gzip else "zlib"
"""Which inflate implementation reads ``.gz`` corpora: ``"isal"`` or ``"zlib"``."""


def _open(path: Path) -> IO[bytes]:
    try:
        if path.suffix == ".gz":
            fh: IO[bytes] = _gzip_impl.open(path, "rb")  # same API for gzip and isal.igzip
            return fh
        return path.open("rb")
    except OSError as e:
        raise EdgeError(f"cannot read corpus {path}: {e.strerror or e}") from e


def _string_value(line: bytes, key: bytes) -> bytes | None:
    """The raw bytes of the JSON string value right after ``key``, if simple."""
    i = line.find(key)
    if i < 0:
        return None
    j = i + len(key)
    if line[j : j + 1] == b" ":
        j += 1
    if line[j : j + 1] != b'"':
        return None
    k = line.find(b'"', j + 1)
    if k < 0:
        return None
    value = line[j + 1 : k]
    if b"\\" in value:
        return None
    return value


def _unhex(value: bytes) -> bytes | None:
    if value[:2] in (b"0x", b"0X"):
        value = value[2:]
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        return None


def _slow(line: bytes, index: int, lineno: int) -> CodeRow:
    try:
        obj = json.loads(line)
    except ValueError as e:
        return CodeRow(index, lineno, None, None, f"line {lineno}: not JSON ({e})")
    if not isinstance(obj, dict) or not isinstance(obj.get("bytecode"), str):
        return CodeRow(index, lineno, None, None, f"line {lineno}: no string field 'bytecode'")
    keccak = _keccak_field(obj.get("bytecode_keccak"))
    try:
        code = parse_bytecode(obj["bytecode"])
    except BytecodeError as e:
        return CodeRow(index, lineno, None, keccak, f"line {lineno}: {e}")
    return CodeRow(index, lineno, code, keccak)


def _keccak_field(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    raw = _unhex(value.encode("ascii", "replace"))
    return raw if raw is not None and len(raw) == 32 else None


def _parse(line: bytes, index: int, lineno: int) -> CodeRow:
    hexcode = _string_value(line, _KEY_CODE)
    if hexcode is not None and line.count(_KEY_CODE) == 1:
        code = _unhex(hexcode)
        if code is not None:
            hv = _string_value(line, _KEY_HASH)
            keccak = _unhex(hv) if hv is not None else None
            if keccak is not None and len(keccak) != 32:
                keccak = None
            return CodeRow(index, lineno, code, keccak)
    return _slow(line, index, lineno)


def iter_codes(
    path: Path | str,
    *,
    limit: int | None = None,
    shard: int = 0,
    shards: int = 1,
    block: int = 256,
) -> Iterator[CodeRow]:
    """Stream the rows of a corpus (optionally one shard of it).

    Args:
        path: ``.jsonl.gz`` or ``.jsonl`` file.
        limit: only the first ``limit`` rows of the file (all shards together).
        shard, shards: take the rows whose ``(index // block) % shards == shard``
            (round-robin blocks of ``block`` rows, for parallel workers).
        block: rows per round-robin block (>= 1).

    Yields:
        :class:`CodeRow` per non-blank line of the shard; bad rows carry ``error``.

    Raises:
        EdgeError: the file cannot be opened or read (truncated gzip, I/O error).
    """
    p = Path(path)
    if shards < 1 or not 0 <= shard < shards or block < 1:
        raise EdgeError(f"bad corpus shard {shard}/{shards} (block {block})")
    fh = _open(p)
    index = 0
    try:
        with fh:
            for lineno, line in enumerate(fh, 1):
                if limit is not None and index >= limit:
                    return
                if not line.strip():
                    continue
                if shards == 1 or (index // block) % shards == shard:
                    yield _parse(line, index, lineno)
                index += 1
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise EdgeError(f"corpus {p}: read failed after {index} rows ({e})") from e


def count_rows(path: Path | str, *, limit: int | None = None) -> int:
    """Number of non-blank lines (capped at ``limit``); reads the file once.

    Raises:
        EdgeError: the file cannot be opened or read.
    """
    p = Path(path)
    n = 0
    try:
        with _open(p) as fh:
            for line in fh:
                if line.strip():
                    n += 1
                    if limit is not None and n >= limit:
                        break
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise EdgeError(f"corpus {p}: read failed after {n} rows ({e})") from e
    return n
