"""``edge bench`` and ``edge score`` through the CLI on a small corpus slice (no timing asserts)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "contracts"
KEYS = {"contracts", "seconds", "workers", "contracts_per_s", "rss_peak_mb", "watts", "watts_source",
        "contracts_per_s_per_w", "stage_us", "latency_us_p50", "latency_us_p99", "contracts_per_s_per_worker"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 unlabelled rows plus one row with bad hex, as a jsonl.gz file."""
    src = DATA / "unlabeled_train.jsonl.gz"
    if not src.exists():
        pytest.skip(f"shared data folder {DATA} is absent")
    out = tmp_path_factory.mktemp("corpus") / "slice.jsonl.gz"
    with gzip.open(src, "rt") as fi, gzip.open(out, "wt") as fo:
        for i, line in enumerate(fi):
            if i == 300:
                break
            fo.write(line)
        fo.write(json.dumps({"bytecode": "0x60zz", "bytecode_keccak": None}) + "\n")
    return out


def _edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=240,
                          cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _last_json(out: str) -> dict[str, object]:
    obj = json.loads(out.strip().splitlines()[-1])
    assert isinstance(obj, dict)
    return obj


def test_bench_json_figures_are_sane(corpus: Path) -> None:
    r = _edge("bench", "--corpus", str(corpus), "--json", "--batch", "64", "--analysis-codes", "40")
    assert r.returncode == 0, r.stderr
    res = _last_json(r.stdout)
    assert KEYS <= set(res)
    a = res["analysis"]  # measured apart from the hot path, in the worker process
    assert isinstance(a, dict) and a["codes"] == 40 and a["codes_per_s"] > 0 and a["budget_s"] == 5.0
    assert 0 < a["ms_p50"] <= a["ms_p99"] <= a["ms_max"] and a["roundtrip_ms_p99"] > 0
    assert sum(a["flags"].values()) > 0 and 0 <= a["timeouts"] <= 40
    assert "codes/s" in r.stdout and "capabilities 40 distinct codes" in r.stdout
    assert res["contracts"] == 300 and res["bad_rows"] == 1 and res["workers"] == 1
    assert isinstance(res["seconds"], float) and res["seconds"] > 0
    cps = res["contracts_per_s"]
    assert isinstance(cps, float) and cps > 0
    assert abs(cps * res["seconds"] - 300) <= cps * 0.0005 + 1  # seconds is rounded to 1 ms
    assert 10 < res["rss_peak_mb"] < 1000  # type: ignore[operator]
    stage = res["stage_us"]
    assert isinstance(stage, dict) and set(stage) == {"read", "featurize", "score", "explain", "buffer"}
    assert all(v > 0 for v in stage.values())
    assert 0 < res["latency_us_p50"] <= res["latency_us_p99"]  # type: ignore[operator]
    if res["watts"] is None:  # this VM: no PMIC, no powercap
        assert res["watts_source"] == "unknown" and res["contracts_per_s_per_w"] is None
    else:
        assert res["watts"] > 0  # type: ignore[operator]
    assert "contracts/s" in r.stdout and "[" in r.stderr  # report and progress bar


def test_bench_with_a_meter_and_two_workers(corpus: Path) -> None:
    r = _edge("bench", "--corpus", str(corpus), "--json", "--workers", "2", "--watts", "5",
              "--batch", "32", "--no-progress", "--with-code", "--analysis-codes", "0")
    assert r.returncode == 0, r.stderr
    res = _last_json(r.stdout)
    assert res["analysis"] is None and "capabilities not measured" in r.stdout
    assert res["contracts"] == 300 and res["workers"] == 2
    assert res["watts"] == 5.0 and res["watts_source"] == "meter"
    assert res["contracts_per_s_per_w"] == pytest.approx(res["contracts_per_s"] / 5.0, rel=0.01)  # type: ignore[operator]
    assert len(res["contracts_per_s_per_worker"]) == 2  # type: ignore[arg-type]
    assert res["buffered"] == "codes+scores"


def test_bench_rejects_bad_arguments(tmp_path: Path) -> None:
    r = _edge("bench", "--corpus", str(tmp_path / "missing.jsonl.gz"))
    assert r.returncode == 2 and "corpus not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_score_writes_one_line_per_row(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    r = _edge("score", "--corpus", str(corpus), "--out", str(out))
    assert r.returncode == 1, r.stderr  # one unusable row
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    with gzip.open(corpus, "rt") as fh:
        rows = [json.loads(x) for x in fh]
    assert len(lines) == len(rows) == 301
    for src, got in zip(rows[:300], lines[:300]):
        assert got["bytecode_keccak"] == src["bytecode_keccak"]
        assert 0.0 <= got["score"] <= 1.0 and isinstance(got["flagged"], bool)
        assert got["capability_status"] in ("ok", "timeout", "empty")
        assert [e["name"] for e in got["capability_evidence"]] == got["capabilities"]
        assert all(e["reason"] for e in got["capability_evidence"])
    flags = {f for got in lines[:300] for f in got["capabilities"]}
    assert {"is_mintable", "owner_can_withdraw"} <= flags  # the slice holds such tokens and vaults
    minted = next(e for got in lines[:300] for e in got["capability_evidence"] if e["name"] == "is_mintable")
    assert minted["selectors"] and minted["selectors"][0].startswith("0x")
    assert lines[300]["score"] is None and "not hex" in lines[300]["error"]
    assert "capabilities" not in lines[300]
    assert "301 rows scored" in r.stderr and "1 unusable" in r.stderr


def test_bench_and_score_paths_do_not_import_web3(corpus: Path, tmp_path: Path) -> None:
    code = (
        "import sys, io\n"
        "from pathlib import Path\n"
        "from edge.appliance.bench import run_bench\n"
        "from edge.cli.score import score_corpus\n"
        f"run_bench(Path({str(corpus)!r}), progress=False, limit=50)\n"
        f"score_corpus(Path({str(corpus)!r}), io.StringIO(), limit=50)\n"
        "assert 'web3' not in sys.modules, 'web3 imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr


def test_corpus_reader_shortcut_agrees_with_json(tmp_path: Path) -> None:
    from edge.scoring.corpus_reader import count_rows, iter_codes

    lines = [
        '{"bytecode": "0x6001", "bytecode_keccak": "0x' + "ab" * 32 + '"}',
        '{"bytecode":"0x6002","bytecode_keccak":"0x12"}',
        '{"notes": "a \\"bytecode\\": \\"0xff\\" quote", "bytecode" : "0x6003"}',
        '{"bytecode": "0x600\\u0034"}',
        "",
        "not json",
        '{"bytecode": 5}',
        '{"bytecode": "0x60z1"}',
    ]
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(lines) + "\n")
    rows = list(iter_codes(p))
    assert count_rows(p) == len(rows) == 7
    assert [r.code for r in rows[:4]] == [b"\x60\x01", b"\x60\x02", b"\x60\x03", b"\x60\x04"]
    assert rows[0].keccak == b"\xab" * 32 and rows[1].keccak is None
    assert [r.line for r in rows] == [1, 2, 3, 4, 6, 7, 8]
    assert "not JSON" in (rows[4].error or "") and "no string field" in (rows[5].error or "")
    assert "not hex" in (rows[6].error or "")
    # sharding: round-robin blocks of 2 rows over 2 shards cover every row once
    shards = [[r.index for r in iter_codes(p, shard=k, shards=2, block=2)] for k in range(2)]
    assert shards == [[0, 1, 4, 5], [2, 3, 6]]
