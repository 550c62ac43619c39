"""Capability analysis: its constants (analyzer version, flag names, selectors, budgets) and records (Flag, FunctionInfo, CapabilityReport).

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from edge.scoring.selector_names import signature_of

ANALYZER_VERSION: Final = "cap-4"
"""Changes whenever a rule or the record shape changes (stored with every report; the
analysis worker re-analyses every code whose stored row names another version, and the
row is replaced: no migration). cap-4: a time one store away from its privileged setter
(a function stores ``clock + duration`` and a privileged caller sets the duration, as in
``roundEnd = block.number + roundLength``; one hop, :meth:`_Rules.clock_hops`) bounds a
sell path like a time that caller sets itself: a sell path that refuses before it, or that
credits the ledger it pays out only on one side of a clock branch on it (the lottery that
pays the pot to the winner only after the round end), is ``trading_cooldown``;
``block.number`` is a clock term (``NUMBER``), read as time by the sell-path rules only
(not in transfer, where it is often MiniMe's snapshot check); the second exploration of
a sell path remembers the side of a branch it took until the next store, so the
infeasible side of a short-circuit ``if (pot > 0 && block.number > end)`` is not explored.
cap-3: in a contract with no ``transfer`` /
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
