"""The gradient explainers against captum on the reference MLP and CNN, torch and Keras twins.

Tolerance: every map equals captum's to ``1e-5 × max |captum's map|`` per row (both compute
in float32; lumos sums per row in float64). Stochastic methods are compared on the same
draws: the noisy inputs lumos's noise tunnels evaluate are recorded and handed to captum's
``NoiseTunnel``; ``expected_gradients``' draws are fixed by monkeypatching
``lumos.attribution.gradients._path_draws`` with captum ``GradientShap``'s own draws
(reproduced from numpy's global generator, seeded and restored around the call) and, apart
from captum's sampling, with a captum ``Saliency`` reference at the same path points.

One documented difference: on ``riemann_trapezoid`` captum's weights (1/n, halved at both
ends) sum to (n − 1)/n, lumos's composite trapezoid weights (1/(n − 1), halved at both ends)
sum to one, on the same nodes; the test checks lumos = captum · n/(n − 1) exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from captum.attr import (
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)

import lumos
import lumos.attribution.gradients as gradients
from lumos import datasets, zoo
from lumos.attribution import get_explainer

REL = 1e-5  # of each row's largest |attribution|
RULES = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]


def assert_maps_close(ours: np.ndarray, theirs: Any, rel: float = REL) -> None:
    """``|ours − theirs| <= rel · max|theirs|`` row by row, on maps that are not all zero."""
    theirs = theirs.detach().double().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape
    scale = np.abs(theirs.reshape(len(theirs), -1)).max(axis=1)
    assert scale.min() > 1e-7, "a vacuous comparison: captum's map is all zeros"
    err = np.abs(ours - theirs).reshape(len(theirs), -1).max(axis=1)
    assert np.all(err <= rel * scale), f"max error / max |map| per row: {err / scale}"


# ----------------------------------------------------------------------------- networks


class Case:
    """One network: the object lumos wraps, the same object as captum's forward function,
    rows to explain and a target per row."""

    def __init__(self, name: str, net: Any, x: np.ndarray, target: np.ndarray) -> None:
        self.name, self.net, self.x, self.target = name, net, x.astype(np.float32), target

    @property
    def xt(self) -> torch.Tensor:
        return torch.tensor(self.x, requires_grad=True)

    @property
    def tt(self) -> torch.Tensor:
        return torch.as_tensor(self.target)


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    table = datasets.breast_cancer()
    x_tab = table.x_test[:4]
    t_tab = np.array([0, 1, 1, 0])
    mlp = zoo.torch_mlp(x_tab.shape[1], 2, seed=0)
    keras_mlp = zoo.copy_weights(mlp, zoo.keras_mlp(x_tab.shape[1], 2, seed=1))
    x_img = datasets.digits(size=28).x_test[:2]
    t_img = np.array([3, 7])
    cnn = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    keras_cnn = zoo.copy_weights(cnn, zoo.keras_cnn((1, 28, 28), 10, seed=1))
    return {
        "torch_mlp": Case("torch_mlp", mlp, x_tab, t_tab),
        "keras_mlp": Case("keras_mlp", keras_mlp, x_tab, t_tab),
        "torch_cnn": Case("torch_cnn", cnn, x_img, t_img),
        "keras_cnn": Case("keras_cnn", keras_cnn, x_img, t_img),
    }


CASES = ["torch_mlp", "keras_mlp", "torch_cnn", "keras_cnn"]


def test_the_twins_agree(cases: dict[str, Case]) -> None:
    # the Keras cases are the torch networks' twins, so a framework-specific slip shows
    for kind in ("mlp", "cnn"):
        t, k = cases[f"torch_{kind}"], cases[f"keras_{kind}"]
        with torch.no_grad():
            np.testing.assert_allclose(t.net(t.xt).numpy(), k.net(k.xt).numpy(), atol=1e-6)


# ----------------------------------------------------------------------------- deterministic


@pytest.mark.parametrize("absolute", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_saliency_equals_captum(cases: dict[str, Case], name: str, absolute: bool) -> None:
    c = cases[name]
    ours = lumos.explain(c.net, c.x, method="saliency", target=c.target, absolute=absolute)
    theirs = Saliency(c.net).attribute(c.xt, target=c.tt, abs=absolute)
    assert_maps_close(ours.values, theirs)
    if not absolute:
        assert (ours.values < 0).any() and (ours.values > 0).any()


@pytest.mark.parametrize("name", CASES)
def test_input_x_gradient_equals_captum(cases: dict[str, Case], name: str) -> None:
    c = cases[name]
    ours = lumos.explain(c.net, c.x, method="input_x_gradient", target=c.target)
    assert_maps_close(ours.values, InputXGradient(c.net).attribute(c.xt, target=c.tt))


def _baseline(c: Case, kind: str) -> tuple[Any, np.ndarray]:
    """A lumos baseline spec and the same baseline as an (n, *input_shape) array for captum."""
    rng = np.random.default_rng(11)
    if kind == "zeros":
        return None, np.zeros_like(c.x)
    if kind == "constant":
        return 0.3, np.full_like(c.x, 0.3)
    if kind == "one_array":  # one baseline for every row
        one = rng.uniform(0.0, 0.5, size=c.x.shape[1:]).astype(np.float32)
        return one, np.broadcast_to(one, c.x.shape).copy()
    per_row = rng.uniform(-0.5, 0.5, size=c.x.shape).astype(np.float32)
    return per_row, per_row


# every rule from zero and from non-zero (per-row) baselines; the other baseline forms once
IG_CASES = [(rule, kind) for rule in RULES for kind in ("zeros", "per_row")] + [
    ("gausslegendre", "constant"),
    ("riemann_trapezoid", "one_array"),
]


@pytest.mark.parametrize(("rule", "kind"), IG_CASES)
@pytest.mark.parametrize("name", CASES)
def test_integrated_gradients_equals_captum(
    cases: dict[str, Case], name: str, rule: str, kind: str
) -> None:
    c = cases[name]
    spec, base = _baseline(c, kind)
    ours = lumos.explain(
        c.net, c.x, method="integrated_gradients", target=c.target, baseline=spec, rule=rule
    )
    theirs, delta = IntegratedGradients(c.net).attribute(
        c.xt,
        baselines=torch.tensor(base),
        target=c.tt,
        n_steps=50,
        method=rule,
        return_convergence_delta=True,
    )
    if rule == "riemann_trapezoid":
        # captum's trapezoid weights are 1/n (halved at both ends) and sum to (n − 1)/n;
        # lumos uses the composite trapezoid rule on the same n nodes, weights 1/(n − 1),
        # which sum to one. Same nodes, so the maps differ by exactly n/(n − 1).
        theirs = theirs * (50 / 49)
    else:
        # lumos's completeness gap is |captum's convergence delta| (the same sums)
        scale = np.abs(ours.prediction - ours.base_value)
        gap = ours.extras["completeness_gap"]
        assert np.all(np.abs(gap - delta.abs().double().numpy()) <= 2e-6 + 1e-5 * scale)
    assert_maps_close(ours.values, theirs)
    with torch.no_grad():
        f_base = c.net(torch.tensor(base)).double().numpy()[np.arange(len(c.x)), c.target]
    np.testing.assert_allclose(ours.base_value, f_base, atol=1e-6)


# ----------------------------------------------------------------------------- noise tunnels


class _FixedNoiseTunnel(NoiseTunnel):
    """captum's NoiseTunnel evaluating given noisy inputs instead of drawing its own."""

    def __init__(self, method: Any, noisy: torch.Tensor) -> None:
        super().__init__(method)
        self._noisy = noisy

    def _add_noise_to_inputs(self, nt_samples_partition: int, inputs: Any, stdevs: Any) -> Any:
        assert self._noisy.shape[0] == inputs[0].shape[0] * nt_samples_partition
        return (self._noisy.clone().requires_grad_(),)


def _tunnel_with_recorded_inputs(
    c: Case, method: str, **params: Any
) -> tuple[lumos.Explanation, np.ndarray]:
    """Run a noise tunnel and record the noisy inputs (n · n_samples, *input_shape) its base
    method evaluated, in row-major (row, sample) order as captum lays them out."""
    explainer = get_explainer(method)(c.net, **params)
    seen: list[np.ndarray] = []
    base_attribute = explainer._base.attribute

    def spy(noisy: np.ndarray, target: np.ndarray, **kwargs: Any) -> dict[str, Any]:
        seen.append(noisy.copy())
        return base_attribute(noisy, target, **kwargs)

    explainer._base.attribute = spy  # type: ignore[method-assign]
    # saliency / input × gradient bases run fused (one gradient pass over every noisy copy,
    # built on the device chunk by chunk): record the points that pass differentiates
    points: list[np.ndarray] = []
    engine = lumos.attribution.gradients.for_each_gradient

    def recording(model: Any, make_chunk: Any, *args: Any, **kwargs: Any) -> Any:
        def chunk(a: int, b: int) -> Any:
            t = make_chunk(a, b)
            points.append(t.detach().cpu().double().numpy())
            return t

        return engine(model, chunk, *args, **kwargs)

    lumos.attribution.gradients.for_each_gradient = recording
    try:
        e = explainer.explain(c.x, target=c.target)
    finally:
        lumos.attribution.gradients.for_each_gradient = engine
    return e, np.concatenate(seen or points)


# (lumos base, base_params, captum method, captum kwargs)
TUNNEL_BASES: dict[str, tuple[str, dict[str, Any], Callable[[Any], Any], dict[str, Any]]] = {
    "saliency_abs": ("saliency", {}, Saliency, {"abs": True}),
    "saliency_signed": ("saliency", {"absolute": False}, Saliency, {"abs": False}),
    "input_x_gradient": ("input_x_gradient", {}, InputXGradient, {}),
    "integrated_gradients": (
        "integrated_gradients",
        {"n_steps": 8, "rule": "riemann_middle", "baseline": 0.1},
        IntegratedGradients,
        {"n_steps": 8, "method": "riemann_middle", "baselines": 0.1},
    ),
}


@pytest.mark.parametrize("base", list(TUNNEL_BASES))
@pytest.mark.parametrize("name", CASES)
def test_noise_tunnels_equal_captum_on_the_same_noise(
    cases: dict[str, Case], name: str, base: str
) -> None:
    c = cases[name]
    ours_base, base_params, captum_cls, captum_kwargs = TUNNEL_BASES[base]
    s = 6
    params = {"base": ours_base, "base_params": base_params, "n_samples": s, "random_state": 3}
    sg, noisy = _tunnel_with_recorded_inputs(c, "smoothgrad", noise_level=0.2, **params)
    vg, noisy_vg = _tunnel_with_recorded_inputs(c, "vargrad", noise_level=0.2, **params)
    np.testing.assert_array_equal(noisy, noisy_vg)  # same seed, same noise
    assert noisy.shape == (len(c.x) * s, *c.x.shape[1:])
    # the noise is really there: each row's copies differ from the row by σ-sized noise
    spread = (noisy.reshape(len(c.x), s, -1) - c.x.reshape(len(c.x), 1, -1)).std(axis=(1, 2))
    value_range = np.ptp(c.x.reshape(len(c.x), -1), axis=1)
    np.testing.assert_allclose(spread, 0.2 * value_range, rtol=0.35)

    noisy_t = torch.tensor(noisy, dtype=torch.float32)
    for nt_type, ours in (("smoothgrad", sg.values), ("vargrad", vg.values)):
        tunnel = _FixedNoiseTunnel(captum_cls(c.net), noisy_t)
        theirs = tunnel.attribute(
            c.xt, nt_type=nt_type, nt_samples=s, stdevs=1.0, target=c.tt, **captum_kwargs
        )
        assert_maps_close(ours, theirs)

    # the same comparison against captum's per-copy maps reduced in float64 here: the mean,
    # the population variance (vargrad) and the standard error of the mean (smoothgrad)
    per_copy = captum_cls(c.net).attribute(
        noisy_t.clone().requires_grad_(), target=c.tt.repeat_interleave(s), **captum_kwargs
    )
    per_copy = per_copy.detach().double().numpy().reshape(len(c.x), s, *c.x.shape[1:])
    assert_maps_close(sg.values, per_copy.mean(axis=1))
    assert_maps_close(vg.extras["mean"], per_copy.mean(axis=1))
    assert_maps_close(vg.values, per_copy.var(axis=1))
    assert_maps_close(sg.stderr, per_copy.std(axis=1, ddof=1) / np.sqrt(s))


# ----------------------------------------------------------------------------- expected gradients


@pytest.fixture
def global_rng_restored() -> Iterator[None]:
    """captum's GradientShap draws from numpy's global generator (and torch's): seed them
    here and put them back afterwards."""
    state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002


def _fixed_draws(
    monkeypatch: pytest.MonkeyPatch, idx: np.ndarray, alpha: np.ndarray, n_background: int
) -> None:
    """Make lumos's expected_gradients use row i's draws ``idx[i]``, ``alpha[i]`` (rows are
    drawn in order, one call per row)."""
    calls = iter(range(len(idx)))

    def draws(rng: np.random.Generator, n_samples: int, m: int) -> tuple:
        i = next(calls)
        assert (n_samples, m) == (idx.shape[1], n_background)
        return idx[i], alpha[i]

    monkeypatch.setattr(gradients, "_path_draws", draws)


@pytest.mark.parametrize("name", CASES)
def test_expected_gradients_equals_captum_gradient_shap_on_its_own_draws(
    cases: dict[str, Case], name: str, monkeypatch: pytest.MonkeyPatch, global_rng_restored: None
) -> None:
    c = cases[name]
    n, s, m = len(c.x), 7, 9
    background = np.random.default_rng(5).uniform(0, 1, size=(m, *c.x.shape[1:]))
    background = background.astype(np.float32)
    # GradientShap (one NoiseTunnel partition, stdevs=0) first draws the n·s background rows
    # with np.random.choice, then the n·s path points with np.random.uniform; copy k = i·s + j
    # belongs to row i
    seed = 1234
    legacy = np.random.RandomState(seed)  # the stream np.random.seed(seed) gives
    idx = legacy.choice(m, n * s).reshape(n, s)
    alpha = legacy.uniform(0.0, 1.0, n * s).reshape(n, s)
    _fixed_draws(monkeypatch, idx, alpha, m)
    ours = lumos.explain(
        c.net, c.x, method="expected_gradients", target=c.target, background=background,
        n_samples=s,
    )  # fmt: skip
    np.random.seed(seed)  # noqa: NPY002
    theirs = GradientShap(c.net).attribute(
        c.xt, baselines=torch.tensor(background), n_samples=s, stdevs=0.0, target=c.tt
    )
    assert_maps_close(ours.values, theirs)
    with torch.no_grad():
        f_bg = c.net(torch.tensor(background)).double().numpy()
    np.testing.assert_allclose(ours.base_value, f_bg[:, c.target].mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_expected_gradients_equals_a_captum_saliency_reference(
    cases: dict[str, Case], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # independent of captum's sampling: gradients at b + α(x − b) times (x − b), averaged
    c = cases[name]
    n, s, m = len(c.x), 5, 6
    rng = np.random.default_rng(8)
    background = rng.normal(0.3, 0.5, size=(m, *c.x.shape[1:])).astype(np.float32)
    idx = rng.integers(0, m, size=(n, s))
    alpha = rng.random((n, s))
    _fixed_draws(monkeypatch, idx, alpha, m)
    ours = lumos.explain(
        c.net, c.x, method="expected_gradients", target=c.target, background=background,
        n_samples=s,
    )  # fmt: skip
    b = background[idx]  # (n, s, *input_shape)
    a = alpha.reshape(n, s, *(1,) * (c.x.ndim - 1)).astype(np.float32)
    points = b + a * (c.x[:, None] - b)
    grads = Saliency(c.net).attribute(
        torch.tensor(points.reshape(n * s, *c.x.shape[1:]), requires_grad=True),
        target=c.tt.repeat_interleave(s),
        abs=False,
    )
    per_draw = grads.double().numpy().reshape(b.shape) * (c.x[:, None] - b)
    assert_maps_close(ours.values, per_draw.mean(axis=1))
    assert_maps_close(ours.stderr, per_draw.std(axis=1, ddof=1) / np.sqrt(s))
