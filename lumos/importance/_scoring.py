"""Scores of a model against a reference, shared by :func:`~lumos.importance.permutation`
and :func:`~lumos.importance.select`.

A :class:`Reference` holds what the model's outputs are compared with (class labels, targets,
or the model's own outputs on the intact data) and turns model outputs into per-row values
(``row_values``) that :meth:`Reference.score` reduces to a score where larger is better. The
split lets the engine keep one small number per evaluated row instead of every output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lumos._validation import _is_tensor, check_name
from lumos.errors import InputError, NonFiniteError, ShapeError
from lumos.models.base import Model

#: Scoring names, in the order the documentation lists them.
SCORINGS = ("accuracy", "log_loss", "r2", "mse", "output")
CLASSIFICATION_SCORINGS = ("accuracy", "log_loss")
REGRESSION_SCORINGS = ("r2", "mse")
#: Whether larger values of the score *in its own units* are better (``info["baseline_score"]``).
HIGHER_IS_BETTER = {
    "accuracy": True,
    "log_loss": False,
    "r2": True,
    "mse": False,
    "output": False,
}


def default_scoring(model: Model) -> str:
    """``"accuracy"`` for classifiers, ``"r2"`` for regression models."""
    return "r2" if model.output_kind == "regression" else "accuracy"


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def class_probabilities(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Class probabilities (m, n_classes) from model outputs (m, n_outputs).

    A single output is the probability (or the logit) of class 1 of a binary classifier;
    several logits go through a softmax.
    """
    if outputs.shape[1] == 1:
        p1 = outputs[:, 0] if kind == "probability" else _sigmoid(outputs[:, 0])
        return np.column_stack([1.0 - p1, p1])
    if kind == "probability":
        return outputs
    z = outputs - outputs.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predicted_labels(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Predicted class index per row, shape (m,): argmax, or ``p > 0.5`` / ``logit > 0`` for
    a single-output binary classifier."""
    if outputs.shape[1] == 1:
        cut = 0.5 if kind == "probability" else 0.0
        return (outputs[:, 0] > cut).astype(np.int64)
    return np.argmax(outputs, axis=1).astype(np.int64)


def as_vector(y: Any, n: int, *, name: str = "y") -> np.ndarray:
    """``y`` (array, list, pandas Series, torch tensor) as an ndarray with ``n`` rows."""
    if _is_tensor(y):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim == 0:
        raise ShapeError(f"{name} is a scalar; pass one value per row of x (length {n}).")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if len(arr) != n:
        raise ShapeError(
            f"x has {n} rows but {name} has {len(arr)}; pass one {name} value per row of x."
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise NonFiniteError(
            f"{name} contains NaN or infinite values; drop those rows (from x as well)."
        )
    return arr


def class_indices(model: Model, y: Any, n: int, n_classes: int) -> np.ndarray:
    """Class labels ``y`` as output indices (n,) of ``model``.

    scikit-learn models map labels through their ``classes_``; other models take indices
    ``0..n_classes-1`` or class names from ``model.class_names``.
    """
    arr = as_vector(y, n)
    if arr.ndim != 1:
        raise ShapeError(
            f"y must hold one class label per row, shape ({n},); got {arr.shape}. For one-hot "
            "labels pass y.argmax(axis=1)."
        )
    classes = getattr(model, "classes_", None)
    if classes is not None:
        classes = np.asarray(classes)
        try:
            idx = np.searchsorted(classes, arr)
            ok = (idx < len(classes)) & (classes[np.minimum(idx, len(classes) - 1)] == arr)
        except TypeError:
            ok = np.zeros(n, dtype=bool)
        if not ok.all():
            bad = arr[~ok][0]
            raise InputError(
                f"label {bad!r} in y is not one of the estimator's classes_ "
                f"{classes.tolist()[:10]}; pass labels the model was trained on."
            )
        return idx.astype(np.int64)
    if arr.dtype.kind in "OUS":
        names = model.class_names
        if not names:
            raise InputError(
                "y holds class names but the model has no class_names; pass integer labels "
                "0..n_classes-1 or wrap the model with lumos.wrap(model, class_names=[...])."
            )
        lookup = {c: i for i, c in enumerate(names)}
        unknown = [v for v in arr.tolist() if str(v) not in lookup]
        if unknown:
            raise InputError(
                f"label {unknown[0]!r} in y is not a class name of the model {names}; "
                "pass labels from class_names or integer indices."
            )
        return np.array([lookup[str(v)] for v in arr.tolist()], dtype=np.int64)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"y has dtype {arr.dtype}; pass integer class labels 0..n_classes-1.")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise InputError(
            "y holds non-integer values but the scoring needs class labels; pass integer "
            "labels 0..n_classes-1, or use scoring='r2' / 'mse' for a regression model."
        )
    idx = arr.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n_classes:
        raise InputError(
            f"y holds label {int(idx.min() if idx.min() < 0 else idx.max())}, outside "
            f"0..{n_classes - 1} for a model with {n_classes} classes; pass labels as output "
            "indices (e.g. encode them with sklearn.preprocessing.LabelEncoder)."
        )
    return idx


@dataclass
class Reference:
    """What model outputs are scored against.

    Attributes
    ----------
    scoring : str
    kind : str
        The model's output kind.
    source : {"y", "model"}
        Whether the reference came from ``y`` or from the model's outputs on the intact data.
    labels : ndarray of shape (n,), optional
        Class indices (accuracy, log_loss).
    targets : ndarray of shape (n, k), optional
        Regression targets (r2, mse).
    base_outputs : ndarray of shape (n, n_outputs), optional
        Outputs on the intact data ("output").
    columns : ndarray of shape (n,), optional
        Output compared per row for "output" on classifiers (the predicted class).
    sst : ndarray of shape (k,), optional
        Total sum of squares of each target around its mean (r2).
    """

    scoring: str
    kind: str
    source: str
    labels: np.ndarray | None = None
    targets: np.ndarray | None = None
    base_outputs: np.ndarray | None = None
    columns: np.ndarray | None = None
    sst: np.ndarray | None = None

    def row_values(self, outputs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per-row contributions (m, j) of outputs (m, n_outputs) for reference rows ``rows``."""
        m = len(outputs)
        if self.scoring == "accuracy":
            hit = predicted_labels(outputs, self.kind) == self.labels[rows]
            return hit.astype(np.float64)[:, None]
        if self.scoring == "log_loss":
            p = class_probabilities(outputs, self.kind)[np.arange(m), self.labels[rows]]
            eps = np.finfo(np.float64).eps
            return -np.log(np.clip(p, eps, 1.0 - eps))[:, None]
        if self.scoring in REGRESSION_SCORINGS:
            return (outputs - self.targets[rows]) ** 2
        # "output": absolute change of the compared output(s)
        base = self.base_outputs[rows]
        if self.columns is None:
            return np.abs(outputs - base).mean(axis=1, keepdims=True)
        cols = self.columns[rows]
        idx = np.arange(m)
        return np.abs(outputs[idx, cols] - base[idx, cols])[:, None]

    def score(self, values: np.ndarray) -> np.ndarray:
        """Score (larger is better) of row values of shape (..., n, j), shape (...)."""
        if self.scoring == "accuracy":
            return values.mean(axis=(-2, -1))
        if self.scoring == "r2":
            sse = values.sum(axis=-2)
            return (1.0 - sse / self.sst).mean(axis=-1)
        return -values.mean(axis=(-2, -1))

    def natural(self, score: float) -> float:
        """A score from :meth:`score` back in its own units (log loss and MSE positive)."""
        return float(score if HIGHER_IS_BETTER[self.scoring] else -score)


def build_reference(
    model: Model,
    outputs: np.ndarray,
    y: Any,
    scoring: str | None,
    *,
    allowed: tuple[str, ...] = SCORINGS,
) -> Reference:
    """The reference for ``scoring`` from labels/targets ``y`` or, with ``y=None``, from the
    model's own ``outputs`` (n, n_outputs) on the intact data.

    Raises
    ------
    UnknownNameError
        Unknown scoring.
    InputError, ShapeError, NonFiniteError
        ``y`` does not fit the scoring or the data.
    """
    scoring = default_scoring(model) if scoring is None else scoring
    check_name(scoring, allowed, kind="scoring")
    kind = model.output_kind
    n, n_out = outputs.shape
    ref = Reference(scoring=scoring, kind=kind, source="model" if y is None else "y")
    if scoring in CLASSIFICATION_SCORINGS:
        if kind == "regression":
            raise InputError(
                f"scoring={scoring!r} needs a classifier but this model's output_kind is "
                "'regression'; use scoring='r2', 'mse' or 'output' (or, for a classifier, wrap "
                "it with lumos.wrap(model, output_kind='probability' or 'logit'))."
            )
        if y is None:
            ref.labels = predicted_labels(outputs, kind)
        else:
            ref.labels = class_indices(model, y, n, max(2, n_out))
        return ref
    if scoring in REGRESSION_SCORINGS:
        if kind != "regression":
            raise InputError(
                f"scoring={scoring!r} compares regression outputs but this model's output_kind "
                f"is {kind!r}; use scoring='accuracy', 'log_loss' or 'output' for a classifier "
                "(or wrap a regressor with lumos.wrap(model, output_kind='regression'))."
            )
        if y is None:
            targets = outputs
        else:
            arr = as_vector(y, n)
            if arr.dtype.kind not in "biuf":
                raise InputError(f"y has dtype {arr.dtype}; regression targets must be numeric.")
            targets = arr.astype(np.float64).reshape(n, -1)
            if targets.shape[1] != n_out:
                raise ShapeError(
                    f"y has {targets.shape[1]} target column(s) but the model has {n_out} "
                    f"output(s); pass y of shape ({n},) or ({n}, {n_out})."
                )
        ref.targets = targets
        if scoring == "r2":
            sst = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
            if np.any(sst == 0):
                what = "the model's outputs on x are" if y is None else "y is"
                raise InputError(
                    f"R² is undefined because {what} constant; use scoring='mse' instead."
                )
            ref.sst = sst
        return ref
    # "output"
    if y is not None:
        raise InputError(
            "scoring='output' compares the model with its own outputs on the intact data and "
            "does not use y; pass y=None (or choose a scoring that uses labels)."
        )
    ref.base_outputs = outputs
    if kind != "regression":
        ref.columns = (
            np.zeros(n, dtype=np.int64)
            if n_out == 1
            else np.argmax(outputs, axis=1).astype(np.int64)
        )
    return ref
