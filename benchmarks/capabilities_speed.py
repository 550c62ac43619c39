"""Capability analysis speed and the evmole oracle comparison on the shared corpus (not a test).

Usage (repo root)::

    python benchmarks/capabilities_speed.py [--corpus FILE] [--rows N] [--budget S]
        [--evmole-rows M] [--peer-rev REV] [--json]

Analyses the distinct runtime codes of the first N corpus rows (deduplicated by the
bytes, as the agent analyses once per code hash) with :func:`edge.scoring.capabilities.analyze`
in this one process and prints: distinct codes/s, p50 / p99 / max ms per code, timeouts
at the budget, flag counts. On x86 with evmole 0.9.4 installed (test extra) it also runs
evmole on the first M of those codes, as the peer in the same run: its time per code with
and without storage analysis, and the agreement of selectors, state mutability and
storage writes/reads per (selector, slot) pair between the two analyzers. With
``--peer-rev REV`` (a git revision, e.g. the last commit of an older analyzer version) the
analyzer of that revision runs on the same codes in the same process, interleaved code by
code (the order alternates), and both are reported from the summed per-code times.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.scoring.capabilities import FLAG_NAMES, CapabilityReport, analyze
from edge.scoring.corpus_reader import iter_codes

REPO = Path(__file__).resolve().parents[1]


def _pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def _load_peer(rev: str) -> tuple[Callable[..., CapabilityReport], str]:
    """``analyze`` and ``ANALYZER_VERSION`` of the analyzer at git ``rev``, loaded as its own
    module (``edge_capabilities_peer``; the rest of ``edge`` comes from this tree): the
    single file edge/scoring/capabilities.py of older revisions, or the package
    edge/scoring/capabilities/ (relative imports inside) of newer ones."""
    name = "edge_capabilities_peer"
    ls = subprocess.run(["git", "ls-tree", "--name-only", rev, "edge/scoring/capabilities/"],
                        cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    if ls:  # the package
        tmp = Path(tempfile.mkdtemp(prefix="cap-peer-"))
        atexit.register(shutil.rmtree, tmp, True)
        pkg = tmp / name
        pkg.mkdir()
        for path in ls:
            text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO,
                                  capture_output=True, text=True, check=True).stdout
            (pkg / Path(path).name).write_text(text)
        sys.path.insert(0, str(tmp))
        for m in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[m]
        mod = importlib.import_module(name)
        return mod.analyze, str(mod.ANALYZER_VERSION)
    src = subprocess.run(["git", "show", f"{rev}:edge/scoring/capabilities.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    single = types.ModuleType(name)
    sys.modules[name] = single  # dataclasses resolve their annotations through sys.modules
    exec(compile(src, f"{rev}:edge/scoring/capabilities.py", "exec"), single.__dict__)
    return single.analyze, str(single.ANALYZER_VERSION)


def _speed(codes: int, times: list[float]) -> dict[str, Any]:
    return {"codes_per_s": round(codes / sum(times), 1), "ms_p50": round(_pct(times, 0.50) * 1e3, 2),
            "ms_p99": round(_pct(times, 0.99) * 1e3, 2), "ms_max": round(max(times) * 1e3, 2)}


def _slot_base(t: str) -> int | None:
    if t.startswith("a:"):
        return None
    v = int(t[2:], 16) if t.startswith("m:") else int(t, 16)
    return v if v < 1 << 64 else None


def _oracle(codes: list[bytes], reports: list[CapabilityReport]) -> dict[str, Any]:
    import evmole  # x86 only (test extra)

    t = time.perf_counter()
    for c in codes:
        evmole.contract_info(c, selectors=True)
    sel_s = (time.perf_counter() - t) / len(codes)
    t = time.perf_counter()
    infos = [
        evmole.contract_info(c, selectors=True, state_mutability=True, storage=True)
        for c in codes
    ]
    full_s = (time.perf_counter() - t) / len(codes)
    sel_eq = 0
    mut: Counter[str] = Counter()
    acc = {"w": [0, 0, 0], "r": [0, 0, 0]}  # both, evmole only, ours only
    for info, rep in zip(infos, reports, strict=True):
        theirs = {int(f.selector, 16) for f in info.functions or ()}
        sel_eq += theirs == set(rep.selectors)
        em = {int(f.selector, 16): f.state_mutability for f in info.functions or ()}
        for fi in rep.functions:
            if fi.selector in em:
                mut["agree" if em[fi.selector] == fi.state_mutability else
                    f"evmole {em[fi.selector]} / ours {fi.state_mutability}"] += 1
        for kind in ("w", "r"):
            e = {
                (int(s, 16), int(rec.slot, 16))
                for rec in info.storage or ()
                for s in (rec.writes if kind == "w" else rec.reads)
                if int(rec.slot, 16) < 1 << 64
            }
            o = {
                (f.selector, b)
                for f in rep.functions
                for t in (f.writes if kind == "w" else f.reads)
                if (b := _slot_base(t)) is not None
            }
            acc[kind][0] += len(e & o)
            acc[kind][1] += len(e - o)
            acc[kind][2] += len(o - e)
    n_fn = sum(mut.values())
    return {
        "codes": len(codes),
        "evmole_selectors_ms": round(sel_s * 1e3, 3),
        "evmole_full_ms": round(full_s * 1e3, 3),
        "selector_sets_equal": sel_eq,
        "mutability_agreement": round(mut["agree"] / n_fn, 4) if n_fn else None,
        "mutability_disagreements": dict(mut.most_common(6)[1:] if mut["agree"] else mut),
        "storage_writes": dict(zip(("both", "evmole_only", "ours_only"), acc["w"], strict=True)),
        "storage_reads": dict(zip(("both", "evmole_only", "ours_only"), acc["r"], strict=True)),
    }


def main() -> None:
    """Run the measurement and print it (text, or one JSON object with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path,
                    default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per code")
    ap.add_argument("--evmole-rows", type=int, default=300)
    ap.add_argument("--peer-rev", default=None,
                    help="git revision whose analyzer runs on the same codes, interleaved")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    peer = _load_peer(args.peer_rev) if args.peer_rev else None

    seen: set[bytes] = set()
    codes: list[bytes] = []
    for r in iter_codes(args.corpus, limit=args.rows):
        if r.code is not None and r.code not in seen:
            seen.add(r.code)
            codes.append(r.code)
    times: list[float] = []
    reports: list[CapabilityReport] = []
    peer_times: list[float] = []
    peer_reports: list[CapabilityReport] = []

    def run_ours(c: bytes) -> None:
        t = time.perf_counter()
        reports.append(analyze(c, budget_s=args.budget))
        times.append(time.perf_counter() - t)

    def run_peer(c: bytes) -> None:
        assert peer is not None
        t = time.perf_counter()
        peer_reports.append(peer[0](c, budget_s=args.budget))
        peer_times.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    for i, c in enumerate(codes):
        if peer is None:
            run_ours(c)
        elif i % 2 == 0:
            run_ours(c)
            run_peer(c)
        else:
            run_peer(c)
            run_ours(c)
    wall = time.perf_counter() - t0 if peer is None else sum(times)
    flags = Counter(f for rep in reports for f in rep.flag_names)
    out: dict[str, Any] = {
        "machine": platform.machine(),
        "corpus": args.corpus.name,
        "distinct_codes": len(codes),
        "codes_per_s": round(len(codes) / wall, 1),
        "ms_p50": round(_pct(times, 0.50) * 1e3, 2),
        "ms_p99": round(_pct(times, 0.99) * 1e3, 2),
        "ms_max": round(max(times) * 1e3, 2),
        "budget_s": args.budget,
        "timeouts": sum(rep.status == "timeout" for rep in reports),
        "flag_share": {f: round(flags[f] / len(codes), 4) for f in FLAG_NAMES},
    }
    if peer is not None:
        pflags = Counter(f for rep in peer_reports for f in rep.flag_names)
        out["peer"] = {
            "rev": args.peer_rev, "analyzer": peer[1], **_speed(len(codes), peer_times),
            "timeouts": sum(rep.status == "timeout" for rep in peer_reports),
            "flag_share": {f: round(pflags[f] / len(codes), 4) for f in FLAG_NAMES},
        }
        out["ours_over_peer_time"] = round(sum(times) / sum(peer_times), 3)
    try:
        m = min(args.evmole_rows, len(codes))
        out["evmole"] = _oracle(codes[:m], reports[:m]) if m else None
        if m:
            ours = sum(times[:m]) / m
            out["evmole"]["ours_ms"] = round(ours * 1e3, 3)
            out["evmole"]["ours_over_evmole_full"] = round(ours / (out["evmole"]["evmole_full_ms"] / 1e3), 2)
    except ImportError:
        out["evmole"] = "not installed (x86 test extra only)"
    if args.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
