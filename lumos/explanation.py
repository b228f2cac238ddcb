"""Result objects: :class:`Explanation` (local, one row per input) and
:class:`GlobalExplanation` (one importance per feature), saved without pickle."""

from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos._version import __version__
from lumos.errors import InputError, LumosError, ShapeError

_FORMAT_VERSION = 1
_META_KEY = "__meta__"


# ---------------------------------------------------------------------- JSON helpers
#: Parameter value types stored as they are.
_PLAIN = (type(None), bool, str, int, float)


def _jsonable(value: Any, arrays: dict[str, np.ndarray], key: str) -> Any:
    """Turn ``value`` into JSON types; arrays go to ``arrays`` and leave a reference."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("torch"):
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        arrays[key] = arr
        return {"__array__": key}
    if isinstance(value, dict):
        return {str(k): _jsonable(v, arrays, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, arrays, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, np.random.Generator):
        return "<numpy.random.Generator>"
    return repr(value)


def _restore(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def _normalise_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Params as they will read back after save/load: JSON types, arrays kept as arrays."""
    params = params or {}
    if all(type(v) in _PLAIN for v in params.values()):  # nothing to convert
        return {str(k): v for k, v in params.items()}
    arrays: dict[str, np.ndarray] = {}
    return _restore(_jsonable(dict(params), arrays, "params"), arrays)


def _write(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> str:
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload[_META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(path, **payload)
    return path


def _read(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LumosError(f"no explanation file at {path!r}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise LumosError(f"{path!r} is not a lumos explanation file ({exc}).") from None
    if _META_KEY not in arrays:
        raise LumosError(f"{path!r} is an .npz file but not one written by lumos (no metadata).")
    meta = json.loads(str(arrays.pop(_META_KEY)))
    if meta.get("format") != f"lumos.{kind}":
        raise LumosError(
            f"{path!r} holds a {meta.get('format')!r}, not a lumos.{kind}; "
            f"load it with the matching class."
        )
    if meta.get("format_version", 0) > _FORMAT_VERSION:
        raise LumosError(
            f"{path!r} was written by a newer lumos (format {meta['format_version']}); "
            "upgrade lumos."
        )
    return arrays, meta


def _feature_label(i: int, shape: tuple[int, ...], names: list[str] | None) -> str:
    if names is not None:
        return names[i]
    if len(shape) <= 1:
        return f"x{i}"
    return "x[" + ",".join(str(j) for j in np.unravel_index(i, shape)) + "]"


def _per_row(value: Any, n: int, name: str, dtype: Any = np.float64) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=dtype)
    if arr.shape != (n,):
        raise ShapeError(f"{name} must have shape ({n},), one value per row; got {arr.shape}.")
    return arr


def _provenance(
    *,
    model: Any = None,
    input_shape: tuple[int, ...] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The provenance record every result carries."""
    fingerprint = None
    if model is not None:
        try:
            fingerprint = model.fingerprint
        except Exception:
            fingerprint = None
    return {
        "lumos_version": __version__,
        "input_shape": None if input_shape is None else [int(s) for s in input_shape],
        "model_fingerprint": fingerprint,
        "model_framework": getattr(model, "framework", None),
        "seed": seed,
    }


# ---------------------------------------------------------------------- local
@dataclass(eq=False)
class Explanation:
    """Local attributions: one target output explained per input row.

    Parameters
    ----------
    values : ndarray of shape (n, *input_shape)
        Attribution of each input element to the target output.
    data : ndarray of shape (n, *input_shape)
        The inputs that were explained.
    target : int or ndarray of shape (n,), default 0
        Output index explained for each row.
    prediction : ndarray of shape (n,), optional
        Model output f(x)[target].
    base_value : ndarray of shape (n,), optional
        Model output at the reference (baseline or expectation over the background).
    stderr : ndarray of shape (n, *input_shape), optional
        Standard error of each value, for stochastic estimators.
    feature_names : list of str, optional
        One per feature (tabular data, ``input_shape == (d,)``).
    class_names : list of str, optional
    method : str
        Registry name of the method that made it (``"custom"`` when made by hand).
    params : dict
        The method's parameters, including ``random_state``.
    elapsed_s : float, optional
        Wall time the method took.
    groups : ndarray of int, shape input_shape or (n, *input_shape), optional
        Component map (feature groups, superpixels, patches) the method worked on; the values
        of a component are broadcast back to its elements.
    extras : dict of str to ndarray
        Method-specific per-row arrays, each of shape (n, ...) (for example a completeness gap).
    provenance : dict
        lumos version, input shape, model fingerprint, seed.

    Examples
    --------
    >>> import numpy as np
    >>> from lumos import Explanation
    >>> e = Explanation(values=np.array([[0.5, -2.0, 0.1]]), data=np.ones((1, 3)),
    ...                 feature_names=["a", "b", "c"])
    >>> e.top_features(2)
    [[('b', -2.0), ('a', 0.5)]]
    """

    values: np.ndarray
    data: np.ndarray
    target: Any = 0
    prediction: np.ndarray | None = None
    base_value: np.ndarray | None = None
    stderr: np.ndarray | None = None
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    method: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float | None = None
    groups: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from lumos._validation import to_numpy

        self.values = np.asarray(to_numpy(self.values, name="values")[0], dtype=np.float64)
        self.data = np.asarray(to_numpy(self.data, name="data")[0], dtype=np.float64)
        if self.values.ndim < 2:
            raise ShapeError(
                f"values must have shape (n, *input_shape) with a row dimension; got "
                f"{self.values.shape}. For one row use values[None]."
            )
        if self.values.shape != self.data.shape:
            raise ShapeError(
                f"values {self.values.shape} and data {self.data.shape} must have the same shape."
            )
        n = len(self.values)
        self.target = _per_row(self.target, n, "target", np.int64)
        self.prediction = _per_row(self.prediction, n, "prediction")
        self.base_value = _per_row(self.base_value, n, "base_value")
        if self.stderr is not None:
            self.stderr = np.asarray(self.stderr, dtype=np.float64)
            if self.stderr.shape != self.values.shape:
                raise ShapeError(
                    f"stderr must have the shape of values {self.values.shape}; "
                    f"got {self.stderr.shape}."
                )
        if self.feature_names is not None:
            self.feature_names = [str(f) for f in self.feature_names]
            if len(self.feature_names) != self.n_features:
                raise ShapeError(
                    f"{len(self.feature_names)} feature names for {self.n_features} features; "
                    "pass one name per feature."
                )
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            if self.groups.shape not in (self.input_shape, self.values.shape):
                raise ShapeError(
                    f"groups must have shape {self.input_shape} or {self.values.shape}; "
                    f"got {self.groups.shape}."
                )
        extras = {}
        for key, arr in (self.extras or {}).items():
            arr = np.asarray(arr)
            if arr.ndim == 0 or len(arr) != n:
                raise ShapeError(f"extras[{key!r}] must have one entry per row (n={n}).")
            extras[str(key)] = arr
        self.extras = extras
        self.params = _normalise_params(self.params)
        if not self.provenance:
            self.provenance = _provenance(input_shape=self.input_shape)

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return len(self.values)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input row."""
        return tuple(self.values.shape[1:])

    @property
    def n_features(self) -> int:
        """Scalar features per row."""
        return int(np.prod(self.input_shape))

    def __getitem__(self, rows: Any) -> Explanation:
        """Rows ``rows`` (int, slice, index or boolean array) as a new Explanation.

        An int keeps the row dimension: ``e[3]`` has ``len(e[3]) == 1``.
        """
        if isinstance(rows, (int, np.integer)):
            if not -len(self) <= rows < len(self):
                raise IndexError(f"row {rows} out of range for {len(self)} rows.")
            rows = [int(rows)]
        idx = np.arange(len(self))[rows]

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        groups = self.groups
        if groups is not None and groups.shape == self.values.shape:
            groups = groups[idx]
        return Explanation(
            values=self.values[idx],
            data=self.data[idx],
            target=self.target[idx],
            prediction=take(self.prediction),
            base_value=take(self.base_value),
            stderr=take(self.stderr),
            feature_names=self.feature_names,
            class_names=self.class_names,
            method=self.method,
            params=self.params,
            elapsed_s=self.elapsed_s,
            groups=groups,
            extras={k: v[idx] for k, v in self.extras.items()},
            provenance=dict(self.provenance),
        )

    # ------------------------------------------------------------------ views
    def feature_label(self, i: int) -> str:
        """Name of flat feature ``i`` (its feature name, ``x{i}``, or ``x[c,h,w]``)."""
        return _feature_label(i, self.input_shape, self.feature_names)

    def top_features(self, k: int = 5, *, by: str = "abs") -> list[list[tuple[str, float]]]:
        """The ``k`` most important features of each row.

        Parameters
        ----------
        k : int
            How many features per row.
        by : {"abs", "positive", "negative"}
            Rank by magnitude, by largest positive, or by most negative value.

        Returns
        -------
        list of length n of lists of ``(feature name, value)``, most important first.
        """
        from lumos._validation import check_name

        check_name(by, ("abs", "positive", "negative"), kind="ranking")
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}.")
        flat = self.values.reshape(len(self), -1)
        key = {"abs": -np.abs(flat), "positive": -flat, "negative": flat}[by]
        order = np.argsort(key, axis=1, kind="stable")[:, : min(k, flat.shape[1])]
        return [
            [(self.feature_label(int(j)), float(flat[r, j])) for j in order[r]]
            for r in range(len(self))
        ]

    def to_frame(self, *, long: bool = False) -> Any:
        """The values as a pandas DataFrame.

        Parameters
        ----------
        long : bool
            ``False``: one row per explained input, one column per feature.
            ``True``: one row per (input, feature) with columns ``row, feature, value, data,
            target`` (and ``stderr`` when present).

        Returns
        -------
        pandas.DataFrame
        """
        pd = _pandas()
        flat = self.values.reshape(len(self), -1)
        names = [self.feature_label(i) for i in range(flat.shape[1])]
        if not long:
            frame = pd.DataFrame(flat, columns=names)
            frame.index.name = "row"
            return frame
        n, d = flat.shape
        cols: dict[str, Any] = {
            "row": np.repeat(np.arange(n), d),
            "feature": np.tile(np.array(names, dtype=object), n),
            "value": flat.ravel(),
            "data": self.data.reshape(n, -1).ravel(),
            "target": np.repeat(self.target, d),
        }
        if self.stderr is not None:
            cols["stderr"] = self.stderr.reshape(n, -1).ravel()
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write to ``path`` (``.npz``: arrays plus JSON metadata; no pickle).

        Returns
        -------
        str
            The path written (``.npz`` appended when missing).
        """
        arrays: dict[str, np.ndarray] = {
            "values": self.values,
            "data": self.data,
            "target": self.target,
        }
        for name in ("prediction", "base_value", "stderr", "groups"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        for key, value in self.extras.items():
            arrays[f"extras/{key}"] = value
        meta = {
            "format": "lumos.explanation",
            "format_version": _FORMAT_VERSION,
            "feature_names": self.feature_names,
            "class_names": self.class_names,
            "method": self.method,
            "params": _jsonable(self.params, arrays, "params"),
            "elapsed_s": self.elapsed_s,
            "provenance": _jsonable(self.provenance, arrays, "provenance"),
        }
        return _write(path, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Explanation:
        """Read an explanation written by :meth:`save`; arrays come back bit for bit."""
        arrays, meta = _read(path, "explanation")
        extras = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("extras/")}
        return cls(
            values=arrays["values"],
            data=arrays["data"],
            target=arrays["target"],
            prediction=arrays.get("prediction"),
            base_value=arrays.get("base_value"),
            stderr=arrays.get("stderr"),
            feature_names=meta["feature_names"],
            class_names=meta["class_names"],
            method=meta["method"],
            params=_restore(meta["params"], arrays),
            elapsed_s=meta["elapsed_s"],
            groups=arrays.get("groups"),
            extras=extras,
            provenance=_restore(meta["provenance"], arrays),
        )

    def __repr__(self) -> str:
        return (
            f"Explanation(method={self.method!r}, n={len(self)}, input_shape={self.input_shape}, "
            f"stderr={'yes' if self.stderr is not None else 'no'})"
        )


# ---------------------------------------------------------------------- global
@dataclass(eq=False)
class GlobalExplanation:
    """One importance score per feature, for the model as a whole.

    Parameters
    ----------
    importance : ndarray of shape (d,)
        Importance of each feature (signed where the method is, e.g. correlations).
    stderr : ndarray of shape (d,), optional
        Standard error of each score.
    feature_names : list of str, optional
    method : str
    params : dict
    elapsed_s : float, optional
    fidelity : float, optional
        For surrogates: agreement / R² with the model on held-out data.
    rules : str, optional
        For surrogates: the readable rules.
    formula : str, optional
        For linear surrogates: ``f(x) = Σ wᵢxᵢ + b`` with feature names.
    estimator : object, optional
        The fitted interpretable model (kept in memory, not saved).
    extras : dict of str to ndarray
        Further arrays (e.g. a fidelity–complexity curve).
    info : dict
        Further JSON metadata.
    provenance : dict
    """

    importance: np.ndarray
    stderr: np.ndarray | None = None
    feature_names: list[str] | None = None
    method: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float | None = None
    fidelity: float | None = None
    rules: str | None = None
    formula: str | None = None
    estimator: Any = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.importance = np.asarray(self.importance, dtype=np.float64)
        if self.importance.ndim != 1 or len(self.importance) == 0:
            raise ShapeError(
                f"importance must have shape (n_features,), got {self.importance.shape}."
            )
        d = len(self.importance)
        if self.stderr is not None:
            self.stderr = np.asarray(self.stderr, dtype=np.float64)
            if self.stderr.shape != (d,):
                raise ShapeError(f"stderr must have shape ({d},), got {self.stderr.shape}.")
        if self.feature_names is not None:
            self.feature_names = [str(f) for f in self.feature_names]
            if len(self.feature_names) != d:
                raise ShapeError(f"{len(self.feature_names)} feature names for {d} features.")
        if self.fidelity is not None:
            self.fidelity = float(self.fidelity)
        self.extras = {str(k): np.asarray(v) for k, v in (self.extras or {}).items()}
        self.params = _normalise_params(self.params)
        self.info = _normalise_params(self.info)
        if not self.provenance:
            self.provenance = _provenance(input_shape=(d,))

    def __len__(self) -> int:
        return len(self.importance)

    def feature_label(self, i: int) -> str:
        """Name of feature ``i``."""
        return _feature_label(i, (len(self),), self.feature_names)

    @property
    def ranking(self) -> np.ndarray:
        """Feature indices from most to least important (by magnitude), shape (d,)."""
        return np.argsort(-np.abs(self.importance), kind="stable")

    @property
    def curve(self) -> np.ndarray | None:
        """The fidelity–complexity curve of a surrogate, ``extras["curve"]``: shape (k, 2),
        columns (complexity, held-out fidelity); ``None`` for other methods."""
        return self.extras.get("curve")

    def top_features(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` features with the largest ``|importance|``, as ``(name, value)`` pairs."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}.")
        return [(self.feature_label(int(i)), float(self.importance[i])) for i in self.ranking[:k]]

    def to_frame(self) -> Any:
        """A pandas DataFrame with columns ``feature, importance, stderr, rank``, ranked."""
        pd = _pandas()
        order = self.ranking
        frame = pd.DataFrame(
            {
                "feature": [self.feature_label(int(i)) for i in order],
                "importance": self.importance[order],
                "stderr": self.stderr[order] if self.stderr is not None else np.nan,
                "rank": np.arange(1, len(self) + 1),
            }
        )
        return frame

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write to ``path`` as ``.npz`` + JSON metadata (the fitted ``estimator`` is not saved)."""
        arrays: dict[str, np.ndarray] = {"importance": self.importance}
        if self.stderr is not None:
            arrays["stderr"] = self.stderr
        for key, value in self.extras.items():
            arrays[f"extras/{key}"] = value
        meta = {
            "format": "lumos.global_explanation",
            "format_version": _FORMAT_VERSION,
            "feature_names": self.feature_names,
            "method": self.method,
            "params": _jsonable(self.params, arrays, "params"),
            "elapsed_s": self.elapsed_s,
            "fidelity": self.fidelity,
            "rules": self.rules,
            "formula": self.formula,
            "info": _jsonable(self.info, arrays, "info"),
            "provenance": _jsonable(self.provenance, arrays, "provenance"),
            "estimator_saved": False,
        }
        return _write(path, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GlobalExplanation:
        """Read a global explanation written by :meth:`save`."""
        arrays, meta = _read(path, "global_explanation")
        extras = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("extras/")}
        return cls(
            importance=arrays["importance"],
            stderr=arrays.get("stderr"),
            feature_names=meta["feature_names"],
            method=meta["method"],
            params=_restore(meta["params"], arrays),
            elapsed_s=meta["elapsed_s"],
            fidelity=meta["fidelity"],
            rules=meta["rules"],
            formula=meta["formula"],
            extras=extras,
            info=_restore(meta["info"], arrays),
            provenance=_restore(meta["provenance"], arrays),
        )

    def __repr__(self) -> str:
        top = ", ".join(f"{n}={v:.3g}" for n, v in self.top_features(min(3, len(self))))
        return f"GlobalExplanation(method={self.method!r}, d={len(self)}, top: {top})"


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        raise LumosError("to_frame() needs pandas: pip install pandas") from None
    return pd
