"""One batch of runtime codes through featurize -> model -> explain.

The one place the scoring stage (:mod:`edge.scoring.stage`), ``edge score``
(:mod:`edge.cli.score`) and ``edge bench`` (:mod:`edge.appliance.bench`) turn codes into
scores: :func:`score_codes` featurizes a batch (:func:`edge.scoring.features.featurize_many`),
scores it (:meth:`edge.scoring.model.RiskModel.score`), applies the threshold and ranks
each code's top features (:meth:`edge.scoring.model.RiskModel.top_feature_tuples`), timing
each of the three steps for the bench. :meth:`ScoredBatch.rows` makes the outbox rows
(:class:`edge.store.scores.ScoreRow`) the stage and the bench store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.scoring.features import featurize_many
from edge.store.scores import ScoreRow

if TYPE_CHECKING:
    from edge.scoring.model import RiskModel

__all__ = ["TOP_K", "CodeScore", "ScoredBatch", "score_codes"]

TOP_K = 5
"""Top features kept per code (what the outbox stores and ``edge score`` writes)."""

TopFeatures = tuple[tuple[str, float, float], ...]


@dataclass(frozen=True, slots=True)
class CodeScore:
    """The score of one code.

    Attributes:
        score: the model's probability of malicious, in [0, 1].
        flagged: ``score >= threshold`` (the threshold given, else the model's).
        top_features: ``((name, value, weight), ...)``, largest weight first, numbers
            rounded to 6 decimals (see ``RiskModel.top_feature_tuples``).
    """

    score: float
    flagged: bool
    top_features: TopFeatures


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """A scored batch, in the order of the codes given.

    Attributes:
        model_id: sha256 hex of the model file that scored it.
        scores: one :class:`CodeScore` per code.
        featurize_ns, score_ns, explain_ns: time spent in each step (ns,
            ``time.perf_counter_ns``); the threshold is in ``score_ns``, building the
            records in ``explain_ns``.
    """

    model_id: str
    scores: list[CodeScore]
    featurize_ns: int
    score_ns: int
    explain_ns: int

    @property
    def flagged(self) -> int:
        """How many codes of the batch are flagged."""
        return sum(1 for s in self.scores if s.flagged)

    def rows(self, code_hashes: Sequence[bytes], scored_at: float) -> list[ScoreRow]:
        """The outbox rows of the batch.

        Args:
            code_hashes: keccak-256 of each code (32 bytes each), in the batch's order.
            scored_at: UNIX time (s) stored with every row.

        Raises:
            ValueError: not one hash per code.
        """
        if len(code_hashes) != len(self.scores):
            raise ValueError(f"score rows: {len(code_hashes)} code hashes for {len(self.scores)} scores")
        mid = self.model_id
        return [ScoreRow(h, mid, s.score, s.flagged, s.top_features, scored_at)
                for h, s in zip(code_hashes, self.scores)]


def score_codes(
    model: RiskModel, codes: Sequence[bytes], *, threshold: float | None = None, top_k: int = TOP_K
) -> ScoredBatch:
    """Featurize, score and explain a batch of runtime codes.

    Args:
        model: the loaded risk model.
        codes: runtime bytecodes (may be empty: an empty batch).
        threshold: flag threshold in [0, 1]; None = the model's own.
        top_k: top features kept per code (>= 1).

    Returns:
        The :class:`ScoredBatch`, one score per code in the order given.

    Raises:
        ModelError: ``top_k`` < 1 or the model's input shape does not match the
            featurizer's (see :class:`edge.scoring.model.RiskModel`).
    """
    clock = time.perf_counter_ns
    t0 = clock()
    X = featurize_many(codes)
    t1 = clock()
    scores = model.score(X)
    flags = model.flagged(scores, threshold)
    t2 = clock()
    tops = model.top_feature_tuples(X, top_k)
    out = [CodeScore(s, f, tuple(top)) for s, f, top in zip(scores.tolist(), flags.tolist(), tops)]
    t3 = clock()
    return ScoredBatch(model.model_id, out, t1 - t0, t2 - t1, t3 - t2)
