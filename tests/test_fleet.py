"""A fleet of 3 to 5 real `edge run` processes (own key, own SQLite) over real anvils:
every checkpoint anchored exactly once with >= M signatures, duty failover, a byzantine
minority, too few devices alive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edge.contracts import anchor as anchor_abi
from edge.contracts import attestations as attest_abi
from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChains, TierSpec
from edge.devnet.tiers import PublicTiers, deploy_public_tiers
from edge.config import dump_toml
from edge.evidence.eip712 import CheckpointMessage, Eip712Domain, sign_checkpoint
from edge.crypto.keys import DeviceKey, load_key, read_passphrase
from edge.audit.verify import Auditor, TestnetRef
from tests.conftest import corpus_codes

TIERS = (TierSpec("poa", 7201, 0.5), TierSpec("testnet-a", 7301, 0.5), TierSpec("testnet-b", 7302, 0.5),
         TierSpec("mainnet", 7401, 0.5))
TAKEOVER = 4.0


@dataclass
class Fleet:
    chains: DevChains
    tiers: PublicTiers
    workdir: Path
    act: Activity
    procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    def cfg(self, i: int) -> Path:
        return self.workdir / f"edge-{i}.toml"

    def db(self, i: int) -> Path:
        return self.workdir / f"edge-{i}.sqlite"

    async def start(self, i: int) -> None:
        self.procs[i] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge", "run", "--config", str(self.cfg(i)), "--no-score",
            stdout=asyncio.subprocess.DEVNULL, stderr=open(self.workdir / f"edge-{i}.log", "ab"))

    async def stop(self, i: int, sig: int = signal.SIGTERM) -> None:
        p = self.procs.pop(i)
        if p.returncode is None:
            p.send_signal(sig)
        await p.wait()

    async def close(self) -> None:
        for i in list(self.procs):
            await self.stop(i, signal.SIGKILL)
        await self.chains.__aexit__(None, None, None)

    async def anchored(self) -> list[anchor_abi.AnchoredEvent]:
        async with self.auditor() as a:
            return await a.anchored()

    def auditor(self) -> Auditor:
        f = self.tiers.sections["forward"]
        return Auditor(f["mainnet"]["url"], bytes.fromhex(f["mainnet"]["anchor"][2:]),
                       [TestnetRef(t["url"], t["chain_id"], bytes.fromhex(t["store"][2:])) for t in f["testnets"]],
                       self.tiers.auditor_key)

    async def drive(self, rounds: int) -> None:
        codes = corpus_codes(30)
        for r in range(rounds):
            await self.act.deploy(codes[r % 30:r % 30 + 1])
            await self.act.crud_writes(6)
            await self.act.settle()

    async def wait_anchored(self, n: int, timeout: float = 120) -> list[anchor_abi.AnchoredEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            events = await self.anchored()
            if len(events) >= n:
                return events
            for i, p in self.procs.items():
                assert p.returncode is None, (self.workdir / f"edge-{i}.log").read_text()[-3000:]
            assert loop.time() < deadline, f"only {len(events)} of {n} anchored"
            await asyncio.sleep(0.5)


async def make_fleet(tmp: Path, n: int, m: int) -> Fleet:
    chains = DevChains(TIERS)
    await chains.__aenter__()
    tiers = await deploy_public_tiers(chains, tmp, devices=n, quorum=m, fleet=True, takeover_s=TAKEOVER)
    poa = chains["poa"]
    for i in range(n):
        raw = {"node": {"ws_url": poa.ws_url, "chain_id": poa.chain_id, "reconnect_max_s": 1.0},
               "ingest": {"confirmations": 2}, "outbox": {"path": f"edge-{i}.sqlite"},
               "checkpoint": {"every_blocks": 6}, "log": {"level": "info"}, "metrics": {"enabled": False},
               **tiers.config_for(i)}
        (tmp / f"edge-{i}.toml").write_text(dump_toml(raw))
    act = Activity(poa)
    await act.setup()
    return Fleet(chains, tiers, tmp, act)


def _checkpoints(db: Path) -> dict[bytes, tuple[int, int, str]]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db, timeout=5)
    try:
        return {bytes(i): (a, b, s) for i, a, b, s in con.execute(
            "SELECT id, from_block, to_block, state FROM checkpoints")}
    except sqlite3.OperationalError:  # the agent has not created its schema yet
        return {}
    finally:
        con.close()


def _anchor_txs(db: Path) -> list[tuple[str, int | None]]:
    con = sqlite3.connect(db, timeout=5)
    try:
        return [(s, st) for s, st in con.execute("SELECT state, status FROM txs WHERE purpose='anchor'")]
    finally:
        con.close()


async def _attest_wrong_root(fleet: Fleet, keys: list[DeviceKey], domain: Eip712Domain, cid: bytes,
                             a: int, b: int) -> CheckpointMessage:
    """Registered device ``keys`` (not running an agent) attest a random root for the range
    ``a..b`` of device 0's checkpoint ``cid``; returns the forged checkpoint."""
    con = sqlite3.connect(fleet.db(0))
    last = bytes(con.execute("SELECT last_block_hash FROM checkpoints WHERE id=?", (cid,)).fetchone()[0])
    con.close()
    wrong = CheckpointMessage.create(7201, a, b, last, os.urandom(32))
    poa = fleet.chains["poa"]
    for k in keys:
        data = attest_abi.encode_attest(wrong, sign_checkpoint(k.private_key, domain, wrong))
        await poa.rpc("anvil_impersonateAccount", k.address)
        await poa.rpc("eth_sendTransaction", {"from": k.address, "to": fleet.tiers.sections["fleet"]["attestations"],
                                              "data": "0x" + data.hex(), "gas": hex(300_000)})
    return wrong


def _assert_exactly_once(events: list[anchor_abi.AnchoredEvent], quorum: int, devices: list[str]) -> None:
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), "a checkpoint anchored twice"
    ranges = sorted((e.from_block, e.to_block) for e in events)
    assert len(ranges) == len(set(ranges)), "two roots anchored for one range"
    for e in events:
        assert len(e.signers) >= quorum and set(e.signers) <= set(devices)


async def test_every_checkpoint_anchored_once_with_quorum(tmp_path: Path) -> None:
    fleet = await make_fleet(tmp_path, n=3, m=2)
    try:
        for i in range(3):
            await fleet.start(i)
        await fleet.drive(12)
        events = await fleet.wait_anchored(4)
        for i in range(3):
            await fleet.stop(i)
        events = await fleet.anchored()
        _assert_exactly_once(events, 2, fleet.tiers.devices)
        # every device computed the same checkpoints
        cps = [_checkpoints(fleet.db(i)) for i in range(3)]
        common = set(cps[0]) & set(cps[1]) & set(cps[2])
        assert {e.id for e in events} <= common
        # mainnet gas paid once per checkpoint: one mined, successful anchor tx per anchor
        txs = [t for i in range(3) for t in _anchor_txs(fleet.db(i))]
        ok = [t for t in txs if t[0] in ("confirmed", "mined") and t[1] == 1]
        reverted_on_chain = [t for t in txs if t[1] == 0]
        assert len(ok) <= len(events) <= len(ok) + 1  # the newest may be mined but not yet confirmed
        assert reverted_on_chain == []
        async with fleet.auditor() as a:
            verdicts = await a.verify_all()
        assert verdicts and all(v.ok for v in verdicts)
        # `edge fleet` shows the same from the chains alone
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge", "fleet", "--config", str(fleet.cfg(0)), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        view = json.loads(out)
        assert view["quorum"] == 2 and view["devices"] == fleet.tiers.devices
        anchored_ids = {"0x" + e.id.hex() for e in events}
        shown = {c["id"] for c in view["checkpoints"] if c["anchored"]}
        assert shown == anchored_ids
        assert all(len(c["attested_by"]) >= 2 and sorted(c["duty_order"]) == sorted(fleet.tiers.devices)
                   for c in view["checkpoints"] if c["anchored"])
    finally:
        await fleet.close()


@pytest.mark.slow
async def test_duty_holder_killed_mid_submission_another_anchors(tmp_path: Path) -> None:
    fleet = await make_fleet(tmp_path, n=3, m=2)
    try:
        for i in range(3):
            await fleet.start(i)
        await fleet.drive(6)
        await fleet.wait_anchored(1)
        # kill whichever device is in the middle of submitting (uploading or anchoring)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        victim = None
        while victim is None:
            assert loop.time() < deadline, "no device seen mid-submission"
            await fleet.drive(1)
            for i in range(3):
                if any(s in ("uploading", "uploaded", "anchoring") for _, _, s in _checkpoints(fleet.db(i)).values()):
                    victim = i
                    break
        pending = {cid for cid, (_, _, s) in _checkpoints(fleet.db(victim)).items()
                   if s in ("uploading", "uploaded", "anchoring")}
        await fleet.stop(victim, signal.SIGKILL)
        await fleet.drive(4)
        # the others take over within the takeover timeout (rank <= 2) plus forwarding time
        deadline = loop.time() + 2 * TAKEOVER + 60
        while True:
            got = {e.id for e in await fleet.anchored()}
            if pending <= got:
                break
            assert loop.time() < deadline, "the orphaned checkpoint was not taken over"
            await asyncio.sleep(0.5)
        _assert_exactly_once(await fleet.anchored(), 2, fleet.tiers.devices)
    finally:
        await fleet.close()


async def test_byzantine_minority_cannot_anchor_wrong_root(tmp_path: Path) -> None:
    """5 devices, M = 3: 3 honest agents; 2 byzantine keys attest a wrong root for every
    range they see. Only the honest root is anchored."""
    fleet = await make_fleet(tmp_path, n=5, m=3)
    try:
        for i in range(3):
            await fleet.start(i)
        f = fleet.tiers.sections
        domain = Eip712Domain(f["forward"]["mainnet"]["chain_id"], f["forward"]["mainnet"]["anchor"])
        byz = [load_key(tmp_path / f"device-{i}.json", read_passphrase("env:EDGE_DEMO_PASSPHRASE")) for i in (3, 4)]
        attested: set[tuple[int, int]] = set()
        for _ in range(20):
            await fleet.drive(1)
            for cid, (a, b, _) in _checkpoints(fleet.db(0)).items():
                if (a, b) in attested:
                    continue
                attested.add((a, b))
                await _attest_wrong_root(fleet, byz, domain, cid, a, b)
            if len(await fleet.anchored()) >= 3:
                break
        events = await fleet.wait_anchored(3)
        honest = _checkpoints(fleet.db(0))
        assert all(e.id in honest for e in events), "a root no honest device computed was anchored"
        _assert_exactly_once(events, 3, fleet.tiers.devices)
        assert all(not set(e.signers) & {k.address for k in byz} or len(set(e.signers) - {k.address for k in byz}) >= 1
                   for e in events)
    finally:
        await fleet.close()


async def test_minority_device_raises_divergence_alarm(tmp_path: Path) -> None:
    """3 devices, M = 2: one honest agent; 2 keys attest another root: the agent is the
    minority, raises the alarm and never signs the other root."""
    fleet = await make_fleet(tmp_path, n=3, m=2)
    try:
        await fleet.start(0)
        f = fleet.tiers.sections
        domain = Eip712Domain(f["forward"]["mainnet"]["chain_id"], f["forward"]["mainnet"]["anchor"])
        others = [load_key(tmp_path / f"device-{i}.json", read_passphrase("env:EDGE_DEMO_PASSPHRASE")) for i in (1, 2)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while not _checkpoints(fleet.db(0)):
            assert loop.time() < deadline
            await fleet.drive(1)
        cid, (a, b, _) = next(iter(_checkpoints(fleet.db(0)).items()))
        wrong = await _attest_wrong_root(fleet, others, domain, cid, a, b)
        while True:
            con = sqlite3.connect(fleet.db(0), timeout=5)
            alarms = con.execute("SELECT detail FROM alarms WHERE kind='divergence'").fetchall()
            mine = {bytes(r[0]) for r in con.execute("SELECT id FROM attestations WHERE device=?",
                                                       (fleet.tiers.devices[0],))}
            con.close()
            if alarms:
                break
            assert loop.time() < deadline, "no divergence alarm"
            await fleet.drive(1)
        assert f"blocks {a}..{b}" in alarms[0][0] and "differs from the root" in alarms[0][0]
        assert wrong.id not in mine, "the device signed the other root"
        log = (tmp_path / "edge-0.log").read_text()
        assert "DIVERGENCE" in log
    finally:
        await fleet.close()


async def test_fewer_than_quorum_alive_no_anchor_then_backlog_anchored(tmp_path: Path) -> None:
    fleet = await make_fleet(tmp_path, n=3, m=2)
    try:
        await fleet.start(0)
        await fleet.drive(10)
        # the lone device has attested (its attestations are mined): only the quorum is missing
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while sum(c[2] == "attested" for c in _checkpoints(fleet.db(0)).values()) < 2:
            assert loop.time() < deadline, "device 0 attested nothing"
            await asyncio.sleep(0.2)  # another process's SQLite file: read, bounded
        assert await fleet.anchored() == []
        backlog = {cid for cid, c in _checkpoints(fleet.db(0)).items() if c[2] != "anchored"}
        assert len(backlog) >= 2
        await fleet.start(1)
        await fleet.drive(4)
        events = await fleet.wait_anchored(len(backlog))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not backlog <= {e.id for e in events}:  # each duty holder works at its own pace
            assert loop.time() < deadline, "backlog not anchored"
            await asyncio.sleep(0.5)
            events = await fleet.anchored()
        _assert_exactly_once(events, 2, fleet.tiers.devices)
    finally:
        await fleet.close()



