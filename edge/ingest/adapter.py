"""The ingest adapter: every JSON-RPC request the extract stage makes, and how its
answers become records (ethereum-etl's split: the streamer knows block numbers and a
sync point, the adapter does the I/O).

Per block range one JSON-RPC batch asks for ``eth_getBlockByNumber`` (hashes only),
``eth_getBlockReceipts`` and the traces that reveal factory-made contracts:
``trace_block`` (Parity/OpenEthereum traces; anvil, Erigon, Nethermind, Besu) or
``debug_traceBlockByNumber`` with geth's ``callTracer``, else (a node with only
``debug_traceTransaction``, e.g. EthereumJS 0.10.5) one more batch per range that traces
every transaction of the range with ``callTracer``, else receipts alone (only top-level
deployments are then seen, said once). A second batch reads the runtime code
of the new contracts with ``eth_getCode`` at the block hash (EIP-1898); outside
``strict`` only for those whose trace did not carry it (both trace formats return the
deployed code, so with traces that batch is usually empty). What the node
offers is learnt from its first ``MethodNotSupported`` answer and kept for the session.

Verify, do not trust (:mod:`edge.chain.verify`, mode ``ingest.verify``): every header's
hash is recomputed from its fields (``headers``), the receipts are rebuilt into the
receipts trie and compared with ``receiptsRoot`` with every stored field bound
(``receipts``), and every runtime code is checked against the account's ``codeHash`` in an
EIP-1186 ``eth_getProof`` proof verified against ``stateRoot`` (``strict``; one batch with
the ``eth_getCode`` calls). A node that cannot serve proofs is found by
:func:`edge.chain.proof_probe.probe_proofs` once per connection.

Errors: ChainError subclasses only (the stage reconnects); :class:`~edge.errors.BlockChanged`
when a reorg raced the read (the stage keeps the blocks before it); a
:class:`~edge.chain.verify.VerificationError` (an RpcProtocolError) when an answer does not
match its sealed header, naming block, record, expected and got.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge.chain.extract import (
    Creation,
    creations_from_call_traces,
    creations_from_parity_traces,
    parse_block,
    parse_receipts,
)
from edge.chain.records import BlockRecord, LogRecord
from edge.chain.verify import verify_code, verify_header, verify_receipts
from edge.errors import BlockChanged, MethodNotSupported, RpcError, RpcProtocolError
from edge.rpc import codec
from edge.rpc.base import Call, JsonRpc
from edge.rpc.meter import metered

__all__ = ["FetchedBlock", "ChainReader", "TraceMode", "VerifyMode"]

log = logging.getLogger("edge.ingest")

TraceMode = Literal["auto", "trace_block", "debug_trace", "debug_tx", "off"]
"""How factory-made contracts are found: ``trace_block``; ``debug_trace``
(``debug_traceBlockByNumber``); ``debug_tx`` (``debug_traceTransaction`` of each
transaction, batched per range); ``off`` (receipts only); ``auto`` tries them in that order."""
VerifyMode = Literal["strict", "receipts", "headers", "off"]

_CODES_PER_BATCH = 256
"""``eth_getCode`` requests per JSON-RPC batch (at most 256 x 24 KiB of code per answer)."""
_TRACE_METHOD: dict[str, str] = {"trace_block": "trace_block", "debug_trace": "debug_traceBlockByNumber",
                                  "debug_tx": "debug_traceTransaction"}
"""The method that served :attr:`Creation.code` in each trace mode (named in errors)."""
_PROOFS_PER_BATCH = 32
"""Contracts per batch when each also needs an ``eth_getProof``: a node spends several ms of
CPU per proof (anvil about 6 ms here), so a large batch would outlast the request timeout."""


@dataclass(frozen=True, slots=True)
class FetchedBlock:
    """One block as read from the node, before its code is fetched.

    Attributes: block: the header summary. raw: the header object as the node sent it
    (for the seal check). logs: its kept logs. creations: its deployments (top level and,
    with traces, factory-made).
    """

    block: BlockRecord
    raw: Mapping[str, Any]
    logs: tuple[LogRecord, ...]
    creations: tuple[Creation, ...]


class ChainReader:
    """Reads blocks, receipts, traces and code over one open :class:`JsonRpc`.

    Args:
        rpc: the open connection (owned by the caller).
        watch: 20-byte emitter addresses whose logs are kept (empty: all).
        traces: ``"auto"`` (detect), or a fixed :data:`TraceMode`.
        verify: what is checked against each sealed header (:data:`VerifyMode`).
    """

    def __init__(self, rpc: JsonRpc, watch: frozenset[bytes], traces: TraceMode = "auto",
                 verify: VerifyMode = "strict") -> None:
        self.rpc = rpc
        self.watch = watch
        self.traces: TraceMode = traces
        self.verify: VerifyMode = verify
        self.receipts_by_block = True
        self.answer_bytes = 0
        """Size (bytes of JSON text) of the largest answer of the last :meth:`blocks` call
        (its block batch, and the per-transaction traces or receipts it needed) when the
        transport tells it (:class:`edge.rpc.meter.AnswerMeter`: :class:`edge.rpc.ws.WsRpc`,
        :class:`edge.rpc.http.HttpRpc`); 0 when unknown. Only that call's own answers
        count, whatever else runs on the connection meanwhile; read it right after the
        ``await`` (no other task runs in between)."""
        self.by_number = False
        """Name blocks by number in ``eth_getCode``/``eth_getProof`` (a node without
        EIP-1898 block-hash arguments; see :class:`edge.chain.proof_probe.ProofSupport`)."""

    async def chain_id(self) -> int:
        """``eth_chainId`` (EIP-695)."""
        return codec.quantity(await self.rpc.call("eth_chainId"), "eth_chainId", "result")

    async def head(self) -> int:
        """``eth_blockNumber``: the node's head."""
        return codec.quantity(await self.rpc.call("eth_blockNumber"), "eth_blockNumber", "result")

    def _calls(self, lo: int, hi: int) -> tuple[list[Call], int]:
        calls: list[Call] = []
        for n in range(lo, hi + 1):
            calls.append(("eth_getBlockByNumber", [hex(n), False]))
            if self.receipts_by_block:
                calls.append(("eth_getBlockReceipts", [hex(n)]))
            if self.traces in ("auto", "trace_block"):
                calls.append(("trace_block", [hex(n)]))
            elif self.traces == "debug_trace":
                calls.append(("debug_traceBlockByNumber", [hex(n), {"tracer": "callTracer"}]))
        return calls, 1 + int(self.receipts_by_block) + int(self.traces in ("auto", "trace_block", "debug_trace"))

    def _downgrade(self, e: MethodNotSupported) -> bool:
        """Learn from a MethodNotSupported answer; False when nothing is left to try."""
        if e.method == "eth_getBlockReceipts" and self.receipts_by_block:
            log.info("node has no eth_getBlockReceipts: reading receipts per transaction")
            self.receipts_by_block = False
        elif e.method == "trace_block" and self.traces == "auto":
            log.info("node has no trace_block: trying debug_traceBlockByNumber (callTracer)")
            self.traces = "debug_trace"
        elif e.method == "debug_traceBlockByNumber" and self.traces in ("auto", "debug_trace"):
            log.info("node has no debug_traceBlockByNumber: tracing each transaction with "
                     "debug_traceTransaction (callTracer), one batch per block range")
            self.traces = "debug_tx"
        elif e.method == "debug_traceTransaction" and self.traces == "debug_tx":
            log.warning("node offers no call traces (no trace_block, no debug_traceBlockByNumber, "
                        "no debug_traceTransaction with callTracer): contracts created by other "
                        "contracts (CREATE/CREATE2 inside a call: factories, proxies' clones) cannot "
                        "be seen; only top-level deployments (receipts) are")
            self.traces = "off"
        else:
            return False
        return True

    async def blocks(self, lo: int, hi: int) -> list[FetchedBlock]:
        """Blocks ``lo..hi`` with their logs and deployments, in order; sets
        :attr:`answer_bytes`.

        The list stops early at the first block the node does not have (``null``: past
        its head, or a lagging node) and at a block that changed while it was read.
        Raises: ChainError (malformed answers name the method and field).
        """
        with metered() as meter:
            out = await self._blocks(lo, hi)
        self.answer_bytes = meter.largest  # the largest of this range's batches
        return out

    async def _blocks(self, lo: int, hi: int) -> list[FetchedBlock]:
        while True:
            calls, per_block = self._calls(lo, hi)
            try:
                results = await self.rpc.batch(calls)
                break
            except MethodNotSupported as e:
                if not self._downgrade(e):
                    raise
        if self.traces == "auto":
            self.traces = "trace_block"
        heads: list[tuple[BlockRecord, Mapping[str, Any], list[bytes], list[Any]]] = []
        for i in range(hi - lo + 1):
            chunk = results[i * per_block:(i + 1) * per_block]
            if chunk[0] is None:  # not known to the node (yet)
                break
            block, raw = parse_block(chunk[0])
            if block.number != lo + i:
                raise RpcProtocolError("eth_getBlockByNumber", f"asked for {lo + i}, got {block.number}")
            if self.verify != "off":
                verify_header(raw)  # the hash we link and store is the one the sealer signed
            tx_hashes = [codec.hash32(t, "eth_getBlockByNumber", f"result.transactions[{k}]")
                         for k, t in enumerate(raw["transactions"])]
            heads.append((block, raw, tx_hashes, chunk))
        tx_traces = await self._trace_transactions([h for _, _, hashes, _ in heads for h in hashes])
        out: list[FetchedBlock] = []
        for block, raw, tx_hashes, chunk in heads:
            receipts = chunk[1] if self.receipts_by_block else await self._receipts_per_tx(tx_hashes)
            try:
                if self.verify in ("receipts", "strict"):
                    verify_receipts(raw, receipts)
                logs, creations = parse_receipts(receipts, block, self.watch)
                if self.traces == "trace_block":
                    creations = creations_from_parity_traces(chunk[-1], block, tx_hashes)
                elif self.traces == "debug_trace":
                    creations = creations_from_call_traces(chunk[-1], tx_hashes)
                elif self.traces == "debug_tx" and tx_traces is not None:
                    creations = creations_from_call_traces(
                        [{"txHash": "0x" + h.hex(), "result": tx_traces[h]} for h in tx_hashes], tx_hashes)
            except BlockChanged as e:
                log.info("block %d changed while it was read: %s", block.number, e)
                break
            out.append(FetchedBlock(block, raw, tuple(logs), tuple(creations)))
        return out

    async def _trace_transactions(self, tx_hashes: Sequence[bytes]) -> dict[bytes, Any] | None:
        """In ``debug_tx`` mode, the ``callTracer`` frame of every transaction of the range
        (one ``debug_traceTransaction`` batch), keyed by hash; None in other modes, or
        when the node turns out to have no ``debug_traceTransaction`` (traces go off, said
        once). Raises ChainError: e.g. RpcError for a transaction the node no longer knows
        (a reorg raced the read; the stage reconnects and reads the range again)."""
        if self.traces != "debug_tx" or not tx_hashes:
            return None
        calls: list[Call] = [("debug_traceTransaction", ["0x" + h.hex(), {"tracer": "callTracer"}])
                             for h in tx_hashes]
        try:
            frames = await self.rpc.batch(calls)
        except MethodNotSupported as e:
            if not self._downgrade(e):
                raise
            return None
        except RpcError as e:
            if not _no_call_tracer(e):
                raise
            # Hardhat 2.26 (EDR): -32602 "Hardhat currently only supports the default
            # tracer, so no tracer parameter should be passed": struct logs only
            self._downgrade(MethodNotSupported(e.method, e.code, str(e)))
            return None
        return dict(zip(tx_hashes, frames))

    async def _receipts_per_tx(self, tx_hashes: Sequence[bytes]) -> list[Any]:
        return list(await self.rpc.batch([("eth_getTransactionReceipt", ["0x" + h.hex()]) for h in tx_hashes]))

    async def codes(self, items: Sequence[tuple[FetchedBlock, Creation]]) -> dict[tuple[int, bytes], bytes]:
        """Runtime code of each ``(block, creation)`` at that block's hash (EIP-1898), keyed
        by ``(block number, 20-byte address)``; in ``strict`` mode each is proven against
        the block's ``stateRoot`` (EIP-1186 ``eth_getProof`` in the same batch). Outside
        ``strict``, a creation whose trace carried its code (:attr:`Creation.code`) is
        not asked for again: the trace is the same node's answer, and the extraction left
        it out wherever it could differ from ``eth_getCode`` at the block; in ``strict``
        such a code is not read either, only proven (``keccak(code)`` must be the proof's
        ``codeHash``, so a trace that lies is a CodeHashMismatch like a lying
        ``eth_getCode``).

        Raises: ChainError; CodeHashMismatch / AccountProofInvalid (a node fault)."""
        prove = self.verify == "strict"
        per_batch = _PROOFS_PER_BATCH if prove else _CODES_PER_BATCH
        out: dict[tuple[int, bytes], bytes] = {}
        if not prove:
            for f, c in items:
                if c.code is not None:
                    out[(f.block.number, c.address)] = c.code
            items = [(f, c) for f, c in items if c.code is None]
        for lo in range(0, len(items), per_batch):  # bounded batches: each answers within the timeout
            part = items[lo:lo + per_batch]
            res = await self.rpc.batch(self._code_calls(part, prove))
            i = 0
            for f, c in part:
                if prove and c.code is not None:  # the trace's code, proven by the account's codeHash
                    code = c.code
                    verify_code(f.raw, c.address, res[i], code, source=_TRACE_METHOD.get(self.traces, "trace"))
                    i += 1
                else:
                    code = codec.data(res[i], "eth_getCode", f"0x{c.address.hex()}@{f.block.number}")
                    if prove:
                        verify_code(f.raw, c.address, res[i + 1], code)
                    i += 1 + int(prove)
                out[(f.block.number, c.address)] = code
        return out

    def _code_calls(self, part: Sequence[tuple[FetchedBlock, Creation]], prove: bool) -> list[Call]:
        """The batch for :meth:`codes`: ``eth_getCode`` unless ``prove`` and the trace
        carried the code, then ``eth_getProof`` when ``prove``, per item in order."""
        calls: list[Call] = []
        for f, c in part:
            at: Any = hex(f.block.number) if self.by_number else {"blockHash": "0x" + f.block.hash.hex()}
            if not (prove and c.code is not None):
                calls.append(("eth_getCode", ["0x" + c.address.hex(), at]))
            if prove:
                calls.append(("eth_getProof", ["0x" + c.address.hex(), [], at]))
        return calls

    async def headers(self, lo: int, hi: int, per_batch: int = 256) -> list[Mapping[str, Any]]:
        """Raw headers ``lo..hi`` (``eth_getBlockByNumber``, hashes only), in order, in
        batches of ``per_batch``; stops early at the first block the node does not have.
        For replaying the Clique snapshot over blocks already stored. Raises ChainError."""
        out: list[Mapping[str, Any]] = []
        m = "eth_getBlockByNumber"
        for start in range(lo, hi + 1, per_batch):
            end = min(hi, start + per_batch - 1)
            res = await self.rpc.batch([(m, [hex(n), False]) for n in range(start, end + 1)])
            for n, r in zip(range(start, end + 1), res):
                if r is None:
                    return out
                h = codec.as_dict(r, m, "result")
                got = codec.quantity(codec.field(h, "number", m, "result"), m, "result.number")
                if got != n:
                    raise RpcProtocolError(m, f"asked for {n}, got {got}")
                out.append(h)
        return out

    async def canonical_hashes(self, lo: int, hi: int) -> dict[int, bytes | None]:
        """The node's canonical hash of each block ``lo..hi``; None where the node has no
        such block (yet): a lagging node, not evidence of a reorg. Raises ChainError."""
        res = await self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(lo, hi + 1)])
        out: dict[int, bytes | None] = {}
        m = "eth_getBlockByNumber"
        for n, r in zip(range(lo, hi + 1), res):
            out[n] = None if r is None else codec.hash32(
                codec.field(codec.as_dict(r, m, "result"), "hash", m, "result"), m, "result.hash")
        return out


def _no_call_tracer(e: RpcError) -> bool:
    """True when a ``debug_traceTransaction`` error says the node has no ``callTracer``
    (invalid params -32602, or words about the tracer), not that the call failed."""
    return e.code == -32602 or "tracer" in str(e).lower()
