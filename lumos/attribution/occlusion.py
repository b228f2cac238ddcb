"""Perturbation attributions: remove a feature, group or patch and watch the output change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lumos.attribution._base import Explainer, register
from lumos.attribution._baselines import resolve_baseline
from lumos.attribution._groups import label_map, patch_map
from lumos.errors import InputError


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

        def select(start: int, stop: int, y: np.ndarray) -> np.ndarray:
            rows = np.arange(start, stop) // n_groups
            return y[np.arange(stop - start), target[rows]]

        ablated = self.model.evaluate_generated(
            make_chunk, n * n_groups, batch_size=self.batch_size, select=select
        ).reshape(n, n_groups)
        f_x = outputs[np.arange(n), target]
        group_values = f_x[:, None] - ablated
        # broadcast each group's value back to its elements (-1 = never perturbed → 0)
        lab_rows = labels if per_row else np.broadcast_to(labels, x.shape)
        padded = np.concatenate([group_values, np.zeros((n, 1))], axis=1)
        idx = np.where(lab_rows < 0, n_groups, lab_rows).reshape(n, -1)
        values = np.take_along_axis(padded, idx, axis=1).reshape(x.shape)
        base_out = self.model.evaluate(base, batch_size=self.batch_size)
        base_value = base_out[np.arange(n) if len(base) > 1 else np.zeros(n, dtype=int), target]
        result: dict[str, Any] = {
            "values": values,
            "base_value": base_value,
            "extras": {"group_values": group_values},
        }
        if self.groups is not None or self.patch_size is not None:
            result["groups"] = labels
        return result
