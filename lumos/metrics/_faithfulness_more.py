"""Faithfulness metrics, second part: infidelity (Yeh et al. 2019), ROAD (Rong et al. 2022),
ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020) and OpenXAI's prediction gaps
on important / unimportant features (Agarwal et al. 2022).

Every metric sends its perturbed inputs through the engine chunk by chunk. Random draws come
from one generator per explained row (:func:`lumos.metrics._base.row_seeds`), made when a
chunk first needs the row, so a row's score depends only on its own seed: the same
``random_state`` gives the same scores for any ``batch_size``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lumos._validation import check_name
from lumos.errors import InputError, ShapeError
from lumos.metrics._base import (
    MetricResult,
    Prepared,
    baseline_key,
    check_count,
    feature_order,
    prepare,
    register_metric,
    row_seeds,
    seed_key,
    shared,
    substrate,
    target_outputs,
)

__all__ = [
    "comprehensiveness",
    "infidelity",
    "noisy_linear_imputation",
    "pgi",
    "pgu",
    "road",
    "sufficiency",
]

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


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


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


def _rank_positions(order: np.ndarray) -> np.ndarray:
    """Inverse permutation per row: ``pos[i, f]`` is the rank of feature ``f`` in row ``i``."""
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(order.shape[1])[None], axis=1)
    return pos


def _top_k_count(k: Any, d: int) -> int:
    """``k`` as a number of features: an int in [1, d], or a fraction in (0, 1) rounded up."""
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        return check_count(k, "k", maximum=d)
    if isinstance(k, numbers.Real) and not isinstance(k, bool) and np.isfinite(k) and 0 < k < 1:
        return max(1, math.ceil(float(k) * d - 1e-9))
    raise InputError(
        f"k must be a number of features (an int from 1 to {d}) or a fraction in (0, 1) of "
        f"them, got {k!r}; e.g. k=3 or k=0.25."
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
    normalise = _check_bool(normalise, "normalise")
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
        pos = _rank_positions(ranked)
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
        pos = _rank_positions(feature_order(a, descending=True))
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
    p = prepare(model, explanation)
    frac = _check_fractions(fractions)
    abs_ = _check_bool(abs, "abs")
    gaps, ks = _eraser_gaps(
        p, keep_top=False, fractions=frac, baseline=baseline, abs_=abs_,
        batch_size=batch_size, random_state=random_state, explanation=explanation,
    )  # fmt: skip
    return MetricResult(
        name="",
        scores=gaps.mean(axis=1),
        higher_is_better=True,
        category="",
        curve=gaps,
        curve_x=list(frac),
        extras={"k": ks},
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
    p = prepare(model, explanation)
    frac = _check_fractions(fractions)
    abs_ = _check_bool(abs, "abs")
    gaps, ks = _eraser_gaps(
        p, keep_top=True, fractions=frac, baseline=baseline, abs_=abs_,
        batch_size=batch_size, random_state=random_state, explanation=explanation,
    )  # fmt: skip
    return MetricResult(
        name="",
        scores=gaps.mean(axis=1),
        higher_is_better=False,
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
    k_count = _top_k_count(k, d)

    def compute() -> np.ndarray:
        n, s = p.n, n_samples
        a = np.abs(p.a) if abs_ else p.a
        pos = _rank_positions(feature_order(a, descending=True))
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
        The important features: an int is a count (1 to d), a float in (0, 1) a fraction
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
    abs_ = _check_bool(abs, "abs")
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
