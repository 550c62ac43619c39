"""Sum a py-spy profile of the ingest (``ingest_vs_etl.py --py-spy FILE``) by stage.

Reads py-spy's raw collapsed stacks (``--format raw``: ``frame;frame;... COUNT`` per
line, ``--idle --threads``) and puts every sample of the ingest process into the first
category that matches, looking from the innermost frame outwards: JSON decoding,
WebSocket framing, parsing and validation (:mod:`edge.chain.extract`,
:mod:`edge.rpc.codec`), keccak, SQLite (the aiosqlite worker thread while it executes;
its idle wait is left out), imports, and the event loop waiting for I/O (the node's
answers). Prints seconds (samples / rate) and shares of the main thread's samples
after the imports (which happen before the benchmark's timed window).

Usage::

    .venv/bin/python benchmarks/spy_summary.py FILE [--rate 250]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

# (category, substrings of a frame); the innermost matching frame decides
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports", ("_find_and_load",)),
    ("JSON decode (stdlib json)", ("json/decoder.py", "json/__init__.py:346")),
    ("JSON decode (orjson)", ("orjson",)),
    ("JSON encode", ("json/encoder.py", "json/__init__.py:2")),
    ("keccak", ("eth_hash/", "Crypto/Hash")),
    ("parse + validate (extract, codec)", ("edge/chain/extract.py", "edge/rpc/codec.py")),
    ("WebSocket framing / recv", ("websockets/",)),
    ("SQLite, loop side (aiosqlite, edge.store)", ("aiosqlite/", "edge/store/")),
    ("ingest step, other", ("edge/ingest/stage.py",)),
    ("RPC client, other", ("edge/rpc/ws.py",)),
)
_IDLE_LEAF = "Runner.run (asyncio/runners.py"


def classify(frames: list[str]) -> str:
    """The category of one main-thread stack (outermost frame first; py-spy raw format)."""
    if frames and frames[-1].startswith(_IDLE_LEAF):
        return "event loop waiting for I/O (node answers, SQLite thread)"
    for frame in reversed(frames):
        for name, needles in _CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(lines: list[str]) -> tuple[Counter[str], int, int]:
    """(samples per category of the main thread, main-thread samples, SQLite-thread busy samples)."""
    main: Counter[str] = Counter()
    sql_busy = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if "_connection_worker_thread" in stack:
            # aiosqlite's worker: core.py:59 is the queue wait; anything else executes SQL
            if not frames[-1].startswith("_connection_worker_thread (aiosqlite/core.py:59"):
                sql_busy += n
            continue
        if "_child_ours" in stack:  # the ingest process's main thread, inside the benchmark's run
            main[classify(frames)] += n
    return main, sum(main.values()), sql_busy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--rate", type=float, default=250.0, help="py-spy's --rate (samples/s)")
    args = ap.parse_args()
    with open(args.file, encoding="utf-8") as f:
        cats, total, sql_busy = summarise(f.readlines())
    if not total:
        print(f"{args.file}: no main-thread samples", file=sys.stderr)
        return 1
    imports = cats.pop("imports", 0)
    work = total - imports
    print(f"main thread: {total / args.rate:.2f} s sampled ({total} samples at {args.rate:g}/s); "
          f"imports before the timed run {imports / args.rate:.2f} s; the ingest itself {work / args.rate:.2f} s:")
    for name, n in cats.most_common():
        print(f"  {n / args.rate:6.2f} s  {100 * n / max(work, 1):5.1f}%  {name}")
    print(f"SQLite worker thread executing: {sql_busy / args.rate:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
