"""Explanation metrics side by side with quantus on the reference CNN over digit images.

Five metrics at the same parameters (faithfulness correlation, pixel flipping,
max-sensitivity, random logit, the cascading model randomisation test), each against its
floor: the model evaluations (or re-explanations) the metric cannot avoid, on pre-built
inputs. A second table shows ``lumos.evaluate`` sharing work between metrics.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
import torch

import lumos
from benchmarks._common import Section, fmt_s, interleaved_best_times
from benchmarks.bench_gradients import _load, _trained_cnn
from lumos import datasets, metrics
from lumos.attribution import get_explainer

N_STEPS = 16  # integrated gradients steps, for the explanation and every re-explanation
RUNS = 100  # faithfulness correlation: random subsets per image
SUBSET = 224  # faithfulness correlation: pixels per subset (quantus' default)
STEP = 28  # pixel flipping: pixels per step (28 steps on 28 × 28 images)
SAMPLES = 10  # max-sensitivity: perturbed copies per image
RADIUS = 0.2  # max-sensitivity: L∞ radius of the uniform noise (quantus' lower_bound)
ROUNDS = 5  # interleaved rounds per row (best time kept)


def _ig(model: Any, x: np.ndarray, target: np.ndarray, **params: Any) -> np.ndarray:
    """Integrated gradients' attributions alone (``Explainer.attributions``, what lumos'
    re-explaining metrics call): the path's forward + backward passes, without the
    completeness gap's forward pass at the rows and baselines, which no metric reads."""
    params = {"n_steps": N_STEPS, **params}
    return get_explainer("integrated_gradients")(model, **params).attributions(x, target)


def _quantus_explain(model: Any, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
    """quantus' explain_func: the same lumos integrated gradients both libraries re-run."""
    return _ig(model, np.asarray(inputs, dtype=np.float32), np.asarray(targets)).astype(np.float32)


def _quantus_metric(name: str) -> Any:
    """The quantus metric object of this benchmark at its parameters (``normalise=False``,
    ``abs`` as lumos, float baselines)."""
    import quantus
    from quantus.functions.similarity_func import correlation_spearman

    flags = {"disable_warnings": True, "display_progressbar": False}
    spearman = {"similarity_func": correlation_spearman, "normalise": False, "seed": 42}
    if name == "faithfulness_correlation":
        return quantus.FaithfulnessCorrelation(
            nr_runs=RUNS, subset_size=SUBSET, perturb_baseline=0.0, abs=False,
            normalise=False, return_aggregate=False, **flags,
        )  # fmt: skip
    if name == "pixel_flipping":
        return quantus.PixelFlipping(
            features_in_step=STEP, perturb_baseline=0.0, abs=False, normalise=False, **flags
        )
    if name == "max_sensitivity":
        return quantus.MaxSensitivity(
            nr_samples=SAMPLES, lower_bound=RADIUS, abs=False, normalise=False, **flags
        )
    if name == "random_logit":
        return quantus.RandomLogit(num_classes=10, abs=False, **spearman, **flags)
    if name == "model_randomisation":
        return quantus.MPRT(layer_order="top_down", abs=True, **spearman, **flags)
    raise ValueError(name)


def _call(
    metric: Any,
    net: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    device: str = "cpu",
    **kw: Any,
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metric(
            model=net, x_batch=x, y_batch=y, a_batch=a, channel_first=True, device=device, **kw
        )


def _forward(net: torch.nn.Module, pool: np.ndarray, chunk: int) -> Any:
    """The model alone over pre-built inputs, in lumos' default chunks, no autograd."""
    t = torch.as_tensor(pool, dtype=torch.float32)

    def go() -> None:
        with torch.no_grad():
            for s in range(0, len(t), chunk):
                net(t[s : s + chunk])

    return go


def _randomised_copies(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The cascade's models (top layer first), for the randomisation floor."""
    layers = [name for name, m in net.named_modules() if list(m.parameters(recurse=False))]
    copies, current = [], copy.deepcopy(net)
    for name in reversed(layers):
        current = copy.deepcopy(current)
        module = dict(current.named_modules())[name]
        module.reset_parameters()
        copies.append(current)
    return copies


def run(quick: bool = False) -> list[Section]:
    digits = datasets.digits(28)
    net = _trained_cnn(digits)
    n = 10 if quick else 50
    x = digits.x_test[:n].astype(np.float32)
    y = digits.y_test[:n].astype(np.int64)
    model = lumos.wrap(net)
    expl = lumos.explain(model, x, method="integrated_gradients", target=y, n_steps=N_STEPS)
    a = expl.values.astype(np.float32)
    chunk = model.resolve_batch_size(None)
    rng = np.random.default_rng(0)
    d = x[0].size

    # ---- floors: the perturbed inputs each metric evaluates, pre-built
    subsets = np.stack([rng.choice(d, SUBSET, replace=False) for _ in range(n * RUNS)])
    fc_pool = np.repeat(x.reshape(n, -1), RUNS, axis=0)
    np.put_along_axis(fc_pool, subsets, 0.0, axis=1)
    fc_pool = np.concatenate([x.reshape(n, -1), fc_pool]).reshape(-1, *x.shape[1:])
    order = np.argsort(-a.reshape(n, -1), axis=1, kind="stable")
    pf_pool = []
    for k in range(STEP, d + 1, STEP):
        step = x.reshape(n, -1).copy()
        np.put_along_axis(step, order[:, :k], 0.0, axis=1)
        pf_pool.append(step)
    pf_pool = np.concatenate([x.reshape(n, -1), *pf_pool]).reshape(-1, *x.shape[1:])
    noisy = (
        np.repeat(x, SAMPLES, axis=0) + rng.uniform(-RADIUS, RADIUS, (n * SAMPLES, *x.shape[1:]))
    ).astype(np.float32)
    other = (y + rng.integers(1, 10, n)) % 10
    copies = _randomised_copies(net)

    cases = [
        (
            "faithfulness_correlation",
            f"{RUNS} subsets of {SUBSET} pixels set to 0",
            lambda: metrics.faithfulness_correlation(
                model, expl, n_samples=RUNS, subset_size=SUBSET, baseline=0.0, random_state=0
            ),
            lambda: _call(
                _quantus_metric("faithfulness_correlation"),
                net,
                x,
                y,
                a,
            ),
            _forward(net, fc_pool, chunk),
            f"forward of {len(fc_pool):,} inputs",
        ),
        (
            "pixel_flipping",
            f"{STEP} pixels per step set to 0 ({d // STEP} steps)",
            lambda: metrics.pixel_flipping(model, expl, features_per_step=STEP, baseline=0.0),
            lambda: _call(
                _quantus_metric("pixel_flipping"),
                net,
                x,
                y,
                a,
            ),
            _forward(net, pf_pool, chunk),
            f"forward of {len(pf_pool):,} inputs",
        ),
        (
            "max_sensitivity",
            f"{SAMPLES} copies in an L∞ ball of radius {RADIUS}, IG re-run",
            lambda: metrics.max_sensitivity(
                model, expl, n_samples=SAMPLES, radius=RADIUS, random_state=0
            ),
            lambda: _call(
                _quantus_metric("max_sensitivity"),
                net,
                x,
                y,
                a,
                explain_func=_quantus_explain,
            ),
            lambda: _ig(model, noisy, np.repeat(y, SAMPLES)),
            f"IG on {len(noisy):,} inputs",
        ),
        (
            "random_logit",
            "IG of one random other class, Spearman",
            lambda: metrics.random_logit(model, expl, similarity="spearman", random_state=0),
            lambda: _call(
                _quantus_metric("random_logit"),
                net,
                x,
                y,
                a,
                explain_func=_quantus_explain,
            ),
            lambda: _ig(model, x, other),
            f"IG on {n} inputs",
        ),
        (
            "model_randomisation",
            f"cascading over {len(copies)} layers, IG re-run, Spearman of absolute values",
            lambda: metrics.model_randomisation(
                model, expl, order="cascading", similarity="spearman", random_state=0
            ),
            lambda: _call(
                _quantus_metric("model_randomisation"),
                net,
                x,
                y,
                a,
                explain_func=_quantus_explain,
            ),
            lambda: [_ig(c, x, y) for c in copies],
            f"IG on {n} inputs × {len(copies)} models",
        ),
    ]
    section = Section(
        title="Explanation metrics vs quantus",
        description=(
            f"The reference CNN (trained as in the gradient section) on {n} `digits(28)` test "
            f"images, integrated gradients ({N_STEPS} Gauss–Legendre steps) as the explanation "
            "scored and as the explainer every re-explaining metric re-runs: quantus gets the "
            "same lumos IG as its `explain_func` (its attributions alone, "
            "`Explainer.attributions`, as lumos' metrics re-run it), so both libraries do the "
            "same model work. "
            "quantus 0.6 runs with `normalise=False`, `abs` as lumos, float baselines. The "
            "floor is the work a metric cannot avoid, on pre-built inputs: the forward passes "
            "of its perturbed inputs in lumos' default chunk, or the re-explanations (IG on "
            "the perturbed copies, IG of the other class, IG of each randomised model — the "
            "models pre-built). lumos, quantus and the floor of a row are timed in interleaved "
            f"rounds, each in a random order (best of {ROUNDS})."
        ),
        header=[
            "metric",
            "parameters",
            "lumos",
            "quantus",
            "quantus ÷ lumos",
            "floor",
            "floor work",
            "lumos ÷ floor",
            "quantus ÷ floor",
        ],
    )
    load_start = _load()
    for name, params, ours, theirs, floor, floor_work in cases:
        trio = {"lumos": ours, "quantus": theirs, "floor": floor}
        t = interleaved_best_times(trio, rounds=ROUNDS)
        section.rows.append(
            [
                name,
                params,
                fmt_s(t["lumos"]),
                fmt_s(t["quantus"]),
                f"{t['quantus'] / t['lumos']:.1f}×",
                fmt_s(t["floor"]),
                floor_work,
                f"{t['lumos'] / t['floor']:.2f}",
                f"{t['quantus'] / t['floor']:.2f}",
            ]
        )
    section.notes.append(
        f"1-minute load average of this {os.cpu_count()}-core machine before and after the "
        f"timings: {load_start}, {_load()}."
    )
    pf = metrics.pixel_flipping(model, expl, features_per_step=STEP, baseline=0.0)
    q_curve = np.asarray(
        _call(
            _quantus_metric("pixel_flipping"),
            net,
            x,
            y,
            a,
        )
    )
    section.notes.append(
        "Pixel flipping is deterministic and equal: max |lumos curve − quantus curve| = "
        f"{np.abs(pf.curve - q_curve).max():.1e}."
    )
    means = []
    for name, _, ours, theirs, *_ in cases:
        if name in ("faithfulness_correlation", "max_sensitivity", "random_logit"):
            q = np.asarray(theirs(), dtype=float)
            means.append(f"{name} {ours().mean:.3f} / {np.nanmean(q):.3f}")
    section.notes.append(
        "The random metrics draw their own subsets / noise / classes; mean scores lumos / "
        "quantus: " + "; ".join(means) + "."
    )
    return [section, _quantus_native(net, model, x, y, copies), _sharing(model, expl, quick)]


def _quantus_native(
    net: torch.nn.Module, model: Any, x: np.ndarray, y: np.ndarray, copies: list
) -> Section:
    """The re-explaining metrics with quantus' own explainer, as its documentation runs them.

    ``quantus.explain(method="IntegratedGradients")`` is captum's IG with 10 trapezoid steps
    and a zero baseline; lumos re-runs its own IG with the same nodes
    (``rule="riemann_trapezoid"``), so both do the same forward and backward passes (captum's
    weights sum to 9/10, lumos' to 1: the values differ by that factor, which these
    scale-free scores do not see).
    """
    import quantus

    expl = lumos.explain(
        model, x, method="integrated_gradients", target=y, n_steps=10, rule="riemann_trapezoid"
    )
    a = expl.values.astype(np.float32)
    captum_a = np.asarray(quantus.explain(net, x, y, method="IntegratedGradients", device="cpu"))
    gap = float(np.abs(captum_a - 0.9 * a).max())
    native = {"explain_func": quantus.explain,
              "explain_func_kwargs": {"method": "IntegratedGradients"}}  # fmt: skip
    rng = np.random.default_rng(1)
    shape = (len(x) * SAMPLES, *x.shape[1:])
    noisy = (np.repeat(x, SAMPLES, axis=0) + rng.uniform(-RADIUS, RADIUS, shape)).astype(np.float32)
    other = (y + rng.integers(1, 10, len(x))) % 10

    def ig10(m: Any, xs: np.ndarray, t: np.ndarray) -> None:
        _ig(m, xs, t, n_steps=10, rule="riemann_trapezoid")

    cases = [
        (
            "max_sensitivity",
            lambda: metrics.max_sensitivity(
                model, expl, n_samples=SAMPLES, radius=RADIUS, random_state=0
            ),
            lambda: _call(
                _quantus_metric("max_sensitivity"),
                net,
                x,
                y,
                a,
                **native,
            ),
            lambda: ig10(model, noisy, np.repeat(y, SAMPLES)),
        ),
        (
            "random_logit",
            lambda: metrics.random_logit(model, expl, similarity="spearman", random_state=0),
            lambda: _call(
                _quantus_metric("random_logit"),
                net,
                x,
                y,
                a,
                **native,
            ),
            lambda: ig10(model, x, other),
        ),
        (
            "model_randomisation",
            lambda: metrics.model_randomisation(
                model, expl, order="cascading", similarity="spearman", random_state=0
            ),
            lambda: _call(
                _quantus_metric("model_randomisation"),
                net,
                x,
                y,
                a,
                **native,
            ),
            lambda: [ig10(c, x, y) for c in copies],
        ),
    ]
    section = Section(
        title="Re-explaining metrics vs quantus with its own explainer",
        description=(
            "The three metrics that re-run the explainer, with quantus as its documentation "
            'runs them: `explain_func=quantus.explain`, `method="IntegratedGradients"` '
            "(captum's IG, 10 trapezoid steps, zero baseline). lumos scores its own IG with the "
            'same 10 nodes (`rule="riemann_trapezoid"`) and re-runs it, so the model work '
            f"is the same (captum's values are 0.9 × lumos': max deviation {gap:.1e}). Same "
            "images, parameters and floors (IG with these nodes) as above; interleaved "
            f"rounds, best of {ROUNDS}."
        ),
        header=[
            "metric",
            "lumos",
            "quantus",
            "quantus ÷ lumos",
            "floor",
            "lumos ÷ floor",
            "quantus ÷ floor",
        ],
    )
    for name, ours, theirs, floor in cases:
        trio = {"lumos": ours, "quantus": theirs, "floor": floor}
        t = interleaved_best_times(trio, rounds=ROUNDS)
        section.rows.append(
            [
                name,
                fmt_s(t["lumos"]),
                fmt_s(t["quantus"]),
                f"{t['quantus'] / t['lumos']:.2f}×",
                fmt_s(t["floor"]),
                f"{t['lumos'] / t['floor']:.2f}",
                f"{t['quantus'] / t['floor']:.2f}",
            ]
        )
    section.notes.append(
        "Where the explainer's model work dominates, no metric implementation can be 1.5× "
        "faster than quantus unless quantus spends more than 1.5× that work: the last column "
        "is the most any implementation sitting exactly on the floor could gain."
    )
    return section


def _sharing(model: Any, expl: Any, quick: bool) -> Section:
    """lumos.evaluate on metric pairs that need the same model work, vs separate calls."""
    pairs = [
        (("deletion", "pixel_flipping"), {"baseline": 0.0, "features_per_step": STEP}),
        (("max_sensitivity", "avg_sensitivity"), {"n_samples": SAMPLES, "radius": RADIUS}),
    ]
    section = Section(
        title="lumos.evaluate shares work between metrics",
        description=(
            "Two metrics that need the same perturbed inputs, called one after the other "
            "(separately) and together in one `lumos.evaluate` call (same parameters, "
            "`random_state=0`). Deletion and pixel flipping read one MoRF removal curve; "
            "max- and avg-sensitivity share the perturbed copies and their re-explanations."
        ),
        header=["metrics", "separately", "lumos.evaluate", "separately ÷ evaluate"],
    )
    for names, params in pairs:

        def apart(names: tuple = names, params: dict = params) -> None:
            for name in names:
                metrics.get_metric(name).func(model, expl, random_state=0, **params)

        def together(names: tuple = names, params: dict = params) -> None:
            lumos.evaluate(model, {"ig": expl}, {nm: params for nm in names}, random_state=0)

        t = interleaved_best_times({"apart": apart, "together": together}, rounds=3)
        section.rows.append(
            [
                " + ".join(names),
                fmt_s(t["apart"]),
                fmt_s(t["together"]),
                f"{t['apart'] / t['together']:.2f}×",
            ]
        )
    return section
