"""``lumos.surrogate.fit``: a global interpretable model fitted to a model's predictions."""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lumos._random import RandomState, check_random_state, seed_to_int
from lumos._validation import check_name, check_target, check_test_size
from lumos.errors import InputError, ModelError, ShapeError, TargetError
from lumos.explanation import GlobalExplanation, _feature_label, _provenance
from lumos.models.base import wrap
from lumos.surrogate._linear import fit_linear, linear_formula
from lumos.surrogate._trees import fit_tree, tree_rules, truncated_predictions

__all__ = ["IMPORTANCES", "KINDS", "fit"]

#: Surrogate families.
KINDS: tuple[str, ...] = ("tree", "forest", "linear", "svm")
#: How the surrogate's feature importance is measured.
IMPORTANCES: tuple[str, ...] = ("native", "permutation")

_MIN_ROWS = 10
_MIN_TRAIN = 5
_MIN_TEST = 2
_DEFAULT_TREE_DEPTH = 4
_DEFAULT_N_ESTIMATORS = 100


# ----------------------------------------------------------------------------- checks
def _int_option(value: Any, name: str, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}; {hint}")
    return int(value)


@dataclass
class _Task:
    """What the surrogate imitates: class indices or one output column."""

    classification: bool
    labels: np.ndarray  # (n,) int class index, or float output
    class_names: list[str] | None  # name of each class index (classification)
    target: int | None  # output column (regression-style surrogates)
    output_label: str  # what a regression-style surrogate approximates


def _task(model: Any, outputs: np.ndarray, target: Any, class_names: Sequence[str] | None) -> _Task:
    n_out = outputs.shape[1]
    kind = model.output_kind
    names = model.class_names
    if class_names is not None:
        names = [str(c) for c in class_names]
        allowed = {n_out, 2} if n_out == 1 else {n_out}
        if len(names) not in allowed:
            raise ShapeError(
                f"{len(names)} class_names for a model with {n_out} output(s); pass one name "
                "per output (or two for a single-output binary classifier)."
            )
    if target is not None or kind == "regression":
        if target is None:
            if n_out > 1:
                raise TargetError(
                    f"this regression model has {n_out} outputs; pass target=<index> "
                    f"(0..{n_out - 1}) to choose the output the surrogate approximates."
                )
            t = 0
        else:
            t = int(check_target(target, 1, n_out, class_names=names)[0])
        out_name = names[t] if names is not None and len(names) == n_out else None
        what = {"probability": "probability", "logit": "logit"}.get(kind, "output")
        label = f"the model's {what} {out_name!r}" if out_name else f"the model's {what}"
        if out_name is None and n_out > 1:
            label += f" {t}"
        return _Task(False, outputs[:, t].copy(), None, t, label)
    if n_out == 1:  # one sigmoid / logit column: class 1 when above 0.5 / 0
        threshold = 0.5 if kind == "probability" else 0.0
        labels = (outputs[:, 0] > threshold).astype(np.int64)
        if names is not None and len(names) == 2:
            pair = list(names)
        elif names is not None and len(names) == 1:
            pair = [f"not {names[0]}", names[0]]
        else:
            pair = ["negative", "positive"]
        return _Task(True, labels, pair, None, "the model's class")
    if names is None or len(names) != n_out:
        names = [f"class {i}" for i in range(n_out)]
    return _Task(True, model.predicted_class(outputs), list(names), None, "the model's class")


def _labels_y(y: Any, n: int, task: _Task) -> np.ndarray | None:
    """The user's labels as class indices (classification) or floats (regression)."""
    if y is None:
        return None
    arr = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ShapeError(f"y has shape {arr.shape}; pass one label per row of x, shape ({n},).")
    if not task.classification:
        if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr.astype(np.float64))):
            raise InputError("y must hold finite numbers (the true outputs) for a regression.")
        return arr.astype(np.float64)
    names = task.class_names or []
    if arr.dtype.kind in "US" or arr.dtype == object:
        unknown = sorted({str(v) for v in arr.tolist()} - set(names))
        if unknown:
            raise TargetError(
                f"y holds label(s) {unknown[:5]} that are not class names {names}; pass class "
                "indices or the model's class names."
            )
        return np.array([names.index(str(v)) for v in arr.tolist()], dtype=np.int64)
    if arr.dtype.kind not in "biuf" or not np.array_equal(arr, np.round(arr)):
        raise TargetError("y must hold integer class indices (or class names) for a classifier.")
    labels = arr.astype(np.int64)
    if labels.min() < 0 or labels.max() >= len(names):
        raise TargetError(
            f"y holds class indices outside 0..{len(names) - 1}; labels must index the "
            f"model's classes {names}."
        )
    return labels


# ----------------------------------------------------------------------------- sampling
def _split(
    labels: np.ndarray | None, n: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / held-out indices; stratified by class when ``labels`` is given.

    Each class goes to the held-out part in proportion to its size (largest remainder),
    keeping at least one row of every class in the training part.
    """
    if labels is None:
        perm = rng.permutation(n)
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    ideal = counts * n_test / n
    per_class = np.floor(ideal).astype(np.int64)
    order = np.argsort(-(ideal - per_class), kind="stable")
    per_class[order[: n_test - int(per_class.sum())]] += 1
    per_class = np.minimum(per_class, counts - 1)
    test = []
    for k in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == k))
        test.append(members[: per_class[k]])
    test_idx = np.sort(np.concatenate(test))
    mask = np.ones(n, dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def _bootstrap(labels: np.ndarray, classification: bool, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one bootstrap sample (within each class for classifiers)."""
    n = len(labels)
    if not classification:
        return rng.integers(0, n, size=n)
    parts = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        parts.append(members[rng.integers(0, len(members), size=len(members))])
    return np.concatenate(parts)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _agreement(reference: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(reference == predicted))


def _r2(reference: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(reference, predicted))


def _top_k_sets(importance: np.ndarray, k: int) -> list[set[int]]:
    """Per row, the (at most) ``k`` features of largest importance among those > 0."""
    sets = []
    for row in importance:
        order = np.argsort(-row, kind="stable")[:k]
        sets.append({int(j) for j in order if row[j] > 0})
    return sets


def _mean_jaccard(sets: list[set[int]]) -> float:
    scores = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = sets[i] | sets[j]
            scores.append(1.0 if not union else len(sets[i] & sets[j]) / len(union))
    return float(np.mean(scores))


# ----------------------------------------------------------------------------- public
def fit(
    model: Any,
    x: Any,
    *,
    kind: str = "tree",
    max_depth: int | None = None,
    n_features: int | None = None,
    fidelity_target: float | None = None,
    n_estimators: int | None = None,
    target: Any = None,
    y: Any = None,
    test_size: float | int = 0.25,
    importance: str = "native",
    n_repeats: int = 5,
    n_bootstrap: int = 10,
    top_k: int = 5,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    precision: int = 4,
    batch_size: int | None = None,
    random_state: RandomState = None,
) -> GlobalExplanation:
    """Fit an interpretable surrogate to the model's predictions and measure its fidelity.

    A global surrogate (Craven & Shavlik, 1996, "Extracting tree-structured representations
    of trained networks"; Molnar, *Interpretable Machine Learning*, ch. "Global surrogate")
    imitates the model, not the data: the model is evaluated once on ``x`` (one batched
    call), and a scikit-learn model is trained on its answers. Classifiers (output kind
    ``"probability"`` or ``"logit"``) are imitated by a classifier on the model's predicted
    class (argmax; for a single output, above 0.5 / 0); regression models, or any model
    with ``target=`` set, by a regressor on that output. ``x`` is split into a training
    part and a held-out part (``test_size``, stratified by predicted class); the surrogate
    sees only the training part, and its **fidelity** is measured on the held-out part:
    the share of rows where it predicts the model's class (agreement), or R² against the
    model's output.

    Kinds:

    * ``"tree"``: a CART decision tree of depth ``max_depth`` (default 4). Its thresholds
      are moved, inside the gap between neighbouring training values (so the training
      partition, hence the tree, is unchanged), to the shortest decimal in that gap; the
      rules print them exactly, in the units of ``x``.
    * ``"forest"``: a random forest of ``n_estimators`` (default 100) trees of depth
      ``max_depth`` (default: grown until pure).
    * ``"linear"``: sparse linear model. Classifiers: L1-penalised logistic regression
      (liblinear for two classes, multinomial saga for more) along a path of 20 values of C,
      from the smallest C with a non-zero weight up 10^4-fold, stopping early at the first
      fit that agrees with every training row (and bisected to hit ``n_features`` exactly
      when the grid skips it); regressors: every support along the exact lasso path (LARS),
      each refitted by least squares (the relaxed lasso, Meinshausen 2007), so the weights
      are not shrunk.
    * ``"svm"``: linear SVM: L1-penalised ``LinearSVC`` (squared hinge, one-vs-rest) along
      the same C path for classifiers; an epsilon-insensitive ``LinearSVR`` (epsilon 0, C 1
      on the standardised output) on each lasso-path support for regressors.

    Linear kinds standardise the features for fitting (so the penalty treats them alike)
    and report weights in the units of ``x``. Their sparsity is chosen on the training part:
    at most ``n_features`` non-zero features (the best-fitting such point), or the fewest
    features whose training fidelity reaches ``fidelity_target``, or, with neither, the
    point of best training fidelity.

    Parameters
    ----------
    model : object
        A :class:`lumos.Model` or anything :func:`lumos.wrap` accepts.
    x : array-like of shape (n, *input_shape)
        The data sample the model is imitated on (no labels needed); at least 10 rows.
        Non-tabular rows are flattened to ``d = prod(input_shape)`` features.
    kind : {"tree", "forest", "linear", "svm"}, default "tree"
    max_depth : int, optional
        Depth limit of trees (``"tree"`` and ``"forest"`` only). Default 4 for a tree, no
        limit for a forest.
    n_features : int, optional
        Use at most this many features. Linear kinds: the sparsity level. Trees and forests:
        after a first fit, refit with only the ``n_features`` features of largest impurity
        importance.
    fidelity_target : float in (0, 1], optional
        Linear kinds only: the fewest features whose training fidelity (agreement or R²)
        reaches this value. Exclusive with ``n_features``.
    n_estimators : int, optional
        Trees in a forest (``"forest"`` only), default 100.
    target : int or str, optional
        Fit a regressor to this output column (index or class name) instead of a classifier
        on the predicted class; required for regression models with several outputs.
    y : array-like of shape (n,), optional
        True labels of ``x`` (class indices or class names; numbers for regression): the
        surrogate's (and the model's) accuracy / R² against them on the held-out rows is
        added to ``info``.
    test_size : float or int, default 0.25
        Held-out fraction of ``x`` in (0, 1), or a row count.
    importance : {"native", "permutation"}, default "native"
        ``"native"``: impurity importance (mean decrease in impurity, Breiman 2001) for trees
        and forests, summing to 1; ``|wⱼ| · std(xⱼ)`` for linear kinds (summed over the
        classes' weight rows), in units of the surrogate's output per feature standard
        deviation. ``"permutation"``: drop of held-out fidelity when the column is shuffled
        (``sklearn.inspection.permutation_importance``, ``n_repeats`` shuffles).
    n_repeats : int, default 5
        Shuffles per feature for ``importance="permutation"``.
    n_bootstrap : int, default 10
        Stability check: the whole fit (including the choice of sparsity) is repeated on
        this many bootstrap samples of the training part (within each class for
        classifiers); ``0`` skips it, otherwise at least 2.
    top_k : int, default 5
        Size of the top-k feature sets compared across bootstrap fits (at most ``d``).
    feature_names : sequence of str, optional
        One per feature; default the model's, else ``x0, x1, ...``.
    class_names : sequence of str, optional
        One per model output; default the model's, else ``class 0, class 1, ...``.
    precision : int, default 4
        Significant digits of the numbers printed in the formula and regression leaves
        (tree thresholds are always printed exactly).
    batch_size : int, optional
        Rows per model call.
    random_state : int, numpy.random.Generator or None
        Seeds the split, the surrogates and the bootstrap samples; no global state is used.

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,); ``stderr`` (d,): standard deviation of the importance over the
        bootstrap fits (``None`` without them); ``fidelity``: held-out agreement or R²;
        ``rules`` (trees): one line per leaf, ``if worst radius > 0.42 and ... then
        malignant (97% of 120 samples)``; ``formula`` (linear kinds):
        ``f(x) = w₁ · name₁ + ... + b`` and what ``f`` is; ``estimator``: the fitted
        scikit-learn model, working on flattened rows of ``x`` (``predict``); ``method``:
        ``"surrogate_<kind>"``.

        ``extras``: ``"curve"`` (k, 2): (complexity, held-out fidelity) — for trees and
        forests the fitted model cut at each depth 1..D (a cut node predicts its training
        class distribution or mean), for linear kinds each sparsity level (number of
        non-zero features) on the path, with its best-fitting point; ``"curve_train"``
        (k, 2): the same on the training part (non-decreasing for a single tree);
        ``"top_k_frequency"`` (d,): share of bootstrap fits whose top-k holds each feature;
        ``"bootstrap_importance"`` (n_bootstrap, d); ``"train_index"``, ``"test_index"``:
        the rows of ``x`` in each part.

        ``info``: ``task`` ("classification" / "regression"), ``fidelity_metric``
        ("agreement" / "r2"), ``fidelity_train``, ``n_train``, ``n_test``, complexity
        (``n_leaves`` and ``depth`` for a tree; total ``n_leaves``, ``mean_depth``,
        ``depth``, ``n_estimators`` for a forest; ``n_nonzero`` and ``C`` for linear kinds;
        ``complexity`` / ``complexity_measure``: the value on the curve's axis),
        ``importance`` (which measure), ``stability`` (mean Jaccard overlap of the top-k
        sets over all pairs of bootstrap fits), ``top_k``, ``top_k_features``,
        ``fidelity_target_reached`` (on the training part; ``None`` without a target),
        ``thresholds_snapped`` (tree: whether this scikit-learn let the thresholds be moved
        to short decimals; either way the printed thresholds are exact), ``classes`` or
        ``target`` / ``output``, and with ``y``: ``accuracy`` and ``model_accuracy``
        (classification) or ``label_r2`` and ``model_label_r2`` (regression), on the
        held-out rows.

    Raises
    ------
    UnknownNameError
        Unknown ``kind`` or ``importance``.
    InputError
        Bad options (depth, feature count, fidelity target, split), too few rows, or a model
        whose predictions do not vary on ``x``.
    ShapeError, NonFiniteError, NonNumericError
        ``x``, ``y`` or the names do not fit the model.
    TargetError
        Unknown ``target`` or labels.

    Examples
    --------
    >>> import numpy as np, lumos
    >>> from lumos import surrogate
    >>> x = np.random.default_rng(0).normal(size=(400, 3))
    >>> model = lambda a: np.stack([a[:, 0] > 0.5, a[:, 0] <= 0.5], axis=1) * 1.0
    >>> s = surrogate.fit(model, x, kind="tree", max_depth=1, n_bootstrap=0, random_state=0)
    >>> s.fidelity
    1.0
    >>> print(s.rules)  # doctest: +NORMALIZE_WHITESPACE
    if x0 <= 0.5 then class 1 (100% of 227 samples)
    if x0 > 0.5 then class 0 (100% of 73 samples)
    """
    start = time.perf_counter()
    check_name(kind, KINDS, kind="surrogate kind")
    check_name(importance, IMPORTANCES, kind="surrogate importance")
    is_tree = kind in ("tree", "forest")
    if max_depth is not None:
        if not is_tree:
            raise InputError(
                f"max_depth applies to kind='tree' or 'forest', not {kind!r}; choose the "
                "sparsity of a linear surrogate with n_features= or fidelity_target=."
            )
        max_depth = _int_option(max_depth, "max_depth", 1, "pass e.g. max_depth=3.")
    elif kind == "tree":
        max_depth = _DEFAULT_TREE_DEPTH
    if n_estimators is not None:
        if kind != "forest":
            raise InputError(f"n_estimators applies to kind='forest' only, not {kind!r}.")
        n_estimators = _int_option(n_estimators, "n_estimators", 1, "pass e.g. 100.")
    if fidelity_target is not None:
        if is_tree:
            raise InputError(
                "fidelity_target chooses the sparsity of kind='linear' or 'svm'; for trees set "
                "max_depth (the .curve of a deeper tree shows the fidelity at each depth)."
            )
        if n_features is not None:
            raise InputError("pass n_features= or fidelity_target=, not both.")
        if (
            isinstance(fidelity_target, bool)
            or not isinstance(fidelity_target, numbers.Real)
            or not 0.0 < float(fidelity_target) <= 1.0
        ):
            raise InputError(
                f"fidelity_target must be a number in (0, 1], got {fidelity_target!r}; pass "
                "e.g. fidelity_target=0.95 (agreement for classifiers, R² for regression)."
            )
        fidelity_target = float(fidelity_target)
    n_repeats = _int_option(n_repeats, "n_repeats", 1, "pass e.g. n_repeats=5.")
    n_bootstrap = _int_option(n_bootstrap, "n_bootstrap", 0, "pass 0 (no check) or e.g. 10.")
    if n_bootstrap == 1:
        raise InputError(
            "n_bootstrap=1 cannot measure stability (it compares pairs of fits); pass 0 to "
            "skip the check or at least 2, e.g. n_bootstrap=10."
        )
    top_k = _int_option(top_k, "top_k", 1, "pass e.g. top_k=5.")
    precision = _int_option(precision, "precision", 1, "pass e.g. precision=4.")
    if precision > 17:
        raise InputError(f"precision must be at most 17 significant digits, got {precision}.")

    model = wrap(model)
    arr, _ = model.check_input(x)
    n = len(arr)
    if n < _MIN_ROWS:
        raise InputError(
            f"x has {n} rows; a surrogate needs at least {_MIN_ROWS} (part of them held out to "
            "measure fidelity). Pass more rows: they need no labels, the model labels them."
        )
    flat = arr.reshape(n, -1)
    d = flat.shape[1]
    if n_features is not None:
        n_features = _int_option(n_features, "n_features", 1, "pass e.g. n_features=5.")
        if n_features > d:
            raise InputError(
                f"n_features={n_features} but x has only {d} features; pass at most {d}."
            )
    top_k = min(top_k, d)
    if feature_names is not None:
        names = [str(f) for f in feature_names]
        if len(names) != d:
            raise ShapeError(f"{len(names)} feature_names for {d} features; pass one per feature.")
    else:
        names = [_feature_label(i, tuple(arr.shape[1:]), model.feature_names) for i in range(d)]
    n_test = check_test_size(test_size, n, min_test=_MIN_TEST, min_train=_MIN_TRAIN)
    if batch_size is not None:
        model.resolve_batch_size(batch_size)

    outputs = model.evaluate(arr, batch_size=batch_size)  # the only model call
    bad = ~np.isfinite(outputs).all(axis=1)
    if bad.any():
        raise ModelError(
            f"the model returned NaN or infinite outputs for {int(bad.sum())} row(s) of x "
            f"(first: row {int(np.flatnonzero(bad)[0])}); fix the model or drop those rows."
        )
    task = _task(model, outputs, target, class_names)
    labels = task.labels
    if task.classification and len(np.unique(labels)) < 2:
        only = task.class_names[int(labels[0])] if task.class_names else labels[0]
        raise InputError(
            f"the model predicts {only!r} for every row of x; a surrogate needs rows where the "
            "model's class varies. Pass a more varied sample (or target= to imitate a "
            "probability instead)."
        )
    if not task.classification and np.ptp(labels) == 0:
        raise InputError(
            "the model's output is constant on x; a surrogate needs rows where it varies."
        )
    y_labels = _labels_y(y, n, task)

    classification = task.classification
    score: Callable[[np.ndarray, np.ndarray], float] = _agreement if classification else _r2
    rng = check_random_state(random_state)
    train_idx, test_idx = _split(labels if classification else None, n, n_test, rng)
    x_tr, x_te = flat[train_idx], flat[test_idx]
    l_tr, l_te = labels[train_idx], labels[test_idx]
    forest = kind == "forest"
    n_trees = n_estimators or _DEFAULT_N_ESTIMATORS

    def fit_once(xf: np.ndarray, lf: np.ndarray, seed: int, curve: bool) -> dict[str, Any]:
        if is_tree:
            tf = fit_tree(
                xf,
                lf,
                classification=classification,
                forest=forest,
                max_depth=max_depth,
                n_features=n_features,
                n_estimators=n_trees,
                seed=seed,
            )
            out: dict[str, Any] = {
                "estimator": tf.estimator,
                "importance": tf.importance,
                "complexity": tf.complexity,
                "reached": None,
                "thresholds_snapped": tf.thresholds_snapped,
            }
            if curve:
                rows = []
                for part_x, part_l in ((xf, lf), (x_te, l_te)):
                    cut = truncated_predictions(
                        tf.estimator, part_x, forest=forest, classification=classification
                    )
                    rows.append([score(part_l, p) for p in cut])
                depths = np.arange(len(rows[0]))
                keep = depths >= 1 if len(depths) > 1 else depths >= 0
                out["curve_train"] = np.column_stack([depths, rows[0]])[keep]
                out["curve"] = np.column_stack([depths, rows[1]])[keep]
            return out
        lf_fit = fit_linear(
            xf,
            lf,
            classification=classification,
            svm=kind == "svm",
            n_features=n_features,
            fidelity_target=fidelity_target,
            seed=seed,
            score=score,
            x_test=x_te if curve else None,
            labels_test=l_te if curve else None,
        )
        out = {
            "estimator": lf_fit.estimator,
            "importance": lf_fit.importance,
            "complexity": lf_fit.complexity,
            "reached": lf_fit.reached,
        }
        if curve and lf_fit.test_scores is not None:
            levels = np.unique(lf_fit.n_nonzero)
            train_pts, test_pts = [], []
            for k in levels:
                at = np.flatnonzero(lf_fit.n_nonzero == k)
                best = at[np.argmax(lf_fit.train_scores[at])]
                train_pts.append(lf_fit.train_scores[best])
                test_pts.append(lf_fit.test_scores[best])
            out["curve_train"] = np.column_stack([levels, train_pts])
            out["curve"] = np.column_stack([levels, test_pts])
        return out

    def importance_of(est: Any, native: np.ndarray, seed: int) -> np.ndarray:
        if importance == "native":
            return native
        from sklearn.inspection import permutation_importance

        result = permutation_importance(
            est,
            x_te,
            l_te,
            scoring="accuracy" if classification else "r2",
            n_repeats=n_repeats,
            random_state=seed,
        )
        return np.asarray(result.importances_mean, dtype=np.float64)

    main = fit_once(x_tr, l_tr, _seed(rng), curve=True)
    estimator = main["estimator"]
    main_importance = importance_of(estimator, main["importance"], _seed(rng))
    pred_te = estimator.predict(x_te)
    fidelity = score(l_te, pred_te)
    fidelity_train = score(l_tr, estimator.predict(x_tr))

    boot_importance = np.empty((n_bootstrap, d))
    for b in range(n_bootstrap):
        idx = _bootstrap(l_tr, classification, rng)
        fitted = fit_once(x_tr[idx], l_tr[idx], _seed(rng), curve=False)
        boot_importance[b] = importance_of(fitted["estimator"], fitted["importance"], _seed(rng))

    rules = formula = None
    if kind == "tree":
        rules = tree_rules(
            estimator,
            names,
            classification=classification,
            class_names=task.class_names,
            precision=precision,
        )
    elif not is_tree:
        formula = linear_formula(
            estimator,
            names,
            classification=classification,
            svm=kind == "svm",
            class_names=task.class_names,
            output_label=task.output_label,
            std=x_tr.std(axis=0),
            precision=precision,
        )

    complexity = dict(main["complexity"])
    measure = "depth" if is_tree else "n_nonzero"
    info: dict[str, Any] = {
        "kind": kind,
        "task": "classification" if classification else "regression",
        "fidelity_metric": "agreement" if classification else "r2",
        "fidelity_train": fidelity_train,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        **complexity,
        "complexity": complexity[measure],
        "complexity_measure": measure,
        "importance": (
            "permutation"
            if importance == "permutation"
            else ("impurity" if is_tree else "abs_coef_times_std")
        ),
        "top_k": top_k,
        "top_k_features": [
            names[j]
            for j in sorted(
                _top_k_sets(main_importance[None], top_k)[0], key=lambda j: (-main_importance[j], j)
            )
        ],
        "n_bootstrap": n_bootstrap,
        "stability": None,
        "fidelity_target_reached": main["reached"],
    }
    if classification:
        info["classes"] = task.class_names
    else:
        info["target"] = task.target
        info["output"] = task.output_label
    if kind == "tree":
        info["thresholds_snapped"] = main["thresholds_snapped"]
    if y_labels is not None:
        y_te = y_labels[test_idx]
        if classification:
            info["accuracy"] = _agreement(y_te, pred_te)
            info["model_accuracy"] = _agreement(y_te, l_te)
        else:
            info["label_r2"] = _r2(y_te, pred_te)
            info["model_label_r2"] = _r2(y_te, l_te)

    extras: dict[str, np.ndarray] = {
        "curve": main["curve"],
        "curve_train": main["curve_train"],
        "train_index": train_idx,
        "test_index": test_idx,
    }
    stderr = None
    if n_bootstrap:
        sets = _top_k_sets(boot_importance, top_k)
        freq = np.zeros(d)
        for s in sets:
            freq[list(s)] += 1
        extras["top_k_frequency"] = freq / n_bootstrap
        extras["bootstrap_importance"] = boot_importance
        info["stability"] = _mean_jaccard(sets)
        stderr = boot_importance.std(axis=0, ddof=1)

    params = {
        "kind": kind,
        "max_depth": max_depth,
        "n_features": n_features,
        "fidelity_target": fidelity_target,
        "n_estimators": n_trees if forest else None,
        "target": target,
        "y": None if y is None else f"<labels of shape {np.shape(y)}>",
        "test_size": test_size,
        "importance": importance,
        "n_repeats": n_repeats,
        "n_bootstrap": n_bootstrap,
        "top_k": top_k,
        "feature_names": None if feature_names is None else names,
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "precision": precision,
        "batch_size": batch_size,
        "random_state": random_state,
    }
    return GlobalExplanation(
        importance=main_importance,
        stderr=stderr,
        feature_names=names,
        method=f"surrogate_{kind}",
        params=params,
        elapsed_s=time.perf_counter() - start,
        fidelity=fidelity,
        rules=rules,
        formula=formula,
        estimator=estimator,
        extras=extras,
        info=info,
        provenance=_provenance(
            model=model, input_shape=tuple(arr.shape[1:]), seed=seed_to_int(random_state)
        ),
    )
