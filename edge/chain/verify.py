"""Verify, do not trust: check a node's answers against the block header they hang off.

Light-client style checks of the JSON-RPC answers the ingest stage reads (pure functions,
no I/O). A device then attests only what the block's sealers signed, whatever its node
says:

* **Header** (:func:`verify_header`, :func:`verify_links`): the block hash is recomputed
  from the header fields (keccak256 of the RLP header, per fork: London ``baseFeePerGas``,
  Shanghai ``withdrawalsRoot``, Cancun ``blobGasUsed, excessBlobGas,
  parentBeaconBlockRoot``, Prague ``requestsHash``; rules in :mod:`edge.chain.poa`) and
  must equal the stated ``hash``; each header's ``parentHash`` must be the hash of the
  one before. The PoA seal itself is :class:`edge.chain.poa.SealChecker`'s job.
* **Transactions** (:func:`verify_transactions`): each transaction of
  ``eth_getBlockByNumber(n, true)`` is encoded as its consensus envelope (legacy,
  EIP-2930, EIP-1559, EIP-4844, EIP-7702), its hash must equal keccak256 of that
  envelope, the trie ``rlp(index) -> envelope`` must have the header's
  ``transactionsRoot``, and the sender is recovered from the signature (secp256k1).
* **Receipts** (:func:`verify_receipts`): each receipt of ``eth_getBlockReceipts(n)`` is
  encoded as ``type || rlp([status, cumulativeGasUsed, logsBloom, logs])`` (legacy: no
  type byte; EIP-658 ``status``, or the pre-Byzantium state ``root``) and the trie
  ``rlp(index) -> receipt`` must have the header's ``receiptsRoot`` (Yellow Paper §4.3.1,
  EIP-2718). The receipt fields outside that encoding that the agent uses are bound too:
  ``transactionHash``/``from``/``contractAddress`` to the verified transactions (the
  deployment address is ``keccak256(rlp([sender, nonce]))[12:]``), ``logIndex`` to the
  log's position in the block, ``blockHash``/``blockNumber``/``transactionIndex`` to the
  header and the receipt's position.
* **Code** (:func:`verify_code`): an EIP-1186 ``eth_getProof`` account proof is checked
  against the header's ``stateRoot`` (Merkle-Patricia proof, key ``keccak256(address)``,
  value ``rlp([nonce, balance, storageRoot, codeHash])``) and the runtime code read with
  ``eth_getCode`` must hash to that ``codeHash``.

Account proofs are walked node by node from the state root (``_walk_proof``, each node
found by its keccak256; tested equal to the ``trie`` package's ``HexaryTrie.get_from_proof``
on real and tampered proofs, and about 100x faster).
The transactions and receipts roots are built by a lean ordered-trie builder and RLP
encoder (each node encoded once), tested equal to ``HexaryTrie`` and ``rlp.encode`` and
about 10x / 4x faster (``benchmarks/verify_cost.py --micro``). Each mismatch raises a :class:`VerificationError` (an
:class:`edge.errors.RpcProtocolError`: a node fault, never the operator's) that names the
method, the block, the record and what was expected against what was got. A malformed
field raises the plain :class:`~edge.errors.RpcProtocolError` of :mod:`edge.rpc.codec`.

How the ingest stage calls it (per step over blocks ``lo..hi``; modes as in
``benchmarks/verify_cost.py``)::

    batch 1, per block n:  eth_getBlockByNumber(n, full)   full = True in "strict"
                           eth_getBlockReceipts(n)
                           trace_block(n)                  (as today)
    per block, in order:   verify_header(h)                a mismatch is a node fault;
                           the parentHash link to the cursor stays the stage's reorg test
                           txs = verify_transactions(h)    "strict" only
                           verify_receipts(h, receipts, txs or None)
    batch 2, per new contract at block n (EIP-1898 {"blockHash": h.hash}):
                           eth_getCode(a, at), eth_getProof(a, [], at)
                           verify_code(h, a, proof, code)

What this cannot prove: a ``trace_block`` answer (internal creations) is bound by no
root; :func:`verify_code` still proves that the account holds that code at that block,
and :func:`verify_absent` at the parent block proves it was created in that block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import rlp
from coincurve import PublicKey
from eth_hash.auto import keccak
from trie.hexary import HexaryTrie

from edge.rpc import codec
from edge.chain.poa import block_hash
from edge.errors import RpcProtocolError, SealError

__all__ = [
    "VerificationError",
    "HeaderMismatch",
    "ParentLinkBroken",
    "TransactionsRootMismatch",
    "TransactionMismatch",
    "ReceiptsRootMismatch",
    "ReceiptMismatch",
    "AccountProofInvalid",
    "CodeHashMismatch",
    "VerifiedTx",
    "VerifiedAccount",
    "verify_header",
    "verify_links",
    "encode_transaction",
    "transactions_root",
    "verify_transactions",
    "encode_receipt",
    "receipts_root",
    "verify_receipts",
    "verify_account",
    "verify_code",
    "verify_absent",
    "reference_trie_root",
    "EMPTY_CODE_HASH",
    "EMPTY_TRIE_ROOT",
]

def _rlp(item: Any) -> bytes:
    """RLP of nested lists of bytes and non-negative ints (Yellow Paper appendix B).

    The same bytes as ``rlp.encode`` (tested against it), about 5x faster: the
    ``rlp`` package infers a sedes per item, which dominated the receipts check.
    """
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big") if item else b""
    if isinstance(item, (bytes, bytearray)):
        if len(item) == 1 and item[0] < 0x80:
            return bytes(item)
        return _rlp_len(len(item), 0x80) + item
    body = b"".join([_rlp(x) for x in item])
    return _rlp_len(len(body), 0xC0) + body


def _rlp_len(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes((offset + n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(b),)) + b


class _BadProof(Exception):
    """A proof that does not lead from the root to the key (internal; see _walk_proof)."""


def _rlp_decode(b: bytes) -> Any:
    """Decode one RLP item (bytes, or nested lists of bytes) that spans all of ``b``.

    Raises ValueError on truncation, trailing bytes or a length that overruns. The
    inverse of :func:`_rlp` (Yellow Paper appendix B); tested equal to ``rlp.decode``.
    """
    item, end = _rlp_item(b, 0)
    if end != len(b):
        raise ValueError(f"{len(b) - end} trailing byte(s) after the RLP item")
    return item


def _rlp_item(b: bytes, i: int) -> tuple[Any, int]:
    if i >= len(b):
        raise ValueError("RLP truncated")
    p = b[i]
    if p < 0x80:
        return b[i:i + 1], i + 1
    is_list = p >= 0xC0
    short, long_ = (0xC0, 0xF7) if is_list else (0x80, 0xB7)
    if p <= long_:
        start, n = i + 1, p - short
    else:  # the length of the length follows the prefix
        ll = p - long_
        start, n = i + 1 + ll, int.from_bytes(b[i + 1:i + 1 + ll], "big")
    end = start + n
    if end > len(b):
        raise ValueError(f"RLP {'list' if is_list else 'string'} overruns its input")
    if not is_list:
        return b[start:end], end
    out: list[Any] = []
    j = start
    while j < end:
        item, j = _rlp_item(b, j)
        out.append(item)
    if j != end:
        raise ValueError("RLP list items overrun the list")
    return out, end


def _walk_proof(root: bytes, key: bytes, raws: Sequence[bytes]) -> bytes:
    """The value stored under ``key`` in the Merkle-Patricia trie of ``root``, proven by
    the RLP nodes ``raws`` (EIP-1186 ``accountProof`` order does not matter: nodes are
    found by their keccak256); ``b""`` when the proof shows the key is absent.

    Each node that a parent names by hash must be one of ``raws`` with exactly that
    hash; a node under 32 bytes is embedded in its parent (Yellow Paper appendix D).
    Raises _BadProof (a missing node, a malformed node, a path that does not fit).
    """
    if root == EMPTY_TRIE_ROOT:  # nothing is in an empty trie (its proof is [] or [rlp(b"")])
        return b""
    by_hash = {bytes(keccak(r)): r for r in raws}
    nib = key.hex()  # one hex digit per nibble
    ref: Any = root
    i = 0
    for _ in range(2 * len(nib) + 2):  # a path visits at most one node per nibble, plus extensions
        if isinstance(ref, bytes):
            if ref == b"":
                return b""
            if len(ref) != 32:
                raise _BadProof(f"a child reference of {len(ref)} bytes")
            raw = by_hash.get(ref)
            if raw is None:
                raise _BadProof(f"missing proof node with hash 0x{ref.hex()}")
            try:
                node = _rlp_decode(raw)
            except ValueError as e:
                raise _BadProof(f"node 0x{ref.hex()[:16]}: {e}") from None
        else:
            node = ref
        if not isinstance(node, list):
            raise _BadProof("a trie node that is not a list")
        if len(node) == 17:
            if i == len(nib):
                value = node[16]
                if not isinstance(value, bytes):
                    raise _BadProof("a branch value that is not a string")
                return value
            ref = node[int(nib[i], 16)]
            i += 1
        elif len(node) == 2:
            enc = node[0]
            if not isinstance(enc, bytes) or not enc or enc[0] >> 4 > 3:
                raise _BadProof("a bad hex-prefix path")
            flag = enc[0] >> 4
            if not flag & 1 and enc[0] & 15:
                raise _BadProof("a bad hex-prefix path")
            path = enc.hex()[1 if flag & 1 else 2:]
            if flag & 2:  # leaf
                if nib[i:] != path:
                    return b""
                if not isinstance(node[1], bytes):
                    raise _BadProof("a leaf value that is not a string")
                return node[1]
            if not path:
                raise _BadProof("an extension with an empty path")
            if nib[i:i + len(path)] != path:
                return b""
            i += len(path)
            ref = node[1]
        else:
            raise _BadProof(f"a trie node of {len(node)} items")
    raise _BadProof("the path is longer than the key")

EMPTY_CODE_HASH: Final = bytes(keccak(b""))
"""keccak256 of empty code: the ``codeHash`` of an account without code."""
EMPTY_TRIE_ROOT: Final = bytes(keccak(rlp.encode(b"")))
"""Root of an empty Merkle-Patricia trie (a block without transactions/receipts)."""

_BLOCK_M: Final = "eth_getBlockByNumber"
_RECEIPTS_M: Final = "eth_getBlockReceipts"
_PROOF_M: Final = "eth_getProof"
_CODE_M: Final = "eth_getCode"


# --------------------------------------------------------------------------- errors


def _show(v: object) -> str:
    if isinstance(v, (bytes, bytearray)):
        h = "0x" + bytes(v).hex()
        return h if len(h) <= 70 else f"{h[:42]}...({len(v)} bytes)"
    return str(v)


class VerificationError(RpcProtocolError):
    """The node's answer does not match the header of the block it belongs to.

    A node fault (retry on a fresh connection, then alarm and pause on that block),
    never stored. Subclasses name the check that failed.

    Attributes:
        method: the JSON-RPC method whose answer failed the check.
        block: the block number.
        record: which record (``"header"``, ``"receipt 3"``, ``"log 7"``,
            ``"tx 2"``, ``"account 0x..."``, ``"code 0x..."``).
        expected: what the header (or a verified record) commits to.
        got: what the node served.
    """

    check = "record"

    def __init__(self, method: str, block: int, record: str, expected: object, got: object,
                 detail: str = "") -> None:
        self.method = method
        self.block = block
        self.record = record
        self.expected = expected
        self.got = got
        what = detail or self.check
        # ChainError.__init__ directly: the message is not "malformed answer".
        Exception.__init__(
            self,
            f"{method}: node serves data that does not match block {block}'s header: {record}: "
            f"{what}: expected {_show(expected)}, got {_show(got)}",
        )


class HeaderMismatch(VerificationError):
    """The recomputed block hash differs from the stated ``hash`` (or a field is unusable)."""

    check = "block hash"


class ParentLinkBroken(VerificationError):
    """A header's ``parentHash`` is not the hash of the block before it."""

    check = "parentHash"


class TransactionsRootMismatch(VerificationError):
    """The transactions trie root differs from the header's ``transactionsRoot``."""

    check = "transactionsRoot"


class TransactionMismatch(VerificationError):
    """A transaction's stated hash or sender differs from its encoding / signature."""

    check = "transaction"


class ReceiptsRootMismatch(VerificationError):
    """The receipts trie root differs from the header's ``receiptsRoot``."""

    check = "receiptsRoot"


class ReceiptMismatch(VerificationError):
    """A receipt field outside the trie encoding (tx hash, sender, contract address,
    log index, block hash/number, index) disagrees with the verified block."""

    check = "receipt"


class AccountProofInvalid(VerificationError):
    """An EIP-1186 account proof does not lead from ``stateRoot`` to the stated account."""

    check = "account proof"


class CodeHashMismatch(VerificationError):
    """keccak256 of the served runtime code differs from the proven ``codeHash``."""

    check = "codeHash"


# --------------------------------------------------------------------------- header


def _number(header: Mapping[str, Any], method: str = _BLOCK_M) -> int:
    return codec.quantity(codec.field(header, "number", method, "result"), method, "result.number")


def verify_header(header: Mapping[str, Any]) -> bytes:
    """Recompute a JSON-RPC header's block hash and check it against its ``hash`` field.

    Args:
        header: an ``eth_getBlockByNumber`` result (camelCase keys, hex strings); the
            ``transactions`` list is not part of the hash and is ignored here.

    Returns:
        the verified 32-byte block hash.

    Raises:
        HeaderMismatch: the recomputed hash differs, or a header field is missing or
            malformed (the node's fault either way).
        RpcProtocolError: ``number`` or ``hash`` is missing or malformed.

    Source: Yellow Paper §4.3 (header), EIP-1559/4895/4844/4788/7685 (later fields).
    """
    header = codec.as_dict(header, _BLOCK_M, "result")
    n = _number(header)
    stated = codec.hash32(codec.field(header, "hash", _BLOCK_M, "result"), _BLOCK_M, "result.hash")
    try:
        got = block_hash(header)
    except SealError as e:
        raise HeaderMismatch(_BLOCK_M, n, "header", "well-formed header fields", str(e),
                             "header field unusable") from None
    if got != stated:
        raise HeaderMismatch(_BLOCK_M, n, "header", got, stated,
                             "keccak256(rlp(header)) vs stated hash")
    return stated


def verify_links(headers: Sequence[Mapping[str, Any]], parent_hash: bytes | None = None) -> list[bytes]:
    """Verify consecutive headers: each hash recomputed, each ``parentHash`` linked.

    Args:
        headers: headers of blocks ``n, n+1, ...`` in order.
        parent_hash: the trusted hash of block ``n-1`` (the outbox cursor), or None to
            check only the links inside ``headers``.

    Returns:
        the verified block hashes, in order.

    Raises:
        HeaderMismatch: a hash does not recompute (see :func:`verify_header`).
        ParentLinkBroken: a ``parentHash`` is not the previous block's hash, or the
            numbers are not consecutive.
    """
    out: list[bytes] = []
    prev_n: int | None = None
    for h in headers:
        bh = verify_header(h)
        n = _number(h)
        ph = codec.hash32(codec.field(h, "parentHash", _BLOCK_M, "result"), _BLOCK_M, "result.parentHash")
        if prev_n is not None and n != prev_n + 1:
            raise ParentLinkBroken(_BLOCK_M, n, "header", prev_n + 1, n, "block number")
        want = out[-1] if out else parent_hash
        if want is not None and ph != want:
            raise ParentLinkBroken(_BLOCK_M, n, "header", want, ph)
        out.append(bh)
        prev_n = n
    return out


# --------------------------------------------------------------------------- tries


def _trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie ``rlp(i) -> values[i]`` (Yellow Paper appendix D).

    Built bottom-up from the sorted keys, each node RLP-encoded once: linear in the
    bytes of the values (inserting into :class:`trie.hexary.HexaryTrie` re-encodes the
    path on every insert, about 10x slower on blocks with large transactions; it is the
    reference this builder is tested against, see :func:`reference_trie_root`).
    """
    if not values:
        return EMPTY_TRIE_ROOT
    items = sorted((_nibbles(_rlp(i)), v) for i, v in enumerate(values))
    return bytes(keccak(_rlp(_node(items, 0))))


def reference_trie_root(values: Sequence[bytes]) -> bytes:
    """The same root as :func:`_trie_root`, by inserting into the ``trie`` package's
    :class:`~trie.hexary.HexaryTrie` (slow; for tests and audits)."""
    t = HexaryTrie({})
    with t.squash_changes() as mt:
        for i, v in enumerate(values):
            mt[_rlp(i)] = v
    return bytes(t.root_hash)


def _nibbles(key: bytes) -> bytes:
    return bytes(x for b in key for x in (b >> 4, b & 15))


def _hex_prefix(nibbles: bytes, leaf: bool) -> bytes:
    """Hex-prefix encoding of a nibble path (Yellow Paper appendix C)."""
    flag = 2 if leaf else 0
    p = bytes([flag + 1]) + nibbles if len(nibbles) % 2 else bytes([flag, 0]) + nibbles
    return bytes(p[i] << 4 | p[i + 1] for i in range(0, len(p), 2))


def _ref(node: list[Any]) -> Any:
    """How a parent refers to a child: the node itself below 32 bytes, else its hash."""
    enc = _rlp(node)
    return node if len(enc) < 32 else bytes(keccak(enc))


def _node(items: list[tuple[bytes, bytes]], depth: int) -> list[Any]:
    """The trie node holding ``items`` (sorted, distinct nibble keys) below ``depth``."""
    if len(items) == 1:
        key, value = items[0]
        return [_hex_prefix(key[depth:], True), value]
    first, last = items[0][0], items[-1][0]
    p = depth
    while p < len(first) and p < len(last) and first[p] == last[p]:
        p += 1
    if p > depth:
        return [_hex_prefix(first[depth:p], False), _ref(_node(items, p))]
    branch: list[Any] = [b""] * 17
    start = 0
    if len(items[0][0]) == depth:  # a key ending here (not for rlp(i) keys, which are prefix-free)
        branch[16] = items[0][1]
        start = 1
    while start < len(items):
        nib = items[start][0][depth]
        end = start
        while end < len(items) and items[end][0][depth] == nib:
            end += 1
        branch[nib] = _ref(_node(items[start:end], depth + 1))
        start = end
    return branch


# --------------------------------------------------------------------------- transactions


def _q(obj: Mapping[str, Any], key: str, m: str, p: str) -> int:
    return codec.quantity(codec.field(obj, key, m, p), m, f"{p}.{key}")


def _d(obj: Mapping[str, Any], key: str, m: str, p: str) -> bytes:
    return codec.data(codec.field(obj, key, m, p), m, f"{p}.{key}")


def _to(tx: Mapping[str, Any], m: str, p: str) -> bytes:
    to = tx.get("to")
    return b"" if to is None else codec.address(to, m, f"{p}.to")


def _access_list(tx: Mapping[str, Any], m: str, p: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for i, e in enumerate(codec.as_list(tx.get("accessList", []), m, f"{p}.accessList")):
        ep = f"{p}.accessList[{i}]"
        e = codec.as_dict(e, m, ep)
        keys = codec.as_list(codec.field(e, "storageKeys", m, ep), m, f"{ep}.storageKeys")
        out.append([codec.address(codec.field(e, "address", m, ep), m, f"{ep}.address"),
                    [codec.hash32(k, m, f"{ep}.storageKeys[{j}]") for j, k in enumerate(keys)]])
    return out


def _y_parity(tx: Mapping[str, Any], m: str, p: str) -> int:
    y = tx.get("yParity")
    return codec.quantity(y if y is not None else codec.field(tx, "v", m, p), m, f"{p}.yParity")


def _authorizations(tx: Mapping[str, Any], m: str, p: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    auths = codec.as_list(codec.field(tx, "authorizationList", m, p), m, f"{p}.authorizationList")
    for i, a in enumerate(auths):
        ap = f"{p}.authorizationList[{i}]"
        a = codec.as_dict(a, m, ap)
        out.append([_q(a, "chainId", m, ap), codec.address(codec.field(a, "address", m, ap), m, f"{ap}.address"),
                    _q(a, "nonce", m, ap), _y_parity(a, m, ap), _q(a, "r", m, ap), _q(a, "s", m, ap)])
    return out


def _tx_fields(tx: Mapping[str, Any], m: str, p: str) -> tuple[int, list[Any], list[Any]]:
    """``(type, unsigned fields, [v or yParity, r, s])`` of one transaction."""
    t = codec.quantity(tx.get("type", "0x0"), m, f"{p}.type")
    if t > 4:
        raise RpcProtocolError(m, f"{p}.type: unknown transaction type {t}")
    nonce, gas, value = _q(tx, "nonce", m, p), _q(tx, "gas", m, p), _q(tx, "value", m, p)
    to, data = _to(tx, m, p), _d(tx, "input", m, p)
    r, s = _q(tx, "r", m, p), _q(tx, "s", m, p)
    if t == 0:
        return 0, [nonce, _q(tx, "gasPrice", m, p), gas, to, value, data], [_q(tx, "v", m, p), r, s]
    cid = _q(tx, "chainId", m, p)
    sig = [_y_parity(tx, m, p), r, s]
    if t == 1:
        return 1, [cid, nonce, _q(tx, "gasPrice", m, p), gas, to, value, data, _access_list(tx, m, p)], sig
    fees = [_q(tx, "maxPriorityFeePerGas", m, p), _q(tx, "maxFeePerGas", m, p)]
    if t == 2:
        return 2, [cid, nonce, *fees, gas, to, value, data, _access_list(tx, m, p)], sig
    if t == 3:
        hashes = codec.as_list(codec.field(tx, "blobVersionedHashes", m, p), m, f"{p}.blobVersionedHashes")
        return 3, [cid, nonce, *fees, gas, to, value, data, _access_list(tx, m, p),
                   _q(tx, "maxFeePerBlobGas", m, p),
                   [codec.hash32(h, m, f"{p}.blobVersionedHashes[{j}]") for j, h in enumerate(hashes)]], sig
    return 4, [cid, nonce, *fees, gas, to, value, data, _access_list(tx, m, p), _authorizations(tx, m, p)], sig


def encode_transaction(tx: Mapping[str, Any], method: str = _BLOCK_M, path: str = "tx") -> bytes:
    """The consensus encoding of a JSON-RPC transaction object (EIP-2718 envelope).

    Legacy: ``rlp([nonce, gasPrice, gas, to, value, input, v, r, s])``; typed:
    ``type || rlp([...fields, yParity, r, s])`` for EIP-2930 (1), EIP-1559 (2),
    EIP-4844 (3, the network form without blobs) and EIP-7702 (4). Its keccak256 is the
    transaction hash.

    Raises: RpcProtocolError (a field missing or malformed, or an unknown type).
    """
    t, fields, sig = _tx_fields(codec.as_dict(tx, method, path), method, path)
    body = _rlp(fields + sig)
    return body if t == 0 else bytes([t]) + body


def transactions_root(txs: Sequence[Mapping[str, Any]]) -> bytes:
    """Root of the transactions trie of full JSON-RPC transaction objects.

    Raises: RpcProtocolError (a transaction is malformed).
    """
    return _trie_root([encode_transaction(tx, _BLOCK_M, f"result.transactions[{i}]")
                       for i, tx in enumerate(txs)])


@dataclass(frozen=True, slots=True)
class VerifiedTx:
    """A transaction proven by ``transactionsRoot``: its hash, recovered sender, nonce and
    ``to`` (None for a contract creation); ``hash``/``sender``/``to`` are raw bytes."""

    hash: bytes
    sender: bytes
    nonce: int
    to: bytes | None


def _sender(t: int, fields: list[Any], sig: list[Any], m: str, n: int, i: int) -> bytes:
    """secp256k1 recovery of the signer (EIP-155 for legacy, yParity for typed)."""
    v, r, s = sig
    if t == 0:
        if v in (27, 28):
            recid, payload = v - 27, _rlp(fields)
        elif v >= 35:
            cid = (v - 35) // 2
            recid, payload = v - 35 - 2 * cid, _rlp(fields + [cid, 0, 0])
        else:
            raise TransactionMismatch(m, n, f"tx {i}", "v in 27, 28 or >= 35", v, "signature v")
    else:
        recid, payload = v, bytes([t]) + _rlp(fields)
    if recid not in (0, 1) or not (0 < r < 2**256 and 0 < s < 2**256):
        raise TransactionMismatch(m, n, f"tx {i}", "a valid secp256k1 signature", f"v={v}", "signature")
    try:
        pub = PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recid]), bytes(keccak(payload)), hasher=None)
    except ValueError as e:
        raise TransactionMismatch(m, n, f"tx {i}", "a recoverable signature", str(e), "signature") from None
    return bytes(keccak(pub.format(compressed=False)[1:]))[-20:]


def verify_transactions(header: Mapping[str, Any], *, recover: Literal["all", "creations", "none"] = "creations"
                        ) -> list[VerifiedTx]:
    """Verify the full transaction objects of ``eth_getBlockByNumber(n, true)``.

    Each stated ``hash`` must be keccak256 of the envelope, the trie of envelopes must
    have the header's ``transactionsRoot``, and the stated ``from`` must be the
    signature's signer: for every transaction (``recover="all"``), for contract
    creations only (``"creations"``, the default: the agent stores the sender only as a
    deployment's creator, and recovery is the costliest step), or never (``"none"``).
    Call :func:`verify_header` on the same header first.

    Returns:
        one :class:`VerifiedTx` per transaction, in block order (``sender`` is the
        stated ``from`` where it was not recovered).

    Raises:
        TransactionMismatch: a hash or sender does not match, or the list holds hashes
            only (the block was fetched with ``false``).
        TransactionsRootMismatch: the rebuilt root differs from ``transactionsRoot``.
        RpcProtocolError: a field is missing or malformed.
    """
    m = _BLOCK_M
    header = codec.as_dict(header, m, "result")
    n = _number(header)
    root = codec.hash32(codec.field(header, "transactionsRoot", m, "result"), m, "result.transactionsRoot")
    txs = codec.as_list(codec.field(header, "transactions", m, "result"), m, "result.transactions")
    envelopes: list[bytes] = []
    sidecars: dict[int, bytes] = {}
    out: list[VerifiedTx] = []
    for i, raw in enumerate(txs):
        p = f"result.transactions[{i}]"
        if not isinstance(raw, Mapping):
            raise TransactionMismatch(m, n, f"tx {i}", "a full transaction object", type(raw).__name__,
                                      "fetch the block with full transactions (true)")
        t, fields, sig = _tx_fields(raw, m, p)
        body = _rlp(fields + sig)
        env = body if t == 0 else bytes([t]) + body
        h = bytes(keccak(env))
        stated = codec.hash32(codec.field(raw, "hash", m, p), m, f"{p}.hash")
        if h != stated:
            raise TransactionMismatch(m, n, f"tx {i}", h, stated, "keccak256(envelope) vs stated hash")
        frm = codec.address(codec.field(raw, "from", m, p), m, f"{p}.from")
        to = fields[{0: 3, 1: 4}.get(t, 5)]
        if recover == "all" or (recover == "creations" and not to):
            signer = _sender(t, fields, sig, m, n, i)
            if signer != frm:
                raise TransactionMismatch(m, n, f"tx {i}", signer, frm, "signer vs stated from")
        out.append(VerifiedTx(h, frm, fields[0] if t == 0 else fields[1], to or None))
        envelopes.append(env)
        if t == 3:
            wrapped = _sidecar_form(raw, fields + sig, m, p)
            if wrapped is not None:
                sidecars[i] = wrapped
    got = _trie_root(envelopes)
    if got != root and sidecars:
        # anvil 1.7.1 roots blob transactions in their network form (with the sidecar);
        # the body, and so every field the agent uses, is bound just the same.
        for i, wrapped in sidecars.items():
            envelopes[i] = wrapped
        if _trie_root(envelopes) == root:
            return out
    if got != root:
        raise TransactionsRootMismatch(m, n, "transactions", root, got)
    return out


def _sidecar_form(raw: Mapping[str, Any], body: list[Any], m: str, p: str) -> bytes | None:
    """The EIP-4844 network form ``0x03 || rlp([body, (version,) blobs, commitments,
    proofs])`` (EIP-7594 wrapper version 1 with ``cellProofs``), when the node states it."""
    if raw.get("blobs") is None or raw.get("commitments") is None:
        return None
    def items(key: str) -> list[bytes]:
        return [codec.data(x, m, f"{p}.{key}[{j}]") for j, x in enumerate(codec.as_list(raw[key], m, f"{p}.{key}"))]
    blobs, commitments = items("blobs"), items("commitments")
    if raw.get("cellProofs") is not None:
        return b"\x03" + _rlp([body, 1, blobs, commitments, items("cellProofs")])
    if raw.get("proofs") is not None:
        return b"\x03" + _rlp([body, blobs, commitments, items("proofs")])
    return None


# --------------------------------------------------------------------------- receipts


def _logs(r: Mapping[str, Any], m: str, p: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for j, lg in enumerate(codec.as_list(codec.field(r, "logs", m, p), m, f"{p}.logs")):
        lp = f"{p}.logs[{j}]"
        lg = codec.as_dict(lg, m, lp)
        topics = codec.as_list(codec.field(lg, "topics", m, lp), m, f"{lp}.topics")
        out.append([codec.address(codec.field(lg, "address", m, lp), m, f"{lp}.address"),
                    [codec.hash32(t, m, f"{lp}.topics[{k}]") for k, t in enumerate(topics)],
                    _d(lg, "data", m, lp)])
    return out


def encode_receipt(r: Mapping[str, Any], method: str = _RECEIPTS_M, path: str = "receipt") -> bytes:
    """The consensus encoding of a JSON-RPC receipt (Yellow Paper §4.3.1, EIP-2718).

    ``rlp([status, cumulativeGasUsed, logsBloom, [[address, topics, data], ...]])``,
    prefixed with the type byte for typed receipts (1-4). ``status`` (EIP-658) is used
    when present, else the pre-Byzantium state ``root``.

    Raises: RpcProtocolError (a field missing or malformed, or an unknown type).
    """
    m, p = method, path
    r = codec.as_dict(r, m, p)
    t = codec.quantity(r.get("type", "0x0"), m, f"{p}.type")
    if t > 4:
        raise RpcProtocolError(m, f"{p}.type: unknown receipt type {t}")
    if r.get("status") is not None:
        first: int | bytes = codec.quantity(r["status"], m, f"{p}.status")
    else:
        first = codec.hash32(codec.field(r, "root", m, p), m, f"{p}.root")
    bloom = _d(r, "logsBloom", m, p)
    if len(bloom) != 256:
        raise RpcProtocolError(m, f"{p}.logsBloom: expected 256 bytes, got {len(bloom)}")
    body = _rlp([first, _q(r, "cumulativeGasUsed", m, p), bloom, _logs(r, m, p)])
    return body if t == 0 else bytes([t]) + body


def receipts_root(receipts: Sequence[Mapping[str, Any]]) -> bytes:
    """Root of the receipts trie ``rlp(i) -> encode_receipt(receipts[i])``.

    Raises: RpcProtocolError (a receipt is malformed).
    """
    return _trie_root([encode_receipt(r, _RECEIPTS_M, f"result[{i}]") for i, r in enumerate(receipts)])


def _create_address(sender: bytes, nonce: int) -> bytes:
    return bytes(keccak(_rlp([sender, nonce])))[-20:]


def verify_receipts(header: Mapping[str, Any], receipts: Sequence[Any],
                    txs: Sequence[VerifiedTx] | None = None) -> None:
    """Verify ``eth_getBlockReceipts(n)`` against a verified header (and its transactions).

    Checks the receipts trie root against ``receiptsRoot``; each receipt's
    ``transactionIndex``, ``blockHash`` and ``blockNumber`` against its position and the
    header; each log's ``logIndex`` against its position in the block (and its
    ``blockHash``/``transactionIndex`` when stated); with ``txs`` (from
    :func:`verify_transactions`): ``transactionHash``, ``from`` and ``contractAddress``
    (the CREATE address of a successful creation, absent otherwise).

    Raises:
        ReceiptsRootMismatch: the rebuilt root differs from ``receiptsRoot`` (a log
            flipped, dropped or added, a status or gas changed ...).
        ReceiptMismatch: a bound field outside the encoding disagrees, or the number of
            receipts is not the number of transactions.
        RpcProtocolError: a field is missing or malformed.
    """
    m = _RECEIPTS_M
    n = _number(header)
    bh = codec.hash32(codec.field(header, "hash", _BLOCK_M, "result"), _BLOCK_M, "result.hash")
    root = codec.hash32(codec.field(header, "receiptsRoot", _BLOCK_M, "result"), _BLOCK_M, "result.receiptsRoot")
    rs = codec.as_list(receipts, m, "result")
    if txs is not None and len(rs) != len(txs):
        raise ReceiptMismatch(m, n, "receipts", len(txs), len(rs), "number of receipts vs transactions")
    encoded: list[bytes] = []
    log_index = 0
    for i, raw in enumerate(rs):
        p = f"result[{i}]"
        r = codec.as_dict(raw, m, p)
        rec = f"receipt {i}"
        encoded.append(encode_receipt(r, m, p))
        if _q(r, "transactionIndex", m, p) != i:
            raise ReceiptMismatch(m, n, rec, i, _q(r, "transactionIndex", m, p), "transactionIndex")
        for key, want in (("blockHash", bh), ("blockNumber", n)):
            if r.get(key) is not None:
                got: object = (codec.hash32(r[key], m, f"{p}.{key}") if key == "blockHash"
                               else codec.quantity(r[key], m, f"{p}.{key}"))
                if got != want:
                    raise ReceiptMismatch(m, n, rec, want, got, key)
        for j, lg in enumerate(codec.as_list(codec.field(r, "logs", m, p), m, f"{p}.logs")):
            lp = f"{p}.logs[{j}]"
            lg = codec.as_dict(lg, m, lp)
            li = _q(lg, "logIndex", m, lp)
            if li != log_index:
                raise ReceiptMismatch(m, n, f"receipt {i} log {j}", log_index, li, "logIndex")
            if lg.get("blockHash") is not None and codec.hash32(lg["blockHash"], m, f"{lp}.blockHash") != bh:
                raise ReceiptMismatch(m, n, f"receipt {i} log {j}", bh, lg["blockHash"], "blockHash")
            if lg.get("transactionIndex") is not None and _q(lg, "transactionIndex", m, lp) != i:
                raise ReceiptMismatch(m, n, f"receipt {i} log {j}", i, lg["transactionIndex"], "transactionIndex")
            if lg.get("removed") is True:
                raise ReceiptMismatch(m, n, f"receipt {i} log {j}", False, True, "removed")
            log_index += 1
        if txs is not None:
            tx = txs[i]
            th = codec.hash32(codec.field(r, "transactionHash", m, p), m, f"{p}.transactionHash")
            if th != tx.hash:
                raise ReceiptMismatch(m, n, rec, tx.hash, th, "transactionHash")
            frm = codec.address(codec.field(r, "from", m, p), m, f"{p}.from")
            if frm != tx.sender:
                raise ReceiptMismatch(m, n, rec, tx.sender, frm, "from")
            ok = r.get("status") is None or codec.quantity(r["status"], m, f"{p}.status") == 1
            ca = r.get("contractAddress")
            got_ca = codec.address(ca, m, f"{p}.contractAddress") if ca else None
            want_ca = _create_address(tx.sender, tx.nonce) if tx.to is None else None
            # a failed creation may or may not state the address it would have had
            if got_ca != want_ca and not (not ok and got_ca is None):
                raise ReceiptMismatch(m, n, rec, want_ca, got_ca, "contractAddress")
    got_root = _trie_root(encoded)
    if got_root != root:
        raise ReceiptsRootMismatch(m, n, "receipts", root, got_root)


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """An account proven against a ``stateRoot`` (EIP-1186). ``exists`` is False for an
    address not in the state trie (then nonce/balance 0, empty storage and code)."""

    address: bytes
    exists: bool
    nonce: int
    balance: int
    storage_hash: bytes
    code_hash: bytes


def verify_account(header: Mapping[str, Any], address: bytes, proof: Any) -> VerifiedAccount:
    """Verify an ``eth_getProof(address, [], block)`` answer against ``header.stateRoot``.

    The ``accountProof`` nodes (RLP, hex) must form a Merkle-Patricia path from the
    state root to key ``keccak256(address)`` (or prove its absence), and the stated
    ``nonce``, ``balance``, ``storageHash`` and ``codeHash`` must equal the proven
    account ``rlp([nonce, balance, storageRoot, codeHash])``.

    Args:
        header: the verified block header (its ``stateRoot`` and ``number`` are used).
        address: the 20-byte account address that was asked for.
        proof: the ``eth_getProof`` result.

    Raises:
        AccountProofInvalid: a node is missing or altered, the path leads elsewhere, or
            a stated field differs from the proven account.
        RpcProtocolError: the answer is malformed.

    Source: EIP-1186; Yellow Paper §4.1 (account state), appendix D (trie).
    """
    m = _PROOF_M
    n = _number(header)
    root = codec.hash32(codec.field(header, "stateRoot", _BLOCK_M, "result"), _BLOCK_M, "result.stateRoot")
    rec = f"account 0x{address.hex()}"
    pr = codec.as_dict(proof, m, "result")
    stated_addr = codec.address(codec.field(pr, "address", m, "result"), m, "result.address")
    if stated_addr != address:
        raise AccountProofInvalid(m, n, rec, address, stated_addr, "address")
    nodes_hex = codec.as_list(codec.field(pr, "accountProof", m, "result"), m, "result.accountProof")
    raws = [codec.data(h, m, f"result.accountProof[{i}]") for i, h in enumerate(nodes_hex)]
    try:
        value = _walk_proof(root, bytes(keccak(address)), raws)
    except _BadProof as e:
        raise AccountProofInvalid(m, n, rec, root, f"no path ({e})", "proof from stateRoot") from None
    stated = (_q(pr, "nonce", m, "result"), _q(pr, "balance", m, "result"),
              codec.hash32(codec.field(pr, "storageHash", m, "result"), m, "result.storageHash"),
              codec.hash32(codec.field(pr, "codeHash", m, "result"), m, "result.codeHash"))
    if value == b"":
        proven = (0, 0, EMPTY_TRIE_ROOT, EMPTY_CODE_HASH)
        exists = False
    else:
        try:
            nonce_b, bal_b, sr, ch = _rlp_decode(value)
            if not all(isinstance(x, bytes) for x in (nonce_b, bal_b, sr, ch)) or len(sr) != 32 or len(ch) != 32:
                raise ValueError("account fields")
            proven = (int.from_bytes(nonce_b, "big"), int.from_bytes(bal_b, "big"), bytes(sr), bytes(ch))
        except (ValueError, TypeError):
            raise AccountProofInvalid(m, n, rec, "rlp([nonce, balance, storageRoot, codeHash])", value,
                                      "proven account") from None
        exists = True
    names = ("nonce", "balance", "storageHash", "codeHash")
    for name, want, got in zip(names, proven, stated):
        # an absent account may be stated with a zero codeHash/storageHash by some nodes
        if want != got and not (not exists and got in (b"\x00" * 32,)):
            raise AccountProofInvalid(m, n, rec, want, got, name)
    return VerifiedAccount(address, exists, *proven)


def verify_code(header: Mapping[str, Any], address: bytes, proof: Any, code: bytes, *,
                source: str = _CODE_M) -> VerifiedAccount:
    """Verify runtime ``code`` of ``address`` at a block: proof first, then keccak(code).

    Args:
        header: the verified header of the block the code was read at.
        address: 20-byte contract address.
        proof: the ``eth_getProof(address, [], block)`` result at the same block.
        code: the decoded ``eth_getCode(address, block)`` result, or the code a trace
            of the creation returned.
        source: the method that served ``code`` (named in a CodeHashMismatch).

    Returns: the proven account.

    Raises:
        AccountProofInvalid: see :func:`verify_account`.
        CodeHashMismatch: keccak256(code) differs from the proven ``codeHash`` (code cut
            short, altered, or another contract's).
    """
    acct = verify_account(header, address, proof)
    got = bytes(keccak(code))
    if got != acct.code_hash:
        raise CodeHashMismatch(source, _number(header), f"code 0x{address.hex()}", acct.code_hash, got,
                               f"keccak256 of {len(code)} bytes served vs proven codeHash")
    return acct


def verify_absent(parent: Mapping[str, Any], address: bytes, proof: Any) -> VerifiedAccount:
    """Prove that ``address`` had no code at ``parent`` (so a contract found there in the
    next block was created in it). ``proof`` is ``eth_getProof`` at the parent block.

    Raises: AccountProofInvalid (bad proof, or the account already had code).
    """
    acct = verify_account(parent, address, proof)
    if acct.code_hash != EMPTY_CODE_HASH:
        raise AccountProofInvalid(_PROOF_M, _number(parent), f"account 0x{address.hex()}", EMPTY_CODE_HASH,
                                  acct.code_hash, "code before its creation block")
    return acct
