"""Axiomatic metrics on models where the answer is known: completeness gaps of integrated
gradients (0) and saliency (closed form) on linear models, non-sensitivity counted by hand,
and input invariance as Kindermans et al. report it (saliency invariant, input × gradient and
zero-baseline IG not, IG with a reference that moves with the data invariant) on a linear
model, a small MLP and small CNNs; quantus 0.6.0 where the definitions agree, and errors."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import quantus
import torch
from quantus.helpers.model.pytorch_model import PyTorchModel
from torch import nn

import lumos
from lumos import zoo
from lumos.attribution import get_explainer
from lumos.errors import InputError, ModelError, NonFiniteError, ShapeError, UnknownNameError
from lumos.metrics._base import get_metric
from lumos.metrics.axiomatic import completeness, input_invariance, non_sensitivity

D, K = 6, 3
_r = np.random.default_rng(0)
W = _r.normal(size=(K, D)).astype(np.float32).astype(np.float64)
W[:, [1, 4]] = 0.0  # the model ignores features 1 and 4
B = _r.normal(size=K).astype(np.float32).astype(np.float64)
X = _r.normal(size=(5, D)).astype(np.float32).astype(np.float64)
X[:, 2] = 0.0  # feature 2 sits at the zero baseline in every row
T = np.array([0, 2, 1, 1, 0])


def linear(dtype: torch.dtype = torch.float64) -> nn.Linear:
    lin = nn.Linear(D, K).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W))
        lin.bias.copy_(torch.as_tensor(B))
    return lin.eval()


def f_lin(x: np.ndarray) -> np.ndarray:
    return x @ W.T + B


def mlp() -> nn.Module:
    return zoo.torch_mlp(D, K, hidden=(16,), output="logit", seed=0)


def quiet(metric: quantus.Metric, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(metric(channel_first=True, **kwargs))


# ----------------------------------------------------------------------------- completeness
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_completeness_of_ig_on_a_linear_model_is_zero(dtype: torch.dtype, tol: float) -> None:
    lin = linear(dtype)
    e = lumos.explain(lin, X, method="integrated_gradients", target=T)
    r = completeness(lin, e)
    assert r.extras["reference"] == "explanation.base_value"
    np.testing.assert_allclose(r.scores, 0.0, atol=tol)
    assert r.extras["passed"].all()
    change = f_lin(X)[np.arange(5), T] - B[T]  # f(x) − f(0)
    np.testing.assert_allclose(r.extras["output_change"], change, atol=tol)
    # the same with the zero baseline evaluated instead of read off the explanation
    np.testing.assert_allclose(completeness(lin, e, baseline="zeros").scores, 0.0, atol=tol)


def test_completeness_of_saliency_is_the_known_gap() -> None:
    lin = linear()
    signed = lumos.explain(lin, X, method="saliency", target=T, absolute=False)
    r = completeness(lin, signed)  # saliency records no base_value: zero reference
    assert r.extras["reference"] == "zeros"
    w = W[T]
    np.testing.assert_allclose(r.scores, np.abs(w.sum(1) - (w * X).sum(1)), atol=1e-12)
    absolute = lumos.explain(lin, X, method="saliency", target=T)
    r = completeness(lin, absolute)
    expected = np.abs(np.abs(w).sum(1) - (w * X).sum(1))
    np.testing.assert_allclose(r.scores, expected, atol=1e-12)
    assert not r.extras["passed"].any()  # every row misses by far more than 5 %
    assert (r.extras["relative_gap"] > 0.05).all()


def test_completeness_baselines_hand_computed() -> None:
    lin = linear()
    c = 0.75
    e = lumos.explain(lin, X, method="integrated_gradients", target=T, baseline=c)
    w = W[T]
    np.testing.assert_allclose(completeness(lin, e, baseline=c).scores, 0.0, atol=1e-12)
    # against the zero reference the IG(c) sum misses f(c) − f(0) = c Σ w
    gap = completeness(lin, e, baseline="zeros").scores
    np.testing.assert_allclose(gap, np.abs(c * w.sum(1)), atol=1e-12)
    # "mean": each row's own mean, constant over its features
    mu = X.mean(axis=1)
    expected = np.abs((w * X).sum(1) - c * w.sum(1) - (w * (X - mu[:, None])).sum(1))
    np.testing.assert_allclose(completeness(lin, e, baseline="mean").scores, expected, atol=1e-12)
    # one baseline per row, and one for all rows given as an array
    per_row = np.full(X.shape, c)
    np.testing.assert_allclose(completeness(lin, e, baseline=per_row).scores, 0, atol=1e-12)
    np.testing.assert_allclose(completeness(lin, e, baseline=per_row[0]).scores, 0, atol=1e-12)


def test_completeness_tolerances() -> None:
    lin = linear()
    exact = W[T] * X
    e = lumos.Explanation(values=1.02 * exact, data=X, target=T, base_value=B[T])
    r = completeness(lin, e)
    np.testing.assert_allclose(r.extras["relative_gap"], 0.02, rtol=1e-9)
    assert r.extras["passed"].all()  # within 5 %
    assert not completeness(lin, e, rtol=0.01).extras["passed"].any()
    assert completeness(lin, e, rtol=0.0, atol=1.0).extras["passed"].all()
    # no output change: relative gap 0 when the sum is 0 too, inf otherwise
    zero = lumos.Explanation(values=np.zeros((2, D)), data=np.zeros((2, D)), target=[0, 1])
    r = completeness(lin, zero)
    np.testing.assert_array_equal(r.extras["relative_gap"], [0.0, 0.0])
    assert r.extras["passed"].all()
    off = lumos.Explanation(
        values=np.eye(2, D), data=np.zeros((2, D)), target=[0, 1], base_value=B[:2]
    )
    r = completeness(lin, off)
    assert np.isinf(r.extras["relative_gap"]).all() and not r.extras["passed"].any()


def test_completeness_pass_flag_equals_quantus_exact_check_with_zero_tolerance() -> None:
    # integer weights and inputs: every sum is exact in float32, so quantus' float equality
    # is meaningful; each row's minimum is 0, so quantus' "black" baseline is the zero input
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, -2.0, 3.0, 0.0], [2.0, 1.0, -1.0, 4.0]]))
        net[1].bias.copy_(torch.tensor([0.5, -1.5]))
    x = np.array([[0.0, 1.0, 2.0, 1.0], [2.0, 0.0, 1.0, 2.0], [1.0, 2.0, 0.0, 0.0]])
    x = x.reshape(3, 1, 2, 2)
    y = np.array([0, 1, 1])
    w = net[1].weight.detach().numpy().astype(np.float64)
    exact = (w[y] * x.reshape(3, 4)).reshape(x.shape)
    model = lumos.wrap(net, input_shape=(1, 2, 2))
    for a in (exact, exact + np.array([0.0, 0.25, 0.0]).reshape(3, 1, 1, 1) * (x > 0)):
        theirs = quiet(
            quantus.Completeness(normalise=False, abs=False, disable_warnings=True),
            model=net, x_batch=x.astype(np.float32), y_batch=y, a_batch=a.copy(),
        )  # fmt: skip
        e = lumos.Explanation(values=a, data=x, target=y)
        ours = completeness(model, e, baseline="zeros", rtol=0.0, atol=0.0).extras["passed"]
        np.testing.assert_array_equal(ours, theirs)
    # quantus' default normalise=True divides by the batch maximum: the exact decomposition
    # then fails its check, while lumos passes it
    default = quiet(
        quantus.Completeness(disable_warnings=True),
        model=net, x_batch=x.astype(np.float32), y_batch=y, a_batch=exact.copy(),
    )  # fmt: skip
    assert not default.any()
    e = lumos.Explanation(values=exact, data=x, target=y)
    assert completeness(model, e, baseline="zeros").extras["passed"].all()


def test_completeness_uniform_baseline_is_reproducible_and_batch_invariant() -> None:
    lin = linear()
    e = lumos.explain(lin, X, method="input_x_gradient", target=T)
    a = completeness(lin, e, baseline="uniform", random_state=3).scores
    b = completeness(lin, e, baseline="uniform", random_state=3, batch_size=1).scores
    c = completeness(lin, e, baseline="uniform", random_state=4).scores
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_completeness_bad_input() -> None:
    lin = linear()
    e = lumos.explain(lin, X, method="integrated_gradients", target=T)
    for kwargs, err in (
        ({"rtol": -0.1}, InputError),
        ({"atol": float("nan")}, InputError),
        ({"rtol": "5%"}, InputError),
        ({"baseline": "black"}, InputError),
        ({"baseline": np.zeros(D + 1)}, ShapeError),
    ):
        with pytest.raises(err):
            completeness(lin, e, **kwargs)
    with pytest.raises(InputError, match="Explanation"):
        completeness(lin, e.values)
    nan_base = lumos.Explanation(values=e.values, data=X, target=T, base_value=np.full(5, np.nan))
    with pytest.raises(NonFiniteError, match="base_value"):
        completeness(lin, nan_base)


# ----------------------------------------------------------------------------- non-sensitivity
def test_non_sensitivity_counted_by_hand() -> None:
    lin = linear()
    # removing feature i (to 0) changes f_t by w_ti x_i: insensitive = {1, 4} (w = 0) ∪ {2}
    ig = lumos.explain(lin, X, method="integrated_gradients", target=T)  # a = w ⊙ x
    r = non_sensitivity(lin, ig)
    np.testing.assert_array_equal(r.scores, 0)
    np.testing.assert_array_equal(r.extras["n_insensitive"], 3)
    np.testing.assert_allclose(r.extras["output_change"], np.abs(W[T] * X), atol=1e-12)
    # signed saliency a = w: feature 2 (x = 0) is ignored at these rows but attributed
    sal = lumos.explain(lin, X, method="saliency", target=T, absolute=False)
    r = non_sensitivity(lin, sal)
    np.testing.assert_array_equal(r.scores, 1)
    np.testing.assert_array_equal(r.extras["insensitive_attributed"], 1)
    np.testing.assert_array_equal(r.extras["zero_but_sensitive"], 0)
    # by hand: a = [1, 0, 0, 0, 0, 1] → zero set {1, 2, 3, 4}; Δ {1, 2, 4} = {3}
    hand = lumos.Explanation(values=np.tile([1.0, 0, 0, 0, 0, 1], (5, 1)), data=X, target=T)
    r = non_sensitivity(lin, hand)
    np.testing.assert_array_equal(r.scores, 1)
    np.testing.assert_array_equal(r.extras["zero_but_sensitive"], 1)
    # with a baseline of 1 feature 2 moves the output too: IG(0) now misses it
    r = non_sensitivity(lin, ig, baseline=1.0)
    np.testing.assert_array_equal(r.scores, 1)
    np.testing.assert_array_equal(r.extras["zero_but_sensitive"], 1)


def test_non_sensitivity_thresholds_are_relative_to_the_row() -> None:
    lin = linear()
    a = W[T] * X
    a[:, 1] = 1e-7 * np.abs(a).max(axis=1)  # tiny attribution on an ignored feature
    scaled = lumos.Explanation(values=1e6 * a, data=X, target=T)
    e = lumos.Explanation(values=a, data=X, target=T)
    np.testing.assert_array_equal(non_sensitivity(lin, e).scores, 0)
    np.testing.assert_array_equal(non_sensitivity(lin, scaled).scores, 0)
    # absolute: the scaled copy's 1e-7 · 1e6 · max is no longer "zero"
    np.testing.assert_array_equal(non_sensitivity(lin, scaled, relative=False).scores, 1)
    # an all-zero row: every feature counts as zero-attributed → Δ = the sensitive ones
    zero = lumos.Explanation(values=np.zeros_like(X), data=X, target=T)
    np.testing.assert_array_equal(non_sensitivity(lin, zero).scores, D - 3)


def _quantus_net() -> tuple[nn.Module, lumos.Model, np.ndarray, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    with torch.no_grad():
        net[1].weight[:, [1, 5, 9]] = 0.0
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(4, 1, 4, 4)).astype(np.float32).astype(np.float64)
    x[:, 0, 3, 3] = 0.875  # not a row minimum, so removing it moves the output
    y = np.array([0, 1, 2, 0])
    w = net[1].weight.detach().numpy().astype(np.float64)
    mins = x.reshape(4, -1).min(axis=1)
    a = (w[y] * (x.reshape(4, -1) - mins[:, None])).reshape(x.shape)
    a[:, 0, 0, 1] = 0.4  # attributed although the model ignores it
    a[:, 0, 3, 3] = 0.0  # sensitive but not attributed
    return net, lumos.wrap(net, input_shape=(1, 4, 4)), x, y, a


def test_non_sensitivity_equals_quantus() -> None:
    net, model, x, y, a = _quantus_net()
    # quantus' "black" baseline is each row's minimum
    base = np.broadcast_to(x.reshape(4, -1).min(axis=1)[:, None, None, None], x.shape)
    e = lumos.Explanation(values=a, data=x, target=y)

    def theirs(rows: slice, normalise: bool) -> np.ndarray:
        metric = quantus.NonSensitivity(
            eps=1e-5, features_in_step=1, normalise=normalise, disable_warnings=True
        )
        return quiet(
            metric, model=net, x_batch=x[rows].astype(np.float32), y_batch=y[rows],
            a_batch=a[rows].copy(), softmax=False,
        )  # fmt: skip

    ours = non_sensitivity(model, e, baseline=base, relative=False)
    np.testing.assert_array_equal(ours.scores, theirs(slice(None), normalise=False))
    assert (ours.scores == 2).all()  # the two planted violations
    # relative=True is quantus' normalise=True on a batch of one row
    ours = non_sensitivity(model, e, baseline=base).scores
    np.testing.assert_array_equal(ours, [theirs(slice(i, i + 1), True)[0] for i in range(4)])


def test_non_sensitivity_batch_size_and_seed() -> None:
    lin = linear()
    e = lumos.explain(lin, X, method="input_x_gradient", target=T)
    ref = non_sensitivity(lin, e, baseline="uniform", random_state=0)
    for bs in (1, 7):
        r = non_sensitivity(lin, e, baseline="uniform", random_state=0, batch_size=bs)
        np.testing.assert_array_equal(r.extras["output_change"], ref.extras["output_change"])
    other = non_sensitivity(lin, e, baseline="uniform", random_state=1)
    assert not np.allclose(other.extras["output_change"], ref.extras["output_change"])


def test_non_sensitivity_bad_input() -> None:
    lin = linear()
    e = lumos.explain(lin, X, method="input_x_gradient", target=T)
    for kwargs in (
        {"eps": 0.0},
        {"eps": 1.0},
        {"eps": -1.0, "relative": False},
        {"output_eps": 0.0},
        {"output_eps": float("inf")},
        {"relative": 1},
        {"baseline": "black"},
    ):
        with pytest.raises(InputError):
            non_sensitivity(lin, e, **kwargs)


# ----------------------------------------------------------------------------- input invariance
def _state(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in module.state_dict().items()}


def test_input_invariance_on_a_linear_model_matches_kindermans() -> None:
    lin = linear()
    before = _state(lin)
    m = -1.0
    sal = input_invariance(lin, lumos.explain(lin, X, method="saliency", target=T))
    np.testing.assert_array_equal(sal.scores, 1.0)
    assert sal.extras["invariant"].all() and sal.extras["compensation"] == "bias"
    np.testing.assert_allclose(sal.extras["output_gap"], 0.0, atol=1e-12)
    # input × gradient and IG with a zero baseline change by m ⊙ w: every feature with w ≠ 0
    for method in ("input_x_gradient", "integrated_gradients"):
        e = lumos.explain(lin, X, method=method, target=T)
        r = input_invariance(lin, e, shift=m)
        np.testing.assert_allclose(r.extras["shifted_values"] - e.values, m * W[T], atol=1e-12)
        np.testing.assert_allclose(r.scores, (W[T] == 0).mean(axis=1))  # only w = 0 survive
        assert not r.extras["invariant"].any()
    # IG whose baseline moves with the data is invariant
    ig = lumos.explain(lin, X, method="integrated_gradients", target=T)
    r = input_invariance(lin, ig, shift=m, shift_baseline=True)
    np.testing.assert_array_equal(r.scores, 1.0)
    np.testing.assert_allclose(r.extras["max_abs_diff"], 0.0, atol=1e-12)
    # the user's model is untouched and carries no hooks
    after = _state(lin)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert not lin._forward_hooks and not lin._forward_pre_hooks


def test_input_invariance_on_an_mlp() -> None:
    net = mlp()
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(4, D))
    shift = rng.uniform(-1, 1, size=D)  # a shift per feature
    sal = input_invariance(net, lumos.explain(net, x, method="saliency"), shift=shift)
    np.testing.assert_array_equal(sal.scores, 1.0)
    grad = lumos.explain(net, x, method="saliency", absolute=False)
    ixg = lumos.explain(net, x, method="input_x_gradient")
    r = input_invariance(net, ixg, shift=shift)
    # the shifted input × gradient is (x + m) ⊙ ∇f: it moves by exactly m ⊙ ∇f
    np.testing.assert_allclose(r.extras["shifted_values"] - ixg.values, shift * grad.values,
                               atol=1e-5)  # fmt: skip
    assert r.scores.max() < 0.5
    ig = lumos.explain(net, x, method="integrated_gradients")
    assert input_invariance(net, ig, shift=shift).scores.max() < 0.5
    np.testing.assert_array_equal(
        input_invariance(net, ig, shift=shift, shift_baseline=True).scores, 1.0
    )
    # a stochastic explainer with a fixed seed draws the same noise on both inputs; under a
    # constant shift each row's range, which scales SmoothGrad's noise, is unchanged
    sg = lumos.explain(net, x, method="smoothgrad", n_samples=8, random_state=0)
    np.testing.assert_array_equal(input_invariance(net, sg, shift=-1.0).scores, 1.0)


def test_input_invariance_on_a_padded_cnn_uses_the_exact_offset() -> None:
    cnn = zoo.torch_cnn((1, 8, 8), 3, seed=0)
    x = np.random.default_rng(3).uniform(size=(3, 1, 8, 8))
    sal = input_invariance(cnn, lumos.explain(cnn, x, method="saliency"))
    assert sal.extras["compensation"] == "output_offset"
    np.testing.assert_allclose(sal.extras["output_gap"], 0.0, atol=1e-6)
    np.testing.assert_array_equal(sal.scores, 1.0)
    ixg = input_invariance(cnn, lumos.explain(cnn, x, method="input_x_gradient"))
    assert not ixg.extras["invariant"].any()
    # Grad-CAM with its layer given as a module of the user's model: mapped to the copy
    cam = get_explainer("grad_cam")(cnn, layer=cnn.features[3])
    r = input_invariance(cnn, cam.explain(x), explainer=cam)
    np.testing.assert_array_equal(r.scores, 1.0)
    assert not any(m._forward_hooks for m in cnn.modules())
    # one shift per channel, given as (C, 1, 1)
    two = zoo.torch_cnn((2, 8, 8), 3, seed=1)
    x2 = np.random.default_rng(6).uniform(size=(2, 2, 8, 8))
    per_channel = np.array([-1.0, 0.5]).reshape(2, 1, 1)
    r = input_invariance(two, lumos.explain(two, x2, method="saliency"), shift=per_channel)
    np.testing.assert_array_equal(r.scores, 1.0)
    assert r.extras["output_gap"].max() < 1e-6


def test_quantus_bias_shift_is_wrong_on_a_padded_convolution() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 36, 3)
    ).eval()
    x = np.random.default_rng(4).uniform(size=(3, 1, 6, 6))
    f_x = net(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    shifted = PyTorchModel(net, channel_first=True).add_mean_shift_to_first_layer(-1, (1, 1, 6, 6))
    q = shifted(torch.as_tensor(x - 1, dtype=torch.float32)).detach().numpy()
    assert np.abs(q - f_x).max() > 1e-2  # the border pixels see W·m only partly
    r = input_invariance(net, lumos.explain(net, x, method="saliency"))
    assert r.extras["output_gap"].max() < 1e-6
    # quantus shifts the first registered submodule and reads its out_channels: a Linear
    # first layer, or a model whose first child is a container, cannot be shifted at all
    for other, shape in (
        (nn.Sequential(linear(torch.float32)), (1, D)),
        (zoo.torch_cnn((1, 8, 8), 3, seed=0), (1, 1, 8, 8)),
    ):
        with pytest.raises(AttributeError, match="out_channels"):
            PyTorchModel(other, channel_first=True).add_mean_shift_to_first_layer(-1, shape)
    lin = linear()
    r = input_invariance(lin, lumos.explain(lin, X, method="saliency", target=T))
    assert r.extras["output_gap"].max() < 1e-12


def test_input_invariance_equals_quantus_without_padding() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3)).eval()
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(4, 1, 6, 6)).astype(np.float32).astype(np.float64)
    y = np.array([0, 1, 2, 1])
    # lumos' shifted copy is quantus' shifted model (bias compensation, same function)
    shifted = PyTorchModel(net, channel_first=True).add_mean_shift_to_first_layer(-1, (1, 1, 6, 6))
    for method in ("saliency", "input_x_gradient"):

        def explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object) -> Any:
            return lumos.explain(model, inputs, method=method, target=targets).values  # noqa: B023

        e = lumos.explain(net, x, method=method, target=y)
        r = input_invariance(net, e)
        assert r.extras["compensation"] == "bias"
        theirs = explain(shifted, (x - 1).astype(np.float32), y)
        np.testing.assert_allclose(r.extras["shifted_values"], theirs, atol=1e-6)
        flags = quiet(
            quantus.InputInvariance(disable_warnings=True),
            model=net, x_batch=x.astype(np.float32), y_batch=y, a_batch=e.values.copy(),
            explain_func=explain,
        )  # fmt: skip
        np.testing.assert_array_equal(r.extras["invariant"], flags)
        assert flags.all() == (method == "saliency")


def test_input_invariance_with_a_callable_and_a_given_shifted_model() -> None:
    lin = linear()

    def gradient(module: nn.Module, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
        out = module(t)[torch.arange(len(x)), torch.as_tensor(target)].sum()
        return torch.autograd.grad(out, t)[0].numpy()

    e = lumos.Explanation(values=gradient(lin, X, T), data=X, target=T)
    np.testing.assert_array_equal(input_invariance(lin, e, explainer=gradient).scores, 1.0)
    with pytest.raises(InputError, match="f\\(model, x, target\\)"):
        input_invariance(lin, e, explainer=lambda x, t: x)

    # a black box with its shifted twin given: feature ablation with a zero baseline moves
    # by w ⊙ m, with the baseline moved along it is invariant
    m = 0.5
    box = lumos.wrap(f_lin)
    twin = lumos.wrap(lambda z: z @ W.T + (B - m * W.sum(axis=1)))
    fa = lumos.explain(box, X, method="feature_ablation", target=T)
    r = input_invariance(box, fa, shift=m, shifted_model=twin)
    assert r.extras["compensation"] == "given"
    np.testing.assert_allclose(r.extras["shifted_values"] - fa.values, m * W[T], atol=1e-12)
    r = input_invariance(box, fa, shift=m, shifted_model=twin, shift_baseline=True)
    np.testing.assert_array_equal(r.scores, 1.0)
    with pytest.raises(InputError, match="undo the shift"):
        input_invariance(box, fa, shift=m, shifted_model=box)
    with pytest.raises(ModelError, match="shifted_model"):
        input_invariance(box, fa, shift=m)


def test_input_invariance_needs_compensable_models() -> None:
    class Squared(nn.Module):  # what reaches the Linear layer is not x + constant
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(D, K).double()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x**2)

    sq = Squared().eval()
    e = lumos.explain(sq, X + 2.0, method="saliency", target=T)
    with pytest.raises(ModelError, match="constant"):
        input_invariance(sq, e)

    class NoLayer(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x.sum(1), (x**2).sum(1)], dim=1)

    free = lumos.wrap(NoLayer(), input_shape=(D,))
    e = lumos.explain(free, X, method="saliency", target=0)
    with pytest.raises(ModelError, match="no Linear / Conv"):
        input_invariance(free, e)


def test_input_invariance_bad_input() -> None:
    lin = linear()
    e = lumos.explain(lin, X, method="saliency", target=T)
    for kwargs, err in (
        ({"shift": 0.0}, InputError),
        ({"shift": np.zeros(D)}, InputError),
        ({"shift": np.ones(D + 1)}, ShapeError),
        ({"shift": float("nan")}, NonFiniteError),
        ({"shift": True}, InputError),
        ({"tolerance": 1.0}, InputError),
        ({"tolerance": -1e-3}, InputError),
        ({"shift_baseline": "yes"}, InputError),
        ({"explainer": 3}, InputError),
        ({"explainer": "no_such_method"}, UnknownNameError),
    ):
        with pytest.raises(err):
            input_invariance(lin, e, **kwargs)
    custom = lumos.Explanation(values=e.values, data=X, target=T)  # method "custom"
    with pytest.raises(InputError, match="explainer="):
        input_invariance(lin, custom)
    sg = lumos.explain(lin, X, method="smoothgrad", target=T, n_samples=4)  # no seed
    with pytest.raises(InputError, match="random_state"):
        input_invariance(lin, sg)
    bg = lumos.explain(lin, X, method="integrated_gradients", target=T, background=X)
    assert input_invariance(lin, bg).scores.shape == (len(X),)  # its own explainer, in memory
    loaded = lumos.Explanation(  # as after save / load: the background is only a shape
        values=bg.values, data=bg.data, target=bg.target, method=bg.method, params=bg.params
    )
    with pytest.raises(InputError, match="Explainer instance"):
        input_invariance(lin, loaded)


def test_registry_metadata() -> None:
    assert get_metric("completeness").higher_is_better is False
    assert get_metric("non_sensitivity").higher_is_better is False
    info = get_metric("input_invariance")
    assert info.higher_is_better is True and info.category == "axiomatic"
    assert info.requires == {"explainer", "differentiable"}
