"""The analysis stage: a capability report for every distinct recorded code, off the hot path.

Next to the fast risk score (:mod:`edge.scoring.stage`), every distinct runtime code that
ingest records gets a capability report (:func:`edge.scoring.capabilities.analyze`: what
the code lets someone do, in GoPlus token-security flag names, with evidence and one
readable sentence per flag), stored per code hash in the outbox
(:mod:`edge.store.capabilities`).

Never in the hot path:

* the analysis runs in ONE child process (:class:`edge.scoring.capability_worker.CapabilityWorker`),
  never on the event loop nor in one of its threads; the loop only awaits its answer;
* once per distinct code hash (the outbox's ``capabilities`` table is the durable queue:
  a code is picked while it has no report of the current analyzer version), at most
  ``max_pending`` codes in memory at a time (the bounded in-memory queue);
* with a time budget per code (``[capabilities] budget_s``); a ``timeout`` is stored as
  the code's result (no flags), counted, and not retried by the same analyzer; a stuck
  child is killed and replaced by the worker;
* ingest and the score stage never read what it writes, so they never wait on it.

Alerts. A code whose flags intersect ``alert_flags`` counts in
:attr:`AnalysisStats.alerted` (the appliance's alert LED follows it) and is logged as a
sentence a person can act on (:func:`alert_sentence`). A code the score stage flagged
high-risk before its report existed gets the same sentence, with its score, once the
report is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from edge.aio import Changed
from edge.clock import SYSTEM_CLOCK, Clock
from edge.errors import ConfigError, OutboxFull
from edge.scoring.capabilities import ANALYZER_VERSION, FLAG_NAMES, CapabilityReport, analyze
from edge.scoring.capability_worker import AnalyzeFn, CapabilityWorker, CapabilityWorkerUnavailable
from edge.store.capabilities import (
    CapabilityRow,
    count_unanalyzed,
    latest_score,
    put_capability,
    unanalyzed_codes,
)
from edge.store.db import Outbox
from edge.store.scores import deployments_of

if TYPE_CHECKING:
    from edge.config import Config

__all__ = ["RETRY_S", "AnalysisStage", "AnalysisStats", "alert_sentence", "places_text"]

log = logging.getLogger("edge.capabilities")

RETRY_S = 30.0
"""Wait (s) after a transient fault (outbox full, worker not starting) before trying again."""


@dataclass(slots=True)
class AnalysisStats:
    """Live counters of the analysis stage (stats line, metrics, front panel).

    Attributes:
        analyzed: codes analysed and stored since start (any status).
        timeouts: of which the time budget ran out (stored as ``timeout``).
        flagged: of which at least one flag was raised.
        alerted: codes whose flags intersect ``alert_flags`` (the alert LED follows it).
        last_alert: the sentence of the newest such code ("" until the first).
        last_ms: analysis time of the newest code (ms, as the report gives it).
    """

    analyzed: int = 0
    timeouts: int = 0
    flagged: int = 0
    alerted: int = 0
    last_alert: str = ""
    last_ms: float = 0.0


def places_text(where: Sequence[tuple[int, int, bytes]]) -> str:
    """Where a code is deployed, for a log line: ``0x<addr> (chain C, block B), ...``."""
    return ", ".join(f"0x{a.hex()} (chain {c}, block {b})" for c, b, a in where) or "(no contract recorded)"


def alert_sentence(places: str, code_hash: bytes, row: CapabilityRow | None, *,
                   score: float | None = None, threshold: float | None = None) -> str:
    """One sentence about a contract that a person can act on.

    Args:
        places: :func:`places_text` of its deployments. code_hash: 32 bytes.
        row: its stored capability report, or None (analysis not done yet).
        score: its risk score when the score flagged it; threshold: the threshold in
            force, when known.

    Returns:
        e.g. ``contract 0xab.. (chain 7201, block 5) [code 0x12..] scored 0.931 >= 0.500:
        owner-only function 0x40c10f19 mint(address,uint256) increases the balances
        mapping and the total supply (mint)``.
    """
    head = f"contract {places} [code 0x{code_hash.hex()[:16]}...]"
    if score is not None:
        head += f" scored {score:.3f} " + (f">= {threshold:.3f}" if threshold is not None else "(high risk)")
    if row is None:
        return f"{head}: capability analysis pending (its reasons follow when done)"
    if row.status == "timeout":
        return f"{head}: capability analysis timed out ({row.elapsed_ms / 1000:.1f} s); inspect the code by hand"
    if not row.flags:
        return f"{head}: its code shows none of the capability flags (no owner mint, pause, list, fee, upgrade)"
    return f"{head}: " + "; ".join(row.reasons)


def _row(report: CapabilityReport, code_hash: bytes, now: float) -> CapabilityRow:
    js = report.to_json()
    return CapabilityRow(code_hash, report.analyzer, report.status, tuple(js["capabilities"]),
                         tuple(js["evidence"]), float(js["elapsed_ms"]), now)


class AnalysisStage:
    """Analyses every distinct recorded code once, in a worker process; an async context manager.

    Args:
        outbox: the open outbox.
        budget_s: analysis time budget per code, seconds (> 0).
        alert_flags: flag names that raise an alert by themselves (each one of
            :data:`edge.scoring.capabilities.FLAG_NAMES`).
        max_pending: most codes taken from the outbox at a time (the bounded queue, >= 1).
        poll_s: how often (s) the outbox is checked when nothing is waiting.
        clock: waits and timestamps (tests inject :class:`edge.clock.MockClock`).
        analyze_fn: the analysis run in the child (tests); hard_timeout_s: the worker's
            round-trip limit per code (default ``3 * budget_s + 5``).
        nice: the worker's CPU priority below the agent's (``capabilities.nice``, 0..19).

    Raises:
        ConfigError: an unknown name in ``alert_flags`` (key ``capabilities.alert_flags``).
        EdgeError: ``budget_s`` or ``max_pending`` out of range.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        budget_s: float = 5.0,
        alert_flags: Sequence[str] = (),
        max_pending: int = 16,
        poll_s: float = 0.5,
        clock: Clock = SYSTEM_CLOCK,
        analyze_fn: AnalyzeFn = analyze,
        hard_timeout_s: float | None = None,
        nice: int = 10,
    ) -> None:
        unknown = [f for f in alert_flags if f not in FLAG_NAMES]
        if unknown:
            raise ConfigError("capabilities.alert_flags",
                              f"unknown flag(s) {', '.join(unknown)}; known flags: {', '.join(FLAG_NAMES)}")
        self.outbox = outbox
        self.alert_flags = frozenset(alert_flags)
        self.max_pending = max_pending
        self.poll_s = max(0.005, poll_s)
        self.clock = clock
        self.worker = CapabilityWorker(budget_s=budget_s, max_pending=max_pending,
                                       hard_timeout_s=hard_timeout_s, analyze_fn=analyze_fn, nice=nice)
        self.stats = AnalysisStats()
        self._changed = Changed()

    @classmethod
    def from_config(cls, cfg: Config, outbox: Outbox, *, clock: Clock = SYSTEM_CLOCK) -> AnalysisStage:
        """A stage configured by ``[capabilities]``."""
        c = cfg.capabilities
        return cls(outbox, budget_s=c.budget_s, alert_flags=c.alert_flags, clock=clock, nice=c.nice)

    @property
    def budget_s(self) -> float:
        """The time budget per code (s)."""
        return self.worker.budget_s

    async def __aenter__(self) -> AnalysisStage:
        await self.worker.__aenter__()
        log.info("capability analysis %s in a worker process (budget %.1f s per code, alert flags: %s)",
                 ANALYZER_VERSION, self.budget_s, ", ".join(sorted(self.alert_flags)) or "none")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.worker.__aexit__(exc_type, exc, tb)

    async def backlog(self) -> int:
        """Distinct recorded codes with no report of the current analyzer."""
        return await count_unanalyzed(self.outbox, ANALYZER_VERSION)

    async def run(self) -> None:
        """Analyse forever: whatever waits, then look again every ``poll_s``. Cancel to
        stop (a code being analysed is simply picked again at the next start). A full
        outbox or a worker that did not start is a transient fault: logged, retried
        after ``RETRY_S`` (nothing is lost: the outbox is the queue); it never stops
        the agent."""
        while True:
            try:
                n = await self.analyze_once()
            except (OutboxFull, CapabilityWorkerUnavailable) as e:
                log.warning("capability analysis paused for %.0f s: %s", RETRY_S, e)
                await self.clock.sleep(RETRY_S)
                continue
            if n == 0:
                await self.clock.sleep(self.poll_s)

    async def drain(self) -> int:
        """Analyse until nothing is left; return how many codes were analysed."""
        total = 0
        while (n := await self.analyze_once()) > 0:
            total += n
        return total

    async def wait_until(self, predicate: Callable[[AnalysisStats], bool]) -> AnalysisStats:
        """Wait (by notification, no polling) until ``predicate(stats)`` holds; the stats
        change after every stored report. Returns the stats."""
        await self._changed.wait_until(lambda: predicate(self.stats))
        return self.stats

    async def analyze_once(self) -> int:
        """Analyse up to ``max_pending`` waiting codes, one at a time in the worker, each
        stored as soon as it is done; return how many."""
        batch = await unanalyzed_codes(self.outbox, ANALYZER_VERSION, self.max_pending)
        for c in batch:
            report = await self.worker.analyze(c.code, "0x" + c.code_hash.hex())
            row = _row(report, c.code_hash, self.clock.time())
            await put_capability(self.outbox, row)
            await self._account(row)
            self._changed.notify()
        return len(batch)

    async def _account(self, row: CapabilityRow) -> None:
        s = self.stats
        s.analyzed += 1
        s.last_ms = row.elapsed_ms
        if row.status == "timeout":
            s.timeouts += 1
            log.info("capability analysis of code 0x%s timed out after %.0f ms (budget %.1f s): recorded",
                     row.code_hash.hex(), row.elapsed_ms, self.budget_s)
        if row.flags:
            s.flagged += 1
        hits = self.alert_flags.intersection(row.flags)
        scored = await latest_score(self.outbox, row.code_hash)
        high_risk = scored is not None and scored[1]
        if not hits and not high_risk:
            return
        places = places_text(await deployments_of(self.outbox, row.code_hash))
        if hits:
            s.alerted += 1
            s.last_alert = f"{', '.join(sorted(hits))}: {alert_sentence(places, row.code_hash, row)}"
            log.warning("CAPABILITY ALERT %s", s.last_alert)
        if high_risk and scored is not None:
            log.warning("HIGH RISK %s", alert_sentence(places, row.code_hash, row, score=scored[0]))
