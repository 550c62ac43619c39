"""Cost of verified ingest (edge.chain.verify) against plain ingest, from a real anvil.

Prepares a chain (``--no-mining``, 300M gas blocks) holding N real contract deployments
(half top-level, half created by a contract) and M CRUD writes (one log each), then, in
the same run and on the same chain:

* ``agent``: a fresh agent ingests block 0..head into a new outbox (today's ingest,
  verification off: the reference the slowdown is stated against);
* ``plain``: the fetch + parse loop of the ingest stage alone (per batch of B blocks:
  ``eth_getBlockByNumber(n, false)``, ``eth_getBlockReceipts``, ``trace_block``; then
  ``eth_getCode`` at the block hash for every new contract);
* ``verified``: the same loop as ingest would run it with ``ingest.verify = "strict"``:
  ``eth_getBlockByNumber(n, true)`` (full transactions), and ``eth_getProof`` next to each
  ``eth_getCode``; every header, transaction, receipt, log and code checked.

Intermediate modes (:data:`MODES`) show what each check costs. The overhead of a mode is
its seconds minus ``off``'s; the slowdown of ingest is that overhead over the agent's
time. RPC seconds are [block batches, code batches]; verify CPU is process time. As wall
time is noisy on a shared machine, CPU seconds [client, node] are measured too (the
node's from /proc), and ``*_cpu_slowdown_pct`` states the extra CPU of a mode over the
agent's own ingest CPU (client + node): a figure that contention does not move much.

Usage::

    .venv/bin/python benchmarks/verify_cost.py [--contracts 1000] [--writes 2000]
        [--batch-blocks 32] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.rpc import codec  # noqa: E402
from edge.chain import verify as V  # noqa: E402
from edge.devnet.workload import WORKLOAD_ANVIL_ARGS, corpus_codes, fill_chain  # noqa: E402
from edge.devnet.anvil import DevChain  # noqa: E402
from edge.chain.extract import creations_from_parity_traces, parse_block, parse_receipts  # noqa: E402
from edge.rpc.ws import WsRpc  # noqa: E402
from edge.config import parse_config  # noqa: E402
from edge.agent import Agent  # noqa: E402


MODES = ("off", "headers", "receipts", "receipts+code", "records", "strict")
"""``off``: today's reads, nothing checked. ``headers``: block hash and parentHash links.
``receipts``: and the receipts root (logs, statuses) plus the receipts' block binding.
``receipts+code``: and every code proven (``eth_getProof``). ``records``: full
transactions (``eth_getBlockByNumber(n, true)``): transactions root, tx hashes, creators
and contract addresses bound; code unproven. ``strict``: all of it."""


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _loop(url: str, head: int, batch: int, mode: str, node_pid: int = 0) -> dict[str, float]:
    """Fetch + parse (+ verify) blocks 0..head; returns seconds and counters.

    ``mode``: see :data:`MODES`."""
    full = mode in ("records", "strict")
    proofs = mode in ("receipts+code", "strict")
    vsec = 0.0
    rsec = [0.0, 0.0]
    blocks = contracts = 0
    cpu0, node0 = time.process_time(), _cpu_of(node_pid) if node_pid else 0.0
    parent: bytes | None = None
    t0 = time.perf_counter()
    async with WsRpc(url, timeout=60.0) as rpc:
        for lo in range(0, head + 1, batch):
            hi = min(head, lo + batch - 1)
            calls: list[tuple[str, list[Any]]] = []
            for n in range(lo, hi + 1):
                calls += [("eth_getBlockByNumber", [hex(n), full]), ("eth_getBlockReceipts", [hex(n)]),
                          ("trace_block", [hex(n)])]
            r0 = time.perf_counter()
            res = await rpc.batch(calls)
            rsec[0] += time.perf_counter() - r0
            todo: list[tuple[Any, Any, bytes]] = []
            for i in range(hi - lo + 1):
                raw_block, raw_receipts, raw_traces = res[3 * i:3 * i + 3]
                block, raw = parse_block(raw_block)
                tx_hashes = [t["hash"] if isinstance(t, dict) else t for t in raw["transactions"]]
                tx_bytes = [codec.hash32(t, "x", "t") for t in tx_hashes]
                parse_receipts(raw_receipts, block)
                creations = creations_from_parity_traces(raw_traces, block, tx_bytes)
                if mode != "off":
                    v0 = time.process_time()
                    (parent,) = V.verify_links([raw_block], parent)
                    if mode != "headers":
                        txs = V.verify_transactions(raw_block) if full else None
                        V.verify_receipts(raw_block, raw_receipts, txs)
                    vsec += time.process_time() - v0
                todo += [(raw_block, block, c.address) for c in creations]
                blocks += 1
            calls = []
            for _, block, a in todo:
                at = {"blockHash": "0x" + block.hash.hex()}
                calls.append(("eth_getCode", ["0x" + a.hex(), at]))
                if proofs:
                    calls.append(("eth_getProof", ["0x" + a.hex(), [], at]))
            r0 = time.perf_counter()
            res = await rpc.batch(calls)
            rsec[1] += time.perf_counter() - r0
            step = 2 if proofs else 1
            for k, (raw_block, _, a) in enumerate(todo):
                code = codec.data(res[step * k], "eth_getCode", "result")
                if proofs:
                    v0 = time.process_time()
                    V.verify_code(raw_block, a, res[step * k + 1], code)
                    vsec += time.process_time() - v0
                contracts += 1
    return {"seconds": time.perf_counter() - t0, "verify_cpu_s": vsec, "blocks_rpc_s": rsec[0],
            "client_cpu_s": time.process_time() - cpu0,
            "node_cpu_s": (_cpu_of(node_pid) - node0) if node_pid else 0.0,
            "codes_rpc_s": rsec[1], "blocks": blocks, "contracts": contracts}


async def main(args: argparse.Namespace) -> dict[str, object]:
    codes = corpus_codes(args.corpus, args.contracts)
    async with DevChain("bench", 7201, 0, extra_args=WORKLOAD_ANVIL_ARGS) as chain:
        head, act = await fill_chain(chain, codes, args.writes)
        runs: dict[str, list[float]] = {"agent": [], **{m: [] for m in MODES}}
        last: dict[str, dict[str, float]] = {}
        agent_cpu: list[tuple[float, float]] = []
        cpu: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = parse_config({
                    "node": {"ws_url": chain.ws_url, "chain_id": chain.chain_id},
                    "ingest": {"batch_blocks": args.batch_blocks},
                    "outbox": {"path": str(Path(tmp) / "edge.sqlite")},
                }, base_dir=Path(tmp))
                async with Agent(cfg, score=False) as agent:
                    t0, c0, n0 = time.perf_counter(), time.process_time(), _cpu_of(chain.pid or 0)
                    await agent.run(stop_at=head)
                    runs["agent"].append(time.perf_counter() - t0)
                    agent_cpu.append((time.process_time() - c0, _cpu_of(chain.pid or 0) - n0))
            for name in MODES:
                r = await _loop(chain.ws_url, head, args.batch_blocks, name, chain.pid or 0)
                runs[name].append(r["seconds"])
                cpu[name].append((r["client_cpu_s"], r["node_cpu_s"]))
                last[name] = r
    best = {k: min(v) for k, v in runs.items()}
    v = last["strict"]
    out: dict[str, object] = {"blocks": int(v["blocks"]), "contracts": int(v["contracts"]), "logs": act.logs,
                              "agent_s": round(best["agent"], 3),
                              "agent_cpu_s": [round(min(c for c, _ in agent_cpu), 3), round(min(n for _, n in agent_cpu), 3)]}
    off_cpu = min(c for c, _ in cpu["off"]), min(n for _, n in cpu["off"])
    base = min(c for c, _ in agent_cpu) + min(n for _, n in agent_cpu)
    for m in MODES:
        out[f"{m}_s"] = round(best[m], 3)
        if m != "off":
            out[f"{m}_slowdown_pct"] = round(100 * (best[m] - best["off"]) / best["agent"], 1)
            out[f"{m}_verify_cpu_s"] = round(last[m]["verify_cpu_s"], 3)
        out[f"{m}_rpc_s"] = [round(last[m]["blocks_rpc_s"], 3), round(last[m]["codes_rpc_s"], 3)]
        mc = min(c for c, _ in cpu[m]), min(n for _, n in cpu[m])
        out[f"{m}_cpu_s"] = [round(mc[0], 3), round(mc[1], 3)]
        if m != "off":
            # contention-proof figure: extra CPU (client + node) over the agent's CPU (client + node)
            out[f"{m}_cpu_slowdown_pct"] = round(100 * (sum(mc) - sum(off_cpu)) / base, 1)
    out["proof_ms_per_contract"] = round(
        1000 * (v["codes_rpc_s"] - last["off"]["codes_rpc_s"]) / max(1, v["contracts"]), 2)
    out["batch_blocks"] = args.batch_blocks
    out["repeat"] = args.repeat
    return out


async def micro(args: argparse.Namespace) -> dict[str, object]:
    """CPU cost of each check on real answers (one busy block, one contract)."""
    import rlp

    from tests.chaindata import build_chain

    blocks = await build_chain()
    b = max(blocks, key=lambda x: len(x.receipts))
    c = next(x for x in blocks if x.codes)
    a, (proof, code, _) = next(iter(c.codes.items()))
    code_b, addr = bytes.fromhex(code[2:]), bytes.fromhex(a[2:])
    txs = V.verify_transactions(b.header)
    envs = [V.encode_transaction(t) for t in b.header["transactions"]]
    bodies = [f + sig for _, f, sig in (V._tx_fields(t, "m", "p") for t in b.header["transactions"])]

    def per(fn: Any, k: int = 200) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        return 1e6 * (time.perf_counter() - t0) / k

    return {
        "txs_in_block": len(b.receipts),
        "header_us": round(per(lambda: V.verify_header(b.header)), 1),
        "transactions_us": round(per(lambda: V.verify_transactions(b.header)), 1),
        "transactions_recover_all_us": round(per(lambda: V.verify_transactions(b.header, recover="all")), 1),
        "transactions_no_recover_us": round(per(lambda: V.verify_transactions(b.header, recover="none")), 1),
        "receipts_us": round(per(lambda: V.verify_receipts(b.header, b.receipts, txs)), 1),
        "code_proof_us": round(per(lambda: V.verify_code(c.header, addr, proof, code_b)), 1),
        "tx_trie_lean_us": round(per(lambda: V._trie_root(envs)), 1),
        "tx_trie_package_us": round(per(lambda: V.reference_trie_root(envs)), 1),
        "rlp_lean_us": round(per(lambda: [V._rlp(x) for x in bodies]), 1),
        "rlp_package_us": round(per(lambda: [rlp.encode(x) for x in bodies]), 1),
        "proof_nodes": len(proof["accountProof"]),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contracts", type=int, default=1000)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz"))
    ap.add_argument("--batch-blocks", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--micro", action="store_true", help="per-check CPU cost on a small real chain")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = asyncio.run(micro(a) if a.micro else main(a))
    if a.json:
        print(json.dumps(res))
    else:
        for k, val in res.items():
            print(f"{k:>24}: {val}")
