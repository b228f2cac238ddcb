"""Permutation feature importance: how much worse the model scores when a feature is shuffled."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lumos._random import RandomState, check_random_state, seed_to_int
from lumos._validation import check_positive_int
from lumos.attribution._groups import label_map
from lumos.errors import InputError, ShapeError
from lumos.explanation import GlobalExplanation, _feature_label, _provenance
from lumos.importance._scoring import HIGHER_IS_BETTER, Reference, build_reference
from lumos.models.base import Model, wrap

__all__ = ["permutation"]

#: Confidence level of ``extras["ci_low"]`` / ``extras["ci_high"]``.
CONFIDENCE = 0.95

Permutations = Callable[[int, int], np.ndarray]


def permutation(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    scoring: str | None = None,
    n_repeats: int = 5,
    groups: Any = None,
    batch_size: int | None = None,
    random_state: RandomState = None,
) -> GlobalExplanation:
    """Permutation importance: the drop in the model's score when a feature is shuffled.

    For every feature (or group of features) ``j`` and repeat ``r``, the rows of column ``j``
    of ``x`` are shuffled by a random permutation (a group's columns by one permutation, so
    the group keeps its joint distribution and only its link to the other features and to
    the reference is broken) and the model is scored on the shuffled copy. The importance is
    the mean over repeats of ``score(intact) - score(shuffled)``, oriented so that larger
    always means more important (Breiman, 2001; Fisher, Rudin & Dominici, 2019).

    All ``n_repeats × n_groups × n`` shuffled rows are built chunk by chunk and sent through
    the engine (:meth:`lumos.Model.evaluate_generated`) in large batches, on the model's
    device for torch-backed models; only one number per evaluated row is kept (a hit, a
    log loss, a squared error or an absolute change), so memory stays bounded by one chunk.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    x : array-like of shape (n, *input_shape)
        The rows to shuffle (numpy, torch or pandas DataFrame), at least 2. Held-out data
        measures what the model relies on to generalise; training data what it learned.
    y : array-like of shape (n,) or (n, n_outputs), optional
        Class labels (for ``"accuracy"`` / ``"log_loss"``: the estimator's ``classes_`` for
        scikit-learn models, else indices ``0..n_classes-1`` or class names) or regression
        targets (``"r2"`` / ``"mse"``). ``None``: the model's own predictions on the intact
        ``x`` are the reference (the predicted class of classifiers, the outputs of
        regression models), which measures what the *model* uses regardless of whether it is
        right; the intact score is then perfect (accuracy 1, R² 1, MSE 0).
    scoring : {"accuracy", "log_loss", "r2", "mse", "output"}, optional
        ``"accuracy"``: fraction of correct predicted classes. ``"log_loss"``: mean
        cross-entropy of the class probabilities (probabilities clipped to
        ``[eps, 1 - eps]``; logits go through a softmax / sigmoid). ``"r2"``: coefficient
        of determination, averaged over outputs. ``"mse"``: mean squared error over rows and
        outputs. ``"output"``: the mean absolute change of the model's output (classifiers:
        of the output of the class predicted on the intact row; regression models: averaged
        over outputs); needs ``y=None``. Default: ``"accuracy"`` for classifiers, ``"r2"``
        for regression models.
    n_repeats : int, default 5
        Shuffles per feature; the standard error and confidence interval are taken over them
        (``n_repeats=1`` gives neither).
    groups : list of index lists, dict, or array of int, optional
        Features shuffled together. A list of flat feature index lists; a dict mapping a
        group name to a list of feature indices or feature names; or a label map of shape
        ``input_shape`` with labels ``0..G-1`` (``-1``: never shuffled). Default: every
        scalar feature alone (for images every pixel / element).
    batch_size : int, optional
        Maximum rows per model call (default: the engine's budget). Results do not depend
        on it.
    random_state : int, numpy.random.Generator or None
        Seeds the permutations: one child seed per (repeat, group) is drawn up front, so the
        result is the same for any ``batch_size``.

    Returns
    -------
    GlobalExplanation
        ``importance`` (G,): mean drop in score per feature or group; ``stderr`` (G,):
        standard deviation over repeats / √n_repeats (``None`` for one repeat);
        ``extras["scores"]`` (n_repeats, G): the drop of every repeat; ``extras["ci_low"]``,
        ``extras["ci_high"]`` (G,): 95 % confidence interval ``mean ± t(0.975, R - 1) ·
        stderr`` (Student's t, NaN for one repeat); ``extras["groups"]`` (d,): the flat label
        map when ``groups`` is given. ``feature_names``: the features' names, or the group
        names (dict keys, member names joined by ``+`` for groups of up to three, else
        ``group<g>``). ``info``: ``scoring``, ``baseline_score`` (the intact score in its own
        units: accuracy, log loss, R², MSE, 0 for "output"), ``higher_is_better`` (of that
        score), ``reference`` (``"y"`` or ``"model"``), ``n_rows``.

    Raises
    ------
    UnknownNameError
        Unknown ``scoring``.
    InputError, ShapeError, NonFiniteError
        Unusable ``x`` / ``y`` / ``groups``, fewer than 2 rows, a scoring that does not fit the
        model (``"accuracy"`` on a regression model), ``y`` with ``scoring="output"``.

    Notes
    -----
    When features are correlated, shuffling one alone creates rows unlike the data and its
    importance mixes what the model does off the data manifold into the score; shuffle
    correlated features together with ``groups``.

    References
    ----------
    L. Breiman. Random forests. Machine Learning 45, 2001.
    A. Fisher, C. Rudin, F. Dominici. All models are wrong, but many are useful. JMLR 20, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.importance import permutation
    >>> x = np.random.default_rng(0).normal(size=(200, 3))
    >>> f = lambda a: a @ np.array([2.0, 0.0, -1.0])
    >>> imp = permutation(f, x, scoring="mse", n_repeats=10, random_state=0)
    >>> [name for name, _ in imp.top_features(3)]
    ['x0', 'x2', 'x1']
    >>> float(imp.importance[1])
    0.0
    """
    model = wrap(model)
    n_repeats = check_positive_int(n_repeats, name="n_repeats")
    rng = check_random_state(random_state)
    arr, labels, names, n_groups = _prepare(model, x, groups, batch_size)
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=(n_repeats, n_groups), dtype=np.int64)
    n = len(arr)

    def permutations(r: int, g: int) -> np.ndarray:
        return np.random.default_rng(int(seeds[r, g])).permutation(n)

    params = {
        "scoring": scoring,
        "n_repeats": n_repeats,
        "groups": groups,
        "batch_size": batch_size,
        "random_state": random_state,
    }
    return _permutation(
        model,
        arr,
        y,
        labels=labels,
        names=names,
        n_groups=n_groups,
        scoring=scoring,
        n_repeats=n_repeats,
        permutations=permutations,
        batch_size=batch_size,
        params=params,
        seed=seed_to_int(random_state),
        grouped=groups is not None,
    )


def _prepare(
    model: Model, x: Any, groups: Any, batch_size: int | None
) -> tuple[np.ndarray, np.ndarray, list[str] | None, int]:
    """Validated ``x``, the flat label map (d,), feature or group names, number of groups."""
    arr, frame_names = model.check_input(x)
    if len(arr) < 2:
        raise InputError(
            f"x has {len(arr)} row; permutation importance shuffles rows and needs at least 2 "
            "(use as many held-out rows as you can afford)."
        )
    if batch_size is not None:
        model.resolve_batch_size(batch_size)
    input_shape = tuple(arr.shape[1:])
    feature_names = frame_names or model.feature_names
    labels, names = _resolve_groups(groups, input_shape, feature_names)
    return arr, labels, names, int(labels.max()) + 1


def _resolve_groups(
    groups: Any, input_shape: tuple[int, ...], feature_names: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    """Flat label map (d,) with labels 0..G-1 (-1: never shuffled) and one name per group."""
    d = int(np.prod(input_shape))
    if groups is None:
        return np.arange(d, dtype=np.int64), feature_names
    group_names: list[str] | None = None
    if isinstance(groups, Mapping):
        if not groups:
            raise InputError("groups is an empty dict; give at least one group of features.")
        group_names = [str(k) for k in groups]
        members = [_member_indices(v, feature_names, str(k)) for k, v in groups.items()]
        groups = members
    if isinstance(groups, np.ndarray) and groups.shape == (1, *input_shape):
        groups = groups[0]
    if isinstance(groups, np.ndarray) and groups.ndim > 0 and groups.shape != input_shape:
        raise ShapeError(
            f"groups has shape {groups.shape}; permutation shuffles the same groups in every "
            f"row, so a label map must have the input's shape {input_shape}."
        )
    labels = label_map(groups, input_shape, 1).reshape(-1)
    if labels.shape != (d,):
        raise ShapeError(
            f"groups must describe one grouping of the {d} features (shape {input_shape}); "
            "per-row groupings are not possible for permutation importance."
        )
    used = np.unique(labels[labels >= 0])
    n_groups = int(used.max()) + 1
    if len(used) != n_groups:
        missing = sorted(set(range(n_groups)) - set(used.tolist()))
        raise InputError(
            f"group label(s) {missing[:5]} are not used; number the groups 0..G-1 without gaps."
        )
    if group_names is None:
        group_names = []
        for g in range(n_groups):
            idx = np.flatnonzero(labels == g)
            if len(idx) <= 3:
                group_names.append(
                    "+".join(_feature_label(int(i), input_shape, feature_names) for i in idx)
                )
            else:
                group_names.append(f"group{g}")
    return labels, group_names


def _member_indices(members: Any, names: list[str] | None, group: str) -> list[int]:
    """Feature indices of a dict group given by indices or feature names."""
    if isinstance(members, (str, int, np.integer)):
        members = [members]
    out = []
    for m in members:
        if isinstance(m, str):
            if names is None or m not in names:
                raise InputError(
                    f"group {group!r} names feature {m!r}, which is not a feature name "
                    f"({(names or [])[:10]}); use column indices or the model's feature names."
                )
            out.append(names.index(m))
        elif isinstance(m, (int, np.integer)) and not isinstance(m, bool):
            out.append(int(m))
        else:
            raise InputError(
                f"group {group!r} holds {m!r}; list feature indices (int) or feature names."
            )
    return out


def _permutation(
    model: Model,
    x: np.ndarray,
    y: Any,
    *,
    labels: np.ndarray,
    names: list[str] | None,
    n_groups: int,
    scoring: str | None,
    n_repeats: int,
    permutations: Permutations,
    batch_size: int | None,
    params: dict[str, Any],
    seed: int | None = None,
    grouped: bool = False,
) -> GlobalExplanation:
    """Permutation importance with the shuffles given by ``permutations(r, g)`` (an index
    array of shape (n,): row ``i`` of repeat ``r`` takes group ``g`` from row ``perm[i]``)."""
    from scipy import stats

    start = time.perf_counter()
    n = len(x)
    base_outputs = model.evaluate(x, batch_size=batch_size)
    ref = build_reference(model, base_outputs, y, scoring)
    baseline = float(ref.score(ref.row_values(base_outputs, np.arange(n))))
    permuted = _permuted_scores(
        model, x, ref, labels, n_groups, n_repeats, permutations, batch_size
    )
    drops = baseline - permuted  # (R, G)
    importance = drops.mean(axis=0)
    if n_repeats > 1:
        stderr = drops.std(axis=0, ddof=1) / np.sqrt(n_repeats)
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, n_repeats - 1) * stderr
    else:
        stderr = None
        half = np.full(n_groups, np.nan)
    extras: dict[str, np.ndarray] = {
        "scores": drops,
        "ci_low": importance - half,
        "ci_high": importance + half,
    }
    if grouped:
        extras["groups"] = labels
    params = {**params, "scoring": ref.scoring}
    return GlobalExplanation(
        importance=importance,
        stderr=stderr,
        feature_names=names,
        method="permutation",
        params=params,
        elapsed_s=time.perf_counter() - start,
        extras=extras,
        info={
            "scoring": ref.scoring,
            "baseline_score": ref.natural(baseline),
            "higher_is_better": HIGHER_IS_BETTER[ref.scoring],
            "reference": ref.source,
            "n_rows": n,
            "confidence": CONFIDENCE,
        },
        provenance=_provenance(model=model, input_shape=x.shape[1:], seed=seed),
    )


def _permuted_scores(
    model: Model,
    x: np.ndarray,
    ref: Reference,
    labels: np.ndarray,
    n_groups: int,
    n_repeats: int,
    permutations: Permutations,
    batch_size: int | None,
) -> np.ndarray:
    """Scores (larger is better) of every shuffled copy, shape (n_repeats, n_groups).

    Shuffled row ``i`` of group ``g`` in repeat ``r`` has the global index
    ``(r * G + g) * n + i``; a chunk of global indices is built at once (rows gathered, the
    group's elements taken from the permuted rows) and the engine keeps one value per row.
    """
    n = len(x)
    input_shape = x.shape[1:]
    d = int(np.prod(input_shape))
    ops = model.array_ops()
    flat = ops.asarray(x.reshape(n, d))
    identity = n_groups == d and np.array_equal(labels, np.arange(d))
    labels_dev = ops.asarray(labels, integer=True)
    cache: dict[int, np.ndarray] = {}

    def source_rows(start: int, stop: int) -> np.ndarray:
        src = np.empty(stop - start, dtype=np.int64)
        for block in range(start // n, (stop - 1) // n + 1):
            lo, hi = max(start, block * n), min(stop, (block + 1) * n)
            if block not in cache:
                cache.clear()  # chunks come in order: only the current block is reused
                perm = np.asarray(permutations(block // n_groups, block % n_groups))
                if perm.shape != (n,):
                    raise ShapeError(f"a permutation must have shape ({n},), got {perm.shape}.")
                cache[block] = perm
            src[lo - start : hi - start] = cache[block][lo - block * n : hi - block * n]
        return src

    def make_chunk(start: int, stop: int) -> Any:
        k = np.arange(start, stop)
        rows = ops.asarray(k % n, integer=True)
        g = ops.asarray((k // n) % n_groups, integer=True)
        src = ops.asarray(source_rows(start, stop), integer=True)
        chunk = flat[rows]
        if identity:  # one feature at a time: overwrite one element per row
            chunk[ops.arange(0, stop - start), g] = flat[src, g]
        else:
            mask = labels_dev[None] == g[:, None]
            chunk = ops.where(mask, flat[src], chunk)
        return chunk.reshape((stop - start, *input_shape))

    def select(start: int, stop: int, outputs: np.ndarray) -> np.ndarray:
        return ref.row_values(outputs, np.arange(start, stop) % n)

    values = model.evaluate_generated(
        make_chunk, n_repeats * n_groups * n, batch_size=batch_size, select=select
    )
    return ref.score(values.reshape(n_repeats, n_groups, n, -1))
