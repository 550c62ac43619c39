"""The ONNX contract risk model: load, score, explain.

The model file is produced by ``models/train.py`` (scikit-learn gradient-boosted trees
converted by skl2onnx, ``zipmap`` off). Its ``metadata_props`` carry everything the
device needs besides the graph: the decision ``threshold``, the hash of the feature
layout it was trained on (checked against :data:`edge.scoring.features.FEATURE_NAMES`),
and per-feature statistics used by :meth:`RiskModel.top_features`.

The model id is the sha256 of the file bytes (hex), so a score row in the outbox always
names the exact model that produced it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError
from edge.scoring.features import FEATURE_NAMES, N_FEATURES

__all__ = ["Contribution", "RiskModel", "default_model_path", "feature_layout_sha256"]

_OUTPUT: Final = "probabilities"
_EXPLAIN_FEATURES: Final = 64
"""Only the most important features (by permutation importance) are candidates."""


def feature_layout_sha256() -> str:
    """sha256 hex of the feature names joined by ``\\n``: identifies the feature layout."""
    return hashlib.sha256("\n".join(FEATURE_NAMES).encode()).hexdigest()


def default_model_path() -> Path:
    """The shipped model: ``edge/data/risk.onnx`` if packaged there, else the repo's
    ``models/risk.onnx`` (editable install / source checkout)."""
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "data" / "risk.onnx"
    if packaged.exists():
        return packaged
    return here.parents[2] / "models" / "risk.onnx"


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's share in a row's risk ranking (see :meth:`RiskModel.top_features`).

    Attributes:
        name: feature name (from ``FEATURE_NAMES``).
        value: the row's value of that feature.
        weight: importance x signed standardised deviation (unitless, > 0).
    """

    name: str
    value: float
    weight: float

    def as_tuple(self) -> tuple[str, float, float]:
        """``(name, value, weight)`` with the numbers rounded to 6 decimals."""
        return (self.name, _round(self.value), _round(self.weight))


def _round(x: float) -> float:
    return round(float(x), 6)


class RiskModel:
    """A loaded ONNX risk model (onnxruntime, one intra-op thread, CPU).

    Args:
        path: the ``.onnx`` file.

    Attributes:
        path: the file. model_id: sha256 hex of its bytes. threshold: decision threshold
        from the metadata (a score >= threshold is *flagged*). n_features: input width.

    Raises:
        ModelError: the file is missing or unreadable, is not an ONNX model onnxruntime
            can load, lacks the ``probabilities`` output or the ``threshold`` metadata,
            has an input width other than ``N_FEATURES``, or was trained on another
            feature layout.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            blob = self.path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read model {self.path}: {e.strerror or e}") from e
        self.model_id: str = hashlib.sha256(blob).hexdigest()
        try:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.log_severity_level = 3
            self._sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"model {self.path} is not a loadable ONNX model: {e}") from e
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model {self.path}: expected one input, found {len(inputs)}")
        self._input = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 2 or shape[1] != N_FEATURES:
            raise ModelError(
                f"model {self.path}: input {self._input!r} has shape {shape}, "
                f"expected [N, {N_FEATURES}]"
            )
        if _OUTPUT not in {o.name for o in self._sess.get_outputs()}:
            raise ModelError(f"model {self.path}: no {_OUTPUT!r} output (convert with zipmap off)")
        meta: dict[str, str] = dict(self._sess.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        self.threshold: float = _meta_float(meta, "threshold", self.path)
        layout = meta.get("feature_layout_sha256")
        if layout is not None and layout != feature_layout_sha256():
            raise ModelError(
                f"model {self.path} was trained on another feature layout "
                f"({layout[:12]}..., this featurizer is {feature_layout_sha256()[:12]}...): retrain it"
            )
        self.n_features = N_FEATURES
        imp = _meta_vector(meta, "feature_importance", self.path)
        mean = _meta_vector(meta, "feature_mean", self.path)
        std = _meta_vector(meta, "feature_std", self.path)
        direction = _meta_vector(meta, "feature_direction", self.path)
        self._mean = mean.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(std > 0, imp * direction / np.where(std > 0, std, 1.0), 0.0)
        self._weight = w.astype(np.float32)
        ranked = np.argsort(-imp, kind="stable")[:_EXPLAIN_FEATURES]
        self._cols = np.sort(ranked[self._weight[ranked] != 0])
        self._col_names = [FEATURE_NAMES[j] for j in self._cols.tolist()]

    def score(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Probability that each row's contract is malicious.

        Args:
            X: features, shape ``(n, N_FEATURES)`` (a single row of shape
                ``(N_FEATURES,)`` is accepted too); converted to float32.

        Returns:
            float32 array of shape ``(n,)`` with values in [0, 1].

        Raises:
            ModelError: wrong shape, non-finite values, or onnxruntime failed.
        """
        arr = self._check(X)
        if arr.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        try:
            out = self._sess.run([_OUTPUT], {self._input: arr})[0]
        except Exception as e:  # onnxruntime's own exception types
            raise ModelError(f"model {self.path}: inference failed: {e}") from e
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32)[:, 1])

    def flagged(self, scores: npt.NDArray[np.float32], threshold: float | None = None) -> npt.NDArray[np.bool_]:
        """``scores >= threshold`` (the model's own threshold unless one is given)."""
        t = self.threshold if threshold is None else threshold
        return np.asarray(scores >= np.float32(t), dtype=np.bool_)

    def top_features(self, x: npt.ArrayLike, k: int = 5) -> list[Contribution]:
        """The ``k`` features that push this row's risk up the most (a heuristic).

        What it is, honestly: for a tree ensemble there is no cheap exact attribution.
        This ranks features by ``importance_j * direction_j * (x_j - mean_j) / std_j``,
        where ``importance`` is the model's permutation importance (rise in log loss),
        ``direction`` the sign of the feature's correlation with the score, and
        ``mean``/``std`` the training statistics (all stored in the model metadata by
        ``models/train.py``). It says which *important* features are unusually high (or
        low, where low means risky) in this contract; it is not a SHAP value and does not
        account for interactions. Candidates are the 64 most important features; only
        positive weights are returned.

        Args:
            x: one feature row, shape ``(N_FEATURES,)`` or ``(1, N_FEATURES)``.
            k: how many features at most (>= 1).

        Returns:
            Up to ``k`` :class:`Contribution`, largest weight first.

        Raises:
            ModelError: wrong shape or k < 1.
        """
        arr = self._check(x)
        if arr.shape[0] != 1:
            raise ModelError(f"top_features takes one row, got {arr.shape[0]}")
        return self.top_features_many(arr, k)[0]

    def top_features_many(self, X: npt.ArrayLike, k: int = 5) -> list[list[Contribution]]:
        """:meth:`top_features` for every row of ``X`` (shape ``(n, N_FEATURES)``)."""
        return [
            [Contribution(n, v, w) for n, v, w in row] for row in self.top_feature_tuples(X, k)
        ]

    def top_feature_tuples(self, X: npt.ArrayLike, k: int = 5) -> list[list[tuple[str, float, float]]]:
        """:meth:`top_features` of every row as ``(name, value, weight)`` tuples, numbers
        rounded to 6 decimals (vectorised: the scoring hot path stores these).

        Args:
            X: shape ``(n, N_FEATURES)``. k: at most this many per row (>= 1).

        Returns:
            One list per row, largest weight first, positive weights only.

        Raises:
            ModelError: wrong shape or k < 1.
        """
        if k < 1:
            raise ModelError(f"top_features: k must be >= 1, got {k}")
        arr = self._check(X)
        n = arr.shape[0]
        cols = self._cols
        if n == 0 or cols.size == 0:
            return [[] for _ in range(n)]
        sub = arr[:, cols]
        contrib = (sub - self._mean[cols]) * self._weight[cols]
        k = min(k, cols.size)
        part = np.argpartition(-contrib, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(contrib, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        part = np.take_along_axis(part, order, axis=1)
        vals = np.round(np.take_along_axis(vals, order, axis=1).astype(np.float64), 6)
        xs = np.round(np.take_along_axis(sub, part, axis=1).astype(np.float64), 6)
        names = self._col_names
        out: list[list[tuple[str, float, float]]] = []
        for pr, xr, vr in zip(part.tolist(), xs.tolist(), vals.tolist()):
            out.append([(names[j], x, v) for j, x, v in zip(pr, xr, vr) if v > 0])
        return out

    def _check(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        try:
            arr = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ModelError(f"features are not numeric: {e}") from None
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ModelError(f"features have shape {arr.shape}, expected (n, {self.n_features})")
        if arr.size and not np.isfinite(arr).all():
            raise ModelError("features contain NaN or infinity")
        return np.ascontiguousarray(arr)


def _meta_float(meta: dict[str, str], key: str, path: Path) -> float:
    try:
        value = float(meta[key])
    except KeyError:
        raise ModelError(f"model {path}: metadata {key!r} is missing") from None
    except ValueError:
        raise ModelError(f"model {path}: metadata {key!r} is not a number: {meta[key]!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ModelError(f"model {path}: metadata {key!r} must be in [0, 1], got {value}")
    return value


def _meta_vector(meta: dict[str, str], key: str, path: Path) -> npt.NDArray[np.float64]:
    """A per-feature JSON list from the metadata; zeros when absent (no explanations)."""
    raw = meta.get(key)
    if raw is None:
        return np.zeros(N_FEATURES)
    try:
        values: Any = json.loads(raw)
        arr = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise ModelError(f"model {path}: metadata {key!r} is not a JSON list of numbers") from None
    if arr.shape != (N_FEATURES,) or not np.isfinite(arr).all():
        raise ModelError(f"model {path}: metadata {key!r} must hold {N_FEATURES} finite numbers")
    return arr
