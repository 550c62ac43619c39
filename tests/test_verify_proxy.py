"""The verifier behind the fault proxy: the reads ingest makes for one block (header with
transactions, receipts, code and account proof, at the block hash) go through a proxy to
a real anvil; every cut, flipped byte or swapped field of an answer that the agent would
store is detected and named, and a clean pass verifies."""

from __future__ import annotations

from typing import Any

from edge.chain import verify as V
from edge.devnet.activity import Activity
from edge.rpc.ws import WsRpc
from edge.errors import RpcProtocolError
from tests.conftest import corpus_codes
from tests.faultproxy import Fault, FaultProxy


async def _read_and_verify(rpc: WsRpc, n: int, parent: bytes) -> int:
    """What verified ingest reads and checks for block ``n``; returns contracts proven."""
    h, rs = await rpc.batch([("eth_getBlockByNumber", [hex(n), True]), ("eth_getBlockReceipts", [hex(n)])])
    V.verify_links([h], parent)
    txs = V.verify_transactions(h)
    V.verify_receipts(h, rs, txs)
    at = {"blockHash": h["hash"]}
    created = [r["contractAddress"] for r in rs if r.get("contractAddress")]
    res = await rpc.batch([c for a in created for c in (("eth_getCode", [a, at]), ("eth_getProof", [a, [], at]))])
    for k, a in enumerate(created):
        V.verify_code(h, bytes.fromhex(a[2:]), res[2 * k + 1], bytes.fromhex(res[2 * k][2:]))
    return len(created)


FAULTS: list[tuple[str, str, str, str]] = [
    # header fields (each is in the block hash)
    *[("eth_getBlockByNumber", "flip", f, "") for f in (
        "hash", "parentHash", "stateRoot", "receiptsRoot", "transactionsRoot", "logsBloom", "miner", "number",
        "timestamp", "gasUsed", "baseFeePerGas", "withdrawalsRoot", "parentBeaconBlockRoot", "requestsHash")],
    # transactions: their hash, body, sender; a swap of two
    ("eth_getBlockByNumber", "flip", "transactions[0].hash", ""),
    ("eth_getBlockByNumber", "flip", "transactions[1].input", ""),
    ("eth_getBlockByNumber", "cut", "transactions[0].input", ""),
    ("eth_getBlockByNumber", "flip", "transactions[0].from", ""),
    ("eth_getBlockByNumber", "swap", "transactions[0]", "transactions[1]"),
    # receipts and logs
    ("eth_getBlockReceipts", "flip", "[0].status", ""),
    ("eth_getBlockReceipts", "flip", "[0].cumulativeGasUsed", ""),
    ("eth_getBlockReceipts", "flip", "[0].logsBloom", ""),
    ("eth_getBlockReceipts", "flip", "[0].transactionHash", ""),
    ("eth_getBlockReceipts", "flip", "[0].from", ""),
    ("eth_getBlockReceipts", "flip", "[0].contractAddress", ""),
    ("eth_getBlockReceipts", "flip", "[0].blockHash", ""),
    ("eth_getBlockReceipts", "flip", "[2].logs[0].data", ""),
    ("eth_getBlockReceipts", "cut", "[2].logs[0].data", ""),
    ("eth_getBlockReceipts", "flip", "[2].logs[0].address", ""),
    ("eth_getBlockReceipts", "flip", "[2].logs[0].topics[0]", ""),
    ("eth_getBlockReceipts", "flip", "[2].logs[0].logIndex", ""),
    ("eth_getBlockReceipts", "swap", "[2].logs", "[3].logs"),
    ("eth_getBlockReceipts", "swap", "[0]", "[1]"),
    ("eth_getBlockReceipts", "swap", "[2].logs[0].data", "[3].logs[0].data"),
    # code and proofs
    ("eth_getCode", "cut", "", ""),
    ("eth_getCode", "flip", "", ""),
    ("eth_getProof", "flip", "accountProof[0]", ""),
    ("eth_getProof", "flip", "accountProof[-1]", ""),
    ("eth_getProof", "flip", "codeHash", ""),
    ("eth_getProof", "flip", "nonce", ""),
    ("eth_getProof", "flip", "address", ""),
]


async def _chain(chain_factory: Any) -> tuple[Any, int, bytes]:
    chain = await chain_factory(extra_args=("--no-mining",))
    act = Activity(chain)
    await act.setup(mine=True)
    await act.deploy(corpus_codes(2))
    await act.crud_writes(4)
    await chain.rpc("evm_mine")
    await act.settle()
    n = int(await chain.rpc("eth_blockNumber"), 16)
    parent = (await chain.rpc("eth_getBlockByNumber", hex(n - 1), False))["hash"]
    return chain, n, bytes.fromhex(parent[2:])


async def test_every_fault_of_every_read_is_detected_and_named(chain_factory) -> None:
    chain, n, parent = await _chain(chain_factory)
    async with FaultProxy(chain.ws_url) as proxy:
        async with WsRpc(proxy.url, timeout=10.0) as rpc:
            assert await _read_and_verify(rpc, n, parent) == 2  # clean: everything verifies
        missed = []
        for method, action, path, other in FAULTS:
            p = path.replace("[-1]", "[2]") if method == "eth_getProof" else path
            proxy.clear()
            proxy.add(Fault(method, action, path=p, other=other))  # type: ignore[arg-type]
            async with WsRpc(proxy.url, timeout=10.0) as rpc:
                try:
                    await _read_and_verify(rpc, n, parent)
                except V.VerificationError as e:
                    stated = n if path != "number" else e.block  # a flipped number names what was stated
                    assert e.block == stated and e.record and str(e.expected) != str(e.got), e
                    assert f"block {stated}'s header" in str(e)
                    continue
                except RpcProtocolError as e:  # malformed (a cut to odd length, a quantity "0x")
                    assert e.method == method or e.method.startswith("eth_"), e
                    continue
                missed.append((method, action, path))
        assert not missed, missed
        assert sum(proxy.applied.values()) >= len(FAULTS)
        proxy.clear()
        async with WsRpc(proxy.url, timeout=10.0) as rpc:
            assert await _read_and_verify(rpc, n, parent) == 2  # faults gone: verifies again
