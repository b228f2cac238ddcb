"""Local plots of one explained row: signed bars and the waterfall from the base value to
the prediction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError
from lumos.plots._common import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    Z95,
    check_count,
    check_explanation,
    check_row,
    fmt,
    label,
    new_figure,
    row_title,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["bar", "waterfall"]


def _feature_text(explanation: Any, j: int, row: int) -> str:
    """``name = value`` of flat feature ``j`` in row ``row``."""
    value = float(explanation.data[row].reshape(-1)[j])
    return f"{label(explanation.feature_label(j))} = {fmt(value)}"


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``|values|`` (NaN last, ties by index), largest first."""
    key = np.where(np.isnan(values), -np.inf, np.abs(values))
    return np.argsort(-key, kind="stable")[:k]


def bar(explanation: Any, row: int = 0, max_features: int = 10) -> Figure:
    """Signed attributions of one row as horizontal bars, largest ``|value|`` on top.

    Positive values (pushing the explained output up) are red, negative ones blue. When the
    explanation has standard errors (stochastic estimators such as ``sampling_shapley``),
    each bar carries a 95% error bar, ``± 1.96 · stderr``.

    Parameters
    ----------
    explanation : Explanation
        Local attributions; rows of any shape are read as flat features (tabular rows are
        the natural case), labelled by their feature names.
    row : int, default 0
        The row to draw (negative counts from the end).
    max_features : int, default 10
        Draw the features with the largest ``|value|``, at most this many.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one bar per drawn feature (``ax.patches``), labelled
        ``name = input value``; error bars (``ax.containers``) only with ``stderr``.

    Raises
    ------
    InputError
        Not an Explanation, a row out of range, or a bad ``max_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import bar
    >>> e = Explanation(values=np.array([[0.5, -2.0, 0.1]]), data=np.ones((1, 3)),
    ...                 feature_names=["age", "income", "tenure"])
    >>> fig = bar(e, max_features=2)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()][::-1]  # top to bottom
    ['income = 1', 'age = 1']
    """
    explanation = check_explanation(explanation, func="bar")
    row = check_row(explanation, row)
    k = check_count(max_features, name="max_features")
    values = explanation.values[row].reshape(-1)
    order = _top(values, k)[::-1]  # barh draws bottom-up: largest last, on top
    shown = values[order]
    fig = new_figure(7.0, 1.4 + 0.38 * len(order))
    ax = fig.add_subplot()
    colors = [POSITIVE if v >= 0 else NEGATIVE for v in np.nan_to_num(shown)]
    pos = np.arange(len(order))
    xerr = None
    if explanation.stderr is not None:
        xerr = Z95 * explanation.stderr[row].reshape(-1)[order]
    ax.barh(
        pos, shown, color=colors, xerr=xerr, ecolor="black", capsize=3 if xerr is not None else 0
    )
    ax.set_yticks(pos, [_feature_text(explanation, int(j), row) for j in order])
    ax.axvline(0.0, color="black", linewidth=0.8)
    xlabel = "attribution"
    if xerr is not None:
        xlabel += "  (error bars: 95% interval, ± 1.96 stderr)"
    ax.set_xlabel(xlabel)
    title = row_title(explanation, row)
    if len(order) < len(values):
        title += f"\ntop {len(order)} of {len(values)} features by |attribution|"
    ax.set_title(title, fontsize=10)
    return fig


def waterfall(explanation: Any, row: int = 0, max_features: int = 10) -> Figure:
    """How one row's prediction is built from the base value, one feature at a time.

    Bars are stacked from ``base_value`` (bottom) to ``prediction`` (top): the features
    with the largest ``|value|`` each get a bar (largest on top), the others are folded into
    one ``"N other features"`` bar. Explanations whose values do not add up to
    ``prediction - base_value`` (methods without the completeness property, e.g. LIME or
    feature ablation) get a grey ``"not attributed"`` bar holding the gap, so the last bar
    always ends exactly at the prediction and the gap is visible rather than hidden.

    Parameters
    ----------
    explanation : Explanation
        Local attributions with ``base_value`` and ``prediction`` (every lumos method
        records them); rows of any shape are read as flat features.
    row : int, default 0
    max_features : int, default 10
        Features drawn with their own bar; the rest share one.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; ``ax.patches`` are the bars in the order they are stacked (gap first when
        there is one, then the folded features, then the features by increasing
        ``|value|``); the last one ends at the prediction. Two vertical lines mark the base
        value and the prediction.

    Raises
    ------
    InputError
        Not an Explanation, a row out of range, a bad ``max_features``, or no
        ``base_value`` / ``prediction`` (draw those with :func:`bar`).

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import waterfall
    >>> e = Explanation(values=np.array([[0.5, -2.0, 0.1]]), data=np.ones((1, 3)),
    ...                 base_value=1.0, prediction=-0.4)
    >>> bars = waterfall(e, max_features=2).axes[0].patches
    >>> len(bars), round(float(bars[-1].get_x() + bars[-1].get_width()), 12)
    (3, -0.4)
    """
    explanation = check_explanation(explanation, func="waterfall")
    row = check_row(explanation, row)
    k = check_count(max_features, name="max_features")
    if explanation.base_value is None or explanation.prediction is None:
        missing = "base_value" if explanation.base_value is None else "prediction"
        raise InputError(
            f"waterfall() runs from the base value to the prediction, but this explanation has "
            f"no {missing}; build it with Explanation(..., base_value=..., prediction=...) or "
            "draw the attributions alone with lumos.plots.bar()."
        )
    values = explanation.values[row].reshape(-1)
    if not np.isfinite(values).all():
        raise InputError(
            f"row {row} has NaN or infinite attributions, which cannot be stacked; draw it with "
            "lumos.plots.bar() or fix the explanation."
        )
    base = float(explanation.base_value[row])
    prediction = float(explanation.prediction[row])
    order = _top(values, k)
    rest = np.setdiff1d(np.arange(len(values)), order)
    steps: list[tuple[str, float, str]] = []  # (label, delta, colour), bottom-up
    gap = prediction - (base + float(values.sum()))
    scale = max(abs(base), abs(prediction), float(np.abs(values).sum()), 1.0)
    if abs(gap) > 1e-12 * scale:
        steps.append(("not attributed (prediction − base − Σ values)", gap, NEUTRAL))
    if len(rest):
        delta = float(values[rest].sum())
        steps.append((f"{len(rest)} other features", delta, POSITIVE if delta >= 0 else NEGATIVE))
    for j in order[::-1]:
        v = float(values[j])
        steps.append((_feature_text(explanation, int(j), row), v, POSITIVE if v >= 0 else NEGATIVE))
    starts = base + np.concatenate([[0.0], np.cumsum([d for _, d, _ in steps])[:-1]])
    # the last bar ends at the prediction exactly (not at a float sum that may differ by ulps)
    widths = [d for _, d, _ in steps]
    widths[-1] = prediction - starts[-1]
    fig = new_figure(7.5, 1.8 + 0.38 * len(steps))
    ax = fig.add_subplot()
    pos = np.arange(len(steps))
    ax.barh(pos, widths, left=starts, color=[c for _, _, c in steps])
    for y, (start, width) in enumerate(zip(starts, widths, strict=True)):
        ax.annotate(  # right of the bar, clear of the feature labels on the left
            f"{'+' if width >= 0 else '−'}{fmt(abs(width))}",
            (max(start, start + width), y),
            xytext=(3, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(pos, [name for name, _, _ in steps])
    ax.axvline(base, color="black", linestyle=":", linewidth=1)
    ax.axvline(prediction, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(f"model output   (base value {fmt(base)}  →  prediction {fmt(prediction)})")
    ax.set_title(row_title(explanation, row), fontsize=10)
    ax.margins(x=0.2)
    return fig
