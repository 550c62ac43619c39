"""Gas of the mainnet Anchor: per anchor and per checkpoint at K = 1, 8, 32 (a benchmark).

Deploys ``contracts/Anchor.sol`` on a fresh anvil (automine, opcode tracing on), registers
N device keys with quorum M, then anchors: K = 1 is one checkpoint anchored as itself;
K > 1 is one batch anchor (:func:`edge.contracts.anchor.batch_checkpoint`: the root is the
Merkle root over the K member ids). Each anchor carries exactly M signatures (the
cheapest valid call) and is sent ``--repeat`` times with fresh checkpoints. Finally a
duplicate of an anchored id (another quorum, another locator) is sent with a fixed gas
limit: it reverts ``AlreadyAnchored`` and its gas is reported too.

Per transaction the table splits ``gasUsed`` into the intrinsic part (21,000 + calldata,
EIP-2028) and the execution part (``trace_transaction``); where the EIP-7623 calldata
floor (Prague) is above their sum, the floor is what is charged. Also reported: the gas
an auditor's ``verifyMember`` call would cost (``eth_estimateGas``) for the largest K.

Usage::

    .venv/bin/python benchmarks/anchor_gas.py [--devices 5] [--quorum 3]
        [--k 1 8 32] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eth_hash.auto import keccak  # noqa: E402

from edge.contracts.anchor import (  # noqa: E402
    anchor_init_code,
    anchored_root_call,
    batch_checkpoint,
    decode_anchor_error,
    decode_bytes32,
    encode_anchor_call,
    encode_set_devices,
    verify_member_call,
)
from edge.devnet.anvil import DevChain  # noqa: E402
from edge.errors import DevChainError, EdgeError  # noqa: E402
from edge.evidence.eip712 import CheckpointMessage, Eip712Domain, sign_checkpoint  # noqa: E402
from edge.evidence.merkle import MerkleTree  # noqa: E402

PRIVATE_CHAIN = 7201
BLOCKS_PER_CHECKPOINT = 100


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _calldata_gas(data: bytes) -> tuple[int, int]:
    """(standard intrinsic gas, EIP-7623 floor) of a call with ``data``."""
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return 21_000 + 4 * tokens, 21_000 + 10 * tokens


class _Bench:
    def __init__(self, chain: DevChain, devices: int, quorum: int) -> None:
        self.chain = chain
        self.keys = [keccak(f"bench device {i}".encode()) for i in range(devices)]
        self.quorum = quorum
        self.next_block = 0
        self.sender = ""
        self.anchor = ""
        self.domain: Eip712Domain | None = None
        self.devices: list[str] = []

    async def send(self, data: bytes, to: str | None, gas: int | None = None) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.sender, "data": _hex(data)}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        tx_hash = await self.chain.rpc("eth_sendTransaction", tx)
        for _ in range(200):  # automine: the receipt follows within milliseconds
            receipt: dict[str, Any] | None = await self.chain.rpc(
                "eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            await asyncio.sleep(0.01)
        raise SystemExit(f"no receipt for {tx_hash}")

    async def setup(self) -> None:
        from eth_account import Account

        self.sender = (await self.chain.rpc("eth_accounts"))[0]
        rc = await self.send(anchor_init_code(), None)
        if rc["status"] != "0x1":
            raise SystemExit("Anchor deployment failed")
        self.anchor = rc["contractAddress"]
        self.domain = Eip712Domain(self.chain.chain_id, self.anchor)
        devices = [str(Account.from_key(k).address) for k in self.keys]
        self.devices = devices
        rc = await self.send(encode_set_devices(devices, self.quorum), self.anchor)
        if rc["status"] != "0x1":
            raise SystemExit("setDevices failed")

    def checkpoints(self, k: int) -> list[CheckpointMessage]:
        out = []
        for _ in range(k):
            frm = self.next_block
            to = frm + BLOCKS_PER_CHECKPOINT - 1
            out.append(CheckpointMessage.create(
                PRIVATE_CHAIN, frm, to, keccak(f"block {to}".encode()),
                keccak(f"records of {frm}..{to}".encode())))
            self.next_block = to + 1
        return out

    def calldata(self, cp: CheckpointMessage, signers: list[bytes], locator: bytes) -> bytes:
        assert self.domain is not None
        sigs = [sign_checkpoint(key, self.domain, cp) for key in signers]
        return encode_anchor_call(cp, locator, sigs, domain=self.domain, devices=self.devices,
                                  quorum=self.quorum)

    async def measure(self, data: bytes, gas: int | None = None) -> dict[str, Any]:
        rc = await self.send(data, self.anchor, gas)
        traces = await self.chain.rpc("trace_transaction", rc["transactionHash"])
        top = next(t for t in traces if t["traceAddress"] == [])
        standard, floor = _calldata_gas(data)
        return {
            "status": int(rc["status"], 16),
            "gas_used": int(rc["gasUsed"], 16),
            "calldata_bytes": len(data),
            "intrinsic_gas": standard,
            "floor_gas": floor,
            "execution_gas": int(top["result"]["gasUsed"], 16),
        }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with DevChain("mainnet", 7401, 0, extra_args=("--steps-tracing",)) as chain:
        node = await chain.rpc("anvil_nodeInfo")
        bench = _Bench(chain, args.devices, args.quorum)
        await bench.setup()
        rows: list[dict[str, Any]] = []
        last: CheckpointMessage | None = None
        verify_gas: int | None = None
        for k in args.k:
            runs = []
            for rep in range(args.repeat):
                members = bench.checkpoints(k)
                cp = members[0] if k == 1 else batch_checkpoint(members)
                signers = bench.keys[:args.quorum]
                m = await bench.measure(bench.calldata(cp, signers, keccak(cp.id + b"loc")))
                if m["status"] != 1:
                    raise SystemExit(f"anchor of K={k} failed: {m}")
                root = decode_bytes32(await chain.rpc(
                    "eth_call", {"to": bench.anchor, "data": _hex(anchored_root_call(cp.id))},
                    "latest"))
                if root != cp.root:
                    raise SystemExit(f"K={k}: anchoredRoot is not the anchored root")
                runs.append(m)
                last = cp
                if k == max(args.k) and rep == 0 and k > 1:
                    ids = [c.id for c in members]
                    call = verify_member_call(cp.id, ids[-1], MerkleTree(ids).proof(k - 1))
                    verify_gas = int(await chain.rpc(
                        "eth_estimateGas", {"to": bench.anchor, "data": _hex(call)}), 16)
            gas = [r["gas_used"] for r in runs]
            rows.append({
                "k": k,
                "gas_per_anchor": round(statistics.mean(gas)),
                "gas_per_anchor_min": min(gas),
                "gas_per_anchor_max": max(gas),
                "gas_per_checkpoint": round(statistics.mean(gas) / k),
                "calldata_bytes": runs[0]["calldata_bytes"],
                "intrinsic_gas": round(statistics.mean(r["intrinsic_gas"] for r in runs)),
                "execution_gas": round(statistics.mean(r["execution_gas"] for r in runs)),
                "floor_gas": round(statistics.mean(r["floor_gas"] for r in runs)),
            })

        assert last is not None
        # a duplicate: same id, another quorum and locator; fixed gas (estimateGas fails)
        others = bench.keys[len(bench.keys) - args.quorum:]
        dup_data = bench.calldata(last, others, keccak(b"another locator"))
        dup = await bench.measure(dup_data, gas=500_000)
        if dup["status"] != 0:
            raise SystemExit("the duplicate anchor did not revert")
        try:
            await chain.rpc("eth_call", {"to": bench.anchor, "data": _hex(dup_data)}, "latest")
            reason = "none"
        except DevChainError as exc:  # the revert is expected: name it from its data
            reason = _revert_name(str(exc))
    return {
        "devices": args.devices,
        "quorum": args.quorum,
        "hardfork": node.get("hardFork"),
        "anvil_chain_id": chain.chain_id,
        "rows": rows,
        "duplicate": {**dup, "revert": reason},
        "verify_member_gas": verify_gas,
        "verify_member_k": max(args.k),
    }


def _revert_name(message: str) -> str:
    """Name of the Anchor error whose data appears in an RPC error message."""
    import re

    m = re.search(r"'data': '(0x[0-9a-fA-F]*)'", message)
    if not m:
        return "unknown"
    try:
        return decode_anchor_error(m.group(1)).name
    except EdgeError:
        return "unknown"


def _print_table(r: dict[str, Any]) -> None:
    print(f"Anchor gas: N={r['devices']} devices, M={r['quorum']} signatures per anchor, "
          f"anvil hardfork {r['hardfork']}")
    head = (f"{'K':>3} {'gas/anchor':>11} {'gas/checkpoint':>15} {'calldata B':>11} "
            f"{'intrinsic':>10} {'execution':>10} {'7623 floor':>11}")
    print(head)
    print("-" * len(head))
    for row in r["rows"]:
        print(f"{row['k']:>3} {row['gas_per_anchor']:>11,} {row['gas_per_checkpoint']:>15,} "
              f"{row['calldata_bytes']:>11,} {row['intrinsic_gas']:>10,} "
              f"{row['execution_gas']:>10,} {row['floor_gas']:>11,}")
    d = r["duplicate"]
    print(f"duplicate (reverts {d['revert']}): {d['gas_used']:,} gas "
          f"(execution {d['execution_gas']:,}; intrinsic {d['intrinsic_gas']:,}, "
          f"floor {d['floor_gas']:,})")
    if r["verify_member_gas"] is not None:
        print(f"verifyMember at K={r['verify_member_k']} (eth_estimateGas, as a tx): "
              f"{r['verify_member_gas']:,} gas")


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--devices", type=int, default=5, help="N registered devices (default 5)")
    p.add_argument("--quorum", type=int, default=3, help="M signatures per anchor (default 3)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 8, 32],
                   help="batch sizes (default 1 8 32)")
    p.add_argument("--repeat", type=int, default=3, help="anchors per K (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not 1 <= args.quorum <= args.devices <= 255:
        p.error("need 1 <= --quorum <= --devices <= 255")
    if any(k < 1 for k in args.k) or args.repeat < 1:
        p.error("--k values and --repeat must be >= 1")
    return args


if __name__ == "__main__":
    ns = _parse()
    result = asyncio.run(main(ns))
    if ns.json:
        print(json.dumps(result))
    else:
        _print_table(result)
