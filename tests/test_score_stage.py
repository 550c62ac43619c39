"""The scoring stage over a real SQLite outbox: batches, stored scores, backlog, alerts."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from edge.errors import ModelError
from edge.scoring.features import featurize_many
from edge.scoring.model import RiskModel, default_model_path
from edge.scoring.stage import ScoreStage
from edge.clock import MockClock
from edge.store.db import Outbox
from edge.store.scores import ScoreRow, UnscoredCode, count_unscored, get_score, unscored_codes

CODES = [bytes.fromhex("6080604052") + bytes([i]) * (i + 1) for i in range(40)]
OVERSIZE = bytes([0x5B]) * 24_577


async def _record(ob: Outbox, codes: list[bytes], first_block: int = 1) -> list[bytes]:
    """Store codes and one contract per code, as ingest does."""
    hashes = [keccak(c) for c in codes]
    async with ob.transaction() as tx:
        await tx.executemany(
            "INSERT OR IGNORE INTO codes (code_hash, code, size) VALUES (?,?,?)",
            [(h, c, len(c)) for h, c in zip(hashes, codes)],
        )
        await tx.executemany(
            "INSERT INTO contracts (chain_id, block_number, tx_index, create_index, tx_hash, address,"
            " creator, code_hash, code_size, oversize) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (7201, first_block + i, 0, 0, bytes(32), i.to_bytes(20, "big"), bytes(20), h, len(c),
                 int(len(c) > 24_576))
                for i, (h, c) in enumerate(zip(hashes, codes))
            ],
        )
    return hashes


async def test_drain_scores_everything_once(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        hashes = await _record(ob, CODES + [OVERSIZE])
        async with ScoreStage(ob, default_model_path(), batch_size=16) as stage:
            assert await stage.backlog() == len(CODES)  # the oversize code is not scored
            assert await stage.drain() == len(CODES)
            assert stage.stats.batches == 3 and stage.stats.scored == len(CODES)
            assert await stage.backlog() == 0
            assert await stage.drain() == 0
            model = RiskModel(default_model_path())
            expected = model.score(featurize_many(CODES))
            for h, s in zip(hashes, expected):
                row = await get_score(ob, h, model.model_id)
                assert row is not None
                assert row.score == pytest.approx(float(s), abs=1e-6)
                assert row.flagged == bool(s >= model.threshold)
                assert all(w > 0 for _, _, w in row.top_features)
            assert await get_score(ob, hashes[-1], model.model_id) is None
            raw = await ob.fetchone("SELECT top_features FROM scores LIMIT 1")
            assert raw is not None and isinstance(json.loads(raw[0]), list)


async def test_a_new_model_id_scores_again(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        hashes = await _record(ob, CODES[:5])
        async with ScoreStage(ob, default_model_path()) as stage:
            await stage.drain()
            assert await count_unscored(ob, stage.model_id) == 0
            assert await count_unscored(ob, "another-model") == 5
            assert {u.code_hash for u in await unscored_codes(ob, "another-model", 10)} == set(hashes)
            assert len(await unscored_codes(ob, "another-model", 2)) == 2


class _Gated(ScoreStage):
    """A stage whose batches wait for the test (``release``) inside the worker thread, so
    a test can write codes while a batch is being scored."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def _score_batch(self, batch: list[UnscoredCode]) -> list[ScoreRow]:
        self.sizes.append(len(batch))
        self.entered.set()
        self.release.wait(30)
        return super()._score_batch(batch)


async def test_a_single_code_is_scored_on_arrival_without_the_batch_wait(tmp_path: Path) -> None:
    clock, arrivals = MockClock(), asyncio.Event()
    async with Outbox(tmp_path / "o.sqlite") as ob:
        async with ScoreStage(ob, default_model_path(), batch_size=256, batch_wait_s=0.5, clock=clock,
                              arrivals=arrivals) as stage:
            task = asyncio.create_task(stage.run())
            try:
                await clock.wait_sleepers(1)  # idle: nothing pending, waiting for an arrival
                await _record(ob, CODES[:1])
                arrivals.set()  # what ingest does after each write
                async with asyncio.timeout(30):
                    await stage.wait_until(lambda s: s.scored >= 1)
                assert clock.monotonic() == 0.0  # never waited for the 0.5 s batch wait
                assert stage.stats.batches == 1 and not task.done()
            finally:
                task.cancel()


async def test_codes_written_during_a_batch_form_the_next_batch(tmp_path: Path) -> None:
    clock, arrivals = MockClock(), asyncio.Event()
    async with Outbox(tmp_path / "o.sqlite") as ob:
        stage = _Gated(ob, default_model_path(), batch_size=4, batch_wait_s=0.5, clock=clock, arrivals=arrivals)
        async with stage:
            task = asyncio.create_task(stage.run())
            try:
                await clock.wait_sleepers(1)
                await _record(ob, CODES[:1])
                arrivals.set()
                await asyncio.to_thread(stage.entered.wait, 30)  # batch 1 (one code) is being scored
                await _record(ob, CODES[1:6], first_block=100)  # five more arrive meanwhile
                arrivals.set()
                stage.release.set()
                async with asyncio.timeout(30):
                    await stage.wait_until(lambda s: s.scored >= 6)
                assert stage.sizes == [1, 4, 1]  # the queue forms the next batches, batch_size at most
                assert clock.monotonic() == 0.0 and await stage.backlog() == 0
            finally:
                stage.release.set()
                task.cancel()


async def test_without_a_signal_the_batch_wait_is_the_upper_bound(tmp_path: Path) -> None:
    clock, arrivals = MockClock(), asyncio.Event()
    async with Outbox(tmp_path / "o.sqlite") as ob:
        async with ScoreStage(ob, default_model_path(), batch_size=256, batch_wait_s=0.2, clock=clock,
                              arrivals=arrivals) as stage:
            task = asyncio.create_task(stage.run())
            try:
                await clock.wait_sleepers(1)
                await _record(ob, CODES[:3])  # written by someone who does not signal
                clock.advance(0.15)
                await clock.wait_sleepers(1)  # still the same wait: nothing woke the stage
                assert stage.stats.scored == 0
                clock.advance(0.05)
                async with asyncio.timeout(30):
                    await stage.wait_until(lambda s: s.scored >= 3)
                assert stage.stats.batches == 1
            finally:
                task.cancel()


async def test_without_arrivals_the_stage_polls(tmp_path: Path) -> None:
    clock = MockClock()
    async with Outbox(tmp_path / "o.sqlite") as ob:
        async with ScoreStage(ob, default_model_path(), batch_size=256, batch_wait_s=0.5, poll_s=0.05,
                              clock=clock) as stage:
            task = asyncio.create_task(stage.run())
            try:
                await clock.wait_sleepers(1)
                await _record(ob, CODES[:3])
                assert stage.stats.scored == 0
                clock.advance(0.05)
                async with asyncio.timeout(30):
                    await stage.wait_until(lambda s: s.scored >= 3)
                assert clock.monotonic() < 0.5  # the next poll, not the batch wait
            finally:
                task.cancel()


async def test_flagged_codes_are_logged_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        await _record(ob, CODES[:4])
        async with ScoreStage(ob, default_model_path(), threshold=0.0) as stage:
            with caplog.at_level(logging.WARNING, logger="edge.score"):
                await stage.drain()
            assert stage.stats.flagged == 4
            lines = [r.getMessage() for r in caplog.records if "HIGH RISK" in r.getMessage()]
            assert len(lines) == 4 and all("chain 7201" in line for line in lines)
            flagged = await ob.fetchone("SELECT count(*) FROM scores WHERE flagged=1")
            assert flagged == (4,)


async def test_missing_model_fails_on_enter(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.sqlite") as ob:
        with pytest.raises(ModelError, match="cannot read model"):
            async with ScoreStage(ob, tmp_path / "missing.onnx"):
                pass
        with pytest.raises(ValueError, match="batch_size must be >= 1"):  # a programming error, not the model's
            ScoreStage(ob, default_model_path(), batch_size=0)


async def test_from_config_uses_the_scoring_section(tmp_path: Path) -> None:
    from edge.config import parse_config

    cfg = parse_config(
        {"node": {"ws_url": "ws://127.0.0.1:1", "chain_id": 1},
         "scoring": {"batch_size": 8, "batch_wait_s": 0.1, "threshold": 0.3}},
        base_dir=tmp_path,
    )
    async with Outbox(tmp_path / "o.sqlite") as ob:
        await _record(ob, CODES[:10])
        async with ScoreStage.from_config(cfg, ob) as stage:
            assert stage.model_path == default_model_path()
            assert stage.batch_size == 8 and stage.threshold == 0.3
            assert await stage.score_once() == 8
            rows = await ob.fetchall("SELECT score, flagged FROM scores")
            assert all(bool(f) == (s >= 0.3) for s, f in rows)


async def test_latency_samples_run_from_first_seen_to_the_stored_score(tmp_path: Path) -> None:
    clock = MockClock(start=5.0)
    async with Outbox(tmp_path / "o.sqlite") as ob:
        await _record(ob, CODES[:3], first_block=10)  # one contract per block: 10, 11, 12
        await _record(ob, CODES[:1], first_block=20)  # the same code again later: its first block counts
        seen = {10: 2.0, 11: 4.5}  # block 12 unknown (stored by an earlier life): no sample
        async with ScoreStage(ob, default_model_path(), clock=clock, first_seen=seen.get) as stage:
            assert await stage.drain() == 3
        assert sorted(stage.latency_s) == [0.5, 3.0]
        hist = dict(stage.latency_hist.cumulative())  # the same samples in the exported histogram
        assert (hist[0.25], hist[0.5], hist[2.5], hist[5.0]) == (0, 1, 1, 2)
        assert stage.latency_hist.count == 2 and stage.latency_hist.sum_s == 3.5
