"""edge.chain.verify against a REAL anvil: headers, transactions (types 0-4), receipts
with logs, account proofs and runtime code all verify; every tampering is detected and
named (block, record, expected vs got)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from edge.chain import verify as V
from edge.errors import RpcProtocolError
from tests.chaindata import BlockData, chain_data


@pytest.fixture(scope="module")
def blocks() -> list[BlockData]:
    return chain_data()


def _busy(blocks: list[BlockData], pred: Any) -> BlockData:
    for b in blocks:
        if pred(b):
            return b
    raise AssertionError("no block of that kind")


def _with_logs(b: BlockData) -> bool:
    return sum(len(r["logs"]) for r in b.receipts) >= 3


def _addr(a: str) -> bytes:
    return bytes.fromhex(a[2:])


@pytest.mark.slow
def test_every_real_block_verifies(blocks: list[BlockData]) -> None:
    parent: bytes | None = None
    types: set[str] = set()
    n_codes = n_logs = 0
    for b in blocks:
        (bh,) = V.verify_links([b.header], parent)
        parent = bh
        txs = V.verify_transactions(b.header, recover="all")
        V.verify_receipts(b.header, b.receipts, txs)
        types.update(t["type"] for t in b.header["transactions"])
        n_logs += sum(len(r["logs"]) for r in b.receipts)
        for a, (proof, code, before) in b.codes.items():
            acct = V.verify_code(b.header, _addr(a), proof, bytes.fromhex(code[2:]))
            assert acct.exists and acct.code_hash != V.EMPTY_CODE_HASH
            parent_header = blocks[int(b.header["number"], 16) - 1].header
            assert not V.verify_absent(parent_header, _addr(a), before).exists
            n_codes += 1
    assert types >= {"0x0", "0x1", "0x2", "0x3", "0x4"}, types
    vs = {int(t["v"], 16) for b in blocks for t in b.header["transactions"] if t["type"] == "0x0"}
    assert vs & {27, 28} and any(v >= 35 for v in vs), vs  # unprotected and EIP-155 legacy
    assert n_codes >= 12 and n_logs >= 12
    assert V.verify_links([b.header for b in blocks])[-1] == parent
    assert blocks[0].header["requestsHash"] and blocks[0].header["parentBeaconBlockRoot"]


def test_empty_block_roots(blocks: list[BlockData]) -> None:
    empty = _busy(blocks, lambda b: not b.receipts)
    assert V.transactions_root([]) == V.receipts_root([]) == V.EMPTY_TRIE_ROOT
    assert bytes.fromhex(empty.header["receiptsRoot"][2:]) == V.EMPTY_TRIE_ROOT


# ------------------------------------------------------------------ header tampering


@pytest.mark.parametrize("key", ["stateRoot", "receiptsRoot", "timestamp", "extraData", "baseFeePerGas",
                                 "requestsHash", "parentBeaconBlockRoot", "blobGasUsed"])
def test_changed_header_field_is_detected(blocks: list[BlockData], key: str) -> None:
    h = dict(blocks[3].header)
    v = h[key]
    h[key] = "0x01" if v == "0x" else v[:-1] + ("1" if v[-1] != "1" else "2")
    with pytest.raises(V.HeaderMismatch, match=r"block 3's header: header: keccak256\(rlp\(header\)\)") as e:
        V.verify_header(h)
    assert e.value.block == 3 and isinstance(e.value, RpcProtocolError)


def test_dropped_header_field_is_detected(blocks: list[BlockData]) -> None:
    h = {k: v for k, v in blocks[2].header.items() if k != "withdrawalsRoot"}
    with pytest.raises(V.HeaderMismatch):
        V.verify_header(h)


def test_broken_parent_link_and_gap(blocks: list[BlockData]) -> None:
    with pytest.raises(V.ParentLinkBroken, match="block 2's header") as e:
        V.verify_links([blocks[2].header], bytes(32))
    assert e.value.expected == bytes(32)
    with pytest.raises(V.ParentLinkBroken, match="block number"):
        V.verify_links([blocks[1].header, blocks[3].header])


# ------------------------------------------------------------------ transactions


def test_changed_transaction_is_detected(blocks: list[BlockData]) -> None:
    b = _busy(blocks, lambda b: len(b.header["transactions"]) >= 3)
    h = copy.deepcopy(b.header)
    h["transactions"][1]["input"] += "00"
    with pytest.raises(V.TransactionMismatch, match="tx 1: keccak256"):
        V.verify_transactions(h)
    h = copy.deepcopy(b.header)
    h["transactions"][0]["from"] = "0x" + "11" * 20
    with pytest.raises(V.TransactionMismatch, match="signer vs stated from"):
        V.verify_transactions(h, recover="all")
    creation = next(b for b in blocks for t in b.header["transactions"] if t["to"] is None)
    h = copy.deepcopy(creation.header)
    k = next(i for i, t in enumerate(h["transactions"]) if t["to"] is None)
    h["transactions"][k]["from"] = "0x" + "11" * 20
    with pytest.raises(V.TransactionMismatch, match=f"tx {k}: signer vs stated from"):
        V.verify_transactions(h)  # a creation's sender is its creator: always recovered
    h = copy.deepcopy(b.header)
    h["transactions"].pop()  # a transaction withheld: the hashes still match, the root does not
    with pytest.raises(V.TransactionsRootMismatch, match="transactionsRoot"):
        V.verify_transactions(h)


def test_hash_only_block_is_refused(blocks: list[BlockData]) -> None:
    b = _busy(blocks, lambda b: b.header["transactions"])
    h = dict(b.header, transactions=[t["hash"] for t in b.header["transactions"]])
    with pytest.raises(V.TransactionMismatch, match="full transaction object"):
        V.verify_transactions(h)


# ------------------------------------------------------------------ receipts and logs


def _receipt_with_log(b: BlockData) -> int:
    return next(i for i, r in enumerate(b.receipts) if r["logs"])


def test_flipped_byte_in_a_log_is_detected(blocks: list[BlockData]) -> None:
    b = _busy(blocks, _with_logs)
    txs = V.verify_transactions(b.header)
    for key in ("data", "address", "topics"):
        rs = copy.deepcopy(b.receipts)
        lg = rs[_receipt_with_log(b)]["logs"][0]
        if key == "topics":
            t = lg["topics"][0]
            lg["topics"][0] = t[:10] + ("0" if t[10] != "0" else "1") + t[11:]
        else:
            v = lg[key]
            lg[key] = v[:-2] + ("00" if v[-2:] != "00" else "ff") if len(v) > 2 else "0x01"
        with pytest.raises(V.ReceiptsRootMismatch, match=r"block \d+'s header: receipts: receiptsRoot"):
            V.verify_receipts(b.header, rs, txs)


def test_dropped_or_added_log_is_detected(blocks: list[BlockData]) -> None:
    b = _busy(blocks, _with_logs)
    txs = V.verify_transactions(b.header)
    i = max(i for i, r in enumerate(b.receipts) if r["logs"])  # the last log: indexes stay consecutive
    rs = copy.deepcopy(b.receipts)
    rs[i]["logs"].pop()
    with pytest.raises(V.ReceiptsRootMismatch):
        V.verify_receipts(b.header, rs, txs)
    rs = copy.deepcopy(b.receipts)
    extra = dict(rs[i]["logs"][-1], logIndex=hex(int(rs[i]["logs"][-1]["logIndex"], 16) + 1))
    rs[i]["logs"].append(extra)
    with pytest.raises(V.ReceiptsRootMismatch):
        V.verify_receipts(b.header, rs, txs)


@pytest.mark.parametrize("field,value,error,match", [
    ("status", "0x0", V.ReceiptsRootMismatch, "receiptsRoot"),
    ("cumulativeGasUsed", "0x1", V.ReceiptsRootMismatch, "receiptsRoot"),
    ("transactionHash", "0x" + "22" * 32, V.ReceiptMismatch, "transactionHash"),
    ("from", "0x" + "33" * 20, V.ReceiptMismatch, "from"),
    ("contractAddress", "0x" + "44" * 20, V.ReceiptMismatch, "contractAddress"),
    ("blockHash", "0x" + "55" * 32, V.ReceiptMismatch, "blockHash"),
])
def test_changed_receipt_field_is_detected(blocks: list[BlockData], field: str, value: str,
                                           error: type[Exception], match: str) -> None:
    b = _busy(blocks, lambda b: any(r.get("contractAddress") for r in b.receipts) and _with_logs(b))
    txs = V.verify_transactions(b.header)
    rs = copy.deepcopy(b.receipts)
    i = next(i for i, r in enumerate(rs) if r.get("contractAddress") is None) if field == "contractAddress" else 0
    rs[i][field] = ("0x1" if rs[i]["status"] == "0x0" else "0x0") if field == "status" else value
    with pytest.raises(error, match=match) as e:
        V.verify_receipts(b.header, rs, txs)
    assert e.value.block == int(b.header["number"], 16)  # type: ignore[attr-defined]


def test_shifted_log_index_and_missing_receipt(blocks: list[BlockData]) -> None:
    b = _busy(blocks, _with_logs)
    txs = V.verify_transactions(b.header)
    rs = copy.deepcopy(b.receipts)
    rs[_receipt_with_log(b)]["logs"][0]["logIndex"] = "0x63"
    with pytest.raises(V.ReceiptMismatch, match="logIndex: expected 0, got 99"):
        V.verify_receipts(b.header, rs, txs)
    with pytest.raises(V.ReceiptMismatch, match="number of receipts"):
        V.verify_receipts(b.header, b.receipts[:-1], txs)


# ------------------------------------------------------------------ code and proofs


def _code_case(blocks: list[BlockData]) -> tuple[BlockData, str, dict[str, Any], bytes]:
    b = _busy(blocks, lambda b: b.codes)
    a, (proof, code, _) = next(iter(b.codes.items()))
    return b, a, proof, bytes.fromhex(code[2:])


def test_cut_or_changed_code_is_detected(blocks: list[BlockData]) -> None:
    b, a, proof, code = _code_case(blocks)
    cut = code[: len(code) * 3 // 4]  # what a node cutting the hex string short serves
    with pytest.raises(V.CodeHashMismatch, match=rf"code {a}: keccak256 of {len(cut)} bytes served") as e:
        V.verify_code(b.header, _addr(a), proof, cut)
    assert e.value.record == f"code {a}" and e.value.method == "eth_getCode"
    other = next(bytes.fromhex(c[2:]) for bb in blocks for x, (_, c, _) in bb.codes.items() if x != a)
    with pytest.raises(V.CodeHashMismatch):
        V.verify_code(b.header, _addr(a), proof, other)


def test_tampered_account_proof_is_detected(blocks: list[BlockData]) -> None:
    b, a, proof, code = _code_case(blocks)
    others = [p for bb in blocks for x, (p, _, _) in bb.codes.items() if x != a]
    # a proof node swapped for another account's node at the same depth
    p = copy.deepcopy(proof)
    depth = len(p["accountProof"]) - 1
    p["accountProof"][depth] = next(o["accountProof"][-1] for o in others
                                    if o["accountProof"][-1] != proof["accountProof"][depth])
    with pytest.raises(V.AccountProofInvalid):
        V.verify_code(b.header, _addr(a), p, code)
    # a flipped byte inside a node
    p = copy.deepcopy(proof)
    node = p["accountProof"][0]
    p["accountProof"][0] = node[:40] + ("0" if node[40] != "0" else "1") + node[41:]
    with pytest.raises(V.AccountProofInvalid, match="account proof|proof from stateRoot|accountProof"):
        V.verify_code(b.header, _addr(a), p, code)
    # a node dropped
    p = copy.deepcopy(proof)
    del p["accountProof"][1]
    with pytest.raises(V.AccountProofInvalid, match="no path"):
        V.verify_code(b.header, _addr(a), p, code)
    # another codeHash stated (with the matching cut code): the proof disagrees
    import eth_hash.auto

    p = copy.deepcopy(proof)
    p["codeHash"] = "0x" + eth_hash.auto.keccak(code[:100]).hex()
    with pytest.raises(V.AccountProofInvalid, match="codeHash"):
        V.verify_code(b.header, _addr(a), p, code[:100])
    # the proof of another account, or against another block's state root
    with pytest.raises(V.AccountProofInvalid, match="address"):
        V.verify_code(b.header, _addr(a), others[0], code)
    later = blocks[-1].header
    if later["stateRoot"] != b.header["stateRoot"]:
        with pytest.raises(V.AccountProofInvalid):
            V.verify_code(later, _addr(a), proof, code)


def test_absent_proof_refuses_an_existing_contract(blocks: list[BlockData]) -> None:
    b, a, proof, _ = _code_case(blocks)
    with pytest.raises(V.AccountProofInvalid, match="code before its creation block"):
        V.verify_absent(b.header, _addr(a), proof)


def test_malformed_fields_are_protocol_errors(blocks: list[BlockData]) -> None:
    b = _busy(blocks, _with_logs)
    rs = copy.deepcopy(b.receipts)
    rs[0]["logsBloom"] = "0x00"
    with pytest.raises(RpcProtocolError, match=r"result\[0\].logsBloom: expected 256 bytes"):
        V.verify_receipts(b.header, rs)
    h = copy.deepcopy(b.header)
    h["transactions"][0]["type"] = "0x9"
    with pytest.raises(RpcProtocolError, match="unknown transaction type 9"):
        V.verify_transactions(h)


def test_lean_trie_builder_equals_the_trie_package(blocks: list[BlockData]) -> None:
    import os
    import random

    rnd = random.Random(7)
    for n in [*range(0, 34), 127, 128, 129, 300]:
        values = [os.urandom(rnd.choice([1, 20, 31, 32, 33, 120, 700])) for _ in range(n)]
        assert V._trie_root(values) == V.reference_trie_root(values), n
    b = max(blocks, key=lambda x: len(x.receipts))
    envs = [V.encode_receipt(r) for r in b.receipts]
    assert V._trie_root(envs) == V.reference_trie_root(envs) == bytes.fromhex(b.header["receiptsRoot"][2:])


def test_lean_rlp_equals_the_rlp_package(blocks: list[BlockData]) -> None:
    import os
    import random

    import rlp

    rnd = random.Random(3)

    def item(depth: int) -> object:
        k = rnd.random()
        if depth > 3 or k < 0.4:
            return os.urandom(rnd.choice([0, 1, 1, 2, 55, 56, 57, 300, 70_000]))
        if k < 0.6:
            return rnd.choice([0, 1, 127, 128, 255, 256, 2**64, 2**255])
        return [item(depth + 1) for _ in range(rnd.choice([0, 1, 3, 20]))]

    for _ in range(300):
        x = item(0)
        assert V._rlp(x) == rlp.encode(x)
    for b in blocks:
        for t in b.header["transactions"]:
            typ, fields, sig = V._tx_fields(t, "m", "p")
            assert V._rlp(fields + sig) == rlp.encode(fields + sig)


def test_the_proof_walk_equals_the_trie_package_on_real_and_tampered_proofs(blocks: list[BlockData]) -> None:
    """``_walk_proof`` (the agent's lean walk) against ``trie``'s ``HexaryTrie.get_from_proof``
    (the reference) on every real account proof of the chain, the absent-account proofs
    (the block before each creation), and each proof with one node flipped, dropped, or
    the key changed: the same value, or both refuse."""
    import random

    import rlp
    from eth_hash.auto import keccak
    from trie.hexary import HexaryTrie

    def reference(root: bytes, key: bytes, raws: list[bytes]) -> bytes | None:
        try:
            return bytes(HexaryTrie.get_from_proof(root, key, [rlp.decode(r) for r in raws]))
        except Exception:  # noqa: BLE001 - trie and rlp refuse with assorted errors
            return None

    def lean(root: bytes, key: bytes, raws: list[bytes]) -> bytes | None:
        try:
            return V._walk_proof(root, key, raws)
        except V._BadProof:
            return None

    rng = random.Random(1186)
    cases = 0
    for b in blocks:
        for a, (proof, _, before) in b.codes.items():
            prev = blocks[int(b.header["number"], 16) - 1].header
            for header, pr in ((b.header, proof), (prev, before)):
                root = bytes.fromhex(header["stateRoot"][2:])
                key = bytes(keccak(bytes.fromhex(a[2:])))
                raws = [bytes.fromhex(x[2:]) for x in pr["accountProof"]]
                variants = [(key, raws), (bytes(keccak(b"another key" + key)), raws)]
                for k in range(len(raws)):
                    flipped = bytearray(raws[k])
                    flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
                    variants.append((key, raws[:k] + [bytes(flipped)] + raws[k + 1:]))
                    variants.append((key, raws[:k] + raws[k + 1:]))
                for kk, rr in variants:
                    want = reference(root, kk, rr)
                    assert lean(root, kk, rr) == want, (a, header["number"])
                    cases += 1
                assert reference(root, key, raws) is not None  # the untampered proof proves something
    assert cases >= 60
    # an empty state (a genesis without allocations): every key is absent, as for the reference
    empty = V.EMPTY_TRIE_ROOT
    for raws in ([], [b"\x80"]):
        assert lean(empty, bytes(32), raws) == reference(empty, bytes(32), raws) == b""
