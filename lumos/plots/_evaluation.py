"""Evaluation plots: deletion / insertion style curves, the method × metric table of
:func:`lumos.evaluate`, and the accuracy vs interpretability trade-off."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError, ShapeError
from lumos.metrics._base import MetricResult
from lumos.metrics._evaluate import EvaluationTable
from lumos.plots._common import Z95, check_type, fmt, label, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["curves", "metric_table", "tradeoff"]

_X_LABELS = {
    "deletion": "fraction of features removed",
    "insertion": "fraction of features inserted",
    "pixel_flipping": "fraction of features removed",
}


def _results(results: Any) -> list[tuple[str, MetricResult]]:
    """``(display name, MetricResult)`` pairs from one result or a dict of them."""
    how = "pass a MetricResult (e.g. lumos.metrics.deletion(model, e)) or a dict of them."
    if isinstance(results, MetricResult):
        return [(results.method or results.name, results)]
    if isinstance(results, EvaluationTable):
        raise InputError(
            "curves() takes MetricResults; pick them from the table, e.g. "
            "{m: table[(m, 'deletion')] for m in table.methods}, or draw the whole table with "
            "lumos.plots.metric_table(table)."
        )
    if not isinstance(results, Mapping) or not results:
        check_type(results, MetricResult, name="results", func="curves", how=how)
        raise InputError(f"curves() needs at least one result; {how}")
    out = []
    for key, r in results.items():
        if not isinstance(r, MetricResult):
            raise InputError(f"results[{key!r}] is a {type(r).__name__}, not a MetricResult; {how}")
        out.append((str(key), r))
    return out


def _x_axis(r: MetricResult, k: int, key: str) -> tuple[np.ndarray, list[str] | None]:
    """Numeric positions of a curve's ``k`` points, and tick labels when ``curve_x`` is not
    numeric (layer names)."""
    if r.curve_x is None:
        return np.arange(k, dtype=np.float64), None
    cx = list(np.asarray(r.curve_x, dtype=object).reshape(-1))
    if len(cx) != k:
        raise ShapeError(
            f"results[{key!r}] has a curve of {k} points but {len(cx)} curve_x values; they "
            "must match."
        )
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in cx):
        return np.asarray(cx, dtype=np.float64), None
    return np.arange(k, dtype=np.float64), [str(v) for v in cx]


def curves(results: Any, rows: Sequence[int] | None = None) -> Figure:
    """Metric curves (deletion, insertion, pixel flipping, ...): the mean over rows with a
    95% band (``± 1.96 ·`` standard error of the mean), ``curve_x`` on the x-axis.

    Parameters
    ----------
    results : MetricResult or dict of str to MetricResult
        Results with a ``curve`` of shape (n, k) (one per row) or (k,) (one for all rows,
        e.g. model randomisation), e.g. ``{"occlusion": deletion(model, e1), "lime":
        deletion(model, e2)}``.
    rows : sequence of int, optional
        Average over these rows only (default all; NaN points are left out of the mean).

    Returns
    -------
    matplotlib.figure.Figure
        One axes: one line per result (``ax.lines``), labelled with its mean score, and one
        band (``ax.collections``) per per-row curve averaged over at least two rows.

    Raises
    ------
    InputError
        Something other than MetricResults, a result without a curve, or rows out of range.
    ShapeError
        ``curve_x`` that does not match the curve.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.metrics import MetricResult
    >>> from lumos.plots import curves
    >>> r = MetricResult("deletion", scores=[0.4, 0.5], higher_is_better=False,
    ...                  category="faithfulness", curve=[[1.0, 0.5, 0.0], [1.0, 0.7, 0.1]],
    ...                  curve_x=[0.0, 0.5, 1.0], method="occlusion")
    >>> ax = curves(r).axes[0]
    >>> ax.lines[0].get_ydata().tolist(), len(ax.collections)
    ([1.0, 0.6, 0.05], 1)
    """
    items = _results(results)
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    ticks: list[str] | None = None
    names = {r.name for _, r in items}
    for key, r in items:
        if r.curve is None:
            raise InputError(
                f"results[{key!r}] ({r.name}) has no curve; curves come from metrics such as "
                "deletion, insertion, pixel_flipping, region_perturbation or "
                "model_randomisation. Draw mean scores with lumos.plots.metric_table()."
            )
        curve = np.asarray(r.curve, dtype=np.float64)
        k = curve.shape[-1]
        x, tick_labels = _x_axis(r, k, key)
        ticks = ticks or tick_labels
        band = None
        if curve.ndim == 2:
            n = len(curve)
            chosen = np.arange(n) if rows is None else _rows(rows, n, key)
            part = curve[chosen]
            finite = np.isfinite(part)
            count = finite.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, np.nansum(part, axis=0) / count, np.nan)
                if len(part) >= 2:
                    dev = np.where(finite, part - mean, 0.0)
                    sd = np.where(count > 1, np.sqrt((dev**2).sum(axis=0) / (count - 1)), np.nan)
                    band = Z95 * sd / np.sqrt(count)
        elif curve.ndim == 1:
            mean = curve
        else:
            raise ShapeError(
                f"results[{key!r}] has a curve of shape {curve.shape}; expected (n, k) or (k,)."
            )
        score = f"{r.name} {fmt(r.mean)}" if np.isfinite(r.mean) else r.name
        text = f"{label(key, 28)}  ({score})" if key != r.name or len(names) > 1 else score
        (line,) = ax.plot(x, mean, marker="." if k <= 30 else None, label=text)
        if band is not None and np.isfinite(band).any():
            ax.fill_between(x, mean - band, mean + band, color=line.get_color(), alpha=0.2, lw=0)
    if ticks is not None:
        ax.set_xticks(np.arange(len(ticks)), [label(t, 16) for t in ticks], rotation=45, ha="right")
    output_curves = names <= set(_X_LABELS)
    if len(names) == 1:
        ax.set_xlabel(_X_LABELS.get(next(iter(names)), "step"))
    else:
        ax.set_xlabel("fraction of features removed / inserted" if output_curves else "step")
    ax.set_ylabel("model output (explained target)" if output_curves else "curve value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    arrows = ", ".join(f"{n} {'↑' if r.higher_is_better else '↓'}" for n, r in _by_name(items))
    ax.set_title(f"{arrows}  ·  mean ± 95% band", fontsize=10)
    return fig


def _by_name(items: list[tuple[str, MetricResult]]) -> list[tuple[str, MetricResult]]:
    seen: dict[str, MetricResult] = {}
    for _, r in items:
        seen.setdefault(r.name, r)
    return list(seen.items())


def _rows(rows: Any, n: int, key: str) -> np.ndarray:
    if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
        rows = [rows]
    try:
        idx = np.asarray(list(rows))
    except TypeError:
        raise InputError(f"rows must be a sequence of row indices, got {rows!r}.") from None
    if idx.size == 0 or idx.dtype.kind not in "iu":
        raise InputError(f"rows must be a non-empty sequence of int row indices, got {rows!r}.")
    if (idx < -n).any() or (idx >= n).any():
        raise InputError(
            f"rows {idx.tolist()} are out of range for results[{key!r}], which has {n} rows; "
            f"pass indices in 0..{n - 1}."
        )
    return idx % n


def metric_table(table: Any) -> Figure:
    """The method × metric table of :func:`lumos.evaluate` as a heatmap coloured by rank.

    Rows are methods, columns metrics (``↑`` higher is better, ``↓`` lower is better); each
    cell is coloured by the method's rank on that metric (1 = best, green, respecting the
    metric's direction; ties share their mean rank) and annotated with the mean score. Cells
    without a score (metric skipped or undefined) are blank and read "—".

    Parameters
    ----------
    table : EvaluationTable

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one image (``ax.images``) whose data are the ranks, shape
        (n_methods, n_metrics), one text per cell, and a colour-bar axes.

    Raises
    ------
    InputError
        Not an EvaluationTable, or one without methods or metrics.

    Examples
    --------
    >>> import numpy as np, lumos
    >>> from lumos import Explanation
    >>> from lumos.plots import metric_table
    >>> x = np.random.default_rng(0).normal(size=(4, 3))
    >>> f = lambda a: a @ np.array([1.0, -2.0, 0.5])
    >>> es = {"good": Explanation(values=x * [1.0, -2.0, 0.5], data=x),
    ...       "flat": Explanation(values=np.ones((4, 3)), data=x)}
    >>> t = lumos.evaluate(f, es, metrics=["sparseness"])
    >>> metric_table(t).axes[0].images[0].get_array().shape
    (2, 1)
    """
    check_type(
        table,
        EvaluationTable,
        name="table",
        func="metric_table",
        how="make one with lumos.evaluate(model, {name: explanation}, metrics=...).",
    )
    methods, metrics = list(table.methods), list(table.metrics)
    if not methods or not metrics:
        raise InputError(
            "the table has no scores to draw (no methods or no metric ran); check "
            "table.skipped for the reasons."
        )
    ranks = table.ranks()
    rank = np.array([[ranks[m][meth] for m in metrics] for meth in methods], dtype=np.float64)
    means = np.array([[table.mean(meth, m) for m in metrics] for meth in methods])
    direction = {}
    for m in metrics:
        hib = next((table[(meth, m)].higher_is_better for meth in methods
                    if (meth, m) in table.results), None)  # fmt: skip
        direction[m] = "" if hib is None else (" ↑" if hib else " ↓")
    fig = new_figure(2.0 + 1.1 * len(metrics), 1.6 + 0.5 * len(methods))
    ax = fig.add_subplot()
    worst = max(len(methods), 2)
    import matplotlib as mpl
    from matplotlib.colors import ListedColormap

    # the middle of red-yellow-green: no cell fully saturated, black annotations readable
    cmap = ListedColormap(mpl.colormaps["RdYlGn_r"](np.linspace(0.12, 0.88, 256)))
    image = ax.imshow(
        np.ma.masked_invalid(rank), cmap=cmap, vmin=1.0, vmax=float(worst), aspect="auto"
    )
    for i in range(len(methods)):
        for j in range(len(metrics)):
            v = means[i, j]
            text = "—" if not np.isfinite(v) else f"{v:.3g}\n#{rank[i, j]:g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(
        np.arange(len(metrics)),
        [label(m, 24) + direction[m] for m in metrics],
        rotation=35,
        ha="right",
    )
    ax.set_yticks(np.arange(len(methods)), [label(m, 24) for m in methods])
    cbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, ticks=np.arange(1, worst + 1))
    cbar.set_label("rank (1 = best)")
    cbar.ax.invert_yaxis()
    ax.set_title("explanation quality: mean score and rank per metric", fontsize=10)
    return fig


def _records(points: Any) -> list[Mapping[str, Any]]:
    if hasattr(points, "to_dict") and hasattr(points, "columns"):
        points = points.to_dict("records")
    if isinstance(points, Mapping) or isinstance(points, (str, bytes)):
        raise InputError(
            "tradeoff() takes a sequence of points, one dict per model, e.g. "
            "[{'label': 'L1=0.01', 'accuracy': 0.95, 'sparseness': 0.4}, ...]."
        )
    try:
        records = list(points)
    except TypeError:
        raise InputError(
            f"tradeoff() takes a sequence of dicts (or a DataFrame), got {type(points).__name__}."
        ) from None
    if not records:
        raise InputError("tradeoff() got no points; pass at least one dict of scores.")
    for i, p in enumerate(records):
        if not isinstance(p, Mapping):
            raise InputError(
                f"point {i} is a {type(p).__name__}, not a dict; pass one dict per model, "
                "e.g. {'label': 'L1=0.01', 'accuracy': 0.95, 'fidelity': 0.9}."
            )
    return records


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def tradeoff(
    points: Any,
    *,
    performance: str = "accuracy",
    measures: Sequence[str] | None = None,
    label_key: str = "label",
) -> Figure:
    """Accuracy against interpretability: one line per interpretability measure through the
    models (points), each point labelled.

    Typical use: the same network trained at several L1 strengths, each point holding its
    test accuracy, its explanations' sparseness and its surrogate's fidelity. The x-axis is
    the measure's value, the y-axis the performance; the lines follow the points in the
    order given (e.g. increasing regularisation).

    Parameters
    ----------
    points : sequence of dict, or pandas.DataFrame
        One record per model, e.g. ``{"label": "L1=0.01", "accuracy": 0.95,
        "sparseness": 0.41, "fidelity": 0.92}``.
    performance : str, default "accuracy"
        The key holding the y-axis value.
    measures : sequence of str, optional
        Keys of the interpretability measures; default every numeric key of the first point
        other than ``performance`` and ``label_key``.
    label_key : str, default "label"
        Key of each point's label (points without one are numbered).

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one line per measure (``ax.lines``) and one label per point and
        measure (``ax.texts``).

    Raises
    ------
    InputError
        No points, a point that is not a dict, a missing key or a non-numeric value, or no
        measure to draw.

    Examples
    --------
    >>> from lumos.plots import tradeoff
    >>> pts = [{"label": "L1=0", "accuracy": 0.97, "sparseness": 0.3, "fidelity": 0.85},
    ...        {"label": "L1=0.1", "accuracy": 0.93, "sparseness": 0.6, "fidelity": 0.95}]
    >>> ax = tradeoff(pts).axes[0]
    >>> len(ax.lines), len(ax.texts)
    (2, 4)
    """
    records = _records(points)
    if measures is None:
        measures = [
            str(k)
            for k, v in records[0].items()
            if k not in (performance, label_key) and _number(v)
        ]
    else:
        if isinstance(measures, str):
            measures = [measures]
        measures = [str(m) for m in measures]
    if not measures:
        raise InputError(
            f"the points hold no interpretability measure besides {performance!r}; add "
            "numeric keys such as 'sparseness' or 'fidelity', or name them with measures=[...]."
        )
    if performance in measures:
        raise InputError(f"{performance!r} is the performance axis; drop it from measures.")

    def value(i: int, p: Mapping[str, Any], key: str) -> float:
        if key not in p:
            raise InputError(
                f"point {i} has no {key!r} (keys: {sorted(map(str, p))}); give every point the "
                f"same keys, or choose others with performance= / measures=."
            )
        v = p[key]
        if not _number(v):
            raise InputError(f"point {i}: {key!r} is {v!r}, not a number.")
        return float(v)

    y = np.array([value(i, p, performance) for i, p in enumerate(records)])
    names = [str(p.get(label_key, f"#{i}")) for i, p in enumerate(records)]
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    for m in measures:
        x = np.array([value(i, p, m) for i, p in enumerate(records)])
        ax.plot(x, y, marker="o", label=label(m, 28))
        for xi, yi, name in zip(x, y, names, strict=True):
            ax.annotate(
                label(name, 20), (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=7
            )
    ax.set_xlabel("interpretability (" + ", ".join(label(m, 20) for m in measures) + ")")
    ax.set_ylabel(label(performance, 40))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{label(performance, 40)} vs interpretability", fontsize=10)
    return fig
