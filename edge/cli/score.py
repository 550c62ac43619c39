"""``edge score --corpus FILE --out OUT.jsonl``: score every row of a bytecode corpus.

Writes one JSON object per corpus row, in corpus order::

    {"line": 1, "bytecode_keccak": "0x...", "score": 0.0312, "flagged": false,
     "top_features": [["count:SELFDESTRUCT", 1.0, 0.0123], ...],
     "capabilities": ["is_mintable"], "capability_status": "ok",
     "capability_evidence": [{"name": "is_mintable", "confidence": 0.9,
         "selectors": ["0x40c10f19"], "signatures": ["mint(address,uint256)"], "slots": [...],
         "opcodes": [...], "reason": "owner-only function 0x40c10f19 mint(address,uint256) ..."}]}

``score`` is the model's probability of malicious (0..1), ``flagged`` is
``score >= threshold`` at the shipped threshold (or ``--threshold``). A row whose
bytecode is not valid hex gets ``"score": null, "flagged": null, "error": "..."``
instead (the run goes on; the count of such rows is printed and the exit status is 1).
``bytecode_keccak`` is the row's own field when it has one, else keccak-256 computed
here (eth-hash). The corpus is streamed in batches; nothing here imports web3.

``capabilities`` (flag names, GoPlus token-security fields) and ``capability_evidence``
(one object per flag, with the sentence ``reason``) come from
:func:`edge.scoring.capabilities.analyze`, once per distinct code (by hash) with a time
budget per code (``--capability-budget``, s); ``capability_status`` is ``ok``,
``timeout`` (no flags: the budget ran out) or ``empty``. ``--no-capabilities`` leaves
the three fields out. This is an offline tool: the analysis runs in this process (the
agent runs it in a worker process, off its event loop).
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


def score_corpus(
    corpus: Path,
    out: IO[str],
    *,
    model: Path | None = None,
    threshold: float | None = None,
    limit: int | None = None,
    capabilities: bool = True,
    capability_budget_s: float = 5.0,
) -> tuple[int, int, int]:
    """Score a corpus, writing JSON Lines to ``out``.

    Args:
        corpus: jsonl(.gz) file with a ``bytecode`` field per row.
        out: text stream for the output lines.
        model: ONNX model (default: the shipped one). threshold: override the model's.
        limit: only the first rows.
        capabilities: add the capability fields (module doc). capability_budget_s: the
            analysis time budget per distinct code, seconds (> 0).

    Returns:
        ``(rows, flagged, bad_rows)``.

    Raises:
        EdgeError: unreadable corpus, model problems (ModelError).
    """
    from edge.scoring.batch import score_codes
    from edge.scoring.corpus_reader import iter_codes
    from edge.scoring.model import RiskModel, default_model_path

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EdgeError(f"score: --threshold must be in [0, 1], got {threshold}")
    if capabilities and not capability_budget_s > 0:
        raise EdgeError(f"score: --capability-budget must be > 0, got {capability_budget_s}")
    from edge.scoring.capabilities import analyze

    reports: dict[bytes, dict[str, object]] = {}
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
        by_index = dict(zip((r.index for r in good), score_codes(risk, codes, threshold=threshold).scores))
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
                cs = by_index[r.index]
                obj.update(score=round(cs.score, 6), flagged=cs.flagged, top_features=cs.top_features)
                flagged += int(cs.flagged)
                if capabilities and r.code is not None and h is not None:
                    js = reports.get(h)
                    if js is None:
                        js = reports[h] = analyze(r.code, code_hash="0x" + h.hex(),
                                                  budget_s=capability_budget_s).to_json()
                    obj.update(capabilities=js["capabilities"], capability_status=js["status"],
                               capability_evidence=js["evidence"])
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
                capabilities=not args.no_capabilities,
                capability_budget_s=args.capability_budget,
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
    p.add_argument("--no-capabilities", action="store_true",
                   help="leave out the capability report (capabilities, capability_evidence)")
    p.add_argument("--capability-budget", type=float, default=5.0,
                   help="capability analysis time budget per distinct code, seconds (default 5)")
    p.set_defaults(func=_cmd)
