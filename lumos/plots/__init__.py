"""Figures of lumos results (matplotlib). Every function takes result objects, never
computes an explanation, and returns a new :class:`matplotlib.figure.Figure` on its own Agg
canvas: nothing is registered with pyplot (no global state, nothing to close, works
headless); save it with ``fig.savefig(path)`` or show it in a notebook by evaluating it.

Local (one row of an :class:`~lumos.Explanation`):

- :func:`bar`: signed attributions, with 95% error bars when the method gives stderr.
- :func:`waterfall`: from the base value to the prediction, feature by feature.

Global:

- :func:`importance`: ranked importances of a :class:`~lumos.GlobalExplanation` with 95%
  confidence intervals.
- :func:`beeswarm`: attribution against feature value over many rows.
- :func:`agreement_heatmap`: :func:`lumos.importance.agreement` as a method × method map.
- :func:`surrogate_tree`: the tree of a ``lumos.surrogate.fit(kind="tree")`` surrogate.
- :func:`fidelity_curve`: a surrogate's held-out fidelity against its complexity.
- :func:`dependence`: PDP / ALE curves with ICE curves and standard-error bands.

Images:

- :func:`image_attribution`: the map over its image (diverging colormap centred at 0).
- :func:`lime_segments`: the superpixels of LIME and their weights.
- :func:`compare_methods`: images × methods grid.

Evaluation:

- :func:`curves`: deletion / insertion (and other) metric curves, mean ± 95% band.
- :func:`metric_table`: :func:`lumos.evaluate`'s table coloured by rank.
- :func:`tradeoff`: accuracy against interpretability measures.
"""

from __future__ import annotations

from lumos.plots._evaluation import curves, metric_table, tradeoff
from lumos.plots._global import (
    agreement_heatmap,
    beeswarm,
    dependence,
    fidelity_curve,
    importance,
    surrogate_tree,
)
from lumos.plots._images import compare_methods, image_attribution, lime_segments
from lumos.plots._local import bar, waterfall

__all__ = [
    "agreement_heatmap",
    "bar",
    "beeswarm",
    "compare_methods",
    "curves",
    "dependence",
    "fidelity_curve",
    "image_attribution",
    "importance",
    "lime_segments",
    "metric_table",
    "surrogate_tree",
    "tradeoff",
    "waterfall",
]
