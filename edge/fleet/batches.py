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
from typing import TYPE_CHECKING

from edge.contracts import anchor as anchor_abi
from edge.contracts import attestations as attest_abi
from edge.forward.batching import fleet_batch
from edge.evidence.eip712 import CheckpointMessage, sign_checkpoint
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store import fleet as fleet_store
from edge.store import forwarding as fwd_store

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
        return await fwd_store.anchors_in_states(self.fleet.outbox, self.fleet.chain_id, states)

    async def _unit(self, aid: bytes) -> CheckpointMessage:
        unit, _ = await self.fleet.forwarder._unit(aid)
        return unit

    async def _members(self, aid: bytes) -> list[bytes]:
        a = await fwd_store.get_anchor(self.fleet.outbox, aid)
        return list(a.members) if a is not None else []

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
                stamp = await chain_data.block_timestamp(ob, f.chain_id, c.to_block)
                if stamp is None:
                    return  # (cannot happen: a checkpoint covers stored blocks only)
                ts.append(stamp)
            n = fleet_batch(ts, self.k, self.max_wait_s)
            if n is None:
                return
            members = free[:n]
            unit = anchor_abi.batch_checkpoint([f._message(c) for c in members])
            sig = sign_checkpoint(f.key.private_key, f.forwarder.domain, unit)
            async with ob.transaction(durable=True) as tx:
                tx_id = await f.sender.enqueue(tx, to=f.address, data=attest_abi.encode_attest(unit, sig),
                                               purpose="attest", ref=unit.id)
                await fwd_store.insert_anchor(tx, fwd_store.AnchorRow(
                    unit.id, f.chain_id, unit.from_block, unit.to_block, unit.last_block_hash, unit.root,
                    os.urandom(32), tuple(c.id for c in members), "attesting", None), f.clock.time())
                await fleet_store.set_attest_tx(tx, unit.id, tx_id)
                for c in members:
                    await cps.set_checkpoint_state(tx, c.id, "batched", anchor_id=unit.id)
                    await fleet_store.add_duty(tx, c.id)
            log.info("batch 0x%s: %d checkpoint(s), blocks %d..%d, attested", unit.id.hex()[:16], n,
                     unit.from_block, unit.to_block)

    # -- 2. attestation confirmed ------------------------------------------------------

    async def _confirm(self, aid: bytes) -> None:
        f = self.fleet
        attest_tx = await fleet_store.attest_tx_of(f.outbox, aid)
        if attest_tx is None:
            return
        rec = await f.sender.get(attest_tx)
        if rec.state == "confirmed":
            async with f.outbox.transaction() as tx:
                await fwd_store.set_anchor_state(tx, aid, "attested", only_from="attesting")
            f.stats.attested += 1
        elif rec.state == "failed":
            log.error("attestation of batch 0x%s failed (%s): re-signing", aid.hex()[:16], rec.error)
            unit = await self._unit(aid)
            sig = sign_checkpoint(f.key.private_key, f.forwarder.domain, unit)
            async with f.outbox.transaction(durable=True) as tx:
                tx_id = await f.sender.enqueue(tx, to=f.address, data=attest_abi.encode_attest(unit, sig),
                                               purpose="attest", ref=aid)
                await fleet_store.set_attest_tx(tx, aid, tx_id)

    # -- 3. duty -----------------------------------------------------------------------

    async def _consider(self, unit: CheckpointMessage) -> None:
        f = self.fleet
        row = cps.CheckpointRow(unit.id, f.chain_id, unit.from_block, unit.to_block, unit.last_block_hash,
                                unit.root, 0, "attested", None, None)
        await f._check_divergence(row)
        when = await f._duty_time(unit.id)
        if when is None or f.clock.time() < when:
            return
        members = await self._members(unit.id)
        reused = 0
        async with f.outbox.transaction(durable=True) as tx:
            await fleet_store.take_duty(tx, unit.id, f.clock.time())
            await fwd_store.set_anchor_state(tx, unit.id, "members")
        for mid in members:
            located = await f._reusable_locator(mid)
            async with f.outbox.transaction(durable=True) as tx:
                if located is not None:
                    await cps.set_checkpoint_state(tx, mid, "uploaded", locator=located)
                    await fleet_store.set_located(tx, mid)
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
            await fwd_store.set_anchor_state(tx, unit.id, "uploading")
            await f.forwarder._queue_batch_manifest(tx, unit.id, b"".join(members), locator)

    # -- 4. anchored by another device -------------------------------------------------

    async def _anchored_elsewhere(self, aid: bytes) -> None:
        f = self.fleet
        members = await self._members(aid)
        async with f.outbox.transaction() as tx:
            await fwd_store.set_anchor_state(tx, aid, "anchored")
            for mid in members:
                await cps.set_checkpoint_state(tx, mid, "anchored")
        f.stats.anchored_by_others += 1
