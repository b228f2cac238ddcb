"""Gradient explainers against closed forms on linear models, the axioms they promise
(completeness, sums, calibrated standard errors), their invariances (batch size, seeds, other
rows), the model-randomisation sanity check, and their errors. Captum cross-checks live in
tests/peers/test_captum_gradients.py."""

from __future__ import annotations

import copy
from typing import Any

import keras
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr
from torch import nn

import lumos
import lumos.attribution.gradients as gradients
from lumos import datasets, zoo
from lumos.attribution import get_explainer
from lumos.attribution.gradients import integration_rule
from lumos.errors import (
    InputError,
    LumosError,
    NotDifferentiableError,
    ShapeError,
    UnknownNameError,
)

RULES = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
METHODS = [
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "expected_gradients",
    "smoothgrad",
    "vargrad",
]

# ----------------------------------------------------------------------------- linear models

D, K = 6, 3
_r = np.random.default_rng(0)
# float32-representable weights, so float32 and float64 models hold the same numbers
W = _r.normal(size=(K, D)).astype(np.float32).astype(np.float64)
B = _r.normal(size=K).astype(np.float32).astype(np.float64)
X_TAB = _r.normal(size=(5, D)).astype(np.float32).astype(np.float64)
BG_TAB = _r.normal(0.5, 1.0, size=(8, D)).astype(np.float32).astype(np.float64)
T_TAB = np.array([0, 2, 1, 1, 0])


def torch_linear(dtype: torch.dtype) -> nn.Linear:
    lin = nn.Linear(D, K).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W))
        lin.bias.copy_(torch.as_tensor(B))
    return lin


def keras_linear() -> keras.Model:
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(K)])
    model.layers[-1].set_weights([W.T.astype(np.float32), B.astype(np.float32)])
    return model


# (model, tolerance): float64 torch agrees to rounding, float32 models to 1e-6 (relative to
# each value, or absolute below 1: a float32 map is summed in float32 over the path)
LINEAR = {
    "torch64": (lambda: torch_linear(torch.float64), 1e-12),
    "torch32": (lambda: torch_linear(torch.float32), 1e-6),
    "keras": (keras_linear, 1e-6),
}


def f_linear(a: np.ndarray) -> np.ndarray:
    return a @ W.T + B


def close(actual: np.ndarray, desired: np.ndarray, tol: float, **kwargs: Any) -> None:
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol, **kwargs)


@pytest.mark.parametrize("kind", list(LINEAR))
def test_linear_model_closed_forms(kind: str) -> None:
    build, tol = LINEAR[kind]
    model = build()
    x, t = X_TAB, T_TAB
    w = W[t]  # (n, D): the gradient of each row's target output
    sal = lumos.explain(model, x, method="saliency", target=t, absolute=False)
    close(sal.values, w, tol)
    close(sal.prediction, f_linear(x)[np.arange(5), t], tol)
    sal_abs = lumos.explain(model, x, method="saliency", target=t)
    close(sal_abs.values, np.abs(w), tol)
    ixg = lumos.explain(model, x, method="input_x_gradient", target=t)
    close(ixg.values, w * x, tol)

    per_row = np.random.default_rng(1).normal(size=x.shape).astype(np.float32).astype(np.float64)
    baselines = [
        (None, np.zeros(D), {}),
        (0.7, np.full(D, 0.7), {}),
        (BG_TAB[0], BG_TAB[0], {}),
        (per_row, per_row, {}),
        ("mean", BG_TAB.mean(axis=0), {"background": BG_TAB}),
        (None, BG_TAB.mean(axis=0), {"background": BG_TAB}),  # default with a background
    ]
    for rule in RULES:  # every rule's weights sum to one: exact on a constant gradient
        for spec, b, extra in baselines:
            ig = lumos.explain(
                model, x, method="integrated_gradients", target=t, baseline=spec, rule=rule,
                **extra,
            )  # fmt: skip
            close(ig.values, w * (x - b), tol)
            f_b = f_linear(np.broadcast_to(b, x.shape))[np.arange(5), t]
            close(ig.base_value, f_b, tol)
            gap_tol = 10 * tol * max(1.0, np.abs(ig.values).max())
            assert ig.extras["completeness_gap"].max() <= gap_tol


def test_linear_image_model_and_the_blurred_baseline() -> None:
    shape = (2, 9, 8)
    r = np.random.default_rng(2)
    w = r.normal(size=(4, int(np.prod(shape))))
    net = nn.Sequential(nn.Flatten(), nn.Linear(w.shape[1], 4)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.as_tensor(w))
        net[1].bias.zero_()
    x = r.random((3, *shape))
    t = np.array([1, 0, 3])
    wt = w[t].reshape(x.shape)
    model = lumos.wrap(net, input_shape=shape)
    for sigma, s in ((None, 9 / 8), (0.7, 0.7)):  # default σ = max(H, W) / 8
        e = lumos.explain(
            model, x, method="integrated_gradients", target=t, baseline="blurred", blur_sigma=sigma
        )
        blurred = gaussian_filter(x, sigma=(0, 0, s, s), mode="nearest")
        assert np.abs(x - blurred).max() > 0.1
        np.testing.assert_allclose(e.values, wt * (x - blurred), atol=1e-12)
        np.testing.assert_allclose(e.base_value, (wt * blurred).sum(axis=(1, 2, 3)), atol=1e-12)


def test_integration_rules_are_the_textbook_rules() -> None:
    # ∫₀¹ α^p dα = 1/(p + 1): Gauss–Legendre with n nodes is exact to degree 2n − 1; the
    # Riemann sums and the composite trapezoid rule have their textbook errors
    n = 10
    for p in range(2 * n):
        a, w = integration_rule("gausslegendre", n)
        assert abs(w @ a**p - 1 / (p + 1)) < 1e-13
    a, w = integration_rule("riemann_left", n)
    np.testing.assert_allclose(a, np.arange(n) / n, atol=1e-15)
    assert abs(w @ a - (0.5 - 0.5 / n)) < 1e-14
    a, w = integration_rule("riemann_right", n)
    assert abs(w @ a - (0.5 + 0.5 / n)) < 1e-14
    a, w = integration_rule("riemann_middle", n)
    assert abs(w @ a**2 - (1 / 3 - 1 / (12 * n**2))) < 1e-14
    a, w = integration_rule("riemann_trapezoid", n)
    np.testing.assert_allclose(a, np.linspace(0, 1, n), atol=1e-15)
    assert abs(w @ a**2 - (1 / 3 + 1 / (6 * (n - 1) ** 2))) < 1e-14
    for rule in RULES:
        _, w = integration_rule(rule, n)
        assert abs(w.sum() - 1.0) < 1e-14 and np.all(w > 0)


# ----------------------------------------------------------------------------- expected gradients


@pytest.fixture
def recorded_draws(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (background indices, α) each row of expected_gradients drew, in row order."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = gradients._path_draws

    def spy(rng: np.random.Generator, n_samples: int, n_background: int) -> tuple:
        out = real(rng, n_samples, n_background)
        seen.append(out)
        return out

    monkeypatch.setattr(gradients, "_path_draws", spy)
    return seen


@pytest.mark.parametrize("kind", list(LINEAR))
def test_expected_gradients_on_a_linear_model(
    kind: str, recorded_draws: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, tol = LINEAR[kind]
    model = build()
    x, t, bg = X_TAB, T_TAB, BG_TAB
    w = W[t]
    f_bg = f_linear(bg)[:, t]  # (m, n)
    for seed in range(3):
        recorded_draws.clear()
        e = lumos.explain(
            model, x, method="expected_gradients", background=bg, n_samples=7, target=t,
            random_state=seed,
        )  # fmt: skip
        idx = np.stack([d[0] for d in recorded_draws])  # (n, 7)
        # each draw gives w ⊙ (x − b) whatever α: the mean over the drawn rows, exactly
        per_draw = w[:, None] * (x[:, None] - bg[idx])  # (n, 7, D)
        close(e.values, per_draw.mean(axis=1), tol)
        close(e.stderr, per_draw.std(axis=1, ddof=1) / np.sqrt(7), tol)
        drawn_f = np.take_along_axis(f_bg.T, idx, axis=1).mean(axis=1)
        f_x = f_linear(x)[np.arange(5), t]
        close(e.values.sum(axis=1), f_x - drawn_f, tol)
        close(e.base_value, f_bg.mean(axis=0), tol)

    # draws that use every background row equally often: the values sum to f(x) − E f(bg)
    m, s = len(bg), 3 * len(bg)
    alpha_rng = np.random.default_rng(9)

    def balanced(rng: np.random.Generator, n_samples: int, n_background: int) -> tuple:
        assert (n_samples, n_background) == (s, m)
        return np.tile(np.arange(m), 3), alpha_rng.random(s)

    monkeypatch.setattr(gradients, "_path_draws", balanced)
    e = lumos.explain(model, x, method="expected_gradients", background=bg, n_samples=s, target=t)
    close(e.values.sum(axis=1), e.prediction - e.base_value, tol)
    close(e.values, w * (x - bg.mean(axis=0)), tol)


@pytest.fixture(scope="module")
def tiny_mlp() -> dict[str, Any]:
    """A small nonlinear MLP, rows, a background and the exact expected-gradients values
    E_b IG(x; b) (α integrated on a 2000-point midpoint grid in float64)."""
    d, m, n_grid = 4, 10, 2000
    net = zoo.torch_mlp(d, 3, hidden=(16,), seed=2)
    r = np.random.default_rng(4)
    x = r.normal(size=(3, d)).astype(np.float32)
    bg = r.normal(size=(m, d)).astype(np.float32)
    t = np.array([0, 1, 2])
    net64 = copy.deepcopy(net).double()
    alpha = torch.tensor((np.arange(n_grid) + 0.5) / n_grid, dtype=torch.float64)
    b = torch.tensor(bg, dtype=torch.float64)
    reference = np.zeros(x.shape)
    for i in range(len(x)):
        xi = torch.tensor(x[i], dtype=torch.float64)
        pts = b[:, None] + alpha[None, :, None] * (xi - b)[:, None]  # (m, n_grid, d)
        pts = pts.reshape(-1, d).requires_grad_(True)
        (g,) = torch.autograd.grad(net64(pts)[:, t[i]].sum(), pts)
        reference[i] = ((xi - b) * g.reshape(m, n_grid, d).mean(dim=1)).mean(dim=0).numpy()
    return {"net": net, "x": x, "background": bg, "target": t, "reference": reference}


def test_expected_gradients_converges_and_its_stderr_is_calibrated(
    tiny_mlp: dict[str, Any],
) -> None:
    net, x, bg, t, ref = (tiny_mlp[k] for k in ("net", "x", "background", "target", "reference"))
    assert np.abs(ref).min() > 1e-3  # no feature is trivially zero
    covered = []
    for seed in range(30):
        e = lumos.explain(
            net, x, method="expected_gradients", background=bg, n_samples=40, target=t,
            random_state=seed,
        )  # fmt: skip
        assert e.stderr.min() > 0
        covered.append(np.abs(e.values - ref) <= 1.96 * e.stderr)
    coverage = np.mean(covered)  # over 30 seeds × 3 rows × 4 features
    assert 0.90 <= coverage <= 0.99, coverage
    # many draws: the mean converges to the reference at the 1/√n rate of its stderr
    big = lumos.explain(
        net, x, method="expected_gradients", background=bg, n_samples=20000, target=t,
        random_state=0,
    )  # fmt: skip
    small_stderr = e.stderr  # 40 draws
    assert np.abs(big.values - ref).max() <= 4 * big.stderr.max()
    assert np.abs(big.values - ref).max() < 0.02 * np.abs(ref).max()
    ratio = np.median(small_stderr / big.stderr)
    assert 0.7 * np.sqrt(20000 / 40) < ratio < 1.3 * np.sqrt(20000 / 40)


# ----------------------------------------------------------------------------- noise tunnels


def _tunnel(model: Any, x: np.ndarray, method: str, **params: Any) -> tuple[Any, np.ndarray]:
    """Run a noise tunnel; also return the noisy copies (n, n_samples, *input_shape) its base
    method evaluated."""
    explainer = get_explainer(method)(model, **params)
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
        e = explainer.explain(x, target=T_TAB[: len(x)])
    finally:
        lumos.attribution.gradients.for_each_gradient = engine
    return e, np.concatenate(seen or points).reshape(len(x), -1, *x.shape[1:])


def test_noise_tunnels_on_a_linear_model() -> None:
    model = torch_linear(torch.float64)
    x, t, s = X_TAB, T_TAB, 16
    w = W[t]
    kw = {"n_samples": s, "noise_level": 0.2, "random_state": 5}
    # a constant gradient: smoothgrad of the signed saliency is w
    signed = {"absolute": False}
    sg = lumos.explain(model, x, method="smoothgrad", target=t, base_params=signed, **kw)
    np.testing.assert_allclose(sg.values, w, atol=1e-12)
    # input × gradient of a copy x + ε is w ⊙ (x + ε): mean, variance, stderr of the copies
    sg, noisy = _tunnel(model, x, "smoothgrad", base="input_x_gradient", **kw)
    vg, noisy_vg = _tunnel(model, x, "vargrad", base="input_x_gradient", **kw)
    np.testing.assert_array_equal(noisy, noisy_vg)
    np.testing.assert_allclose(sg.values, w * noisy.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(sg.stderr, np.abs(w) * noisy.std(axis=1, ddof=1) / 4, atol=1e-12)
    np.testing.assert_allclose(vg.values, w**2 * noisy.var(axis=1), atol=1e-12)
    np.testing.assert_allclose(vg.extras["mean"], sg.values, atol=1e-12)
    # so is integrated gradients from a zero baseline
    ig, noisy_ig = _tunnel(model, x, "smoothgrad", base="integrated_gradients", **kw)
    np.testing.assert_array_equal(noisy, noisy_ig)
    np.testing.assert_allclose(ig.values, w * noisy.mean(axis=1), atol=1e-12)


def test_noise_is_gaussian_with_sigma_relative_to_each_rows_range() -> None:
    model = torch_linear(torch.float64)
    x = X_TAB[:3] * np.array([[1.0], [3.0], [0.2]])  # three different value ranges
    s, level = 4000, 0.15
    _, noisy = _tunnel(model, x, "smoothgrad", n_samples=s, noise_level=level, random_state=0)
    eps = (noisy - x[:, None]).reshape(3, -1)  # 24000 draws per row
    sigma = level * np.ptp(x, axis=1)
    np.testing.assert_allclose(eps.std(axis=1), sigma, rtol=0.03)
    assert np.all(np.abs(eps.mean(axis=1)) < 4 * sigma / np.sqrt(eps.shape[1]))
    kurtosis = ((eps - eps.mean(1, keepdims=True)) ** 4).mean(1) / eps.var(1) ** 2
    np.testing.assert_allclose(kurtosis, 3.0, atol=0.2)  # Gaussian, not uniform (1.8)


def test_zero_noise_gives_the_base_method() -> None:
    net = zoo.torch_cnn((1, 12, 12), 3, channels=(4,), hidden=8, seed=3)
    x = np.random.default_rng(1).random((2, 1, 12, 12))
    t = np.array([0, 2])
    for base, params in (("saliency", {}), ("integrated_gradients", {"n_steps": 5})):
        ref = lumos.explain(net, x, method=base, target=t, **params)
        kw = {"base": base, "base_params": params, "n_samples": 8, "noise_level": 0.0}
        sg = lumos.explain(net, x, method="smoothgrad", target=t, **kw)
        vg = lumos.explain(net, x, method="vargrad", target=t, **kw)
        assert np.abs(ref.values).max() > 1e-3
        np.testing.assert_allclose(sg.values, ref.values, rtol=0, atol=1e-7)
        np.testing.assert_allclose(vg.values, 0.0, atol=1e-12)
        np.testing.assert_allclose(sg.stderr, 0.0, atol=1e-7)


def test_noise_tunnel_variance_is_never_negative() -> None:
    # Copies whose maps are all equal (a constant gradient) have variance 0. Computed as
    # E[v²] − E[v]² it comes out as −1e-17 for some features with 50 copies: vargrad then
    # returns negative variances and smoothgrad's stderr is NaN (sqrt of a negative).
    model = torch_linear(torch.float64)
    kw = {"base_params": {"absolute": False}, "n_samples": 50, "random_state": 0}
    vg = lumos.explain(model, X_TAB, method="vargrad", target=T_TAB, **kw)
    sg = lumos.explain(model, X_TAB, method="smoothgrad", target=T_TAB, **kw)
    assert np.all(vg.values >= 0.0), vg.values.min()
    np.testing.assert_allclose(vg.values, 0.0, atol=1e-12)
    assert np.all(np.isfinite(sg.stderr))
    np.testing.assert_allclose(sg.stderr, 0.0, atol=1e-7)


def test_noise_tunnel_around_ig_with_a_baseline_per_row() -> None:
    # a per-row IG baseline is repeated for each row's noisy copies: rows sharing one
    # baseline give exactly what the single-array baseline gives (same seeds, same copies)
    model = torch_linear(torch.float64)
    one = BG_TAB[0]
    kw = {"n_samples": 6, "random_state": 3, "base": "integrated_gradients"}
    shared = lumos.explain(
        model, X_TAB, method="smoothgrad", target=T_TAB, base_params={"baseline": one}, **kw
    )
    per_row = lumos.explain(
        model,
        X_TAB,
        method="smoothgrad",
        target=T_TAB,
        base_params={"baseline": np.repeat(one[None], len(X_TAB), axis=0)},
        **kw,
    )
    np.testing.assert_array_equal(per_row.values, shared.values)
    # and on a linear model each row's IG is w·(x̃ − b) for its own b: the mean over copies
    # with baselines b_i differs from the shared case by w·(b_shared − b_i)
    own = lumos.explain(
        model, X_TAB, method="smoothgrad", target=T_TAB, base_params={"baseline": BG_TAB[:5]}, **kw
    )
    shift = W[T_TAB] * (one[None] - BG_TAB[:5])
    np.testing.assert_allclose(own.values - shared.values, shift, atol=1e-10)


# ----------------------------------------------------------------------------- the trained CNN


@pytest.fixture(scope="module")
def trained_cnn() -> dict[str, Any]:
    """The reference CNN after 3 epochs on 400 digits (~75 % training accuracy): far enough
    from its nearly-linear initialisation that the path integral is not trivial."""
    data = datasets.digits(size=28)
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    zoo.fit(
        net, data.x_train[:400], data.y_train[:400], epochs=3, early_stopping=False,
        validation_split=0.0, progress=False,
    )  # fmt: skip
    return {"net": net, "x": data.x_test[:6].astype(np.float32)}


def test_integrated_gradients_completeness_on_the_trained_cnn(trained_cnn: dict) -> None:
    net, x = trained_cnn["net"], trained_cnn["x"]
    with torch.no_grad():
        f_x = net(torch.tensor(x)).double().numpy()
        f_0 = net(torch.zeros_like(torch.tensor(x))).double().numpy()
    t = f_x.argmax(axis=1)
    rows = np.arange(len(x))
    delta = f_x[rows, t] - f_0[rows, t]
    assert np.abs(delta).min() > 0.1  # the rows are far from the baseline's output
    gaps = {}
    for n_steps in (8, 64):
        e = lumos.explain(net, x, method="integrated_gradients", n_steps=n_steps)
        np.testing.assert_array_equal(e.target, t)
        np.testing.assert_allclose(e.base_value, f_0[rows, t], atol=1e-6)
        total = e.values.reshape(len(x), -1).sum(axis=1)
        gap = np.abs(total - delta)
        # the recorded gap is |Σφ − (f(x) − f(b))| computed here from the network itself
        np.testing.assert_allclose(e.extras["completeness_gap"], gap, rtol=0, atol=1e-6)
        gaps[n_steps] = gap / np.abs(delta)
    assert gaps[8].max() > 2e-3  # not a trivially linear path: few nodes miss
    assert gaps[64].max() < 1e-3, gaps[64]


def _reinitialised(net: nn.Module, seed: int) -> nn.Module:
    """A copy of ``net`` with every layer re-initialised (the full-randomisation variant of
    Adebayo et al.'s cascading test)."""
    out = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in out.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.reset_parameters()
    return out


def _mean_spearman(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean([spearmanr(a[i], b[i])[0] for i in range(len(a))]))


def test_maps_change_when_the_weights_are_randomised(trained_cnn: dict) -> None:
    # Adebayo et al. (2018): a map that survives randomising the model does not explain it.
    net, x = trained_cnn["net"], trained_cnn["x"]
    randomised = _reinitialised(net, seed=5)
    perturbed = copy.deepcopy(net)  # control: 5 % noise on the weights keeps the maps
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in perturbed.parameters():
            p.mul_(1 + 0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    with torch.no_grad():
        t = net(torch.tensor(x)).argmax(dim=1).numpy()
    # saliency |∂f/∂x|; integrated gradients signed (its |·| keeps the input's zero pixels
    # zero for any model, which ranks them alike)
    for method, params in (("saliency", {}), ("integrated_gradients", {"n_steps": 16})):
        maps = [
            lumos.explain(m, x, method=method, target=t, **params).values
            for m in (net, randomised, perturbed)
        ]
        assert _mean_spearman(maps[0], maps[1]) < 0.5
        assert _mean_spearman(maps[0], maps[2]) > 0.7


# ----------------------------------------------------------------------------- invariances


def _configs(x: np.ndarray) -> list[tuple[str, dict[str, Any]]]:
    bg = np.random.default_rng(2).random((5, *x.shape[1:]))
    tunnel_ig = {"base": "integrated_gradients", "base_params": {"n_steps": 3}}
    configs = [
        ("saliency", {}),
        ("saliency", {"absolute": False}),
        ("input_x_gradient", {}),
        ("integrated_gradients", {"n_steps": 8, "rule": "riemann_trapezoid", "baseline": 0.2}),
        ("integrated_gradients", {"n_steps": 8, "background": bg}),
        ("expected_gradients", {"background": bg, "n_samples": 6, "random_state": 0}),
        ("smoothgrad", {"n_samples": 4, "random_state": 0}),
        ("smoothgrad", {**tunnel_ig, "n_samples": 3, "random_state": 1}),
        ("vargrad", {"base": "input_x_gradient", "n_samples": 4, "random_state": 2}),
    ]
    if x.ndim == 4:
        configs.append(("integrated_gradients", {"n_steps": 4, "baseline": "blurred"}))
    return configs


@pytest.fixture(scope="module")
def small_nets() -> dict[str, tuple[nn.Module, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    cnn = zoo.torch_cnn((1, 12, 12), 3, channels=(4,), hidden=8, seed=3)
    mlp = zoo.torch_mlp(5, 3, hidden=(16,), seed=4)
    return {
        "cnn": (cnn, rng.random((3, 1, 12, 12)), np.array([0, 1, 2])),
        "mlp": (mlp, rng.normal(size=(3, 5)), np.array([2, 0, 1])),
    }


def _arrays(e: Any) -> dict[str, np.ndarray]:
    out = {"values": e.values, "base_value": e.base_value, "stderr": e.stderr}
    out.update({f"extras.{k}": v for k, v in e.extras.items()})
    return {k: np.asarray(v) for k, v in out.items() if v is not None}


def _assert_same(a: Any, b: Any, rows: Any = slice(None), atol: float = 1e-6) -> None:
    ea, eb = _arrays(a), _arrays(b)
    assert ea.keys() == eb.keys()
    for key in ea:
        np.testing.assert_allclose(ea[key][rows], eb[key], rtol=0, atol=atol, err_msg=key)


@pytest.mark.parametrize("net_name", ["cnn", "mlp"])
def test_batch_size_does_not_change_results(small_nets: dict, net_name: str) -> None:
    net, x, t = small_nets[net_name]
    for method, params in _configs(x):
        results = [
            lumos.explain(net, x, method=method, target=t, batch_size=bs, **params)
            for bs in (1, 7, 1024)
        ]
        assert np.abs(results[0].values).max() > 1e-4
        for other in results[1:]:
            _assert_same(other, results[0])


@pytest.mark.parametrize("net_name", ["cnn", "mlp"])
def test_a_rows_values_do_not_depend_on_the_other_rows(small_nets: dict, net_name: str) -> None:
    net, x, t = small_nets[net_name]
    other = np.random.default_rng(7).random(x.shape) * 2 - 0.5
    mixed = x.copy()
    mixed[1] = other[1]
    for method, params in _configs(x):
        full = lumos.explain(net, x, method=method, target=t, **params)
        changed = lumos.explain(net, mixed, method=method, target=t, **params)
        first = lumos.explain(net, x[:2], method=method, target=t[:2], **params)
        for key, arr in _arrays(full).items():
            np.testing.assert_allclose(
                _arrays(changed)[key][[0, 2]], arr[[0, 2]], rtol=0, atol=1e-6, err_msg=key
            )
        assert np.abs(changed.values[1] - full.values[1]).max() > 1e-6  # row 1 did change
        _assert_same(full, first, rows=slice(0, 2))


@pytest.mark.parametrize("net_name", ["cnn", "mlp"])
def test_attributions_are_the_explanations_values(small_nets: dict, net_name: str) -> None:
    """``Explainer.attributions`` (what re-running metrics call) returns ``explain().values``;
    integrated gradients then sends only its path points through the model: no forward call
    for the rows' outputs or their baselines (which only the completeness gap reads)."""
    net, x, t = small_nets[net_name]
    for method, params in _configs(x):
        explainer = get_explainer(method)(net, **params)
        close(explainer.attributions(x, t), explainer.explain(x, t).values, 1e-6, err_msg=method)
    ig = get_explainer("integrated_gradients")(lumos.wrap(net), n_steps=5, batch_size=4 * 5)
    ig.explain(x, t)  # the wrapper learns the number of outputs
    rows: list[tuple[int, bool]] = []
    hook = net.register_forward_hook(lambda m, a, out: rows.append((len(a[0]), a[0].requires_grad)))
    try:
        for n in (1, 3):  # the one-pass path of a few rows, and the chunked path
            rows.clear()
            ig.explain(x[:n], t[:n])
            assert sum(r for r, _ in rows) == n * 5 + (2 * n if n == 1 else n + 1)
            rows.clear()
            ig.attributions(x[:n], t[:n])
            assert sum(r for r, _ in rows) == n * 5 and all(grad for _, grad in rows)
    finally:
        hook.remove()


@pytest.mark.parametrize("method", ["expected_gradients", "smoothgrad", "vargrad"])
def test_seeds(small_nets: dict, method: str) -> None:
    net, x, t = small_nets["cnn"]
    params = {"n_samples": 6}
    if method == "expected_gradients":
        params["background"] = np.random.default_rng(2).random((5, *x.shape[1:]))

    def run(seed: Any) -> np.ndarray:
        return lumos.explain(net, x, method=method, target=t, random_state=seed, **params).values

    np_state, torch_state = np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.05 * np.abs(a).max()
    assert np.abs(run(None) - run(None)).max() > 0.05 * np.abs(a).max()
    np.testing.assert_array_equal(run(np.random.default_rng(0)), run(np.random.default_rng(0)))
    # the global generators are never used
    np_after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(np_state[1], np_after[1]) and np_state[2] == np_after[2]
    assert torch.equal(torch_state, torch.get_rng_state())


def test_noise_tunnels_around_a_stochastic_base_are_reproducible(small_nets: dict) -> None:
    # smoothgrad(base="expected_gradients") with random_state=0 must give the same values
    # twice: the tunnel's seed has to reach the base method's draws.
    net, x, t = small_nets["mlp"]
    bg = np.random.default_rng(2).normal(size=(6, x.shape[1]))
    params = {
        "base": "expected_gradients",
        "base_params": {"background": bg, "n_samples": 4},
        "n_samples": 3,
        "random_state": 0,
    }
    for method in ("smoothgrad", "vargrad"):
        a = lumos.explain(net, x, method=method, target=t, **params)
        b = lumos.explain(net, x, method=method, target=t, **params)
        np.testing.assert_array_equal(a.values, b.values)


# ----------------------------------------------------------------------------- side effects


def _method_params(method: str, x: np.ndarray) -> dict[str, Any]:
    bg = np.random.default_rng(2).random((4, *x.shape[1:]))
    return {
        "saliency": {},
        "input_x_gradient": {},
        "integrated_gradients": {"n_steps": 5},
        "expected_gradients": {"background": bg, "n_samples": 4, "random_state": 0},
        "smoothgrad": {"n_samples": 3, "random_state": 0},
        "vargrad": {"n_samples": 3, "random_state": 0},
    }[method]


@pytest.mark.parametrize("method", METHODS)
def test_the_call_changes_nothing_on_a_torch_module(method: str) -> None:
    net = zoo.torch_cnn((1, 12, 12), 3, channels=(4,), hidden=8, seed=3)
    x = np.random.default_rng(1).random((3, 1, 12, 12)).astype(np.float32)
    x_before = x.copy()
    params = _method_params(method, x)
    expected = lumos.explain(net, x, method=method, target=[0, 1, 2], **params).values
    names = dict(net.named_parameters())
    names["features.0.weight"].requires_grad_(False)
    names["classifier.3.bias"].requires_grad_(False)
    flags = {k: p.requires_grad for k, p in names.items()}
    before = {k: p.detach().clone() for k, p in names.items()}
    net.train()
    e = lumos.explain(net, x, method=method, target=[0, 1, 2], **params)
    # frozen parameters do not change gradients with respect to the input
    np.testing.assert_array_equal(e.values, expected)
    for k, p in net.named_parameters():
        assert torch.equal(p.detach(), before[k]), k  # bit-identical
        assert p.requires_grad == flags[k], k
        assert p.grad is None, k
    assert not any(m.training for m in net.modules())  # left in eval mode
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("method", METHODS)
def test_the_call_changes_nothing_on_a_keras_model(method: str) -> None:
    model = zoo.keras_mlp(5, 3, hidden=(8,), seed=0)
    model.get_layer("dense_1").trainable = False
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    trainable = [v.trainable for v in model.weights]
    lumos.explain(model, x, method=method, target=[0, 1, 2], **_method_params(method, x))
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [v.trainable for v in model.weights] == trainable
    assert all(v.value.grad is None for v in model.weights)


# ----------------------------------------------------------------------------- errors


def test_black_boxes_are_refused_with_the_model_agnostic_alternatives() -> None:
    def f(a: np.ndarray) -> np.ndarray:
        return a @ W.T

    for method in METHODS:
        params = {"background": BG_TAB} if method == "expected_gradients" else {}
        with pytest.raises(NotDifferentiableError) as info:
            lumos.explain(f, X_TAB, method=method, **params)
        message = str(info.value)
        assert "feature_ablation" in message and "kernel_shap" in message and "lime" in message


@pytest.mark.parametrize(
    ("method", "params", "error", "words"),
    [
        ("integrated_gradients", {"rule": "simpson"}, UnknownNameError, "riemann_trapezoid"),
        ("integrated_gradients", {"rule": "riemann_trapezoid", "n_steps": 1}, InputError, "2"),
        ("integrated_gradients", {"n_steps": 0}, InputError, "n_steps"),
        ("integrated_gradients", {"n_steps": 2.5}, InputError, "n_steps"),
        ("integrated_gradients", {"n_steps": True}, InputError, "n_steps"),
        ("integrated_gradients", {"baseline": "blurred"}, ShapeError, "(C, H, W)"),
        ("integrated_gradients", {"baseline": "median"}, UnknownNameError, "zeros"),
        ("integrated_gradients", {"baseline": "mean"}, InputError, "background"),
        ("integrated_gradients", {"baseline": np.zeros(D + 1)}, ShapeError, "shape"),
        ("integrated_gradients", {"baseline": float("nan")}, InputError, "finite"),
        ("integrated_gradients", {"blur_sigma": 0.0}, InputError, "blur_sigma"),
        ("expected_gradients", {}, InputError, "background="),
        ("expected_gradients", {"background": np.zeros((3, D + 1))}, ShapeError, "background"),
        ("expected_gradients", {"background": BG_TAB, "n_samples": 0}, InputError, "n_samples"),
        ("expected_gradients", {"background": BG_TAB, "random_state": -1}, InputError, "random"),
        ("smoothgrad", {"base": "lime"}, InputError, "integrated_gradients"),
        ("smoothgrad", {"base": "vargrad"}, InputError, "saliency"),
        ("vargrad", {"base": "saliancy"}, UnknownNameError, "saliency"),
        ("smoothgrad", {"base_params": [("absolute", False)]}, InputError, "dict"),
        ("smoothgrad", {"base_params": {"batch_size": 4}}, InputError, "batch_size"),
        ("smoothgrad", {"noise_level": -0.1}, InputError, "noise_level"),
        ("smoothgrad", {"noise_level": float("inf")}, InputError, "noise_level"),
        ("vargrad", {"noise_level": "0.1"}, InputError, "noise_level"),
        ("vargrad", {"n_samples": -3}, InputError, "n_samples"),
        ("saliency", {"n_steps": 5}, UnknownNameError, "absolute"),
    ],
)
def test_bad_input_raises_typed_errors(
    method: str, params: dict[str, Any], error: type, words: str
) -> None:
    model = torch_linear(torch.float32)
    with pytest.raises(error) as info:
        lumos.explain(model, X_TAB, method=method, **params)
    assert words in str(info.value)


def test_unknown_base_params_raise_a_lumos_error() -> None:
    # a parameter the base method does not have is a user error like any unknown parameter
    # (lumos.explain raises UnknownNameError listing the method's parameters), not a raw
    # TypeError from the base class's constructor
    model = torch_linear(torch.float32)
    with pytest.raises(UnknownNameError) as info:
        lumos.explain(model, X_TAB, method="smoothgrad", base_params={"n_steps": 5})
    assert "absolute" in str(info.value)
    assert isinstance(info.value, LumosError)


# ----------------------------------------------------------------------------- the entry layer
#
# Integrated gradients sums a row's path gradients at the output of the layer the inputs
# enter first, when that layer is affine, and sends the sum back through it once. Against
# a naive float64 reference (every point differentiated on its own) on models where that
# split happens, happens with another path from the input, or must not happen.


class _Skip(nn.Module):
    """A convolution entry and a second path that reads the input again."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 36 + 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv(x)).flatten(1)
        return self.head(torch.cat([h, (x**2).mean(dim=(1, 2, 3))[:, None]], dim=1))


class _Twice(nn.Module):
    """The entry applied to the input twice, and to a function of it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.lin(x)) * self.lin(x) + torch.sin(self.lin(2 * x))
        return self.out(h)


class _Normalised(nn.Module):
    """The input is standardised before the first convolution: it never enters it as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                                 nn.Linear(108, 3))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.25)


class _Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > 2:
            raise RuntimeError("refused: too many rows")
        return self.lin(x)


def _entry_models() -> dict[str, tuple[nn.Module, bool]]:
    """name -> (model, whether integrated gradients splits it at its entry layer)."""
    torch.manual_seed(5)
    return {
        "cnn": (zoo.torch_cnn((1, 6, 6), 3, channels=(4,), hidden=8, seed=3), True),
        "mlp": (zoo.torch_mlp(5, 3, hidden=(16,), seed=4), True),
        "skip": (_Skip(), True),
        "twice": (_Twice(), True),
        "reflect": (
            nn.Sequential(
                nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect"),
                nn.Softplus(),
                nn.Flatten(),
                nn.Linear(108, 3),
            ),
            True,
        ),
        "inplace": (
            nn.Sequential(
                nn.Conv2d(1, 3, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Flatten(),
                nn.Linear(108, 3),
            ),
            False,
        ),
        "normalised": (_Normalised(), False),
    }


def _naive_ig(net: nn.Module, x: np.ndarray, t: np.ndarray, n_steps: int) -> np.ndarray:
    """Integrated gradients from a zero baseline, one point at a time, in float64."""
    net64 = copy.deepcopy(net).double()
    nodes, weights = integration_rule("gausslegendre", n_steps)
    values = []
    for row, target in zip(torch.as_tensor(x, dtype=torch.float64), t, strict=True):
        total = torch.zeros_like(row)
        for a, w in zip(nodes, weights, strict=True):
            p = (a * row)[None].requires_grad_(True)
            (g,) = torch.autograd.grad(net64(p)[0, int(target)], p)
            total += w * g[0]
        values.append((total * row).numpy())
    return np.stack(values)


@pytest.mark.parametrize("name", list(_entry_models()))
def test_ig_summed_at_the_entry_layer_equals_the_pointwise_sum(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lumos.attribution._autograd as autograd

    net, splits = _entry_models()[name]
    rng = np.random.default_rng(8)
    shape = (5,) if name in ("mlp", "twice") else (1, 6, 6)
    x = rng.normal(size=(6, *shape)).astype(np.float32)
    t = rng.integers(0, 3, size=6)
    calls: list[int] = []
    real = autograd.through_entry

    def spy(entry: Any, input_shape: Any, at_entry: Any) -> Any:
        calls.append(len(at_entry))
        return real(entry, input_shape, at_entry)

    monkeypatch.setattr(autograd, "through_entry", spy)
    expected = _naive_ig(net, x, t, n_steps=7)
    assert np.abs(expected).max() > 1e-3
    # one row (its path in the one pass), and six rows in chunks of 5 points that split
    # rows between them
    for rows, batch_size in ((1, None), (6, 5), (6, None)):
        calls.clear()
        e = lumos.explain(net, x[:rows], method="integrated_gradients", target=t[:rows],
                          n_steps=7, batch_size=batch_size)  # fmt: skip
        close(e.values, expected[:rows], 1e-5, err_msg=f"{name}, {rows} rows")
        assert (len(calls) > 0) == splits, calls
        if splits:  # each row goes back through the entry once per pass it spans
            chunk = batch_size or 7 * rows
            spans = [(min(s + chunk, 7 * rows) - 1) // 7 - s // 7 + 1
                     for s in range(0, 7 * rows, chunk)]  # fmt: skip
            assert calls == spans
        total = e.values.reshape(rows, -1).sum(axis=1)
        with torch.no_grad():
            f_x = net(torch.as_tensor(x[:rows])).numpy()[np.arange(rows), t[:rows]]
        np.testing.assert_allclose(e.prediction, f_x, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            e.extras["completeness_gap"], np.abs(total - (f_x - e.base_value)), atol=1e-6
        )
    # the entry layer keeps no hook, and a second call (the in-place model: known) agrees
    assert all(not m._forward_hooks for m in net.modules())
    again = lumos.explain(net, x[:1], method="integrated_gradients", target=t[:1], n_steps=7)
    close(again.values, expected[:1], 1e-5)


def test_the_entry_layer_is_left_alone_when_hooked_or_when_the_model_raises() -> None:
    net, _ = _entry_models()["mlp"]
    x = np.random.default_rng(9).normal(size=(2, 5)).astype(np.float32)
    expected = _naive_ig(net, x, np.array([0, 1]), n_steps=6)
    seen: list[int] = []
    entry = (
        net[0]
        if isinstance(net, nn.Sequential)
        else next(m for m in net.modules() if isinstance(m, nn.Linear))
    )
    handle = entry.register_forward_hook(lambda m, a, out: seen.append(len(a[0])))
    try:  # a user's hook on the entry sees every point: no split
        e = lumos.explain(net, x, method="integrated_gradients", target=[0, 1], n_steps=6)
    finally:
        handle.remove()
    close(e.values, expected, 1e-5)
    assert seen[-1] == 2 * (6 + 2)  # the one pass: both rows' paths and endpoints
    raising = _Raises()
    with pytest.raises(RuntimeError, match="too many rows"):
        lumos.explain(raising, x[:1], method="integrated_gradients", target=0, n_steps=6)
    assert not raising.lin._forward_hooks
