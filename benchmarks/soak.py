"""Soak test of forwarding (issue 13): sustained load on 1 s blocks with the default
``checkpoint.every_blocks = 64``, plus one checkpoint of >= 10,000 records.

It starts the dev chains as ``edge demo`` does (:class:`edge.devnet.anvil.DevChains`,
:func:`edge.devnet.tiers.deploy_public_tiers`): the local chain on anvil with 1 s blocks and
a block gas limit large enough for the rate (``--gas-limit``), two testnets and mainnet
with their default limits (30M gas). It runs ``edge run`` as an operator would (a child
process, scoring on, the default ``[ingest]``, ``[checkpoint]`` and ``[forward]`` settings
except the addresses), and drives real activity on the local chain at a target rate
(:class:`edge.devnet.activity.Activity`): ``--contracts`` deployments per second of real
runtime bytecode from ``--corpus`` (a share of them created by a contract, as in the
demo) and ``--logs`` logs per second (the ``Spawned`` events of those, the rest CRUD
writes), for ``--minutes``. When the rate reached cannot fill one 64-block range with
``--min-records`` records, a burst (``--burst auto``) fills the next range with contracts
created by a contract. Then it waits until every checkpoint up to the last active block is
anchored, stops the agent, and runs the auditor (:class:`edge.audit.verify.Auditor`, the
local chain re-read) over every anchored checkpoint.

Figures: achieved contracts/s and logs/s (ground truth of what the chain mined), checkpoints
cut and anchored, records per checkpoint, the auditor's verdicts, transactions refused for
size (failed txs whose error is a size refusal, :func:`edge.forward.uploads.is_size_refusal`,
and ``upload_too_large`` alarms), the forwarding lag per checkpoint (from its cut to its
anchor confirmed on mainnet, from the agent's own outbox: max, p99, p50), the ingest lag in
blocks (the agent's Prometheus endpoint), the agent's peak RSS (``VmHWM``, and its analysis
worker's), and the CPU seconds of each process during the activity (the generator, the
agent, the local anvil, the public anvils) to name the bottleneck when the rate is not
reached. Ends with one JSON line; exits 1 naming every acceptance check that failed.

Usage::

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--contracts 100] [--logs 100]
        [--corpus ../shared/data/contracts/unlabeled_train.jsonl.gz] [--burst auto|on|off]
        [--workdir DIR] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.audit.verify import Auditor, TestnetRef  # noqa: E402
from edge.cli.main import run_async  # noqa: E402
from edge.config import dump_toml  # noqa: E402
from edge.devnet.scrape import scrape_metrics  # noqa: E402
from edge.devnet.activity import Activity, _deploy_gas  # noqa: E402
from edge.devnet.anvil import DevChains, free_port  # noqa: E402
from edge.devnet.demo import bytecodes  # noqa: E402
from edge.devnet.netns import die_with_parent  # noqa: E402
from edge.devnet.tiers import deploy_public_tiers, tier_specs  # noqa: E402
from edge.forward.uploads import TX_GAS_CAP, is_size_refusal  # noqa: E402
from edge.store.forward_report import ForwardReport, forward_report  # noqa: E402
from edge.devnet.procfs import children, status_kb  # noqa: E402

EVERY_BLOCKS = 64
"""The default ``checkpoint.every_blocks`` (the agent runs with it; this is only for the burst's timing)."""


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes (/proc)


def _cpu_s(pid: int | None) -> float:
    """utime + stime of ``pid`` and its reaped children, seconds (0 if gone)."""
    if pid is None:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Samples:
    """What the sampler saw of the agent process, every ``period`` seconds."""

    agent_hwm_kb: int = 0
    worker_hwm_kb: int = 0
    peak_sum_kb: int = 0
    ingest_lag_max: int = 0
    ingest_lags: list[int] = field(default_factory=list)


async def _sample(pid: int, metrics_port: int, s: Samples, period: float = 1.0) -> None:
    while True:
        kids = children(pid)
        s.agent_hwm_kb = max(s.agent_hwm_kb, status_kb(pid, "VmHWM"))
        s.worker_hwm_kb = max([s.worker_hwm_kb] + [status_kb(k, "VmHWM") for k in kids])
        s.peak_sum_kb = max(s.peak_sum_kb, status_kb(pid, "VmRSS") + sum(status_kb(k, "VmRSS") for k in kids))
        m = await asyncio.to_thread(scrape_metrics, metrics_port)
        if "edge_lag_blocks" in m:
            lag = int(m["edge_lag_blocks"])
            s.ingest_lags.append(lag)
            s.ingest_lag_max = max(s.ingest_lag_max, lag)
        await asyncio.sleep(period)


# ------------------------------------------------------------------ activity

@dataclass
class Driver:
    """Sends activity at a target rate per second; receipts are settled by a side task so
    sending never waits for mining (the ground truth lands in ``act``)."""

    act: Activity
    codes: Iterator[bytes]
    contracts_per_s: float
    logs_per_s: float
    spawn_share: float
    ticks: int = 0
    late_ticks: int = 0
    send_s: float = 0.0
    _acc_deploy: float = 0.0
    _acc_spawn: float = 0.0
    _acc_write: float = 0.0

    async def tick(self) -> None:
        """One second's worth of transactions."""
        t = time.monotonic()
        self._acc_spawn += self.contracts_per_s * self.spawn_share
        self._acc_deploy += self.contracts_per_s * (1.0 - self.spawn_share)
        n_spawn, n_deploy = int(self._acc_spawn), int(self._acc_deploy)
        self._acc_spawn -= n_spawn
        self._acc_deploy -= n_deploy
        # every spawned contract emits one Spawned log: the CRUD writes make up the rest
        self._acc_write += max(0.0, self.logs_per_s - self.contracts_per_s * self.spawn_share)
        n_write = int(self._acc_write)
        self._acc_write -= n_write
        await self.act.deploy([c for _, c in zip(range(n_deploy), self.codes)])
        await self.spawn(n_spawn)
        await self.act.crud_writes(n_write)
        self.ticks += 1
        self.send_s += time.monotonic() - t

    async def spawn(self, n: int) -> None:
        """``n`` contracts created by the Spawner, grouped so each tx stays under the
        EIP-7825 per-transaction gas cap."""
        group: list[bytes] = []
        gas = 100_000
        for _, c in zip(range(n), self.codes):
            if group and gas + _deploy_gas(c) > TX_GAS_CAP * 0.9:
                await self.act.spawn(group)
                group, gas = [], 100_000
            group.append(c)
            gas += _deploy_gas(c)
        if group:
            await self.act.spawn(group)

    async def run_for(self, seconds: float) -> None:
        """Tick once per second for ``seconds`` (a tick that overran starts the next at once)."""
        start = time.monotonic()
        n = 0
        while (now := time.monotonic()) - start < seconds:
            due = start + n
            if now < due:
                await asyncio.sleep(due - now)
            elif now - due > 1.0:
                self.late_ticks += 1
            await self.tick()
            n += 1


async def _settle_forever(act: Activity) -> None:
    while True:
        await act.settle(timeout=300.0)
        await asyncio.sleep(0.5)


def _cycle_codes(corpus: Path) -> Iterator[bytes]:
    while True:
        yield from bytecodes(corpus)


async def _head(chain: Any) -> int:
    return int(await chain.rpc("eth_blockNumber"), 16)


# ------------------------------------------------------------------ figures

def _pct(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0..100) of ``xs``; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _records_per_range(act: Activity, every: int) -> dict[int, int]:
    """Ground truth: records the activity caused per checkpoint range (start block -> n)."""
    out: dict[int, int] = {}
    for d in act.deployed.values():
        out[d.block_number // every * every] = out.get(d.block_number // every * every, 0) + 1
    for b, _ in act.log_keys:
        out[b // every * every] = out.get(b // every * every, 0) + 1
    return out


# ------------------------------------------------------------------ the run

async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    quiet = args.quiet
    t0 = time.monotonic()
    specs = tuple(replace(t, extra_args=(*t.extra_args, "--gas-limit", str(args.gas_limit))) if t.name == "poa" else t
                  for t in tier_specs("anvil"))
    async with DevChains(specs) as chains:
        poa = chains["poa"]
        act = Activity(poa)
        await act.setup()
        tiers = await deploy_public_tiers(chains, workdir)
        public = tiers.config_for(0)
        for k in ("chunk_bytes", "confirmations"):  # the demo's choices: back to the defaults
            public["forward"].pop(k, None)
        metrics_port = free_port()
        (workdir / "edge.toml").write_text(dump_toml({
            "node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id},
            "outbox": {"path": "edge.sqlite"},
            "metrics": {"port": metrics_port},
            "log": {"stats_interval_s": 10.0},
            **({"ingest": {"verify": args.ingest_verify}} if args.ingest_verify else {}),
            **({"capabilities": {"enabled": args.analysis == "on"}} if args.analysis else {}),
            **public,
        }))
        _say(quiet, f"dev chains up (local gas limit {args.gas_limit:,}); starting `edge run` (log: {workdir / 'agent.log'})")
        with open(workdir / "agent.log", "ab") as log_fh:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge", "run", "--config", str(workdir / "edge.toml"), cwd=REPO,
                stdout=asyncio.subprocess.DEVNULL, stderr=log_fh, preexec_fn=die_with_parent)
        samples = Samples()
        sampler = asyncio.create_task(_sample(proc.pid, metrics_port, samples), name="sampler")
        settler = asyncio.create_task(_settle_forever(act), name="settle")
        public_pids = [c.pid for n, c in chains.chains.items() if n != "poa"]

        def cpu() -> dict[str, float]:
            return {"generator": _cpu_s(os.getpid()), "agent": _cpu_s(proc.pid),
                    "analysis_worker": sum(_cpu_s(k) for k in children(proc.pid)), "anvil_local": _cpu_s(poa.pid),
                    "anvil_public": sum(_cpu_s(p) for p in public_pids)}

        def alive() -> None:
            if proc.returncode is not None:
                tail = (workdir / "agent.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"edge run exited with status {proc.returncode}:\n{tail}")

        report = ForwardReport()
        try:
            drv = Driver(act, _cycle_codes(args.corpus), args.contracts, args.logs, args.spawn_share)
            await asyncio.sleep(2.0)
            alive()
            cpu0, wall0 = cpu(), time.monotonic()
            deployed0, logs0 = len(act.deployed), act.logs
            head0 = await _head(poa)
            _say(quiet, f"activity: {args.contracts} contracts/s, {args.logs} logs/s for {args.minutes} min from block {head0}")
            phase = asyncio.create_task(drv.run_for(args.minutes * 60.0), name="activity")
            while not phase.done():
                await asyncio.wait([phase], timeout=10.0)
                alive()
                if settler.done():
                    settler.result()
                rep = await asyncio.to_thread(forward_report, workdir / "edge.sqlite", poa.chain_id)
                anchored = sum(c.state == "anchored" for c in rep.checkpoints)
                _say(quiet, f"t={time.monotonic() - wall0:6.0f}s block {await _head(poa)}, sent {len(act.deployed) - deployed0} contracts, "
                            f"{act.logs - logs0} logs settled; ingest lag {samples.ingest_lags[-1:] or '?'} blocks; "
                            f"checkpoints {len(rep.checkpoints)} cut, {anchored} anchored, records max "
                            f"{max((c.records for c in rep.checkpoints), default=0)}")
            phase.result()
            # settle what was sent in the timed phase, then count it
            await act.settle(timeout=300.0)
            wall = time.monotonic() - wall0
            cpu1 = cpu()
            head1 = await _head(poa)
            achieved_c = (len(act.deployed) - deployed0) / wall
            achieved_l = (act.logs - logs0) / wall
            projected = (achieved_c + achieved_l) * EVERY_BLOCKS
            # a range wholly inside the timed phase (else even the full rate fills none)
            full_range = (head0 // EVERY_BLOCKS + 2) * EVERY_BLOCKS <= head1
            burst = args.burst == "on" or (args.burst == "auto" and (projected < args.min_records * 1.1
                                                                      or not full_range))
            burst_info: dict[str, Any] = {"done": False}
            if burst:  # it settles each step itself
                settler.cancel()
                await asyncio.gather(settler, return_exceptions=True)
                burst_info = await _burst(act, drv, poa, args.min_records, args.gas_limit, quiet)
            await act.settle(timeout=300.0)
            settler.cancel()
            head = await _head(poa)
            _say(quiet, f"activity over at block {head}: waiting until every checkpoint up to it is anchored")
            loop = asyncio.get_running_loop()
            end = loop.time() + args.drain_timeout
            drained = False
            while loop.time() < end:
                alive()
                report = await asyncio.to_thread(forward_report, workdir / "edge.sqlite", poa.chain_id)
                mine = [c for c in report.checkpoints if c.from_block <= head]
                if mine and mine[-1].to_block >= head and all(c.state == "anchored" for c in mine):
                    drained = True
                    break
                await asyncio.sleep(2.0)
            drain_s = time.monotonic() - wall0 - wall
            report = await asyncio.to_thread(forward_report, workdir / "edge.sqlite", poa.chain_id)
            _say(quiet, f"drained: {drained} after {drain_s:.0f} s; stopping the agent")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(60):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            for t in (sampler, settler):
                t.cancel()
            await asyncio.gather(sampler, settler, return_exceptions=True)
        report = await asyncio.to_thread(forward_report, workdir / "edge.sqlite", poa.chain_id)
        truth = _records_per_range(act, EVERY_BLOCKS)
        _say(quiet, "auditor: verifying every anchored checkpoint (mainnet -> testnets -> local chain)")
        fwd = public["forward"]
        t_audit = time.monotonic()
        async with Auditor(fwd["mainnet"]["url"], bytes.fromhex(fwd["mainnet"]["anchor"][2:]),
                           [TestnetRef(t["url"], t["chain_id"], bytes.fromhex(t["store"][2:])) for t in fwd["testnets"]],
                           tiers.auditor_key, local_ws=poa.ws_url if args.audit_local else None,
                           local_verify=args.ingest_verify or "strict") as auditor:
            verdicts = await auditor.verify_all()
        audit_s = time.monotonic() - t_audit

    mine = [c for c in report.checkpoints if c.from_block <= head]
    ok_ranges = {v.from_block for v in verdicts if v.ok and (v.local_checked or not args.audit_local)}
    failed_verdicts = [v for v in verdicts if not v.ok]
    lags = [c.lag_s for c in mine if c.lag_s is not None]
    e2e = [c.anchored_at - c.last_block_time for c in mine if c.anchored_at is not None and c.last_block_time]
    size_refusals = sum(1 for f in report.failed_txs if is_size_refusal(f.error)) + report.alarms.get("upload_too_large", 0)
    records = [c.records for c in mine]
    cpu_used = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
    result: dict[str, Any] = {
        "minutes": args.minutes,
        "target_contracts_per_s": args.contracts,
        "target_logs_per_s": args.logs,
        "achieved_contracts_per_s": round(achieved_c, 1),
        "achieved_logs_per_s": round(achieved_l, 1),
        "active_blocks": head1 - head0,
        "block_interval_s": round(wall / max(1, head1 - head0), 2),
        "ingest_verify": args.ingest_verify or "strict (default)",
        "audit_local_reread": args.audit_local,
        "analysis": args.analysis or "on (default)",
        "generator_late_ticks": drv.late_ticks,
        "generator_send_s_per_tick": round(drv.send_s / max(1, drv.ticks), 3),
        "cpu_s": cpu_used,
        "cpu_share_of_wall": {k: round(v / wall, 2) for k, v in cpu_used.items()},
        "burst": burst_info,
        "checkpoints_cut": len(mine),
        "checkpoints_anchored": sum(c.state == "anchored" for c in mine),
        "checkpoints_verified": sum(c.from_block in ok_ranges for c in mine),
        "verdicts": len(verdicts),
        "verify_fail": len(failed_verdicts),
        "records_per_checkpoint_max": max(records, default=0),
        "records_per_checkpoint_p50": _pct([float(r) for r in records], 50),
        "records_ground_truth_max": max(truth.values(), default=0),
        "refused_for_size": size_refusals,
        "failed_txs": len(report.failed_txs),
        "alarms": report.alarms,
        "forward_lag_s_max": _r(max(lags, default=None)),
        "forward_lag_s_p99": _r(_pct(lags, 99)),
        "forward_lag_s_p50": _r(_pct(lags, 50)),
        "block_to_anchor_s_max": _r(max(e2e, default=None)),
        "ingest_lag_blocks_max": samples.ingest_lag_max,
        "ingest_lag_blocks_p99": _pct([float(x) for x in samples.ingest_lags], 99),
        "agent_rss_peak_mb": round(samples.agent_hwm_kb / 1024, 1),
        "analysis_worker_rss_peak_mb": round(samples.worker_hwm_kb / 1024, 1),
        "agent_plus_worker_rss_peak_mb": round(samples.peak_sum_kb / 1024, 1),
        "drained": drained,
        "drain_s": round(drain_s, 1),
        "audit_s": round(audit_s, 1),
        "seconds": round(time.monotonic() - t0, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if failed_verdicts:
        result["verify_fail_reasons"] = [f"{v.from_block}..{v.to_block}: {'; '.join(v.reasons)[:300]}"
                                         for v in failed_verdicts[:5]]
    bound = args.lag_bound_s
    checks = {
        "drained": drained,
        "every_checkpoint_anchored": bool(mine) and result["checkpoints_anchored"] == len(mine),
        "every_checkpoint_verified": bool(mine) and result["checkpoints_verified"] == len(mine)
        and not failed_verdicts,
        f"a_checkpoint_of_{args.min_records}_records": result["records_per_checkpoint_max"] >= args.min_records,
        "no_tx_refused_for_size": size_refusals == 0,
        f"forward_lag_max_within_{bound:g}_s": bool(lags) and max(lags) <= bound,
        f"ingest_lag_within_{args.ingest_lag_bound}_blocks": samples.ingest_lag_max <= args.ingest_lag_bound,
    }
    result["failed_checks"] = [k for k, v in checks.items() if not v]
    result["ok"] = not result["failed_checks"]
    return result


async def _burst(act: Activity, drv: Driver, poa: Any, min_records: int, gas_limit: int,
                 quiet: bool) -> dict[str, Any]:
    """Fill one fresh 64-block range with at least ``min_records`` records (+10%): the
    normal activity goes on until the next range starts, then contracts created by the
    Spawner (each one a contract and a ``Spawned`` log: two records) are sent in steps of
    about half a block's gas, each mined (its receipts settled) before the next is sent:
    anvil was seen to drop transactions from an over-full pool, leaving a nonce gap."""
    head = await _head(poa)
    start = (head // EVERY_BLOCKS + 1) * EVERY_BLOCKS
    per_block = max(1, int(gas_limit * 0.4 / 1_500_000))  # about 1.3M gas per corpus contract
    _say(quiet, f"burst: {min_records} records in the range from block {start}, {per_block} contracts per block")
    while await _head(poa) < start:
        await drv.tick()
        await asyncio.sleep(max(0.0, 1.0 - drv.send_s / max(1, drv.ticks)))
    await act.settle(timeout=120.0)
    n = math.ceil(min_records * 1.1 / 2)
    t = time.monotonic()
    sent = 0
    while sent < n:
        step = min(per_block, n - sent)
        await drv.spawn(step)
        sent += step
        await act.settle(timeout=120.0)
    got = _records_per_range(act, EVERY_BLOCKS).get(start, 0)
    _say(quiet, f"burst: {n} contracts sent in {time.monotonic() - t:.1f} s; range {start}.. holds {got} records")
    return {"done": True, "range_start": start, "contracts": n, "records_in_range": got,
            "send_s": round(time.monotonic() - t, 1)}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the soak, print the JSON line; 0 if every check passed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of activity (default 10)")
    ap.add_argument("--contracts", type=float, default=100.0, help="contract deployments per second (default 100)")
    ap.add_argument("--logs", type=float, default=100.0, help="logs per second (default 100)")
    ap.add_argument("--spawn-share", type=float, default=1 / 3,
                    help="share of the contracts created by a contract (default 1/3, as in the demo)")
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz",
                    help="real runtime bytecode, jsonl.gz (default ../shared/data/contracts/unlabeled_train.jsonl.gz)")
    ap.add_argument("--gas-limit", type=int, default=1_000_000_000, help="block gas limit of the local chain")
    ap.add_argument("--burst", choices=("auto", "on", "off"), default="auto",
                    help="fill one range with --min-records records (auto: when the rate reached cannot)")
    ap.add_argument("--min-records", type=int, default=10_000, help="records the largest checkpoint must hold")
    ap.add_argument("--lag-bound-s", type=float, default=128.0,
                    help="forwarding lag bound, s (default 128: two checkpoint periods of 64 one-second blocks)")
    ap.add_argument("--ingest-lag-bound", type=int, default=64, help="ingest lag bound, blocks (default 64)")
    ap.add_argument("--drain-timeout", type=float, default=900.0, help="seconds to wait for the backlog to be anchored")
    ap.add_argument("--no-audit-local", dest="audit_local", action="store_false",
                    help="the auditor checks mainnet -> testnets only (as an auditor without access to the "
                         "private chain does), without re-reading every record from the local chain, whose "
                         "anvil grows by several GB serving the old states that re-read asks for")
    ap.add_argument("--ingest-verify", choices=("strict", "receipts", "headers", "off"), default=None,
                    help="the agent's ingest.verify (default: the agent's own default, strict)")
    ap.add_argument("--analysis", choices=("on", "off"), default=None,
                    help="the agent's [capabilities] enabled (default: the agent's own default, on)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep config, outbox and agent.log here")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    if not args.corpus.is_file():
        ap.error(f"--corpus {args.corpus}: no such file")
    if not 0.0 <= args.spawn_share <= 1.0:
        ap.error("--spawn-share must be within 0..1")
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-soak-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run_async(lambda: soak(args, workdir))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(result, sort_keys=True), flush=True)
    if not result["ok"]:
        print("soak: failed: " + ", ".join(result["failed_checks"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
