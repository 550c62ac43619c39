"""``edge bench``: the command line of :mod:`edge.appliance.bench` (featurize + score +
buffer throughput, contracts/s and per watt; then, apart, the capability analysis:
distinct codes/s and ms per code in the worker process).

The engine is imported when the command runs, so ``edge --help`` and the agent's start-up
never load numpy or onnxruntime for it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.appliance.bench import BenchResult

__all__ = ["register", "report"]


def report(res: BenchResult) -> str:
    """The human-readable summary of one bench run (several lines, no trailing newline)."""
    per_worker = ", ".join(f"{x:,.0f}/s" for x in res.contracts_per_s_per_worker)
    st = res.stage_us
    power = (f"{res.watts:.2f} W ({res.watts_source})" if res.watts is not None
             else "unknown (no Pi 5 PMIC, no readable RAPL powercap; give --watts W from a meter)")
    eff = (f"{res.contracts_per_s_per_w:,.0f} contracts/s/W (power: {res.watts_source})"
           if res.contracts_per_s_per_w is not None else "unknown (no power reading)")
    return "\n".join([
        f"edge bench: {res.contracts:,} contracts from {res.corpus} in {res.seconds:.2f} s, "
        f"{res.workers} worker(s), batch {res.batch}, featurizer {res.featurizer}, "
        f"model {res.model_id[:12]}..., buffered: {res.buffered}",
        f"  throughput   {res.contracts_per_s:,.0f} contracts/s total (per worker: {per_worker}); "
        f"without corpus reading {res.pipeline_contracts_per_s:,.0f}/s",
        f"  µs/contract  read {st['read']:.1f} | featurize {st['featurize']:.1f} | score {st['score']:.1f} | "
        f"explain {st['explain']:.1f} | buffer {st['buffer']:.1f}",
        f"  latency      p50 {res.latency_us_p50:.1f} µs, p99 {res.latency_us_p99:.1f} µs per contract "
        f"(batch-amortised); batch p50 {res.batch_ms_p50:.2f} ms, p99 {res.batch_ms_p99:.2f} ms",
        f"  peak RSS     {res.rss_peak_mb:.1f} MB (largest process)",
        f"  power        {power}",
        f"  efficiency   {eff}",
        f"  flagged      {res.flagged:,} of {res.contracts:,}; bad rows skipped: {res.bad_rows}",
        *_analysis_lines(res),
    ])


def _analysis_lines(res: BenchResult) -> list[str]:
    a = res.analysis
    if a is None:
        return ["  capabilities not measured (--analysis-codes 0)"]
    return [
        f"  capabilities {a['codes']:,} distinct codes in the worker process (not in the loop above): "
        f"{a['codes_per_s']:,.1f} codes/s; per code p50 {a['ms_p50']:.1f} ms, p99 {a['ms_p99']:.1f} ms, "
        f"max {a['ms_max']:.1f} ms (round trip p99 {a['roundtrip_ms_p99']:.1f} ms); "
        f"{a['timeouts']} timeout(s) at {a['budget_s']:g} s",
    ]


def _cmd(args: argparse.Namespace) -> int:
    from edge.appliance.bench import run_bench

    if args.report:
        from edge.appliance.bench_report import report_command

        return report_command(args, run_bench, report)
    res = run_bench(
        Path(args.corpus),
        workers=args.workers,
        watts=args.watts,
        batch=args.batch,
        limit=args.limit,
        model=Path(args.model) if args.model else None,
        outbox_dir=Path(args.outbox_dir) if args.outbox_dir else None,
        pin=not args.no_pin,
        progress=not args.no_progress,
        with_code=args.with_code,
        analysis_codes=args.analysis_codes,
        analysis_budget_s=args.analysis_budget,
    )
    print(report(res))
    if args.json:
        print(json.dumps(res.as_json(), sort_keys=True))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``bench`` subcommand (``set_defaults(func=...)`` returns the exit status)."""
    p = subparsers.add_parser(
        "bench", help="replay a corpus through featurize + score + buffer; contracts/s and per watt"
    )
    p.add_argument("--corpus", required=True, help="jsonl(.gz) corpus of runtime bytecode (field 'bytecode')")
    p.add_argument("--workers", type=int, default=1, help="worker processes (each with its own outbox file)")
    p.add_argument("--watts", type=float, default=None, help="power from an external meter (W)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object with the figures")
    p.add_argument("--batch", type=int, default=256, help="contracts per batch (default 256)")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped models/risk.onnx)")
    p.add_argument("--outbox-dir", default=None, help="keep the outbox files here (default: temp, removed)")
    p.add_argument("--with-code", action="store_true",
                   help="buffer the code blobs too (ingest's share), not only the score rows")
    p.add_argument("--no-pin", action="store_true", help="do not pin workers to CPUs")
    p.add_argument("--analysis-codes", type=int, default=200,
                   help="then analyse this many distinct codes' capabilities in the worker process "
                        "(0: skip; default 200)")
    p.add_argument("--analysis-budget", type=float, default=5.0,
                   help="capability analysis time budget per code, seconds (default 5)")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="run 1..--workers workers and write DIR/index.html (plots) and DIR/bench.json "
                        "(needs the [report] extra: matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd)
