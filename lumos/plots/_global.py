"""Global plots: ranked importances, the beeswarm of local attributions over many rows, the
agreement of several methods, surrogate trees and their fidelity–complexity curve, and
PDP / ALE dependence curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError, ShapeError
from lumos.plots._common import (
    DIVERGING,
    NEGATIVE,
    POSITIVE,
    Z95,
    check_count,
    check_explanation,
    check_global,
    fmt,
    label,
    new_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "agreement_heatmap",
    "beeswarm",
    "dependence",
    "fidelity_curve",
    "importance",
    "surrogate_tree",
]


# ---------------------------------------------------------------------- importance
def importance(explanation: Any, max_features: int = 20) -> Figure:
    """Global importances as ranked horizontal bars, most important on top.

    Features are ranked by ``|importance|`` (:attr:`GlobalExplanation.ranking`); signed
    scores (correlations, linear weights) keep their sign and colour (red positive, blue
    negative). With ``stderr`` each bar gets its 95% confidence interval,
    ``± 1.96 · stderr``. A surrogate's held-out fidelity is shown in the title.

    Parameters
    ----------
    explanation : GlobalExplanation
        From :mod:`lumos.importance`, :func:`lumos.surrogate.fit` or built by hand.
    max_features : int, default 20
        Draw at most this many features.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one bar per drawn feature (``ax.patches``) and, with ``stderr``, an
        error-bar container (``ax.containers``).

    Raises
    ------
    InputError
        Not a GlobalExplanation, or a bad ``max_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import GlobalExplanation
    >>> from lumos.plots import importance
    >>> g = GlobalExplanation(importance=np.array([0.1, 0.7, -0.3]),
    ...                       stderr=np.array([0.01, 0.05, 0.02]))
    >>> ax = importance(g).axes[0]
    >>> len(ax.patches), [t.get_text() for t in ax.get_yticklabels()]  # bottom to top
    (3, ['x0', 'x2', 'x1'])
    """
    explanation = check_global(explanation, func="importance")
    k = check_count(max_features, name="max_features")
    order = explanation.ranking[:k][::-1]  # bottom-up: most important last, on top
    shown = explanation.importance[order]
    fig = new_figure(7.0, 1.4 + 0.34 * len(order))
    ax = fig.add_subplot()
    colors = [POSITIVE if v >= 0 else NEGATIVE for v in np.nan_to_num(shown)]
    xerr = None if explanation.stderr is None else Z95 * explanation.stderr[order]
    pos = np.arange(len(order))
    ax.barh(
        pos, shown, color=colors, xerr=xerr, ecolor="black", capsize=3 if xerr is not None else 0
    )
    ax.set_yticks(pos, [label(explanation.feature_label(int(j))) for j in order])
    if (shown < 0).any():
        ax.axvline(0.0, color="black", linewidth=0.8)
    xlabel = "importance"
    if xerr is not None:
        xlabel += "  (95% interval, ± 1.96 stderr)"
    ax.set_xlabel(xlabel)
    title = label(explanation.method, 40)
    if explanation.fidelity is not None:
        metric = explanation.info.get("fidelity_metric", "fidelity")
        title += f"  ·  held-out fidelity ({metric}) {fmt(explanation.fidelity)}"
    if len(order) < len(explanation):
        title += f"\ntop {len(order)} of {len(explanation)} features"
    ax.set_title(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------- beeswarm
def _swarm_offsets(x: np.ndarray, width: float = 0.4, n_bins: int = 60) -> np.ndarray:
    """Deterministic vertical offsets in [-width, width] that spread points sharing an x bin
    (alternating above and below the line, denser bins wider)."""
    finite = np.isfinite(x)
    offsets = np.zeros(len(x))
    if finite.sum() < 2:
        return offsets
    lo, hi = float(x[finite].min()), float(x[finite].max())
    span = hi - lo if hi > lo else 1.0
    bins = np.clip(((x - lo) / span * n_bins).astype(np.int64, copy=False), 0, n_bins)
    bins[~finite] = -1
    order = np.argsort(bins, kind="stable")
    sorted_bins = bins[order]
    starts = np.searchsorted(sorted_bins, sorted_bins, side="left")
    rank = np.arange(len(x)) - starts  # position inside its bin
    counts = np.bincount(bins[finite], minlength=n_bins + 1)
    biggest = max(int(counts.max()), 1)
    step = width / max((biggest - 1) / 2, 1.0)
    level = (rank + 1) // 2 * np.where(rank % 2 == 1, 1.0, -1.0)
    offsets[order] = np.clip(level * step, -width, width)
    offsets[~finite] = 0.0
    return offsets


def beeswarm(explanation: Any, max_features: int = 10) -> Figure:
    """Attribution against feature value over many rows, one swarm per feature.

    Features are ranked by their mean ``|attribution|`` over the rows (most important on
    top). Each row is a dot at its attribution, coloured by the feature's value in that row
    (its rank among the rows, so features on any scale share one colour bar from low, blue,
    to high, red): a feature whose high values push the output up shows red on the right.

    Parameters
    ----------
    explanation : Explanation
        Local attributions of many rows (tabular rows are the natural case; other shapes
        are read as flat features).
    max_features : int, default 10
        Draw at most this many features.

    Returns
    -------
    matplotlib.figure.Figure
        A main axes with one scatter collection per drawn feature (``ax.collections``) and
        a colour-bar axes.

    Raises
    ------
    InputError
        Not an Explanation or a bad ``max_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import beeswarm
    >>> x = np.random.default_rng(0).normal(size=(50, 3))
    >>> e = Explanation(values=x * [2.0, -1.0, 0.1], data=x, feature_names=["a", "b", "c"])
    >>> ax = beeswarm(e).axes[0]
    >>> len(ax.collections), [t.get_text() for t in ax.get_yticklabels()]  # bottom to top
    (3, ['c', 'b', 'a'])
    """
    explanation = check_explanation(explanation, func="beeswarm")
    k = check_count(max_features, name="max_features")
    from scipy.stats import rankdata

    n = len(explanation)
    values = explanation.values.reshape(n, -1)
    data = explanation.data.reshape(n, -1)
    with np.errstate(invalid="ignore"):
        mean_abs = np.nanmean(np.abs(values), axis=0) if n else np.zeros(values.shape[1])
    key = np.where(np.isnan(mean_abs), -np.inf, mean_abs)
    order = np.argsort(-key, kind="stable")[:k][::-1]
    fig = new_figure(7.5, 1.4 + 0.45 * len(order))
    ax = fig.add_subplot()
    import matplotlib as mpl

    cmap = mpl.colormaps["coolwarm"]
    for y, j in enumerate(order):
        col = data[:, j]
        if np.ptp(col) > 0:
            shade = (rankdata(col) - 1) / max(n - 1, 1)
        else:
            shade = np.full(n, 0.5)
        v = values[:, j]
        ax.scatter(
            v,
            y + _swarm_offsets(v),
            c=shade,
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            s=12,
            linewidths=0,
            alpha=0.85,
        )
    ax.set_yticks(np.arange(len(order)), [label(explanation.feature_label(int(j))) for j in order])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("attribution")
    ax.set_ylim(-0.6, len(order) - 0.4)
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0.0, 1.0), cmap=cmap)
    cbar = fig.colorbar(sm, ax=ax, ticks=[0.0, 1.0], fraction=0.04, pad=0.02)
    cbar.ax.set_yticklabels(["low", "high"])
    cbar.set_label("feature value (rank among rows)")
    ax.set_title(f"{label(explanation.method, 40)}  ·  {n} rows", fontsize=10)
    return fig


# ---------------------------------------------------------------------- agreement
_AGREEMENT_VALUES = ("spearman", "top_k_overlap")


def _agreement_matrix(table: Any, value: str) -> tuple[np.ndarray, list[str]]:
    """Square matrix of ``value`` from :func:`lumos.importance.agreement`'s pairs."""
    columns = [str(c) for c in table.columns]
    needed = {"method_a", "method_b", value}
    if not needed <= set(columns):
        raise InputError(
            f"the table has columns {columns}; agreement_heatmap() reads the output of "
            f"lumos.importance.agreement (columns method_a, method_b, {value}) or a square "
            "matrix with labels=."
        )
    names: list[str] = []
    for a, b in zip(table["method_a"], table["method_b"], strict=True):
        for m in (str(a), str(b)):
            if m not in names:
                names.append(m)
    idx = {m: i for i, m in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(matrix, 1.0)  # a method agrees with itself (rank correlation 1, overlap 1)
    for a, b, v in zip(table["method_a"], table["method_b"], table[value], strict=True):
        i, j = idx[str(a)], idx[str(b)]
        matrix[i, j] = matrix[j, i] = float(v)
    return matrix, names


def agreement_heatmap(
    agreement: Any, *, value: str = "spearman", labels: Sequence[str] | None = None
) -> Figure:
    """Method × method agreement of global importances as an annotated heatmap.

    Parameters
    ----------
    agreement : pandas.DataFrame or array-like of shape (m, m)
        The pairs table of :func:`lumos.importance.agreement` (columns ``method_a``,
        ``method_b``, ``spearman``, ``top_k_overlap``), or a square matrix (a square
        DataFrame's index gives the labels).
    value : {"spearman", "top_k_overlap"}, default "spearman"
        Which column of the pairs table to draw. Spearman correlations use a diverging
        colormap on [-1, 1]; overlaps a sequential one on [0, 1]. The diagonal is 1.
    labels : sequence of str, optional
        Method names of a plain matrix's rows and columns.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one image (``ax.images``) holding the matrix, each cell annotated with
        its value (NaN cells, e.g. a method with all importances equal, show "n/a").

    Raises
    ------
    InputError
        A table without the needed columns, an unknown ``value``, a matrix that is not
        square or not numeric, or labels that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.plots import agreement_heatmap
    >>> m = np.array([[1.0, 0.6], [0.6, 1.0]])
    >>> fig = agreement_heatmap(m, labels=["permutation", "shap"])
    >>> fig.axes[0].images[0].get_array().shape
    (2, 2)
    """
    if value not in _AGREEMENT_VALUES:
        raise InputError(
            f"value must be one of {_AGREEMENT_VALUES} (a column of the agreement table), got "
            f"{value!r}."
        )
    if hasattr(agreement, "columns") and "method_a" in [str(c) for c in agreement.columns]:
        if labels is not None:
            raise InputError(
                "labels= names the rows of a plain matrix; a pairs table from "
                "lumos.importance.agreement names its methods itself: drop labels=."
            )
        matrix, names = _agreement_matrix(agreement, value)
    else:
        if hasattr(agreement, "columns") and hasattr(agreement, "index") and labels is None:
            labels = [str(i) for i in agreement.index]
        try:
            matrix = np.asarray(agreement, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"agreement must be the DataFrame of lumos.importance.agreement or a numeric "
                f"square matrix, got {type(agreement).__name__}."
            ) from None
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ShapeError(
                f"agreement matrix has shape {matrix.shape}; pass a square (m, m) matrix, one "
                "row and column per method, or the table of lumos.importance.agreement."
            )
        m = matrix.shape[0]
        names = [f"method {i}" for i in range(m)] if labels is None else [str(s) for s in labels]
        if len(names) != m:
            raise InputError(f"{len(names)} labels for a {m}×{m} matrix; pass one per method.")
    m = len(names)
    signed = value == "spearman"
    fig = new_figure(2.2 + 0.8 * m, 1.6 + 0.7 * m)
    ax = fig.add_subplot()
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        cmap=DIVERGING if signed else "viridis",
        vmin=-1.0 if signed else 0.0,
        vmax=1.0,
    )
    for i in range(m):
        for j in range(m):
            v = matrix[i, j]
            strong = np.isfinite(v) and (abs(v) > 0.6 if signed else v < 0.5)
            ax.text(
                j,
                i,
                "n/a" if not np.isfinite(v) else f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if strong else "black",
            )
    ticks = [label(s, 20) for s in names]
    ax.set_xticks(np.arange(m), ticks, rotation=30, ha="right")
    ax.set_yticks(np.arange(m), ticks)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03).set_label(
        "Spearman rank correlation of |importance|" if signed else "top-k overlap"
    )
    ax.set_title("agreement between methods", fontsize=10)
    return fig


# ---------------------------------------------------------------------- surrogates
def surrogate_tree(explanation: Any, max_depth: int | None = None) -> Figure:
    """The decision tree of a tree surrogate (:func:`lumos.surrogate.fit` with
    ``kind="tree"``), one box per node.

    Boxes name the split (in the units of ``x``), the training rows reaching the node and
    the surrogate's answer there, coloured by class (or output size); the held-out fidelity
    is in the title.

    Parameters
    ----------
    explanation : GlobalExplanation
        A tree surrogate still holding its fitted ``estimator`` (a surrogate read back from
        a file has none: fit it again).
    max_depth : int, optional
        Draw only the first ``max_depth`` levels.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; its ``texts`` with a box (``get_bbox_patch()``) are the nodes
        (``tree_.node_count`` of them when the whole tree is drawn), the others the
        "True" / "False" labels of the root's branches.

    Raises
    ------
    InputError
        Not a GlobalExplanation, no fitted tree (a forest, a linear surrogate, another
        method, or an explanation loaded from a file), or a bad ``max_depth``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import surrogate
    >>> from lumos.plots import surrogate_tree
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = lambda a: np.stack([a[:, 0] > 0.5, a[:, 0] <= 0.5], axis=1) * 1.0
    >>> s = surrogate.fit(model, x, max_depth=1, n_bootstrap=0, random_state=0)
    >>> texts = surrogate_tree(s).axes[0].texts
    >>> sum(t.get_bbox_patch() is not None for t in texts)  # one box per node
    3
    """
    explanation = check_global(explanation, func="surrogate_tree")
    if max_depth is not None:
        max_depth = check_count(max_depth, name="max_depth")
    est = explanation.estimator
    tree_ = getattr(est, "tree_", None)
    if est is None or tree_ is None or not hasattr(est, "get_depth"):
        if est is None:
            why = (
                "it holds no fitted estimator (estimators are not saved to files; fit the "
                "surrogate again with lumos.surrogate.fit(model, x, kind='tree'))"
            )
        elif hasattr(est, "estimators_"):
            why = (
                "its estimator is a forest of many trees; fit kind='tree' to draw one, or draw "
                "the forest's importances with lumos.plots.importance()"
            )
        else:
            why = (
                f"its estimator is a {type(est).__name__}, not a decision tree; fit "
                "lumos.surrogate.fit(model, x, kind='tree'), or draw a linear surrogate with "
                "lumos.plots.importance() (and print its .formula)"
            )
        raise InputError(f"surrogate_tree() draws a tree surrogate, but {why}.")
    from sklearn.tree import plot_tree

    n_features = int(getattr(est, "n_features_in_", len(explanation)))
    names = [label(explanation.feature_label(i), 24) for i in range(n_features)]
    class_names = None
    classes = explanation.info.get("classes")
    if hasattr(est, "classes_") and classes is not None:
        class_names = [
            label(classes[int(c)], 20) if 0 <= int(c) < len(classes) else str(c)
            for c in est.classes_
        ]
    depth = est.get_depth() if max_depth is None else min(max_depth, est.get_depth())
    leaves = 2 ** max(depth, 0)
    fig = new_figure(min(max(4.0, 1.7 * leaves), 40.0), min(max(3.0, 1.6 * (depth + 1)), 30.0))
    ax = fig.add_subplot()
    plot_tree(
        est,
        ax=ax,
        feature_names=names,
        class_names=class_names,
        filled=True,
        rounded=True,
        impurity=False,
        proportion=True,
        max_depth=max_depth,
        fontsize=8,
    )
    title = label(explanation.method, 40)
    if explanation.fidelity is not None:
        metric = explanation.info.get("fidelity_metric", "fidelity")
        title += f"  ·  held-out fidelity ({metric}) {fmt(explanation.fidelity)}"
    ax.set_title(title, fontsize=10)
    return fig


_COMPLEXITY_LABELS = {"depth": "tree depth", "n_nonzero": "non-zero features"}


def fidelity_curve(explanation: Any) -> Figure:
    """Held-out fidelity of a surrogate against its complexity (``.curve``).

    For trees and forests the fitted model cut at each depth, for linear kinds each
    sparsity level of the regularisation path; the training-part curve is dashed when
    present, and the fitted surrogate's own point is starred.

    Parameters
    ----------
    explanation : GlobalExplanation
        A surrogate from :func:`lumos.surrogate.fit` (``extras["curve"]`` of shape (k, 2):
        complexity, held-out fidelity).

    Returns
    -------
    matplotlib.figure.Figure
        One axes: a line per curve (``ax.lines``: held-out, then training when present) and
        the chosen point as a scatter collection when ``info`` records it.

    Raises
    ------
    InputError
        Not a GlobalExplanation, or one without a fidelity–complexity curve.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import GlobalExplanation
    >>> from lumos.plots import fidelity_curve
    >>> g = GlobalExplanation(importance=np.ones(3),
    ...                       extras={"curve": np.array([[1, 0.8], [2, 0.9], [3, 0.93]])})
    >>> line = fidelity_curve(g).axes[0].lines[0]
    >>> line.get_xdata().tolist(), line.get_ydata().tolist()
    ([1.0, 2.0, 3.0], [0.8, 0.9, 0.93])
    """
    explanation = check_global(explanation, func="fidelity_curve")
    curve = explanation.curve
    if curve is None:
        raise InputError(
            f"this {explanation.method!r} explanation has no fidelity–complexity curve "
            "(extras['curve']); the curve comes with surrogates: lumos.surrogate.fit(model, x)."
        )
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 2 or curve.shape[1] != 2 or len(curve) == 0:
        raise ShapeError(
            f"extras['curve'] has shape {curve.shape}; a fidelity–complexity curve has shape "
            "(k, 2): one (complexity, fidelity) pair per point."
        )
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.plot(curve[:, 0], curve[:, 1], marker="o", color=POSITIVE, label="held-out")
    train = explanation.extras.get("curve_train")
    if train is not None and np.ndim(train) == 2 and np.shape(train)[1] == 2:
        train = np.asarray(train, dtype=np.float64)
        ax.plot(
            train[:, 0], train[:, 1], marker=".", linestyle="--", color=NEGATIVE, label="training"
        )
    info = explanation.info
    chosen = info.get("complexity")
    if chosen is not None and explanation.fidelity is not None:
        ax.scatter(
            [float(chosen)],
            [explanation.fidelity],
            marker="*",
            s=180,
            color="black",
            zorder=3,
            label=f"fitted ({fmt(explanation.fidelity)})",
        )
    measure = info.get("complexity_measure")
    ax.set_xlabel(_COMPLEXITY_LABELS.get(measure, measure or "complexity"))
    metric = info.get("fidelity_metric")
    ax.set_ylabel(
        {"agreement": "fidelity (agreement with the model)", "r2": "fidelity (R²)"}.get(
            metric, "fidelity"
        )
    )
    if np.all(np.equal(np.mod(curve[:, 0], 1), 0)):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{label(explanation.method, 40)}: fidelity vs complexity", fontsize=10)
    return fig


# ---------------------------------------------------------------------- dependence
def dependence(
    explanation: Any,
    features: int | str | Sequence[int | str] | None = None,
    *,
    ice: bool = True,
    max_ice: int = 100,
) -> Figure:
    """PDP or ALE curves of :func:`lumos.importance.partial_dependence`, one panel per
    feature, with a 95% band (``± 1.96 · stderr``) and, for a PDP made with ``ice=True``,
    the rows' ICE curves in grey.

    Parameters
    ----------
    explanation : GlobalExplanation
        The output of :func:`lumos.importance.partial_dependence` (``extras["grid"]``,
        ``extras["values"]``, optionally ``extras["stderr"]`` and ``extras["ice"]``).
    features : int, str or sequence of them, optional
        Which of its features to draw (positions in the explanation or names); default all.
    ice : bool, default True
        Draw ICE curves when the explanation has them.
    max_ice : int, default 100
        Draw at most this many ICE curves per panel (evenly spaced rows, no randomness).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per drawn feature (up to 3 per row of panels; unused panels removed). In
        each: the curve (``ax.lines[0]``), the band (a ``PolyCollection``) where the
        standard errors are finite, and the ICE curves as one ``LineCollection``.

    Raises
    ------
    InputError
        Not a GlobalExplanation, one without dependence curves, unknown features, or bad
        ``ice`` / ``max_ice``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.importance import partial_dependence
    >>> from lumos.plots import dependence
    >>> x = np.random.default_rng(0).normal(size=(40, 2))
    >>> pdp = partial_dependence(lambda a: a[:, 0] ** 2 + a[:, 1], x, [0, 1], ice=True)
    >>> fig = dependence(pdp)
    >>> len(fig.axes), len(fig.axes[0].lines)
    (2, 1)
    """
    explanation = check_global(explanation, func="dependence")
    extras = explanation.extras
    if "grid" not in extras or "values" not in extras:
        raise InputError(
            f"this {explanation.method!r} explanation has no dependence curves (extras 'grid' "
            "and 'values'); make them with lumos.importance.partial_dependence(model, x, "
            "feature, kind='pdp' or 'ale')."
        )
    grid = np.asarray(extras["grid"], dtype=np.float64)
    values = np.asarray(extras["values"], dtype=np.float64)
    k = len(explanation)
    if grid.ndim != 2 or grid.shape != values.shape or len(grid) != k:
        raise ShapeError(
            f"extras['grid'] {grid.shape} and extras['values'] {values.shape} must both have "
            f"shape ({k}, G), one curve per feature."
        )
    stderr = extras.get("stderr")
    stderr = None if stderr is None else np.asarray(stderr, dtype=np.float64)
    if not isinstance(ice, (bool, np.bool_)):
        raise InputError(f"ice must be True or False, got {ice!r}.")
    ice_curves = extras.get("ice") if ice else None
    max_ice = check_count(max_ice, name="max_ice")
    chosen = _chosen_features(explanation, features)
    kind = explanation.method
    ylabel = {"pdp": "partial dependence", "ale": "accumulated local effect (centred)"}.get(
        kind, "effect"
    )
    target = explanation.info.get("target")
    if target is not None:
        ylabel += f" of output {target}"
    ncols = min(3, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig = new_figure(4.0 * ncols, 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    from matplotlib.collections import LineCollection

    for slot, b in enumerate(chosen):
        ax = axes.flat[slot]
        keep = np.isfinite(grid[b])
        z, curve = grid[b][keep], values[b][keep]
        if ice_curves is not None:
            rows = np.asarray(ice_curves, dtype=np.float64)[:, b][:, keep]
            if len(rows) > max_ice:
                rows = rows[np.linspace(0, len(rows) - 1, max_ice).round().astype(int)]
            segments = np.stack([np.broadcast_to(z, rows.shape), rows], axis=-1)
            ax.add_collection(LineCollection(segments, colors="0.6", linewidths=0.6, alpha=0.5))
        if stderr is not None and stderr.shape == values.shape:
            band = Z95 * stderr[b][keep]
            if np.isfinite(band).any():
                ax.fill_between(z, curve - band, curve + band, color=POSITIVE, alpha=0.2, lw=0)
        ax.plot(z, curve, color=POSITIVE, linewidth=2, marker="." if len(z) <= 25 else None)
        ax.set_xlabel(label(explanation.feature_label(b)))
        if slot % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.autoscale_view()
    for extra in list(axes.flat)[len(chosen) :]:
        extra.remove()
    band_note = "  ·  band: 95% interval" if stderr is not None else ""
    fig.suptitle(
        f"{kind.upper() if kind in ('pdp', 'ale') else label(kind)}{band_note}", fontsize=10
    )
    return fig


def _chosen_features(explanation: Any, features: Any) -> list[int]:
    """Positions in ``explanation`` of ``features`` (positions or names; None: all)."""
    k = len(explanation)
    if features is None:
        return list(range(k))
    items = list(features) if isinstance(features, (list, tuple, np.ndarray)) else [features]
    if not items:
        raise InputError("features is empty; pass a feature position or name, or None for all.")
    names = [explanation.feature_label(i) for i in range(k)]
    out = []
    for f in items:
        if isinstance(f, str):
            if f not in names:
                raise InputError(
                    f"feature {f!r} has no curve in this explanation; it has curves of {names}."
                )
            out.append(names.index(f))
        elif isinstance(f, (int, np.integer)) and not isinstance(f, (bool, np.bool_)):
            if not 0 <= f < k:
                raise InputError(
                    f"feature position {f} is out of range: the explanation has {k} curve(s); "
                    f"pass 0..{k - 1} or a name from {names}."
                )
            out.append(int(f))
        else:
            raise InputError(f"feature {f!r} is neither a position nor a name.")
    return out
