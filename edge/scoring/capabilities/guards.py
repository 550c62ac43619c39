"""Capability analysis: guard classification (what can make a transfer or a sell path revert) and the helpers that read stored values.

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .terms import Term, _contains, _is_calldata, _is_time, _mapping_base, _storage_slot_of


def _classify(
    cond: Term, pol: bool, out: list[tuple[Any, ...]], depth: int = 0, masked: bool = False
) -> None:
    """Kinds of checks in a guard; pol True = going on needs cond true; masked = the
    value was cut to one byte (``AND 0xff``: a Solidity bool read from storage)."""
    if type(cond) is int or depth > 8:
        return
    t = cond[0]
    if t == "Z":
        _classify(cond[2], not pol, out, depth + 1)
    elif t == ">>":
        inner = cond[2]
        if type(inner) is not int and inner[0] == "S" and type(inner[2]) is int:
            if masked:
                out.append(("bool_slot", inner[2], pol, cond[3]))
        else:
            _classify(inner, pol, out, depth + 1, masked)
    elif t == "&" and cond[3] == 0xFF:
        _classify(cond[2], pol, out, depth + 1, True)
    elif t in ("&", "|"):
        _classify(cond[2], pol, out, depth + 1)
        _classify(cond[3], pol, out, depth + 1)
    elif t == "=":
        a, b = cond[2], cond[3]
        if b == 0:
            _classify(a, not pol, out, depth + 1)
        elif a == 0:
            _classify(b, not pol, out, depth + 1)
        elif a == 1 or b == 1:  # flag == true (0.4-era code)
            _classify(b if a == 1 else a, pol, out, depth + 1)
        else:
            for x, y in ((a, b), (b, a)):
                s = _storage_slot_of(x)
                if s is not None:
                    out.append(("eq_slot", s))
                    if type(y) is int:
                        out.append(("state", s))  # state == CONSTANT (an enum stage)
    elif t == "<":
        has_time = _contains(cond, lambda x: x[0] == "T")
        blocks = not has_time and _contains(cond, _is_time)  # block.number only
        for x in (cond[2], cond[3]):
            s = _storage_slot_of(x)
            if s is not None:
                out.append(("limit", s))
            for leaf in _sloads(x):
                base = _mapping_base(leaf[2])
                if base is not None and has_time:
                    out.append(("time_map", base))
        for x, y in ((cond[2], cond[3]), (cond[3], cond[2])):
            # amount <= supply * maxTxPercent / 10000: a limit scaled by a stored factor
            if _is_calldata(y) and not _is_calldata(x):
                out.extend(("limit", s) for s in _scaled_slots(x))
        if has_time:
            out.append(("time",))
        elif blocks:
            # block.number as the clock: read by the sell-path rules only (in a transfer it
            # is often MiniMe's ``parentSnapShotBlock < block.number``, which never refuses
            # after the creation block; models/README.md, "Since cap-4")
            out.append(("blocks",))
    elif (t == "R" or t == "RD") and len(cond) > 2:
        out.append(("ext", cond[2]))  # the answer of the contract kept in slot cond[2]
    elif t == "S":
        key = cond[2]
        if type(key) is int:
            if masked:
                out.append(("bool_slot", key, pol, 0))
        else:
            base = _mapping_base(key)
            if base is not None:
                out.append(("bool_map", base, pol))


def _scaled_slots(x: Term, depth: int = 0) -> Iterable[int]:
    """Constant slots s that scale ``x`` (``a * SLOAD(s)`` or ``a / SLOAD(s)`` inside it)."""
    if type(x) is int or depth > 6:
        return
    if x[0] in ("*", "/"):
        for a in x[2:]:
            s = _storage_slot_of(a)
            if s is not None:
                yield s
    for a in x[2:]:
        yield from _scaled_slots(a, depth + 1)


def _writes_bits(value: Term, slot: int, shift: int) -> bool:
    """True if storing ``value`` to ``slot`` can change the byte at bit ``shift`` (a packed
    boolean): a constant, an unmasked value for a flag at bit 0, or a read-modify-write
    ``x | (SLOAD(slot) & mask)`` / ``SLOAD(slot) & mask`` whose mask clears that byte."""
    if type(shift) is not int:
        return False
    if type(value) is int:
        return True
    t = value[0]
    if t == "|":
        for x, y in ((value[2], value[3]), (value[3], value[2])):
            if type(y) is not int and y[0] == "&" and _storage_slot_of(y[2]) == slot and type(y[3]) is int:
                return (y[3] >> shift) & 0xFF == 0
    if t == "&" and _storage_slot_of(value[2]) == slot and type(value[3]) is int:
        return (value[3] >> shift) & 0xFF == 0
    return shift == 0


def _const_write(value: Term, slot: int) -> bool:
    """True if ``value`` is a constant, or a constant merged into ``slot``'s other bytes."""
    if type(value) is int:
        return True
    if value[0] == "|":
        for x, y in ((value[2], value[3]), (value[3], value[2])):
            if type(x) is int and type(y) is not int and y[0] == "&" and _storage_slot_of(y[2]) == slot:
                return True
    return False


def _sloads(x: Term, depth: int = 0) -> Iterable[Term]:
    if type(x) is int or depth > 6:
        return
    if x[0] == "S":
        yield x
        return
    for a in x[2:]:
        yield from _sloads(a, depth + 1)
