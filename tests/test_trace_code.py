"""Runtime code from the traces (edge.chain.extract.Creation.code): the ingest adapter
takes each creation's code from the trace it already read (``strict`` proves it against
the account's ``codeHash``), and asks ``eth_getCode`` only where the trace's code may not
be the account's code at the end of the block (the address self-destructs in the block). A creation under a reverted frame is
no deployment, in both trace formats. On a real anvil, against ``eth_getCode``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from edge.chain.extract import creations_from_call_traces, creations_from_parity_traces
from edge.chain.records import BlockRecord
from edge.devnet.activity import Activity
from edge.errors import RpcProtocolError
from edge.ingest.adapter import ChainReader, TraceMode, VerifyMode
from edge.rpc.base import Call
from edge.rpc.http import HttpRpc
from tests.conftest import corpus_codes

# hand-assembled init code: a child whose runtime is CALLER SELFDESTRUCT (0x33ff) ...
CHILD_INIT = "6133ff6000526002601ef3"
_CREATE_CHILD = "6a" + CHILD_INIT + "600052" + "600b6015" + "6000f0"  # CREATE(0, 21, 11) -> child address
_CALL_CHILD = "6000600060006000600085" + "5a" + "f1" + "5050"  # CALL(gas, child, 0, 0, 0, 0, 0); pop both
KILL = _CREATE_CHILD + _CALL_CHILD + "60006000f3"  # ... made and destroyed in one transaction
REVERT = _CREATE_CHILD + _CALL_CHILD + "60006000fd"  # ... made, then the whole transaction reverts
KEEP = _CREATE_CHILD + "50" + "60006000f3"  # ... made and kept (its creator's runtime is empty)


class Counting:
    """A real node's connection that counts the ``eth_getCode`` and ``eth_getProof``
    calls it is asked."""

    def __init__(self, rpc: HttpRpc) -> None:
        self.rpc = rpc
        self.get_code: list[Any] = []
        self.proofs = 0

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return await self.rpc.call(method, params)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        self.get_code += [p[0] for m, p in calls if m == "eth_getCode"]
        self.proofs += sum(m == "eth_getProof" for m, _ in calls)
        return await self.rpc.batch(calls)


@pytest.mark.parametrize("traces", ["trace_block", "debug_trace"])
async def test_code_from_traces_is_the_code_at_the_block(chain_factory: Any, traces: TraceMode) -> None:
    chain = await chain_factory(extra_args=("--no-mining",))
    act = Activity(chain)
    await act.setup(mine=True)
    codes = corpus_codes(4)
    await act.spawn(codes[:2])  # factory-made: only traces show them
    await act.deploy(codes[2:])
    sender = (await chain.rpc("eth_accounts"))[1]  # the activity's own account keeps its nonces
    for init in (KILL, REVERT, KEEP):
        await chain.rpc("eth_sendTransaction", {"from": sender, "data": "0x" + init, "gas": hex(1_000_000)})
    await chain.rpc("evm_mine")  # all of it in one block
    await act.settle()
    head = int(await chain.rpc("eth_blockNumber"), 16)
    async with HttpRpc(chain.http_url) as rpc:
        got: dict[str, tuple[dict[tuple[int, bytes], bytes], list[Any]]] = {}
        proofs: dict[str, int] = {}
        verify: VerifyMode
        for verify in ("receipts", "strict"):
            counting = Counting(rpc)
            reader = ChainReader(counting, frozenset(), traces, verify)  # type: ignore[arg-type]
            blocks = await reader.blocks(head, head)
            creations = [(b, c) for b in blocks for c in b.creations]
            got[verify] = (await reader.codes(creations), counting.get_code)
            proofs[verify] = counting.proofs
        truth = {(head, c.address): bytes.fromhex((await rpc.call("eth_getCode", ["0x" + c.address.hex(),
                                                                                   hex(head)]))[2:])
                 for _, c in creations}
    by_trace, asked = got["receipts"]
    assert by_trace == got["strict"][0] == truth  # the same code whichever way it was read
    # 2 spawned + 2 deployed corpus codes, KILL's and KEEP's creators and children; REVERT's none
    assert len(truth) == 8 and set(act.deployed) <= {a for _, a in truth}
    made = {c.address for _, c in creations}
    children = {c.address: truth[(head, c.address)] for _, c in creations if c.creator in made}
    assert sorted(children.values()) == [b"", b"\x33\xff"]  # KILL's child left no code; KEEP's kept it
    killed = next(a for a, code in children.items() if code == b"")
    # receipts: only what the trace cannot vouch for is asked: KILL's child (it self-destructed in
    # the block); callTracer also omits the empty output of the two creators that return no runtime
    assert sorted(asked) == sorted(["0x" + killed.hex()] + (
        ["0x" + c.address.hex() for _, c in creations if c.creator == bytes.fromhex(sender[2:])]
        if traces == "debug_trace" else []))
    # strict reads no more code than that, and proves every one against the block's stateRoot
    assert sorted(got["strict"][1]) == sorted(asked) and proofs == {"receipts": 0, "strict": len(truth)}


_BLOCK = BlockRecord(5, b"\x05" * 32, b"\x04" * 32, 0, 0, 0)


def _parity(*traces: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"transactionPosition": 0, "traceAddress": [], **t} for t in traces]


def test_parity_code_left_out_for_a_destroyed_address_and_reverted_subtrees_dropped() -> None:
    a, b, c, d = ("0x" + (bytes([i]) * 20).hex() for i in (10, 11, 12, 13))
    raw = _parity(
        {"type": "create", "action": {"from": a}, "result": {"address": b, "code": "0x6001"}},
        {"type": "create", "traceAddress": [0], "action": {"from": b}, "result": {"address": c, "code": "0x33ff"}},
        {"type": "suicide", "traceAddress": [1], "action": {"address": c, "refundAddress": a, "balance": "0x0"}},
        {"type": "call", "traceAddress": [2], "error": "Reverted", "action": {"from": b}, "result": None},
        {"type": "create", "traceAddress": [2, 0], "action": {"from": b}, "result": {"address": d, "code": "0x60"}},
    )
    got = creations_from_parity_traces(raw, _BLOCK, [b"\x01" * 32])
    assert [(x.address, x.create_index, x.code) for x in got] == [
        (bytes([11]) * 20, 0, b"\x60\x01"), (bytes([12]) * 20, 1, None)]  # d sat under the reverted call


def test_call_tracer_code_and_selfdestruct() -> None:
    a, b, c = ("0x" + (bytes([i]) * 20).hex() for i in (10, 11, 12))
    frame = {"type": "CREATE", "from": a, "to": b, "output": "0x6001", "calls": [
        {"type": "CREATE2", "from": b, "to": c, "output": "0x33ff"},
        {"type": "SELFDESTRUCT", "from": c, "to": a},
    ]}
    got = creations_from_call_traces([{"result": frame}], [b"\x01" * 32])
    assert [(x.address, x.code) for x in got] == [(bytes([11]) * 20, b"\x60\x01"), (bytes([12]) * 20, None)]


def test_malformed_trace_code_names_the_field() -> None:
    a, b = ("0x" + (bytes([i]) * 20).hex() for i in (10, 11))
    with pytest.raises(RpcProtocolError, match=r"trace_block.*result\[0\]\.result\.code"):
        creations_from_parity_traces(_parity({"type": "create", "action": {"from": a},
                                               "result": {"address": b, "code": "0xzz"}}), _BLOCK, [b"\x01" * 32])
    with pytest.raises(RpcProtocolError, match=r"result\[0\]\.traceAddress"):
        creations_from_parity_traces(_parity({"type": "create", "traceAddress": "0", "action": {"from": a},
                                               "result": {"address": b}}), _BLOCK, [b"\x01" * 32])
    with pytest.raises(RpcProtocolError, match=r"debug_traceBlockByNumber.*result\[0\]\.result\.output"):
        creations_from_call_traces([{"result": {"type": "CREATE", "from": a, "to": b, "output": 7}}], [b"\x01" * 32])
