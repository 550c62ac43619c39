"""models/train.py's model card: ``models/card.md.tmpl`` filled with the training figures.

``tests/data/model_card.md`` was written by the f-string card writer the template replaced,
from :data:`INFO`; the template must give the same bytes (no retraining needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("data") / "model_card.md"

INFO: dict[str, Any] = {
    "size_bytes": 123456, "model_id": "ab" * 32, "threshold": 0.43219876,
    "fold_thresholds": [0.41234, 0.5, 0.39999, 0.4444, 0.47],
    "cv": {"precision": 0.9012345, "recall": 0.51234, "f1": 0.651, "roc_auc": 0.9034},
    "cv_scopes": [
        {"name": "ponzi vs benign", "n": 1234,
         "metrics": {"precision": 0.95, "recall": 0.8, "f1": 0.87, "roc_auc": 0.96}},
        {"name": "rugpull vs benign", "n": 1363,
         "metrics": {"precision": 0.7, "recall": 0.2, "f1": 0.31, "roc_auc": float("nan")}},
    ],
    "per_category": [
        {"category": "ponzi", "label": "malicious", "n": 120, "flagged": 101, "flagged_share": 101 / 120,
         "roc_auc": 0.98},
        {"category": "benign", "label": "benign", "n": 1173, "flagged": 9, "flagged_share": 9 / 1173,
         "roc_auc": 0.9},
    ],
    "excluded": {"n": 20, "flagged": 2}, "n_extra": 37, "extra_flagged": 1,
    "unlabeled": {"name": "unlabeled_train.jsonl.gz", "n": 10318, "flagged": 522, "alert_rate": 522 / 10318,
                  "alert_rate_old": 0.0612345, "alert_rate_new": 0.0345},
    "data_name": "train.jsonl.gz", "data_sha256": "cd" * 32, "n_train": 1574, "n_train_malicious": 401,
    "n_train_benign": 1173, "n_excluded": 20, "layout_sha256": "ef" * 32,
    "top_importance": [("count:SELFDESTRUCT", 0.0123456), ("size", 0.00999), ("sel:mint", 0.00005)],
    "seed": 20240601, "backend": "c", "machine": "x86_64, 2 cores",
    "speed": {"featurize_us": 31.4567, "score_us_batch256": 2.345, "score_us_batch1": 45.67},
    "versions": {"python": "3.11.7", "numpy": "1.26.4", "sklearn": "1.5.0", "skl2onnx": "1.17.0",
                 "onnx": "1.16.1", "onnxruntime": "1.18.0"},
}


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("models_train", _ROOT / "models" / "train.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["models_train"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_card_is_byte_identical_to_the_former_writer(train: ModuleType) -> None:
    assert train._render_card(INFO) == GOLDEN.read_text(encoding="utf-8")


def test_card_keeps_the_bench_and_capability_blocks_of_the_card_it_replaces(train: ModuleType) -> None:
    old = ("# old card\n<!-- bench:begin -->\nbench 4,203/s\n<!-- bench:end -->\n"
           "<!-- capabilities:begin -->\ncaps table\n<!-- capabilities:end -->\n")
    card = train._render_card(INFO, old)
    assert "<!-- bench:begin -->\nbench 4,203/s\n<!-- bench:end -->" in card
    assert "<!-- capabilities:begin -->\ncaps table\n<!-- capabilities:end -->" in card
    assert "not measured yet" not in card
    assert card.replace("bench 4,203/s", "(not measured yet: run `edge bench`)").replace(
        "caps table", "(not measured yet: run `python models/capabilities_eval.py --write models/README.md`)"
    ) == GOLDEN.read_text(encoding="utf-8")


def test_branches_target_met_and_no_extra_benign(train: ModuleType) -> None:
    card = train._render_card(INFO | {"cv": INFO["cv"] | {"f1": 0.95}, "n_extra": 0})
    assert "- Meets the project target (F1 >= 0.90, precision >= 0.90)." in card
    assert "Below the project target" not in card
    assert "never count them. (None used in this run: `--no-extra-benign` or no node_modules.)" in card
