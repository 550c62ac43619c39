"""The analysis stage over a real outbox: once per code, stored reports, timeouts, alerts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import pytest

from edge.clock import MockClock
from edge.config import parse_config
from edge.errors import ConfigError
from edge.scoring import capabilities as cap
from edge.scoring.analysis import AnalysisStage, alert_sentence
from edge.scoring.capabilities import ANALYZER_VERSION
from edge.scoring.model import default_model_path
from edge.scoring.stage import ScoreStage
from edge.store.capabilities import (
    CapabilityRow,
    capability_counts,
    count_unanalyzed,
    get_capability,
    put_capability,
    unanalyzed_codes,
)
from edge.store.db import Outbox
from tests.test_score_stage import _record

REPO = Path(__file__).resolve().parents[1]
_STALL_MARK = b"\xfe\xfe\xfe"


def _art(name: str) -> bytes:
    art = json.loads((REPO / "contracts/capabilities/artifacts/solc-0.8.37-opt.json").read_text())
    return bytes.fromhex(art["contracts"][name]["deployedBytecode"][2:])


def stalling_analyze(code: bytes, **kw: object) -> cap.CapabilityReport:
    """Runs in the child: never answers for a code that ends with the marker."""
    if code.endswith(_STALL_MARK):
        time.sleep(120)
    return cap.analyze(code, **kw)  # type: ignore[arg-type]


async def test_store_round_trip_and_backlog(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        hashes = await _record(ob, [_art("OwnerMintToken"), _art("OzPlainToken"), bytes([0x5B]) * 24_577])
        assert await count_unanalyzed(ob, ANALYZER_VERSION) == 2  # the oversize code is not analysed
        ev = {"name": "is_mintable", "reason": "owner-only function mints"}
        await put_capability(ob, CapabilityRow(hashes[0], "cap-0", "ok", ("is_mintable",), (ev,), 1.5, 10.0))
        assert await count_unanalyzed(ob, ANALYZER_VERSION) == 2  # another analyzer's row: again
        assert {c.code_hash for c in await unanalyzed_codes(ob, ANALYZER_VERSION, 10)} == set(hashes[:2])
        await put_capability(ob, CapabilityRow(hashes[0], ANALYZER_VERSION, "ok", ("is_mintable",), (ev,), 2, 11))
        row = await get_capability(ob, hashes[0])
        assert row is not None and row.flags == ("is_mintable",) and row.reasons == ("owner-only function mints",)
        assert row.analyzer == ANALYZER_VERSION and row.elapsed_ms == 2.0
        assert [c.code_hash for c in await unanalyzed_codes(ob, ANALYZER_VERSION, 10)] == [hashes[1]]
        assert await capability_counts(ob) == ({"is_mintable": 1}, {"ok": 1})
        assert await get_capability(ob, hashes[1]) is None


async def test_drain_analyses_each_distinct_code_once_and_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mint, plain = _art("OwnerMintToken"), _art("OzPlainToken")
    async with Outbox(tmp_path / "o.sqlite") as ob:
        hashes = await _record(ob, [mint, plain])
        await _record(ob, [mint], first_block=50)  # a second deployment of the same code
        async with AnalysisStage(ob, budget_s=10, alert_flags=["is_mintable"]) as stage:
            assert await stage.backlog() == 2
            with caplog.at_level(logging.WARNING, logger="edge.capabilities"):
                assert await stage.drain() == 2
            assert await stage.drain() == 0 and await stage.backlog() == 0
        assert stage.stats.analyzed == 2 and stage.stats.flagged == 1 and stage.stats.alerted == 1
        row = await get_capability(ob, hashes[0])
        assert row is not None and row.status == "ok" and row.flags == ("is_mintable",)
        assert row.evidence[0]["selectors"] == ["0x40c10f19"]
        other = await get_capability(ob, hashes[1])
        assert other is not None and other.flags == ()
        # the alert is a sentence: where, what function, what it does
        assert "owner-only function 0x40c10f19 mint(address,uint256)" in stage.stats.last_alert
        assert "chain 7201, block 1" in stage.stats.last_alert and "block 50" in stage.stats.last_alert
        lines = [r.getMessage() for r in caplog.records if "CAPABILITY ALERT" in r.getMessage()]
        assert len(lines) == 1 and "mint(address,uint256)" in lines[0]
        assert await capability_counts(ob) == ({"is_mintable": 1}, {"ok": 2})


async def test_a_stuck_analysis_is_recorded_as_timeout_and_not_retried(tmp_path: Path) -> None:
    clock = MockClock()
    async with Outbox(tmp_path / "o.sqlite") as ob:
        await _record(ob, [_art("OwnerMintToken")])
        async with AnalysisStage(ob, budget_s=0.5, hard_timeout_s=1.0, analyze_fn=stalling_analyze,
                                 poll_s=0.5, clock=clock) as stage:
            task = asyncio.create_task(stage.run())
            try:
                await asyncio.wait_for(stage.wait_until(lambda s: s.analyzed >= 1), 60)
                stuck = (await _record(ob, [_art("OzPlainToken") + _STALL_MARK], first_block=9))[0]
                await clock.wait_sleepers(1)  # nothing waiting: the stage sleeps on the clock
                clock.advance(0.5)
                await asyncio.wait_for(stage.wait_until(lambda s: s.analyzed >= 2), 60)
                assert stage.stats.timeouts == 1 and stage.worker.restarts == 1
                row = await get_capability(ob, stuck)
                assert row is not None and row.status == "timeout" and row.flags == ()
                assert clock.time() - 0.5 <= row.analyzed_at <= clock.time()  # the injected clock's time
                await clock.wait_sleepers(1)
                assert await stage.backlog() == 0 and not task.done()  # a timeout is a result
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert "timed out" in alert_sentence("x", stuck, row)


async def test_high_risk_line_reads_as_a_sentence(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        h = (await _record(ob, [_art("OwnerMintToken")]))[0]
        async with ScoreStage(ob, default_model_path(), threshold=0.0) as scorer:
            with caplog.at_level(logging.WARNING):
                await scorer.drain()  # no report yet: pending
                async with AnalysisStage(ob, budget_s=10) as stage:
                    await stage.drain()  # the report follows, with the score
                row = await get_capability(ob, h)
                assert row is not None and row.flags == ("is_mintable",)
        lines = [r.getMessage() for r in caplog.records if "HIGH RISK" in r.getMessage()]
        assert "capability analysis pending" in lines[0] and ">= 0.000" in lines[0]
        assert "owner-only function 0x40c10f19 mint(address,uint256)" in lines[1]
        assert "scored" in lines[1] and "chain 7201, block 1" in lines[1]
        assert not any("bigram:" in ln or "selbucket:" in ln for ln in lines)


async def test_config_section_and_unknown_flags(tmp_path: Path) -> None:
    base = {"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": 1}}
    cfg = parse_config(base, base_dir=tmp_path)
    assert cfg.capabilities.enabled and cfg.capabilities.budget_s == 5.0 and cfg.capabilities.alert_flags == ()
    cfg = parse_config({**base, "capabilities": {"budget_s": 2.5, "alert_flags": ["is_proxy"]}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="capabilities.budget_s"):
        parse_config({**base, "capabilities": {"budget_s": 0}}, base_dir=tmp_path)
    async with Outbox(tmp_path / "o.sqlite") as ob:
        stage = AnalysisStage.from_config(cfg, ob)
        assert stage.budget_s == 2.5 and stage.alert_flags == {"is_proxy"}
        with pytest.raises(ConfigError, match="capabilities.alert_flags.*is_mintabel"):
            AnalysisStage(ob, alert_flags=["is_mintabel"])


async def test_the_agent_analyses_what_it_ingests(chain_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Real anvil: two deployed tokens are ingested, scored, and analysed in the worker;
    the owner-mint one raises the configured alert; ingest did not wait for it."""
    from edge.agent import Agent
    from edge.devnet.activity import Activity
    from tests.conftest import make_config

    chain = await chain_factory()
    act = Activity(chain)
    await act.use_account(0)
    mint, plain = _art("OwnerMintToken"), _art("OzPlainToken")
    await act.deploy([mint, plain])
    await act.settle()
    cfg = make_config(chain, tmp_path / "edge.sqlite", capabilities={"alert_flags": ["is_mintable"]},
                      ingest={"confirmations": 0})
    async with Agent(cfg) as agent:
        assert agent.analysis is not None
        task = asyncio.create_task(agent.run(checkpoints=False))
        try:
            stats = await asyncio.wait_for(agent.analysis.wait_until(lambda s: s.analyzed >= 2), 120)
            assert stats.alerted == 1 and "mint(address,uint256)" in stats.last_alert
            assert agent.stats.contracts == 2 and "analyzed 2 with flags 1" in agent.stats_line()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        from eth_hash.auto import keccak

        row = await get_capability(agent.outbox, keccak(mint))
        assert row is not None and row.flags == ("is_mintable",)


async def test_checkpoint_findings_carry_each_contracts_flags(tmp_path: Path) -> None:
    from edge.store.checkpoints import range_findings

    async with Outbox(tmp_path / "o.sqlite") as ob:
        hashes = await _record(ob, [_art("OwnerMintToken"), _art("OzPlainToken"), _art("PausableToken")])
        await put_capability(ob, CapabilityRow(hashes[0], ANALYZER_VERSION, "ok", ("is_mintable",), (), 1, 1))
        await put_capability(ob, CapabilityRow(hashes[1], ANALYZER_VERSION, "ok", (), (), 1, 1))
        found = await range_findings(ob, 7201, 1, 3)
    assert [f.code_hash for f in found] == hashes
    assert [f.capabilities for f in found] == [("is_mintable",), (), None]  # None: not analysed yet


async def test_a_full_outbox_pauses_the_analysis_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.errors import OutboxFull
    from edge.scoring import analysis

    clock = MockClock()
    calls: list[bytes] = []
    real_put = analysis.put_capability

    async def full_once(ob: Outbox, row: CapabilityRow) -> None:
        calls.append(row.code_hash)
        if len(calls) == 1:
            raise OutboxFull("outbox o.sqlite: disk full (database or disk is full); rolled back")
        await real_put(ob, row)

    monkeypatch.setattr(analysis, "put_capability", full_once)
    async with Outbox(tmp_path / "o.sqlite") as ob:
        (h,) = await _record(ob, [_art("OwnerMintToken")])
        async with AnalysisStage(ob, budget_s=10, clock=clock) as stage:
            task = asyncio.create_task(stage.run())
            try:
                with caplog.at_level(logging.WARNING, logger="edge.capabilities"):
                    await asyncio.wait_for(clock.wait_sleepers(1), 60)  # paused, not stopped
                assert any("paused for 30 s" in r.getMessage() for r in caplog.records)
                assert stage.stats.analyzed == 0 and await get_capability(ob, h) is None
                clock.advance(analysis.RETRY_S)
                await asyncio.wait_for(stage.wait_until(lambda s: s.analyzed >= 1), 60)
                assert not task.done() and calls == [h, h]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        row = await get_capability(ob, h)
        assert row is not None and row.flags == ("is_mintable",)
