"""Faithfulness: does removing what an explanation calls important change the model's output
as much as the explanation says it should?

Conventions shared by every metric in this module:

* A *feature* is one scalar element of an input row. Images ``(C, H, W)`` are perturbed
  element by element (each channel of a pixel on its own, ranked by its own attribution),
  which is what quantus does when the attribution has the input's shape. The exception is
  ``region_perturbation``, whose square patches span all channels (Samek et al. 2017).
* Features are ranked by their signed attribution (``abs=True``: by magnitude); ties keep
  the lower flat index first (a stable sort), so every result is deterministic.
* *Removing* a feature sets it to the ``baseline`` (the substrate, see
  :func:`lumos.metrics._base.substrate`): ``"zeros"``, ``"mean"`` (the row's mean),
  ``"blurred"`` (images), ``"uniform"`` (noise over the row's range, drawn per row from
  ``random_state``), a float, or an array of shape ``input_shape`` or ``(n, *input_shape)``.
* The output tracked is the explained target's output as the model returns it: a
  probability for models that end in a softmax, a logit otherwise.
* Perturbed inputs are generated chunk by chunk through the engine
  (:func:`lumos.metrics._base.target_outputs`), built on the model's device for torch /
  Keras models; ``batch_size`` changes the chunking only, never a score.
* Random draws (random subsets, noise) come per row from
  :func:`lumos.metrics._base.row_seeds`, so a row's score depends on ``random_state`` and its
  index only.
* No metric here depends on the scale of the attributions (they use orderings, Pearson or
  Spearman correlations), so quantus' ``normalise`` flag changes nothing and lumos has none.

Within :func:`lumos.metrics._base.sharing` (as :func:`lumos.evaluate` runs) the model's
outputs along a cumulative removal or insertion path are memoised per (explanation, model,
direction, ordering, baseline, seed) and per number of features changed: ``deletion`` and
``pixel_flipping`` read one MoRF curve (and ``region_perturbation`` too when its patches are
single pixels of one-channel images), evaluating only the steps the other has not.

The module's second part: infidelity (Yeh et al. 2019), ROAD (Rong et al. 2022),
ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020) and OpenXAI's prediction gaps
on important / unimportant features (Agarwal et al. 2022).

Every metric sends its perturbed inputs through the engine chunk by chunk. Random draws come
from one generator per explained row (:func:`lumos.metrics._base.row_seeds`), made when a
chunk first needs the row, so a row's score depends only on its own seed: the same
``random_state`` gives the same scores for any ``batch_size``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos._batching import resolve_batch_size
from lumos._random import check_random_state
from lumos._validation import check_name
from lumos.errors import InputError, ShapeError
from lumos.metrics._base import (
    MetricResult,
    Prepared,
    baseline_key,
    check_bool,
    check_count,
    feature_order,
    inverse_permutation,
    pearson_rows,
    prepare,
    register_metric,
    row_generators,
    row_seeds,
    seed_key,
    shared,
    spearman_rows,
    substrate,
    target_outputs,
    top_k_count,
)

__all__ = [
    "comprehensiveness",
    "deletion",
    "faithfulness_correlation",
    "faithfulness_estimate",
    "infidelity",
    "insertion",
    "monotonicity",
    "monotonicity_correlation",
    "noisy_linear_imputation",
    "pgi",
    "pgu",
    "pixel_flipping",
    "region_perturbation",
    "road",
    "sufficiency",
]

#: Orders in which ``region_perturbation`` removes its patches.
ORDERS = ("morf", "lerf")
#: Default number of steps of the deletion / insertion curves (fewer when a row has fewer
#: features).
DEFAULT_N_STEPS = 100

_NAN_PEARSON = (
    "the attribution sums or the output drops are constant over the perturbations of these "
    "rows, so their Pearson correlation is undefined"
)
_NAN_SPEARMAN = (
    "the attributions or the expected output changes are constant over the features of these "
    "rows, so their Spearman correlation is undefined"
)


# ----------------------------------------------------------------------------- checks


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None:
        resolve_batch_size(batch_size, 1)


def _is_random(baseline: Any) -> bool:
    return isinstance(baseline, str) and baseline == "uniform"


def _patch_size(value: Any) -> tuple[int, int]:
    """``patch_size`` as ``(h, w)`` positive ints."""
    items = [value] if np.ndim(value) == 0 else list(np.asarray(value, dtype=object).ravel())
    ok = np.ndim(value) <= 1 and len(items) in (1, 2)
    ok = ok and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in items
    )
    if not ok:
        raise InputError(
            f"patch_size must be a positive int or a pair (h, w) of them, got {value!r}; "
            "e.g. patch_size=4."
        )
    h, w = (items * 2)[:2] if len(items) == 1 else items
    return int(h), int(w)


def _step_counts(
    d: int, n_steps: Any, features_per_step: Any, *, default_n_steps: int | None
) -> np.ndarray:
    """Cumulative numbers of features changed after each step, starting at 0 and ending at d.

    ``features_per_step=k``: ``0, k, 2k, ..., d`` (the last step may be shorter);
    ``n_steps=s``: ``floor(j d / s)`` for ``j = 0..s``.
    """
    if n_steps is not None and features_per_step is not None:
        raise InputError(
            "pass either n_steps= or features_per_step=, not both; e.g. n_steps=50 or "
            "features_per_step=8."
        )
    if features_per_step is not None or default_n_steps is None:
        k = check_count(1 if features_per_step is None else features_per_step,
                        "features_per_step", maximum=d)  # fmt: skip
        return np.minimum(np.arange(-(-d // k) + 1) * k, d).astype(np.int64)
    steps = default_n_steps if n_steps is None else check_count(n_steps, "n_steps", maximum=d)
    return (np.arange(steps + 1, dtype=np.int64) * d) // steps


def _scored(p: Prepared, use_abs: bool) -> np.ndarray:
    """The attributions a metric ranks and sums, flattened to (n, d)."""
    a = p.a.reshape(p.n, -1)
    return np.abs(a) if use_abs else a


def _spawn(random_state: Any, k: int) -> list[np.random.SeedSequence]:
    """``k`` independent seed sequences from ``random_state`` (one per use of randomness, so
    that, e.g., random subsets and uniform noise never share a stream)."""
    rng = check_random_state(random_state)
    return np.random.SeedSequence(rng.integers(0, 2**63, size=4)).spawn(k)


def _substrate_flat(p: Prepared, baseline: Any, random_state: Any) -> np.ndarray:
    return substrate(baseline, p.x, random_state=random_state).reshape(p.n, -1)


def _int32(ops: Any, a: np.ndarray) -> Any:
    """Integer labels as int32 on the model's backend (half the memory traffic of int64 in
    the per-chunk gathers and comparisons)."""
    arr = np.ascontiguousarray(a, dtype=np.int32)
    if not ops.is_torch:
        return arr
    import torch

    return torch.as_tensor(arr, device=ops.device)


def _take(ops: Any, arr: Any, rows: Any) -> Any:
    """Rows ``rows`` (int64 indices) of ``arr``: ``index_select`` on torch, ``take`` on numpy."""
    return arr.index_select(0, rows) if ops.is_torch else np.take(arr, rows, axis=0)


def _nan_extras(scores: np.ndarray, reason: str) -> dict[str, Any]:
    return {"nan_reason": reason} if np.isnan(scores).any() else {}


# ----------------------------------------------------------------------------- paths
@dataclass
class _Path:
    """A cumulative replacement path of every row.

    At step ``c`` the features whose ``rank`` is below ``c`` come from ``end``, the others
    from ``start`` (deletion: ``start = x``, ``end = baseline``; insertion the reverse).
    ``outputs`` memoises the target output of every row per ``c`` already evaluated;
    ``starts_at_x``: step 0 is the row itself, whose output the evaluation shares.
    """

    rank: np.ndarray  # (n, d) int64
    start: np.ndarray  # (n, d)
    end: np.ndarray  # (n, d)
    starts_at_x: bool
    outputs: dict[int, np.ndarray] = field(default_factory=dict)


def _replacement_outputs(
    p: Prepared,
    rank: np.ndarray,
    counts: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    batch_size: int | None,
) -> np.ndarray:
    """Target outputs of every row after each step of a replacement path, (n, len(counts)).

    Input ``i * k + j`` is row ``i`` with its features of rank ``< counts[j]`` taken from
    ``end[i]`` and the rest from ``start[i]``; inputs are built chunk by chunk on the model's
    device.
    """
    n, k, shape = p.n, len(counts), p.input_shape
    ops = p.model.array_ops()
    rank_d, counts_d = _int32(ops, rank), _int32(ops, counts)
    start_d, end_d = ops.asarray(start), ops.asarray(end)

    def make_chunk(lo: int, hi: int) -> Any:
        idx = ops.arange(lo, hi)
        rows, steps = idx // k, idx % k
        mask = _take(ops, rank_d, rows) < _take(ops, counts_d, steps)[:, None]
        chunk = ops.where(mask, _take(ops, end_d, rows), _take(ops, start_d, rows))
        return chunk.reshape((hi - lo, *shape))

    out = target_outputs(p.model, make_chunk, n * k, np.repeat(p.target, k), batch_size=batch_size)
    return out.reshape(n, k)


def _path_outputs(
    p: Prepared,
    counts: np.ndarray,
    key: Hashable,
    build: Callable[[], _Path],
    batch_size: int | None,
) -> np.ndarray:
    """Outputs after ``counts`` features changed along the path ``build()`` (n, len(counts)).

    The path (its ordering, its substrate: drawn once) and the outputs of the steps already
    evaluated are shared under ``key``; only missing steps go through the model.
    """
    path: _Path = shared(key, build)
    if path.starts_at_x and 0 not in path.outputs and 0 in counts:
        path.outputs[0] = p.prediction(batch_size)
    missing = sorted({int(c) for c in counts} - set(path.outputs))
    if missing:
        vals = _replacement_outputs(
            p, path.rank, np.asarray(missing, dtype=np.int64), path.start, path.end, batch_size
        )
        for j, c in enumerate(missing):
            path.outputs[c] = vals[:, j]
    return np.stack([path.outputs[int(c)] for c in counts], axis=1)


def _path_key(
    model: Any,
    p: Prepared,
    direction: str,
    ordering: Hashable,
    baseline: Any,
    random_state: Any,
) -> Hashable:
    return (
        "faithfulness.path",
        id(p.explanation),
        id(model),
        direction,
        ordering,
        baseline_key(baseline),
        seed_key(random_state) if _is_random(baseline) else None,
    )


def _element_path(
    p: Prepared,
    *,
    descending: bool,
    use_abs: bool,
    inserting: bool,
    baseline: Any,
    random_state: Any,
) -> Callable[[], _Path]:
    """Builder of the path that changes single features in attribution order."""

    def build() -> _Path:
        order = feature_order(_scored(p, use_abs), descending=descending)
        base = _substrate_flat(p, baseline, random_state)
        x = p.x.reshape(p.n, -1)
        start, end = (base, x) if inserting else (x, base)
        return _Path(
            rank=inverse_permutation(order), start=start, end=end, starts_at_x=not inserting
        )

    return build


def _trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trapezoid-rule area under each row of ``y`` (n, k) over ``x`` (k,)."""
    return ((y[:, 1:] + y[:, :-1]) * 0.5 * np.diff(x)[None]).sum(axis=1)


def _deletion_insertion(
    model: Any,
    explanation: Any,
    *,
    inserting: bool,
    baseline: Any,
    n_steps: Any,
    features_per_step: Any,
    abs: Any,
    random_state: Any,
    batch_size: Any,
) -> MetricResult:
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    d = p.n_features
    counts = _step_counts(d, n_steps, features_per_step,
                          default_n_steps=min(d, DEFAULT_N_STEPS))  # fmt: skip
    resolved = baseline
    if baseline is None and inserting:
        resolved = "blurred" if len(p.input_shape) in (2, 3) else "zeros"
    key = _path_key(model, p, "insert" if inserting else "delete", ("element", True, use_abs),
                    resolved, random_state)  # fmt: skip
    build = _element_path(p, descending=True, use_abs=use_abs, inserting=inserting,
                          baseline=resolved, random_state=random_state)  # fmt: skip
    curve = _path_outputs(p, counts, key, build, batch_size)
    x_frac = counts / d
    params: dict[str, Any] = {"n_steps": len(counts) - 1}
    if resolved is not baseline:
        params["baseline"] = resolved
    return MetricResult(
        name="insertion" if inserting else "deletion",
        scores=_trapezoid(curve, x_frac),
        higher_is_better=inserting,
        category="faithfulness",
        params=params,
        curve=curve,
        curve_x=x_frac,
        extras={"n_features_changed": counts},
    )


# ----------------------------------------------------------------------------- deletion
@register_metric(
    "deletion",
    category="faithfulness",
    higher_is_better=False,
    reference="Petsiuk et al. (2018), RISE, BMVC",
)
def deletion(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "zeros",
    n_steps: int | None = None,
    features_per_step: int | None = None,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Area under the output curve as the most relevant features are removed first (lower is
    better).

    Deletion game of Petsiuk et al. (2018): features are set to the ``baseline`` in
    decreasing order of attribution (MoRF), a step at a time, and the target output is
    recorded after each step, from the intact row (0 features removed) to the fully removed
    one. The score is the area under that curve by the trapezoid rule, with the x-axis the
    fraction of features removed (so it lies in the range of the outputs; for probabilities
    in [0, 1]). A faithful explanation makes the output collapse early: a low area::

        c_j  = number of features removed after step j   (c_0 = 0, c_K = d)
        y_j  = f(x with its c_j top-ranked features set to the baseline)[t]
        AUC  = sum_j (c_{j+1} - c_j) / d * (y_j + y_{j+1}) / 2

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape) of the rows ``data``.
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        What removed features become (Petsiuk et al. delete to black / zero).
    n_steps : int, optional
        Number of removal steps ``K`` (``c_j = floor(j d / K)``); default ``min(d, 100)``.
        Exclusive with ``features_per_step``.
    features_per_step : int, optional
        Remove this many features per step instead (the last step may be shorter).
    abs : bool, default False
        Rank features by ``|attribution|`` instead of the signed value.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline (unused otherwise).
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,): the areas; ``curve`` (n, K + 1): ``y_0 .. y_K``; ``curve_x``
        (K + 1,): fraction of features removed; ``extras["n_features_changed"]`` (K + 1,).

    References
    ----------
    V. Petsiuk, A. Das and K. Saenko. RISE: Randomized input sampling for explanation of
    black-box models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Notes
    -----
    Quantus has no deletion metric; RISE's reference code computes the same area with equal
    steps (``(sum(y) - y_0/2 - y_K/2) / K``), which this equals whenever ``K`` divides ``d``.
    The curve is shared with :func:`pixel_flipping` under :func:`lumos.evaluate`.
    """
    return _deletion_insertion(
        model, explanation, inserting=False, baseline=baseline, n_steps=n_steps,
        features_per_step=features_per_step, abs=abs, random_state=random_state,
        batch_size=batch_size,
    )  # fmt: skip


@register_metric(
    "insertion",
    category="faithfulness",
    higher_is_better=True,
    reference="Petsiuk et al. (2018), RISE, BMVC",
)
def insertion(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = None,
    n_steps: int | None = None,
    features_per_step: int | None = None,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Area under the output curve as the most relevant features are put back first into a
    baseline (higher is better).

    Insertion game of Petsiuk et al. (2018): start from the ``baseline`` (a blurred copy of
    the image) and restore the row's features in decreasing order of attribution (MoRF), a
    step at a time, recording the target output after each step, from the bare baseline (0
    features inserted) to the intact row. The score is the trapezoid-rule area under that
    curve with the x-axis the fraction of features inserted; a faithful explanation makes
    the output recover early: a high area::

        y_j = f(baseline with the c_j top-ranked features of x restored)[t]
        AUC = sum_j (c_{j+1} - c_j) / d * (y_j + y_{j+1}) / 2

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape) of the rows ``data``.
    baseline : None, "zeros", "mean", "blurred", "uniform", float or array, default None
        The starting point. ``None``: ``"blurred"`` (Gaussian blur, sigma ``max(H, W) / 8``)
        for images, as in Petsiuk et al.; ``"zeros"`` for tables, which have nothing to blur
        (the resolved name is recorded in ``params["baseline"]``).
    n_steps : int, optional
        Number of insertion steps ``K``; default ``min(d, 100)``. Exclusive with
        ``features_per_step``.
    features_per_step : int, optional
        Insert this many features per step instead.
    abs : bool, default False
        Rank features by ``|attribution|``.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline (unused otherwise).
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,); ``curve`` (n, K + 1); ``curve_x`` (K + 1,): fraction of features
        inserted; ``extras["n_features_changed"]`` (K + 1,).

    References
    ----------
    V. Petsiuk, A. Das and K. Saenko. RISE: Randomized input sampling for explanation of
    black-box models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Notes
    -----
    Quantus has no insertion metric; the area equals RISE's ``auc`` whenever ``K`` divides
    ``d``.
    """
    return _deletion_insertion(
        model, explanation, inserting=True, baseline=baseline, n_steps=n_steps,
        features_per_step=features_per_step, abs=abs, random_state=random_state,
        batch_size=batch_size,
    )  # fmt: skip


# ----------------------------------------------------------------------------- pixel flipping
@register_metric(
    "pixel_flipping",
    category="faithfulness",
    higher_is_better=True,
    reference="Bach et al. (2015), PLoS ONE; AOPC: Samek et al. (2017), IEEE TNNLS",
)
def pixel_flipping(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "zeros",
    features_per_step: int = 1,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Area over the pixel-flipping curve (AOPC): mean output drop as the most relevant
    features are removed first (higher is better).

    Pixel flipping (Bach et al. 2015) removes features in decreasing order of attribution
    (MoRF), ``features_per_step`` at a time, until every feature is gone, and tracks the
    target output ``f(x^(k))`` after each step ``k = 1..K``. Bach et al. read the curve
    (the steeper the fall, the better the explanation) without reducing it to a number; the
    number Samek et al. (2017) defined for such MoRF curves is the area over the
    perturbation curve, which is the score here::

        AOPC = 1 / (K + 1) * sum_{k=0..K} ( f(x^(0)) - f(x^(k)) ),   x^(0) = x

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape) of the rows ``data``.
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        What removed features become.
    features_per_step : int, default 1
        Features removed per step (``K = ceil(d / features_per_step)`` steps).
    abs : bool, default False
        Rank features by ``|attribution|``.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline (unused otherwise).
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,): AOPC; ``curve`` (n, K): ``f(x^(1)) .. f(x^(K))``, the curve
        ``quantus.PixelFlipping`` returns; ``curve_x`` (K,): fraction of features removed;
        ``extras["prediction"]`` (n,): ``f(x)``.

    References
    ----------
    S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller and W. Samek. On pixel-wise
    explanations for non-linear classifier decisions by layer-wise relevance propagation.
    PLoS ONE 10(7), 2015. https://doi.org/10.1371/journal.pone.0130140

    W. Samek, A. Binder, G. Montavon, S. Lapuschkin and K.-R. Müller. Evaluating the
    visualization of what a deep neural network has learned. IEEE TNNLS 28(11), 2017.
    https://arxiv.org/abs/1509.06321

    Notes
    -----
    ``curve`` equals ``quantus.PixelFlipping(features_in_step=k, abs=..., normalise=False,
    perturb_baseline=<float>)`` on attributions without ties (quantus sorts with an unstable
    sort). Quantus returns only the curve (or its un-normalised trapezoid area); lumos scores
    the AOPC. Under :func:`lumos.evaluate` the curve is read from the one :func:`deletion`
    uses when baseline, ``abs`` and the steps coincide.
    """
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    d = p.n_features
    counts = _step_counts(d, None, features_per_step, default_n_steps=None)
    key = _path_key(model, p, "delete", ("element", True, use_abs), baseline, random_state)
    build = _element_path(p, descending=True, use_abs=use_abs, inserting=False,
                          baseline=baseline, random_state=random_state)  # fmt: skip
    values = _path_outputs(p, counts, key, build, batch_size)
    aopc = (values[:, :1] - values).mean(axis=1)
    return MetricResult(
        name="pixel_flipping",
        scores=aopc,
        higher_is_better=True,
        category="faithfulness",
        curve=values[:, 1:],
        curve_x=counts[1:] / d,
        extras={"prediction": values[:, 0]},
    )


# ----------------------------------------------------------------------------- regions
@register_metric(
    "region_perturbation",
    category="faithfulness",
    higher_is_better=True,
    requires=("image",),
    reference="Samek et al. (2017), IEEE TNNLS",
)
def region_perturbation(
    model: Any,
    explanation: Any,
    *,
    patch_size: int | tuple[int, int] = 8,
    n_regions: int = 100,
    order: str = "morf",
    baseline: Any = "uniform",
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """AOPC of region perturbation: mean output drop as the patches with the largest summed
    attribution are removed first (higher is better).

    Samek et al. (2017) tile the image into square patches (here non-overlapping, from the
    top-left corner, those on the right and bottom edges cut to the image; each patch spans
    all channels), rank them by the sum of the attributions they hold, and remove the
    ``L = min(n_regions, n_patches)`` first ones cumulatively, one per step. The score is the
    area over the perturbation curve::

        AOPC = 1 / (L + 1) * sum_{k=0..L} ( f(x^(0)) - f(x^(k)) )

    where ``x^(k)`` has its first ``k`` patches replaced by the ``baseline``. Samek et al.
    replace regions by uniform noise, the default here.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions of images: ``values`` of shape (n, H, W) or (n, C, H, W).
    patch_size : int or (int, int), default 8
        Patch height and width in pixels.
    n_regions : int, default 100
        Patches removed (at most the number of patches).
    order : {"morf", "lerf"}, default "morf"
        Most relevant first (the AOPC of Samek et al.: higher is better) or least relevant
        first (then a *lower* AOPC is better; the registry's direction is the MoRF one).
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "uniform"
        What removed patches become; ``"uniform"`` draws noise over the row's value range,
        one image per row from ``random_state``.
    abs : bool, default False
        Rank patches by the sum of ``|attribution|``.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline.
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,): AOPC; ``curve`` (n, L): ``f(x) - f(x^(k))`` for ``k = 1..L`` (what
        ``quantus.RegionPerturbation`` returns); ``curve_x`` (L,): ``k``;
        ``extras["prediction"]`` (n,).

    References
    ----------
    W. Samek, A. Binder, G. Montavon, S. Lapuschkin and K.-R. Müller. Evaluating the
    visualization of what a deep neural network has learned. IEEE TNNLS 28(11), 2017.
    https://arxiv.org/abs/1509.06321

    Notes
    -----
    ``curve`` equals ``quantus.RegionPerturbation(patch_size=p, regions_evaluation=L,
    order=..., normalise=False, perturb_baseline=<float>)`` when ``p`` divides ``H`` and
    ``W`` (quantus pads other sizes on both sides, shifting its grid) and patch sums have no
    ties. Quantus returns only that curve; lumos scores the paper's AOPC, which counts the
    ``k = 0`` term and divides by ``L + 1``.
    """
    p = prepare(model, explanation)
    shape = p.input_shape
    if len(shape) not in (2, 3):
        raise ShapeError(
            f"region_perturbation needs images with rows of shape (H, W) or (C, H, W); got "
            f"{shape}. For tables use pixel_flipping or deletion."
        )
    ph, pw = _patch_size(patch_size)
    order = check_name(order, ORDERS, kind="order")
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    n_regions = check_count(n_regions, "n_regions")
    h, w = shape[-2:]
    grid_w = -(-w // pw)
    n_patches = -(-h // ph) * grid_w
    n_steps = min(n_regions, n_patches)
    counts = np.arange(n_steps + 1, dtype=np.int64)
    descending = order == "morf"
    channels = shape[0] if len(shape) == 3 else 1
    if ph == pw == 1 and channels == 1:  # one element per patch: the element-wise path
        key = _path_key(model, p, "delete", ("element", descending, use_abs), baseline,
                        random_state)  # fmt: skip
        build = _element_path(p, descending=descending, use_abs=use_abs, inserting=False,
                              baseline=baseline, random_state=random_state)  # fmt: skip
    else:
        labels = ((np.arange(h) // ph)[:, None] * grid_w + (np.arange(w) // pw)[None]).ravel()
        labels = np.broadcast_to(labels, (channels, h * w)).ravel()  # (d,), channels shared

        def build() -> _Path:
            a = _scored(p, use_abs)
            offsets = np.arange(p.n)[:, None] * n_patches
            sums = np.bincount((labels[None] + offsets).ravel(), weights=a.ravel(),
                               minlength=p.n * n_patches).reshape(p.n, n_patches)  # fmt: skip
            patch_rank = inverse_permutation(feature_order(sums, descending=descending))
            x = p.x.reshape(p.n, -1)
            return _Path(rank=patch_rank[:, labels], start=x, starts_at_x=True,
                         end=_substrate_flat(p, baseline, random_state))  # fmt: skip

        key = _path_key(model, p, "delete", ("patch", ph, pw, descending, use_abs), baseline,
                        random_state)  # fmt: skip
    values = _path_outputs(p, counts, key, build, batch_size)
    drops = values[:, :1] - values
    return MetricResult(
        name="region_perturbation",
        scores=drops.sum(axis=1) / (n_steps + 1),
        higher_is_better=True,
        category="faithfulness",
        params={"n_regions": n_steps},
        curve=drops[:, 1:],
        curve_x=counts[1:],
        extras={"prediction": values[:, 0]},
    )


# ----------------------------------------------------------------------------- correlations
@register_metric(
    "faithfulness_correlation",
    category="faithfulness",
    higher_is_better=True,
    reference="Bhatt et al. (2020), IJCAI",
)
def faithfulness_correlation(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "zeros",
    n_samples: int = 100,
    subset_size: int | None = None,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Pearson correlation between the attribution of random feature subsets and the output
    drop when those subsets are removed (higher is better).

    Bhatt et al. (2020): draw ``n_samples`` subsets ``S`` of ``subset_size`` features
    uniformly without replacement, set each to the ``baseline``, and correlate over the
    subsets::

        mu_F = corr_S( sum_{i in S} a_i ,  f(x)[t] - f(x with x_S = baseline_S)[t] )

    On a linear model with ``a = w * (x - b)`` and a constant baseline ``b`` the two are
    equal and the score is exactly 1.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape), at least 2 features per row.
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        What removed features become.
    n_samples : int, default 100
        Random subsets per row (>= 2).
    subset_size : int, optional
        Features per subset, ``1 .. d - 1``; default ``max(1, d // 10)``.
    abs : bool, default False
        Sum ``|attribution|`` instead of the signed values.
    random_state : int, Generator or None
        Seeds the subsets (and the ``"uniform"`` baseline, from an independent stream).
        Row ``i``'s subsets are drawn from its own generator, ``row_generators(seq, n)[i]``
        where ``seq`` is the second of two seed sequences spawned from ``random_state``
        (see ``_subsets_of``); they are returned in ``extras["subsets"]``.
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,), NaN where either side is constant (``extras["nan_reason"]``);
        ``extras``: ``"attribution_sums"`` and ``"output_drops"`` (n, n_samples),
        ``"subsets"`` (n, n_samples, subset_size) flat feature indices.

    References
    ----------
    U. Bhatt, A. Weller and J. M. F. Moura. Evaluating and aggregating feature-based model
    explanations. IJCAI 2020. https://arxiv.org/abs/2005.00631

    Notes
    -----
    Equals ``quantus.FaithfulnessCorrelation(nr_runs=n_samples, subset_size=...,
    abs=..., normalise=False, perturb_baseline=<float>)`` when quantus is fed the same
    subsets (it draws them from numpy's global random state).
    """
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    n, d = p.n, p.n_features
    if d < 2:
        raise ShapeError(
            "faithfulness_correlation needs rows with at least 2 features to draw subsets from."
        )
    n_samples = check_count(n_samples, "n_samples", minimum=2)
    k = (
        max(1, d // 10)
        if subset_size is None
        else check_count(subset_size, "subset_size", maximum=d - 1)
    )
    seq_base, seq_sub = _spawn(random_state, 2)
    base = _substrate_flat(p, baseline, seq_base if _is_random(baseline) else None)
    a = _scored(p, use_abs)
    subsets, att = _random_subsets(row_generators(seq_sub, n), a, k, n_samples)
    ops = p.model.array_ops()
    x_d, base_d = ops.asarray(p.x.reshape(n, -1)), ops.asarray(base)
    sub_d = ops.asarray(subsets.reshape(n * n_samples, k), integer=True)

    def make_chunk(lo: int, hi: int) -> Any:
        rows = ops.arange(lo, hi) // n_samples
        cols = sub_d[lo:hi]
        chunk, fill = _take(ops, x_d, rows), _take(ops, base_d, rows)  # a copy; the substrate
        if ops.is_torch:
            chunk.scatter_(1, cols, fill.gather(1, cols))
        else:
            np.put_along_axis(chunk, cols, np.take_along_axis(fill, cols, axis=1), axis=1)
        return chunk.reshape((hi - lo, *p.input_shape))

    out = target_outputs(p.model, make_chunk, n * n_samples, np.repeat(p.target, n_samples),
                         batch_size=batch_size)  # fmt: skip
    drops = p.prediction(batch_size)[:, None] - out.reshape(n, n_samples)
    scores = pearson_rows(att, drops)
    return MetricResult(
        name="faithfulness_correlation",
        scores=scores,
        higher_is_better=True,
        category="faithfulness",
        params={"subset_size": k},
        extras={
            "attribution_sums": att,
            "output_drops": drops,
            "subsets": subsets,
            **_nan_extras(scores, _NAN_PEARSON),
        },
    )


def _random_subsets(
    generators: list[np.random.Generator], a: np.ndarray, k: int, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` uniform random ``k``-subsets of each row's features, and their sums.

    Row ``i``'s subsets come from ``generators[i]`` alone, so the rows are split into
    blocks drawn on parallel threads (numpy releases the GIL while it draws, partitions and
    gathers) when there is enough work; the result does not depend on the split.

    Parameters
    ----------
    generators : list of numpy Generator, one per row
    a : ndarray of shape (n, d)
        The attributions whose sums over each subset are returned.

    Returns
    -------
    subsets : ndarray of shape (n, n_samples, k), int64
        Sorted feature indices.
    sums : ndarray of shape (n, n_samples)
        ``a[i, subsets[i, s]].sum()``.
    """
    n, d = a.shape
    subsets = np.empty((n, n_samples, k), dtype=np.int64)
    sums = np.empty((n, n_samples))

    def block(sl: slice) -> None:
        # one row at a time: its keys, mask and attributions stay in the core's cache
        # (2-3x faster sums than one gather over the block)
        for i in range(sl.start, sl.stop):
            subsets[i] = _subsets_of(generators[i : i + 1], d, k, n_samples)[0]
            sums[i] = a[i].take(subsets[i]).sum(axis=-1)

    n_blocks = min(n, _n_threads(), max(1, (n * n_samples * d) >> 19))
    bounds = [n * b // n_blocks for b in range(n_blocks + 1)]
    slices = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    if n_blocks == 1:
        block(slices[0])
    else:
        with ThreadPoolExecutor(n_blocks) as pool:
            list(pool.map(block, slices))
    return subsets, sums


def _n_threads() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _subsets_of(
    generators: list[np.random.Generator], d: int, k: int, n_samples: int
) -> np.ndarray:
    """``n_samples`` uniform random ``k``-subsets of ``range(d)`` per generator, as sorted
    indices (len(generators), n_samples, k), int64.

    Up to 4096 features each subset is the ``k`` smallest of ``d`` uniform 16-bit keys (the
    generator's raw 64-bit draws, split in four): one partition finds every sample's
    ``k``-th key and the subset is where ``keys <= kth`` (cheaper than partitioning indices,
    and sorted). A sample with a tie at its ``k``-th key (probability about
    ``(d - 1) / 2^16``) selects more than ``k`` and is drawn again with
    ``choice(d, k, replace=False)`` from the same generator, after the row's keys: both
    steps treat the features symmetrically, so every subset stays uniform. Beyond 4096
    features, ``choice`` per sample, which then costs less.
    """
    n, m = len(generators), len(generators) * n_samples
    if d > 4096:
        picks = [g.choice(d, k, replace=False) for g in generators for _ in range(n_samples)]
        return np.sort(np.stack(picks), axis=1).astype(np.int64).reshape(n, n_samples, k)
    per = n_samples * d
    keys = np.empty((m, d), dtype=np.uint16)
    for i, g in enumerate(generators):  # four 16-bit keys from each raw 64-bit draw
        raw = g.bit_generator.random_raw((per + 3) // 4).view(np.uint16)[:per]
        keys[i * n_samples : (i + 1) * n_samples] = raw.reshape(n_samples, d)
    mask = keys <= np.partition(keys, k - 1, axis=1)[:, k - 1 : k]
    if np.count_nonzero(mask) != m * k:  # ties at the k-th key: draw those samples again
        for r in np.flatnonzero(np.count_nonzero(mask, axis=1) != k):
            mask[r] = False
            mask[r, generators[r // n_samples].choice(d, k, replace=False)] = True
    flat = np.flatnonzero(mask).reshape(m, k)
    flat -= np.arange(0, m * d, d)[:, None]
    return flat.reshape(n, n_samples, k)


def _group_outputs(
    p: Prepared,
    rank: np.ndarray,
    step: int,
    n_groups: int,
    n_draws: int,
    replacement: Callable[[np.ndarray, np.ndarray, Any], Any],
    batch_size: int | None,
) -> np.ndarray:
    """Target outputs with one feature group replaced at a time, (n, n_draws, n_groups).

    Group ``g`` of a row holds the features of ``rank // step == g``. Input
    ``(i * n_draws + s) * n_groups + g`` is row ``i`` with group ``g`` taken from
    ``replacement(rows, draws, rows_on_backend)`` (the chunk's row and draw indices; returns
    (m, d) on the model's backend).
    """
    n, shape = p.n, p.input_shape
    ops = p.model.array_ops()
    x_d = ops.asarray(p.x.reshape(n, -1))
    group_d = _int32(ops, rank // step)
    per_row = n_draws * n_groups

    def make_chunk(lo: int, hi: int) -> Any:
        idx = np.arange(lo, hi)
        rows, rest = idx // per_row, idx % per_row
        rows_d = ops.asarray(rows, integer=True)
        mask = _take(ops, group_d, rows_d) == _int32(ops, rest % n_groups)[:, None]
        repl = replacement(rows, rest // n_groups, rows_d)
        return ops.where(mask, repl, _take(ops, x_d, rows_d)).reshape((hi - lo, *shape))

    out = target_outputs(p.model, make_chunk, n * per_row, np.repeat(p.target, per_row),
                         batch_size=batch_size)  # fmt: skip
    return out.reshape(n, n_draws, n_groups)


def _group_sums(a: np.ndarray, rank: np.ndarray, step: int, n_groups: int) -> np.ndarray:
    """Sum of ``a`` (n, d) over each group ``rank // step`` (n, n_groups)."""
    n = len(a)
    labels = rank // step + np.arange(n)[:, None] * n_groups
    return np.bincount(labels.ravel(), weights=a.ravel(), minlength=n * n_groups).reshape(
        n, n_groups
    )


@register_metric(
    "faithfulness_estimate",
    category="faithfulness",
    higher_is_better=True,
    reference="Alvarez-Melis & Jaakkola (2018), NeurIPS",
)
def faithfulness_estimate(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "zeros",
    features_per_step: int = 1,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Pearson correlation between the attribution of each feature (group) and the output
    drop when that feature alone is removed (higher is better).

    Alvarez-Melis & Jaakkola (2018) remove each feature ``i`` on its own (set it to the
    ``baseline``) and correlate the drops with the attributions::

        rho = corr_i( a_i ,  f(x)[t] - f(x with x_i = baseline_i)[t] )

    With ``features_per_step = k > 1`` the features are grouped ``k`` at a time in decreasing
    order of attribution (as quantus does) and each group is removed on its own; ``a`` is
    then the group's sum. On a linear model with ``a = w * (x - b)`` and a constant baseline
    ``b`` the score is exactly 1.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape).
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        What a removed feature becomes.
    features_per_step : int, default 1
        Features per group (``ceil(d / k)`` groups, at least 2).
    abs : bool, default False
        Rank and sum ``|attribution|``.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline (unused otherwise).
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,), NaN where either side is constant; ``extras``:
        ``"attribution_sums"`` and ``"output_drops"`` (n, n_groups), groups in decreasing
        order of attribution.

    References
    ----------
    D. Alvarez-Melis and T. S. Jaakkola. Towards robust interpretability with
    self-explaining neural networks. NeurIPS 2018. https://arxiv.org/abs/1806.07538

    Notes
    -----
    Equals ``quantus.FaithfulnessEstimate(features_in_step=k, abs=..., normalise=False,
    perturb_baseline=<float>)`` on attributions without ties.
    """
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    d = p.n_features
    step = check_count(features_per_step, "features_per_step", maximum=max(1, d - 1))
    n_groups = -(-d // step)
    if n_groups < 2:
        raise ShapeError(
            "faithfulness_estimate correlates over at least 2 features; the rows have "
            f"{d} feature(s)."
        )
    a = _scored(p, use_abs)
    rank = inverse_permutation(feature_order(a, descending=True))
    ops = p.model.array_ops()
    base_d = ops.asarray(_substrate_flat(p, baseline, random_state))

    def replacement(rows: np.ndarray, draws: np.ndarray, rows_d: Any) -> Any:
        return _take(ops, base_d, rows_d)

    out = _group_outputs(p, rank, step, n_groups, 1, replacement, batch_size)[:, 0]
    drops = p.prediction(batch_size)[:, None] - out
    att = _group_sums(a, rank, step, n_groups)
    scores = pearson_rows(att, drops)
    return MetricResult(
        name="faithfulness_estimate",
        scores=scores,
        higher_is_better=True,
        category="faithfulness",
        extras={
            "attribution_sums": att,
            "output_drops": drops,
            **_nan_extras(scores, _NAN_PEARSON),
        },
    )


# ----------------------------------------------------------------------------- monotonicity
@register_metric(
    "monotonicity",
    category="faithfulness",
    higher_is_better=True,
    reference="Arya et al. (2019), arXiv:1909.03012 (AIX360)",
)
def monotonicity(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "zeros",
    features_per_step: int = 1,
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Whether the output rises monotonically as features are added to a baseline in
    increasing order of attribution (1 yes, 0 no; higher is better).

    Arya et al. (2019, AIX360): start from the ``baseline`` input and restore the row's
    features one step at a time in *increasing* order of attribution, recording the target
    output after each addition; the explanation is faithful when every addition raises (or
    keeps) the output::

        y_j = f(baseline with the c_j lowest-ranked features of x restored)[t],  j = 1..K
        score = 1  if  y_1 <= y_2 <= ... <= y_K  else 0

    (as in AIX360's ``monotonicity_metric``: the bare baseline is not a point of the curve,
    and ranking uses the signed attributions). The mean over rows is the fraction of
    monotone explanations.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape).
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        The starting input.
    features_per_step : int, default 1
        Features added per step (``K = ceil(d / k) >= 2`` steps).
    abs : bool, default False
        Order by ``|attribution|`` (quantus' default) instead of the signed value (AIX360).
    random_state : int, Generator or None
        Seeds the ``"uniform"`` baseline (unused otherwise).
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in {0, 1}; ``curve`` (n, K): ``y_1 .. y_K``; ``curve_x`` (K,):
        fraction of features added; ``extras["fraction_increasing"]`` (n,): the share of the
        ``K - 1`` steps that did not lower the output.

    References
    ----------
    V. Arya et al. One explanation does not fit all: a toolkit and taxonomy of AI
    explainability techniques. arXiv:1909.03012, 2019.

    Notes
    -----
    Follows the paper and AIX360, not ``quantus.Monotonicity``: quantus starts from the
    baseline and "adds" each feature with a function that writes the *baseline* value at
    those indices, so its input never changes, every step predicts the same output and it
    returns True for any explanation.
    """
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    d = p.n_features
    step = check_count(features_per_step, "features_per_step", maximum=max(1, d - 1))
    counts = _step_counts(d, None, step, default_n_steps=None)[1:]
    if len(counts) < 2:
        raise ShapeError(
            f"monotonicity needs at least 2 steps; the rows have {d} feature(s). Use fewer "
            "features_per_step."
        )
    key = _path_key(model, p, "insert", ("element", False, use_abs), baseline, random_state)
    build = _element_path(p, descending=False, use_abs=use_abs, inserting=True,
                          baseline=baseline, random_state=random_state)  # fmt: skip
    curve = _path_outputs(p, counts, key, build, batch_size)
    rising = np.diff(curve, axis=1) >= 0
    return MetricResult(
        name="monotonicity",
        scores=rising.all(axis=1).astype(np.float64),
        higher_is_better=True,
        category="faithfulness",
        curve=curve,
        curve_x=counts / d,
        extras={"fraction_increasing": rising.mean(axis=1)},
    )


@register_metric(
    "monotonicity_correlation",
    category="faithfulness",
    higher_is_better=True,
    reference="Nguyen & Martínez (2020), arXiv:2007.07584",
)
def monotonicity_correlation(
    model: Any,
    explanation: Any,
    *,
    baseline: Any = "uniform",
    n_samples: int = 20,
    features_per_step: int = 1,
    abs: bool = True,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Spearman correlation between |attribution| and the expected squared output change
    when the feature is perturbed (higher is better).

    Nguyen & Martínez (2020): a feature that matters more should move the output more when
    it is resampled. Each feature (or group of ``features_per_step``, grouped in increasing
    order of attribution as quantus does) is replaced ``n_samples`` times by draws of the
    ``baseline`` and::

        e_g = mean_s ( f(x with group g replaced by draw s)[t] - f(x)[t] )^2
        score = spearman_g( sum_{i in g} |a_i| ,  e_g )

    On a linear model with ``a = w * (x - b)`` and a constant baseline ``b``,
    ``e_g = a_g^2`` and the score is exactly 1.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Attributions ``values`` of shape (n, *input_shape).
    baseline : "uniform", "zeros", "mean", "blurred", float or array, default "uniform"
        The perturbation. ``"uniform"``: every draw is fresh uniform noise over the row's
        value range ``[min x_i, max x_i]``. Deterministic baselines give identical draws, so
        one sample is evaluated whatever ``n_samples`` is.
    n_samples : int, default 20
        Draws per feature group (quantus uses 100).
    features_per_step : int, default 1
        Features per group (at least 2 groups).
    abs : bool, default True
        Correlate ``|attribution|`` (the paper's definition); False: signed values.
    random_state : int, Generator or None
        Seeds the ``"uniform"`` draws: draw ``s`` of row ``i`` is
        ``lo_i + (hi_i - lo_i) * default_rng(child_s).random(d)``, where ``child_s`` is the
        seed sequence ``seeds[i]`` with ``s`` appended to its spawn key (its ``s``-th child)
        and ``seeds = row_seeds(random_state, n)``; group ``g`` takes its entries. Each draw
        is generated in the chunk that needs it, so memory does not grow with
        ``n_samples × d``.
    batch_size : int, optional
        Maximum inputs per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,), NaN where either side is constant; ``extras``:
        ``"attribution_sums"`` and ``"expected_change"`` (n, n_groups), groups in
        increasing order of attribution.

    References
    ----------
    A. Nguyen and M. R. Martínez. On quantitative aspects of model interpretability.
    arXiv:2007.07584, 2020.

    Notes
    -----
    Equals ``quantus.MonotonicityCorrelation(nr_samples=..., features_in_step=k, abs=...,
    normalise=False, perturb_baseline=<float>)`` on attributions without ties. Quantus
    multiplies ``e`` by ``1 / f(x)^2``, a per-row constant that no Spearman correlation
    sees; its ``"uniform"`` draws are U(0, 1) whatever the data's range.
    """
    p = prepare(model, explanation)
    use_abs = check_bool(abs, "abs")
    _check_batch_size(batch_size)
    n, d = p.n, p.n_features
    n_samples = check_count(n_samples, "n_samples")
    step = check_count(features_per_step, "features_per_step", maximum=max(1, d - 1))
    n_groups = -(-d // step)
    if n_groups < 2:
        raise ShapeError(
            "monotonicity_correlation correlates over at least 2 features; the rows have "
            f"{d} feature(s)."
        )
    a = _scored(p, use_abs)
    rank = inverse_permutation(feature_order(a, descending=False))
    ops = p.model.array_ops()
    if _is_random(baseline):
        n_draws = n_samples
        seeds = row_seeds(random_state, n)
        flat = p.x.reshape(n, -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)

        def draw(row: int, s: int) -> np.ndarray:
            seq = np.random.SeedSequence(
                entropy=seeds[row].entropy, spawn_key=(*seeds[row].spawn_key, s)
            )
            return lo[row] + (hi[row] - lo[row]) * np.random.default_rng(seq).random(d)

        def replacement(rows: np.ndarray, draws: np.ndarray, rows_d: Any) -> Any:
            pair = rows * n_draws + draws
            uniq, inv = np.unique(pair, return_inverse=True)
            vals = np.stack([draw(int(u) // n_draws, int(u) % n_draws) for u in uniq])
            return _take(ops, ops.asarray(vals), ops.asarray(inv.ravel(), integer=True))

    else:
        n_draws = 1
        base_d = ops.asarray(_substrate_flat(p, baseline, random_state))

        def replacement(rows: np.ndarray, draws: np.ndarray, rows_d: Any) -> Any:
            return _take(ops, base_d, rows_d)

    out = _group_outputs(p, rank, step, n_groups, n_draws, replacement, batch_size)
    change = ((out - p.prediction(batch_size)[:, None, None]) ** 2).mean(axis=1)
    att = _group_sums(a, rank, step, n_groups)
    scores = spearman_rows(att, change)
    return MetricResult(
        name="monotonicity_correlation",
        scores=scores,
        higher_is_better=True,
        category="faithfulness",
        extras={
            "attribution_sums": att,
            "expected_change": change,
            **_nan_extras(scores, _NAN_SPEARMAN),
        },
    )


# =============================================================================
# infidelity, ROAD, ERASER (comprehensiveness / sufficiency), PGI / PGU

INFIDELITY_PERTURBATIONS = ("gaussian", "subset", "square")
ROAD_ORDERS = ("morf", "lerf")
ROAD_MEASURES = ("output", "accuracy")
#: ERASER's bins: the top 1, 5, 10, 20 and 50 % of the features.
ERASER_FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)
#: Square sides (pixels) of Yeh et al.'s square removal (their code: 1 to 10 on MNIST).
SQUARE_SIZES = tuple(range(1, 11))


# ----------------------------------------------------------------------------- helpers
class _RowDraws:
    """The random draws of each explained row, made from the row's own seed on first use.

    Chunks walk the rows in order, so only the rows of the current chunk are kept: a row
    split over two chunks is drawn once, and memory holds the draws of one chunk's rows.
    """

    def __init__(self, seeds: Sequence[np.random.SeedSequence], make: Callable[..., Any]):
        self._seeds = seeds
        self._make = make
        self._cache: dict[int, Any] = {}

    def rows(self, rows: np.ndarray) -> dict[int, Any]:
        wanted = {int(r) for r in np.unique(rows)}
        for r in list(self._cache):
            if r not in wanted:
                del self._cache[r]
        for r in sorted(wanted):
            if r not in self._cache:
                self._cache[r] = self._make(r, np.random.default_rng(self._seeds[r]))
        return self._cache


def _gather(cache: dict[int, np.ndarray], start: int, stop: int, per_row: int) -> np.ndarray:
    """Items ``start..stop-1`` of the flat (row, sample) index from per-row stacks
    ``cache[row]`` of shape (per_row, ...), one slice per row."""
    parts = []
    k = start
    while k < stop:
        row, j = divmod(k, per_row)
        end = min(stop - k, per_row - j)
        parts.append(cache[row][j : j + end])
        k += end
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _check_positive_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or float(value) < 0 or (float(value) == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


def _image_geometry(p: Prepared, metric: str) -> tuple[int, int, int]:
    """``(C, H, W)`` of image rows (``C = 1`` for rows of shape (H, W))."""
    shape = p.input_shape
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    raise ShapeError(
        f"{metric} needs images, rows of shape (H, W) or (C, H, W); the explained rows have "
        f"shape {shape}."
    )


def _check_fractions(fractions: Any) -> tuple[float, ...]:
    try:
        values = [fractions] if np.ndim(fractions) == 0 else list(np.asarray(fractions).ravel())
    except (TypeError, ValueError):
        values = []
    out = []
    for f in values:
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, numbers.Real):
            out = []
            break
        if not (np.isfinite(f) and 0 < float(f) <= 1):
            out = []
            break
        out.append(float(f))
    if not out:
        raise InputError(
            f"fractions must be fractions of the features in (0, 1], e.g. {ERASER_FRACTIONS}; "
            f"got {fractions!r}."
        )
    return tuple(out)


# ----------------------------------------------------------------------------- infidelity
def _infidelity_draws(
    perturbation: str,
    x_row: np.ndarray,
    a_row: np.ndarray,
    base_row: np.ndarray,
    rng: np.random.Generator,
    n_samples: int,
    *,
    noise_std: float,
    square_sizes: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row's infidelity perturbations.

    Parameters
    ----------
    x_row, a_row, base_row : ndarray of shape input_shape
    rng : numpy Generator
        The row's own generator.

    Returns
    -------
    perturbation : ndarray of shape (n_samples, *input_shape)
        The vector ``I`` the attribution is multiplied with: the Gaussian noise, or the
        binary mask of the removed features for ``"subset"`` / ``"square"``.
    perturbed : ndarray of shape (n_samples, *input_shape)
        ``x - I`` for ``"gaussian"``; ``x`` with the masked features set to the baseline
        otherwise.
    attribution_sum : ndarray of shape (n_samples,)
        ``Iᵀa`` per sample.
    """
    shape = x_row.shape
    if perturbation == "gaussian":
        pert = noise_std * rng.standard_normal((n_samples, *shape))
        perturbed = x_row[None] - pert
    elif perturbation == "subset":
        pert = (rng.random((n_samples, *shape)) < 0.5).astype(np.float64)
        perturbed = np.where(pert > 0, base_row[None], x_row[None])
    else:  # square: uniform over every (side, position) placement, as the authors enumerate
        h, w = shape[-2:]
        counts = np.array([(h - s + 1) * (w - s + 1) for s in square_sizes])
        ends = np.cumsum(counts)
        pick = rng.integers(0, int(ends[-1]), size=n_samples)
        which = np.searchsorted(ends, pick, side="right")
        offset = pick - (ends[which] - counts[which])
        sides = np.asarray(square_sizes)[which]
        top, left = np.divmod(offset, w - sides + 1)
        rr = np.arange(h)[None, :, None]
        cc = np.arange(w)[None, None, :]
        inside = (
            (rr >= top[:, None, None])
            & (rr < (top + sides)[:, None, None])
            & (cc >= left[:, None, None])
            & (cc < (left + sides)[:, None, None])
        )  # (n_samples, h, w), every channel alike
        if len(shape) == 3:
            inside = np.broadcast_to(inside[:, None], (n_samples, *shape))
        pert = inside.astype(np.float64)
        perturbed = np.where(inside, base_row[None], x_row[None])
    attribution_sum = pert.reshape(n_samples, -1) @ a_row.reshape(-1)
    return pert, perturbed, attribution_sum


@register_metric(
    "infidelity",
    category="faithfulness",
    higher_is_better=False,
    reference="Yeh et al. (2019)",
)
def infidelity(
    model: Any,
    explanation: Any,
    *,
    perturbation: str = "gaussian",
    n_samples: int = 100,
    noise_std: float = 0.1,
    baseline: Any = "zeros",
    square_sizes: Sequence[int] | None = None,
    normalise: bool = True,
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Mean squared error between attribution·perturbation and the output drop (lower is better).

    Infidelity (Yeh et al. 2019) measures how well the attribution ``a`` predicts the change
    of the target output under random perturbations ``I``:

    ``INFD(a, f, x) = E_I[(Iᵀa − (f(x) − f(x − I)))²]``,

    estimated with ``n_samples`` draws of ``I`` per row. The paper's normalised variant
    (``normalise=True``, the default, as in the authors' code) first rescales the
    attribution by the least-squares factor

    ``β = E[Iᵀa · Δf] / E[(Iᵀa)²]``, ``Δf = f(x) − f(x − I)``,

    and reports ``E[(β·Iᵀa − Δf)²]``, which does not change when the attribution is multiplied
    by a constant (``β = 0`` when every ``Iᵀa`` is 0, as in captum).

    Perturbations (Yeh et al., Sec. 3–5):

    * ``"gaussian"`` (default): ``I ~ N(0, noise_std²)`` on every input element, ``x − I``
      is evaluated and ``Iᵀa`` uses the real-valued noise. This is the perturbation for
      *local* (gradient-type) explanations: saliency, SmoothGrad (the paper shows SmoothGrad
      is the infidelity-optimal explanation for Gaussian ``I``).
    * ``"subset"``: each feature is independently replaced by ``baseline`` with probability
      1/2 (the paper's "subset of difference to baseline", whose optimal explanation is
      Shapley-like); ``I`` in ``Iᵀa`` is the binary mask of replaced features.
    * ``"square"`` (images only): a square of side ``s ∈ square_sizes`` at a uniformly
      random position (all (side, position) placements equally likely, across all channels)
      is replaced by ``baseline``; ``I`` is the binary mask, as in the authors' square removal.

    With the binary mask the score fits *global* attributions that sum to output changes
    (integrated gradients, SHAP, input×gradient, occlusion); the authors' code and captum's
    documentation pair binary ``I`` with those and real-valued ``I`` with gradients. On a
    linear model ``f(x) = w·x + c`` the integrated-gradients attribution ``w ⊙ (x − b)``
    from the baseline ``b`` has infidelity exactly 0 under ``"subset"`` / ``"square"``, and the
    gradient ``w`` has infidelity 0 under ``"gaussian"``.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` and ``data`` of shape (n, *input_shape), ``target`` (n,).
    perturbation : {"gaussian", "subset", "square"}, default "gaussian"
    n_samples : int, default 100
        Perturbations per row (at least 2 with ``normalise=True``: one sample is always
        fitted exactly).
    noise_std : float, default 0.1
        Standard deviation of the Gaussian ``I``, in input units (``"gaussian"`` only).
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        Value removed features take (``"subset"`` / ``"square"``), see
        :func:`lumos.metrics._base.substrate`.
    square_sizes : sequence of int, optional
        Square sides in pixels (``"square"`` only); default 1 to 10 as the authors, cut to
        the image size.
    normalise : bool, default True
        Rescale the attribution by the optimal ``β`` first (scale-invariant infidelity).
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seeds the per-row perturbations.

    Returns
    -------
    MetricResult
        ``scores`` (n,): the infidelity of each row. ``extras``: ``"attribution_sum"`` and
        ``"output_drop"`` (n, n_samples): ``Iᵀa`` and ``Δf`` per perturbation; ``"beta"``
        (n,): the scale applied (1 without normalisation).

    Notes
    -----
    Equals ``captum.metrics.infidelity`` fed the same perturbations (``perturb_func``
    returning ``(I, x − I)`` or ``(mask, x with the mask at the baseline)``), with
    ``normalize`` matching ``normalise``. ``quantus.Infidelity`` differs from the paper:
    it removes its patches cumulatively in a fixed raster order (each step keeps the
    earlier patches removed), so all of its ``n_perturb_samples`` repeats are identical,
    multiplies the attribution with the real difference ``x − x̃`` also for removals, and has
    no ``β`` rescaling (its ``normalise`` divides the attribution by its maximum). With one
    patch covering the whole image and a ``perturb_func`` returning ``x − I`` it computes
    the same number as ``perturbation="gaussian", normalise=False``.

    References
    ----------
    C.-K. Yeh, C.-Y. Hsieh, A. S. Suggala, D. I. Inouye and P. Ravikumar. On the (in)fidelity
    and sensitivity of explanations. NeurIPS 2019. https://arxiv.org/abs/1901.09392
    """
    p = prepare(model, explanation)
    perturbation = check_name(perturbation, INFIDELITY_PERTURBATIONS, kind="perturbation")
    normalise = check_bool(normalise, "normalise")
    n_samples = check_count(n_samples, "n_samples", minimum=2 if normalise else 1)
    noise_std = _check_positive_float(noise_std, "noise_std")
    sizes: tuple[int, ...] = ()
    if perturbation == "square":
        _, h, w = _image_geometry(p, "infidelity with perturbation='square'")
        sizes = _check_square_sizes(square_sizes, h, w)
    elif square_sizes is not None:
        raise InputError("square_sizes only applies to perturbation='square'.")
    base = None
    if perturbation != "gaussian":  # a "uniform" baseline draws from its own stream
        base = substrate(baseline, p.x, random_state=_substrate_state(random_state))

    def compute() -> tuple[np.ndarray, np.ndarray]:
        n, s = p.n, n_samples
        sums = np.empty((n, s))
        seeds = row_seeds(random_state, n)

        def make(i: int, rng: np.random.Generator) -> np.ndarray:
            b = base[i] if base is not None else p.x[i]
            _, perturbed, sums[i] = _infidelity_draws(
                perturbation, p.x[i], p.a[i], b, rng, s, noise_std=noise_std,
                square_sizes=sizes,
            )  # fmt: skip
            return perturbed

        draws = _RowDraws(seeds, make)

        def make_chunk(start: int, stop: int) -> np.ndarray:
            cache = draws.rows(np.arange(start, stop) // s)
            return _gather(cache, start, stop, s)

        perturbed_out = target_outputs(
            p.model, make_chunk, n * s, np.repeat(p.target, s), batch_size=batch_size
        ).reshape(n, s)
        drops = p.prediction(batch_size)[:, None] - perturbed_out
        return sums, drops

    key = (
        "infidelity",
        id(explanation),
        id(p.source),
        perturbation,
        n_samples,
        noise_std if perturbation == "gaussian" else None,
        sizes,
        baseline_key(baseline) if perturbation != "gaussian" else None,
        seed_key(random_state),
    )
    sums, drops = shared(key, compute)
    if normalise:
        num = (sums * drops).sum(axis=1)
        den = (sums**2).sum(axis=1)
        beta = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    else:
        beta = np.ones(p.n)
    scores = ((beta[:, None] * sums - drops) ** 2).mean(axis=1)
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=False,
        category="",
        extras={"attribution_sum": sums, "output_drop": drops, "beta": beta},
    )


def _substrate_state(random_state: Any) -> Any:
    """A seed for a random baseline that is not the stream the perturbations draw from
    (an int seed would otherwise give both the same per-row streams)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if int(random_state) >= 0:
            return np.random.SeedSequence((int(random_state), 0x6C756D6F73))
    return random_state


def _check_square_sizes(square_sizes: Any, h: int, w: int) -> tuple[int, ...]:
    if square_sizes is None:
        return tuple(s for s in SQUARE_SIZES if s <= min(h, w))
    values = [square_sizes] if np.ndim(square_sizes) == 0 else list(np.ravel(square_sizes))
    if not values or any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in values
    ):
        raise InputError(
            f"square_sizes must be square sides in pixels (ints), e.g. (2, 4, 6); got "
            f"{square_sizes!r}."
        )
    if any(v < 1 or v > min(h, w) for v in values):
        raise InputError(
            f"square_sizes must lie between 1 and the image's smaller side {min(h, w)}, got "
            f"{square_sizes!r}."
        )
    return tuple(sorted({int(v) for v in values}))


# ----------------------------------------------------------------------------- ROAD
_NEIGHBOURS = (
    (-1, -1, 1 / 12),
    (-1, 0, 1 / 6),
    (-1, 1, 1 / 12),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (1, 1, 1 / 12),
)


def noisy_linear_imputation(
    image: Any,
    removed: Any,
    *,
    noise: float = 0.0,
    random_state: Any = None,
) -> np.ndarray:
    """Fill removed pixels from their neighbours: ROAD's noisy linear imputation.

    Every removed pixel ``p`` takes the weighted mean of its 8 neighbours ``q`` inside the
    image, weights ``w = 1/6`` for the 4 direct and ``1/12`` for the 4 diagonal neighbours
    (Rong et al. 2022, Sec. 4), so for each removed pixel

    ``Σ_q w_pq (x_p − x_q) = 0``,

    one sparse linear equation per removed pixel and channel, with the kept pixels as known
    values. The system is solved jointly (``scipy.sparse.linalg.spsolve``), then Gaussian
    noise of standard deviation ``noise`` is added to the imputed pixels only (each channel
    drawn independently), as in the authors' ``NoisyLinearImputer``.

    Parameters
    ----------
    image : array-like of shape (H, W) or (C, H, W)
    removed : array-like of bool, shape (H, W)
        ``True`` where the pixel (all its channels) is removed; at least one pixel must be
        kept.
    noise : float, default 0.0
        Standard deviation of the noise added to the imputed values (the paper uses 0.01).
    random_state : int, numpy Generator or None
        Seeds the noise.

    Returns
    -------
    ndarray of the shape of ``image``, float64
    """
    from lumos._random import check_random_state

    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(removed, dtype=bool)
    if img.ndim not in (2, 3) or mask.shape != img.shape[-2:]:
        raise ShapeError(
            f"image must have shape (H, W) or (C, H, W) and removed shape (H, W); got "
            f"{img.shape} and {mask.shape}."
        )
    if mask.all():
        raise InputError("noisy_linear_imputation needs at least one kept pixel.")
    noise = _check_positive_float(noise, "noise", allow_zero=True)
    z = None
    if noise > 0:
        c = 1 if img.ndim == 2 else img.shape[0]
        z = check_random_state(random_state).standard_normal((c, int(mask.sum())))
    return _impute(img, mask, noise, z)


def _impute(img: np.ndarray, removed: np.ndarray, noise: float, z: np.ndarray | None) -> np.ndarray:
    """Noisy linear imputation of ``img`` (H, W) / (C, H, W); ``z`` (C, n_removed) is the
    standard-normal draw scaled by ``noise`` (ignored when ``noise == 0``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    h, w = removed.shape
    flat = img.reshape(-1, h * w)
    out = flat.copy()
    idx = np.flatnonzero(removed.ravel())
    m = len(idx)
    if m == 0:
        return out.reshape(img.shape)
    var = np.full(h * w, -1, dtype=np.int64)
    var[idx] = np.arange(m)
    r, c = np.divmod(idx, w)
    diag = np.zeros(m)
    rhs = np.zeros((m, flat.shape[0]))
    rows, cols, vals = [np.arange(m)], [np.arange(m)], []
    unknown_all = removed.ravel()
    for dr, dc, weight in _NEIGHBOURS:
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        eq = np.flatnonzero(inside)
        nb = rr[inside] * w + cc[inside]
        diag[eq] += weight
        unknown = unknown_all[nb]
        rows.append(eq[unknown])
        cols.append(var[nb[unknown]])
        vals.append(np.full(int(unknown.sum()), -weight))
        known = ~unknown
        rhs[eq[known]] += weight * flat[:, nb[known]].T  # one neighbour per equation here
    a = coo_matrix(
        (np.concatenate([diag, *vals]), (np.concatenate(rows), np.concatenate(cols))),
        shape=(m, m),
    ).tocsc()
    solution = np.asarray(spsolve(a, rhs)).reshape(m, flat.shape[0]).T  # (C, m)
    if noise > 0 and z is not None:
        solution = solution + noise * z
    out[:, idx] = solution
    return out.reshape(img.shape)


@register_metric(
    "road",
    category="faithfulness",
    higher_is_better=False,
    requires=("image",),
    reference="Rong et al. (2022)",
)
def road(
    model: Any,
    explanation: Any,
    *,
    percentages: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    order: str = "morf",
    noise: float = 0.01,
    measure: str = "output",
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Output after removing pixels, filled by noisy linear imputation (ROAD; lower is better).

    ROAD (Rong et al. 2022) removes the ``p`` % most relevant pixels (MoRF) or least relevant
    (LeRF) of each image and fills them with :func:`noisy_linear_imputation` — each removed
    pixel the weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal), solved jointly
    as one sparse linear system, plus Gaussian noise of standard deviation ``noise`` — so the
    shape of the removed region leaks (almost) no class information and no retraining is
    needed. The model is evaluated on each imputed image; the per-row curve holds the
    target output (``measure="output"``) or whether the model still predicts the target
    (``measure="accuracy"``, the paper's y-axis) at each percentage.

    Pixels are ranked by their attribution summed over channels (ties by pixel index); a
    pixel is removed in every channel. At ``p`` %, ``floor(H·W·p / 100)`` pixels are removed.

    Score per row (lower is better for both orders):

    * ``order="morf"``: the mean of the curve over ``percentages`` (the area under the
      MoRF curve with equal spacing): a faithful attribution makes the output fall fast.
    * ``order="lerf"``: the mean *drop* ``curve(x) − curve`` (output or correctness at the
      original image minus after removal): removing the least relevant pixels should
      change little.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Image rows (n, H, W) or (n, C, H, W).
    percentages : sequence of float, default (10, 20, ..., 90)
        Percent of the pixels removed, each in (0, 100) (the paper's 10 % steps).
    order : {"morf", "lerf"}, default "morf"
    noise : float, default 0.01
        Standard deviation of the imputation noise, in input units (the paper's 0.01 on
        images in [0, 1]); 0 gives plain linear imputation.
    measure : {"output", "accuracy"}, default "output"
        What the curve holds: the model's target output as it returns it (probabilities
        for probability models), or 1/0 for "argmax is still the target".
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seeds the imputation noise (one generator per row).

    Returns
    -------
    MetricResult
        ``scores`` (n,); ``curve`` (n, len(percentages)) and ``curve_x`` = percentages;
        ``extras``: ``"output"`` and ``"accuracy"`` curves (n, len(percentages)) and
        ``"n_removed"`` (len(percentages),) pixels removed per step.

    Notes
    -----
    The imputation equals the authors' (``road.imputations.NoisyLinearImputer``) and
    ``quantus.functions.perturb_func.noisy_linear_imputation`` (same equations, solved to
    1e-10 of each other without noise). ``quantus.ROAD`` scores the batch, not each row
    (the accuracy per percentage over all rows: ``measure="accuracy"`` averaged over rows
    equals it, ``noise=0``); it draws the noise from numpy's global random state, ranks the
    flattened (C·H·W) attribution and uses those indices as pixel indices, so it only works
    on single-channel images. The authors' ``run_road`` with ``morf=False`` at ``th_p = q``
    removes the pixels after the top ``q`` (their LeRF x-axis is the fraction *kept*);
    here ``percentages`` is always the fraction removed, so lumos' LeRF at ``p`` is theirs at
    ``1 − p/100`` (up to rounding). The authors break ties with a tiny random offset; lumos
    by pixel index.

    References
    ----------
    Y. Rong, T. Leemann, V. Borisov, G. Kasneci and E. Kasneci. A consistent and efficient
    evaluation strategy for attribution methods. ICML 2022. https://arxiv.org/abs/2202.00449
    """
    p = prepare(model, explanation)
    c, h, w = _image_geometry(p, "road")
    pct = _check_percentages(percentages)
    order = check_name(order, ROAD_ORDERS, kind="order")
    measure = check_name(measure, ROAD_MEASURES, kind="measure")
    noise = _check_positive_float(noise, "noise", allow_zero=True)
    n_pix = h * w
    n_removed = np.array([int(n_pix * q / 100) for q in pct], dtype=np.int64)

    def compute() -> tuple[np.ndarray, np.ndarray]:
        n, k = p.n, len(pct)
        pixel_attr = p.a.reshape(n, c, n_pix).sum(axis=1)
        ranked = feature_order(pixel_attr, descending=order == "morf")
        pos = inverse_permutation(ranked)
        images = p.x.reshape(n, c, h, w)

        def make(i: int, rng: np.random.Generator) -> np.ndarray:
            return rng.standard_normal((k, c, n_pix)) if noise > 0 else np.zeros((k, c, 0))

        draws = _RowDraws(row_seeds(random_state, n), make)

        def make_chunk(start: int, stop: int) -> np.ndarray:
            rows, steps = np.divmod(np.arange(start, stop), k)
            cache = draws.rows(rows)
            out = np.empty((stop - start, c, h, w))
            for t, (i, j) in enumerate(zip(rows, steps, strict=True)):
                removed = (pos[i] < n_removed[j]).reshape(h, w)
                z = cache[int(i)][j][:, removed.ravel()] if noise > 0 else None
                out[t] = _impute(images[i], removed, noise, z)
            return out.reshape(stop - start, *p.input_shape)

        target = np.repeat(p.target, k)

        def select(start: int, stop: int, y: np.ndarray) -> np.ndarray:
            t = target[start:stop]
            value = y[np.arange(stop - start), t]
            correct = (np.argmax(y, axis=1) == t).astype(np.float64)
            return np.stack([value, correct], axis=1)

        got = p.model.evaluate_generated(make_chunk, n * k, batch_size=batch_size, select=select)
        return got[:, 0].reshape(n, k), got[:, 1].reshape(n, k)

    key = ("road", id(explanation), id(p.source), pct, order, noise, seed_key(random_state))
    outputs, accuracy = shared(key, compute)
    curve = outputs if measure == "output" else accuracy
    if order == "morf":
        scores = curve.mean(axis=1)
    else:
        full = p.outputs(batch_size)
        if measure == "output":
            start_value = full[np.arange(p.n), p.target]
        else:
            start_value = (np.argmax(full, axis=1) == p.target).astype(np.float64)
        scores = (start_value[:, None] - curve).mean(axis=1)
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=False,
        category="",
        curve=curve,
        curve_x=list(pct),
        extras={"output": outputs, "accuracy": accuracy, "n_removed": n_removed},
    )


def _check_percentages(percentages: Any) -> tuple[float, ...]:
    try:
        values = [percentages] if np.ndim(percentages) == 0 else list(np.ravel(percentages))
    except (TypeError, ValueError):
        values = []
    good = bool(values) and all(
        isinstance(v, numbers.Real)
        and not isinstance(v, (bool, np.bool_))
        and np.isfinite(v)
        and 0 < float(v) < 100
        for v in values
    )
    if not good:
        raise InputError(
            "percentages must be percents of the pixels to remove, each strictly between 0 and "
            f"100, e.g. (10, 20, ..., 90); got {percentages!r}."
        )
    return tuple(float(v) for v in values)


# ----------------------------------------------------------------------------- ERASER
def _eraser_gaps(
    p: Prepared,
    *,
    keep_top: bool,
    fractions: tuple[float, ...],
    baseline: Any,
    abs_: bool,
    batch_size: int | None,
    random_state: Any,
    explanation: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``f(x) − f(x̃_k)`` per row and fraction, (n, len(fractions)), and the k per fraction.

    ``x̃_k`` has the top-k features set to the baseline (``keep_top=False``:
    comprehensiveness) or everything but the top-k (``keep_top=True``: sufficiency).
    """
    d = p.n_features
    ks = np.array([max(1, math.ceil(f * d - 1e-9)) for f in fractions], dtype=np.int64)

    def compute() -> np.ndarray:
        n, nf = p.n, len(fractions)
        a = np.abs(p.a) if abs_ else p.a
        pos = inverse_permutation(feature_order(a, descending=True))
        flat_x = p.x.reshape(n, d)
        flat_b = substrate(baseline, p.x, random_state=random_state).reshape(n, d)

        def make_chunk(start: int, stop: int) -> np.ndarray:
            rows, j = np.divmod(np.arange(start, stop), nf)
            top = pos[rows] < ks[j][:, None]
            if keep_top:
                chunk = np.where(top, flat_x[rows], flat_b[rows])
            else:
                chunk = np.where(top, flat_b[rows], flat_x[rows])
            return chunk.reshape(stop - start, *p.input_shape)

        out = target_outputs(
            p.model, make_chunk, n * nf, np.repeat(p.target, nf), batch_size=batch_size
        ).reshape(n, nf)
        return p.prediction(batch_size)[:, None] - out

    key = (
        "eraser",
        "sufficiency" if keep_top else "comprehensiveness",
        id(explanation),
        id(p.source),
        fractions,
        baseline_key(baseline),
        abs_,
        seed_key(random_state) if isinstance(baseline, str) and baseline == "uniform" else None,
    )
    return shared(key, compute), ks


_ERASER_DOC_PARAMS = """

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` and ``data`` of shape (n, *input_shape), ``target`` (n,).
    fractions : sequence of float, default (0.01, 0.05, 0.10, 0.20, 0.50)
        ERASER's bins: fractions of the features in (0, 1]; the top ``ceil(fraction · d)``
        features (at least one) form the rationale.
    baseline : "zeros", "mean", "uniform", float or array, default "zeros"
        Value removed features take (see :func:`lumos.metrics._base.substrate`); for
        standardised tables zero is the training mean.
    abs : bool, default False
        Rank features by ``|a|`` instead of the signed attribution (most positive first).
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seeds ``baseline="uniform"`` (unused otherwise).

    Returns
    -------
    MetricResult
        ``scores`` (n,): the mean gap over the bins; ``curve`` (n, len(fractions)): the gap
        per bin, ``curve_x`` = fractions; ``extras["k"]``: features in each bin.
"""


@register_metric(
    "comprehensiveness",
    category="faithfulness",
    higher_is_better=True,
    requires=("tabular",),
    reference="DeYoung et al. (2020)",
)
def comprehensiveness(
    model: Any,
    explanation: Any,
    *,
    fractions: Sequence[float] = ERASER_FRACTIONS,
    baseline: Any = "zeros",
    abs: bool = False,
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Output drop when the top-k features are removed, averaged over k (higher is better).

    ERASER's comprehensiveness (DeYoung et al. 2020), aggregated over bins as an area over
    the perturbation curve: for each fraction ``q`` the rationale ``r_q`` is the top
    ``ceil(q·d)`` features by attribution, and

    ``comprehensiveness = mean_q [f(x)_t − f(x \\ r_q)_t]``

    where ``x \\ r_q`` has the rationale's features set to ``baseline`` and ``t`` is the
    explained target. A faithful rationale carries the evidence, so removing it lowers the
    output a lot.
    {params}

    Notes
    -----
    ERASER's reference code (``rationale_benchmark/metrics.py``) averages the gaps over the
    bins (``1/|B|``) and uses the predicted class's probability; lumos uses the explanation's
    target output as the model returns it. For tables (the issue's scope): on images every
    pixel channel counts as a feature. No quantus / captum counterpart (quantus'
    ``Sufficiency`` is Dasgupta et al.'s, a different metric).

    References
    ----------
    J. DeYoung, S. Jain, N. F. Rajani, E. Lehman, C. Xiong, R. Socher and B. C. Wallace.
    ERASER: a benchmark to evaluate rationalized NLP models. ACL 2020.
    https://arxiv.org/abs/1911.03429
    """
    return _eraser_result(
        model, explanation, fractions, baseline, abs, batch_size, random_state, keep_top=False
    )


@register_metric(
    "sufficiency",
    category="faithfulness",
    higher_is_better=False,
    requires=("tabular",),
    reference="DeYoung et al. (2020)",
)
def sufficiency(
    model: Any,
    explanation: Any,
    *,
    fractions: Sequence[float] = ERASER_FRACTIONS,
    baseline: Any = "zeros",
    abs: bool = False,
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Output drop when only the top-k features are kept, averaged over k (lower is better).

    ERASER's sufficiency (DeYoung et al. 2020), aggregated over bins: for each fraction
    ``q`` the rationale ``r_q`` is the top ``ceil(q·d)`` features by attribution, and

    ``sufficiency = mean_q [f(x)_t − f(r_q)_t]``

    where ``r_q`` keeps the rationale's features and sets every other feature to
    ``baseline``. A sufficient rationale alone keeps the output (the gap may be negative
    when the rationale alone raises it).
    {params}

    Notes
    -----
    As :func:`comprehensiveness`: the plain mean over bins of ERASER's reference code, the
    explanation's target output, no quantus / captum counterpart.

    References
    ----------
    J. DeYoung, S. Jain, N. F. Rajani, E. Lehman, C. Xiong, R. Socher and B. C. Wallace.
    ERASER: a benchmark to evaluate rationalized NLP models. ACL 2020.
    https://arxiv.org/abs/1911.03429
    """
    return _eraser_result(
        model, explanation, fractions, baseline, abs, batch_size, random_state, keep_top=True
    )


def _eraser_result(
    model: Any,
    explanation: Any,
    fractions: Any,
    baseline: Any,
    abs: Any,
    batch_size: int | None,
    random_state: Any,
    *,
    keep_top: bool,
) -> MetricResult:
    """Comprehensiveness (``keep_top=False``: the top features removed) or sufficiency
    (``keep_top=True``: only they kept): per-bin gaps as the curve, their mean as the score."""
    p = prepare(model, explanation)
    frac = _check_fractions(fractions)
    gaps, ks = _eraser_gaps(
        p, keep_top=keep_top, fractions=frac, baseline=baseline, abs_=check_bool(abs, "abs"),
        batch_size=batch_size, random_state=random_state, explanation=explanation,
    )  # fmt: skip
    return MetricResult(
        name="",
        scores=gaps.mean(axis=1),
        higher_is_better=not keep_top,
        category="",
        curve=gaps,
        curve_x=list(frac),
        extras={"k": ks},
    )


for _f in (comprehensiveness, sufficiency):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _ERASER_DOC_PARAMS)


# ----------------------------------------------------------------------------- OpenXAI
def _prediction_gap(
    p: Prepared,
    *,
    important: bool,
    k: Any,
    n_samples: int,
    noise_std: float,
    abs_: bool,
    batch_size: int | None,
    random_state: Any,
    explanation: Any,
) -> tuple[np.ndarray, int]:
    """``|f(x)_t − f(x + m ⊙ ε)_t|`` per row and sample (n, n_samples), and the resolved k.

    ``m`` marks the top-k features (``important=True``, PGI) or the others (PGU); ``ε`` is
    drawn per row from its own generator, the same draws for PGI and PGU.
    """
    d = p.n_features
    k_count = top_k_count(k, d)

    def compute() -> np.ndarray:
        n, s = p.n, n_samples
        a = np.abs(p.a) if abs_ else p.a
        pos = inverse_permutation(feature_order(a, descending=True))
        perturb = (pos < k_count) if important else (pos >= k_count)  # (n, d)
        flat_x = p.x.reshape(n, d)

        def make(i: int, rng: np.random.Generator) -> np.ndarray:
            eps = noise_std * rng.standard_normal((s, d))
            return flat_x[i][None] + eps * perturb[i][None]

        draws = _RowDraws(row_seeds(random_state, n), make)

        def make_chunk(start: int, stop: int) -> np.ndarray:
            cache = draws.rows(np.arange(start, stop) // s)
            return _gather(cache, start, stop, s).reshape(stop - start, *p.input_shape)

        out = target_outputs(
            p.model, make_chunk, n * s, np.repeat(p.target, s), batch_size=batch_size
        ).reshape(n, s)
        return np.abs(p.prediction(batch_size)[:, None] - out)

    key = (
        "prediction_gap",
        important,
        id(explanation),
        id(p.source),
        k_count,
        n_samples,
        noise_std,
        abs_,
        seed_key(random_state),
    )
    return shared(key, compute), k_count


_GAP_DOC_PARAMS = """

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` and ``data`` of shape (n, *input_shape), ``target`` (n,).
    k : int or float, default 0.25
        The important features: an int is a count (1 to d), a float in (0, 1] a fraction
        of the d features (rounded up).
    n_samples : int, default 100
        Gaussian perturbations per row (OpenXAI's ``num_samples``).
    noise_std : float, default 0.05
        Standard deviation of the noise added to the perturbed features, in input units
        (OpenXAI's ``NormalPerturbation`` default).
    abs : bool, default True
        Rank features by ``|a|`` as OpenXAI; ``False`` ranks by the signed attribution.
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seeds the noise, one generator per row (PGI and PGU with the same seed share the
        draws).

    Returns
    -------
    MetricResult
        ``scores`` (n,): the mean absolute prediction gap; ``extras["gaps"]``
        (n, n_samples): each perturbation's gap; ``params["resolved_k"]``.

    Notes
    -----
    OpenXAI (``openxai/metrics.py``, ``eval_pred_faithfulness``) perturbs continuous
    features with ``N(0, std²)`` noise and flips discrete ones with a small probability;
    lumos treats every feature as continuous. OpenXAI reads the model's first output column
    (class 0 probability); lumos the explanation's target output. OpenXAI is not installed
    here; the formula is checked on hand-computed cases instead.
"""


@register_metric("pgi", category="faithfulness", higher_is_better=True,
                 reference="Agarwal et al. (2022)")  # fmt: skip
def pgi(
    model: Any,
    explanation: Any,
    *,
    k: int | float = 0.25,
    n_samples: int = 100,
    noise_std: float = 0.05,
    abs: bool = True,
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Prediction gap when the top-k features are perturbed with noise (higher is better).

    OpenXAI's prediction gap on important features (Agarwal et al. 2022):

    ``PGI(x) = E_ε |f(x)_t − f(x + m_k ⊙ ε)_t|``, ``ε ~ N(0, noise_std²)``,

    where ``m_k`` marks the ``k`` features with the largest attribution magnitude; the
    expectation is the mean over ``n_samples`` draws. Perturbing the features an
    explanation calls important should move the prediction.
    {params}

    References
    ----------
    C. Agarwal, S. Krishna, E. Saxena, M. Pawelczyk, N. Johnson, I. Puri, M. Zitnik and
    H. Lakkaraju. OpenXAI: towards a transparent evaluation of model explanations. NeurIPS
    2022 Datasets and Benchmarks. https://arxiv.org/abs/2206.11104
    """
    return _gap_result(
        model, explanation, important=True, k=k, n_samples=n_samples, noise_std=noise_std,
        abs=abs, batch_size=batch_size, random_state=random_state,
    )  # fmt: skip


@register_metric("pgu", category="faithfulness", higher_is_better=False,
                 reference="Agarwal et al. (2022)")  # fmt: skip
def pgu(
    model: Any,
    explanation: Any,
    *,
    k: int | float = 0.25,
    n_samples: int = 100,
    noise_std: float = 0.05,
    abs: bool = True,
    batch_size: int | None = None,
    random_state: Any = None,
) -> MetricResult:
    """Prediction gap when all but the top-k features are perturbed (lower is better).

    OpenXAI's prediction gap on unimportant features (Agarwal et al. 2022):

    ``PGU(x) = E_ε |f(x)_t − f(x + (1 − m_k) ⊙ ε)_t|``, ``ε ~ N(0, noise_std²)``,

    the same as :func:`pgi` with the noise on the features outside the top ``k``.
    Perturbing features an explanation calls unimportant should leave the prediction.
    {params}

    References
    ----------
    C. Agarwal, S. Krishna, E. Saxena, M. Pawelczyk, N. Johnson, I. Puri, M. Zitnik and
    H. Lakkaraju. OpenXAI: towards a transparent evaluation of model explanations. NeurIPS
    2022 Datasets and Benchmarks. https://arxiv.org/abs/2206.11104
    """
    return _gap_result(
        model, explanation, important=False, k=k, n_samples=n_samples, noise_std=noise_std,
        abs=abs, batch_size=batch_size, random_state=random_state,
    )  # fmt: skip


for _f in (pgi, pgu):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _GAP_DOC_PARAMS)


def _gap_result(
    model: Any,
    explanation: Any,
    *,
    important: bool,
    k: Any,
    n_samples: Any,
    noise_std: Any,
    abs: Any,
    batch_size: int | None,
    random_state: Any,
) -> MetricResult:
    p = prepare(model, explanation)
    n_samples = check_count(n_samples, "n_samples")
    noise_std = _check_positive_float(noise_std, "noise_std")
    abs_ = check_bool(abs, "abs")
    gaps, k_count = _prediction_gap(
        p, important=important, k=k, n_samples=n_samples, noise_std=noise_std, abs_=abs_,
        batch_size=batch_size, random_state=random_state, explanation=explanation,
    )  # fmt: skip
    return MetricResult(
        name="",
        scores=gaps.mean(axis=1),
        higher_is_better=important,
        category="",
        params={"resolved_k": k_count},
        extras={"gaps": gaps},
    )
