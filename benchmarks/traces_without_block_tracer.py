"""What finding factory-made contracts costs without a block tracer: ``ChainReader`` on
one anvil chain in each trace mode, side by side.

Builds ONE anvil chain (``--no-mining``, 300M gas blocks) as ``benchmarks/ingest_vs_etl.py``
does: ``--contracts`` real runtimes from the corpus, half deployed top-level and half
created by the Spawner contract (only traces show those), and ``--writes`` CRUD writes.
Then reads blocks 0..head with :class:`edge.ingest.adapter.ChainReader` over HTTP in
ranges of ``--batch-blocks``, interleaved (``trace_block``, ``debug_trace``, ``debug_tx``,
``off``, then again), ``--runs`` times each:

- ``trace_block``: one batch per range with ``trace_block`` per block (the peer: what
  anvil, Erigon, Nethermind and Besu offer);
- ``debug_trace``: ``debug_traceBlockByNumber`` with ``callTracer`` per block;
- ``debug_tx``: no block tracer; a second batch per range with ``debug_traceTransaction``
  (``callTracer``) for every transaction of the range (what a node with only that, such as
  EthereumJS 0.10.5, gets);
- ``off``: receipts only (the floor; factory-made contracts are not seen).

Every mode except ``off`` must find exactly the creations ``trace_block`` finds, or the
benchmark fails. Figures: median seconds per mode, ``ratio`` = median / trace_block's,
transactions per second. The last line is one JSON object.

Usage::

    .venv/bin/python benchmarks/traces_without_block_tracer.py [--runs 5] [--contracts 600]
        [--writes 1200] [--batch-blocks 32] [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

MODES = ("trace_block", "debug_trace", "debug_tx", "off")


async def _read(url: str, mode: str, head: int, batch_blocks: int) -> tuple[float, list[Any], str]:
    from edge.ingest.adapter import ChainReader
    from edge.rpc.http import HttpRpc

    async with HttpRpc(url, timeout=120.0) as rpc:
        reader = ChainReader(rpc, frozenset(), mode)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        creations: list[Any] = []
        for lo in range(0, head + 1, batch_blocks):
            for b in await reader.blocks(lo, min(head, lo + batch_blocks - 1)):
                creations += [(b.block.number, c) for c in b.creations]
        return time.perf_counter() - t0, creations, reader.traces


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from edge.devnet.anvil import DevChain
    from edge.devnet.workload import WORKLOAD_ANVIL_ARGS, corpus_codes
    from ingest_vs_etl import build_chain

    codes = corpus_codes(args.corpus, args.contracts)
    async with DevChain("bench", 7201, 0, extra_args=WORKLOAD_ANVIL_ARGS) as chain:
        head, want_contracts, _ = await build_chain(chain, codes, args.writes)
        n_tx = 0
        for n in range(head + 1):
            n_tx += len((await chain.rpc("eth_getBlockByNumber", hex(n), False))["transactions"])
        print(f"chain: {head + 1} blocks, {n_tx} transactions, {want_contracts} contracts "
              "(half of the corpus ones created by Spawner)", file=sys.stderr)
        times: dict[str, list[float]] = {m: [] for m in MODES}
        found: dict[str, int] = {}
        reference: list[Any] | None = None
        for run in range(args.runs):
            for mode in (MODES if run % 2 == 0 else tuple(reversed(MODES))):
                dt, creations, used = await _read(chain.http_url, mode, head, args.batch_blocks)
                if used != mode:
                    raise SystemExit(f"mode {mode}: the reader fell back to {used}")
                times[mode].append(dt)
                found[mode] = len(creations)
                if mode == "trace_block":
                    reference = reference or creations
                    if creations != reference:
                        raise SystemExit("trace_block runs disagree")
            print(f"run {run + 1}: " + "  ".join(f"{m} {times[m][-1]:.3f} s" for m in MODES), file=sys.stderr)
        assert reference is not None
        if len(reference) != want_contracts:
            raise SystemExit(f"trace_block found {len(reference)} contracts, ground truth {want_contracts}")
        for mode in ("debug_trace", "debug_tx"):
            _, creations, _ = await _read(chain.http_url, mode, head, args.batch_blocks)
            if creations != reference:
                raise SystemExit(f"{mode} found {len(creations)} creations, trace_block {len(reference)}")
    med = {m: statistics.median(v) for m, v in times.items()}
    return {
        "blocks": head + 1, "transactions": n_tx, "contracts": want_contracts, "runs": args.runs,
        "batch_blocks": args.batch_blocks,
        **{f"{m}_s": round(med[m], 4) for m in MODES},
        **{f"{m}_ratio": round(med[m] / med["trace_block"], 3) for m in MODES},
        **{f"{m}_tx_per_s": round(n_tx / med[m], 1) for m in MODES},
        "found": found,
    }


def main() -> None:
    """Command line (see the module docstring); prints the result as the last line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--contracts", type=int, default=600)
    ap.add_argument("--writes", type=int, default=1200)
    ap.add_argument("--batch-blocks", type=int, default=32)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "contracts" / "unlabeled_train.jsonl.gz"))
    args = ap.parse_args()
    print(json.dumps(asyncio.run(_bench(args)), sort_keys=True))


if __name__ == "__main__":
    main()
