"""Capability analysis: the opcode table and the decoded runtime code (jump destinations, push data).

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

from typing import Final


def _arity() -> tuple[bytes, bytes]:
    pops = bytearray(256)
    push = bytearray(256)
    spec: dict[int, tuple[int, int]] = {
        0x00: (0, 0), 0x01: (2, 1), 0x02: (2, 1), 0x03: (2, 1), 0x04: (2, 1), 0x05: (2, 1),
        0x06: (2, 1), 0x07: (2, 1), 0x08: (3, 1), 0x09: (3, 1), 0x0A: (2, 1), 0x0B: (2, 1),
        0x10: (2, 1), 0x11: (2, 1), 0x12: (2, 1), 0x13: (2, 1), 0x14: (2, 1), 0x15: (1, 1),
        0x16: (2, 1), 0x17: (2, 1), 0x18: (2, 1), 0x19: (1, 1), 0x1A: (2, 1), 0x1B: (2, 1),
        0x1C: (2, 1), 0x1D: (2, 1), 0x20: (2, 1),
        0x30: (0, 1), 0x31: (1, 1), 0x32: (0, 1), 0x33: (0, 1), 0x34: (0, 1), 0x35: (1, 1),
        0x36: (0, 1), 0x37: (3, 0), 0x38: (0, 1), 0x39: (3, 0), 0x3A: (0, 1), 0x3B: (1, 1),
        0x3C: (4, 0), 0x3D: (0, 1), 0x3E: (3, 0), 0x3F: (1, 1),
        0x40: (1, 1), 0x41: (0, 1), 0x42: (0, 1), 0x43: (0, 1), 0x44: (0, 1), 0x45: (0, 1),
        0x46: (0, 1), 0x47: (0, 1), 0x48: (0, 1), 0x49: (1, 1), 0x4A: (0, 1),
        0x50: (1, 0), 0x51: (1, 1), 0x52: (2, 0), 0x53: (2, 0), 0x54: (1, 1), 0x55: (2, 0),
        0x56: (1, 0), 0x57: (2, 0), 0x58: (0, 1), 0x59: (0, 1), 0x5A: (0, 1), 0x5B: (0, 0),
        0x5C: (1, 1), 0x5D: (2, 0), 0x5E: (3, 0), 0x5F: (0, 1),
        0xA0: (2, 0), 0xA1: (3, 0), 0xA2: (4, 0), 0xA3: (5, 0), 0xA4: (6, 0),
        0xF0: (3, 1), 0xF1: (7, 1), 0xF2: (7, 1), 0xF3: (2, 0), 0xF4: (6, 1), 0xF5: (4, 1),
        0xFA: (6, 1), 0xFD: (2, 0), 0xFE: (0, 0), 0xFF: (1, 0),
    }  # fmt: skip
    for op, (a, b) in spec.items():
        pops[op], push[op] = a, b
    return bytes(pops), bytes(push)


_POPS, _PUSHES = _arity()
_DEFINED: Final = frozenset(
    set(range(0x60, 0xA0))
    | {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B}
    | set(range(0x10, 0x1E)) | {0x20} | set(range(0x30, 0x4B)) | set(range(0x50, 0x60))
    | set(range(0xA0, 0xA5)) | {0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xFA, 0xFD, 0xFE, 0xFF}
)  # fmt: skip
_TERMINATORS: Final = frozenset({0x00, 0x56, 0x57, 0xF3, 0xFD, 0xFE, 0xFF})


class _Timeout(Exception):
    pass


class _Code:
    """Disassembled code: basic blocks as lists of (pc, op, immediate)."""

    __slots__ = ("blocks", "ends", "jumpdests", "n")

    def __init__(self, code: bytes) -> None:
        self.n = len(code)
        self.jumpdests: set[int] = set()
        self.blocks: dict[int, list[tuple[int, int, int]]] = {}
        self.ends: dict[int, int] = {}
        cur: list[tuple[int, int, int]] = []
        start = 0
        i = 0
        n = self.n
        while i < n:
            op = code[i]
            if op == 0x5B:
                self.jumpdests.add(i)
                if cur:
                    self.blocks[start] = cur
                    self.ends[start] = i
                cur = []
                start = i
            if 0x60 <= op <= 0x7F:
                w = op - 0x5F
                imm = int.from_bytes(code[i + 1 : i + 1 + w], "big")
                if i + 1 + w > n:  # truncated push: pad with zeros, as the EVM does
                    imm <<= 8 * (i + 1 + w - n)
                cur.append((i, op, imm))
                i += 1 + w
            else:
                cur.append((i, op, 0))
                i += 1
            if op in _TERMINATORS or op not in _DEFINED:
                self.blocks[start] = cur
                self.ends[start] = i
                cur = []
                start = i
        if cur:
            self.blocks[start] = cur
            self.ends[start] = i
