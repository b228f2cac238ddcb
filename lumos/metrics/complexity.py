"""Complexity of an explanation: how concentrated the attribution mass is.

Three measures of how few features an explanation needs, all read off ``|a|`` alone (no
model call): :func:`sparseness` (Gini index, higher is sparser), :func:`complexity`
(entropy of the fractional contributions, lower is simpler) and
:func:`effective_complexity` (how many features carry more than a threshold).

They take ``model`` for the uniform signature ``metric(model, explanation, ...)`` of
:mod:`lumos.metrics`; ``model=None`` is allowed since nothing is evaluated. When a model is
given, the explanation is checked against it (input shape, target indices) as every other
metric does.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.special import entr

from lumos.errors import InputError, NonFiniteError
from lumos.explanation import Explanation
from lumos.metrics._base import (
    MetricResult,
    check_bool,
    prepare,
    register_metric,
)

_ZERO_ROW = "all-zero attribution: the share of each feature (|a_i| / Σ|a|) is undefined"


def _abs_rows(model: Any, explanation: Any) -> np.ndarray:
    """``|values|`` flattened per row, (n, n_features), after the usual checks.

    ``model=None`` skips the checks against a model (these metrics never call it).
    """
    if model is not None:
        return np.abs(prepare(model, explanation).a.reshape(len(explanation), -1))
    if not isinstance(explanation, Explanation):
        raise InputError(
            f"explanation must be a lumos Explanation, got {type(explanation).__name__}; build "
            "one from arrays with lumos.Explanation(values=..., data=..., target=...)."
        )
    a = explanation.values.reshape(len(explanation), -1)
    if not np.all(np.isfinite(a)):
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise NonFiniteError(
            f"explanation.values has NaN or infinite entries in {bad} row(s); metrics need "
            "finite attributions (replace them, e.g. np.nan_to_num(values))."
        )
    return np.abs(a)


def _shares(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``m`` (non-negative) scaled to sum to one, and the mask of all-zero rows.

    Rows are divided by their maximum first, so huge or tiny attributions neither overflow
    nor underflow; all-zero rows come back as zeros.
    """
    top = m.max(axis=1, keepdims=True) if m.shape[1] else np.zeros((len(m), 1))
    zero = top[:, 0] == 0
    scaled = np.divide(m, top, out=np.zeros_like(m), where=~zero[:, None])
    total = scaled.sum(axis=1, keepdims=True)
    p = np.divide(scaled, total, out=np.zeros_like(m), where=~zero[:, None])
    return p, zero


def _nan_rows(scores: np.ndarray, zero: np.ndarray) -> dict[str, Any]:
    """NaN on the all-zero rows; ``zero_rows`` always, ``nan_reason`` when any is NaN."""
    scores[zero] = np.nan
    extras: dict[str, Any] = {"zero_rows": zero}
    if zero.any():
        extras["nan_reason"] = _ZERO_ROW
    return extras


@register_metric(
    "sparseness",
    category="complexity",
    higher_is_better=True,
    reference="Chalasani et al. (2020)",
)
def sparseness(model: Any, explanation: Explanation) -> MetricResult:
    """Gini index of |attributions|: (d − 1)/d for one feature of d, 0 when uniform.

    Chalasani et al. (2020) measure how concentrated an explanation is with the Gini index
    of its magnitudes. With ``m = |a|`` of one row flattened to ``d`` features and sorted
    ascending, ``m_(1) ≤ ... ≤ m_(d)``::

        G(m) = Σ_i (2i − d − 1) m_(i) / (d Σ_i m_(i))

    ``G`` lies in ``[0, (d − 1)/d]``: 0 for equal magnitudes, ``(d − 1)/d`` for a one-hot
    row. It depends neither on the signs nor on the scale of the attributions.

    Parameters
    ----------
    model : object or None
        The explained model; only used to check the explanation against it. ``None`` is
        allowed (nothing is evaluated).
    explanation : Explanation
        ``values`` of shape (n, *input_shape); every element is one feature.

    Returns
    -------
    MetricResult
        ``scores`` (n,), higher is sparser. A row whose attributions are all zero has no
        Gini index (0 / 0): its score is NaN, ``extras["zero_rows"]`` (n,) marks it and
        ``extras["nan_reason"]`` (str, present when a row is NaN) says why; ``mean`` /
        ``stderr`` skip it.

    Notes
    -----
    quantus.Sparseness (0.6.0) adds ``1e-7`` to every attribution before the formula, which
    shrinks the index by the factor ``Σm / (Σm + 1e-7 d)``: negligible for attributions of
    order one (it normalises by the batch maximum by default), but wrong for small
    attributions with ``normalise=False`` (``1e-6 · [0, 0, 1, 3]`` gives 0.568 instead of
    0.625), and it scores an all-zero row 0 (as uniform). lumos uses the exact formula, so
    the index is scale-invariant; elsewhere it equals quantus at 1e-6.

    References
    ----------
    Chalasani, P., Chen, J., Chowdhury, A. R., Wu, X. & Jha, S. (2020). Concise explanations
    of neural networks using adversarial training. ICML.
    """
    m = _abs_rows(model, explanation)
    d = m.shape[1]
    p, zero = _shares(m)
    ordered = np.sort(p, axis=1)
    weights = 2.0 * np.arange(1, d + 1) - d - 1  # Σ p = 1 on non-zero rows
    scores = ordered @ weights / d
    extras = _nan_rows(scores, zero)
    return MetricResult(name="", scores=scores, higher_is_better=True, category="", extras=extras)


@register_metric(
    "complexity",
    category="complexity",
    higher_is_better=False,
    reference="Bhatt et al. (2020)",
)
def complexity(model: Any, explanation: Explanation) -> MetricResult:
    """Entropy of the fractional contributions |a_i| / Σ|a|: 0 for one feature, ln d at most.

    Bhatt et al. (2020) call an explanation complex when its mass is spread over many
    features. With ``p_i = |a_i| / Σ_j |a_j|`` over the ``d`` features of one row::

        H(p) = −Σ_i p_i ln p_i        (0 ln 0 = 0)

    in nats, between 0 (one feature carries everything) and ``ln d`` (uniform). It depends
    neither on the signs nor on the scale of the attributions.

    Parameters
    ----------
    model : object or None
        The explained model; only used to check the explanation against it. ``None`` is
        allowed (nothing is evaluated).
    explanation : Explanation
        ``values`` of shape (n, *input_shape); every element is one feature.

    Returns
    -------
    MetricResult
        ``scores`` (n,), lower is simpler. An all-zero row has no distribution ``p``: its
        score is NaN, ``extras["zero_rows"]`` (n,) marks it and ``extras["nan_reason"]``
        (str, present when a row is NaN) says why.

    Notes
    -----
    Equals quantus.Complexity (0.6.0) at 1e-6 (quantus evaluates ``ln(p + 1e-12)``, a
    difference below 1e-11); quantus returns NaN without a reason for an all-zero row.

    References
    ----------
    Bhatt, U., Weller, A. & Moura, J. M. F. (2020). Evaluating and aggregating
    feature-based model explanations. IJCAI.
    """
    m = _abs_rows(model, explanation)
    p, zero = _shares(m)
    scores = entr(p).sum(axis=1)
    extras = _nan_rows(scores, zero)
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)


@register_metric(
    "effective_complexity",
    category="complexity",
    higher_is_better=False,
    reference="Nguyen & Martínez (2020)",
)
def effective_complexity(
    model: Any,
    explanation: Explanation,
    *,
    eps: float = 1e-5,
    relative: bool = True,
) -> MetricResult:
    """Number of features whose |attribution| exceeds a threshold eps (relative to the max).

    Nguyen & Martínez (2020) count the features an explanation effectively uses; this is
    the attribution-only form (as quantus.EffectiveComplexity)::

        k = #{i : |a_i| > eps · max_j |a_j|}      (relative=True)
        k = #{i : |a_i| > eps}                    (relative=False)

    Parameters
    ----------
    model : object or None
        The explained model; only used to check the explanation against it. ``None`` is
        allowed (nothing is evaluated).
    explanation : Explanation
        ``values`` of shape (n, *input_shape); every element is one feature.
    eps : float, default 1e-5
        The threshold: a share of the row's largest magnitude (``relative=True``, then in
        ``[0, 1)``) or an absolute magnitude (``relative=False``, ``>= 0``). ``eps=0``
        counts the non-zero attributions.
    relative : bool, default True
        Compare with ``eps`` times each row's own largest ``|a|`` (scale-free, so methods
        whose attributions differ in scale are comparable) instead of with ``eps`` itself.

    Returns
    -------
    MetricResult
        ``scores`` (n,) the counts (as floats), lower is simpler; ``extras["fraction"]`` (n,)
        the count over the number of features. An all-zero row counts 0 (no feature exceeds
        any threshold) — a well-defined score, unlike :func:`sparseness`.

    Notes
    -----
    quantus.EffectiveComplexity (0.6.0) with ``normalise=True`` (its default) divides the
    whole batch by the batch's largest ``|a|``, so one row's count depends on the other
    rows; ``relative=True`` uses each row's own maximum (equal to quantus on a batch of one
    row). With ``relative=False`` and quantus' ``normalise=False`` both count ``|a| > eps``
    and agree exactly.

    References
    ----------
    Nguyen, A. & Rodríguez Martínez, M. (2020). On quantitative aspects of model
    interpretability. arXiv:2007.07584.
    """
    relative = check_bool(relative, "relative")
    eps = _check_eps(eps, relative)
    m = _abs_rows(model, explanation)
    d = m.shape[1]
    if relative:
        top = m.max(axis=1, keepdims=True)
        scaled = np.divide(m, top, out=np.zeros_like(m), where=top > 0)
        counts = (scaled > eps).sum(axis=1)
    else:
        counts = (m > eps).sum(axis=1)
    scores = counts.astype(np.float64)
    extras = {"fraction": scores / d}
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)


def _check_eps(eps: Any, relative: bool) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(eps):
        raise InputError(f"eps must be a finite number >= 0, got {eps!r}.")
    eps = float(eps)
    if eps < 0:
        raise InputError(f"eps must be >= 0 (a magnitude threshold), got {eps}.")
    if relative and eps >= 1:
        raise InputError(
            f"with relative=True, eps is a share of each row's largest |attribution| and must "
            f"be below 1 (no feature exceeds the row maximum), got {eps}; use relative=False "
            "for an absolute threshold."
        )
    return eps
