"""The extract stage: stream a PoA chain into the outbox, resumable and reorg-safe.

Like ethereum-etl's streamer, the stage knows only block numbers and a sync point (the
outbox cursor); the adapter (:class:`edge.ingest.adapter.ChainReader`) does the I/O over
the injected JSON-RPC transport and the parsing (:mod:`edge.chain.extract`). One step:

1. read the cursor ``c`` (last block fully written) and the node's head ``h``;
2. fetch blocks ``c+1 .. min(h, c+batch)`` with their receipts (and traces) in one
   JSON-RPC batch, then their new contracts' runtime code (``eth_getCode`` at the block
   hash, EIP-1898) in a second (outside ``strict`` only what the traces did not carry);
3. keep the prefix that links to the cursor hash by ``parentHash``; if even the first
   block does not link, a reorg happened: find the fork point by comparing stored and
   canonical hashes and roll back above it (:func:`edge.store.chain_data.rollback_to`);
4. on a Clique chain, apply the linked headers to the EIP-225 signer-set snapshot of the
   cursor's block (:mod:`edge.ingest.clique`): a verdict per block (sealer, authorized,
   in turn, the snapshot after it, signer-set changes, the rules it broke);
5. write the blocks, their records, their Clique verdicts (snapshots, changes, one alarm
   row per violation) and the new cursor in ONE outbox transaction; then log each
   violation. A broken rule is an alarm, never a stall.

Pipelined (``ingest.max_inflight_mib`` > 0, the default): once batch n's blocks are read
and link to the stored tip, batch n+1 (its blocks, receipts and traces, parsed and checked
against their headers) is fetched ahead, a task in the session's task group, while batch
n's code (and its EIP-1186 proofs) is read and the batch written; one batch ahead at most.
Its block count is what the byte-sized batches would ask next (:func:`_next_batch`),
capped so that batch n's answer bytes plus batch n+1's estimate (batch n's bytes per
block) stay within ``ingest.max_inflight_mib``. A batch fetched ahead is used only when
its first block's parent is the stored tip; otherwise (a reorg raced it) it is dropped and
the range is read again. A reorg, a lagging node and the end of a session drop it too. An
error of the read ahead is the writer's when it takes that range (as if it had read it
itself: a reconnect, smaller batches after a timeout, a node mismatch counted and, after
three, an alarm; never swallowed). The writer never writes a block whose parent is not the
stored tip, and the cursor commits with the data, in order.

So a kill at any instant leaves the outbox at a block boundary, and a restart continues
from the cursor: no record is lost or written twice. ``newHeads`` notifications only
wake the loop; a poll every ``poll_s`` seconds covers a silent subscription. On a lost
connection the stage reconnects with capped exponential backoff (reset once a connection
has made progress) and backfills from the cursor. When the outbox is full it pauses
(backpressure) with one log line per episode.

A node that *lags* (its head below the cursor, or ``null`` for a block it should have)
is waited for, never taken for a reorg: only a block that exists and does not link, or a
stored block whose canonical hash now differs, is evidence of a reorg. A node that reports
another chain id than ``node.chain_id`` is an alarm and a wait (the answer may be a
transient fault of the node's), never an exit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from edge import memory
from edge.aio import Changed
from edge.chain.records import EIP170_MAX_CODE_SIZE, BlockBundle, BlockRecord, ContractRecord
from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import Config
from edge.errors import AnswerTooLarge, ChainError, ChainIdMismatch, OutboxFull, RpcTimeout, SealError
from edge.chain.extract import parse_block
from edge.chain.proof_probe import probe_proofs
from edge.chain.verify import VerificationError, verify_header
from edge.ingest.adapter import ChainReader, FetchedBlock
from edge.ingest.clique import CliqueFollower, verdict_seal
from edge.ingest.seen import FirstSeen
from edge.rpc.base import RpcFactory
from edge.store import chain_data
from edge.store.db import Outbox

__all__ = ["Ingester", "IngestStats", "SealCheck", "ProofsUnavailable"]

log = logging.getLogger("edge.ingest")

SealCheck = Callable[[Mapping[str, Any]], tuple[bytes | None, bool | None]]
"""A seal check: raw header -> (20-byte sealer or None, authorised or None when off).
May raise SealError for a malformed seal."""

_BACKOFF_START_S = 0.5
_ANSWER_BUDGET = 4 * 2**20
"""Bytes of JSON text one block batch's answer should stay under: the batch's memory (the
frame, its decoded objects, the code read for it) is a few times its answer, so the block
count is sized by the last answer (``ingest.batch_blocks`` is the upper bound)."""
_TRIM_EVERY = 16 * _ANSWER_BUDGET
"""Bytes of answers after which a catch-up gives freed pages back (:func:`edge.memory.trim`)."""
_MISMATCH_ALARM_AFTER = 3
"""Tries (each on a fresh connection) on one block before a node mismatch is an alarm."""


class ProofsUnavailable(ChainError):
    """``ingest.require_proofs`` is set and the node cannot serve verifiable EIP-1186
    proofs (no ``eth_getProof``, pruned state, or proofs that do not verify): ingest waits."""


@dataclass
class IngestStats:
    """Live counters of the extract stage (read by the status line and the demo).

    Block numbers are ints (-1: none yet); ``started`` is the clock's monotonic seconds.
    ``chain_alarms`` counts Clique rule violations (``last_alarm`` the newest, one line),
    ``foreign_sealers`` blocks sealed outside the signer set (Clique ``unauthorized_signer``,
    AuRa ``foreign_sealer``), ``signer_changes`` signer-set changes seen, ``signers`` the
    current Clique set's size. ``ahead_used`` / ``ahead_dropped`` count the batches read
    ahead (pipelined ingest) that were written / not (a reorg, a lagging node, a range that
    no longer followed the cursor, an error of that read, which the step raises).
    """

    chain_id: int = 0
    head: int = -1
    cursor: int = -1
    blocks: int = 0
    logs: int = 0
    contracts: int = 0
    oversize: int = 0
    reorgs: int = 0
    rolled_back: int = 0
    foreign_sealers: int = 0
    chain_alarms: int = 0
    last_alarm: str = ""
    signer_changes: int = 0
    signers: int = 0
    reconnects: int = 0
    ahead_used: int = 0
    ahead_dropped: int = 0
    lagging: int = 0
    mismatches: int = 0
    paused: bool = False
    connected: bool = False
    last_error: str = ""
    started: float = 0.0

    @property
    def lag(self) -> int:
        """Blocks between the node's head and the cursor (0 when caught up)."""
        return max(0, self.head - self.cursor) if self.head >= 0 else 0


class Ingester:
    """The extract stage for one chain. An async context manager, entered once by its owner.

    Args:
        cfg: the agent config (``node``, ``ingest`` sections are used).
        outbox: an open :class:`Outbox`.
        rpc_factory: makes the connection to ``cfg.node.ws_url`` (a new one per reconnect).
        clock: waits and timestamps (tests inject :class:`edge.clock.MockClock`).
        seal_check: optional PoA seal check (see :data:`SealCheck`); None = off. Not used
            while the chain is followed as Clique (:mod:`edge.ingest.clique`, ``poa.engine``
            ``"clique"``, or ``"auto"`` on a Clique chain), whose snapshot judges every seal.
        poll_s: seconds between head polls when no notification arrives.
        pause_s: seconds between capacity checks while the outbox is full.
        written: set after each committed write of blocks (the scoring stage waits on
            it to score new codes on arrival); None: not signalled.

    Use ``await ing.run(stop_at=None)``: it returns when the cursor reaches ``stop_at``
    (never when None; cancel it). Transient failures (node down, lagging or lying,
    malformed answers, full outbox) are logged and retried; nothing here is fatal.
    """

    def __init__(
        self,
        cfg: Config,
        outbox: Outbox,
        *,
        rpc_factory: RpcFactory,
        clock: Clock = SYSTEM_CLOCK,
        seal_check: SealCheck | None = None,
        poll_s: float = 2.0,
        pause_s: float = 5.0,
        written: asyncio.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.rpc_factory = rpc_factory
        self.clock = clock
        self.seal_check = seal_check
        self.poll_s = poll_s
        self.pause_s = pause_s
        self.stats = IngestStats(started=clock.monotonic())
        self.chain_ready = asyncio.Event()
        """Set once the node's chain id is known (``stats.chain_id``)."""
        self._changed = Changed()
        self._watch = frozenset(bytes.fromhex(a[2:]) for a in cfg.ingest.watch)
        self._verify = cfg.ingest.verify
        self._batch = 1  # slow start: doubles while answers stay small, so even the first batch is bounded
        self._proofs_said = ""
        self._mismatches: dict[int, int] = {}
        self._lagging_since: int | None = None
        self.clique = CliqueFollower(cfg, outbox)
        self.written = written
        self._untrimmed = 0
        """Bytes of block answers decoded since the last :func:`edge.memory.trim`."""
        self._max_inflight = int(cfg.ingest.max_inflight_mib * 2**20)
        self._group: asyncio.TaskGroup | None = None
        """The task group of the session now running (the fetch ahead lives in it)."""
        self._ahead: _Ahead | None = None
        self.seen = FirstSeen()
        """When each block number was first seen (the clock's monotonic s; for latency figures)."""

    @property
    def batch_blocks(self) -> int:
        """Blocks asked per JSON-RPC batch now (1 .. ``ingest.batch_blocks``): starts at 1,
        doubles after each answer under half of :data:`_ANSWER_BUDGET` bytes, shrinks to
        what fits the budget after a larger one (the memory of a catch-up batch is bounded
        in bytes, not blocks), and halves after an answer too large for the frame limit or
        too slow."""
        return self._batch

    async def __aenter__(self) -> Ingester:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._drop_ahead()

    async def wait_until(self, predicate: Callable[[IngestStats], bool]) -> IngestStats:
        """Wait (by notification, no polling) until ``predicate(stats)`` holds; the stats
        change after every step, reorg, reconnect and pause. Returns the stats."""
        await self._changed.wait_until(lambda: predicate(self.stats))
        return self.stats

    def _notify(self) -> None:
        self._changed.notify()

    # -- the loop -------------------------------------------------------------------

    async def run(self, stop_at: int | None = None) -> None:
        """Ingest until the cursor reaches ``stop_at`` (forever when None). See class doc."""
        backoff = _BACKOFF_START_S
        url = self.cfg.node.ws_url
        while True:
            healthy = False

            def progressed() -> None:
                nonlocal healthy, backoff
                healthy, backoff = True, _BACKOFF_START_S

            try:
                async with self.rpc_factory(url, timeout=self.cfg.node.request_timeout_s) as rpc:
                    self.stats.connected = True
                    self._notify()
                    reader = ChainReader(rpc, self._watch, self.cfg.ingest.traces,  # type: ignore[arg-type]
                                         self._verify)  # type: ignore[arg-type] # checked by the config
                    async with self.pipelined():  # the fetch ahead reads over this connection
                        if await self._session(reader, rpc.heads, stop_at, progressed, rpc.subscribe_heads):
                            return
            except OutboxFull as e:  # raised outside a step (e.g. while rolling back)
                self.stats.connected = False
                self._pause(e)
                await self.clock.sleep(self.pause_s)
                continue
            except (ChainError, SealError) as e:
                self.stats.connected = False
                self.stats.reconnects += 1
                self.stats.last_error = str(e)
                if isinstance(e, VerificationError):
                    await self._mismatch(e)
                if isinstance(e, (RpcTimeout, AnswerTooLarge)) and self._batch > 1:
                    # a slow node, or an answer over the frame limit: smaller batches, not a stall
                    self._batch = max(1, self._batch // 2)
                    log.info("node %s for %d-block batches: %d-block batches until it keeps up",
                             "answer too large" if isinstance(e, AnswerTooLarge) else "too slow",
                             self._batch * 2, self._batch)
                self._notify()
                delay = min(backoff, self.cfg.node.reconnect_max_s) * (0.8 + 0.4 * random.random())
                level = logging.ERROR if isinstance(e, (ChainIdMismatch, VerificationError, ProofsUnavailable)) \
                    else logging.WARNING
                log.log(level, "node %s: %s; reconnecting in %.1f s, resuming after block %d",
                        url, e, delay, self.stats.cursor)
                await self.clock.sleep(delay)
                backoff = _BACKOFF_START_S if healthy else min(backoff * 2, self.cfg.node.reconnect_max_s)

    async def _session(self, reader: ChainReader, heads: asyncio.Queue[int], stop_at: int | None,
                       progressed: Callable[[], None], subscribe: Callable[[], Any]) -> bool:
        cid = await reader.chain_id()
        want = self.cfg.node.chain_id
        if want and cid != want:
            raise ChainIdMismatch(self.cfg.node.ws_url, "node.chain_id", want, cid)
        self.stats.chain_id = cid
        self.chain_ready.set()
        if reader.verify == "strict":
            await self._probe_proofs(reader)
        try:
            await subscribe()
        except ChainError as e:
            log.info("node offers no newHeads subscription (%s): polling every %.1f s", e, self.poll_s)
        while True:
            head = await reader.head()
            self.stats.head = head
            try:
                changed = await self.step(reader, head, stop_at)
            except OutboxFull as e:
                self._pause(e)
                await self.clock.sleep(self.pause_s)
                continue
            progressed()
            if changed and self.stats.paused:
                log.info("outbox has room again: ingest resumed at block %d", self.stats.cursor)
                self.stats.paused = False
            self._notify()
            if stop_at is not None and self.stats.cursor >= stop_at:
                return True
            if not changed or self._untrimmed >= _TRIM_EVERY:
                self._trim()
            if not changed:
                try:
                    await self.clock.wait_for(heads.get(), self.poll_s)
                except TimeoutError:
                    pass
                while not heads.empty():
                    heads.get_nowait()

    def _trim(self) -> None:
        """Give the pages freed by the block batches since the last call back to the kernel
        (:func:`edge.memory.trim`) once they add up to :data:`_ANSWER_BUDGET` bytes: when
        ingest is caught up, and every :data:`_TRIM_EVERY` bytes of a long catch-up."""
        if self._untrimmed >= _ANSWER_BUDGET:
            self._untrimmed = 0
            memory.trim()

    async def _probe_proofs(self, reader: ChainReader) -> None:
        """Can this node prove code (EIP-1186)? Asked once per connection at the block
        ingest reads next; said once. A node without proofs (none, or pruned state): wait
        (``ingest.require_proofs``) or check headers and receipts only, with one warning.
        A node whose proofs do not verify is lying: a VerificationError (reconnect, alarm),
        never a reason to check less."""
        cur = await chain_data.get_cursor(self.outbox, self.stats.chain_id)
        n = cur.block_number if cur else self.cfg.ingest.start_block
        raw = await reader.rpc.call("eth_getBlockByNumber", [hex(n), False])
        if raw is None:  # the node does not have that block yet: probe at its head
            raw = await reader.rpc.call("eth_getBlockByNumber", ["latest", False])
        _, header = parse_block(raw)
        verify_header(header)
        support = await probe_proofs(reader.rpc.call, header)
        reader.by_number = support.by_number
        if support.status == "ok":
            if self._proofs_said != "ok":
                log.info("verified ingest: headers, receipts and code (EIP-1186 proofs) are checked; %s",
                         support.reason)
            self._proofs_said = "ok"
            return
        if support.status == "invalid":  # a node that lies about state is a fault, never a reason to check less
            raise VerificationError("eth_getProof", support.block, "account proof (probe)",
                                    "a proof that verifies against stateRoot", support.reason)
        if self.cfg.ingest.require_proofs:
            raise ProofsUnavailable(f"{support.reason}; ingest.require_proofs = true: waiting for a node that can")
        if self._proofs_said != support.status:
            log.warning("verified ingest: %s; runtime code is NOT proven against the state root, headers and "
                        "receipts still are (set ingest.require_proofs = true to wait instead)", support.reason)
        self._proofs_said = support.status
        reader.verify = "receipts"

    async def _mismatch(self, e: VerificationError) -> None:
        """A node answer that does not match its sealed header: never stored; after
        :data:`_MISMATCH_ALARM_AFTER` tries on the same block, one alarm row."""
        self.stats.mismatches += 1
        n = self._mismatches.get(e.block, 0) + 1
        self._mismatches = {e.block: n}  # only the block ingest is stuck on is kept
        if n == _MISMATCH_ALARM_AFTER:
            msg = (f"node serves data that does not match block {e.block}'s header ({n} tries, fresh "
                   f"connections): {e}; ingest waits on block {e.block}, nothing of it is stored")
            log.error("%s", msg)
            await chain_data.add_alarm(self.outbox, self.stats.chain_id, e.block, "node_mismatch", msg)

    def _pause(self, e: OutboxFull) -> None:
        if not self.stats.paused:
            log.warning("%s: ingest paused, nothing dropped; checking again every %.1f s", e, self.pause_s)
        self.stats.paused = True

    def _lag(self, number: int, head: int) -> bool:
        """Note that the node does not have block ``number`` yet; always False (no change)."""
        if self._lagging_since is None:
            self._lagging_since = number
            self.stats.lagging += 1
            log.warning("node is behind: it has no block %d yet (its head is %d); waiting, nothing rolled back",
                        number, head)
        return False

    async def step(self, reader: ChainReader, head: int, stop_at: int | None = None) -> bool:
        """One ingest step against ``head``; True when the outbox changed.

        Raises: OutboxFull (caller pauses), ChainError (caller reconnects).
        """
        ob, chain_id = self.outbox, self.stats.chain_id
        conf = self.cfg.ingest.confirmations
        cur = await chain_data.get_cursor(ob, chain_id)
        self.stats.cursor = cur.block_number if cur else self.cfg.ingest.start_block - 1
        nxt = cur.block_number + 1 if cur else self.cfg.ingest.start_block
        self.seen.observe(head, self.clock.monotonic(), nxt - 1)
        if nxt > head:
            await self._drop_ahead()  # nothing past the cursor (now): caught up, a lagging node or a reorg
            if cur is None:
                return False
            # is the tip we hold (or the node's head, when it is below us) still canonical?
            probe = min(cur.block_number, head)
            if probe < self.cfg.ingest.start_block:
                return self._lag(cur.block_number, head)
            canon = (await reader.canonical_hashes(probe, probe)).get(probe)
            stored = cur.block_hash if probe == cur.block_number else \
                (await chain_data.stored_hashes(ob, chain_id, probe, probe)).get(probe)
            if canon is None:
                return self._lag(probe, head)
            if canon != stored:
                await self._reorg(reader, probe)
                return True
            if probe < cur.block_number:
                return self._lag(cur.block_number, head)
            self._lagging_since = None
            if head > cur.head:
                await chain_data.set_head(ob, chain_id, head, conf)
            return False
        ob.check_capacity()
        end = min(head, nxt + self._batch - 1)
        if stop_at is not None:
            end = max(nxt, min(end, stop_at))
        prev = cur.block_hash if cur else None
        ahead = await self._take_ahead(nxt, prev)
        if ahead is not None:
            fetched, answer, end = ahead.fetched, ahead.answer_bytes, ahead.hi
        else:
            fetched = await reader.blocks(nxt, end)
            answer = reader.answer_bytes  # this read's own (nothing else ran since the await)
        if not fetched:
            return self._lag(nxt, head)
        self._lagging_since = None
        self._untrimmed += answer
        self._batch = _next_batch(end - nxt + 1, answer, self.cfg.ingest.batch_blocks)
        linked: list[FetchedBlock] = []
        for f in fetched:
            if prev is not None and f.block.parent_hash != prev:
                break
            linked.append(f)
            prev = f.block.hash
        if not linked:
            assert cur is not None  # prev is None only without a cursor
            await self._reorg(reader, cur.block_number)
            return True
        if len(linked) == len(fetched):  # else a reorg is under way: the next step reads afresh
            self._fetch_ahead(reader, linked[-1].block.number + 1, len(fetched), answer, head, stop_at)
        clique = None
        if await self.clique.decide(chain_id, linked[0].raw):
            clique = await self.clique.step(reader, chain_id, cur, nxt, [f.raw for f in linked], head - conf)
            linked = [FetchedBlock(_sealed(f.block, *verdict_seal(v)), f.raw, f.logs, f.creations)
                      for f, v in zip(linked, clique.verdicts)]
        bundles = await self._bundles(reader, linked, seal=clique is None)
        await chain_data.write_blocks(ob, chain_id, bundles, head, conf, clique)
        if self.written is not None:
            self.written.set()
        if clique is not None:
            self.clique.report(clique, self.stats)
        s = self.stats
        s.cursor = bundles[-1].block.number
        s.blocks += len(bundles)
        s.logs += sum(len(b.logs) for b in bundles)
        s.contracts += sum(len(b.contracts) for b in bundles)
        return True

    # -- the batch fetched ahead ----------------------------------------------------------

    @asynccontextmanager
    async def pipelined(self) -> AsyncIterator[None]:
        """The task group one session's fetch ahead runs in (entered by :meth:`run` per
        connection, inside it; tests that drive :meth:`step` themselves enter it too).
        Without it, :meth:`step` reads each batch itself. On exit the batch fetched ahead,
        if any, is cancelled and waited for; an exception of the block is raised as it is
        (not in an ExceptionGroup)."""
        failure: Exception | None = None
        async with asyncio.TaskGroup() as tg:
            self._group = tg
            try:
                yield
            except Exception as e:  # re-raised below: a TaskGroup would wrap it
                failure = e
            finally:
                self._group = None
                await self._drop_ahead()
        if failure is not None:
            raise failure

    def _fetch_ahead(self, reader: ChainReader, lo: int, asked: int, answer: int, head: int,
                     stop_at: int | None) -> None:
        """Start reading the batch from block ``lo`` (the one after the batch about to be
        written, ``asked`` blocks read in ``answer`` bytes), when the node has it and the
        byte budget (:attr:`_max_inflight`) leaves room for at least one block of the size
        just seen. Its block count is :attr:`batch_blocks` (already :func:`_next_batch` of
        this answer), capped by that room."""
        if self._group is None or self._ahead is not None:
            return
        last = head if stop_at is None else min(head, stop_at)
        hi = _ahead_end(lo, self._batch, asked, answer, self._max_inflight, last)
        if hi is None:
            return
        task = self._group.create_task(_read_ahead(reader, lo, hi), name=f"ingest-ahead {lo}-{hi}")
        self._ahead = _Ahead(lo, hi, task)

    async def _take_ahead(self, nxt: int, prev: bytes | None) -> _Read | None:
        """The batch fetched ahead, when it starts at ``nxt`` and its first block's parent
        is ``prev`` (the stored tip); else None (it is dropped; the caller reads the range
        itself and meets the reorg there).

        Raises: the ChainError/SealError the read ahead met (this step's own read of the
        range: handled as if the writer had met it)."""
        ahead = self._ahead
        if ahead is None:
            return None
        if ahead.lo != nxt:
            await self._drop_ahead()
            return None
        await asyncio.wait({ahead.task})  # a cancel of ours leaves the task to _drop_ahead
        self._ahead = None
        got = ahead.task.result()
        if isinstance(got, BaseException):
            self.stats.ahead_dropped += 1
            raise got  # e.g. a lying node: never dropped in silence
        if not got.fetched or (prev is not None and got.fetched[0].block.parent_hash != prev):  # read before a reorg
            self.stats.ahead_dropped += 1
            return None  # the fresh read decides what happened
        self.stats.ahead_used += 1
        return got

    async def _drop_ahead(self) -> None:
        """Cancel the batch fetched ahead (if any) and wait for its end."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self.stats.ahead_dropped += 1
            ahead.task.cancel()
            await asyncio.wait({ahead.task})

    async def _bundles(self, reader: ChainReader, fetched: list[FetchedBlock], seal: bool = True) -> list[BlockBundle]:
        sealed = [(await self._seal(f.block, f.raw) if seal else f.block, f) for f in fetched]
        codes = await reader.codes([(f, c) for _, f in sealed for c in f.creations])
        out: list[BlockBundle] = []
        for block, f in sealed:
            contracts = tuple(
                ContractRecord(block.number, c.tx_index, c.create_index, c.tx_hash, c.address, c.creator,
                               codes[(block.number, c.address)], keccak(codes[(block.number, c.address)]))
                for c in f.creations
            )
            for c in contracts:
                if c.oversize:
                    self.stats.oversize += 1
                    log.warning("contract 0x%s (block %d) has a %d-byte runtime, above the EIP-170 limit of "
                                "%d: recorded, marked oversize, not scored", c.address.hex(), c.block_number,
                                len(c.code), EIP170_MAX_CODE_SIZE)
            out.append(BlockBundle(block, f.logs, contracts))
        return out

    async def _seal(self, block: BlockRecord, raw: Mapping[str, Any]) -> BlockRecord:
        if self.seal_check is None:
            return block
        sealer, ok = self.seal_check(raw)
        if ok is False:
            self.stats.foreign_sealers += 1
            who = "0x" + sealer.hex() if sealer else "unknown"
            log.error("block %d sealed by %s, which is NOT in poa.authorities", block.number, who)
            await chain_data.add_alarm(self.outbox, self.stats.chain_id, block.number, "foreign_sealer",
                                       f"block {block.number} sealed by {who}")
        return _sealed(block, sealer, ok)

    # -- reorgs -----------------------------------------------------------------------

    async def _reorg(self, reader: ChainReader, tip: int) -> None:
        """Find the highest stored block that is still canonical and roll back above it.

        Only a canonical hash that *differs* from the stored one counts as replaced; a
        block the node does not know (None) means it lags, and nothing is rolled back.
        """
        await self._drop_ahead()
        ob, chain_id = self.outbox, self.stats.chain_id
        first = self.cfg.ingest.start_block
        window = 16
        while True:
            lo = max(first, tip - window + 1)
            stored = await chain_data.stored_hashes(ob, chain_id, lo, tip)
            canon = await reader.canonical_hashes(lo, tip)
            if any(canon.get(n) is None for n in stored):
                self._lag(min(n for n in stored if canon.get(n) is None), -1)
                return
            common = [n for n in stored if canon.get(n) == stored[n]]
            if common:
                fork = max(common)
                break
            if lo <= first:
                fork = first - 1
                break
            window *= 4
        removed, confirmed_removed = await chain_data.rollback_to(ob, chain_id, fork)
        self.stats.reorgs += 1
        self.stats.rolled_back += removed
        self.stats.cursor = fork
        log.warning("reorg: %d block(s) above %d replaced on the node; re-ingesting from %d",
                    removed, fork, fork + 1)
        if confirmed_removed:
            msg = (f"reorg removed {confirmed_removed} block(s) that were confirmed "
                   f"(ingest.confirmations={self.cfg.ingest.confirmations}) above block {fork}")
            log.error("%s", msg)
            await chain_data.add_alarm(ob, chain_id, fork + 1, "deep_reorg", msg)


@dataclass(frozen=True, slots=True)
class _Read:
    """Blocks ``lo..hi`` as read ahead (``fetched`` may stop early: a lagging node, a
    block that changed meanwhile) and the largest answer's size in bytes."""

    hi: int
    fetched: list[FetchedBlock]
    answer_bytes: int


@dataclass(frozen=True, slots=True)
class _Ahead:
    """The read ahead in flight: blocks ``lo..hi`` and its task."""

    lo: int
    hi: int
    task: asyncio.Task[_Read | ChainError | SealError]


async def _read_ahead(reader: ChainReader, lo: int, hi: int) -> _Read | ChainError | SealError:
    """Blocks ``lo..hi`` (:meth:`ChainReader.blocks`: receipts, traces, parsed and checked
    against their headers), or the ChainError/SealError met: returned, not raised (a task
    failing would cancel the session's group); the writer raises it when it takes the
    range (:meth:`Ingester._take_ahead`)."""
    try:
        fetched = await reader.blocks(lo, hi)
    except (ChainError, SealError) as e:
        return e
    return _Read(hi, fetched, reader.answer_bytes)


def _ahead_end(lo: int, batch: int, asked: int, answer_bytes: int, budget: int, last: int) -> int | None:
    """The last block of the batch to read ahead from block ``lo``, or None for none: at
    most ``batch`` blocks (the next byte-sized batch, :func:`_next_batch`), none past
    ``last`` (the node's head, or ``stop_at``), and only as many as fit the in-flight
    ``budget`` (bytes) beside the batch being written (``asked`` blocks answered in
    ``answer_bytes``; 0: unknown, taken as small) at its bytes per block. ``budget`` 0:
    no read ahead."""
    if budget <= 0 or last < lo:
        return None
    per_block = max(1, answer_bytes // max(1, asked))
    room = (budget - answer_bytes) // per_block
    if room < 1:
        return None
    return min(last, lo + batch - 1, lo + room - 1)


def _next_batch(asked: int, answer_bytes: int, most: int) -> int:
    """Blocks to ask next after ``asked`` blocks answered in ``answer_bytes`` bytes (0: the
    transport does not tell, taken as small): double while the answer is under half of
    :data:`_ANSWER_BUDGET`, else what fits the budget at the same bytes per block; always
    within 1..``most``."""
    if 2 * answer_bytes <= _ANSWER_BUDGET:
        return min(most, 2 * asked)
    return max(1, min(most, asked * _ANSWER_BUDGET // answer_bytes))


def _sealed(block: BlockRecord, sealer: bytes | None, ok: bool | None) -> BlockRecord:
    return BlockRecord(block.number, block.hash, block.parent_hash, block.timestamp, block.miner,
                       block.tx_count, sealer, ok)
