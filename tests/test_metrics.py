"""Prometheus text on 127.0.0.1 only, scraped over HTTP and parsed, from a real agent."""

from __future__ import annotations

import asyncio
import math
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.appliance.metrics import Metrics
from edge.contracts.artifacts import deployer_init_code
from edge.config import MetricsConfig, parse_config
from edge.errors import ConfigError
from edge.agent import Agent
from edge.appliance.power import FixedWatts
from edge.checkpoint.stage import CheckpointStage
from edge.devnet.scrape import scrape_histogram
from edge.scoring.latency import quantile_from_buckets
from edge.store.capabilities import CapabilityRow, put_capability
from edge.store.checkpoints import CheckpointRow, insert_checkpoint
from tests.conftest import corpus_codes, eventually, make_config


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return str(r.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a text exposition."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def _other_address() -> str | None:
    """A non-loopback IPv4 address of this host (UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


async def test_binds_loopback_only_and_refuses_other_hosts() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.2", "localhost"):
        with pytest.raises(ConfigError, match="127.0.0.1 only"):
            Metrics(0, host=host)
    async with Metrics(0, power=None) as m:
        assert m.port > 0
        assert m._server is not None and m._server.socket.getsockname()[0] == "127.0.0.1"
        assert "edge_info" in scrape(m.port)
        assert _refused("127.0.0.2", m.port)  # another loopback address is not served either
        other = _other_address()
        if other is not None:
            assert _refused(other, m.port)
    assert _refused("127.0.0.1", m.port)  # closed on exit


async def test_port_in_use_is_a_config_error_naming_the_key() -> None:
    async with Metrics(0, power=None) as m:
        with pytest.raises(ConfigError, match=r"metrics\.port: cannot listen on 127\.0\.0\.1:\d+"):
            async with Metrics(m.port, power=None):
                pass


async def test_disabled_serves_nothing(tmp_path: Path) -> None:
    m = Metrics.from_config(MetricsConfig(enabled=False, port=0))
    async with m:
        assert m._server is None
        await asyncio.wait_for(m.follow(object()), 1.0)  # type: ignore[arg-type]  # returns at once


def _agent(tmp_path: Path, **sections: dict[str, Any]) -> Agent:
    raw: dict[str, Any] = {"node": {"ws_url": "ws://127.0.0.1:1"}, "outbox": {"path": str(tmp_path / "e.sqlite"),
                                                                              "max_mib": 64}}
    raw.update(sections)
    return Agent(parse_config(raw), score=True)


async def test_values_from_the_agent_stats_and_the_outbox(tmp_path: Path) -> None:
    async with _agent(tmp_path) as agent, Metrics(0, power=FixedWatts(3.25)) as m:
        s = agent.stats
        s.chain_id, s.head, s.cursor, s.blocks, s.logs, s.contracts = 7201, 120, 100, 101, 340, 12
        s.reorgs, s.reconnects, s.connected = 1, 2, True
        assert agent.scorer is not None
        agent.scorer.stats.scored, agent.scorer.stats.flagged = 12, 3
        for seconds in (0.03, 0.03, 0.04, 0.2, 120.0):
            agent.scorer.latency_hist.add(seconds)
        agent.checkpointer = CheckpointStage(agent.outbox, 7201, every_blocks=16)
        agent.checkpointer.stats.checkpoints = 4
        async with agent.outbox.transaction() as tx:
            for i, state in enumerate(("sealed", "sealed", "uploaded", "anchored")):
                await insert_checkpoint(tx, CheckpointRow(bytes([i]) * 32, 7201, 16 * i, 16 * i + 15, b"\1" * 32,
                                                          b"\2" * 32, 10, state, None, None))
            await tx.execute("INSERT INTO anchors VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                             (b"\3" * 32, 7201, 48, 63, b"\1" * 32, b"\2" * 32, b"", b"", "anchored", 1, time.time()))
            for i, (cid, purpose, state, gas) in enumerate((
                    (7301, "upload", "confirmed", 60_000), (7301, "upload", "confirmed", 61_000),
                    (7301, "upload", "sent", 62_000), (7401, "anchor", "mined", 90_000),
                    (7401, "anchor", "failed", None))):
                await tx.execute(
                    "INSERT INTO txs (chain_id, sender, purpose, to_addr, data, gas, nonce, state, created_at,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (cid, b"\5" * 20, purpose, b"\6" * 20, b"", gas, i, state, 0.0, 0.0))
        for i, (status, flags) in enumerate((("ok", ("is_mintable", "is_proxy")), ("ok", ("is_mintable",)),
                                             ("ok", ()), ("timeout", ()))):
            await put_capability(agent.outbox, CapabilityRow(bytes([i]) * 32, "cap-1", status, flags, (), 1.0, 1.0))
        assert agent.analysis is not None
        agent.analysis.stats.analyzed, agent.analysis.stats.timeouts = 4, 1
        snap = await m.update(agent)
        assert snap.outbox_depth == 3
        text = scrape(m.port)
        buckets = await asyncio.to_thread(scrape_histogram, m.port, "edge_score_latency_seconds")
    assert buckets[:3] == [(0.01, 0.0), (0.025, 0.0), (0.05, 3.0)] and buckets[-1] == (math.inf, 5.0)
    assert quantile_from_buckets(0.5, buckets) == pytest.approx(0.025 + 0.025 * 2.5 / 3)  # rank 2.5 of 5
    assert value(text, "edge_info", version="0.1.0", chain_id="7201") == 1
    assert value(text, "edge_head_block") == 120
    assert value(text, "edge_cursor_block") == 100
    assert value(text, "edge_lag_blocks") == 20
    assert value(text, "edge_node_connected") == 1 and value(text, "edge_ingest_paused") == 0
    assert value(text, "edge_blocks_ingested_total") == 101
    assert value(text, "edge_logs_ingested_total") == 340
    assert value(text, "edge_contracts_ingested_total") == 12
    assert value(text, "edge_reorgs_total") == 1 and value(text, "edge_node_reconnects_total") == 2
    assert value(text, "edge_contracts_scored_total") == 12
    assert value(text, "edge_contracts_high_risk_total") == 3
    assert value(text, "edge_score_latency_seconds_bucket", le="0.025") == 0
    assert value(text, "edge_score_latency_seconds_bucket", le="0.05") == 3
    assert value(text, "edge_score_latency_seconds_bucket", le="0.25") == 4
    assert value(text, "edge_score_latency_seconds_bucket", le="60.0") == 4
    assert value(text, "edge_score_latency_seconds_bucket", le="+Inf") == 5
    assert value(text, "edge_score_latency_seconds_count") == 5
    assert value(text, "edge_score_latency_seconds_sum") == pytest.approx(120.3)
    assert value(text, "edge_checkpoints_cut_total") == 4
    assert value(text, "edge_capability_codes", flag="is_mintable") == 2
    assert value(text, "edge_capability_codes", flag="is_proxy") == 1
    assert value(text, "edge_capability_codes", flag="selfdestruct") == 0  # present before the first
    assert value(text, "edge_capability_reports", status="timeout") == 1
    assert value(text, "edge_capability_reports", status="ok") == 3
    assert value(text, "edge_capability_analyzed_total") == 4 and value(text, "edge_capability_timeouts_total") == 1
    assert ("edge_checkpoints_anchored_total", ()) not in samples(text)  # no forward stage running
    assert value(text, "edge_outbox_checkpoints", state="sealed") == 2
    assert value(text, "edge_outbox_checkpoints", state="uploaded") == 1
    assert value(text, "edge_outbox_checkpoints", state="anchored") == 1
    assert value(text, "edge_outbox_depth") == 3
    assert value(text, "edge_anchors", state="anchored") == 1
    assert value(text, "edge_txs", chain_id="7301", purpose="upload", state="confirmed") == 2
    assert value(text, "edge_txs", chain_id="7401", purpose="anchor", state="failed") == 1
    assert value(text, "edge_tx_gas_limit_mined", chain_id="7301") == 121_000  # the sent one is not counted
    assert value(text, "edge_tx_gas_limit_mined", chain_id="7401") == 90_000
    assert value(text, "edge_power_watts", source="meter") == 3.25
    assert value(text, "edge_outbox_max_bytes") == 64 * 2**20
    assert 0 < value(text, "edge_outbox_bytes") == snap.outbox_bytes
    assert value(text, "process_resident_memory_bytes") > 10 * 2**20
    assert abs(value(text, "edge_metrics_updated_seconds") - time.time()) < 60


async def test_unknown_power_is_absent_not_zero(tmp_path: Path) -> None:
    async with _agent(tmp_path) as agent, Metrics(0, power=None) as m:
        await m.update(agent)
        text = scrape(m.port)
    assert not [k for k in samples(text) if k[0] == "edge_power_watts"]
    assert "# TYPE edge_power_watts gauge" in text


async def test_metrics_follow_a_running_agent_on_a_real_chain(chain_factory: Any, tmp_path: Path) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    sender = (await chain.rpc("eth_accounts"))[0]
    codes = corpus_codes(3)
    for code in codes:
        await chain.rpc("eth_sendTransaction", {"from": sender, "data": "0x" + deployer_init_code(code).hex(),
                                                "gas": hex(8_000_000)})
    await chain.rpc("anvil_mine", hex(80))  # the deployments land in block 1
    cfg = make_config(chain, tmp_path / "edge.sqlite", checkpoint={"every_blocks": 16})
    async with Agent(cfg, score=True) as agent, Metrics(0, power=None) as m:
        run = asyncio.create_task(agent.run())
        follow = asyncio.create_task(m.follow(agent, every_s=0.1))

        scorer = agent.scorer
        assert scorer is not None

        def settled() -> bool:  # the stages got there and the follower's snapshot shows it
            cp, snap = agent.checkpointer, m.snapshot
            return (cp is not None and cp.stats.checkpoints >= 4 and scorer.stats.scored >= 3
                    and snap.scored == scorer.stats.scored and (snap.checkpoints_cut or 0) >= 4
                    and sum(n for _, n in snap.checkpoints_by_state) >= 4)  # counted and queried

        await eventually("4 checkpoints cut, 3 codes scored, both in the served snapshot", settled, 30.0,
                         every=0.05)
        text = scrape(m.port)
        flagged = scorer.stats.flagged
        follow.cancel()
        run.cancel()
        await asyncio.gather(run, follow, return_exceptions=True)
    assert value(text, "edge_info", version="0.1.0", chain_id="7201") == 1
    assert value(text, "edge_head_block") == 80 and value(text, "edge_cursor_block") == 80
    assert value(text, "edge_lag_blocks") == 0 and value(text, "edge_node_connected") == 1
    assert value(text, "edge_blocks_ingested_total") == 81  # blocks 0..80
    assert value(text, "edge_contracts_ingested_total") == 3
    assert value(text, "edge_contracts_scored_total") == 3
    assert value(text, "edge_contracts_high_risk_total") == flagged
    # the three codes' block was first seen at the agent's first head: one sample each
    assert value(text, "edge_score_latency_seconds_count") == 3
    assert value(text, "edge_score_latency_seconds_bucket", le="+Inf") == 3
    # confirmed tip = 80 - confirmations(3) = 77: ranges 0-15, 16-31, 32-47, 48-63 are cut
    assert value(text, "edge_checkpoints_cut_total") == 4
    assert value(text, "edge_outbox_checkpoints", state="sealed") == 4
    assert value(text, "edge_outbox_depth") == 4
    assert not [k for k in samples(text) if k[0] == "edge_txs"]  # nothing forwarded: no txs

