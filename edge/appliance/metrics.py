"""Prometheus metrics of the agent, served as text on 127.0.0.1 only (prometheus-client).

:class:`Metrics` owns a private ``CollectorRegistry`` (nothing leaks in from other code
using the global one) and a small HTTP server thread from prometheus-client bound to
``127.0.0.1:port``; any other host is refused. Scrapes never touch the outbox: they read
an immutable :class:`Snapshot` that :meth:`Metrics.update` builds on the event loop from
the agent's live counters and a few small outbox queries (so a scrape cannot block the
agent, and the aiosqlite connection is only used from its own loop).

Exposed families (``_total`` = counter since the process started; others are gauges):

=====================================  =====================================================
``edge_info{version,chain_id}``        1
``edge_head_block``                    newest block the node reported
``edge_cursor_block``                  last block whose records are all in the outbox
``edge_lag_blocks``                    head - cursor
``edge_node_connected``                1 while the node connection is up
``edge_ingest_paused``                 1 while ingest waits for room in the outbox
``edge_blocks_ingested_total``         blocks, ``edge_logs_ingested_total`` logs,
                                       ``edge_contracts_ingested_total`` deployments,
                                       ``edge_reorgs_total``, ``edge_node_reconnects_total``,
                                       ``edge_foreign_sealed_blocks_total``
``edge_contracts_scored_total``        codes scored (scoring stage running)
``edge_contracts_high_risk_total``     of which flagged high-risk
``edge_score_latency_seconds``         histogram (``_bucket{le}``, ``_sum``, ``_count``): block
                                       first seen by ingest -> its new codes scored, one
                                       sample per code (:mod:`edge.scoring.latency`)
``edge_capability_analyzed_total``     codes analysed since start (analysis stage running),
                                       ``edge_capability_timeouts_total`` of which timed out
``edge_capability_codes{flag}``        codes in the outbox whose capability report carries
                                       the flag (every flag of the analyzer, 0 until seen)
``edge_capability_reports{status}``    capability reports in the outbox per status (ok,
                                       timeout, empty): the timeouts kept across restarts
``edge_checkpoints_cut_total``         checkpoints cut (checkpoint stage running)
``edge_checkpoints_anchored_total``    checkpoints anchored by this device (forward stage)
``edge_outbox_bytes``                  database + WAL size; ``edge_outbox_max_bytes`` the cap
``edge_outbox_checkpoints{state}``     checkpoints in the outbox per forwarding state
``edge_outbox_depth``                  checkpoints not yet anchored
``edge_anchors{state}``                mainnet anchor units per state
``edge_txs{chain_id,purpose,state}``   public-chain transactions per life-cycle state
``edge_tx_gas_limit_mined{chain_id}``  sum of the gas *limits* of mined/confirmed txs: an
                                       upper bound of gas spent (the outbox does not store
                                       the receipts' ``gasUsed``)
``edge_alarms{kind}``                  alarm rows in the outbox per kind (foreign_sealer,
                                       deep_reorg, divergence, upload_failed, anchor_failed,
                                       and each Clique rule: unauthorized_signer, ...):
                                       kept across restarts, so an increase is a new alarm
``edge_sender_low_balance{chain_id}``  1 while a public-chain sender waits for funds
                                       (forward stage running; 0 otherwise)
``edge_power_watts{source}``           board/package watts, only when readable
                                       (:mod:`edge.appliance.power`: Pi 5 PMIC, RAPL); absent otherwise
``edge_metrics_updated_seconds``       unix time of the last update
``process_*``                          RSS, CPU, open fds (prometheus-client)
=====================================  =====================================================
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from edge import __version__
from edge.chain.clique import RULES
from edge.config import MetricsConfig
from edge.errors import ConfigError
from edge.scoring.capabilities import FLAG_NAMES
from edge.store.capabilities import capability_counts
from edge.store.status import counts_by_state
from edge.appliance.power import Pi5Pmic, PowerSource, detect_source

if TYPE_CHECKING:
    from edge.ingest.stage import IngestStats
    from edge.store.db import Outbox

__all__ = ["ALARM_KINDS", "LOOPBACK", "Metrics", "MetricsSource", "Snapshot"]

log = logging.getLogger("edge.metrics")

LOOPBACK = "127.0.0.1"
"""The only address the metrics server binds."""

ALARM_KINDS = tuple(sorted(("anchor_failed", "deep_reorg", "divergence", "foreign_sealer", "upload_failed",
                            *RULES)))
"""Alarm kinds the stages write (the Clique ones are the EIP-225 rule names of
:data:`edge.chain.clique.RULES`: ``unauthorized_signer``, ``recently_signed`` ...); ``edge_alarms`` shows each (0 until the first), so an
alerting rule sees the series before the first alarm and ``increase()`` catches it."""


class MetricsSource(Protocol):
    """What :meth:`Metrics.update` reads of :class:`edge.agent.Agent`."""

    @property
    def outbox(self) -> Outbox:
        """The open outbox."""

    @property
    def stats(self) -> IngestStats:
        """Live ingest counters."""

    @property
    def scorer(self) -> Any:
        """Scoring stage (``.stats.scored``, ``.stats.flagged``) or None."""

    @property
    def checkpointer(self) -> Any:
        """Checkpoint stage (``.stats.checkpoints``) or None."""

    @property
    def forwarder(self) -> Any:
        """Forward stage (``.stats.checkpoints_anchored``) or None."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent set of values, as served until the next :meth:`Metrics.update`.

    Counts are ints, sizes bytes, ``watts`` W (None: unknown). ``None`` for a stage's
    counters means the stage is not running (its families are then left out).
    ``txs`` rows are ``(chain_id, purpose, state, count, gas_limit_sum)``; ``low_balance``
    rows ``(chain_id, paused for funds)``, one per sender of the forward stage.
    """

    chain_id: int = 0
    head: int = -1
    cursor: int = -1
    lag: int = 0
    connected: bool = False
    paused: bool = False
    blocks: int = 0
    logs: int = 0
    contracts: int = 0
    reorgs: int = 0
    reconnects: int = 0
    foreign_sealers: int = 0
    scored: int | None = None
    flagged: int | None = None
    checkpoints_cut: int | None = None
    score_latency: tuple[tuple[float, int], ...] = ()
    score_latency_sum_s: float = 0.0
    analyzed: int | None = None
    analysis_timeouts: int | None = None
    capability_codes: tuple[tuple[str, int], ...] = ()
    capability_reports: tuple[tuple[str, int], ...] = ()
    checkpoints_anchored: int | None = None
    outbox_bytes: int = 0
    outbox_max_bytes: int | None = None
    checkpoints_by_state: tuple[tuple[str, int], ...] = ()
    anchors_by_state: tuple[tuple[str, int], ...] = ()
    txs: tuple[tuple[int, str, str, int, int], ...] = ()
    alarms_by_kind: tuple[tuple[str, int], ...] = ()
    low_balance: tuple[tuple[int, bool], ...] = ()
    watts: float | None = None
    power_source: str = "unknown"
    updated: float = 0.0

    @property
    def outbox_depth(self) -> int:
        """Checkpoints in the outbox not yet anchored."""
        return sum(n for state, n in self.checkpoints_by_state if state != "anchored")


class _SnapshotCollector(Collector):
    """Turns the current :class:`Snapshot` into metric families at scrape time."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot  # one reference read: a scrape sees one snapshot, never a mix
        info = GaugeMetricFamily("edge_info", "Agent version and local chain id.", labels=["version", "chain_id"])
        info.add_metric([__version__, str(s.chain_id)], 1)
        yield info
        yield GaugeMetricFamily("edge_head_block", "Newest block number reported by the node.", value=s.head)
        yield GaugeMetricFamily("edge_cursor_block", "Last block whose records are all in the outbox.", value=s.cursor)
        yield GaugeMetricFamily("edge_lag_blocks", "Blocks between the node's head and the cursor.", value=s.lag)
        yield GaugeMetricFamily("edge_node_connected", "1 while the node connection is up.", value=int(s.connected))
        yield GaugeMetricFamily("edge_ingest_paused", "1 while ingest waits for room in the outbox.",
                                value=int(s.paused))
        for name, doc, v in (
            ("edge_blocks_ingested", "Blocks ingested since start.", s.blocks),
            ("edge_logs_ingested", "Logs ingested since start.", s.logs),
            ("edge_contracts_ingested", "Contract deployments ingested since start.", s.contracts),
            ("edge_reorgs", "Chain reorganisations handled since start.", s.reorgs),
            ("edge_node_reconnects", "Node reconnections since start.", s.reconnects),
            ("edge_foreign_sealed_blocks", "Blocks sealed by a signer outside poa.authorities.", s.foreign_sealers),
            ("edge_contracts_scored", "Contract codes scored since start.", s.scored),
            ("edge_contracts_high_risk", "Contract codes flagged high-risk since start.", s.flagged),
            ("edge_capability_analyzed", "Codes whose capabilities were analysed since start.", s.analyzed),
            ("edge_capability_timeouts", "Capability analyses that ran out of time since start.",
             s.analysis_timeouts),
            ("edge_checkpoints_cut", "Checkpoints cut since start.", s.checkpoints_cut),
            ("edge_checkpoints_anchored", "Checkpoints anchored by this device since start.",
             s.checkpoints_anchored),
        ):
            if v is not None:
                yield CounterMetricFamily(name, doc, value=v)
        if s.scored is not None:
            yield HistogramMetricFamily(
                "edge_score_latency_seconds",
                "Block first seen by ingest -> its new contract codes scored (s), one sample per code.",
                buckets=[("+Inf" if math.isinf(le) else repr(le), n) for le, n in s.score_latency]
                or [("+Inf", 0)],
                sum_value=s.score_latency_sum_s)
        caps = GaugeMetricFamily("edge_capability_codes", "Codes in the outbox whose capability report carries "
                                 "the flag.", labels=["flag"])
        for flag, n in s.capability_codes:
            caps.add_metric([flag], n)
        yield caps
        reps = GaugeMetricFamily("edge_capability_reports", "Capability reports in the outbox per status.",
                                 labels=["status"])
        for status, n in s.capability_reports:
            reps.add_metric([status], n)
        yield reps
        yield GaugeMetricFamily("edge_outbox_bytes", "Outbox database + WAL size.", value=s.outbox_bytes)
        if s.outbox_max_bytes is not None:
            yield GaugeMetricFamily("edge_outbox_max_bytes", "Outbox size cap (outbox.max_mib).",
                                    value=s.outbox_max_bytes)
        cps = GaugeMetricFamily("edge_outbox_checkpoints", "Checkpoints in the outbox per forwarding state.",
                                labels=["state"])
        for state, n in s.checkpoints_by_state:
            cps.add_metric([state], n)
        yield cps
        yield GaugeMetricFamily("edge_outbox_depth", "Checkpoints in the outbox not yet anchored.",
                                value=s.outbox_depth)
        anchors = GaugeMetricFamily("edge_anchors", "Mainnet anchor units per state.", labels=["state"])
        for state, n in s.anchors_by_state:
            anchors.add_metric([state], n)
        yield anchors
        txs = GaugeMetricFamily("edge_txs", "Public-chain transactions per life-cycle state.",
                                labels=["chain_id", "purpose", "state"])
        gas = GaugeMetricFamily("edge_tx_gas_limit_mined",
                                "Sum of gas limits of mined/confirmed txs: an upper bound of gas spent "
                                "(gasUsed is not stored).", labels=["chain_id"])
        gas_by_chain: dict[int, int] = {}
        for chain_id, purpose, state, n, gas_limit in s.txs:
            txs.add_metric([str(chain_id), purpose, state], n)
            if state in ("mined", "confirmed"):
                gas_by_chain[chain_id] = gas_by_chain.get(chain_id, 0) + gas_limit
        for chain_id, g in sorted(gas_by_chain.items()):
            gas.add_metric([str(chain_id)], g)
        yield txs
        yield gas
        alarms = GaugeMetricFamily("edge_alarms", "Alarm rows in the outbox per kind (kept across restarts).",
                                   labels=["kind"])
        for kind, n in s.alarms_by_kind:
            alarms.add_metric([kind], n)
        yield alarms
        low = GaugeMetricFamily("edge_sender_low_balance", "1 while a public-chain sender waits for funds.",
                                labels=["chain_id"])
        for chain_id, paused in s.low_balance:
            low.add_metric([str(chain_id)], int(paused))
        yield low
        watts = GaugeMetricFamily("edge_power_watts", "Board or package power when readable (W).",
                                  labels=["source"])
        if s.watts is not None:
            watts.add_metric([s.power_source], s.watts)
        yield watts
        yield GaugeMetricFamily("edge_metrics_updated_seconds", "Unix time of the last update.", value=s.updated)


class Metrics:
    """Prometheus text exposition of the agent on ``127.0.0.1:port``. An async context manager.

    Args:
        port: TCP port (0: any free port; read :attr:`port` after start).
        host: must be ``127.0.0.1`` (anything else raises ConfigError: metrics are never
            exposed beyond the device; scrape them through an SSH tunnel or a local agent).
        enabled: False = no server; :meth:`update` and :meth:`follow` do nothing.
        power: a :class:`edge.appliance.power.PowerSource`, None (no power readings), or ``"auto"``
            (:func:`edge.appliance.power.detect_source` at start: Pi 5 PMIC or RAPL when readable).

    Raises (on enter):
        ConfigError: ``metrics.port`` cannot be bound (in use, or privileged).
    """

    def __init__(self, port: int = 9108, *, host: str = LOOPBACK, enabled: bool = True,
                 power: PowerSource | None | str = "auto") -> None:
        if host != LOOPBACK:
            raise ConfigError("metrics", f"Prometheus text is served on {LOOPBACK} only; refusing host {host!r}")
        if not 0 <= port <= 65535:
            raise ConfigError("metrics.port", f"must be 0..65535, got {port}")
        self.host = host
        self.enabled = enabled
        self._port = port
        self._power_arg = power
        self.power: PowerSource | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _SnapshotCollector()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, cfg: MetricsConfig, *, power: PowerSource | None | str = "auto") -> Metrics:
        """A Metrics for the ``[metrics]`` section."""
        return cls(cfg.port, enabled=cfg.enabled, power=power)

    @property
    def port(self) -> int:
        """The bound port (the configured one until started)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._port

    @property
    def snapshot(self) -> Snapshot:
        """The values currently served."""
        return self._collector.snapshot

    async def __aenter__(self) -> Metrics:
        if not self.enabled:
            return self
        if self._power_arg == "auto":
            self.power = await asyncio.to_thread(detect_source)
        elif self._power_arg is None or isinstance(self._power_arg, str):
            self.power = None
        else:
            self.power = self._power_arg
        if self.power is not None:
            await asyncio.to_thread(self.power.start)
        self.registry.register(self._collector)
        ProcessCollector(registry=self.registry)
        try:
            self._server, self._thread = start_http_server(self._port, addr=self.host, registry=self.registry)
        except OSError as e:
            raise ConfigError("metrics.port", f"cannot listen on {self.host}:{self._port}: "
                                              f"{e.strerror or e}") from e
        log.info("metrics: Prometheus text on http://%s:%d/metrics (power: %s)", self.host, self.port,
                 self.power.name if self.power is not None else "unknown")
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)

    async def update(self, agent: MetricsSource) -> Snapshot:
        """Build a new :class:`Snapshot` from the agent and serve it; returns it.

        Reads the agent's stage counters (no I/O), GROUP BY queries on the small
        ``checkpoints``, ``anchors``, ``txs``, ``alarms`` and ``capabilities`` tables, the outbox file sizes, and one
        power reading (in a thread: ``vcgencmd`` spawns a process).
        """
        s = agent.stats
        ob = agent.outbox
        scorer, cp, fw = agent.scorer, agent.checkpointer, agent.forwarder
        watts = await asyncio.to_thread(self._read_watts) if self.power is not None else None
        grouped = await counts_by_state(ob)
        by_flag, by_status = await capability_counts(ob)
        analysis = getattr(agent, "analysis", None)
        snap = Snapshot(
            chain_id=s.chain_id, head=s.head, cursor=s.cursor, lag=s.lag, connected=s.connected, paused=s.paused,
            blocks=s.blocks, logs=s.logs, contracts=s.contracts, reorgs=s.reorgs, reconnects=s.reconnects,
            foreign_sealers=s.foreign_sealers,
            scored=int(scorer.stats.scored) if scorer is not None else None,
            flagged=int(scorer.stats.flagged) if scorer is not None else None,
            score_latency=tuple(scorer.latency_hist.cumulative()) if scorer is not None else (),
            score_latency_sum_s=float(scorer.latency_hist.sum_s) if scorer is not None else 0.0,
            checkpoints_cut=int(cp.stats.checkpoints) if cp is not None else None,
            analyzed=int(analysis.stats.analyzed) if analysis is not None else None,
            analysis_timeouts=int(analysis.stats.timeouts) if analysis is not None else None,
            capability_codes=tuple(sorted({**dict.fromkeys(FLAG_NAMES, 0), **by_flag}.items())),
            capability_reports=tuple(sorted({"ok": 0, "timeout": 0, "empty": 0, **by_status}.items())),
            checkpoints_anchored=int(fw.stats.checkpoints_anchored) if fw is not None else None,
            outbox_bytes=ob.size_bytes(), outbox_max_bytes=ob.max_bytes,
            checkpoints_by_state=tuple((str(a), int(b)) for a, b in grouped["checkpoints"]),
            anchors_by_state=tuple((str(a), int(b)) for a, b in grouped["anchors"]),
            txs=tuple((int(c), str(p), str(st), int(n), int(g)) for c, p, st, n, g in grouped["txs"]),
            alarms_by_kind=tuple(sorted({**dict.fromkeys(ALARM_KINDS, 0),
                                         **{str(a): int(b) for a, b in grouped["alarms"]}}.items())),
            low_balance=_low_balance(fw),
            watts=watts,
            power_source=self.power.name if self.power is not None and watts is not None else "unknown",
            updated=time.time(),
        )
        self._collector.snapshot = snap
        return snap

    def _read_watts(self) -> float | None:
        src = self.power
        if src is None:
            return None
        if isinstance(src, Pi5Pmic):
            return src.read()  # an instant reading; no need for an interval
        w = src.finish()  # average since the last reading (RAPL: energy / time)
        src.start()
        return w

    async def follow(self, agent: MetricsSource, every_s: float = 5.0) -> None:
        """Call :meth:`update` every ``every_s`` seconds until cancelled (returns at once
        when disabled)."""
        if not self.enabled:
            return
        while True:
            await self.update(agent)
            await asyncio.sleep(every_s)


def _low_balance(forwarder: Any) -> tuple[tuple[int, bool], ...]:
    """``(chain_id, paused_low_balance)`` of each TxSender of a forward stage (none without one)."""
    if forwarder is None:
        return ()
    senders = [*getattr(forwarder, "senders", {}).values(), getattr(forwarder, "mainnet", None)]
    return tuple(sorted((int(t.chain_id), bool(t.paused_low_balance)) for t in senders if t is not None))
