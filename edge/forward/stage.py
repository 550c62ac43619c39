"""The forward stage: checkpoints out to the public tiers.

Per checkpoint, driven only by outbox state (so a kill at any instant resumes exactly):

1. ``sealed`` -> ``uploading``: build its metadata (records' keys, CRCs, leaves; risk
   findings), encrypt it for the auditors, pad, chunk and spread it over the testnets
   (:mod:`edge.evidence.metadata`). In ONE durable transaction: store every chunk and the
   manifest replicas (``uploads``), queue ``publishMany`` transactions per testnet on that
   testnet's :class:`~edge.forward.txsender.TxSender`, and move the checkpoint on. A
   restart re-sends the same stored bytes; nothing is encrypted twice.
2. ``uploading`` -> ``uploaded`` when every upload transaction is confirmed.
3. ``uploaded`` -> ``anchoring``, in checkpoint order (never past an earlier checkpoint
   still sealed or uploading): K checkpoints (``forward.batch``) form one anchor unit
   (K = 1: the checkpoint itself; K > 1: a batch whose root is the Merkle root over the
   member ids, with a batch manifest uploaded first). A partial batch is cut once its
   oldest member was cut ``forward.batch_max_wait_s`` ago (:func:`edge.forward.batching.cut_batches`),
   so a quiet chain is anchored too. The device signs the unit as
   EIP-712 typed data for the mainnet Anchor; the ``anchor`` call is queued in the same
   transaction that records the unit.
4. ``anchoring`` -> ``anchored`` when the anchor transaction is confirmed, or when the
   contract already holds the same root for the id (another device anchored first; the
   contract's first-wins rule).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

from edge.aio import enter_all
from edge.clock import SYSTEM_CLOCK, Clock
from edge.contracts import anchor as anchor_abi
from edge.contracts.crud import encode_publish_many
from edge.rpc import eth
from edge.rpc.base import RpcFactory
from edge.forward.txsender import TxSender
from edge.config import Config
from edge.errors import CryptoError, NodeUnavailable, RpcProtocolError
from edge.forward import uploads as plan
from edge.forward.batching import cut_batches
from edge.evidence.eip712 import CheckpointMessage, Eip712Domain, sign_checkpoint
from edge.crypto.keys import DeviceKey
from edge.evidence.metadata import Manifest, Metadata
from edge.store import chain_data
from edge.store import checkpoints as cps
from edge.store import forwarding as fwd_store
from edge.store.db import DbTx, Outbox

__all__ = ["ForwardStage", "ForwardStats", "SignatureSource"]

log = logging.getLogger("edge.forward")


@dataclass
class ForwardStats:
    """Counters of the forward stage."""

    uploaded: int = 0
    chunks: int = 0
    bytes_uploaded: int = 0
    anchors_sent: int = 0
    anchored: int = 0
    checkpoints_anchored: int = 0
    anchored_by_others: int = 0
    failures: int = 0


class SignatureSource(Protocol):
    """Supplies the M-of-N device signatures of an anchor unit (the fleet stage)."""

    devices: list[str]
    quorum: int

    async def signatures(self, unit: CheckpointMessage) -> list[bytes]:
        """65-byte EIP-712 signatures of ``unit`` by registered devices."""
        ...


_RPC_TIMEOUT_S = 15.0
"""Seconds per JSON-RPC answer from a public chain."""


def _hex20(a: str) -> bytes:
    return bytes.fromhex(a[2:])


class ForwardStage:
    """Carries sealed checkpoints to the testnets and anchors them on mainnet.

    An async context manager (it owns one :class:`TxSender` per public chain).

    Args:
        cfg: config (``forward`` section, enabled). outbox: the open outbox.
        key: this device's key. chain_id: the local chain's id.
        rpc_factory: makes the connection to each public chain (one per chain, owned by
            that chain's :class:`TxSender`; the stage's reads share it).
        clock: waits and the wall time (seconds since the epoch, as ``created_at`` in the
            outbox) of the batch wait; tests inject :class:`edge.clock.MockClock`.
        poll_s: seconds between passes.
    """

    def __init__(self, cfg: Config, outbox: Outbox, key: DeviceKey, chain_id: int, *, rpc_factory: RpcFactory,
                 clock: Clock = SYSTEM_CLOCK, poll_s: float = 0.5) -> None:
        f = cfg.forward
        self.cfg = cfg
        self.outbox = outbox
        self.key = key
        self.chain_id = chain_id
        self.poll_s = poll_s
        self.clock = clock
        self.auditors = [bytes.fromhex(a[2:] if a.startswith("0x") else a) for a in f.auditors]
        self.stores = [(t.chain_id, _hex20(t.store)) for t in f.testnets]
        self.anchor_addr = _hex20(f.mainnet.anchor)
        self.domain = Eip712Domain(f.mainnet.chain_id, f.mainnet.anchor)
        cap = int(f.max_fee_gwei * 10**9)
        self.senders: dict[int, TxSender] = {
            t.chain_id: TxSender(outbox, rpc_factory(t.url, timeout=_RPC_TIMEOUT_S), key, chain_id=t.chain_id,
                                 confirmations=f.confirmations, max_fee_cap_wei=cap, clock=clock)
            for t in f.testnets}
        self.mainnet = TxSender(outbox, rpc_factory(f.mainnet.url, timeout=_RPC_TIMEOUT_S), key,
                                chain_id=f.mainnet.chain_id, confirmations=f.confirmations, max_fee_cap_wei=cap,
                                clock=clock)
        self.stats = ForwardStats()
        self.signature_source: SignatureSource | None = None
        """Where anchor signatures come from in a fleet (None: this device signs alone)."""
        self.forms_batches = True
        """False when the fleet cuts the anchor units itself (fleet batching)."""
        self._stack = AsyncExitStack()
        self.mainnet_rpc = self.mainnet.rpc
        """Reads of the Anchor contract share the mainnet sender's connection."""
        self.testnet_rpcs = {cid: s.rpc for cid, s in self.senders.items()}
        """Block gas limits are read over each testnet sender's connection."""
        self._sizing_blocked = False
        self.budgets: dict[int, plan.UploadBudget] = {}
        """Per testnet: what one upload transaction may use (:mod:`edge.forward.uploads`),
        from the chain's block gas limit, read before each planning."""

    async def __aenter__(self) -> ForwardStage:
        await enter_all(self._stack, [*self.senders.values(), self.mainnet])
        return self

    async def _read_budgets(self) -> int:
        """Read every testnet's block gas limit into :attr:`budgets` (an unreachable testnet
        keeps its last known one); returns the largest blob every testnet can store in one
        transaction (bytes). Raises NodeUnavailable for a testnet never read yet."""
        for cid, rpc in self.testnet_rpcs.items():
            try:
                blk = await rpc.call("eth_getBlockByNumber", ["latest", False])
            except NodeUnavailable:
                if cid in self.budgets:
                    continue
                raise
            limit = blk.get("gasLimit") if isinstance(blk, dict) else None
            if not isinstance(limit, str) or not limit.startswith("0x"):
                raise RpcProtocolError("eth_getBlockByNumber", f"testnet {cid}: no gasLimit in the latest block")
            self.budgets[cid] = plan.UploadBudget.for_block(int(limit, 16))
        return min(b.max_value_bytes() for b in self.budgets.values())

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def run(self) -> None:
        """Run the senders and the forwarding loop until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for s in [*self.senders.values(), self.mainnet]:
                tg.create_task(s.run(self.poll_s), name=f"txsender {s.chain_id}")
            tg.create_task(self._loop(), name="forward")

    async def _loop(self) -> None:
        while True:
            try:
                while await self.step():
                    pass
            except NodeUnavailable as e:
                log.warning("forward: %s; retrying", e)
            await self.clock.sleep(self.poll_s)

    async def backlog(self) -> int:
        """Checkpoints not yet anchored."""
        return await fwd_store.unanchored_count(self.outbox, self.chain_id)

    async def step(self) -> bool:
        """One pass over every state; True if anything moved."""
        moved = await self._upload_sealed()
        moved |= await self._check_uploads()
        moved |= await self._form_anchors()
        moved |= await self._check_anchors()
        return moved

    # -- 1. upload ------------------------------------------------------------------

    async def _upload_sealed(self) -> bool:
        sealed = await cps.checkpoints_in_state(self.outbox, "sealed", self.chain_id)
        for cp in sealed[:8]:
            leaves = await cps.range_leaves(self.outbox, self.chain_id, cp.from_block, cp.to_block)
            findings = await cps.range_findings(self.outbox, self.chain_id, cp.from_block, cp.to_block)
            md = Metadata(self.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root, cp.id,
                          self.key.address, tuple(leaves), tuple(findings))
            try:
                max_blob = await self._read_budgets()
            except NodeUnavailable as e:  # encryption waits; the other phases go on
                if not self._sizing_blocked:
                    log.warning("forward: cannot size uploads yet (%s); encryption waits", e)
                self._sizing_blocked = True
                return False
            self._sizing_blocked = False
            locator, items = plan.encrypt_checkpoint_upload(
                md, auditors=self.auditors, device_key=self.key.private_key, stores=self.stores,
                chunk_bytes=self.cfg.forward.chunk_bytes, max_blob=max_blob)
            async with self.outbox.transaction(durable=True) as tx:
                await self._queue_uploads(tx, cp.id, items)
                await cps.set_checkpoint_state(tx, cp.id, "uploading", locator=locator)
            n_chunks = sum(1 for rows in items.values() for p, _, _ in rows if p >= 0)
            self.stats.chunks += n_chunks
            self.stats.bytes_uploaded += sum(len(d) for rows in items.values() for _, _, d in rows)
            log.info("checkpoint 0x%s: %d records encrypted for %d auditor(s) into %d chunks over %d testnets "
                     "(manifest in %d part(s))", cp.id.hex()[:16], len(leaves), len(self.auditors), n_chunks,
                     len(self.stores), 1 + sum(1 for p, _, _ in next(iter(items.values())) if p < -1))
        return bool(sealed)

    async def _queue_uploads(self, tx: DbTx, ref: bytes, items: dict[int, list[tuple[int, bytes, bytes]]]) -> None:
        """Queue ``publishMany`` transactions planned from each testnet's gas budget
        (:func:`edge.forward.uploads.plan_transactions`: every one fits a block) and record
        every upload with its tx. Raises UploadTooLarge if a row fits no transaction."""
        stores = dict(self.stores)
        for cid, rows in items.items():
            budget = self.budgets[cid]
            for group in plan.plan_transactions(rows, budget):
                values = [d for _, _, d in group]
                gas = budget.gas_limit(plan.publish_many_gas([len(v) for v in values]))
                tx_id = await self.senders[cid].enqueue(
                    tx, to=stores[cid], data=encode_publish_many([k for _, k, _ in group], values),
                    purpose="upload", ref=ref, gas=gas)
                await fwd_store.add_uploads(tx, ref, [fwd_store.UploadRow(p, cid, stores[cid], k, d, tx_id)
                                                      for p, k, d in group])

    async def _uploads_done(self, ref: bytes) -> bool | None:
        """True: all upload txs of ``ref`` confirmed; False: pending; None: one failed."""
        done = True
        for cid, tx_id in await fwd_store.upload_txs(self.outbox, ref):
            rec = await self.senders[cid].get(tx_id)
            if rec.state == "failed":
                return None
            done &= rec.state == "confirmed"
        return done

    async def _check_uploads(self) -> bool:
        moved = False
        for cp in await cps.checkpoints_in_state(self.outbox, "uploading", self.chain_id):
            done = await self._uploads_done(cp.id)
            if done is None:
                await self._requeue_failed(cp.id)
                moved = True
            elif done:
                async with self.outbox.transaction() as tx:
                    await cps.set_checkpoint_state(tx, cp.id, "uploaded")
                self.stats.uploaded += 1
                moved = True
        return moved

    async def _requeue_failed(self, ref: bytes) -> None:
        """Re-queue the uploads of ``ref`` whose transaction failed. A refusal for size
        (:func:`edge.forward.uploads.is_size_refusal`: it can never succeed as it is) is an
        alarm and a re-plan from the chains' current gas budgets: the rows regrouped into
        smaller transactions, or, if one row fits no transaction, the checkpoint re-encrypted
        into smaller pieces. Any other failure re-queues the same rows."""
        self.stats.failures += 1
        rows = await fwd_store.uploads_of(self.outbox, ref)
        failed: dict[int, list[tuple[int, bytes, bytes]]] = {}
        too_large = False
        if not self.budgets:
            await self._read_budgets()
        for u in rows:
            rec = await self.senders[u.chain_id].get(u.tx_id)
            if rec.state == "failed":
                failed.setdefault(u.chain_id, []).append((u.part, u.key, u.data))
                too_large |= plan.is_size_refusal(rec.error)
        if too_large:
            await self._read_budgets()  # the limit may have moved: plan from the current one
            refit = all(self.budgets[cid].fits([len(d)]) for cid, rs in failed.items() for _, _, d in rs)
            what = "re-planned into smaller transactions" if refit else "re-encrypted into smaller pieces"
            log.error("upload of 0x%s refused for size on chain(s) %s: %s", ref.hex()[:16],
                      ", ".join(map(str, failed)), what)
            await chain_data.add_alarm(self.outbox, self.chain_id, None, "upload_too_large",
                                       f"upload of 0x{ref.hex()} refused for size on {sorted(failed)}; {what}")
            if not refit:
                await self._reencrypt(ref)
                return
        else:
            log.error("upload of 0x%s failed on chain(s) %s: re-queued", ref.hex()[:16], ", ".join(map(str, failed)))
            await chain_data.add_alarm(self.outbox, self.chain_id, None, "upload_failed",
                                       f"upload of 0x{ref.hex()} failed on {sorted(failed)}; re-queued")
        async with self.outbox.transaction(durable=True) as tx:
            await self._queue_uploads(tx, ref, failed)

    async def _reencrypt(self, ref: bytes) -> None:
        """Start the upload of ``ref`` over: a checkpoint goes back to ``sealed`` (encrypted
        again on the next pass, with new keys and the current budgets); a batch manifest
        is split again under its locator."""
        anchor = await fwd_store.get_anchor(self.outbox, ref)
        async with self.outbox.transaction(durable=True) as tx:
            await fwd_store.drop_uploads(tx, ref)
            if anchor is None:
                await cps.set_checkpoint_state(tx, ref, "sealed")
            else:
                await self._queue_batch_manifest(tx, ref, b"".join(anchor.members), anchor.locator)

    async def _queue_batch_manifest(self, tx: DbTx, aid: bytes, members: bytes, locator: bytes) -> None:
        ids = [members[i:i + 32] for i in range(0, len(members), 32)]
        pairs = []
        for mid in ids:
            row = await cps.get_checkpoint(tx, mid)
            pairs.append((mid, (row.locator if row else None) or b""))
        max_blob = min(b.max_value_bytes() for b in self.budgets.values())
        items = plan.encrypt_batch_upload(Manifest("batch", aid, members=tuple(pairs)), locator,
                                       auditors=self.auditors, chain_ids=[cid for cid, _ in self.stores],
                                       max_blob=max_blob)
        await self._queue_uploads(tx, aid, items)

    # -- 3. anchor --------------------------------------------------------------------

    def _message(self, cp: cps.CheckpointRow) -> CheckpointMessage:
        return CheckpointMessage(cp.id, self.chain_id, cp.from_block, cp.to_block, cp.last_block_hash, cp.root)

    async def _form_anchors(self) -> bool:
        if not self.forms_batches:
            return False
        ready = await cps.checkpoints_in_state(self.outbox, "uploaded", self.chain_id)
        # anchored in checkpoint order: none while an earlier one is still being uploaded
        # (after a testnet outage a later checkpoint's uploads may confirm first)
        behind = [c.from_block for st in ("sealed", "uploading")
                  for c in await cps.checkpoints_in_state(self.outbox, st, self.chain_id)]
        if behind:
            ready = [c for c in ready if c.from_block < min(behind)]
        k = self.cfg.forward.batch
        moved = False
        born = await cps.created_at_in_state(self.outbox, self.chain_id, "uploaded")
        batches = cut_batches(ready, [born.get(c.id, 0.0) for c in ready], k, self.cfg.forward.batch_max_wait_s,
                              self.clock.time())
        if k > 1 and batches:
            await self._read_budgets()
        for members in batches:
            msgs = [self._message(c) for c in members]
            unit = msgs[0] if k == 1 else anchor_abi.batch_checkpoint(msgs)
            if len(members) < k:
                log.info("batch of %d/%d checkpoint(s) cut: its oldest waited %.0f s (forward.batch_max_wait_s)",
                         len(members), k, self.clock.time() - min(born.get(c.id, 0.0) for c in members))
            locator = members[0].locator if k == 1 else os.urandom(32)
            assert locator is not None
            async with self.outbox.transaction(durable=True) as tx:
                await fwd_store.insert_anchor(tx, fwd_store.AnchorRow(
                    unit.id, self.chain_id, unit.from_block, unit.to_block, unit.last_block_hash, unit.root, locator,
                    tuple(c.id for c in members), "uploading" if k > 1 else "signing", None), self.clock.time())
                for c in members:
                    await cps.set_checkpoint_state(tx, c.id, "anchoring", anchor_id=unit.id)
                if k > 1:
                    await self._queue_batch_manifest(tx, unit.id, b"".join(c.id for c in members), locator)
            moved = True
        return moved

    async def _check_anchors(self) -> bool:
        moved = False
        for a in await fwd_store.open_anchors(self.outbox, self.chain_id):
            aid, state, tx_id, members = a.id, a.state, a.tx_id, b"".join(a.members)
            if state == "uploading":
                done = await self._uploads_done(aid)
                if done is None:
                    await self._requeue_failed(aid)
                elif done:
                    async with self.outbox.transaction() as tx:
                        await fwd_store.set_anchor_state(tx, aid, "signing")
                    moved = True
            elif state == "signing":
                await self._send_anchor(aid)
                moved = True
            elif state == "sending" and tx_id is not None:
                rec = await self.mainnet.get(tx_id)
                if rec.state == "confirmed":
                    await self._mark_anchored(aid, bytes(members), by_us=True)
                    moved = True
                elif rec.state == "failed":
                    moved |= await self._resolve_failed_anchor(aid, bytes(members), rec)
        return moved

    async def _unit(self, aid: bytes) -> tuple[CheckpointMessage, bytes]:
        r = await fwd_store.get_anchor(self.outbox, aid)
        assert r is not None
        return CheckpointMessage(aid, r.chain_id, r.from_block, r.to_block, r.last_block_hash, r.root), r.locator

    async def _send_anchor(self, aid: bytes) -> None:
        unit, locator = await self._unit(aid)
        src = self.signature_source
        if src is None:
            sigs = [sign_checkpoint(self.key.private_key, self.domain, unit)]
        else:
            sigs = await src.signatures(unit)
            if len(sigs) < src.quorum:
                return  # wait for the quorum (the fleet stage reads attestations)
        # the roster as the Anchor holds it: its order and quorum are checked against rosterHash
        devices = anchor_abi.decode_address_list(
            await eth.eth_call(self.mainnet_rpc, self.anchor_addr, anchor_abi.devices_call()))
        quorum = anchor_abi.decode_uint(await eth.eth_call(self.mainnet_rpc, self.anchor_addr, anchor_abi.quorum_call()))
        try:
            data = anchor_abi.encode_anchor_call(unit, locator, sigs, domain=self.domain, devices=devices,
                                                 quorum=quorum, limit=quorum)
        except CryptoError as e:
            msg = (f"anchor 0x{aid.hex()} cannot be built: {e} (the Anchor holds {len(devices)} devices, "
                   f"quorum {quorum})")
            log.error("%s", msg)
            self.stats.failures += 1
            await chain_data.add_alarm(self.outbox, self.chain_id, unit.to_block, "anchor_failed", msg)
            async with self.outbox.transaction() as tx:
                await fwd_store.set_anchor_state(tx, aid, "failed")
            return
        async with self.outbox.transaction(durable=True) as tx:
            tx_id = await self.mainnet.enqueue(tx, to=self.anchor_addr, data=data, purpose="anchor", ref=aid)
            await fwd_store.set_anchor_state(tx, aid, "sending", tx_id=tx_id)
        self.stats.anchors_sent += 1
        log.info("anchor 0x%s (blocks %d..%d) queued for mainnet %d", aid.hex()[:16], unit.from_block,
                 unit.to_block, self.domain.chain_id)

    async def _resolve_failed_anchor(self, aid: bytes, members: bytes, rec: Any) -> bool:
        unit, _ = await self._unit(aid)
        on_chain = anchor_abi.decode_bytes32(
            await eth.eth_call(self.mainnet_rpc, self.anchor_addr, anchor_abi.anchored_root_call(aid)))
        if on_chain == unit.root:
            self.stats.anchored_by_others += 1
            log.info("anchor 0x%s already on mainnet with the same root (first anchor wins)", aid.hex()[:16])
            await self._mark_anchored(aid, members, by_us=False)
            return True
        self.stats.failures += 1
        msg = (f"anchor 0x{aid.hex()} failed ({getattr(rec, 'error', '')}); on-chain root "
               f"0x{on_chain.hex()} vs ours 0x{unit.root.hex()}")
        log.error("%s", msg)
        await chain_data.add_alarm(self.outbox, self.chain_id, unit.to_block, "anchor_failed", msg)
        async with self.outbox.transaction() as tx:
            await fwd_store.set_anchor_state(tx, aid, "failed")
        return True

    async def _mark_anchored(self, aid: bytes, members: bytes, *, by_us: bool) -> None:
        ids = [members[i:i + 32] for i in range(0, len(members), 32)]
        async with self.outbox.transaction() as tx:
            await fwd_store.set_anchor_state(tx, aid, "anchored")
            for cid in ids:
                await cps.set_checkpoint_state(tx, cid, "anchored")
        self.stats.anchored += 1
        self.stats.checkpoints_anchored += len(ids)
        log.info("anchored 0x%s on mainnet (%d checkpoint(s))%s", aid.hex()[:16], len(ids),
                 "" if by_us else " by another device")


