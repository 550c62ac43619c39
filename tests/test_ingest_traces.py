"""Factory-made contracts without a block tracer (edge.ingest.adapter.ChainReader): a node
with only ``debug_traceTransaction`` (callTracer) has every transaction of a range traced
in one batch; a node with no call tracer at all (Hardhat's EDR) is said once to hide the
contracts that contracts create."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChain
from edge.devnet.hardhat import HardhatChain
from edge.errors import MethodNotSupported
from edge.ingest.adapter import ChainReader, FetchedBlock
from edge.rpc.base import Call
from edge.rpc.http import HttpRpc
from tests.conftest import corpus_codes


class WithoutBlockTracers:
    """A real node's connection with ``trace_block`` and ``debug_traceBlockByNumber``
    answered as a node without them answers (-32601), as EthereumJS 0.10.5 does; anvil
    cannot be started without them. Counts the batches and what they asked for."""

    def __init__(self, rpc: HttpRpc) -> None:
        self.rpc = rpc
        self.url = rpc.url
        self.batches: list[list[str]] = []

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return await self.rpc.call(method, params)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        self.batches.append([m for m, _ in calls])
        for m, _ in calls:
            if m in ("trace_block", "debug_traceBlockByNumber"):
                raise MethodNotSupported(m, -32601, f"the method {m} does not exist/is not available")
        return await self.rpc.batch(calls)


async def _activity(chain: DevChain) -> tuple[Activity, set[bytes], int]:
    """Three contracts made by the Spawner contract (only traces show them), three
    top-level deployments; returns the activity, the spawned addresses, the head."""
    act = Activity(chain)
    await act.setup()
    codes = corpus_codes(6)
    await act.spawn(codes[:3])
    await act.settle()
    spawned = set(act.deployed)
    await act.deploy(codes[3:])
    await act.settle()
    assert len(spawned) == 3 and len(act.deployed) == 6
    return act, spawned, int(await chain.rpc("eth_blockNumber"), 16)


def _found(blocks: list[FetchedBlock]) -> set[bytes]:
    return {c.address for b in blocks for c in b.creations}


async def test_debug_trace_transaction_batch_finds_factory_contracts(chain_factory: Any) -> None:
    chain = await chain_factory("poa", 7201)
    act, spawned, head = await _activity(chain)
    async with HttpRpc(chain.http_url) as rpc:
        reference = await ChainReader(rpc, frozenset(), "trace_block").blocks(0, head)
        only_tx = WithoutBlockTracers(rpc)
        reader = ChainReader(only_tx, frozenset(), "auto")  # type: ignore[arg-type]
        got = await reader.blocks(0, head)
    assert reader.traces == "debug_tx"
    assert set(act.deployed) | spawned <= _found(got) == _found(reference)  # the spawned ones too
    assert [(b.block.number, b.creations) for b in got] == [(b.block.number, b.creations) for b in reference]
    # after learning: one batch for the range's blocks and receipts, one for all its transactions
    n_tx = sum(len(b.raw["transactions"]) for b in got)
    assert only_tx.batches[-2:] == [["eth_getBlockByNumber", "eth_getBlockReceipts"] * (head + 1),
                                    ["debug_traceTransaction"] * n_tx]


async def test_no_call_tracer_is_said_once_and_top_level_still_seen(caplog: pytest.LogCaptureFixture) -> None:
    """Hardhat 2.26 has no trace_block, no debug_traceBlockByNumber, and a
    debug_traceTransaction without callTracer (-32602): traces go off, one warning."""
    caplog.set_level(logging.INFO, logger="edge.ingest")
    # interval mining: under automine Hardhat answers a batch of sends out of nonce order
    async with HardhatChain("poa-hardhat", 7201, 0.5) as chain:
        act, spawned, head = await _activity(chain)
        async with HttpRpc(chain.http_url) as rpc:
            reader = ChainReader(rpc, frozenset(), "auto")
            first = await reader.blocks(0, head // 2)
            rest = await reader.blocks(head // 2 + 1, head)
    assert reader.traces == "off"
    found = _found(first + rest)
    assert set(act.deployed) - found == spawned  # exactly the factory-made ones are not seen
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "contracts created by other contracts" in warnings[0].getMessage()
