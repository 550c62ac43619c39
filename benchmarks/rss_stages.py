"""Peak RSS of ``edge run`` per stage (issue 14; a benchmark, not a test).

Stages, each its peak RSS (``VmHWM`` of the agent process, Linux ``/proc``):

- ``imports``: a child interpreter imports what ``edge run`` imports before it starts
  the agent (:mod:`edge.cli.main`, :mod:`edge.appliance.runner`, :mod:`edge.agent`);
- ``model_loaded``: the same child then enters :class:`edge.agent.Agent` on the run's
  config (outbox opened, ONNX session made, scoring stage ready) and stops;
- ``catch_up``: ``edge run`` (a child process, as an operator runs it) on a local chain
  that already holds a backlog of ``--backlog-blocks`` blocks with about
  ``--code-kb-per-block`` KiB of real runtime code each (from ``--corpus``), until its
  cursor reaches the backlog's last block;
- ``first_block_s``: seconds from starting ``edge run`` to its first block in SQLite (the
  first read of its outbox, every 20 ms, read-only, that finds a cursor row);
- ``live``: the same process, its ``VmHWM`` reset at the end of the catch-up (``5`` to
  ``/proc/PID/clear_refs``), for ``--live-s`` seconds of activity at ``--contracts``
  deployments/s with forwarding on (two testnets and mainnet on anvil, as ``edge demo``
  makes them; ``checkpoint.every_blocks = --every-blocks``), then until every checkpoint
  cut in that time is anchored (or ``--drain-s`` passed); with it ``live_scored_p50_ms`` /
  ``live_scored_p99_ms``: block first seen -> its codes scored over the live stage, from the
  agent's ``edge_score_latency_seconds`` histogram (interpolated inside its buckets).

The capability analysis worker (a child of the agent) is sampled beside it every 0.2 s
(``worker_*``); ``--analysis off`` runs without it. Ends with one JSON line.

Usage::

    .venv/bin/python benchmarks/rss_stages.py [--backlog-blocks 64] [--code-kb-per-block 320]
        [--live-s 30] [--drain-s 40] [--contracts 50] [--analysis on|off] [--corpus PATH] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.devnet.scrape import scrape_histogram, scrape_metrics  # noqa: E402
from edge.store.status import peek  # noqa: E402  (a read-only look at the agent's outbox)  (urllib only: start-up figures are taken in a child)


def _status_kb(pid: int, field: str) -> int:
    from edge.devnet.procfs import status_kb

    return status_kb(pid, field)


_LATENCY = "edge_score_latency_seconds"


async def _all_scored(port: int, db: Path, proc: subprocess.Popen[bytes],
                     timeout_s: float = 300.0) -> list[tuple[float, float]]:
    """The agent's score-latency buckets once its served metrics (refreshed every 5 s)
    count as many codes scored as its outbox holds distinct codes; raises SystemExit when
    the agent exits or ``timeout_s`` passes first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise SystemExit(f"edge run exited ({proc.returncode})")
        stored = (await asyncio.to_thread(peek, db, "codes")).get("codes", 0)
        m = await asyncio.to_thread(scrape_metrics, port)
        if stored and m.get("edge_contracts_scored_total", 0) >= stored:
            return await asyncio.to_thread(scrape_histogram, port, _LATENCY)
        await asyncio.sleep(0.5)
    raise SystemExit(f"the agent did not score every stored code within {timeout_s:.0f} s")


def _latency_figures(buckets: list[tuple[float, float]]) -> dict[str, Any]:
    """``live_scored_p50_ms`` / ``live_scored_p99_ms`` (block first seen -> its codes
    scored, interpolated inside the agent's histogram buckets as Prometheus'
    ``histogram_quantile`` does) and ``live_scored_samples``, over the live stage only."""
    from edge.scoring.latency import quantile_from_buckets

    def ms(q: float) -> float | None:
        v = quantile_from_buckets(q, buckets)
        return None if v is None else round(v * 1000.0, 1)

    return {"live_scored_p50_ms": ms(0.5), "live_scored_p99_ms": ms(0.99),
            "live_scored_samples": int(buckets[-1][1]) if buckets else 0}


def _startup_child(config: Path) -> None:
    """``--startup CONFIG`` (internal): print the imports and model-loaded peaks as JSON."""
    import edge.cli.main  # noqa: F401  what `python -m edge run` imports first
    from edge.agent import Agent
    from edge.appliance.runner import load_config_or_fault  # imported by `edge run` before the agent

    pid = os.getpid()
    imports_kb = _status_kb(pid, "VmHWM")
    cfg = load_config_or_fault(config)

    from edge.cli.main import run_async

    model_kb = 0

    async def go() -> None:
        nonlocal model_kb
        async with Agent(cfg):
            model_kb = _status_kb(pid, "VmHWM")

    run_async(go)
    print(json.dumps({"imports_mb": round(imports_kb / 1024, 1), "model_loaded_mb": round(model_kb / 1024, 1)}))


def _override(cfg: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """``cfg`` with each ``SECTION.KEY=VALUE`` of ``sets`` applied (VALUE as JSON, else a string)."""
    for kv in sets:
        key, _, value = kv.partition("=")
        section, _, name = key.partition(".")
        try:
            v: Any = json.loads(value)
        except ValueError:
            v = value
        cfg.setdefault(section, {})[name] = v
    return cfg


class Sampler:
    """Peak ``VmHWM`` of the agent and of its children since the last :meth:`reset`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.worker_hwm_kb = 0
        self.sum_kb = 0

    def sample(self) -> None:
        from edge.devnet.procfs import children

        kids = children(self.pid)
        self.worker_hwm_kb = max([self.worker_hwm_kb] + [_status_kb(k, "VmHWM") for k in kids])
        self.sum_kb = max(self.sum_kb, _status_kb(self.pid, "VmRSS") + sum(_status_kb(k, "VmRSS") for k in kids))

    def agent_hwm_kb(self) -> int:
        return _status_kb(self.pid, "VmHWM")

    def reset(self) -> None:
        """Reset the peak of the agent and its children (``/proc/PID/clear_refs``: 5)."""
        from edge.devnet.procfs import children

        for p in [self.pid, *children(self.pid)]:
            try:
                Path(f"/proc/{p}/clear_refs").write_text("5")
            except OSError:
                pass
        self.worker_hwm_kb = self.sum_kb = 0

    def figures(self, prefix: str) -> dict[str, float]:
        self.sample()
        return {f"{prefix}_mb": round(self.agent_hwm_kb() / 1024, 1),
                f"{prefix}_worker_mb": round(self.worker_hwm_kb / 1024, 1),
                f"{prefix}_sum_mb": round(self.sum_kb / 1024, 1)}


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from edge.config import dump_toml
    from edge.devnet.activity import Activity
    from edge.devnet.anvil import DevChains, free_port
    from edge.devnet.demo import bytecodes
    from edge.devnet.netns import die_with_parent
    from edge.devnet.tiers import deploy_public_tiers, tier_specs

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # distinct codes for the backlog and the live stage (a code scored before is no latency sample)
    codes = itertools.cycle(list(itertools.islice(bytecodes(args.corpus), 10_000)))
    specs = tuple(replace(t, extra_args=(*t.extra_args, "--gas-limit", "300000000")) if t.name == "poa" else t
                  for t in tier_specs("anvil"))
    async with DevChains(specs) as chains:
        poa = chains["poa"]
        act = Activity(poa)
        await act.setup()
        tiers = await deploy_public_tiers(chains, workdir)
        public = tiers.config_for(0)
        public["forward"].pop("confirmations", None)
        head0 = int(await poa.rpc("eth_blockNumber"), 16)
        say(f"backlog: {args.backlog_blocks} blocks of ~{args.code_kb_per_block} KiB of code from block {head0}")
        backlog_bytes = 0
        while int(await poa.rpc("eth_blockNumber"), 16) < head0 + args.backlog_blocks:
            chunk: list[bytes] = []
            while sum(map(len, chunk)) < args.code_kb_per_block * 1024:
                chunk.append(next(codes))
            backlog_bytes += sum(map(len, chunk))
            await act.deploy(chunk)
            await act.settle(timeout=120.0)
        await act.settle(timeout=120.0)
        backlog_head = int(await poa.rpc("eth_blockNumber"), 16)
        say(f"backlog ready: blocks up to {backlog_head}, {len(act.deployed)} contracts, "
            f"{backlog_bytes / 2**20:.1f} MiB of code")
        port = free_port()
        cfg_path = workdir / "edge.toml"
        cfg_path.write_text(dump_toml(_override({
            "node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id},
            "outbox": {"path": "edge.sqlite"},
            "metrics": {"port": port},
            "checkpoint": {"every_blocks": args.every_blocks},
            "capabilities": {"enabled": args.analysis == "on"},
            "log": {"level": "warning"},
            **public,
        }, args.set)))
        # the start-up stages: a child interpreter on a copy of the config (its own outbox)
        start_cfg = workdir / "startup.toml"
        start_cfg.write_text(cfg_path.read_text().replace('"edge.sqlite"', '"startup.sqlite"'))
        out = subprocess.run([sys.executable, __file__, "--startup", str(start_cfg)], cwd=REPO, check=True,
                             env=dict(os.environ, **dict(kv.split("=", 1) for kv in args.env)), capture_output=True, text=True, preexec_fn=die_with_parent)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        say(f"start-up: {result}")
        env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env))
        with open(workdir / "agent.log", "ab") as log_fh:
            proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg_path)], cwd=REPO,
                                    env=env, stdout=subprocess.DEVNULL, stderr=log_fh, preexec_fn=die_with_parent)
        s = Sampler(proc.pid)
        try:
            t0 = time.monotonic()
            while True:  # exec -> first block in SQLite: its cursor row, read every 20 ms (the
                # metrics would tell it only at their next refresh, up to 5 s later)
                if proc.poll() is not None:
                    raise SystemExit(f"edge run exited ({proc.returncode}): "
                                     + (workdir / "agent.log").read_text(errors="replace")[-3000:])
                if await asyncio.to_thread(peek, workdir / "edge.sqlite", "cursor"):
                    break
                if time.monotonic() - t0 > 120:
                    raise SystemExit("no block written within 120 s of the agent's start")
                await asyncio.sleep(0.02)
            result["first_block_s"] = round(time.monotonic() - t0, 3)
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"edge run exited ({proc.returncode}): "
                                     + (workdir / "agent.log").read_text(errors="replace")[-3000:])
                s.sample()
                m = await asyncio.to_thread(scrape_metrics, port)
                if m.get("edge_cursor_block", -1) >= backlog_head:
                    break
                if time.monotonic() - t0 > 900:
                    raise SystemExit("catch-up did not finish in 900 s")
                await asyncio.sleep(0.2)
            result["catch_up_s"] = round(time.monotonic() - t0, 1)
            result.update(s.figures("catch_up"))
            say(f"caught up in {result['catch_up_s']} s: {result['catch_up_mb']} MB")
            # the backlog's scores in the served metrics (refreshed every 5 s) before the live stage
            lat0 = dict(await _all_scored(port, workdir / "edge.sqlite", proc))
            s.reset()
            live_from = int(await poa.rpc("eth_blockNumber"), 16)
            t1 = time.monotonic()
            n = 0
            while (now := time.monotonic()) - t1 < args.live_s:
                if now < t1 + n:
                    s.sample()
                    await asyncio.sleep(min(0.2, t1 + n - now))
                    continue
                await act.deploy([next(codes) for _ in range(args.contracts)])
                n += 1
                if proc.poll() is not None:
                    raise SystemExit(f"edge run exited ({proc.returncode})")
            await act.settle(timeout=120.0)
            live_to = int(await poa.rpc("eth_blockNumber"), 16)
            t2 = time.monotonic()
            while time.monotonic() - t2 < args.drain_s:  # until what the live stage cut is anchored
                s.sample()
                m = await asyncio.to_thread(scrape_metrics, port)
                want = (live_to + 1) // args.every_blocks - (live_from + 1) // args.every_blocks
                if m.get("edge_checkpoints_anchored_total", 0) >= (backlog_head + 1) // args.every_blocks + want:
                    break
                await asyncio.sleep(0.5)
            m = await asyncio.to_thread(scrape_metrics, port)
            lat = [(le, n - lat0.get(le, 0.0)) for le, n in await _all_scored(port, workdir / "edge.sqlite", proc)]
            result.update(_latency_figures(lat))
            result.update(s.figures("live"))
            result.update({"live_s": args.live_s, "live_contracts_per_s": args.contracts,
                           "checkpoints_anchored": int(m.get("edge_checkpoints_anchored_total", 0)),
                           "contracts_scored": int(m.get("edge_contracts_scored_total", 0))})
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result.update({"backlog_blocks": backlog_head - head0, "backlog_code_mib": round(backlog_bytes / 2**20, 1),
                   "contracts": len(act.deployed), "analysis": args.analysis == "on",
                   "every_blocks": args.every_blocks})
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--startup", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--backlog-blocks", type=int, default=64)
    ap.add_argument("--code-kb-per-block", type=int, default=320, help="KiB of runtime code per backlog block")
    ap.add_argument("--live-s", type=float, default=30.0)
    ap.add_argument("--contracts", type=int, default=50, help="deployments per second in the live stage")
    ap.add_argument("--every-blocks", type=int, default=32, help="checkpoint.every_blocks")
    ap.add_argument("--drain-s", type=float, default=40.0)
    ap.add_argument("--analysis", choices=("on", "off"), default="on")
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="set in the environment of the agent (e.g. MALLOC_ARENA_MAX=2), repeatable")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config key of the agent (VALUE as JSON), repeatable")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.startup is not None:
        _startup_child(a.startup)
        return 0
    if a.workdir:
        a.workdir.mkdir(parents=True, exist_ok=True)
        res = asyncio.run(run(a, a.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="edge-rss-") as tmp:
            res = asyncio.run(run(a, Path(tmp)))
    print(json.dumps(res, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
