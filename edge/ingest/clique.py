"""The Clique (EIP-225) step of ingest: the signer-set snapshot, carried with the blocks.

:class:`CliqueFollower` turns each linked batch of headers into a
:class:`edge.store.clique.CliqueWrite` (one verdict per block: sealer, authorized,
in turn, the snapshot after it, the signer-set changes it made, the rules it broke), which
the stage writes in the same transaction as the blocks, and after the commit reports
every violation (:meth:`CliqueFollower.report`: a log line naming block, rule and signer,
counters that drive the metrics and the alert LED; the alarm row is already stored).

Where the snapshot before a batch comes from:

* from block 0: none; the genesis' extraData gives the initial set;
* the cursor's block: the snapshot kept in memory, or the one stored for it; if that
  one was pruned, the newest stored one below it, replayed over the headers in between;
* starting after the genesis (``ingest.start_block = S > 0``, or an outbox that holds
  blocks but no snapshot): the epoch checkpoint ``E = floor((S-1)/epoch)·epoch`` at or
  below ``S-1`` states the full set and resets the votes (EIP-225), so the snapshot of
  ``S-1`` is rebuilt exactly from ``E``'s list and the headers ``E+1..S-1`` (at most one
  epoch of headers, read once). Every device and the auditor's re-read (``edge verify
  --local``) then derive the same signer-set changes whatever their start block; the
  set in force at ``S-1`` is stored as a ``start`` record (the device's trust anchor, not
  chain data: never a checkpoint leaf). Only the recent-signer rule is blind for the
  first ``floor(N/2)`` blocks after ``E``.

``poa.engine = "auto"`` follows a chain as Clique when its genesis has the Clique
layout, or its first block read carries a Clique seal (:func:`edge.chain.poa.detect_engine`),
or the outbox already holds a snapshot for it; otherwise the stage's generic seal check
(AuRa, or off on a dev chain, said once) applies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from edge.chain.clique import (
    BlockVerdict,
    CliqueConfig,
    CliqueSnapshot,
    SignerChange,
    SnapshotError,
    Violation,
    check_expected,
    follow,
    signers_from_extra,
)
from edge.chain.poa import detect_engine
from edge.config import Config
from edge.errors import BlockChanged, SealError
from edge.ingest.adapter import ChainReader
from edge.store import clique as store
from edge.store.chain_data import Cursor
from edge.store.db import Outbox

__all__ = ["CliqueFollower", "is_clique_genesis", "verdict_seal"]

log = logging.getLogger("edge.ingest")

_VANITY, _SEAL, _ADDRESS = 32, 65, 20


def is_clique_genesis(header: Mapping[str, Any]) -> bool:
    """Whether block 0's extraData is ``vanity(32) ‖ signers(20·N, N >= 1) ‖ 65 zero bytes``
    (EIP-225). Never raises."""
    v = header.get("extraData")
    try:
        extra = bytes.fromhex(v[2:]) if isinstance(v, str) else bytes(v) if isinstance(v, (bytes, bytearray)) else b""
    except ValueError:
        return False
    body = len(extra) - _VANITY - _SEAL
    return body > 0 and body % _ADDRESS == 0 and extra[-_SEAL:] == bytes(_SEAL)


class CliqueFollower:
    """Follows the Clique signer set of one chain across batches, restarts and reorgs.

    Args:
        cfg: the agent config (``poa.engine``, ``poa.authorities`` = the expected set or
            empty, ``poa.period_s``, ``poa.epoch``, ``ingest.start_block``).
        outbox: the open outbox (snapshots are read from it; writes go through the stage).

    Attributes:
        active: True once the chain is followed as Clique (always with ``engine = "clique"``;
            decided at the first batch with ``"auto"``); False: not a Clique chain.
    """

    def __init__(self, cfg: Config, outbox: Outbox) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.config = CliqueConfig(cfg.poa.period_s, cfg.poa.epoch)
        self.expected = tuple(cfg.poa.authorities)
        self.active: bool | None = True if cfg.poa.engine == "clique" else None if cfg.poa.engine == "auto" else False
        self._snap: CliqueSnapshot | None = None

    async def decide(self, chain_id: int, first: Mapping[str, Any]) -> bool:
        """With ``engine = "auto"``: decide once, from the first header of the first batch,
        whether the chain is Clique (module doc). Returns :attr:`active`."""
        if self.active is None:
            if await store.snapshot_at_or_below(self.outbox, chain_id, 2**62) is not None:
                self.active = True
            elif first.get("number") in ("0x0", 0):
                self.active = is_clique_genesis(first)
            else:
                try:
                    self.active = detect_engine(first) == "clique"
                except SealError:
                    self.active = False
            if self.active:
                log.info("chain %d is followed as Clique (EIP-225): period %d s, epoch %d, signer set %s",
                         chain_id, self.config.period, self.config.epoch,
                         "expected " + ", ".join(self.expected) if self.expected else "taken from the chain")
        return bool(self.active)

    async def step(self, reader: ChainReader, chain_id: int, cur: Cursor | None, nxt: int,
                   headers: Sequence[Mapping[str, Any]], confirmed_upto: int) -> store.CliqueWrite:
        """The Clique verdicts of the linked batch ``headers`` (blocks ``nxt..``).

        Args:
            reader: the open chain reader (for replays and the bootstrap).
            cur: the cursor (None before the first block); ``headers[0]`` links to it.
            nxt: the first block of the batch.
            confirmed_upto: blocks at or below it are confirmed (their snapshots may be pruned).

        Raises:
            BlockChanged: the chain changed while stored headers were replayed (retry).
            ChainError: from the node.
        """
        extra_snaps: list[tuple[int, bytes, bytes]] = []
        extra_changes: list[SignerChange] = []
        extra_alarms: list[Violation] = []
        parent: CliqueSnapshot | None
        if nxt == 0:
            parent = None
        elif cur is not None and self._snap is not None and (self._snap.number, self._snap.hash) == (
                cur.block_number, cur.block_hash):
            parent = self._snap
        else:
            parent = await self._stored(reader, chain_id, cur) if cur is not None else None
            if parent is None:
                parent = await self._bootstrap(reader, nxt - 1)
                start = SignerChange(parent.number, parent.hash, "start", None, (), parent.checksummed())
                extra_snaps.append((parent.number, parent.hash, parent.to_bytes()))
                extra_changes.append(start)
                mismatch = check_expected(parent, self.expected)
                if mismatch is not None:
                    extra_alarms.append(mismatch)
                log.info("Clique tracking starts after block %d with %d signer(s): %s", parent.number,
                         len(parent.signers), ", ".join(parent.checksummed()))
        try:
            snap, verdicts = follow(parent, headers, self.config, self.expected)
        except SnapshotError as e:  # the stage hands a linked batch; a mismatch is a race
            raise BlockChanged("eth_getBlockByNumber", f"Clique snapshot does not match the batch: {e}") from e
        self._snap = snap  # used next step only if the cursor then matches it (the write committed)
        return store.CliqueWrite(verdicts, extra_snaps, extra_changes, extra_alarms, confirmed_upto)

    async def _stored(self, reader: ChainReader, chain_id: int, cur: Cursor) -> CliqueSnapshot | None:
        """The snapshot of the cursor's block from the outbox (replaying headers over a pruned
        stretch); None when the outbox holds none at or below it."""
        row = await store.snapshot_at_or_below(self.outbox, chain_id, cur.block_number)
        if row is None:
            return None
        number, _, blob = row
        snap = CliqueSnapshot.from_bytes(blob)
        if number < cur.block_number:
            snap = await self._replay(reader, snap, cur.block_number)
        if snap.hash != cur.block_hash:
            raise BlockChanged("eth_getBlockByNumber", f"Clique replay to block {cur.block_number} ended on 0x{snap.hash.hex()[:16]}.., "
                               f"the outbox holds 0x{cur.block_hash.hex()[:16]}..")
        return snap

    async def _replay(self, reader: ChainReader, snap: CliqueSnapshot, upto: int) -> CliqueSnapshot:
        lo = snap.number + 1
        headers = await reader.headers(lo, upto)
        if len(headers) != upto - lo + 1:
            raise BlockChanged("eth_getBlockByNumber", f"node has no block {lo + len(headers)} to replay the Clique snapshot up to {upto}")
        try:
            for h in headers:
                snap, _ = snap.apply(h)
        except SnapshotError as e:
            raise BlockChanged("eth_getBlockByNumber", f"chain changed during the Clique replay: {e}") from e
        return snap

    async def _bootstrap(self, reader: ChainReader, upto: int) -> CliqueSnapshot:
        """The exact snapshot after block ``upto`` from the epoch checkpoint at or below it."""
        epoch_block = upto // self.config.epoch * self.config.epoch
        got = await reader.headers(epoch_block, epoch_block)
        if not got:
            raise BlockChanged("eth_getBlockByNumber", f"node has no block {epoch_block} (the Clique epoch checkpoint to start from)")
        head = got[0]
        if epoch_block == 0:
            snap, vs = CliqueSnapshot.genesis(head, self.config)
            for v in vs:
                log.error("Clique: %s", v)
        else:
            try:
                listed: Sequence[str] = signers_from_extra(bytes.fromhex(str(head.get("extraData", "0x"))[2:]))
            except (SealError, ValueError) as e:
                listed = ()
                log.error("Clique: block %d (epoch checkpoint) states no signer list (%s)", epoch_block, e)
            if not listed:
                listed = self.expected
                log.warning("Clique: starting from poa.authorities (%d signer(s)) at block %d", len(listed),
                            epoch_block)
            snap = CliqueSnapshot.start(head, listed, self.config)
        if upto > epoch_block:
            log.info("Clique: replaying headers %d..%d from the epoch checkpoint to start at block %d",
                     epoch_block + 1, upto, upto + 1)
            snap = await self._replay(reader, snap, upto)
        return snap

    def report(self, w: store.CliqueWrite, stats: Any) -> None:
        """After the commit: log every violation and signer-set change, feed the counters.

        ``stats`` is the stage's :class:`edge.ingest.stage.IngestStats` (``chain_alarms``,
        ``last_alarm``, ``foreign_sealers``, ``signer_changes``, ``signers``)."""
        for v in w.violations:
            stats.chain_alarms += 1
            stats.last_alarm = str(v)
            if v.rule == "unauthorized_signer":
                stats.foreign_sealers += 1
            log.error("Clique rule broken: %s", v)
        for vd in w.verdicts:
            for c in vd.changes:
                stats.signer_changes += 1
                log.info("Clique signer set at block %d: %s%s -> %d signer(s): %s", c.block, c.kind,
                         f" {c.address} (votes of {', '.join(c.votes)})" if c.address else "", len(c.signers),
                         ", ".join(c.signers))
        if self._snap is not None:
            stats.signers = len(self._snap.signers)


def verdict_seal(v: BlockVerdict) -> tuple[bytes | None, bool | None]:
    """``(20-byte sealer or None, authorized or None)`` for the block row."""
    return (bytes.fromhex(v.sealer[2:]) if v.sealer else None), v.authorized
