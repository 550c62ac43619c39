"""Upload plans for checkpoints of growing size on a 30M-gas testnet (a benchmark, no chain).

For each record count: the metadata (binary, then deflated), its encrypted envelope and
chunks, the manifest (as one encrypted blob, and as the root of a split tree), the
``publishMany`` transactions per testnet and the largest planned gas of one of them,
against the block gas limit. The "single manifest" column is what the manifest would
cost stored whole, as before this planner (the issue's 776-record case needed 47.3M gas).

Usage::

    .venv/bin/python benchmarks/upload_plan.py [--records 418 776 2000 10000 50000]
        [--block-gas 30000000] [--chunk-bytes 2048] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import coincurve  # noqa: E402
from eth_hash.auto import keccak  # noqa: E402

from edge.forward.uploads import UploadBudget, publish_many_gas, plan_transactions, encrypt_checkpoint_upload  # noqa: E402
from edge.evidence.eip712 import checkpoint_id  # noqa: E402
from edge.crypto.keys import DeviceKey  # noqa: E402
from edge.evidence.leaves import Leaf, RecordKey  # noqa: E402
from edge.evidence.manifest_tree import encrypted_manifest_size  # noqa: E402
from edge.evidence.merkle import MerkleTree  # noqa: E402
from edge.evidence.metadata import Metadata, chunk_metadata, compress, encode_metadata  # noqa: E402

STORES = [(7301, b"\x11" * 20), (7302, b"\x22" * 20)]


def row(n: int, budget: UploadBudget, chunk_bytes: int) -> dict[str, Any]:
    dev = DeviceKey.from_private_key(keccak(b"bench device"))
    auditor = coincurve.PrivateKey(keccak(b"bench auditor")).public_key.format()
    recs = tuple(Leaf(RecordKey(i // 20, 2, i % 20 // 4, i % 20), keccak(i.to_bytes(4, "big")), i * 2654435761 % 2**32)
                 for i in range(n))
    root = MerkleTree([r.leaf for r in recs]).root
    last = keccak(b"last")
    md = Metadata(7201, 0, n // 20, last, root, checkpoint_id(7201, 0, n // 20, last, root), dev.address, recs, ())
    plain = encode_metadata(md)
    max_blob = budget.max_value_bytes()
    _, whole = chunk_metadata(md, auditors=[auditor], device_key=dev.private_key, stores=STORES,
                              chunk_bytes=min(chunk_bytes, max_blob))
    single = encrypted_manifest_size(whole, 1)
    _, items = encrypt_checkpoint_upload(md, auditors=[auditor], device_key=dev.private_key, stores=STORES,
                                      chunk_bytes=chunk_bytes, max_blob=max_blob)
    groups = {cid: plan_transactions(rows, budget) for cid, rows in items.items()}
    gas = [publish_many_gas([len(r[2]) for r in g]) for gs in groups.values() for g in gs]
    return {
        "records": n, "metadata_bytes": len(plain), "deflated_bytes": len(compress(plain)),
        "chunks": sum(1 for rows in items.values() for p, _, _ in rows if p >= 0),
        "manifest_single_bytes": single, "manifest_single_gas": publish_many_gas([single]),
        "manifest_parts": sum(1 for p, _, _ in items[7301] if p < -1),
        "txs": {str(c): len(g) for c, g in groups.items()}, "max_tx_gas": max(gas),
        "total_gas": sum(gas),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--records", type=int, nargs="+", default=[418, 776, 2000, 10000, 50000])
    p.add_argument("--block-gas", type=int, default=30_000_000)
    p.add_argument("--chunk-bytes", type=int, default=2048)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    budget = UploadBudget.for_block(a.block_gas)
    rows = [row(n, budget, a.chunk_bytes) for n in a.records]
    if a.json:
        print(json.dumps({"block_gas": a.block_gas, "budget_gas": budget.gas, "max_blob": budget.max_value_bytes(),
                          "rows": rows}))
        return
    print(f"block gas limit {a.block_gas:,}; per-tx budget {budget.gas:,} gas (+{budget.margin:.0%} margin); "
          f"largest blob per tx {budget.max_value_bytes():,} B")
    print(f"{'records':>8} {'metadata B':>11} {'deflated B':>11} {'chunks':>7} {'manifest whole':>22} "
          f"{'parts':>6} {'txs a/b':>8} {'max tx gas':>11} {'total gas':>12}")
    for r in rows:
        whole = f"{r['manifest_single_bytes']:,} B {r['manifest_single_gas'] / 1e6:.1f}M"
        txs = "/".join(str(v) for v in r["txs"].values())
        print(f"{r['records']:>8,} {r['metadata_bytes']:>11,} {r['deflated_bytes']:>11,} {r['chunks']:>7,} "
              f"{whole:>22} {r['manifest_parts']:>6} {txs:>8} {r['max_tx_gas']:>11,} {r['total_gas']:>12,}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
