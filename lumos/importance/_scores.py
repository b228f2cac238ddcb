"""Feature scores that need no perturbation: correlation, information gain, mutual
information (filter methods of feature selection) and first-layer weight magnitude."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lumos._random import RandomState, check_random_state, seed_to_int
from lumos._validation import check_array, check_name, check_positive_int, check_target
from lumos.errors import InputError, ModelError, ShapeError, TargetError
from lumos.explanation import GlobalExplanation, _feature_label, _provenance
from lumos.importance._scoring import as_vector, predicted_labels
from lumos.models.base import Model, wrap

__all__ = ["correlation", "information_gain", "mutual_information", "weight_magnitude"]

CORRELATION_METHODS = ("pearson", "spearman")
TASKS = ("classification", "regression")


# ---------------------------------------------------------------------- shared helpers
def _features(x: Any, model: Model | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Validated ``x`` (n, *input_shape), its flat view (n, d) and the feature names."""
    if model is not None:
        arr, names = model.check_input(x)
        names = names or model.feature_names
    else:
        arr, names = check_array(x, name="x")
    flat = arr.reshape(len(arr), -1)
    if names is None and arr.ndim > 2:
        names = [_feature_label(i, arr.shape[1:], None) for i in range(flat.shape[1])]
    return arr, flat, names


def _one_of(y: Any, model: Any) -> None:
    if y is None and model is None:
        raise InputError(
            "pass the target values y (labels or a numeric target), or model= to score the "
            "features against the model's own predictions."
        )
    if y is not None and model is not None:
        raise InputError(
            "pass either y (score against the data's labels) or model= (against the model's "
            "predictions), not both."
        )


def _output_column(model: Model, outputs: np.ndarray, target: Any) -> tuple[np.ndarray, int]:
    """The model output a numeric score is taken against, and its column index."""
    n_out = outputs.shape[1]
    if target is not None:
        col = int(check_target(target, 1, n_out, class_names=model.class_names)[0])
    elif n_out == 1:
        col = 0
    elif n_out == 2 and model.output_kind != "regression":
        col = 1  # the positive class of a binary classifier
    else:
        raise TargetError(
            f"the model has {n_out} outputs; pass target= (an output index or class name) to "
            "say which output to score the features against."
        )
    return outputs[:, col], col


def _numeric_target(y: Any, n: int) -> np.ndarray:
    arr = as_vector(y, n)
    if arr.ndim != 1:
        raise ShapeError(f"y must have shape ({n},), one value per row; got {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"y has dtype {arr.dtype}; correlation needs a numeric target. Encode class labels "
            "as numbers (for a multi-class label, one-vs-rest: y == k)."
        )
    return arr.astype(np.float64)


def _label_target(y: Any, n: int) -> np.ndarray:
    """Class labels as integer codes 0..C-1, shape (n,)."""
    arr = as_vector(y, n)
    if arr.ndim != 1:
        raise ShapeError(f"y must hold one class label per row, shape ({n},); got {arr.shape}.")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise InputError(
            "y holds non-integer values, but information gain needs class labels; for a "
            "continuous target use mutual_information(..., task='regression') or correlation."
        )
    return np.unique(arr, return_inverse=True)[1].reshape(n).astype(np.int64)


def _result(
    importance: np.ndarray,
    names: list[str] | None,
    method: str,
    params: dict[str, Any],
    start: float,
    *,
    stderr: np.ndarray | None = None,
    extras: dict[str, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
    model: Model | None = None,
    input_shape: tuple[int, ...] | None = None,
    seed: int | None = None,
) -> GlobalExplanation:
    return GlobalExplanation(
        importance=importance,
        stderr=stderr,
        feature_names=names,
        method=method,
        params=params,
        elapsed_s=time.perf_counter() - start,
        extras=extras or {},
        info=info or {},
        provenance=_provenance(model=model, input_shape=input_shape, seed=seed),
    )


# ---------------------------------------------------------------------- correlation
def correlation(
    x: Any,
    y: Any = None,
    *,
    model: Any = None,
    method: str = "pearson",
    target: int | str | None = None,
    batch_size: int | None = None,
) -> GlobalExplanation:
    """Signed correlation of each feature with the target, or with the model's output.

    Pearson's ``r`` (linear association) or Spearman's ``ρ`` (Pearson's ``r`` of the ranks,
    ties given their average rank: any monotone association) between column ``j`` of ``x``
    and ``y`` — or, with ``model=``, the model's output on ``x``, which shows what the
    model's predictions move with rather than what the labels do.

    Parameters
    ----------
    x : array-like of shape (n, *input_shape)
        At least 3 rows. Images are scored per element (d = prod(input_shape)).
    y : array-like of shape (n,), optional
        A numeric target: regression values, or binary labels 0/1 (the point-biserial
        correlation). For a multi-class label correlate one class at a time (``y == k``).
    model : object, optional
        Instead of ``y``: anything :func:`lumos.wrap` accepts; the features are correlated
        with its output ``target``.
    method : {"pearson", "spearman"}, default "pearson"
    target : int or str, optional
        With ``model``: the output to correlate with. Default: the only output; for a binary
        classifier with two outputs, output 1 (the positive class); models with more outputs
        need it.
    batch_size : int, optional
        Rows per model call with ``model``.

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,): the signed correlation (``GlobalExplanation.ranking`` ranks by
        magnitude); constant features get 0 and are listed in ``info["constant_features"]``.
        ``stderr`` (d,): ``sqrt((1 - r²) / (n - 2))``, the standard error of the
        t-test of zero correlation; ``extras["p_value"]`` (d,): its two-sided p-value
        (Student's t with ``n - 2`` degrees of freedom, as ``scipy.stats.pearsonr`` /
        ``spearmanr`` report).

    Raises
    ------
    InputError, ShapeError, NonFiniteError
        Neither or both of ``y`` / ``model``, a non-numeric or constant target, lengths that
        differ, fewer than 3 rows, NaN.
    UnknownNameError
        Unknown ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.importance import correlation
    >>> x = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 1.0], [4.0, 2.0]])
    >>> correlation(x, np.array([1.0, 2.0, 3.0, 4.0])).importance
    array([ 1. , -0.8])
    """
    from scipy import stats

    start = time.perf_counter()
    check_name(method, CORRELATION_METHODS, kind="correlation method")
    _one_of(y, model)
    m = None if model is None else wrap(model)
    arr, flat, names = _features(x, m)
    n = len(flat)
    if n < 3:
        raise InputError(f"x has {n} rows; a correlation and its standard error need at least 3.")
    column = None
    if m is None:
        t = _numeric_target(y, n)
    else:
        outputs = m.evaluate(arr, batch_size=batch_size)
        t, column = _output_column(m, outputs, target)
    if method == "spearman":
        flat = stats.rankdata(flat, axis=0)
        t = stats.rankdata(t)
    xc = flat - flat.mean(axis=0)
    tc = t - t.mean()
    ss_t = float(tc @ tc)
    if ss_t <= 0:
        what = "the model's output" if m is not None else "y"
        raise InputError(f"{what} is constant on x, so no correlation is defined.")
    ss_x = np.einsum("ij,ij->j", xc, xc)
    constant = ss_x <= 0
    r = np.zeros(flat.shape[1])
    ok = ~constant
    r[ok] = np.clip((xc[:, ok].T @ tc) / np.sqrt(ss_x[ok] * ss_t), -1.0, 1.0)
    dof = n - 2
    stderr = np.sqrt((1.0 - r**2) / dof)
    with np.errstate(divide="ignore"):
        t_stat = np.where(np.abs(r) < 1, r / np.where(stderr > 0, stderr, 1.0), np.inf)
    p_value = 2.0 * stats.t.sf(np.abs(t_stat), dof)
    p_value[constant] = 1.0
    labels = [_feature_label(i, (flat.shape[1],), names) for i in range(flat.shape[1])]
    return _result(
        r,
        names,
        "correlation",
        {"method": method, "target": target, "batch_size": batch_size},
        start,
        stderr=stderr,
        extras={"p_value": p_value},
        info={
            "against": "y" if m is None else "model",
            "output": column,
            "n_rows": n,
            "constant_features": [labels[i] for i in np.flatnonzero(constant)],
        },
        model=m,
        input_shape=arr.shape[1:],
    )


# ---------------------------------------------------------------------- information gain
def _entropy_bits(counts: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits of count vectors along ``axis`` (empty vectors give 0)."""
    total = counts.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, counts / np.where(total > 0, total, 1), 0.0)
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


def equal_frequency_bins(column: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each value of ``column`` (n,) for ``n_bins`` equal-frequency bins.

    With the values sorted, ``s[0] <= ... <= s[n-1]``, the ideal cut ``b`` (``b = 1 ..
    n_bins - 1``) falls after ``b·n/n_bins`` values. Equal values must share a bin, so each
    cut is moved to the nearest position ``k`` where the sorted values change (``s[k-1] <
    s[k]``; the lower one on a tie of distances) and a value's bin is the number of cuts
    ``s[k-1]`` below it. With distinct values and ``n`` a multiple of ``n_bins`` every bin
    holds ``n / n_bins`` values; with ties the bins are as equal as the ties allow, and a
    column with fewer distinct values than ``n_bins`` (binary, codes, counts) gets at most
    one bin per value (cuts that land on the same position merge).
    """
    s = np.sort(column)
    n = len(s)
    changes = np.flatnonzero(s[1:] != s[:-1]) + 1  # positions k with s[k-1] < s[k]
    if len(changes) == 0:
        return np.zeros(n, dtype=np.int64)
    ideal = np.arange(1, n_bins) * n / n_bins
    right = np.clip(np.searchsorted(changes, ideal), 0, len(changes) - 1)
    left = np.clip(right - 1, 0, len(changes) - 1)
    use_left = np.abs(changes[left] - ideal) <= np.abs(changes[right] - ideal)
    positions = np.unique(np.where(use_left, changes[left], changes[right]))
    cuts = s[positions - 1]
    return np.searchsorted(cuts, column, side="left").astype(np.int64)


def information_gain(
    x: Any,
    y: Any = None,
    *,
    model: Any = None,
    n_bins: int = 10,
    batch_size: int | None = None,
) -> GlobalExplanation:
    """Entropy reduction of the class label from knowing each (binned) feature, in bits.

    Each feature is discretised into ``n_bins`` equal-frequency bins (see
    :func:`equal_frequency_bins`: cuts after every ``n / n_bins`` sorted values, moved to
    the nearest change of value so that ties are never split)
    and its information gain is ``IG = H(Y) - Σ_b (n_b / n) H(Y | bin b)``, with Shannon
    entropies ``H = -Σ_c p_c log2 p_c`` over the label's empirical class frequencies
    (Quinlan's ID3 criterion; it equals the plug-in mutual information between the binned
    feature and the label, in bits). It is non-negative, at most ``H(Y)``, blind to the
    order of the bins (any dependence, not only monotone), and grows with ``n_bins`` on
    small data (more bins fit noise).

    Parameters
    ----------
    x : array-like of shape (n, *input_shape)
    y : array-like of shape (n,), optional
        Class labels (ints, strings or bools).
    model : object, optional
        Instead of ``y``: a classifier whose predicted classes on ``x`` are the labels.
    n_bins : int, default 10
        Bins per feature (at least 2).
    batch_size : int, optional
        Rows per model call with ``model``.

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,): information gain in bits; ``extras["n_bins_used"]`` (d,): the
        non-empty bins of each feature; ``info["label_entropy"]``: ``H(Y)`` in bits (the
        largest possible gain); ``info["unit"] = "bits"``.

    Raises
    ------
    InputError, ShapeError, NonFiniteError
        Neither or both of ``y`` / ``model``, a continuous ``y``, a regression model,
        lengths that differ, ``n_bins < 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos.importance import information_gain
    >>> x = np.array([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0], [4.0, 4.0]])
    >>> information_gain(x, np.array([0, 0, 1, 1]), n_bins=2).importance
    array([1., 0.])
    """
    start = time.perf_counter()
    n_bins = check_positive_int(n_bins, name="n_bins", minimum=2)
    _one_of(y, model)
    m = None if model is None else wrap(model)
    arr, flat, names = _features(x, m)
    n, d = flat.shape
    if m is None:
        codes = _label_target(y, n)
    else:
        if m.output_kind == "regression":
            raise InputError(
                "information_gain needs class labels but this is a regression model; use "
                "mutual_information(x, model=model) or correlation(x, model=model)."
            )
        codes = predicted_labels(m.evaluate(arr, batch_size=batch_size), m.output_kind)
    n_classes = int(codes.max()) + 1
    h_y = float(_entropy_bits(np.bincount(codes, minlength=n_classes).astype(np.float64)))
    gain = np.empty(d)
    used = np.empty(d, dtype=np.int64)
    for j in range(d):
        bins = equal_frequency_bins(flat[:, j], n_bins)
        table = np.bincount(bins * n_classes + codes, minlength=n_bins * n_classes)
        table = table.reshape(n_bins, n_classes).astype(np.float64)
        per_bin = table.sum(axis=1)
        h_cond = float((per_bin / n) @ _entropy_bits(table, axis=1))
        gain[j] = max(h_y - h_cond, 0.0)
        used[j] = int((per_bin > 0).sum())
    return _result(
        gain,
        names,
        "information_gain",
        {"n_bins": n_bins, "batch_size": batch_size},
        start,
        extras={"n_bins_used": used},
        info={
            "label_entropy": h_y,
            "unit": "bits",
            "against": "y" if m is None else "model",
            "n_classes": n_classes,
            "n_rows": n,
        },
        model=m,
        input_shape=arr.shape[1:],
    )


# ---------------------------------------------------------------------- mutual information
def mutual_information(
    x: Any,
    y: Any = None,
    *,
    model: Any = None,
    target: int | str | None = None,
    task: str | None = None,
    discrete_features: Any = "auto",
    n_neighbors: int = 3,
    random_state: RandomState = None,
    batch_size: int | None = None,
) -> GlobalExplanation:
    """Mutual information between each feature and the target (k-nearest-neighbour estimate).

    Computed by :func:`sklearn.feature_selection.mutual_info_classif` (class labels) or
    :func:`~sklearn.feature_selection.mutual_info_regression` (a continuous target), with
    the same settings, so the numbers are scikit-learn's: the estimators of Kraskov,
    Stögbauer & Grassberger (2004) for continuous pairs and Ross (2014) for a continuous
    feature and a discrete label, in nats. Unlike correlation it sees any dependence; unlike
    :func:`information_gain` it needs no binning.

    Parameters
    ----------
    x : array-like of shape (n, d)
    y : array-like of shape (n,), optional
        Class labels or a continuous target.
    model : object, optional
        Instead of ``y``: the model's predictions on ``x`` are the target (the predicted
        class of a classifier, the output ``target`` of a regression model).
    target : int or str, optional
        With a regression ``model`` of several outputs: which one.
    task : {"classification", "regression"}, optional
        Default: from ``model.output_kind``, or from ``y``
        (:func:`sklearn.utils.multiclass.type_of_target`: ``"continuous"`` is regression,
        binary / multiclass labels classification).
    discrete_features : "auto", bool or array-like, default "auto"
        As scikit-learn's: which features are discrete (``"auto"``: none for dense ``x``).
    n_neighbors : int, default 3
        Neighbours of the k-NN estimator (scikit-learn's default).
    random_state : int, numpy.random.Generator or None
        scikit-learn adds tiny noise to continuous variables to break ties; an int is passed
        through (same int, same numbers as scikit-learn), a Generator or ``None`` gives an
        int seed drawn from it (recorded in ``info["sklearn_random_state"]``). The global
        NumPy state is never used.
    batch_size : int, optional
        Rows per model call with ``model``.

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,): mutual information in nats (``info["unit"] = "nats"``), never
        negative; ``info["task"]``.

    Raises
    ------
    InputError, ShapeError, NonFiniteError
        Neither or both of ``y`` / ``model``, lengths that differ, bad settings.
    UnknownNameError
        Unknown ``task``.
    """
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
    from sklearn.utils.multiclass import type_of_target

    start = time.perf_counter()
    n_neighbors = check_positive_int(n_neighbors, name="n_neighbors")
    if task is not None:
        check_name(task, TASKS, kind="task")
    _one_of(y, model)
    rng = check_random_state(random_state)
    sk_seed = seed_to_int(random_state)
    if sk_seed is None:
        sk_seed = int(rng.integers(0, 2**31 - 1))
    m = None if model is None else wrap(model)
    arr, flat, names = _features(x, m)
    n = len(flat)
    if m is not None:
        outputs = m.evaluate(arr, batch_size=batch_size)
        kind = task or ("regression" if m.output_kind == "regression" else "classification")
        if kind == "classification":
            if m.output_kind == "regression":
                raise InputError(
                    "task='classification' needs a classifier, but this model's output_kind is "
                    "'regression'."
                )
            t = predicted_labels(outputs, m.output_kind)
        else:
            t = _output_column(m, outputs, target)[0]
    else:
        t = as_vector(y, n)
        if t.ndim != 1:
            raise ShapeError(f"y must have shape ({n},), one value per row; got {t.shape}.")
        if task is None:
            found = type_of_target(t)
            if found == "continuous":
                kind = "regression"
            elif found in ("binary", "multiclass"):
                kind = "classification"
            else:
                raise InputError(
                    f"cannot tell whether y ({found}) is a class label or a continuous target; "
                    "pass task='classification' or task='regression'."
                )
        else:
            kind = task
        if kind == "regression" and t.dtype.kind not in "biuf":
            raise InputError(f"y has dtype {t.dtype}; a regression target must be numeric.")
    estimator = mutual_info_classif if kind == "classification" else mutual_info_regression
    try:
        mi = estimator(
            flat,
            t,
            discrete_features=discrete_features,
            n_neighbors=n_neighbors,
            copy=True,
            random_state=sk_seed,
        )
    except (ValueError, IndexError, TypeError) as exc:
        raise InputError(
            f"mutual information could not be computed ({exc}); check discrete_features "
            '("auto", a bool, feature indices or a boolean mask of length d) and that '
            "n_neighbors is smaller than the number of rows (per class)."
        ) from None
    return _result(
        np.asarray(mi, dtype=np.float64),
        names,
        "mutual_information",
        {
            "task": kind,
            "discrete_features": discrete_features,
            "n_neighbors": n_neighbors,
            "random_state": random_state,
            "target": target,
            "batch_size": batch_size,
        },
        start,
        info={
            "unit": "nats",
            "task": kind,
            "against": "y" if m is None else "model",
            "sklearn_random_state": sk_seed,
            "n_rows": n,
        },
        model=m,
        input_shape=arr.shape[1:],
        seed=sk_seed,
    )


# ---------------------------------------------------------------------- weight magnitude
def weight_magnitude(model: Any, *, feature_names: list[str] | None = None) -> GlobalExplanation:
    """Per-input magnitude of the first layer's weights: ``Σ_u |W[u, j]|`` over its units.

    Reads the first dense layer of a PyTorch module (the first ``nn.Linear``, which must be
    the first layer holding parameters, in registration order), of a Keras model (the first
    ``Dense`` layer, which must be the first layer with weights) or the ``coef_`` of a
    scikit-learn linear model (summed over classes for multi-class models). Input ``j``
    matters to the network only through column ``j`` of that matrix, so a column of zeros
    means the input is ignored; the sum of absolute weights is a cheap, data-free proxy
    that L1 penalties drive to zero for unused inputs. It ignores the inputs' scales (put
    the inputs on one scale, e.g. standardise them, before comparing) and everything after
    the first layer.

    Parameters
    ----------
    model : object
        A ``torch.nn.Module``, a Keras model, a fitted scikit-learn linear model, or a
        :class:`lumos.Model` wrapping one of these.
    feature_names : list of str, optional
        Names of the inputs (default: the model's own, e.g. scikit-learn's
        ``feature_names_in_``).

    Returns
    -------
    GlobalExplanation
        ``importance`` (d,): ``Σ_u |W[u, j]|``. ``info``: ``layer`` (module path or layer
        name), ``layer_type``, ``n_units``, ``linear`` (the model is that one layer: a
        scikit-learn linear model, or a network with a single weight layer),
        ``sparsity_score`` (``S = Σ_j Σ_u |W[u, j]|``, the L1 norm of the weights; for a
        linear model the sparsity score ``S = Σ|wᵢ|``), ``n_weights`` and ``n_zero_weights``
        (exactly zero).

    Raises
    ------
    ModelError
        A black box (plain function, ONNX) or a model whose first weight layer is not dense
        (convolutions, trees, pipelines).
    """
    start = time.perf_counter()
    m = wrap(model)
    weights, info = _first_layer(m)  # (d, units)
    d = weights.shape[0]
    if m.n_features is not None and m.n_features != d:
        raise ModelError(
            f"the first layer takes {d} inputs but the model's inputs have {m.n_features} "
            "elements; weight_magnitude needs a dense layer applied to the raw (flattened) "
            "inputs."
        )
    names = feature_names if feature_names is not None else m.feature_names
    if names is not None and len(names) != d:
        raise ShapeError(f"{len(names)} feature names for {d} inputs; pass one name per input.")
    magnitude = np.abs(weights)
    info.update(
        n_units=int(weights.shape[1]),
        sparsity_score=float(magnitude.sum()),
        n_weights=int(weights.size),
        n_zero_weights=int((weights == 0).sum()),
    )
    if m.preprocess is not None:
        info["note"] = "weights act on the output of the model's preprocess, not on raw inputs"
    return _result(
        magnitude.sum(axis=1),
        names,
        "weight_magnitude",
        {"feature_names": feature_names},
        start,
        info=info,
        model=m,
        input_shape=m.input_shape or (d,),
    )


def _first_layer(model: Model) -> tuple[np.ndarray, dict[str, Any]]:
    """First-layer weights as an array (d_in, n_units) and what they came from."""
    framework = model.framework
    if framework == "torch":
        return _torch_first_layer(model.module)  # type: ignore[attr-defined]
    if framework == "keras":
        return _keras_first_layer(model.keras_model)  # type: ignore[attr-defined]
    if framework == "sklearn":
        return _sklearn_weights(model.estimator)  # type: ignore[attr-defined]
    raise ModelError(
        f"a {framework} model is a black box whose weights lumos cannot read; weight_magnitude "
        "takes a torch module, a Keras model or a scikit-learn linear model. Use "
        "permutation(model, x, y) for any model."
    )


def _torch_first_layer(module: Any) -> tuple[np.ndarray, dict[str, Any]]:
    layers = [
        (name, mod)
        for name, mod in module.named_modules()
        if any(True for _ in mod.parameters(recurse=False))
    ]
    if not layers:
        raise ModelError("this torch module has no parameters, so it has no weights to read.")
    name, first = layers[0]
    kind = getattr(first, "original_name", type(first).__name__)
    if kind != "Linear":
        raise ModelError(
            f"the first layer with parameters ({name!r}, {kind}) is not an nn.Linear; "
            "weight_magnitude reads a dense first layer. For convolutional or other networks "
            "use permutation(model, x, y) or aggregate(explain(...))."
        )
    w = first.weight.detach().to("cpu").double().numpy()  # (out, in)
    info = {"layer": name, "layer_type": "Linear", "linear": len(layers) == 1}
    return w.T.copy(), info


def _keras_first_layer(keras_model: Any) -> tuple[np.ndarray, dict[str, Any]]:
    layers = [layer for layer in _keras_layers(keras_model) if layer.weights]
    if not layers:
        raise ModelError("this Keras model has no weights to read.")
    first = layers[0]
    kind = type(first).__name__
    if kind != "Dense":
        raise ModelError(
            f"the first layer with weights ({first.name!r}, {kind}) is not a Dense layer; "
            "weight_magnitude reads a dense first layer. For convolutional or other networks "
            "use permutation(model, x, y) or aggregate(explain(...))."
        )
    kernel = np.asarray(first.get_weights()[0], dtype=np.float64)  # (in, units)
    info = {"layer": first.name, "layer_type": "Dense", "linear": len(layers) == 1}
    return kernel, info


def _keras_layers(keras_model: Any) -> list[Any]:
    """Layers in order, nested models expanded."""
    out = []
    for layer in getattr(keras_model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:
            out.extend(_keras_layers(layer))
        else:
            out.append(layer)
    return out


def _sklearn_weights(estimator: Any) -> tuple[np.ndarray, dict[str, Any]]:
    if hasattr(estimator, "steps"):
        raise ModelError(
            "this is a scikit-learn Pipeline: its coefficients act on the transformed "
            "features, not on the inputs. Pass the final estimator (pipeline[-1]) and read "
            "the weights as those of the transformed features, or use permutation()."
        )
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        raise ModelError(
            f"{type(estimator).__name__} has no coef_ (it is not a linear model); use its "
            "feature_importances_ if it has them, or permutation(model, x, y)."
        )
    if hasattr(coef, "toarray"):  # sparsified coefficients
        coef = coef.toarray()
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))  # (n_targets, d)
    info = {"layer": "coef_", "layer_type": type(estimator).__name__, "linear": True}
    return coef.T.copy(), info
