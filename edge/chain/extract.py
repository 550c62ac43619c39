"""Turn a node's raw JSON-RPC answers for one block into records (pure functions).

Inputs are the ``result`` values of ``eth_getBlockByNumber(n, false)``,
``eth_getBlockReceipts(n)`` and optionally ``trace_block(n)`` (OpenEthereum/Parity trace
format) or ``debug_traceBlockByNumber(n, {"tracer": "callTracer"})`` (geth). Every
field is validated; a malformed answer raises :class:`edge.errors.RpcProtocolError`
naming the method and the field path.

Deployments: a receipt's ``contractAddress`` (status 1) is the top-level deployment of
that transaction; with traces, every successful CREATE/CREATE2 frame of the transaction
counts, in depth-first (pre-)order, which is also the order both trace formats use. The
``create_index`` of a deployment is its ordinal in that order.

Both trace formats also carry the runtime code each creation returned (Parity
``result.code``, callTracer ``output``): :attr:`Creation.code`, which spares the
``eth_getCode`` calls outside ``ingest.verify = "strict"``. It is left out (None, so the
code is read at the block as before) where it could differ from the account's code at
the end of the block: the address self-destructs in the same block (a SELFDESTRUCT frame,
Parity ``suicide``). A creation under a reverted frame is no deployment in either format.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from edge.rpc import codec
from edge.errors import BlockChanged, RpcProtocolError
from edge.chain.records import BlockRecord, LogRecord

__all__ = ["Creation", "parse_block", "parse_receipts", "creations_from_receipts",
           "creations_from_parity_traces", "creations_from_call_traces"]


@dataclass(frozen=True, slots=True)
class Creation:
    """A deployment found in a block, before its runtime code is read.

    ``tx_index``/``create_index`` form the record key with the block number; ``address``
    and ``creator`` are 20 bytes, ``tx_hash`` 32 bytes.
    """

    tx_index: int
    create_index: int
    tx_hash: bytes
    address: bytes
    creator: bytes
    code: bytes | None = None
    """Runtime code the creation's trace returned; None from receipts, or when it may not
    be the account's code at the end of the block (see the module's docstring)."""


def parse_block(raw: Any) -> tuple[BlockRecord, Mapping[str, Any]]:
    """Validate an ``eth_getBlockByNumber`` result; return its summary and the raw header.

    Raises: RpcProtocolError when a field is missing or malformed.
    """
    m = "eth_getBlockByNumber"
    h = codec.as_dict(raw, m, "result")
    txs = codec.as_list(codec.field(h, "transactions", m, "result"), m, "result.transactions")
    rec = BlockRecord(
        number=codec.quantity(codec.field(h, "number", m, "result"), m, "result.number"),
        hash=codec.hash32(codec.field(h, "hash", m, "result"), m, "result.hash"),
        parent_hash=codec.hash32(codec.field(h, "parentHash", m, "result"), m, "result.parentHash"),
        timestamp=codec.quantity(codec.field(h, "timestamp", m, "result"), m, "result.timestamp"),
        miner=codec.address(codec.field(h, "miner", m, "result"), m, "result.miner"),
        tx_count=len(txs),
    )
    return rec, h


@dataclass(frozen=True, slots=True)
class _Receipt:
    tx_index: int
    tx_hash: bytes
    sender: bytes
    ok: bool
    contract: bytes | None


def parse_receipts(
    raw: Any, block: BlockRecord, watch: Collection[bytes] = ()
) -> tuple[list[LogRecord], list[Creation]]:
    """Validate ``eth_getBlockReceipts`` for ``block``; return its logs and top-level
    deployments (``create_index`` 0).

    Args:
        raw: the result (a list of receipts).
        block: the block they belong to; every receipt and log must name its hash.
        watch: 20-byte emitter addresses to keep; empty keeps all logs.

    Raises: RpcProtocolError (malformed), BlockChanged (receipts of another block: a reorg raced
        the request).
    """
    m = "eth_getBlockReceipts"
    receipts = codec.as_list(raw, m, "result")
    if len(receipts) != block.tx_count:
        raise RpcProtocolError(
            m, f"block {block.number} has {block.tx_count} transactions but {len(receipts)} receipts"
        )
    logs: list[LogRecord] = []
    top: list[Creation] = []
    for i, r in enumerate(_receipts(receipts, block, logs, watch)):
        if r.tx_index != i:
            raise RpcProtocolError(m, f"result[{i}].transactionIndex is {r.tx_index}")
        if r.ok and r.contract is not None:
            top.append(Creation(r.tx_index, 0, r.tx_hash, r.contract, r.sender))
    return logs, top


def _receipts(
    receipts: list[Any], block: BlockRecord, logs: list[LogRecord], watch: Collection[bytes]
) -> Iterator[_Receipt]:
    m = "eth_getBlockReceipts"
    for i, raw in enumerate(receipts):
        p = f"result[{i}]"
        r = codec.as_dict(raw, m, p)
        bh = r.get("blockHash")
        if bh is not None and codec.hash32(bh, m, f"{p}.blockHash") != block.hash:
            raise BlockChanged(m, f"{p} belongs to another block than {block.number} (reorg race)")
        tx_index = codec.quantity(codec.field(r, "transactionIndex", m, p), m, f"{p}.transactionIndex")
        tx_hash = codec.hash32(codec.field(r, "transactionHash", m, p), m, f"{p}.transactionHash")
        status = r.get("status")
        ok = True if status is None else codec.quantity(status, m, f"{p}.status") == 1
        ca = r.get("contractAddress")
        contract = codec.address(ca, m, f"{p}.contractAddress") if ca else None
        for j, lraw in enumerate(codec.as_list(codec.field(r, "logs", m, p), m, f"{p}.logs")):
            lp = f"{p}.logs[{j}]"
            lg = codec.as_dict(lraw, m, lp)
            if lg.get("removed") is True:
                continue
            emitter = codec.address(codec.field(lg, "address", m, lp), m, f"{lp}.address")
            if watch and emitter not in watch:
                continue
            topics = codec.as_list(codec.field(lg, "topics", m, lp), m, f"{lp}.topics")
            if len(topics) > 4:
                raise RpcProtocolError(m, f"{lp}.topics has {len(topics)} entries (max 4)")
            logs.append(
                LogRecord(
                    block_number=block.number,
                    tx_index=tx_index,
                    log_index=codec.quantity(codec.field(lg, "logIndex", m, lp), m, f"{lp}.logIndex"),
                    tx_hash=tx_hash,
                    address=emitter,
                    topics=tuple(codec.hash32(t, m, f"{lp}.topics[{k}]") for k, t in enumerate(topics)),
                    data=codec.data(codec.field(lg, "data", m, lp), m, f"{lp}.data"),
                )
            )
        yield _Receipt(tx_index, tx_hash, codec.address(codec.field(r, "from", m, p), m, f"{p}.from"), ok, contract)


def creations_from_receipts(top: Sequence[Creation]) -> list[Creation]:
    """Deployments when no traces are available: the receipts' top-level ones only."""
    return list(top)


def creations_from_parity_traces(raw: Any, block: BlockRecord, tx_hashes: Sequence[bytes]) -> list[Creation]:
    """Deployments from a ``trace_block`` result (OpenEthereum/Parity/anvil format).

    Every trace of ``type == "create"`` without ``error`` and with ``result.address``
    counts, in the node's order (transaction position, then depth-first), except under a
    frame that reverted (by ``traceAddress``: its children were reverted with it, though
    Parity-format traces do not mark them), with ``result.code`` as :attr:`Creation.code`
    unless the address self-destructs in the block.

    Raises: RpcProtocolError (malformed, or traces of another block).
    """
    m = "trace_block"
    out: list[Creation] = []
    per_tx: dict[int, int] = {}
    failed: dict[int, set[tuple[int, ...]]] = {}  # per transaction: traceAddress of frames with an error
    destroyed: set[bytes] = set()
    for i, traw in enumerate(codec.as_list(raw, m, "result")):
        p = f"result[{i}]"
        t = codec.as_dict(traw, m, p)
        bh = t.get("blockHash")
        if bh is not None and codec.hash32(bh, m, f"{p}.blockHash") != block.hash:
            raise BlockChanged(m, f"{p} belongs to another block than {block.number} (reorg race)")
        kind = t.get("type")
        if kind == "suicide":
            act = codec.as_dict(codec.field(t, "action", m, p), m, f"{p}.action")
            destroyed.add(codec.address(codec.field(act, "address", m, f"{p}.action"), m, f"{p}.action.address"))
            continue
        pos = t.get("transactionPosition")
        if pos is None:  # block reward traces have no position
            continue
        if not isinstance(pos, int) or not 0 <= pos < len(tx_hashes):
            raise RpcProtocolError(m, f"{p}.transactionPosition {pos!r} out of range")
        where = _trace_address(t, m, p)
        if t.get("error"):
            failed.setdefault(pos, set()).add(where)
            continue
        if kind != "create":
            continue
        result = t.get("result")
        if not isinstance(result, Mapping) or not result.get("address"):
            continue
        above = failed.get(pos, ())
        if any(where[:d] in above for d in range(len(where))):
            continue  # a frame above it reverted, and this creation with it (as callTracer frames show)
        action = codec.as_dict(codec.field(t, "action", m, p), m, f"{p}.action")
        k = per_tx.get(pos, 0)
        per_tx[pos] = k + 1
        code = result.get("code")
        out.append(
            Creation(
                tx_index=pos,
                create_index=k,
                tx_hash=tx_hashes[pos],
                address=codec.address(result["address"], m, f"{p}.result.address"),
                creator=codec.address(codec.field(action, "from", m, f"{p}.action"), m, f"{p}.action.from"),
                code=None if code is None else codec.data(code, m, f"{p}.result.code"),
            )
        )
    return _without_destroyed_code(out, destroyed)


def _trace_address(t: Mapping[str, Any], m: str, p: str) -> tuple[int, ...]:
    """A Parity trace's ``traceAddress`` (its path from the transaction's top frame)."""
    ta = t.get("traceAddress", [])
    if not isinstance(ta, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in ta):
        raise RpcProtocolError(m, f"{p}.traceAddress: expected an array of integers, got {ta!r:.80}")
    return tuple(ta)


def _without_destroyed_code(out: list[Creation], destroyed: Collection[bytes]) -> list[Creation]:
    """``out`` with :attr:`Creation.code` dropped for addresses that self-destruct in the
    block (their code at the end of the block is not what the creation returned)."""
    if not destroyed:
        return out
    return [replace(c, code=None) if c.address in destroyed else c for c in out]


def creations_from_call_traces(raw: Any, tx_hashes: Sequence[bytes]) -> list[Creation]:
    """Deployments from ``debug_traceBlockByNumber`` with geth's ``callTracer``.

    One entry per transaction (``{"result": frame}``); successful CREATE/CREATE2 frames
    are taken depth-first, with ``output`` as :attr:`Creation.code` unless the address
    self-destructs in the block (a ``SELFDESTRUCT`` frame ``from`` it). Raises:
    RpcProtocolError when malformed.
    """
    m = "debug_traceBlockByNumber"
    entries = codec.as_list(raw, m, "result")
    if len(entries) != len(tx_hashes):
        raise RpcProtocolError(m, f"{len(entries)} traces for {len(tx_hashes)} transactions")
    out: list[Creation] = []
    destroyed: set[bytes] = set()
    for pos, e in enumerate(entries):
        frame = codec.as_dict(codec.field(codec.as_dict(e, m, f"result[{pos}]"), "result", m, f"result[{pos}]"),
                              m, f"result[{pos}].result")
        k = 0
        stack: list[tuple[Mapping[str, Any], str]] = [(frame, f"result[{pos}].result")]
        while stack:
            f, p = stack.pop()
            kind = f.get("type")
            if kind in ("CREATE", "CREATE2") and not f.get("error") and f.get("to"):
                output = f.get("output")
                out.append(Creation(pos, k, tx_hashes[pos], codec.address(f["to"], m, f"{p}.to"),
                                    codec.address(codec.field(f, "from", m, p), m, f"{p}.from"),
                                    None if output is None else codec.data(output, m, f"{p}.output")))
                k += 1
            elif kind == "SELFDESTRUCT" and not f.get("error"):
                destroyed.add(codec.address(codec.field(f, "from", m, p), m, f"{p}.from"))
            if f.get("error"):
                continue  # a reverted frame's children were reverted too
            calls = f.get("calls") or []
            for j in range(len(calls) - 1, -1, -1):
                stack.append((codec.as_dict(calls[j], m, f"{p}.calls[{j}]"), f"{p}.calls[{j}]"))
    return _without_destroyed_code(out, destroyed)
