"""Outbox queries for Clique (EIP-225) tracking: snapshots, signer-set changes, alarms.

:func:`write_verdicts` runs inside the :func:`edge.store.chain_data.write_blocks`
transaction, so a block, its snapshot, its signer-set changes and its alarms are stored
together or not at all; :func:`edge.store.chain_data.rollback_to` deletes the snapshots
and changes above the fork point in its transaction (alarms are events and stay).

Snapshots are pruned as they become confirmed: kept are the unconfirmed window, the cursor's,
one per :data:`KEEP_EVERY` blocks and one at every block that changed the set; a rollback
to a block whose snapshot was pruned resumes from the nearest kept one below it and
re-reads the headers in between (:func:`snapshot_at_or_below`).

Addresses are 20 raw bytes; ``voters``/``signers`` columns are the addresses concatenated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.chain.clique import BlockVerdict, CliqueSnapshot, SignerChange, Violation
from edge.store.db import DbTx, Outbox

__all__ = ["KEEP_EVERY", "CliqueWrite", "AlarmRow", "SignerChangeRow", "write_verdicts", "snapshot_at_or_below",
           "signer_changes", "alarms", "in_turn_flags", "SignerSet", "current_signers"]

KEEP_EVERY = 1024
"""A confirmed snapshot is kept at every block number divisible by this (and at every change)."""


def _addr(a: str) -> bytes:
    return bytes.fromhex(a[2:])


def _addrs(xs: Sequence[str]) -> bytes:
    return b"".join(_addr(a) for a in xs)


def _split(b: bytes) -> tuple[bytes, ...]:
    return tuple(b[i:i + 20] for i in range(0, len(b), 20))


@dataclass(frozen=True, slots=True)
class CliqueWrite:
    """The Clique part of one ingest batch, written with its blocks.

    Attributes:
        verdicts: one :class:`BlockVerdict` per written block, in block order (its
            snapshot, changes and violations are stored; ``in_turn`` goes on the block row).
        extra_snapshots: ``(number, hash, snapshot bytes)`` to store besides the verdicts'
            (the bootstrap snapshot below ``ingest.start_block``).
        extra_changes: changes not made by a written block (the ``start`` record).
        extra_alarms: violations not tied to a written block's verdict.
        confirmed_upto: blocks at or below this number are confirmed (prune their snapshots).
    """

    verdicts: Sequence[BlockVerdict]
    extra_snapshots: Sequence[tuple[int, bytes, bytes]] = ()
    extra_changes: Sequence[SignerChange] = ()
    extra_alarms: Sequence[Violation] = ()
    confirmed_upto: int = -1
    violations: tuple[Violation, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "violations",
                           tuple(v for vd in self.verdicts for v in vd.violations) + tuple(self.extra_alarms))


async def write_verdicts(tx: DbTx, chain_id: int, w: CliqueWrite) -> None:
    """Store ``w`` inside the caller's transaction (the one that writes the blocks).

    Sets ``blocks.in_turn`` of each verdict's block (the block rows must be written first),
    inserts the snapshots (replacing a row at the same number), the signer-set changes
    (``seq`` = order within the block), one alarm row per violation (kind = the rule,
    detail = ``str(violation)``, with block hash and signer), then prunes confirmed snapshots.
    """
    now = time.time()
    await tx.executemany(
        "UPDATE blocks SET in_turn=? WHERE chain_id=? AND number=?",
        [(None if v.in_turn is None else int(v.in_turn), chain_id, v.number) for v in w.verdicts])
    snaps = [(n, h, s) for n, h, s in w.extra_snapshots] + [(v.number, v.hash, v.snapshot) for v in w.verdicts]
    await tx.executemany(
        "INSERT OR REPLACE INTO clique_snapshots (chain_id, number, hash, snapshot) VALUES (?,?,?,?)",
        [(chain_id, n, h, s) for n, h, s in snaps])
    changes = list(w.extra_changes) + [c for v in w.verdicts for c in v.changes]
    seq: dict[int, int] = {}
    rows = []
    for c in changes:
        i = seq.get(c.block, 0)
        seq[c.block] = i + 1
        rows.append((chain_id, c.block, c.block_hash, i, c.kind, _addr(c.address) if c.address else None,
                     _addrs(c.votes), _addrs(c.signers)))
    await tx.executemany(
        "INSERT OR REPLACE INTO signer_changes (chain_id, block_number, block_hash, seq, kind, address, voters,"
        " signers) VALUES (?,?,?,?,?,?,?,?)", rows)
    await tx.executemany(
        "INSERT INTO alarms (chain_id, block_number, kind, detail, at, block_hash, signer) VALUES (?,?,?,?,?,?,?)",
        [(chain_id, v.block, v.rule, str(v), now, v.block_hash, _addr(v.signer) if v.signer else None)
         for v in w.violations])
    if snaps and w.confirmed_upto >= 0:
        newest = max(n for n, _, _ in snaps)
        await tx.execute(
            "DELETE FROM clique_snapshots WHERE chain_id=:c AND number<=:f AND number<:n AND number % :k != 0"
            " AND number NOT IN (SELECT block_number FROM signer_changes WHERE chain_id=:c)",
            {"c": chain_id, "f": w.confirmed_upto, "n": newest, "k": KEEP_EVERY})  # type: ignore[arg-type]


async def snapshot_at_or_below(ob: Outbox | DbTx, chain_id: int, number: int) -> tuple[int, bytes, bytes] | None:
    """The newest stored snapshot at or below block ``number``: ``(number, block hash,
    snapshot bytes)``, or None when there is none (tracking starts afresh)."""
    row = await ob.fetchone(
        "SELECT number, hash, snapshot FROM clique_snapshots WHERE chain_id=? AND number<=?"
        " ORDER BY number DESC LIMIT 1", (chain_id, number))
    return (int(row[0]), bytes(row[1]), bytes(row[2])) if row else None


@dataclass(frozen=True, slots=True)
class SignerChangeRow:
    """A stored signer-set change: block, its hash, order in the block, kind, the signer
    added/dropped (20 bytes, None for genesis/checkpoint/start), voters and the sorted set
    after the change (20-byte addresses)."""

    block_number: int
    block_hash: bytes
    seq: int
    kind: str
    address: bytes | None
    voters: tuple[bytes, ...]
    signers: tuple[bytes, ...]


async def signer_changes(ob: Outbox | DbTx, chain_id: int, lo: int, hi: int, *,
                         with_start: bool = True) -> list[SignerChangeRow]:
    """Signer-set changes of blocks ``lo..hi`` (inclusive), in ``(block, seq)`` order.

    ``with_start=False`` leaves out the ``start`` records (the device's own trust anchor
    when it starts after the genesis: not chain data, so never a checkpoint leaf)."""
    rows = await ob.fetchall(
        "SELECT block_number, block_hash, seq, kind, address, voters, signers FROM signer_changes"
        " WHERE chain_id=? AND block_number BETWEEN ? AND ?" + ("" if with_start else " AND kind != 'start'")
        + " ORDER BY block_number, seq", (chain_id, lo, hi))
    return [SignerChangeRow(int(n), bytes(h), int(s), str(k), bytes(a) if a is not None else None,
                            _split(bytes(v)), _split(bytes(g))) for n, h, s, k, a, v, g in rows]


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """A stored alarm: block number (None: not tied to a block), kind, detail, block hash
    and signer (20 bytes) when known."""

    block_number: int | None
    kind: str
    detail: str
    block_hash: bytes | None
    signer: bytes | None


async def alarms(ob: Outbox | DbTx, chain_id: int) -> list[AlarmRow]:
    """Every alarm of ``chain_id``, oldest first."""
    rows = await ob.fetchall(
        "SELECT block_number, kind, detail, block_hash, signer FROM alarms WHERE chain_id=? ORDER BY id",
        (chain_id,))
    return [AlarmRow(None if n is None else int(n), str(k), str(d), bytes(h) if h is not None else None,
                     bytes(s) if s is not None else None) for n, k, d, h, s in rows]


async def in_turn_flags(ob: Outbox | DbTx, chain_id: int) -> dict[int, tuple[bytes | None, bool | None, bool | None]]:
    """``{number: (sealer, seal_ok, in_turn)}`` of every stored block of ``chain_id``."""
    rows = await ob.fetchall("SELECT number, sealer, seal_ok, in_turn FROM blocks WHERE chain_id=?", (chain_id,))
    return {int(n): (bytes(s) if s is not None else None, None if ok is None else bool(ok),
                     None if t is None else bool(t)) for n, s, ok, t in rows}


@dataclass(frozen=True, slots=True)
class SignerSet:
    """The signer set of a Clique chain after one block (EIP-225): ``number`` and ``hash``
    of that block, ``signers`` (EIP-55 addresses, sorted as the chain orders them)."""

    number: int
    hash: bytes
    signers: tuple[str, ...]


async def current_signers(ob: Outbox | DbTx, chain_id: int) -> SignerSet | None:
    """The signer set in the newest stored Clique snapshot of ``chain_id`` (the cursor's),
    or None when there is none (not a Clique chain, or nothing ingested yet).

    Raises: edge.chain.clique.SnapshotError if the stored snapshot cannot be read.
    """
    row = await ob.fetchone(
        "SELECT number, hash, snapshot FROM clique_snapshots WHERE chain_id=? ORDER BY number DESC LIMIT 1",
        (chain_id,))
    if row is None:
        return None
    snap = CliqueSnapshot.from_bytes(bytes(row[2]))
    return SignerSet(int(row[0]), bytes(row[1]), snap.checksummed())
