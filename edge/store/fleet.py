"""The fleet's state in the outbox: attestations and locators read from the local
chain's Attestations contract, the scan cursor, and this device's duty per checkpoint.

Tables (:mod:`edge.store.schema`): ``attestations`` (one row per ``Attested`` event:
checkpoint id, 20-byte device, range, root, 65-byte signature, where it was logged),
``locations`` (``Located`` events), ``fleet_scan`` (next block to scan, per chain),
``fleet_duty`` (per checkpoint: the attest tx, when duty was taken, located/diverged flags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.store.db import DbTx, Outbox

__all__ = [
    "AttestationRow", "LocationRow", "signatures_of", "attesters_of", "next_scan_block", "record_scan",
    "set_attest_tx", "add_duty", "attest_tx_of", "take_duty", "set_located", "locators_of", "rival_roots",
    "is_diverged", "set_diverged", "unlocated_uploads",
]


@dataclass(frozen=True, slots=True)
class AttestationRow:
    """One ``Attested`` event: ``id`` and ``root`` 32 bytes, ``device`` an EIP-55 string,
    ``signature`` 65 bytes (EIP-712 over the checkpoint), where it was logged."""

    id: bytes
    device: str
    chain_id: int
    from_block: int
    to_block: int
    last_block_hash: bytes
    root: bytes
    signature: bytes
    block_number: int
    log_index: int


@dataclass(frozen=True, slots=True)
class LocationRow:
    """One ``Located`` event: checkpoint ``id``, the ``device`` that uploaded, its ``locator``."""

    id: bytes
    device: str
    locator: bytes


async def signatures_of(ob: Outbox, cp_id: bytes) -> list[tuple[str, bytes]]:
    """Every ``(device, signature)`` attested for checkpoint ``cp_id``."""
    return [(str(d), bytes(s)) for d, s in
            await ob.fetchall("SELECT device, signature FROM attestations WHERE id=?", (cp_id,))]


async def attesters_of(ob: Outbox, cp_id: bytes) -> list[tuple[str, int]]:
    """``(device, block number)`` of every attestation of ``cp_id``, in chain order."""
    rows = await ob.fetchall("SELECT device, block_number FROM attestations WHERE id=? ORDER BY block_number, log_index",
                             (cp_id,))
    return [(str(d), int(b)) for d, b in rows]


async def next_scan_block(ob: Outbox, chain_id: int) -> int:
    """The next local block whose Attestations events are unread (0 at first)."""
    row = await ob.fetchone("SELECT next_block FROM fleet_scan WHERE chain_id=?", (chain_id,))
    return int(row[0]) if row else 0


async def record_scan(ob: Outbox, chain_id: int, attested: Sequence[AttestationRow], located: Sequence[LocationRow],
                      through: int) -> None:
    """Store the events of a scan and move the scan cursor past block ``through``, in ONE
    transaction (an event is stored once: the cursor moves with the data)."""
    async with ob.transaction() as tx:
        for a in attested:
            await tx.execute(
                "INSERT OR IGNORE INTO attestations (id, device, chain_id, from_block, to_block, last_block_hash, root,"
                " signature, block_number, log_index) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (a.id, a.device, a.chain_id, a.from_block, a.to_block, a.last_block_hash, a.root, a.signature,
                 a.block_number, a.log_index))
        for lo in located:
            await tx.execute("INSERT OR IGNORE INTO locations (id, device, locator) VALUES (?,?,?)",
                             (lo.id, lo.device, lo.locator))
        await tx.execute("INSERT INTO fleet_scan (chain_id, next_block) VALUES (?,?) ON CONFLICT(chain_id)"
                         " DO UPDATE SET next_block=excluded.next_block", (chain_id, through + 1))


async def set_attest_tx(tx: DbTx, cp_id: bytes, tx_id: int) -> None:
    """Remember the tx that carries this device's attestation of ``cp_id``."""
    await tx.execute("INSERT OR REPLACE INTO fleet_duty (id, attest_tx) VALUES (?,?)", (cp_id, tx_id))


async def add_duty(tx: DbTx, cp_id: bytes) -> None:
    """A duty row for checkpoint ``cp_id`` (no attest tx of its own: it is attested in a batch)."""
    await tx.execute("INSERT OR IGNORE INTO fleet_duty (id) VALUES (?)", (cp_id,))


async def attest_tx_of(ob: Outbox, cp_id: bytes) -> int | None:
    """The id of the tx carrying this device's attestation of ``cp_id``, or None."""
    row = await ob.fetchone("SELECT attest_tx FROM fleet_duty WHERE id=?", (cp_id,))
    return int(row[0]) if row and row[0] is not None else None


async def take_duty(tx: DbTx, cp_id: bytes, now: float) -> None:
    """Record that this device took the sync duty of ``cp_id`` at wall time ``now``."""
    await tx.execute("UPDATE fleet_duty SET took_at=? WHERE id=?", (now, cp_id))


async def set_located(tx: DbTx, cp_id: bytes) -> None:
    """The locator of ``cp_id`` is published (or reused): do not publish it again."""
    await tx.execute("UPDATE fleet_duty SET located=1 WHERE id=?", (cp_id,))


async def locators_of(ob: Outbox, cp_id: bytes) -> list[bytes]:
    """Locators other devices published for ``cp_id``."""
    return [bytes(r[0]) for r in await ob.fetchall("SELECT locator FROM locations WHERE id=?", (cp_id,))]


async def rival_roots(ob: Outbox, chain_id: int, from_block: int, to_block: int, cp_id: bytes) -> list[tuple[bytes, bytes, int]]:
    """Other checkpoints attested for the same range: ``(id, root, distinct devices)``."""
    rows = await ob.fetchall(
        "SELECT id, root, count(DISTINCT device) FROM attestations WHERE chain_id=? AND from_block=? AND to_block=?"
        " AND id != ? GROUP BY id", (chain_id, from_block, to_block, cp_id))
    return [(bytes(i), bytes(r), int(n)) for i, r, n in rows]


async def is_diverged(ob: Outbox, cp_id: bytes) -> bool:
    """True once a divergence of ``cp_id`` was raised."""
    row = await ob.fetchone("SELECT diverged FROM fleet_duty WHERE id=?", (cp_id,))
    return bool(row and row[0])


async def set_diverged(ob: Outbox, cp_id: bytes) -> None:
    """Mark ``cp_id`` diverged (the alarm is raised once)."""
    async with ob.transaction() as tx:
        await tx.execute("UPDATE fleet_duty SET diverged=1 WHERE id=?", (cp_id,))


async def unlocated_uploads(ob: Outbox, chain_id: int) -> list[tuple[bytes, bytes]]:
    """``(checkpoint id, locator)`` of checkpoints this device uploaded whose locator is
    not yet published on the local chain."""
    rows = await ob.fetchall(
        "SELECT c.id, c.locator FROM checkpoints c JOIN fleet_duty f ON f.id = c.id"
        " WHERE c.chain_id=? AND f.located=0 AND c.locator IS NOT NULL"
        " AND c.state IN ('uploaded', 'anchoring', 'anchored')", (chain_id,))
    return [(bytes(i), bytes(loc)) for i, loc in rows]
