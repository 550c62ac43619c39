"""Fleet batching on real `edge run` processes over real anvils: 3 devices, M = 2, K = 3
with a chain-time wait: every checkpoint anchored exactly once inside a batch with >= 2
signatures, the duty holder killed mid-batch is taken over, and every member verifies
with `edge verify` and with `Anchor.verifyMember`."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import pytest

from edge.contracts import anchor as anchor_abi
from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChains
from edge.devnet.tiers import deploy_public_tiers
from edge.config import dump_toml
from edge.evidence.merkle import MerkleTree
from edge.rpc import eth
from tests.test_fleet import TAKEOVER, TIERS, Fleet

K = 3


async def make_batch_fleet(tmp: Path, n: int, m: int) -> Fleet:
    chains = DevChains(TIERS)
    await chains.__aenter__()
    tiers = await deploy_public_tiers(chains, tmp, devices=n, quorum=m, fleet=True, takeover_s=TAKEOVER, batch=K)
    tiers.sections["forward"]["batch_max_wait_s"] = 8.0  # chain time: block timestamps
    poa = chains["poa"]
    for i in range(n):
        raw = {"node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id, "reconnect_max_s": 1.0},
               "ingest": {"confirmations": 2}, "outbox": {"path": f"edge-{i}.sqlite"},
               "checkpoint": {"every_blocks": 4}, "log": {"level": "info"}, "metrics": {"enabled": False},
               **tiers.config_for(i)}
        (tmp / f"edge-{i}.toml").write_text(dump_toml(raw))
    act = Activity(poa)
    await act.setup()
    return Fleet(chains, tiers, tmp, act)


def _units(db: Path) -> dict[bytes, str]:
    con = sqlite3.connect(db, timeout=5)
    try:
        return {bytes(i): s for i, s in con.execute("SELECT id, state FROM anchors")}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


@pytest.mark.slow
async def test_fleet_batches_anchored_once_taken_over_and_verified(tmp_path: Path) -> None:
    fleet = await make_batch_fleet(tmp_path, n=3, m=2)
    loop = asyncio.get_running_loop()
    try:
        for i in range(3):
            await fleet.start(i)
        await fleet.drive(6)
        await fleet.wait_anchored(1)
        # kill whichever device holds a batch duty in progress (members uploading, manifest, anchor)
        deadline = loop.time() + 90
        victim = None
        while victim is None:
            assert loop.time() < deadline, "no device seen mid-batch"
            await fleet.drive(1)
            for i in range(3):
                busy = {u for u, s in _units(fleet.db(i)).items() if s in ("members", "uploading", "signing")}
                if busy:
                    victim, pending = i, busy
                    break
        await fleet.stop(victim, signal.SIGKILL)
        await fleet.drive(3)
        deadline = loop.time() + 2 * TAKEOVER + 90
        while not pending <= {e.id for e in await fleet.anchored()}:
            assert loop.time() < deadline, "the orphaned batch was not taken over"
            await asyncio.sleep(0.5)
        for i in list(fleet.procs):
            await fleet.stop(i)
        events = await fleet.anchored()
        ids = [e.id for e in events]
        assert len(ids) == len(set(ids)), "a batch was anchored twice"
        assert all(len(e.signers) >= 2 and set(e.signers) <= set(fleet.tiers.devices) for e in events)
        async with fleet.auditor() as a:
            verdicts = await a.verify_all()
            on_chain = []
            for ev in events:
                members = [mid for mid, _ in (await a.manifest(ev.locator)).members]
                tree = MerkleTree(members)
                assert tree.root == ev.root
                for j, mid in enumerate(members):
                    on_chain.append(anchor_abi.decode_bool(await eth.eth_call(a.mainnet,
                        a.anchor, anchor_abi.verify_member_call(ev.id, mid, tree.proof(j)))))
        members = [v.id for v in verdicts]
        assert verdicts and all(v.kind == "batch-member" for v in verdicts)
        assert len(members) == len(set(members)), "a checkpoint is in two anchors"
        assert len(members) > len(events)  # batches of more than one checkpoint
        assert all(v.ok for v in verdicts), [v.reasons for v in verdicts if not v.ok]
        assert on_chain and all(on_chain)
        # consecutive, never overlapping: every checkpoint up to the last anchored is in one batch
        ranges = sorted((v.from_block, v.to_block) for v in verdicts)
        assert ranges == [(k, k + 3) for k in range(0, 4 * len(ranges), 4)], ranges
    finally:
        await fleet.close()
