"""The fleet stage: M-of-N attestations over the local chain and the rotating sync duty.

The consensus engine is the chains themselves: no device-to-device socket, no inbound
port. Per checkpoint (each device computes it itself from its own ingest):

1. ``unattested`` -> ``attesting``: sign the checkpoint as EIP-712 typed data for the
   mainnet Anchor and post it with ``Attestations.attest`` on the local PoA chain (free
   gas, total order). ``attesting`` -> ``attested`` once that transaction is confirmed.
2. Read every device's ``Attested`` events (and ``Located``) from the local chain into
   the outbox. A quorum is M attestations of the same id by registered devices.
3. Divergence: if M devices attest another id for the same block range, this device's
   root differs from a quorum's: a clear alarm (log, alarm row, counter) once; it never
   signs the other root.
4. Duty: devices are ordered by ``keccak256(id || address)``; rank ``i`` takes the duty
   at ``t_q + i * takeover_s``, where ``t_q`` is the timestamp of the block holding the
   M-th attestation (the same for every device), unless an anchor is already on
   mainnet. The duty holder reuses metadata another device already located on the
   testnets, or has the forward stage upload its own (state ``sealed``) and then
   publishes the locator (``Attestations.locate``); the forward stage anchors with the
   collected signatures. The Anchor's first-valid-anchor-wins rule keeps it at one
   anchor when two devices race; the loser's transaction fails at gas estimation.
5. Any checkpoint whose id is anchored on mainnet with our root becomes ``anchored``.

Safety: at most one anchor per checkpoint id, and only with M valid signatures of
registered devices (the contract checks). Two different roots for one range can both
be anchored only if two disjoint quorums exist: choose M > N/2. Liveness: while M
devices live and one of them can pay mainnet gas.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from eth_hash.auto import keccak

from edge.aio import enter_all
from edge.chain import anchor as anchor_abi
from edge.chain import attest as attest_abi
from edge.chain.crud import decode_bool, encode_exists
from edge.chain.http_rpc import HttpRpc
from edge.chain.txsender import TxSender
from edge.config import Config
from edge.errors import ChainError
from edge.seal.eip712 import CheckpointMessage, sign_checkpoint
from edge.seal.keys import DeviceKey
from edge.stages.fleet_batch import FleetBatches
from edge.stages.forward import ForwardStage
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store.db import Outbox

__all__ = ["FleetStage", "FleetStats", "duty_order"]

log = logging.getLogger("edge.fleet")


def duty_order(cp_id: bytes, devices: list[str]) -> list[str]:
    """The devices in duty order for checkpoint ``cp_id``: by keccak256(id || address)."""
    return sorted(devices, key=lambda a: keccak(cp_id + bytes.fromhex(a[2:])))


@dataclass
class FleetStats:
    """Counters of the fleet stage."""

    attested: int = 0
    duties: int = 0
    reused_metadata: int = 0
    anchored_by_others: int = 0
    divergences: int = 0
    quorum: int = 0
    devices: int = 0


class FleetStage:
    """Attestation and duty for one device. An async context manager (owns a TxSender on
    the local chain). ``forwarder`` is this device's :class:`ForwardStage`; the fleet
    becomes its signature source.
    """

    def __init__(self, cfg: Config, outbox: Outbox, key: DeviceKey, chain_id: int, forwarder: ForwardStage,
                 *, poll_s: float = 0.5) -> None:
        url = cfg.fleet.rpc_url or cfg.node.ws_url.replace("wss://", "https://").replace("ws://", "http://")
        self.cfg = cfg
        self.outbox = outbox
        self.key = key
        self.chain_id = chain_id
        self.forwarder = forwarder
        self.poll_s = poll_s
        self.address = bytes.fromhex(cfg.fleet.attestations[2:])
        self.sender = TxSender(outbox, url, key, chain_id=chain_id, confirmations=0,
                               max_fee_cap_wei=int(cfg.forward.max_fee_gwei * 10**9))
        self.rpc = HttpRpc(url)
        self.devices: list[str] = []
        self.quorum = 0
        self.stats = FleetStats()
        self._stack = AsyncExitStack()
        self._ts: dict[int, int] = {}
        forwarder.signature_source = self
        self.batches = FleetBatches(self) if cfg.forward.batch > 1 else None
        """With ``forward.batch`` K > 1 the batch is the unit of consensus (:mod:`edge.stages.fleet_batch`)."""

    async def __aenter__(self) -> FleetStage:
        await enter_all(self._stack, [self.sender, self.rpc])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def run(self) -> None:
        """Run the local-chain sender and the fleet loop until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.sender.run(self.poll_s), name="txsender local")
            tg.create_task(self._loop(), name="fleet")

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except ChainError as e:
                log.warning("fleet: %s; retrying", e)
            await asyncio.sleep(self.poll_s)

    # -- signature source for the forward stage ----------------------------------------

    async def signatures(self, unit: CheckpointMessage) -> list[bytes]:
        """Attested signatures of ``unit`` by registered devices (at least our own)."""
        rows = await self.outbox.fetchall("SELECT device, signature FROM attestations WHERE id=?", (unit.id,))
        return [bytes(s) for d, s in rows if d in self.devices]

    # -- one pass -------------------------------------------------------------------------

    async def step(self) -> None:
        """Refresh membership, read new events, then move every checkpoint on."""
        self.devices = attest_abi.decode_devices(await self.rpc.eth_call(self.address, attest_abi.DEVICES_CALL))
        self.quorum = attest_abi.decode_quorum(await self.rpc.eth_call(self.address, attest_abi.QUORUM_CALL))
        self.stats.devices, self.stats.quorum = len(self.devices), self.quorum
        if self.key.address not in self.devices:
            log.error("this device %s is not registered in Attestations 0x%s: not attesting",
                      self.key.address, self.address.hex())
            return
        await self._scan()
        if self.batches is not None:
            await self.batches.step()
        else:
            await self._attest_new()
        await self._confirm_attests()
        for cp in await cps.checkpoints_in_state(self.outbox, "attested", self.chain_id):
            await self._consider(cp)
        await self._locate_uploaded()
        await self._watch_anchored()

    async def _scan(self) -> None:
        row = await self.outbox.fetchone("SELECT next_block FROM fleet_scan WHERE chain_id=?", (self.chain_id,))
        lo = int(row[0]) if row else 0
        head = await self.rpc.block_number()
        if lo > head:
            return
        att = await self.rpc.get_logs(self.address, [attest_abi.ATTESTED_TOPIC], lo, head)
        loc = await self.rpc.get_logs(self.address, [attest_abi.LOCATED_TOPIC], lo, head)
        async with self.outbox.transaction() as tx:
            for lg in att:
                a = attest_abi.decode_attested(lg)
                c = a.checkpoint
                await tx.execute(
                    "INSERT OR IGNORE INTO attestations (id, device, chain_id, from_block, to_block, last_hash, root,"
                    " signature, block_number, log_index) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (c.id, a.device, c.chain_id, c.from_block, c.to_block, c.last_block_hash, c.root, a.signature,
                     a.block_number, a.log_index))
            for lg in loc:
                lo_ev = attest_abi.decode_located(lg)
                await tx.execute("INSERT OR IGNORE INTO locations (id, device, locator) VALUES (?,?,?)",
                                 (lo_ev.id, lo_ev.device, lo_ev.locator))
            await tx.execute("INSERT INTO fleet_scan (chain_id, next_block) VALUES (?,?) ON CONFLICT(chain_id)"
                             " DO UPDATE SET next_block=excluded.next_block", (self.chain_id, head + 1))

    def _message(self, cp: cps.CheckpointRow) -> CheckpointMessage:
        return CheckpointMessage(cp.id, self.chain_id, cp.from_block, cp.to_block, cp.last_hash, cp.root)

    async def _attest_new(self) -> None:
        for cp in await cps.checkpoints_in_state(self.outbox, "unattested", self.chain_id):
            msg = self._message(cp)
            sig = sign_checkpoint(self.key.private_key, self.forwarder.domain, msg)
            async with self.outbox.transaction(durable=True) as tx:
                tx_id = await self.sender.enqueue(tx, to=self.address, data=attest_abi.encode_attest(msg, sig),
                                                  purpose="attest", ref=cp.id)
                await tx.execute("INSERT OR REPLACE INTO fleet_duty (id, attest_tx) VALUES (?,?)", (cp.id, tx_id))
                await cps.set_checkpoint_state(tx, cp.id, "attesting")

    async def _confirm_attests(self) -> None:
        for cp in await cps.checkpoints_in_state(self.outbox, "attesting", self.chain_id):
            row = await self.outbox.fetchone("SELECT attest_tx FROM fleet_duty WHERE id=?", (cp.id,))
            assert row is not None
            rec = await self.sender.get(int(row[0]))
            if rec.state == "confirmed":
                async with self.outbox.transaction() as tx:
                    await cps.set_checkpoint_state(tx, cp.id, "attested")
                self.stats.attested += 1
            elif rec.state == "failed":
                log.error("attestation of 0x%s failed (%s): re-signing", cp.id.hex()[:16], rec.error)
                async with self.outbox.transaction() as tx:
                    await cps.set_checkpoint_state(tx, cp.id, "unattested")

    async def _anchored_root(self, cp_id: bytes) -> bytes:
        return anchor_abi.decode_bytes32(await self.forwarder.mainnet_rpc.eth_call(
            self.forwarder.anchor_addr, anchor_abi.anchored_root_call(cp_id)))

    async def _block_time(self, n: int) -> int:
        if n not in self._ts:
            b = await self.rpc.call("eth_getBlockByNumber", [hex(n), False])
            self._ts[n] = int(b["timestamp"], 16)
        return self._ts[n]

    async def _consider(self, cp: cps.CheckpointRow) -> None:
        await self._check_divergence(cp)
        if await self._anchored_root(cp.id) == cp.root:
            await self._anchored_elsewhere(cp)
            return
        rows = await self.outbox.fetchall(
            "SELECT device, block_number FROM attestations WHERE id=? ORDER BY block_number, log_index", (cp.id,))
        valid = [(d, int(b)) for d, b in rows if d in self.devices]
        if len(valid) < self.quorum:
            return
        t_q = await self._block_time(valid[self.quorum - 1][1])
        order = duty_order(cp.id, self.devices)
        rank = order.index(self.key.address)
        if time.time() < t_q + rank * self.cfg.fleet.takeover_s:
            return
        located = await self._reusable_locator(cp.id)
        async with self.outbox.transaction(durable=True) as tx:
            await tx.execute("UPDATE fleet_duty SET took_at=? WHERE id=?", (time.time(), cp.id))
            if located is not None:
                await cps.set_checkpoint_state(tx, cp.id, "uploaded", locator=located)
                await tx.execute("UPDATE fleet_duty SET located=1 WHERE id=?", (cp.id,))
            else:
                await cps.set_checkpoint_state(tx, cp.id, "sealed")
        self.stats.duties += 1
        self.stats.reused_metadata += int(located is not None)
        log.info("duty for checkpoint 0x%s (blocks %d..%d): rank %d of %d%s", cp.id.hex()[:16], cp.from_block,
                 cp.to_block, rank, len(order), ", reusing located metadata" if located else "")

    async def _duty_time(self, unit_id: bytes) -> float | None:
        """When this device's duty for ``unit_id`` starts (seconds since the epoch), or None
        while fewer than M registered devices attested it (the rule of :meth:`_consider`)."""
        rows = await self.outbox.fetchall(
            "SELECT device, block_number FROM attestations WHERE id=? ORDER BY block_number, log_index", (unit_id,))
        valid = [(d, int(b)) for d, b in rows if d in self.devices]
        if len(valid) < self.quorum:
            return None
        t_q = await self._block_time(valid[self.quorum - 1][1])
        return t_q + duty_order(unit_id, self.devices).index(self.key.address) * self.cfg.fleet.takeover_s

    async def _reusable_locator(self, cp_id: bytes) -> bytes | None:
        """A locator another device published whose manifest exists on some testnet."""
        for (locator,) in await self.outbox.fetchall("SELECT locator FROM locations WHERE id=?", (cp_id,)):
            for t in self.cfg.forward.testnets:
                try:
                    async with HttpRpc(t.url) as rpc:
                        if decode_bool(await rpc.eth_call(bytes.fromhex(t.store[2:]), encode_exists(bytes(locator)))):
                            return bytes(locator)
                except ChainError:
                    continue
        return None

    async def _check_divergence(self, cp: cps.CheckpointRow) -> None:
        rows = await self.outbox.fetchall(
            "SELECT id, root, count(DISTINCT device) FROM attestations WHERE chain_id=? AND from_block=? AND to_block=?"
            " AND id != ? GROUP BY id", (self.chain_id, cp.from_block, cp.to_block, cp.id))
        for other, root, n in rows:
            if int(n) < self.quorum:
                continue
            done = await self.outbox.fetchone("SELECT diverged FROM fleet_duty WHERE id=?", (cp.id,))
            if done and done[0]:
                return
            msg = (f"DIVERGENCE: blocks {cp.from_block}..{cp.to_block}: this device's root 0x{cp.root.hex()} differs "
                   f"from the root 0x{bytes(root).hex()} attested by a quorum ({n} devices); not signing it")
            log.error("%s", msg)
            self.stats.divergences += 1
            await chain_data.add_alarm(self.outbox, self.chain_id, cp.to_block, "divergence", msg)
            async with self.outbox.transaction() as tx:
                await tx.execute("UPDATE fleet_duty SET diverged=1 WHERE id=?", (cp.id,))
            return

    async def _anchored_elsewhere(self, cp: cps.CheckpointRow) -> None:
        async with self.outbox.transaction() as tx:
            await cps.set_checkpoint_state(tx, cp.id, "anchored")
        self.stats.anchored_by_others += 1

    async def _watch_anchored(self) -> None:
        """Checkpoints in flight here that another device anchored meanwhile."""
        for state in ("sealed", "uploading"):
            for cp in await cps.checkpoints_in_state(self.outbox, state, self.chain_id):
                if await self._anchored_root(cp.id) == cp.root:
                    await self._anchored_elsewhere(cp)

    async def _locate_uploaded(self) -> None:
        rows = await self.outbox.fetchall(
            "SELECT c.id, c.locator FROM checkpoints c JOIN fleet_duty f ON f.id = c.id"
            " WHERE c.chain_id=? AND f.located=0 AND c.locator IS NOT NULL"
            " AND c.state IN ('uploaded', 'anchoring', 'anchored')", (self.chain_id,))
        for cp_id, locator in rows:
            async with self.outbox.transaction(durable=True) as tx:
                await self.sender.enqueue(tx, to=self.address, data=attest_abi.encode_locate(bytes(cp_id), bytes(locator)),
                                          purpose="locate", ref=bytes(cp_id))
                await tx.execute("UPDATE fleet_duty SET located=1 WHERE id=?", (bytes(cp_id),))

