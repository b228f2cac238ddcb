"""Sparse linear surrogates: the L1 path, the choice of sparsity, raw-unit formulas."""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Points on the L1 path of a classifier (C from the smallest non-empty model up 10^4-fold).
N_PATH_C = 20


@dataclass
class LinearFit:
    """What fitting a linear surrogate produced (see :func:`fit_linear`)."""

    estimator: Any  # coefficients in the units of x
    importance: np.ndarray  # (d,) |coef| x std, summed over classes
    n_nonzero: np.ndarray  # (m,) non-zero features of each path candidate
    train_scores: np.ndarray  # (m,) fidelity on the training rows
    test_scores: np.ndarray | None  # (m,) fidelity on the held-out rows, when given
    chosen: int  # index of the chosen candidate
    reached: bool | None  # fidelity_target reached on the training rows (None: no target)
    complexity: dict[str, Any] = field(default_factory=dict)


def _l1_logistic(**kwargs: Any) -> Any:
    """A LogisticRegression with an L1 penalty, across scikit-learn versions."""
    from sklearn.linear_model import LogisticRegression

    penalty = inspect.signature(LogisticRegression).parameters["penalty"].default
    if penalty == "l2":  # scikit-learn < 1.8
        return LogisticRegression(penalty="l1", **kwargs)
    return LogisticRegression(l1_ratio=1.0, **kwargs)


def _classifier_path(
    xs: np.ndarray, labels: np.ndarray, *, svm: bool, seed: int, n_features: int | None
) -> tuple[list[Any], np.ndarray]:
    """L1-penalised logistic regression / linear SVM along a path of C values.

    ``N_PATH_C`` values from the smallest C with a non-empty model up 10^4-fold; the path
    stops early at the first fit that agrees with every training label. When
    ``n_features`` is given and no point has exactly that many features, C is bisected
    (geometrically, up to 12 times) between the neighbouring points with fewer and more.
    """
    from sklearn.svm import LinearSVC, l1_min_c

    binary = len(np.unique(labels)) == 2
    c_min = l1_min_c(xs, labels, loss="squared_hinge" if svm else "log", fit_intercept=True)
    cs = list(c_min * np.logspace(0, 4, N_PATH_C))
    warm: list[Any] = []

    def fit_at(c: float) -> Any:
        if svm:  # tol 1e-3: 2-3x faster than 1e-4 at large C, same predictions in our checks
            est = LinearSVC(
                penalty="l1",
                loss="squared_hinge",
                dual=False,
                C=c,
                tol=1e-3,
                max_iter=1000,
                random_state=seed,
            )
            return est.fit(xs, labels)
        if binary:
            est = _l1_logistic(C=c, solver="liblinear", max_iter=1000, random_state=seed)
            return est.fit(xs, labels)
        # multinomial: saga, warm-started from the previous point of the path; tol 1e-3 is
        # about 10x faster than 1e-4 and leaves the predicted classes nearly unchanged
        if not warm:
            warm.append(
                _l1_logistic(
                    C=c,
                    solver="saga",
                    max_iter=1000,
                    tol=1e-3,
                    warm_start=True,
                    random_state=seed,
                )
            )
        warm[0].set_params(C=c)
        return copy.deepcopy(warm[0].fit(xs, labels))

    fits: list[Any] = []
    for i, c in enumerate(cs):
        fits.append(fit_at(c))
        if np.array_equal(fits[-1].predict(xs), labels):  # no larger C can agree better
            del cs[i + 1 :]
            break
    if n_features is not None:
        counts = [_nonzero(f) for f in fits]
        above = [cs[i] for i, k in enumerate(counts) if k > n_features]
        if n_features not in counts and above:
            hi = min(above)
            below = [cs[i] for i, k in enumerate(counts) if k < n_features and cs[i] < hi]
            lo = max(below) if below else None
            for _ in range(12 if lo is not None else 0):
                mid = math.sqrt(lo * hi)
                fits.append(fit_at(mid))
                cs.append(mid)
                k = _nonzero(fits[-1])
                if k == n_features:
                    break
                lo, hi = (mid, hi) if k < n_features else (lo, mid)
    return fits, np.array(cs)


def _regressor_path(xs: np.ndarray, target: np.ndarray, *, svm: bool, seed: int) -> list[Any]:
    """Every support along the exact lasso path (LARS), each refitted without shrinkage.

    ``linear``: least squares on the support (the relaxed lasso); ``svm``: a linear
    support-vector regression on it. Columns outside the support are zeroed, so every fit
    has all ``d`` coefficients, exactly zero off the support. The empty and the full
    support are always candidates.
    """
    from sklearn.linear_model import LinearRegression, lars_path
    from sklearn.svm import LinearSVR

    d = xs.shape[1]
    centred = target - target.mean()
    supports: list[np.ndarray] = [np.zeros(d, dtype=bool), np.ones(d, dtype=bool)]
    if np.any(xs.T @ centred != 0):
        _, _, coefs = lars_path(xs, centred, method="lasso")
        # coefficients are linear between kinks: the support on each open segment is where
        # the midpoint is non-zero
        segments = [(coefs[:, i] + coefs[:, i + 1]) != 0 for i in range(coefs.shape[1] - 1)]
        for support in [*segments, coefs[:, -1] != 0]:
            if not any(np.array_equal(support, s) for s in supports):
                supports.append(support)
    supports.sort(key=lambda s: int(s.sum()))
    fits: list[Any] = []
    for support in supports:
        if svm:
            est = LinearSVR(
                C=1.0,
                epsilon=0.0,
                loss="epsilon_insensitive",
                dual=True,
                max_iter=10000,
                random_state=seed,
            )
        else:
            est = LinearRegression()
        est.fit(xs * support, target)
        est.coef_ = np.where(support, est.coef_, 0.0)
        fits.append(est)
    return fits


def _nonzero(est: Any) -> int:
    return int(np.count_nonzero(np.any(np.atleast_2d(est.coef_) != 0, axis=0)))


def _choose(
    train_scores: np.ndarray,
    n_nonzero: np.ndarray,
    *,
    n_features: int | None,
    fidelity_target: float | None,
) -> tuple[int, bool | None]:
    """Index of the chosen candidate, and whether ``fidelity_target`` was reached.

    ``n_features``: best training fidelity among candidates with at most that many
    features; ``fidelity_target``: fewest features whose training fidelity reaches it
    (else the best); neither: best training fidelity. Ties go to fewer features, then to
    the earlier (more penalised) point of the path. When every point has more than
    ``n_features`` features, the sparsest points are the candidates.
    """
    idx = np.arange(len(train_scores))
    allowed = idx if n_features is None else idx[n_nonzero <= n_features]
    if len(allowed) == 0:  # every point is denser than asked: take the sparsest
        allowed = idx[n_nonzero == n_nonzero.min()]
    reached: bool | None = None
    if fidelity_target is not None:
        hits = allowed[train_scores[allowed] >= fidelity_target]
        reached = len(hits) > 0
        if reached:
            fewest = hits[n_nonzero[hits] == n_nonzero[hits].min()]
            best = fewest[train_scores[fewest] == train_scores[fewest].max()]
            return int(best[0]), True
    best = allowed[train_scores[allowed] == train_scores[allowed].max()]
    best = best[n_nonzero[best] == n_nonzero[best].min()]
    return int(best[0]), reached


def fit_linear(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    classification: bool,
    svm: bool,
    n_features: int | None,
    fidelity_target: float | None,
    seed: int,
    score: Callable[[np.ndarray, np.ndarray], float],
    x_test: np.ndarray | None = None,
    labels_test: np.ndarray | None = None,
) -> LinearFit:
    """Fit a sparse linear surrogate along an L1 path and pick its sparsity.

    Features are standardised with the training rows' mean and std (so the L1 penalty
    treats them alike); classifiers run L1-logistic regression (``svm=False``) or an
    L1 linear SVM (``svm=True``) at ``N_PATH_C`` values of ``C``; regressors take the
    supports along the lasso path and refit each without shrinkage (least squares, or a
    linear SVR). The chosen candidate's coefficients are converted back to the units of
    ``x``, so ``estimator.predict(x)`` works on raw rows and ``estimator.coef_`` is the
    formula's weights.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    labels : ndarray of shape (n,)
        Model class indices (classification) or outputs (regression).
    classification, svm : bool
    n_features, fidelity_target : optional
        Sparsity choice, see :func:`_choose` (judged on the training rows).
    seed : int
    score : callable
        ``score(labels, predictions)``: agreement or R².
    x_test, labels_test : optional
        Held-out rows; when given, every path candidate is scored on them too.

    Returns
    -------
    LinearFit
    """
    from sklearn.exceptions import ConvergenceWarning

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    xs = (x - mean) / scale
    y_off, y_mul = 0.0, 1.0
    fit_labels = labels
    if not classification and svm:  # the SVR's C and epsilon act on a standardised output
        y_off = float(labels.mean())
        y_mul = float(labels.std()) or 1.0
        fit_labels = (labels - y_off) / y_mul
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if classification:
            fits, cs = _classifier_path(xs, fit_labels, svm=svm, seed=seed, n_features=n_features)
        else:
            fits = _regressor_path(xs, fit_labels, svm=svm, seed=seed)

    def predict(est: Any, rows: np.ndarray) -> np.ndarray:
        out = est.predict(rows)
        return out if classification else y_off + y_mul * out

    n_nonzero = np.array([_nonzero(est) for est in fits])
    train_scores = np.array([score(labels, predict(est, xs)) for est in fits])
    test_scores = None
    if x_test is not None and labels_test is not None:
        xs_test = (x_test - mean) / scale
        test_scores = np.array([score(labels_test, predict(est, xs_test)) for est in fits])
    chosen, reached = _choose(
        train_scores, n_nonzero, n_features=n_features, fidelity_target=fidelity_target
    )
    est = fits[chosen]
    # back to the units of x: w_raw = y_mul w / scale, b_raw = y_off + y_mul (b - w . mean / scale)
    w = np.asarray(est.coef_, dtype=np.float64)
    b = np.asarray(est.intercept_, dtype=np.float64)
    w_raw = y_mul * w / scale
    b_raw = y_off + y_mul * (b - w @ (mean / scale))
    est.coef_ = w_raw
    est.intercept_ = b_raw if np.ndim(est.intercept_) else float(b_raw)
    importance = np.abs(np.atleast_2d(w_raw)).sum(axis=0) * std
    complexity: dict[str, Any] = {"n_nonzero": int(n_nonzero[chosen])}
    if classification:  # C of the chosen fit, on standardised features
        complexity["C"] = float(cs[chosen])
    return LinearFit(
        estimator=est,
        importance=importance,
        n_nonzero=n_nonzero,
        train_scores=train_scores,
        test_scores=test_scores,
        chosen=chosen,
        reached=reached,
        complexity=complexity,
    )


# ------------------------------------------------------------------------- formula
def _terms(
    weights: np.ndarray, intercept: float, names: Sequence[str], std: np.ndarray, precision: int
) -> str:
    """``w1 * a - w2 * b + c``: non-zero weights by decreasing |w| * std, then the intercept."""
    key = -np.abs(weights) * std
    order = [j for j in np.argsort(key, kind="stable") if weights[j] != 0]
    parts: list[str] = []
    for j in order:
        w = float(weights[j])
        magnitude = f"{abs(w):.{precision}g} * {names[j]}"
        if not parts:
            parts.append(magnitude if w >= 0 else f"-{magnitude}")
        else:
            parts.append(f"{'+' if w >= 0 else '-'} {magnitude}")
    c = f"{abs(intercept):.{precision}g}"
    if not parts:
        parts.append(c if intercept >= 0 else f"-{c}")
    else:
        parts.append(f"{'+' if intercept >= 0 else '-'} {c}")
    return " ".join(parts)


def linear_formula(
    estimator: Any,
    feature_names: Sequence[str],
    *,
    classification: bool,
    svm: bool,
    class_names: Sequence[str] | None,
    output_label: str,
    std: np.ndarray,
    precision: int,
) -> str:
    """The fitted linear surrogate as ``f(x) = Σ wᵢ·xᵢ + b`` text, in the units of x.

    The first line(s) hold the equation(s), terms ordered by decreasing ``|wᵢ| · std(xᵢ)``
    (the importance) with zero weights left out; the last line says what ``f`` is. Binary
    classifiers give one ``f(x)``: the log-odds (logistic) or decision value (SVM) of the
    second class against the first. Multi-class classifiers give one ``f[class](x)`` per
    class and predict the largest.

    Parameters
    ----------
    estimator : fitted linear sklearn model (coefficients in the units of x)
    feature_names : sequence of str, length d
    classification, svm : bool
    class_names : sequence of str, optional
        Name of each class label.
    output_label : str
        What a regression surrogate approximates (e.g. ``"the model's output 'price'"``).
    std : ndarray of shape (d,)
        Standard deviation of each feature (orders the terms).
    precision : int
        Significant digits of weights and intercept.

    Returns
    -------
    str
    """
    w = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    b = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))

    def name(label: Any) -> str:
        return class_names[int(label)] if class_names is not None else str(label)

    if not classification:
        how = "a linear support-vector regression" if svm else "least squares"
        return (
            f"f(x) = {_terms(w[0], float(b[0]), feature_names, std, precision)}\n"
            f"where f(x) approximates {output_label} ({how} on the features the L1 path "
            "selected)."
        )
    classes = [name(c) for c in estimator.classes_]
    if len(w) == 1:
        what = (
            "the decision value of the linear SVM"
            if svm
            else "the surrogate's log-odds log(P[{1}] / P[{0}])"
        ).format(*classes)
        return (
            f"f(x) = {_terms(w[0], float(b[0]), feature_names, std, precision)}\n"
            f"where f(x) is {what}: the surrogate predicts {classes[1]} when f(x) > 0, "
            f"else {classes[0]}."
        )
    lines = [
        f"f[{c}](x) = {_terms(w[k], float(b[k]), feature_names, std, precision)}"
        for k, c in enumerate(classes)
    ]
    what = (
        "the one-vs-rest decision value of the linear SVM"
        if svm
        else "the surrogate's log-odds score of that class (softmax logit, defined up to a "
        "constant shared by the classes)"
    )
    lines.append(
        f"where f[c](x) is {what}; the surrogate predicts the class with the largest f[c](x)."
    )
    return "\n".join(lines)
