"""Localisation: do the attributions point at what is known to matter?

Every metric here compares an explanation with a ``ground_truth=`` argument and needs no
model call (``model`` is only used to validate the explanation and may be ``None``).

Two families:

- **Masks** (any input shape; images first of all): :func:`pointing_game`,
  :func:`relevance_mass_accuracy`, :func:`relevance_rank_accuracy`,
  :func:`top_k_intersection`. ``ground_truth`` marks the region that decides the label,
  e.g. ``lumos.datasets.synthetic_shapes(...).ground_truth["masks_test"]``.
- **Agreement with a reference** (tables, after OpenXAI): :func:`feature_agreement`,
  :func:`rank_agreement`, :func:`sign_agreement`, :func:`signed_rank_agreement`,
  :func:`pairwise_rank_agreement`, :func:`rank_correlation`. ``ground_truth`` is a reference
  attribution (the generator's true coefficients, an oracle's attributions) or the set of
  truly relevant features (``synthetic_credit(...).ground_truth["relevant"]``).

How ``ground_truth`` is read
----------------------------
With ``n`` explained rows of shape ``input_shape`` (``d`` scalar features):

- a **1-D integer sequence** (list, tuple, range, set or integer array, not boolean) is a set
  of flat feature indices shared by every row (pass floats for a reference attribution);
- a **boolean array** is a mask of relevant elements, of shape ``(n, *input_shape)`` (one per
  row) or ``input_shape`` (one for all rows); for images ``(C, H, W)`` also ``(n, H, W)`` /
  ``(n, 1, H, W)`` (one per row, broadcast over channels) and ``(H, W)``;
- any other numeric array is, for the mask metrics, a mask of 0 / 1 values in those shapes,
  and for the agreement metrics a reference attribution of shape ``(n, *input_shape)`` or
  ``input_shape`` (e.g. ``(n, d)`` or ``(d,)``).

Ties
----
The mask metrics count ties in the attributions by expectation: when several elements share
the value at the top-k boundary (or the maximum, for the pointing game), each tied element
counts with the probability that a uniformly random tie-break puts it in, so a constant map
scores the mask's share of the input rather than whatever the element order decides. The
agreement metrics follow OpenXAI: top-k by ``|value|`` with ties broken by feature index, and
dense ranks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from lumos.errors import InputError, NonFiniteError, NonNumericError, ShapeError
from lumos.explanation import Explanation
from lumos.metrics._base import (
    MetricResult,
    check_bool,
    pearson_rows,
    prepare,
    register_metric,
    top_k_count,
)

__all__ = [
    "feature_agreement",
    "pairwise_rank_agreement",
    "pointing_game",
    "rank_agreement",
    "rank_correlation",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "sign_agreement",
    "signed_rank_agreement",
    "top_k_intersection",
]

_MASK_REFS = {
    "pointing_game": "Zhang et al. (2018)",
    "relevance_mass_accuracy": "Arras et al. (2022)",
    "relevance_rank_accuracy": "Arras et al. (2022)",
    "top_k_intersection": "Theiner et al. (2022)",
}
_AGREEMENT_REF = "Krishna et al. (2022); Agarwal et al. (2022, OpenXAI)"


# ============================================================================ inputs
def _attributions(model: Any, explanation: Any) -> np.ndarray:
    """The explanation's values (n, *input_shape), float64, validated against ``model``
    (or on their own when ``model`` is None)."""
    if model is not None:
        return np.asarray(prepare(model, explanation).a, dtype=np.float64)
    if not isinstance(explanation, Explanation):
        raise InputError(
            f"explanation must be a lumos Explanation, got {type(explanation).__name__}; build "
            "one from arrays with lumos.Explanation(values=..., data=..., target=...)."
        )
    a = np.asarray(explanation.values, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(
            "explanation.values has NaN or infinite entries; metrics need finite attributions "
            "(replace them, e.g. np.nan_to_num(values))."
        )
    return a


def _missing(metric: str) -> InputError:
    return InputError(
        f"{metric} compares the explanation with a ground truth; pass ground_truth= (a mask "
        "of the relevant elements, a list of relevant feature indices, or a reference "
        "attribution), e.g. synthetic_shapes(...).ground_truth['masks_test']."
    )


def _index_set(ground_truth: Any) -> np.ndarray | None:
    """``ground_truth`` as an int array of feature indices when it is a 1-D integer sequence
    (not boolean), else None."""
    if isinstance(ground_truth, (set, frozenset, range)):
        items = sorted(ground_truth) if isinstance(ground_truth, (set, frozenset)) else ground_truth
        return np.asarray(list(items), dtype=np.int64).reshape(-1)
    if isinstance(ground_truth, (list, tuple)) and len(ground_truth) == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(ground_truth, (list, tuple, np.ndarray)):
        arr = np.asarray(ground_truth)
        if arr.ndim == 1 and arr.dtype != bool and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(np.int64)
    return None


def _indices_to_mask(idx: np.ndarray, d: int, metric: str) -> np.ndarray:
    """Flat mask (d,) of the feature indices ``idx``."""
    if len(idx) and (idx.min() < 0 or idx.max() >= d):
        raise InputError(
            f"{metric}: ground_truth holds feature indices outside 0..{d - 1} "
            f"(min {idx.min()}, max {idx.max()}); pass flat indices of relevant features, or a "
            "float array if you meant a reference attribution."
        )
    if len(np.unique(idx)) != len(idx):
        raise InputError(
            f"{metric}: ground_truth lists a feature index twice; pass each relevant feature "
            "once (for a 0/1 mask pass a boolean array, for a reference attribution floats)."
        )
    mask = np.zeros(d, dtype=bool)
    mask[idx] = True
    return mask


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` with the same number of dimensions."""
    return len(shape) == len(target) and all(
        s in (1, t) for s, t in zip(shape, target, strict=True)
    )


def _place(arr: np.ndarray, n: int, input_shape: tuple[int, ...], metric: str) -> np.ndarray:
    """``arr`` (a mask or reference in one of the accepted shapes) as (n, *input_shape)."""
    full = (n, *input_shape)
    image3 = len(input_shape) == 3
    shape = tuple(arr.shape)
    if shape == full:
        return arr
    if image3 and shape == (n, *input_shape[1:]):
        if shape == input_shape and n > 1:
            raise ShapeError(
                f"{metric}: ground_truth of shape {shape} is ambiguous here ({n} rows of "
                f"{input_shape[0]} channels): pass ground_truth[:, None] for one mask per row "
                f"(n, 1, H, W), or np.broadcast_to(mask, {full}) for one mask for all rows."
            )
        return np.broadcast_to(arr[:, None], full)
    if arr.ndim == len(full) and shape[0] == n and _fits(shape[1:], input_shape):
        return np.broadcast_to(arr, full)
    if _fits(shape, input_shape):
        return np.broadcast_to(arr[None], full)
    if image3 and shape == tuple(input_shape[1:]):
        return np.broadcast_to(arr[None, None], full)
    accepted = [full, tuple(input_shape)]
    if image3:
        accepted += [(n, *input_shape[1:]), (n, 1, *input_shape[1:]), tuple(input_shape[1:])]
    raise ShapeError(
        f"{metric}: ground_truth has shape {shape} but the explanation has {n} rows of shape "
        f"{tuple(input_shape)}; pass one of the shapes {', '.join(map(str, accepted))} "
        "(or a list of relevant feature indices)."
    )


def _to_array(ground_truth: Any, metric: str) -> np.ndarray:
    if type(ground_truth).__module__.startswith("torch") and hasattr(ground_truth, "detach"):
        ground_truth = ground_truth.detach().cpu().numpy()
    try:
        arr = np.asarray(ground_truth)
    except (TypeError, ValueError) as exc:
        raise NonNumericError(
            f"{metric}: ground_truth could not be read as an array ({exc}); pass a boolean "
            "mask, a list of feature indices or a numeric array."
        ) from None
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise NonNumericError(
            f"{metric}: ground_truth has dtype {arr.dtype}; pass a boolean mask, a list of "
            "feature indices or a numeric array."
        )
    if np.iscomplexobj(arr):
        raise NonNumericError(f"{metric}: ground_truth must be real-valued.")
    return arr


def _masks(ground_truth: Any, n: int, input_shape: tuple[int, ...], metric: str) -> np.ndarray:
    """The ground-truth masks as a boolean array of shape (n, d) (flattened)."""
    if ground_truth is None:
        raise _missing(metric)
    d = int(np.prod(input_shape))
    idx = _index_set(ground_truth)
    if idx is not None:
        return np.broadcast_to(_indices_to_mask(idx, d, metric), (n, d))
    arr = _to_array(ground_truth, metric)
    if arr.dtype != bool:
        if not np.all(np.isfinite(arr)):
            raise NonFiniteError(f"{metric}: the ground-truth mask has NaN or infinite entries.")
        if not np.all((arr == 0) | (arr == 1)):
            raise InputError(
                f"{metric}: a ground-truth mask must be boolean (or hold only 0 and 1); got "
                "other values. Threshold it first, e.g. ground_truth > 0.5."
            )
        arr = arr != 0
    return _place(arr, n, input_shape, metric).reshape(n, d)


def _reasons(n: int, rules: Sequence[tuple[np.ndarray, str]]) -> np.ndarray:
    """Per-row NaN reasons (n,) of str: the first rule whose mask holds, "" otherwise."""
    out = np.full(n, "", dtype=object)
    for mask, reason in reversed(rules):
        out[np.asarray(mask, dtype=bool)] = reason
    return out.astype(str)


# ============================================================================ ranking
def _expected_top_hits(score: np.ndarray, hits: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Expected number of ``hits`` among the ``k`` highest ``score`` entries of each row when
    ties at the boundary are broken uniformly at random.

    Parameters
    ----------
    score : ndarray of shape (n, d)
    hits : ndarray of bool, shape (n, d)
    k : ndarray of int, shape (n,), each in [1, d]

    Returns
    -------
    ndarray of shape (n,)
    """
    n = len(score)
    desc = -np.sort(-score, axis=1)
    threshold = desc[np.arange(n), k - 1][:, None]
    above = score > threshold
    tied = score == threshold
    need = k - above.sum(axis=1)
    return (hits & above).sum(axis=1) + need * (hits & tied).sum(axis=1) / tied.sum(axis=1)


def _spatial_dilation(masks: np.ndarray, tolerance: float) -> np.ndarray:
    """Grow each image mask (n, ..., H, W) by every pixel within Euclidean distance
    ``tolerance`` on the (H, W) grid (channels and rows separately)."""
    from scipy.ndimage import binary_dilation

    r = math.floor(tolerance)
    if r == 0:
        return masks
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (yy**2 + xx**2) <= tolerance**2
    structure = disk.reshape((1,) * (masks.ndim - 2) + disk.shape)
    return binary_dilation(masks, structure=structure)


# ============================================================================ masks
@register_metric(
    "pointing_game",
    category="localisation",
    higher_is_better=True,
    requires=("ground_truth",),
    reference=_MASK_REFS["pointing_game"],
)
def pointing_game(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    tolerance: float = 0.0,
    abs: bool = False,
) -> MetricResult:
    """Pointing game: does the attribution's maximum fall inside the ground-truth mask?

    A row scores 1 (a hit) when the element with the largest attribution lies in the mask,
    or, with ``tolerance`` > 0 on images, within ``tolerance`` pixels (Euclidean, on the
    (H, W) grid) of it; 0 otherwise (Zhang et al. 2018, who use a 15-pixel tolerance). When
    several elements share the maximum, the score is the fraction of them that hit (the
    expected hit of a random tie-break), so a constant map does not score a hit for free.

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape).
    ground_truth : array-like
        Masks: bool / 0-1 of shape (n, *input_shape) or input_shape, for images (C, H, W)
        also (n, H, W) or (n, 1, H, W) (broadcast over channels) or (H, W); or a list of
        relevant flat feature indices (see the module docstring).
    tolerance : float, default 0.0
        Pixels; images only (rows of shape (H, W) or (C, H, W)). The paper uses 15.
    abs : bool, default False
        Point at the largest ``|attribution|`` instead of the largest attribution.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1] (0 or 1 without ties); NaN for an empty mask
        (``extras["nan_reason"]``). ``extras["n_max"]`` (n,): elements sharing the maximum.

    References
    ----------
    Zhang, J., Bargal, S. A., Lin, Z., Brandt, J., Shen, X. & Sclaroff, S. (2018). Top-down
    neural attention by excitation backprop. IJCV 126, 1084-1102.

    Notes
    -----
    Equals ``quantus.PointingGame(abs=..., normalise=False)`` when the maximum is unique;
    quantus counts a hit if *any* tied maximum is in the mask and has no tolerance.
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    is_abs = check_bool(abs, "abs")
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, numbers.Real)
        or not np.isfinite(tolerance)
        or tolerance < 0
    ):
        raise InputError(f"tolerance must be a number of pixels >= 0, got {tolerance!r}.")
    masks = _masks(ground_truth, n, input_shape, "pointing_game")
    empty = ~masks.any(axis=1)
    hits = masks
    if tolerance > 0:
        if len(input_shape) not in (2, 3):
            raise InputError(
                f"tolerance is a distance in pixels and needs images (rows of shape (H, W) or "
                f"(C, H, W)); these rows have shape {input_shape}. Use tolerance=0."
            )
        hits = _spatial_dilation(masks.reshape(n, *input_shape), float(tolerance)).reshape(n, -1)
    flat = a.reshape(n, -1)
    score = np.abs(flat) if is_abs else flat
    at_max = score == score.max(axis=1, keepdims=True)
    n_max = at_max.sum(axis=1)
    scores = (hits & at_max).sum(axis=1) / n_max
    scores[empty] = np.nan
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={
            "n_max": n_max,
            "nan_reason": _reasons(n, [(empty, "empty ground-truth mask")]),
        },
    )


@register_metric(
    "relevance_mass_accuracy",
    category="localisation",
    higher_is_better=True,
    requires=("ground_truth",),
    reference=_MASK_REFS["relevance_mass_accuracy"],
)
def relevance_mass_accuracy(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    abs: bool = False,
) -> MetricResult:
    """Relevance mass accuracy: the share of positive attribution that lies inside the mask.

    ``RMA = Σ_{i ∈ M} max(a_i, 0) / Σ_i max(a_i, 0)`` per row (Arras et al. 2022, CLEVR-XAI:
    the relevance mass inside the ground truth over the total, negative relevance left out);
    with ``abs=True`` ``|a_i|`` replaces ``max(a_i, 0)``. 1 means every bit of positive
    attribution is on the ground truth.

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape).
    ground_truth : array-like
        Masks, as for :func:`pointing_game`.
    abs : bool, default False
        Use the magnitude of the attributions instead of their positive part.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN for an empty mask or a row without positive
        attribution (``extras["nan_reason"]``). ``extras["mass_inside"]`` and
        ``extras["mass_total"]`` (n,).

    References
    ----------
    Arras, L., Osman, A. & Samek, W. (2022). CLEVR-XAI: A benchmark dataset for the ground
    truth evaluation of neural network explanations. Information Fusion 81, 14-40.

    Notes
    -----
    The mask is applied element by element (an image mask is broadcast over channels). Arras
    et al. first pool an image's channels into one non-negative value per pixel; their
    "sum,pos" pooling is obtained by passing the channel sum broadcast back over the
    channels. ``quantus.RelevanceMassAccuracy`` divides the raw attribution sums
    ``Σ_M a / Σ a``, negative values included, so it equals lumos only for non-negative
    attributions (or ``abs=True`` on both sides); with mixed signs it can leave [0, 1].
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    is_abs = check_bool(abs, "abs")
    masks = _masks(ground_truth, n, input_shape, "relevance_mass_accuracy")
    flat = a.reshape(n, -1)
    mass = np.abs(flat) if is_abs else np.maximum(flat, 0.0)
    inside = (mass * masks).sum(axis=1)
    total = mass.sum(axis=1)
    empty = ~masks.any(axis=1)
    none = total <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = inside / total
    scores[empty | none] = np.nan
    what = "attribution" if is_abs else "positive attribution"
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={
            "mass_inside": inside,
            "mass_total": total,
            "nan_reason": _reasons(
                n, [(empty, "empty ground-truth mask"), (none, f"no {what} mass in the row")]
            ),
        },
    )


@register_metric(
    "relevance_rank_accuracy",
    category="localisation",
    higher_is_better=True,
    requires=("ground_truth",),
    reference=_MASK_REFS["relevance_rank_accuracy"],
)
def relevance_rank_accuracy(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    abs: bool = False,
) -> MetricResult:
    """Relevance rank accuracy: the share of the |mask| most relevant elements inside the mask.

    ``RRA = |top_K(a) ∩ M| / K`` with ``K = |M|`` per row (Arras et al. 2022). Ties at the
    K-th value are counted by expectation (see the module docstring).

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape).
    ground_truth : array-like
        Masks, as for :func:`pointing_game`.
    abs : bool, default False
        Rank by ``|attribution|`` instead of the signed attribution.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN for an empty mask (``extras["nan_reason"]``).
        ``extras["mask_size"]`` (n,): K.

    References
    ----------
    Arras, L., Osman, A. & Samek, W. (2022). CLEVR-XAI: A benchmark dataset for the ground
    truth evaluation of neural network explanations. Information Fusion 81, 14-40.

    Notes
    -----
    Equals ``quantus.RelevanceRankAccuracy(abs=..., normalise=False)`` when the K-th value
    is not tied (quantus then depends on its sort's order). Arras et al. rank a pooled,
    non-negative map; ranking the signed values gives the same top K whenever at least K
    values are positive.
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    is_abs = check_bool(abs, "abs")
    masks = _masks(ground_truth, n, input_shape, "relevance_rank_accuracy")
    flat = a.reshape(n, -1)
    score = np.abs(flat) if is_abs else flat
    size = masks.sum(axis=1)
    empty = size == 0
    k = np.where(empty, 1, size)
    scores = _expected_top_hits(score, masks, k) / k
    scores[empty] = np.nan
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={
            "mask_size": size,
            "nan_reason": _reasons(n, [(empty, "empty ground-truth mask")]),
        },
    )


@register_metric(
    "top_k_intersection",
    category="localisation",
    higher_is_better=True,
    requires=("ground_truth",),
    reference=_MASK_REFS["top_k_intersection"],
)
def top_k_intersection(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    k: int | float = 0.05,
    abs: bool = False,
) -> MetricResult:
    """Top-k intersection: the share of the k most relevant elements that lie in the mask.

    ``TKI = |top_k(a) ∩ M| / k`` per row (Theiner et al. 2022). Unlike relevance rank
    accuracy, k is fixed rather than the mask's size, so a mask smaller than k caps the
    score at ``|M| / k``. Ties at the k-th value are counted by expectation.

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape).
    ground_truth : array-like
        Masks, as for :func:`pointing_game`.
    k : int or float, default 0.05
        Number of elements (int in [1, d]) or a fraction of the d elements per row (float in
        (0, 1], rounded up).
    abs : bool, default False
        Rank by ``|attribution|`` instead of the signed attribution.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN for an empty mask (``extras["nan_reason"]``).
        ``extras["k"]``: the element count used.

    References
    ----------
    Theiner, J., Müller-Budack, E. & Ewerth, R. (2022). Interpretable semantic photo
    geolocation. WACV 2022 (arXiv:2104.14995, 2021).

    Notes
    -----
    Equals ``quantus.TopKIntersection(k=k, abs=..., normalise=False)`` (without its
    ``concept_influence`` rescaling) when the k-th value is not tied.
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    is_abs = check_bool(abs, "abs")
    flat = a.reshape(n, -1)
    kk = top_k_count(k, flat.shape[1])
    masks = _masks(ground_truth, n, input_shape, "top_k_intersection")
    score = np.abs(flat) if is_abs else flat
    empty = ~masks.any(axis=1)
    scores = _expected_top_hits(score, masks, np.full(n, kk)) / kk
    scores[empty] = np.nan
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={"k": kk, "nan_reason": _reasons(n, [(empty, "empty ground-truth mask")])},
    )


# ============================================================================ agreement
def _reference(
    ground_truth: Any, n: int, input_shape: tuple[int, ...], metric: str
) -> tuple[np.ndarray, bool]:
    """The ground truth of the agreement metrics as (array (n, d), is_set): a boolean
    relevance mask when ``is_set``, else a float reference attribution."""
    if ground_truth is None:
        raise _missing(metric)
    d = int(np.prod(input_shape))
    idx = _index_set(ground_truth)
    if idx is not None:
        return np.broadcast_to(_indices_to_mask(idx, d, metric), (n, d)), True
    arr = _to_array(ground_truth, metric)
    if arr.dtype == bool:
        return _place(arr, n, input_shape, metric).reshape(n, d), True
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{metric}: the reference attribution has NaN or infinite entries.")
    return _place(arr, n, input_shape, metric).reshape(n, d), False


def _magnitude_order(v: np.ndarray) -> np.ndarray:
    """Feature indices of each row by decreasing ``|v|``, ties by index (n, d)."""
    return np.argsort(-np.abs(v), axis=1, kind="stable")


def _dense_ranks(v: np.ndarray) -> np.ndarray:
    """Dense ranks of ``|v|`` per row, 1 = largest magnitude, equal magnitudes share a rank
    (``scipy.stats.rankdata(-|v|, method="dense")``), shape (n, d)."""
    mag = np.abs(v)
    order = _magnitude_order(v)
    ordered = np.take_along_axis(mag, order, axis=1)
    steps = np.ones(ordered.shape, dtype=np.int64)
    steps[:, 1:] = np.diff(ordered, axis=1) != 0
    ranks = np.empty_like(steps)
    np.put_along_axis(ranks, order, np.cumsum(steps, axis=1), axis=1)
    return ranks


def _in_top(order: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Boolean (n, d): whether each feature is among the first ``k[i]`` of ``order[i]``."""
    first = np.arange(order.shape[1])[None, :] < k[:, None]
    out = np.zeros(order.shape, dtype=bool)
    np.put_along_axis(out, order, first, axis=1)
    return out


def _agreement_k(k: Any, gt: np.ndarray, is_set: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-row k (n,), rows without a usable k (n,) and their NaN reason."""
    n, d = gt.shape
    if k is None:
        counts = gt.sum(axis=1) if is_set else np.count_nonzero(gt, axis=1)
        bad = counts == 0
        if is_set:
            reason = "no relevant feature in the ground truth"
        else:
            reason = "the reference attribution is zero everywhere (pass k=)"
        return np.where(bad, 1, counts).astype(np.int64), bad, reason
    kk = top_k_count(k, d)
    return np.full(n, kk, dtype=np.int64), np.zeros(n, dtype=bool), ""


def _no_set(metric: str, needs: str) -> InputError:
    return InputError(
        f"{metric} compares {needs}, which a set of relevant features does not have; pass a "
        "reference attribution (float array of shape (n, d) or (d,), e.g. the true "
        "coefficients or an oracle's attributions), or use feature_agreement / "
        "pairwise_rank_agreement / rank_correlation, which accept a set."
    )


def _topk_agreement(
    model: Any, explanation: Explanation, ground_truth: Any, k: Any, metric: str, kind: str
) -> MetricResult:
    """Feature / rank / sign / signed-rank agreement (OpenXAI's FA, RA, SA, SRA)."""
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    e = a.reshape(n, -1)
    gt, is_set = _reference(ground_truth, n, input_shape, metric)
    if is_set and kind != "feature":
        needs = {
            "rank": "the ranks of the top-k features",
            "sign": "the signs of the top-k features",
            "signed_rank": "the ranks and signs of the top-k features",
        }[kind]
        raise _no_set(metric, needs)
    kk, bad, reason = _agreement_k(k, gt, is_set)
    order_e = _magnitude_order(e)
    top_e = _in_top(order_e, kk)
    if is_set:
        size = gt.sum(axis=1)
        bad = bad | (size == 0)
        denom = np.maximum(np.minimum(kk, size), 1)
        scores = (top_e & gt).sum(axis=1) / denom
        reason = reason or "no relevant feature in the ground truth"
    else:
        order_r = _magnitude_order(gt)
        if kind in ("feature", "sign"):
            both = top_e & _in_top(order_r, kk)
            if kind == "sign":
                both &= np.sign(e) == np.sign(gt)
            scores = both.sum(axis=1) / kk
        else:
            first = np.arange(e.shape[1])[None, :] < kk[:, None]
            rank_e = np.take_along_axis(_dense_ranks(e), order_e, axis=1)
            rank_r = np.take_along_axis(_dense_ranks(gt), order_r, axis=1)
            same = first & (order_e == order_r) & (rank_e == rank_r)
            if kind == "signed_rank":
                sign_e = np.take_along_axis(np.sign(e), order_e, axis=1)
                sign_r = np.take_along_axis(np.sign(gt), order_r, axis=1)
                same &= sign_e == sign_r
            scores = same.sum(axis=1) / kk
    scores = scores.astype(np.float64)
    scores[bad] = np.nan
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={"k": kk, "nan_reason": _reasons(n, [(bad, reason)])},
    )


@register_metric(
    "feature_agreement",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def feature_agreement(
    model: Any, explanation: Explanation, *, ground_truth: Any = None, k: int | float | None = None
) -> MetricResult:
    """Feature agreement: the share of the top-k features that are also the ground truth's top k.

    ``FA = |top_k(|e|) ∩ top_k(|r|)| / k`` (Krishna et al. 2022; OpenXAI's ``FA``), top-k by
    magnitude, ties broken by feature index. With a set S of relevant features, ``FA =
    |top_k(|e|) ∩ S| / min(k, |S|)``: the precision of the top k when k <= |S|, the recall
    of S when k >= |S| (OpenXAI's value for the 0/1 indicator of S at the default k = |S|),
    so a perfect explanation scores 1 at any k.

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape); rows are flattened to d features.
    ground_truth : array-like
        A reference attribution: a float array of shape (n, d) or (d,) (or (n, *input_shape)
        / input_shape), e.g. the generator's true coefficients or an oracle's attributions.
        Or a set of relevant features: a list of flat indices, or a boolean mask of shape
        (n, d) or (d,).
    k : int, float or None, default None
        Number of top features (int in [1, d]) or a fraction of d (float in (0, 1], rounded
        up). None: per row, the number of nonzero reference entries (the set's size for a
        set), so the generator's coefficients give its relevant features; for a dense
        reference pass k explicitly.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN where k would be 0 (``extras["nan_reason"]``).
        ``extras["k"]`` (n,): the k used per row.

    References
    ----------
    Krishna, S., Han, T., Gu, A., Pombra, J., Jabbari, S., Wu, S. & Lakkaraju, H. (2022).
    The disagreement problem in explainable machine learning: a practitioner's perspective.
    arXiv:2202.01602.
    Agarwal, C., Krishna, S., Saxena, E., Pawelczyk, M., Johnson, N., Puri, I., Zitnik, M. &
    Lakkaraju, H. (2022). OpenXAI: Towards a transparent evaluation of model explanations.
    NeurIPS Datasets and Benchmarks.
    """
    return _topk_agreement(model, explanation, ground_truth, k, "feature_agreement", "feature")


#: Parameters, Returns and References shared by rank, sign and signed-rank agreement
#: (placed into their docstrings below, at {params}).
_RANKED_DOC_PARAMS = """\
Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape); rows are flattened to d features.
    ground_truth : array-like
        A reference attribution: a float array of shape (n, d) or (d,) (or (n, *input_shape)
        / input_shape), e.g. the generator's true coefficients or an oracle's attributions.
        A set of relevant features is refused (it has no ranks or signs).
    k : int, float or None, default None
        Number of top features (int in [1, d]) or a fraction of d (float in (0, 1], rounded
        up). None: per row, the number of nonzero reference entries, so the generator's
        coefficients give its relevant features; for a dense reference pass k explicitly.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN where k would be 0 (``extras["nan_reason"]``).
        ``extras["k"]`` (n,): the k used per row.

    References
    ----------
    Krishna et al. (2022); Agarwal et al. (2022), see :func:`feature_agreement`.
"""


@register_metric(
    "rank_agreement",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def rank_agreement(
    model: Any, explanation: Explanation, *, ground_truth: Any = None, k: int | float | None = None
) -> MetricResult:
    """Rank agreement: the share of top-k positions holding the reference's feature and rank.

    ``RA = (1/k) Σ_{j<k} [o_e(j) = o_r(j) and ρ_e(o_e(j)) = ρ_r(o_r(j))]`` where ``o`` lists
    features by decreasing magnitude (ties by index) and ``ρ`` is the dense magnitude rank
    (tied magnitudes share a rank), as OpenXAI's ``RA``. Needs a reference attribution: a set
    of relevant features has no ranks (InputError).

    {params}
    """
    return _topk_agreement(model, explanation, ground_truth, k, "rank_agreement", "rank")


@register_metric(
    "sign_agreement",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def sign_agreement(
    model: Any, explanation: Explanation, *, ground_truth: Any = None, k: int | float | None = None
) -> MetricResult:
    """Sign agreement: the share of top-k features also in the reference's top k, with its sign.

    ``SA = |{f ∈ top_k(|e|) ∩ top_k(|r|) : sign e_f = sign r_f}| / k`` (OpenXAI's ``SA``;
    ``sign 0 = 0``). Needs a reference attribution: a set of relevant features has no signs
    (InputError).

    {params}

    Notes
    -----
    The reference is taken as it is for the explained output: OpenXAI negates a logistic
    model's weights for rows predicted as class 0; do the same with a per-row reference, e.g.
    ``np.where(target[:, None] == 1, w, -w)``.
    """
    return _topk_agreement(model, explanation, ground_truth, k, "sign_agreement", "sign")


@register_metric(
    "signed_rank_agreement",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def signed_rank_agreement(
    model: Any, explanation: Explanation, *, ground_truth: Any = None, k: int | float | None = None
) -> MetricResult:
    """Signed rank agreement: the share of top-k positions matching feature, rank and sign.

    Rank agreement's condition plus ``sign e_f = sign r_f`` (OpenXAI's ``SRA``). Needs a
    reference attribution (InputError for a set).

    {params}
    """
    return _topk_agreement(
        model, explanation, ground_truth, k, "signed_rank_agreement", "signed_rank"
    )


for _f in (rank_agreement, sign_agreement, signed_rank_agreement):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _RANKED_DOC_PARAMS.strip("\n"))


def _subset(e: np.ndarray, r: np.ndarray, k: Any) -> tuple[np.ndarray, np.ndarray]:
    """The explanation and reference restricted to the reference's top-k features per row,
    kept in feature-index order (all features when ``k`` is None)."""
    if k is None:
        return e, r
    kk = top_k_count(k, e.shape[1])
    feats = np.sort(_magnitude_order(r)[:, :kk], axis=1)
    return np.take_along_axis(e, feats, axis=1), np.take_along_axis(r, feats, axis=1)


def _pairwise(rank_e: np.ndarray, rank_r: np.ndarray) -> np.ndarray:
    """Share of feature pairs i < j with ``[ρ_e(i) < ρ_e(j)] == [ρ_r(i) < ρ_r(j)]`` (n,)."""
    n, m = rank_e.shape
    upper = np.triu(np.ones((m, m), dtype=bool), k=1)
    out = np.empty(n)
    step = max(1, 2**22 // max(m * m, 1))
    for start in range(0, n, step):  # chunks of rows bound the (rows, m, m) comparison
        re, rr = rank_e[start : start + step], rank_r[start : start + step]
        same = (re[:, :, None] < re[:, None, :]) == (rr[:, :, None] < rr[:, None, :])
        out[start : start + step] = (same & upper).sum(axis=(1, 2))
    return out / (m * (m - 1) / 2)


@register_metric(
    "pairwise_rank_agreement",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def pairwise_rank_agreement(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    k: int | float | None = None,
) -> MetricResult:
    """Pairwise rank agreement: the share of feature pairs ordered as the ground truth orders them.

    ``PRA = Σ_{i<j} [R_e(i, j) = R_r(i, j)] / C(m, 2)`` with ``R(i, j) = 1`` when feature i
    is strictly more important (larger magnitude) than j (Krishna et al. 2022; OpenXAI's
    ``PRA``). A tie gives ``R(i, j) = R(j, i) = 0``, as in the paper, so a pair the
    explanation ties but the reference separates counts as agreeing when the reference puts
    the higher-indexed feature first.

    With a set S of relevant features, only the pairs the set orders count: ``PRA`` is the
    share of (relevant, irrelevant) pairs in which the relevant feature has the larger
    magnitude, ties counting 1/2 (the ROC AUC of ``|e|`` for S).

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape); rows are flattened to d features.
    ground_truth : array-like
        A reference attribution (float, (n, d) or (d,)) or a set of relevant features
        (indices or a boolean mask), see :func:`feature_agreement`.
    k : int, float or None, default None
        None: all d features (OpenXAI). Otherwise the pairs among the reference's top-k
        features (Krishna et al.'s "features of interest"); not for a set.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; NaN when fewer than two features are compared, or for a
        set that holds no feature or every feature (``extras["nan_reason"]``).

    References
    ----------
    Krishna et al. (2022); Agarwal et al. (2022), see :func:`feature_agreement`.
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    e = a.reshape(n, -1)
    gt, is_set = _reference(ground_truth, n, input_shape, "pairwise_rank_agreement")
    if is_set:
        if k is not None:
            raise InputError(
                "pairwise_rank_agreement with a set of relevant features compares every "
                "(relevant, irrelevant) pair; leave k=None."
            )
        from scipy.stats import rankdata

        m = gt.sum(axis=1)
        d = e.shape[1]
        bad = (m == 0) | (m == d)
        ranks = rankdata(np.abs(e), axis=1)
        u = (ranks * gt).sum(axis=1) - m * (m + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = u / (m * (d - m))
        scores[bad] = np.nan
        reasons = _reasons(n, [(bad, "the set must hold some but not all features")])
    else:
        es, rs = _subset(e, gt, k)
        if es.shape[1] < 2:
            scores = np.full(n, np.nan)
            reasons = _reasons(n, [(np.ones(n, dtype=bool), "fewer than two features")])
        else:
            scores = _pairwise(_dense_ranks(es), _dense_ranks(rs))
            reasons = _reasons(n, [])
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={"nan_reason": reasons},
    )


@register_metric(
    "rank_correlation",
    category="localisation",
    higher_is_better=True,
    requires=("tabular", "ground_truth"),
    reference=_AGREEMENT_REF,
)
def rank_correlation(
    model: Any,
    explanation: Explanation,
    *,
    ground_truth: Any = None,
    k: int | float | None = None,
) -> MetricResult:
    """Rank correlation: correlation of the magnitude ranks with the reference's (OpenXAI RC).

    ``RC = corr(ρ_e, ρ_r)`` with ``ρ`` the dense ranks of ``|e|`` and ``|r|`` (OpenXAI's
    ``RC``; Spearman's correlation when there are no ties, dense rather than average ranks
    when there are). A set S of relevant features is taken as its 0/1 indicator (RC is then
    the point-biserial correlation of the explanation's ranks with membership of S).

    Parameters
    ----------
    model : object or None
        Used only to validate the explanation (no model call); may be None.
    explanation : Explanation
        Attributions of shape (n, *input_shape); rows are flattened to d features.
    ground_truth : array-like
        A reference attribution (float, (n, d) or (d,)) or a set of relevant features,
        see :func:`feature_agreement`.
    k : int, float or None, default None
        None: all d features (OpenXAI). Otherwise the reference's top-k features, ranked
        among themselves (Krishna et al.'s "features of interest"); not for a set.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [-1, 1]; NaN where either side's magnitudes are all equal
        (``extras["nan_reason"]``).

    References
    ----------
    Krishna et al. (2022); Agarwal et al. (2022), see :func:`feature_agreement`.
    """
    a = _attributions(model, explanation)
    n, input_shape = len(a), tuple(a.shape[1:])
    e = a.reshape(n, -1)
    gt, is_set = _reference(ground_truth, n, input_shape, "rank_correlation")
    if is_set:
        if k is not None:
            raise InputError(
                "rank_correlation with a set of relevant features uses every feature; leave k=None."
            )
        gt = gt.astype(np.float64)
    es, rs = _subset(e, gt, k)
    re, rr = _dense_ranks(es).astype(np.float64), _dense_ranks(rs).astype(np.float64)
    scores = pearson_rows(re, rr)
    flat = (re.max(axis=1) == re.min(axis=1)) | (rr.max(axis=1) == rr.min(axis=1))
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={
            "nan_reason": _reasons(
                n, [(flat, "all magnitudes equal in the explanation or the ground truth")]
            )
        },
    )
