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
from contextlib import AsyncExitStack
from dataclasses import dataclass

from eth_hash.auto import keccak

from edge.aio import enter_all
from edge.clock import SYSTEM_CLOCK, Clock
from edge.contracts import anchor as anchor_abi
from edge.contracts import attestations as attest_abi
from edge.contracts.crud import decode_bool, encode_exists
from edge.rpc import eth
from edge.rpc.base import RpcFactory
from edge.forward.txsender import TxSender
from edge.config import Config
from edge.errors import ChainError
from edge.evidence.eip712 import CheckpointMessage, sign_checkpoint
from edge.crypto.keys import DeviceKey
from edge.fleet.batches import FleetBatches
from edge.forward.stage import ForwardStage
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store import fleet as fleet_store
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
    becomes its signature source. ``rpc_factory`` makes its connections (the local chain,
    and the testnets when it checks a locator); ``clock`` times the duty takeover.
    """

    def __init__(self, cfg: Config, outbox: Outbox, key: DeviceKey, chain_id: int, forwarder: ForwardStage,
                 *, rpc_factory: RpcFactory, clock: Clock = SYSTEM_CLOCK, poll_s: float = 0.5) -> None:
        url = cfg.fleet.rpc_url or cfg.node.ws_url.replace("wss://", "https://").replace("ws://", "http://")
        self.cfg = cfg
        self.outbox = outbox
        self.key = key
        self.chain_id = chain_id
        self.forwarder = forwarder
        self.poll_s = poll_s
        self.address = bytes.fromhex(cfg.fleet.attestations[2:])
        self.rpc_factory = rpc_factory
        self.clock = clock
        self.sender = TxSender(outbox, rpc_factory(url, timeout=15.0), key, chain_id=chain_id, confirmations=0,
                               max_fee_cap_wei=int(cfg.forward.max_fee_gwei * 10**9), clock=clock)
        self.rpc = self.sender.rpc
        """Reads of the Attestations contract share the local sender's connection."""
        self.devices: list[str] = []
        self.quorum = 0
        self.stats = FleetStats()
        self._stack = AsyncExitStack()
        self._ts: dict[int, int] = {}
        forwarder.signature_source = self
        self.batches = FleetBatches(self) if cfg.forward.batch > 1 else None
        """With ``forward.batch`` K > 1 the batch is the unit of consensus (:mod:`edge.fleet.batches`)."""

    async def __aenter__(self) -> FleetStage:
        await enter_all(self._stack, [self.sender])
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
            await self.clock.sleep(self.poll_s)

    # -- signature source for the forward stage ----------------------------------------

    async def signatures(self, unit: CheckpointMessage) -> list[bytes]:
        """Attested signatures of ``unit`` by registered devices (at least our own)."""
        return [s for d, s in await fleet_store.signatures_of(self.outbox, unit.id) if d in self.devices]

    # -- one pass -------------------------------------------------------------------------

    async def step(self) -> None:
        """Refresh membership, read new events, then move every checkpoint on."""
        self.devices = attest_abi.decode_devices(await eth.eth_call(self.rpc, self.address, attest_abi.DEVICES_CALL))
        self.quorum = attest_abi.decode_quorum(await eth.eth_call(self.rpc, self.address, attest_abi.QUORUM_CALL))
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
        lo = await fleet_store.next_scan_block(self.outbox, self.chain_id)
        head = await eth.block_number(self.rpc)
        if lo > head:
            return
        att = await eth.get_logs(self.rpc, self.address, [attest_abi.ATTESTED_TOPIC], lo, head)
        loc = await eth.get_logs(self.rpc, self.address, [attest_abi.LOCATED_TOPIC], lo, head)
        rows = []
        for lg in att:
            a = attest_abi.decode_attested(lg)
            c = a.checkpoint
            rows.append(fleet_store.AttestationRow(c.id, a.device, c.chain_id, c.from_block, c.to_block,
                                                   c.last_block_hash, c.root, a.signature, a.block_number,
                                                   a.log_index))
        located = [fleet_store.LocationRow(e.id, e.device, e.locator) for e in map(attest_abi.decode_located, loc)]
        await fleet_store.record_scan(self.outbox, self.chain_id, rows, located, head)

    def _message(self, cp: cps.CheckpointRow) -> CheckpointMessage:
        return CheckpointMessage(cp.id, self.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root)

    async def _attest_new(self) -> None:
        for cp in await cps.checkpoints_in_state(self.outbox, "unattested", self.chain_id):
            msg = self._message(cp)
            sig = sign_checkpoint(self.key.private_key, self.forwarder.domain, msg)
            async with self.outbox.transaction(durable=True) as tx:
                tx_id = await self.sender.enqueue(tx, to=self.address, data=attest_abi.encode_attest(msg, sig),
                                                  purpose="attest", ref=cp.id)
                await fleet_store.set_attest_tx(tx, cp.id, tx_id)
                await cps.set_checkpoint_state(tx, cp.id, "attesting")

    async def _confirm_attests(self) -> None:
        for cp in await cps.checkpoints_in_state(self.outbox, "attesting", self.chain_id):
            attest_tx = await fleet_store.attest_tx_of(self.outbox, cp.id)
            assert attest_tx is not None  # set with the state change to 'attesting'
            rec = await self.sender.get(attest_tx)
            if rec.state == "confirmed":
                async with self.outbox.transaction() as tx:
                    await cps.set_checkpoint_state(tx, cp.id, "attested")
                self.stats.attested += 1
            elif rec.state == "failed":
                log.error("attestation of 0x%s failed (%s): re-signing", cp.id.hex()[:16], rec.error)
                async with self.outbox.transaction() as tx:
                    await cps.set_checkpoint_state(tx, cp.id, "unattested")

    async def _anchored_root(self, cp_id: bytes) -> bytes:
        return anchor_abi.decode_bytes32(await eth.eth_call(self.forwarder.mainnet_rpc, 
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
        valid = [(d, b) for d, b in await fleet_store.attesters_of(self.outbox, cp.id) if d in self.devices]
        if len(valid) < self.quorum:
            return
        t_q = await self._block_time(valid[self.quorum - 1][1])
        order = duty_order(cp.id, self.devices)
        rank = order.index(self.key.address)
        if self.clock.time() < t_q + rank * self.cfg.fleet.takeover_s:
            return
        located = await self._reusable_locator(cp.id)
        async with self.outbox.transaction(durable=True) as tx:
            await fleet_store.take_duty(tx, cp.id, self.clock.time())
            if located is not None:
                await cps.set_checkpoint_state(tx, cp.id, "uploaded", locator=located)
                await fleet_store.set_located(tx, cp.id)
            else:
                await cps.set_checkpoint_state(tx, cp.id, "sealed")
        self.stats.duties += 1
        self.stats.reused_metadata += int(located is not None)
        log.info("duty for checkpoint 0x%s (blocks %d..%d): rank %d of %d%s", cp.id.hex()[:16], cp.from_block,
                 cp.to_block, rank, len(order), ", reusing located metadata" if located else "")

    async def _duty_time(self, unit_id: bytes) -> float | None:
        """When this device's duty for ``unit_id`` starts (seconds since the epoch), or None
        while fewer than M registered devices attested it (the rule of :meth:`_consider`)."""
        valid = [(d, b) for d, b in await fleet_store.attesters_of(self.outbox, unit_id) if d in self.devices]
        if len(valid) < self.quorum:
            return None
        t_q = await self._block_time(valid[self.quorum - 1][1])
        return t_q + duty_order(unit_id, self.devices).index(self.key.address) * self.cfg.fleet.takeover_s

    async def _reusable_locator(self, cp_id: bytes) -> bytes | None:
        """A locator another device published whose manifest exists on some testnet."""
        for locator in await fleet_store.locators_of(self.outbox, cp_id):
            for t in self.cfg.forward.testnets:
                try:
                    async with self.rpc_factory(t.url, timeout=15.0) as rpc:
                        if decode_bool(await eth.eth_call(rpc, bytes.fromhex(t.store[2:]), encode_exists(bytes(locator)))):
                            return bytes(locator)
                except ChainError:
                    continue
        return None

    async def _check_divergence(self, cp: cps.CheckpointRow) -> None:
        for other, root, n in await fleet_store.rival_roots(self.outbox, self.chain_id, cp.from_block, cp.to_block,
                                                             cp.id):
            if n < self.quorum:
                continue
            if await fleet_store.is_diverged(self.outbox, cp.id):
                return
            msg = (f"DIVERGENCE: blocks {cp.from_block}..{cp.to_block}: this device's root 0x{cp.root.hex()} differs "
                   f"from the root 0x{bytes(root).hex()} attested by a quorum ({n} devices); not signing it")
            log.error("%s", msg)
            self.stats.divergences += 1
            await chain_data.add_alarm(self.outbox, self.chain_id, cp.to_block, "divergence", msg)
            await fleet_store.set_diverged(self.outbox, cp.id)
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
        for cp_id, locator in await fleet_store.unlocated_uploads(self.outbox, self.chain_id):
            async with self.outbox.transaction(durable=True) as tx:
                await self.sender.enqueue(tx, to=self.address, data=attest_abi.encode_locate(cp_id, locator),
                                          purpose="locate", ref=cp_id)
                await fleet_store.set_located(tx, cp_id)

