"""Fleet batching: K checkpoints anchored as one unit, attested and anchored by the fleet.

With ``forward.batch = K > 1`` in fleet mode the unit of consensus is the batch, not the
checkpoint. Per batch, driven only by outbox state (every stage can crash and resume):

1. **cut**: the next checkpoints form a batch by :func:`edge.forward.batching.fleet_batch`
   (K members, or fewer once the chain's own clock, the block timestamps, has moved
   ``forward.batch_max_wait_s`` on): every honest device cuts the same batch from the same
   chain. The unit is :func:`edge.contracts.anchor.batch_checkpoint` of the members (root =
   Merkle root over the member ids). The device signs the unit as EIP-712 typed data
   (the ``Checkpoint`` struct of the unit, which commits to the batch id and root) and
   posts it with ``Attestations.attest``; the unit is an ``anchors`` row in state
   ``attesting``, its members ``batched``.
2. ``attesting`` -> ``attested`` once the attestation is confirmed.
3. **duty**: once M registered devices attested the unit, devices ordered by
   ``keccak256(unitId || address)`` take the duty in turn (rank i at t_q + i x takeover,
   t_q the timestamp of the block with the M-th attestation). The holder has the forward
   stage upload each member's metadata (or reuses metadata another device located), then
   the batch manifest, then anchors the unit with the collected unit signatures
   (state ``members`` -> ``uploading`` -> the forward stage's states).
4. Whoever anchors, a unit whose id is anchored on mainnet with its root is ``anchored``
   with all its members.

Safety and liveness as for single checkpoints, per batch: at most one anchor per unit id
(first valid anchor wins), only with M valid signatures over the unit; anchored while M
devices live. Each member stays verifiable by ``edge verify`` (the batch manifest lists
the members' manifests) and on chain by ``Anchor.verifyMember``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from edge.contracts import anchor as anchor_abi
from edge.contracts import attestations as attest_abi
from edge.forward.batching import fleet_batch
from edge.evidence.eip712 import CheckpointMessage, sign_checkpoint
from edge.store import checkpoints as cps

if TYPE_CHECKING:
    from edge.fleet.stage import FleetStage

__all__ = ["FleetBatches"]

log = logging.getLogger("edge.fleet")


class FleetBatches:
    """The batch side of one device's :class:`~edge.fleet.stage.FleetStage` (K > 1)."""

    def __init__(self, fleet: FleetStage) -> None:
        self.fleet = fleet
        self.k = fleet.cfg.forward.batch
        self.max_wait_s = fleet.cfg.forward.batch_max_wait_s
        fleet.forwarder.forms_batches = False  # the fleet cuts the batches, not the forward stage

    async def step(self) -> None:
        """One pass: cut new batches, confirm attestations, take duties, hand full uploads
        to the forward stage, notice anchors made by others."""
        await self._cut()
        for aid, state in await self._units(("attesting", "attested", "members")):
            unit = await self._unit(aid)
            if await self._anchored_root(aid) == unit.root:
                await self._anchored_elsewhere(aid)
            elif state == "attesting":
                await self._confirm(aid)
            elif state == "attested":
                await self._consider(unit)
            else:
                await self._members_uploaded(unit)

    # -- outbox ------------------------------------------------------------------------

    async def _units(self, states: tuple[str, ...]) -> list[tuple[bytes, str]]:
        marks = ",".join("?" * len(states))
        rows = await self.fleet.outbox.fetchall(
            f"SELECT id, state FROM anchors WHERE chain_id=? AND state IN ({marks}) ORDER BY from_block",
            (self.fleet.chain_id, *states))
        return [(bytes(i), str(s)) for i, s in rows]

    async def _unit(self, aid: bytes) -> CheckpointMessage:
        unit, _ = await self.fleet.forwarder._unit(aid)
        return unit

    async def _members(self, aid: bytes) -> list[bytes]:
        row = await self.fleet.outbox.fetchone("SELECT members FROM anchors WHERE id=?", (aid,))
        m = bytes(row[0]) if row else b""
        return [m[i:i + 32] for i in range(0, len(m), 32)]

    async def _anchored_root(self, aid: bytes) -> bytes:
        return await self.fleet._anchored_root(aid)

    # -- 1. cut ------------------------------------------------------------------------

    async def _cut(self) -> None:
        f = self.fleet
        ob = f.outbox
        while True:
            free = await cps.checkpoints_in_state(ob, "unattested", f.chain_id)
            if not free:
                return
            ts = []
            for c in free[:self.k + 1]:
                row = await ob.fetchone("SELECT timestamp FROM blocks WHERE chain_id=? AND number=?",
                                        (f.chain_id, c.to_block))
                if row is None:
                    return  # (cannot happen: a checkpoint covers stored blocks only)
                ts.append(int(row[0]))
            n = fleet_batch(ts, self.k, self.max_wait_s)
            if n is None:
                return
            members = free[:n]
            unit = anchor_abi.batch_checkpoint([f._message(c) for c in members])
            sig = sign_checkpoint(f.key.private_key, f.forwarder.domain, unit)
            async with ob.transaction(durable=True) as tx:
                tx_id = await f.sender.enqueue(tx, to=f.address, data=attest_abi.encode_attest(unit, sig),
                                               purpose="attest", ref=unit.id)
                await tx.execute(
                    "INSERT INTO anchors (id, chain_id, from_block, to_block, last_hash, root, locator, members,"
                    " state, tx_id, created_at) VALUES (?,?,?,?,?,?,?,?,'attesting',NULL,?)",
                    (unit.id, f.chain_id, unit.from_block, unit.to_block, unit.last_block_hash, unit.root,
                     os.urandom(32), b"".join(c.id for c in members), time.time()))
                await tx.execute("INSERT OR REPLACE INTO fleet_duty (id, attest_tx) VALUES (?,?)", (unit.id, tx_id))
                for c in members:
                    await cps.set_checkpoint_state(tx, c.id, "batched", anchor_id=unit.id)
                    await tx.execute("INSERT OR IGNORE INTO fleet_duty (id) VALUES (?)", (c.id,))
            log.info("batch 0x%s: %d checkpoint(s), blocks %d..%d, attested", unit.id.hex()[:16], n,
                     unit.from_block, unit.to_block)

    # -- 2. attestation confirmed ------------------------------------------------------

    async def _confirm(self, aid: bytes) -> None:
        f = self.fleet
        row = await f.outbox.fetchone("SELECT attest_tx FROM fleet_duty WHERE id=?", (aid,))
        if row is None or row[0] is None:
            return
        rec = await f.sender.get(int(row[0]))
        if rec.state == "confirmed":
            async with f.outbox.transaction() as tx:
                await tx.execute("UPDATE anchors SET state='attested' WHERE id=? AND state='attesting'", (aid,))
            f.stats.attested += 1
        elif rec.state == "failed":
            log.error("attestation of batch 0x%s failed (%s): re-signing", aid.hex()[:16], rec.error)
            unit = await self._unit(aid)
            sig = sign_checkpoint(f.key.private_key, f.forwarder.domain, unit)
            async with f.outbox.transaction(durable=True) as tx:
                tx_id = await f.sender.enqueue(tx, to=f.address, data=attest_abi.encode_attest(unit, sig),
                                               purpose="attest", ref=aid)
                await tx.execute("UPDATE fleet_duty SET attest_tx=? WHERE id=?", (tx_id, aid))

    # -- 3. duty -----------------------------------------------------------------------

    async def _consider(self, unit: CheckpointMessage) -> None:
        f = self.fleet
        row = cps.CheckpointRow(unit.id, f.chain_id, unit.from_block, unit.to_block, unit.last_block_hash,
                                unit.root, 0, "attested", None, None)
        await f._check_divergence(row)
        when = await f._duty_time(unit.id)
        if when is None or time.time() < when:
            return
        members = await self._members(unit.id)
        reused = 0
        async with f.outbox.transaction(durable=True) as tx:
            await tx.execute("UPDATE fleet_duty SET took_at=? WHERE id=?", (time.time(), unit.id))
            await tx.execute("UPDATE anchors SET state='members' WHERE id=?", (unit.id,))
        for mid in members:
            located = await f._reusable_locator(mid)
            async with f.outbox.transaction(durable=True) as tx:
                if located is not None:
                    await cps.set_checkpoint_state(tx, mid, "uploaded", locator=located)
                    await tx.execute("UPDATE fleet_duty SET located=1 WHERE id=?", (mid,))
                    reused += 1
                else:
                    await cps.set_checkpoint_state(tx, mid, "sealed")
        f.stats.duties += 1
        f.stats.reused_metadata += reused
        log.info("duty for batch 0x%s (blocks %d..%d, %d checkpoints, %d reused)", unit.id.hex()[:16],
                 unit.from_block, unit.to_block, len(members), reused)

    async def _members_uploaded(self, unit: CheckpointMessage) -> None:
        f = self.fleet
        members = await self._members(unit.id)
        rows = [await cps.get_checkpoint(f.outbox, mid) for mid in members]
        if not all(r is not None and r.state == "uploaded" for r in rows):
            return
        _, locator = await f.forwarder._unit(unit.id)
        await f.forwarder._read_budgets()
        async with f.outbox.transaction(durable=True) as tx:
            for mid in members:
                await cps.set_checkpoint_state(tx, mid, "anchoring", anchor_id=unit.id)
            await tx.execute("UPDATE anchors SET state='uploading' WHERE id=?", (unit.id,))
            await f.forwarder._queue_batch_manifest(tx, unit.id, b"".join(members), locator)

    # -- 4. anchored by another device -------------------------------------------------

    async def _anchored_elsewhere(self, aid: bytes) -> None:
        f = self.fleet
        members = await self._members(aid)
        async with f.outbox.transaction() as tx:
            await tx.execute("UPDATE anchors SET state='anchored' WHERE id=?", (aid,))
            for mid in members:
                await cps.set_checkpoint_state(tx, mid, "anchored")
        f.stats.anchored_by_others += 1
