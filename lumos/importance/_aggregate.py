"""From local to global and between global explanations: aggregate local attributions,
select features by importance, and measure how much methods agree."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos.errors import InputError, ShapeError
from lumos.explanation import Explanation, GlobalExplanation, _provenance
from lumos.importance._scoring import (
    CLASSIFICATION_SCORINGS,
    REGRESSION_SCORINGS,
    build_reference,
)
from lumos.models.base import Model, wrap

__all__ = ["FeatureSelection", "aggregate", "agreement", "select"]


# ---------------------------------------------------------------------- aggregate
def aggregate(explanation: Explanation) -> GlobalExplanation:
    """Global importance from local attributions: the mean ``|φ|`` of each feature over rows.

    ``importance_j = (1/n) Σ_i |φ_ij|`` and ``stderr_j = s_j / √n`` with ``s_j`` the sample
    standard deviation (``ddof=1``) of ``|φ_ij|`` over the rows: the standard error of that
    mean as an estimate of the population's mean ``|φ|`` (it measures row-to-row spread,
    which includes any estimation noise of a stochastic explainer). Features are the flat
    elements of the input: an image explanation of shape (n, C, H, W) gives ``d = C·H·W``
    importances named ``x[c,h,w]`` (reshape ``importance`` to ``info["input_shape"]`` to
    draw it as an image).

    Parameters
    ----------
    explanation : Explanation
        Local attributions ``values`` of shape (n, *input_shape).

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,), ``stderr`` (d,) (``None`` for a single row), method
        ``"aggregate"``, ``params["source_method"]`` the local method's name.

    Raises
    ------
    InputError
        ``explanation`` is not an :class:`~lumos.Explanation`.
    """
    if not isinstance(explanation, Explanation):
        raise InputError(
            f"aggregate takes a local lumos.Explanation, got {type(explanation).__name__}; "
            "build one with lumos.explain(model, x, method=...) or Explanation(values=, data=)."
        )
    start = time.perf_counter()
    n = len(explanation)
    magnitude = np.abs(explanation.values.reshape(n, -1))
    importance = magnitude.mean(axis=0)
    stderr = magnitude.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else None
    shape = explanation.input_shape
    d = magnitude.shape[1]
    names = [explanation.feature_label(i) for i in range(d)] if len(shape) > 1 else None
    if names is None:
        names = explanation.feature_names
    return GlobalExplanation(
        importance=importance,
        stderr=stderr,
        feature_names=names,
        method="aggregate",
        params={"source_method": explanation.method, "statistic": "mean_abs"},
        elapsed_s=time.perf_counter() - start,
        info={"n_rows": n, "input_shape": list(shape), "source_params": explanation.params},
        provenance=dict(explanation.provenance) or _provenance(input_shape=(d,)),
    )


# ---------------------------------------------------------------------- select
@dataclass(eq=False)
class FeatureSelection:
    """Features kept by :func:`select`, and how the model does with only them.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        Selected entries of the global explanation (features, or groups for a grouped
        permutation importance), most important first.
    names : list of str, length k
        Their names.
    importance : ndarray of shape (k,)
        Their importances.
    mask : ndarray of bool, shape (d,)
        Input features kept (group members expanded).
    scoring : str or None
        The score below (``"accuracy"``, ``"log_loss"``, ``"r2"``, ``"mse"``), in its own
        units (log loss and MSE: lower is better).
    score_full : float or None
        The model's score on ``x`` with every feature.
    score_selected : float or None
        The model's score on ``x`` with every unselected feature replaced by its mean (over
        ``x_train`` when given, else over ``x``): the model is not retrained.
    score_retrained : float or None
        A clone (:func:`sklearn.base.clone`) of a scikit-learn estimator fitted on the
        selected columns only and scored on ``x``; ``None`` for other models.
    retrained_on : {"x_train", "x"} or None
        The rows the clone was fitted on; ``"x"`` means the score is in-sample.
    estimator : object or None
        The retrained clone.
    """

    indices: np.ndarray
    names: list[str]
    importance: np.ndarray
    mask: np.ndarray
    scoring: str | None = None
    score_full: float | None = None
    score_selected: float | None = None
    score_retrained: float | None = None
    retrained_on: str | None = None
    estimator: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.indices)


def select(
    explanation: GlobalExplanation,
    *,
    k: int | None = None,
    threshold: float | None = None,
    model: Any = None,
    x: Any = None,
    y: Any = None,
    x_train: Any = None,
    y_train: Any = None,
    scoring: str | None = None,
    batch_size: int | None = None,
) -> FeatureSelection:
    """Keep the top-``k`` features, or those with ``|importance| >= threshold``, and (with a
    model and data) see how the model does with only them.

    With both ``k`` and ``threshold`` the ``k`` largest of those above the threshold are
    kept. Ranking is by ``|importance|`` (ties: lower index first). For a grouped
    permutation importance (``extras["groups"]``) the entries are groups and ``mask`` marks
    all their members.

    Parameters
    ----------
    explanation : GlobalExplanation
    k : int, optional
        Number of entries to keep, in ``1..d``.
    threshold : float, optional
        Keep entries with ``|importance| >= threshold``.
    model : object, optional
        Anything :func:`lumos.wrap` accepts, evaluated on ``x`` with every feature, then
        with the unselected ones replaced by their mean (a "removed" feature carries no
        row-specific information; the model is not retrained). A scikit-learn estimator
        is also cloned and refitted on the selected columns (tabular ``x`` only).
    x, y : array-like of shape (n, *input_shape) and (n,), optional
        Evaluation rows and their labels / targets (required with ``model``).
    x_train, y_train : array-like, optional
        Rows to fit the clone on and to take the means from; default ``x``, ``y`` (the
        retrained score is then in-sample).
    scoring : {"accuracy", "log_loss", "r2", "mse"}, optional
        Default: ``"accuracy"`` for classifiers, ``"r2"`` for regression models.
    batch_size : int, optional
        Rows per model call.

    Returns
    -------
    FeatureSelection

    Raises
    ------
    InputError
        Neither ``k`` nor ``threshold``, ``k`` out of range, nothing above the threshold,
        a model without ``x`` and ``y``, ``y_train`` without ``x_train``.
    ShapeError
        The model's inputs do not have the explanation's ``d`` features.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import GlobalExplanation
    >>> from lumos.importance import select
    >>> imp = GlobalExplanation(importance=np.array([0.1, -0.9, 0.4]), feature_names=list("abc"))
    >>> select(imp, k=2).names
    ['b', 'c']
    >>> select(imp, threshold=0.05).indices
    array([1, 2, 0])
    """
    if not isinstance(explanation, GlobalExplanation):
        raise InputError(
            f"select takes a GlobalExplanation, got {type(explanation).__name__}; for local "
            "attributions call aggregate(explanation) first."
        )
    d = len(explanation)
    if k is None and threshold is None:
        raise InputError("pass k= (keep the k most important) or threshold= (|importance| >= t).")
    order = explanation.ranking
    magnitude = np.abs(explanation.importance)
    if threshold is not None:
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise InputError(f"threshold must be a finite number, got {threshold}.")
        order = order[magnitude[order] >= threshold]
        if len(order) == 0:
            raise InputError(
                f"no feature has |importance| >= {threshold} (the largest is "
                f"{magnitude.max():.4g}); lower the threshold."
            )
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
            raise InputError(f"k must be an int in 1..{d} (the number of features), got {k!r}.")
        order = order[: int(k)]
    names = [explanation.feature_label(int(i)) for i in order]
    labels = explanation.extras.get("groups")
    if labels is not None:
        mask = np.isin(np.asarray(labels), order)
    else:
        mask = np.zeros(d, dtype=bool)
        mask[order] = True
    result = FeatureSelection(
        indices=order.astype(np.int64),
        names=names,
        importance=explanation.importance[order],
        mask=mask,
    )
    if model is None:
        if x is not None or y is not None or x_train is not None:
            raise InputError("x / y are used to evaluate a model; pass model= as well.")
        return result
    _evaluate_selection(result, model, x, y, x_train, y_train, scoring, batch_size)
    return result


def _evaluate_selection(
    result: FeatureSelection,
    model: Any,
    x: Any,
    y: Any,
    x_train: Any,
    y_train: Any,
    scoring: str | None,
    batch_size: int | None,
) -> None:
    if x is None or y is None:
        raise InputError("evaluating the selection needs x and y (the labels or targets).")
    if (x_train is None) != (y_train is None):
        raise InputError("pass x_train and y_train together (or neither).")
    m = wrap(model)
    arr, _ = m.check_input(x)
    n = len(arr)
    flat = arr.reshape(n, -1)
    if flat.shape[1] != len(result.mask):
        raise ShapeError(
            f"the explanation covers {len(result.mask)} features but x has {flat.shape[1]} "
            "per row; evaluate the selection on the data the explanation was made for."
        )
    if x_train is None:
        fit_x, fit_y = arr, y
    else:
        fit_x, _ = m.check_input(x_train, name="x_train")
        fit_y = y_train
    means = fit_x.reshape(len(fit_x), -1).mean(axis=0)
    reduced = np.where(result.mask[None], flat, means[None]).reshape(arr.shape)

    allowed = CLASSIFICATION_SCORINGS + REGRESSION_SCORINGS
    full_out = m.evaluate(arr, batch_size=batch_size)
    ref = build_reference(m, full_out, y, scoring, allowed=allowed)
    result.scoring = ref.scoring
    result.score_full = _score(ref, full_out)
    result.score_selected = _score(ref, m.evaluate(reduced, batch_size=batch_size))
    if m.framework == "sklearn":
        result.estimator, result.score_retrained = _retrain(
            m, fit_x, fit_y, arr, y, result.mask, ref.scoring, batch_size
        )
        result.retrained_on = "x" if x_train is None else "x_train"


def _score(ref: Any, outputs: np.ndarray) -> float:
    return ref.natural(float(ref.score(ref.row_values(outputs, np.arange(len(outputs))))))


def _retrain(
    model: Model,
    fit_x: np.ndarray,
    fit_y: Any,
    x: np.ndarray,
    y: Any,
    mask: np.ndarray,
    scoring: str,
    batch_size: int | None,
) -> tuple[Any, float]:
    from sklearn.base import clone

    if x.ndim != 2:
        raise ShapeError("retraining on selected features needs tabular x of shape (n, d).")
    estimator = clone(model.estimator)  # type: ignore[attr-defined]
    estimator.fit(fit_x[:, mask], np.asarray(fit_y))
    refit = wrap(estimator, method=model.method)  # type: ignore[attr-defined]
    outputs = refit.evaluate(x[:, mask], batch_size=batch_size)
    allowed = CLASSIFICATION_SCORINGS + REGRESSION_SCORINGS
    ref = build_reference(refit, outputs, y, scoring, allowed=allowed)
    return estimator, _score(ref, outputs)


# ---------------------------------------------------------------------- agreement
def agreement(explanations: Mapping[str, GlobalExplanation], *, k: int = 5) -> Any:
    """How far global importance methods tell the same story: one row per pair of methods.

    For every pair, the Spearman rank correlation of their ``|importance|`` (average ranks
    for ties; 1: same order, 0: unrelated, negative: reversed) and the overlap of their
    top-``k`` features (``|top_k(a) ∩ top_k(b)| / k``, top-k by
    :attr:`GlobalExplanation.ranking`, ties broken by the lower index). Signs are ignored:
    a feature that pushes the output down is as important as one that pushes it up.

    Parameters
    ----------
    explanations : dict of str to GlobalExplanation
        At least two, all over the same ``d`` features (same names, when named).
    k : int, default 5
        Size of the top sets, in ``1..d``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method_a``, ``method_b``, ``spearman``, ``top_k_common`` (int) and
        ``top_k_overlap`` (``top_k_common / k``); one row per unordered pair, in the order
        the methods were given. ``spearman`` is NaN when one of the two has all
        importances equal.

    Raises
    ------
    InputError
        Fewer than two explanations, something other than a GlobalExplanation, ``k`` out of
        range.
    ShapeError
        Different numbers or names of features.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import GlobalExplanation
    >>> from lumos.importance import agreement
    >>> a = GlobalExplanation(importance=np.array([3.0, 2.0, 1.0, 0.0]))
    >>> b = GlobalExplanation(importance=np.array([2.0, -3.0, 0.0, 1.0]))
    >>> t = agreement({"a": a, "b": b}, k=2)
    >>> float(t.spearman[0]), float(t.top_k_overlap[0])
    (0.6, 1.0)
    """
    from scipy import stats

    from lumos.explanation import _pandas

    pd = _pandas()
    if not isinstance(explanations, Mapping) or len(explanations) < 2:
        raise InputError(
            "agreement compares at least two methods: pass a dict {name: GlobalExplanation}."
        )
    items = list(explanations.items())
    d = len(items[0][1]) if isinstance(items[0][1], GlobalExplanation) else 0
    names = None
    for name, exp in items:
        if not isinstance(exp, GlobalExplanation):
            raise InputError(
                f"{name!r} is a {type(exp).__name__}, not a GlobalExplanation; aggregate local "
                "attributions first (aggregate(explanation))."
            )
        if len(exp) != d:
            raise ShapeError(
                f"{name!r} has {len(exp)} importances but {items[0][0]!r} has {d}; compare "
                "explanations of the same features (ungrouped)."
            )
        if exp.feature_names is not None:
            if names is not None and exp.feature_names != names:
                raise ShapeError(
                    f"{name!r} names its features differently ({exp.feature_names[:5]}...) "
                    f"from the others ({names[:5]}...); put them in the same order."
                )
            names = exp.feature_names
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise InputError(f"k must be an int in 1..{d} (the number of features), got {k!r}.")
    ranks = {name: stats.rankdata(np.abs(exp.importance)) for name, exp in items}
    tops = {name: set(exp.ranking[:k].tolist()) for name, exp in items}
    rows = []
    for (a, _), (b, _) in itertools.combinations(items, 2):
        ra, rb = ranks[a] - ranks[a].mean(), ranks[b] - ranks[b].mean()
        denom = np.sqrt((ra @ ra) * (rb @ rb))
        rho = float(ra @ rb / denom) if denom > 0 else float("nan")
        common = len(tops[a] & tops[b])
        rows.append(
            {
                "method_a": a,
                "method_b": b,
                "spearman": rho,
                "top_k_common": common,
                "top_k_overlap": common / k,
            }
        )
    return pd.DataFrame(
        rows, columns=["method_a", "method_b", "spearman", "top_k_common", "top_k_overlap"]
    )
