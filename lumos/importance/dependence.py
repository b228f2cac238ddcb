"""Feature-effect curves: partial dependence (PDP, with ICE curves) and accumulated local
effects (ALE), one 1-D curve per chosen feature of a tabular model."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lumos._validation import check_name, check_target
from lumos.errors import InputError, ShapeError, TargetError, UnknownNameError
from lumos.explanation import GlobalExplanation, _provenance
from lumos.models.base import Model, wrap

__all__ = ["partial_dependence"]

KINDS = ("pdp", "ale")


def partial_dependence(
    model: Any,
    x: Any,
    feature: int | str | Sequence[int | str],
    *,
    kind: str = "pdp",
    grid: int | Sequence[float] | Sequence[Sequence[float]] | np.ndarray = 20,
    target: int | str | None = None,
    ice: bool = False,
    batch_size: int | None = None,
) -> GlobalExplanation:
    """How the model's ``target`` output depends on each chosen feature, averaged over ``x``.

    ``kind="pdp"`` is the partial dependence of Friedman (2001): at each grid value ``z``,
    the mean over the rows of ``x`` of ``f(x_i with feature j set to z)``. The curve is on
    the model's output scale (not centred). Each row's own curve is its individual
    conditional expectation (ICE, Goldstein et al. 2015), returned with ``ice=True``.

    ``kind="ale"`` is the accumulated local effect of Apley & Zhu (2020): the grid values
    are bin edges ``z_0 < ... < z_K``; each row lies in one bin ``(z_{k-1}, z_k]`` (rows at
    ``z_0`` in the first) and contributes its local effect ``f(x_i with x_ij = z_k) -
    f(x_i with x_ij = z_{k-1})``; the per-bin means are summed up to each edge. Only
    changes within a row's own bin are evaluated, so unlike the PDP the curve never asks
    the model about combinations of feature values far from the data, and it stays
    faithful when features are correlated. The curve is centred: linearly interpolated
    between the edges, it has mean zero over the rows of ``x``.

    All perturbed copies (``n × G`` per feature for a PDP, ``2 n`` per feature for ALE) of
    all chosen features are built chunk by chunk and sent through the engine
    (:meth:`lumos.Model.evaluate_generated`) in one pass, keeping only the target output.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts, on tabular inputs of shape (n, d).
    x : array-like of shape (n, d)
        The rows the curves average over (numpy, torch or pandas DataFrame). Their cost is
        linear in ``n``: pass a subsample for a large data set.
    feature : int, str, or sequence of them
        The feature(s) to draw a curve for: column indices in ``0..d-1`` or feature names
        (the DataFrame's columns or the model's ``feature_names``). One 1-D curve per
        feature; no two-feature interaction surfaces.
    kind : {"pdp", "ale"}
        Partial dependence or accumulated local effects.
    grid : int or array-like, default 20
        An int ``G >= 2``: the grid is the ``G`` quantiles of the feature over ``x`` at
        levels ``0, 1/(G-1), ..., 1`` (``numpy.quantile`` with ``method="inverted_cdf"``,
        so the grid holds observed values, from the minimum to the maximum), duplicates
        removed; for ALE these are the bin edges (quantile bins, as customary). A feature
        with at most ``G`` distinct values (binary, categorical codes, counts) uses its
        distinct values as the grid. An array of shape (G,): these values (sorted,
        duplicates removed) for every chosen feature; a sequence of such arrays: one grid
        per chosen feature. For ALE, rows outside an explicit grid's range are left out
        (their number is in ``info["n_rows_used"]``).
    target : int or str, optional
        The output whose curve is drawn (an index or a class name). Default: the model's
        only output; for classifiers the class predicted most often on ``x`` (ties: the
        lowest index). A multi-output regression model needs an explicit ``target``.
    ice : bool, default False
        ``kind="pdp"`` only: also return every row's curve in ``extras["ice"]``
        (``n × k × G`` floats).
    batch_size : int, optional
        Maximum rows per model call; the curves do not depend on it.

    Returns
    -------
    GlobalExplanation
        With ``method`` ``"pdp"`` or ``"ale"``, ``feature_names`` the chosen features'
        names (``"x{j}"`` when the model has none), and:

        - ``importance`` (k,): the variability of each curve. PDP: the standard deviation
          (``ddof=1``) of the partial dependence over its grid values (Greenwell, Boehmke
          & McCarthy 2018). ALE: the standard deviation of the centred ALE curve over the
          rows of ``x`` (the curve interpolated at each row's value; ``ddof=0``, its mean
          being zero), i.e. how much the feature moves the output over the data.
        - ``extras["grid"]`` (k, G): the grid of each feature (ALE: the bin edges),
          ``G`` the largest grid size, shorter grids padded with NaN.
        - ``extras["values"]`` (k, G): the curve at each grid value, NaN-padded.
        - ``extras["stderr"]`` (k, G): standard error bands. PDP: the standard error of
          the mean over the rows at each grid value (``std(ddof=1) / sqrt(n)``; NaN for
          one row). ALE: propagated from the per-bin local effects (each bin's
          ``std(ddof=1) / sqrt(n_k)``, bins independent, the centring constant's own
          uncertainty included); NaN when some bin holds a single row.
        - ``extras["ice"]`` (n, k, G): PDP with ``ice=True`` only, each row's curve.
        - ``extras["bin_counts"]`` (k, G - 1): ALE only, rows per bin (float, NaN-padded).

        ``stderr`` (of the importance) is ``None``. ``info`` records the resolved
        ``target`` and how it was chosen (``target_rule``), the feature indices
        (``features``), each grid's size (``n_grid``), which features used their distinct
        values as the grid (``discrete``) and the rows used (``n_rows_used``).

    Raises
    ------
    ShapeError
        Inputs that are not a table (images: use the local methods).
    UnknownNameError
        An unknown ``kind`` or feature name.
    InputError
        A bad ``feature`` index, a bad ``grid``, a constant feature, ``ice`` with ALE, an
        empty ALE bin of an explicit grid; empty data (``EmptyInputError``) and NaN / inf
        (``NonFiniteError``).
    TargetError
        A target that is not one output index or class name.

    References
    ----------
    J. H. Friedman. Greedy function approximation: a gradient boosting machine. Annals of
    Statistics 29(5), 2001.

    A. Goldstein, A. Kapelner, J. Bleich and E. Pitkin. Peeking inside the black box:
    visualizing statistical learning with plots of individual conditional expectation.
    JCGS 24(1), 2015. https://arxiv.org/abs/1309.6392

    B. M. Greenwell, B. C. Boehmke and A. J. McCarthy. A simple and effective model-based
    variable importance measure. 2018. https://arxiv.org/abs/1805.04755

    D. W. Apley and J. Zhu. Visualizing the effects of predictor variables in black box
    supervised learning models. JRSS B 82(4), 2020. https://arxiv.org/abs/1612.08468

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.importance.dependence import partial_dependence
    >>> f = lambda a: 2.0 * a[:, 0] - a[:, 1]
    >>> x = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    >>> e = partial_dependence(f, x, 0, grid=3)
    >>> e.extras["grid"], e.extras["values"]
    (array([[0., 1., 2.]]), array([[-3., -1.,  1.]]))
    """
    start_time = time.perf_counter()
    check_name(kind, KINDS, kind="partial dependence kind")
    if not isinstance(ice, (bool, np.bool_)):
        raise InputError(f"ice must be True or False, got {ice!r}.")
    if ice and kind != "pdp":
        raise InputError(
            "ice=True asks for individual conditional expectation curves, which belong to "
            "kind='pdp'; drop ice=True or use kind='pdp'."
        )
    model = wrap(model)
    if batch_size is not None:
        model.resolve_batch_size(batch_size)
    arr, _ = model.check_input(x)
    if arr.ndim != 2:
        raise ShapeError(
            f"partial dependence and ALE curves are for tables of shape (n, d); the inputs "
            f"have rows of shape {arr.shape[1:]}. For images use the local methods "
            "(occlusion, feature_ablation with patch_size=, grad_cam, integrated_gradients), "
            "or flatten engineered features into a table first."
        )
    n, d = arr.shape
    names = model.feature_names
    features = _resolve_features(feature, d, names)
    grids, discrete = _resolve_grids(grid, arr, features, names, kind)
    tgt, rule = _resolve_target(model, arr, target, batch_size)

    labels = [names[j] if names is not None else f"x{j}" for j in features]
    k = len(features)
    width = max(len(g) for g in grids)
    pad_grid = np.full((k, width), np.nan)
    for b, g in enumerate(grids):
        pad_grid[b, : len(g)] = g
    values = np.full((k, width), np.nan)
    stderr = np.full((k, width), np.nan)
    importance = np.empty(k)
    extras: dict[str, np.ndarray] = {}

    if kind == "pdp":
        blocks = [
            (j, np.arange(n), np.broadcast_to(g, (n, len(g))))
            for j, g in zip(features, grids, strict=True)
        ]
        curves = _evaluate_blocks(model, arr, blocks, tgt, batch_size)
        ice_curves = np.full((n, k, width), np.nan) if ice else None
        for b, c in enumerate(curves):
            size = c.shape[1]
            values[b, :size] = c.mean(axis=0)
            if n > 1:
                stderr[b, :size] = c.std(axis=0, ddof=1) / np.sqrt(n)
            importance[b] = values[b, :size].std(ddof=1)
            if ice_curves is not None:
                ice_curves[:, b, :size] = c
        n_used = [n] * k
        if ice_curves is not None:
            extras["ice"] = ice_curves
    else:
        bins = []
        blocks = []
        for j, g in zip(features, grids, strict=True):
            col = arr[:, j]
            rows = np.flatnonzero((col >= g[0]) & (col <= g[-1]))
            label = names[j] if names is not None else f"x{j}"
            if len(rows) == 0:
                raise InputError(
                    f"no row of x has feature {label!r} inside the grid [{g[0]:g}, {g[-1]:g}]; "
                    "pass bin edges that cover the data, or grid=<int> for quantile bins."
                )
            idx = np.clip(np.searchsorted(g, col[rows], side="left") - 1, 0, len(g) - 2)
            counts = np.bincount(idx, minlength=len(g) - 1)
            if (counts == 0).any():
                empty = int(np.flatnonzero(counts == 0)[0])
                raise InputError(
                    f"the ALE bin ({g[empty]:g}, {g[empty + 1]:g}] of feature {label!r} holds no "
                    "row of x, so its local effect is unknown; pass fewer or other bin edges, "
                    "or grid=<int> for quantile bins (never empty)."
                )
            bins.append((rows, idx, counts))
            blocks.append((j, rows, np.stack([g[idx], g[idx + 1]], axis=1)))
        diffs = _evaluate_blocks(model, arr, blocks, tgt, batch_size)
        bin_counts = np.full((k, width - 1), np.nan)
        for b, (c, g, (rows, idx, counts)) in enumerate(zip(diffs, grids, bins, strict=True)):
            curve, band, spread = _ale_curve(c[:, 1] - c[:, 0], arr[rows, features[b]], g, idx)
            values[b, : len(g)] = curve
            stderr[b, : len(g)] = band
            importance[b] = spread
            bin_counts[b, : len(g) - 1] = counts
        n_used = [len(rows) for rows, _, _ in bins]
        extras["bin_counts"] = bin_counts

    extras = {"grid": pad_grid, "values": values, "stderr": stderr, **extras}
    params = {
        "feature": feature.tolist() if isinstance(feature, np.ndarray) else feature,
        "kind": kind,
        "grid": grid if isinstance(grid, (int, np.integer)) else _grid_param(grid),
        "target": target,
        "ice": bool(ice),
        "batch_size": batch_size,
    }
    info = {
        "target": tgt,
        "target_rule": rule,
        "features": features,
        "n_grid": [len(g) for g in grids],
        "discrete": discrete,
        "n_rows": n,
        "n_rows_used": n_used,
    }
    return GlobalExplanation(
        importance=importance,
        feature_names=labels,
        method=kind,
        params=params,
        elapsed_s=time.perf_counter() - start_time,
        extras=extras,
        info=info,
        provenance=_provenance(model=model, input_shape=arr.shape[1:]),
    )


# ---------------------------------------------------------------------- resolution
def _resolve_features(feature: Any, d: int, names: list[str] | None) -> list[int]:
    """Column indices of ``feature`` (an index, a name, or a sequence of them)."""
    if isinstance(feature, (list, tuple, np.ndarray)):
        items = list(np.asarray(feature).tolist()) if isinstance(feature, np.ndarray) else feature
    else:
        items = [feature]
    if len(items) == 0:
        raise InputError("feature is empty; pass a feature index or name, or a list of them.")
    out = []
    for f in items:
        if isinstance(f, str):
            if names is None:
                raise UnknownNameError(
                    f"feature {f!r} is given by name but the model has no feature names; pass x "
                    "as a pandas DataFrame, wrap the model with feature_names=[...], or give "
                    "the column index."
                )
            out.append(names.index(check_name(f, names, kind="feature")))
        elif isinstance(f, (int, np.integer)) and not isinstance(f, (bool, np.bool_)):
            if not 0 <= f < d:
                raise InputError(
                    f"feature index {f} is out of range for {d} features; use an index in "
                    f"0..{d - 1} or a feature name."
                )
            out.append(int(f))
        else:
            raise InputError(
                f"feature {f!r} is neither a column index nor a feature name; pass an int in "
                f"0..{d - 1}, a name, or a list of them."
            )
    if len(set(out)) != len(out):
        raise InputError(f"feature lists a column twice ({items!r}); list each feature once.")
    return out


def _resolve_grids(
    grid: Any, x: np.ndarray, features: list[int], names: list[str] | None, kind: str
) -> tuple[list[np.ndarray], list[bool]]:
    """Sorted grid (ALE: bin edges) of each chosen feature, and whether it is the feature's
    distinct values."""
    k = len(features)

    def label(j: int) -> str:
        return repr(names[j]) if names is not None else f"{j}"

    if isinstance(grid, (int, np.integer)) and not isinstance(grid, (bool, np.bool_)):
        if grid < 2:
            raise InputError(
                f"grid={grid} is too few points for a curve; use grid >= 2 (default 20) or "
                "pass the grid values as an array."
            )
        grids, discrete = [], []
        for j in features:
            col = x[:, j]
            distinct = np.unique(col)
            if len(distinct) < 2:
                raise InputError(
                    f"feature {label(j)} is constant ({distinct[0]:g}) on x, so it has no "
                    "curve; drop it from feature=, use rows where it varies, or (kind='pdp') "
                    "pass the grid values to evaluate as grid=[...]."
                )
            if len(distinct) <= grid:
                grids.append(distinct)
                discrete.append(True)
            else:
                levels = np.linspace(0.0, 1.0, int(grid))
                grids.append(np.unique(np.quantile(col, levels, method="inverted_cdf")))
                discrete.append(False)
        return grids, discrete
    if isinstance(grid, (bool, np.bool_, float, np.floating, str)) or grid is None:
        raise InputError(
            f"grid must be an int >= 2 (number of quantile grid points) or an array of grid "
            f"values, got {grid!r}."
        )
    per_feature = (
        isinstance(grid, (list, tuple)) and len(grid) > 0 and all(np.ndim(g) >= 1 for g in grid)
    )
    if per_feature:
        if len(grid) != k:
            raise InputError(
                f"grid holds {len(grid)} arrays for {k} chosen feature(s); pass one grid per "
                "feature, or a single 1-D array used for all of them."
            )
        raw = list(grid)
    else:
        raw = [grid] * k
    grids = []
    for j, g in zip(features, raw, strict=True):
        try:
            values = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"the grid of feature {label(j)} is not numeric ({g!r}); pass numbers."
            ) from None
        if values.ndim != 1:
            raise InputError(
                f"the grid of feature {label(j)} has shape {values.shape}; pass a 1-D array of "
                "grid values (or one 1-D array per feature)."
            )
        if not np.isfinite(values).all():
            raise InputError(
                f"the grid of feature {label(j)} contains NaN or infinite values; pass finite "
                "grid values."
            )
        values = np.unique(values)
        if len(values) < 2:
            what = "bin edges" if kind == "ale" else "grid values"
            raise InputError(
                f"the grid of feature {label(j)} has {len(values)} distinct value(s); a curve "
                f"needs at least 2 {what}."
            )
        grids.append(values)
    return grids, [False] * k


def _grid_param(grid: Any) -> Any:
    """An explicit grid as it is recorded in ``params`` (arrays or lists of arrays)."""
    if isinstance(grid, (list, tuple)) and all(np.ndim(g) >= 1 for g in grid):
        return [np.asarray(g, dtype=np.float64) for g in grid]
    return np.asarray(grid, dtype=np.float64)


def _resolve_target(
    model: Model, x: np.ndarray, target: Any, batch_size: int | None
) -> tuple[int, str]:
    """One output index and the rule that chose it."""
    if target is not None:
        if not isinstance(target, str) and np.ndim(target) > 0:
            raise TargetError(
                "a dependence curve is of one output for all rows; pass target as one output "
                "index or class name, not one per row."
            )
        idx = check_target(target, 1, model.n_outputs, class_names=model.class_names)
        return int(idx[0]), "given"
    outputs = model.evaluate(x, batch_size=batch_size)
    n_outputs = outputs.shape[1]
    if n_outputs == 1:
        return 0, "the model's only output"
    if model.output_kind == "regression":
        raise TargetError(
            f"this regression model has {n_outputs} outputs; say which one to draw with "
            f"target=<index in 0..{n_outputs - 1}>."
        )
    counts = np.bincount(model.predicted_class(outputs), minlength=n_outputs)
    return int(np.argmax(counts)), "the class predicted most often on x"


# ---------------------------------------------------------------------- engine
def _evaluate_blocks(
    model: Model,
    x: np.ndarray,
    blocks: list[tuple[int, np.ndarray, np.ndarray]],
    target: int,
    batch_size: int | None,
) -> list[np.ndarray]:
    """Target output of every copy of every block, in one lazy pass through the engine.

    Block ``(j, rows, vals)`` stands for the copies ``x[rows[r]]`` with column ``j`` set to
    ``vals[r, g]``, global index ``offset + r * G + g``; the result of the block has the
    shape of ``vals``, (len(rows), G).
    """
    sizes = [vals.size for _, _, vals in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    ops = model.array_ops()
    x_dev = ops.asarray(x)

    def make_chunk(start: int, stop: int) -> Any:
        row_ids = np.empty(stop - start, dtype=np.int64)
        cols = np.empty(stop - start, dtype=np.int64)
        vals = np.empty(stop - start, dtype=np.float64)
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        last = int(np.searchsorted(offsets, stop - 1, side="right")) - 1
        for b in range(first, last + 1):  # the few blocks (features) this chunk touches
            j, rows, block_vals = blocks[b]
            lo, hi = max(start, offsets[b]), min(stop, offsets[b + 1])
            local = np.arange(lo - offsets[b], hi - offsets[b])
            r, g = np.divmod(local, block_vals.shape[1])
            row_ids[lo - start : hi - start] = rows[r]
            cols[lo - start : hi - start] = j
            vals[lo - start : hi - start] = block_vals[r, g]
        chunk = x_dev[ops.asarray(row_ids, integer=True)]
        chunk[ops.arange(0, stop - start), ops.asarray(cols, integer=True)] = ops.asarray(vals)
        return chunk

    def select(start: int, stop: int, y: np.ndarray) -> np.ndarray:
        return y[:, target]

    out = model.evaluate_generated(
        make_chunk, int(offsets[-1]), batch_size=batch_size, select=select
    )[:, 0]
    return [
        out[offsets[b] : offsets[b + 1]].reshape(vals.shape)
        for b, (_, _, vals) in enumerate(blocks)
    ]


def _ale_curve(
    effects: np.ndarray, col: np.ndarray, edges: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Centred ALE at the edges, its standard error, and its std over the rows.

    Parameters
    ----------
    effects : ndarray of shape (m,)
        Each row's local effect across its own bin.
    col : ndarray of shape (m,)
        The rows' values of the feature.
    edges : ndarray of shape (K + 1,)
        Bin edges.
    idx : ndarray of shape (m,)
        Each row's bin in ``0..K-1`` (no bin empty).

    Returns
    -------
    curve : ndarray of shape (K + 1,)
    stderr : ndarray of shape (K + 1,)
    spread : float
    """
    n_bins = len(edges) - 1
    m = len(effects)
    counts = np.bincount(idx, minlength=n_bins)
    means = np.bincount(idx, weights=effects, minlength=n_bins) / counts
    squares = np.bincount(idx, weights=(effects - means[idx]) ** 2, minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        se2 = np.where(counts > 1, squares / (counts - 1) / counts, np.nan)
    uncentred = np.concatenate([[0.0], np.cumsum(means)])
    # the curve between edges is linear: row i sits at uncentred[b] + t_i * means[b]
    t = (col - edges[idx]) / (edges[idx + 1] - edges[idx])
    at_rows = uncentred[idx] + t * means[idx]
    centre = at_rows.mean()
    # centre = Σ_l a_l means_l, a_l = (#rows above bin l + Σ_{rows in l} t_i) / m, so the
    # centred curve at edge k is Σ_l means_l (1[l < k] - a_l): bins are independent
    above = m - np.cumsum(counts)
    a = (above + np.bincount(idx, weights=t, minlength=n_bins)) / m
    coef = (np.arange(n_bins)[None, :] < np.arange(n_bins + 1)[:, None]) - a[None, :]
    stderr = np.sqrt(coef**2 @ se2)
    spread = float(np.sqrt(np.mean((at_rows - centre) ** 2)))
    return uncentred - centre, stderr, spread
