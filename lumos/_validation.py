"""Input checks that raise :mod:`lumos.errors` with a message saying how to fix the problem."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lumos.errors import (
    EmptyInputError,
    InputError,
    NonFiniteError,
    NonNumericError,
    ShapeError,
    TargetError,
    UnknownNameError,
)


def _is_dataframe(x: Any) -> bool:
    return type(x).__name__ == "DataFrame" and hasattr(x, "columns") and hasattr(x, "dtypes")


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def to_numpy(x: Any, *, name: str = "x") -> tuple[np.ndarray, list[str] | None]:
    """Convert an array-like to a float ndarray, keeping column names of a DataFrame.

    Parameters
    ----------
    x : ndarray, torch.Tensor, pandas.DataFrame, or nested sequence
        Input of shape (n, *input_shape).
    name : str
        Name used in error messages.

    Returns
    -------
    array : ndarray of shape (n, *input_shape), floating dtype
    feature_names : list of str or None
        Column names when ``x`` is a DataFrame.

    Raises
    ------
    NonNumericError
        A column or element is not numeric.
    """
    if type(x) is np.ndarray and x.dtype.kind == "f":  # the common case, as it is
        return x, None
    feature_names = None
    if _is_dataframe(x):
        bad = [str(c) for c, dt in zip(x.columns, x.dtypes, strict=True) if not _numeric_dtype(dt)]
        if bad:
            raise NonNumericError(
                f"{name} has non-numeric column(s) {bad[:5]}; encode them as numbers "
                "(e.g. one-hot or ordinal encoding) or drop them before explaining."
            )
        feature_names = [str(c) for c in x.columns]
        arr = x.to_numpy(dtype=np.float64)
    elif _is_tensor(x):
        arr = x.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise NonNumericError(
                f"{name} could not be turned into a numeric array ({exc}); pass a rectangular "
                "numeric array of shape (n_rows, n_features)."
            ) from None
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.number)):
        raise NonNumericError(
            f"{name} has dtype {arr.dtype}, which is not numeric; convert strings and objects to "
            "numbers (e.g. one-hot encode categories) before passing them to lumos."
        )
    if np.iscomplexobj(arr):
        raise NonNumericError(f"{name} is complex-valued; lumos explains real-valued inputs only.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr, feature_names


def _numeric_dtype(dtype: Any) -> bool:
    try:
        return bool(np.issubdtype(np.dtype(dtype), np.number)) or np.dtype(dtype) == bool
    except TypeError:
        return False


def check_array(
    x: Any,
    *,
    name: str = "x",
    input_shape: Sequence[int] | None = None,
    allow_nan: bool = False,
    min_rows: int = 1,
) -> tuple[np.ndarray, list[str] | None]:
    """Validate a batch of inputs and return it as a float ndarray.

    Parameters
    ----------
    x : array-like of shape (n, *input_shape)
    name : str
        Name used in error messages.
    input_shape : sequence of int, optional
        Expected shape of one row; checked when given.
    allow_nan : bool
        Accept NaN / inf values.
    min_rows : int
        Minimum number of rows.

    Returns
    -------
    array : ndarray of shape (n, *input_shape)
    feature_names : list of str or None
    """
    arr, names = to_numpy(x, name=name)
    if min(arr.strides, default=0) < 0:  # a flipped view (x[::-1]): torch takes no such layout
        arr = np.ascontiguousarray(arr)
    if arr.ndim == 0:
        raise ShapeError(
            f"{name} is a scalar; pass a 2-D array of shape (n_rows, n_features) "
            "(or (n, channels, height, width) for images)."
        )
    if input_shape is not None:
        if type(input_shape) is tuple:  # a model's own input_shape: ints already
            expected = input_shape
        else:
            expected = tuple(int(s) for s in input_shape)
        if arr.ndim == len(expected) and arr.shape == expected:
            raise ShapeError(
                f"{name} has shape {arr.shape}, which is one row without the batch dimension; "
                f"use {name}[None] (or {name}.reshape(1, -1)) to pass a single row."
            )
        if arr.shape[1:] != expected:
            raise ShapeError(
                f"{name} has shape {arr.shape} but the model expects rows of shape {expected}, "
                f"i.e. an array of shape (n, {', '.join(map(str, expected))}); "
                "check the column count / image size, or reshape the input."
            )
    elif arr.ndim == 1:
        raise ShapeError(
            f"{name} has shape {arr.shape}; pass a batch with a leading row dimension, "
            f"e.g. {name}.reshape(1, -1) for one row or {name}.reshape(-1, 1) for one feature."
        )
    if arr.shape[0] < min_rows:
        raise EmptyInputError(
            f"{name} has {arr.shape[0]} row(s); at least {min_rows} needed. "
            "Check the filter or slice that produced it."
        )
    if arr.size == 0:
        raise EmptyInputError(
            f"{name} has shape {arr.shape} with no features; pass non-empty rows."
        )
    # the sum is finite when every value is (one reduction); only an overflow of finite
    # values, or a NaN / infinity, takes the element-wise check
    if not allow_nan and not math.isfinite(arr.sum()) and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        n_bad = len(bad)
        where = tuple(int(i) for i in bad[0])
        raise NonFiniteError(
            f"{name} contains {n_bad} NaN or infinite value(s), the first at index {where}; "
            "impute or drop them (e.g. sklearn.impute.SimpleImputer) before explaining."
        )
    return arr, names


#: Up to this many targets are range-checked in Python: each numpy call costs more than
#: the comparisons of a few ints (explaining one image, the checks run with cold caches).
_FEW_TARGETS = 16


def check_target(
    target: Any,
    n_rows: int,
    n_outputs: int,
    *,
    class_names: Sequence[str] | None = None,
    default: np.ndarray | None = None,
) -> np.ndarray:
    """Resolve ``target`` to an int array of shape (n_rows,).

    Parameters
    ----------
    target : None, int, str, or sequence of int / str
        ``None`` takes ``default`` (the predicted class); an int or class name applies to
        every row; a sequence gives one target per row.
    n_rows, n_outputs : int
    class_names : sequence of str, optional
        Allows targets given by class name.
    default : ndarray of shape (n_rows,), optional
        Used when ``target`` is None.

    Returns
    -------
    ndarray of shape (n_rows,), dtype int64
    """
    if target is None:
        if default is None:
            raise TargetError("target is None and no default is available; pass target=<index>.")
        return np.asarray(default, dtype=np.int64).reshape(n_rows)
    if _is_tensor(target):
        target = target.detach().cpu().numpy()
    if isinstance(target, (str, int, np.integer, float, np.floating)) or np.ndim(target) == 0:
        # one target for every row: resolve it once
        one = target.item() if isinstance(target, (np.generic, np.ndarray)) else target
        return np.full(n_rows, check_target([one], 1, n_outputs, class_names=class_names)[0])
    if isinstance(target, np.ndarray) and target.dtype.kind == "i" and target.shape == (n_rows,):
        out = target.astype(np.int64)  # indices already: no per-item checks
        if n_rows <= _FEW_TARGETS and all(0 <= t < n_outputs for t in out.tolist()):
            return out  # in range: checked without numpy's per-call costs
    elif isinstance(target, (list, tuple)):
        out = _target_items(list(target), target, n_rows, class_names)  # may mix names, ints
    else:
        out = _target_items(np.asarray(target).tolist(), target, n_rows, class_names)
    lo, hi = int(out.min()), int(out.max())  # two reductions: the common case checks no more
    if lo < -n_outputs or hi >= n_outputs:
        bad = out[(out < -n_outputs) | (out >= n_outputs)]
        raise TargetError(
            f"target {int(bad[0])} is out of range for a model with {n_outputs} output(s); "
            f"use an index in 0..{n_outputs - 1}."
        )
    return out if lo >= 0 else np.where(out < 0, out + n_outputs, out)


def _target_items(
    items: list[Any], target: Any, n_rows: int, class_names: Sequence[str] | None
) -> np.ndarray:
    """Per-row targets given as a list of ints and / or class names, as int64 (n_rows,)."""
    if len(items) != n_rows or any(isinstance(t, (list, tuple)) for t in items):
        raise TargetError(
            f"target has shape {np.shape(target)}; pass one int / class name for all rows or one "
            f"per row (length {n_rows})."
        )
    out = np.empty(n_rows, dtype=np.int64)
    for i, t in enumerate(items):
        if isinstance(t, str):
            if not class_names or t not in class_names:
                known = list(class_names) if class_names else []
                raise TargetError(
                    f"target {t!r} is not a class name of this model (known: {known}); "
                    "pass an output index or one of the class names."
                )
            out[i] = list(class_names).index(t)
        elif isinstance(t, (int, np.integer)) or (isinstance(t, float) and float(t).is_integer()):
            out[i] = int(t)
        else:
            raise TargetError(f"target {t!r} is neither an output index nor a class name.")
    return out


#: Types of ``known`` that :func:`check_name` tests ``in`` before anything else.
_CONTAINERS = (dict, tuple, list, set, frozenset)


def check_name(name: Any, known: Iterable[str], *, kind: str) -> str:
    """Return ``name`` if it is in ``known``, else raise with the closest matches.

    Raises
    ------
    UnknownNameError
    """
    # a membership test first (the registries are dicts and tuples): sorting is for errors
    if isinstance(name, str) and type(known) in _CONTAINERS:
        if name in known:
            return name
    options = sorted(known)
    if isinstance(name, str) and name in options:
        return name
    close = difflib.get_close_matches(str(name), options, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"Unknown {kind} {name!r}.{hint} Available: {', '.join(options)}.")


def check_positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def check_test_size(test_size: Any, n: int, *, min_test: int = 1, min_train: int = 1) -> int:
    """Held-out rows for ``test_size`` (a fraction in (0, 1) or an int row count) out of ``n``.

    Raises
    ------
    InputError
        For a non-number, a fraction outside (0, 1), or a split that leaves fewer than
        ``min_test`` held-out or ``min_train`` training rows.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise InputError(
            f"test_size must be a fraction in (0, 1) or an int row count, got {test_size!r}; "
            "pass e.g. test_size=0.25."
        )
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    else:
        if not 0.0 < float(test_size) < 1.0:
            raise InputError(
                f"test_size must be a fraction strictly between 0 and 1, got {test_size}; "
                "pass e.g. test_size=0.25."
            )
        n_test = math.ceil(float(test_size) * n)
    if not min_test <= n_test <= n - min_train:
        raise InputError(
            f"test_size={test_size!r} gives {n_test} held-out rows out of {n}; the split needs "
            f"at least {min_test} held-out and {min_train} training rows. Pass more rows or a "
            "test_size such as 0.25."
        )
    return n_test
