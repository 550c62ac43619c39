"""Peak RSS of ``edge run`` with the capability analysis worker (a benchmark, not a test).

Prepares a real anvil chain (loopback) holding N distinct real contract deployments from
the corpus, then runs ``edge run`` on it as an operator would (a child process, its own
config and outbox) until every deployed code has a capability report, sampling
``/proc`` every 0.1 s: the agent's ``VmHWM`` (peak RSS), the analysis worker's
``VmHWM`` (the agent's child), and the largest sampled sum of both ``VmRSS``. Progress is
read from the agent's own Prometheus endpoint (``edge_capability_reports``), so this
script holds no SQL. The peer in the same run: the same agent with ``[capabilities]
enabled = false`` on the same chain (until every code is scored), so the ratio is the
analysis' share.

Usage::

    .venv/bin/python benchmarks/run_rss.py [--contracts 200]
        [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import dump_toml  # noqa: E402
from edge.devnet.activity import Activity  # noqa: E402
from edge.devnet.anvil import DevChain  # noqa: E402
from edge.devnet.corpus import hex_to_code, iter_corpus  # noqa: E402
from edge.devnet.netns import die_with_parent  # noqa: E402
from edge.devnet.procfs import children, status_kb  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(port: int, name: str, label: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not label or label in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _run_agent(ws_url: str, folder: Path, n: int, analysis: bool) -> dict[str, Any]:
    port = _free_port()
    cfg = folder / ("with.toml" if analysis else "without.toml")
    cfg.write_text(dump_toml({
        "node": {"ws_url": ws_url, "chain_id": 7201},
        "ingest": {"confirmations": 0},
        "outbox": {"path": str(folder / ("with.sqlite" if analysis else "without.sqlite"))},
        "metrics": {"port": port},
        "capabilities": {"enabled": analysis},
        "log": {"level": "warning"},
    }))
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent)
    t0 = time.perf_counter()
    agent_hwm = worker_hwm = peak_sum = 0
    done = False
    try:
        while time.perf_counter() - t0 < 900 and proc.poll() is None:
            kids = children(proc.pid)
            agent_hwm = max(agent_hwm, status_kb(proc.pid, "VmHWM"))
            worker_hwm = max([worker_hwm] + [status_kb(k, "VmHWM") for k in kids])
            peak_sum = max(peak_sum, status_kb(proc.pid, "VmRSS") + sum(status_kb(k, "VmRSS") for k in kids))
            got = (_metric(port, "edge_capability_reports{", "") if analysis
                   else _metric(port, "edge_contracts_scored_total", ""))
            if got >= n:
                done = True
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if not done:
        raise SystemExit(f"edge run did not finish (rc {proc.returncode}): {err[-2000:]}")
    return {"analysis": analysis, "codes": n, "seconds": round(seconds, 2), "agent_peak_rss_mb": round(agent_hwm / 1024, 1),
            "worker_peak_rss_mb": round(worker_hwm / 1024, 1), "peak_rss_sum_mb": round(peak_sum / 1024, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    codes: dict[bytes, None] = {}
    for row in iter_corpus(args.corpus):
        c = hex_to_code(row.bytecode, "corpus")
        if 0 < len(c) <= 24_576 and c[0] != 0xEF:
            codes.setdefault(c)
        if len(codes) == args.contracts:
            break
    async with DevChain("rss", 7201, 0, extra_args=("--gas-limit", "300000000")) as chain:
        act = Activity(chain)
        await act.use_account(0)
        lst = list(codes)
        for i in range(0, len(lst), 50):
            await act.deploy(lst[i:i + 50])
            await act.settle()
        with tempfile.TemporaryDirectory(prefix="edge-rss-") as tmp:
            folder = Path(tmp)
            with_ = await asyncio.to_thread(_run_agent, chain.ws_url, folder, len(lst), True)
            without = await asyncio.to_thread(_run_agent, chain.ws_url, folder, len(lst), False)
    return {"with_analysis": with_, "without_analysis": without,
            "ratio_peak_sum": round(with_["peak_rss_sum_mb"] / max(without["peak_rss_sum_mb"], 1e-9), 3)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--contracts", type=int, default=200)
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = asyncio.run(main(a))
    w, wo = res["with_analysis"], res["without_analysis"]
    print(f"edge run, {w['codes']} distinct codes: with the analysis worker peak RSS agent {w['agent_peak_rss_mb']} MB"
          f" + worker {w['worker_peak_rss_mb']} MB (largest sampled sum {w['peak_rss_sum_mb']} MB, all analysed in"
          f" {w['seconds']} s); without: agent {wo['agent_peak_rss_mb']} MB (sum {wo['peak_rss_sum_mb']} MB);"
          f" ratio {res['ratio_peak_sum']}")
    if a.json:
        print(json.dumps(res, sort_keys=True))
