"""The scoring stage: every recorded contract code gets a risk score from the ONNX model.

Reads codes with no score for the current model id from the outbox, scores them in
batches of at most ``scoring.batch_size`` codes, and stores score, model id, flag and top
features in one transaction per batch. Codes are scored on arrival, batched only when
they queue up (like Nagle's algorithm, with a deadline): ingest signals each write
(``arrivals``); an idle scorer scores what is pending at once; codes that arrive while a
batch is being scored form the next batch. ``scoring.batch_wait_s`` is only the upper
bound on how long an idle scorer waits without a signal before it looks again. A flagged (high-risk) code is
logged with the addresses that carry it and counted in :attr:`ScoreStage.stats`.

Featurizing and inference run in a worker thread (``asyncio.to_thread``): the C
featurizer and onnxruntime release the GIL for most of the work, and the event loop is
never blocked for a whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import ModelError
from edge.scoring.batch import score_codes
from edge.scoring.latency import LatencyHistogram
from edge.aio import Changed
from edge.clock import SYSTEM_CLOCK, Clock
from edge.store.db import Outbox
from edge.store.scores import (ScoreRow, UnscoredCode, count_unscored, deployments_of, first_blocks, put_scores,
                               unscored_codes)

if TYPE_CHECKING:
    from edge.config import Config
    from edge.scoring.model import RiskModel

__all__ = ["ScoreStage", "ScoreStats"]

log = logging.getLogger("edge.score")

_LATENCY_SAMPLES = 65_536


@dataclass(slots=True)
class ScoreStats:
    """Live counters of the scoring stage (read by the stats line and ``edge demo``).

    Attributes:
        scored: codes scored since start. flagged: of which at or above the threshold.
        batches: batches stored. last_batch_s: wall time of the last batch (s).
    """

    scored: int = 0
    flagged: int = 0
    batches: int = 0
    last_batch_s: float = 0.0


class ScoreStage:
    """Scores unscored outbox codes in batches; an async context manager.

    Args:
        outbox: the open outbox.
        model_path: the ONNX model file (see :class:`edge.scoring.model.RiskModel`).
        batch_size: most codes per batch (>= 1).
        batch_wait_s: longest wait (s) of an idle scorer for an ``arrivals`` signal
            before it checks the outbox anyway (>= 0; 0: every ``poll_s``).
        threshold: flag threshold; None = the model's own.
        poll_s: how often (s) the outbox is checked for new codes without ``arrivals``.
        arrivals: set by ingest after each write (its only consumer is this stage, which
            clears it); None: poll every ``poll_s``.
        clock: waits (tests inject :class:`edge.clock.MockClock`).
        first_seen: block number -> when ingest first saw it (``clock.monotonic()`` s, or
            None when unknown; :meth:`edge.ingest.seen.FirstSeen.at`). When given, each
            scored code adds one sample to :attr:`latency_s`: first seen of the lowest
            block carrying it -> its score committed (s); the newest 65,536 are kept,
            and every sample also counts in :attr:`latency_hist` (exported as the
            ``edge_score_latency_seconds`` histogram).

    Raises (on enter):
        ModelError: the model cannot be loaded (missing, unreadable, wrong shape).
    """

    def __init__(
        self,
        outbox: Outbox,
        model_path: Path | str,
        *,
        batch_size: int = 256,
        batch_wait_s: float = 0.5,
        threshold: float | None = None,
        poll_s: float = 0.1,
        clock: Clock = SYSTEM_CLOCK,
        first_seen: Callable[[int], float | None] | None = None,
        arrivals: asyncio.Event | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"scoring batch_size must be >= 1, got {batch_size}")
        self.outbox = outbox
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.batch_wait_s = max(0.0, batch_wait_s)
        self.poll_s = max(0.005, min(poll_s, self.batch_wait_s or poll_s))
        self._threshold = threshold
        self._model: RiskModel | None = None
        self.clock = clock
        self.stats = ScoreStats()
        self._changed = Changed()
        self._first_seen = first_seen
        self._arrivals = arrivals
        self.latency_s: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.latency_hist = LatencyHistogram()

    @classmethod
    def from_config(cls, cfg: Config, outbox: Outbox, *, clock: Clock = SYSTEM_CLOCK,
                    first_seen: Callable[[int], float | None] | None = None,
                    arrivals: asyncio.Event | None = None) -> ScoreStage:
        """A stage configured by ``[scoring]`` (``model = ""``: the shipped model);
        ``first_seen`` and ``arrivals`` as in the class."""
        from edge.scoring.model import default_model_path

        sc = cfg.scoring
        path = cfg.resolve(sc.model) if sc.model else default_model_path()
        return cls(
            outbox,
            path,
            batch_size=sc.batch_size,
            batch_wait_s=sc.batch_wait_s,
            threshold=sc.threshold if sc.threshold >= 0 else None,
            clock=clock,
            first_seen=first_seen,
            arrivals=arrivals,
        )

    async def __aenter__(self) -> ScoreStage:
        from edge.scoring.model import RiskModel

        self._model = await asyncio.to_thread(RiskModel, self.model_path)
        log.info(
            "risk model %s (id %s..., threshold %.4f)",
            self.model_path.name,
            self._model.model_id[:12],
            self.threshold,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._model = None

    @property
    def model(self) -> RiskModel:
        """The loaded model. Raises ModelError outside ``async with``."""
        if self._model is None:
            raise ModelError("the scoring stage is not open (use it as an async context manager)")
        return self._model

    @property
    def model_id(self) -> str:
        """sha256 hex of the model file."""
        return self.model.model_id

    @property
    def threshold(self) -> float:
        """The threshold in force (configured, else the model's)."""
        return self.model.threshold if self._threshold is None else self._threshold

    async def backlog(self) -> int:
        """Number of recorded codes not yet scored by this model."""
        return await count_unscored(self.outbox, self.model_id)

    async def run(self) -> None:
        """Score forever, on arrival: whatever is pending (up to ``batch_size`` codes)
        is scored at once; codes written meanwhile form the next batch; with nothing
        pending, wait for ``arrivals`` (at most ``batch_wait_s``), or ``poll_s`` without
        it. Cancel to stop (between batches the outbox is always consistent)."""
        arrivals = self._arrivals
        idle_s = self.batch_wait_s if arrivals is not None and self.batch_wait_s > 0 else self.poll_s
        while True:
            if arrivals is not None:
                arrivals.clear()  # before the query: a write during it sets it again
            if await self.score_once():
                self._changed.notify()
                continue
            if arrivals is None:
                await self.clock.sleep(idle_s)
                continue
            try:
                await self.clock.wait_for(arrivals.wait(), idle_s)
            except TimeoutError:
                pass  # the upper bound: look again without a signal

    async def wait_until(self, predicate: Callable[[ScoreStats], bool]) -> ScoreStats:
        """Wait (by notification, no polling) until ``predicate(stats)`` holds; the stats
        change after every batch :meth:`run` scores. Returns the stats."""
        await self._changed.wait_until(lambda: predicate(self.stats))
        return self.stats

    async def drain(self) -> int:
        """Score until nothing is left; return how many codes were scored."""
        total = 0
        while True:
            n = await self.score_once()
            if n == 0:
                return total
            total += n

    async def score_once(self) -> int:
        """Score one batch (up to ``batch_size`` codes) and store it; return its size."""
        batch = await unscored_codes(self.outbox, self.model_id, self.batch_size)
        if not batch:
            return 0
        t0 = time.perf_counter()
        rows = await asyncio.to_thread(self._score_batch, batch)
        await put_scores(self.outbox, rows)
        if self._first_seen is not None:
            await self._latencies(batch)
        self.stats.last_batch_s = time.perf_counter() - t0
        self.stats.batches += 1
        self.stats.scored += len(rows)
        for row in rows:
            if row.flagged:
                self.stats.flagged += 1
                await self._report(row)
        return len(rows)

    async def _latencies(self, batch: list[UnscoredCode]) -> None:
        """One :attr:`latency_s` sample per code of the batch just stored whose block's
        first-seen time is known."""
        assert self._first_seen is not None
        done = self.clock.monotonic()
        for n in (await first_blocks(self.outbox, [c.code_hash for c in batch])).values():
            seen = self._first_seen(n)
            if seen is not None:
                self.latency_s.append(max(0.0, done - seen))
                self.latency_hist.add(done - seen)

    def _score_batch(self, batch: list[UnscoredCode]) -> list[ScoreRow]:
        scored = score_codes(self.model, [c.code for c in batch], threshold=self._threshold)
        return scored.rows([c.code_hash for c in batch], time.time())

    async def _report(self, row: ScoreRow) -> None:
        """Log a flagged code as a sentence: where it is, its score, and what its code lets
        someone do (the capability report's reasons; "pending" until the analysis stage
        has stored it, which then logs the reasons itself)."""
        from edge.scoring.analysis import alert_sentence, places_text
        from edge.store.capabilities import get_capability

        places = places_text(await deployments_of(self.outbox, row.code_hash))
        cap = await get_capability(self.outbox, row.code_hash)
        log.warning("HIGH RISK %s", alert_sentence(places, row.code_hash, cap, score=row.score,
                                                   threshold=self.threshold))
