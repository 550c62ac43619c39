"""Devices as separate hosts: each agent in its own network namespace (veth on a bridge),
reaching the chains only by outbound connections. No device listens on an address the
others can reach; one device cut off from the network does not stop the fleet, and it
catches up when it returns. Needs root and `ip netns` (skipped otherwise)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChains, TierSpec
from edge.devnet.tiers import deploy_public_tiers
from edge.config import dump_toml
from tests.conftest import corpus_codes

BRIDGE_IP = "10.231.0.1"
N, M = 3, 2


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[list[str]]:
    """N namespaces ``edge-<pid>-<i>`` on a bridge; device i has address 10.231.0.(i+2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = f"e{os.getpid() % 100000}"
    bridge = f"br-{tag}"
    names = [f"{tag}-{i}" for i in range(N)]
    try:
        _ip("link", "add", bridge, "type", "bridge")
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a bridge here: {e.stderr.decode().strip()}")
    try:
        _ip("addr", "add", f"{BRIDGE_IP}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, ns in enumerate(names):
            _ip("netns", "add", ns)
            _ip("link", "add", f"vh{tag}{i}", "type", "veth", "peer", "name", f"vd{tag}{i}")
            _ip("link", "set", f"vd{tag}{i}", "netns", ns)
            _ip("link", "set", f"vh{tag}{i}", "master", bridge)
            _ip("link", "set", f"vh{tag}{i}", "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"10.231.0.{i + 2}/24", "dev", f"vd{tag}{i}")
            _ip("netns", "exec", ns, "ip", "link", "set", f"vd{tag}{i}", "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield names
    finally:
        for i, ns in enumerate(names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["ip", "link", "del", f"vh{tag}{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _states(db: Path) -> dict[str, int]:
    if not db.exists():  # connecting would create a 0-byte file, which the agent refuses
        return {}
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return dict(con.execute("SELECT state, count(*) FROM checkpoints GROUP BY state").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return {}


@pytest.mark.slow
async def test_devices_in_namespaces_no_inbound_port_one_cut_off(netns: list[str], tmp_path: Path) -> None:
    tiers_spec = tuple(TierSpec(t.name, t.chain_id, 0.5, ("--host", BRIDGE_IP))
                       for t in (TierSpec("poa", 7201, 0), TierSpec("testnet-a", 7301, 0),
                                 TierSpec("testnet-b", 7302, 0), TierSpec("mainnet", 7401, 0)))
    async with DevChains(tiers_spec) as chains:
        tiers = await deploy_public_tiers(chains, tmp_path, devices=N, quorum=M, fleet=True, takeover_s=4.0)
        act = Activity(chains["poa"])
        await act.setup()
        procs = []
        for i, ns in enumerate(netns):
            raw = {"node": {"ws_url": chains["poa"].ws_url, "chain_id": 7201, "reconnect_max_s": 1.0},
                   "ingest": {"confirmations": 2}, "outbox": {"path": f"edge-{i}.sqlite"},
                   "checkpoint": {"every_blocks": 6}, **tiers.config_for(i)}
            text = dump_toml(raw).replace("127.0.0.1", BRIDGE_IP)  # the chains, seen from a device host
            (tmp_path / f"edge-{i}.toml").write_text(text)
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "edge", "run", "--config",
                 str(tmp_path / f"edge-{i}.toml"), "--no-score"],
                stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"edge-{i}.log", "ab"), env=os.environ.copy()))
        try:
            codes = corpus_codes(20)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while min(_states(tmp_path / f"edge-{i}.sqlite").get("anchored", 0) for i in range(N)) < 1:
                assert loop.time() < deadline, [(tmp_path / f"edge-{i}.log").read_text()[-1500:] for i in range(N)]
                assert all(p.poll() is None for p in procs)
                await act.deploy(codes[:1])
                await act.crud_writes(5)
                await act.settle()
            # no inbound port: every listening socket in a device host is on its own loopback
            for i, ns in enumerate(netns):
                out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn"], capture_output=True, text=True).stdout
                local = [line.split()[3] for line in out.splitlines() if line.strip()]
                assert local and all(a.startswith("127.0.0.1:") for a in local), local
                with socket.socket() as s:  # the metrics port is not reachable from outside
                    s.settimeout(1.0)
                    assert s.connect_ex((f"10.231.0.{i + 2}", 9108)) != 0
            # cut device 1 off the network; the other two keep anchoring (M = 2)
            tag = netns[1].split("-")[0]
            _ip("link", "set", f"vh{tag}1", "down")
            before = _states(tmp_path / "edge-0.sqlite").get("anchored", 0)
            deadline = loop.time() + 90
            # the fleet goes on, and the cut-off device notices the loss (a dead link resets
            # nothing: it shows as a request timing out) and keeps retrying
            while (_states(tmp_path / "edge-0.sqlite").get("anchored", 0) < before + 2
                   or "reconnecting" not in (tmp_path / "edge-1.log").read_text()):
                assert loop.time() < deadline, "the fleet stalled, or the cut-off device never noticed"
                await act.deploy(codes[1:2])
                await act.crud_writes(5)
                await act.settle()
            cut_off = _states(tmp_path / "edge-1.sqlite")
            assert procs[1].poll() is None, "the cut-off device must keep running and retrying"
            _ip("link", "set", f"vh{tag}1", "up")
            deadline = loop.time() + 90
            while True:
                s0, s1 = _states(tmp_path / "edge-0.sqlite"), _states(tmp_path / "edge-1.sqlite")
                if s1.get("anchored", 0) >= s0.get("anchored", 0) > cut_off.get("anchored", 0):
                    break
                assert loop.time() < deadline, (s0, s1)
                await asyncio.sleep(1.0)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
