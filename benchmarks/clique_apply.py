"""Cost of the EIP-225 Clique snapshot per block, against the plain seal check (not a test).

Usage (repo root): ``python benchmarks/clique_apply.py [--blocks N] [--signers K]``.
Best of 3 alternating passes.
Builds a chain of N headers sealed in turn by K known keys (tests/clique_headers.py), then
prints µs/block of ``SealChecker.check`` (seal recovery only, the peer), of
``CliqueSnapshot.apply`` (recovery + every EIP-225 rule + the snapshot transition), their
ratio, and the size and (de)serialization time of one snapshot (one is stored per block).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.chain.clique import CliqueConfig, CliqueSnapshot  # noqa: E402
from edge.chain.poa import SealChecker  # noqa: E402
from tests.clique_headers import ADDRS, Sealer, genesis  # noqa: E402


def main() -> None:
    """Run the measurements and print one line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--signers", type=int, default=3)
    args = ap.parse_args()
    signers = ADDRS[: args.signers]
    order = sorted(signers, key=str.lower)
    g = genesis(signers)
    s = Sealer(list(signers))
    chain = [g]
    for n in range(1, args.blocks + 1):
        chain.append(s.child(chain[-1], order[n % len(order)]))
    checker = SealChecker("clique", signers)
    config = CliqueConfig(1)

    def seal_pass() -> float:
        t = time.perf_counter()
        for h in chain[1:]:
            checker.check(h)
        return time.perf_counter() - t

    def apply_pass() -> tuple[float, CliqueSnapshot]:
        snap, _ = CliqueSnapshot.genesis(g, config)
        t = time.perf_counter()
        for h in chain[1:]:
            snap, vs = snap.apply(h)
            assert not vs
        return time.perf_counter() - t, snap

    seal_s, apply_s = [], []
    for _ in range(3):  # alternate, keep the best of 3 (a shared machine)
        seal_s.append(seal_pass())
        dt, snap = apply_pass()
        apply_s.append(dt)
    seal_us = min(seal_s) / args.blocks * 1e6
    apply_us = min(apply_s) / args.blocks * 1e6
    print(f"{args.blocks} blocks, {args.signers} signers")
    print(f"SealChecker.check: {seal_us:.1f} µs/block")
    print(f"CliqueSnapshot.apply: {apply_us:.1f} µs/block ({apply_us / seal_us:.2f}x the seal check)")
    blob = snap.to_bytes()
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        snap.to_bytes()
    enc_us = (time.perf_counter() - t) / reps * 1e6
    t = time.perf_counter()
    for _ in range(reps):
        CliqueSnapshot.from_bytes(blob)
    dec_us = (time.perf_counter() - t) / reps * 1e6
    print(f"snapshot: {len(blob)} bytes; to_bytes {enc_us:.1f} µs, from_bytes {dec_us:.1f} µs")


if __name__ == "__main__":
    main()
