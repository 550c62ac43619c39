"""The ONNX risk model: loading, model id, threshold, scores, explanations, bad models."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ModelError
from edge.scoring.features import FEATURE_NAMES, N_FEATURES, featurize_many, parse_bytecode
from edge.scoring.model import RiskModel, default_model_path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "data"
DATA = REPO.parent / "shared" / "data" / "contracts"


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel(default_model_path())


def test_shipped_model_loads_with_id_and_threshold(model: RiskModel) -> None:
    path = default_model_path()
    assert path.resolve() == (REPO / "models" / "risk.onnx").resolve()  # edge/data/risk.onnx links to it
    assert model.model_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert 0.0 < model.threshold < 1.0
    assert model.n_features == N_FEATURES
    assert path.stat().st_size < 5 * 2**20


def test_scores_are_probabilities(model: RiskModel) -> None:
    X = featurize_many([b"", bytes.fromhex("6080604052"), bytes(range(256)) * 8])
    s = model.score(X)
    assert s.shape == (3,) and s.dtype == np.float32
    assert ((s >= 0) & (s <= 1)).all()
    assert model.score(X[0]).shape == (1,)
    assert model.score(np.zeros((0, N_FEATURES), np.float32)).shape == (0,)
    assert np.array_equal(model.flagged(s), s >= np.float32(model.threshold))
    assert model.flagged(s, 0.0).all()


def test_scores_separate_the_labelled_classes(model: RiskModel) -> None:
    if not DATA.is_dir():
        pytest.skip(f"shared data folder {DATA} is absent")
    rows = [json.loads(line) for line in gzip.open(DATA / "train.jsonl.gz", "rt")]
    X = featurize_many([parse_bytecode(r["bytecode"]) for r in rows])
    s = model.score(X)
    y = np.array([r["label"] == "malicious" for r in rows])
    ponzi = np.array([r["category"] == "ponzi" for r in rows])
    assert s[y].mean() > s[~y].mean() + 0.3
    assert model.flagged(s[ponzi]).mean() > 0.8  # training rows: a sanity check, not a metric
    assert model.flagged(s[~y]).mean() < 0.05


def test_wrong_shapes_and_values_are_model_errors(model: RiskModel) -> None:
    with pytest.raises(ModelError, match="shape"):
        model.score(np.zeros((2, N_FEATURES + 1), np.float32))
    with pytest.raises(ModelError, match="shape"):
        model.score(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ModelError, match="NaN"):
        model.score(np.full((1, N_FEATURES), np.nan, np.float32))
    with pytest.raises(ModelError, match="numeric"):
        model.score([["a"] * N_FEATURES])


def test_top_features_rank_positive_contributions(model: RiskModel) -> None:
    # SELFDESTRUCT, ORIGIN and CALLCODE in a tiny contract: unusual for benign code
    code = bytes.fromhex("32ff32f2") * 20
    x = featurize_many([code])[0]
    top = model.top_features(x, 5)
    assert 1 <= len(top) <= 5
    assert all(t.name in FEATURE_NAMES and t.weight > 0 for t in top)
    assert [t.weight for t in top] == sorted((t.weight for t in top), reverse=True)
    for t in top:
        assert t.value == pytest.approx(float(x[FEATURE_NAMES.index(t.name)]), abs=1e-6)
    tuples = model.top_feature_tuples(x[None, :], 5)[0]
    assert [n for n, _, _ in tuples] == [t.name for t in top]
    with pytest.raises(ModelError):
        model.top_features(x, 0)
    with pytest.raises(ModelError):
        model.top_features(np.zeros((2, N_FEATURES), np.float32))


def test_missing_and_garbage_files_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        RiskModel(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelError, match="not a loadable ONNX"):
        RiskModel(junk)


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("wrong_width.onnx", "shape"),
        ("no_threshold.onnx", "threshold"),
        ("other_layout.onnx", "another feature layout"),
    ],
)
def test_models_of_the_wrong_kind_are_refused(fixture: str, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        RiskModel(FIXTURES / fixture)


def test_a_model_without_explanation_metadata_still_scores() -> None:
    m = RiskModel(FIXTURES / "sigmoid_first_column.onnx")
    X = np.zeros((2, N_FEATURES), np.float32)
    X[1, 1] = 4.0  # probabilities = sigmoid(X[:, 0:2]); column 1 is "malicious"
    s = m.score(X)
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-5)
    assert m.threshold == 0.5
    assert m.top_features(X[1]) == []
