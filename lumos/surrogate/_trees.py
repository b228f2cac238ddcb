"""Tree and forest surrogates: fitting, readable thresholds, rules text, depth curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TreeFit:
    """What fitting a tree or forest surrogate produced (see :func:`fit_tree`)."""

    estimator: Any
    importance: np.ndarray  # (d,) impurity importance
    complexity: dict[str, Any] = field(default_factory=dict)
    thresholds_snapped: bool | None = None  # single tree: thresholds snapped to short decimals


def fit_tree(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    classification: bool,
    forest: bool,
    max_depth: int | None,
    n_features: int | None,
    n_estimators: int,
    seed: int,
) -> TreeFit:
    """Fit a decision tree / random forest to the model's labels.

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Training rows.
    labels : ndarray of shape (n,)
        The model's class indices (classification) or outputs (regression).
    classification, forest : bool
    max_depth : int or None
        Depth limit (``None``: grown until leaves are pure).
    n_features : int or None
        When given, a first fit ranks the features by impurity importance and the final
        model is refitted with every other column held constant, so it splits on at most
        ``n_features`` features.
    n_estimators : int
        Trees in a forest.
    seed : int
        ``random_state`` of the sklearn estimator.

    Returns
    -------
    TreeFit
        For a single tree the split thresholds are moved to short decimals that leave the
        training partition unchanged (see :func:`snap_thresholds`).
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if forest:
        cls: Any = RandomForestClassifier if classification else RandomForestRegressor
        kwargs: dict[str, Any] = {"n_estimators": n_estimators, "n_jobs": None}
    else:
        cls = DecisionTreeClassifier if classification else DecisionTreeRegressor
        kwargs = {}
    kwargs.update(max_depth=max_depth, random_state=seed)
    estimator = cls(**kwargs).fit(x, labels)
    x_fit = x
    if n_features is not None and n_features < x.shape[1]:
        imp = np.asarray(estimator.feature_importances_)
        if np.count_nonzero(imp) > n_features:
            keep = np.argsort(-imp, kind="stable")[:n_features]
            x_fit = np.zeros_like(x)  # constant columns are never split on
            x_fit[:, keep] = x[:, keep]
            estimator = cls(**kwargs).fit(x_fit, labels)
    exact = None if forest else snap_thresholds(estimator, x_fit)
    return TreeFit(
        estimator=estimator,
        importance=np.asarray(estimator.feature_importances_, dtype=np.float64),
        complexity=tree_complexity(estimator, forest=forest),
        thresholds_snapped=exact,
    )


def tree_complexity(estimator: Any, *, forest: bool) -> dict[str, Any]:
    """Leaves and depth of a tree; total leaves and mean / max depth of a forest."""
    if not forest:
        return {"n_leaves": int(estimator.get_n_leaves()), "depth": int(estimator.get_depth())}
    depths = [int(t.get_depth()) for t in estimator.estimators_]
    return {
        "n_leaves": int(sum(int(t.get_n_leaves()) for t in estimator.estimators_)),
        "mean_depth": float(np.mean(depths)),
        "depth": int(max(depths)),
        "n_estimators": len(depths),
    }


def _shortest_decimal(threshold: float, low: float, high: float) -> float:
    """The decimal with fewest significant digits near ``threshold`` in ``[low, high)``."""
    for digits in range(1, 18):
        candidate = float(f"{threshold:.{digits}g}")
        if low <= candidate < high:
            return candidate
    return threshold


def snap_thresholds(estimator: Any, x: np.ndarray) -> bool:
    """Move each split threshold of a fitted sklearn tree to a short decimal, in place.

    A CART threshold lies between the largest training value sent left (``a``) and the
    smallest sent right (``b``) at that node; any threshold in ``[a, b)`` gives the same
    training partition, hence the same tree. Each is replaced by the decimal with the fewest
    significant digits in that gap, so the rules can print thresholds exactly (the printed
    number *is* the estimator's threshold). sklearn compares ``float32(x) <= threshold``;
    the gap is computed on the float32 values it sees.

    Parameters
    ----------
    estimator : DecisionTreeClassifier or DecisionTreeRegressor, fitted on ``x``
    x : ndarray of shape (n, d)
        The rows the tree was fitted on.

    Returns
    -------
    bool
        ``False`` when this sklearn version does not let thresholds be written (they are then
        left as fitted and printed with full precision).
    """
    tree = estimator.tree_
    thresholds = tree.threshold
    internal = np.flatnonzero(tree.children_left != -1)
    if len(internal) == 0:
        return True
    x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
    paths = estimator.decision_path(np.asarray(x, dtype=np.float64)).tocsc()
    new = thresholds.copy()
    for node in internal:
        rows = paths.indices[paths.indptr[node] : paths.indptr[node + 1]]
        values = x32[rows, tree.feature[node]]
        thr = float(thresholds[node])
        left, right = values[values <= thr], values[values > thr]
        if len(left) == 0 or len(right) == 0:  # cannot happen for a fitted split; keep it
            continue
        new[node] = _shortest_decimal(thr, float(left.max()), float(right.min()))
    try:
        thresholds[internal] = new[internal]
    except (ValueError, TypeError):  # pragma: no cover - read-only in some future sklearn
        return False
    return bool(np.array_equal(tree.threshold[internal], new[internal]))


# ------------------------------------------------------------------------- depth curves
def _nodes_by_depth(tree: Any, x32: np.ndarray, depth: int) -> np.ndarray:
    """Node reached by each row when the tree is cut at each depth 0..``depth``.

    Returns
    -------
    ndarray of shape (depth + 1, n), int
        Row ``k`` holds, for every input row, the deepest node on its path at depth <= k.
    """
    n = len(x32)
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    node = np.zeros(n, dtype=np.intp)
    rows = np.arange(n)
    out = np.empty((depth + 1, n), dtype=np.intp)
    out[0] = node
    for level in range(1, depth + 1):
        internal = left[node] != -1
        f = np.where(internal, feature[node], 0)
        go_left = x32[rows, f] <= threshold[node]
        node = np.where(internal, np.where(go_left, left[node], right[node]), node)
        out[level] = node
    return out


def truncated_predictions(
    estimator: Any, x: np.ndarray, *, forest: bool, classification: bool
) -> np.ndarray:
    """Predictions of the fitted tree / forest cut at every depth 0..D.

    Cutting at depth ``k`` makes every node at depth ``k`` a leaf predicting its own
    training distribution (class fractions or mean), which is what sklearn stores at
    internal nodes too. A forest averages its trees' cut predictions, as sklearn does
    (class probabilities, or values).

    Parameters
    ----------
    estimator : fitted sklearn tree or forest
    x : ndarray of shape (n, d)

    Returns
    -------
    ndarray of shape (D + 1, n)
        Predicted class labels (``estimator.classes_``) or values; ``D`` is the depth of the
        deepest tree. Row ``D`` equals ``estimator.predict(x)``.
    """
    trees = [t.tree_ for t in estimator.estimators_] if forest else [estimator.tree_]
    depth = max(int(t.max_depth) for t in trees)
    x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
    n_classes = len(estimator.classes_) if classification else 0
    shape = (depth + 1, len(x32), n_classes) if classification else (depth + 1, len(x32))
    total = np.zeros(shape)
    for tree in trees:
        nodes = _nodes_by_depth(tree, x32, depth)
        if classification:
            value = tree.value[:, 0, :]
            total += (value / value.sum(axis=1, keepdims=True))[nodes]  # (D+1, n, k)
        else:
            total += tree.value[:, 0, 0][nodes]  # (D+1, n)
    mean = total / len(trees)
    if classification:
        return np.asarray(estimator.classes_)[np.argmax(mean, axis=2)]
    return mean


# ------------------------------------------------------------------------- rules
def _number(value: float, precision: int) -> str:
    return f"{value:.{precision}g}"


def _threshold(value: float) -> str:
    """A threshold exactly (shortest repr that reads back to the same float)."""
    return repr(float(value))


def tree_rules(
    estimator: Any,
    feature_names: Sequence[str],
    *,
    classification: bool,
    class_names: Sequence[str] | None,
    precision: int,
) -> str:
    """The tree as text, one line per leaf, left to right.

    Each line reads ``if <conditions> then <prediction> (<support>)``. The conditions are
    the path's splits, merged per feature into ``name <= t``, ``name > t`` or
    ``lo < name <= hi`` and joined by ``and``; thresholds are printed exactly, in the units
    of ``x``. A classification leaf names its class and the share of the training rows in
    the leaf that the model puts in that class: ``then malignant (97% of 120 samples)``; a
    regression leaf gives the mean model output: ``then 3.142 (mean of 120 samples)``. A
    tree with a single leaf reads ``if true then ...``.

    Parameters
    ----------
    estimator : fitted DecisionTreeClassifier or DecisionTreeRegressor
    feature_names : sequence of str, length d
    classification : bool
    class_names : sequence of str, optional
        Name of each class label (indexed by the label).
    precision : int
        Significant digits of leaf values (regression).

    Returns
    -------
    str
    """
    tree = estimator.tree_
    lines: list[str] = []

    def leaf_text(node: int) -> str:
        n = int(tree.n_node_samples[node])
        if classification:
            fractions = tree.value[node, 0] / tree.value[node, 0].sum()
            k = int(np.argmax(fractions))
            label = estimator.classes_[k]
            name = class_names[int(label)] if class_names is not None else str(label)
            pct = round(100.0 * float(fractions[k]))
            if fractions[k] < 1.0:
                pct = min(pct, 99)  # an impure leaf is not shown as 100 %
            return f"{name} ({pct}% of {n} samples)"
        return f"{_number(float(tree.value[node, 0, 0]), precision)} (mean of {n} samples)"

    def visit(node: int, bounds: dict[int, list[float | None]]) -> None:
        if tree.children_left[node] == -1:
            conditions = []
            for f, (lo, hi) in bounds.items():
                name = feature_names[f]
                if lo is not None and hi is not None:
                    conditions.append(f"{_threshold(lo)} < {name} <= {_threshold(hi)}")
                elif hi is not None:
                    conditions.append(f"{name} <= {_threshold(hi)}")
                elif lo is not None:
                    conditions.append(f"{name} > {_threshold(lo)}")
            head = " and ".join(conditions) if conditions else "true"
            lines.append(f"if {head} then {leaf_text(node)}")
            return
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        lo, hi = bounds.get(f, [None, None])
        left = dict(bounds)
        left[f] = [lo, t if hi is None else min(hi, t)]
        visit(int(tree.children_left[node]), left)
        right = dict(bounds)
        right[f] = [t if lo is None else max(lo, t), hi]
        visit(int(tree.children_right[node]), right)

    visit(0, {})
    return "\n".join(lines)
