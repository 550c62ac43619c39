"""The tx sender (edge.forward.txsender) on real anvil nodes: life cycle, durability of the
signed bytes before broadcast, fee bumps, kill -9, nonce recovery, low balance, node down,
reverts and reorgs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from edge.devnet.anvil import DevChain
from edge.forward.txsender import TxSender
from edge.rpc.http import HttpRpc
from edge.errors import ChainIdMismatch, EdgeError, NodeUnavailable
from edge.crypto.keys import DeviceKey
from edge.store.db import Outbox

REPO = Path(__file__).resolve().parents[1]
DEV_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil account 0
CID = 7301
SINK = bytes.fromhex("11" * 20)
GWEI = 10**9
LOG = "edge.txsender"


def dev_key() -> DeviceKey:
    return DeviceKey.from_private_key(bytes.fromhex(DEV_KEY))


def sender_for(ob: Outbox, chain: DevChain, key: DeviceKey | None = None, **kw: Any) -> TxSender:
    kw.setdefault("max_fee_cap_wei", 1000 * GWEI)
    return TxSender(ob, HttpRpc(chain.http_url), key or dev_key(), chain_id=chain.chain_id, **kw)


async def enqueue(ob: Outbox, s: TxSender, n: int = 1, **kw: Any) -> list[int]:
    ids = []
    for _ in range(n):
        async with ob.transaction() as tx:
            kw2 = {"to": SINK, "data": b"", "purpose": "test", **kw}
            ids.append(await s.enqueue(tx, **kw2))
    return ids


async def steps_until(s: TxSender, done: Callable[[], Any], chain: DevChain | None = None,
                      limit: int = 30) -> int:
    """Call step() (mining a block between passes if ``chain``) until ``done()``; count."""
    for i in range(1, limit + 1):
        await s.step()
        if await done():
            return i
        if chain is not None:
            await chain.rpc("evm_mine")
    raise AssertionError(f"not done after {limit} passes")


def all_in(s: TxSender, ids: list[int], *states: str) -> Callable[[], Any]:
    async def check() -> bool:
        return all([(await s.get(i)).state in states for i in ids])
    return check


def attempts(db: Path, tx_id: int) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT attempt, nonce, hash, raw, max_fee, max_priority_fee, sent_block"
                           " FROM tx_attempts WHERE tx_id=? ORDER BY attempt", (tx_id,)).fetchall()
    finally:
        con.close()


def decode_raw(raw: bytes) -> list[Any]:
    """EIP-1559 envelope: 0x02 || rlp([chainId, nonce, prio, max, gas, to, value, data, ...])."""
    assert raw[0] == 2
    return list(rlp.decode(raw[1:]))


async def chain_nonce(chain: DevChain, addr: str, tag: str = "latest") -> int:
    return int(await chain.rpc("eth_getTransactionCount", addr, tag), 16)


async def receipt(chain: DevChain, h: bytes) -> Any:
    return await chain.rpc("eth_getTransactionReceipt", "0x" + h.hex())


# ------------------------------------------------------------------------ life cycle


async def test_lifecycle_persisted(chain_factory: Any, tmp_path: Path) -> None:
    chain = await chain_factory("pub", CID)
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, chain, confirmations=2) as s:
        ids = await enqueue(ob, s, 3, data=b"\x01\x02", ref=b"cp-1")
        assert [(await s.get(i)).state for i in ids] == ["queued"] * 3
        assert (await s.get(ids[0])).nonce is None and await s.pending_count() == 3
        await s.step()  # sign + send (anvil automines each on arrival)
        recs = [await s.get(i) for i in ids]
        assert [r.state for r in recs] == ["sent"] * 3
        assert [r.nonce for r in recs] == [0, 1, 2]
        for r in recs:
            (att,) = attempts(db, r.id)
            assert att[2] == keccak(att[3]) == r.hash  # stored hash is the hash of the raw bytes
            fields = decode_raw(att[3])
            assert int.from_bytes(fields[1], "big") == r.nonce and fields[5] == SINK
            assert fields[7] == b"\x01\x02"
            onchain = await chain.rpc("eth_getTransactionByHash", "0x" + r.hash.hex())
            assert onchain["input"] == "0x0102"
        await s.step()  # blocks 1..3 hold them, head 3: confirmed once head - block >= 2
        assert [(await s.get(i)).state for i in ids] == ["confirmed", "mined", "mined"]
        rec = await s.get(ids[1])
        assert rec.status == 1 and rec.mined_block == 2 and rec.ref == b"cp-1" and rec.attempts == 1
        await chain.rpc("evm_mine")
        await s.step()
        assert [(await s.get(i)).state for i in ids] == ["confirmed", "confirmed", "mined"]
        await chain.rpc("evm_mine")
        await s.step()
        assert [(await s.get(i)).state for i in ids] == ["confirmed"] * 3
        assert await s.pending_count() == 0
        assert await s.wait(ids[2], "confirmed", timeout=1) == await s.get(ids[2])
    async with Outbox(db) as ob, sender_for(ob, chain) as s2:  # persisted across restarts
        assert [(await s2.get(i)).state for i in ids] == ["confirmed"] * 3
        assert await s2.get(ids[1]) == dataclasses.replace(rec, state="confirmed")
    assert await chain_nonce(chain, dev_key().address) == 3


async def test_raw_stored_before_broadcast_and_rebroadcast(chain_factory: Any, tmp_path: Path) -> None:
    """The node dies between signing and broadcasting: the row already holds nonce, raw
    bytes and hash ('signed'); after the node is back a new sender sends THOSE bytes."""
    chain = await chain_factory("pub", CID)
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, chain) as s:
        (tid,) = await enqueue(ob, s, data=b"payload")
        orig = s._call

        async def kill_then_send(method: str, *params: Any) -> Any:
            if method == "eth_sendRawTransaction":
                await chain.kill()
            return await orig(method, *params)

        s._call = kill_then_send  # type: ignore[method-assign]
        with pytest.raises(NodeUnavailable):
            await s.step()
        rec = await s.get(tid)
        assert rec.state == "signed" and rec.nonce == 0 and rec.attempts == 1
        ((_, nonce, h, raw, _, _, sent_block),) = attempts(db, tid)
        assert nonce == 0 and raw and h == keccak(raw) and sent_block is None
    await chain.start()  # a fresh node on the same port
    async with Outbox(db) as ob, sender_for(ob, chain) as s2:
        await s2.step()
        rec = await s2.get(tid)
        assert rec.state in ("sent", "mined") and rec.attempts == 1 and rec.hash == h  # not re-signed
        await steps_until(s2, all_in(s2, [tid], "mined", "confirmed"), limit=10)
        rc = await receipt(chain, h)
        assert rc is not None and int(rc["status"], 16) == 1


# ------------------------------------------------------------------------- fee bumps


async def test_stuck_tx_is_bumped_same_nonce(chain_factory: Any, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID, extra_args=("--no-mining",))
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, chain, stuck_blocks=2, confirmations=1) as s:
        (tid,) = await enqueue(ob, s, data=b"stuck", gas=30_000)
        await s.step()
        assert (await s.get(tid)).state == "sent"
        for _ in range(2):  # base fee jumps to 50 gwei: the tx's max fee (~3 gwei) is too low
            await chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(50 * GWEI))
            await chain.rpc("evm_mine")
        await s.step()
        rows = attempts(db, tid)
        assert len(rows) == 2, "stuck for 2 blocks: one replacement"
        a1, a2 = rows
        assert a1[1] == a2[1] == 0  # same nonce
        assert a2[4] >= a1[4] * 1.10 and a2[5] >= a1[5] * 1.10  # both fees bumped >= 10 %
        assert a2[4] > 50 * GWEI  # and up to the market
        f1, f2 = decode_raw(a1[3]), decode_raw(a2[3])
        assert f1[1] == f2[1] and f1[4:8] == f2[4:8]  # nonce, gas, to, value, data unchanged
        await chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(50 * GWEI))
        await chain.rpc("evm_mine")
        await steps_until(s, all_in(s, [tid], "confirmed"), chain)
        rec = await s.get(tid)
        assert rec.hash == a2[2] and rec.attempts == 2
        assert await receipt(chain, a1[2]) is None and await receipt(chain, a2[2]) is not None
        assert await chain_nonce(chain, dev_key().address) == 1
    assert any("attempt 2" in r.getMessage() for r in caplog.records)


async def test_fee_above_cap_waits(chain_factory: Any, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, max_fee_cap_wei=GWEI) as s:
        (tid,) = await enqueue(ob, s)
        for _ in range(3):
            await s.step()
        assert s.paused_fee_cap and (await s.get(tid)).state == "queued"
        assert sum("above max_fee_cap_wei" in r.getMessage() for r in caplog.records) == 1
        s.max_fee_cap_wei = 100 * GWEI
        await s.step()
        assert not s.paused_fee_cap and (await s.get(tid)).state == "sent"
        ((_, _, _, _, max_fee, _, _),) = attempts(tmp_path / "o.sqlite", tid)
        assert max_fee <= 100 * GWEI


# ---------------------------------------------------------------------------- kill -9

_KILL_SCRIPT = r"""
import asyncio, sys
from edge.forward.txsender import TxSender
from edge.rpc.http import HttpRpc
from edge.crypto.keys import DeviceKey
from edge.store.db import Outbox

N = int(sys.argv[3])

async def main(db, url):
    key = DeviceKey.from_private_key(bytes.fromhex(sys.argv[4]))
    async with Outbox(db) as ob, TxSender(ob, HttpRpc(url), key, chain_id=int(sys.argv[5]),
                                          confirmations=0, max_fee_cap_wei=10**12) as s:
        orig = s._call

        async def slow_send(method, *params):
            # widen the windows a kill must hit: signed-and-stored but not yet sent, and
            # sent but not yet recorded as sent (each is otherwise a few microseconds)
            if method != "eth_sendRawTransaction":
                return await orig(method, *params)
            await asyncio.sleep(0.03)
            try:
                return await orig(method, *params)
            finally:
                await asyncio.sleep(0.03)

        s._call = slow_send
        print("ready", flush=True)
        while True:
            async with ob.transaction() as tx:
                n = (await tx.fetchone("SELECT COUNT(*) FROM txs"))[0]
                if n < N:
                    await s.enqueue(tx, to=bytes.fromhex("22" * 20), purpose="kill",
                                    data=b"intent" + n.to_bytes(4, "big"), ref=n.to_bytes(4, "big"))
            await s.step()
            if n >= N and await s.pending_count() == 0:
                break
            await asyncio.sleep(0.04)
    print("done", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _spawn(db: Path, url: str, n: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILL_SCRIPT, str(db), url, str(n), DEV_KEY, str(CID),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if line.strip() != b"ready":
        err = await proc.stderr.read() if proc.stderr else b""
        raise AssertionError(f"helper did not start: {line!r} {err.decode()[-2000:]}")
    return proc


@pytest.mark.slow
async def test_kill9_no_duplicate_no_gap(chain_factory: Any, tmp_path: Path) -> None:
    n = 30
    chain = await chain_factory("pub", CID)
    db = tmp_path / "o.sqlite"
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills = 0
    while kills < 12:
        proc = await _spawn(db, chain.http_url, n)
        await asyncio.sleep(rnd.uniform(0.0, 0.24))  # 12 * 0.24 s < 30 loops * (0.04 + 0.06) s
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        assert proc.returncode == -9, "the helper finished before being killed: too little work"
        kills += 1
    proc = await _spawn(db, chain.http_url, n)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    # on chain: every intent exactly once, nonces 0..n-1 used by them and nothing else
    addr = dev_key().address.lower()
    head = int(await chain.rpc("eth_blockNumber"), 16)
    seen: Counter[int] = Counter()
    for b in range(1, head + 1):
        blk = await chain.rpc("eth_getBlockByNumber", hex(b), True)
        for t in blk["transactions"]:
            assert t["from"].lower() == addr
            data = bytes.fromhex(t["input"][2:])
            assert data[:6] == b"intent"
            seen[int.from_bytes(data[6:], "big")] += 1
    assert sorted(seen) == list(range(n)) and set(seen.values()) == {1}, seen
    assert await chain_nonce(chain, addr) == n
    con = sqlite3.connect(db)
    rows = con.execute("SELECT nonce, state, ref FROM txs ORDER BY id").fetchall()
    con.close()
    assert len(rows) == n and {r[1] for r in rows} == {"confirmed"}
    assert sorted(r[0] for r in rows) == list(range(n))


# ----------------------------------------------------------------- nonce recovery


async def test_nonce_too_low_consumed_outside(chain_factory: Any, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    db = tmp_path / "o.sqlite"
    addr = dev_key().address
    async with Outbox(db) as ob, sender_for(ob, chain, confirmations=0) as s:
        (a,) = await enqueue(ob, s, data=b"A")
        await steps_until(s, all_in(s, [a], "confirmed"))
        # the same key sends a tx from outside (anvil's unlocked account): nonce 1 is gone
        await chain.rpc("eth_sendTransaction", {"from": addr, "to": "0x" + "33" * 20, "value": "0x1"})
        (b,) = await enqueue(ob, s, data=b"B")
        passes = await steps_until(s, all_in(s, [b], "confirmed"), limit=6)
        # refused at nonce 1, re-signed at 2, confirmed: a pass more when the receipt is not
        # visible yet on a loaded machine; no loop: exactly two attempts
        assert passes <= 4, "recovered without looping"
        rec = await s.get(b)
        assert rec.nonce == 2 and rec.attempts == 2 and rec.status == 1
        onchain = await chain.rpc("eth_getTransactionByHash", "0x" + rec.hash.hex())
        assert onchain["input"] == "0x" + b"B".hex()
    assert await chain_nonce(chain, addr) == 3
    msgs = [r.getMessage() for r in caplog.records if "used outside this sender" in r.getMessage()]
    assert len(msgs) == 1 and "counter reset to 2" in msgs[0]


async def test_nonce_too_low_after_own_broadcast_is_mined_not_resent(
        chain_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Crash after the broadcast, before 'sent' was recorded: on restart the stored bytes
    are re-broadcast, the node answers 'nonce too low', the receipt shows it was ours."""
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, chain) as s:
        (tid,) = await enqueue(ob, s, data=b"once")

        async def crash(*_: Any) -> None:
            raise RuntimeError("simulated crash after broadcast")

        s._mark_sent = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await s.step()
        assert (await s.get(tid)).state == "signed"
    assert await chain_nonce(chain, dev_key().address) == 1  # it did reach the chain
    async with Outbox(db) as ob, sender_for(ob, chain) as s2:
        await s2.step()
        rec = await s2.get(tid)
        assert rec.state == "mined" and rec.attempts == 1 and rec.nonce == 0
    assert await chain_nonce(chain, dev_key().address) == 1  # not sent twice
    assert not any("used outside" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------- low balance


async def test_low_balance_pauses_then_resumes(chain_factory: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    key = DeviceKey.from_private_key(keccak(b"a poor device"))
    await chain.rpc("anvil_setBalance", key.address, hex(10_000))  # far below 21000 * fee
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, key, confirmations=0) as s:
        ids = await enqueue(ob, s, 3, data=b"x", value=5)
        for _ in range(3):
            await s.step()
        assert s.paused_low_balance
        assert [(await s.get(i)).state for i in ids] == ["queued"] * 3
        assert [(await s.get(i)).nonce for i in ids] == [None] * 3
        warnings = [r for r in caplog.records if "below needed" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert "sending paused, nothing lost" in warnings[0].getMessage()
        await chain.rpc("anvil_setBalance", key.address, hex(10**18))
        await steps_until(s, all_in(s, ids, "confirmed"), limit=5)
        assert not s.paused_low_balance
        assert [(await s.get(i)).nonce for i in ids] == [0, 1, 2]
    assert await chain_nonce(chain, key.address) == 3


# ------------------------------------------------------------------------ node down


async def test_node_down_backlog_sent_in_order(chain_factory: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    await chain.kill()  # down before the sender starts: its chain id check waits too
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, confirmations=0) as s:
        ids = await enqueue(ob, s, 5, data=b"backlog")
        task = asyncio.create_task(s.run(poll_s=0.05, max_backoff_s=0.4))
        await asyncio.sleep(1.5)
        assert not task.done()
        assert [(await s.get(i)).state for i in ids] == ["queued"] * 5  # kept
        down = [r for r in caplog.records if "node unavailable" in r.getMessage()]
        assert len(down) == 1  # one warning per outage, not one per retry
        assert any("not reachable at start" in r.getMessage() for r in caplog.records)
        await chain.start()
        for i in ids:
            await s.wait(i, "confirmed", timeout=20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        recs = [await s.get(i) for i in ids]
        assert [r.nonce for r in recs] == list(range(5))  # in enqueue order
        order = []
        for r in recs:
            rc = await receipt(chain, r.hash)
            order.append((int(rc["blockNumber"], 16), int(rc["transactionIndex"], 16)))
        assert order == sorted(order)
    assert any("node back" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------- reverts, reorgs


def _reverting_code(reason: str) -> str:
    """Runtime code that always reverts with Solidity's Error(reason)."""
    payload = bytes.fromhex("08c379a0") + abi_encode(["string"], [reason])
    n = len(payload)
    assert n < 256
    prefix = bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xFD])  # codecopy; revert
    return "0x" + (prefix + payload).hex()


async def test_revert_fails_and_queue_moves_on(chain_factory: Any, tmp_path: Path) -> None:
    chain = await chain_factory("pub", CID)
    bad = bytes.fromhex("44" * 20)
    await chain.rpc("anvil_setCode", "0x" + bad.hex(), _reverting_code("already anchored"))
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, confirmations=0) as s:
        (f1,) = await enqueue(ob, s, to=bad, data=b"\xaa", purpose="anchor")
        good = await enqueue(ob, s, 2, data=b"ok")
        (f2,) = await enqueue(ob, s, to=bad, data=b"\xbb", gas=60_000)  # no estimate: reverts on chain
        (g3,) = await enqueue(ob, s, data=b"after")
        await steps_until(s, all_in(s, [f1, f2, g3, *good], "confirmed", "failed"), limit=8)
        r1 = await s.get(f1)
        assert r1.state == "failed" and r1.nonce is None and r1.attempts == 0
        assert r1.error is not None and "already anchored" in r1.error
        assert [(await s.get(i)).state for i in good] == ["confirmed"] * 2
        r2 = await s.get(f2)
        assert r2.state == "failed" and r2.status == 0 and r2.nonce == 2
        assert (await s.get(g3)).state == "confirmed" and (await s.get(g3)).nonce == 3
        assert (await s.wait(f1, "confirmed", timeout=1)).state == "failed"
    assert await chain_nonce(chain, dev_key().address) == 4


async def test_reorg_sends_back_and_reconfirms(chain_factory: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    chain = await chain_factory("pub", CID)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, confirmations=3) as s:
        snap = await chain.rpc("evm_snapshot")
        (tid,) = await enqueue(ob, s, data=b"reorg me")
        await s.step()
        await s.step()
        first = await s.get(tid)
        assert first.state == "mined" and first.mined_block == 1
        await chain.rpc("evm_revert", snap)  # the block holding it is gone
        await s.step()
        assert (await s.get(tid)).state == "sent"
        assert any("vanished" in r.getMessage() for r in caplog.records)
        await steps_until(s, all_in(s, [tid], "confirmed"), chain, limit=8)
        rec = await s.get(tid)
        assert rec.hash == first.hash and rec.attempts == 1 and rec.status == 1
        rc = await receipt(chain, rec.hash)
        assert int(rc["blockNumber"], 16) == rec.mined_block


# ------------------------------------------------------------------------- bad input


async def test_bad_input_and_wrong_chain(chain_factory: Any, tmp_path: Path) -> None:
    chain = await chain_factory("pub", CID)
    with pytest.raises(ValueError, match="bump_percent"):
        TxSender(None, HttpRpc(chain.http_url), dev_key(), chain_id=CID, max_fee_cap_wei=1,  # type: ignore[arg-type]
                 bump_percent=5)
    async with Outbox(tmp_path / "o.sqlite") as ob:
        async with TxSender(ob, HttpRpc(chain.http_url), dev_key(), chain_id=1, max_fee_cap_wei=GWEI) as wrong:
            with pytest.raises(ChainIdMismatch, match="reports chain id 7301, but the configured chain id .* is 1"):
                await wrong.step()  # an alarm and a wait (run() retries), never an exit
        async with sender_for(ob, chain) as s:
            for kw, what in (({"to": b"\x01" * 19}, "'to'"), ({"data": "0x00"}, "'data'"),
                             ({"purpose": ""}, "'purpose'"), ({"value": -1}, "'value'"),
                             ({"gas": 5}, "'gas'"), ({"ref": "x"}, "'ref'")):
                with pytest.raises((ValueError, TypeError), match=what):
                    async with ob.transaction() as tx:
                        await s.enqueue(tx, **{"to": SINK, "data": b"", "purpose": "p", **kw})
            assert await s.pending_count() == 0  # nothing half-written
            with pytest.raises(EdgeError, match="no tx 99"):
                await s.get(99)


async def test_gas_above_block_limit_fails_before_signing_and_queue_moves_on(chain_factory: Any,
                                                                             tmp_path: Path) -> None:
    """A tx no block can hold is refused before it takes a nonce (it would block every
    later tx forever), with an error that says why."""
    chain = await chain_factory("pub", CID)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, chain, confirmations=0) as s:
        (huge,) = await enqueue(ob, s, data=b"x", gas=31_000_000)  # anvil's block gas limit is 30M
        (ok,) = await enqueue(ob, s, data=b"after")
        await steps_until(s, all_in(s, [huge, ok], "confirmed", "failed"), limit=6)
        r = await s.get(huge)
        assert r.state == "failed" and r.nonce is None and r.attempts == 0
        assert r.error is not None and "exceeds the block gas limit 30000000" in r.error
        assert (await s.get(ok)).state == "confirmed" and (await s.get(ok)).nonce == 0
