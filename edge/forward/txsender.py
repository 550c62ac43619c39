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
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

from edge.errors import (
    ChainError,
    ChainIdMismatch,
    NodeUnavailable,
    OutboxError,
    OutboxFull,
    RpcError,
)
from edge.clock import SYSTEM_CLOCK, Clock
from edge.crypto.keys import DeviceKey
from edge.forward.fees import Fees, bumped_fees, market_fees, new_tx_fees
from edge.forward.node_errors import classify, revert_reason
from edge.forward.uploads import MAX_TX_CALLDATA, is_size_refusal
from edge.rpc import codec
from edge.rpc.base import JsonRpc
from edge.store import txs as store
from edge.store.db import DbTx, Outbox
from edge.store.txs import AttemptRow as _Attempt
from edge.store.txs import IntentRow as _Row

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


class _Stop(Exception):
    """Internal: end this pass early (low balance, fee cap, dependent estimate)."""


class TxSender:
    """Sends the outbox's txs for one ``(chain, sender)``. An async context manager.

    Args:
        outbox: the open :class:`~edge.store.db.Outbox` (schema with ``txs``,
            ``tx_attempts``, ``nonces``).
        rpc: the JSON-RPC connection to the public chain, not yet entered: the sender
            owns it (enters and closes it), as an httpx client owns its transport.
        key: the device key that signs (its address is the sender).
        chain_id: EIP-155 chain id; checked against ``eth_chainId`` on enter (or on the
            first pass if the node is down on enter).
        confirmations: blocks on top of the mined block before ``confirmed``
            (``head - mined_block >= confirmations``).
        stuck_blocks: blocks after a send without a receipt before a fee bump.
        max_fee_cap_wei: highest ``maxFeePerGas`` ever signed, wei/gas.
        bump_percent: fee increase of a replacement, percent (>= 10, geth's rule).
        clock: waits and timestamps (tests inject :class:`edge.clock.MockClock`).

    Raises:
        ValueError: an argument is out of range (on construction).
        ChainIdMismatch: (from :meth:`step`) the node's chain id differs from ``chain_id``
            (logged on enter; :meth:`run` keeps retrying: nothing is sent until it matches).
        NodeUnavailable: (from :meth:`step`) the node cannot be reached.

    Attributes:
        paused_low_balance: True while sending waits for funds.
        paused_fee_cap: True while the market fee is above ``max_fee_cap_wei``.
    """

    def __init__(
        self,
        outbox: Outbox,
        rpc: JsonRpc,
        key: DeviceKey,
        *,
        chain_id: int,
        confirmations: int = 2,
        stuck_blocks: int = 3,
        max_fee_cap_wei: int,
        bump_percent: float = 12.5,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for name, val, low in (("chain_id", chain_id, 1), ("confirmations", confirmations, 0),
                               ("stuck_blocks", stuck_blocks, 1), ("max_fee_cap_wei", max_fee_cap_wei, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"TxSender {name}: must be an integer >= {low}, got {val!r}")
        if not isinstance(bump_percent, (int, float)) or not 10.0 <= float(bump_percent) <= 1000.0:
            raise ValueError(f"TxSender bump_percent: must be between 10 and 1000, got {bump_percent!r}")
        self.outbox = outbox
        self.rpc = rpc
        self.url = rpc.url
        self.clock = clock
        self.key = key
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.stuck_blocks = stuck_blocks
        self.max_fee_cap_wei = max_fee_cap_wei
        self.bump_percent = float(bump_percent)
        self.sender = bytes.fromhex(key.address[2:])
        self.account = store.Account(chain_id, self.sender)
        self.paused_low_balance = False
        self.paused_fee_cap = False
        self._open = False
        self._chain_checked = False
        self._counter_synced = False  # counter raised to the chain's pending count once
        self._rebroadcast = True  # re-send every in-flight tx on the first pass
        self._bump_next: set[int] = set()
        self._warned: set[tuple[int, str]] = set()
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> TxSender:
        import eth_account  # noqa: F401 - import now, not while holding the outbox lock

        await self.rpc.__aenter__()
        self._open = True
        try:
            await self._check_chain_id()
        except NodeUnavailable as e:
            log.warning("tx sender chain %d: node %s not reachable at start (%s); "
                        "will check its chain id on the first pass", self.chain_id, self.url, e)
        except ChainIdMismatch as e:
            log.error("tx sender chain %d: %s; nothing is sent until it matches", self.chain_id, e)
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
        if self._open:
            self._open = False
            await self.rpc.__aexit__(exc_type, exc, tb)

    async def _check_chain_id(self) -> None:
        got = codec.quantity(await self._call("eth_chainId"), "eth_chainId", "result")
        if got != self.chain_id:
            raise ChainIdMismatch(self.url, "the configured chain id of this public chain", self.chain_id, got)
        self._chain_checked = True

    # ------------------------------------------------------------------ public API

    async def enqueue(
        self,
        tx: DbTx,
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
            ValueError, TypeError: an argument is malformed (named in the message).
            OutboxError: the insert failed.
        """
        if not isinstance(to, (bytes, bytearray)) or len(to) != 20:
            raise ValueError(f"tx sender enqueue: 'to' must be 20 bytes, got {_describe(to)}")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"tx sender enqueue: 'data' must be bytes, got {type(data).__name__}")
        if not isinstance(purpose, str) or not purpose:
            raise ValueError("tx sender enqueue: 'purpose' must be a non-empty str")
        if ref is not None and not isinstance(ref, (bytes, bytearray)):
            raise TypeError(f"tx sender enqueue: 'ref' must be bytes or None, got {type(ref).__name__}")
        if gas is not None and (isinstance(gas, bool) or not isinstance(gas, int)
                                or not 21_000 <= gas <= _MAX_INT64):
            raise ValueError(f"tx sender enqueue: 'gas' must be None or an int >= 21000, got {gas!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT64:
            raise ValueError(f"tx sender enqueue: 'value' must be an int in [0, 2**63-1] wei, got {value!r}")
        return await store.insert_intent(tx, self.account, purpose=purpose, ref=None if ref is None else bytes(ref),
                                         to=bytes(to), data=bytes(data), value=value, gas=gas, now=self.clock.time())

    async def get(self, tx_id: int) -> TxRecord:
        """Read one tx. Raises OutboxError if this sender has no tx ``tx_id``."""
        r = await store.get_tx(self.outbox, self.account, tx_id)
        if r is None:
            raise OutboxError(f"tx sender: no tx {tx_id} for {self.key.address} on chain {self.chain_id}")
        return TxRecord(id=r.id, chain_id=r.chain_id, nonce=r.nonce, purpose=r.purpose, ref=r.ref,
                        state=r.state,  # type: ignore[arg-type] # the schema's CHECK holds TX_STATES
                        hash=r.hash, mined_block=r.mined_block, status=r.status, attempts=r.attempts,
                        error=r.error)

    async def wait(self, tx_id: int, state: TxState = "confirmed", timeout: float = 60.0,
                   poll_s: float = 0.1) -> TxRecord:
        """Poll the outbox until tx ``tx_id`` reaches ``state`` (or a later one) or fails.

        Something else must drive the sender (:meth:`run` or :meth:`step`); this only
        reads. Returns the record; a ``failed`` tx is returned as is (check ``.state``).

        Raises:
            ValueError: ``state`` is not a reachable state name.
            ChainError: not reached within ``timeout`` seconds (message gives the state).
            OutboxError: unknown tx id.
        """
        if state not in _ORDER:
            raise ValueError(f"tx sender wait: state must be one of {list(_ORDER)}, got {state!r}")
        deadline = self.clock.monotonic() + timeout
        while True:
            rec = await self.get(tx_id)
            if rec.state == "failed" or _ORDER[rec.state] >= _ORDER[state]:
                return rec
            if self.clock.monotonic() >= deadline:
                raise ChainError(f"tx {tx_id} on chain {self.chain_id} not {state} after "
                                 f"{timeout:g} s (state {rec.state})")
            await self.clock.sleep(poll_s)

    async def pending_count(self) -> int:
        """Number of this sender's txs not yet ``confirmed`` or ``failed``."""
        return await store.count_in_states(self.outbox, self.account, ("confirmed", "failed"), negate=True)

    async def run(self, poll_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        """Call :meth:`step` forever, every ``poll_s`` seconds.

        On :class:`NodeUnavailable` (and on any other :class:`ChainError`: an odd answer
        of a sick node, or :class:`OutboxFull`) it logs one warning per outage, backs off
        exponentially (from ``poll_s`` up to ``max_backoff_s``), and after the node
        returns re-broadcasts every in-flight tx (a wrong chain id, ChainIdMismatch, is
        such a ChainError: retried). Other errors propagate (a broken outbox:
        OutboxError). Cancel the task to stop.
        """
        backoff = poll_s
        down_since: float | None = None
        while True:
            try:
                await self.step()
            except (ChainError, OutboxFull) as e:
                if down_since is None:
                    down_since = self.clock.monotonic()
                    what = "node unavailable" if isinstance(e, NodeUnavailable) else "error"
                    log.warning("chain %d: %s (%s); backlog kept, retrying with backoff",
                                self.chain_id, what, e)
                self._rebroadcast = True
                await self.clock.sleep(backoff)
                backoff = min(max(backoff, 0.05) * 2, max_backoff_s)
                continue
            if down_since is not None:
                log.info("chain %d: node back after %.1f s; %d txs pending", self.chain_id,
                         self.clock.monotonic() - down_since, await self.pending_count())
                down_since = None
            backoff = poll_s
            await self.clock.sleep(poll_s)

    async def step(self) -> None:
        """One pass of the send loop (see the module docstring).

        Order: re-broadcast in-flight txs if due (first pass, after an outage); check
        receipts of ``sent``/``mined`` txs (confirm, reorg, fee-bump stuck ones);
        broadcast ``signed`` txs; sign and send new intents in id order.

        Raises:
            NodeUnavailable: the node cannot be reached (nothing is lost; retry later).
            ChainIdMismatch: the node's chain id is not ``chain_id``.
            OutboxError: the outbox failed.
        """
        async with self._lock:
            if not self._chain_checked:
                await self._check_chain_id()
            head = codec.quantity(await self._call("eth_blockNumber"), "eth_blockNumber", "result")
            fees: list[Fees] = []  # fetched at most once per pass
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

    async def _track_sent(self, head: int, fees: list[Fees]) -> None:
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
                await store.set_sent_back(self.outbox, row.id, self.clock.time())
                if atts:
                    await self._broadcast(row, atts[-1], head)
            elif atts:
                await self._maybe_bump(row, atts[-1], head, fees)

    async def _on_receipt(self, row: _Row, att: _Attempt, rc: dict[str, Any], head: int) -> None:
        m = "eth_getTransactionReceipt"
        block = codec.quantity(rc.get("blockNumber"), m, "result.blockNumber")
        bhash = codec.hash32(rc.get("blockHash"), m, "result.blockHash")
        status = codec.quantity(rc.get("status", "0x1"), m, "result.status")
        now = self.clock.time()
        if status == 0:
            await store.set_failed(self.outbox, row.id, f"reverted on chain in block {block}", now,
                                   mined=(block, bhash, att.hash))
            log.warning("chain %d: tx %d (%s) reverted on chain in block %d", self.chain_id,
                        row.id, _hex(att.hash), block)
            return
        if row.state == "sent" or row.mined_hash != bhash or row.mined_block != block:
            if row.state == "mined":
                log.info("chain %d: tx %d moved to block %d after a reorg", self.chain_id, row.id, block)
            await store.set_mined(self.outbox, row.id, block, bhash, att.hash, status, now)
            self._bump_next.discard(row.id)
        if head - block >= self.confirmations:
            # the receipt read this pass is canonical on the node; it was in the same block
            # as recorded (or the row was just updated to it), so the confirmation holds
            await store.set_confirmed(self.outbox, row.id, bhash, now)

    async def _maybe_bump(self, row: _Row, last: _Attempt, head: int, fees: list[Fees]) -> None:
        sent_block = last.sent_block if last.sent_block is not None else head
        if head < sent_block:
            # the chain went backwards (reorg, or a node that lost its state): resend as is
            await self._broadcast(row, last, head)
            return
        if head - sent_block < self.stuck_blocks and row.id not in self._bump_next:
            return
        fee = await self._fees(fees)
        bumped = bumped_fees(last.max_fee, last.prio, fee, self.bump_percent, self.max_fee_cap_wei)
        if bumped is None:
            min_max = math.ceil(last.max_fee * (1.0 + self.bump_percent / 100.0))
            self._warn_once(row.id, "cap",
                            "chain %d: tx %d (nonce %d) stuck since block %d; a %.1f%% bump to %d "
                            "wei/gas would exceed max_fee_cap_wei %d: waiting, re-broadcasting the "
                            "same bytes", self.chain_id, row.id, last.nonce, sent_block,
                            self.bump_percent, min_max, self.max_fee_cap_wei)
            await self._broadcast(row, last, head)
            return
        max_fee, prio = bumped
        gas = row.gas if row.gas is not None else 0
        raw, txhash = self._sign(row, last.nonce, gas, max_fee, prio)
        att = _Attempt(row.id, last.attempt + 1, last.nonce, txhash, raw, max_fee, prio, None)
        await store.add_attempt(self.outbox, att, self.clock.time())
        self._bump_next.discard(row.id)
        log.info("chain %d: tx %d (nonce %d) not mined since block %d: attempt %d with fees "
                 "%d/%d wei/gas (was %d/%d)", self.chain_id, row.id, last.nonce, sent_block,
                 att.attempt, max_fee, prio, last.max_fee, last.prio)
        await self._broadcast(row, att, head)

    async def _send_signed(self, head: int, fees: list[Fees]) -> None:
        for row in await self._rows(("signed",)):
            att = await self._latest_attempt(row.id)
            if att is None:
                continue
            if row.id in self._bump_next:  # refused for its fee last time: re-sign higher
                await self._maybe_bump(row, att, head, fees)
            else:
                await self._broadcast(row, att, head)

    async def _send_queued(self, head: int, fees: list[Fees]) -> None:
        rows = await self._rows(("queued",), limit=_MAX_PER_PASS)
        if not rows:
            return
        fee = await self._fees(fees)
        needed_fee = fee.base + fee.prio
        priced = new_tx_fees(fee, self.max_fee_cap_wei)
        if priced is None:
            if not self.paused_fee_cap:
                log.warning("chain %d: fee needed %d wei/gas (base %d + priority %d) above "
                            "max_fee_cap_wei %d: sending waits, nothing lost", self.chain_id,
                            needed_fee, fee.base, fee.prio, self.max_fee_cap_wei)
            self.paused_fee_cap = True
            raise _Stop
        if self.paused_fee_cap:
            log.info("chain %d: fee back under max_fee_cap_wei: sending resumed", self.chain_id)
            self.paused_fee_cap = False
        max_fee, prio = priced
        balance = await self._balance()
        latest = await self._call("eth_getBlockByNumber", "latest", False)
        block_gas = codec.quantity(latest.get("gasLimit") if isinstance(latest, dict) else None,
                                   "eth_getBlockByNumber", "result.gasLimit")
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
                await store.set_failed(self.outbox, row.id, reason, self.clock.time())
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
        def sign(nonce: int) -> tuple[bytes, bytes, int, int]:
            raw, txhash = self._sign(row, nonce, gas, max_fee, prio)
            return raw, txhash, max_fee, prio

        return await store.sign_intent(self.outbox, self.account, row.id, gas, sign, self.clock.time())

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
        return await store.raise_counter(self.outbox, self.account, chain_pending, allow_lower=allow_lower)

    async def _estimate(self, row: _Row) -> int | None:
        params: dict[str, Any] = {"from": self.key.address, "to": _hex(row.to),
                                  "data": _hex(row.data), "value": hex(row.value)}
        try:
            return math.ceil(codec.quantity(await self._call("eth_estimateGas", params), "eth_estimateGas", "result")
                             * _GAS_MARGIN)
        except RpcError as e:
            msg, code = str(e), e.code
        kind = classify(msg, code)
        if kind == "funds":
            self._low_balance(await self._balance(), row.value + 21_000 * self.max_fee_cap_wei)
        if kind == "revert":
            if await self._count(_IN_FLIGHT):
                # may depend on one of our txs not yet mined: keep order, re-estimate later
                log.debug("chain %d: estimate of tx %d reverts with txs in flight; retry later",
                          self.chain_id, row.id)
                raise _Stop
            reason = revert_reason(msg)
            await store.set_failed(self.outbox, row.id, reason, self.clock.time())
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
            kind = classify(msg, refused.code)
            if kind != "known":
                if kind == "never_fits" or is_size_refusal(msg):
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
                    self._low_balance(await self._balance(), (row.gas or 0) * att.max_fee + row.value)
                self._warn_once(row.id, msg, "chain %d: node refused tx %d (nonce %d, %s): %s "
                                "(code %s); kept, retrying", self.chain_id, row.id, att.nonce,
                                _hex(att.hash), msg, refused.code)
                await store.set_error(self.outbox, row.id, msg, self.clock.time())
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
        await store.mark_sent(self.outbox, row.id, att.attempt, head, self.clock.time())

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
        await store.requeue(self.outbox, row.id, f"nonce {att.nonce} consumed outside this sender; re-queued",
                            self.clock.time())
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

        def sign_filler(filler_id: int) -> tuple[bytes, bytes]:
            frow = _Row(filler_id, self.sender, b"", 0, 21_000, att.nonce, "signed", None, None)
            return self._sign(frow, att.nonce, 21_000, att.max_fee, att.prio)

        filler = await store.fail_for_size(self.outbox, self.account, row.id, att, f"refused for size: {msg[:400]}",
                                           sign_filler, self.clock.time())
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

    async def _fees(self, cache: list[Fees]) -> Fees:
        if not cache:
            cache.append(await market_fees(self.rpc))
        return cache[0]

    async def _balance(self) -> int:
        return codec.quantity(await self._call("eth_getBalance", self.key.address, "latest"),
                              "eth_getBalance", "result")

    async def _pending_nonce(self) -> int:
        return codec.quantity(await self._call("eth_getTransactionCount", self.key.address, "pending"),
                              "eth_getTransactionCount", "result")

    async def _receipts(self, hashes: list[bytes]) -> list[dict[str, Any] | None]:
        answers = await asyncio.gather(*(self._call("eth_getTransactionReceipt", _hex(h))
                                         for h in hashes))
        return [r if isinstance(r, dict) and r.get("blockNumber") else None for r in answers]

    async def _call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC request. Raises NodeUnavailable, RpcError, RpcProtocolError."""
        if not self._open:
            raise ChainError("tx sender is not open (use it as an async context manager)")
        return await self.rpc.call(method, params)

    async def _rows(self, states: tuple[str, ...], limit: int = -1) -> list[_Row]:
        return await store.rows_in_states(self.outbox, self.account, states, limit)

    async def _count(self, states: tuple[str, ...]) -> int:
        return await store.count_in_states(self.outbox, self.account, states)

    async def _attempts(self, tx_id: int) -> list[_Attempt]:
        return await store.attempts(self.outbox, tx_id)

    async def _latest_attempt(self, tx_id: int) -> _Attempt | None:
        atts = await self._attempts(tx_id)
        return atts[-1] if atts else None


# ---------------------------------------------------------------- module helpers


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _describe(v: object) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"{len(v)} bytes"
    return type(v).__name__
