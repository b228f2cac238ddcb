"""Feature groups: turn ``groups`` / ``patch_size`` arguments into an integer label map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lumos.errors import InputError, ShapeError


def label_map(
    groups: Any,
    input_shape: tuple[int, ...],
    n_rows: int,
) -> np.ndarray:
    """Normalise a grouping to integer labels.

    Parameters
    ----------
    groups : None, array of int, or sequence of sequences of int
        ``None``: every scalar feature is its own group. An integer array of shape
        ``input_shape`` (one map for all rows) or ``(n_rows, *input_shape)`` (one per row),
        labels ``0..G-1`` and ``-1`` for elements never perturbed. A list of index groups:
        flat feature indices per group (elements in no group are never perturbed).
    input_shape : tuple of int
    n_rows : int

    Returns
    -------
    ndarray of int64, shape input_shape or (n_rows, *input_shape)
    """
    d = int(np.prod(input_shape))
    if groups is None:
        return np.arange(d, dtype=np.int64).reshape(input_shape)
    if (
        isinstance(groups, Sequence)
        and not isinstance(groups, np.ndarray)
        and groups
        and all(isinstance(g, (Sequence, np.ndarray)) and not isinstance(g, str) for g in groups)
    ):
        labels = np.full(d, -1, dtype=np.int64)
        for gi, members in enumerate(groups):
            idx = np.asarray(members, dtype=np.int64).ravel()
            if idx.size == 0:
                raise InputError(f"group {gi} is empty; every group needs at least one feature.")
            if idx.min() < 0 or idx.max() >= d:
                raise InputError(f"group {gi} has feature indices outside 0..{d - 1}.")
            if (labels[idx] >= 0).any():
                raise InputError(f"group {gi} overlaps an earlier group; groups must be disjoint.")
            labels[idx] = gi
        return labels.reshape(input_shape)
    arr = np.asarray(groups)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise InputError("groups must be an integer label map or a list of index lists.")
    if arr.shape not in (tuple(input_shape), (n_rows, *input_shape)):
        raise ShapeError(
            f"groups has shape {arr.shape}; a label map must have the input's shape "
            f"{tuple(input_shape)} or one per row {(n_rows, *input_shape)}."
        )
    if arr.min() < -1:
        raise InputError("group labels must be >= 0 (or -1 for elements never perturbed).")
    if arr.max() < 0:
        raise InputError("groups marks no element to perturb; use labels >= 0.")
    return arr.astype(np.int64)


def patch_map(input_shape: tuple[int, ...], patch_size: int | Sequence[int]) -> np.ndarray:
    """Label map of square (or rectangular) patches over the last two (spatial) axes.

    Every channel of a patch shares its label, so a patch is removed across channels.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W)`` or ``(C, H, W)``.
    patch_size : int or (int, int)

    Returns
    -------
    ndarray of int64, shape input_shape
    """
    if len(input_shape) not in (2, 3):
        raise ShapeError(
            f"patch_size needs image inputs of shape (H, W) or (C, H, W); got {input_shape}. "
            "For tables, use groups= instead."
        )
    ph, pw = (patch_size, patch_size) if np.isscalar(patch_size) else tuple(patch_size)
    if int(ph) < 1 or int(pw) < 1:
        raise InputError(f"patch_size must be >= 1, got {patch_size}.")
    h, w = input_shape[-2:]
    rows = np.arange(h) // int(ph)
    cols = np.arange(w) // int(pw)
    n_cols = int(cols.max()) + 1
    grid = rows[:, None] * n_cols + cols[None, :]
    return np.broadcast_to(grid, input_shape).astype(np.int64).copy()
