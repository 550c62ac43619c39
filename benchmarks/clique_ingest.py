"""Cost of following Clique (EIP-225) in the ingest stage, against ingest without seal check
(not a test).

Usage (repo root): ``python benchmarks/clique_ingest.py [--blocks N] [--signers K] [--runs R]``.
Serves a chain of N empty headers sealed in turn by K known keys (tests/clique_headers.py)
through MockNetwork and ingests it from block 0 with the real Ingester into a fresh outbox,
``poa.engine = "clique"`` (follow(), one snapshot + verdict per block, written with the
blocks, confirmed snapshots pruned) and ``"none"`` (the peer), alternating, best of R. Prints
blocks/s of each, their ratio, and outbox bytes per block.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import parse_config  # noqa: E402
from edge.ingest.stage import Ingester  # noqa: E402
from edge.rpc.mock import MockNetwork  # noqa: E402
from edge.store.db import Outbox  # noqa: E402
from tests.clique_headers import ADDRS, Header, Sealer, genesis  # noqa: E402
from tests.test_clique_ingest import CHAIN_ID, URL, Served  # noqa: E402


def _chain(blocks: int, signers: int) -> list[Header]:
    keys = sorted(ADDRS[:signers], key=str.lower)
    s = Sealer(list(keys))
    chain = [genesis(keys)]
    for n in range(1, blocks):
        chain.append(s.child(chain[-1], keys[n % signers]))
    return chain


async def _run(chain: list[Header], engine: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "edge.sqlite"
        cfg: Any = parse_config({"node": {"ws_url": URL, "chain_id": CHAIN_ID},
                                 "ingest": {"confirmations": 5, "batch_blocks": 32},
                                 "poa": {"engine": engine, "period_s": 1}, "outbox": {"path": str(db)}},
                                base_dir=Path(tmp))
        async with Outbox(db) as ob:
            ing = Ingester(cfg, ob, rpc_factory=MockNetwork({URL: Served(chain).handler}, subscriptions=False))
            t = time.perf_counter()
            await ing.run(stop_at=len(chain) - 1)
            dt = time.perf_counter() - t
            size = ob.size_bytes()
        return dt, size


def main() -> None:
    """Run the measurements and print one line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--signers", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    chain = _chain(a.blocks, a.signers)
    best: dict[str, tuple[float, int]] = {}
    for _ in range(a.runs):
        for engine in ("none", "clique"):
            dt, size = asyncio.run(_run(chain, engine))
            if engine not in best or dt < best[engine][0]:
                best[engine] = (dt, size)
    for engine, (dt, size) in best.items():
        print(f"engine={engine}: {a.blocks / dt:,.0f} blocks/s, outbox {size / a.blocks:,.0f} B/block")
    print(f"clique/none time ratio: {best['clique'][0] / best['none'][0]:.2f} "
          f"({a.blocks} blocks, {a.signers} signers, best of {a.runs})")


if __name__ == "__main__":
    main()
