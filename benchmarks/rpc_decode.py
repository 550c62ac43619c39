"""JSON-RPC answer decoding on the ingest path: stdlib json vs orjson, on real frames.

Builds the chain of ``ingest_vs_etl.py`` (same sizes), runs one ingest
(``Agent(score=False)``, ``batch_blocks`` 32) while recording every WebSocket frame the
RPC client decodes, then times decoding those exact frames, ``--repeat`` times, median:

- ``stdlib``: UTF-8 decoding of the text frame (what ``websockets`` does before it hands
  a ``str`` over) + ``json.loads``: the path before orjson;
- ``orjson``: ``orjson.loads`` on the frame's bytes (``recv(decode=False)``); orjson
  validates the UTF-8 itself.

Both produce equal objects (checked). orjson is not a dependency of the agent: install it
to run this (``.venv/bin/pip install orjson==3.13.0``). Prints the seconds per full ingest of the chain
and MB/s, then one JSON line.

Usage::

    .venv/bin/python benchmarks/rpc_decode.py [--contracts 2000] [--writes 4000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from edge.devnet.workload import WORKLOAD_ANVIL_ARGS, corpus_codes  # noqa: E402
from ingest_vs_etl import build_chain  # noqa: E402


async def _record_frames(args: argparse.Namespace) -> list[bytes]:
    import edge.rpc.ws as rpc_mod
    from edge.devnet.anvil import DevChain
    from edge.config import parse_config
    from edge.agent import Agent

    frames: list[bytes] = []
    codes = corpus_codes(args.corpus, args.contracts)
    async with DevChain("bench", 7201, 0, extra_args=WORKLOAD_ANVIL_ARGS) as chain:
        head, _, _ = await build_chain(chain, codes, args.writes)
        real = rpc_mod.json

        def recording(frame: bytes | str) -> Any:
            frames.append(frame.encode() if isinstance(frame, str) else bytes(frame))
            return json.loads(frame)

        # the client calls json.loads(frame) on every frame it reads: record them on the way
        rpc_mod.json = types.SimpleNamespace(loads=recording, dumps=json.dumps)  # type: ignore[assignment]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = parse_config({
                    "node": {"ws_url": chain.ws_url, "chain_id": chain.chain_id},
                    "ingest": {"batch_blocks": 32},
                    "outbox": {"path": str(Path(tmp) / "edge.sqlite")},
                }, base_dir=Path(tmp))
                async with Agent(cfg, score=False) as agent:
                    await agent.run(stop_at=head)
        finally:
            rpc_mod.json = real
    return frames


def _time(fn: Any, frames: list[bytes], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for f in frames:
            fn(f)
        runs.append(time.perf_counter() - t0)
    return float(statistics.median(runs))


def main() -> int:
    import orjson

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contracts", type=int, default=2000)
    ap.add_argument("--writes", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", default=str(HERE.parents[1] / "shared/data/contracts/unlabeled_train.jsonl.gz"))
    args = ap.parse_args()
    frames = asyncio.run(_record_frames(args))
    mb = sum(len(f) for f in frames) / 1e6
    for f in frames:
        if json.loads(f.decode("utf-8")) != orjson.loads(f):
            raise SystemExit("stdlib json and orjson disagree on a frame")
    std = _time(lambda f: json.loads(f.decode("utf-8")), frames, args.repeat)
    fast = _time(orjson.loads, frames, args.repeat)
    print(f"{len(frames)} frames, {mb:.1f} MB per ingest of the chain: stdlib (utf-8 + json.loads) {std:.3f} s "
          f"({mb / std:.0f} MB/s), orjson {fast:.3f} s ({mb / fast:.0f} MB/s): {std / fast:.1f}x, "
          f"{std - fast:.3f} s saved per ingest (median of {args.repeat})")
    sizes = sorted((round(len(f) / 1e6, 2) for f in frames if len(f) > 100_000), reverse=True)
    print(f"frames above 0.1 MB (MB): {sizes}")
    print(json.dumps({"frames": len(frames), "mb": round(mb, 2), "large_frames_mb": sizes, "stdlib_s": round(std, 4), "orjson_s": round(fast, 4),
                      "speedup": round(std / fast, 2), "saved_s": round(std - fast, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
