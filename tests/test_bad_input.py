"""Bad input: a node answering invalid JSON-RPC, an unreachable node, a full disk, a
database from a newer schema. Each gets a clear error or a logged retry, never a crash
or a silent loss."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from edge.devnet.anvil import free_port
from edge.rpc.ws import WsRpc
from edge.config import parse_config
from edge.errors import NodeUnavailable, OutboxError, OutboxFull, RpcProtocolError, SchemaError
from edge.agent import Agent
from edge.store.db import Outbox

Answer = Callable[[dict[str, Any]], Any]


async def _misbehaving_node(answer: Answer) -> tuple[Any, str]:
    """A small WebSocket server that answers each request with ``answer(request)``
    (a str is sent raw; anything else as JSON)."""

    async def handler(ws: ServerConnection) -> None:
        try:
            async for frame in ws:
                req = json.loads(frame)
                for r in req if isinstance(req, list) else [req]:
                    out = answer(r)
                    await ws.send(out if isinstance(out, str) else json.dumps(out))
        except websockets.exceptions.ConnectionClosed:
            pass

    port = free_port()
    server = await serve(handler, "127.0.0.1", port)
    return server, f"ws://127.0.0.1:{port}"


def _ok(r: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": r["id"], "result": result}


CASES: dict[str, tuple[Answer, str]] = {
    "not JSON": (lambda r: "<html>502 Bad Gateway</html>", "frame is not JSON"),
    "no jsonrpc field": (lambda r: {"id": r["id"], "result": "0x1"}, "not a JSON-RPC 2.0 object"),
    "unknown id": (lambda r: {"jsonrpc": "2.0", "id": 999_999, "result": "0x1"}, "answer to unknown id"),
    "neither result nor error": (lambda r: {"jsonrpc": "2.0", "id": r["id"]}, "neither result nor error"),
    "quantity not hex": (lambda r: _ok(r, 7201), "eth_chainId: malformed answer: result: expected a hex quantity"),
    "block of wrong shape": (
        lambda r: _ok(r, "0x1b21") if r["method"] == "eth_chainId"
        else _ok(r, "0x5") if r["method"] == "eth_blockNumber"
        else _ok(r, "0x0") if r["method"] == "eth_subscribe"
        else _ok(r, {"number": "0x0", "hash": "0x12"}),
        "eth_getBlockByNumber: malformed answer: result.transactions: missing",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_invalid_jsonrpc_is_named_and_retried_not_crashed(case: str, tmp_path: Path, caplog) -> None:
    answer, expected = CASES[case]
    server, url = await _misbehaving_node(answer)
    cfg = parse_config({"node": {"ws_url": url, "reconnect_max_s": 0.2, "request_timeout_s": 2.0},
                        "outbox": {"path": str(tmp_path / "edge.sqlite")}}, base_dir=tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            async with Agent(cfg, score=False) as agent:
                task = asyncio.create_task(agent.run())
                for _ in range(100):
                    if agent.stats.reconnects >= 2:
                        break
                    await asyncio.sleep(0.05)
                assert not task.done(), "the agent must keep retrying, not crash"
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    finally:
        server.close()
        await server.wait_closed()
    assert agent.stats.reconnects >= 2
    assert expected in agent.stats.last_error
    assert any(expected in r.getMessage() and "reconnecting" in r.getMessage() for r in caplog.records)


async def test_rpc_client_raises_protocol_error_naming_method() -> None:
    server, url = await _misbehaving_node(lambda r: "garbage")
    try:
        async with WsRpc(url, timeout=2.0) as rpc:
            with pytest.raises(RpcProtocolError, match="eth_blockNumber: malformed answer: frame is not JSON"):
                await rpc.call("eth_blockNumber")
            with pytest.raises(RpcProtocolError):  # the poisoned connection stays failed
                await rpc.call("eth_chainId")
    finally:
        server.close()
        await server.wait_closed()


async def test_unreachable_node_is_retried_with_a_clear_log(tmp_path: Path, caplog) -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(NodeUnavailable, match=f"cannot connect to {url}"):
        async with WsRpc(url, timeout=1.0):
            pass
    cfg = parse_config({"node": {"ws_url": url, "reconnect_max_s": 0.2},
                        "outbox": {"path": str(tmp_path / "edge.sqlite")}}, base_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        async with Agent(cfg, score=False) as agent:
            task = asyncio.create_task(agent.run())
            await asyncio.sleep(1.0)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert agent.stats.reconnects >= 2
    assert any(f"cannot connect to {url}" in r.getMessage() for r in caplog.records)


async def test_disk_full_rolls_back_whole_transaction(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    async with Outbox(db) as ob:
        async with ob.transaction() as tx:
            await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)", (b"a" * 32, b"x", 1))
        pages = (await ob.fetchone("PRAGMA page_count"))[0]  # type: ignore[index]
        await ob.conn.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk is nearly full
        with pytest.raises(OutboxFull, match="disk full"):
            async with ob.transaction() as tx:
                await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)", (b"b" * 32, b"y", 1))
                await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)",
                                 (b"c" * 32, b"z" * 200_000, 200_000))
        rows = await ob.fetchall("SELECT code_hash FROM codes")
        assert rows == [(b"a" * 32,)]  # neither row of the failed transaction is there
        await ob.conn.execute("PRAGMA max_page_count=1073741823")  # space freed: writes work again
        async with ob.transaction() as tx:
            await tx.execute("INSERT INTO codes (code_hash, code, size) VALUES (?,?,?)", (b"b" * 32, b"y", 1))
        assert len(await ob.fetchall("SELECT code_hash FROM codes")) == 2


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(SchemaError, match="schema version 99"):
        async with Outbox(db):
            pass


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="not a usable SQLite database"):
        async with Outbox(db):
            pass


async def test_migration_is_idempotent_and_versioned(tmp_path: Path) -> None:
    db = tmp_path / "edge.sqlite"
    for _ in range(2):
        async with Outbox(db) as ob:
            (v,) = await ob.fetchone("PRAGMA user_version")  # type: ignore[misc]
            (mode,) = await ob.fetchone("PRAGMA journal_mode")  # type: ignore[misc]
    assert v >= 1 and mode == "wal"
