"""Image datasets: scikit-learn's digits, upsampled, and synthetic shapes with known masks.

Images are returned channels-first, ``(n, 1, size, size)`` float64 in ``[0, 1]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lumos._random import RandomState, check_random_state
from lumos.datasets._base import Dataset
from lumos.datasets.tabular import _check_float, _check_int, _stratified_split
from lumos.errors import InputError

__all__ = ["digits", "synthetic_shapes"]


# --------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------


def digits(
    size: int = 28,
    *,
    flatten: bool = False,
    test_size: float | int = 0.25,
    random_state: RandomState = 0,
) -> Dataset:
    """Handwritten digits 0-9 from scikit-learn, upsampled to ``size`` x ``size``.

    The 1797 8x8 images of :func:`sklearn.datasets.load_digits` (bundled with
    scikit-learn, no download) are resized with bilinear interpolation
    (:func:`skimage.transform.resize`, ``order=1``, edge padding, no anti-aliasing),
    divided by 16 so that values lie in ``[0, 1]``, and split stratified by class.

    Parameters
    ----------
    size : int, default 28
        Side of the output images, at least 8.
    flatten : bool, default False
        Return rows of ``size * size`` pixels (with ``feature_names`` ``"px_<row>_<col>"``)
        instead of images of shape (1, size, size).
    test_size : float or int, default 0.25
        Fraction of rows in (0, 1), or number of rows, put in the test split.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the split.

    Returns
    -------
    Dataset
        ``x_train`` of shape (n_train, 1, size, size) (or (n_train, size * size) when
        ``flatten``), float64 in [0, 1]; ``y_*`` int64 digit labels; ``class_names``
        ``["0", ..., "9"]``; ``feature_names`` ``None`` unless ``flatten``.
        ``preprocessing`` holds ``"scale"`` (16.0, the original maximum),
        ``"original_size"`` (8) and ``"size"``.

    Raises
    ------
    InputError
        If ``size`` is not an int >= 8 or ``test_size`` / ``random_state`` is invalid.
    """
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    size = _check_int("size", size, 8)
    if not isinstance(flatten, bool | np.bool_):
        raise InputError(f"flatten must be True or False, got {flatten!r}.")
    rng = check_random_state(random_state)
    raw = load_digits()
    images = np.asarray(raw.images, dtype=np.float64)  # (1797, 8, 8), values 0..16
    y = np.asarray(raw.target, dtype=np.int64)
    n = images.shape[0]
    if size == 8:
        big = images.copy()
    else:
        # Resizing the stack keeps axis 0 (same length), so each image is resized alone.
        big = resize(
            images,
            (n, size, size),
            order=1,
            mode="edge",
            anti_aliasing=False,
            preserve_range=True,
        )
    x = np.clip(big / 16.0, 0.0, 1.0)
    if flatten:
        x = x.reshape(n, size * size)
        feature_names: list[str] | None = [f"px_{r}_{c}" for r in range(size) for c in range(size)]
    else:
        x = x[:, None, :, :]
        feature_names = None
    train_idx, test_idx = _stratified_split(y, test_size, rng)
    layout = f"flattened to rows of {size * size} pixels" if flatten else "channels-first"
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x[train_idx]),
        y_train=y[train_idx],
        x_test=np.ascontiguousarray(x[test_idx]),
        y_test=y[test_idx],
        feature_names=feature_names,
        class_names=[str(d) for d in range(10)],
        task="classification",
        description=(
            "Optical recognition of handwritten digits (UCI; E. Alpaydin and C. Kaynak, 1998) "
            "as bundled with scikit-learn (sklearn.datasets.load_digits): 1797 8x8 grey-level "
            f"images with values 0..16, labelled 0-9. Each image was upsampled to {size}x{size} "
            "with bilinear interpolation (skimage.transform.resize, order=1, edge mode, no "
            f"anti-aliasing), divided by 16 into [0, 1] and {layout}. Rows were split into "
            f"train ({len(train_idx)}) and test ({len(test_idx)}) stratified by digit."
        ),
        ground_truth={},
        oracle=None,
        preprocessing={"scale": 16.0, "original_size": 8, "size": size},
    )


# --------------------------------------------------------------------------------------
# Synthetic shapes
# --------------------------------------------------------------------------------------

SHAPE_CLASSES: tuple[str, ...] = ("square", "disk", "cross")

_BACKGROUND = 0.2  # mean background level before noise


def _cross_width(side: int) -> int:
    """Arm width of a cross of extent ``side``: about a third, same parity as ``side``."""
    width = max(1, side // 3)
    if (side - width) % 2:
        width += 1
    return width


def _shape_mask(kind: int, side: int) -> np.ndarray:
    """Boolean mask of shape (side, side) whose tight bounding box is the whole array."""
    if kind == 0:  # square
        return np.ones((side, side), dtype=bool)
    if kind == 1:  # disk
        centre = (side - 1) / 2.0
        rr, cc = np.mgrid[:side, :side]
        return (rr - centre) ** 2 + (cc - centre) ** 2 <= (side / 2.0) ** 2
    width = _cross_width(side)  # plus-shaped cross
    lo = (side - width) // 2
    mask = np.zeros((side, side), dtype=bool)
    mask[lo : lo + width, :] = True
    mask[:, lo : lo + width] = True
    return mask


def _draw_distractor(
    rng: np.random.Generator, size: int, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a thin line segment at a random place and angle, away from ``box``.

    The segment never touches the shape's bounding box grown by one pixel (rejection
    sampling; after 100 failed tries the last segment is used and the shape is drawn over
    it). The box does not depend on the class, so neither does the distractor.
    """
    from skimage.draw import line

    r0, c0, r1, c1 = box
    rr = cc = np.empty(0, dtype=np.intp)
    for _ in range(100):
        length = rng.uniform(size / 4.0, size / 2.0)
        angle = rng.uniform(0.0, np.pi)
        dr, dc = length * np.sin(angle), length * np.cos(angle)
        start_r = rng.uniform(0.0, size - 1.0 - dr)
        start_c = rng.uniform(max(0.0, -dc), min(size - 1.0, size - 1.0 - dc))
        rr, cc = line(round(start_r), round(start_c), round(start_r + dr), round(start_c + dc))
        keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        rr, cc = rr[keep], cc[keep]
        hits = (rr >= r0 - 1) & (rr < r1 + 1) & (cc >= c0 - 1) & (cc < c1 + 1)
        if not hits.any():
            break
    return rr, cc


def synthetic_shapes(
    n: int = 600,
    size: int = 32,
    *,
    seed: RandomState = 0,
    test_size: float | int = 0.25,
    noise: float = 0.1,
) -> Dataset:
    """Grey images whose class is decided only by a shape drawn at a random position.

    Each image has a noisy background (level 0.2 plus Gaussian noise of std ``noise``),
    one filled shape of class ``"square"``, ``"disk"`` or ``"cross"`` (a plus sign with
    arms about a third of its extent wide), and one class-independent distractor: a thin
    line segment at a random position and angle, drawn with the same brightness as the
    shape and never touching it. The shape's extent ``s`` (side of its bounding box) is
    drawn uniformly from ``[ceil(size / 5), floor(size / 3)]`` and its position uniformly
    inside the image; the brightness of shape and line is drawn from U(0.7, 1.0) per
    image. Classes are balanced (counts differ by at most one) and pixels are clipped to
    ``[0, 1]``. Outside the shape's bounding box, the distribution of every pixel does not
    depend on the class, and inside the box but off the shape there is only background:
    only the shape's pixels tell the classes apart. (The per-image mean over all pixels
    off the shape still moves by about 3e-4 between classes, only because the shapes
    cover different areas.)

    Parameters
    ----------
    n : int, default 600
        Total number of images (train + test), at least 6.
    size : int, default 32
        Side of the images, at least 16.
    seed : int, numpy.random.Generator or None, default 0
        Seed of every random draw; the same int gives identical data.
    test_size : float or int, default 0.25
        Fraction of rows in (0, 1), or number of rows, put in the test split (stratified).
    noise : float, default 0.1
        Standard deviation of the additive Gaussian pixel noise, at least 0.

    Returns
    -------
    Dataset
        ``x_train`` of shape (n_train, 1, size, size) float64 in [0, 1]; ``y_*`` int64
        with ``class_names = ["square", "disk", "cross"]``. ``ground_truth`` holds

        - ``"masks_train"`` / ``"masks_test"``: bool arrays (n_split, size, size), True
          exactly on the shape's pixels,
        - ``"boxes_train"`` / ``"boxes_test"``: int64 arrays (n_split, 4) of
          ``(row0, col0, row1, col1)`` with exclusive ends, so that
          ``mask[row0:row1, col0:col1]`` holds every True pixel of the mask and the box is
          the mask's tight bounding box.

        ``oracle`` is ``None``.

    Raises
    ------
    InputError
        If ``n < 6``, ``size < 16``, ``noise < 0`` or ``seed`` / ``test_size`` is invalid.
    """
    n = _check_int("n", n, 6)
    size = _check_int("size", size, 16)
    noise = _check_float("noise", noise, 0.0)
    rng = check_random_state(seed)

    n_classes = len(SHAPE_CLASSES)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    side_lo = math.ceil(size / 5)
    side_hi = max(side_lo, size // 3)
    sides = rng.integers(side_lo, side_hi + 1, size=n)
    rows = rng.integers(0, size - sides + 1)
    cols = rng.integers(0, size - sides + 1)
    amplitude = rng.uniform(0.7, 1.0, size=n)
    pixel_noise = rng.standard_normal((n, size, size)) * noise

    signal = np.zeros((n, size, size), dtype=np.float64)
    masks = np.zeros((n, size, size), dtype=bool)
    boxes = np.column_stack([rows, cols, rows + sides, cols + sides]).astype(np.int64)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for i in range(n):
        r0, c0, r1, c1 = (int(v) for v in boxes[i])
        rr, cc = _draw_distractor(rng, size, (r0, c0, r1, c1))
        level = amplitude[i] - _BACKGROUND
        signal[i, rr, cc] = level
        key = (int(y[i]), int(sides[i]))
        if key not in cache:
            cache[key] = _shape_mask(*key)
        masks[i, r0:r1, c0:c1] = cache[key]
        signal[i][masks[i]] = level
    x = np.clip(_BACKGROUND + signal + pixel_noise, 0.0, 1.0)[:, None, :, :]

    train_idx, test_idx = _stratified_split(y, test_size, rng)
    ground_truth: dict[str, Any] = {
        "masks_train": masks[train_idx],
        "masks_test": masks[test_idx],
        "boxes_train": boxes[train_idx],
        "boxes_test": boxes[test_idx],
    }
    return Dataset(
        name="synthetic_shapes",
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
        feature_names=None,
        class_names=list(SHAPE_CLASSES),
        task="classification",
        description=(
            f"Synthetic {size}x{size} grey images generated by lumos (seed={seed!r}, n={n}). "
            "Each shows one filled shape (square, disk or plus-shaped cross; extent "
            f"{side_lo}-{side_hi} px, random position) whose kind is the class, a "
            "class-independent distractor line segment of the same brightness (random "
            "position and angle, never touching the shape), a background at 0.2 and "
            f"Gaussian noise of std {noise}, clipped to [0, 1]. Classes are balanced; "
            "ground_truth['masks_*'] marks exactly the shape's pixels and "
            "ground_truth['boxes_*'] their bounding boxes (row0, col0, row1, col1; ends "
            f"exclusive). Rows were split into train ({len(train_idx)}) and test "
            f"({len(test_idx)}) stratified by class."
        ),
        ground_truth=ground_truth,
        oracle=None,
        preprocessing={},
    )
