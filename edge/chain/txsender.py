"""A crash-safe transaction sender for the public chains (testnets, mainnet).

Intent, then sign, then send. The forward stage calls :meth:`TxSender.enqueue` inside
its own outbox transaction, so a business state change and the transaction that carries
it commit together (an *intent*: state ``queued``, no nonce). :meth:`TxSender.step` then
moves each intent through::

    queued -> signed -> sent -> mined -> confirmed        (or -> failed)

- ``signed``: nonce allocated from a persistent per ``(chain, sender)`` counter, EIP-1559
  (type 2, EIP-2718 envelope) transaction signed with eth-account, and nonce, fees, raw
  bytes and hash written in ONE durable (fsynced) outbox transaction *before* the
  broadcast. A restart re-broadcasts those exact bytes; it never signs a second payload
  for the same intent, so ``kill -9`` at any instant gives no duplicate and no nonce gap.
- ``sent``: the node accepted it (``eth_sendRawTransaction``; "already known" counts).
- ``mined``: a receipt of one of its attempts exists (a fee-bumped tx has several attempts,
  all with the same nonce and payload; any of them may be the one mined). A receipt with
  status 0 (reverted on chain) makes the tx ``failed``.
- ``confirmed``: ``head - mined_block >= confirmations`` (the convention of
  ``ingest.confirmations``) and the receipt is still in the same block (same block hash).
  A receipt that vanished in a reorg sends the tx back to ``sent`` and the latest raw
  bytes are re-broadcast.
- ``failed``: ``eth_estimateGas`` reverted (e.g. an anchor already anchored by another
  device; the decoded revert reason is kept in ``error``), or the tx reverted on chain.
  Reported, never retried.

Fees (EIP-1559): ``max_priority_fee = eth_maxPriorityFeePerGas`` (or the median reward
of ``eth_feeHistory``), ``max_fee = min(2 * next_base_fee + priority, max_fee_cap_wei)``.
When even ``next_base_fee + priority`` exceeds the cap, sending waits (one warning). A
tx not mined ``stuck_blocks`` blocks after it was sent is re-signed with the same nonce
and payload and both fees raised by ``bump_percent`` (12.5 %, above geth's 10 % price
bump rule) or to the market price if higher, stored as a new attempt, then broadcast.

Errors while broadcasting:

- "nonce too low": first look for a receipt (or a mined copy) of every attempt; if one
  was mined the tx is ``mined``. Otherwise the nonce was consumed outside this sender: the
  counter is reset from the chain's ``pending`` count (never below our own in-flight
  nonces) and the intent is re-queued for a new nonce (logged).
- "replacement transaction underpriced": bump again on the next pass.
- "insufficient funds" (and a balance below ``gas * max_fee + value`` before signing):
  one warning, :attr:`TxSender.paused_low_balance` is set, sending pauses; nothing is
  lost and it resumes once the balance suffices.
- Connection failures raise :class:`edge.errors.NodeUnavailable` out of :meth:`step`;
  :meth:`TxSender.run` backs off and retries, then re-broadcasts every in-flight tx
  (a restarted node may have lost its pool).

Lessons of TokenBridge's oracle sender, and how this module avoids them:

- omni/tokenbridge#98 ("nonce too low" after the pool dropped a tx, or after a manual
  tx with the same key, needed an operator restart): on "nonce too low" the nonce is
  re-read from the chain (``pending``) and the persistent counter reset automatically,
  but only after checking that none of the tx's attempts was mined, so recovery never
  sends a payload twice.
- omni/tokenbridge#514 (a re-sent stuck tx answered "already known" and was dropped
  from the resend queue; a later tx reused its nonce and the message was lost): "already
  known" / "known transaction" / "already imported" count as sent; a tx stays tracked
  in the outbox until a receipt is confirmed; the counter only advances inside the
  durable transaction that stores the signed bytes, and ``UNIQUE(chain_id, sender,
  nonce)`` makes it impossible for two of our payloads to share a nonce.
- omni/tokenbridge#526 (an unsynchronised node reports a too-low ``pending`` nonce, the
  tx silently disappears): the counter is (re)initialised to ``max(node's pending count,
  1 + highest nonce we ever signed)`` and never lowered by a node's answer; a tx that
  never gets mined is re-broadcast or fee-bumped from its stored bytes instead of being
  forgotten.
- (also #463/#545: "replacement transaction underpriced" loops): each retry bumps by
  ``bump_percent`` over our previous attempt, once per pass, never a hot loop.

Specs: EIP-1559 (fee market), EIP-2718/EIP-2930 (typed tx envelope), EIP-155 (chain id
in signatures), JSON-RPC ``eth_*`` methods as served by geth/anvil.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

from edge.errors import (
    ChainError,
    ConfigError,
    EdgeError,
    NodeUnavailable,
    OutboxError,
    OutboxFull,
    RpcError,
    RpcProtocolError,
)
from edge.chain.http_rpc import HttpRpc
from edge.forward.uploads import MAX_TX_CALLDATA, is_size_refusal
from edge.seal.keys import DeviceKey
from edge.store.db import Outbox, Tx

__all__ = ["TX_STATES", "TxRecord", "TxSender", "TxState"]

log = logging.getLogger("edge.txsender")

TxState = Literal["queued", "signed", "sent", "mined", "confirmed", "failed"]
"""Life cycle of a tx in the outbox (``failed`` is terminal, like ``confirmed``)."""
TX_STATES: Final[tuple[TxState, ...]] = ("queued", "signed", "sent", "mined", "confirmed", "failed")
"""Every :data:`TxState`, in life-cycle order."""

_ORDER: Final[dict[str, int]] = {s: i for i, s in enumerate(TX_STATES[:5])}
_IN_FLIGHT: Final = ("signed", "sent")
_MAX_INT64: Final = 2**63 - 1
_MAX_PER_PASS: Final = 64  # new intents signed per pass (keeps a pass short)
_GAS_MARGIN: Final = 1.2  # on top of eth_estimateGas
_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR: Final = bytes.fromhex("4e487b71")  # Panic(uint256)
_TRAILING_HEX: Final = re.compile(r"\s(0x(?:[0-9a-fA-F]{2})+)\s*$")


@dataclass(frozen=True, slots=True)
class TxRecord:
    """One tx of the outbox, as :meth:`TxSender.get` reads it.

    Attributes:
        id: outbox tx id (returned by :meth:`TxSender.enqueue`).
        chain_id: EIP-155 chain id it is sent on.
        nonce: account nonce, None while ``queued``.
        purpose: free label given at enqueue (``"anchor"``, ``"chunk"``, ...).
        ref: caller's reference bytes (e.g. a checkpoint or anchor id), or None.
        state: one of :data:`TX_STATES`.
        hash: 32-byte tx hash: the mined attempt's when mined, else the latest
            attempt's; None while ``queued``.
        mined_block: block number of the receipt, or None.
        status: receipt status (1 ok, 0 reverted), or None.
        attempts: number of signed attempts (fee bumps add attempts).
        error: why it failed (revert reason) or the last broadcast problem, or None.
    """

    id: int
    chain_id: int
    nonce: int | None
    purpose: str
    ref: bytes | None
    state: TxState
    hash: bytes | None
    mined_block: int | None
    status: int | None
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class _Fees:
    base: int  # base fee of the next block, wei/gas
    prio: int  # suggested priority fee, wei/gas


@dataclass(frozen=True, slots=True)
class _Attempt:
    tx_id: int
    attempt: int
    nonce: int
    hash: bytes
    raw: bytes
    max_fee: int
    prio: int
    sent_block: int | None


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    to: bytes
    data: bytes
    value: int
    gas: int | None
    nonce: int | None
    state: str
    mined_block: int | None
    mined_hash: bytes | None


class _Stop(Exception):
    """Internal: end this pass early (low balance, fee cap, dependent estimate)."""


class TxSender:
    """Sends the outbox's txs for one ``(chain, sender)``. An async context manager.

    Args:
        outbox: the open :class:`~edge.store.db.Outbox` (schema with ``txs``,
            ``tx_attempts``, ``nonces``).
        url: ``http://`` / ``https://`` JSON-RPC endpoint of the public chain.
        key: the device key that signs (its address is the sender).
        chain_id: EIP-155 chain id; checked against ``eth_chainId`` on enter (or on the
            first pass if the node is down on enter).
        confirmations: blocks on top of the mined block before ``confirmed``
            (``head - mined_block >= confirmations``).
        stuck_blocks: blocks after a send without a receipt before a fee bump.
        max_fee_cap_wei: highest ``maxFeePerGas`` ever signed, wei/gas.
        bump_percent: fee increase of a replacement, percent (>= 10, geth's rule).
        timeout: seconds per JSON-RPC request.

    Raises:
        ConfigError: an argument is out of range (on construction), or the node's chain
            id differs from ``chain_id`` (on enter or first pass).
        NodeUnavailable: (from :meth:`step`) the node cannot be reached.

    Attributes:
        paused_low_balance: True while sending waits for funds.
        paused_fee_cap: True while the market fee is above ``max_fee_cap_wei``.
    """

    def __init__(
        self,
        outbox: Outbox,
        url: str,
        key: DeviceKey,
        *,
        chain_id: int,
        confirmations: int = 2,
        stuck_blocks: int = 3,
        max_fee_cap_wei: int,
        bump_percent: float = 12.5,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError("url", f"tx sender needs an http(s):// JSON-RPC URL, got {url!r}")
        for name, val, low in (("chain_id", chain_id, 1), ("confirmations", confirmations, 0),
                               ("stuck_blocks", stuck_blocks, 1), ("max_fee_cap_wei", max_fee_cap_wei, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ConfigError(name, f"must be an integer >= {low}, got {val!r}")
        if not isinstance(bump_percent, (int, float)) or not 10.0 <= float(bump_percent) <= 1000.0:
            raise ConfigError("bump_percent", f"must be between 10 and 1000, got {bump_percent!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError("timeout", f"must be > 0 seconds, got {timeout!r}")
        self.outbox = outbox
        self.url = url
        self.key = key
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.stuck_blocks = stuck_blocks
        self.max_fee_cap_wei = max_fee_cap_wei
        self.bump_percent = float(bump_percent)
        self.timeout = float(timeout)
        self.sender = bytes.fromhex(key.address[2:])
        self.paused_low_balance = False
        self.paused_fee_cap = False
        self._http: HttpRpc | None = None
        self._chain_checked = False
        self._counter_synced = False  # counter raised to the chain's pending count once
        self._rebroadcast = True  # re-send every in-flight tx on the first pass
        self._bump_next: set[int] = set()
        self._warned: set[tuple[int, str]] = set()
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> TxSender:
        import eth_account  # noqa: F401 - import now, not while holding the outbox lock

        self._http = await HttpRpc(self.url, timeout=self.timeout).__aenter__()
        try:
            await self._check_chain_id()
        except NodeUnavailable as e:
            log.warning("tx sender chain %d: node %s not reachable at start (%s); "
                        "will check its chain id on the first pass", self.chain_id, self.url, e)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.__aexit__(exc_type, exc, tb)

    async def _check_chain_id(self) -> None:
        got = _quantity("eth_chainId", await self._call("eth_chainId"))
        if got != self.chain_id:
            raise ConfigError("chain_id", f"node {self.url} reports chain id {got}, "
                                          f"configured {self.chain_id}")
        self._chain_checked = True

    # ------------------------------------------------------------------ public API

    async def enqueue(
        self,
        tx: Tx,
        *,
        to: bytes,
        data: bytes,
        purpose: str,
        ref: bytes | None = None,
        gas: int | None = None,
        value: int = 0,
    ) -> int:
        """Queue an intent to send a tx; call it inside the caller's outbox transaction.

        No network, no signing here: the intent commits (or rolls back) with the
        caller's transaction; :meth:`step` signs and sends it later.

        Args:
            tx: the caller's open outbox transaction.
            to: 20-byte recipient (contract) address.
            data: calldata bytes (may be empty).
            purpose: non-empty label (``"anchor"``, ``"chunk"``...).
            ref: optional caller reference (bytes), stored with the tx.
            gas: gas limit; None = ``eth_estimateGas`` + 20 % when signing.
            value: wei to transfer (0 .. 2**63 - 1).

        Returns:
            The tx id (use with :meth:`get` / :meth:`wait`).

        Raises:
            EdgeError: an argument is malformed (named in the message).
            OutboxError: the insert failed.
        """
        if not isinstance(to, (bytes, bytearray)) or len(to) != 20:
            raise EdgeError(f"tx sender enqueue: 'to' must be 20 bytes, got {_describe(to)}")
        if not isinstance(data, (bytes, bytearray)):
            raise EdgeError(f"tx sender enqueue: 'data' must be bytes, got {type(data).__name__}")
        if not isinstance(purpose, str) or not purpose:
            raise EdgeError("tx sender enqueue: 'purpose' must be a non-empty str")
        if ref is not None and not isinstance(ref, (bytes, bytearray)):
            raise EdgeError(f"tx sender enqueue: 'ref' must be bytes or None, got {type(ref).__name__}")
        if gas is not None and (isinstance(gas, bool) or not isinstance(gas, int)
                                or not 21_000 <= gas <= _MAX_INT64):
            raise EdgeError(f"tx sender enqueue: 'gas' must be None or an int >= 21000, got {gas!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT64:
            raise EdgeError(f"tx sender enqueue: 'value' must be an int in [0, 2**63-1] wei, got {value!r}")
        now = time.time()
        await tx.execute(
            "INSERT INTO txs (chain_id, sender, purpose, ref, to_addr, data, value, gas, nonce,"
            " state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,NULL,'queued',?,?)",
            (self.chain_id, self.sender, purpose, None if ref is None else bytes(ref), bytes(to),
             bytes(data), value, gas, now, now),
        )
        row = await tx.fetchone("SELECT last_insert_rowid()")
        if row is None:
            raise OutboxError("tx sender enqueue: no row id after insert")
        return int(row[0])

    async def get(self, tx_id: int) -> TxRecord:
        """Read one tx. Raises OutboxError if this sender has no tx ``tx_id``."""
        row = await self.outbox.fetchone(
            "SELECT id, chain_id, nonce, purpose, ref, state, mined_block, status, error, mined_tx,"
            " (SELECT COUNT(*) FROM tx_attempts a WHERE a.tx_id = txs.id),"
            " (SELECT hash FROM tx_attempts a WHERE a.tx_id = txs.id ORDER BY attempt DESC LIMIT 1)"
            " FROM txs WHERE id = ? AND chain_id = ? AND sender = ?",
            (tx_id, self.chain_id, self.sender),
        )
        if row is None:
            raise OutboxError(f"tx sender: no tx {tx_id} for {self.key.address} on chain {self.chain_id}")
        (i, cid, nonce, purpose, ref, state, mblock, status, error, mined_tx, n_att, last_hash) = row
        return TxRecord(
            id=int(i), chain_id=int(cid), nonce=nonce, purpose=purpose, ref=ref, state=state,
            hash=mined_tx if mined_tx is not None else last_hash, mined_block=mblock,
            status=status, attempts=int(n_att), error=error,
        )

    async def wait(self, tx_id: int, state: TxState = "confirmed", timeout: float = 60.0,
                   poll_s: float = 0.1) -> TxRecord:
        """Poll the outbox until tx ``tx_id`` reaches ``state`` (or a later one) or fails.

        Something else must drive the sender (:meth:`run` or :meth:`step`); this only
        reads. Returns the record; a ``failed`` tx is returned as is (check ``.state``).

        Raises:
            EdgeError: ``state`` is not a reachable state name.
            ChainError: not reached within ``timeout`` seconds (message gives the state).
            OutboxError: unknown tx id.
        """
        if state not in _ORDER:
            raise EdgeError(f"tx sender wait: state must be one of {list(_ORDER)}, got {state!r}")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rec = await self.get(tx_id)
            if rec.state == "failed" or _ORDER[rec.state] >= _ORDER[state]:
                return rec
            if asyncio.get_running_loop().time() >= deadline:
                raise ChainError(f"tx {tx_id} on chain {self.chain_id} not {state} after "
                                 f"{timeout:g} s (state {rec.state})")
            await asyncio.sleep(poll_s)

    async def pending_count(self) -> int:
        """Number of this sender's txs not yet ``confirmed`` or ``failed``."""
        row = await self.outbox.fetchone(
            "SELECT COUNT(*) FROM txs WHERE chain_id = ? AND sender = ?"
            " AND state NOT IN ('confirmed', 'failed')", (self.chain_id, self.sender))
        return int(row[0]) if row else 0

    async def run(self, poll_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        """Call :meth:`step` forever, every ``poll_s`` seconds.

        On :class:`NodeUnavailable` (and on any other :class:`ChainError`: an odd answer
        of a sick node, or :class:`OutboxFull`) it logs one warning per outage, backs off
        exponentially (from ``poll_s`` up to ``max_backoff_s``), and after the node
        returns re-broadcasts every in-flight tx. Other errors propagate (a wrong chain
        id: ConfigError; a broken outbox: OutboxError). Cancel the task to stop.
        """
        backoff = poll_s
        down_since: float | None = None
        while True:
            try:
                await self.step()
            except (ChainError, OutboxFull) as e:
                if down_since is None:
                    down_since = time.monotonic()
                    what = "node unavailable" if isinstance(e, NodeUnavailable) else "error"
                    log.warning("chain %d: %s (%s); backlog kept, retrying with backoff",
                                self.chain_id, what, e)
                self._rebroadcast = True
                await asyncio.sleep(backoff)
                backoff = min(max(backoff, 0.05) * 2, max_backoff_s)
                continue
            if down_since is not None:
                log.info("chain %d: node back after %.1f s; %d txs pending", self.chain_id,
                         time.monotonic() - down_since, await self.pending_count())
                down_since = None
            backoff = poll_s
            await asyncio.sleep(poll_s)

    async def step(self) -> None:
        """One pass of the send loop (see the module docstring).

        Order: re-broadcast in-flight txs if due (first pass, after an outage); check
        receipts of ``sent``/``mined`` txs (confirm, reorg, fee-bump stuck ones);
        broadcast ``signed`` txs; sign and send new intents in id order.

        Raises:
            NodeUnavailable: the node cannot be reached (nothing is lost; retry later).
            ConfigError: the node's chain id is not ``chain_id``.
            OutboxError: the outbox failed.
        """
        async with self._lock:
            if not self._chain_checked:
                await self._check_chain_id()
            head = _quantity("eth_blockNumber", await self._call("eth_blockNumber"))
            fees: list[_Fees] = []  # fetched at most once per pass
            try:
                if self._rebroadcast:
                    await self._rebroadcast_all(head)
                    self._rebroadcast = False
                await self._track_sent(head, fees)
                await self._send_signed(head, fees)
                await self._send_queued(head, fees)
            except _Stop:
                pass

    # ------------------------------------------------------------------- passes

    async def _rebroadcast_all(self, head: int) -> None:
        rows = await self._rows(_IN_FLIGHT)
        for row in rows:
            att = await self._latest_attempt(row.id)
            if att is not None:
                log.info("chain %d: re-broadcasting tx %d (nonce %d, %s) from its stored bytes",
                         self.chain_id, row.id, att.nonce, _hex(att.hash))
                await self._broadcast(row, att, head)

    async def _track_sent(self, head: int, fees: list[_Fees]) -> None:
        rows = await self._rows(("sent", "mined"))
        if not rows:
            return
        attempts = {r.id: await self._attempts(r.id) for r in rows}
        hashes = [a.hash for atts in attempts.values() for a in atts]
        receipts = dict(zip(hashes, await self._receipts(hashes)))
        for row in rows:
            atts = attempts[row.id]
            found = [(a, rc) for a in atts if (rc := receipts.get(a.hash)) is not None]
            if found:
                att, receipt = found[0]
                await self._on_receipt(row, att, receipt, head)
            elif row.state == "mined":
                log.warning("chain %d: tx %d (nonce %s) vanished from block %s in a reorg; "
                            "back to sent, re-broadcasting", self.chain_id, row.id, row.nonce,
                            row.mined_block)
                await self._write(
                    "UPDATE txs SET state='sent', mined_block=NULL, mined_hash=NULL, mined_tx=NULL,"
                    " status=NULL, updated_at=? WHERE id=? AND state='mined'", (time.time(), row.id))
                if atts:
                    await self._broadcast(row, atts[-1], head)
            elif atts:
                await self._maybe_bump(row, atts[-1], head, fees)

    async def _on_receipt(self, row: _Row, att: _Attempt, rc: dict[str, Any], head: int) -> None:
        block = _quantity("receipt.blockNumber", rc.get("blockNumber"))
        bhash = _data("receipt.blockHash", rc.get("blockHash"))
        status = _quantity("receipt.status", rc.get("status", "0x1"))
        now = time.time()
        if status == 0:
            await self._write(
                "UPDATE txs SET state='failed', mined_block=?, mined_hash=?, mined_tx=?, status=0,"
                " error=?, updated_at=? WHERE id=?",
                (block, bhash, att.hash, f"reverted on chain in block {block}", now, row.id))
            log.warning("chain %d: tx %d (%s) reverted on chain in block %d", self.chain_id,
                        row.id, _hex(att.hash), block)
            return
        if row.state == "sent" or row.mined_hash != bhash or row.mined_block != block:
            if row.state == "mined":
                log.info("chain %d: tx %d moved to block %d after a reorg", self.chain_id, row.id, block)
            await self._write(
                "UPDATE txs SET state='mined', mined_block=?, mined_hash=?, mined_tx=?, status=?,"
                " error=NULL, updated_at=? WHERE id=?", (block, bhash, att.hash, status, now, row.id))
            self._bump_next.discard(row.id)
        if head - block >= self.confirmations:
            # the receipt read this pass is canonical on the node; it was in the same block
            # as recorded (or the row was just updated to it), so the confirmation holds
            await self._write("UPDATE txs SET state='confirmed', updated_at=? WHERE id=?"
                              " AND state='mined' AND mined_hash=?", (now, row.id, bhash))

    async def _maybe_bump(self, row: _Row, last: _Attempt, head: int, fees: list[_Fees]) -> None:
        sent_block = last.sent_block if last.sent_block is not None else head
        if head < sent_block:
            # the chain went backwards (reorg, or a node that lost its state): resend as is
            await self._broadcast(row, last, head)
            return
        if head - sent_block < self.stuck_blocks and row.id not in self._bump_next:
            return
        fee = await self._fees(fees)
        factor = 1.0 + self.bump_percent / 100.0
        min_max = math.ceil(last.max_fee * factor)
        min_prio = math.ceil(last.prio * factor)
        prio = max(min_prio, fee.prio)
        max_fee = min(max(min_max, 2 * fee.base + prio), self.max_fee_cap_wei)
        if max_fee < min_max or prio > max_fee:
            self._warn_once(row.id, "cap",
                            "chain %d: tx %d (nonce %d) stuck since block %d; a %.1f%% bump to %d "
                            "wei/gas would exceed max_fee_cap_wei %d: waiting, re-broadcasting the "
                            "same bytes", self.chain_id, row.id, last.nonce, sent_block,
                            self.bump_percent, min_max, self.max_fee_cap_wei)
            await self._broadcast(row, last, head)
            return
        gas = row.gas if row.gas is not None else 0
        raw, txhash = self._sign(row, last.nonce, gas, max_fee, prio)
        att = _Attempt(row.id, last.attempt + 1, last.nonce, txhash, raw, max_fee, prio, None)
        async with self.outbox.transaction(durable=True) as tx:
            await tx.execute(
                "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
                " max_priority_fee, sent_block, created_at) VALUES (?,?,?,?,?,?,?,NULL,?)",
                (att.tx_id, att.attempt, att.nonce, att.hash, att.raw, max_fee, prio, time.time()))
        self._bump_next.discard(row.id)
        log.info("chain %d: tx %d (nonce %d) not mined since block %d: attempt %d with fees "
                 "%d/%d wei/gas (was %d/%d)", self.chain_id, row.id, last.nonce, sent_block,
                 att.attempt, max_fee, prio, last.max_fee, last.prio)
        await self._broadcast(row, att, head)

    async def _send_signed(self, head: int, fees: list[_Fees]) -> None:
        for row in await self._rows(("signed",)):
            att = await self._latest_attempt(row.id)
            if att is None:
                continue
            if row.id in self._bump_next:  # refused for its fee last time: re-sign higher
                await self._maybe_bump(row, att, head, fees)
            else:
                await self._broadcast(row, att, head)

    async def _send_queued(self, head: int, fees: list[_Fees]) -> None:
        rows = await self._rows(("queued",), limit=_MAX_PER_PASS)
        if not rows:
            return
        fee = await self._fees(fees)
        needed_fee = fee.base + fee.prio
        if needed_fee > self.max_fee_cap_wei:
            if not self.paused_fee_cap:
                log.warning("chain %d: fee needed %d wei/gas (base %d + priority %d) above "
                            "max_fee_cap_wei %d: sending waits, nothing lost", self.chain_id,
                            needed_fee, fee.base, fee.prio, self.max_fee_cap_wei)
            self.paused_fee_cap = True
            raise _Stop
        if self.paused_fee_cap:
            log.info("chain %d: fee back under max_fee_cap_wei: sending resumed", self.chain_id)
            self.paused_fee_cap = False
        max_fee = min(2 * fee.base + fee.prio, self.max_fee_cap_wei)
        prio = min(fee.prio, max_fee)
        balance = _quantity("eth_getBalance",
                            await self._call("eth_getBalance", self.key.address, "latest"))
        latest = await self._call("eth_getBlockByNumber", "latest", False)
        block_gas = _quantity("eth_getBlockByNumber", latest.get("gasLimit") if isinstance(latest, dict) else None)
        await self._sync_counter()
        for row in rows:
            gas = row.gas if row.gas is not None else await self._estimate(row)
            if gas is None:
                continue  # failed (revert): reported, next intent
            if gas > block_gas or len(row.data) > MAX_TX_CALLDATA:
                # never signed: a tx that no block can hold would hold its nonce, and every
                # later tx behind it, forever
                reason = (f"gas limit {gas} exceeds the block gas limit {block_gas} of chain "
                          f"{self.chain_id}: the payload must be split" if gas > block_gas else
                          f"oversized data: {len(row.data)} bytes of calldata, over {MAX_TX_CALLDATA}: "
                          "the payload must be split")
                await self._write("UPDATE txs SET state='failed', error=?, updated_at=? WHERE id=?"
                                  " AND state='queued'", (reason, time.time(), row.id))
                log.error("chain %d: tx %d (%d bytes of calldata) refused before signing: %s",
                          self.chain_id, row.id, len(row.data), reason)
                continue
            needed = gas * max_fee + row.value
            if balance < needed:
                self._low_balance(balance, needed)
            if self.paused_low_balance:
                log.info("chain %d: balance %d wei suffices again: sending resumed",
                         self.chain_id, balance)
                self.paused_low_balance = False
            balance -= needed
            att = await self._sign_new(row, gas, max_fee, prio)
            if att is not None:
                await self._broadcast(row, att, head)

    # ------------------------------------------------------------ intent -> signed

    async def _sign_new(self, row: _Row, gas: int, max_fee: int, prio: int) -> _Attempt | None:
        now = time.time()
        async with self.outbox.transaction(durable=True) as tx:
            cur = await tx.fetchone("SELECT state FROM txs WHERE id = ?", (row.id,))
            if cur is None or cur[0] != "queued":
                return None  # changed under us (or rolled back by its writer)
            nrow = await tx.fetchone("SELECT next_nonce FROM nonces WHERE chain_id=? AND sender=?",
                                     (self.chain_id, self.sender))
            if nrow is None:
                raise OutboxError(f"tx sender: nonce counter of chain {self.chain_id} missing")
            nonce = int(nrow[0])
            raw, txhash = self._sign(row, nonce, gas, max_fee, prio)
            last = await tx.fetchone("SELECT COALESCE(MAX(attempt), 0) FROM tx_attempts WHERE tx_id=?",
                                     (row.id,))
            attempt = int(last[0]) + 1 if last else 1
            await tx.execute(
                "UPDATE txs SET nonce=?, gas=?, state='signed', error=NULL, updated_at=? WHERE id=?",
                (nonce, gas, now, row.id))
            await tx.execute(
                "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
                " max_priority_fee, sent_block, created_at) VALUES (?,?,?,?,?,?,?,NULL,?)",
                (row.id, attempt, nonce, txhash, raw, max_fee, prio, now))
            await tx.execute("UPDATE nonces SET next_nonce=? WHERE chain_id=? AND sender=?",
                             (nonce + 1, self.chain_id, self.sender))
        return _Attempt(row.id, attempt, nonce, txhash, raw, max_fee, prio, None)

    def _sign(self, row: _Row, nonce: int, gas: int, max_fee: int, prio: int) -> tuple[bytes, bytes]:
        from eth_account import Account
        from eth_utils.address import to_checksum_address

        signed = Account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(row.to),
                "value": row.value,
                "data": row.data,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": prio,
                "accessList": [],
            },
            self.key.private_key,
        )
        return bytes(signed.raw_transaction), bytes(signed.hash)

    async def _sync_counter(self) -> None:
        """Create / raise the nonce counter (never lower it: see omni/tokenbridge#526)."""
        if self._counter_synced:
            return
        pending = await self._pending_nonce()
        await self._set_counter(pending, allow_lower=False)
        self._counter_synced = True

    async def _set_counter(self, chain_pending: int, *, allow_lower: bool) -> int:
        async with self.outbox.transaction() as tx:
            ours = await tx.fetchone(
                "SELECT MAX(nonce) FROM txs WHERE chain_id=? AND sender=? AND nonce IS NOT NULL",
                (self.chain_id, self.sender))
            floor = int(ours[0]) + 1 if ours and ours[0] is not None else 0
            cur = await tx.fetchone("SELECT next_nonce FROM nonces WHERE chain_id=? AND sender=?",
                                    (self.chain_id, self.sender))
            new = max(chain_pending, floor)
            if cur is not None and not allow_lower:
                new = max(new, int(cur[0]))
            await tx.execute(
                "INSERT INTO nonces (chain_id, sender, next_nonce) VALUES (?,?,?) ON CONFLICT"
                " (chain_id, sender) DO UPDATE SET next_nonce=excluded.next_nonce",
                (self.chain_id, self.sender, new))
        return new

    async def _estimate(self, row: _Row) -> int | None:
        params: dict[str, Any] = {"from": self.key.address, "to": _hex(row.to),
                                  "data": _hex(row.data), "value": hex(row.value)}
        try:
            return math.ceil(_quantity("eth_estimateGas", await self._call("eth_estimateGas", params))
                             * _GAS_MARGIN)
        except RpcError as e:
            msg, code = str(e), e.code
        low = msg.lower()
        if _classify(msg) == "funds":
            balance = _quantity("eth_getBalance",
                                await self._call("eth_getBalance", self.key.address, "latest"))
            self._low_balance(balance, row.value + 21_000 * self.max_fee_cap_wei)
        if code == 3 or "revert" in low:
            if await self._count(_IN_FLIGHT):
                # may depend on one of our txs not yet mined: keep order, re-estimate later
                log.debug("chain %d: estimate of tx %d reverts with txs in flight; retry later",
                          self.chain_id, row.id)
                raise _Stop
            reason = _revert_reason(msg)
            await self._write("UPDATE txs SET state='failed', error=?, updated_at=? WHERE id=?"
                              " AND state='queued'", (reason, time.time(), row.id))
            log.warning("chain %d: tx %d (%d bytes of calldata to %s) failed in eth_estimateGas: "
                        "%s (not retried)", self.chain_id, row.id, len(row.data), _hex(row.to), reason)
            return None
        self._warn_once(row.id, msg, "chain %d: eth_estimateGas of tx %d: %s (code %s); retrying later",
                        self.chain_id, row.id, msg, code)
        raise _Stop

    # ------------------------------------------------------------------ broadcast

    async def _broadcast(self, row: _Row, att: _Attempt, head: int) -> None:
        """Send ``att.raw``; record ``sent`` or handle the node's refusal (module doc)."""
        refused: RpcError | None = None
        try:
            answer = await self._call("eth_sendRawTransaction", _hex(att.raw))
        except RpcError as e:
            refused = e
        if refused is not None:
            msg = str(refused)
            low = msg.lower()
            kind = _classify(msg)
            if kind != "known":
                if is_size_refusal(msg):
                    await self._refused_for_size(row, att, msg, head)
                    return
                if kind == "nonce":
                    await self._nonce_too_low(row, att, head)
                    return
                if kind == "underpriced":
                    self._bump_next.add(row.id)
                    log.info("chain %d: tx %d attempt %d: %s; bumping again next pass",
                             self.chain_id, row.id, att.attempt, msg)
                    await self._mark_sent(row, att, head)
                    return
                if kind == "funds":
                    balance = _quantity("eth_getBalance", await self._call(
                        "eth_getBalance", self.key.address, "latest"))
                    self._low_balance(balance, (row.gas or 0) * att.max_fee + row.value)
                self._warn_once(row.id, msg, "chain %d: node refused tx %d (nonce %d, %s): %s "
                                "(code %s); kept, retrying", self.chain_id, row.id, att.nonce,
                                _hex(att.hash), msg, refused.code)
                await self._write("UPDATE txs SET error=?, updated_at=? WHERE id=?",
                                  (msg[:500], time.time(), row.id))
                if row.state == "signed" and ("fee" in low or "price" in low):
                    self._bump_next.add(row.id)
                return
        elif answer not in (None, _hex(att.hash)):
            log.warning("chain %d: node answered hash %s for tx %d, expected %s", self.chain_id,
                        answer, row.id, _hex(att.hash))
        if self.paused_low_balance and refused is None:
            log.info("chain %d: the node accepted tx %d: sending resumed", self.chain_id, row.id)
            self.paused_low_balance = False
        await self._mark_sent(row, att, head)

    async def _mark_sent(self, row: _Row, att: _Attempt, head: int) -> None:
        async with self.outbox.transaction() as tx:
            await tx.execute("UPDATE tx_attempts SET sent_block=? WHERE tx_id=? AND attempt=?",
                             (head, att.tx_id, att.attempt))
            await tx.execute("UPDATE txs SET state='sent', updated_at=? WHERE id=? AND"
                             " state IN ('signed', 'sent')", (time.time(), row.id))

    async def _nonce_too_low(self, row: _Row, att: _Attempt, head: int) -> None:
        atts = await self._attempts(row.id)
        hashes = [a.hash for a in atts]
        for a, rc in zip(atts, await self._receipts(hashes)):
            if rc is not None:
                await self._on_receipt(row, a, rc, head)
                return
        for a in atts:  # a node without receipts (pruned) may still know the tx as mined
            found = await self._call("eth_getTransactionByHash", _hex(a.hash))
            if isinstance(found, dict) and found.get("blockNumber"):
                log.info("chain %d: tx %d known mined without receipt yet; waiting", self.chain_id, row.id)
                await self._mark_sent(row, a, head)
                return
        pending = await self._pending_nonce()
        async with self.outbox.transaction() as tx:
            await tx.execute(
                "UPDATE txs SET state='queued', nonce=NULL, error=?, updated_at=? WHERE id=?"
                " AND state IN ('signed', 'sent')",
                (f"nonce {att.nonce} consumed outside this sender; re-queued", time.time(), row.id))
        new = await self._set_counter(pending, allow_lower=True)
        self._bump_next.discard(row.id)
        log.warning("chain %d: nonce %d of tx %d was used outside this sender (nonce too low, none "
                    "of its %d attempts mined): re-queued for a new nonce; counter reset to %d "
                    "(chain pending %d)", self.chain_id, att.nonce, row.id, len(atts), new, pending)

    async def _refused_for_size(self, row: _Row, att: _Attempt, msg: str, head: int) -> None:
        """A refusal no retry can cure (over the block gas limit, ``oversized data``, ...):
        the tx fails (its owner re-plans the payload). Its nonce is released if no later tx
        of ours holds a nonce; otherwise it is filled with a 0-value self-transfer (21,000
        gas), so the later txs keep their signed bytes and no gap wedges the sender."""
        now = time.time()
        later = await self.outbox.fetchone(
            "SELECT count(*) FROM txs WHERE chain_id=? AND sender=? AND nonce > ?",
            (self.chain_id, self.sender, att.nonce))
        filler: _Attempt | None = None
        async with self.outbox.transaction(durable=True) as tx:
            await tx.execute(
                "UPDATE txs SET state='failed', nonce=NULL, error=?, updated_at=? WHERE id=?"
                " AND state IN ('signed', 'sent')", (f"refused for size: {msg[:400]}", now, row.id))
            if later and later[0]:
                await tx.execute(
                    "INSERT INTO txs (chain_id, sender, purpose, ref, to_addr, data, value, gas, nonce,"
                    " state, created_at, updated_at) VALUES (?,?,'nonce-filler',?,?,x'',0,21000,?,'signed',?,?)",
                    (self.chain_id, self.sender, row.id.to_bytes(8, "big"), self.sender, att.nonce, now, now))
                rid = await tx.fetchone("SELECT last_insert_rowid()")
                if rid is None:
                    raise OutboxError("tx sender: no row id after insert")
                frow = _Row(int(rid[0]), self.sender, b"", 0, 21_000, att.nonce, "signed", None, None)
                raw, txhash = self._sign(frow, att.nonce, 21_000, att.max_fee, att.prio)
                await tx.execute(
                    "INSERT INTO tx_attempts (tx_id, attempt, nonce, hash, raw, max_fee,"
                    " max_priority_fee, sent_block, created_at) VALUES (?,1,?,?,?,?,?,NULL,?)",
                    (frow.id, att.nonce, txhash, raw, att.max_fee, att.prio, now))
                filler = _Attempt(frow.id, 1, att.nonce, txhash, raw, att.max_fee, att.prio, None)
        self._bump_next.discard(row.id)
        if filler is None:
            new = await self._set_counter(await self._pending_nonce(), allow_lower=True)
            log.error("chain %d: tx %d (%d bytes of calldata) refused for size: %s; failed (to be re-planned), "
                      "nonce %d released, counter reset to %d", self.chain_id, row.id, len(row.data), msg,
                      att.nonce, new)
            return
        log.error("chain %d: tx %d (%d bytes of calldata) refused for size: %s; failed (to be re-planned), "
                  "nonce %d filled by a 0-value self-transfer (tx %d)", self.chain_id, row.id, len(row.data), msg,
                  att.nonce, filler.tx_id)
        frow = _Row(filler.tx_id, self.sender, b"", 0, 21_000, att.nonce, "signed", None, None)
        await self._broadcast(frow, filler, head)

    # -------------------------------------------------------------------- helpers

    def _low_balance(self, balance: int, needed: int) -> None:
        if not self.paused_low_balance:
            log.warning("balance %d wei on chain %d below needed %d: sending paused, nothing lost",
                        balance, self.chain_id, needed)
        self.paused_low_balance = True
        raise _Stop

    def _warn_once(self, tx_id: int, what: str, fmt: str, *args: Any) -> None:
        if (tx_id, what) not in self._warned:
            self._warned.add((tx_id, what))
            log.warning(fmt, *args)

    async def _fees(self, cache: list[_Fees]) -> _Fees:
        if cache:
            return cache[0]
        hist = await self._call("eth_feeHistory", hex(5), "latest", [50])
        if not isinstance(hist, dict) or not hist.get("baseFeePerGas"):
            raise RpcProtocolError("eth_feeHistory", "no baseFeePerGas (not an EIP-1559 chain?)")
        base = _quantity("eth_feeHistory", hist["baseFeePerGas"][-1])  # next block's base fee
        try:
            prio = _quantity("eth_maxPriorityFeePerGas", await self._call("eth_maxPriorityFeePerGas"))
        except RpcError:  # not served (older node): median reward of recent blocks
            rewards = sorted(_quantity("eth_feeHistory", r[0]) for r in hist.get("reward") or [] if r)
            prio = rewards[len(rewards) // 2] if rewards else 10**9
        fee = _Fees(base=base, prio=max(prio, 1))
        cache.append(fee)
        return fee

    async def _pending_nonce(self) -> int:
        return _quantity("eth_getTransactionCount",
                         await self._call("eth_getTransactionCount", self.key.address, "pending"))

    async def _receipts(self, hashes: list[bytes]) -> list[dict[str, Any] | None]:
        answers = await asyncio.gather(*(self._call("eth_getTransactionReceipt", _hex(h))
                                         for h in hashes))
        return [r if isinstance(r, dict) and r.get("blockNumber") else None for r in answers]

    async def _call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC request. Raises NodeUnavailable, RpcError, RpcProtocolError."""
        if self._http is None:
            raise ChainError("tx sender is not open (use it as an async context manager)")
        return await self._http.call(method, params)

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self.outbox.transaction() as tx:
            await tx.execute(sql, params)

    async def _rows(self, states: tuple[str, ...], limit: int = -1) -> list[_Row]:
        marks = ",".join("?" * len(states))
        order = "id" if states == ("queued",) else "nonce, id"
        async with self.outbox.transaction() as tx:  # under the lock: committed rows only
            rows = await tx.fetchall(
                f"SELECT id, to_addr, data, value, gas, nonce, state, mined_block, mined_hash FROM txs"
                f" WHERE chain_id=? AND sender=? AND state IN ({marks}) ORDER BY {order} LIMIT ?",
                (self.chain_id, self.sender, *states, limit))
        return [_Row(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]

    async def _count(self, states: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(states))
        row = await self.outbox.fetchone(
            f"SELECT COUNT(*) FROM txs WHERE chain_id=? AND sender=? AND state IN ({marks})",
            (self.chain_id, self.sender, *states))
        return int(row[0]) if row else 0

    async def _attempts(self, tx_id: int) -> list[_Attempt]:
        rows = await self.outbox.fetchall(
            "SELECT tx_id, attempt, nonce, hash, raw, max_fee, max_priority_fee, sent_block"
            " FROM tx_attempts WHERE tx_id=? ORDER BY attempt", (tx_id,))
        return [_Attempt(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], int(r[5]), int(r[6]), r[7])
                for r in rows]

    async def _latest_attempt(self, tx_id: int) -> _Attempt | None:
        atts = await self._attempts(tx_id)
        return atts[-1] if atts else None


# ---------------------------------------------------------------- module helpers


def _classify(message: str) -> str:
    """Kind of a node's refusal of ``eth_sendRawTransaction`` across clients (geth, anvil,
    Besu, Nethermind, Erigon, OpenEthereum): ``known``, ``nonce``, ``underpriced``,
    ``funds`` or ``other``."""
    m = message.lower().replace(" ", "").replace("_", "")
    if any(k in m for k in ("alreadyknown", "knowntransaction", "alreadyimported")):
        return "known"
    if any(k in m for k in ("noncetoolow", "nonceistoolow", "oldnonce")):
        return "nonce"
    if any(k in m for k in ("underpriced", "replacementnotallowed", "feetoolow")):
        return "underpriced"
    if "insufficientfunds" in m:
        return "funds"
    return "other"


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _describe(v: object) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"{len(v)} bytes"
    return type(v).__name__


def _quantity(method: str, v: Any) -> int:
    if isinstance(v, str) and v.startswith(("0x", "0X")):
        try:
            return int(v, 16)
        except ValueError:
            pass
    raise RpcProtocolError(method, f"expected a hex quantity, got {str(v)[:40]!r}")


def _data(method: str, v: Any) -> bytes:
    if isinstance(v, str) and v.startswith("0x"):
        try:
            return bytes.fromhex(v[2:])
        except ValueError:
            pass
    raise RpcProtocolError(method, f"expected hex data, got {str(v)[:40]!r}")


def _revert_reason(message: str) -> str:
    """Best reason for a revert: Solidity ``Error(string)``, ``Panic(uint256)``, a custom
    error selector (from the error's ``data``, which :class:`HttpRpc` appends to the
    message), or the node's message."""
    raw = b""
    found = _TRAILING_HEX.search(message)
    if found:
        raw = bytes.fromhex(found.group(1)[2:])
        message = message[: found.start()]
    if raw[:4] == _ERROR_SELECTOR and len(raw) >= 68:
        from eth_abi.abi import decode

        try:
            (text,) = decode(["string"], raw[4:])
            return f"execution reverted: {text}"
        except Exception:  # noqa: BLE001 - malformed revert data: fall back to the message
            pass
    if raw[:4] == _PANIC_SELECTOR and len(raw) >= 36:
        return f"execution reverted: panic 0x{int.from_bytes(raw[4:36], 'big'):02x}"
    if len(raw) >= 4:
        return f"{message or 'execution reverted'} (custom error 0x{raw[:4].hex()}, data 0x{raw.hex()[:200]})"
    return message or "execution reverted"
