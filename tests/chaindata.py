"""Real chain data for the verifier's tests: one anvil, every transaction type, deployments
(top-level and from a contract) and logs; the raw JSON-RPC answers of every block."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address

from edge.devnet.activity import Activity
from edge.devnet.anvil import DevChain, rpc_call
from tests.conftest import corpus_codes

# anvil's well-known dev keys (mnemonic "test test ... junk"), accounts 1 and 3
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY3 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
KEY4 = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
CHAIN_ID = 7201


@dataclass
class BlockData:
    """The raw answers for one block: header with full transactions, receipts, and for
    each contract address deployed in it: (eth_getProof, eth_getCode, parent eth_getProof)."""

    header: dict[str, Any]
    receipts: list[dict[str, Any]]
    codes: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = field(default_factory=dict)


async def _typed_txs(chain: DevChain, act: Activity) -> None:
    """Send one transaction of each type 0..4, and an unprotected legacy one (mined by the caller)."""
    a2 = (await chain.rpc("eth_accounts"))[2]
    crud = to_checksum_address(act.crud)
    n2 = int(await chain.rpc("eth_getTransactionCount", a2, "pending"), 16)
    await chain.rpc("eth_sendTransaction", {"from": a2, "to": crud, "type": "0x0", "nonce": hex(n2),
                                            "gasPrice": hex(10**10), "gas": hex(100_000)})
    await chain.rpc("eth_sendTransaction", {"from": a2, "to": crud, "type": "0x1", "nonce": hex(n2 + 1),
                                            "gasPrice": hex(10**10), "gas": hex(100_000),
                                            "accessList": [{"address": crud, "storageKeys": ["0x" + "00" * 31 + "01"]}]})
    acct, k3 = Account.from_key(KEY1), Account.from_key(KEY3)
    n1 = int(await chain.rpc("eth_getTransactionCount", acct.address, "pending"), 16)
    n3 = int(await chain.rpc("eth_getTransactionCount", k3.address, "pending"), 16)
    fees = {"chainId": CHAIN_ID, "value": 0, "data": b"", "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
            "accessList": []}
    auth = k3.sign_authorization({"chainId": CHAIN_ID, "address": crud, "nonce": n3})
    tx4 = acct.sign_transaction({**fees, "type": 4, "nonce": n1, "to": acct.address, "gas": 200_000,
                                 "authorizationList": [auth]})
    await chain.rpc("eth_sendRawTransaction", "0x" + tx4.raw_transaction.hex())
    tx3 = acct.sign_transaction({**fees, "type": 3, "nonce": n1 + 1, "to": crud, "gas": 100_000,
                                 "maxFeePerBlobGas": 10**10}, blobs=[b"\x00" * 131072])
    k4 = Account.from_key(KEY4)  # a pre-EIP-155 legacy transaction (v = 27/28, no chain id)
    n4 = int(await chain.rpc("eth_getTransactionCount", k4.address, "pending"), 16)
    tx0 = k4.sign_transaction({"nonce": n4, "gasPrice": 10**10, "gas": 50_000, "to": crud, "value": 0, "data": b""})
    await chain.rpc("eth_sendRawTransaction", "0x" + tx0.raw_transaction.hex())
    # anvil checks the blob's KZG cell proofs: slow on a loaded machine, hence the timeout
    await rpc_call(chain.http_url, "eth_sendRawTransaction", ["0x" + tx3.raw_transaction.hex()], timeout=120.0)


async def build_chain() -> list[BlockData]:
    """Start anvil, make the activity, read every block's answers, stop anvil."""
    async with DevChain("verify", CHAIN_ID, 0, extra_args=("--no-mining",)) as chain:
        act = Activity(chain)
        await act.setup(mine=True)
        codes = corpus_codes(12)
        await act.deploy(codes[:6])
        await act.spawn(codes[6:])
        await act.crud_writes(12)
        await _typed_txs(chain, act)
        for _ in range(3):
            await chain.rpc("evm_mine")
        await act.settle()
        head = int(await chain.rpc("eth_blockNumber"), 16)
        out: list[BlockData] = []
        for n in range(head + 1):
            header, receipts = await chain.batch([("eth_getBlockByNumber", [hex(n), True]),
                                                  ("eth_getBlockReceipts", [hex(n)])])
            out.append(BlockData(header, receipts))
        for d in act.deployed.values():
            a, n = "0x" + d.address.hex(), d.block_number
            proof, code, before = await chain.batch([("eth_getProof", [a, [], hex(n)]), ("eth_getCode", [a, hex(n)]),
                                                     ("eth_getProof", [a, [], hex(n - 1)])])
            out[n].codes[a] = (proof, code, before)
        return out


def chain_data() -> list[BlockData]:
    """Synchronous wrapper (for a module-scoped fixture)."""
    return asyncio.run(build_chain())
