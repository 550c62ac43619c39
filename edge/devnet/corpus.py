"""Sources of real contract runtime bytecode, streamed (never all in memory).

- :func:`iter_corpus`: a gzip JSON Lines corpus in the format of
  ``shared/data/contracts`` (one object per line with at least ``bytecode``; the other
  fields, ``bytecode_keccak``, ``label``, ``category`` ..., are passed through).
- :func:`iter_registry_artifacts`: compiled contracts shipped in npm packages the
  project depends on (OpenZeppelin, Uniswap v2/v3, Safe): their ``deployedBytecode``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BytecodeError, EdgeError

__all__ = ["CorpusRow", "iter_corpus", "iter_registry_artifacts", "hex_to_code", "REGISTRY_PACKAGES"]

REGISTRY_PACKAGES: tuple[str, ...] = (
    "@openzeppelin/contracts/build/contracts",
    "@uniswap/v2-core/build",
    "@uniswap/v3-core/artifacts",
    "@safe-global/safe-contracts/build/artifacts",
)
"""Folders (under node_modules) whose JSON artifacts carry deployed bytecode."""


@dataclass(frozen=True, slots=True)
class CorpusRow:
    """One runtime bytecode from a corpus: ``line`` (1-based), hex ``bytecode`` as read
    (``0x``-prefixed) and the row's other ``fields``."""

    line: int
    bytecode: str
    fields: dict[str, Any]


def iter_corpus(path: Path | str, *, limit: int | None = None) -> Iterator[CorpusRow]:
    """Stream rows of a ``.jsonl.gz`` (or plain ``.jsonl``) corpus.

    Args:
        path: the corpus file. limit: stop after this many rows.

    Raises:
        EdgeError: the file cannot be read, or a line is not a JSON object with a string
            ``bytecode`` (the message names file and line).
    """
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        fh = opener(p, "rt", encoding="utf-8")
    except OSError as e:
        raise EdgeError(f"cannot read corpus {p}: {e.strerror or e}") from e
    with fh:
        try:
            for i, line in enumerate(fh, 1):
                if limit is not None and i > limit:
                    return
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise EdgeError(f"corpus {p} line {i}: not JSON ({e})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("bytecode"), str):
                    raise EdgeError(f"corpus {p} line {i}: no string field 'bytecode'")
                code = obj.pop("bytecode")
                yield CorpusRow(i, code, obj)
        except (OSError, EOFError) as e:
            raise EdgeError(f"corpus {p}: read failed ({e})") from e


def iter_registry_artifacts(node_modules: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, runtime bytecode)`` of every deployable artifact in
    :data:`REGISTRY_PACKAGES`, sorted by path (deterministic). Skips interfaces and
    abstract contracts (empty code) and unlinked libraries (``__$...$__`` placeholders).
    """
    for pkg in REGISTRY_PACKAGES:
        root = node_modules / pkg
        if not root.is_dir():
            continue
        for f in sorted(root.rglob("*.json")):
            if f.name.endswith(".dbg.json"):
                continue
            try:
                art = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            code = _deployed(art)
            if not code or "__" in code:
                continue
            try:
                raw = bytes.fromhex(code[2:] if code.startswith("0x") else code)
            except ValueError:
                continue
            if len(raw) >= 32:
                yield f"{pkg.split('/')[1]}:{f.stem}", raw


def _deployed(art: Any) -> str | None:
    if not isinstance(art, dict):
        return None
    d = art.get("deployedBytecode")
    if isinstance(d, dict):
        d = d.get("object")
    if d is None:
        evm = art.get("evm")
        if isinstance(evm, dict):
            dd = evm.get("deployedBytecode")
            d = dd.get("object") if isinstance(dd, dict) else None
    return d if isinstance(d, str) else None


def hex_to_code(hexstr: str, where: str) -> bytes:
    """Decode ``0x``-hex runtime bytecode; BytecodeError naming ``where`` if invalid."""
    s = hexstr[2:] if hexstr.startswith(("0x", "0X")) else hexstr
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise BytecodeError(f"{where}: bytecode is not valid hex") from None
