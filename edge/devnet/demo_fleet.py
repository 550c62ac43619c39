"""``edge demo --devices N --quorum M``: a fleet of N agents (separate ``edge run``
processes, each with its own key and SQLite) sharing the sync duty over the dev chains.

Reports per device what it attested (``Attested`` events on the local chain) and
anchored (``Anchored`` events it submitted on mainnet), the failed anchor attempts (a
race lost to the first-wins rule), and ends with the auditor's verdicts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.contracts import attestations as attest_abi
from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChains
from edge.rpc import eth
from edge.rpc import open_rpc
from edge.devnet.tiers import deploy_public_tiers, tier_specs
from edge.config import dump_toml
from edge.store.status import peek
from edge.audit.verify import Auditor, TestnetRef, print_verdicts

__all__ = ["run_fleet_demo"]


async def run_fleet_demo(*, devices: int, quorum: int, seconds: float, workdir: Path, json_out: bool,
                         codes: Any, score: bool, checkpoint_blocks: int = 5, takeover_s: float = 8.0,
                         drain_timeout: float = 180.0, batch: int = 1, batch_max_wait_s: float = 20.0,
                         testnet_client: str = "anvil") -> dict[str, Any]:
    """Run the fleet demo; print and return the result object (see module doc).
    ``testnet_client`` serves the first testnet (see :func:`edge.devnet.tiers.tier_specs`).

    Keys: devices, quorum, checkpoints_anchored, duplicate_anchors, failed_anchor_attempts,
    verify_ok, verify_fail, per_device, seconds, clients, ok. With ``batch`` K > 1 the fleet
    anchors batches (:mod:`edge.fleet.batches`): ``checkpoints_anchored`` counts the member
    checkpoints the auditor found in them, ``duplicate_anchors`` anchors of the same unit
    or a checkpoint found in two anchors.
    """
    say: Callable[[str], None] = (lambda _: None) if json_out else (lambda msg: print(msg, flush=True))
    t0 = time.monotonic()
    async with DevChains(tier_specs(testnet_client)) as chains:
        poa = chains["poa"]
        tiers = await deploy_public_tiers(chains, workdir, devices=devices, quorum=quorum, fleet=True,
                                          takeover_s=takeover_s, batch=batch)
        tiers.sections["forward"]["batch_max_wait_s"] = batch_max_wait_s
        say(f"fleet: {devices} devices, quorum {quorum}; Attestations at {tiers.sections['fleet']['attestations']} "
            f"(local chain), Anchor at {tiers.sections['forward']['mainnet']['anchor']} (mainnet)")
        for i in range(devices):
            raw = {"node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id}, "ingest": {"confirmations": 2},
                   "outbox": {"path": f"edge-{i}.sqlite"}, "checkpoint": {"every_blocks": checkpoint_blocks},
                   "metrics": {"enabled": False}, **tiers.config_for(i)}
            (workdir / f"edge-{i}.toml").write_text(dump_toml(raw))
        act = Activity(poa)
        await act.setup()
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge", "run", "--config", str(workdir / f"edge-{i}.toml"),
            *([] if score else ["--no-score"]), stdout=asyncio.subprocess.DEVNULL,
            stderr=open(workdir / f"edge-{i}.log", "ab")) for i in range(devices)]
        def make_auditor() -> Auditor:
            fwd = tiers.sections["forward"]
            return Auditor(fwd["mainnet"]["url"], bytes.fromhex(fwd["mainnet"]["anchor"][2:]),
                           [TestnetRef(t["url"], t["chain_id"], bytes.fromhex(t["store"][2:]))
                            for t in fwd["testnets"]], tiers.auditor_key, local_ws=poa.ws_url)

        try:
            deadline = time.monotonic() + seconds
            next_print = 0.0
            while time.monotonic() < deadline:
                await act.deploy([c for _, c in zip(range(4), codes)])
                await act.crud_writes(12)
                await act.settle()
                _check_alive(procs, workdir)
                if time.monotonic() >= next_print:
                    say(_line(workdir, devices, t0))
                    next_print = time.monotonic() + 3.0
                await asyncio.sleep(0.5)
            head = int(await poa.rpc("eth_blockNumber"), 16)
            say(f"activity stopped at block {head}; waiting until every checkpoint up to it is anchored")
            async with make_auditor() as auditor:
                loop = asyncio.get_running_loop()
                end = loop.time() + drain_timeout
                while loop.time() < end:
                    events = await auditor.anchored()
                    if events and max(e.to_block for e in events) >= head:
                        break
                    _check_alive(procs, workdir)
                    say(_line(workdir, devices, t0))
                    await asyncio.sleep(2.0)
        finally:
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                await p.wait()
        async with make_auditor() as auditor:
            events = await auditor.anchored()
            verdicts = await auditor.verify_all()
        if not json_out:
            print_verdicts(verdicts, as_json=False)
        per_device = await _per_device(tiers.devices, tiers.sections["fleet"], workdir, events)
    ids = [e.id for e in events]
    if batch > 1:  # the member checkpoints, as the auditor found them in the anchors
        members = [v.id for v in verdicts if v.kind == "batch-member"]
        n_anchored = len(set(members)) + sum(1 for v in verdicts if v.kind != "batch-member")
        dups = (len(members) - len(set(members))) + (len(events) - len({e.id for e in events}))
    else:
        n_anchored, dups = len(set(ids)), len(ids) - len(set(ids))
    covered = events and max(e.to_block for e in events) >= head
    result = {
        "devices": devices, "quorum": quorum, "checkpoints_anchored": n_anchored,
        "duplicate_anchors": dups,
        "failed_anchor_attempts": sum(d["failed_anchor_attempts"] for d in per_device),
        "min_signers": min((len(e.signers) for e in events), default=0),
        "verify_ok": sum(v.ok for v in verdicts), "verify_fail": sum(not v.ok for v in verdicts),
        "per_device": per_device, "seconds": round(time.monotonic() - t0, 1),
    }
    result["clients"] = chains.clients
    result["ok"] = bool(covered and result["duplicate_anchors"] == 0 and result["verify_fail"] == 0
                        and result["checkpoints_anchored"] >= 1 and result["min_signers"] >= quorum)
    print(json.dumps(result, sort_keys=True), flush=True)
    return result


def _check_alive(procs: list[asyncio.subprocess.Process], workdir: Path) -> None:
    for i, p in enumerate(procs):
        if p.returncode is not None:
            tail = (workdir / f"edge-{i}.log").read_text()[-2000:]
            raise RuntimeError(f"device {i} exited with status {p.returncode}:\n{tail}")


def _line(workdir: Path, devices: int, t0: float) -> str:
    parts = []
    for i in range(devices):
        st = peek(workdir / f"edge-{i}.sqlite", "checkpoint_states")
        parts.append(f"dev{i}: {st.get('anchored', 0)} anchored/{sum(st.values())} cut")
    return f"t={time.monotonic() - t0:5.1f}s  " + "  ".join(parts)


async def _per_device(devices: list[str], fleet: dict[str, Any], workdir: Path, events: list[Any]) -> list[dict[str, Any]]:
    async with open_rpc(fleet["rpc_url"]) as rpc:
        logs = await eth.get_logs(rpc, bytes.fromhex(fleet["attestations"][2:]), [attest_abi.ATTESTED_TOPIC])
    attested: dict[str, int] = {}
    for lg in logs:
        a = attest_abi.decode_attested(lg)
        attested[a.device] = attested.get(a.device, 0) + 1
    out = []
    for i, d in enumerate(devices):
        failed = (await asyncio.to_thread(peek, workdir / f"edge-{i}.sqlite", "failed_anchors")).get("failed", 0)
        out.append({"device": d, "attested": attested.get(d, 0),
                    "anchored": sum(1 for e in events if e.submitter == d), "failed_anchor_attempts": int(failed)})
    return out
