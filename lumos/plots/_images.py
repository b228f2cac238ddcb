"""Image plots: an attribution map over its image, LIME's superpixels, and a grid comparing
methods on the same images. Rows are (H, W) or channels-first (C, H, W), as everywhere in
lumos; maps are the channels' sum (signed) or the sum of their magnitudes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError, ShapeError
from lumos.explanation import Explanation
from lumos.plots._common import (
    channel_map,
    check_explanation,
    check_image_shape,
    check_row,
    display_image,
    grayscale,
    hide_frame,
    label,
    new_figure,
    resolve_image,
    row_title,
    signed_norm,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["compare_methods", "image_attribution", "lime_segments"]


def image_attribution(
    explanation: Any,
    row: int = 0,
    image: Any = None,
    *,
    reduce: str = "sum",
    alpha: float = 0.6,
) -> Figure:
    """One row's attribution map drawn over its image, with a colour bar.

    Signed maps use a diverging colormap centred at 0 (``vmin = -vmax``, ``vmax`` the
    largest ``|value|``: red raises the explained output, blue lowers it); maps without
    negative values (``reduce="abs"``, saliency, Grad-CAM) a sequential one from 0.

    Parameters
    ----------
    explanation : Explanation
        Attributions of images, rows of shape (H, W) or (C, H, W).
    row : int, default 0
    image : array-like, optional
        What to draw under the map, shape (H, W), (C, H, W) or (H, W, C) (e.g. the
        unnormalised picture); default the explained input, rescaled to [0, 1].
    reduce : {"sum", "abs"}, default "sum"
        How channels become one map: their sum (keeps the sign) or the sum of their
        magnitudes.
    alpha : float in [0, 1], default 0.6
        Opacity of the map.

    Returns
    -------
    matplotlib.figure.Figure
        A main axes with two images (``ax.images``: the picture in grey levels, the mean
        of its channels scaled to [0, 1], then the map) and a colour-bar axes.

    Raises
    ------
    ShapeError
        Tabular rows (use :func:`bar`) or an ``image`` of another size.
    InputError
        Not an Explanation, a row out of range, a bad ``reduce`` or ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import image_attribution
    >>> x = np.random.default_rng(0).random((1, 1, 8, 8))
    >>> e = Explanation(values=x - 0.5, data=x)
    >>> heat = image_attribution(e).axes[0].images[1]
    >>> heat.norm.vmin == -heat.norm.vmax
    True
    """
    explanation = check_explanation(explanation, func="image_attribution")
    check_image_shape(explanation, func="image_attribution")
    row = check_row(explanation, row)
    picture = resolve_image(explanation, row, image, func="image_attribution")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise InputError(f"alpha must be a number in [0, 1], got {alpha!r}.")
    heat = channel_map(explanation.values[row], reduce)
    fig = new_figure(5.0, 4.2)
    ax = fig.add_subplot()
    shown, _ = display_image(picture)
    ax.imshow(grayscale(shown), cmap="gray", vmin=0.0, vmax=1.0)
    cmap, vmin, vmax = signed_norm(heat)
    mappable = ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=float(alpha))
    fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04).set_label(
        "attribution" + (" (|·| summed over channels)" if reduce == "abs" else "")
    )
    hide_frame(ax)
    ax.set_title(row_title(explanation, row), fontsize=9)
    return fig


def _segments(explanation: Explanation, row: int, *, func: str) -> np.ndarray:
    """Row ``row``'s component map as (H, W) integer labels."""
    groups = explanation.groups
    if groups is None:
        raise InputError(
            f"{func}() draws the superpixels an explanation was computed on, but this "
            f"{explanation.method!r} explanation has no segment map (groups); run "
            "lumos.explain(model, x, method='lime') (or feature_ablation with groups=) on "
            "images, or build the Explanation with groups=<label map>."
        )
    seg = groups[row] if groups.shape == explanation.values.shape else groups
    if seg.ndim == 3:
        seg = seg[0]  # channels share their segments
    return np.asarray(seg).astype(np.int64, copy=False)


def boundary_segments(seg: np.ndarray) -> np.ndarray:
    """Pixel edges between differently labelled neighbours of a label map (H, W), as line
    segments of shape (m, 2, 2) in image coordinates (pixel centres at integers): crisp
    outlines at any image size, unlike painting boundary pixels."""
    rows, cols = np.nonzero(seg[:, 1:] != seg[:, :-1])  # between (r, c) and (r, c + 1)
    vertical = np.stack(
        [np.stack([cols + 0.5, rows - 0.5], -1), np.stack([cols + 0.5, rows + 0.5], -1)], 1
    )
    rows, cols = np.nonzero(seg[1:, :] != seg[:-1, :])  # between (r, c) and (r + 1, c)
    horizontal = np.stack(
        [np.stack([cols - 0.5, rows + 0.5], -1), np.stack([cols + 0.5, rows + 0.5], -1)], 1
    )
    return np.concatenate([vertical, horizontal]).astype(np.float64)


def lime_segments(
    explanation: Any, row: int = 0, image: Any = None, *, reduce: str = "sum"
) -> Figure:
    """The superpixels an image explanation was computed on, and their weights.

    Left: the image with the segment boundaries (``explanation.groups``, as LIME on images
    records them). Right: each segment coloured by its attribution (the map of
    :func:`image_attribution`, constant on a segment) with the boundaries on top. The
    boundaries are drawn as lines along the pixel edges between segments.

    Parameters
    ----------
    explanation : Explanation
        An explanation of images with a segment map in ``groups`` (LIME on images, or
        ``feature_ablation`` / ``kernel_shap`` with ``groups=``).
    row : int, default 0
    image : array-like, optional
        Picture to draw, shape (H, W), (C, H, W) or (H, W, C); default the explained input.
    reduce : {"sum", "abs"}, default "sum"
        How channels become one map.

    Returns
    -------
    matplotlib.figure.Figure
        Two image axes and a colour-bar axes. ``fig.axes[0]``: the image (``images``) and
        the boundaries (one ``LineCollection``, one segment per pixel edge between two
        superpixels); ``fig.axes[1]``: the image in grey levels, the weights and the same
        boundaries.

    Raises
    ------
    ShapeError
        Tabular rows, or an ``image`` of another size.
    InputError
        Not an Explanation, a row out of range, no segment map, or a bad ``reduce``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import lime_segments
    >>> seg = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 4, 0), 4, 1)  # 4 squares
    >>> x = np.random.default_rng(0).random((1, 8, 8))
    >>> e = Explanation(values=(seg - 1.5)[None], data=x, groups=seg)
    >>> left, right = lime_segments(e).axes[:2]
    >>> len(left.images), len(right.images), len(left.collections[0].get_segments())
    (1, 2, 16)
    """
    from matplotlib.collections import LineCollection

    explanation = check_explanation(explanation, func="lime_segments")
    check_image_shape(explanation, func="lime_segments")
    row = check_row(explanation, row)
    picture = resolve_image(explanation, row, image, func="lime_segments")
    seg = _segments(explanation, row, func="lime_segments")
    heat = channel_map(explanation.values[row], reduce)
    shown, gray = display_image(picture)
    edges = boundary_segments(seg)
    h, w = seg.shape
    fig = new_figure(8.5, 4.0)
    left, right = fig.subplots(1, 2)
    left.imshow(shown, cmap=gray, vmin=0.0, vmax=1.0)
    left.add_collection(LineCollection(edges, colors="#ffd700", linewidths=1.2))
    left.set_title(f"{len(np.unique(seg))} segments", fontsize=9)
    right.imshow(grayscale(shown), cmap="gray", vmin=0.0, vmax=1.0)
    cmap, vmin, vmax = signed_norm(heat)
    mappable = right.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.7)
    right.add_collection(LineCollection(edges, colors="black", linewidths=0.8))
    right.set_title(row_title(explanation, row), fontsize=9)
    fig.colorbar(mappable, ax=right, fraction=0.046, pad=0.04).set_label("segment attribution")
    for ax in (left, right):
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        hide_frame(ax)
    return fig


def compare_methods(
    explanations: Mapping[str, Any],
    rows: Sequence[int] | None = None,
    *,
    reduce: str = "sum",
) -> Figure:
    """A grid comparing several methods on the same images: one row of panels per image,
    the input first, then one map per method.

    Each map has its own colour scale (diverging and symmetric around 0 for signed maps,
    sequential for non-negative ones, ``vmax`` its largest ``|value|``), so the panels
    compare where each method puts its relevance, not the methods' units.

    Parameters
    ----------
    explanations : dict of str to Explanation
        Explanations of the same images (same ``data``) by different methods, by display
        name.
    rows : sequence of int, optional
        The rows to draw; default the first (up to) 4.
    reduce : {"sum", "abs"}, default "sum"
        How channels become one map.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(rows) × (1 + len(explanations))`` axes, row by row, each with one image.

    Raises
    ------
    InputError
        Not a non-empty dict of Explanations, rows out of range or empty, explanations of
        different inputs, or a bad ``reduce``.
    ShapeError
        Tabular rows, or explanations of differently shaped images.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> from lumos.plots import compare_methods
    >>> x = np.random.default_rng(0).random((3, 1, 8, 8))
    >>> maps = {"a": Explanation(values=x, data=x), "b": Explanation(values=-x, data=x)}
    >>> len(compare_methods(maps, rows=[0, 2]).axes)
    6
    """
    if not isinstance(explanations, Mapping) or not explanations:
        raise InputError(
            "compare_methods() takes a non-empty dict {name: Explanation}, e.g. "
            "{'integrated gradients': e1, 'occlusion': e2}."
        )
    items = [
        (str(k), check_explanation(v, func="compare_methods")) for k, v in explanations.items()
    ]
    first_name, first = items[0]
    check_image_shape(first, func="compare_methods")
    for name, e in items[1:]:
        if e.input_shape != first.input_shape:
            raise ShapeError(
                f"{name!r} explains images of shape {e.input_shape} but {first_name!r} of "
                f"{first.input_shape}; compare explanations of the same images."
            )
    if rows is None:
        rows = list(range(min(4, min(len(e) for _, e in items))))
    elif isinstance(rows, (int, np.integer)):
        rows = [int(rows)]
    rows = list(rows)
    if not rows:
        raise InputError("rows is empty; pass the row indices to draw, e.g. rows=[0, 1].")
    picked = []
    for r in rows:
        idx = [check_row(e, r) for _, e in items]
        for (name, e), i in zip(items[1:], idx[1:], strict=True):
            if not np.allclose(e.data[i], first.data[idx[0]], equal_nan=True):
                raise InputError(
                    f"row {r} of {name!r} is not the same input as row {r} of {first_name!r}; "
                    "compare explanations of the same images in the same order."
                )
        picked.append(idx)
    n_cols = 1 + len(items)
    h, w = first.input_shape[-2:]
    cell = 2.2
    fig = new_figure(cell * n_cols, cell * len(rows) * max(h / w, 0.5) + 0.6)
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for i, idx in enumerate(picked):
        shown, gray = display_image(resolve_image(first, idx[0], None, func="compare_methods"))
        ax = axes[i, 0]
        ax.imshow(shown, cmap=gray, vmin=0.0, vmax=1.0)
        hide_frame(ax)
        t = int(first.target[idx[0]])
        names = first.class_names
        what = label(names[t], 16) if names is not None and 0 <= t < len(names) else f"output {t}"
        ax.set_ylabel(f"row {rows[i]}\n{what}", fontsize=8)
        if i == 0:
            ax.set_title("input", fontsize=9)
        for c, ((name, e), r) in enumerate(zip(items, idx, strict=True), start=1):
            heat = channel_map(e.values[r], reduce)
            cmap, vmin, vmax = signed_norm(heat)
            ax = axes[i, c]
            ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax)
            hide_frame(ax)
            if i == 0:
                ax.set_title(label(name, 20), fontsize=9)
    fig.suptitle("each map scaled to its own largest |value|; red +, blue −", fontsize=8)
    return fig
