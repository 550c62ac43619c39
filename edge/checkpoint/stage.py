"""The checkpoint stage: cut the ingested chain into checkpoints (sync points).

A checkpoint covers the block range after the previous one up to an aligned boundary:
``[prev_to + 1, (k+1)*B - 1]`` for the first multiple ``(k+1)*B`` above ``prev_to``, so
ranges are ``[k*B, (k+1)*B)`` from the first aligned one on. It is cut once its last
block is confirmed (``ingest.confirmations``) and fully ingested, or at once up to the
newest confirmed block when an operator asks (``edge sync-now``, the GPIO button).

Its root is the Merkle root (OpenZeppelin-compatible, :mod:`edge.evidence.merkle`) over the
leaves of all records of the range in key order (:mod:`edge.evidence.leaves`), and its id is
``keccak256(abi.encode(uint256 chainId, uint64 from, uint64 to, bytes32 lastBlockHash,
bytes32 root))`` (:func:`edge.evidence.eip712.checkpoint_id`). The row is inserted in one
transaction with the check that the range is confirmed, so every device computes the same
checkpoints from the same chain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from edge.clock import SYSTEM_CLOCK, Clock
from edge.evidence.eip712 import checkpoint_id
from edge.evidence.merkle import MerkleTree
from edge.store import checkpoints as store
from edge.store.db import Outbox

__all__ = ["CheckpointStage", "CheckpointStats", "request_sync"]

log = logging.getLogger("edge.checkpoint")


@dataclass
class CheckpointStats:
    """Counters: checkpoints cut, records covered, on-demand requests served."""

    checkpoints: int = 0
    records: int = 0
    on_demand: int = 0
    last_to: int = -1


async def request_sync(ob: Outbox) -> int:
    """Ask the running agent for an on-demand checkpoint; returns the request id."""
    return await store.add_sync_request(ob, SYSTEM_CLOCK.time())


class CheckpointStage:
    """Cuts checkpoints of one chain from the outbox. An async context manager.

    Args:
        outbox: the open outbox. chain_id: the local chain. every_blocks: B, the range
        length. start_block: first block of the first checkpoint. poll_s: seconds between
        checks. initial_state: state of a new checkpoint (``sealed`` for a lone device,
        ``unattested`` in a fleet).
    """

    def __init__(self, outbox: Outbox, chain_id: int, *, every_blocks: int, start_block: int = 0,
                 poll_s: float = 1.0, initial_state: str = "sealed", clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.outbox = outbox
        self.chain_id = chain_id
        self.every = every_blocks
        self.start_block = start_block
        self.poll_s = poll_s
        self.initial_state = initial_state
        self.stats = CheckpointStats()
        self.wakeup = asyncio.Event()

    async def __aenter__(self) -> CheckpointStage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def run(self) -> None:
        """Cut checkpoints forever (until cancelled)."""
        while True:
            while await self.step():
                pass
            try:
                await self.clock.wait_for(self.wakeup.wait(), self.poll_s)
            except TimeoutError:
                pass
            self.wakeup.clear()

    async def step(self) -> bool:
        """Cut at most one checkpoint; True if one was cut."""
        ob, chain = self.outbox, self.chain_id
        async with ob.transaction() as tx:
            tip = await store.confirmed_tip(tx, chain)
            if tip is None:
                return False
            prev = await store.last_checkpoint_end(tx, chain)
            lo = self.start_block if prev is None else prev + 1
            if lo > tip:
                await store.close_sync_requests(tx, self.clock.time())
                return False
            on_demand = await store.sync_requested(tx)
            hi = (lo // self.every + 1) * self.every - 1
            if hi > tip:
                if not on_demand:
                    return False
                hi = tip
            leaves = await store.range_leaves(tx, chain, lo, hi)
            last_block_hash = await store.block_hash_at(tx, chain, hi)
            assert last_block_hash is not None  # confirmed_tip guarantees the range is stored
            root = MerkleTree([lf.leaf for lf in leaves]).root
            cp_id = checkpoint_id(chain, lo, hi, last_block_hash, root)
            await store.insert_checkpoint(tx, store.CheckpointRow(
                cp_id, chain, lo, hi, last_block_hash, root, len(leaves), self.initial_state, None, None))
            if on_demand and hi == tip:
                await store.close_sync_requests(tx, self.clock.time())
        s = self.stats
        s.checkpoints += 1
        s.records += len(leaves)
        s.on_demand += int(on_demand and hi == tip)
        s.last_to = hi
        log.info("checkpoint %s: blocks %d..%d, %d records, root %s%s", "0x" + cp_id.hex()[:16], lo, hi,
                 len(leaves), "0x" + root.hex()[:16], " (on demand)" if on_demand else "")
        return True
