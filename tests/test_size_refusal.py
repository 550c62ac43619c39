"""A refusal for size at broadcast (the node can never include the signed bytes): the tx
sender fails the tx (its owner re-plans) and frees its nonce: released when nothing of
ours follows it, else filled by a 0-value self-transfer so the later txs keep their
signed bytes (no duplicate payload, no gap). Real anvil; the block gas limit is lowered
under signed txs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.devnet.anvil import DevChain
from edge.forward.txsender import TxSender
from edge.forward.uploads import is_size_refusal
from edge.crypto.keys import DeviceKey
from edge.store.db import Outbox
from edge.rpc.http import HttpRpc

DEV_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil account 0
SINK = bytes.fromhex("11" * 20)


@pytest.mark.parametrize("later", [True, False], ids=["filled", "released"])
async def test_size_refusal_at_broadcast_fails_the_tx_and_frees_its_nonce(tmp_path: Path, later: bool) -> None:
    key = DeviceKey.from_private_key(bytes.fromhex(DEV_KEY))
    async with DevChain("pub", 7301, 0) as chain, Outbox(tmp_path / "o.sqlite") as ob, TxSender(
            ob, HttpRpc(chain.http_url), key, chain_id=7301, confirmations=0, stuck_blocks=1,
            max_fee_cap_wei=1000 * 10**9) as s:
        txs = [(b"big", 20_000_000)] + ([(b"after", 60_000)] if later else [])
        ids = []
        for data, gas in txs:
            async with ob.transaction() as tx:
                ids.append(await s.enqueue(tx, to=SINK, data=data, purpose="test", gas=gas))
        orig = s._call

        async def swallow(method: str, *params: Any) -> Any:
            if method == "eth_sendRawTransaction":  # the node "accepts", then loses its pool
                return None
            return await orig(method, *params)

        s._call = swallow  # type: ignore[method-assign]
        await s.step()
        assert [(await s.get(i)).nonce for i in ids] == list(range(len(ids)))
        s._call = orig  # type: ignore[method-assign]
        await chain.rpc("evm_setBlockGasLimit", hex(10_000_000))  # now no block can hold "big"
        if not later:  # something new after the refusal takes the released nonce
            for _ in range(4):
                await chain.rpc("evm_mine")
                await s.step()
            async with ob.transaction() as tx:
                ids.append(await s.enqueue(tx, to=SINK, data=b"next", purpose="test", gas=60_000))
        for _ in range(10):
            await chain.rpc("evm_mine")
            await s.step()
            if await s.pending_count() == 0:
                break
        big = await s.get(ids[0])
        assert big.state == "failed" and big.nonce is None and is_size_refusal(big.error), big
        rest = await s.get(ids[1])
        assert rest.state == "confirmed" and rest.status == 1
        rows = await ob.fetchall("SELECT purpose, state, nonce FROM txs WHERE purpose='nonce-filler'")
        if later:
            # it keeps its nonce and payload (a fee bump re-signs the same ones only)
            onchain = await chain.rpc("eth_getTransactionByHash", "0x" + rest.hash.hex())
            assert rest.nonce == 1 and int(onchain["nonce"], 16) == 1 and onchain["input"] == "0x" + b"after".hex()
            assert rows == [("nonce-filler", "confirmed", 0)]
        else:
            assert rest.nonce == 0 and rows == []  # the released nonce was reused
        assert int(await chain.rpc("eth_getTransactionCount", key.address, "latest"), 16) == (2 if later else 1)
        assert await s.pending_count() == 0
