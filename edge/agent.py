"""The agent: one outbox and the stages that read and write it, supervised together.

:class:`Agent` opens the outbox, builds the stages from the config and runs them in one
:class:`asyncio.TaskGroup`, so an exception in any stage cancels the others and reaches
the caller (nothing fails silently in a side task). Stages talk only through the
outbox: ingest writes blocks, logs and contracts; scoring reads unscored code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any

from edge.aio import enter_all, first_error
from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import Config
from edge.checkpoint.stage import CheckpointStage
from edge.ingest.stage import Ingester, IngestStats, SealCheck
from edge.rpc import RpcFactory, open_rpc
from edge.store.db import Outbox

if TYPE_CHECKING:  # imported lazily at run time: the forward and fleet stages pull in eth-account
    from edge.fleet.stage import FleetStage
    from edge.forward.stage import ForwardStage
    from edge.scoring.analysis import AnalysisStage
    from edge.scoring.stage import ScoreStage

__all__ = ["Agent", "make_seal_check"]

log = logging.getLogger("edge.agent")


def make_seal_check(cfg: Config) -> SealCheck | None:
    """The PoA seal check for ``cfg.poa`` (None when ``engine = "none"``).

    Clique (EIP-225) and AuRa seals are recovered by :mod:`edge.chain.poa`; on a chain
    without seals (a dev chain) the check turns itself off and says so once.
    """
    if cfg.poa.engine == "none":
        return None
    from edge.chain.poa import SealChecker

    checker = SealChecker(cfg.poa.engine, cfg.poa.authorities)

    def check(header: Mapping[str, Any]) -> tuple[bytes | None, bool | None]:
        res = checker.check(header)
        signer = bytes.fromhex(res.signer[2:]) if res.signer else None
        return signer, res.authorized

    return check


class Agent:
    """One device's agent: outbox + ingest (+ scoring when a model is configured, + the
    capability analysis in its worker process when ``[capabilities] enabled``).

    An async context manager. ``await agent.run(stop_at=None)`` runs until cancelled, or
    until the ingest cursor reaches ``stop_at`` (then the scoring stage drains and
    everything stops).

    Args:
        cfg: the validated config.
        score: run the scoring stage (needs the ONNX model) and, when
            ``[capabilities] enabled``, the analysis stage.
        rpc_factory: every JSON-RPC connection of every stage is made by it (default
            :func:`edge.rpc.open_rpc`; tests inject :class:`edge.rpc.mock.MockNetwork`
            or a wrapper around a real node).
        clock: every wait and timestamp of every stage (default the system clock).

    Raises (from run): ConfigError for operator errors found at run time; other
        EdgeErrors that a stage could not handle.
    """

    def __init__(self, cfg: Config, *, score: bool = True, rpc_factory: RpcFactory = open_rpc,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.cfg = cfg
        self.score = score
        self.rpc_factory = rpc_factory
        self.clock = clock
        self.outbox = Outbox(cfg.resolve(cfg.outbox.path), max_bytes=int(cfg.outbox.max_mib * 2**20))
        self.arrivals = asyncio.Event()
        """Set by ingest after each write; the scoring stage waits on it (score on arrival)."""
        self.ingester = Ingester(cfg, self.outbox, rpc_factory=rpc_factory, clock=clock,
                                 seal_check=make_seal_check(cfg), written=self.arrivals)
        self.scorer: ScoreStage | None = None
        self.analysis: AnalysisStage | None = None
        self.checkpointer: CheckpointStage | None = None
        self.forwarder: ForwardStage | None = None
        self.fleet: FleetStage | None = None
        self._stack = AsyncExitStack()

    @property
    def stats(self) -> IngestStats:
        """Live ingest counters."""
        return self.ingester.stats

    async def __aenter__(self) -> Agent:
        parts: list[AbstractAsyncContextManager[Any]] = [self.outbox, self.ingester]
        if self.score:
            from edge.scoring.stage import ScoreStage

            self.scorer = ScoreStage.from_config(self.cfg, self.outbox, clock=self.clock,
                                                 first_seen=self.ingester.seen.at, arrivals=self.arrivals)
            parts.append(self.scorer)
            if self.cfg.capabilities.enabled:
                from edge.scoring.analysis import AnalysisStage

                self.analysis = AnalysisStage.from_config(self.cfg, self.outbox, clock=self.clock)
                parts.append(self.analysis)
        await enter_all(self._stack, parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def run(self, stop_at: int | None = None, *, checkpoints: bool = True) -> None:
        """Run the stages until cancelled or the cursor reaches ``stop_at``.

        With ``checkpoints`` (and ``stop_at`` None) the checkpoint stage runs, and the forward
        stage when ``[forward]`` is enabled. The first error of any stage cancels the
        others and is raised as itself (not wrapped in an ExceptionGroup). The analysis
        stage runs beside them and is not drained at ``stop_at`` (it is seconds per code;
        what it has not done is picked up at the next start)."""
        try:
            async with asyncio.TaskGroup() as tg:
                side = [tg.create_task(self._stats_loop(), name="stats")]
                stage = self.scorer
                scorer = tg.create_task(stage.run(), name="score") if stage is not None else None
                if self.analysis is not None:
                    side.append(tg.create_task(self.analysis.run(), name="analysis"))
                if checkpoints and stop_at is None:
                    side.append(tg.create_task(self._checkpoint_and_forward(), name="checkpoint"))
                await self.ingester.run(stop_at)
                if stage is not None and scorer is not None:
                    await stage.drain()
                    scorer.cancel()
                for t in side:
                    t.cancel()
        except BaseExceptionGroup as eg:
            raise first_error(eg) from eg

    async def _checkpoint_and_forward(self) -> None:
        """Once the chain id is known: build, enter (once, here, their owner) and run the
        checkpoint stage and, when configured, the forward and fleet stages."""
        await self.ingester.chain_ready.wait()
        chain_id = self.ingester.stats.chain_id
        self.checkpointer = CheckpointStage(self.outbox, chain_id, every_blocks=self.cfg.checkpoint.every_blocks,
                                            start_block=self.cfg.ingest.start_block, clock=self.clock,
                                            initial_state="unattested" if self.cfg.fleet.enabled else "sealed")
        parts: list[AbstractAsyncContextManager[Any]] = [self.checkpointer]
        if self.cfg.forward.enabled:
            from edge.crypto.keys import load_key, read_passphrase
            from edge.forward.stage import ForwardStage

            key = await asyncio.to_thread(load_key, self.cfg.resolve(self.cfg.device.keystore),
                                          read_passphrase(self.cfg.device.passphrase))
            self.forwarder = ForwardStage(self.cfg, self.outbox, key, chain_id, rpc_factory=self.rpc_factory,
                                          clock=self.clock)
            parts.append(self.forwarder)
            if self.cfg.fleet.enabled:
                from edge.fleet.stage import FleetStage

                self.fleet = FleetStage(self.cfg, self.outbox, key, chain_id, self.forwarder,
                                        rpc_factory=self.rpc_factory, clock=self.clock)
                parts.append(self.fleet)
        async with AsyncExitStack() as stack:
            await enter_all(stack, parts)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.checkpointer.run(), name="checkpoint")
                if self.fleet is not None:
                    tg.create_task(self.fleet.run(), name="fleet")
                if self.forwarder is not None:
                    tg.create_task(self.forwarder.run(), name="forward")

    async def _stats_loop(self) -> None:
        every = self.cfg.log.stats_interval_s
        while True:
            await self.clock.sleep(every)
            log.info("%s", self.stats_line())

    def stats_line(self) -> str:
        """One line of statistics for the journal."""
        s = self.stats
        line = (f"chain {s.chain_id} head {s.head} cursor {s.cursor} lag {s.lag} | blocks {s.blocks} "
                f"logs {s.logs} contracts {s.contracts} reorgs {s.reorgs} reconnects {s.reconnects}")
        if self.scorer is not None:
            line += f" | scored {self.scorer.stats.scored} flagged {self.scorer.stats.flagged}"
        if self.analysis is not None:
            a = self.analysis.stats
            line += f" | analyzed {a.analyzed} with flags {a.flagged} timeouts {a.timeouts}"
        if self.checkpointer is not None:
            line += f" | checkpoints {self.checkpointer.stats.checkpoints}"
        if self.forwarder is not None:
            line += f" anchored {self.forwarder.stats.checkpoints_anchored}"
        if s.paused:
            line += " | PAUSED: outbox full"
        return line

