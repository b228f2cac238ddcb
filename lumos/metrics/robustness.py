"""Robustness: how much an explanation moves when the input moves a little, or when only
the explainer's random seed changes.

Every metric here re-runs the explainer (``explainer=``, see
:func:`~lumos.metrics._base.resolve_explainer`). The perturbation-based ones draw
``n_samples`` points uniformly from the L∞ ball of radius ``radius`` around each row and
re-explain **all** ``n × n_samples`` perturbed inputs in one batched call of the explainer.
Row ``i``'s perturbations are::

    seeds = lumos.metrics._base.row_seeds(random_state, n)
    noise_i = np.random.default_rng(seeds[i]).uniform(-radius, radius,
                                                        size=(n_samples, *input_shape))
    x'_i = x_i + noise_i                      # (n_samples, *input_shape)

so a row's draws depend only on ``random_state`` and its index, never on ``batch_size``.
Stochastic explainers get one seed for the batched call, drawn from a child of the first
row's seed (their own per-row seeding then makes copy ``j`` of row ``i`` depend only on its
position ``i * n_samples + j``).

Within :func:`lumos.metrics._base.sharing` (as :func:`lumos.evaluate` runs), the perturbed
inputs and their re-explanations are computed once per (explanation, model, explainer,
``radius``, ``n_samples``, ``random_state``) and shared by ``max_sensitivity``,
``avg_sensitivity``, ``local_lipschitz``, ``relative_input_stability`` and
``relative_output_stability``; the model outputs at the perturbed inputs are shared by the
two relative-stability metrics.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from lumos._validation import check_name
from lumos.errors import InputError, NonFiniteError
from lumos.metrics._base import (
    MetricResult,
    Prepared,
    check_bool,
    check_count,
    explainer_key,
    prepare,
    register_metric,
    resolve_explainer,
    row_seeds,
    seed_key,
    shared,
)

__all__ = [
    "avg_sensitivity",
    "local_lipschitz",
    "max_sensitivity",
    "relative_input_stability",
    "relative_output_stability",
    "seed_consistency",
]

#: Vector norms a metric can measure differences with (on the flattened row).
NORMS = ("l1", "l2", "linf")

_ALL_FLIPPED = "every perturbation changed the predicted class"
_ZERO_ATTRIBUTION = "the attribution is all zeros, so the relative change is undefined"


# ----------------------------------------------------------------------------- checks
def _check_positive(value: Any, name: str, example: str) -> float:
    """A finite float > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}; e.g. {example}.")
    return float(value)


def _check_norm(norm: Any) -> str:
    return check_name(norm, NORMS, kind="norm")


def _norm(v: np.ndarray, norm: str) -> np.ndarray:
    """``norm`` of each vector along the last axis."""
    if norm == "l2":
        return np.sqrt(np.einsum("...i,...i->...", v, v))
    if norm == "l1":
        return np.abs(v).sum(axis=-1)
    return np.abs(v).max(axis=-1)


# ----------------------------------------------------------------------------- shared work
@dataclass
class _Perturbed:
    """The perturbed copies of every row and their re-explanations.

    Attributes
    ----------
    x : ndarray of shape (n, n_samples, *input_shape)
    values : ndarray of shape (n, n_samples, *input_shape)
    """

    x: np.ndarray
    values: np.ndarray


def _explainer_seed(seed: np.random.SeedSequence) -> int:
    """An int seed for a stochastic explainer from a child of ``seed`` (independent of the
    draws ``default_rng(seed)`` makes)."""
    child = seed.spawn(1)[0]
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _base_key(
    model: Any, p: Prepared, explainer: Any, radius: float, n_samples: int, random_state: Any
) -> tuple[Any, ...]:
    return (
        id(p.explanation),
        id(model),
        explainer_key(p.explanation, explainer),
        radius,
        n_samples,
        seed_key(random_state),
    )


def _perturbed(
    key: tuple[Any, ...],
    p: Prepared,
    explainer: Any,
    radius: float,
    n_samples: int,
    random_state: Any,
) -> _Perturbed:
    """Draw the perturbations and re-explain them all in one call (shared under ``key``)."""

    def compute() -> _Perturbed:
        explain = resolve_explainer(p.model, p.explanation, explainer)
        n, shape = p.n, p.input_shape
        seeds = row_seeds(random_state, n)
        noise = np.stack(
            [
                np.random.default_rng(s).uniform(-radius, radius, size=(n_samples, *shape))
                for s in seeds
            ]
        )
        x_pert = p.x[:, None] + noise
        values = explain(
            x_pert.reshape(n * n_samples, *shape),
            np.repeat(p.target, n_samples),
            random_state=_explainer_seed(seeds[0]),
        )
        values = np.asarray(values, dtype=np.float64).reshape(n, n_samples, *shape)
        if not np.all(np.isfinite(values)):
            rows = np.flatnonzero(~np.isfinite(values.reshape(n, -1)).all(axis=1))
            raise NonFiniteError(
                f"the explainer returned NaN or infinite attributions for perturbed copies of "
                f"row(s) {rows[:10].tolist()}; robustness metrics need finite re-explanations "
                "(check the explainer, or use a smaller radius)."
            )
        return _Perturbed(x=x_pert, values=values)

    return shared(("robustness.perturbed", *key), compute)


def _perturbed_outputs(
    key: tuple[Any, ...], p: Prepared, pert: _Perturbed, batch_size: int | None
) -> np.ndarray:
    """The model's outputs at every perturbed input, (n, n_samples, n_outputs)."""

    def compute() -> np.ndarray:
        n, s = pert.x.shape[:2]
        flat = pert.x.reshape(n * s, *p.input_shape)
        return p.model.evaluate(flat, batch_size=batch_size).reshape(n, s, -1)

    return shared(("robustness.perturbed_outputs", *key), compute)


def _prepare_perturbation(
    model: Any,
    explanation: Any,
    explainer: Any,
    radius: Any,
    n_samples: Any,
    random_state: Any,
    batch_size: int | None = None,
) -> tuple[Prepared, tuple[Any, ...], _Perturbed]:
    p = prepare(model, explanation)
    p.model.resolve_batch_size(batch_size)
    radius = _check_positive(radius, "radius", "radius=0.2 (in the inputs' units)")
    n_samples = check_count(n_samples, "n_samples")
    key = _base_key(model, p, explainer, radius, n_samples, random_state)
    return p, key, _perturbed(key, p, explainer, radius, n_samples, random_state)


def _nan_reasons(n: int, rows: np.ndarray, reason: str) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    out[rows] = reason
    return out


# ----------------------------------------------------------------------------- sensitivity
def _sensitivity(
    model: Any,
    explanation: Any,
    explainer: Any,
    radius: Any,
    n_samples: Any,
    norm: Any,
    relative: Any,
    random_state: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample sensitivities (n, n_samples) and the rows whose ``‖a(x)‖`` is 0."""
    norm = _check_norm(norm)
    relative = check_bool(relative, "relative")
    p, key, pert = _prepare_perturbation(
        model, explanation, explainer, radius, n_samples, random_state
    )

    def compute() -> tuple[np.ndarray, np.ndarray]:
        n, s = pert.values.shape[:2]
        diff = (pert.values - p.a[:, None]).reshape(n, s, -1)
        ratios = _norm(diff, norm)
        zero = np.zeros(n, dtype=bool)
        if relative:
            den = _norm(p.a.reshape(n, -1), norm)
            zero = den == 0
            ratios = ratios / np.where(zero, 1.0, den)[:, None]
            ratios[zero] = np.nan
        return ratios, zero

    return shared(("robustness.sensitivity", *key, norm, relative), compute)


def _sensitivity_result(zero: np.ndarray, scores: np.ndarray) -> MetricResult:
    extras: dict[str, Any] = {}
    if zero.any():
        extras["nan_reason"] = _nan_reasons(len(zero), np.flatnonzero(zero), _ZERO_ATTRIBUTION)
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)


#: The Parameters section max- and avg-sensitivity share (placed into their docstrings at
#: {params}, below them).
_SENSITIVITY_DOC_PARAMS = """Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape) at ``data`` (n, *input_shape) for ``target`` (n,).
    explainer : None, str, Explainer or callable, optional
        What re-explains the perturbed inputs (default: the explanation's own method and
        parameters; a callable ``f(x, target) -> values`` for explanations made elsewhere).
    radius : float, default 0.2
        Half-width of the uniform noise added to every element (the L∞ ball's radius), in
        the inputs' units (Quantus' ``lower_bound``).
    n_samples : int, default 50
        Perturbations per row (Quantus: ``nr_samples=200``). The maximum grows with it, so
        compare max-sensitivity scores at equal ``n_samples``.
    norm : {"l2", "l1", "linf"}, default "l2"
        Norm of the attribution change and of ``a(x)`` (Quantus: Frobenius = ``"l2"``).
    relative : bool, default True
        Divide by ``‖a(x)‖`` (Quantus' definition; invariant to scaling the attributions).
        ``False`` gives Yeh et al.'s unnormalised ``‖a(x') − a(x)‖``.
    random_state : int, numpy Generator or None
        Seeds the perturbations (per row, see the module docstring) and a stochastic
        explainer's re-runs."""


@register_metric(
    "max_sensitivity",
    category="robustness",
    higher_is_better=False,
    requires=("explainer",),
    reference="Yeh et al. (2019)",
)
def max_sensitivity(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    radius: float = 0.2,
    n_samples: int = 50,
    norm: str = "l2",
    relative: bool = True,
    random_state: Any = None,
) -> MetricResult:
    """Largest change of the explanation over random inputs in a small ball (lower is better).

    Max-sensitivity (Yeh et al., 2019), estimated by Monte Carlo sampling as in Bhatt et al.
    (2020) and Quantus: for each row ``x`` with attribution ``a(x)``,

        SENS_max(x) = max_{j=1..S} ‖a(x'_j) − a(x)‖ / ‖a(x)‖,   x'_j ~ U(B∞(x, radius)),

    where ``a(x'_j)`` re-runs the explainer on the perturbed input for the same target. The
    norm is taken over all elements of the row.

    {params}

    Returns
    -------
    MetricResult
        ``scores`` (n,): the maximum over the samples. With ``relative=True`` a row whose
        attribution is all zeros scores NaN (``extras["nan_reason"]`` says why).

    References
    ----------
    C.-K. Yeh, C.-Y. Hsieh, A. S. Suggala, D. I. Inouye and P. Ravikumar. On the (in)fidelity
    and sensitivity of explanations. NeurIPS 2019. https://arxiv.org/abs/1901.09392

    Notes
    -----
    Equals ``quantus.MaxSensitivity(lower_bound=radius, nr_samples=n_samples,
    normalise=False, abs=False)`` on the same perturbations (its defaults: uniform noise
    in [−lower_bound, lower_bound], Frobenius norms, division by ``‖a(x)‖``). The
    attributions ``a(x)`` are ``explanation.values`` as given; for a stochastic explainer
    the score therefore also contains its seed-to-seed noise (as in Quantus). Perturbed
    inputs are not clipped to the data range.
    """
    ratios, zero = _sensitivity(
        model, explanation, explainer, radius, n_samples, norm, relative, random_state
    )
    scores = np.full(len(ratios), np.nan)
    scores[~zero] = ratios[~zero].max(axis=1)
    return _sensitivity_result(zero, scores)


@register_metric(
    "avg_sensitivity",
    category="robustness",
    higher_is_better=False,
    requires=("explainer",),
    reference="Yeh et al. (2019)",
)
def avg_sensitivity(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    radius: float = 0.2,
    n_samples: int = 50,
    norm: str = "l2",
    relative: bool = True,
    random_state: Any = None,
) -> MetricResult:
    """Mean change of the explanation over random inputs in a small ball (lower is better).

    Average sensitivity (Yeh et al., 2019; Bhatt et al., 2020): for each row,

        SENS_avg(x) = (1/S) Σ_{j=1..S} ‖a(x'_j) − a(x)‖ / ‖a(x)‖,   x'_j ~ U(B∞(x, radius)).

    Same draws and re-explanations as :func:`max_sensitivity` at the same ``radius``,
    ``n_samples`` and ``random_state`` (computed once inside :func:`lumos.evaluate`).

    {params}

    Returns
    -------
    MetricResult
        ``scores`` (n,): the mean over the samples (NaN for an all-zero attribution with
        ``relative=True``, reason in ``extras["nan_reason"]``).

    References
    ----------
    C.-K. Yeh et al. On the (in)fidelity and sensitivity of explanations. NeurIPS 2019.
    U. Bhatt, A. Weller and J. M. F. Moura. Evaluating and aggregating feature-based model
    explanations. IJCAI 2020. https://arxiv.org/abs/2005.00631

    Notes
    -----
    Equals ``quantus.AvgSensitivity(lower_bound=radius, nr_samples=n_samples,
    normalise=False, abs=False)`` on the same perturbations.
    """
    ratios, zero = _sensitivity(
        model, explanation, explainer, radius, n_samples, norm, relative, random_state
    )
    scores = np.full(len(ratios), np.nan)
    scores[~zero] = ratios[~zero].mean(axis=1)
    return _sensitivity_result(zero, scores)


for _f in (max_sensitivity, avg_sensitivity):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _SENSITIVITY_DOC_PARAMS)


# ----------------------------------------------------------------------------- Lipschitz
@register_metric(
    "local_lipschitz",
    category="robustness",
    higher_is_better=False,
    requires=("explainer",),
    reference="Alvarez-Melis & Jaakkola (2018)",
)
def local_lipschitz(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    radius: float = 0.2,
    n_samples: int = 50,
    random_state: Any = None,
) -> MetricResult:
    """Local Lipschitz estimate of the explainer: max ‖Δa‖₂ / ‖Δx‖₂ in a ball (lower is better).

    Alvarez-Melis & Jaakkola (2018) measure the stability of an explanation by

        L(x) = max_{x' ∈ B(x, ε)} ‖a(x) − a(x')‖₂ / ‖x − x'‖₂ ,

    which lumos estimates, as Quantus does, by the maximum over ``n_samples`` random points
    ``x'_j ~ U(B∞(x, radius))`` (the same draws as :func:`max_sensitivity`, shared inside
    :func:`lumos.evaluate`).

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape) at ``data`` (n, *input_shape) for ``target`` (n,).
    explainer : None, str, Explainer or callable, optional
        What re-explains the perturbed inputs (see :func:`max_sensitivity`).
    radius : float, default 0.2
        Radius of the L∞ ball the points are drawn from uniformly.
    n_samples : int, default 50
        Points per row (Quantus: ``nr_samples=200``).
    random_state : int, numpy Generator or None
        Seeds the perturbations and a stochastic explainer's re-runs.

    Returns
    -------
    MetricResult
        ``scores`` (n,): the largest ratio over the samples.

    References
    ----------
    D. Alvarez-Melis and T. S. Jaakkola. On the robustness of interpretability methods.
    ICML Workshop on Human Interpretability 2018. https://arxiv.org/abs/1806.08049

    Notes
    -----
    The paper maximises over a neighbourhood ball; Quantus' ``LocalLipschitzEstimate``
    instead draws Gaussian noise (``perturb_std=0.1``) and by default normalises the
    attributions by their maximum (``normalise=True``), so its defaults score a different
    quantity. With ``perturb_func=batch_uniform_noise, lower_bound=radius,
    normalise=False, abs=False`` it equals lumos on the same draws up to the ``1e-10`` it
    adds to the denominator. A sample with ``x' = x`` exactly (probability zero) is skipped.
    """
    p, _, pert = _prepare_perturbation(
        model, explanation, explainer, radius, n_samples, random_state
    )
    n, s = pert.values.shape[:2]
    num = _norm((pert.values - p.a[:, None]).reshape(n, s, -1), "l2")
    den = _norm((pert.x - p.x[:, None]).reshape(n, s, -1), "l2")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), -np.inf)
    scores = ratio.max(axis=1)
    scores[~np.isfinite(scores)] = np.nan
    return MetricResult(name="", scores=scores, higher_is_better=False, category="")


# ----------------------------------------------------------------------------- relative stability
def _relative_change(v: np.ndarray, ref: np.ndarray, eps_min: float, norm: str) -> np.ndarray:
    """``‖(ref − v) / ref‖`` per sample, zeros of ``ref`` replaced by ``eps_min``.

    ``ref`` (n, *shape), ``v`` (n, S, *shape) → (n, S).
    """
    n, s = v.shape[:2]
    safe = np.where(ref == 0, eps_min, ref)
    rel = (ref[:, None] - v) / safe[:, None]
    return _norm(rel.reshape(n, s, -1), norm)


def _relative_stability(
    model: Any,
    explanation: Any,
    explainer: Any,
    radius: Any,
    n_samples: Any,
    norm: Any,
    eps_min: Any,
    random_state: Any,
    batch_size: int | None,
    kind: str,
) -> MetricResult:
    norm = _check_norm(norm)
    eps_min = _check_positive(eps_min, "eps_min", "eps_min=1e-6")
    p, key, pert = _prepare_perturbation(
        model, explanation, explainer, radius, n_samples, random_state, batch_size
    )
    y = p.outputs(batch_size)
    y_pert = _perturbed_outputs(key, p, pert, batch_size)
    n, s = y_pert.shape[:2]
    pred = p.model.predicted_class(y)
    pred_pert = p.model.predicted_class(y_pert.reshape(n * s, -1)).reshape(n, s)
    kept = pred_pert == pred[:, None]
    num = _relative_change(pert.values, p.a, eps_min, norm)
    if kind == "input":
        den = _relative_change(pert.x, p.x, eps_min, norm)
    else:
        den = _norm(y[:, None] - y_pert, norm)
    ratio = np.where(kept, num / np.maximum(den, eps_min), -np.inf)
    scores = ratio.max(axis=1)
    n_kept = kept.sum(axis=1)
    scores[n_kept == 0] = np.nan
    extras: dict[str, Any] = {"n_kept": n_kept}
    if (n_kept == 0).any():
        extras["nan_reason"] = _nan_reasons(n, np.flatnonzero(n_kept == 0), _ALL_FLIPPED)
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)


@register_metric(
    "relative_input_stability",
    category="robustness",
    higher_is_better=False,
    requires=("explainer",),
    reference="Agarwal et al. (2022)",
)
def relative_input_stability(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    radius: float = 0.2,
    n_samples: int = 50,
    norm: str = "l2",
    eps_min: float = 1e-6,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Relative input stability: max relative explanation change per relative input change
    (lower is better).

    Agarwal et al. (2022), Eq. 2: for each row,

        RIS(x) = max_{x'} ‖(a(x) − a(x')) / a(x)‖_p / max(‖(x − x') / x‖_p, ε_min),

    over ``n_samples`` points ``x' ~ U(B∞(x, radius))`` that keep the predicted class. The
    divisions are elementwise; zero entries of ``a(x)`` and ``x`` are replaced by
    ``eps_min`` (as Quantus and OpenXAI do), so a zero feature that moves weighs heavily.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape) at ``data`` (n, *input_shape) for ``target`` (n,).
    explainer : None, str, Explainer or callable, optional
        What re-explains the perturbed inputs (see :func:`max_sensitivity`).
    radius : float, default 0.2
        Half-width of the uniform noise on every element (shared draws with
        :func:`max_sensitivity`).
    n_samples : int, default 50
        Perturbations per row (Quantus: ``nr_samples=200``).
    norm : {"l2", "l1", "linf"}, default "l2"
        The ``p`` of the paper's norms.
    eps_min : float, default 1e-6
        Floor of the denominator and stand-in for zero entries (Quantus' ``eps_min``).
    random_state : int, numpy Generator or None
        Seeds the perturbations and a stochastic explainer's re-runs.
    batch_size : int, optional
        Rows per model call when evaluating the perturbed inputs (for the class check).

    Returns
    -------
    MetricResult
        ``scores`` (n,); ``extras["n_kept"]`` (n,); ``extras["nan_reason"]`` when a row lost
        every sample.

    References
    ----------
    C. Agarwal, N. Johnson, M. Pawelczyk, S. Krishna, E. Saxena, M. Zitnik and H. Lakkaraju.
    Rethinking stability for attribution-based explanations. ICLR 2022 PAIR2Struct
    workshop. https://arxiv.org/abs/2203.06877

    Notes
    -----
    Only perturbations that keep the predicted class (the argmax of the model's outputs;
    single-output models never change class) enter the maximum, as the paper's
    neighbourhood requires: a sample that changes the class is dropped for its row alone,
    ``extras["n_kept"]`` (n,) counts the samples kept, and a row whose every sample changes
    class scores NaN with ``extras["nan_reason"]`` saying so, while the other rows keep
    their scores. Quantus instead sets each changed sample to NaN and takes ``np.max``,
    so any single flip turns that row's score into NaN (and a batch mean with it).
    Where no sample changes class, equals ``quantus.RelativeInputStability(normalise=False,
    abs=False)`` fed the same perturbations. Quantus' default noise is uniform in
    ``[0.02, 0.2]`` (positive only, from ``upper_bound=0.2``), not a ball around ``x``;
    it adds ``eps_min`` to a zero denominator where the paper (and lumos) take
    ``max(·, eps_min)``.
    """
    return _relative_stability(
        model, explanation, explainer, radius, n_samples, norm, eps_min, random_state,
        batch_size, "input",
    )  # fmt: skip


@register_metric(
    "relative_output_stability",
    category="robustness",
    higher_is_better=False,
    requires=("explainer",),
    reference="Agarwal et al. (2022)",
)
def relative_output_stability(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    radius: float = 0.2,
    n_samples: int = 50,
    norm: str = "l2",
    eps_min: float = 1e-6,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Relative output stability: max relative explanation change per change of the model's
    outputs (lower is better).

    Agarwal et al. (2022), Eq. 5: for each row,

        ROS(x) = max_{x'} ‖(a(x) − a(x')) / a(x)‖_p / max(‖h(x) − h(x')‖_p, ε_min),

    where ``h`` is the model's output vector as wrapped (logits for a logit model, as in the
    paper; probabilities for a model that outputs them), over ``n_samples`` points
    ``x' ~ U(B∞(x, radius))`` that keep the predicted class. Zero entries of ``a(x)`` are
    replaced by ``eps_min``.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        ``values`` (n, *input_shape) at ``data`` (n, *input_shape) for ``target`` (n,).
    explainer : None, str, Explainer or callable, optional
        What re-explains the perturbed inputs (see :func:`max_sensitivity`).
    radius : float, default 0.2
        Half-width of the uniform noise on every element (shared draws with
        :func:`relative_input_stability`).
    n_samples : int, default 50
        Perturbations per row (Quantus: ``nr_samples=200``).
    norm : {"l2", "l1", "linf"}, default "l2"
        The ``p`` of the paper's norms.
    eps_min : float, default 1e-6
        Floor of the denominator and stand-in for zero attributions.
    random_state : int, numpy Generator or None
        Seeds the perturbations and a stochastic explainer's re-runs.
    batch_size : int, optional
        Rows per model call when evaluating the perturbed inputs.

    Returns
    -------
    MetricResult
        ``scores`` (n,); ``extras["n_kept"]`` (n,); ``extras["nan_reason"]`` when a row lost
        every sample.

    References
    ----------
    C. Agarwal et al. Rethinking stability for attribution-based explanations. 2022.
    https://arxiv.org/abs/2203.06877

    Notes
    -----
    Only perturbations that keep the predicted class (the argmax of the model's outputs;
    single-output models never change class) enter the maximum, as the paper's
    neighbourhood requires: a sample that changes the class is dropped for its row alone,
    ``extras["n_kept"]`` (n,) counts the samples kept, and a row whose every sample changes
    class scores NaN with ``extras["nan_reason"]`` saying so, while the other rows keep
    their scores. Quantus instead sets each changed sample to NaN and takes ``np.max``,
    so any single flip turns that row's score into NaN (and a batch mean with it).
    Where no sample changes class, equals ``quantus.RelativeOutputStability(normalise=False,
    abs=False)`` (with ``softmax=False``) fed the same perturbations.
    """
    return _relative_stability(
        model, explanation, explainer, radius, n_samples, norm, eps_min, random_state,
        batch_size, "output",
    )  # fmt: skip


# ----------------------------------------------------------------------------- seeds
@register_metric(
    "seed_consistency",
    category="robustness",
    higher_is_better=True,
    requires=("explainer", "stochastic"),
    reference="lumos (top-k intersection across seeds)",
)
def seed_consistency(
    model: Any,
    explanation: Any,
    *,
    explainer: Any = None,
    n_seeds: int = 5,
    k: int | None = None,
    abs: bool = True,
    random_state: Any = None,
) -> MetricResult:
    """Agreement of a stochastic explainer's top-k features across random seeds (higher is
    better).

    The explainer is re-run on the explained rows ``n_seeds`` times with different seeds;
    for each row the score is the mean over the ``n_seeds (n_seeds − 1) / 2`` pairs of runs
    of the top-k intersection

        |top_k(a_s) ∩ top_k(a_t)| / k,

    so 1 means every seed picks the same k features and about ``k / d`` is chance level.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    explanation : Explanation
        Gives the rows (``data``), targets and, by default, the explainer
        (its ``values`` are not used: their seed is not known).
    explainer : None, str, Explainer or callable, optional
        The stochastic explainer to re-run (default: the explanation's own method). A
        callable must take ``random_state=`` to be re-seeded.
    n_seeds : int, default 5
        Runs of the explainer (at least 2); run ``s`` gets seed
        ``row_seeds(random_state, n_seeds)[s]`` (as an int).
    k : int, optional
        Size of the top sets, 1 ≤ k ≤ d; default ``ceil(d / 10)`` (10 % of the features).
    abs : bool, default True
        Rank features by ``|a|`` (``False``: by signed value, most positive first). Ties
        are broken by feature index.
    random_state : int, numpy Generator or None
        Seeds the runs' seeds.

    Returns
    -------
    MetricResult
        ``scores`` (n,) in [0, 1]; ``params["k"]`` is the ``k`` used;
        ``extras["deterministic"]`` (n,) is True when the explainer is deterministic.

    Notes
    -----
    A registered method (or :class:`~lumos.attribution.Explainer`) that is not stochastic
    gives the same attributions for every seed, so its consistency is exactly 1 by
    definition; lumos returns 1 for every row without running it (``extras
    ["deterministic"]`` marks this). A callable without a ``random_state`` parameter cannot
    be re-seeded, so lumos cannot tell whether it is deterministic and raises
    :class:`~lumos.errors.InputError`. Quantus has no counterpart; its ``Consistency``
    metric is a different (class-agreement) measure.
    """
    from lumos.attribution._base import Explainer

    p = prepare(model, explanation)
    n_seeds = check_count(n_seeds, "n_seeds", minimum=2)
    d = p.n_features
    k_used = math.ceil(d / 10) if k is None else check_count(k, "k", maximum=d)
    by_magnitude = check_bool(abs, "abs")
    explain = resolve_explainer(p.model, p.explanation, explainer)
    opaque = explainer is not None and not isinstance(explainer, (str, Explainer))
    if not explain.stochastic:  # type: ignore[attr-defined]
        if opaque:
            raise InputError(
                "seed_consistency re-runs the explainer with different seeds, but this "
                "function takes no random_state parameter; give it one "
                "(f(x, target, random_state=None)) or score a stochastic method."
            )
        result = MetricResult(
            name="",
            scores=np.ones(p.n),
            higher_is_better=True,
            category="",
            extras={"deterministic": np.ones(p.n, dtype=bool)},
        )
        result.params["k"] = k_used
        return result
    seeds = row_seeds(random_state, n_seeds)
    run_seeds = [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in seeds]
    members = np.zeros((n_seeds, p.n, d), dtype=bool)
    rows = np.arange(p.n)[:, None]
    for s, seed in enumerate(run_seeds):  # one batched call over all rows per seed
        values = np.asarray(explain(p.x, p.target, random_state=seed), dtype=np.float64)
        flat = values.reshape(p.n, d)
        if not np.all(np.isfinite(flat)):
            raise NonFiniteError(
                "the explainer returned NaN or infinite attributions; seed_consistency "
                "needs finite values."
            )
        key = -np.abs(flat) if by_magnitude else -flat
        top = np.argsort(key, axis=1, kind="stable")[:, :k_used]
        members[s, rows, top] = True
    m = members.astype(np.float64)
    overlap = np.einsum("snd,tnd->nst", m, m) / k_used  # (n, n_seeds, n_seeds)
    upper = np.triu_indices(n_seeds, k=1)
    scores = overlap[:, upper[0], upper[1]].mean(axis=1)
    result = MetricResult(
        name="",
        scores=scores,
        higher_is_better=True,
        category="",
        extras={"deterministic": np.zeros(p.n, dtype=bool)},
    )
    result.params["k"] = k_used
    return result
