"""Capability analysis: the symbolic interpreter that walks each function and gathers per-function facts (stores, guards, calls, logs).

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

from .opcodes import _DEFINED, _POPS, _PUSHES, _Code, _Timeout
from .records import (
    _BLOCK_VISITS,
    _GUARD_STATE_BUDGET,
    _M256,
    _MAX_DEPTH,
    _MEM_TRACKED,
    _PROBE_STEPS,
    _STATE_BUDGET,
    _TRANSFER_BLOCK_VISITS,
    _TRANSFERS,
)
from .terms import (
    _ENV_TERMS,
    CALLER,
    DYN_CALLDATA,
    ORIGIN,
    SELECTOR,
    UNK,
    Term,
    _const_loads,
    _contains,
    _d,
    _is_caller_keyed,
    _is_time,
    _is_low_mask,
    _mk,
    _mk1,
    _role_base,
    _storage_slot_of,
)

_NV: Final = ("nv",)
"""Caller fact: CALLVALUE == 0 on this path."""
_KNOWN_BRANCHES: Final = 4
"""Most branches on values other than call data whose side a sell path's second run
remembers at once (:meth:`_Analyzer.guards_of`)."""


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
        if op == 0x01 or op == 0x17:  # ADD, OR: 0 is the identity of both
            if a == 0:
                return b
            if b == 0:
                return a
            return _mk("+" if op == 0x01 else "|", a, b)
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
                if self._guard_slots is not None:  # a store: what was known of storage goes
                    gates = frozenset(g for g in gates if g[0] not in ("nz", "z") or g[1][0] == "A")
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
                # A branch tested again on the same path goes the same way: on call data
                # always; in a sell path's second run also on other values until a store
                # (``if (pot > 0 && now > end)`` compiled as a test of the first operand's
                # value once more), so its infeasible paths do not blur the clock branches.
                known = base[0] == "A" or (self._guard_slots is not None and _stable(base))
                if known and base[0] != "A" and ("nz", base) not in gates and ("z", base) not in gates:
                    # bounded, so that a loop whose test changes each round still closes
                    known = _d(base) <= 6 and sum(
                        1 for g in gates if g[0] in ("nz", "z") and g[1][0] != "A") < _KNOWN_BRANCHES
                if known:
                    if ("nz", base) in gates or ("z", base) in gates:
                        if base[0] != "A" and guarded and _interesting_guard(cond) and (
                                self._guard_slots is None or _loads_slot(cond, self._guard_slots)):
                            self._maybe_guard(owner, tgt, cond, nxt, st, mem)  # still a guard
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
                if known:
                    g_t.add(("z" if odd else "nz", base))
                    g_f.add(("nz" if odd else "z", base))
                if guarded and _interesting_guard(cond) and (
                        self._guard_slots is None or _loads_slot(cond, self._guard_slots)):
                    refuses = self._maybe_guard(owner, tgt, cond, nxt, st, mem)
                    if not refuses and self._guard_slots is not None and _contains(cond, _is_time):
                        # A clock branch of a sell path that refuses nothing (``if (block.number
                        # > roundEnd) credit the winner``): the stores after it carry its side.
                        for slot in sorted(_const_loads(cond) & self._guard_slots):
                            g_t.add(("tb", slot, True))
                            g_f.add(("tb", slot, False))
                work.append((nxt, list(st), dict(mem), frozenset(g_f), reads))
                if type(tgt) is int and tgt in self.c.jumpdests:
                    work.append((tgt, st, mem, frozenset(g_t), reads))

    def guards_of(self, sel: int, slots: frozenset[int]) -> _Func:
        """Function ``sel`` (-1 = the fallback) explored once more with guard recording
        on, for branches whose condition loads one of the constant storage ``slots``: the
        returned record has its guards (refusing branches) and its stores, whose facts
        also hold ``("tb", slot, side)`` for each clock branch on such a slot that refuses
        nothing (a payout made on one side of ``block.number > roundEnd`` only); the
        facts of the first run are left as they are. Raises _Timeout past the deadline."""
        f = self.funcs.get(sel)
        if f is None:
            return _Func(sel)
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
        return tmp

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
    ) -> bool:
        """Record the branch as a guard if exactly one side refuses; True if any side
        refuses (or the jump target is no block)."""
        if type(tgt) is not int or tgt not in self.c.jumpdests:
            return True
        rt = self._reverts(tgt, st, mem)
        rf = self._reverts(nxt, st, mem)
        if rt != rf:
            func.guards.append(_Guard(cond, rf))  # go on by the taken branch if fall reverts
        return rt or rf

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
        if t == "Z" or t == "=" and cond[3] == 0 and type(cond[2]) is not int:
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


def _stable(x: Term) -> bool:
    """True if the term names one value on a path (no unknown, call answer or dynamic
    call-data word inside, which all look alike)."""
    return not _contains(x, lambda y: y[0] in ("?", "R", "RD", "D"))


def _loads_slot(cond: Term, slots: frozenset[int]) -> bool:
    """True if ``cond`` loads one of the constant storage ``slots``."""
    return _contains(cond, lambda x: x[0] == "S" and type(x[2]) is int and x[2] in slots)


def _interesting_guard(cond: Term) -> bool:
    return _contains(cond, lambda x: x[0] in ("S", "T", "C", "O") or (
        x[0] in ("R", "RD") and len(x) > 2))
