"""What a contract's runtime bytecode lets someone do: a capability report per code.

Token-security scanners (GoPlus token security, Token Sniffer, De.Fi) describe a token by
its *capabilities*: can the owner mint, change balances, pause or block transfers, keep a
black- or whitelist, change fees or limits, take back ownership, upgrade the code,
self-destruct, call out from ``transfer``. This module derives those flags from the
runtime bytecode alone, each with its evidence (selectors with their text signature when
the bundled table knows it, storage slots, opcodes) and a confidence, and uses the GoPlus
field names where one exists.

Why our own analyzer, and why evmole is only an oracle
------------------------------------------------------
evmole 0.9.4 (Rust, on PyPI) gives selectors, argument types, state mutability and a
storage layout, but the device cannot install it: the registry reachable here serves
x86_64 wheels only, its sdist needs Rust crates that cannot be fetched, and the newest
pure-Python release (0.3.8) has selectors and arguments only. It also does not say what
the capability flags need (which functions are gated by ``CALLER == SLOAD(slot)``, which
guards can make ``transfer`` revert, which mapping a privileged function writes). So the
device ships this module: pure Python with no dependency beyond the standard library
(eth-hash only to name selectors), identical on x86 and arm64; it is off the hot path
(seconds per code are acceptable, the fast score stays the C featurizer), so no C
extension was needed. On x86 the tests compare its selectors, state mutability and
storage reads/writes against evmole 0.9.4 (``pip install -e '.[test]'``).

Method
------
One abstract interpretation of the EVM (Yellow Paper semantics up to Cancun) over the
basic blocks. Stack values are concrete ints where they are constants (so jump targets
and internal-call return addresses are exact) and small symbolic terms otherwise
(``CALLER``, calldata word at offset k, ``SLOAD(key)``, ``KECCAK256`` of the scratch
words, i.e. Solidity mapping slots ``keccak(key . slot)``, arithmetic and comparisons).
The dispatcher is run from pc 0 with the selector symbolic; every ``JUMPI`` on
``selector == c`` starts function ``c``. Each path carries the facts its branch
conditions imply about the caller: ``CALLER == SLOAD(s)`` (owner-only), a mapping
lookup on ``CALLER`` (role or whitelist), ``CALLER == constant`` (hard-coded owner),
``CALLVALUE == 0`` (non-payable). Effects (``SSTORE`` key and value terms,
``CALL``/``DELEGATECALL`` targets, ``SELFDESTRUCT``) are recorded with those facts. In
``transfer``/``transferFrom`` every branch one side of which always reverts is a guard;
guards are classified (boolean storage flag, boolean mapping entry, limit compared with a
stored value, time check). The flags are rules over these records and the token's
layout (the mappings ``balanceOf`` reads, the slots ``totalSupply``/``owner`` read). A
contract with no ``transfer`` has no token to sell: there the withdraw / refund /
sell-for-ether functions (paying ether to the caller, or debiting the caller's entry of a
ledger mapping and calling out) stand in for transfer (in a token, a buy-back paying ether for
the caller's balance is one next to transfer); a sell path that loads a slot some
privileged function writes is explored a second time, probing only the branches on such
slots.

States are merged on (block, the jump-target constants on the stack, caller facts), so
each internal function is explored once per call site; a per-function state budget and a
per-code time budget bound the work. A code that runs out of time gets
``status="timeout"`` and no flags; the timeout is itself the recorded result.

Flags (GoPlus token-security field names, except ``owner_can_withdraw``, which GoPlus
has no field for and which matches CRPWarner's "leaking token: withdraw" pattern): see
:data:`FLAG_NAMES`; ``models/README.md`` has the per-flag precision / recall table.

JSON form (:meth:`CapabilityReport.to_json`)::

    {"code_hash": "0x...", "status": "ok", "analyzer": "cap-3", "elapsed_ms": 12.3,
     "capabilities": ["is_mintable"],
     "evidence": [{"name": "is_mintable", "confidence": 0.9,
                   "selectors": ["0x40c10f19"], "signatures": ["mint(address,uint256)"],
                   "slots": ["0x2", "m:0x0"], "opcodes": ["SSTORE"],
                   "reason": "owner-only function 0x40c10f19 mint(address,uint256) ..."}]}

Limits: Solidity-style storage; Solidity and Vyper dispatchers (hand-written code is
analysed as far as the same patterns reach); a proxy's implementation is not seen; flags
say what the code *allows*, not that anyone did it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from edge.errors import BytecodeError
from edge.scoring.features import strip_metadata
from edge.scoring.selector_names import signature_of

__all__ = [
    "ANALYZER_VERSION",
    "FLAG_NAMES",
    "CapabilityReport",
    "Flag",
    "FunctionInfo",
    "analyze",
]

ANALYZER_VERSION: Final = "cap-3"
"""Changes whenever a rule or the record shape changes (stored with every report; the
analysis worker re-analyses every code whose stored row names another version, and the
row is replaced: no migration). cap-3: in a contract with no ``transfer`` /
``transferFrom`` (sale, game, vault, deposit ledger) the functions through which a holder
takes value out are *sell paths* (:meth:`_Rules.sell_paths`: pay ether to the caller, or
debit the caller's ledger entry and call out; in a token, a buy-back paying ether for the
caller's balance), whose guards are read (:meth:`_Analyzer.guards_of`); a switch, a stage (``state == CONSTANT``), a limit
or a time bound on one of them that a privileged caller sets is ``transfer_pausable`` /
``anti_whale_modifiable`` / ``trading_cooldown``, and a privileged credit to an entry of
a ledger that a sell path pays out is ``is_mintable``; a lookup of the caller's own
ledger entry (``require(deposits[msg.sender] > 0)``) is no privilege for these rules nor
for ``owner_can_withdraw``; a privileged SELFDESTRUCT (it sends the whole balance to the
beneficiary) is ``owner_can_withdraw``; a payable fallback that moves balances is a
token-moving function like ``buy()`` (its fee / price rate counts). cap-2: keccak mapping keys hashed in free memory
(``mload(0x40)``) are resolved; a privileged *set* of its own / a stored address's
balance, or of the total supply together with a balance, is a mint; ether paid out at a
rate a privileged caller sets from the call data is ``owner_can_withdraw``; a transfer
that reverts on the answer of a contract whose address a privileged caller sets is
``transfer_pausable``; view calls (STATICCALL) in transfer count as ``external_call``;
a limit scaled by a stored factor (``amount <= supply * maxPct / 10000``) is a limit; a
privileged write of a constant (``removeLimits``, a fee switched to 100 %) is a change
of a limit or fee rate, and only a factor that scales an amount of the call (call data
or ``msg.value``) is a fee rate; transfer / transferFrom get a larger per-block visit
budget (:data:`_TRANSFER_BLOCK_VISITS`)."""

FLAG_NAMES: Final[tuple[str, ...]] = (
    "is_mintable",
    "owner_change_balance",
    "transfer_pausable",
    "is_blacklisted",
    "is_whitelisted",
    "slippage_modifiable",
    "anti_whale_modifiable",
    "trading_cooldown",
    "can_take_back_ownership",
    "hidden_owner",
    "is_proxy",
    "selfdestruct",
    "external_call",
    "owner_can_withdraw",
)
"""Every flag this analyzer can raise (GoPlus token-security field names)."""

EIP1967_IMPLEMENTATION: Final = 0x360894A13BA1A3210667C828492DB98DCA3E2076CC3735A920A3CA505D382BBC
EIP1967_BEACON: Final = 0xA3F0AD74E5423AEBFD80D3EF4346578335A9A72AEAE9FF0C4D6BDE40A7E9A1D5
EIP1967_ADMIN: Final = 0xB53127684A568B3173AE13B9F8A6016E243E63B6E8EE1178D6A717850B5D6103
EIP1822_PROXIABLE: Final = 0xC5F16F0FCC639FA48A6947836D9850F504798523BF8C9A3A87D5876CF622BCF7
OZ_LEGACY_IMPLEMENTATION: Final = 0x7050C9E0F4CA769C69BD3A8EF740BC37934F8E2C036E5A723FD8EE048ED3F8C3
_PROXY_SLOTS: Final[dict[int, str]] = {
    EIP1967_IMPLEMENTATION: "EIP-1967 implementation slot",
    EIP1967_BEACON: "EIP-1967 beacon slot",
    EIP1967_ADMIN: "EIP-1967 admin slot",
    EIP1822_PROXIABLE: "EIP-1822 PROXIABLE slot",
    OZ_LEGACY_IMPLEMENTATION: "OpenZeppelin zos implementation slot",
}

_SEL_TRANSFER: Final = 0xA9059CBB
_SEL_TRANSFER_FROM: Final = 0x23B872DD
_SEL_APPROVE: Final = 0x095EA7B3
_SEL_BALANCE_OF: Final = 0x70A08231
_SEL_TOTAL_SUPPLY: Final = 0x18160DDD
_SEL_OWNER: Final = 0x8DA5CB5B
_SEL_GET_OWNER: Final = 0x893D20E8
_TRANSFERS: Final = frozenset({_SEL_TRANSFER, _SEL_TRANSFER_FROM})

_M256: Final = (1 << 256) - 1
_MAX_DEPTH: Final = 14
_STATE_BUDGET: Final = 6000
"""Most states explored per function (a state = one block entered with one context)."""
_GUARD_STATE_BUDGET: Final = 1500
"""The same for the second exploration of a sell path (:meth:`_Analyzer.guards_of`),
which looks only for its refusing branches on a few slots."""
_BLOCK_VISITS: Final = 24
"""Most times one block is entered per function."""
_TRANSFER_BLOCK_VISITS: Final = 96
"""The same for transfer / transferFrom, whose fee, limit and swap paths call the same
helpers from many sites (their guards are what the restriction flags read)."""
_PROBE_STEPS: Final = 600
"""Most instructions a 'does this branch always revert' probe runs."""
_MEM_TRACKED: Final = 0x400
"""Memory words tracked at constant offsets below this (scratch space, the free-memory
pointer and the first words it hands out, where mapping keys are hashed)."""


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    """One capability of a code.

    Attributes:
        name: GoPlus-style flag name (one of :data:`FLAG_NAMES`).
        confidence: 0..1, how sure the rule is that the capability is real (not units
            of probability calibrated on data; higher when the privileged gate is seen).
        selectors: the functions that carry it (4-byte selectors; -1 = fallback).
        slots: storage slots involved (hex; a mapping is given by its base slot).
        opcodes: opcodes that are the evidence (``SELFDESTRUCT``, ``DELEGATECALL``...).
        reason: one sentence a person can act on.
    """

    name: str
    confidence: float
    selectors: tuple[int, ...]
    slots: tuple[str, ...]
    opcodes: tuple[str, ...]
    reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: selectors as ``"0x%08x"`` hex with their known signatures."""
        return {
            "name": self.name,
            "confidence": self.confidence,
            "selectors": [_sel_hex(s) for s in self.selectors],
            "signatures": [signature_of(s) if s >= 0 else "fallback" for s in self.selectors],
            "slots": list(self.slots),
            "opcodes": list(self.opcodes),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """What one dispatcher entry does.

    Attributes:
        selector: 4-byte selector, or -1 for the fallback / receive path.
        blocks: start offsets of the basic blocks reachable in it (sorted).
        state_mutability: ``payable``, ``nonpayable``, ``view`` or ``pure`` (inferred
            the way the ABI defines them, from what the code does).
        gates: caller facts that hold on every path to its state changes: ``owner:<slot>``,
            ``role:<slot>``, ``hardcoded:<address>`` (empty = anyone may call it).
        reads: storage slots it loads (hex; ``m:<slot>`` = an entry of the mapping at slot).
        writes: storage slots it stores to (same notation).
        complete: False when the state budget cut the exploration short.
    """

    selector: int
    blocks: tuple[int, ...]
    state_mutability: str
    gates: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    complete: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (selector as hex, block offsets as a count)."""
        return {
            "selector": _sel_hex(self.selector),
            "signature": signature_of(self.selector) if self.selector >= 0 else "fallback",
            "n_blocks": len(self.blocks),
            "state_mutability": self.state_mutability,
            "gates": list(self.gates),
            "reads": list(self.reads),
            "writes": list(self.writes),
            "complete": self.complete,
        }


@dataclass(frozen=True, slots=True)
class CapabilityReport:
    """The capability report of one runtime code.

    Attributes:
        code_hash: ``0x`` + keccak-256 hex of the runtime code (the EXTCODEHASH value) if
            the caller gave it, else ``"sha256:"`` + sha256 hex of the code.
        status: ``ok``, ``timeout`` (the time budget ran out: no flags) or ``empty``.
        flags: the capabilities found, in :data:`FLAG_NAMES` order.
        functions: one record per dispatcher entry (selector order; fallback last).
        elapsed_s: analysis wall time, seconds.
        analyzer: :data:`ANALYZER_VERSION`.
    """

    code_hash: str
    status: str
    flags: tuple[Flag, ...]
    functions: tuple[FunctionInfo, ...]
    elapsed_s: float
    analyzer: str = ANALYZER_VERSION

    @property
    def flag_names(self) -> tuple[str, ...]:
        """Names of the raised flags, in :data:`FLAG_NAMES` order."""
        return tuple(f.name for f in self.flags)

    @property
    def selectors(self) -> tuple[int, ...]:
        """The dispatcher's selectors (sorted, fallback excluded)."""
        return tuple(f.selector for f in self.functions if f.selector >= 0)

    def flag(self, name: str) -> Flag | None:
        """The flag called ``name``, or None."""
        return next((f for f in self.flags if f.name == name), None)

    def reasons(self) -> tuple[str, ...]:
        """One readable sentence per flag."""
        return tuple(f.reason for f in self.flags)

    def to_json(self, *, functions: bool = False) -> dict[str, Any]:
        """JSON-ready dict: ``code_hash, status, analyzer, elapsed_ms, capabilities``
        (flag names), ``evidence`` (one dict per flag) and, if asked, ``functions``."""
        out: dict[str, Any] = {
            "code_hash": self.code_hash,
            "status": self.status,
            "analyzer": self.analyzer,
            "elapsed_ms": round(self.elapsed_s * 1000.0, 3),
            "capabilities": list(self.flag_names),
            "evidence": [f.to_json() for f in self.flags],
        }
        if functions:
            out["functions"] = [f.to_json() for f in self.functions]
        return out


def _sel_hex(sel: int) -> str:
    return "fallback" if sel < 0 else f"0x{sel:08x}"


# ---------------------------------------------------------------------------------------
# Symbolic terms: an int is a constant; a tuple is (tag, depth, *args).
# ---------------------------------------------------------------------------------------

Term = Any  # int | tuple[str, int, ...]; Any keeps the hot loop free of casts

UNK: Final = ("?", 1)
CALLER: Final = ("C", 1)
ORIGIN: Final = ("O", 1)
CALLVALUE: Final = ("V", 1)
TIMESTAMP: Final = ("T", 1)
SELECTOR: Final = ("SEL", 1)
DYN_CALLDATA: Final = ("D", 1)
_ENV_TERMS: Final[dict[int, Term]] = {
    0x33: CALLER, 0x32: ORIGIN, 0x34: CALLVALUE, 0x42: TIMESTAMP,
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


def _contains(x: Term, pred: Any, depth: int = 0) -> bool:
    if type(x) is int or depth > 8:
        return False
    if pred(x):
        return True
    return any(_contains(a, pred, depth + 1) for a in x[2:])


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


# ---------------------------------------------------------------------------------------
# Opcode table: (pops, pushes) for the instructions not modelled one by one.
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Per-function facts gathered by the interpreter
# ---------------------------------------------------------------------------------------

_NV: Final = ("nv",)
"""Caller fact: CALLVALUE == 0 on this path."""


@dataclass(slots=True)
class _Store:
    key: Term
    value: Term
    gates: frozenset[tuple[Any, ...]]
    allowance_read: bool  # an allowance was read or the caller compared on the path


@dataclass(slots=True)
class _Guard:
    cond: Term
    pol: bool  # True: going on needs cond != 0


@dataclass(slots=True)
class _Func:
    selector: int
    blocks: set[int] = field(default_factory=set)
    stores: list[_Store] = field(default_factory=list)
    loads: set[Any] = field(default_factory=set)
    calls: list[tuple[Term, Term, frozenset[tuple[Any, ...]]]] = field(default_factory=list)
    conds: set[Any] = field(default_factory=set)
    delegatecalls: list[Term] = field(default_factory=list)
    staticcalls: list[Term] = field(default_factory=list)
    selfdestructs: list[frozenset[tuple[Any, ...]]] = field(default_factory=list)
    guards: list[_Guard] = field(default_factory=list)
    arith_slots: set[int] = field(default_factory=set)
    ends_payable: bool = False
    ends_ok: bool = False
    logs: int = 0
    creates: int = 0
    env_reads: bool = False
    complete: bool = True
    entries: list[tuple[int, list[Term], dict[int, Term], frozenset[tuple[Any, ...]]]] = field(
        default_factory=list
    )


def _implied(cond: Term, pol: bool, out: set[tuple[Any, ...]], depth: int = 0) -> None:
    """Caller facts implied by ``(cond != 0) == pol``."""
    if type(cond) is int or depth > 8:
        return
    t = cond[0]
    if t == "Z":
        _implied(cond[2], not pol, out, depth + 1)
    elif t == "&":
        if pol:
            _implied(cond[2], True, out, depth + 1)
            _implied(cond[3], True, out, depth + 1)
    elif t == "|":
        if not pol:
            _implied(cond[2], False, out, depth + 1)
            _implied(cond[3], False, out, depth + 1)
    elif t == "=":
        a, b = cond[2], cond[3]
        if b == 0:
            _implied(a, not pol, out, depth + 1)
        elif a == 0:
            _implied(b, not pol, out, depth + 1)
        elif a == 1 or b == 1:
            _implied(b if a == 1 else a, pol, out, depth + 1)
        elif pol:
            for x, y in ((a, b), (b, a)):
                if x == CALLER or x == ORIGIN:
                    if type(y) is int:
                        if y >= 1 << 64:
                            out.add(("hardcoded", y))
                    else:
                        s = _storage_slot_of(y)
                        if s is not None:
                            out.add(("owner", s))
                        elif y[0] == "S" and _role_base(y[2]) is not None:
                            out.add(("role", _role_base(y[2])))
    elif t == "V":
        if not pol:
            out.add(_NV)
    elif t == "S":
        if pol:
            base = _role_base(cond[2])
            if base is not None:
                out.add(("role", base))
    elif t == ">>":
        _implied(cond[2], pol, out, depth + 1)


class _Analyzer:
    """The abstract interpreter (one instance per code)."""

    def __init__(self, code: bytes, deadline: float) -> None:
        self.c = _Code(code)
        self.deadline = deadline
        self.funcs: dict[int, _Func] = {}
        self.steps = 0
        self.probe_cache: dict[tuple[Any, ...], bool] = {}
        self.guarded: set[int] = set(_TRANSFERS)
        """Selectors whose refusing branches are recorded as guards (transfer and
        transferFrom; :meth:`guards_of` adds the sell paths the rules find)."""
        self._replay = False
        self._guard_slots: frozenset[int] | None = None
        """While :meth:`guards_of` runs: only branches that load one of these slots are
        probed (the rules read no other guard of a sell path)."""

    # -- helpers ------------------------------------------------------------------------

    def _check_time(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _Timeout

    def _skeleton(self, stack: list[Term]) -> tuple[int, ...]:
        jd = self.c.jumpdests
        return tuple([x if type(x) is int and x in jd else -1 for x in stack])

    # -- one block ----------------------------------------------------------------------

    def _run_block(
        self,
        pc: int,
        stack: list[Term],
        mem: dict[int, Term],
        func: _Func | None,
        reads: bool,
    ) -> tuple[str, Any, bool]:
        """Execute one block in place. Returns (kind, data, allowance_read):
        ``("jump", target)``, ``("jumpi", (target, cond, next_pc))``, ``("fall", next_pc)``,
        ``("end", op)`` or ``("bad", None)``."""
        block = self.c.blocks.get(pc)
        if block is None:
            return ("bad", None, reads)
        st = stack
        for ipc, op, imm in block:
            if 0x60 <= op <= 0x7F:
                st.append(imm)
                continue
            if 0x80 <= op <= 0x8F:
                k = op - 0x7F
                if len(st) < k:
                    return ("bad", None, reads)
                st.append(st[-k])
                continue
            if 0x90 <= op <= 0x9F:
                k = op - 0x8E
                if len(st) < k:
                    return ("bad", None, reads)
                st[-1], st[-k] = st[-k], st[-1]
                continue
            npop = _POPS[op]
            if len(st) < npop:
                return ("bad", None, reads)
            if op == 0x5B:
                continue
            if op == 0x50:
                st.pop()
                continue
            if op == 0x5F:
                st.append(0)
                continue
            if op == 0x56:
                return ("jump", st.pop(), reads)
            if op == 0x57:
                tgt = st.pop()
                cond = st.pop()
                return ("jumpi", (tgt, cond, ipc + 1), reads)
            if op in (0x00, 0xF3):
                if func is not None:
                    func.ends_ok = True
                return ("end", op, reads)
            if op in (0xFD, 0xFE) or op not in _DEFINED:
                return ("end", 0xFD, reads)
            if op == 0xFF:
                if func is not None:
                    st.pop()
                return ("end", op, reads)
            if op <= 0x1D:
                st.append(self._arith(op, st, func))
                continue
            if op == 0x54:
                key = st.pop()
                if func is not None:
                    func.loads.add(key)
                    if not reads and type(key) is not int and _is_caller_keyed(key):
                        base = key
                        if base[0] == "+":
                            base = base[2] if type(base[3]) is int else base[3]
                        if base[0] == "H" and type(base[3]) is not int:
                            reads = True  # m[x][msg.sender]: an allowance-style read
                st.append(UNK if _d(key) >= _MAX_DEPTH else ("S", _d(key) + 1, key))
                continue
            if op == 0x55:
                key = st.pop()
                val = st.pop()
                if func is not None:
                    func.stores.append(_Store(key, val, frozenset(), reads))
                continue
            if op == 0x35:
                off = st.pop()
                if off == 0:
                    st.append(("A", 1, 0))
                elif type(off) is int:
                    st.append(("A", 1, off))
                else:
                    st.append(DYN_CALLDATA)
                continue
            if op == 0x52:
                off = st.pop()
                val = st.pop()
                if type(off) is int and off < _MEM_TRACKED:
                    mem[off] = val
                    if off & 31:
                        for k in list(mem):
                            if k != off and abs(k - off) < 32:
                                del mem[k]
                continue
            if op == 0x51:
                off = st.pop()
                if type(off) is not int:
                    st.append(UNK)
                elif off in mem:
                    st.append(mem[off])
                elif mem.get(off + 28) == ("A", 1, 0):
                    st.append(SELECTOR)  # Vyper: calldata word stored at 28, word at 0 read
                else:
                    st.append(UNK)
                continue
            if op == 0x20:
                off = st.pop()
                size = st.pop()
                if type(off) is int and size == 64:
                    a = mem.get(off, UNK)
                    b = mem.get(off + 32, UNK)
                    st.append(_mk("H", a, b))
                elif type(off) is int and size == 32:
                    st.append(_mk1("H1", mem.get(off, UNK)))
                else:
                    st.append(UNK)
                continue
            if op in _ENV_TERMS:
                st.append(_ENV_TERMS[op])
                if func is not None and op != 0x34:
                    func.env_reads = True
                continue
            if op in (0xF1, 0xF2, 0xF4, 0xFA):
                args = [st.pop() for _ in range(npop)]
                if func is not None:
                    if op == 0xF1 or op == 0xF2:
                        func.calls.append((args[1], args[2], frozenset()))
                    elif op == 0xF4:
                        func.delegatecalls.append(args[1])
                    else:
                        func.env_reads = True  # STATICCALL reads state
                        func.staticcalls.append(args[1])
                # The success flag and the returned words name the callee's slot when the
                # callee is an address kept in storage: ("R" | "RD", 2, slot).
                callee = _storage_slot_of(args[1])
                st.append(("R", 1) if callee is None else ("R", 2, callee))
                ret_off, ret_len = (args[5], args[6]) if npop == 7 else (args[4], args[5])
                if type(ret_off) is int and ret_off < _MEM_TRACKED:
                    if type(ret_len) is int:
                        for k in [k for k in mem if ret_off - 32 < k < ret_off + ret_len]:
                            del mem[k]
                    if ret_len != 0:
                        mem[ret_off] = UNK if callee is None else ("RD", 2, callee)
                continue
            if 0xA0 <= op <= 0xA4 and func is not None:
                func.logs += 1
            if (op == 0xF0 or op == 0xF5) and func is not None:
                func.creates += 1
            if func is not None and op in (0x31, 0x3B, 0x3C, 0x3F, 0x40, 0x41, 0x43, 0x44,
                                           0x45, 0x47, 0x48, 0x3A, 0x46, 0x30):
                func.env_reads = True
            for _ in range(npop):
                st.pop()
            if _PUSHES[op]:
                st.append(UNK if op != 0x58 else ipc)
        return ("fall", self.c.ends[pc], reads)

    def _arith(self, op: int, st: list[Term], func: _Func | None) -> Term:
        a = st.pop()
        if op == 0x15:  # ISZERO
            if type(a) is int:
                return 1 if a == 0 else 0
            if a == CALLER or a == ORIGIN:
                return 0  # msg.sender and tx.origin are never the zero address
            return _mk1("Z", a)
        if op == 0x19:  # NOT
            return (~a) & _M256 if type(a) is int else _mk1("~", a)
        b = st.pop()
        if op in (0x08, 0x09):
            st.pop()
            return UNK
        ai = type(a) is int
        bi = type(b) is int
        if ai and bi:
            return _fold(op, a, b)
        if op == 0x01:
            if a == 0:
                return b
            if b == 0:
                return a
            return _mk("+", a, b)
        if op == 0x03:
            if b == 0:
                return a
            return _mk("-", a, b)
        if op == 0x02:
            if a == 1:
                return b
            if b == 1:
                return a
            if func is not None:
                _note_rate(func, a, b)
            return _mk("*", a, b)
        if op == 0x04 or op == 0x05:
            if b == 1:
                return a
            if bi and b > 0 and b & (b - 1) == 0:
                sh = b.bit_length() - 1
                if sh == 224 and a == ("A", 1, 0):
                    return SELECTOR
                return _mk(">>", a, sh)
            if func is not None:
                _note_rate(func, a, b)
            return _mk("/", a, b)
        if op == 0x16:  # AND
            if ai and a > 0xFF and _is_low_mask(a):
                return b
            if bi and b > 0xFF and _is_low_mask(b):
                return a
            if ai:  # constant operand second: ("&", x, mask)
                return _mk("&", b, a)
            return _mk("&", a, b)
        if op == 0x17:
            if a == 0:
                return b
            if b == 0:
                return a
            return _mk("|", a, b)
        if op == 0x14:
            if (a == 0 and (b == CALLER or b == ORIGIN)) or (b == 0 and (a == CALLER or a == ORIGIN)):
                return 0
            return _mk("=", a, b)
        if op == 0x10 or op == 0x12:
            return _mk("<", a, b)
        if op == 0x11 or op == 0x13:
            return _mk("<", b, a)
        if op == 0x1C or op == 0x1D:  # SHR/SAR shift=a value=b
            if a == 0:
                return b
            if a == 224 and b == ("A", 1, 0):
                return SELECTOR
            return _mk(">>", b, a)
        if op == 0x1B:  # SHL
            if a == 0:
                return b
            return _mk("<<", b, a)
        if op == 0x0A:
            return UNK
        return _mk("op", a, b)

    # -- exploration --------------------------------------------------------------------

    def run(self) -> None:
        """Explore the dispatcher, then every function found."""
        self._explore(None, [(0, [], {}, frozenset())])
        for sel in sorted(self.funcs):
            f = self.funcs[sel]
            if f.entries:
                self._explore(f, f.entries)

    def _explore(
        self,
        func: _Func | None,
        starts: list[tuple[int, list[Term], dict[int, Term], frozenset[tuple[Any, ...]]]],
    ) -> None:
        seen: dict[tuple[Any, ...], int] = {}  # merge key -> hash of the first stack, or -1
        visits: dict[int, int] = {}
        work: list[tuple[int, list[Term], dict[int, Term], frozenset[tuple[Any, ...]], bool]] = [
            (pc, list(st), dict(mem), g, False) for pc, st, mem, g in starts
        ]
        states = 0
        self._check_time()
        owner: _Func = func if func is not None else self._fallback_func()
        guarded = owner.selector in self.guarded
        max_visits = _TRANSFER_BLOCK_VISITS if owner.selector in _TRANSFERS else _BLOCK_VISITS
        while work:
            pc, st, mem, gates, reads = work.pop()
            key = (pc, self._skeleton(st), gates, reads)
            h = hash(tuple(st))
            first = seen.get(key)
            if first is not None:
                if first == -1 or first == h:
                    continue
                # Same context, other values (a loop counter, a second call of a helper):
                # widen once, every constant that is no jump target becomes unknown, so the
                # loop exit and the other outcomes are explored; then the key is closed.
                seen[key] = -1
                jd = self.c.jumpdests
                st = [x if type(x) is not int or x in jd else UNK for x in st]
                mem = {}
            else:
                seen[key] = h
            v = visits.get(pc, 0)
            if v >= max_visits:
                if func is not None:
                    func.complete = False
                continue
            visits[pc] = v + 1
            states += 1
            if states > (_STATE_BUDGET if self._guard_slots is None else _GUARD_STATE_BUDGET):
                if func is not None:
                    func.complete = False
                break
            if states & 63 == 0:
                self._check_time()
            owner.blocks.add(pc)
            n_stores = len(owner.stores)
            n_calls = len(owner.calls)
            kind, data, reads = self._run_block(pc, st, mem, owner, reads)
            if len(owner.stores) > n_stores:
                for s in owner.stores[n_stores:]:
                    s.gates = gates
            if len(owner.calls) > n_calls:
                owner.calls[n_calls:] = [(t, v, gates) for t, v, _ in owner.calls[n_calls:]]
            if kind == "end":
                if data == 0xFF:
                    owner.selfdestructs.append(gates)
                if data in (0x00, 0xF3) and _NV not in gates:
                    owner.ends_payable = True
                continue
            if kind == "bad":
                continue
            if kind == "fall":
                work.append((data, st, mem, gates, reads))
            elif kind == "jump":
                if type(data) is int and data in self.c.jumpdests:
                    work.append((data, st, mem, gates, reads))
            else:
                tgt, cond, nxt = data
                if cond == CALLER or cond == ORIGIN:
                    cond = 1  # never the zero address
                if type(cond) is int:
                    if cond:
                        if type(tgt) is int and tgt in self.c.jumpdests:
                            work.append((tgt, st, mem, gates, reads))
                    else:
                        work.append((nxt, st, mem, gates, reads))
                    continue
                sel = _dispatch_selector(cond) if func is None else None
                if sel is not None:
                    if type(tgt) is int and tgt in self.c.jumpdests:
                        self._entry(sel, tgt, st, mem, gates)
                    work.append((nxt, st, mem, gates, reads))
                    continue
                if func is None and type(cond) is tuple and cond[0] == "Z":
                    sel = _dispatch_selector(cond[2])  # Vyper: ISZERO(selector == c)
                    if sel is not None:
                        self._entry(sel, nxt, st, mem, gates)
                        if type(tgt) is int and tgt in self.c.jumpdests:
                            work.append((tgt, st, mem, gates, reads))
                        continue
                base, odd = _strip_not(cond)
                if base[0] == "A":
                    if ("nz", base) in gates or ("z", base) in gates:
                        truth = (("nz", base) in gates) != odd
                        if truth:
                            if type(tgt) is int and tgt in self.c.jumpdests:
                                work.append((tgt, st, mem, gates, reads))
                        else:
                            work.append((nxt, st, mem, gates, reads))
                        continue
                if len(owner.conds) < 512:
                    owner.conds.add(cond)
                if not reads and _contains(cond, _is_caller_eq):
                    reads = True  # the caller is checked against something: authorised
                g_t: set[tuple[Any, ...]] = set(gates)
                g_f: set[tuple[Any, ...]] = set(gates)
                _implied(cond, True, g_t)
                _implied(cond, False, g_f)
                if base[0] == "A":
                    g_t.add(("z" if odd else "nz", base))
                    g_f.add(("nz" if odd else "z", base))
                if guarded and _interesting_guard(cond) and (
                        self._guard_slots is None or _loads_slot(cond, self._guard_slots)):
                    self._maybe_guard(owner, tgt, cond, nxt, st, mem)
                work.append((nxt, list(st), dict(mem), frozenset(g_f), reads))
                if type(tgt) is int and tgt in self.c.jumpdests:
                    work.append((tgt, st, mem, frozenset(g_t), reads))

    def guards_of(self, sel: int, slots: frozenset[int]) -> list[_Guard]:
        """The guards (refusing branches) of function ``sel`` (-1 = the fallback) whose
        condition loads one of the constant storage ``slots``, found by exploring it
        once more with guard recording on; the facts of the first run are left as they
        are. Raises _Timeout past the deadline."""
        f = self.funcs.get(sel)
        if f is None:
            return []
        tmp = _Func(sel)
        self.guarded.add(sel)
        self._guard_slots = slots
        try:
            if sel >= 0:
                self._explore(tmp, f.entries)
            else:  # the fallback is reached through the dispatcher: run it again
                self.funcs[-1] = tmp
                self._replay = True
                self._explore(None, [(0, [], {}, frozenset())])
        finally:
            self._replay = False
            self._guard_slots = None
            self.funcs[-1 if sel < 0 else sel] = f
        return tmp.guards

    def _fallback_func(self) -> _Func:
        f = self.funcs.get(-1)
        if f is None:
            f = self.funcs[-1] = _Func(-1)
        return f

    def _entry(
        self, sel: int, pc: int, st: list[Term], mem: dict[int, Term],
        gates: frozenset[tuple[Any, ...]],
    ) -> None:
        if self._replay:
            return
        f = self.funcs.get(sel)
        if f is None:
            f = self.funcs[sel] = _Func(sel)
        if len(f.entries) < 4:
            f.entries.append((pc, list(st), dict(mem), gates))

    def _maybe_guard(
        self, func: _Func, tgt: Term, cond: Term, nxt: int, st: list[Term], mem: dict[int, Term]
    ) -> None:
        if type(tgt) is not int or tgt not in self.c.jumpdests:
            return
        rt = self._reverts(tgt, st, mem)
        rf = self._reverts(nxt, st, mem)
        if rt != rf:
            func.guards.append(_Guard(cond, rf))  # go on by the taken branch if fall reverts

    def _reverts(self, pc: int, st: list[Term], mem: dict[int, Term], depth: int = 0) -> bool:
        """True if every path from ``pc`` ends in REVERT/INVALID, or in STOP/RETURN with no
        SSTORE/LOG/CALL/CREATE on the way, within the probe budget (the operation is refused)."""
        key = (pc, self._skeleton(st), depth)
        hit = self.probe_cache.get(key)
        if hit is not None:
            return hit
        stack = list(st)
        m = dict(mem)
        steps = 0
        result = False
        while steps < _PROBE_STEPS:
            blk = self.c.blocks.get(pc)
            if blk is None:
                result = True  # a jump into no block is an exceptional halt
                break
            steps += len(blk)
            ops = {op for _, op, _ in blk}
            if ops & {0x55, 0xF1, 0xF2, 0xF4, 0xF0, 0xF5, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4}:
                break
            kind, data, _ = self._run_block(pc, stack, m, None, False)
            if kind == "end":
                # REVERT / INVALID, or STOP / RETURN with nothing stored, logged or sent
                # (the ``if (paused) return false;`` of early tokens): the transfer is refused.
                result = data in (0xFD, 0x00, 0xF3)
                break
            if kind == "bad":
                result = True
                break
            if kind == "fall":
                pc = data
            elif kind == "jump":
                if type(data) is not int:
                    break
                if data not in self.c.jumpdests:
                    result = True
                    break
                pc = data
            else:
                tgt, cond, nxt = data
                if cond == CALLER or cond == ORIGIN:
                    cond = 1  # never the zero address
                if type(cond) is int:
                    if cond:
                        if type(tgt) is not int:
                            break
                        if tgt not in self.c.jumpdests:
                            result = True
                            break
                        pc = tgt
                    else:
                        pc = nxt
                    continue
                if depth >= 2 or type(tgt) is not int:
                    break
                result = self._reverts(nxt, stack, m, depth + 1) and (
                    tgt not in self.c.jumpdests or self._reverts(tgt, stack, m, depth + 1)
                )
                break
        self.probe_cache[key] = result
        return result


def _note_rate(func: _Func, a: Term, b: Term) -> None:
    """Record a stored factor that scales an amount of the call (``amount * fee / 100``,
    ``msg.value / price``), not one that scales another stored value (``supply * maxPct``)."""
    for x, y in ((a, b), (b, a)):
        s = _storage_slot_of(x)
        if s is not None and _contains(y, _is_amount):
            func.arith_slots.add(s)


def _is_amount(x: Term) -> bool:
    return bool(x[0] in ("A", "D", "V"))


def _is_caller_eq(x: Term) -> bool:
    return bool(x[0] == "=" and (x[2] == CALLER or x[3] == CALLER))


def _checked_sub(f: _Func, value: Term) -> bool:
    """True if some branch of ``f`` compares the old value of a ``x - y`` store (the
    SafeMath / solc 0.8 underflow check, or an explicit ``require(x >= y)``)."""
    if type(value) is int or value[0] != "-":
        return True
    old = value[2]
    return any(_contains(c, lambda x: x[0] == "<" and (x[2] == old or x[3] == old))
               for c in f.conds)


def _fold(op: int, a: int, b: int) -> int:
    if op == 0x01:
        return (a + b) & _M256
    if op == 0x02:
        return (a * b) & _M256
    if op == 0x03:
        return (a - b) & _M256
    if op == 0x04 or op == 0x05:
        return a // b if b else 0
    if op == 0x06 or op == 0x07:
        return a % b if b else 0
    if op == 0x0A:
        return pow(a, b, 1 << 256)
    if op == 0x0B:
        return b
    if op == 0x10 or op == 0x12:
        return 1 if a < b else 0
    if op == 0x11 or op == 0x13:
        return 1 if a > b else 0
    if op == 0x14:
        return 1 if a == b else 0
    if op == 0x16:
        return a & b
    if op == 0x17:
        return a | b
    if op == 0x18:
        return a ^ b
    if op == 0x1A:
        return (b >> (8 * (31 - a))) & 0xFF if a < 32 else 0
    if op == 0x1B:
        return (b << a) & _M256 if a < 256 else 0
    if op == 0x1C or op == 0x1D:
        return b >> a if a < 256 else 0
    return 0


def _strip_not(cond: Term) -> tuple[Term, bool]:
    """(x, odd): cond is x under an odd (True) or even number of ISZERO / ``== 0``."""
    odd = False
    for _ in range(8):
        if type(cond) is int:
            break
        t = cond[0]
        if t == "Z":
            cond = cond[2]
        elif t == "=" and cond[3] == 0 and type(cond[2]) is not int:
            cond = cond[2]
        elif t == "=" and cond[2] == 0 and type(cond[3]) is not int:
            cond = cond[3]
        else:
            break
        odd = not odd
    return (cond if type(cond) is not int else UNK), odd


def _dispatch_selector(cond: Term) -> int | None:
    """c if cond is ``selector == c`` (either operand order), else None."""
    if type(cond) is int or cond[0] != "=":
        return None
    a, b = cond[2], cond[3]
    if a == SELECTOR and type(b) is int and b <= 0xFFFFFFFF:
        return b
    if b == SELECTOR and type(a) is int and a <= 0xFFFFFFFF:
        return a
    return None


def _loads_slot(cond: Term, slots: frozenset[int]) -> bool:
    """True if ``cond`` loads one of the constant storage ``slots``."""
    return _contains(cond, lambda x: x[0] == "S" and type(x[2]) is int and x[2] in slots)


def _interesting_guard(cond: Term) -> bool:
    return _contains(cond, lambda x: x[0] in ("S", "T", "C", "O") or (
        x[0] in ("R", "RD") and len(x) > 2))


# ---------------------------------------------------------------------------------------
# Guard classification (what can make transfer revert)
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Rules: records -> flags
# ---------------------------------------------------------------------------------------


def _gate_text(gates: frozenset[tuple[Any, ...]]) -> tuple[str, ...]:
    out = []
    for g in gates:
        if g[0] == "owner":
            out.append(f"owner:{hex(g[1])}")
        elif g[0] == "role":
            out.append(f"role:{hex(g[1])}")
        elif g[0] == "hardcoded":
            out.append(f"hardcoded:0x{g[1]:040x}")
    return tuple(sorted(out))


def _privileged(gates: frozenset[tuple[Any, ...]]) -> bool:
    return any(g[0] in ("owner", "role", "hardcoded") for g in gates)


def _who(gates: frozenset[tuple[Any, ...]]) -> str:
    kinds = {g[0] for g in gates}
    if "hardcoded" in kinds:
        return "hard-coded-address-only"
    if "owner" in kinds:
        return "owner-only"
    if "role" in kinds:
        return "role-gated"
    return "unrestricted"


def _fn_text(sel: int) -> str:
    if sel < 0:
        return "the fallback"
    sig = signature_of(sel)
    return f"function 0x{sel:08x} {sig}" if sig else f"function 0x{sel:08x}"


def _top(x: Term) -> str:
    return "const" if type(x) is int else x[0]


class _Rules:
    def __init__(self, funcs: dict[int, _Func], code: bytes, an: _Analyzer | None = None) -> None:
        self.funcs = funcs
        self.code = code
        self.an = an
        self.flags: dict[str, Flag] = {}
        bal = funcs.get(_SEL_BALANCE_OF)
        self.balance_slots: set[int] = set()
        if bal is not None:
            for k in bal.loads:
                base = _mapping_base(k)
                if base is not None and _is_calldata(_mapping_key(k)):
                    self.balance_slots.add(base)
        if not self.balance_slots:
            # No usable balanceOf: a mapping some function moves like a token balance
            # (m[msg.sender] -= x; m[k] += x) is taken as the balances mapping.
            for fn in funcs.values():
                subs = {_mapping_base(w.key) for w in fn.stores
                        if _top(w.value) == "-" and _mapping_key(w.key) == CALLER}
                adds = {_mapping_base(w.key) for w in fn.stores if _top(w.value) == "+"}
                self.balance_slots |= {b for b in subs & adds if b is not None}
        # Functions that move balances for anyone (transfer, transferFrom, and the sell /
        # transferAndCall style ones that add and subtract balances with no privileged gate).
        self.movers: set[int] = {s for s in _TRANSFERS if s in funcs}
        for fn in funcs.values():
            moved = [w for w in fn.stores if _mapping_base(w.key) in self.balance_slots]
            if (any(_top(w.value) == "+" for w in moved)
                    and any(_top(w.value) == "-" for w in moved)
                    and not any(_privileged(w.gates) for w in moved)):
                self.movers.add(fn.selector)
        ts = funcs.get(_SEL_TOTAL_SUPPLY)
        self.supply_slots = {k for k in ts.loads if type(k) is int} if ts else set()
        self.owner_slots: set[int] = set()
        for sel in (_SEL_OWNER, _SEL_GET_OWNER):
            getter = funcs.get(sel)
            if getter is not None:
                self.owner_slots |= {k for k in getter.loads if type(k) is int}
        # writers: slot text -> [(func, store)]
        self.writers: dict[str, list[tuple[_Func, _Store]]] = {}
        for fn in funcs.values():
            for w in fn.stores:
                txt = _slot_text(w.key)
                if txt is not None:
                    self.writers.setdefault(txt, []).append((fn, w))

    def add(self, name: str, conf: float, sels: Iterable[int], slots: Iterable[str],
            ops: Iterable[str], reason: str) -> None:
        old = self.flags.get(name)
        if old is not None and old.confidence >= conf:
            return
        self.flags[name] = Flag(name, conf, tuple(sorted(set(sels))), tuple(sorted(set(slots))),
                                tuple(sorted(set(ops))), reason)

    def _is_balance(self, key: Term) -> bool:
        base = _mapping_base(key)
        return base is not None and base in self.balance_slots

    def run(self) -> dict[str, Flag]:
        self._supply_and_balances()
        self._transfer_guards()
        self._sell_paths()
        self._ownership()
        self._proxy()
        self._selfdestruct()
        self._external_call()
        self._withdraw()
        return self.flags

    def _supply_and_balances(self) -> None:
        for f in self.funcs.values():
            if f.selector in _TRANSFERS or f.selector == _SEL_APPROVE:
                continue
            bal_add = [s for s in f.stores if self._is_balance(s.key) and _top(s.value) == "+"]
            bal_sub = [s for s in f.stores if self._is_balance(s.key) and _top(s.value) == "-"]
            sup_add = [s for s in f.stores
                       if type(s.key) is int and s.key in self.supply_slots and _top(s.value) == "+"]
            unchecked = [s for s in bal_sub if _privileged(s.gates)
                         and not _is_calldata(_mapping_key(s.key))
                         and not _checked_sub(f, s.value)]
            if unchecked and any(_is_calldata(_mapping_key(s.key)) for s in bal_add):
                st = unchecked[0]
                self.add("is_mintable", 0.7, [f.selector],
                         [_slot_text(s.key) or "" for s in unchecked], ["SUB", "SSTORE"],
                         f"{_who(st.gates)} {_fn_text(f.selector)} credits any address and debits "
                         f"a balance without checking it first (the debit can wrap: a mint)")
            if (bal_add and not bal_sub) or sup_add:
                st = (sup_add or bal_add)[0]
                who = _who(st.gates)
                slots = [_slot_text(s.key) or "" for s in bal_add + sup_add]
                conf = 0.9 if _privileged(st.gates) else 0.6
                self.add("is_mintable", conf, [f.selector], slots, ["SSTORE"],
                         f"{who} {_fn_text(f.selector)} increases the balances mapping"
                         f" {'and the total supply ' if sup_add else ''}(mint)")
            # A privileged function that *sets* (not adds to) its own or a stored address's
            # balance, or the total supply, to a value from the call data can raise it at will.
            set_bal = [s for s in f.stores if self._is_balance(s.key) and _privileged(s.gates)
                       and _top(s.value) not in ("+", "-") and _is_calldata(s.value)
                       and not _is_calldata(_mapping_key(s.key))]
            set_sup = [s for s in f.stores if type(s.key) is int and s.key in self.supply_slots
                       and _privileged(s.gates) and _top(s.value) not in ("+", "-")
                       and _is_calldata(s.value)]
            credited = [s for s in f.stores if self._is_balance(s.key)]
            if not credited:
                set_sup = []  # a new total with no balance credited creates no token
            if set_bal or set_sup:
                st = (set_sup or set_bal)[0]
                what = ("the total supply and a balance" if set_sup
                        else "a balance that is not named in the call")
                self.add("is_mintable", 0.8, [f.selector],
                         [_slot_text(s.key) or "" for s in set_sup + set_bal + credited],
                         ["SSTORE"],
                         f"{_who(st.gates)} {_fn_text(f.selector)} sets {what} to a value given "
                         f"in the call data (tokens can be created at will)")
            moved = [s for s in f.stores if self._is_balance(s.key)
                     and _is_calldata(_mapping_key(s.key)) and (
                         _top(s.value) == "-" or (_top(s.value) != "+" and (
                             type(s.value) is int or _is_calldata(s.value))))]
            for s in moved:
                if _privileged(s.gates):
                    self.add("owner_change_balance", 0.9, [f.selector], [_slot_text(s.key) or ""],
                             ["SSTORE"], f"{_who(s.gates)} {_fn_text(f.selector)} lowers or sets "
                             f"the balance of an address given in the call data")
                elif not s.allowance_read and _top(s.value) == "-" and bal_add:
                    self.add("owner_change_balance", 0.7, [f.selector], [_slot_text(s.key) or ""],
                             ["SSTORE"], f"{_fn_text(f.selector)} moves tokens out of an address "
                             f"given in the call data without checking an allowance")

    def _withdraw(self) -> None:
        # slot -> (func, store) that sets it from the call data under a privileged gate
        price_setters: dict[int, tuple[_Func, _Store]] = {}
        for txt, ws in self.writers.items():
            if txt.startswith("0x"):
                for wf, w in ws:
                    if _privileged(w.gates) and _is_calldata(w.value):
                        price_setters.setdefault(int(txt, 16), (wf, w))
        for f in self.funcs.values():
            if f.selector in _TRANSFERS:
                continue
            for _t, v, g in f.calls:
                # Ether paid out at a rate the privileged caller sets (MyAdvancedToken's
                # setPrices + sell): set the rate high and sell, and the contract's ether goes.
                if _privileged(g) or type(v) is int:
                    continue
                rates = sorted({s for s in _scaled_slots(v) if s in price_setters})
                if rates:
                    wf, w = price_setters[rates[0]]
                    self.add("owner_can_withdraw", 0.6, [f.selector, wf.selector],
                             [hex(r) for r in rates], ["CALL", "MUL", "SSTORE"],
                             f"{_fn_text(f.selector)} pays out ether at the rate in slot "
                             f"{hex(rates[0])}, which {_who(w.gates)} {_fn_text(wf.selector)} "
                             f"sets (a high rate lets the privileged caller drain the contract)")
            for t, v, g in f.calls:
                if not self._priv(g) or (type(t) is int and t <= 0xFFFF):
                    continue
                if v != 0:
                    conf, what = 0.85, "sends the contract's ether out"
                elif _is_calldata(t):
                    conf, what = 0.8, "calls a contract named in the call data"
                else:
                    conf, what = 0.6, "calls another contract"
                self.add("owner_can_withdraw", conf, [f.selector], [], ["CALL"],
                         f"{_who(g)} {_fn_text(f.selector)} {what} (ether or tokens held by "
                         f"this contract can be moved out by the privileged caller)")

        for f in self.funcs.values():
            # SELFDESTRUCT sends the whole balance to its beneficiary: a privileged one is
            # a withdrawal of all the ether the contract holds.
            if any(self._priv(g) for g in f.selfdestructs):
                g = next(g for g in f.selfdestructs if self._priv(g))
                self.add("owner_can_withdraw", 0.8, [f.selector], [], ["SELFDESTRUCT"],
                         f"{_who(g)} {_fn_text(f.selector)} self-destructs the contract, which "
                         f"sends all the ether it holds to the beneficiary")

    def _gated_writer(self, slot_txt: str, calldata_value: bool) -> list[tuple[_Func, _Store]]:
        out = []
        for f, s in self.writers.get(slot_txt, []):
            if f.selector in self.movers:
                continue
            if calldata_value and not (_is_calldata(s.value) or type(s.value) is int):
                continue  # set from the call data, or to a constant (a switch to 0 or 100 %)
            out.append((f, s))
        return out

    def _transfer_guards(self) -> None:
        for sel in sorted(self.movers):
            f = self.funcs.get(sel)
            if f is None:
                continue
            kinds: list[tuple[Any, ...]] = []
            for g in (f.guards if sel in _TRANSFERS else ()):  # others: see _sell_paths
                _classify(g.cond, g.pol, kinds)
            for k in kinds:
                if k[0] == "bool_slot" and k[1] not in _PROXY_SLOTS:
                    w = self._gated_writer(hex(k[1]), False)
                    if w:
                        wf, ws = w[0]
                        conf = 0.9 if _privileged(ws.gates) else 0.6
                        self.add("transfer_pausable", conf, [sel, wf.selector], [hex(k[1])],
                                 ["JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} reverts on the switch in slot {hex(k[1])}, "
                                 f"which {_who(ws.gates)} {_fn_text(wf.selector)} sets")
                elif k[0] == "bool_map":
                    w = self._gated_writer(f"m:{hex(k[1])}", False)
                    if not w or k[1] in self.balance_slots:
                        continue
                    wf, ws = w[0]
                    conf = 0.9 if _privileged(ws.gates) else 0.6
                    if k[2]:
                        self.add("is_whitelisted", conf, [sel, wf.selector], [f"m:{hex(k[1])}"],
                                 ["JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} only goes through for addresses listed in the "
                                 f"mapping at slot {hex(k[1])}, kept by {_who(ws.gates)} "
                                 f"{_fn_text(wf.selector)}")
                    else:
                        self.add("is_blacklisted", conf, [sel, wf.selector], [f"m:{hex(k[1])}"],
                                 ["JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} reverts for addresses listed in the mapping at "
                                 f"slot {hex(k[1])}, kept by {_who(ws.gates)} "
                                 f"{_fn_text(wf.selector)}")
                elif k[0] == "limit":
                    if k[1] in self.supply_slots:
                        continue
                    w = [x for x in self._gated_writer(hex(k[1]), True) if _privileged(x[1].gates)]
                    if w:
                        wf, ws = w[0]
                        self.add("anti_whale_modifiable", 0.8, [sel, wf.selector], [hex(k[1])],
                                 ["JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} reverts above the limit in slot {hex(k[1])}, "
                                 f"which {_who(ws.gates)} {_fn_text(wf.selector)} can change")
                elif k[0] == "ext" and k[1] not in _PROXY_SLOTS:
                    w = [x for x in self._gated_writer(hex(k[1]), True) if _privileged(x[1].gates)]
                    if w:
                        wf, ws = w[0]
                        self.add("transfer_pausable", 0.7, [sel, wf.selector], [hex(k[1])],
                                 ["CALL", "JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} reverts on the answer of the contract whose "
                                 f"address is kept in slot {hex(k[1])}, which {_who(ws.gates)} "
                                 f"{_fn_text(wf.selector)} can replace (with one that refuses)")
                elif k[0] in ("time", "time_map"):
                    self.add("trading_cooldown", 0.7, [sel], [f"m:{hex(k[1])}"] if len(k) > 1 else [],
                             ["TIMESTAMP", "JUMPI"],
                             f"{_fn_text(sel)} reverts depending on the block time (cooldown)")
            for s in sorted(f.arith_slots):
                if s in self.supply_slots or s in self.owner_slots:
                    continue
                w = [x for x in self._gated_writer(hex(s), True) if _privileged(x[1].gates)]
                if w:
                    wf, ws = w[0]
                    self.add("slippage_modifiable", 0.8, [sel, wf.selector], [hex(s)],
                             ["MUL", "SSTORE"],
                             f"{_fn_text(sel)} computes a fee with the rate in slot {hex(s)}, "
                             f"which {_who(ws.gates)} {_fn_text(wf.selector)} can change")

    # -- contracts with no transfer: withdraw / refund / sell-for-ether paths ----------

    def _ledger_like(self, base: int) -> bool:
        """True when some unprivileged function writes the mapping at ``base`` (a
        deposit / credit ledger, not a list that only a privileged caller keeps)."""
        return any(not _privileged(w.gates) for _, w in self.writers.get(f"m:{hex(base)}", []))

    def _caller_gated_ok(self, gates: frozenset[tuple[Any, ...]]) -> bool:
        """A path anyone may take: no owner / hard-coded gate, and every role gate is a
        lookup of the caller's own ledger entry (``require(deposits[msg.sender] > 0)``)."""
        for g in gates:
            if g[0] in ("owner", "hardcoded"):
                return False
            if g[0] == "role" and not self._ledger_like(g[1]):
                return False
        return True

    def _priv(self, gates: frozenset[tuple[Any, ...]]) -> bool:
        """Privileged in the sense of the sell-path rules: an owner / hard-coded gate, or
        a role kept in a mapping that no unprivileged function writes (a lookup of the
        caller's own ledger entry is not a privilege)."""
        return any(g[0] in ("owner", "hardcoded") or (g[0] == "role" and not self._ledger_like(g[1]))
                   for g in gates)

    def _setters(self, slot: int) -> list[tuple[_Func, _Store]]:
        """Privileged writers that set ``slot`` to a call-data value or a constant, or lower
        it by a call-data amount (``pot -= amount``); raising a running total
        (``allocated += amount``) does not tighten a bound."""
        def own(x: Term) -> bool:
            return bool(x[0] == "S" and x[2] == slot)

        out = []
        for wf, w in self.writers.get(hex(slot), []):
            if wf.selector in self.movers or not self._priv(w.gates):
                continue
            v = w.value
            if type(v) is int or (_is_calldata(v) and not _contains(v, own)):
                out.append((wf, w))
            elif v[0] == "-" and type(v[2]) is not int and own(v[2]) and _is_calldata(v[3]):
                out.append((wf, w))
        return out

    def sell_paths(self) -> dict[int, tuple[str, set[int]]]:
        """Functions other than transfer / transferFrom through which a holder takes value
        out: selector -> (what it does, the caller-keyed ledgers it pays out or debits).
        Each is a path that anyone may take (see :meth:`_caller_gated_ok`). In a contract
        with no ``transfer`` (sale, game, vault, deposit ledger) it pays ether to the
        caller (not change of the ``msg.value`` of the same call), or lowers / clears the
        caller's entry of a mapping and calls out (a token payout), or moves a ledger like
        a token balance (a custom-named transfer); in a token it pays ether to the caller
        and lowers / clears the caller's own balance (a buy-back, ``sell(amount)``)."""
        out: dict[int, tuple[str, set[int]]] = {}
        token = any(sel in self.funcs for sel in _TRANSFERS)
        for f in sorted(self.funcs.values(), key=lambda fn: fn.selector):
            if f.selector == _SEL_APPROVE or f.selector in _TRANSFERS:
                continue
            ledgers: set[int] = set()
            what = ""
            for t, v, g in f.calls:
                if (t == CALLER or t == ORIGIN) and v != 0 and self._caller_gated_ok(g) \
                        and not _contains(v, lambda x: x == CALLVALUE):
                    what = "pays ether out to the caller (a withdraw, refund or sell)"
                    for leaf in _sloads(v):
                        base = _mapping_base(leaf[2])
                        if base is not None and _mapping_key(leaf[2]) == CALLER:
                            ledgers.add(base)
            if token:
                # A token is sold through transfer; besides it, only a function that pays
                # ether for the caller's own balance (a buy-back) is a sell path.
                if what and any(
                        self._is_balance(w.key) and _mapping_key(w.key) == CALLER
                        and (_top(w.value) == "-" or w.value == 0) and self._caller_gated_ok(w.gates)
                        for w in f.stores):
                    out[f.selector] = ("pays ether for the caller's tokens (a sell for ether)", set())
                continue
            calls_out = any(not (type(t) is int and t <= 0xFFFF) and self._caller_gated_ok(g)
                            for t, _v, g in f.calls)
            for w in f.stores:
                base = _mapping_base(w.key)
                if base is None or _mapping_key(w.key) != CALLER or not self._caller_gated_ok(w.gates):
                    continue
                if (_top(w.value) == "-" or w.value == 0) and calls_out:
                    ledgers.add(base)
                    what = what or "debits the caller's entry and calls out (a payout)"
            if not what and f.selector in self.movers:
                what = "moves a ledger entry like a token balance (the contract has no transfer)"
            if what:
                out[f.selector] = (what, ledgers)
        return out

    def _flag_writers(self, slot: int, shift: int) -> list[tuple[_Func, _Store]]:
        """Privileged writers of the boolean at bit ``shift`` of ``slot``."""
        return [(wf, w) for wf, w in self.writers.get(hex(slot), [])
                if self._priv(w.gates) and _writes_bits(w.value, slot, shift)]

    def _state_writers(self, slot: int) -> list[tuple[_Func, _Store]]:
        """Privileged writers of a constant stage into ``slot`` (``state = State.Refunding``)."""
        return [(wf, w) for wf, w in self.writers.get(hex(slot), [])
                if self._priv(w.gates) and _const_write(w.value, slot)]

    def _sell_paths(self) -> None:
        if self.an is None:
            return
        paths = self.sell_paths()
        for sel, (what, _ledgers) in paths.items():
            # Every rule below needs a slot that the path loads and a privileged caller
            # writes: without one, the second exploration can find nothing.
            slots = frozenset(k for k in self.funcs[sel].loads if type(k) is int and any(
                self._priv(w.gates) for _, w in self.writers.get(hex(k), [])))
            if not slots:
                continue
            head = f"{_fn_text(sel)} {what}"
            for g in self.an.guards_of(sel, slots):
                kinds: list[tuple[Any, ...]] = []
                _classify(g.cond, g.pol, kinds)
                timed = any(k[0] == "time" for k in kinds)
                for k in kinds:
                    if k[0] == "bool_slot" and k[1] not in _PROXY_SLOTS:
                        w = self._flag_writers(k[1], k[3])
                        if w:
                            wf, ws = w[0]
                            self.add("transfer_pausable", 0.75, [sel, wf.selector], [hex(k[1])],
                                     ["JUMPI", "SSTORE"],
                                     f"{head} and reverts on the switch in slot {hex(k[1])}, "
                                     f"which {_who(ws.gates)} {_fn_text(wf.selector)} sets")
                    elif k[0] == "state" and k[1] not in _PROXY_SLOTS:
                        w = self._state_writers(k[1])
                        if w:
                            wf, ws = w[0]
                            self.add("transfer_pausable", 0.7, [sel, wf.selector], [hex(k[1])],
                                     ["EQ", "JUMPI", "SSTORE"],
                                     f"{head} only in the stage kept in slot {hex(k[1])}, which "
                                     f"{_who(ws.gates)} {_fn_text(wf.selector)} sets")
                    elif k[0] == "limit" and k[1] not in self.supply_slots | self.owner_slots:
                        w = self._setters(k[1])
                        if not w:
                            continue
                        wf, ws = w[0]
                        if timed:  # a time lock the privileged caller can move
                            self.add("trading_cooldown", 0.7, [sel, wf.selector], [hex(k[1])],
                                     ["TIMESTAMP", "JUMPI", "SSTORE"],
                                     f"{head} and reverts depending on the time in slot "
                                     f"{hex(k[1])}, which {_who(ws.gates)} {_fn_text(wf.selector)} "
                                     f"can move")
                        else:
                            self.add("anti_whale_modifiable", 0.7, [sel, wf.selector], [hex(k[1])],
                                     ["JUMPI", "SSTORE"],
                                     f"{head} and reverts past the limit in slot {hex(k[1])}, "
                                     f"which {_who(ws.gates)} {_fn_text(wf.selector)} can change")
        self._ledger_mint(paths)

    def _ledger_mint(self, paths: dict[int, tuple[str, set[int]]]) -> None:
        """A privileged function that raises (or sets from the call data) the entry of an
        address given in the call data in a ledger that a sell path pays out is a mint."""
        ledgers: dict[int, int] = {}
        for sel, (_what, bases) in paths.items():
            for b in sorted(bases):
                ledgers.setdefault(b, sel)
        if not ledgers:
            return
        for f in sorted(self.funcs.values(), key=lambda fn: fn.selector):
            if f.selector in paths:
                continue
            for w in f.stores:
                base = _mapping_base(w.key)
                if base is None or base not in ledgers or not self._priv(w.gates):
                    continue
                if base in self.balance_slots or not _is_calldata(_mapping_key(w.key)):
                    continue
                if _top(w.value) != "-" and _is_calldata(w.value):  # += amount, or = amount
                    self.add("is_mintable", 0.7, [f.selector, ledgers[base]], [f"m:{hex(base)}"],
                             ["SSTORE"],
                             f"{_who(w.gates)} {_fn_text(f.selector)} credits any address in the "
                             f"ledger at slot {hex(base)}, which {_fn_text(ledgers[base])} pays out "
                             f"(value created at will)")

    def _ownership(self) -> None:
        owner_slots = set(self.owner_slots)
        gate_counts: dict[int, int] = {}
        for f in self.funcs.values():
            for s in f.stores:
                for g in s.gates:
                    if g[0] == "owner":
                        gate_counts[g[1]] = gate_counts.get(g[1], 0) + 1
        if not owner_slots and gate_counts:
            owner_slots = {max(gate_counts, key=lambda k: (gate_counts[k], -k))}
        for f in self.funcs.values():
            for s in f.stores:
                hard = sorted(g for g in s.gates if g[0] == "hardcoded")
                if hard:
                    self.add("hidden_owner", 0.8, [f.selector], [_slot_text(s.key) or ""],
                             ["CALLER", "EQ", "PUSH20"],
                             f"{_fn_text(f.selector)} is reserved for the hard-coded address "
                             f"0x{hard[0][1]:040x} and writes storage")
                if type(s.key) is not int or s.key not in owner_slots:
                    continue
                others = sorted(g for g in s.gates if g[0] == "owner" and g[1] not in owner_slots)
                if hard:
                    self.add("can_take_back_ownership", 0.8, [f.selector], [hex(s.key)],
                             ["SSTORE"], f"{_fn_text(f.selector)} lets a hard-coded address "
                             f"rewrite the owner slot {hex(s.key)}")
                for g in others:
                    stash = [w for _, w in self.writers.get(hex(g[1]), [])
                             if _contains(w.value, lambda x: x == CALLER or (
                                 x[0] == "S" and x[2] in owner_slots))]
                    if stash:
                        self.add("can_take_back_ownership", 0.85, [f.selector],
                                 [hex(s.key), hex(g[1])], ["SSTORE"],
                                 f"{_fn_text(f.selector)} lets the address saved in slot "
                                 f"{hex(g[1])} (a previous owner) write the owner slot "
                                 f"{hex(s.key)} again")

    def _proxy(self) -> None:
        for f in self.funcs.values():
            for k in sorted(k for k in f.loads if type(k) is int):
                if k in _PROXY_SLOTS:
                    self.add("is_proxy", 0.95, [f.selector], [hex(k)], ["SLOAD"],
                             f"{_fn_text(f.selector)} reads the {_PROXY_SLOTS[k]}: "
                             f"the code can be upgraded")
            for t in f.delegatecalls:
                s = _storage_slot_of(t)
                if s is not None:
                    self.add("is_proxy", 0.9, [f.selector], [hex(s)], ["DELEGATECALL", "SLOAD"],
                             f"{_fn_text(f.selector)} delegates to the address kept in slot "
                             f"{hex(s)}: whoever can write that slot replaces the code")

    def _selfdestruct(self) -> None:
        for f in self.funcs.values():
            for g in f.selfdestructs:
                conf = 0.95 if _privileged(g) else 0.8
                self.add("selfdestruct", conf, [f.selector], [], ["SELFDESTRUCT"],
                         f"{_who(g)} {_fn_text(f.selector)} can destroy the contract")

    def _external_call(self) -> None:
        for sel in sorted(_TRANSFERS):
            f = self.funcs.get(sel)
            if f is None:
                continue
            for t, _v, _g in f.calls:
                if type(t) is int and t <= 0xFFFF:
                    continue  # a precompile
                self.add("external_call", 0.8, [sel], [], ["CALL"],
                         f"{_fn_text(sel)} calls another contract")
            for t in f.staticcalls:  # a view call (solc >= 0.5 compiles them as STATICCALL)
                if type(t) is int and t <= 0xFFFF:
                    continue
                self.add("external_call", 0.75, [sel], [], ["STATICCALL"],
                         f"{_fn_text(sel)} asks another contract (a view call)")


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def _mutability(f: _Func) -> str:
    """ABI state mutability from what the code does (Solidity docs, "State Mutability"):
    payable unless every successful end is behind a ``CALLVALUE == 0`` check; nonpayable
    if it can SSTORE, CALL, CREATE, DELEGATECALL or SELFDESTRUCT; view if it reads
    storage or the environment (SLOAD, CALLER, TIMESTAMP, STATICCALL, ...); else pure."""
    if f.ends_payable:
        return "payable"
    if f.stores or f.calls or f.delegatecalls or f.selfdestructs or f.creates:
        return "nonpayable"
    if f.loads or f.env_reads:
        return "view"
    return "pure"


def _function_info(f: _Func) -> FunctionInfo:
    gates: set[str] | None = None
    for s in f.stores:
        g = set(_gate_text(s.gates))
        gates = g if gates is None else gates & g
    reads = sorted({t for t in (_slot_text(k) for k in f.loads) if t is not None})
    writes = sorted({t for t in (_slot_text(s.key) for s in f.stores) if t is not None})
    return FunctionInfo(
        selector=f.selector,
        blocks=tuple(sorted(f.blocks)),
        state_mutability=_mutability(f),
        gates=tuple(sorted(gates or ())),
        reads=tuple(reads),
        writes=tuple(writes),
        complete=f.complete,
    )


def analyze(
    code: bytes | bytearray | memoryview,
    *,
    code_hash: str | None = None,
    budget_s: float = 2.0,
) -> CapabilityReport:
    """Capability report of one runtime bytecode.

    Args:
        code: raw runtime bytecode (``eth_getCode`` bytes; the Solidity CBOR metadata
            trailer, if any, is stripped here). Any length.
        code_hash: the code's identity to record (``0x`` + keccak-256 hex); computed as
            ``sha256:<hex>`` when not given (no keccak dependency on this path).
        budget_s: wall-time budget in seconds (> 0); past it the report has
            ``status="timeout"`` and no flags.

    Returns:
        A :class:`CapabilityReport` (never raises on odd code: undefined opcodes,
        truncated PUSHes and bad jumps end a path like the EVM's exceptional halt).

    Raises:
        BytecodeError: ``code`` is not bytes-like, or ``budget_s`` is not positive.
    """
    if not isinstance(code, (bytes, bytearray, memoryview)):
        raise BytecodeError(f"analyze expects raw code bytes, not {type(code).__name__}")
    if not budget_s > 0:
        raise BytecodeError(f"analyze: budget_s must be > 0, got {budget_s!r}")
    raw = bytes(code)
    if code_hash is None:
        code_hash = "sha256:" + hashlib.sha256(raw).hexdigest()
    t0 = time.perf_counter()
    body = strip_metadata(raw)
    if not body:
        return CapabilityReport(code_hash, "empty", (), (), 0.0)
    an = _Analyzer(body, t0 + budget_s)
    try:
        an.run()
        flags = _Rules(an.funcs, body, an).run()
    except _Timeout:
        return CapabilityReport(code_hash, "timeout", (), (), time.perf_counter() - t0)
    fl = tuple(flags[n] for n in FLAG_NAMES if n in flags)
    fns = sorted(an.funcs.values(), key=lambda f: (f.selector < 0, f.selector))
    infos = tuple(_function_info(f) for f in fns if f.selector >= 0 or f.blocks)
    return CapabilityReport(code_hash, "ok", fl, infos, time.perf_counter() - t0)
