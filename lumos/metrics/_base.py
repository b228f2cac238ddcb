"""What every explanation-quality metric shares: the result object, the registry, input
preparation, feature orderings, substrates, per-row randomness, re-running an explainer and
the evaluation cache :func:`lumos.evaluate` uses to share model calls between metrics.

A metric is a plain function ``metric(model, explanation, *, ..., random_state=None) ->
MetricResult`` registered with :func:`register_metric`; its metadata (category, direction,
what it needs) lives in the registry so ``lumos.evaluate`` can pick the applicable ones.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import numbers
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos._random import check_random_state
from lumos._validation import check_name, check_positive_int
from lumos.errors import InputError, NonFiniteError, ShapeError, UnknownNameError
from lumos.explanation import Explanation
from lumos.models.base import Model, wrap

#: Metric categories, in the order tables list them.
CATEGORIES = (
    "faithfulness",
    "robustness",
    "complexity",
    "randomisation",
    "localisation",
    "axiomatic",
)
#: What a metric can need from its inputs (``MetricInfo.requires``):
#: ``"image"`` rows of shape (H, W) or (C, H, W); ``"tabular"`` rows of shape (d,);
#: ``"ground_truth"`` a ``ground_truth=`` argument (masks or relevant features);
#: ``"differentiable"`` a torch / Keras model; ``"explainer"`` an explainer it can re-run
#: (the explanation's own registered method, or one passed as ``explainer=``);
#: ``"stochastic"`` an explainer that takes ``random_state``.
REQUIREMENTS = ("image", "tabular", "ground_truth", "differentiable", "explainer", "stochastic")


# ----------------------------------------------------------------------------- result
@dataclass(eq=False)
class MetricResult:
    """Scores of one metric on one explanation, one per explained row.

    Parameters
    ----------
    name : str
        The metric's registry name.
    scores : ndarray of shape (n,)
        One score per row; NaN where a row has no defined score (the reason is in
        ``extras["nan_reason"]`` when the metric records one).
    higher_is_better : bool
    category : str
        One of :data:`CATEGORIES`.
    params : dict
        The metric's parameters as called (``random_state`` included).
    curve : ndarray of shape (n, k) or (k,), optional
        A per-row curve (deletion / insertion: output after each step) or one curve for
        all rows (model randomisation: mean similarity per layer).
    curve_x : ndarray or list of shape (k,), optional
        The curve's x-axis (fraction of features removed, layer names, ...).
    extras : dict
        Metric-specific arrays (per-row intermediate values).
    method : str, optional
        The explanation's method.
    elapsed_s : float, optional
        Wall time of the metric.

    Attributes
    ----------
    mean : float
        Mean of the finite scores (NaN when none is finite).
    stderr : float
        Standard error of that mean (NaN with fewer than two finite scores).
    n_valid : int
        Number of finite scores.
    """

    name: str
    scores: np.ndarray
    higher_is_better: bool
    category: str
    params: dict[str, Any] = field(default_factory=dict)
    curve: np.ndarray | None = None
    curve_x: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    elapsed_s: float | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.curve is not None:
            self.curve = np.asarray(self.curve, dtype=np.float64)

    @property
    def n_valid(self) -> int:
        return int(np.isfinite(self.scores).sum())

    @property
    def mean(self) -> float:
        finite = self.scores[np.isfinite(self.scores)]
        return float(finite.mean()) if len(finite) else float("nan")

    @property
    def stderr(self) -> float:
        finite = self.scores[np.isfinite(self.scores)]
        if len(finite) < 2:
            return float("nan")
        return float(finite.std(ddof=1) / np.sqrt(len(finite)))

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        return (
            f"MetricResult({self.name} {arrow}: mean={self.mean:.4g} ± {self.stderr:.2g} "
            f"over {self.n_valid}/{len(self.scores)} rows)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (scores as a list, NaN as None)."""

        def clean(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "name": self.name,
            "category": self.category,
            "higher_is_better": self.higher_is_better,
            "method": self.method,
            "mean": clean(self.mean),
            "stderr": clean(self.stderr),
            "n_valid": self.n_valid,
            "scores": [clean(v) for v in self.scores],
            "params": {k: v if _jsonable(v) else repr(v) for k, v in self.params.items()},
        }


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class MetricInfo:
    """Registry entry of a metric: the function and what :func:`lumos.evaluate` needs to
    know about it."""

    name: str
    func: Callable[..., MetricResult]
    category: str
    higher_is_better: bool
    requires: frozenset[str]
    reference: str
    description: str

    def applicable(
        self,
        explanation: Explanation,
        model: Model,
        *,
        has_ground_truth: bool = False,
        has_explainer: bool = False,
    ) -> tuple[bool, str]:
        """Whether this metric can score ``explanation`` of ``model``, and why not."""
        ndim = len(explanation.input_shape)
        if "image" in self.requires and ndim not in (2, 3):
            return False, "needs images (rows of shape (H, W) or (C, H, W))"
        if "tabular" in self.requires and ndim != 1:
            return False, "needs tabular rows (shape (d,))"
        if "ground_truth" in self.requires and not has_ground_truth:
            return False, "needs ground_truth="
        if "differentiable" in self.requires and not model.differentiable:
            return False, "needs a differentiable (torch / Keras) model"
        if "explainer" in self.requires and not has_explainer:
            return False, "needs an explainer it can re-run"
        return True, ""


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(
    name: str,
    *,
    category: str,
    higher_is_better: bool,
    requires: tuple[str, ...] = (),
    reference: str = "",
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Register a metric function under ``name``.

    The wrapped function fills ``name``, ``category``, ``higher_is_better``, ``method``,
    ``params`` (its keyword arguments as called, defaults included) and ``elapsed_s`` of the
    :class:`MetricResult` it returns, so a metric body only computes scores.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown metric category {category!r}")
    unknown = set(requires) - set(REQUIREMENTS)
    if unknown:
        raise ValueError(f"unknown requirements {sorted(unknown)}")

    def decorate(func: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        sig = inspect.signature(func)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> MetricResult:
            start = time.perf_counter()
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                allowed = [p for p in sig.parameters if p not in ("model", "explanation")]
                raise InputError(
                    f"{name}: {exc}; its parameters are: {', '.join(allowed)}."
                ) from None
            bound.apply_defaults()
            result = func(*args, **kwargs)
            result.name = name
            result.category = category
            result.higher_is_better = higher_is_better
            expl = bound.arguments.get("explanation")
            if result.method is None and isinstance(expl, Explanation):
                result.method = expl.method
            params = {
                k: v
                for k, v in bound.arguments.items()
                if k not in ("model", "explanation", "ground_truth", "explainer")
            }
            explainer = bound.arguments.get("explainer")
            if explainer is not None:
                params["explainer"] = explainer if isinstance(explainer, str) else repr(explainer)
            result.params = {**params, **result.params}
            result.elapsed_s = time.perf_counter() - start
            return result

        first = (inspect.getdoc(func) or name).strip().splitlines()[0]
        info = MetricInfo(
            name=name,
            func=run,
            category=category,
            higher_is_better=higher_is_better,
            requires=frozenset(requires),
            reference=reference,
            description=first,
        )
        if name in _REGISTRY and _REGISTRY[name].func.__wrapped__ is not func:  # type: ignore[attr-defined]
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = info
        run.info = info  # type: ignore[attr-defined]
        return run

    return decorate


def get_metric(name: str) -> MetricInfo:
    """The registry entry of metric ``name`` (raises :class:`UnknownNameError`)."""
    check_name(name, _REGISTRY, kind="metric")
    return _REGISTRY[name]


def available_metrics(category: str | None = None) -> dict[str, str]:
    """Registered metric names with their one-line descriptions, by category order."""
    if category is not None:
        check_name(category, CATEGORIES, kind="metric category")
    order = {c: i for i, c in enumerate(CATEGORIES)}
    infos = sorted(_REGISTRY.values(), key=lambda m: (order[m.category], m.name))
    return {m.name: m.description for m in infos if category in (None, m.category)}


# ----------------------------------------------------------------------------- inputs
@dataclass
class Prepared:
    """A metric's validated inputs.

    Attributes
    ----------
    model : Model
    x : ndarray of shape (n, *input_shape), float64
        The explained rows (``explanation.data``).
    a : ndarray of shape (n, *input_shape), float64
        The attributions (``explanation.values``).
    target : ndarray of shape (n,), int64
    explanation : Explanation
    """

    model: Model
    x: np.ndarray
    a: np.ndarray
    target: np.ndarray
    explanation: Explanation
    #: The model object the caller passed (alive for the whole call, so its id is a safe
    #: cache key; a wrapper made here for a raw module is not).
    source: Any = None

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    def outputs(self, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs at the rows, (n, n_outputs), shared within an evaluation."""
        return shared(
            ("outputs", id(self.explanation), id(self.source)),
            lambda: self.model.evaluate(self.x, batch_size=batch_size),
        )

    def prediction(self, batch_size: int | None = None) -> np.ndarray:
        """``f(x)[target]`` per row, (n,)."""
        return self.outputs(batch_size)[np.arange(self.n), self.target]


def prepare(model: Any, explanation: Any, *, finite: bool = True) -> Prepared:
    """Validate a metric's ``model`` and ``explanation`` and return them as arrays.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Its ``data`` must match the model's input shape and its ``target`` the model's
        outputs.
    finite : bool, default True
        Refuse NaN / infinite attributions.

    Returns
    -------
    Prepared
    """
    if not isinstance(explanation, Explanation):
        raise InputError(
            f"explanation must be a lumos Explanation, got {type(explanation).__name__}; build "
            "one from arrays with lumos.Explanation(values=..., data=..., target=...)."
        )
    m = wrap(model)
    x, _ = m.check_input(explanation.data, name="explanation.data")
    a = explanation.values
    if finite and not np.all(np.isfinite(a)):
        bad = int((~np.isfinite(a.reshape(len(a), -1))).any(axis=1).sum())
        raise NonFiniteError(
            f"explanation.values has NaN or infinite entries in {bad} row(s); metrics need "
            "finite attributions (replace them, e.g. np.nan_to_num(values))."
        )
    target = np.asarray(explanation.target, dtype=np.int64)
    n_out = m.n_outputs
    if len(target) and (target.min() < 0 or target.max() >= n_out):
        raise InputError(
            f"explanation.target has indices outside the model's {n_out} outputs "
            f"(min {target.min()}, max {target.max()})."
        )
    return Prepared(model=m, x=np.asarray(x, dtype=np.float64), a=a, target=target,
                    explanation=explanation, source=model)  # fmt: skip


def target_outputs(
    model: Model,
    make_chunk: Callable[[int, int], np.ndarray],
    n_rows: int,
    target: np.ndarray,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """The target output of ``n_rows`` generated inputs, through the engine.

    Parameters
    ----------
    make_chunk : callable
        ``make_chunk(start, stop)`` returns inputs ``start..stop-1`` (stop - start,
        *input_shape).
    target : ndarray of int, shape (n_rows,)
        The output index kept for each input.

    Returns
    -------
    ndarray of shape (n_rows,), float64
    """
    target = np.asarray(target, dtype=np.int64)

    def select(start: int, stop: int, y: np.ndarray) -> np.ndarray:
        return y[np.arange(stop - start), target[start:stop]]

    out = model.evaluate_generated(make_chunk, n_rows, batch_size=batch_size, select=select)
    return out[:, 0]


# ----------------------------------------------------------------------------- orderings
def feature_order(a: np.ndarray, *, descending: bool = True) -> np.ndarray:
    """Feature indices of each row sorted by attribution (flattened), ties by index.

    Parameters
    ----------
    a : ndarray of shape (n, *input_shape)
    descending : bool, default True
        Most relevant first (MoRF); ``False``: least relevant first.

    Returns
    -------
    ndarray of int, shape (n, n_features)
    """
    flat = a.reshape(len(a), -1)
    key = -flat if descending else flat
    return np.argsort(key, axis=1, kind="stable")


def inverse_permutation(order: np.ndarray) -> np.ndarray:
    """Position of every feature in ``order`` (n, d): ``pos[i, f]`` is the rank of feature
    ``f`` in row ``i``."""
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), 1)
    return pos


def ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) along the last axis."""
    from scipy.stats import rankdata

    return rankdata(v, axis=-1)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b``.

    Parameters
    ----------
    a, b : ndarray of shape (n, ...)

    Returns
    -------
    ndarray of shape (n,); NaN where a row is constant
    """
    a2, b2 = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return pearson_rows(ranks(a2), ranks(b2))


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (n,); NaN where
    a row is constant."""
    a2 = a.reshape(len(a), -1).astype(np.float64)
    b2 = b.reshape(len(b), -1).astype(np.float64)
    a2 = a2 - a2.mean(axis=1, keepdims=True)
    b2 = b2 - b2.mean(axis=1, keepdims=True)
    den = np.sqrt((a2**2).sum(axis=1) * (b2**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a2 * b2).sum(axis=1) / den
    r[den == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


# ----------------------------------------------------------------------------- substrates
SUBSTRATES = ("zeros", "mean", "blurred", "uniform")


def substrate(
    baseline: Any,
    x: np.ndarray,
    *,
    random_state: Any = None,
    blur_sigma: float | None = None,
) -> np.ndarray:
    """What a perturbation puts in place of removed features, per row.

    Parameters
    ----------
    baseline : "zeros", "mean", "blurred", "uniform", float or array
        ``"zeros"``: 0; ``"mean"``: each row's own mean value (over all its features);
        ``"blurred"``: each image Gaussian-blurred (``blur_sigma`` pixels, default
        ``max(H, W) / 8``); ``"uniform"``: uniform noise over each row's range (drawn per
        row from ``random_state``); a float fills every feature; an array of shape
        ``input_shape`` (one for all rows) or (n, *input_shape).
    x : ndarray of shape (n, *input_shape)

    Returns
    -------
    ndarray of shape (n, *input_shape), float64
    """
    from lumos.attribution._baselines import blur

    n = len(x)
    if isinstance(baseline, str):
        baseline = check_name(baseline, SUBSTRATES, kind="baseline")
        if baseline == "zeros":
            return np.zeros_like(x, dtype=np.float64)
        if baseline == "mean":
            flat = x.reshape(n, -1).mean(axis=1)
            return np.broadcast_to(flat.reshape(n, *(1,) * (x.ndim - 1)), x.shape).astype(
                np.float64
            )
        if baseline == "blurred":
            return blur(np.asarray(x, dtype=np.float64), blur_sigma)
        gens = row_generators(random_state, n)
        flat = x.reshape(n, -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        out = np.stack([g.uniform(lo[i], hi[i], size=flat.shape[1]) for i, g in enumerate(gens)])
        return out.reshape(x.shape)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not np.isfinite(baseline):
            raise InputError(f"baseline must be finite, got {baseline}.")
        return np.full(x.shape, float(baseline))
    arr = np.asarray(baseline, dtype=np.float64)
    if arr.shape == x.shape[1:]:
        arr = np.broadcast_to(arr, x.shape)
    if arr.shape != x.shape:
        raise ShapeError(
            f"baseline must be a name ({', '.join(SUBSTRATES)}), a float, or an array of shape "
            f"{x.shape[1:]} or {x.shape}; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError("baseline has NaN or infinite entries.")
    return np.array(arr)


def baseline_key(baseline: Any) -> Hashable:
    """A hashable stand-in for a baseline specification (for the evaluation cache)."""
    if isinstance(baseline, (str, numbers.Real)) or baseline is None:
        return baseline
    arr = np.ascontiguousarray(np.asarray(baseline, dtype=np.float64))
    return ("array", arr.shape, hash(arr.tobytes()))


# ----------------------------------------------------------------------------- randomness
def row_seeds(random_state: Any, n: int) -> list[np.random.SeedSequence]:
    """One independent seed per row (a row's draws then depend neither on the other rows
    nor on ``batch_size``)."""
    rng = check_random_state(random_state)
    return np.random.SeedSequence(rng.integers(0, 2**63, size=4)).spawn(n)


def row_generators(random_state: Any, n: int) -> list[np.random.Generator]:
    """One generator per row from :func:`row_seeds`."""
    return [np.random.default_rng(s) for s in row_seeds(random_state, n)]


def seed_key(random_state: Any) -> Hashable:
    """A hashable stand-in for ``random_state`` for the evaluation cache: ints and None
    (None never matches: fresh entropy each call), generators by identity and state."""
    if random_state is None:
        return ("fresh", object())
    if isinstance(random_state, np.random.Generator):
        return ("generator", id(random_state), repr(random_state.bit_generator.state))
    return random_state


# ----------------------------------------------------------------------------- explainers
def resolve_explainer(
    model: Model, explanation: Explanation, explainer: Any = None
) -> Callable[..., np.ndarray]:
    """A function ``explain(x, target, random_state=None) -> values`` that re-runs the
    explainer behind ``explanation`` (or ``explainer``) on new inputs.

    Parameters
    ----------
    explainer : None, str, Explainer or callable
        ``None``: the explainer that made the explanation when it was made in this session
        (kept in memory, not saved), else the explanation's own method rebuilt from its
        recorded parameters (it must be a registered method); a registered name (with the
        explanation's parameters when the name is its
        method, the method's defaults otherwise); an :class:`~lumos.attribution.Explainer`
        instance; or a callable ``f(x, target) -> values`` (n, *input_shape) for explanations
        made elsewhere.
    """
    from lumos.attribution._base import _REGISTRY, Explainer, get_explainer, parameter_names

    explainer = own_explainer(explanation, explainer)
    if explainer is None:
        if explanation.method not in _REGISTRY:
            raise InputError(
                f"this metric re-runs the explainer, and the explanation's method "
                f"{explanation.method!r} is not a lumos method; pass explainer= (a method name, "
                "an Explainer, or a function f(x, target) -> attributions)."
            )
        explainer = explanation.method
    if isinstance(explainer, str):
        cls = get_explainer(explainer)
        params: dict[str, Any] = {}
        if explainer == explanation.method:
            allowed = set(parameter_names(cls))
            params = {k: v for k, v in explanation.params.items() if k in allowed}
            recorded = sorted(
                k for k, v in params.items() if isinstance(v, str) and v.startswith("<")
            )
            if recorded:
                raise InputError(
                    f"the explanation recorded {recorded} only by type and shape, so its "
                    f"{explainer!r} explainer cannot be rebuilt from it; pass the explainer "
                    f"itself, e.g. explainer=lumos.attribution.get_explainer({explainer!r})"
                    f"(model, {recorded[0]}=...)."
                )
        stochastic = bool(getattr(cls, "stochastic", False))

        def run_named(x: np.ndarray, target: np.ndarray, random_state: Any = None) -> np.ndarray:
            kw = dict(params)
            if stochastic and random_state is not None:
                kw["random_state"] = random_state
            return cls(model, **kw).attributions(x, target=target)

        run_named.stochastic = stochastic  # type: ignore[attr-defined]
        return run_named
    if isinstance(explainer, Explainer):
        inst = explainer

        def run_instance(x: np.ndarray, target: np.ndarray, random_state: Any = None) -> np.ndarray:
            if inst.stochastic and random_state is not None:
                import copy

                other = copy.copy(inst)
                other.random_state = random_state  # type: ignore[attr-defined]
                return other.attributions(x, target=target)
            return inst.attributions(x, target=target)

        run_instance.stochastic = inst.stochastic  # type: ignore[attr-defined]
        return run_instance
    if callable(explainer):
        takes_seed = "random_state" in callable_parameters(explainer)

        def run_callable(x: np.ndarray, target: np.ndarray, random_state: Any = None) -> np.ndarray:
            if takes_seed:
                out = explainer(x, target, random_state=random_state)
            else:
                out = explainer(x, target)
            out = np.asarray(getattr(out, "values", out), dtype=np.float64)
            if out.shape != x.shape:
                raise ShapeError(
                    f"the explainer returned attributions of shape {out.shape} for inputs of "
                    f"shape {x.shape}; it must return one value per input element."
                )
            return out

        run_callable.stochastic = takes_seed  # type: ignore[attr-defined]
        return run_callable
    raise InputError(
        "explainer must be None, a method name, a lumos Explainer or a function "
        f"f(x, target) -> attributions; got {type(explainer).__name__}."
    )


def own_explainer(explanation: Explanation, explainer: Any) -> Any:
    """``explainer``, or when it is ``None`` the Explainer instance that made
    ``explanation`` in this session (kept in memory by ``Explainer.explain``, never saved),
    or ``None`` for explanations loaded from a file or made elsewhere. Metrics that rebuild
    the explainer on another model (a randomised or shifted copy) rebuild this instance."""
    from lumos.attribution._base import Explainer

    if explainer is None:
        own = getattr(explanation, "_explainer", None)
        if isinstance(own, Explainer):
            return own
    return explainer


def rerun_problem(explanation: Explanation, explainer: Any = None) -> str | None:
    """Why the explainer behind ``explanation`` cannot be re-run (``None`` when it can):
    no explainer given and none in memory, and either the method is not a lumos method or
    some of its parameters were recorded only by type and shape (a background array)."""
    from lumos.attribution._base import _REGISTRY

    if own_explainer(explanation, explainer) is not None:
        return None
    if explanation.method not in _REGISTRY:
        return "needs an explainer it can re-run"
    recorded = sorted(
        k for k, v in explanation.params.items() if isinstance(v, str) and v.startswith("<")
    )
    if recorded:
        return (
            f"the explanation recorded {recorded} only by type and shape, so its explainer "
            "cannot be rebuilt: pass explainers={name: an Explainer}"
        )
    return None


def callable_parameters(f: Callable[..., Any]) -> tuple[str, ...]:
    """Parameter names of a callable (empty when it has no inspectable signature)."""
    try:
        return tuple(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        return ()


def explainer_key(explanation: Explanation, explainer: Any) -> Hashable:
    """A hashable stand-in for the explainer a metric re-runs (for the evaluation cache)."""
    if explainer is None:
        return ("own", id(explanation))
    if isinstance(explainer, str):
        return ("name", explainer, id(explanation))
    return ("object", id(explainer))


# ----------------------------------------------------------------------------- checks
def check_fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """A float in (low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a number in ({low}, {high}], got {value!r}.")
    if not low < float(value) <= high:
        raise InputError(f"{name} must be in ({low}, {high}], got {value}.")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def top_k_count(k: Any, d: int, name: str = "k") -> int:
    """``k`` as a feature count: an int in [1, d] or a fraction in (0, 1] of the ``d``
    features (rounded up)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise InputError(
            f"{name} must be an int number of features in [1, {d}] or a fraction in (0, 1], "
            f"got {k!r}."
        )
    if isinstance(k, numbers.Integral):
        if not 1 <= int(k) <= d:
            raise InputError(
                f"{name} must be between 1 and the number of features {d}, got {k}; "
                "or pass a fraction in (0, 1]."
            )
        return int(k)
    k = float(k)
    if not (np.isfinite(k) and 0.0 < k <= 1.0):
        raise InputError(
            f"{name} given as a float is a fraction of the {d} features and must be in (0, 1], "
            f"got {k}; pass an int for a number of features."
        )
    return max(1, min(d, math.ceil(k * d - 1e-9)))


def check_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A positive int, at most ``maximum`` when given."""
    v = check_positive_int(value, name=name, minimum=minimum)
    if maximum is not None and v > maximum:
        raise InputError(f"{name} must be at most {maximum} here, got {v}.")
    return v


# ----------------------------------------------------------------------------- sharing
_CACHE: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar(
    "lumos_metric_cache", default=None
)


@contextmanager
def sharing() -> Iterator[dict[Hashable, Any]]:
    """Within this block, :func:`shared` computations with equal keys run once.

    :func:`lumos.evaluate` scores every metric inside one block, so metrics that need the
    same model outputs (the rows' predictions, the same perturbation curve, the same
    re-explained noisy inputs) compute them once.
    """
    token = _CACHE.set({} if _CACHE.get() is None else _CACHE.get())
    try:
        yield _CACHE.get()  # type: ignore[misc]
    finally:
        _CACHE.reset(token)


def shared(key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``, memoised under ``key`` while a :func:`sharing` block is active.

    Keys must identify everything the result depends on (the explanation by ``id``, the
    parameters, the seed via :func:`seed_key`); outside a block nothing is kept.
    """
    cache = _CACHE.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def unknown_name(name: str, known: list[str], kind: str) -> UnknownNameError:
    return UnknownNameError(f"unknown {kind} {name!r}; choose one of: {', '.join(known)}.")
