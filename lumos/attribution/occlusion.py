"""Perturbation attributions: remove a feature, group or patch and watch the output change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lumos.attribution._base import Explainer, register
from lumos.attribution._baselines import resolve_baseline
from lumos.attribution._groups import label_map, patch_map
from lumos.errors import InputError, ShapeError
from lumos.models.base import Model


@register("feature_ablation")
class FeatureAblation(Explainer):
    """Replace one feature, group or patch at a time by a baseline; attribute the output drop.

    The value of feature (or group) ``g`` in row ``i`` is ``f(x_i)[t_i] - f(x_i with g set to
    the baseline)[t_i]``; every element of a group carries its group's value. This is the
    leave-one-out ablation used as a sanity baseline by Zeiler & Fergus (2014, occlusion)
    and Captum's ``FeatureAblation``. All ``n × G`` perturbed inputs are generated chunk by
    chunk in the engine, so memory stays bounded.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    baseline : None, "zeros", "mean", float or array, optional
        Replacement values (see :func:`~lumos.attribution._baselines.resolve_baseline`):
        default ``"mean"`` of ``background`` when given, else zeros.
    background : array-like of shape (m, *input_shape), optional
        Reference rows for ``baseline="mean"``.
    groups : array of int or list of index lists, optional
        Label map of shape ``input_shape`` or ``(n, *input_shape)``, or flat index groups;
        each group is removed as one. Default: every scalar feature alone.
    patch_size : int or (int, int), optional
        For images ``(C, H, W)`` / ``(H, W)``: remove square patches across all channels
        (a shortcut for a patch ``groups`` map). Exclusive with ``groups``.
    batch_size : int, optional
        Maximum rows per model call.

    Notes
    -----
    ``base_value`` is the model's output at the baseline, and ``extras["group_values"]``
    (shape (n, G)) holds the value of each group.
    """

    def __init__(
        self,
        model: Any,
        *,
        baseline: Any = None,
        background: Any = None,
        groups: Any = None,
        patch_size: int | Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        if groups is not None and patch_size is not None:
            raise InputError("pass either groups= or patch_size=, not both.")
        self.baseline = baseline
        self.background = background
        self.groups = groups
        self.patch_size = patch_size

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        n = len(x)
        input_shape = x.shape[1:]
        if self.patch_size is not None:
            labels = patch_map(input_shape, self.patch_size)
        else:
            labels = label_map(self.groups, input_shape, n)
        per_row = labels.ndim == x.ndim
        n_groups = int(labels.max()) + 1
        base = resolve_baseline(self.baseline, x, background=self.background)
        # perturbations are built where the model runs (torch on its device, or numpy)
        ops = self.model.array_ops()
        x_dev, base_dev = ops.asarray(x), ops.asarray(base)
        labels_dev = ops.asarray(labels, integer=True)
        group_ids = ops.arange(0, n_groups).reshape((n_groups,) + (1,) * len(input_shape))
        identity = self.groups is None and self.patch_size is None
        flat_x = x_dev.reshape(n, -1)
        flat_base = base_dev.reshape(len(base), -1)
        shared_base = len(base) == 1

        def make_chunk(start: int, stop: int) -> Any:
            k = ops.arange(start, stop)
            rows, g = k // n_groups, k % n_groups
            if identity:  # one feature at a time: overwrite one element per row
                chunk = flat_x[rows]
                chunk[ops.arange(0, stop - start), g] = flat_base[0 if shared_base else rows, g]
                return chunk.reshape((stop - start, *input_shape))
            lab = labels_dev[rows] if per_row else labels_dev[None]
            mask = lab == group_ids[g]
            b = base_dev if shared_base else base_dev[rows]
            return ops.where(mask, b, x_dev[rows])

        ablated = _perturbed_target_outputs(
            self.model, make_chunk, n, n_groups, target, self.batch_size
        )
        f_x = outputs[np.arange(n), target]
        group_values = f_x[:, None] - ablated
        # broadcast each group's value back to its elements (-1 = never perturbed → 0)
        lab_rows = labels if per_row else np.broadcast_to(labels, x.shape)
        padded = np.concatenate([group_values, np.zeros((n, 1))], axis=1)
        idx = np.where(lab_rows < 0, n_groups, lab_rows).reshape(n, -1)
        values = np.take_along_axis(padded, idx, axis=1).reshape(x.shape)
        result: dict[str, Any] = {
            "values": values,
            "base_value": _baseline_target_output(self.model, base, target, self.batch_size),
            "extras": {"group_values": group_values},
        }
        if self.groups is not None or self.patch_size is not None:
            result["groups"] = labels
        return result


@register("occlusion")
class Occlusion(Explainer):
    """Slide a window over the input, replace it by a baseline; average the output drops.

    Sliding-window occlusion (Zeiler & Fergus, 2014). A window of ``window`` elements (across
    all channels of an image) is moved over the input in steps of ``stride``; each placement
    is replaced by the baseline and the model re-evaluated. The value of element ``e`` in row
    ``i`` is the average, over all placements ``P`` that contain ``e``, of
    ``f(x_i)[t_i] - f(x_i with P set to the baseline)[t_i]``.

    Placements follow Captum's ``Occlusion`` exactly: along an axis of size ``D``, windows of
    size ``w`` start at ``0, s, 2s, ...`` for ``ceil((D - w) / s) + 1`` positions, so the last
    one may run past the edge and is then cut to ``[start, D)``. With ``sliding_window_shapes
    = (C, h, w)`` and ``strides = (C, sh, sw)`` Captum gives the same values.

    On a table (inputs of shape ``(d,)``) the window slides along the features; the default
    window of 1 feature with stride 1 is per-feature ablation (equal to ``feature_ablation``).
    With ``stride == window`` on an image whose size the window divides, every element lies
    in exactly one window and the result equals ``feature_ablation`` with ``patch_size``.

    All ``n × n_windows`` perturbed inputs are generated chunk by chunk in the engine (on the
    model's device for torch-backed models), so memory stays bounded by one chunk.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    window : int or (int, int), optional
        Window size. Images ``(C, H, W)`` / ``(H, W)``: ``(h, w)`` in pixels (an int is a
        square), covering all channels; default ``(4, 4)``, cut to the image size when the
        image is smaller. Tables ``(d,)``: a number of consecutive features (an int or
        ``(w,)``); default ``1``.
    stride : int or (int, int), optional
        Step between window positions, per axis, at most the window size (larger steps would
        leave elements never occluded). Default: half the window, rounded up (``(2, 2)`` for
        the default image window, ``1`` for tables), so interior pixels are occluded by
        several overlapping windows as in Zeiler & Fergus. ``stride=window`` gives
        non-overlapping patches (cheapest).
    baseline : None, "zeros", "mean", float or array, optional
        Replacement values (see :func:`~lumos.attribution._baselines.resolve_baseline`):
        default ``"mean"`` of ``background`` when given, else zeros; an array of shape
        ``input_shape`` or one per row ``(n, *input_shape)``.
    background : array-like of shape (m, *input_shape), optional
        Reference rows for ``baseline="mean"``.
    batch_size : int, optional
        Maximum rows per model call.

    Notes
    -----
    ``base_value`` is the model's output at the baseline. ``extras["window_values"]``, shape
    ``(n, n_windows)``, holds the output drop of each window placement, in row-major order of
    the placement grid (``params["window_grid"]``, e.g. ``(rows, cols)`` of positions). The
    resolved geometry is recorded in ``params`` as ``resolved_window``, ``resolved_stride``,
    ``window_grid`` and ``n_windows``.

    References
    ----------
    M. D. Zeiler and R. Fergus. Visualizing and understanding convolutional networks.
    ECCV 2014. https://arxiv.org/abs/1311.2901
    """

    def __init__(
        self,
        model: Any,
        *,
        window: int | Sequence[int] | None = None,
        stride: int | Sequence[int] | None = None,
        baseline: Any = None,
        background: Any = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        for name, value in (("window", window), ("stride", stride)):
            if value is not None:
                _window_tuple(value, name)
        self.window = window
        self.stride = stride
        self.baseline = baseline
        self.background = background
        self._geometry: dict[str, Any] | None = None

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, plus the window geometry of the last :meth:`explain` call."""
        params = super().get_params()
        if self._geometry is not None:
            params.update(self._geometry)
        return params

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        n = len(x)
        input_shape = x.shape[1:]
        spatial, window, stride = _resolve_geometry(input_shape, self.window, self.stride)
        starts = [
            np.arange(_n_positions(d, w, s)) * s
            for d, w, s in zip(spatial, window, stride, strict=True)
        ]
        ends = [np.minimum(lo + w, d) for lo, w, d in zip(starts, window, spatial, strict=True)]
        grid = tuple(len(lo) for lo in starts)
        n_windows = int(np.prod(grid))
        self._geometry = {
            "resolved_window": list(window),
            "resolved_stride": list(stride),
            "window_grid": list(grid),
            "n_windows": n_windows,
        }
        base = resolve_baseline(self.baseline, x, background=self.background)
        # per placement (row-major over the grid): first and one-past-last index on each axis
        placement = np.unravel_index(np.arange(n_windows), grid)
        ops = self.model.array_ops()
        x_dev, base_dev = ops.asarray(x), ops.asarray(base)
        lo_dev = [ops.asarray(lo[p], integer=True) for lo, p in zip(starts, placement, strict=True)]
        hi_dev = [ops.asarray(hi[p], integer=True) for hi, p in zip(ends, placement, strict=True)]
        coords = [ops.arange(0, d)[None] for d in spatial]
        first_axis = len(input_shape) - len(spatial)  # 1 for (C, H, W): channels are shared
        shared_base = len(base) == 1

        def make_chunk(start: int, stop: int) -> Any:
            k = ops.arange(start, stop)
            rows, g = k // n_windows, k % n_windows
            m = stop - start
            mask = None
            for a, (lo, hi, c) in enumerate(zip(lo_dev, hi_dev, coords, strict=True)):
                inside = (c >= lo[g][:, None]) & (c < hi[g][:, None])  # (m, D_a)
                shape = [m] + [1] * len(input_shape)
                shape[1 + first_axis + a] = spatial[a]
                inside = inside.reshape(tuple(shape))
                mask = inside if mask is None else mask & inside
            b = base_dev if shared_base else base_dev[rows]
            return ops.where(mask, b, x_dev[rows])

        occluded = _perturbed_target_outputs(
            self.model, make_chunk, n, n_windows, target, self.batch_size
        )
        f_x = outputs[np.arange(n), target]
        window_values = f_x[:, None] - occluded
        # average over the placements covering each element: separable over the axes
        summed = window_values.reshape(n, *grid)
        counts = np.ones(())
        for lo, hi, d in zip(starts, ends, spatial, strict=True):
            idx = np.arange(d)
            member = ((idx[None] >= lo[:, None]) & (idx[None] < hi[:, None])).astype(np.float64)
            summed = np.tensordot(summed, member, axes=([1], [0]))  # this axis moves to the end
            counts = np.multiply.outer(counts, member.sum(axis=0))
        values = summed / counts
        if first_axis:
            values = np.broadcast_to(values[:, None], x.shape).copy()
        return {
            "values": values,
            "base_value": _baseline_target_output(self.model, base, target, self.batch_size),
            "extras": {"window_values": window_values},
        }


def _window_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``window`` / ``stride`` as a tuple of positive ints (an int stays a 1-tuple)."""
    items = [value] if np.ndim(value) == 0 else list(np.asarray(value, dtype=object).ravel())
    if np.ndim(value) > 1 or not items:
        raise ShapeError(f"{name} must be an int or a tuple of ints such as (4, 4), got {value!r}.")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(
                f"{name} must hold positive ints (sizes in elements), got {value!r}; "
                f"e.g. {name}=4 or {name}=(4, 4)."
            )
    return tuple(int(v) for v in items)


def _resolve_geometry(
    input_shape: tuple[int, ...],
    window: Any,
    stride: Any,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Spatial sizes, window and stride (one entry per spatial axis) for ``input_shape``."""
    if len(input_shape) not in (1, 2, 3):
        raise ShapeError(
            f"occlusion slides a window over tables (d,) or images (H, W) / (C, H, W); the "
            f"inputs have rows of shape {input_shape}. Use feature_ablation with groups= for "
            "other layouts."
        )
    spatial = tuple(input_shape[-2:]) if len(input_shape) > 1 else tuple(input_shape)
    kind = "image" if len(spatial) == 2 else "table"
    if window is None:
        win = tuple(min(4, d) for d in spatial) if kind == "image" else (1,)
    else:
        win = _fit_axes(_window_tuple(window, "window"), spatial, "window", kind)
    if stride is None:
        step = tuple((w + 1) // 2 for w in win)
    else:
        step = _fit_axes(_window_tuple(stride, "stride"), spatial, "stride", kind)
    if any(w > d for w, d in zip(win, spatial, strict=True)):
        raise ShapeError(
            f"window {win} is larger than the input ({kind} of size {spatial}); use a window of "
            f"at most {spatial}."
        )
    for axis, (w, s, d) in enumerate(zip(win, step, spatial, strict=True)):
        if s > w and w < d:
            raise InputError(
                f"stride {step} is larger than window {win} along axis {axis}, so some elements "
                f"would never be occluded; use a stride of at most the window, e.g. stride={win}."
            )
    return spatial, win, step


def _fit_axes(
    values: tuple[int, ...], spatial: tuple[int, ...], name: str, kind: str
) -> tuple[int, ...]:
    """An int applies to every spatial axis; a tuple must have one entry per axis."""
    if len(values) == 1:
        return values * len(spatial)
    if len(values) != len(spatial):
        example = "(4, 4) for (h, w)" if kind == "image" else "3 (features)"
        raise ShapeError(
            f"{name} has {len(values)} entries but the inputs are a {kind} with "
            f"{len(spatial)} spatial ax{'es' if len(spatial) > 1 else 'is'} {spatial} (a window "
            f"covers all channels); pass an int or e.g. {name}={example}."
        )
    return values


def _n_positions(size: int, window: int, stride: int) -> int:
    """Window positions along one axis: ``ceil((size - window) / stride) + 1`` (Captum's)."""
    return -(-(size - window) // stride) + 1


def _perturbed_target_outputs(
    model: Model,
    make_chunk: Callable[[int, int], Any],
    n_rows: int,
    n_per_row: int,
    target: np.ndarray,
    batch_size: int | None,
) -> np.ndarray:
    """Target outputs of ``n_rows × n_per_row`` perturbed inputs built lazily, shape (n, k).

    Perturbation ``k`` of row ``i`` has the global index ``i * n_per_row + k``; only the
    column ``target[i]`` of each output row is kept, so memory is one chunk of inputs plus
    ``n_rows * n_per_row`` floats.
    """

    def select(start: int, stop: int, y: np.ndarray) -> np.ndarray:
        rows = np.arange(start, stop) // n_per_row
        return y[np.arange(stop - start), target[rows]]

    return model.evaluate_generated(
        make_chunk, n_rows * n_per_row, batch_size=batch_size, select=select
    ).reshape(n_rows, n_per_row)


def _baseline_target_output(
    model: Model, base: np.ndarray, target: np.ndarray, batch_size: int | None
) -> np.ndarray:
    """``f(baseline)[target]`` per row, shape (n,), for a shared (1, ...) or per-row baseline."""
    n = len(target)
    base_out = model.evaluate(base, batch_size=batch_size)
    return base_out[np.arange(n) if len(base) > 1 else np.zeros(n, dtype=int), target]
