"""Capture the real JSON-RPC refusals of the clients that run here into
``tests/data/node_errors.json`` (the ``captured`` list; the ``documented`` list of the
file is kept as it is).

Run: ``.venv/bin/python -m tests.capture_node_errors`` (root, for EthereumJS's network
namespace; without it only anvil and Hardhat are captured and the old EthereumJS rows are
kept). Every client runs on 127.0.0.1 only (EthereumJS inside a namespace with only
``lo``, with the loopback-only flags of :mod:`edge.devnet.ethereumjs`).

Each scenario provokes one refusal with raw signed EIP-1559 transactions (eth-account)
or one ``eth_estimateGas`` and stores the node's error object verbatim (code, message,
data) with the kind :func:`edge.forward.node_errors.classify` must give it.
"""

# EthereumJS runs only through edge.devnet.ethereumjs: --discDns false --discV4 false
# --dnsAddr 127.0.0.1 --extIP 127.0.0.1, every port on 127.0.0.1, inside a network namespace.

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_keys.datatypes import PrivateKey

from edge.devnet.anvil import DevChain, anvil_path
from edge.devnet.ethereumjs import EthereumJSNet
from edge.devnet.hardhat import HardhatChain, hardhat_version
from edge.devnet.netns import NetNamespace, netns_available

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "node_errors.json"
DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
POOR_KEY = keccak(b"node errors: a key with no funds")
USED_KEY = keccak(b"node errors: a key whose nonce is 1")  # EthereumJS: nonce set in the genesis
REVERTER = "0x" + "44" * 20
SINK = "0x" + "11" * 20
GWEI = 10**9

Post = Callable[[str, list[Any]], dict[str, Any]]


def reverting_code(reason: str) -> str:
    """Runtime code that always reverts with Solidity's ``Error(reason)``."""
    payload = bytes.fromhex("08c379a0") + abi_encode(["string"], [reason])
    n = len(payload)
    prefix = bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xFD])  # codecopy; revert
    return "0x" + (prefix + payload).hex()


def poster(port: int, ns: NetNamespace | None = None) -> Post:
    """A blocking JSON-RPC poster to 127.0.0.1:port (inside ``ns`` when given) that
    returns the whole answer object (so an error keeps its code and data)."""
    def post(method: str, params: list[Any]) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        if ns is not None:
            conn.sock = ns.connect(port)
        try:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            answer = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert isinstance(answer, dict)
        return answer
    return post


def result(post: Post, method: str, *params: Any) -> Any:
    a = post(method, list(params))
    if "error" in a:
        raise RuntimeError(f"{method}: {a['error']}")
    return a["result"]


def sign(key: bytes, chain_id: int, nonce: int, *, gas: int = 30_000, max_fee: int = 100 * GWEI,
         prio: int = GWEI, data: bytes = b"", value: int = 0, to: str = SINK) -> str:
    signed = Account.sign_transaction(
        {"type": 2, "chainId": chain_id, "nonce": nonce, "to": _checksum(to), "value": value, "data": data, "gas": gas,
         "maxFeePerGas": max_fee, "maxPriorityFeePerGas": prio, "accessList": []}, key)
    return "0x" + bytes(signed.raw_transaction).hex()


def _checksum(a: str) -> str:
    from eth_utils.address import to_checksum_address

    return to_checksum_address(a)


def capture(client: str, version: str, post: Post, chain_id: int, *, mine: Callable[[], None] | None,
            key: bytes, used_key: bytes | None = None, before_fee: Callable[[], int] | None = None,
            kinds: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run every scenario against one node; returns the rows. A scenario the client
    accepts is stored with ``"accepted": true`` and no kind (it cannot produce that
    refusal). ``before_fee`` readies the fee-below-base-fee scenario and returns its
    nonce; ``kinds`` overrides the expected kind of a scenario for this client (an answer
    that is not the refusal the scenario aims at, e.g. EthereumJS's estimateGas failure)."""
    rows: list[dict[str, Any]] = []

    def record(scenario: str, kind: str, method: str, params: list[Any]) -> None:
        a = post(method, params)
        if "error" not in a:
            print(f"  {client}: {scenario}: no error (answer {str(a.get('result'))[:80]})", file=sys.stderr)
            rows.append({"client": client, "version": version, "scenario": scenario, "kind": None,
                         "method": method, "accepted": True})
            return
        err = a["error"]
        kind = (kinds or {}).get(scenario, kind)
        row = {"client": client, "version": version, "scenario": scenario, "kind": kind, "method": method,
               "code": err.get("code"), "message": err.get("message")}
        if err.get("data") is not None:
            row["data"] = err["data"]
        print(f"  {client}: {scenario}: {row['code']} {row['message']!r}", file=sys.stderr)
        rows.append(row)

    addr = Account.from_key(key).address
    base = int(result(post, "eth_getTransactionCount", addr, "pending"), 16)
    if mine is not None:
        result(post, "eth_sendRawTransaction", sign(key, chain_id, base, data=b"first"))
        mine()
        record("nonce too low", "nonce", "eth_sendRawTransaction", [sign(key, chain_id, base, data=b"again")])
        base += 1
    elif used_key is not None:
        record("nonce too low", "nonce", "eth_sendRawTransaction", [sign(used_key, chain_id, 0)])
    pending = sign(key, chain_id, base, data=b"pending")
    result(post, "eth_sendRawTransaction", pending)
    record("already known", "known", "eth_sendRawTransaction", [pending])
    record("replacement underpriced", "underpriced", "eth_sendRawTransaction",
           [sign(key, chain_id, base, data=b"replacement")])
    record("insufficient funds", "funds", "eth_sendRawTransaction", [sign(POOR_KEY, chain_id, 0, value=1)])
    record("exceeds block gas limit", "never_fits", "eth_sendRawTransaction",
           [sign(key, chain_id, base + 1, gas=31_000_000)])
    record("intrinsic gas too low", "never_fits", "eth_sendRawTransaction", [sign(key, chain_id, base + 2, gas=20_000)])
    record("revert in eth_estimateGas", "revert", "eth_estimateGas",
           [{"from": addr, "to": REVERTER, "data": "0xaa"}])
    record("revert in eth_call", "revert", "eth_call", [{"from": addr, "to": REVERTER, "data": "0xaa"}, "latest"])
    nonce = before_fee() if before_fee is not None else base + 3
    record("fee below base fee", "underpriced", "eth_sendRawTransaction",
           [sign(key, chain_id, nonce, max_fee=1, prio=1)])
    return rows


def anvil_version() -> str:
    out = subprocess.run([anvil_path(), "--version"], capture_output=True, text=True).stdout
    return out.split()[1] if out.split()[1:] else out.strip()


async def capture_anvil_and_hardhat() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cls, client, version in ((DevChain, "anvil", anvil_version()), (HardhatChain, "hardhat-edr", hardhat_version())):
        async with cls("errors", 7301, 0, extra_args=("--no-mining",)) as chain:
            await chain.rpc("anvil_setCode", REVERTER, reverting_code("already anchored"))
            post = poster(chain.port)

            def mine() -> None:
                result(post, "evm_mine")

            def automine() -> int:
                # Hardhat queues an underpriced tx while not automining; it refuses one
                # only when it must mine it at once
                mine()
                result(post, "evm_setAutomine", True)
                return int(result(post, "eth_getTransactionCount", Account.from_key(DEV_KEY).address, "pending"), 16)

            rows += await asyncio.to_thread(capture, client, version, post, chain.chain_id, mine=mine, key=DEV_KEY,
                                            before_fee=automine if client.startswith("hardhat") else None)
    return rows


class _ErrorsNet(EthereumJSNet):
    """One EthereumJS sealer with a reverting contract and a used nonce in its genesis."""

    def _write_files(self) -> None:
        super()._write_files()
        g = json.loads(self.genesis_path.read_text())
        g["alloc"][REVERTER[2:]] = {"balance": "0x0", "code": reverting_code("already anchored")}
        g["alloc"][Account.from_key(USED_KEY).address.lower()[2:]] = {"balance": hex(10**21), "nonce": "0x1"}
        self.genesis_path.write_text(json.dumps(g, indent=1))


async def capture_ethereumjs() -> list[dict[str, Any]]:
    why = netns_available()
    if why:
        print(f"EthereumJS skipped: {why}", file=sys.stderr)
        return []
    version = json.loads((REPO / "node_modules/@ethereumjs/client/package.json").read_text())["version"]
    key = PrivateKey(keccak(b"node errors: the EthereumJS sealer"))
    with tempfile.TemporaryDirectory(prefix="edge-ejs-errors-") as tmp:
        async with _ErrorsNet(Path(tmp), [key], chain_id=7202, period=1, netns="edge-ejs-errors") as net:
            post = poster(net.nodes[0].rpc_port, net.ns)
            return await asyncio.to_thread(capture, "ethereumjs", version, post, 7202, mine=None,
                                           key=key.to_bytes(), used_key=USED_KEY,
                                           kinds={"revert in eth_estimateGas": "other", "revert in eth_call": "other"})


async def main() -> None:
    old = json.loads(OUT.read_text()) if OUT.exists() else {"documented": []}
    rows = await capture_anvil_and_hardhat()
    ejs = await capture_ethereumjs()
    if not ejs:
        ejs = [r for r in old.get("captured", []) if r["client"] == "ethereumjs"]
    old["captured"] = rows + ejs
    OUT.write_text(json.dumps(old, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(old['captured'])} captured answers to {OUT.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
