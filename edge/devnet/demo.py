"""``edge demo``: the main job end to end on embedded local chains.

Starts the dev chains (local PoA chain, two testnets, mainnet; :mod:`edge.devnet.anvil`),
deploys real contract bytecode (compiled artifacts from the npm packages the project
pins, or a ``--corpus`` file) and drives CRUD writes on the local chain, runs the agent
against it, prints a live summary, and ends with one JSON line that compares what the
agent stored with the ground truth of what was sent.

With ``local="clique"`` (``edge demo --local clique``) the local tier is a real Clique
network, EthereumJS sealers in a network namespace (:mod:`edge.devnet.demo_clique`),
instead of anvil: it carries empty blocks only (the client drops transactions), which the
agent ingests with their seals checked against the signer set from the genesis, then
checkpoints, anchors and verifies as on anvil.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.aio import cancel_and_wait, first_error
from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChains
from edge.devnet.demo_clique import LocalClique, seal_summary
from edge.devnet.tiers import deploy_public_tiers, tier_specs
from edge.config import dump_toml, load_config
from edge.devnet.corpus import hex_to_code, iter_corpus, iter_registry_artifacts
from edge.errors import EdgeError
from edge.store import chain_data
from edge.store.status import anchoring_progress, code_hashes_by_address
from edge.agent import Agent
from edge.chain.records import EIP170_MAX_CODE_SIZE
from edge.audit.verify import Auditor, TestnetRef, print_verdicts

__all__ = ["DemoOptions", "LOCAL_CLIENTS", "run_demo", "bytecodes"]

log = logging.getLogger("edge.devnet.demo")
_REPO = Path(__file__).resolve().parents[2]

LOCAL_CLIENTS: tuple[str, ...] = ("anvil", "clique")
"""What can serve the local tier (``edge demo --local``): anvil, or EthereumJS Clique sealers."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Options of ``edge demo``: seconds of activity, optional corpus, a workdir to keep
    (else a temporary one), whether to print JSON only at the end, whether to score, and
    the client of the first testnet (``testnet_client``: ``"anvil"`` or ``"hardhat"``) and
    of the local tier (``local``: ``"anvil"``, or ``"clique"`` for EthereumJS sealers)."""

    seconds: float = 60.0
    corpus: Path | None = None
    workdir: Path | None = None
    json_out: bool = False
    score: bool = True
    checkpoint_blocks: int = 5
    min_anchored: int = 5
    drain_timeout: float = 120.0
    deploys_per_tick: int = 6
    spawns_per_tick: int = 3
    writes_per_tick: int = 20
    testnet_client: str = "anvil"
    local: str = "anvil"


def bytecodes(corpus: Path | None) -> Iterator[bytes]:
    """Real runtime bytecodes to deploy: from ``corpus`` (jsonl.gz), else cycling through
    the compiled artifacts of the pinned npm packages. Raises EdgeError if there are none."""
    if corpus is not None:
        for row in iter_corpus(corpus):
            code = hex_to_code(row.bytecode, f"{corpus} line {row.line}")
            if 0 < len(code) <= EIP170_MAX_CODE_SIZE and code[0] != 0xEF:
                yield code
        return
    arts = list(iter_registry_artifacts(_REPO / "node_modules"))
    if not arts:
        raise EdgeError("no compiled contracts found in node_modules/ (run `make setup`), or pass --corpus")
    while True:  # the registry set is small: cycle through it
        for _, code in arts:
            yield code


async def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the demo; return (and print as the last line) the result object.

    Keys: blocks, contracts, contracts_expected, contracts_missing, logs, logs_expected,
    lag, scored, flagged, checkpoints, checkpoints_anchored, verify_ok, verify_fail,
    seconds, agent_rss_peak_mb and scored_p99_ms (see :func:`_latency_and_rss`), clients (which
    client served each tier), local (the local tier: its client,
    what activity it carried; with ``local="clique"`` also its sealers and ``seals``, see
    :func:`edge.devnet.demo_clique.seal_summary`), ok (every deployment and log found
    exactly once, >= ``min_anchored`` checkpoints anchored, every anchored checkpoint
    verified OK, and on Clique every block's seal authorized).

    Raises ValueError for an unknown ``opts.local``; DevChainError when a chain cannot be
    started (for ``"clique"``: no network namespace here, the message says why).
    """
    if opts.local not in LOCAL_CLIENTS:
        raise ValueError(f"local tier must be one of {', '.join(LOCAL_CLIENTS)}, got {opts.local!r}")
    tmp = None
    workdir = opts.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-demo-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if opts.local == "clique":
            return await _run_clique(opts, workdir)
        return await _run(opts, workdir)
    finally:
        if tmp is not None:
            tmp.cleanup()


async def _run(opts: DemoOptions, workdir: Path) -> dict[str, Any]:
    say: Callable[[str], None] = (lambda _: None) if opts.json_out else (lambda msg: print(msg, flush=True))
    t0 = time.monotonic()
    async with DevChains(tier_specs(opts.testnet_client)) as chains:
        poa = chains["poa"]
        say("dev chains up: " + ", ".join(f"{c.name} (chain {c.chain_id}) {c.ws_url}" for c in chains.chains.values()))
        act = Activity(poa)
        await act.setup()
        tiers = await deploy_public_tiers(chains, workdir)
        public, auditor_key = tiers.config_for(0), tiers.auditor_key
        say(f"testnets: CrudStore at {', '.join(t['store'] for t in public['forward']['testnets'])}; "
            f"mainnet: Anchor at {public['forward']['mainnet']['anchor']}")
        raw = {
            "node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id},
            "ingest": {"confirmations": 2},
            "poa": {"engine": "auto"},
            "outbox": {"path": "edge.sqlite"},
            "checkpoint": {"every_blocks": opts.checkpoint_blocks},
            "log": {"stats_interval_s": 10.0},
            **public,
        }
        (workdir / "edge.toml").write_text(dump_toml(raw))
        cfg = load_config(workdir / "edge.toml")
        codes = bytecodes(opts.corpus)
        async with Agent(cfg, score=opts.score) as agent:
            runner = asyncio.create_task(agent.run(), name="agent")
            try:
                deadline = time.monotonic() + opts.seconds
                next_print = 0.0
                while time.monotonic() < deadline:
                    await act.deploy([c for _, c in zip(range(opts.deploys_per_tick), codes)])
                    await act.spawn([c for _, c in zip(range(opts.spawns_per_tick), codes)])
                    await act.crud_writes(opts.writes_per_tick)
                    await act.settle()
                    if runner.done():
                        runner.result()  # surface the agent's error
                    if time.monotonic() >= next_print:
                        say(_summary(agent, t0))
                        next_print = time.monotonic() + 2.0
                    await asyncio.sleep(0.5)
                say("activity stopped; waiting for the agent to catch up and anchor the backlog")
                await _drain(agent, runner, poa, say, t0, opts.drain_timeout, opts.min_anchored)
            finally:
                await cancel_and_wait(runner)
            result = await _result(agent, act, t0)
        say("auditor: verifying every anchored checkpoint (mainnet -> testnets -> local chain)")
        fwd = cfg.forward
        async with Auditor(fwd.mainnet.url, bytes.fromhex(fwd.mainnet.anchor[2:]),
                           [TestnetRef(t.url, t.chain_id, bytes.fromhex(t.store[2:])) for t in fwd.testnets],
                           auditor_key, local_ws=poa.ws_url) as auditor:
            verdicts = await auditor.verify_all()
        if not opts.json_out:
            print_verdicts(verdicts, as_json=False)
        result["clients"] = chains.clients
        result["local"] = {"client": "anvil", "activity": "contract deployments, factory spawns, CRUD writes"}
        result["checkpoints_anchored"] = len(verdicts)  # as read from mainnet by the auditor
        result["verify_ok"] = sum(v.ok for v in verdicts)
        result["verify_fail"] = sum(not v.ok for v in verdicts)
        result["ok"] = bool(result["ok"] and result["verify_fail"] == 0
                            and result["checkpoints_anchored"] >= max(opts.min_anchored, result["anchored_by_agent"]))
    print(json.dumps(result, sort_keys=True), flush=True)
    if not result["ok"]:
        print("demo: something did not match (see the JSON line)", file=sys.stderr)
    return result


async def _run_clique(opts: DemoOptions, workdir: Path) -> dict[str, Any]:
    """The demo with the local tier on EthereumJS Clique sealers (:class:`LocalClique`):
    no activity can be sent there (the client drops transactions), so the agent follows
    the empty blocks from the genesis for ``opts.seconds`` s, then drains and the auditor
    verifies every anchored checkpoint, re-reading the local chain through the relay."""
    say: Callable[[str], None] = (lambda _: None) if opts.json_out else (lambda msg: print(msg, flush=True))
    t0 = time.monotonic()
    specs = tuple(t for t in tier_specs(opts.testnet_client) if t.name != "poa")
    chain_id = next(t.chain_id for t in tier_specs() if t.name == "poa")
    local = LocalClique(workdir / "clique", chain_id=chain_id)
    local.check()  # no namespace here: fail before anything starts
    async with DevChains(specs) as chains, AsyncExitStack() as stack:
        # the sealers take ~15 s to come up (Node.js start, block 1, the second one joining):
        # deploy the public tiers meanwhile
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(stack.enter_async_context(local))
                deployed = tg.create_task(deploy_public_tiers(chains, workdir))
        except BaseExceptionGroup as eg:
            raise first_error(eg) from None
        tiers = deployed.result()
        info = local.info()
        say(f"local tier: {info['client']}, {info['sealers']} Clique sealers {', '.join(local.signers)} "
            f"(chain {chain_id}, period {local.period} s) in a network namespace, relayed to {local.ws_url}; "
            f"activity: {info['activity']}")
        say("public tiers up: " + ", ".join(f"{c.name} ({c.client}, chain {c.chain_id}) {c.ws_url}"
                                            for c in chains.chains.values()))
        public, auditor_key = tiers.config_for(0), tiers.auditor_key
        raw = {
            "node": {"ws_url": local.ws_url, "chain_id": chain_id},
            "ingest": {"confirmations": 2},
            "poa": local.poa_section(),
            "outbox": {"path": "edge.sqlite"},
            "checkpoint": {"every_blocks": opts.checkpoint_blocks},
            "log": {"stats_interval_s": 10.0},
            **public,
        }
        (workdir / "edge.toml").write_text(dump_toml(raw))
        cfg = load_config(workdir / "edge.toml")
        async with Agent(cfg, score=opts.score) as agent:
            runner = asyncio.create_task(agent.run(), name="agent")
            try:
                deadline = time.monotonic() + opts.seconds
                while (left := deadline - time.monotonic()) > 0:
                    done, _ = await asyncio.wait({runner}, timeout=min(2.0, left))
                    if done:
                        runner.result()  # surface the agent's error
                        raise EdgeError("the agent stopped before the demo ended")
                    say(_summary(agent, t0))
                say("waiting for the agent to catch up and anchor the backlog")
                await _drain(agent, runner, local, say, t0, opts.drain_timeout, opts.min_anchored)
            finally:
                await cancel_and_wait(runner)
            result = await _result(agent, None, t0)
            seals = await seal_summary(agent.outbox, chain_id, local.signers)
        say("auditor: verifying every anchored checkpoint (mainnet -> testnets -> local chain)")
        fwd = cfg.forward
        async with Auditor(fwd.mainnet.url, bytes.fromhex(fwd.mainnet.anchor[2:]),
                           [TestnetRef(t.url, t.chain_id, bytes.fromhex(t.store[2:])) for t in fwd.testnets],
                           auditor_key, local_ws=local.ws_url, local_poa=local.poa_section()) as auditor:
            verdicts = await auditor.verify_all()
        if not opts.json_out:
            print_verdicts(verdicts, as_json=False)
        result["clients"] = {"poa": local.client, **chains.clients}
        result["local"] = {**info, "seals": seals}
        result["checkpoints_anchored"] = len(verdicts)
        result["verify_ok"] = sum(v.ok for v in verdicts)
        result["verify_fail"] = sum(not v.ok for v in verdicts)
        sealed_ok = seals["sealed"] > 0 and seals["seal_ok"] == seals["sealed"] and not seals["strangers"]
        result["ok"] = bool(result["ok"] and sealed_ok and seals["alarms"] == 0 and result["verify_fail"] == 0
                            and result["checkpoints_anchored"] >= max(opts.min_anchored, result["anchored_by_agent"]))
    print(json.dumps(result, sort_keys=True), flush=True)
    if not result["ok"]:
        print("demo: something did not match (see the JSON line)", file=sys.stderr)
    return result


async def _drain(agent: Agent, runner: asyncio.Task[None], poa: Any, say: Callable[[str], None], t0: float,
                 timeout: float, min_anchored: int) -> None:
    """Wait until the agent has ingested the head, scored the backlog and anchored every
    checkpoint up to it, and at least ``min_anchored`` checkpoints in all (the chain keeps
    producing empty blocks meanwhile, so a short run still reaches that many)."""
    head = int(await poa.rpc("eth_blockNumber"), 16)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_print = 0.0
    while loop.time() < deadline:
        if runner.done():
            runner.result()
        scored = not agent.scorer or await agent.scorer.backlog() == 0
        cut = agent.checkpointer.stats.last_to if agent.checkpointer else -1
        unanchored, done = await anchoring_progress(agent.outbox, head)
        anchored = agent.forwarder is not None and cut >= head and unanchored == 0 and done >= min_anchored
        if agent.stats.cursor >= head and scored and anchored:
            return
        if loop.time() >= next_print:
            say(_summary(agent, t0))
            next_print = loop.time() + 3.0
        await asyncio.sleep(0.25)
    say(f"drain timed out after {timeout:.0f} s")


def _summary(agent: Agent, t0: float) -> str:
    s = agent.stats
    line = (f"t={time.monotonic() - t0:5.1f}s  head {s.head}  cursor {s.cursor}  lag {s.lag}  |  "
            f"blocks {s.blocks}  contracts {s.contracts}  logs {s.logs}")
    if agent.scorer is not None:
        line += f"  |  scored {agent.scorer.stats.scored}  flagged {agent.scorer.stats.flagged}"
    if agent.checkpointer is not None:
        line += f"  |  checkpoints {agent.checkpointer.stats.checkpoints}"
    if agent.forwarder is not None:
        f = agent.forwarder.stats
        line += f"  uploaded {f.uploaded}  anchored {f.checkpoints_anchored}"
    return line


async def _result(agent: Agent, act: Activity | None, t0: float) -> dict[str, Any]:
    """The result keys read from the agent's outbox; ``act`` None: no activity was sent
    (the Clique tier), so no contract and no log is expected."""
    ob = agent.outbox
    chain_id = agent.stats.chain_id
    found = await code_hashes_by_address(ob, chain_id)
    deployed = act.deployed if act is not None else {}
    setup = 2 if act is not None else 0
    sent_logs = act.logs if act is not None else 0
    missing = [a for a in deployed if a not in found]
    wrong = [a for a, d in deployed.items() if a in found and found[a] != [d.code_hash]]
    counts = await chain_data.counts(ob, chain_id)
    n_logs, n_blocks = counts.logs, counts.blocks
    scored = flagged = 0
    if agent.scorer is not None:
        scored, flagged = agent.scorer.stats.scored, agent.scorer.stats.flagged
    # the two setup deployments (CrudStore, Spawner) are found too but not in act.deployed
    extra = len(found) - len(deployed) - setup
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "blocks": int(n_blocks),
        "contracts": counts.contracts,
        "contracts_expected": len(deployed) + setup,
        "contracts_missing": len(missing),
        "contracts_wrong_code": len(wrong),
        "logs": int(n_logs),
        "logs_expected": sent_logs,
        "lag": agent.stats.lag,
        "reorgs": agent.stats.reorgs,
        "scored": scored,
        "flagged": flagged,
        "checkpoints": agent.checkpointer.stats.checkpoints if agent.checkpointer else 0,
        "anchored_by_agent": agent.forwarder.stats.checkpoints_anchored if agent.forwarder else 0,
        **_latency_and_rss(agent),
        "ok": not missing and not wrong and extra == 0 and int(n_logs) == sent_logs,
    }


def _latency_and_rss(agent: Agent) -> dict[str, Any]:
    """``agent_rss_peak_mb``: peak RSS (VmHWM) of this process in MiB (2^20 bytes, as
    ``edge bench`` reports it) until the agent stopped: the agent with all its stages
    (run in-process) plus the demo's activity driver and tier set-up; not the chain
    nodes (child processes) nor the auditor, which runs afterwards. ``scored_p99_ms``:
    p99 over the codes scored in this run of block first seen by ingest -> score
    committed (ms; a contract whose code was already scored is not a sample, its score
    exists when its block is written); None without scoring. ``scored_samples``: how
    many codes that p99 is over."""
    from edge.ingest.seen import p99

    lat = list(agent.scorer.latency_s) if agent.scorer is not None else []
    p = p99(lat)
    return {"agent_rss_peak_mb": round(_peak_rss_bytes() / 2**20, 1),
            "scored_p99_ms": None if p is None else round(p * 1000.0, 1),
            "scored_samples": len(lat)}


def _peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes (``/proc/self/status`` VmHWM,
    else ``getrusage`` ru_maxrss, KiB on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
