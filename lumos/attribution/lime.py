"""LIME: a weighted linear surrogate fitted to perturbations around each row (tables, images)."""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from lumos._random import check_random_state
from lumos._validation import check_array, check_name, check_positive_int
from lumos.attribution._base import Explainer, register
from lumos.attribution._baselines import blur
from lumos.attribution._groups import label_map
from lumos.errors import InputError, ShapeError

SEGMENTATIONS = ("slic", "quickshift", "felzenszwalb")
HIDES = ("mean", "zero", "blur")
DISCRETIZERS = {"quartile": (25, 50, 75), "decile": tuple(range(10, 100, 10))}
FEATURE_SELECTIONS = ("auto", "forward_selection", "highest_weights")
#: lime's defaults: 5000 perturbations per table row, 1000 per image.
DEFAULT_SAMPLES = {"table": 5000, "image": 1000}
#: Elements of the per-row designs (samples × interpretable features) held at once; rows are
#: processed in blocks of this size, so memory stays bounded whatever the number of rows.
_BLOCK_ELEMENTS = 1 << 22
#: Rows fitted together from a shared draw of continuous perturbations (a fixed block shape
#: keeps every row's numbers independent of the rows explained with it).
_SHARED_ROWS = 16
#: Elements of the pairwise-product chunks of the shared samples (see _fit_shared_continuous).
_PAIR_ELEMENTS = 1 << 21


def _kernel(distances: np.ndarray, kernel_width: np.ndarray | float) -> np.ndarray:
    """lime's exponential kernel ``sqrt(exp(-d² / w²)) = exp(-d² / (2 w²))``."""
    return np.sqrt(np.exp(-(distances**2) / np.square(kernel_width)))


def _check_float(value: Any, name: str, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    bad = not math.isfinite(value) or (value <= minimum if strict else value < minimum)
    if bad:
        op = ">" if strict else ">="
        raise InputError(f"{name} must be a finite number {op} {minimum}, got {value}.")
    return value


# ---------------------------------------------------------------------- weighted ridge
def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (B, S) arrays, one BLAS call per row: a row's result does
    not depend on how many rows are stacked with it (numpy's axis reductions can)."""
    return np.matmul(a[:, None, :], b[:, :, None])[:, 0, 0]


def _weighted_stats(
    z: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means and the centred weighted Gram / cross products of a stack of designs.

    Parameters
    ----------
    z : ndarray of shape (B, S, p)
    y, w : ndarray of shape (B, S)

    Returns
    -------
    z_mean (B, p), y_mean (B,), gram (B, p, p), cross (B, p)
    """
    # Stacked matmuls run one BLAS call per row with the same shapes whatever the stack
    # height, so each row's numbers do not depend on which rows share its block.
    sw = _row_dot(w, np.ones_like(w))
    z_mean = np.matmul(w[:, None, :], z)[:, 0] / sw[:, None]
    y_mean = _row_dot(w, y) / sw
    root = np.sqrt(w)
    zs = z - z_mean[:, None, :]
    zs *= root[:, :, None]  # centred, scaled by sqrt(weight)
    zt = zs.transpose(0, 2, 1)
    gram = np.matmul(zt, zs)  # Σ w zc zcᵀ
    cross = np.matmul(zt, ((y - y_mean[:, None]) * root)[..., None])[..., 0]
    return z_mean, y_mean, gram, cross


def _solve_ridge(
    gram: np.ndarray, cross: np.ndarray, alpha: float, active: np.ndarray
) -> np.ndarray:
    """Coefficients of ridge regressions on the ``active`` columns of each design (others 0).

    Solves ``(G_AA + alpha I) beta_A = c_A`` for every row at once; this is what
    ``sklearn.linear_model.Ridge(alpha).fit(X[:, A], y, sample_weight=w)`` solves after
    centring by the weighted means. ``alpha = 0`` uses the pseudo-inverse (minimum-norm
    least squares, as sklearn falls back to when the system is singular).
    """
    p = gram.shape[-1]
    diag = np.arange(p)
    off = ~active
    a = np.where(off[:, :, None] | off[:, None, :], 0.0, gram)
    a[:, diag, diag] += np.where(off, 1.0, alpha)
    rhs = np.where(active, cross, 0.0)[..., None]
    if alpha > 0:
        return np.linalg.solve(a, rhs)[..., 0]
    return np.matmul(np.linalg.pinv(a, hermitian=True), rhs)[..., 0]


def _forward_selection(
    gram: np.ndarray, cross: np.ndarray, active: np.ndarray, k: int
) -> np.ndarray:
    """lime's forward selection, every row at once.

    Adds, ``k`` times, the feature whose weighted least-squares fit (no penalty, with
    intercept) together with the features already chosen has the highest weighted R²;
    R² = explained / total, so the feature maximising the explained sum of squares
    ``c_S' G_SS⁺ c_S`` is taken (ties: the lowest index, as lime's strict ``>``).

    Returns
    -------
    ndarray of bool, shape (B, p): the chosen features.
    """
    n_rows, p = cross.shape
    chosen = np.zeros((n_rows, p), dtype=bool)
    used = np.zeros((n_rows, 0), dtype=np.int64)
    r = np.arange(n_rows)
    candidates = np.broadcast_to(np.arange(p)[None, :, None], (n_rows, p, 1))
    for _ in range(min(k, p)):
        t = used.shape[1]
        idx = np.concatenate([np.broadcast_to(used[:, None, :], (n_rows, p, t)), candidates], 2)
        g_sub = gram[r[:, None, None, None], idx[:, :, :, None], idx[:, :, None, :]]
        c_sub = cross[r[:, None, None], idx]
        beta = np.matmul(np.linalg.pinv(g_sub, hermitian=True), c_sub[..., None])[..., 0]
        score = np.einsum("bjt,bjt->bj", c_sub, beta)
        score[chosen | ~active] = -np.inf
        best = np.argmax(score, axis=1)
        ok = np.isfinite(score[r, best])
        chosen[r[ok], best[ok]] = True
        # rows with no candidate left repeat a chosen feature (a no-op for the pseudo-inverse)
        best = np.where(ok, best, used[:, -1] if t else best)
        used = np.concatenate([used, best[:, None]], axis=1)
    return chosen


def _highest_weights(
    gram: np.ndarray, cross: np.ndarray, active: np.ndarray, first: np.ndarray, k: int
) -> np.ndarray:
    """lime's ``highest_weights``: the ``k`` largest ``|coef · z_0|`` of a Ridge(0.01) fit.

    Returns
    -------
    ndarray of bool, shape (B, p)
    """
    coef = _solve_ridge(gram, cross, 0.01, active)
    key = np.where(active, np.abs(coef * first), -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
    return (rank < k) & active


def _fit_surrogates(
    z: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    active: np.ndarray,
    *,
    alpha: float,
    n_features: int | None,
    feature_selection: str,
) -> dict[str, np.ndarray]:
    """Weighted ridge surrogates for a block of rows (lime_base.explain_instance_with_data).

    Parameters
    ----------
    z : ndarray of shape (B, S, p)
        Interpretable representation of the samples; ``z[:, 0]`` is the explained row.
    y : ndarray of shape (B, S)
        Model output (target column) at each sample.
    w : ndarray of shape (B, S)
        Kernel weights.
    active : ndarray of bool, shape (B, p)
        Columns that exist for each row (padding columns of images are inactive).

    Returns
    -------
    dict with ``coefficients`` (B, p), ``intercept`` (B,), ``r2`` (B,), ``prediction_local`` (B,)
    """
    z_mean, y_mean, gram, cross = _weighted_stats(z, y, w)
    coef, intercept = _ridge_from_stats(
        z_mean, y_mean, gram, cross, active, z[:, 0],
        alpha=alpha, n_features=n_features, feature_selection=feature_selection,
    )  # fmt: skip
    fitted = np.matmul(z, coef[..., None])[..., 0] + intercept[:, None]
    rss = _row_dot(w, (y - fitted) ** 2)
    tss = _row_dot(w, (y - y_mean[:, None]) ** 2)
    return _surrogate_result(coef, intercept, rss, tss, fitted[:, 0])


def _surrogate_result(
    coef: np.ndarray, intercept: np.ndarray, rss: np.ndarray, tss: np.ndarray, local: np.ndarray
) -> dict[str, np.ndarray]:
    # a constant output is fitted exactly by the constant surrogate: R² = 1 (as sklearn)
    r2 = np.where(tss > 0, 1.0 - rss / np.where(tss > 0, tss, 1.0), 1.0)
    return {"coefficients": coef, "intercept": intercept, "r2": r2, "prediction_local": local}


def _ridge_from_stats(
    z_mean: np.ndarray,
    y_mean: np.ndarray,
    gram: np.ndarray,
    cross: np.ndarray,
    active: np.ndarray,
    first: np.ndarray,
    *,
    alpha: float,
    n_features: int | None,
    feature_selection: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (B, p) and intercepts (B,) from the weighted statistics of each row's
    samples; ``first`` (B, p) is the explained row's representation (for highest_weights)."""
    if n_features is not None:
        method = feature_selection
        if method == "auto":
            method = "forward_selection" if n_features <= 6 else "highest_weights"
        if method == "forward_selection":
            active = _forward_selection(gram, cross, active, n_features)
        else:
            active = _highest_weights(gram, cross, active, first, n_features)
    coef = _solve_ridge(gram, cross, alpha, active)
    return coef, y_mean - _row_dot(z_mean, coef)


# ---------------------------------------------------------------------- tables
class _TableStats:
    """Statistics of the background that lime_tabular samples from.

    ``mean``/``std`` per feature (population std; a zero std becomes 1 as in sklearn's
    ``StandardScaler``), and for discretisation the bin edges (percentiles of the background,
    duplicates dropped), the background frequency of every bin, and each bin's range, mean and
    std, as lime's ``QuartileDiscretizer`` computes them.
    """

    def __init__(self, background: np.ndarray, percentiles: tuple[int, ...] | None) -> None:
        self.mean = background.mean(axis=0)
        std = background.std(axis=0)
        self.std = np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)
        if percentiles is None:
            return
        d = background.shape[1]
        edges = [np.unique(np.percentile(background[:, f], percentiles)) for f in range(d)]
        nb = max(len(e) for e in edges) + 1
        self.edges = edges
        self.freq = np.zeros((d, nb))
        self.lo = np.zeros((d, nb))
        self.hi = np.zeros((d, nb))
        self.bin_mean = np.zeros((d, nb))
        self.bin_std = np.full((d, nb), 1e-11)
        for f, e in enumerate(edges):
            col = background[:, f]
            bins = np.searchsorted(e, col)
            k = len(e) + 1
            counts = np.bincount(bins, minlength=k)
            self.freq[f, :k] = counts / counts.sum()
            self.lo[f, :k] = np.concatenate([[col.min()], e])
            self.hi[f, :k] = np.concatenate([e, [col.max()]])
            for b in np.flatnonzero(counts):
                sel = col[bins == b]
                self.bin_mean[f, b] = sel.mean()
                self.bin_std[f, b] = sel.std() + 1e-11
        # bin of u ~ U[0, 1) = number of cumulative frequencies (before the last) <= u
        self.cum = np.cumsum(self.freq, axis=1)[:, :-1]
        self.cum[self.freq.cumsum(axis=1)[:, :-1] >= 1.0 - 1e-12] = np.inf
        # lime's truncated normal per bin, N(mean, std) on [lo, hi], drawn by inversion:
        # the bounds' CDF values depend on the bin only, so they are tabulated here. An
        # interval right of the mean is mirrored (ndtr is accurate in the left tail).
        a = (self.lo - self.bin_mean) / self.bin_std
        b = (self.hi - self.bin_mean) / self.bin_std
        self.flip = a > 0
        self.za, self.zb = np.where(self.flip, -b, a), np.where(self.flip, -a, b)
        self.pa = ndtr(self.za)
        self.dp = ndtr(self.zb) - self.pa
        self.nb = nb

    def bin_of(self, x: np.ndarray) -> np.ndarray:
        """Bin index of each feature of ``x`` (shape (..., d))."""
        return np.stack([np.searchsorted(e, x[..., f]) for f, e in enumerate(self.edges)], axis=-1)

    def sample_bins(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Bins drawn with the background frequencies, shape (size, d)."""
        u = rng.random((size, len(self.edges)))
        bins = np.zeros(u.shape, dtype=np.int64)
        for t in range(self.cum.shape[1]):
            bins += u >= self.cum[:, t]
        return bins

    def undiscretize(self, bins: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values in the given bins: lime's truncated normal per bin (bin mean and std,
        truncated to the bin's range), drawn by inversion."""
        k = bins + self.nb * np.arange(bins.shape[1])  # flat index into the (d, nb) tables
        u = rng.random(bins.shape)
        za, zb = self.za.ravel()[k], self.zb.ravel()[k]
        zz = np.clip(ndtri(self.pa.ravel()[k] + u * self.dp.ravel()[k]), za, zb)
        zz = np.where(self.flip.ravel()[k], -zz, zz)
        values = self.bin_mean.ravel()[k] + self.bin_std.ravel()[k] * zz
        # a bin of zero width holds one value (lime would return a z-score here)
        lo = self.lo.ravel()[k]
        return np.where(lo == self.hi.ravel()[k], lo, values)


# ---------------------------------------------------------------------- images
def _segment(
    image: np.ndarray,
    segmentation: str,
    *,
    n_segments: int,
    compactness: float,
    kernel_size: float,
    scale: float,
) -> np.ndarray:
    """Superpixels of one channels-first image (``(C, H, W)`` or ``(H, W)``), labels 0..K-1.

    The image is min-max rescaled to [0, 1] and moved to channels-last for scikit-image.
    Three-channel images are treated as RGB (slic and quickshift work in CIELAB, whose
    lightness runs 0..100); other channel counts are segmented on their intensities
    multiplied by 100, so one ``compactness`` / ``max_dist`` behaves alike on both.
    """
    from skimage import segmentation as seg

    img = image if image.ndim == 2 else np.moveaxis(image, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    rgb = img.ndim == 3 and img.shape[-1] == 3
    axis = -1 if img.ndim == 3 else None
    if segmentation == "slic":
        labels = seg.slic(
            img if rgb else img * 100.0,
            n_segments=n_segments,
            compactness=compactness,
            start_label=0,
            convert2lab=rgb,
            channel_axis=axis,
        )
    elif segmentation == "quickshift":
        # lime_image's default segmentation: quickshift(kernel_size=4, max_dist=200, ratio=0.2)
        labels = seg.quickshift(
            img if rgb else np.atleast_3d(img * 100.0),
            kernel_size=kernel_size,
            max_dist=200,
            ratio=0.2,
            convert2lab=rgb,
            channel_axis=-1,
        )
    else:
        labels = seg.felzenszwalb(img, scale=scale, sigma=0.8, min_size=20, channel_axis=axis)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)


# ---------------------------------------------------------------------- explainer
@register("lime")
class Lime(Explainer):
    """LIME: explain each row by a weighted linear surrogate fitted to perturbations around it.

    Ribeiro, Singh & Guestrin (2016), "Why should I trust you?": Explaining the predictions of
    any classifier, KDD. Follows the reference implementation (the ``lime`` package,
    ``lime_tabular`` and ``lime_image``) in sampling, kernels and surrogate; every row's
    perturbations go through the engine in large chunks and all rows' surrogates are solved
    at once as a stack of normal equations.

    **Tables** (rows of shape ``(d,)``; ``background`` required):

    * default (lime_tabular with ``discretize_continuous=False``): samples
      ``z ~ N(0, I)`` in standardised units and maps them to ``z · std + mean`` with the
      background's mean and std (lime's default); with ``sample_around_instance=True`` the
      normal is centred on the explained row instead. The surrogate is fitted on the
      standardised samples ``(sample − mean) / std``, so a value is the local slope per
      background std: for ``f(x) = w·x + c`` it is ``w_j · std_j``. Distances are Euclidean
      in standardised units.
    * ``discretize=True``: every feature is binned by the background's quartiles (or
      deciles); bins are drawn with their background frequencies and mapped back to values
      by lime's truncated normal per bin (bin mean and std, truncated to the bin's range).
      The interpretable feature is binary, "same bin as x"; a value is the coefficient of
      that indicator. Distances are Euclidean on the indicators.
    * ``groups``: the interpretable features are the groups, each kept at x's values or
      replaced (all its features together) with probability 1/2 by values drawn as above;
      features in no group are never perturbed. Values are the coefficients of the binary
      "group kept" indicators, broadcast to the group's features.

    The kernel is lime's ``sqrt(exp(-d² / w²))`` with ``w = 0.75 · sqrt(#interpretable
    features)``.

    **Images** (rows of shape ``(C, H, W)`` or ``(H, W)``, channels first): superpixels
    from scikit-image (``segmentation``) or a user segment map (``groups``); each sample
    keeps every superpixel with probability 1/2 (lime_image draws independent fair coins
    per superpixel) and replaces the others by ``hide``. The kernel acts on the cosine
    distance between the binary vector and all-ones, ``1 − sqrt(k / K)`` for ``k`` of ``K``
    superpixels kept, with width 0.25 (lime_image's defaults). Values are the superpixel
    coefficients broadcast to their pixels.

    In both cases the first sample is the explained row itself, the surrogate is a
    weighted ridge regression with intercept (``alpha``, lime's ``Ridge(alpha=1)``), and
    ``n_features`` optionally restricts it to the ``k`` features chosen by lime's forward
    selection or highest weights (values of the others are 0).

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    background : array-like of shape (m, d), optional
        Training rows whose statistics define the perturbations; required for tables,
        ignored for images.
    n_samples : int, optional
        Perturbations per row, including the row itself. Default 5000 for tables, 1000 for
        images (lime's defaults).
    kernel_width : float, optional
        Width of the exponential kernel. Default ``0.75 · sqrt(p)`` for tables (``p``
        interpretable features, per row when groups differ per row), 0.25 for images.
    alpha : float, default 1.0
        Ridge penalty of the surrogate (lime's ``Ridge(alpha=1)``).
    discretize : bool, default False
        Tables: quartile (``discretizer``) bins and "same bin" indicators, like lime's
        ``discretize_continuous=True`` (lime's own default; here the continuous mode is the
        default because its values are local slopes comparable across rows).
    discretizer : {"quartile", "decile"}, default "quartile"
        Bin edges when ``discretize`` is true.
    sample_around_instance : bool, default False
        Tables, continuous sampling: centre the normal on the row instead of the background
        mean (lime's option of the same name).
    shared_samples : bool, default True
        Tables without ``groups`` and without ``sample_around_instance``: the perturbations
        do not depend on the explained row (they come from the background's statistics), so
        one draw of ``n_samples - 1`` perturbations serves every row, each row adding itself
        as its first sample. The model runs ``n_samples - 1 + n`` times instead of
        ``n · n_samples``. Each row's estimate has exactly the distribution it has with a draw
        of its own; only the errors of different rows become correlated. ``False`` draws
        per row, as lime does.
    n_features : int, optional
        Keep only this many interpretable features in the surrogate (lime's
        ``num_features``); ``None`` uses all.
    feature_selection : {"auto", "forward_selection", "highest_weights"}, default "auto"
        How ``n_features`` are chosen; ``"auto"`` is forward selection for up to 6 features,
        highest weights above (lime's rule).
    groups : array of int or list of index lists, optional
        Tables: feature groups (label map of shape ``(d,)`` or ``(n, d)``, or flat index
        groups). Images: a segment map of shape ``input_shape`` or ``(n, *input_shape)``
        (labels 0..K-1, -1 never perturbed) used instead of ``segmentation``; for
        ``(C, H, W)`` inputs an ``(H, W)`` or ``(n, H, W)`` array applies to every channel.
    segmentation : {"slic", "quickshift", "felzenszwalb"}, default "slic"
        scikit-image superpixels for images. The image is min-max rescaled to [0, 1]; RGB
        images are segmented in CIELAB, other channel counts on intensities × 100.
        ``quickshift`` uses lime_image's ``max_dist=200, ratio=0.2``; ``felzenszwalb`` uses
        scikit-image's ``sigma=0.8, min_size=20``.
    n_segments : int, default 50
        slic: approximate number of superpixels.
    compactness : float, default 10.0
        slic: balance of colour and space (higher: squarer superpixels).
    kernel_size : float, default 4.0
        quickshift: width (>= 1) of the density kernel (larger: fewer superpixels); lime's
        default, meant for large images: below ~64 pixels a side use 1 or 2.
    scale : float, default 1.0
        felzenszwalb: observation scale (larger: larger superpixels).
    hide : {"mean", "zero", "blur"} or float, default "mean"
        Images: what a hidden superpixel shows: its mean value per channel (lime_image's
        default), zeros, the Gaussian-blurred image, or a constant.
    blur_sigma : float, optional
        Std (pixels) of the blur for ``hide="blur"``; default ``max(H, W) / 8``.
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seeds the perturbations; every row draws from its own child seed
        (``numpy.random.SeedSequence.spawn``), so results do not depend on ``batch_size``.

    Notes
    -----
    ``base_value`` is the surrogate's intercept: its prediction when every interpretable
    feature is 0, i.e. at the background mean (continuous tables), with every feature outside
    x's bin (discretised) or with every group / superpixel replaced. ``extras`` holds, per
    row, ``coefficients`` (n, p) (images: padded with 0 to the largest number of
    superpixels), ``intercept`` (n,), ``r2`` (n,) (weighted R² of the surrogate on its
    samples, the local fidelity lime calls ``score``) and ``prediction_local`` (n,) (the
    surrogate at x); images also ``n_segments`` (n,). ``groups`` is the segment map per row
    (images) or the feature groups (tables).

    Rows are processed in blocks holding at most about 4 million design entries (samples ×
    interpretable features), so memory stays bounded; within a block all perturbations go
    through :meth:`lumos.Model.evaluate_generated` in chunks of ``batch_size`` rows, with only
    the target output kept. ``stderr`` is not estimated (None).

    Examples
    --------
    >>> import numpy as np, lumos
    >>> import lumos.attribution.lime
    >>> bg = np.random.default_rng(0).normal(size=(200, 3))
    >>> f = lambda x: x @ np.array([2.0, -1.0, 0.0])
    >>> e = lumos.explain(f, bg[:1], method="lime", background=bg, random_state=0)
    >>> np.round(e.values / bg.std(0), 2)
    array([[ 2., -1.,  0.]])
    """

    stochastic = True

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        n_samples: int | None = None,
        kernel_width: float | None = None,
        alpha: float = 1.0,
        discretize: bool = False,
        discretizer: str = "quartile",
        sample_around_instance: bool = False,
        shared_samples: bool = True,
        n_features: int | None = None,
        feature_selection: str = "auto",
        groups: Any = None,
        segmentation: str = "slic",
        n_segments: int = 50,
        compactness: float = 10.0,
        kernel_size: float = 4.0,
        scale: float = 1.0,
        hide: str | float = "mean",
        blur_sigma: float | None = None,
        batch_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        if n_samples is not None:
            check_positive_int(n_samples, name="n_samples", minimum=2)
        if kernel_width is not None:
            _check_float(kernel_width, "kernel_width", minimum=0.0, strict=True)
        _check_float(alpha, "alpha", minimum=0.0, strict=False)
        for flag, name in (
            (discretize, "discretize"),
            (sample_around_instance, "sample_around_instance"),
            (shared_samples, "shared_samples"),
        ):
            if not isinstance(flag, (bool, np.bool_)):
                raise InputError(f"{name} must be True or False, got {flag!r}.")
        check_name(discretizer, DISCRETIZERS, kind="discretizer")
        if n_features is not None:
            check_positive_int(n_features, name="n_features")
        check_name(feature_selection, FEATURE_SELECTIONS, kind="feature_selection")
        check_name(segmentation, SEGMENTATIONS, kind="segmentation")
        check_positive_int(n_segments, name="n_segments")
        _check_float(compactness, "compactness", minimum=0.0, strict=True)
        _check_float(kernel_size, "kernel_size", minimum=1.0, strict=False)
        _check_float(scale, "scale", minimum=0.0, strict=True)
        if isinstance(hide, str):
            check_name(hide, HIDES, kind="hide")
        else:
            _check_float(hide, "hide", minimum=-math.inf, strict=True)
        if blur_sigma is not None:
            _check_float(blur_sigma, "blur_sigma", minimum=0.0, strict=True)
        self.background = background
        self.n_samples = n_samples
        self.kernel_width = kernel_width
        self.alpha = alpha
        self.discretize = discretize
        self.discretizer = discretizer
        self.sample_around_instance = sample_around_instance
        self.shared_samples = shared_samples
        self.n_features = n_features
        self.feature_selection = feature_selection
        self.groups = groups
        self.segmentation = segmentation
        self.n_segments = n_segments
        self.compactness = compactness
        self.kernel_size = kernel_size
        self.scale = scale
        self.hide = hide
        self.blur_sigma = blur_sigma
        self.random_state = random_state

    # ------------------------------------------------------------------ driver
    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        n, input_shape = len(x), x.shape[1:]
        if len(input_shape) == 1:
            problem: _Problem = _TableProblem(self, x)
        elif len(input_shape) in (2, 3):
            problem = _ImageProblem(self, x)
        else:
            raise ShapeError(
                f"lime explains tables (rows of shape (d,)) and images ((C, H, W) or (H, W)); "
                f"got rows of shape {input_shape}. Reshape the input to one of these."
            )
        n_samples = self.n_samples or DEFAULT_SAMPLES[problem.kind]
        rng = check_random_state(self.random_state)
        if (
            isinstance(problem, _TableProblem)
            and problem.labels is None
            and self.shared_samples
            and not self.sample_around_instance
        ):
            fit = self._fit_shared(problem, x, target, n_samples, rng)
            return {
                "values": problem.broadcast(fit["coefficients"]),
                "base_value": fit["intercept"],
                "extras": fit,
            }
        children = np.random.SeedSequence(rng.integers(0, 2**63, size=4)).spawn(n)
        p = problem.width
        per_row = n_samples * (3 * p + problem.stored_width)
        block = max(1, _BLOCK_ELEMENTS // per_row)
        fits: list[dict[str, np.ndarray]] = []
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            draws = [
                problem.draw(int(i), np.random.default_rng(children[i]), n_samples) for i in rows
            ]
            z = np.stack([dr[0] for dr in draws])
            w = np.stack([dr[1] for dr in draws])
            make_chunk = problem.chunk_maker(rows, z, [dr[2] for dr in draws], n_samples)
            tgt = target[rows]

            def select(a: int, b: int, y: np.ndarray, tgt: np.ndarray = tgt) -> np.ndarray:
                return y[np.arange(b - a), tgt[np.arange(a, b) // n_samples]]

            y = self.model.evaluate_generated(
                make_chunk, len(rows) * n_samples, batch_size=self.batch_size, select=select
            ).reshape(len(rows), n_samples)
            fits.append(self._fit(z, y, w, problem.active[rows]))
        fit = {k: np.concatenate([f[k] for f in fits]) for k in fits[0]}
        values = problem.broadcast(fit["coefficients"])
        extras = dict(fit)
        extras.update(problem.extras())
        result: dict[str, Any] = {
            "values": values,
            "base_value": fit["intercept"],
            "extras": extras,
        }
        if problem.groups is not None:
            result["groups"] = problem.groups
        return result

    def _fit(
        self, z: np.ndarray, y: np.ndarray, w: np.ndarray, active: np.ndarray
    ) -> dict[str, np.ndarray]:
        """This explainer's surrogates for a block of rows (see :func:`_fit_surrogates`)."""
        return _fit_surrogates(
            z,
            y,
            w,
            active,
            alpha=float(self.alpha),
            n_features=self.n_features,
            feature_selection=self.feature_selection,
        )

    def _fit_shared(
        self,
        problem: _TableProblem,
        x: np.ndarray,
        target: np.ndarray,
        n_samples: int,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """Surrogates of all rows from one shared draw of perturbations (``shared_samples``).

        Inputs evaluated: the ``n`` rows, then the ``n_samples - 1`` shared perturbations;
        row ``i``'s samples are ``[x_i, shared...]``, exactly what a per-row draw gives.
        """
        n, d = x.shape
        s = n_samples
        shared_rng = np.random.default_rng(np.random.SeedSequence(rng.integers(0, 2**63, 4)))
        st = problem.stats
        if self.discretize:
            bins = st.sample_bins(shared_rng, s - 1)
            values = st.undiscretize(bins, shared_rng)
        else:
            z_shared = shared_rng.standard_normal((s - 1, d))
            values = z_shared * st.std + st.mean
        inputs = np.concatenate([x, values])
        ops = problem.ops
        y_all = self.model.evaluate_generated(
            lambda a, b: ops.asarray(inputs[a:b]), len(inputs), batch_size=self.batch_size
        )
        y_first = y_all[np.arange(n), target]
        y_shared = y_all[n:]
        if not self.discretize:
            return self._fit_shared_continuous(problem, x, z_shared, y_first, y_shared, target)
        # one row per fit: a row's numbers then never depend on the rows explained with it
        fits: list[dict[str, np.ndarray]] = []
        for start in range(n):
            rows = np.arange(start, start + 1)
            if self.discretize:
                same = (bins[None] == problem.x_bins[rows][:, None]).astype(np.float64)
                z = np.concatenate([np.ones((len(rows), 1, d)), same], axis=1)
                dist = np.sqrt(d - z.sum(axis=2))
            else:
                z0 = (x[rows] - st.mean) / st.std
                z = np.concatenate(
                    [z0[:, None], np.broadcast_to(z_shared, (len(rows), s - 1, d))], axis=1
                )
                dist = np.sqrt(((z - z0[:, None]) ** 2).sum(axis=2))
            w = _kernel(dist, problem.kernel_width[rows][:, None])
            y = np.ascontiguousarray(
                np.concatenate([y_first[rows, None], y_shared[:, target[rows]].T], axis=1)
            )
            fits.append(self._fit(z, y, w, problem.active[rows]))
        return {k: np.concatenate([f[k] for f in fits]) for k in fits[0]}

    def _fit_shared_continuous(
        self,
        problem: _TableProblem,
        x: np.ndarray,
        z_shared: np.ndarray,
        y_first: np.ndarray,
        y_shared: np.ndarray,
        target: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Continuous tables with a shared draw: row ``i``'s samples are ``[z0_i; Z]`` with the
        shared standardised samples ``Z`` (s-1, d), so its weighted statistics come from ``Z``
        without copying it per row: distances ``|z|² − 2 Z z0 + |z0|²``, Gram
        ``Zᵀ diag(w) Z + w0 z0 z0ᵀ − Σw · m mᵀ``.

        The Grams of a block of rows are one matrix product ``W @ Q`` of the block's kernel
        weights (R, s-1) with the pairwise products ``Q = [z_a z_b]_{a≤b}`` (s-1, d(d+1)/2)
        of the shared samples, instead of one small product per row. Blocks always hold
        ``_SHARED_ROWS`` rows (the last is padded), so every product has the same shape
        whatever the number of rows, and a row's numbers do not depend on the rows explained
        with it.
        """
        st = problem.stats
        n, d = x.shape
        m_samples = len(z_shared)
        z0_all = (x - st.mean) / st.std
        sq_shared = _row_dot(z_shared, z_shared)
        iu, ju = np.triu_indices(d)
        n_pairs = len(iu)
        step = max(1, _PAIR_ELEMENTS // n_pairs)
        bounds = [(a, min(m_samples, a + step)) for a in range(0, m_samples, step)]
        cached = m_samples * n_pairs <= 2 * _PAIR_ELEMENTS
        pairs = [z_shared[a:b, iu] * z_shared[a:b, ju] for a, b in bounds] if cached else None
        r = _SHARED_ROWS
        ones = np.ones(m_samples)
        fits: list[dict[str, np.ndarray]] = []
        for start in range(0, n, r):
            rows = np.arange(start, min(n, start + r))
            k = len(rows)
            z0 = np.zeros((r, d))
            z0[:k] = z0_all[rows]
            tgt = np.zeros(r, dtype=np.intp)
            tgt[:k] = target[rows]
            y0 = np.zeros(r)
            y0[:k] = y_first[rows]
            width = np.ones(r)
            width[:k] = problem.kernel_width[rows]
            active = np.ones((r, d), dtype=bool)
            active[:k] = problem.active[rows]
            d2 = sq_shared[None, :] - 2.0 * (z0 @ z_shared.T) + _row_dot(z0, z0)[:, None]
            w = _kernel(np.sqrt(np.maximum(d2, 0.0)), width[:, None])  # (r, s-1)
            y = np.ascontiguousarray(y_shared[:, tgt].T)  # (r, s-1)
            sw = 1.0 + w @ ones  # the explained row itself has distance 0, weight 1
            wz = w @ z_shared
            m = (z0 + wz) / sw[:, None]
            y_mean = (y0 + _row_dot(w, y)) / sw
            upper = np.zeros((r, n_pairs))
            for j, (a, b) in enumerate(bounds):
                q = pairs[j] if pairs is not None else z_shared[a:b, iu] * z_shared[a:b, ju]
                upper += w[:, a:b] @ q
            gram = np.empty((r, d, d))
            gram[:, iu, ju] = upper
            gram[:, ju, iu] = upper
            gram += z0[:, :, None] * z0[:, None, :]
            gram -= sw[:, None, None] * m[:, :, None] * m[:, None, :]
            resid = y - y_mean[:, None]
            cross = (w * resid) @ z_shared + z0 * (y0 - y_mean)[:, None]
            coef, intercept = _ridge_from_stats(
                m, y_mean, gram, cross, active, z0, alpha=float(self.alpha),
                n_features=self.n_features, feature_selection=self.feature_selection,
            )  # fmt: skip
            fitted = coef @ z_shared.T + intercept[:, None]
            local = _row_dot(z0, coef) + intercept
            rss = (y0 - local) ** 2 + _row_dot(w, (y - fitted) ** 2)
            tss = (y0 - y_mean) ** 2 + _row_dot(w, resid**2)
            fit = _surrogate_result(coef, intercept, rss, tss, local)
            fits.append({key: v[:k] for key, v in fit.items()})
        return {key: np.concatenate([f[key] for f in fits]) for key in fits[0]}


class _Problem(abc.ABC):
    """One explain call's interpretable representation: how to draw, build and broadcast."""

    kind: str
    #: Interpretable features (columns of the surrogate), padded to the widest row.
    width: int
    #: Extra per-sample values stored per row (perturbed inputs kept for the engine).
    stored_width: int = 0
    #: Which columns exist for each row, shape (n, width).
    active: np.ndarray
    #: The component map returned as ``Explanation.groups``.
    groups: np.ndarray | None = None

    @abc.abstractmethod
    def draw(self, i: int, rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """Row ``i``'s design (s, width), kernel weights (s,) and what builds its inputs."""

    @abc.abstractmethod
    def chunk_maker(
        self, rows: np.ndarray, z: np.ndarray, payloads: list[Any], s: int
    ) -> Callable[[int, int], Any]:
        """``make_chunk(a, b)`` for the engine: inputs ``a..b-1`` of a block of rows, whose
        designs are ``z`` (B, s, width) and draw payloads ``payloads``."""

    @abc.abstractmethod
    def broadcast(self, coef: np.ndarray) -> np.ndarray:
        """Coefficients (n, width) as values in input space (n, *input_shape)."""

    def extras(self) -> dict[str, np.ndarray]:
        return {}


def _labels_per_row(labels: np.ndarray, n: int, input_shape: tuple[int, ...]) -> np.ndarray:
    return (
        labels if labels.shape == (n, *input_shape) else np.broadcast_to(labels, (n, *input_shape))
    )


def _present(labels: np.ndarray, width: int) -> np.ndarray:
    """Which labels 0..width-1 occur in each row's map, shape (n, width)."""
    n = len(labels)
    flat = labels.reshape(n, -1)
    present = np.zeros((n, width + 1), dtype=bool)
    present[np.arange(n)[:, None], np.where(flat < 0, width, flat)] = True
    return present[:, :width]


def _check_components(active: np.ndarray, what: str) -> None:
    empty = np.flatnonzero(~active.any(axis=1))
    if empty.size:
        raise InputError(
            f"row {int(empty[0])} has no {what} to perturb (its labels are all -1); give every "
            "row at least one label >= 0."
        )


def _binary_draw(
    rng: np.random.Generator, s: int, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep each existing component with probability 1/2; the first sample keeps all.

    Returns masks (s, width) of 0/1 and the number kept per sample (s,).
    """
    cols = np.flatnonzero(active)
    masks = np.zeros((s, len(active)), dtype=np.int64)
    masks[:, cols] = rng.integers(0, 2, size=(s, len(cols)))
    masks[0, cols] = 1
    return masks, masks.sum(axis=1)


class _TableProblem(_Problem):
    kind = "table"

    def __init__(self, ex: Lime, x: np.ndarray) -> None:
        if ex.background is None:
            raise InputError(
                "lime on tables needs background=<training rows>: the perturbations are drawn "
                "from their mean and std (or quartiles). Pass e.g. background=x_train."
            )
        n, d = x.shape
        bg, _ = check_array(ex.background, name="background", input_shape=(d,), min_rows=2)
        self.ex, self.x = ex, x
        self.stats = _TableStats(bg, DISCRETIZERS[ex.discretizer] if ex.discretize else None)
        self.ops = ex.model.array_ops()
        if ex.groups is None:
            self.labels = None
            self.width = d
            self.active = np.ones((n, d), dtype=bool)
            self.kernel_width = np.full(n, ex.kernel_width or 0.75 * math.sqrt(d))
            self.stored_width = d if ex.discretize else 0
            if ex.discretize:
                self.x_bins = self.stats.bin_of(x)
        else:
            labels = label_map(ex.groups, (d,), n)
            self.groups = labels
            self.labels = _labels_per_row(labels, n, (d,))
            self.width = int(self.labels.max()) + 1
            self.active = _present(self.labels, self.width)
            _check_components(self.active, "feature group")
            n_groups = self.active.sum(axis=1)
            kw = ex.kernel_width
            self.kernel_width = np.full(n, kw) if kw else 0.75 * np.sqrt(n_groups)
            self.stored_width = d

    def _replacements(self, i: int, rng: np.random.Generator, s: int) -> tuple[np.ndarray, Any]:
        """Perturbed values of every feature (s, d), and the design they imply."""
        st = self.stats
        if self.ex.discretize:
            bins = st.sample_bins(rng, s)
            return st.undiscretize(bins, rng), bins
        z = rng.standard_normal((s, self.x.shape[1]))
        if self.ex.sample_around_instance:
            z += (self.x[i] - st.mean) / st.std
        if self.labels is None:  # the inputs are built from z chunk by chunk (chunk_maker)
            return z, z
        return z * st.std + st.mean, z

    def draw(self, i: int, rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray, Any]:
        x_i = self.x[i]
        kw = self.kernel_width[i]
        if self.labels is not None:
            masks, kept = _binary_draw(rng, s, self.active[i])
            values, _ = self._replacements(i, rng, s)
            lab = self.labels[i]
            keep = np.where(lab < 0, 1, masks[:, np.maximum(lab, 0)]) == 1
            inputs = np.where(keep, x_i, values)
            inputs[0] = x_i
            dist = np.sqrt(self.active[i].sum() - kept)
            return masks.astype(np.float64), _kernel(dist, kw), inputs
        if self.ex.discretize:
            values, bins = self._replacements(i, rng, s)
            same = (bins == self.x_bins[i]).astype(np.float64)
            same[0] = 1.0
            values[0] = x_i
            dist = np.sqrt(self.width - same.sum(axis=1))
            return same, _kernel(dist, kw), values
        _, z = self._replacements(i, rng, s)
        z[0] = (x_i - self.stats.mean) / self.stats.std
        dist = np.sqrt(((z - z[0]) ** 2).sum(axis=1))
        return z, _kernel(dist, kw), None

    def chunk_maker(
        self, rows: np.ndarray, z: np.ndarray, payloads: list[Any], s: int
    ) -> Callable[[int, int], Any]:
        ops = self.ops
        if payloads[0] is not None:  # perturbed inputs were built while drawing
            inputs = np.concatenate(payloads)
            return lambda a, b: ops.asarray(inputs[a:b])
        # continuous sampling: inputs are the standardised samples mapped back
        mean, std, x = self.stats.mean, self.stats.std, self.x
        z_flat = z.reshape(-1, z.shape[-1])

        def make_chunk(a: int, b: int) -> Any:
            k = np.arange(a, b)
            out = z_flat[a:b] * std + mean
            first = k % s == 0
            out[first] = x[rows[k[first] // s]]  # the row itself, exactly
            return ops.asarray(out)

        return make_chunk

    def broadcast(self, coef: np.ndarray) -> np.ndarray:
        if self.labels is None:
            return coef.copy()
        padded = np.concatenate([coef, np.zeros((len(coef), 1))], axis=1)
        idx = np.where(self.labels < 0, self.width, self.labels)
        return np.take_along_axis(padded, idx, axis=1)


class _ImageProblem(_Problem):
    kind = "image"

    def __init__(self, ex: Lime, x: np.ndarray) -> None:
        n, input_shape = len(x), x.shape[1:]
        self.ex, self.x, self.input_shape = ex, x, input_shape
        if ex.groups is not None:
            groups = ex.groups
            if len(input_shape) == 3 and isinstance(groups, np.ndarray):
                # one (H, W) map (or one per row) applies to every channel
                if groups.shape == input_shape[1:]:
                    groups = np.broadcast_to(groups[None], input_shape)
                elif groups.shape == (n, *input_shape[1:]) != input_shape:
                    groups = np.broadcast_to(groups[:, None], (n, *input_shape))
            labels = _labels_per_row(label_map(groups, input_shape, n), n, input_shape)
        else:
            maps = [
                _segment(
                    img,
                    ex.segmentation,
                    n_segments=ex.n_segments,
                    compactness=ex.compactness,
                    kernel_size=ex.kernel_size,
                    scale=ex.scale,
                )
                for img in x
            ]
            labels = np.stack([np.broadcast_to(m, input_shape) for m in maps])
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.groups = self.labels
        self.width = int(self.labels.max()) + 1
        self.active = _present(self.labels, self.width)
        _check_components(self.active, "superpixel")
        self.kernel_width = ex.kernel_width or 0.25
        self.fill = self._fill()
        ops = ex.model.array_ops()
        self.ops = ops
        flat = self.labels.reshape(n, -1)
        self.seg_idx = ops.asarray(np.where(flat < 0, self.width, flat), integer=True)
        self.x_dev = ops.asarray(x.reshape(n, -1))
        self.fill_dev = ops.asarray(self.fill.reshape(n, -1))

    def _fill(self) -> np.ndarray:
        x, hide = self.x, self.ex.hide
        if not isinstance(hide, str):
            return np.full_like(x, float(hide))
        if hide == "zero":
            return np.zeros_like(x)
        if hide == "blur":
            return blur(x, self.ex.blur_sigma)
        # "mean": each superpixel's mean value per channel (lime_image's hide_color=None)
        n = len(x)
        k = self.width + 1  # label -1 gets its own slot (never hidden anyway)
        channels = self.input_shape[0] if len(self.input_shape) == 3 else 1
        chan = np.broadcast_to(
            np.arange(channels).reshape((channels,) + (1,) * (len(self.input_shape) - 1))
            if len(self.input_shape) == 3
            else np.zeros(self.input_shape, dtype=np.int64),
            self.input_shape,
        )
        lab = np.where(self.labels < 0, self.width, self.labels)
        key = (np.arange(n).reshape((n,) + (1,) * len(self.input_shape)) * channels + chan) * k
        key = (key + lab).ravel()
        size = n * channels * k
        sums = np.bincount(key, weights=x.ravel(), minlength=size)
        counts = np.bincount(key, minlength=size)
        means = sums / np.maximum(counts, 1)
        return means[key].reshape(x.shape)

    def draw(self, i: int, rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray, Any]:
        masks, kept = _binary_draw(rng, s, self.active[i])
        total = self.active[i].sum()
        dist = 1.0 - np.sqrt(kept / total)  # cosine distance of the mask to all-ones
        return masks.astype(np.float64), _kernel(dist, self.kernel_width), masks

    def chunk_maker(
        self, rows: np.ndarray, z: np.ndarray, payloads: list[Any], s: int
    ) -> Callable[[int, int], Any]:
        ops = self.ops
        masks = np.concatenate(payloads)
        masks = np.concatenate([masks, np.ones((len(masks), 1), dtype=np.int64)], axis=1)

        def make_chunk(a: int, b: int) -> Any:
            r = ops.asarray(rows[np.arange(a, b) // s], integer=True)
            m = ops.asarray(masks[a:b], integer=True)
            keep = m[ops.arange(0, b - a)[:, None], self.seg_idx[r]]
            out = ops.where(keep == 1, self.x_dev[r], self.fill_dev[r])
            return out.reshape((b - a, *self.input_shape))

        return make_chunk

    def broadcast(self, coef: np.ndarray) -> np.ndarray:
        n = len(coef)
        padded = np.concatenate([coef, np.zeros((n, 1))], axis=1)
        idx = np.where(self.labels < 0, self.width, self.labels).reshape(n, -1)
        return np.take_along_axis(padded, idx, axis=1).reshape(self.x.shape)

    def extras(self) -> dict[str, np.ndarray]:
        return {"n_segments": self.active.sum(axis=1)}
