"""Real user activity on a dev chain: contract deployments and CRUD writes.

Used by ``edge demo`` and the tests to give the agent something real to ingest. It
sends ``eth_sendTransaction`` from anvil's unlocked dev accounts over HTTP and keeps the
ground truth of what it caused (every contract address with its code hash, every log),
so a test can check that the agent found each item exactly once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from edge.contracts.artifacts import deployer_init_code, load_artifact
from edge.devnet.anvil import DevChain
from edge.errors import DevChainError

__all__ = ["Activity", "Deployed"]


def _selector(sig: str) -> bytes:
    return keccak(sig.encode())[:4]


_CREATE = _selector("create(bytes32,bytes)")
_UPDATE = _selector("update(bytes32,bytes)")
_REMOVE = _selector("remove(bytes32)")
_SPAWN_MANY = _selector("spawnMany(bytes[])")
_SPAWNED_TOPIC = keccak(b"Spawned(address)")


@dataclass(frozen=True, slots=True)
class Deployed:
    """Ground truth of one deployment: 20-byte address, keccak256 of the runtime."""

    address: bytes
    code_hash: bytes
    block_number: int


@dataclass
class Activity:
    """Drives deployments and CRUD writes on one :class:`DevChain`.

    Attributes (ground truth, filled as receipts arrive):
        deployed: address -> :class:`Deployed`, top-level and spawned contracts.
        logs: number of logs emitted by successful transactions.
        log_keys: ``(block_number, log_index)`` of each of those logs.
        failed: transactions that reverted.
    """

    chain: DevChain
    sender: str = ""
    crud: str = ""
    spawner: str = ""
    deployed: dict[bytes, Deployed] = field(default_factory=dict)
    logs: int = 0
    log_keys: set[tuple[int, int]] = field(default_factory=set)
    failed: int = 0
    _nonce: int | None = None
    _keys: list[bytes] = field(default_factory=list)
    _pending: list[tuple[str, bytes | None]] = field(default_factory=list)

    async def use_account(self, index: int) -> None:
        """Send from anvil's unlocked account ``index`` from now on (nonce re-read)."""
        accounts = await self.chain.rpc("eth_accounts")
        if not accounts or index >= len(accounts):
            raise DevChainError(f"{self.chain.name}: node has no unlocked account {index}")
        self.sender = accounts[index]
        self._nonce = None

    async def setup(self, *, mine: bool = False) -> None:
        """Pick the sender account and deploy CrudStore and Spawner (waits for both).

        ``mine``: the chain runs with ``--no-mining``; mine blocks until both are in."""
        if mine:
            task = asyncio.create_task(self.setup())
            while not task.done():
                await self.chain.rpc("evm_mine")
                await asyncio.sleep(0.05)
            await task
            return
        await self.use_account(0)
        crud = load_artifact("CrudStore").bytecode
        spawner = load_artifact("Spawner").bytecode
        hashes = await self._send([{"data": "0x" + crud.hex(), "gas": hex(3_000_000)},
                                   {"data": "0x" + spawner.hex(), "gas": hex(3_000_000)}])
        receipts = await self.wait(hashes)
        self.crud, self.spawner = receipts[0]["contractAddress"], receipts[1]["contractAddress"]

    async def deploy(self, codes: Sequence[bytes]) -> None:
        """Deploy each runtime with the minimal init code (one transaction each)."""
        txs = [{"data": "0x" + deployer_init_code(c).hex(), "gas": hex(_deploy_gas(c))} for c in codes]
        for h, c in zip(await self._send(txs), codes):
            self._pending.append((h, keccak(c)))

    async def spawn(self, codes: Sequence[bytes]) -> None:
        """Deploy the runtimes from a contract (Spawner.spawnMany: internal CREATEs)."""
        if not codes:
            return
        data = _SPAWN_MANY + abi_encode(["bytes[]"], [[deployer_init_code(c) for c in codes]])
        gas = 100_000 + sum(_deploy_gas(c) for c in codes)
        (h,) = await self._send([{"to": self.spawner, "data": "0x" + data.hex(), "gas": hex(gas)}])
        self._pending.append((h, None))

    async def crud_writes(self, n: int) -> None:
        """``n`` CRUD writes (about 60% create, 25% update, 15% remove), one event each."""
        txs = []
        for _ in range(n):
            r = int.from_bytes(os.urandom(1), "big") % 100
            value = os.urandom(int.from_bytes(os.urandom(1), "big") % 160)
            if r < 60 or len(self._keys) < 4:
                key = os.urandom(32)
                self._keys.append(key)
                data = _CREATE + abi_encode(["bytes32", "bytes"], [key, value])
            elif r < 85:
                data = _UPDATE + abi_encode(["bytes32", "bytes"], [self._keys[r % len(self._keys)], value])
            else:
                data = _REMOVE + abi_encode(["bytes32"], [self._keys.pop(r % len(self._keys))])
            txs.append({"to": self.crud, "data": "0x" + data.hex(), "gas": hex(400_000)})
        for h in await self._send(txs):
            self._pending.append((h, None))

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait for every sent transaction's receipt and update the ground truth."""
        pending, self._pending = self._pending, []
        receipts = await self.wait([h for h, _ in pending], timeout)
        codes_wanted: list[tuple[bytes, int]] = []
        for (h, _), rc in zip(pending, receipts):
            if int(rc["status"], 16) != 1:
                self.failed += 1
                continue
            self.logs += len(rc["logs"])
            block = int(rc["blockNumber"], 16)
            self.log_keys.update((block, int(lg["logIndex"], 16)) for lg in rc["logs"])
            if rc.get("contractAddress"):
                codes_wanted.append((bytes.fromhex(rc["contractAddress"][2:]), block))
            for lg in rc["logs"]:
                if lg["topics"] and bytes.fromhex(lg["topics"][0][2:]) == _SPAWNED_TOPIC:
                    codes_wanted.append((bytes.fromhex(lg["topics"][1][-40:]), block))
        codes = await self.chain.batch([("eth_getCode", ["0x" + a.hex(), hex(b)]) for a, b in codes_wanted])
        for (a, b), code in zip(codes_wanted, codes):
            self.deployed[a] = Deployed(a, keccak(bytes.fromhex(code[2:])), b)

    async def wait(self, hashes: Sequence[str], timeout: float = 60.0) -> list[dict[str, Any]]:
        """Receipts of ``hashes`` (polls until all are mined). Raises DevChainError on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: dict[str, dict[str, Any]] = {}
        while True:
            todo = [h for h in hashes if h not in out]
            if not todo:
                return [out[h] for h in hashes]
            for h, rc in zip(todo, await self.chain.batch([("eth_getTransactionReceipt", [h]) for h in todo])):
                if rc is not None:
                    out[h] = rc
            if loop.time() > deadline:
                raise DevChainError(f"{len(hashes) - len(out)} transactions not mined in {timeout:.0f} s")
            if len(out) < len(hashes):
                await asyncio.sleep(0.2)

    async def _send(self, txs: Sequence[dict[str, Any]]) -> list[str]:
        if self._nonce is None:
            self._nonce = int(await self.chain.rpc("eth_getTransactionCount", self.sender, "pending"), 16)
        first, self._nonce = self._nonce, self._nonce + len(txs)
        hashes = await self.chain.batch(
            [("eth_sendTransaction", [{"from": self.sender, "nonce": hex(first + i), **t}]) for i, t in enumerate(txs)]
        )
        return [str(h) for h in hashes]


def _deploy_gas(code: bytes) -> int:
    # 32k create + 200/byte code deposit + calldata (<=16/byte) + init-code words + margin
    return 80_000 + 240 * len(code)
