"""edge.scoring.batch: the one featurize -> model -> explain batch of the stage, ``edge score``
and ``edge bench``."""

from __future__ import annotations

import numpy as np
import pytest

from edge.scoring.batch import TOP_K, score_codes
from edge.scoring.features import featurize_many
from edge.scoring.model import RiskModel, default_model_path

CODES = [b"", bytes.fromhex("6080604052"), bytes.fromhex("33ff"), bytes(range(256)) * 4]


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel(default_model_path())


def test_scores_flags_and_top_features_are_the_models(model: RiskModel) -> None:
    X = featurize_many(CODES)
    want = model.score(X)
    got = score_codes(model, CODES, threshold=float(np.median(want)))
    assert got.model_id == model.model_id
    assert [s.score for s in got.scores] == want.tolist()
    assert [s.flagged for s in got.scores] == (want >= np.float32(np.median(want))).tolist()
    assert got.flagged == sum(s.flagged for s in got.scores)
    assert [s.top_features for s in got.scores] == [tuple(t) for t in model.top_feature_tuples(X, TOP_K)]
    assert min(got.featurize_ns, got.score_ns, got.explain_ns) >= 0


def test_rows_carry_hash_model_and_time_and_need_one_hash_per_code(model: RiskModel) -> None:
    got = score_codes(model, CODES)
    hashes = [bytes([i]) * 32 for i in range(len(CODES))]
    rows = got.rows(hashes, 123.0)
    assert [(r.code_hash, r.model_id, r.score, r.flagged, r.top_features, r.scored_at) for r in rows] == [
        (h, model.model_id, s.score, s.flagged, s.top_features, 123.0) for h, s in zip(hashes, got.scores)
    ]
    with pytest.raises(ValueError, match="3 code hashes for 4 scores"):
        got.rows(hashes[:3], 0.0)


def test_empty_batch(model: RiskModel) -> None:
    got = score_codes(model, [])
    assert got.scores == [] and got.flagged == 0 and got.rows([], 0.0) == []
