"""``edge score --corpus FILE --out OUT.jsonl``: score every row of a bytecode corpus.

Writes one JSON object per corpus row, in corpus order::

    {"line": 1, "bytecode_keccak": "0x...", "score": 0.0312, "flagged": false,
     "top_features": [["count:SELFDESTRUCT", 1.0, 0.0123], ...]}

``score`` is the model's probability of malicious (0..1), ``flagged`` is
``score >= threshold`` at the shipped threshold (or ``--threshold``). A row whose
bytecode is not valid hex gets ``"score": null, "flagged": null, "error": "..."``
instead (the run goes on; the count of such rows is printed and the exit status is 1).
``bytecode_keccak`` is the row's own field when it has one, else keccak-256 computed
here (eth-hash). The corpus is streamed in batches; nothing here imports web3.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from pathlib import Path
from typing import IO

from edge.errors import EdgeError

__all__ = ["register", "score_corpus"]

_BATCH = 512
_TOP_K = 5


def score_corpus(
    corpus: Path,
    out: IO[str],
    *,
    model: Path | None = None,
    threshold: float | None = None,
    limit: int | None = None,
) -> tuple[int, int, int]:
    """Score a corpus, writing JSON Lines to ``out``.

    Args:
        corpus: jsonl(.gz) file with a ``bytecode`` field per row.
        out: text stream for the output lines.
        model: ONNX model (default: the shipped one). threshold: override the model's.
        limit: only the first rows.

    Returns:
        ``(rows, flagged, bad_rows)``.

    Raises:
        EdgeError: unreadable corpus, model problems (ModelError).
    """
    from edge.scoring.corpus_reader import iter_codes
    from edge.scoring.features import featurize_many
    from edge.scoring.model import RiskModel, default_model_path

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EdgeError(f"score: --threshold must be in [0, 1], got {threshold}")
    risk = RiskModel(model or default_model_path())
    rows_iter = iter_codes(corpus, limit=limit)
    n = flagged = bad = 0
    keccak = None
    while True:
        batch = list(islice(rows_iter, _BATCH))
        if not batch:
            break
        good = [r for r in batch if r.code is not None]
        codes = [r.code for r in good if r.code is not None]
        X = featurize_many(codes)
        scores = risk.score(X)
        flags = risk.flagged(scores, threshold)
        tops = risk.top_feature_tuples(X, _TOP_K)
        by_index = {r.index: (s, f, t) for r, s, f, t in zip(good, scores.tolist(), flags.tolist(), tops)}
        for r in batch:
            h = r.keccak
            if h is None and r.code is not None:
                if keccak is None:
                    from eth_hash.auto import keccak as _k

                    keccak = _k
                h = keccak(r.code)
            obj: dict[str, object] = {
                "line": r.line,
                "bytecode_keccak": "0x" + h.hex() if h is not None else None,
            }
            if r.index in by_index:
                s, f, t = by_index[r.index]
                obj.update(score=round(s, 6), flagged=bool(f), top_features=t)
                flagged += int(f)
            else:
                obj.update(score=None, flagged=None, error=r.error or "unusable row")
                bad += 1
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
            n += 1
    return n, flagged, bad


def _cmd(args: argparse.Namespace) -> int:
    out_path = Path(args.out)
    corpus = Path(args.corpus)
    if not corpus.is_file():
        raise EdgeError(f"score: corpus not found: {corpus}")
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            n, flagged, bad = score_corpus(
                corpus,
                fh,
                model=Path(args.model) if args.model else None,
                threshold=args.threshold,
                limit=args.limit,
            )
        tmp.replace(out_path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EdgeError(f"score: cannot write {out_path}: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    print(f"edge score: {n:,} rows scored into {out_path}: {flagged:,} flagged, {bad} unusable", file=sys.stderr)
    return 1 if bad else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``score`` subcommand (``set_defaults(func=...)`` returns the exit status)."""
    p = subparsers.add_parser("score", help="score every row of a bytecode corpus into a JSON Lines file")
    p.add_argument("--corpus", required=True, help="jsonl(.gz) corpus with a 'bytecode' field per row")
    p.add_argument("--out", required=True, help="output .jsonl (written atomically)")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped models/risk.onnx)")
    p.add_argument("--threshold", type=float, default=None, help="flag threshold (default: the model's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.set_defaults(func=_cmd)
