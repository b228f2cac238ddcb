"""Reference inputs (``baseline``) shared by perturbation and path methods."""

from __future__ import annotations

from typing import Any

import numpy as np

from lumos._validation import check_array, check_name
from lumos.errors import InputError, ShapeError

BASELINE_NAMES = ("zeros", "mean", "blurred")


def blur(x: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian blur of images over their two spatial axes (channels and rows kept apart).

    Parameters
    ----------
    x : ndarray of shape (n, H, W) or (n, C, H, W)
    sigma : float, optional
        Standard deviation in pixels; default ``max(H, W) / 8``.

    Returns
    -------
    ndarray of the same shape
    """
    from scipy.ndimage import gaussian_filter

    if x.ndim not in (3, 4):
        raise ShapeError(
            f"a blurred baseline needs images of shape (H, W) or (C, H, W); the rows have shape "
            f"{x.shape[1:]}. Use baseline='zeros', 'mean' or an array for tables."
        )
    h, w = x.shape[-2:]
    s = float(sigma) if sigma is not None else max(h, w) / 8
    return gaussian_filter(x, sigma=(0,) * (x.ndim - 2) + (s, s), mode="nearest")


def resolve_baseline(
    baseline: Any,
    x: np.ndarray,
    *,
    background: Any = None,
    blur_sigma: float | None = None,
) -> np.ndarray:
    """Resolve a baseline specification to an array broadcastable against ``x``.

    Parameters
    ----------
    baseline : None, "zeros", "mean", "blurred", float, or array
        ``None`` is ``"mean"`` when ``background`` is given, else ``"zeros"``. ``"mean"`` is
        the mean of ``background`` per feature; ``"blurred"`` is each image Gaussian-blurred
        (see :func:`blur`). A float fills every feature. An array of shape ``input_shape`` is
        one baseline for all rows; shape (n, *input_shape) gives one per row.
    x : ndarray of shape (n, *input_shape)
    background : array-like of shape (m, *input_shape), optional
    blur_sigma : float, optional
        Blur standard deviation in pixels for ``"blurred"``.

    Returns
    -------
    ndarray of shape (1, *input_shape) or (n, *input_shape)
    """
    input_shape = x.shape[1:]
    if baseline is None:
        baseline = "mean" if background is not None else "zeros"
    if isinstance(baseline, str):
        check_name(baseline, BASELINE_NAMES, kind="baseline")
        if baseline == "zeros":
            return np.zeros((1, *input_shape))
        if baseline == "blurred":
            return blur(x, blur_sigma)
        if background is None:
            raise InputError("baseline='mean' needs background=<rows of training data>.")
        bg, _ = check_array(background, name="background", input_shape=input_shape)
        return bg.mean(axis=0, keepdims=True)
    if np.isscalar(baseline):
        value = float(baseline)  # type: ignore[arg-type]
        if not np.isfinite(value):
            raise InputError("baseline must be finite.")
        return np.full((1, *input_shape), value)
    arr, _ = check_array(np.asarray(baseline)[None], name="baseline")
    arr = arr[0]
    if arr.shape == input_shape:
        return arr[None]
    if arr.shape == x.shape:
        return arr
    raise ShapeError(
        f"baseline has shape {arr.shape}; pass one input of shape {input_shape} or one per row "
        f"{x.shape}."
    )
