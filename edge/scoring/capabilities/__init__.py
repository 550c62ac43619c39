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
privileged function writes (or a time computed from a duration one writes) is explored a
second time, probing only the branches on such slots.

States are merged on (block, the jump-target constants on the stack, caller facts), so
each internal function is explored once per call site; a per-function state budget and a
per-code time budget bound the work. A code that runs out of time gets
``status="timeout"`` and no flags; the timeout is itself the recorded result.

Flags (GoPlus token-security field names, except ``owner_can_withdraw``, which GoPlus
has no field for and which matches CRPWarner's "leaking token: withdraw" pattern): see
:data:`FLAG_NAMES`; ``models/README.md`` has the per-flag precision / recall table.

JSON form (:meth:`CapabilityReport.to_json`)::

    {"code_hash": "0x...", "status": "ok", "analyzer": "cap-4", "elapsed_ms": 12.3,
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

from edge.errors import BytecodeError
from edge.scoring.features import strip_metadata

from .interpreter import _Analyzer, _Func
from .opcodes import _Timeout
from .records import (  # re-exported
    ANALYZER_VERSION,
    FLAG_NAMES,
    CapabilityReport,
    Flag,
    FunctionInfo,
)
from .rules import _gate_text, _Rules
from .terms import _slot_text

__all__ = [
    "ANALYZER_VERSION",
    "FLAG_NAMES",
    "CapabilityReport",
    "Flag",
    "FunctionInfo",
    "analyze",
]


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
