"""arm64 smoke test of the agent: what ``image/arm-check.sh`` runs inside the arm64 rootfs.

Two subcommands:

``run`` (needs the installed agent: numpy, onnxruntime, coincurve, eth-abi, aiosqlite)
    Scores real contracts of a corpus slice with the shipped ONNX model, writes codes and
    scores to a real SQLite outbox (:class:`edge.store.db.Outbox`), builds a
    checkpoint-like Merkle tree over contract-deployment records (:mod:`edge.evidence.leaves`,
    OpenZeppelin-compatible :class:`edge.evidence.merkle.MerkleTree`), signs the checkpoint
    (EIP-712, :func:`edge.evidence.eip712.sign_checkpoint`) and recovers the signer, encrypts a
    payload for an auditor (ECIES envelope, :mod:`edge.crypto.ecies`) and decrypts it, and
    round-trips a scrypt keystore (:mod:`edge.crypto.keys`, Web3 Secret Storage v3), and
    analyses the capabilities of the first ``--cap-limit`` distinct codes
    (:func:`capabilities_digest.report_digest`, the module beside this script: the
    pure-Python analyzer the device runs off the hot path).
    Prints ONE JSON line on stdout with the results and the wall time of every step
    (seconds). Exit 0 when every check passed, else 1.

    The chain positions of the records (block numbers, hashes, addresses) are synthetic
    but deterministic, and so are the keys (fixed *test* keys derived from a label, never
    device keys). So the Merkle root, the checkpoint id and the RFC 6979 signature are
    functions of the corpus slice only: an x86 run and an arm64 run of the same slice must
    print the same values, which ``check`` verifies.

``check`` (standard library only; runs on the host)
    Reads the JSON line(s) of an arm64 run (and optionally of a reference run on the
    host) and exits 0 when the arm64 run passed with at least ``--min-scored`` contracts
    and, with a reference, when features, Merkle root, checkpoint id, signature and the
    capability reports' digest are bit-identical across the two architectures (scores may differ in the last float32
    ulp: their largest difference is reported and must stay below ``--score-tol``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SmokeResult", "check", "main", "run"]

_CHAIN_ID = 1337
"""Synthetic private chain id of the records."""
_ANCHOR_CHAIN_ID = 31337
"""Chain id of the (synthetic) EIP-712 domain."""
_ANCHOR_ADDRESS = "0x" + "a5" * 20
"""Synthetic Anchor contract address of the EIP-712 domain."""
_TX_PER_BLOCK = 8
_KEYSTORE_N = 2**14
"""scrypt cost of the round-trip keystore: small, the smoke test proves the code path,
not the production cost (``edge keys new`` uses 2**18)."""


@dataclass(slots=True)
class SmokeResult:
    """What ``run`` measured and checked; printed as one JSON object.

    Attributes:
        ok: every check passed.
        checks: name -> passed.
        info: results (counts, hashes, hex values, backend names).
        timings_s: step name -> wall seconds (``time.perf_counter``).
        error: the first failure's message, or None.
    """

    ok: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> str:
        """One line of JSON (sorted keys)."""
        doc: dict[str, Any] = {
            "ok": self.ok,
            "checks": self.checks,
            "timings_s": self.timings_s,
            "error": self.error,
        }
        doc.update(self.info)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


@contextmanager
def _timed(res: SmokeResult, step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        res.timings_s[step] = round(time.perf_counter() - t0, 4)


def _test_key(label: str) -> bytes:
    """A deterministic 32-byte secp256k1 test secret (sha256 of a label; valid w.p. ~1)."""
    return hashlib.sha256(b"edge arm-check test key: " + label.encode()).digest()


def _h32(*parts: object) -> bytes:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


def run(
    corpus: Path,
    model_path: Path | None,
    db_path: Path,
    *,
    limit: int | None,
    scores_out: Path | None,
    keystore: bool = True,
    cap_limit: int = 40,
) -> SmokeResult:
    """Run every smoke step; never raises for a failed step (it lands in ``error``).

    Args:
        corpus: JSON Lines (optionally gzip) file with ``bytecode`` fields (a slice of
            ``shared/data/contracts``).
        model_path: the ONNX risk model; None: the one packaged with the agent
            (:func:`edge.scoring.model.default_model_path`).
        db_path: SQLite outbox file to create (deleted first if present).
        limit: score at most this many rows (None: all of them).
        scores_out: if given, the float32 scores are written there as a JSON list.
        keystore: also round-trip a scrypt keystore (imports eth-account: slow in qemu).
        cap_limit: analyse the capabilities of this many distinct codes (0: skip).

    Returns:
        A :class:`SmokeResult`.
    """
    res = SmokeResult()
    try:
        _run_steps(res, corpus, model_path, db_path, limit, scores_out, keystore, cap_limit)
        res.ok = bool(res.checks) and all(res.checks.values())
        if not res.ok and res.error is None:
            failed = sorted(k for k, v in res.checks.items() if not v)
            res.error = "failed checks: " + ", ".join(failed)
    except Exception as exc:  # report any failure as JSON, with its type
        res.ok = False
        res.error = f"{type(exc).__name__}: {exc}"
    return res


def _run_steps(
    res: SmokeResult,
    corpus: Path,
    model_path: Path | None,
    db_path: Path,
    limit: int | None,
    scores_out: Path | None,
    keystore: bool,
    cap_limit: int = 40,
) -> None:
    t_all = time.perf_counter()
    res.info["arch"] = platform.machine()
    res.info["python"] = platform.python_version()

    with _timed(res, "import"):
        import numpy as np
        import onnxruntime

        from edge.scoring import features
        from edge.scoring.corpus_reader import iter_codes
        from edge.scoring.model import RiskModel, default_model_path
        from edge.crypto import ecies
        from edge.evidence import eip712, leaves, merkle
        from edge.crypto.keys import DeviceKey, create_keystore, load_key
        from edge.store.db import Outbox
        from edge.store.scores import ScoreRow, get_score, put_codes_and_scores
    res.info["features_backend"] = features.BACKEND
    res.info["onnxruntime"] = onnxruntime.__version__
    res.info["numpy"] = np.__version__

    with _timed(res, "read_corpus"):
        rows = [r for r in iter_codes(corpus, limit=limit)]
        codes = [r.code for r in rows if r.code is not None]
    res.info["rows"] = len(rows)
    res.info["bad_rows"] = len(rows) - len(codes)
    code_hashes = [_keccak(c) for c in codes]

    with _timed(res, "featurize"):
        X = features.featurize_many(codes)
    res.info["features_sha256"] = hashlib.sha256(X.tobytes()).hexdigest()
    res.info["n_features"] = int(X.shape[1])

    with _timed(res, "model_load"):
        model = RiskModel(model_path if model_path is not None else default_model_path())
    res.info["model_id"] = model.model_id
    res.info["model_path"] = str(model.path)

    with _timed(res, "score"):
        scores = model.score(X)
        flagged = model.flagged(scores)
        tops = model.top_feature_tuples(X)
    res.info["scored"] = int(scores.shape[0])
    res.info["flagged"] = int(flagged.sum())
    res.info["scores_sha256"] = hashlib.sha256(scores.astype(np.float32).tobytes()).hexdigest()
    res.checks["scores_in_unit_interval"] = bool(
        np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    )
    if scores_out is not None:
        scores_out.write_text(json.dumps([float(s) for s in scores.tolist()]))
    n = len(codes)
    res.info["us_per_contract_featurize_score"] = (
        round(1e6 * (res.timings_s["featurize"] + res.timings_s["score"]) / n, 1) if n else None
    )

    now = time.time()
    score_rows = [
        ScoreRow(h, model.model_id, float(s), bool(f), tuple(t), now)
        for h, s, f, t in zip(code_hashes, scores.tolist(), flagged.tolist(), tops)
    ]

    async def _outbox() -> tuple[int, bool]:
        if db_path.exists():
            db_path.unlink()
        async with Outbox(db_path) as ob:
            await put_codes_and_scores(ob, list(zip(code_hashes, codes)), score_rows)
            row = await ob.fetchone(
                "SELECT count(*) FROM scores WHERE model_id = ?", (model.model_id,)
            )
            back = await get_score(ob, score_rows[-1].code_hash, model.model_id) if score_rows else None
        same = back is not None and math.isclose(back.score, score_rows[-1].score, rel_tol=0, abs_tol=0)
        return (int(row[0]) if row else 0), same

    with _timed(res, "outbox_write"):
        stored, same = asyncio.run(_outbox())
    distinct = len(set(code_hashes))
    res.info["outbox_rows"] = stored
    res.info["outbox_bytes"] = db_path.stat().st_size
    res.checks["outbox_rows_match"] = stored == distinct
    res.checks["outbox_readback"] = same

    with _timed(res, "merkle"):
        leaf_list = []
        for i, ch in enumerate(code_hashes):
            block = 1 + i // _TX_PER_BLOCK
            enc = leaves.encode_contract(
                _CHAIN_ID, block, _h32("block", block), i % _TX_PER_BLOCK, 0,
                _h32("tx", i), _h32("addr", i)[:20], _h32("creator", i % 7)[:20], ch,
            )
            leaf_list.append(
                leaves.make_leaf(leaves.RecordKey(block, leaves.KIND_CONTRACT, i % _TX_PER_BLOCK, 0), enc)
            )
        leaf_list.sort(key=lambda lf: lf.key.sort_key)
        tree = merkle.MerkleTree([lf.leaf for lf in leaf_list])
        root = tree.root
        proofs_ok = all(
            merkle.verify_proof(tree.proof(k), root, tree.leaf(k)) for k in range(len(tree))
        )
    last_block = 1 + (len(code_hashes) - 1) // _TX_PER_BLOCK if code_hashes else 1
    res.info["merkle_root"] = "0x" + root.hex()
    res.info["leaves"] = len(tree)
    res.info["leaves_crc32c_xor"] = _xor_all(lf.crc for lf in leaf_list)
    res.checks["merkle_proofs"] = proofs_ok

    with _timed(res, "sign_verify"):
        key = _test_key("device")
        domain = eip712.Eip712Domain(_ANCHOR_CHAIN_ID, _ANCHOR_ADDRESS)
        cp = eip712.CheckpointMessage.create(
            _CHAIN_ID, 1, last_block, _h32("block", last_block), root
        )
        sig = eip712.sign_checkpoint(key, domain, cp)
        signer = eip712.recover_checkpoint_signer(domain, cp, sig)
        expected = DeviceKey.from_private_key(key).address
        forged = eip712.CheckpointMessage.create(
            _CHAIN_ID, 1, last_block, _h32("block", last_block), bytes(32)
        )
        tamper_rejected = eip712.recover_checkpoint_signer(domain, forged, sig) != expected
    res.info["checkpoint_id"] = "0x" + cp.id.hex()
    res.info["signature"] = "0x" + sig.hex()
    res.info["signer"] = signer
    res.checks["signature_verified"] = signer == expected
    res.checks["tamper_rejected"] = tamper_rejected

    with _timed(res, "ecies"):
        auditor = _test_key("auditor")
        payload = json.dumps(
            {"checkpoint": res.info["checkpoint_id"], "root": res.info["merkle_root"],
             "scores": res.info["scores_sha256"]}
        ).encode()
        aad = cp.id
        env = ecies.encrypt_for([ecies.public_key_of(auditor)], ecies.pad_to_bucket(payload), aad)
        opened = ecies.unpad(ecies.decrypt_from(auditor, env, aad))
        blob = ecies.encrypt(ecies.public_key_of(auditor), payload, aad)
        single = ecies.decrypt(auditor, blob, aad)
        try:
            ecies.decrypt_from(_test_key("stranger"), env, aad)
            stranger_rejected = False
        except Exception as exc:  # any edge.errors type is a rejection
            stranger_rejected = type(exc).__module__ == "edge.errors"
    res.info["ecies_envelope_bytes"] = len(env)
    res.checks["ecies_roundtrip"] = opened == payload and single == payload
    res.checks["ecies_stranger_rejected"] = stranger_rejected

    if keystore:
        with _timed(res, "keystore"):
            with tempfile.TemporaryDirectory(prefix="edge-smoke-") as tmp:
                path = Path(tmp) / "device.json"
                addr = create_keystore(path, b"smoke passphrase", work_factor=_KEYSTORE_N)
                loaded = load_key(path, b"smoke passphrase")
        res.checks["keystore_roundtrip"] = loaded.address == addr

    if cap_limit > 0:
        with _timed(res, "capabilities"):
            sys.path.insert(0, str(Path(__file__).resolve().parent))  # capabilities_digest.py, beside us
            from capabilities_digest import report_digest

            first: dict[bytes, bytes] = {}
            for ch, code in zip(code_hashes, codes):
                if len(first) < cap_limit:
                    first.setdefault(ch, code)
            n_cap, n_flags, digest = report_digest(([ch.hex()], code) for ch, code in first.items())
        res.info["capability_codes"] = n_cap
        res.info["capability_flags"] = n_flags
        res.info["capabilities_sha256"] = digest
        res.checks["capabilities_analyzed"] = n_cap == len(first) > 0

    res.checks["scored_all_rows"] = res.info["scored"] == len(codes) and res.info["bad_rows"] == 0
    res.timings_s["total"] = round(time.perf_counter() - t_all, 4)


def _keccak(data: bytes) -> bytes:
    from eth_hash.auto import keccak

    return bytes(keccak(data))


def _xor_all(values: Iterable[int]) -> int:
    acc = 0
    for v in values:
        acc ^= int(v)
    return acc


# ----------------------------------------------------------------------------- check

_SAME_ACROSS_ARCH = ("features_sha256", "merkle_root", "checkpoint_id", "signature", "signer",
                     "leaves_crc32c_xor", "n_features", "model_id", "capabilities_sha256",
                     "capability_codes", "capability_flags")


def _last_json(path: Path) -> dict[str, Any]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise ValueError(f"{path}: no JSON line")
    doc = json.loads(lines[-1])
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: last JSON line is not an object")
    return doc


def check(
    arm: Path,
    host: Path | None,
    *,
    min_scored: int,
    require_backend: str | None,
    arm_scores: Path | None = None,
    host_scores: Path | None = None,
    score_tol: float = 1e-6,
) -> list[str]:
    """Judge an arm64 run (and compare it with a host run); return the problems found.

    Args:
        arm: output of ``run`` inside the arm64 rootfs.
        host: output of ``run`` on the host (same slice), or None.
        min_scored: fewest contracts the arm64 run must have scored.
        require_backend: ``"c"``/``"python"`` to demand that featurizer backend, or None.
        arm_scores, host_scores: the ``--scores-out`` files, to compare scores row by row.
        score_tol: largest accepted absolute score difference between the architectures.

    Returns:
        Human-readable problems; empty when the check passed.
    """
    a = _last_json(arm)
    problems: list[str] = []
    if a.get("arch") not in ("aarch64", "arm64"):
        problems.append(f"arm run reports arch {a.get('arch')!r}, expected aarch64")
    if not a.get("ok"):
        problems.append(f"arm run failed: {a.get('error')}")
    if int(a.get("scored") or 0) < min_scored:
        problems.append(f"arm run scored {a.get('scored')} contracts, need >= {min_scored}")
    if not a.get("checks", {}).get("signature_verified"):
        problems.append("arm run: checkpoint signature not verified")
    if require_backend and a.get("features_backend") != require_backend:
        problems.append(
            f"arm run used the {a.get('features_backend')!r} featurizer, expected {require_backend!r}"
            " (did the C extension fail to build in the rootfs?)"
        )
    if host is not None:
        h = _last_json(host)
        if not h.get("ok"):
            problems.append(f"host reference run failed: {h.get('error')}")
        for k in _SAME_ACROSS_ARCH:
            if a.get(k) != h.get(k):
                problems.append(f"{k} differs: arm64 {a.get(k)!r} vs host {h.get(k)!r}")
    if arm_scores is not None and host_scores is not None:
        sa = json.loads(arm_scores.read_text())
        sh = json.loads(host_scores.read_text())
        if len(sa) != len(sh):
            problems.append(f"score counts differ: arm64 {len(sa)} vs host {len(sh)}")
        else:
            diff = max((abs(x - y) for x, y in zip(sa, sh)), default=0.0)
            print(f"max |score arm64 - score host| = {diff:.3g}", file=sys.stderr)
            if diff > score_tol:
                problems.append(f"scores differ across architectures by up to {diff:.3g} > {score_tol}")
    return problems


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    """Command line: ``smoke.py run ...`` or ``smoke.py check ...`` (see the module doc)."""
    ap = argparse.ArgumentParser(prog="smoke.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="score, store, encrypt, sign and verify; print one JSON line")
    r.add_argument("--corpus", type=Path, required=True)
    r.add_argument("--model", type=Path, default=None,
                   help="ONNX model (default: the one packaged with the agent)")
    r.add_argument("--db", type=Path, required=True)
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--scores-out", type=Path, default=None)
    r.add_argument("--no-keystore", action="store_true")
    r.add_argument("--cap-limit", type=int, default=40,
                   help="analyse the capabilities of this many distinct codes (0: skip)")
    c = sub.add_parser("check", help="judge an arm64 run against the thresholds and a host run")
    c.add_argument("--arm", type=Path, required=True)
    c.add_argument("--host", type=Path, default=None)
    c.add_argument("--arm-scores", type=Path, default=None)
    c.add_argument("--host-scores", type=Path, default=None)
    c.add_argument("--min-scored", type=int, default=100)
    c.add_argument("--require-backend", choices=("c", "python"), default=None)
    c.add_argument("--score-tol", type=float, default=1e-6)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        res = run(args.corpus, args.model, args.db, limit=args.limit,
                  scores_out=args.scores_out, keystore=not args.no_keystore, cap_limit=args.cap_limit)
        print(res.as_json(), flush=True)
        return 0 if res.ok else 1
    try:
        problems = check(args.arm, args.host, min_scored=args.min_scored,
                         require_backend=args.require_backend, arm_scores=args.arm_scores,
                         host_scores=args.host_scores, score_tol=args.score_tol)
    except (OSError, ValueError) as exc:
        print(f"arm-check: cannot read the smoke output: {exc}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"arm-check: FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
