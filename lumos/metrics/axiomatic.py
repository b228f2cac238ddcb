"""Axioms an attribution should satisfy: completeness, non-sensitivity, input invariance.

- :func:`completeness` (Sundararajan et al., 2017): the attributions sum to the change of
  the output between a reference input and the input, up to a tolerance.
- :func:`non_sensitivity` (Nguyen & Martínez, 2020): the features with zero attribution
  are exactly those whose removal leaves the output unchanged.
- :func:`input_invariance` (Kindermans et al., 2017): shifting the input by a constant and
  compensating the shift in the model's first layer (so every output is unchanged) must
  leave the attributions unchanged.
"""

from __future__ import annotations

import copy
import functools
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from lumos.errors import InputError, ModelError, NonFiniteError, ShapeError
from lumos.explanation import Explanation
from lumos.metrics._base import (
    SUBSTRATES,
    MetricResult,
    Prepared,
    baseline_key,
    check_bool,
    own_explainer,
    prepare,
    register_metric,
    seed_key,
    shared,
    substrate,
    target_outputs,
)
from lumos.models.base import Model, wrap

#: Rows of the input used to locate the first affine layer and measure the shift it sees.
_PROBE_ROWS = 32
#: How far (relative to the output scale) the shifted model may be from the model.
_OUTPUT_RTOL = 1e-4


# ----------------------------------------------------------------------------- helpers
def _check_tolerance(value: Any, name: str, *, below_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}.")
    value = float(value)
    if value < 0 or (below_one and value >= 1):
        span = "in [0, 1)" if below_one else ">= 0"
        raise InputError(f"{name} must be {span}, got {value}.")
    return value


def _check_share(value: Any, name: str) -> float:
    """A threshold in (0, 1): a share of a row's largest magnitude."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a number in (0, 1), got {value!r}.")
    if not 0 < float(value) < 1:
        raise InputError(
            f"{name} must be in (0, 1) (a share of the row's largest |attribution|), got {value}."
        )
    return float(value)


def _check_positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}.")
    if float(value) <= 0:
        raise InputError(f"{name} must be > 0, got {value}.")
    return float(value)


def _check_baseline(baseline: Any) -> None:
    """Fail early on a baseline that :func:`substrate` would refuse."""
    if isinstance(baseline, str) and baseline not in SUBSTRATES:
        raise InputError(
            f"unknown baseline {baseline!r}; use one of {', '.join(SUBSTRATES)}, a float, or an "
            "array of shape input_shape or (n, *input_shape)."
        )


def _is_shared_baseline(baseline: Any, input_shape: tuple[int, ...]) -> bool:
    """Whether ``baseline`` is one input for every row (evaluated once)."""
    if isinstance(baseline, str):
        return baseline == "zeros"
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        return True
    return np.shape(baseline) == tuple(input_shape)


def _reference_outputs(
    p: Prepared, baseline: Any, random_state: Any, batch_size: int | None
) -> np.ndarray:
    """``f(x')[target]`` per row (n,) for a baseline specification (see :func:`substrate`)."""
    n = p.n

    def compute() -> np.ndarray:
        if _is_shared_baseline(baseline, p.input_shape):
            base = substrate(baseline, p.x[:1])
            out = p.model.evaluate(base, batch_size=batch_size)[0]
            return out[p.target]
        base = substrate(baseline, p.x, random_state=random_state)
        return target_outputs(
            p.model, lambda a, b: base[a:b], n, p.target, batch_size=batch_size
        ).reshape(n)

    key = ("reference_outputs", id(p.explanation), id(p.source), baseline_key(baseline))
    if isinstance(baseline, str) and baseline == "uniform":
        key = (*key, seed_key(random_state))
    return shared(key, compute)


# ----------------------------------------------------------------------------- completeness
@register_metric(
    "completeness",
    category="axiomatic",
    higher_is_better=False,
    reference="Sundararajan et al. (2017)",
)
def completeness(
    model: Any,
    explanation: Explanation,
    *,
    baseline: Any = None,
    rtol: float = 0.05,
    atol: float = 1e-6,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Gap between the sum of the attributions and f(x) − f(baseline); passes within rtol.

    Completeness (Sundararajan et al., 2017; "summation to delta", Shrikumar et al., 2017;
    "conservation", Montavon et al., 2018) asks that the attributions of a row add up to
    the change of the target output between a reference input ``x'`` and the input::

        gap = |Σ_i a_i − (f_t(x) − f_t(x'))|
        passed = gap ≤ atol + rtol · |f_t(x) − f_t(x')|

    Integrated gradients satisfy it up to the quadrature error (the paper checks it within
    5%, the default ``rtol``); Shapley estimators satisfy the analogue with
    ``f_t(x') = E f_t(background)``; gradients do not.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape) of the rows ``data`` for the outputs ``target``.
    baseline : None, "zeros", "mean", "blurred", "uniform", float or array, optional
        The reference ``x'``. ``None`` (default): the reference the explanation records,
        ``explanation.base_value`` (the output at the explainer's baseline, or the mean
        output over its background), and the zero input when it records none (saliency,
        explanations made elsewhere); ``extras["reference"]`` says which. Otherwise a
        substrate as in :func:`lumos.metrics._base.substrate`: zeros, each row's own mean,
        each image blurred, uniform noise over the row's range (drawn from
        ``random_state``), a constant, or an array of shape ``input_shape`` /
        (n, *input_shape).
    rtol : float, default 0.05
        Relative tolerance of ``passed``, a share of ``|f_t(x) − f_t(x')|``.
    atol : float, default 1e-6
        Absolute tolerance of ``passed`` (float32 rounding of the outputs).
    random_state : int, numpy Generator or None
        Only for ``baseline="uniform"`` (one draw per row, independent of ``batch_size``).
    batch_size : int, optional
        Rows per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,) the gap (lower is better, 0 for an exact decomposition) and
        ``extras``: ``passed`` (n,) bool, ``sum_attributions`` (n,), ``output_change`` (n,)
        ``f_t(x) − f_t(x')``, ``relative_gap`` (n,) gap over ``|output_change|`` (inf when
        the output does not change but the attributions do not sum to 0), ``reference``
        (str).

    Notes
    -----
    quantus.Completeness (0.6.0) tests ``Σa == f(x) − f(x')`` with float equality (almost
    never true for a float32 model, whatever the method), normalises the attributions by
    their batch maximum by default (``normalise=True``, which breaks the sum) and its
    "black" baseline is each row's minimum, not zero. lumos reports the gap itself and
    passes it within a tolerance; with ``rtol=atol=0`` on inputs where every sum is exact
    in floating point, ``passed`` equals quantus' boolean (``normalise=False``).

    References
    ----------
    Sundararajan, M., Taly, A. & Yan, Q. (2017). Axiomatic attribution for deep networks.
    ICML.
    """
    rtol = _check_tolerance(rtol, "rtol")
    atol = _check_tolerance(atol, "atol")
    if baseline is not None:
        _check_baseline(baseline)
    p = prepare(model, explanation)
    n = p.n
    f_x = p.prediction(batch_size)
    if baseline is None and explanation.base_value is not None:
        f_ref = np.asarray(explanation.base_value, dtype=np.float64)
        if not np.all(np.isfinite(f_ref)):
            raise NonFiniteError(
                "explanation.base_value has NaN or infinite entries; pass baseline= to "
                "evaluate the reference output instead."
            )
        reference = "explanation.base_value"
    else:
        spec = "zeros" if baseline is None else baseline
        f_ref = _reference_outputs(p, spec, random_state, batch_size)
        reference = spec if isinstance(spec, str) else "given baseline"
    total = p.a.reshape(n, -1).sum(axis=1)
    change = f_x - f_ref
    gap = np.abs(total - change)
    passed = gap <= atol + rtol * np.abs(change)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(change != 0, gap / np.abs(change), np.where(gap == 0, 0.0, np.inf))
    extras = {
        "passed": passed,
        "sum_attributions": total,
        "output_change": change,
        "relative_gap": relative,
        "reference": reference,
    }
    return MetricResult(name="", scores=gap, higher_is_better=False, category="", extras=extras)


# ----------------------------------------------------------------------------- non-sensitivity
def single_feature_outputs(
    p: Prepared, baseline: Any, random_state: Any, batch_size: int | None
) -> np.ndarray:
    """``f_t(x with feature i set to its baseline value)`` for every row and feature.

    All ``n × d`` perturbed inputs are built chunk by chunk where the model runs (one
    element overwritten per input) and sent through the engine; shared within a
    :func:`lumos.metrics._base.sharing` block under the key
    ``("single_feature_outputs", id(explanation), id(model), baseline_key(baseline))``
    (plus the seed for ``baseline="uniform"``).

    Returns
    -------
    ndarray of shape (n, d), d = number of scalar features
    """
    n, d, shape = p.n, p.n_features, p.input_shape

    def compute() -> np.ndarray:
        base = substrate(baseline, p.x, random_state=random_state)
        ops = p.model.array_ops()
        x_dev = ops.asarray(p.x.reshape(n, d))
        b_dev = ops.asarray(base.reshape(n, d))

        def make_chunk(start: int, stop: int) -> Any:
            k = ops.arange(start, stop)
            rows, feat = k // d, k % d
            chunk = x_dev[rows]
            chunk[ops.arange(0, stop - start), feat] = b_dev[rows, feat]
            return chunk.reshape((stop - start, *shape))

        out = target_outputs(
            p.model, make_chunk, n * d, np.repeat(p.target, d), batch_size=batch_size
        )
        return out.reshape(n, d)

    key = ("single_feature_outputs", id(p.explanation), id(p.source), baseline_key(baseline))
    if isinstance(baseline, str) and baseline == "uniform":
        key = (*key, seed_key(random_state))
    return shared(key, compute)


@register_metric(
    "non_sensitivity",
    category="axiomatic",
    higher_is_better=False,
    reference="Nguyen & Martínez (2020)",
)
def non_sensitivity(
    model: Any,
    explanation: Explanation,
    *,
    baseline: Any = "zeros",
    eps: float = 1e-5,
    output_eps: float = 1e-5,
    relative: bool = True,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Features where "zero attribution" and "the output ignores it" disagree; 0 is ideal.

    Non-sensitivity (Nguyen & Martínez, 2020, after the null-player properties of Ancona
    et al. 2019 and Montavon et al. 2018): a feature the model does not respond to must get
    zero attribution, and a feature with zero attribution must be one the model does not
    respond to. For each row, feature ``i`` is

    - *zero-attributed* when ``|a_i| < eps · max_j |a_j|`` (``relative=True``) or
      ``|a_i| < eps`` (``relative=False``);
    - *insensitive* when setting it to its baseline value leaves the target output within
      ``output_eps``: ``|f_t(x) − f_t(x with x_i := x'_i)| < output_eps``.

    The score is the size of the symmetric difference of the two sets::

        #({zero-attributed} Δ {insensitive})

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape); every scalar element is one feature (``n × d``
        perturbed inputs are evaluated, in chunks).
    baseline : "zeros", "mean", "blurred", "uniform", float or array, default "zeros"
        The value a removed feature takes (see :func:`lumos.metrics._base.substrate`). A
        feature whose value already equals its baseline cannot move the output, so it is
        insensitive at this row.
    eps : float, default 1e-5
        Zero-attribution threshold, in (0, 1) with ``relative=True``.
    output_eps : float, default 1e-5
        Output-change threshold, in the units of the model's output (> 0).
    relative : bool, default True
        Compare ``|a_i|`` with ``eps`` times the row's largest ``|a|`` (scale-free) instead
        of with ``eps``. An all-zero row has every feature zero-attributed either way.
    random_state : int, numpy Generator or None
        Only for ``baseline="uniform"``.
    batch_size : int, optional
        Rows per model call.

    Returns
    -------
    MetricResult
        ``scores`` (n,) the counts (lower is better) and ``extras``:
        ``insensitive_attributed`` (n,) features the output ignores that get a non-zero
        attribution (violations of the null-player axiom itself), ``zero_but_sensitive``
        (n,) zero-attributed features the output responds to, ``n_insensitive`` (n,) and
        ``output_change`` (n, *input_shape) ``|Δf_t|`` of each feature's removal.

    Notes
    -----
    Follows quantus.NonSensitivity (0.6.0) — the same symmetric difference and strict
    thresholds — with three differences: quantus normalises the attributions by the
    batch's largest ``|a|`` (a row's count then depends on the other rows; lumos uses each
    row's own maximum, equal to quantus on a batch of one row), its default "black"
    baseline is each row's minimum rather than zero, and its ``features_in_step > 1``
    compares arrays of different lengths (one entry per step against one per feature);
    lumos removes one scalar feature at a time.

    References
    ----------
    Nguyen, A. & Rodríguez Martínez, M. (2020). On quantitative aspects of model
    interpretability. arXiv:2007.07584.
    """
    relative = check_bool(relative, "relative")
    eps = _check_share(eps, "eps") if relative else _check_positive(eps, "eps")
    output_eps = _check_positive(output_eps, "output_eps")
    _check_baseline(baseline)
    p = prepare(model, explanation)
    n = p.n
    mag = np.abs(p.a.reshape(n, -1))
    if relative:
        top = mag.max(axis=1, keepdims=True)
        mag = np.divide(mag, top, out=np.zeros_like(mag), where=top > 0)
    zero = mag < eps
    f_x = p.prediction(batch_size)
    removed = single_feature_outputs(p, baseline, random_state, batch_size)
    change = np.abs(removed - f_x[:, None])
    insensitive = change < output_eps
    extras = {
        "insensitive_attributed": (insensitive & ~zero).sum(axis=1),
        "zero_but_sensitive": (zero & ~insensitive).sum(axis=1),
        "n_insensitive": insensitive.sum(axis=1),
        "output_change": change.reshape(p.x.shape),
    }
    scores = (zero ^ insensitive).sum(axis=1).astype(np.float64)
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)


# ----------------------------------------------------------------------------- input invariance
@register_metric(
    "input_invariance",
    category="axiomatic",
    higher_is_better=True,
    requires=("explainer", "differentiable"),
    reference="Kindermans et al. (2017)",
)
def input_invariance(
    model: Any,
    explanation: Explanation,
    *,
    shift: Any = -1.0,
    explainer: Any = None,
    shift_baseline: bool = False,
    shifted_model: Any = None,
    tolerance: float = 1e-3,
    batch_size: int | None = None,
) -> MetricResult:
    """Share of features whose attribution survives a constant input shift the model undoes.

    Kindermans et al. (2017) shift every input by a constant ``m`` (a change of
    pre-processing) and subtract ``W m`` from the first layer's bias, so the shifted model
    ``g`` gives ``g(x + m) = f(x)`` for every ``x``: the two models are the same function up
    to the shift. An input-invariant explainer attributes ``(g, x + m)`` as it did
    ``(f, x)``. Gradients (saliency) are invariant; input × gradient is not (it changes by
    ``m ⊙ ∇f``); integrated gradients are invariant only when the reference moves with the
    data (``shift_baseline=True``), not with a fixed zero baseline. Per row, feature ``i``
    is unchanged when::

        |a_i − a'_i| ≤ tolerance · max(max_j |a_j|, max_j |a'_j|)

    and the score is the share of unchanged features (1 = invariant).

    Parameters
    ----------
    model : object
        A PyTorch module (or a lumos Model around one) whose first Linear / Conv layer can
        absorb the shift — unless ``shifted_model`` is given.
    explanation : Explanation
        The attributions ``a`` of ``(model, data)`` for ``target``.
    shift : float or array broadcastable to input_shape, default -1.0
        The constant ``m`` added to every input (Kindermans et al. map [0, 1] images to
        [-1, 0]); one value per channel is ``shift`` of shape (C, 1, 1). Must not be all
        zeros.
    explainer : None, str, Explainer or callable, optional
        What is re-run on ``(g, x + m)``: ``None`` the explanation's own registered method
        with its recorded parameters; a method name; a lumos ``Explainer`` (rebuilt on
        ``g`` with the same parameters; a ``layer`` given as a module is mapped to the
        copy's); or a function ``f(model, x, target) -> values`` that is called with
        the shifted torch module (for attributions made with another library). Stochastic
        explainers need a fixed integer ``random_state`` so both runs draw the same numbers.
    shift_baseline : bool, default False
        Move the explainer's references with the data: its ``background`` rows by ``m`` and
        its ``baseline`` (zeros, a constant or an array) by ``m``; ``"mean"`` and
        ``"blurred"`` baselines follow the shifted data by themselves. ``False`` keeps the
        explainer exactly as configured (a zero baseline stays zero: the case the paper
        shows to fail).
    shifted_model : object, optional
        A model ``g`` with ``g(x + m) = f(x)``, for models lumos cannot compensate itself
        (Keras, ONNX, a first layer that is not affine); checked on the rows.
    tolerance : float, default 1e-3
        Relative tolerance per feature (see above), in [0, 1); 0 demands exact equality.
    batch_size : int, optional
        Rows per model call of the output check.

    Returns
    -------
    MetricResult
        ``scores`` (n,) share of unchanged features (higher is better) and ``extras``:
        ``invariant`` (n,) bool (every feature unchanged), ``max_abs_diff`` (n,),
        ``shifted_values`` (n, *input_shape) the attributions ``a'``, ``output_gap`` (n,)
        ``max |g(x + m) − f(x)|`` over the outputs, ``compensation`` (str): ``"bias"``
        (the first layer's bias absorbs ``W m``, as in the paper), ``"output_offset"``
        (the exact offset is subtracted from the first layer's output: convolutions with
        zero padding see the shift only partly at the borders, or the layer has no bias)
        or ``"given"``.

    Raises
    ------
    ModelError
        When the model cannot be compensated (not a torch module, no Linear / Conv layer,
        layers before it that do not pass a constant shift on) and no ``shifted_model``
        is given, or when the compensated copy does not reproduce the model's outputs.
    InputError
        When a given ``shifted_model`` does not reproduce them, or the explainer cannot be
        re-run as it was (a method recorded with a background array, an unseeded
        stochastic explainer, a function ``f(x, target)`` bound to the original model).

    Notes
    -----
    The user's model is never modified: the shifted model is a deep copy. The copy is
    checked on the rows (``g(x + m)`` within 1e-4 of ``f(x)``, relative to the output
    scale) before the explainer is re-run.

    quantus.InputInvariance (0.6.0) changes the bias of the first *registered* submodule
    (``named_modules()[1]``, a container in many models), reads ``out_channels`` (so a
    Linear first layer fails), and uses the smallest per-channel offset, which is wrong at
    the borders of a zero-padded convolution (the shifted model's outputs change); its
    score is one boolean per row (``np.isclose`` at ``atol=1e-4``). Where it works (a first
    convolution without padding) lumos' shifted model gives the same outputs and ``invariant``
    equals quantus' booleans.

    References
    ----------
    Kindermans, P.-J., Hooker, S., Adebayo, J., Alber, M., Schütt, K. T., Dähne, S.,
    Erhan, D. & Kim, B. (2019). The (un)reliability of saliency methods. In Explainable
    AI: Interpreting, Explaining and Visualizing Deep Learning (arXiv:1711.00867, 2017).
    """
    tolerance = _check_tolerance(tolerance, "tolerance", below_one=True)
    shift_baseline = check_bool(shift_baseline, "shift_baseline")
    p = prepare(model, explanation)
    m = _check_shift(shift, p.input_shape)
    x_shifted = p.x + m
    if shifted_model is not None:
        g = wrap(shifted_model)
        how = "given"
    else:
        g, how = compensated_copy(p.model, p.x, m)
    f_x = p.outputs(batch_size)
    g_x = g.evaluate(x_shifted, batch_size=batch_size)
    if g_x.shape != f_x.shape:
        raise ModelError(
            f"the shifted model returns {g_x.shape[1]} outputs and the model {f_x.shape[1]}; "
            "shifted_model must be the same network with its first layer compensated."
        )
    output_gap = np.abs(g_x - f_x).max(axis=1)
    limit = _OUTPUT_RTOL * max(1.0, float(np.abs(f_x).max()))
    if np.any(output_gap > limit):
        worst = float(output_gap.max())
        if how == "given":
            raise InputError(
                f"shifted_model(x + shift) differs from model(x) by up to {worst:.3g} on the "
                "explained rows; it must undo the shift exactly (subtract W·shift from the "
                "first layer's bias)."
            )
        raise ModelError(
            f"the compensated copy of the model differs from it by up to {worst:.3g} on the "
            "explained rows: what comes before its first Linear / Conv layer does not pass a "
            "constant shift on. Pass shifted_model= (a model g with g(x + shift) = model(x))."
        )
    run = _shifted_explainer(p, explainer, g, m, shift_baseline)
    a_shifted = np.asarray(run(x_shifted, p.target), dtype=np.float64)
    if a_shifted.shape != p.a.shape:
        raise ShapeError(
            f"the re-run explainer returned attributions of shape {a_shifted.shape}; the "
            f"explanation has {p.a.shape}."
        )
    a = p.a.reshape(p.n, -1)
    b = a_shifted.reshape(p.n, -1)
    diff = np.abs(a - b)
    scale = np.maximum(np.abs(a).max(axis=1), np.abs(b).max(axis=1))
    unchanged = diff <= tolerance * scale[:, None]
    extras = {
        "invariant": unchanged.all(axis=1),
        "max_abs_diff": diff.max(axis=1),
        "shifted_values": a_shifted,
        "output_gap": output_gap,
        "compensation": how,
    }
    scores = unchanged.mean(axis=1)
    return MetricResult(name="", scores=scores, higher_is_better=True, category="", extras=extras)


def _check_shift(shift: Any, input_shape: tuple[int, ...]) -> np.ndarray:
    """``shift`` broadcast to a float64 array of shape ``input_shape``."""
    if isinstance(shift, bool):
        raise InputError(f"shift must be a number or an array of shape {input_shape}, got bool.")
    try:
        arr = np.asarray(shift, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"shift must be a number or an array of shape {input_shape}, got {shift!r}."
        ) from None
    try:
        arr = np.broadcast_to(arr, input_shape)
    except ValueError:
        raise ShapeError(
            f"shift has shape {arr.shape}; pass a number or an array of one input's shape "
            f"{input_shape} (or one that broadcasts to it, e.g. one value per channel)."
        ) from None
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError("shift has NaN or infinite entries.")
    if not np.any(arr != 0):
        raise InputError("shift is zero everywhere, which tests nothing; use e.g. shift=-1.0.")
    return np.array(arr)


# ----------------------------------------------------------------------------- shifted model
class _FoundLayer(Exception):
    """Raised from a pre-hook to stop the forward pass at the first affine layer."""


def _affine_types() -> tuple[type, ...]:
    import torch

    return (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _first_affine_input(module: Any, forward: Callable[[Any], Any], x: Any) -> tuple[str, Any]:
    """Name of the first Linear / Conv layer ``forward(x)`` runs, and the input it gets."""
    found: dict[str, Any] = {}

    def hook(name: str, _mod: Any, args: tuple[Any, ...]) -> None:
        found["name"], found["input"] = name, args[0].detach()
        raise _FoundLayer

    handles = [
        m.register_forward_pre_hook(functools.partial(hook, name))
        for name, m in module.named_modules()
        if isinstance(m, _affine_types())
    ]
    try:
        forward(x)
    except _FoundLayer:
        pass
    finally:
        for h in handles:
            h.remove()
    if "name" not in found:
        raise ModelError(
            "the model runs no Linear / Conv layer that could absorb the input shift; pass "
            "shifted_model= (a model g with g(x + shift) = model(x))."
        )
    return found["name"], found["input"]


def compensated_copy(model: Model, x: np.ndarray, m: np.ndarray) -> tuple[Model, str]:
    """A copy ``g`` of a torch-backed model with ``g(x + m) = f(x)`` (Kindermans et al.).

    The first Linear / Conv layer the forward pass reaches receives ``u(x)``; what comes
    before it (flattening, a ``preprocess`` hint, a fixed scaling) must pass the shift on
    as a constant ``δ = u(x + m) − u(x)`` (checked on up to 32 rows). The layer then
    absorbs ``L(δ) − L(0)``: in its bias when that offset is the same at every position
    (Linear layers; convolutions without zero padding), else as an offset subtracted from
    its output by a forward hook on the copy.

    Parameters
    ----------
    model : Model
        A lumos model around a ``torch.nn.Module``; left untouched.
    x : ndarray of shape (n, *input_shape)
        Rows on which the shift is measured.
    m : ndarray of shape input_shape

    Returns
    -------
    (Model, str)
        The shifted model and ``"bias"`` or ``"output_offset"``.
    """
    from lumos.models.torch import TorchModel

    if not isinstance(model, TorchModel):
        raise ModelError(
            f"input_invariance compensates the shift in the first Linear / Conv layer of a "
            f"PyTorch module; this is a {model.framework} model. Pass shifted_model= (a copy "
            "g of it with g(x + shift) = model(x), e.g. its first layer's bias reduced by "
            "W·shift)."
        )
    import torch

    if isinstance(model.module, torch.jit.ScriptModule):
        raise ModelError(
            "a TorchScript module cannot be compensated (its layers take no hooks); pass "
            "shifted_model= or the eager nn.Module."
        )
    try:
        module = copy.deepcopy(model.module)
    except Exception as exc:
        raise ModelError(
            f"the model cannot be copied ({exc}); pass shifted_model= (a model g with "
            "g(x + shift) = model(x))."
        ) from None
    dtype = model._torch_dtype()

    def forward(arr: np.ndarray) -> Any:
        with torch.no_grad():
            t = torch.as_tensor(arr, dtype=dtype, device=model.device)
            if model.preprocess is not None:
                t = model.preprocess(t)
            return module(t)

    probe = np.ascontiguousarray(x[:_PROBE_ROWS])
    name, u0 = _first_affine_input(module, forward, probe)
    name1, u1 = _first_affine_input(module, forward, probe + m)
    if name1 != name:
        raise ModelError(
            f"the shifted input reaches a different first layer ({name1!r}, not {name!r}); "
            "pass shifted_model=."
        )
    layer = module.get_submodule(name)
    u0 = u0.to(torch.float64)
    delta_rows = u1.to(torch.float64) - u0
    delta = delta_rows.mean(dim=0)
    scale = max(float(u0.abs().max()), float(u1.abs().max()), float(np.abs(m).max()))
    if float((delta_rows - delta).abs().max()) > 1e-5 * scale:
        raise ModelError(
            f"the input shift does not reach layer {name!r} as a constant (what comes before "
            "it is not a plain shift or rescaling), so no bias can compensate it; pass "
            "shifted_model= (a model g with g(x + shift) = model(x))."
        )
    m_t = torch.as_tensor(m, dtype=torch.float64, device=delta.device)
    if (
        delta.numel() == m_t.numel()
        and float((delta - m_t.reshape(delta.shape)).abs().max()) <= 1e-5 * scale
    ):
        delta = m_t.reshape(delta.shape)  # the layer sees the shift itself: use it exactly
    how = _absorb(layer, delta)
    shifted = copy.copy(model)
    shifted.module = module
    shifted.__dict__.pop("_fingerprint_cache", None)
    return shifted, how


def _absorb(layer: Any, delta: Any) -> str:
    """Make ``layer(u + δ)`` equal the original ``layer(u)``: subtract ``L(δ) − L(0)``."""
    import torch

    with torch.no_grad():
        exact = copy.deepcopy(layer).to(torch.float64)
        offset = (exact(delta[None]) - exact(torch.zeros_like(delta)[None]))[0]
        channel_axis = offset.ndim - 1 if isinstance(layer, torch.nn.Linear) else 0
        per_channel = offset.movedim(channel_axis, 0).reshape(offset.shape[channel_axis], -1)
        spread = float((per_channel - per_channel[:, :1]).abs().max())
        if layer.bias is not None and spread <= 1e-9 * max(float(offset.abs().max()), 1e-300):
            layer.bias.sub_(per_channel[:, 0].to(layer.bias.dtype))
            return "bias"
        param = next(layer.parameters())
        offset_t = offset.to(device=param.device, dtype=param.dtype)
    layer.register_forward_hook(functools.partial(_subtract_offset, offset_t))
    return "output_offset"


def _subtract_offset(offset: Any, _module: Any, _args: Any, output: Any) -> Any:
    return output - offset


# ----------------------------------------------------------------------------- re-running
def _shifted_explainer(
    p: Prepared, explainer: Any, g: Model, m: np.ndarray, shift_baseline: bool
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``run(x, target) -> values`` of the explainer rebuilt on the shifted model ``g``."""
    from lumos.attribution._base import _REGISTRY, Explainer, get_explainer, parameter_names

    explanation = p.explanation
    explainer = own_explainer(explanation, explainer)  # an instance is rebuilt on the copy
    if explainer is None:
        if explanation.method not in _REGISTRY:
            raise InputError(
                f"input_invariance re-runs the explainer on a shifted model, and the "
                f"explanation's method {explanation.method!r} is not a lumos method; pass "
                "explainer= (a method name, an Explainer, or a function "
                "f(model, x, target) -> attributions)."
            )
        explainer = explanation.method
    if isinstance(explainer, str):
        cls = get_explainer(explainer)
        kwargs: dict[str, Any] = {}
        if explainer == explanation.method:
            allowed = set(parameter_names(cls))
            for k, v in explanation.params.items():
                if k not in allowed:
                    continue
                if isinstance(v, str) and v.startswith("<"):
                    raise InputError(
                        f"the explanation recorded its parameter {k!r} only as {v!r} "
                        "(explanations keep no data arrays or generators), so the method "
                        "cannot be re-run as it was; pass explainer= the Explainer instance."
                    )
                kwargs[k] = v
    elif isinstance(explainer, Explainer):
        cls = type(explainer)
        kwargs = {k: getattr(explainer, k) for k in parameter_names(cls) if hasattr(explainer, k)}
        kwargs = {k: _map_module(v, p.model, g) for k, v in kwargs.items()}
    elif callable(explainer):
        return _callable_runner(explainer, g)
    else:
        raise InputError(
            "explainer must be None, a method name, a lumos Explainer or a function "
            f"f(model, x, target) -> attributions; got {type(explainer).__name__}."
        )
    if getattr(cls, "stochastic", False):
        seed = kwargs.get("random_state")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputError(
                f"{cls.name} is stochastic: input_invariance re-runs it and needs the same "
                f"random numbers as the explanation; make both with an integer random_state "
                f"(got {seed!r})."
            )
    if shift_baseline:
        kwargs = _shift_references(kwargs, set(parameter_names(cls)), m)

    def run(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        return cls(g, **kwargs).attributions(x, target=target)

    return run


def _map_module(value: Any, original: Model, g: Model) -> Any:
    """A torch submodule of the original model → the same submodule of the shifted copy."""
    import torch

    if not isinstance(value, torch.nn.Module):
        return value
    root, other = getattr(original, "module", None), getattr(g, "module", None)
    if root is None or other is None:
        return value
    names = {id(mod): name for name, mod in root.named_modules()}
    if id(value) not in names:
        return value
    try:
        return other.get_submodule(names[id(value)])
    except AttributeError:
        raise InputError(
            f"the explainer refers to the layer {names[id(value)]!r}, which the shifted model "
            "does not have; give the layer by its name instead."
        ) from None


def _shift_references(kwargs: dict[str, Any], allowed: set[str], m: np.ndarray) -> dict[str, Any]:
    """The explainer's ``background`` and ``baseline`` moved by ``m`` with the data."""
    out = dict(kwargs)
    background = out.get("background")
    if background is not None:
        out["background"] = np.asarray(background, dtype=np.float64) + m
    if "baseline" not in allowed:
        return out
    base = out.get("baseline")
    if base is None and background is not None:
        return out  # the mean of the (shifted) background
    if isinstance(base, str) and base != "zeros":
        return out  # "mean" / "blurred" are computed from the shifted data itself
    if base is None or isinstance(base, str):
        out["baseline"] = m.copy()
    else:
        out["baseline"] = np.asarray(base, dtype=np.float64) + m
    return out


def _callable_runner(
    explainer: Callable[..., Any], g: Model
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    try:
        n_args = len(inspect.signature(explainer).parameters)
    except (TypeError, ValueError):
        n_args = 3
    if n_args < 3:
        raise InputError(
            "input_invariance calls the explainer on a shifted copy of the model, so a "
            "function must take the model: f(model, x, target) -> attributions (it gets the "
            "shifted torch module). A function f(x, target) is bound to the original model."
        )
    target_model = getattr(g, "module", g)

    def run(x: np.ndarray, target: np.ndarray) -> np.ndarray:
        out = explainer(target_model, x, target)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(getattr(out, "values", out), dtype=np.float64)

    return run
