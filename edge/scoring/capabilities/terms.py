"""Capability analysis: symbolic terms (an int is a constant; a tuple is (tag, depth, *args)) and what can be read from them (storage slots, mapping bases, caller-keyed keys).

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

from typing import Any, Final

from .records import _MAX_DEPTH

Term = Any  # int | tuple[str, int, ...]; Any keeps the hot loop free of casts

UNK: Final = ("?", 1)
CALLER: Final = ("C", 1)
ORIGIN: Final = ("O", 1)
CALLVALUE: Final = ("V", 1)
TIMESTAMP: Final = ("T", 1)
NUMBER: Final = ("N", 1)
"""block.number, the other clock of 2017-2018 code (round ends, lock-ups in blocks)."""
SELECTOR: Final = ("SEL", 1)
DYN_CALLDATA: Final = ("D", 1)
_ENV_TERMS: Final[dict[int, Term]] = {
    0x33: CALLER, 0x32: ORIGIN, 0x34: CALLVALUE, 0x42: TIMESTAMP, 0x43: NUMBER,
}  # fmt: skip


def _d(x: Term) -> int:
    return 0 if type(x) is int else x[1]


def _mk(tag: str, a: Term, b: Term) -> Term:
    d = max(_d(a), _d(b)) + 1
    return UNK if d > _MAX_DEPTH else (tag, d, a, b)


def _mk1(tag: str, a: Term) -> Term:
    d = _d(a) + 1
    return UNK if d > _MAX_DEPTH else (tag, d, a)


def _is_low_mask(x: int) -> bool:
    return x >= 0xFF and (x & (x + 1)) == 0


def _is_calldata(x: Term, depth: int = 0) -> bool:
    """True when the term is derived from call data (an argument)."""
    if type(x) is int or depth > 6:
        return False
    t = x[0]
    if t == "A" or t == "D":
        return True
    if t == "S" or t == "H" or t == "H1":
        return False
    return any(_is_calldata(a, depth + 1) for a in x[2:])


def _is_time(x: Term) -> bool:
    """True for a clock term: TIMESTAMP or NUMBER (block time or block height)."""
    return bool(x[0] == "T" or x[0] == "N")


def _contains(x: Term, pred: Any, depth: int = 0) -> bool:
    if type(x) is int or depth > 8:
        return False
    if pred(x):
        return True
    return any(_contains(a, pred, depth + 1) for a in x[2:])


def _const_loads(x: Term, depth: int = 0) -> set[int]:
    """The constant storage slots that ``x`` loads (``SLOAD(c)`` anywhere inside it)."""
    if type(x) is int or depth > 8:
        return set()
    if x[0] == "S":
        return {x[2]} if type(x[2]) is int else set()
    out: set[int] = set()
    for a in x[2:]:
        out |= _const_loads(a, depth + 1)
    return out


def _storage_slot_of(x: Term, depth: int = 0) -> int | None:
    """Const slot s if the term is SLOAD(s) seen through shifts and masks, else None."""
    if type(x) is int or depth > 4:
        return None
    t = x[0]
    if t == "S":
        k = x[2]
        return k if type(k) is int else None
    if t == ">>" or t == "&":
        return _storage_slot_of(x[2], depth + 1)
    return None


def _mapping_base(key: Term, depth: int = 0) -> int | None:
    """Base slot of a (possibly nested) Solidity mapping entry key, else None."""
    if type(key) is int or depth > 4:
        return None
    t = key[0]
    if t == "H":
        s = key[3]
        if type(s) is int:
            return s
        return _mapping_base(s, depth + 1)
    if t == "+":
        a, b = key[2], key[3]
        if type(b) is int:
            return _mapping_base(a, depth + 1)
        if type(a) is int:
            return _mapping_base(b, depth + 1)
    return None


def _mapping_key(key: Term) -> Term:
    """Outermost key of a mapping entry term (the address for ``m[a]``)."""
    if type(key) is not int and key[0] == "+":
        key = key[2] if type(key[3]) is int else key[3]
    if type(key) is not int and key[0] == "H":
        return key[2]
    return UNK


def _role_base(key: Term) -> int | None:
    """Base slot of a role / list lookup on the caller: ``m[msg.sender]`` (m at a constant
    slot) or ``roles[ROLE][msg.sender]`` (ROLE a constant, OpenZeppelin AccessControl
    style); None otherwise (``approvals[owner][msg.sender]`` is an approval, not a role)."""
    if type(key) is not int and key[0] == "+" and type(key[3]) is int:
        key = key[2]
    if type(key) is int or key[0] != "H" or key[2] != CALLER:
        return None
    inner = key[3]
    if type(inner) is int:
        return inner
    if inner[0] == "+" and type(inner[3]) is int:
        inner = inner[2]
    if inner[0] == "H" and type(inner[2]) is int and type(inner[3]) is int:
        return inner[3]
    return None


def _is_caller_keyed(key: Term, depth: int = 0) -> bool:
    """True for a mapping entry keyed by CALLER at any nesting level (m[msg.sender],
    m[x][msg.sender])."""
    if type(key) is int or depth > 4:
        return False
    t = key[0]
    if t == "+":
        return _is_caller_keyed(key[2], depth + 1) or _is_caller_keyed(key[3], depth + 1)
    if t == "H":
        return key[2] == CALLER or _is_caller_keyed(key[3], depth + 1)
    return False


def _slot_text(key: Term) -> str | None:
    """``0x..`` for a constant slot, ``m:0x..`` for a mapping entry, None otherwise."""
    if type(key) is int:
        return hex(key)
    base = _mapping_base(key)
    if base is not None:
        return f"m:{hex(base)}"
    if key[0] == "H1" and type(key[2]) is int:
        return f"a:{hex(key[2])}"  # dynamic array data at keccak(slot)
    return None
