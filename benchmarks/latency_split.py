"""Where "block first seen -> its contracts scored" goes (issue 14; a benchmark, not a test).

One anvil (1 s blocks, 300M gas), ``--rate`` real deployments per second for ``--seconds``
(distinct codes from ``--corpus``), an in-process :class:`edge.agent.Agent` with scoring on
and nothing else (no checkpoints, forwarding, analysis or metrics: the hot path alone),
once per ``--verify`` level. Per block, the time from ingest first seeing its number
(:class:`edge.ingest.seen.FirstSeen`) to: its batch's blocks, receipts and traces read
(``fetch``), its code read (or proven, ``strict``: ``code``), its records written
(``write``); and per code to its score committed (``scored``, the stage's own samples).
Timestamps come from wrapping :meth:`ChainReader.blocks`, :meth:`ChainReader.codes` and
:func:`edge.store.chain_data.write_blocks` in this process. p50 and p99 in ms, one JSON
line per level, then one with all of them (``levels``).

Usage::

    .venv/bin/python benchmarks/latency_split.py [--verify receipts off strict] [--rate 100]
        [--seconds 15] [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.agent import Agent  # noqa: E402
from edge.config import parse_config  # noqa: E402
from edge.devnet.activity import Activity  # noqa: E402
from edge.devnet.anvil import TIERS, DevChains  # noqa: E402
from edge.devnet.demo import bytecodes  # noqa: E402
from edge.ingest import adapter  # noqa: E402
from edge.scoring.stage import ScoreStats  # noqa: E402
from edge.store import chain_data  # noqa: E402

Span = tuple[float, float, str, int, int]  # start, end (monotonic s), what, lowest and highest block


def _timed(owner: Any, name: str, what: str, blocks: Callable[..., tuple[int, int]], spans: list[Span]) -> None:
    """Wrap the coroutine function ``owner.name`` so each call appends a :data:`Span`."""
    inner = getattr(owner, name)

    async def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.monotonic()
        res = await inner(*a, **k)
        spans.append((t0, time.monotonic(), what, *blocks(a, res)))
        return res

    setattr(owner, name, wrapper)


def _more_batches(before: int, stats: ScoreStats) -> bool:
    """True once the scoring stage stored a batch after the ``before``-th."""
    return stats.batches > before


def _q(xs: list[float], q: float) -> float | None:
    """Nearest-rank quantile of ``xs`` in ms (rounded to 0.1), None when empty."""
    s = sorted(xs)
    return round(s[max(0, math.ceil(q * len(s)) - 1)] * 1000.0, 1) if s else None


async def one_level(verify: str, args: argparse.Namespace, codes: Any, spans: list[Span]) -> dict[str, Any]:
    """Run the agent at one ``ingest.verify`` level; return its split (ms)."""
    poa = next(t for t in TIERS if t.name == "poa")
    spec = replace(poa, extra_args=(*poa.extra_args, "--gas-limit", "300000000"))
    async with DevChains([spec]) as chains:
        chain = chains["poa"]
        act = Activity(chain)
        await act.setup()
        with tempfile.TemporaryDirectory(prefix="edge-latency-") as tmp:
            cfg = parse_config({"node": {"ws_url": chain.ws_url, "chain_id": chain.chain_id},
                                "ingest": {"verify": verify}, "outbox": {"path": str(Path(tmp) / "e.sqlite")},
                                "capabilities": {"enabled": False}})
            async with Agent(cfg, score=True) as agent:
                assert agent.scorer is not None
                run = asyncio.create_task(agent.run(checkpoints=False))
                await agent.ingester.wait_until(lambda s: s.cursor >= 1)  # the set-up blocks are in
                await agent.scorer.wait_until(lambda s: s.scored >= 2)
                spans.clear()
                agent.scorer.latency_s.clear()
                t1 = time.monotonic()
                for n in range(int(args.seconds)):  # one batch of deployments per second
                    await asyncio.sleep(max(0.0, t1 + n - time.monotonic()))
                    await act.deploy([next(codes) for _ in range(args.rate)])
                await act.settle(timeout=120.0)
                head = int(await chain.rpc("eth_blockNumber"), 16)
                await agent.ingester.wait_until(lambda s: s.cursor >= head)
                while True:  # until every stored code is scored (by notification per batch)
                    batches = agent.scorer.stats.batches
                    if not await agent.scorer.backlog():
                        break
                    await agent.scorer.wait_until(partial(_more_batches, batches))
                scored = list(agent.scorer.latency_s)
                seen = agent.ingester.seen
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
    first: dict[int, dict[str, float]] = {}
    for _, end, what, lo, hi in spans:
        for b in range(lo, hi + 1):
            first.setdefault(b, {}).setdefault(what, end)
    split: dict[str, list[float]] = {"fetch": [], "code": [], "write": []}
    for b, ends in first.items():
        t = seen.at(b)
        if t is None or "write" not in ends or "code" not in ends:
            continue  # blocks with no contract have no code step
        for what in split:
            split[what].append(ends[what] - t)
    out: dict[str, Any] = {"verify": verify, "rate": args.rate, "seconds": args.seconds,
                           "blocks": len(split["write"]), "codes": len(scored)}
    for what, xs in (*split.items(), ("scored", scored)):
        out[f"{what}_p50_ms"], out[f"{what}_p99_ms"] = _q(xs, 0.5), _q(xs, 0.99)
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Wrap the three timed steps, then run :func:`one_level` per ``--verify`` level on
    distinct corpus codes; returns ``{"levels": [split, ...]}`` (each also printed)."""
    spans: list[Span] = []
    _timed(adapter.ChainReader, "blocks", "fetch", lambda a, r: (a[1], a[2]), spans)
    _timed(adapter.ChainReader, "codes", "code",
           lambda a, r: (min((f.block.number for f, _ in a[1]), default=0),
                         max((f.block.number for f, _ in a[1]), default=-1)), spans)
    _timed(chain_data, "write_blocks", "write", lambda a, r: (a[2][0].block.number, a[2][-1].block.number), spans)
    need = args.rate * int(args.seconds) * len(args.verify) + 16
    codes = iter(list(itertools.islice(bytecodes(args.corpus), need)))  # distinct: each one a score sample
    levels = []
    for verify in args.verify:
        res = await one_level(verify, args, codes, spans)
        print(json.dumps(res), flush=True)
        levels.append(res)
    return {"levels": levels}


def cli(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run, print the JSON lines; returns the exit status."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--verify", nargs="+", default=["receipts", "off", "strict"],
                    choices=["strict", "receipts", "headers", "off"])
    ap.add_argument("--rate", type=int, default=100, help="deployments per second")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz")
    a = ap.parse_args(argv)
    print(json.dumps(asyncio.run(main(a))))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
