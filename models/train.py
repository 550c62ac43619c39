"""Train the contract risk model and write ``models/risk.onnx`` and its model card.

Usage (from the repo root; ``make train`` does this)::

    pip install -e '.[train]'
    OMP_NUM_THREADS=1 python models/train.py --data ../shared/data/contracts/train.jsonl.gz

Reproducible: fixed seeds, one thread, no timestamps in the model; the same data and
package versions give the same ``risk.onnx`` bytes (and so the same model id).

What it does:

1. Reads the labelled runtime bytecodes (gzip JSON Lines, see the data README) and
   featurizes them with :mod:`edge.scoring.features` (CBOR metadata stripped there).
2. Leaves out of training the rug pulls whose code carries no malicious function
   (``rugpull_event_no_malicious_function`` / ``rugpull_event_unannotated``): their label
   is about a transaction, not the code. They are scored and reported separately.
3. Adds, unless ``--no-extra-benign``, modern benign runtime code from compiled
   artifacts shipped in ``node_modules`` (OpenZeppelin, Uniswap v2/v3 core, Safe):
   the labelled benign set is old (2016-2019). They are used for training only, and
   reported separately (never counted in the labelled-corpus metrics).
4. Stratified 5-fold cross-validation, grouped so that codes identical once the
   metadata is stripped stay in one fold; the decision threshold of each outer fold is
   chosen by an inner 5-fold CV on that fold's training part (highest F1 among the
   thresholds with precision >= 0.90, else highest F1), so the reported metrics carry
   no threshold-selection bias.
5. Fits the final model on everything, picks the shipped threshold on the outer
   out-of-fold scores, computes permutation importances, and converts the model with
   skl2onnx (``zipmap`` off). The ONNX metadata holds the threshold, the feature-layout
   hash and the per-feature statistics that ``RiskModel.top_features`` uses.
6. Scores the unlabelled population (alert rate) and writes ``models/README.md``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from edge.scoring.features import (  # noqa: E402
    BACKEND,
    FEATURE_NAMES,
    N_FEATURES,
    featurize_many,
    parse_bytecode,
    strip_metadata,
)

from edge.scoring.model import feature_layout_sha256  # noqa: E402

__all__ = ["main"]

SEED = 20_240_601
EXCLUDED_SUBCATEGORIES = ("rugpull_event_no_malicious_function", "rugpull_event_unannotated")
MIN_PRECISION = 0.90
_BENCH_BEGIN = "<!-- bench:begin -->"
_BENCH_END = "<!-- bench:end -->"
_CAPS_BEGIN = "<!-- capabilities:begin -->"  # written by models/capabilities_eval.py
_CAPS_END = "<!-- capabilities:end -->"
_EXTRA_GLOBS = (
    "@openzeppelin/contracts/build/contracts/*.json",
    "@uniswap/v2-core/build/*.json",
    "@uniswap/v3-core/artifacts/contracts/**/*.json",
    "@safe-global/safe-contracts/build/artifacts/contracts/**/*.json",
)
_EXTRA_MIN_BYTES = 100

HGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.1,
    "max_iter": 150,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 10,
    "l2_regularization": 1.0,
    "early_stopping": False,
}

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled runtime bytecode."""

    code: bytes
    malicious: bool
    category: str
    subcategory: str
    keccak: str


def _read_jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _load_labelled(path: Path) -> list[Sample]:
    out = []
    for row in _read_jsonl_gz(path):
        out.append(
            Sample(
                code=parse_bytecode(row["bytecode"]),
                malicious=row["label"] == "malicious",
                category=str(row["category"]),
                subcategory=str(row.get("subcategory") or ""),
                keccak=str(row.get("bytecode_keccak") or ""),
            )
        )
    return out


def _load_extra_benign(node_modules: Path, known: set[bytes]) -> tuple[list[bytes], list[str]]:
    """Deployed (runtime) bytecode of compiled artifacts shipped in npm packages."""
    codes: list[bytes] = []
    names: list[str] = []
    seen = set(known)
    for pattern in _EXTRA_GLOBS:
        for path in sorted(node_modules.glob(pattern)):
            if path.name.endswith(".dbg.json"):
                continue
            try:
                art = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            raw = art.get("deployedBytecode")
            if isinstance(raw, dict):
                raw = raw.get("object")
            if not isinstance(raw, str) or "__" in raw:  # unlinked library placeholders
                continue
            try:
                code = parse_bytecode(raw)
            except Exception:  # noqa: BLE001 - skip a malformed artifact, keep going
                continue
            stripped = strip_metadata(code)
            if len(stripped) < _EXTRA_MIN_BYTES or stripped in seen:
                continue
            seen.add(stripped)
            codes.append(code)
            names.append(str(path.relative_to(node_modules)))
    return codes, names


def _new_model(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed, **HGB_PARAMS)


def _pick_threshold(y: npt.NDArray[np.int8], p: npt.NDArray[np.float64]) -> float:
    """Highest-F1 threshold among those with precision >= MIN_PRECISION (else best F1)."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    prec, rec = prec[:-1], rec[:-1]
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    ok = prec >= MIN_PRECISION
    idx = int(np.argmax(np.where(ok, f1, -1.0))) if ok.any() else int(np.argmax(f1))
    return float(thr[idx])


def _fold_ids(y: npt.NDArray[np.int8], groups: Sequence[str], seed: int) -> npt.NDArray[np.int64]:
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(y), -1, dtype=np.int64)
    skf = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(skf.split(np.zeros(len(y)), y, groups)):
        folds[test] = k
    return folds


def _oof(
    X: FloatArray,
    y: npt.NDArray[np.int8],
    folds: npt.NDArray[np.int64],
    X_extra: FloatArray,
    extra_folds: npt.NDArray[np.int64],
    seed: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Out-of-fold probabilities for the corpus rows and the extra benign rows."""
    p = np.zeros(len(y))
    p_extra = np.zeros(len(X_extra))
    for k in range(int(folds.max()) + 1):
        tr, te = folds != k, folds == k
        etr, ete = extra_folds != k, extra_folds == k
        Xtr = np.vstack([X[tr], X_extra[etr]])
        ytr = np.concatenate([y[tr], np.zeros(int(etr.sum()), dtype=np.int8)])
        model = _new_model(seed).fit(Xtr, ytr)
        p[te] = model.predict_proba(X[te])[:, 1]
        if ete.any():
            p_extra[ete] = model.predict_proba(X_extra[ete])[:, 1]
    return p, p_extra


@dataclass(frozen=True, slots=True)
class CvResult:
    """Nested cross-validation outcome on the labelled training rows."""

    p: npt.NDArray[np.float64]
    pred: npt.NDArray[np.bool_]
    fold_thresholds: list[float]
    p_extra: npt.NDArray[np.float64]
    pred_extra: npt.NDArray[np.bool_]


def _nested_cv(
    X: FloatArray,
    y: npt.NDArray[np.int8],
    groups: list[str],
    X_extra: FloatArray,
    seed: int,
) -> CvResult:
    folds = _fold_ids(y, groups, seed)
    extra_folds = np.arange(len(X_extra), dtype=np.int64) % 5
    p, p_extra = _oof(X, y, folds, X_extra, extra_folds, seed)
    pred = np.zeros(len(y), dtype=bool)
    pred_extra = np.zeros(len(X_extra), dtype=bool)
    thresholds = []
    for k in range(5):
        tr, te = folds != k, folds == k
        etr, ete = extra_folds != k, extra_folds == k
        sub_groups = [g for g, keep in zip(groups, tr) if keep]
        inner = _fold_ids(y[tr], sub_groups, seed + 1 + k)
        inner_extra = np.arange(int(etr.sum()), dtype=np.int64) % 5
        p_in, _ = _oof(X[tr], y[tr], inner, X_extra[etr], inner_extra, seed)
        thr = _pick_threshold(y[tr], p_in)
        thresholds.append(thr)
        pred[te] = p[te] >= thr
        pred_extra[ete] = p_extra[ete] >= thr
        print(f"  outer fold {k}: inner threshold {thr:.4f}", file=sys.stderr)
    return CvResult(p, pred, thresholds, p_extra, pred_extra)


def _metrics(y: npt.NDArray[np.int8], p: npt.NDArray[np.float64], pred: npt.NDArray[np.bool_]) -> dict[str, float]:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    return {
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
    }


def _per_category(
    samples: list[Sample], y: npt.NDArray[np.int8], p: npt.NDArray[np.float64], pred: npt.NDArray[np.bool_]
) -> list[dict[str, Any]]:
    """Per category: flagged share; ROC-AUC of that category against the other class."""
    from sklearn.metrics import roc_auc_score

    cats = np.array([s.category for s in samples])
    rows = []
    for cat in sorted(set(cats.tolist()), key=lambda c: (-int(y[cats == c][0]), c)):
        m = cats == cat
        malicious = bool(y[m][0])
        other = (y == 0) if malicious else (y == 1)
        sel = m | other
        auc = float(roc_auc_score(y[sel], p[sel]))
        rows.append(
            {
                "category": cat,
                "label": "malicious" if malicious else "benign",
                "n": int(m.sum()),
                "flagged": int(pred[m].sum()),
                "flagged_share": float(pred[m].mean()),
                "roc_auc": auc,
            }
        )
    return rows


def _permutation_importance(model: Any, X: FloatArray, y: npt.NDArray[np.int8], seed: int) -> npt.NDArray[np.float64]:
    from sklearn.inspection import permutation_importance

    # log loss, not ROC-AUC: on the training rows the AUC is saturated (~1.0), so
    # permuting one feature rarely moves it and most importances would read 0.
    res = permutation_importance(
        model, X, y, scoring="neg_log_loss", n_repeats=3, random_state=seed, n_jobs=1
    )
    return np.clip(np.asarray(res.importances_mean, dtype=np.float64), 0.0, None)


def _directions(X: FloatArray, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sign of the Pearson correlation of each feature with the model's score."""
    Xc = X.astype(np.float64) - X.mean(axis=0)
    pc = p - p.mean()
    cov: npt.NDArray[np.float64] = np.sign(Xc.T @ pc)
    return cov


def _to_onnx(model: Any, metadata: dict[str, str]) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, N_FEATURES]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.graph.name = "edge_risk_model"  # skl2onnx names the graph with a random uuid
    onx.doc_string = "edge contract risk model (see models/README.md)"
    onx.producer_name = "edge models/train.py"
    for key, value in sorted(metadata.items()):
        prop = onx.metadata_props.add()
        prop.key = key
        prop.value = value
    return bytes(onx.SerializeToString())


def _round_list(values: npt.NDArray[np.float64], digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def _time_scoring(onnx_path: Path, codes: list[bytes]) -> dict[str, float]:
    """µs per contract for featurize and for onnxruntime scoring (batch 256, 1 thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    batches = [codes[i : i + 256] for i in range(0, len(codes), 256)]
    t0 = time.perf_counter()
    mats = [featurize_many(b) for b in batches]
    t1 = time.perf_counter()
    for m in mats:
        sess.run(None, {"X": m})
    t2 = time.perf_counter()
    one = mats[0][:1]
    for _ in range(200):
        sess.run(None, {"X": one})
    t3 = time.perf_counter()
    n = len(codes)
    return {
        "featurize_us": (t1 - t0) / n * 1e6,
        "score_us_batch256": (t2 - t1) / n * 1e6,
        "score_us_batch1": (t3 - t2) / 200 * 1e6,
    }


_CARD_TEMPLATE = Path(__file__).with_name("card.md.tmpl")


def _card_sections(path: Path = _CARD_TEMPLATE) -> dict[str, str]:
    """The sections of the card template: ``{name: text}``.

    A section starts at a line ``=== name ===``; its text runs to the next such line, less
    the newline before it; ``card`` is the last section and runs to the end of the file.
    Text before the first section is a note for the reader, not part of the card.
    """
    sections: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("=== ") and line.rstrip("\n").endswith(" ==="):
            if name is not None:
                sections[name] = "".join(body).removesuffix("\n")
            name, body = line.strip()[4:-4], []
        else:
            body.append(line)
    if name is not None:
        sections[name] = "".join(body)
    return sections


def _kept_block(text: str, begin: str, end: str) -> str:
    """The ``begin ... end`` block of ``text`` (markers included), or "" when absent."""
    if begin in text and end in text:
        return text[text.index(begin) : text.index(end) + len(end)]
    return ""


def _render_card(info: dict[str, Any], old_card: str = "") -> str:
    """The model card's Markdown text: ``models/card.md.tmpl`` filled with ``info`` (the
    figures ``main`` gathers); the ``bench`` and ``capabilities`` blocks of ``old_card``
    (the card being replaced) are kept, or the template's placeholders used."""
    t = _card_sections()
    fields = dict(info)
    fields.update(
        target_line=t["target_missed"] if info["cv"]["f1"] < 0.90 else t["target_met"],
        extra_note="" if info["n_extra"] else t["no_extra_benign"],
        n_features=N_FEATURES,
        min_precision=MIN_PRECISION,
        hgb_params=", ".join(f"{k}={v}" for k, v in HGB_PARAMS.items()),
        fold_thresholds=", ".join(f"{x:.3f}" for x in info["fold_thresholds"]),
        importance_rows="\n".join(t["importance_row"].format(name=n, importance=v)
                                  for n, v in info["top_importance"]),
        scope_rows="\n".join(t["scope_row"].format_map(row) for row in info["cv_scopes"]),
        category_rows="\n".join(t["category_row"].format_map(row) for row in info["per_category"]),
        bench=_kept_block(old_card, _BENCH_BEGIN, _BENCH_END) or t["bench_missing"],
        capabilities=_kept_block(old_card, _CAPS_BEGIN, _CAPS_END) or t["capabilities_missing"],
    )
    return t["card"].format_map(fields)


def _write_card(path: Path, info: dict[str, Any]) -> None:
    path.write_text(_render_card(info, path.read_text() if path.exists() else ""))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _score_unlabeled(model: Any, path: Path, threshold: float) -> dict[str, Any]:
    flags_old: list[bool] = []
    flags_new: list[bool] = []
    batch: list[bytes] = []

    def flush() -> None:
        if not batch:
            return
        p = model.predict_proba(featurize_many(batch))[:, 1]
        for code, score in zip(batch, p):
            (flags_old if code[:5] == b"\x60\x60\x60\x40\x52" else flags_new).append(bool(score >= threshold))
        batch.clear()

    for row in _read_jsonl_gz(path):
        batch.append(parse_bytecode(row["bytecode"]))
        if len(batch) >= 1024:
            flush()
    flush()
    flags = flags_old + flags_new
    return {
        "name": path.name,
        "n": len(flags),
        "flagged": int(sum(flags)),
        "alert_rate": float(np.mean(flags)) if flags else float("nan"),
        "alert_rate_old": float(np.mean(flags_old)) if flags_old else float("nan"),
        "alert_rate_new": float(np.mean(flags_new)) if flags_new else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate and export the model; returns a process exit code."""
    default_data = _REPO.parent / "shared" / "data" / "contracts" / "train.jsonl.gz"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data, help="labelled train.jsonl.gz")
    ap.add_argument("--unlabeled", type=Path, default=None,
                    help="unlabelled jsonl.gz for the alert rate (default: next to --data)")
    ap.add_argument("--out", type=Path, default=_REPO / "models" / "risk.onnx")
    ap.add_argument("--card", type=Path, default=_REPO / "models" / "README.md")
    ap.add_argument("--node-modules", type=Path, default=_REPO / "node_modules")
    ap.add_argument("--no-extra-benign", action="store_true",
                    help="do not add benign artifacts from node_modules")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)

    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    if not args.data.exists():
        print(f"train.py: data file not found: {args.data}", file=sys.stderr)
        return 2
    unlabeled = args.unlabeled or args.data.with_name("unlabeled_train.jsonl.gz")

    print(f"reading {args.data}", file=sys.stderr)
    samples = _load_labelled(args.data)
    excluded_mask = np.array([s.subcategory in EXCLUDED_SUBCATEGORIES for s in samples])
    train = [s for s, ex in zip(samples, excluded_mask) if not ex]
    excluded = [s for s, ex in zip(samples, excluded_mask) if ex]
    X = featurize_many([s.code for s in train])
    y = np.array([s.malicious for s in train], dtype=np.int8)
    groups = [hashlib.sha256(strip_metadata(s.code)).hexdigest() for s in train]

    extra_codes: list[bytes] = []
    extra_names: list[str] = []
    if not args.no_extra_benign and args.node_modules.is_dir():
        known = {strip_metadata(s.code) for s in samples}
        extra_codes, extra_names = _load_extra_benign(args.node_modules, known)
    X_extra = featurize_many(extra_codes) if extra_codes else np.zeros((0, N_FEATURES), np.float32)
    print(f"{len(train)} training rows, {len(excluded)} excluded, {len(extra_codes)} extra benign",
          file=sys.stderr)

    print("nested 5-fold cross-validation", file=sys.stderr)
    cv = _nested_cv(X, y, groups, X_extra, args.seed)
    cv_metrics = _metrics(y, cv.p, cv.pred)
    cats = np.array([s.category for s in train])
    scopes = []
    for name, cat_set in [
        ("ponzi + honeypot + exploit + phishing vs benign", {"ponzi", "honeypot", "exploit", "phishing"}),
        ("rugpull vs benign", {"rugpull"}),
    ]:
        m = np.isin(cats, list(cat_set)) | (y == 0)
        scopes.append({"name": name, "n": int(m.sum()), "metrics": _metrics(y[m], cv.p[m], cv.pred[m])})
    per_cat = _per_category(train, y, cv.p, cv.pred)
    threshold = _pick_threshold(y, cv.p)

    print("final fit", file=sys.stderr)
    X_all = np.vstack([X, X_extra])
    y_all = np.concatenate([y, np.zeros(len(X_extra), dtype=np.int8)])
    model = _new_model(args.seed).fit(X_all, y_all)
    p_all = model.predict_proba(X_all)[:, 1]
    print("permutation importance", file=sys.stderr)
    importance = _permutation_importance(model, X_all, y_all, args.seed)
    mean = X_all.astype(np.float64).mean(axis=0)
    std = X_all.astype(np.float64).std(axis=0)
    direction = _directions(X_all, p_all)

    n_excl_flagged = 0
    if excluded:
        pe = model.predict_proba(featurize_many([s.code for s in excluded]))[:, 1]
        n_excl_flagged = int((pe >= threshold).sum())

    train_info = {
        "data": args.data.name,
        "n_train": len(train),
        "n_extra_benign": len(extra_codes),
        "excluded_subcategories": list(EXCLUDED_SUBCATEGORIES),
        "cv": {k: round(v, 4) for k, v in cv_metrics.items()},
        "seed": args.seed,
        "model": "sklearn.HistGradientBoostingClassifier",
        "params": HGB_PARAMS,
    }
    metadata = {
        "threshold": repr(threshold),
        "feature_layout_sha256": feature_layout_sha256(),
        "n_features": str(N_FEATURES),
        "feature_importance": json.dumps(_round_list(importance, 6)),
        "feature_mean": json.dumps(_round_list(mean, 6)),
        "feature_std": json.dumps(_round_list(std, 6)),
        "feature_direction": json.dumps([int(d) for d in direction]),
        "train_info": json.dumps(train_info, sort_keys=True),
    }
    blob = _to_onnx(model, metadata)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    print(f"wrote {args.out} ({len(blob):,} bytes)", file=sys.stderr)

    # The ONNX model must agree with scikit-learn (float32 thresholds: tiny differences).
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = onnxruntime.InferenceSession(str(args.out), opts, providers=["CPUExecutionProvider"])
    p_onnx = sess.run(["probabilities"], {"X": X_all})[0][:, 1]
    max_diff = float(np.max(np.abs(p_onnx - p_all)))
    print(f"max |onnx - sklearn| = {max_diff:.2e}", file=sys.stderr)
    if max_diff > 1e-4:
        print("train.py: ONNX conversion disagrees with scikit-learn", file=sys.stderr)
        return 1

    unl: dict[str, Any] = {"name": unlabeled.name, "n": 0, "flagged": 0, "alert_rate": float("nan"),
                           "alert_rate_old": float("nan"), "alert_rate_new": float("nan")}
    if unlabeled.exists():
        print(f"scoring {unlabeled}", file=sys.stderr)
        unl = _score_unlabeled(model, unlabeled, threshold)

    order = np.argsort(-importance)[:15]
    info: dict[str, Any] = {
        "size_bytes": len(blob),
        "model_id": hashlib.sha256(blob).hexdigest(),
        "threshold": threshold,
        "fold_thresholds": cv.fold_thresholds,
        "cv": cv_metrics,
        "cv_scopes": scopes,
        "per_category": per_cat,
        "excluded": {"n": len(excluded), "flagged": n_excl_flagged},
        "n_extra": len(extra_codes),
        "extra_flagged": int(cv.pred_extra.sum()),
        "unlabeled": unl,
        "data_name": args.data.name,
        "data_sha256": _sha256_file(args.data),
        "n_train": len(train),
        "n_train_malicious": int(y.sum()),
        "n_train_benign": int(len(y) - y.sum()),
        "n_excluded": len(excluded),
        "layout_sha256": feature_layout_sha256(),
        "top_importance": [(FEATURE_NAMES[i], float(importance[i])) for i in order],
        "seed": args.seed,
        "backend": BACKEND,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "speed": _time_scoring(args.out, [s.code for s in samples]),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    _write_card(args.card, info)
    print(json.dumps({"cv": cv_metrics, "threshold": threshold, "unlabeled_alert_rate": unl["alert_rate"],
                      "per_category": {r["category"]: round(r["flagged_share"], 3) for r in per_cat},
                      "excluded_flagged": n_excl_flagged, "extra_flagged": info["extra_flagged"],
                      "extra_names": len(extra_names)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
