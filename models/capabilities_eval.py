"""Measure the capability analyzer and write its section of the model card.

Usage (repo root)::

    python models/capabilities_eval.py [--data ../shared/data/contracts/train.jsonl.gz]
        [--write models/README.md]

1. The compiled ground-truth suite (contracts/capabilities/artifacts, every solc version
   and optimizer setting): per-flag precision and recall, and per-compiler totals.
2. The labelled training rows: recall of the matching flags on the hand-annotated
   rug-pull rows (``subcategory`` hidden_mint / leaking_token / limiting_sell), and the
   share of rows of every other category that carry each flag (not a false-positive
   rate: benign 2017-2018 tokens really do have owner mint, pause and fee switches).

Prints the markdown section; with ``--write`` it replaces the text between the
``<!-- capabilities:begin -->`` / ``<!-- capabilities:end -->`` markers of the card
(``models/train.py`` keeps that section when it regenerates the card).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

from edge.scoring.capabilities import ANALYZER_VERSION, FLAG_NAMES, analyze

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "contracts" / "capabilities"
BUDGET_S = 30.0
"""Analysis budget per code here (large: the flags must not depend on the machine's load)."""
BEGIN = "<!-- capabilities:begin -->"
END = "<!-- capabilities:end -->"

MEANING = {
    "is_mintable": ("a function can raise balances / total supply (mint), also by setting its own "
                    "balance, or the supply and a balance, to a call-data value; or a privileged "
                    "function credits any address in a ledger that a withdraw / refund pays out"),
    "owner_change_balance": "a privileged caller can lower or set other holders' balances",
    "transfer_pausable": ("transfers revert on a storage switch a function sets, or on the answer "
                          "of a contract whose address a privileged caller can replace; in a "
                          "contract with no transfer, its withdraw / refund / sell path reverts on "
                          "a switch or stage a privileged caller sets"),
    "is_blacklisted": "transfers revert for addresses in a kept list",
    "is_whitelisted": "transfers go through only for addresses in a kept list",
    "slippage_modifiable": ("the fee rate (or sell / buy price) a token-moving function (also a "
                            "payable fallback that sells tokens) applies to the amount can be "
                            "changed (set, or switched to a constant) by a privileged caller"),
    "anti_whale_modifiable": ("a transfer limit (a stored value, or a stored factor of the "
                              "supply / balance) can be changed or lifted by a privileged caller; "
                              "also a limit on the withdraw / refund of a contract with no transfer"),
    "trading_cooldown": ("transfers revert depending on block time; in a contract with no "
                         "transfer, its withdraw / refund waits for a time a privileged caller "
                         "can move (also a time computed from a duration it sets, and a payout "
                         "credited only on one side of such a time)"),
    "can_take_back_ownership": "ownership can be reclaimed (previous owner, hard-coded address)",
    "hidden_owner": "a hard-coded address holds privileges",
    "is_proxy": "EIP-1967/1822 slots or DELEGATECALL to a stored address",
    "selfdestruct": "SELFDESTRUCT is reachable",
    "external_call": "transfer / transferFrom call another contract (CALL or a view STATICCALL)",
    "owner_can_withdraw": ("(not GoPlus) a privileged function calls out / sends ether or "
                           "self-destructs (the balance goes to the beneficiary), or ether is paid "
                           "out at a rate a privileged caller sets; a check of the caller's own "
                           "deposit is no privilege"),
}

RUG_MATCH = {
    "hidden_mint": ("is_mintable",),
    # slippage_modifiable since cap-3: CRPWarner's own LeakingToken_Fee rule (see PROSE).
    "leaking_token": ("owner_change_balance", "owner_can_withdraw", "slippage_modifiable"),
    "limiting_sell": ("transfer_pausable", "is_blacklisted", "is_whitelisted",
                      "anti_whale_modifiable", "trading_cooldown", "slippage_modifiable"),
}  # fmt: skip
RUG_MATCH_CAP2 = {**RUG_MATCH, "leaking_token": ("owner_change_balance", "owner_can_withdraw")}
"""The mapping up to cap-2 (reported next to the current one)."""


PROSE = """\
Next to the score, every distinct code gets a capability report: what the code lets
someone do, in the field names of GoPlus token security, each flag with its evidence
(selectors with their text signature from a small bundled table, storage slots,
opcodes), a confidence and a sentence such as "owner-only function 0x40c10f19
mint(address,uint256) increases the balances mapping and the total supply (mint)".

**Why our own analyzer.** evmole 0.9.4 (Rust) has selectors, mutability and storage
layout, but no aarch64 wheel on the registry reachable here, its sdist needs Rust crates
that cannot be fetched, and the pure-Python 0.3.8 has selectors and arguments only; nor
does it say who may call what. So the device runs `edge/scoring/capabilities/`, pure
Python (standard library; identical results on x86 and arm64), off the hot path, once per
code, with a time budget per code (a timeout is recorded as the result). evmole 0.9.4 is
an oracle in the tests and the benchmark (x86, test extra): selectors, state mutability
and storage reads/writes per (selector, slot) are compared with it.

**How.** An abstract interpretation of the EVM over basic blocks: constants stay exact
(jump targets, internal-call return addresses), everything else is a small symbolic term
(CALLER, call-data words, SLOAD(key), keccak(key . slot) mapping entries, arithmetic and
comparisons). Each path carries what its branches imply about the caller (CALLER ==
SLOAD(slot): owner-only; a lookup of CALLER in a mapping: role / list; CALLER == a
constant: hard-coded address; CALLVALUE == 0: non-payable). Stores, calls and
self-destructs are recorded with those facts; in transfer / transferFrom every branch
with a refusing side (REVERT, INVALID, or a return that changed nothing) is classified
(boolean switch, boolean list entry, limit against a stored value, time). The flags are
rules over these records and the token layout (the mapping balanceOf reads, the slots
totalSupply and owner read).

**Limits.** Solidity dispatch and storage patterns (Vyper and hand-written code only as
far as the same patterns go); a proxy's implementation is not seen; a flag says the code
*allows* something, not that it was done, and many benign 2017-2018 tokens carry owner
mint, pause and fee switches too (see the category shares below), so no flag alerts by
itself: the score alerts. The rug-pull annotations come from CRPWarner's hand-checked
detections, whose "leaking token" includes owner withdrawals of the contract's own funds
(hence `owner_can_withdraw`, our own flag, next to `owner_change_balance`).

**Since `cap-2`** (ground truth for each in `contracts/capabilities/src/SetMint.sol`,
`Limits.sol` and `Fees.sol`): mapping keys hashed in free memory (`mload(0x40)`, inline
assembly) are resolved; a privileged function that *sets* its own (or a stored
address's) balance, or the total supply together with a balance, to a call-data value is
a mint; ether paid out at a rate that a privileged function sets is `owner_can_withdraw`
(the ethereum.org MyAdvancedToken clones: owner-only `setPrices`, `sell` pays
`amount * sellPrice`, so the owner can sell at any price and drain the ether buyers paid
in); a transfer that reverts on the answer of a contract whose address a privileged
function sets (a hook, validator or controller) is `transfer_pausable`, and view calls in
transfer count as `external_call`; a limit scaled by a stored factor (`amount <= supply
* maxPct / 10000`) is a limit; a privileged write of a constant (`removeLimits()`, a fee
switched to 100 %) changes a limit or fee; only a factor that scales an amount of the
call is a fee rate; transfer / transferFrom get a larger per-block visit budget (their
fee, limit and swap paths call the same helpers from many sites).

**Since `cap-3`** (ground truth in `contracts/capabilities/src/SellPaths.sol`, a
positive and a control for each): a contract with no `transfer` / `transferFrom` (a
sale, game, vault or deposit ledger) has no token to sell, so its *sell paths* stand in
for transfer: a function anyone may call that pays ether out to the caller (not change of
the same call's `msg.value`), or lowers / clears the caller's entry of a mapping and calls
out; in a token, a function that pays ether for the caller's own balance (a buy-back) is
one too. A sell path that loads a slot some privileged function writes is explored a
second time with its refusing branches on such slots recorded, and a switch (also one
packed beside the owner address), a stage (`state == Refunding`), a limit or a time
bound on them that a privileged caller sets (or lowers: `pot -= amount`)
is `transfer_pausable`, `anti_whale_modifiable` or `trading_cooldown`; a privileged
credit to any address's entry of a ledger that a sell path pays out is `is_mintable`. A
lookup of the caller's own deposit (`require(deposits[msg.sender] > 0)`) is no privilege,
for these rules and for `owner_can_withdraw`, which up to cap-2 called such a refund
"role-gated" and counted it (its share of the popular contracts falls from 0.66 to 0.36,
and 3 `leaking_token` rows counted only through that misreading are no longer hits, 2 of
them found again through the owner's self-destruct); a privileged SELFDESTRUCT sends all the ether to the
beneficiary and is `owner_can_withdraw` now; a payable fallback that moves balances (sells
tokens for ether) is a token-moving function like `buy()`, so a price its owner sets is
`slippage_modifiable`.

**Since `cap-4`** (ground truth in `contracts/capabilities/src/Rounds.sol`, a positive
and a fixed-duration control for each): a time one store away from its privileged setter
counts as that caller's. A slot that some function (anyone may call it) sets to a clock
plus a stored duration that a privileged function sets (`roundEnd = block.number +
roundLength`, `unlockAt = now + lockPeriod`; one hop only: the duration's own setter must
be privileged) bounds a sell path like a time the privileged caller sets directly. A sell
path that refuses before such a time, or that credits the ledger it pays out only on one
side of a clock branch on it that refuses nothing (a lottery's withdraw credits the pot to
the last bidder once the round is over, then pays the caller's entry), is
`trading_cooldown`: the owner can push the time out of reach. `block.number` is a clock
term now, read as time by the sell-path rules only: read in transfer too, it would put
`trading_cooldown` on 23 more dapp rows (11 MiniMe clones, whose `parentSnapShotBlock <
block.number` never refuses after the clone's creation block, the others sale-end and
vesting bounds in blocks) and on no rug-pull row, so transfer guards still read
`block.timestamp` alone, a known gap for block-number transfer locks (and a transfer that
reverts on the time is `trading_cooldown` already, whoever sets that time, so one hop
adds nothing there). A sell path's bound on a block number that a privileged caller sets,
`anti_whale_modifiable` up to cap-3, is `trading_cooldown` now (5 rows of the data move
from one flag to the other, 2 more get both). The second exploration of a sell path
remembers which way it took a branch until the next store, so the infeasible side of a
short-circuit `if (pot > 0 && block.number > roundEnd)` (the first operand's value tested
once more) is not explored; a branch it resolves still has its guard recorded, as before.

**Matching flags.** `leaking_token` matches `slippage_modifiable` too since cap-3:
CRPWarner's own rules (`gigahorse/clients/crpwarner.dl` of CRPWarner/RugPull) define
`LeakingToken_Fee` as an owner-only function that writes a non-boolean slot which a
balance-moving function loads into a multiplication (`IsFeeExist`): an owner-settable fee
or price on the amount moved, which is what `slippage_modifiable` says. The recall with
the cap-2 matching flags is given under the table.

**Misses left** (each one read in its bytecode). `hidden_mint` 6 of 69: four contracts
with no token and no privileged credit that anything pays out (the Solidity-docs Ballot,
whose chairperson gives vote weight and nothing is paid; two games / referral schemes
whose privileged functions only register ids or withdraw ether; an investment scheme with
no privileged ledger write), a deposit ledger whose owner moves and pays out depositors'
entries with checked subtractions (`owner_can_withdraw`, no value created), and a pausable
token whose owner-only distribution debits the owner's own balance with a checked
subtraction. `leaking_token` 5 of 56: a governance token (owner mint only), two Hourglass
(PoWH) clones whose administrators set the staking requirement, the ambassador switch and
names (nothing moves others' tokens or the contract's ether), a mintable token whose owner
sets the mint cap, and a game whose only cap-2 hit was a holder's withdrawal of its own
entry read as role-gated (nothing privileged moves funds); with the cap-2 matching flags a
sixth, the sale token whose owner sets the price its fallback sells at. `limiting_sell`
10 of 82, under the 0.90 target (74 rows would be needed). Each was re-read against
CRPWarner's own rule (`LimitingSellOrder` in `gigahorse/clients/crpwarner.dl`: an
owner-guarded, non-ERC public function stores a boolean into a slot or a mapping entry
that a public balance-moving function loads and requires on, balance checks excluded): none
has such a boolean on a transfer or sell path that the analyzer misses (behind an internal
call, packed, in a two-key mapping or in a fallback). Four registries with owner-only
lists, records and a switch (no payout and no transfer: nothing is sold through them; the
restriction, if any, sits in the contract that reads them); a sale whose buyers cannot
sell at all (an admin clears a buyer's entry and delivers the bought tokens; no boolean);
an oracle game that pays a stored player from the oracle callback (the owner sets odds
tables and a bet parameter; no switch on a payout to the caller); and four tokens: the
governance token above (owner mint only; transfer reads balances alone), a token whose
owner-set switch, packed beside the owner address, stops only the purchases of its
fallback sale (CRPWarner's rule counts that fallback because it moves two balances; transfer
and transferFrom never read the switch, so holders can still sell), a token with fixed
fees to hard-coded wallets whose two owner-kept lists only choose between the fee path and
the plain one (no refusing branch, no settable rate), and a token whose owner moves a
holder's tokens into a separate frozen ledger: its transfer checks the balance alone and
keeps no per-holder frozen state to require on, so the freeze only moves balance
(`owner_change_balance`, which is not among the matching flags and is not added to them).
The lottery whose withdraw credits the pot only after a round end computed from an
owner-set round length is found since cap-4.
"""


def _expect() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for src in sorted(SUITE.glob("*/*.sol")):
        for m in re.finditer(r"^// expect (\w+): (.*)$", src.read_text(), re.M):
            v = m.group(2).strip()
            out[m.group(1)] = set() if v == "none" else {x.strip() for x in v.split(",")}
    return out


def suite_table() -> list[str]:
    """Markdown lines: per-flag and per-compiler precision / recall on the suite."""
    expect = _expect()
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    per_file: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    n_codes = 0
    for art in sorted((SUITE / "artifacts").glob("*.json")):
        data = json.loads(art.read_text())
        for name, c in sorted(data["contracts"].items()):
            n_codes += 1
            got = set(analyze(bytes.fromhex(c["deployedBytecode"][2:]), budget_s=30).flag_names)
            want = expect[name]
            row = per_file[art.stem]
            row[3] += 1
            for f in FLAG_NAMES:
                if f in got and f in want:
                    tp[f] += 1
                    row[0] += 1
                elif f in got:
                    fp[f] += 1
                    row[1] += 1
                elif f in want:
                    fn[f] += 1
                    row[2] += 1
    lines = [f"Suite: {n_codes} runtime codes of {len(expect)} contracts over {len(per_file)} "
             "compiler/optimizer settings (the OpenZeppelin ones with solc 0.8.37 only).", ""]
    lines += ["| flag | meaning | positives | precision | recall |", "|---|---|---|---|---|"]
    for f in FLAG_NAMES:
        p = tp[f] / (tp[f] + fp[f]) if tp[f] + fp[f] else float("nan")
        r = tp[f] / (tp[f] + fn[f]) if tp[f] + fn[f] else float("nan")
        lines.append(f"| `{f}` | {MEANING[f]} | {tp[f] + fn[f]} | {p:.3f} | {r:.3f} |")
    lines += ["", "| compiler | codes | flags right | false flags | missed flags |",
              "|---|---|---|---|---|"]
    for k, (a, b, c, n) in sorted(per_file.items()):
        lines.append(f"| {k} | {n} | {a} | {b} | {c} |")
    return lines


def data_tables(path: Path) -> list[str]:
    """Markdown lines: rug-pull recall and per-category flag shares on the labelled rows."""
    hit: Counter[str] = Counter()
    hit2: Counter[str] = Counter()
    tot: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    cats: dict[str, Counter[str]] = defaultdict(Counter)
    ncat: Counter[str] = Counter()
    times: list[float] = []
    timeouts = 0
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            t = time.perf_counter()
            rep = analyze(bytes.fromhex(row["bytecode"][2:]), budget_s=BUDGET_S)
            times.append(time.perf_counter() - t)
            timeouts += rep.status == "timeout"
            got = set(rep.flag_names)
            ncat[row["category"]] += 1
            cats[row["category"]].update(got)
            if row["category"] != "rugpull":
                continue
            for sub in set(row["subcategory"].split("+")) & set(RUG_MATCH):
                tot[sub] += 1
                hit[sub] += bool(got & set(RUG_MATCH[sub]))
                hit2[sub] += bool(got & set(RUG_MATCH_CAP2[sub]))
                alone[sub] += RUG_MATCH[sub][0] in got
    lines = ["| annotation | rows | recall (matching flags) | recall of the first flag alone |",
             "|---|---|---|---|"]
    for sub, flags in RUG_MATCH.items():
        lines.append(f"| `{sub}` | {tot[sub]} | {hit[sub] / tot[sub]:.3f} "
                     f"({', '.join(flags)}) | {alone[sub] / tot[sub]:.3f} (`{flags[0]}`) |")
    for sub in RUG_MATCH:
        if RUG_MATCH[sub] != RUG_MATCH_CAP2[sub]:
            lines += ["", f"With the cap-2 matching flags of `{sub}` ("
                      f"{', '.join(RUG_MATCH_CAP2[sub])}): {hit2[sub]}/{tot[sub]} = "
                      f"{hit2[sub] / tot[sub]:.3f}."]
    order = sorted(ncat)
    lines += ["", "Share of the labelled rows of each category carrying each flag:", "",
              "| flag | " + " | ".join(f"{c} ({ncat[c]})" for c in order) + " |",
              "|---|" + "---|" * len(order)]
    for f in FLAG_NAMES:
        lines.append(f"| `{f}` | " + " | ".join(f"{cats[c][f] / ncat[c]:.2f}" for c in order) + " |")
    times.sort()
    lines += ["", f"Analysis time on these {len(times)} rows ({platform.machine()}, one process, "
              f"shared 2-core VM): p50 {times[len(times) // 2] * 1e3:.1f} ms, p99 "
              f"{times[int(0.99 * len(times))] * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms; "
              f"{sum(x > 2.0 for x in times)} row(s) over 2 s, {sum(x > 5.0 for x in times)} over "
              f"the agent's default budget of 5 s ({timeouts} timeout(s) at the {BUDGET_S:.0f} s "
              "used here, so the flags above do not depend on the machine's load). "
              "Against the previous analyzer in one run: `benchmarks/capabilities_speed.py "
              "--peer-rev REV` (figures in the README)."]
    return lines


def main() -> None:
    """Measure and print (or write) the card section."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path,
                    default=REPO.parent / "shared/data/contracts/train.jsonl.gz")
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    body = [BEGIN, PROSE, f"Measured with `python models/capabilities_eval.py --write models/README.md` "
            f"(analyzer `{ANALYZER_VERSION}`).", "", *suite_table(), ""]
    if args.data.exists():
        body += data_tables(args.data)
    body.append(END)
    text = "\n".join(body)
    if args.write is None:
        print(text)
        return
    card = args.write.read_text()
    if BEGIN in card and END in card:
        card = card[: card.index(BEGIN)] + text + card[card.index(END) + len(END):]
    else:
        card = card.rstrip("\n") + "\n\n## Capability report\n\n" + text + "\n"
    args.write.write_text(card)
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
