"""The capability analyzer (edge.scoring.capabilities) against ground truth.

* The compiled suite under contracts/capabilities/ (every solc version, optimizer off and
  on): per-flag precision and recall >= 0.95, and the OpenZeppelin presets.
* evmole 0.9.4 (x86 only, test extra) as an oracle for selectors, state mutability and
  storage reads/writes on the same suite.
* The annotated rug-pull rows of ../shared/data/contracts/train.jsonl.gz: a regression
  floor on the recall of the matching flags (the measured figures are in the model card).
* Records, JSON form, budgets and bad input.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import BytecodeError
from edge.scoring import capabilities as cap

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "contracts" / "capabilities"
TRAIN = REPO.parent / "shared" / "data" / "contracts" / "train.jsonl.gz"

_SEL_MINT = 0x40C10F19


def _expectations() -> dict[str, frozenset[str]]:
    """``// expect Name: flag, flag`` lines of every suite source."""
    out: dict[str, frozenset[str]] = {}
    for src in sorted(SUITE.glob("*/*.sol")):
        for m in re.finditer(r"^// expect (\w+): (.*)$", src.read_text(), re.M):
            flags = m.group(2).strip()
            out[m.group(1)] = frozenset() if flags == "none" else frozenset(
                f.strip() for f in flags.split(",")
            )
    return out


@lru_cache(maxsize=1)
def _suite() -> tuple[tuple[str, str, bytes, frozenset[str]], ...]:
    """(artifact file, contract, runtime code, expected flags) for every compiled code."""
    expect = _expectations()
    rows = []
    for art in sorted((SUITE / "artifacts").glob("*.json")):
        data = json.loads(art.read_text())
        for name, c in sorted(data["contracts"].items()):
            code = bytes.fromhex(c["deployedBytecode"][2:])
            rows.append((art.stem, name, code, expect[name]))
    return tuple(rows)


@lru_cache(maxsize=1)
def _suite_reports() -> tuple[cap.CapabilityReport, ...]:
    return tuple(cap.analyze(code, budget_s=30.0) for _, _, code, _ in _suite())


def test_suite_covers_versions_optimizer_and_every_flag() -> None:
    rows = _suite()
    files = {r[0] for r in rows}
    for v in ("0.4.26", "0.5.17", "0.6.12", "0.7.6", "0.8.37"):
        assert {f"solc-{v}-opt", f"solc-{v}-noopt"} <= files
    expected = set().union(*(r[3] for r in rows))
    assert expected == set(cap.FLAG_NAMES), "every flag needs a positive contract"
    assert sum(1 for r in rows if not r[3]) >= 20, "negative controls"
    assert set(_expectations()) == {r[1] for r in rows if r[0] == "solc-0.8.37-opt"}


def test_suite_per_flag_precision_and_recall() -> None:
    tp = dict.fromkeys(cap.FLAG_NAMES, 0)
    fp = dict.fromkeys(cap.FLAG_NAMES, 0)
    fn = dict.fromkeys(cap.FLAG_NAMES, 0)
    wrong = []
    for (art, name, _, want), rep in zip(_suite(), _suite_reports(), strict=True):
        assert rep.status == "ok", (art, name, rep.status)
        got = set(rep.flag_names)
        for f in cap.FLAG_NAMES:
            if f in got and f in want:
                tp[f] += 1
            elif f in got:
                fp[f] += 1
                wrong.append(f"{art} {name}: unexpected {f}")
            elif f in want:
                fn[f] += 1
                wrong.append(f"{art} {name}: missed {f}")
    for f in cap.FLAG_NAMES:
        precision = tp[f] / (tp[f] + fp[f]) if tp[f] + fp[f] else 0.0
        recall = tp[f] / (tp[f] + fn[f]) if tp[f] + fn[f] else 0.0
        assert precision >= 0.95 and recall >= 0.95, (f, precision, recall, wrong)


@pytest.mark.parametrize("opt", ["opt", "noopt"])
def test_openzeppelin_presets(opt: str) -> None:
    by_name = {
        name: rep
        for (art, name, _, _), rep in zip(_suite(), _suite_reports(), strict=True)
        if art == f"solc-0.8.37-{opt}"
    }
    restrictive = {"is_mintable", "transfer_pausable", "is_blacklisted"}
    assert not restrictive & set(by_name["OzPlainToken"].flag_names)  # OZ 5 ERC20
    assert not restrictive & set(by_name["OzBurnableToken"].flag_names)
    minter_pauser = set(by_name["ERC20PresetMinterPauser"].flag_names)  # OZ 4.9 preset
    assert {"is_mintable", "transfer_pausable"} <= minter_pauser
    fixed = set(by_name["ERC20PresetFixedSupply"].flag_names)
    assert not {"is_mintable", "transfer_pausable"} & fixed
    mint = by_name["ERC20PresetMinterPauser"].flag("is_mintable")
    assert mint is not None and _SEL_MINT in mint.selectors
    assert "role-gated" in mint.reason and "mint(address,uint256)" in mint.reason


def test_report_records_and_json() -> None:
    rows = _suite()
    i = next(k for k, r in enumerate(rows) if r[:2] == ("solc-0.8.37-opt", "OwnerMintToken"))
    rep = cap.analyze(rows[i][2], code_hash="0x" + "ab" * 32)
    assert rep.code_hash == "0x" + "ab" * 32 and rep.analyzer == cap.ANALYZER_VERSION
    assert rep.flag_names == ("is_mintable",)
    flag = rep.flag("is_mintable")
    assert flag is not None and 0.0 < flag.confidence <= 1.0
    assert flag.reason.startswith("owner-only function 0x40c10f19 mint(address,uint256)")
    mint = next(f for f in rep.functions if f.selector == _SEL_MINT)
    assert mint.state_mutability == "nonpayable" and mint.complete
    assert any(g.startswith("owner:") for g in mint.gates)
    assert any(w.startswith("m:") for w in mint.writes) and mint.blocks
    js = json.loads(json.dumps(rep.to_json(functions=True)))
    assert js["capabilities"] == ["is_mintable"] and js["status"] == "ok"
    ev = js["evidence"][0]
    assert ev["selectors"] == ["0x40c10f19"] and ev["signatures"] == ["mint(address,uint256)"]
    assert ev["slots"] and ev["opcodes"] == ["SSTORE"]
    assert {f["selector"] for f in js["functions"]} >= {"0x40c10f19", "0xa9059cbb"}
    assert rep.selectors == tuple(sorted(rep.selectors))


def test_timeout_is_a_result_and_bad_input_is_named() -> None:
    code = _suite()[0][2]
    rep = cap.analyze(code, budget_s=1e-9)
    assert rep.status == "timeout" and rep.flags == () and rep.to_json()["capabilities"] == []
    assert cap.analyze(b"").status == "empty"
    with pytest.raises(BytecodeError, match="raw code bytes"):
        cap.analyze("0x6080")  # type: ignore[arg-type]
    with pytest.raises(BytecodeError, match="budget_s"):
        cap.analyze(code, budget_s=0)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(code: bytes) -> None:
    rep = cap.analyze(code, budget_s=5.0)
    assert rep.status in ("ok", "empty", "timeout")
    assert set(rep.flag_names) <= set(cap.FLAG_NAMES)


def test_evmole_oracle_selectors_mutability_storage() -> None:
    evmole = pytest.importorskip("evmole")  # x86 test extra; no aarch64 wheel
    sel_equal = 0
    mut_agree = mut_total = 0
    both_w = only_e_w = only_m_w = 0
    both_r = only_e_r = only_m_r = 0
    rows = [r for r in _suite() if r[0].endswith("-opt") or r[0].startswith("solc-0.8")]
    reps = {(r[0], r[1]): rep for r, rep in zip(_suite(), _suite_reports(), strict=True)}
    for art, name, code, _ in rows:
        rep = reps[(art, name)]
        info = evmole.contract_info(code, selectors=True, state_mutability=True, storage=True)
        ours = set(rep.selectors)
        theirs = {int(f.selector, 16) for f in info.functions}
        sel_equal += ours == theirs
        em = {int(f.selector, 16): f.state_mutability for f in info.functions}
        for fi in rep.functions:
            if fi.selector in em:
                mut_total += 1
                mut_agree += em[fi.selector] == fi.state_mutability
        ew, er = _evmole_storage(info)
        mw, mr = _our_storage(rep)
        both_w += len(ew & mw)
        only_e_w += len(ew - mw)
        only_m_w += len(mw - ew)
        both_r += len(er & mr)
        only_e_r += len(er - mr)
        only_m_r += len(mr - er)
    assert sel_equal == len(rows)
    assert mut_agree / mut_total >= 0.98, (mut_agree, mut_total)
    assert both_w / (both_w + only_e_w) >= 0.95 and both_w / (both_w + only_m_w) >= 0.95
    assert both_r / (both_r + only_e_r) >= 0.95 and both_r / (both_r + only_m_r) >= 0.95


def _evmole_storage(info: object) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    w: set[tuple[int, int]] = set()
    r: set[tuple[int, int]] = set()
    for rec in info.storage:  # type: ignore[attr-defined]
        slot = int(rec.slot, 16)
        if slot >= 1 << 64:  # hashed slots (EIP-1967 ...) are compared as flags elsewhere
            continue
        w |= {(int(s, 16), slot) for s in rec.writes}
        r |= {(int(s, 16), slot) for s in rec.reads}
    return w, r


def _our_storage(rep: cap.CapabilityReport) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    def base(t: str) -> int | None:
        if t.startswith("a:"):
            return None
        v = int(t[2:], 16) if t.startswith("m:") else int(t, 16)
        return v if v < 1 << 64 else None

    w = {(f.selector, b) for f in rep.functions for t in f.writes if (b := base(t)) is not None}
    r = {(f.selector, b) for f in rep.functions for t in f.reads if (b := base(t)) is not None}
    return w, r


_RUG_MATCH = {
    "hidden_mint": {"is_mintable"},
    # slippage_modifiable since cap-3: CRPWarner's LeakingToken_Fee rule (models/README.md).
    "leaking_token": {"owner_change_balance", "owner_can_withdraw", "slippage_modifiable"},
    "limiting_sell": {
        "transfer_pausable", "is_blacklisted", "is_whitelisted", "anti_whale_modifiable",
        "trading_cooldown", "slippage_modifiable",
    },
}  # fmt: skip
_LEAKING_CAP2 = {"owner_change_balance", "owner_can_withdraw"}
"""leaking_token's matching flags up to cap-2 (its recall is reported too)."""
# Regression floors just under the measured figures (models/README.md); limiting_sell is
# under the 0.90 target (the misses left are listed in the card).
_RUG_FLOOR = {"hidden_mint": 0.91, "leaking_token": 0.91, "limiting_sell": 0.86}
_LEAKING_CAP2_FLOOR = 0.89


def _rug_rows() -> Iterator[dict[str, str]]:
    with gzip.open(TRAIN, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if row["category"] == "rugpull":
                yield row


@pytest.mark.skipif(not TRAIN.exists(), reason="shared data not present")
def test_rugpull_annotations_recall_floor() -> None:
    hit = dict.fromkeys(_RUG_MATCH, 0)
    total = dict.fromkeys(_RUG_MATCH, 0)
    leaking_cap2 = 0
    for row in _rug_rows():
        subs = set(row["subcategory"].split("+")) & set(_RUG_MATCH)
        if not subs:
            continue
        rep = cap.analyze(bytes.fromhex(row["bytecode"][2:]), budget_s=30.0)  # not a timing test
        assert rep.status == "ok"
        for s in subs:
            total[s] += 1
            hit[s] += bool(set(rep.flag_names) & _RUG_MATCH[s])
        leaking_cap2 += "leaking_token" in subs and bool(set(rep.flag_names) & _LEAKING_CAP2)
    for s, floor in _RUG_FLOOR.items():
        assert total[s] >= 50 and hit[s] / total[s] >= floor, (s, hit[s], total[s])
    assert leaking_cap2 / total["leaking_token"] >= _LEAKING_CAP2_FLOOR, leaking_cap2


_DIGEST = """
import hashlib, json, sys
from pathlib import Path
from edge.scoring.capabilities import analyze
art = json.loads(Path(sys.argv[1]).read_text())
h = hashlib.sha256()
for name, c in sorted(art["contracts"].items()):
    js = analyze(bytes.fromhex(c["deployedBytecode"][2:]), budget_s=60).to_json(functions=True)
    js.pop("elapsed_ms")
    h.update(json.dumps([name, js], sort_keys=True).encode())
print(h.hexdigest())
"""


def test_reports_do_not_depend_on_the_hash_seed() -> None:
    """Same bytes, same report (string hashing is randomised per process; x86 == arm64
    rests on the analysis being plain integer arithmetic and ordered iteration)."""
    import os
    import subprocess
    import sys

    art = SUITE / "artifacts" / "solc-0.8.37-opt.json"
    digests = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _DIGEST, str(art)], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1 and len(next(iter(digests))) == 64
