"""Capability analysis: the rules that turn the interpreter's records into flags with their evidence.

Part of :mod:`edge.scoring.capabilities` (see its docstring for the method and its limits).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge.scoring.selector_names import signature_of

from .guards import _classify, _const_write, _scaled_slots, _sloads, _writes_bits
from .interpreter import _Analyzer, _checked_sub, _Func, _Store
from .records import (
    _PROXY_SLOTS,
    _SEL_APPROVE,
    _SEL_BALANCE_OF,
    _SEL_GET_OWNER,
    _SEL_OWNER,
    _SEL_TOTAL_SUPPLY,
    _TRANSFERS,
    Flag,
)
from .terms import (
    CALLER,
    CALLVALUE,
    ORIGIN,
    Term,
    _contains,
    _const_loads,
    _is_calldata,
    _is_time,
    _mapping_base,
    _mapping_key,
    _slot_text,
    _storage_slot_of,
)


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

    def _privileged_setters(self, slot_txt: str) -> list[tuple[_Func, _Store]]:
        """The privileged functions that set ``slot_txt`` from the call data or to a constant
        (:meth:`_gated_writer` with ``calldata_value``, keeping privileged gates only)."""
        return [x for x in self._gated_writer(slot_txt, True) if _privileged(x[1].gates)]

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
                    w = self._privileged_setters(hex(k[1]))
                    if w:
                        wf, ws = w[0]
                        self.add("anti_whale_modifiable", 0.8, [sel, wf.selector], [hex(k[1])],
                                 ["JUMPI", "SSTORE"],
                                 f"{_fn_text(sel)} reverts above the limit in slot {hex(k[1])}, "
                                 f"which {_who(ws.gates)} {_fn_text(wf.selector)} can change")
                elif k[0] == "ext" and k[1] not in _PROXY_SLOTS:
                    w = self._privileged_setters(hex(k[1]))
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
                w = self._privileged_setters(hex(s))
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
            if type(v) is int or (_is_calldata(v) and not _contains(v, own)) or v[0] == "-" and type(v[2]) is not int and own(v[2]) and _is_calldata(v[3]):
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

    def clock_hops(self) -> dict[int, tuple[_Func, int, _Func, _Store]]:
        """Times one store away from a privileged setter: slot -> (the function that
        stores a time computed from a clock and a stored duration into it, the
        duration's slot, the privileged setter of that duration and its store), as in
        ``roundEnd = block.number + roundLength`` with ``roundLength`` owner-set. One
        hop only: the duration must have a privileged setter itself (:meth:`_setters`)."""
        out: dict[int, tuple[_Func, int, _Func, _Store]] = {}
        skip = self.owner_slots | self.supply_slots
        for txt, ws in sorted(self.writers.items()):
            if not txt.startswith("0x"):
                continue
            slot = int(txt, 16)
            for wf, w in ws:
                if slot in out or not _contains(w.value, _is_time):
                    continue
                for dur in sorted(_const_loads(w.value) - {slot} - skip):
                    setters = self._setters(dur)
                    if setters:
                        out[slot] = (wf, dur, *setters[0])
                        break
        return out

    def _hop_text(self, slot: int, hop: tuple[_Func, int, _Func, _Store]) -> str:
        wf, dur, sf, sw = hop
        return (f"the time in slot {hex(slot)}, which {_fn_text(wf.selector)} computes from the "
                f"duration in slot {hex(dur)}, which {_who(sw.gates)} {_fn_text(sf.selector)} "
                f"can change")

    def _sell_paths(self) -> None:
        if self.an is None:
            return
        paths = self.sell_paths()
        hops = self.clock_hops() if paths else {}
        for sel, (what, ledgers) in paths.items():
            # Every rule below needs a slot that the path loads and a privileged caller
            # writes (or a time computed from a duration one sets): without one, the
            # second exploration can find nothing.
            slots = frozenset(k for k in self.funcs[sel].loads if type(k) is int and (any(
                self._priv(w.gates) for _, w in self.writers.get(hex(k), [])) or k in hops))
            if not slots:
                continue
            head = f"{_fn_text(sel)} {what}"
            probe = self.an.guards_of(sel, slots)
            self._clock_credit(sel, head, ledgers, probe.stores, hops)
            for g in probe.guards:
                kinds: list[tuple[Any, ...]] = []
                _classify(g.cond, g.pol, kinds)
                timed = any(k[0] in ("time", "blocks") for k in kinds)
                clock = "TIMESTAMP" if any(k[0] == "time" for k in kinds) else "NUMBER"
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
                        if not w and timed and k[1] in hops:  # a time lock one store away
                            hop = hops[k[1]]
                            self.add("trading_cooldown", 0.6, [sel, hop[0].selector, hop[2].selector],
                                     [hex(k[1]), hex(hop[1])], [clock, "JUMPI", "SSTORE"],
                                     f"{head} and reverts depending on {self._hop_text(k[1], hop)}")
                        if not w:
                            continue
                        wf, ws = w[0]
                        if timed:  # a time lock the privileged caller can move
                            self.add("trading_cooldown", 0.7, [sel, wf.selector], [hex(k[1])],
                                     [clock, "JUMPI", "SSTORE"],
                                     f"{head} and reverts depending on the time in slot "
                                     f"{hex(k[1])}, which {_who(ws.gates)} {_fn_text(wf.selector)} "
                                     f"can move")
                        else:
                            self.add("anti_whale_modifiable", 0.7, [sel, wf.selector], [hex(k[1])],
                                     ["JUMPI", "SSTORE"],
                                     f"{head} and reverts past the limit in slot {hex(k[1])}, "
                                     f"which {_who(ws.gates)} {_fn_text(wf.selector)} can change")
        self._ledger_mint(paths)

    def _clock_credit(self, sel: int, head: str, ledgers: set[int], stores: list[_Store],
                      hops: dict[int, tuple[_Func, int, _Func, _Store]]) -> None:
        """A sell path that credits the ledger it pays out only on one side of a clock
        branch that refuses nothing (``if (block.number > roundEnd) pending[winner] +=
        pot``), on a time a privileged caller can move (directly, or through the
        duration it is computed from), pays out when that caller lets it."""
        for base in sorted(ledgers):
            credits = [w for w in stores if _mapping_base(w.key) == base and _top(w.value) == "+"]
            if not credits:
                continue
            sides = set.intersection(*({(g[1], g[2]) for g in w.gates if g[0] == "tb"}
                                       for w in credits))
            for slot, _side in sorted(sides):
                direct = self._setters(slot)
                if direct:
                    wf, ws = direct[0]
                    sels = [sel, wf.selector]
                    where = (f"the time in slot {hex(slot)}, which {_who(ws.gates)} "
                             f"{_fn_text(wf.selector)} can move")
                    slots = [hex(slot)]
                elif slot in hops:
                    hop = hops[slot]
                    sels = [sel, hop[0].selector, hop[2].selector]
                    where = self._hop_text(slot, hop)
                    slots = [hex(slot), hex(hop[1])]
                else:
                    continue
                self.add("trading_cooldown", 0.6, sels, slots + [f"m:{hex(base)}"],
                         ["JUMPI", "SSTORE"],
                         f"{head}, but credits the ledger at slot {hex(base)} it pays out only "
                         f"depending on {where}")
                return

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
