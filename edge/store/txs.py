"""The outbox's transactions to public chains: intents, signed attempts, nonce counters.

Every statement the tx sender (:mod:`edge.forward.txsender`) runs lives here. Tables
(:mod:`edge.store.schema`): ``txs`` (one row per intent, its state and receipt),
``tx_attempts`` (every signed payload of an intent: a fee bump adds one, all with the
same nonce), ``nonces`` (the persistent per ``(chain, sender)`` counter). Times are wall
seconds (float) given by the caller's clock; addresses 20 bytes, hashes 32 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.errors import OutboxError
from edge.store.db import DbTx, Outbox

__all__ = [
    "Account", "AttemptRow", "IntentRow", "TxRow",
    "insert_intent", "get_tx", "count_in_states", "rows_in_states", "attempts",
    "set_failed", "set_sent_back", "set_mined", "set_confirmed", "set_error", "add_attempt",
    "sign_intent", "raise_counter", "mark_sent", "requeue", "fail_for_size",
]


@dataclass(frozen=True, slots=True)
class Account:
    """One sender on one chain: the key of every query here (``chain_id``, 20-byte ``sender``)."""

    chain_id: int
    sender: bytes


@dataclass(frozen=True, slots=True)
class TxRow:
    """A tx as :func:`get_tx` reads it (see :class:`edge.forward.txsender.TxRecord`)."""

    id: int
    chain_id: int
    nonce: int | None
    purpose: str
    ref: bytes | None
    state: str
    mined_block: int | None
    status: int | None
    error: str | None
    hash: bytes | None
    attempts: int


@dataclass(frozen=True, slots=True)
class IntentRow:
    """The fields of a tx the sender needs to sign, send and track it."""

    id: int
    to: bytes
    data: bytes
    value: int
    gas: int | None
    nonce: int | None
    state: str
    mined_block: int | None
    mined_hash: bytes | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One signed payload of a tx: fees in wei/gas, ``sent_block`` the head when sent."""

    tx_id: int
    attempt: int
    nonce: int
    hash: bytes
    raw: bytes
    max_fee: int
    prio: int
    sent_block: int | None


async def insert_intent(tx: DbTx, acct: Account, *, purpose: str, ref: bytes | None, to: bytes, data: bytes,
                        value: int, gas: int | None, now: float) -> int:
    """Insert a ``queued`` intent inside the caller's transaction; returns its id.
    Raises OutboxError when SQLite gives no row id."""
    await tx.execute(
        "INSERT INTO txs (chain_id, sender, purpose, ref, to_addr, data, value, gas, nonce,"
        " state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,NULL,'queued',?,?)",
        (acct.chain_id, acct.sender, purpose, ref, to, data, value, gas, now, now))
    row = await tx.fetchone("SELECT last_insert_rowid()")
    if row is None:
        raise OutboxError("tx intent: no row id after insert")
    return int(row[0])


async def get_tx(ob: Outbox, acct: Account, tx_id: int) -> TxRow | None:
    """The tx ``tx_id`` of this account with its attempt count and the hash that matters (the
    mined attempt's, else the latest's), or None."""
    row = await ob.fetchone(
        "SELECT id, chain_id, nonce, purpose, ref, state, mined_block, status, error, mined_tx,"
        " (SELECT COUNT(*) FROM tx_attempts a WHERE a.tx_id = txs.id),"
        " (SELECT hash FROM tx_attempts a WHERE a.tx_id = txs.id ORDER BY attempt DESC LIMIT 1)"
        " FROM txs WHERE id = ? AND chain_id = ? AND sender = ?", (tx_id, acct.chain_id, acct.sender))
    if row is None:
        return None
    (i, cid, nonce, purpose, ref, state, mblock, status, error, mined_tx, n_att, latest_attempt_hash) = row
    return TxRow(int(i), int(cid), nonce, purpose, ref, state, mblock, status, error,
                 mined_tx if mined_tx is not None else latest_attempt_hash, int(n_att))


async def count_in_states(ob: Outbox, acct: Account, states: Sequence[str], *, negate: bool = False) -> int:
    """How many of this account's txs are in ``states`` (or, with ``negate``, in none of them)."""
    marks = ",".join("?" * len(states))
    op = "NOT IN" if negate else "IN"
    row = await ob.fetchone(f"SELECT COUNT(*) FROM txs WHERE chain_id=? AND sender=? AND state {op} ({marks})",
                            (acct.chain_id, acct.sender, *states))
    return int(row[0]) if row else 0


async def rows_in_states(ob: Outbox, acct: Account, states: Sequence[str], limit: int = -1) -> list[IntentRow]:
    """This account's txs in ``states``: intents in id order, others in nonce order
    (committed rows only: reads go to the outbox's read connection)."""
    marks = ",".join("?" * len(states))
    order = "id" if tuple(states) == ("queued",) else "nonce, id"
    rows = await ob.fetchall(
        f"SELECT id, to_addr, data, value, gas, nonce, state, mined_block, mined_hash FROM txs"
        f" WHERE chain_id=? AND sender=? AND state IN ({marks}) ORDER BY {order} LIMIT ?",
        (acct.chain_id, acct.sender, *states, limit))
    return [IntentRow(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]


async def attempts(ob: Outbox, tx_id: int) -> list[AttemptRow]:
    """Every signed attempt of tx ``tx_id``, oldest first."""
    rows = await ob.fetchall(
        "SELECT tx_id, attempt, nonce, hash, raw, max_fee, max_priority_fee, sent_block"
        " FROM tx_attempts WHERE tx_id=? ORDER BY attempt", (tx_id,))
    return [AttemptRow(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], int(r[5]), int(r[6]), r[7]) for r in rows]


async def _write(ob: Outbox, sql: str, params: Sequence[Any]) -> None:
    async with ob.transaction() as tx:
        await tx.execute(sql, params)


async def set_failed(ob: Outbox, tx_id: int, reason: str, now: float, *, only_queued: bool = True,
                     mined: tuple[int, bytes, bytes] | None = None) -> None:
    """Mark tx ``tx_id`` ``failed`` with ``reason``: an intent that can never be sent
    (``only_queued``), or, with ``mined = (block, block hash, tx hash)``, a tx that
    reverted on chain."""
    if mined is not None:
        await _write(ob, "UPDATE txs SET state='failed', mined_block=?, mined_hash=?, mined_tx=?, status=0,"
                     " error=?, updated_at=? WHERE id=?", (*mined, reason, now, tx_id))
    else:
        await _write(ob, "UPDATE txs SET state='failed', error=?, updated_at=? WHERE id=?"
                     + (" AND state='queued'" if only_queued else ""), (reason, now, tx_id))


async def set_sent_back(ob: Outbox, tx_id: int, now: float) -> None:
    """A ``mined`` tx whose receipt vanished in a reorg goes back to ``sent``."""
    await _write(ob, "UPDATE txs SET state='sent', mined_block=NULL, mined_hash=NULL, mined_tx=NULL,"
                 " status=NULL, updated_at=? WHERE id=? AND state='mined'", (now, tx_id))


async def set_mined(ob: Outbox, tx_id: int, block: int, block_hash: bytes, tx_hash: bytes, status: int,
                    now: float) -> None:
    """Record the receipt of tx ``tx_id``: mined in ``block`` (32-byte ``block_hash``)."""
    await _write(ob, "UPDATE txs SET state='mined', mined_block=?, mined_hash=?, mined_tx=?, status=?,"
                 " error=NULL, updated_at=? WHERE id=?", (block, block_hash, tx_hash, status, now, tx_id))


async def set_confirmed(ob: Outbox, tx_id: int, block_hash: bytes, now: float) -> None:
    """``mined`` -> ``confirmed``, only while it is still mined in ``block_hash``."""
    await _write(ob, "UPDATE txs SET state='confirmed', updated_at=? WHERE id=? AND state='mined' AND mined_hash=?",
                 (now, tx_id, block_hash))


async def set_error(ob: Outbox, tx_id: int, error: str, now: float) -> None:
    """Keep the node's last refusal of tx ``tx_id`` (at most 500 characters)."""
    await _write(ob, "UPDATE txs SET error=?, updated_at=? WHERE id=?", (error[:500], now, tx_id))


async def add_attempt(ob: Outbox, att: AttemptRow, now: float) -> None:
    """Store a fee-bumped attempt durably (fsynced) *before* it is broadcast."""
    async with ob.transaction(durable=True) as tx:
        await tx.execute(
            "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
            " max_priority_fee, sent_block, created_at) VALUES (?,?,?,?,?,?,?,NULL,?)",
            (att.tx_id, att.attempt, att.nonce, att.hash, att.raw, att.max_fee, att.prio, now))


async def sign_intent(ob: Outbox, acct: Account, tx_id: int, gas: int, sign: Any, now: float) -> AttemptRow | None:
    """Allocate the next nonce to intent ``tx_id``, sign it and store the signed bytes,
    in ONE durable transaction, before any broadcast.

    Args: sign: ``sign(nonce) -> (raw bytes, tx hash, max_fee, prio)``, called inside the
        transaction (it must not do I/O). now: wall seconds.
    Returns: the stored attempt, or None when the intent is no longer ``queued``.
    Raises: OutboxError when the nonce counter is missing.
    """
    async with ob.transaction(durable=True) as tx:
        cur = await tx.fetchone("SELECT state FROM txs WHERE id = ?", (tx_id,))
        if cur is None or cur[0] != "queued":
            return None  # changed under us (or rolled back by its writer)
        nrow = await tx.fetchone("SELECT next_nonce FROM nonces WHERE chain_id=? AND sender=?",
                                 (acct.chain_id, acct.sender))
        if nrow is None:
            raise OutboxError(f"tx sender: nonce counter of chain {acct.chain_id} missing")
        nonce = int(nrow[0])
        raw, txhash, max_fee, prio = sign(nonce)
        last = await tx.fetchone("SELECT COALESCE(MAX(attempt), 0) FROM tx_attempts WHERE tx_id=?", (tx_id,))
        attempt = int(last[0]) + 1 if last else 1
        await tx.execute("UPDATE txs SET nonce=?, gas=?, state='signed', error=NULL, updated_at=? WHERE id=?",
                         (nonce, gas, now, tx_id))
        await tx.execute(
            "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
            " max_priority_fee, sent_block, created_at) VALUES (?,?,?,?,?,?,?,NULL,?)",
            (tx_id, attempt, nonce, txhash, raw, max_fee, prio, now))
        await tx.execute("UPDATE nonces SET next_nonce=? WHERE chain_id=? AND sender=?",
                         (nonce + 1, acct.chain_id, acct.sender))
    return AttemptRow(tx_id, attempt, nonce, txhash, raw, max_fee, prio, None)


async def raise_counter(ob: Outbox, acct: Account, chain_pending: int, *, allow_lower: bool) -> int:
    """Set the nonce counter to ``max(chain_pending, 1 + our highest signed nonce)``, and
    never below its current value unless ``allow_lower``; returns the new value
    (omni/tokenbridge#526: a lagging node's ``pending`` count never lowers it)."""
    async with ob.transaction() as tx:
        ours = await tx.fetchone("SELECT MAX(nonce) FROM txs WHERE chain_id=? AND sender=? AND nonce IS NOT NULL",
                                 (acct.chain_id, acct.sender))
        floor = int(ours[0]) + 1 if ours and ours[0] is not None else 0
        cur = await tx.fetchone("SELECT next_nonce FROM nonces WHERE chain_id=? AND sender=?",
                                (acct.chain_id, acct.sender))
        new = max(chain_pending, floor)
        if cur is not None and not allow_lower:
            new = max(new, int(cur[0]))
        await tx.execute("INSERT INTO nonces (chain_id, sender, next_nonce) VALUES (?,?,?) ON CONFLICT"
                         " (chain_id, sender) DO UPDATE SET next_nonce=excluded.next_nonce",
                         (acct.chain_id, acct.sender, new))
    return new


async def mark_sent(ob: Outbox, tx_id: int, attempt: int, head: int, now: float) -> None:
    """The node accepted attempt ``attempt`` of tx ``tx_id`` at head ``head``."""
    async with ob.transaction() as tx:
        await tx.execute("UPDATE tx_attempts SET sent_block=? WHERE tx_id=? AND attempt=?", (head, tx_id, attempt))
        await tx.execute("UPDATE txs SET state='sent', updated_at=? WHERE id=? AND state IN ('signed', 'sent')",
                         (now, tx_id))


async def requeue(ob: Outbox, tx_id: int, reason: str, now: float) -> None:
    """Send a signed or sent tx back to ``queued`` (its nonce was used elsewhere)."""
    await _write(ob, "UPDATE txs SET state='queued', nonce=NULL, error=?, updated_at=? WHERE id=?"
                 " AND state IN ('signed', 'sent')", (reason, now, tx_id))


async def fail_for_size(ob: Outbox, acct: Account, tx_id: int, att: AttemptRow, reason: str,
                        sign_filler: Any, now: float) -> AttemptRow | None:
    """Fail tx ``tx_id`` (refused for size: it can never be included) and free its nonce,
    in ONE durable transaction: when a later tx of ours holds a nonce, a 0-value
    self-transfer (21,000 gas, same fees) is stored signed at this nonce so no gap wedges
    the later ones; it is returned for broadcast. ``sign_filler(filler_id) -> (raw, hash)``
    signs it inside the transaction (no I/O). Returns None when the nonce is simply free."""
    async with ob.transaction(durable=True) as tx:
        later = await tx.fetchone("SELECT count(*) FROM txs WHERE chain_id=? AND sender=? AND nonce > ?",
                                  (acct.chain_id, acct.sender, att.nonce))
        await tx.execute("UPDATE txs SET state='failed', nonce=NULL, error=?, updated_at=? WHERE id=?"
                         " AND state IN ('signed', 'sent')", (reason, now, tx_id))
        if not (later and later[0]):
            return None
        await tx.execute(
            "INSERT INTO txs (chain_id, sender, purpose, ref, to_addr, data, value, gas, nonce,"
            " state, created_at, updated_at) VALUES (?,?,'nonce-filler',?,?,x'',0,21000,?,'signed',?,?)",
            (acct.chain_id, acct.sender, tx_id.to_bytes(8, "big"), acct.sender, att.nonce, now, now))
        rid = await tx.fetchone("SELECT last_insert_rowid()")
        if rid is None:
            raise OutboxError("tx sender: no row id after insert")
        raw, txhash = sign_filler(int(rid[0]))
        await tx.execute(
            "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
            " max_priority_fee, sent_block, created_at) VALUES (?,1,?,?,?,?,?,NULL,?)",
            (int(rid[0]), att.nonce, txhash, raw, att.max_fee, att.prio, now))
    return AttemptRow(int(rid[0]), 1, att.nonce, txhash, raw, att.max_fee, att.prio, None)
