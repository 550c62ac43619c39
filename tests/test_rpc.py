"""The JSON-RPC layer: one protocol, WebSocket/HTTP/mock transports, error objects.

The WebSocket edge cases (a notification right behind the subscribe answer; a batch
whose connection drops mid-answer) come from a small websockets server of the test's
own: a real node cannot be made to produce them on cue.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
import websockets

from edge.errors import AnswerTooLarge, MethodNotSupported, NodeUnavailable, RpcError, RpcProtocolError, RpcTimeout
from edge.rpc import JsonRpc, open_rpc
from edge.rpc.errors import error_from_object
from edge.rpc.http import HttpRpc
from edge.rpc.mock import MockNetwork, MockRpc
from edge.rpc.ws import WsRpc


async def _serve(handler: Any) -> tuple[Any, str]:
    server = await websockets.serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}"


async def test_a_notification_right_behind_the_subscribe_answer_is_delivered() -> None:
    async def node(ws: Any) -> None:
        req = json.loads(await ws.recv())
        # the answer and the first notification in ONE frame (a JSON array), the tightest race
        await ws.send(json.dumps([
            {"jsonrpc": "2.0", "id": req["id"], "result": "0xabc"},
            {"jsonrpc": "2.0", "method": "eth_subscription",
             "params": {"subscription": "0xabc", "result": {"number": "0x2a"}}},
        ]))
        await ws.wait_closed()

    server, url = await _serve(node)
    try:
        async with WsRpc(url, timeout=5.0) as rpc:
            assert await rpc.subscribe_heads() == "0xabc"
            assert await asyncio.wait_for(rpc.heads.get(), 5.0) == 42
    finally:
        server.close()


async def test_a_batch_that_fails_part_way_leaves_no_unretrieved_future() -> None:
    async def node(ws: Any) -> None:
        reqs = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": reqs[0]["id"],
                                  "error": {"code": -32000, "message": "header not found"}}))
        await ws.close()  # the other answers never come

    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    server, url = await _serve(node)
    try:
        async with WsRpc(url, timeout=5.0) as rpc:
            with pytest.raises((RpcError, NodeUnavailable)):
                await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(8)])
        gc.collect()
        await asyncio.sleep(0)
    finally:
        server.close()
        loop.set_exception_handler(None)
    assert not [c for c in seen if "never retrieved" in str(c.get("message"))], seen


async def test_no_answer_in_time_is_a_timeout_kept_apart_from_a_refused_connection() -> None:
    async def silent(ws: Any) -> None:
        await ws.wait_closed()

    server, url = await _serve(silent)
    try:
        async with WsRpc(url, timeout=0.2) as rpc:
            with pytest.raises(RpcTimeout, match="eth_chainId: no answer"):
                await rpc.call("eth_chainId")
    finally:
        server.close()
    with pytest.raises(NodeUnavailable) as refused:
        async with WsRpc("ws://127.0.0.1:9", timeout=2.0):
            pass
    assert not isinstance(refused.value, RpcTimeout)


def test_error_objects_map_onto_the_error_tree() -> None:
    assert isinstance(error_from_object("trace_block", {"code": -32601, "message": "Method not found"}),
                      MethodNotSupported)
    err = error_from_object("eth_call", {"code": 3, "message": "execution reverted", "data": "0x08c379a0"})
    assert isinstance(err, RpcError) and err.code == 3 and str(err).endswith("0x08c379a0")
    assert isinstance(error_from_object("eth_call", {"code": True, "message": "x"}), RpcProtocolError)
    assert isinstance(error_from_object("eth_call", "boom"), RpcProtocolError)


async def test_an_answer_over_the_frame_limit_is_answer_too_large_not_a_plain_drop(
        chain_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real node's answer over the WebSocket frame limit (our side closes with 1009)
    fails the request as AnswerTooLarge, so the caller asks for less; a small one passes."""
    import edge.rpc.ws as ws_mod

    chain = await chain_factory()
    monkeypatch.setattr(ws_mod, "_MAX_FRAME", 4096)
    async with WsRpc(chain.ws_url, timeout=5.0) as rpc:
        assert int(await rpc.call("eth_chainId"), 16) == chain.chain_id
    async with WsRpc(chain.ws_url, timeout=5.0) as rpc:
        with pytest.raises(AnswerTooLarge, match="message too big"):
            await rpc.batch([("eth_getBlockByNumber", ["0x0", True])] * 16)


async def test_http_batch_and_call_against_a_real_node(chain_factory: Any) -> None:
    chain = await chain_factory()
    async with HttpRpc(chain.http_url) as rpc:
        assert isinstance(rpc, JsonRpc)
        cid, head = await rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        assert int(cid, 16) == chain.chain_id and int(head, 16) >= 0
        with pytest.raises(MethodNotSupported):
            await rpc.subscribe_heads()
        with pytest.raises(RpcError):
            await rpc.call("eth_getBalance", ["not an address", "latest"])


async def test_mock_network_records_calls_and_refuses_unknown_endpoints() -> None:
    net = MockNetwork({"mock://a": lambda m, p: {"eth_chainId": "0x1"}[m]})
    async with net("mock://a", timeout=1.0) as rpc:
        assert await rpc.call("eth_chainId") == "0x1"
        with pytest.raises(KeyError):
            await rpc.batch([("eth_chainId", []), ("eth_gasPrice", [])])
    assert isinstance(net.connections[0], MockRpc)
    assert [m for m, _ in net.connections[0].calls] == ["eth_chainId", "eth_chainId", "eth_gasPrice"]
    with pytest.raises(NodeUnavailable, match="no such mock endpoint"):
        async with net("mock://b", timeout=1.0):
            pass


def test_open_rpc_picks_the_transport_by_scheme() -> None:
    assert isinstance(open_rpc("ws://127.0.0.1:1"), WsRpc)
    assert isinstance(open_rpc("https://127.0.0.1:1"), HttpRpc)
    with pytest.raises(ValueError, match="ftp://x"):
        open_rpc("ftp://x")
