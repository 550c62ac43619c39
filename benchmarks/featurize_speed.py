"""µs per contract of the featurizer backends and of onnxruntime scoring (not a test).

Usage (repo root): ``python benchmarks/featurize_speed.py [--corpus FILE] [--rows N]``.
Prints featurize µs/contract for the C extension and the pure-Python fallback, and
scoring µs/contract at batch 1 and 256, on the first N rows of the corpus.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edge.scoring import features as F
from edge.scoring.corpus_reader import iter_codes
from edge.scoring.model import RiskModel, default_model_path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the measurements and print one line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/contracts/unlabeled_train.jsonl.gz")
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()
    codes = [r.code for r in iter_codes(args.corpus, limit=args.rows) if r.code is not None]
    kb = sum(map(len, codes)) / len(codes) / 1024
    print(f"{len(codes)} contracts, mean {kb:.1f} KiB, backend {F.BACKEND}")
    t = time.perf_counter()
    X = F.featurize_many(codes)
    print(f"featurize ({F.BACKEND}): {(time.perf_counter() - t) / len(codes) * 1e6:.1f} µs/contract")
    n_py = min(300, len(codes))
    out = np.empty(F.N_FEATURES, np.float32)
    t = time.perf_counter()
    for c in codes[:n_py]:
        F._featurize_py(c, out)
    print(f"featurize (python): {(time.perf_counter() - t) / n_py * 1e6:.1f} µs/contract")
    model = RiskModel(default_model_path())
    for batch in (1, 256):
        m = min(len(codes), 2000 if batch > 1 else 300)
        t = time.perf_counter()
        for i in range(0, m, batch):
            model.score(X[i : i + batch])
        print(f"score batch {batch}: {(time.perf_counter() - t) / m * 1e6:.2f} µs/contract")


if __name__ == "__main__":
    main()
