"""Ingest side by side: this project's ingest vs ethereum-etl 2.4.2's stream adapter.

Builds ONE anvil chain once (``--no-mining``, 300M gas blocks): ``--contracts`` real
runtimes from the corpus, half deployed top-level and half created by a contract
(Spawner.spawnMany, so traces are needed to see them), and ``--writes`` CRUD writes (one
log each; with the Spawner's events about 5,000 logs), via :mod:`edge.devnet.activity`
and :mod:`edge.devnet.anvil`. Then times, on that same chain, interleaved
(``--runs`` rounds, each running every variant of ours and the peer once), each:

- **ours**: a fresh ``Agent(score=False)`` (ingest only, ``ingest.batch_blocks``
  ``--batch-blocks``) from block 0 to the head into a new SQLite outbox, over the
  node's WebSocket; once per ``--verify`` level (``ingest.verify``; default ``strict``,
  the shipped setting) and per ``--pipeline`` setting (``on``: the shipped read ahead,
  ``ingest.max_inflight_mib`` as configured by default; ``off``: ``max_inflight_mib = 0``);
- **peer**: ethereum-etl 2.4.2's ``EthStreamerAdapter`` (entity types block, log,
  contract; ``--batch-blocks`` blocks per ``export_all``; its defaults of 5 worker
  threads; JSON-RPC batches of ``--batch-size``) over HTTP, in its own throwaway venv
  (``build/etl-venv``, created on first use: ``pip install ethereum-etl==2.4.2`` then
  ``parsimonious==0.10.0``, which 2.4.2 needs on Python 3.11). Its bytecode analysis
  (function sighashes by disassembly) is SWITCHED OFF for a fair comparison, and it
  counts items in memory instead of writing them (see ``benchmarks/etl_peer.py``).

Each run is its own process (so each peak RSS is that tool's own ``ru_maxrss``); the
time is the ingest loop only, after imports. ``node_cpu_share`` is anvil's CPU time during
a run (``/proc``) over that run's ingest time: how much of the wall the node itself works;
``own_cpu_share`` the same for our process (its CPU time in the ingest loop), ``load_avg``
the machine's 1-minute load average at the end of each run (other jobs on the same cores),
``own_run_queue_wait_share`` / ``node_run_queue_wait_share`` the time each was runnable
but waiting for a core (``/proc/PID/schedstat``) over the wall: contention, which no
pipelining can hide. Ours must find exactly the ground truth
(every contract and log that :class:`Activity` saw in the receipts), or the benchmark
fails; the peer's counts are reported as found. The figures are medians over the runs.
The last line is one JSON object (``contracts_per_s``, ``peer_contracts_per_s``,
``ratio``, ``rss_peak_mb``, ``peer_rss_peak_mb``, ...: the first ``--verify`` level with
the first ``--pipeline`` setting), with ``variants``: the same figures for every level
and setting (``"strict/on"``, ...), and ``pipeline_gain`` per level (median contracts/s
with the read ahead over without, when both ran). Each round runs every variant and the
peer once, in an order rotated from round to round.

Usage::

    .venv/bin/python benchmarks/ingest_vs_etl.py [--runs 3] [--contracts 2000]
        [--writes 4000] [--batch-blocks 32] [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz]
        [--verify strict [receipts ...]] [--pipeline on [off]] [--peer-shipped] [--profile FILE]

``--peer-shipped`` adds one run of the peer as shipped (analysis on). ``--profile FILE``
adds one run of ours (``--profile-variant``, default the first level and setting) under cProfile and writes its stats to FILE (``python -m pstats``);
``--py-spy FILE`` one under py-spy (``pip install py-spy``; wall clock, idle and threads
included: collapsed stacks, ``benchmarks/spy_summary.py FILE`` sums them by stage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ETL_VENV = REPO / "build" / "etl-venv"
ETL_PINS = ("ethereum-etl==2.4.2", "parsimonious==0.10.0")


# -- the chain ------------------------------------------------------------------------

async def build_chain(chain: Any, codes: list[bytes], writes: int) -> tuple[int, int, int]:
    """Fill ``chain`` with deployments and CRUD writes (:func:`edge.devnet.workload.fill_chain`);
    (head, contracts, logs) of the ground truth (contracts include the CrudStore and Spawner
    that :meth:`Activity.setup` deploys)."""
    from edge.devnet.workload import fill_chain

    head, act = await fill_chain(chain, codes, writes)
    if act.failed:
        raise SystemExit(f"chain build: {act.failed} transactions reverted")
    return head, len(act.deployed) + 2, act.logs


# -- one run of each tool (child processes) ---------------------------------------------

def _child_ours(ws_url: str, chain_id: int, head: int, batch_blocks: int, verify: str, pipeline: str,
                profile: str | None) -> None:
    """Body of ``--child-ours``: one ingest run; prints one JSON line."""
    from edge.config import parse_config
    from edge.agent import Agent

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            ingest: dict[str, Any] = {"batch_blocks": batch_blocks, "verify": verify}
            if pipeline == "off":
                ingest["max_inflight_mib"] = 0
            cfg = parse_config({
                "node": {"ws_url": ws_url, "chain_id": chain_id},
                "ingest": ingest,
                "outbox": {"path": str(Path(tmp) / "edge.sqlite")},
            }, base_dir=Path(tmp))
            rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            async with Agent(cfg, score=False) as agent:
                prof = None
                if profile:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                t0, c0, w0 = time.perf_counter(), time.process_time(), _run_queue_wait_s("self")
                await agent.run(stop_at=head)
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                waited = _run_queue_wait_s("self") - w0
                if prof is not None and profile:
                    prof.disable()
                    prof.dump_stats(profile)
            s = agent.stats
            return {"blocks": s.blocks, "logs": s.logs, "contracts": s.contracts, "seconds": round(dt, 4),
                    "ahead_used": s.ahead_used, "ahead_dropped": s.ahead_dropped, "cpu_s": round(cpu, 3),
                    "run_queue_wait_s": round(waited, 3),
                    "rss_after_imports_mb": round(rss_start, 1),
                    "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}

    try:
        import uvloop

        res = uvloop.run(run())
    except ImportError:
        res = asyncio.run(run())
    print(json.dumps(res))


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (``/proc/PID/stat``), 0.0 where unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def _run_queue_wait_s(pid: int | str | None) -> float:
    """Seconds the process's threads spent runnable but waiting for a core
    (``/proc/PID/schedstat``, second field, summed over its tasks): CPU contention; 0.0
    where unreadable."""
    total = 0
    try:
        for t in Path(f"/proc/{pid}/task").iterdir():
            total += int((t / "schedstat").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return total / 1e9


def _run_child(cmd: list[str], timeout: float, node_pid: int | None = None) -> dict[str, Any]:
    node0, nodew0 = _cpu_seconds(node_pid), _run_queue_wait_s(node_pid)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    node_cpu = _cpu_seconds(node_pid) - node0
    node_wait = _run_queue_wait_s(node_pid) - nodew0
    load = os.getloadavg()[0]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}... failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{' '.join(cmd[:3])}... printed no JSON:\n{proc.stdout[-1000:]}{proc.stderr[-1000:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    out["load_avg"] = round(load, 2)  # of the machine, 1 min, at the run's end: other jobs on the cores
    if node_pid is not None:
        out["node_cpu_s"] = round(node_cpu, 3)  # anvil's CPU while this run went (idle outside its loop)
        out["node_run_queue_wait_s"] = round(node_wait, 3)
    return out


def ensure_etl_venv(venv: Path = ETL_VENV) -> Path:
    """The python of the throwaway ethereum-etl venv, created on first use.

    ethereum-etl 2.4.2 pins eth-abi 2.2, which asks for parsimonious<0.9, but 0.8.1 calls
    ``inspect.getargspec`` (gone in Python 3.11): 0.10.0 is installed over it (pip warns
    about the pin; eth-abi works with it)."""
    py = venv / "bin" / "python"
    stamp = venv / ".stamp-etl"
    if stamp.is_file() and py.is_file():
        return py
    print(f"creating {venv.relative_to(REPO)} (ethereum-etl 2.4.2, parsimonious 0.10.0; about a minute)",
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + [ETL_PINS[0]], check=True)
    subprocess.run(pip + [ETL_PINS[1]], check=True)  # over eth-abi's pin, see above
    subprocess.run([str(py), "-c", "import ethereumetl.streaming.eth_streamer_adapter"], check=True)
    stamp.write_text(" ".join(ETL_PINS) + "\n")
    return py


# -- the side-by-side run ---------------------------------------------------------------

async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from edge.devnet.anvil import DevChain
    from edge.devnet.workload import WORKLOAD_ANVIL_ARGS, corpus_codes

    etl_py = ensure_etl_venv()
    codes = corpus_codes(args.corpus, args.contracts)
    if len(codes) < args.contracts:
        raise SystemExit(f"corpus {args.corpus}: only {len(codes)} usable runtimes, {args.contracts} asked")
    me = [sys.executable, str(Path(__file__).resolve())]
    peer = [str(etl_py), str(REPO / "benchmarks" / "etl_peer.py")]
    async with DevChain("bench", 7201, 0, extra_args=WORKLOAD_ANVIL_ARGS) as chain:
        t0 = time.perf_counter()
        head, want_contracts, want_logs = await build_chain(chain, codes, args.writes)
        print(f"chain: {head + 1} blocks, {want_contracts} contracts (half of the corpus ones created by Spawner), "
              f"{want_logs} logs; built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        base = me + ["--child-ours", chain.ws_url, str(chain.chain_id), str(head), str(args.batch_blocks)]
        variants = [f"{v}/{p}" for v in args.verify for p in args.pipeline]
        ours_cmds = {name: base + name.split("/") for name in variants}
        if args.profile_variant and args.profile_variant not in ours_cmds:
            raise SystemExit(f"--profile-variant {args.profile_variant}: not one of {', '.join(variants)}")
        ours_cmd = ours_cmds[args.profile_variant or variants[0]]
        peer_cmd = peer + ["--url", chain.http_url, "--end", str(head), "--batch-blocks", str(args.batch_blocks),
                           "--batch-size", str(args.batch_size), "--max-workers", str(args.max_workers)]
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        theirs: list[dict[str, Any]] = []
        for i in range(args.runs):
            order = [(name, ours_cmds[name], rows[name]) for name in variants] + [("peer", peer_cmd, theirs)]
            k = i % len(order)
            for name, cmd, sink in order[k:] + order[:k]:  # rotated: each variant in every position in turn
                r = _run_child(cmd, args.timeout, chain.pid)
                sink.append(r)
                ahead = f", read ahead {r['ahead_used']} used / {r['ahead_dropped']} dropped" if "ahead_used" in r else ""
                print(f"run {i + 1} {name:>13}: {r['contracts']} contracts, {r['logs']} logs, {r['blocks']} blocks "
                      f"in {r['seconds']:.3f} s = {r['contracts'] / r['seconds']:,.0f} contracts/s, "
                      f"peak RSS {r['rss_peak_mb']} MB, anvil CPU {r['node_cpu_s']:.2f} s{ahead}"
                      + (f", own CPU {r['cpu_s']:.2f} s" if "cpu_s" in r else "") + f", load {r['load_avg']}",
                      file=sys.stderr)
        for name in variants:
            for r in rows[name]:
                if (r["contracts"], r["logs"], r["blocks"]) != (want_contracts, want_logs, head + 1):
                    raise SystemExit(f"ours ({name}) found {r['contracts']} contracts, {r['logs']} logs, {r['blocks']} "
                                     f"blocks; the chain holds {want_contracts}, {want_logs}, {head + 1}")
        shipped = None
        if args.peer_shipped:
            shipped = _run_child(peer_cmd + ["--shipped"], args.timeout * 20)
            print(f"peer as shipped (bytecode analysis on): {shipped['contracts'] / shipped['seconds']:,.1f} "
                  f"contracts/s", file=sys.stderr)
        profile = None
        if args.profile:
            _run_child(ours_cmd + ["--profile", str(Path(args.profile).resolve())], args.timeout)
            profile = args.profile
        if args.py_spy:
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            _run_child([spy, "record", "--idle", "--threads", "--rate", "250", "--format", "raw", "--output",
                        str(Path(args.py_spy).resolve()), "--"] + ours_cmd, args.timeout)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    peer_cps = statistics.median(r["contracts"] / r["seconds"] for r in theirs)

    def figures(rs: list[dict[str, Any]]) -> dict[str, Any]:
        c = statistics.median(r["contracts"] / r["seconds"] for r in rs)
        return {"contracts_per_s": round(c, 1), "ratio": round(c / peer_cps, 3),
                "contracts_per_s_runs": [round(r["contracts"] / r["seconds"], 1) for r in rs],
                "rss_peak_mb": med(rs, "rss_peak_mb"), "seconds": med(rs, "seconds"),
                "node_cpu_share": round(statistics.median(r["node_cpu_s"] / r["seconds"] for r in rs), 3),
                "own_cpu_share": round(statistics.median(r["cpu_s"] / r["seconds"] for r in rs), 3),
                "own_run_queue_wait_share": round(statistics.median(r["run_queue_wait_s"] / r["seconds"] for r in rs), 3),
                "node_run_queue_wait_share": round(statistics.median(r["node_run_queue_wait_s"] / r["seconds"]
                                                                     for r in rs), 3),
                "load_avg": med(rs, "load_avg"),
                "ahead_used": med(rs, "ahead_used"), "ahead_dropped": med(rs, "ahead_dropped")}

    per_variant = {name: figures(rows[name]) for name in variants}
    gains = {v: round(per_variant[f"{v}/on"]["contracts_per_s"] / per_variant[f"{v}/off"]["contracts_per_s"], 3)
             for v in args.verify if f"{v}/on" in per_variant and f"{v}/off" in per_variant}
    ours = rows[variants[0]]
    cps = statistics.median(r["contracts"] / r["seconds"] for r in ours)
    out: dict[str, Any] = {
        "variant": variants[0],
        "variants": per_variant,
        "pipeline_gain": gains,
        "contracts_per_s": round(cps, 1),
        "peer_contracts_per_s": round(peer_cps, 1),
        "peer_contracts_per_s_runs": [round(r["contracts"] / r["seconds"], 1) for r in theirs],
        "ratio": round(cps / peer_cps, 3),
        "rss_peak_mb": med(ours, "rss_peak_mb"),
        "peer_rss_peak_mb": med(theirs, "rss_peak_mb"),
        "rss_after_imports_mb": med(ours, "rss_after_imports_mb"),
        "logs_per_s": round(statistics.median(r["logs"] / r["seconds"] for r in ours), 1),
        "peer_logs_per_s": round(statistics.median(r["logs"] / r["seconds"] for r in theirs), 1),
        "seconds": med(ours, "seconds"),
        "peer_seconds": med(theirs, "seconds"),
        "node_cpu_share": round(statistics.median(r["node_cpu_s"] / r["seconds"] for r in ours), 3),
        "peer_node_cpu_share": round(statistics.median(r["node_cpu_s"] / r["seconds"] for r in theirs), 3),
        "runs": args.runs,
        "blocks": head + 1,
        "contracts": want_contracts,
        "logs": want_logs,
        "peer_contracts_found": [r["contracts"] for r in theirs],
        "peer_logs_found": [r["logs"] for r in theirs],
        "batch_blocks": args.batch_blocks,
        "peer": "ethereum-etl 2.4.2 EthStreamerAdapter, bytecode analysis OFF, items counted in memory",
        "peer_settings": theirs[0]["settings"],
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    if shipped is not None:
        s_cps = shipped["contracts"] / shipped["seconds"]
        out["peer_shipped_contracts_per_s"] = round(s_cps, 1)
        out["ratio_vs_shipped"] = round(cps / s_cps, 1)
    if profile is not None:
        out["profile"] = profile
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ours":
        ws_url, chain_id, head, bb = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        verify, pipeline = sys.argv[6], sys.argv[7]
        profile = sys.argv[9] if len(sys.argv) > 9 and sys.argv[8] == "--profile" else None
        _child_ours(ws_url, chain_id, head, bb, verify, pipeline, profile)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each tool, interleaved (median reported)")
    ap.add_argument("--contracts", type=int, default=2000)
    ap.add_argument("--writes", type=int, default=4000)
    ap.add_argument("--batch-blocks", type=int, default=32)
    ap.add_argument("--verify", nargs="+", default=["strict"], choices=("strict", "receipts", "headers", "off"),
                    help="ours: ingest.verify level(s), each run in every round (the first is the headline)")
    ap.add_argument("--pipeline", nargs="+", default=["on"], choices=("on", "off"),
                    help="ours: read ahead as shipped (on) and/or ingest.max_inflight_mib = 0 (off), each run")
    ap.add_argument("--batch-size", type=int, default=32, help="peer: JSON-RPC requests per batch")
    ap.add_argument("--max-workers", type=int, default=5, help="peer: worker threads (its default)")
    ap.add_argument("--corpus", default=str(REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz"))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--peer-shipped", action="store_true", help="also one peer run with its bytecode analysis on")
    ap.add_argument("--profile", default=None, help="also one run of ours under cProfile; stats to this file")
    ap.add_argument("--profile-variant", default=None,
                    help="LEVEL/on|off: the variant --profile and --py-spy run (default: the first)")
    ap.add_argument("--py-spy", default=None,
                    help="also one run of ours under py-spy (--idle --threads, raw collapsed stacks to this file)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    res = asyncio.run(_bench(args))
    for name, f in res["variants"].items():
        print(f"ours ({name}) {f['contracts_per_s']:,.0f} contracts/s vs ethereum-etl 2.4.2 (bytecode analysis off) "
              f"{res['peer_contracts_per_s']:,.0f}/s: {f['ratio']:.2f}x; peak RSS {f['rss_peak_mb']} MB vs "
              f"{res['peer_rss_peak_mb']} MB; anvil CPU {f['node_cpu_share']:.2f} of the wall "
              f"(medians of {args.runs} interleaved runs)")
    for v, g in res["pipeline_gain"].items():
        print(f"read ahead on/off at verify={v}: {g:.3f}x")
    print(json.dumps(res, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
