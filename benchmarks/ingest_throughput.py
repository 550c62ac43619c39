"""Ingest throughput from a real anvil: contracts/s and logs/s (a benchmark, not a test).

Prepares a chain (``--no-mining``, 300M gas blocks) holding N real contract deployments
(half top-level, half created by a contract, so ``trace_block`` is exercised) and M CRUD
writes (one log each), then times fresh agents ingesting it from block 0 to the head
into new outboxes (extract + RPC parsing + verification + SQLite writes), once per
``ingest.verify`` mode, interleaved ``--repeat`` times, and reports each mode's median and
its ratio of seconds to the last mode (``off``): the cost of verification, measured on
the same chain under the same machine load.

Usage::

    .venv/bin/python benchmarks/ingest_throughput.py [--contracts 2000] [--writes 4000]
        [--verify strict receipts headers off] [--repeat 3]
        [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz] [--batch-blocks 32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.devnet.workload import WORKLOAD_ANVIL_ARGS, corpus_codes, fill_chain  # noqa: E402
from edge.devnet.anvil import DevChain  # noqa: E402
from edge.config import parse_config  # noqa: E402
from edge.agent import Agent  # noqa: E402


async def main(args: argparse.Namespace) -> dict[str, object]:
    codes = corpus_codes(args.corpus, args.contracts)
    async with DevChain("bench", 7201, 0, extra_args=WORKLOAD_ANVIL_ARGS) as chain:
        head, _ = await fill_chain(chain, codes, args.writes)
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in args.verify}
        for _ in range(args.repeat):  # interleaved: each mode sees the same machine load
            for mode in args.verify:
                runs[mode].append(await _ingest(chain, head, mode, args.batch_blocks))
    out: dict[str, object] = {"batch_blocks": args.batch_blocks, "repeat": args.repeat,
                              "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    for mode, rs in runs.items():
        med = sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]
        out[mode] = med
    base = args.verify[-1]
    for mode in args.verify:
        out[f"{mode}_vs_{base}"] = round(out[mode]["seconds"] / out[base]["seconds"], 3)  # type: ignore[index]
    return out


async def _ingest(chain: DevChain, head: int, mode: str, batch_blocks: int) -> dict[str, float]:
    """One full ingest of ``chain`` up to ``head`` with ``ingest.verify = mode``."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({
            "node": {"ws_url": chain.ws_url, "chain_id": chain.chain_id},
            "ingest": {"batch_blocks": batch_blocks, "verify": mode},
            "outbox": {"path": str(Path(tmp) / "edge.sqlite")},
        }, base_dir=Path(tmp))
        async with Agent(cfg, score=False) as agent:
            t0 = time.perf_counter()
            await agent.run(stop_at=head)
            dt = time.perf_counter() - t0
        s = agent.stats
    return {"blocks": s.blocks, "contracts": s.contracts, "logs": s.logs, "seconds": round(dt, 3),
            "contracts_per_s": round(s.contracts / dt, 1), "logs_per_s": round(s.logs / dt, 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contracts", type=int, default=2000)
    ap.add_argument("--writes", type=int, default=4000)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz"))
    ap.add_argument("--batch-blocks", type=int, default=32)
    ap.add_argument("--verify", nargs="+", default=["strict", "receipts", "headers", "off"],
                    help="ingest.verify modes to compare (the last is the reference)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per mode (median reported)")
    ap.add_argument("--json", action="store_true")
    res = asyncio.run(main(ap.parse_args()))
    if ap.parse_args().json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>16}: {v}")
