"""The model's own accuracy and reliability: classification and regression scores from one
pass of the model over labelled data.

Each function takes ``(model, x, y)`` and evaluates the model through the engine (one
chunked forward pass); :func:`summary` computes every score that fits the model's task in
that single pass. Probabilities come from the model's outputs as they are when it outputs
probabilities, through a softmax of its logits otherwise (a single logit column: the
sigmoid of it, the probability of class 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lumos._validation import check_positive_int
from lumos.errors import InputError, ShapeError, TargetError
from lumos.models.base import Model, wrap

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "expected_calibration_error",
    "f1",
    "log_loss",
    "mae",
    "probabilities",
    "r2",
    "roc_auc",
    "summary",
]


# ----------------------------------------------------------------------------- inputs
def _outputs(model: Any, x: Any, batch_size: int | None) -> tuple[Model, np.ndarray]:
    m = wrap(model)
    arr, _ = m.check_input(x)
    return m, m.evaluate(arr, batch_size=batch_size)


def probabilities(model: Model, outputs: np.ndarray) -> np.ndarray:
    """Class probabilities (n, n_classes) from a classifier's outputs (n, n_outputs).

    Probability outputs are used as they are (a single column is P(class 1)); logits go
    through a softmax (a single column through the sigmoid).
    """
    if model.output_kind == "regression":
        raise InputError(
            "this score needs a classifier; the model's outputs are regression values "
            "(use r2 / mae, or wrap the model with output_kind='logit' or 'probability')."
        )
    if model.output_kind == "logit":
        if outputs.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-outputs[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if outputs.shape[1] == 1:
        return np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
    return outputs


def _labels(y: Any, n: int, n_classes: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        raise ShapeError(f"y must have shape ({n},), one label per row; got {arr.shape}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("class labels must be integers 0..n_classes-1 (got non-integers).")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise InputError(
            f"class labels must be integers 0..n_classes-1, got dtype {arr.dtype}; encode "
            "string labels first (e.g. np.unique(y, return_inverse=True))."
        )
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise TargetError(
            f"labels must lie in 0..{n_classes - 1} for a model with {n_classes} classes; got "
            f"{arr.min()}..{arr.max()}."
        )
    return arr.astype(np.int64)


def _classification(
    model: Any, x: Any, y: Any, batch_size: int | None
) -> tuple[np.ndarray, np.ndarray]:
    m, out = _outputs(model, x, batch_size)
    p = probabilities(m, out)
    return p, _labels(y, len(p), p.shape[1])


def _regression_targets(out: np.ndarray, y: Any) -> np.ndarray:
    t = np.asarray(y, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if t.shape != out.shape:
        raise ShapeError(
            f"y must have shape ({len(out)},) or {out.shape} to match the model's outputs; got "
            f"{np.shape(y)}."
        )
    if not np.all(np.isfinite(t)):
        raise InputError("y has NaN or infinite values.")
    return t


def _regression(model: Any, x: Any, y: Any, batch_size: int | None) -> tuple[np.ndarray, ...]:
    _, out = _outputs(model, x, batch_size)
    return out, _regression_targets(out, y)


# ----------------------------------------------------------------------------- scores
def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(p.argmax(axis=1) == y))


def _balanced_accuracy(p: np.ndarray, y: np.ndarray) -> float:
    pred = p.argmax(axis=1)
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(recalls))


def _f1(p: np.ndarray, y: np.ndarray, average: str) -> float:
    pred = p.argmax(axis=1)
    k = p.shape[1]
    if average == "binary":
        if k != 2:
            raise InputError(
                f"average='binary' needs two classes; this model has {k}: use 'macro' or "
                "'weighted'."
            )
        classes = [1]
    else:
        classes = list(np.union1d(np.unique(y), np.unique(pred)))
    scores, weights = [], []
    for c in classes:
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        den = 2 * tp + fp + fn
        scores.append(0.0 if den == 0 else 2 * tp / den)
        weights.append(np.sum(y == c))
    if average == "weighted":
        return float(np.average(scores, weights=weights)) if sum(weights) else 0.0
    return float(np.mean(scores))


def _auc_binary(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a positive outranks a negative
    (ties count one half), from average ranks (Mann–Whitney U)."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(p: np.ndarray, y: np.ndarray) -> float:
    if p.shape[1] == 2:
        return _auc_binary(p[:, 1], y == 1)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    # one-vs-rest, macro average over the classes present in y
    return float(np.mean([_auc_binary(p[:, c], y == c) for c in present]))


def _log_loss(p: np.ndarray, y: np.ndarray, eps: float = 1e-15) -> float:
    q = np.clip(p[np.arange(len(y)), y], eps, 1.0)
    return float(-np.mean(np.log(q)))


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    # equal-width bins over (0, 1]: bin m holds confidences in ((m-1)/M, m/M]
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def accuracy(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Fraction of rows whose largest output is the label.

    Parameters
    ----------
    model : object
        A classifier (anything :func:`lumos.wrap` accepts).
    x : array-like of shape (n, *input_shape)
    y : array-like of int, shape (n,)
    batch_size : int, optional

    Returns
    -------
    float
    """
    return _accuracy(*_classification(model, x, y, batch_size))


def balanced_accuracy(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Mean recall over the classes present in ``y`` (accuracy robust to class imbalance)."""
    return _balanced_accuracy(*_classification(model, x, y, batch_size))


def f1(
    model: Any, x: Any, y: Any, *, average: str = "macro", batch_size: int | None = None
) -> float:
    """F1 score: ``"binary"`` (class 1 of a two-class model), ``"macro"`` (mean over
    classes) or ``"weighted"`` (weighted by each class's support)."""
    if average not in ("binary", "macro", "weighted"):
        raise InputError(f"average must be 'binary', 'macro' or 'weighted', got {average!r}.")
    return _f1(*_classification(model, x, y, batch_size), average)


def roc_auc(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Area under the ROC curve; one-vs-rest macro average for more than two classes.

    NaN when ``y`` holds a single class (no curve exists)."""
    return _roc_auc(*_classification(model, x, y, batch_size))


def log_loss(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Mean negative log-probability of the label (probabilities clipped at 1e-15)."""
    return _log_loss(*_classification(model, x, y, batch_size))


def expected_calibration_error(
    model: Any, x: Any, y: Any, *, n_bins: int = 15, batch_size: int | None = None
) -> float:
    """Expected calibration error (Guo et al. 2017).

    ``ECE = Σ_m |B_m|/n · |acc(B_m) − conf(B_m)|`` over ``n_bins`` equal-width bins of the
    confidence (the largest probability), bin ``m`` holding confidences in
    ``((m − 1)/M, m/M]``. 0 for a perfectly calibrated model.

    References
    ----------
    Guo, C., Pleiss, G., Sun, Y. & Weinberger, K. Q. (2017). On calibration of modern neural
    networks. ICML.
    """
    n_bins = check_positive_int(n_bins, name="n_bins")
    return _ece(*_classification(model, x, y, batch_size), n_bins)


def _r2(out: np.ndarray, t: np.ndarray) -> float:
    ss_res = ((t - out) ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(per.mean())


def r2(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Coefficient of determination ``1 − SS_res / SS_tot`` (averaged over outputs; an
    output whose labels are constant scores 1 when predicted exactly, else 0)."""
    return _r2(*_regression(model, x, y, batch_size))


def mae(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Mean absolute error over rows and outputs."""
    out, t = _regression(model, x, y, batch_size)
    return float(np.abs(t - out).mean())


def summary(
    model: Any, x: Any, y: Any, *, n_bins: int = 15, batch_size: int | None = None
) -> dict[str, float]:
    """Every score that fits the model's task, from one pass of the model.

    Classifiers: ``accuracy``, ``balanced_accuracy``, ``f1`` (binary for two classes, macro
    otherwise), ``roc_auc``, ``log_loss``, ``expected_calibration_error``; regressors:
    ``r2``, ``mae``.

    Returns
    -------
    dict of str to float
    """
    n_bins = check_positive_int(n_bins, name="n_bins")
    m, out = _outputs(model, x, batch_size)
    if m.output_kind == "regression":
        t = _regression_targets(out, y)
        return {"r2": _r2(out, t), "mae": float(np.abs(t - out).mean())}
    p = probabilities(m, out)
    labels = _labels(y, len(p), p.shape[1])
    return {
        "accuracy": _accuracy(p, labels),
        "balanced_accuracy": _balanced_accuracy(p, labels),
        "f1": _f1(p, labels, "binary" if p.shape[1] == 2 else "macro"),
        "roc_auc": _roc_auc(p, labels),
        "log_loss": _log_loss(p, labels),
        "expected_calibration_error": _ece(p, labels, n_bins),
    }
