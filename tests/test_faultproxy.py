"""The fault-injecting proxy on its own, between the project's WsRpc and a real anvil:
pass-through is exact, and each fault does what it says (and only to its method)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChain
from edge.rpc.ws import WsRpc
from edge.errors import NodeUnavailable, RpcError, RpcProtocolError
from tests.conftest import corpus_codes
from tests.faultproxy import Fault, FaultProxy, get_path, set_path


@pytest.fixture
async def node(chain_factory) -> AsyncIterator[tuple[DevChain, str]]:
    chain = await chain_factory()  # automine: one block per transaction
    act = Activity(chain)
    await act.setup()
    await act.deploy(corpus_codes(1))
    await act.crud_writes(2)
    await act.settle()
    yield chain, (await chain.rpc("eth_getBlockReceipts", "0x1"))[0]["contractAddress"]


def test_paths() -> None:
    doc = {"logs": [{"data": "0x01"}, {"data": "0x02"}]}
    assert get_path(doc, "logs[1].data") == "0x02"
    assert set_path(doc, "logs[0].data", "0xff")["logs"][0]["data"] == "0xff"
    assert set_path([1, 2], "", "x") == "x" and get_path([[5]], "[0][0]") == 5


async def test_pass_through_is_exact(node: tuple[DevChain, str]) -> None:
    chain, _ = node
    calls = [("eth_getBlockByNumber", ["0x2", True]), ("eth_getBlockReceipts", ["0x2"]), ("eth_chainId", [])]
    direct = await chain.batch(calls)
    async with FaultProxy(chain.ws_url) as proxy, WsRpc(proxy.url, timeout=5.0) as rpc:
        assert await rpc.batch(calls) == direct
        assert await rpc.call("eth_blockNumber") == await chain.rpc("eth_blockNumber")
    assert not proxy.applied


async def test_cut_flip_swap_set_only_their_method(node: tuple[DevChain, str]) -> None:
    chain, crud = node
    code = await chain.rpc("eth_getCode", crud, "latest")
    block = await chain.rpc("eth_getBlockByNumber", "0x3", False)
    receipts = await chain.rpc("eth_getBlockReceipts", "0x3")
    async with FaultProxy(chain.ws_url) as proxy, WsRpc(proxy.url, timeout=5.0) as rpc:
        proxy.add(Fault("eth_getCode", "cut", times=1))
        cut = await rpc.call("eth_getCode", [crud, "latest"])
        assert code.startswith(cut) and len(cut) % 2 == 0 and (len(cut) - 2) == (len(code) - 2) // 2 * 3 // 4 * 2
        assert await rpc.call("eth_getCode", [crud, "latest"]) == code  # times=1: healthy again
        proxy.add(Fault("eth_getBlockByNumber", "flip", path="stateRoot", times=1))
        got, same_receipts = await rpc.batch([("eth_getBlockByNumber", ["0x3", False]),
                                              ("eth_getBlockReceipts", ["0x3"])])
        assert got["stateRoot"] != block["stateRoot"] and len(got["stateRoot"]) == 66
        assert {k: v for k, v in got.items() if k != "stateRoot"} == {k: v for k, v in block.items()
                                                                      if k != "stateRoot"}
        assert same_receipts == receipts
        proxy.add(Fault("eth_getBlockReceipts", "swap", path="[0].status", other="[0].cumulativeGasUsed", times=1),
                  Fault("eth_getBlockByNumber", "set", path="hash", value="0x" + "00" * 32, times=1))
        swapped = await rpc.call("eth_getBlockReceipts", ["0x3"])
        assert swapped[0]["status"] == receipts[0]["cumulativeGasUsed"]
        assert swapped[0]["cumulativeGasUsed"] == receipts[0]["status"]
        assert (await rpc.call("eth_getBlockByNumber", ["0x3", False]))["hash"] == "0x" + "00" * 32
    assert proxy.applied[("eth_getCode", "cut")] == 1 and proxy.applied[("eth_getBlockReceipts", "swap")] == 1


async def test_drop_delay_duplicate_error_garble_reorder(node: tuple[DevChain, str]) -> None:
    chain, _ = node
    cid = await chain.rpc("eth_chainId")
    async with FaultProxy(chain.ws_url) as proxy:
        async with WsRpc(proxy.url, timeout=0.5) as rpc:
            proxy.add(Fault("eth_chainId", "drop", times=1))
            with pytest.raises(NodeUnavailable, match="eth_chainId: no answer"):
                await rpc.call("eth_chainId")
            proxy.add(Fault("eth_chainId", "error", times=1))
            with pytest.raises(RpcError, match="injected"):
                await rpc.call("eth_chainId")
        async with WsRpc(proxy.url, timeout=5.0) as rpc:
            proxy.add(Fault("eth_chainId", "delay", delay_s=0.3, times=1))
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await rpc.call("eth_chainId") == cid
            assert loop.time() - t0 >= 0.3
            proxy.add(Fault("eth_blockNumber", "reorder", times=1))
            # the client matches answers by id, so a reordered batch still comes out right
            assert await rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])]) == \
                [cid, await chain.rpc("eth_blockNumber")]
            proxy.add(Fault("eth_chainId", "duplicate", times=1))
            assert await rpc.call("eth_chainId") == cid
            with pytest.raises(RpcProtocolError, match="answer to unknown id"):
                await rpc.call("eth_chainId")  # the duplicate poisoned the connection
        async with WsRpc(proxy.url, timeout=5.0) as rpc:
            proxy.add(Fault("eth_chainId", "garble", times=1))
            with pytest.raises(RpcProtocolError, match="frame is not JSON"):
                await rpc.call("eth_chainId")
    assert proxy.applied[("eth_chainId", "drop")] == 1 and proxy.applied[("eth_chainId", "duplicate")] == 1


async def test_lag_window_withholds_head_blocks_and_new_heads(node: tuple[DevChain, str]) -> None:
    chain, _ = node
    async with FaultProxy(chain.ws_url) as proxy, WsRpc(proxy.url, timeout=5.0) as rpc:
        await rpc.subscribe_heads()
        frozen = await proxy.lag(30.0)
        await chain.rpc("evm_mine")
        await chain.rpc("evm_mine")
        real = int(await chain.rpc("eth_blockNumber"), 16)
        assert real == frozen + 2
        assert int(await rpc.call("eth_blockNumber"), 16) == frozen
        above, at = await rpc.batch([("eth_getBlockByNumber", [hex(frozen + 1), False]),
                                     ("eth_getBlockByNumber", [hex(frozen), False])])
        assert above is None and int(at["number"], 16) == frozen
        assert await rpc.call("eth_getBlockReceipts", [hex(frozen + 2)]) is None
        assert proxy.lagging_head() == frozen
        proxy.clear()  # the window ends: the node has caught up
        await chain.rpc("evm_mine")
        n = await asyncio.wait_for(rpc.heads.get(), 10.0)
        assert n == real + 1, "heads above the frozen one were withheld, the next one arrives"
        assert int(await rpc.call("eth_blockNumber"), 16) == real + 1
    assert proxy.applied[("eth_subscription", "lag")] == 2
    assert proxy.applied[("eth_getBlockByNumber", "lag")] == 1


async def test_drop_connections_is_seen_as_node_loss(node: tuple[DevChain, str]) -> None:
    chain, _ = node
    async with FaultProxy(chain.ws_url) as proxy, WsRpc(proxy.url, timeout=5.0) as rpc:
        assert await rpc.call("eth_chainId")
        await proxy.drop_connections()
        with pytest.raises(NodeUnavailable):
            for _ in range(50):  # the close frame may need a round trip to be noticed
                await rpc.call("eth_chainId")
