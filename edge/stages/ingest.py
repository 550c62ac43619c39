"""The extract stage: stream a PoA chain into the outbox, resumable and reorg-safe.

Like ethereum-etl's streamer, the stage knows only block numbers and a sync point (the
outbox cursor); the adapters do the I/O (:class:`edge.chain.rpc.RpcClient`) and the
parsing (:mod:`edge.chain.extract`). One step:

1. read the cursor ``c`` (last block fully written) and the node's head ``h``;
2. fetch blocks ``c+1 .. min(h, c+batch)`` with their receipts (and traces) in one
   JSON-RPC batch, then their new contracts' runtime code (``eth_getCode`` at the block
   hash, EIP-1898) in a second;
3. keep the prefix that links to the cursor hash by ``parentHash``; if even the first
   block does not link, a reorg happened: find the fork point by comparing stored and
   canonical hashes and roll back above it (:func:`edge.store.chain_data.rollback_to`);
4. write the blocks, their records and the new cursor in ONE outbox transaction.

So a kill at any instant leaves the outbox at a block boundary, and a restart continues
from the cursor: no record is lost or written twice. ``newHeads`` notifications only
wake the loop; a poll every ``poll_s`` seconds covers a silent subscription. On a lost
connection the stage reconnects with capped exponential backoff and backfills from the
cursor. When the outbox is full it pauses (backpressure) with one log line per episode.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak

from edge.chain import codec
from edge.chain.extract import (
    Creation,
    creations_from_call_traces,
    creations_from_parity_traces,
    parse_block,
    parse_receipts,
)
from edge.chain.rpc import Call, RpcClient
from edge.config import Config
from edge.errors import (
    ConfigError,
    MethodNotSupported,
    NodeUnavailable,
    OutboxFull,
    RpcError,
    RpcProtocolError,
    SealError,
)
from edge.records import EIP170_MAX_CODE_SIZE, BlockBundle, BlockRecord, ContractRecord, LogRecord
from edge.store import chain_data
from edge.store.db import Outbox

__all__ = ["Ingester", "IngestStats", "SealCheck"]

log = logging.getLogger("edge.ingest")

SealCheck = Callable[[Mapping[str, Any]], tuple[bytes | None, bool | None]]
"""A seal check: raw header -> (20-byte sealer or None, authorised or None when off).
May raise SealError for a malformed seal."""


@dataclass
class IngestStats:
    """Live counters of the extract stage (read by the status line and the demo)."""

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
    reconnects: int = 0
    paused: bool = False
    connected: bool = False
    last_error: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def lag(self) -> int:
        """Blocks between the node's head and the cursor (0 when caught up)."""
        return max(0, self.head - self.cursor) if self.head >= 0 else 0


class Ingester:
    """The extract stage for one chain. An async context manager.

    Args:
        cfg: the agent config (``node``, ``ingest`` sections are used).
        outbox: an open :class:`Outbox`.
        seal_check: optional PoA seal check (see :data:`SealCheck`); None = off.
        poll_s: seconds between head polls when no notification arrives.

    Use ``await ing.run(stop_at=None)``: it returns when the cursor reaches ``stop_at``
    (never when None; cancel it), and raises only for errors an operator must fix
    (:class:`ConfigError`: the node reports another chain id than configured).
    Transient failures (node down, malformed answers, full outbox) are logged and retried.
    """

    def __init__(
        self,
        cfg: Config,
        outbox: Outbox,
        *,
        seal_check: SealCheck | None = None,
        poll_s: float = 2.0,
        pause_s: float = 5.0,
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.seal_check = seal_check
        self.poll_s = poll_s
        self.pause_s = pause_s
        self.stats = IngestStats()
        self.chain_ready = asyncio.Event()
        """Set once the node's chain id is known (``stats.chain_id``)."""
        self._watch = frozenset(bytes.fromhex(a[2:]) for a in cfg.ingest.watch)
        self._traces = cfg.ingest.traces
        self._receipts_by_block = True

    async def __aenter__(self) -> Ingester:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    # -- the loop -------------------------------------------------------------------

    async def run(self, stop_at: int | None = None) -> None:
        """Ingest until the cursor reaches ``stop_at`` (forever when None). See class doc."""
        backoff = 0.5
        url = self.cfg.node.ws_url
        while True:
            try:
                async with RpcClient(url, timeout=self.cfg.node.request_timeout_s) as rpc:
                    self.stats.connected = True
                    if await self._session(rpc, stop_at, on_progress=lambda: None):
                        return
            except OutboxFull as e:  # raised outside a step (e.g. while rolling back)
                self.stats.connected = False
                self._pause(e)
                await asyncio.sleep(self.pause_s)
                continue
            except (NodeUnavailable, RpcProtocolError, RpcError, SealError) as e:
                self.stats.connected = False
                self.stats.reconnects += 1
                self.stats.last_error = str(e)
                delay = min(backoff, self.cfg.node.reconnect_max_s) * (0.8 + 0.4 * random.random())
                log.warning("node %s: %s; reconnecting in %.1f s, resuming after block %d",
                            url, e, delay, self.stats.cursor)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self.cfg.node.reconnect_max_s)
                continue
            backoff = 0.5

    async def _session(self, rpc: RpcClient, stop_at: int | None, on_progress: Callable[[], None]) -> bool:
        cid = codec.quantity(await rpc.call("eth_chainId"), "eth_chainId", "result")
        want = self.cfg.node.chain_id
        if want and cid != want:
            raise ConfigError("node.chain_id", f"is {want} but the node at {self.cfg.node.ws_url} reports {cid}")
        self.stats.chain_id = cid
        self.chain_ready.set()
        try:
            await rpc.subscribe_heads()
        except MethodNotSupported:
            log.info("node has no eth_subscribe: polling every %.1f s", self.poll_s)
        while True:
            head = codec.quantity(await rpc.call("eth_blockNumber"), "eth_blockNumber", "result")
            self.stats.head = head
            try:
                progressed = await self.step(rpc, head, stop_at)
            except OutboxFull as e:
                self._pause(e)
                await asyncio.sleep(self.pause_s)
                continue
            if progressed and self.stats.paused:
                log.info("outbox has room again: ingest resumed at block %d", self.stats.cursor)
                self.stats.paused = False
            if stop_at is not None and self.stats.cursor >= stop_at:
                return True
            if not progressed:
                try:
                    await asyncio.wait_for(rpc.heads.get(), self.poll_s)
                except TimeoutError:
                    pass
                while not rpc.heads.empty():
                    rpc.heads.get_nowait()

    def _pause(self, e: OutboxFull) -> None:
        if not self.stats.paused:
            log.warning("%s: ingest paused, nothing dropped; checking again every %.1f s", e, self.pause_s)
        self.stats.paused = True

    async def step(self, rpc: RpcClient, head: int, stop_at: int | None = None) -> bool:
        """One ingest step against ``head``; True when the outbox changed.

        Raises: OutboxFull (caller pauses), ChainError (caller reconnects).
        """
        ob, chain_id = self.outbox, self.stats.chain_id
        conf = self.cfg.ingest.confirmations
        cur = await chain_data.get_cursor(ob, chain_id)
        self.stats.cursor = cur.block_number if cur else self.cfg.ingest.start_block - 1
        nxt = cur.block_number + 1 if cur else self.cfg.ingest.start_block
        if nxt > head:
            if cur is not None:
                canon = await self._canonical_hashes(rpc, cur.block_number, cur.block_number)
                if canon.get(cur.block_number) != cur.block_hash:
                    await self._reorg(rpc, cur.block_number)
                    return True
                if head > cur.head:
                    await chain_data.set_head(ob, chain_id, head, conf)
            return False
        ob.check_capacity()
        end = min(head, nxt + self.cfg.ingest.batch_blocks - 1)
        if stop_at is not None:
            end = max(nxt, min(end, stop_at))
        bundles = await self._fetch(rpc, nxt, end)
        prev = cur.block_hash if cur else None
        linked: list[BlockBundle] = []
        for b in bundles:
            if prev is not None and b.block.parent_hash != prev:
                break
            linked.append(b)
            prev = b.block.hash
        if not linked:
            if cur is None:
                return False
            await self._reorg(rpc, cur.block_number)
            return True
        await chain_data.write_blocks(ob, chain_id, linked, head, conf)
        s = self.stats
        s.cursor = linked[-1].block.number
        s.blocks += len(linked)
        s.logs += sum(len(b.logs) for b in linked)
        s.contracts += sum(len(b.contracts) for b in linked)
        return True

    # -- fetching ---------------------------------------------------------------------

    async def _fetch(self, rpc: RpcClient, lo: int, hi: int) -> list[BlockBundle]:
        calls: list[Call] = []
        per_block = 1 + int(self._receipts_by_block) + int(self._traces != "off")
        for n in range(lo, hi + 1):
            calls.append(("eth_getBlockByNumber", [hex(n), False]))
            if self._receipts_by_block:
                calls.append(("eth_getBlockReceipts", [hex(n)]))
            if self._traces in ("auto", "trace_block"):
                calls.append(("trace_block", [hex(n)]))
            elif self._traces == "debug_trace":
                calls.append(("debug_traceBlockByNumber", [hex(n), {"tracer": "callTracer"}]))
        try:
            results = await rpc.batch(calls)
        except MethodNotSupported as e:
            if e.method == "eth_getBlockReceipts" and self._receipts_by_block:
                log.info("node has no eth_getBlockReceipts: reading receipts per transaction")
                self._receipts_by_block = False
            elif e.method == "trace_block" and self._traces == "auto":
                log.info("node has no trace_block: trying debug_traceBlockByNumber (callTracer)")
                self._traces = "debug_trace"
            elif e.method == "debug_traceBlockByNumber" and self._traces in ("auto", "debug_trace"):
                log.warning("node offers no traces: only top-level deployments (receipts) are seen")
                self._traces = "off"
            else:
                raise
            return await self._fetch(rpc, lo, hi)
        if self._traces == "auto":
            self._traces = "trace_block"
        pending: list[tuple[BlockRecord, list[LogRecord], list[Creation]]] = []
        for i in range(hi - lo + 1):
            chunk = results[i * per_block:(i + 1) * per_block]
            if chunk[0] is None:  # past the head (a reorg to a shorter chain raced us)
                break
            block, raw = parse_block(chunk[0])
            if block.number != lo + i:
                raise RpcProtocolError("eth_getBlockByNumber", f"asked for {lo + i}, got {block.number}")
            tx_hashes = [codec.hash32(t, "eth_getBlockByNumber", f"result.transactions[{k}]")
                         for k, t in enumerate(raw["transactions"])]
            receipts = chunk[1] if self._receipts_by_block else await self._receipts_per_tx(rpc, tx_hashes)
            try:
                logs, creations = parse_receipts(receipts, block, self._watch)
                if self._traces == "trace_block":
                    creations = creations_from_parity_traces(chunk[-1], block, tx_hashes)
                elif self._traces == "debug_trace":
                    creations = creations_from_call_traces(chunk[-1], tx_hashes)
            except RpcProtocolError as e:
                if "reorg race" in str(e):
                    log.info("block %d changed while it was read: %s", block.number, e)
                    break
                raise
            block = await self._seal(block, raw)
            pending.append((block, logs, creations))
        codes = await self._codes(rpc, [(b, c) for b, _, cs in pending for c in cs])
        out: list[BlockBundle] = []
        for block, logs, creations in pending:
            contracts = tuple(
                ContractRecord(block.number, c.tx_index, c.create_index, c.tx_hash, c.address, c.creator,
                               codes[(block.number, c.address)], keccak(codes[(block.number, c.address)]))
                for c in creations
            )
            for c in contracts:
                if c.oversize:
                    self.stats.oversize += 1
                    log.warning("contract 0x%s (block %d) has a %d-byte runtime, above the EIP-170 limit of "
                                "%d: recorded, marked oversize, not scored", c.address.hex(), c.block_number,
                                len(c.code), EIP170_MAX_CODE_SIZE)
            out.append(BlockBundle(block, tuple(logs), contracts))
        return out

    async def _receipts_per_tx(self, rpc: RpcClient, tx_hashes: Sequence[bytes]) -> list[Any]:
        return await rpc.batch([("eth_getTransactionReceipt", ["0x" + h.hex()]) for h in tx_hashes])

    async def _codes(self, rpc: RpcClient, items: Sequence[tuple[BlockRecord, Creation]]) -> dict[tuple[int, bytes], bytes]:
        if not items:
            return {}
        res = await rpc.batch(
            [("eth_getCode", ["0x" + c.address.hex(), {"blockHash": "0x" + b.hash.hex()}]) for b, c in items]
        )
        return {
            (b.number, c.address): codec.data(r, "eth_getCode", f"0x{c.address.hex()}@{b.number}")
            for (b, c), r in zip(items, res)
        }

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
        return BlockRecord(block.number, block.hash, block.parent_hash, block.timestamp, block.miner,
                           block.tx_count, sealer, ok)

    # -- reorgs -----------------------------------------------------------------------

    async def _canonical_hashes(self, rpc: RpcClient, lo: int, hi: int) -> dict[int, bytes]:
        res = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(lo, hi + 1)])
        out: dict[int, bytes] = {}
        for n, r in zip(range(lo, hi + 1), res):
            if r is not None:
                out[n] = codec.hash32(codec.field(codec.as_dict(r, "eth_getBlockByNumber", "result"), "hash",
                                                  "eth_getBlockByNumber", "result"), "eth_getBlockByNumber",
                                      "result.hash")
        return out

    async def _reorg(self, rpc: RpcClient, tip: int) -> None:
        """Find the highest stored block that is still canonical and roll back above it."""
        ob, chain_id = self.outbox, self.stats.chain_id
        first = self.cfg.ingest.start_block
        window = 16
        while True:
            lo = max(first, tip - window + 1)
            stored = await chain_data.stored_hashes(ob, chain_id, lo, tip)
            canon = await self._canonical_hashes(rpc, lo, tip)
            common = [n for n in stored if canon.get(n) == stored[n]]
            if common:
                fork = max(common)
                break
            if lo <= first:
                fork = first - 1
                break
            window *= 4
        removed, final_removed = await chain_data.rollback_to(ob, chain_id, fork)
        self.stats.reorgs += 1
        self.stats.rolled_back += removed
        self.stats.cursor = fork
        log.warning("reorg: %d block(s) above %d replaced on the node; re-ingesting from %d",
                    removed, fork, fork + 1)
        if final_removed:
            msg = (f"reorg removed {final_removed} block(s) that were final "
                   f"(ingest.confirmations={self.cfg.ingest.confirmations}) above block {fork}")
            log.error("%s", msg)
            await chain_data.add_alarm(ob, chain_id, fork + 1, "deep_reorg", msg)
