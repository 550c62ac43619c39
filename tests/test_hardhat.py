"""The tx sender (edge.forward.txsender) against a second client: Hardhat's node (EDR),
whose words and codes for every refusal differ from anvil's (tests/data/node_errors.json).

One Hardhat node serves the module (it takes seconds to start); every test signs with
its own fresh key funded with ``hardhat_setBalance`` (the ``anvil_setBalance`` twin), so
the tests share no nonce. The scenarios are those of tests/test_txsender.py that Hardhat
can reproduce: send and confirm, a nonce consumed outside the sender, a replacement
refused as underpriced, the node refusing for funds (pause, then resume), a revert in
``eth_estimateGas``, a gas limit above the block's, and the node killed between signing
and broadcasting (a fresh node: the stored bytes are re-broadcast, not re-signed).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_account import Account
from eth_hash.auto import keccak

from edge.crypto.keys import DeviceKey
from edge.devnet.anvil import DevChains, TierSpec
from edge.devnet.hardhat import HardhatChain
from edge.errors import DevChainError, NodeUnavailable
from edge.store.db import Outbox
from tests.test_txsender import (
    CID,
    GWEI,
    LOG,
    SINK,
    _reverting_code,
    all_in,
    attempts,
    chain_nonce,
    enqueue,
    receipt,
    sender_for,
    steps_until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hardhat() -> AsyncIterator[HardhatChain]:
    chain = HardhatChain("pub-hardhat", CID, 0)
    async with chain:
        yield chain


@pytest_asyncio.fixture(loop_scope="module")
async def key(hardhat: HardhatChain, request: pytest.FixtureRequest) -> AsyncIterator[DeviceKey]:
    """A fresh key per test, funded with 1 ETH; automine back on after the test."""
    k = DeviceKey.from_private_key(keccak(request.node.name.encode()))
    await hardhat.rpc("anvil_setBalance", k.address, hex(10**18))
    yield k
    if hardhat.pid is not None:
        await hardhat.rpc("evm_setAutomine", True)


def _raw(key: DeviceKey, nonce: int, *, max_fee: int = 100 * GWEI, prio: int = GWEI, data: bytes = b"") -> str:
    from eth_utils.address import to_checksum_address

    signed = Account.sign_transaction(
        {"type": 2, "chainId": CID, "nonce": nonce, "to": to_checksum_address(SINK), "value": 0, "data": data,
         "gas": 50_000, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": prio, "accessList": []},
        key.private_key)
    return "0x" + bytes(signed.raw_transaction).hex()


async def test_launcher_contract(hardhat: HardhatChain) -> None:
    """What the tiers rely on: the client name, the anvil_* twins, an error for a cheat
    Hardhat lacks, a WebSocket on the same port, and no process left after stop."""
    assert hardhat.client == "hardhat" and hardhat.http_url.startswith("http://127.0.0.1:")
    assert int(await hardhat.rpc("eth_chainId"), 16) == CID
    with pytest.raises(DevChainError, match="no Hardhat equivalent of anvil_nosuchcheat"):
        await hardhat.rpc("anvil_nosuchcheat")
    from edge.rpc.ws import WsRpc

    async with WsRpc(hardhat.ws_url) as ws:
        assert int(await ws.call("eth_chainId", []), 16) == CID
    chains = DevChains([TierSpec("a", 7311, 0, client="hardhat"), TierSpec("b", 7312, 0)])
    assert chains.clients == {"a": "hardhat", "b": "anvil"}
    with pytest.raises(DevChainError, match="unknown client 'geth'"):
        DevChains([TierSpec("c", 7313, 0, client="geth")])
    other = HardhatChain("other", 7314, 0.5)
    await other.start()
    pid = other.pid
    assert pid is not None
    await other.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, signal.SIG_DFL)  # the whole process group is gone


async def test_send_and_confirm(hardhat: HardhatChain, key: DeviceKey, tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, hardhat, key, confirmations=2) as s:
        ids = await enqueue(ob, s, 3, data=b"\x01\x02", ref=b"cp-1")
        await s.step()  # sign + send: Hardhat automines each on arrival
        recs = [await s.get(i) for i in ids]
        assert [r.state for r in recs] == ["sent"] * 3 and [r.nonce for r in recs] == [0, 1, 2]
        for r in recs:
            ((_, _, h, raw, _, _, _),) = attempts(db, r.id)
            assert h == keccak(raw) == r.hash
            onchain = await hardhat.rpc("eth_getTransactionByHash", "0x" + r.hash.hex())
            assert onchain["input"] == "0x0102"
        await steps_until(s, all_in(s, ids, "confirmed"), hardhat, limit=6)
        assert [(await s.get(i)).status for i in ids] == [1, 1, 1]
    assert await chain_nonce(hardhat, key.address) == 3


async def test_nonce_consumed_outside_recovers(hardhat: HardhatChain, key: DeviceKey, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, hardhat, key, confirmations=0) as s:
        (a,) = await enqueue(ob, s, data=b"A")
        await steps_until(s, all_in(s, [a], "confirmed"))
        await hardhat.rpc("eth_sendRawTransaction", _raw(key, 1, data=b"outside"))  # the same key, elsewhere
        (b,) = await enqueue(ob, s, data=b"B")
        passes = await steps_until(s, all_in(s, [b], "confirmed"), limit=5)
        assert passes <= 3
        rec = await s.get(b)
        assert rec.nonce == 2 and rec.attempts == 2 and rec.status == 1
    assert await chain_nonce(hardhat, key.address) == 3
    msgs = [r.getMessage() for r in caplog.records if "used outside this sender" in r.getMessage()]
    assert len(msgs) == 1 and "counter reset to 2" in msgs[0]


async def test_replacement_underpriced_then_nonce_taken(hardhat: HardhatChain, key: DeviceKey, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """After the sender has taken nonce 0, a tx of the same key takes nonce 1 elsewhere at
    a far higher fee and waits in Hardhat's pool: our next tx (nonce 1) is refused as an
    underpriced replacement (EDR's words), kept as sent and bumped next pass; once the
    other is mined, 'nonce too low' re-queues ours for nonce 2."""
    caplog.set_level(logging.INFO, logger=LOG)
    await hardhat.rpc("evm_setAutomine", False)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, hardhat, key, confirmations=0) as s:
        (a,) = await enqueue(ob, s, data=b"first")
        await s.step()
        assert (await s.get(a)).state == "sent" and (await s.get(a)).nonce == 0
        await hardhat.rpc("eth_sendRawTransaction", _raw(key, 1, max_fee=900 * GWEI, prio=500 * GWEI, data=b"rich"))
        (b,) = await enqueue(ob, s, data=b"ours")
        await s.step()
        assert (await s.get(b)).state == "sent" and (await s.get(b)).nonce == 1
        refused = [r.getMessage() for r in caplog.records if "bumping again next pass" in r.getMessage()]
        assert refused and "Replacement transaction underpriced" in refused[0]
        await steps_until(s, all_in(s, [a, b], "confirmed"), hardhat, limit=8)
        rec = await s.get(b)
        assert rec.nonce == 2 and rec.status == 1 and rec.hash is not None
        onchain = await hardhat.rpc("eth_getTransactionByHash", "0x" + rec.hash.hex())
        assert onchain["input"] == "0x" + b"ours".hex()
    assert await chain_nonce(hardhat, key.address) == 3
    assert any("used outside this sender" in r.getMessage() for r in caplog.records)


async def test_node_refuses_for_funds_pauses_then_resumes(hardhat: HardhatChain, key: DeviceKey, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The balance sufficed when the tx was signed, but is gone when it is broadcast:
    EDR's "Sender doesn't have enough funds" pauses sending (one warning), nothing lost."""
    caplog.set_level(logging.INFO, logger=LOG)
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, hardhat, key, confirmations=0) as s:
        (tid,) = await enqueue(ob, s, data=b"x")
        orig = s._call

        async def drain_then_send(method: str, *params: Any) -> Any:
            if method == "eth_sendRawTransaction":
                await hardhat.rpc("anvil_setBalance", key.address, "0x0")
            return await orig(method, *params)

        s._call = drain_then_send  # type: ignore[method-assign]
        await s.step()
        assert s.paused_low_balance and (await s.get(tid)).state == "signed"
        s._call = orig  # type: ignore[method-assign]
        await s.step()
        assert s.paused_low_balance and (await s.get(tid)).state == "signed"
        warnings = [r for r in caplog.records if "below needed" in r.getMessage()]
        assert len(warnings) == 1
        await hardhat.rpc("anvil_setBalance", key.address, hex(10**18))
        await steps_until(s, all_in(s, [tid], "confirmed"), limit=4)
        assert not s.paused_low_balance and (await s.get(tid)).attempts == 1


async def test_revert_in_estimate_and_gas_above_block_limit(hardhat: HardhatChain, key: DeviceKey,
                                                            tmp_path: Path) -> None:
    bad = bytes.fromhex("45" * 20)
    await hardhat.rpc("anvil_setCode", "0x" + bad.hex(), _reverting_code("already anchored"))
    async with Outbox(tmp_path / "o.sqlite") as ob, sender_for(ob, hardhat, key, confirmations=0) as s:
        (f1,) = await enqueue(ob, s, to=bad, data=b"\xaa", purpose="anchor")
        (huge,) = await enqueue(ob, s, data=b"x", gas=31_000_000)  # Hardhat's block gas limit is 30M
        (ok,) = await enqueue(ob, s, data=b"after")
        await steps_until(s, all_in(s, [f1, huge, ok], "confirmed", "failed"), limit=6)
        r1 = await s.get(f1)
        assert r1.state == "failed" and r1.nonce is None and r1.attempts == 0
        assert r1.error is not None and "already anchored" in r1.error
        r2 = await s.get(huge)
        assert r2.state == "failed" and r2.nonce is None
        assert r2.error is not None and "exceeds the block gas limit 30000000" in r2.error
        r3 = await s.get(ok)
        assert r3.state == "confirmed" and r3.nonce == 0


async def test_killed_node_then_stored_bytes_rebroadcast(hardhat: HardhatChain, key: DeviceKey,
                                                         tmp_path: Path) -> None:
    """Hardhat is SIGKILLed between signing and broadcasting; a fresh node comes back on
    the same port; a new sender broadcasts the stored bytes (same hash, one attempt)."""
    db = tmp_path / "o.sqlite"
    async with Outbox(db) as ob, sender_for(ob, hardhat, key) as s:
        (tid,) = await enqueue(ob, s, data=b"payload")
        orig = s._call

        async def kill_then_send(method: str, *params: Any) -> Any:
            if method == "eth_sendRawTransaction":
                await hardhat.kill()
            return await orig(method, *params)

        s._call = kill_then_send  # type: ignore[method-assign]
        with pytest.raises(NodeUnavailable):
            await s.step()
        rec = await s.get(tid)
        assert rec.state == "signed" and rec.nonce == 0
        ((_, _, h, raw, _, _, sent_block),) = attempts(db, tid)
        assert h == keccak(raw) and sent_block is None
    await hardhat.start()  # a fresh chain: fund the key again
    await hardhat.rpc("anvil_setBalance", key.address, hex(10**18))
    async with Outbox(db) as ob, sender_for(ob, hardhat, key) as s2:
        await steps_until(s2, all_in(s2, [tid], "confirmed"), hardhat, limit=8)
        rec = await s2.get(tid)
        assert rec.hash == h and rec.attempts == 1
        rc = await receipt(hardhat, h)
        assert rc is not None and int(rc["status"], 16) == 1
