"""Randomisation metrics: the sanity oracle of Adebayo et al. on the reference CNN, equality
with quantus 0.6 where the definitions agree, closed forms, the user's model left untouched,
reproducibility and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import lumos
from lumos.attribution._base import get_explainer
from lumos.datasets import digits
from lumos.errors import (
    InputError,
    ModelError,
    NotDifferentiableError,
    ShapeError,
    UnknownNameError,
)
from lumos.metrics import get_metric
from lumos.metrics import randomisation as R
from lumos.metrics._base import sharing
from lumos.zoo import fit, keras_cnn, torch_cnn

CNN_LAYERS = ["features.0", "features.3", "classifier.1", "classifier.3"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cnn() -> tuple[nn.Module, np.ndarray, float]:
    """The reference CNN trained briefly on digits(28) (2 epochs, ~0.3 s), 12 test images
    rounded to float32 (so quantus' float32 inputs are the same numbers)."""
    data = digits(28)
    model = torch_cnn((1, 28, 28), 10, seed=0)
    fit(model, data.x_train, data.y_train, epochs=2, validation_split=0, progress=False, seed=0)
    accuracy = float((lumos.wrap(model)(data.x_test).argmax(1) == data.y_test).mean())
    x = data.x_test[:12].astype(np.float32).astype(np.float64)
    return model, x, accuracy


@pytest.fixture(scope="module")
def saliency(cnn: tuple) -> lumos.Explanation:
    model, x, _ = cnn
    return lumos.explain(model, x, method="saliency")


@pytest.fixture
def quantus_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every layer torch seed 43: quantus (seed=42) runs ``torch.manual_seed(43)``
    before each layer's ``reset_parameters()``."""
    monkeypatch.setattr(R, "_layer_seeds", lambda rng, n: [43] * n)


def _lumos_explain_func(method: str, **params):
    def explain(model, inputs, targets, **kwargs):
        return lumos.explain(
            model, np.asarray(inputs), method=method, target=np.asarray(targets), **params
        ).values

    return explain


def _linear(weight: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.zero_()
    return layer.eval()


# ----------------------------------------------------------------------------- sanity oracle
@pytest.mark.parametrize("method", ["saliency", "grad_cam"])
def test_saliency_and_grad_cam_fail_cascading_randomisation(cnn: tuple, method: str) -> None:
    """Adebayo et al. (2018): on a trained CNN the rank correlation of the (absolute)
    saliency / Grad-CAM map with the original drops below 0.5 by the last layer."""
    model, x, accuracy = cnn
    assert accuracy > 0.8  # the network has learnt something: the check is meaningful
    e = lumos.explain(model, x, method=method)
    r = R.model_randomisation(model, e, random_state=0)
    assert r.name == "model_randomisation" and r.category == "randomisation"
    assert r.higher_is_better is False
    assert r.curve.shape == (len(CNN_LAYERS),)  # one point per parameterised layer
    assert r.curve_x == CNN_LAYERS[::-1] == r.extras["layers"]
    assert r.extras["similarity"].shape == (len(x), len(CNN_LAYERS))
    np.testing.assert_array_equal(r.scores, r.extras["similarity"][:, -1])
    assert r.n_valid >= 9  # a blank randomised Grad-CAM map has no rank correlation (NaN)
    assert r.mean < 0.5
    assert r.curve[-1] == pytest.approx(r.mean, abs=1e-12)


def test_model_independent_explanation_survives_randomisation(cnn: tuple) -> None:
    """The negative control: an 'explanation' that ignores the model (the input itself,
    like an edge detector) keeps similarity exactly 1, so the test can fail."""
    model, x, _ = cnn
    e = lumos.Explanation(values=x, data=x, target=np.zeros(len(x), dtype=int))

    def the_input(x, target, model):
        return x

    for order in R.ORDERS:
        r = R.model_randomisation(model, e, explainer=the_input, order=order, random_state=0)
        np.testing.assert_allclose(r.extras["similarity"], 1.0, atol=1e-12)
    eff = R.efficient_model_randomisation(model, e, explainer=the_input, random_state=0)
    np.testing.assert_allclose(eff.scores, 0.0, atol=1e-12)
    rl = R.random_logit(model, e, explainer=lambda x, target: x, random_state=0)
    np.testing.assert_allclose(rl.scores, 1.0, atol=1e-12)


# ----------------------------------------------------------------------------- quantus
@pytest.mark.parametrize("order", ["cascading", "independent"])
@pytest.mark.parametrize("similarity", ["spearman", "pearson"])
def test_model_randomisation_equals_quantus_mprt(
    cnn: tuple, saliency: lumos.Explanation, quantus_seeds: None, order: str, similarity: str
) -> None:
    import quantus
    from quantus.functions import similarity_func

    model, x, _ = cnn
    func = {
        "spearman": similarity_func.correlation_spearman,
        "pearson": similarity_func.correlation_pearson,
    }[similarity]
    metric = quantus.MPRT(
        similarity_func=func,
        layer_order="top_down" if order == "cascading" else "independent",
        seed=42,
        abs=True,
        normalise=False,
        disable_warnings=True,
        display_progressbar=False,
    )
    with torch.random.fork_rng(devices=[]):  # quantus seeds the global torch generator
        expected = metric(
            model=model,
            x_batch=x.astype(np.float32),
            y_batch=saliency.target,
            a_batch=saliency.values,
            explain_func=_lumos_explain_func("saliency"),
            channel_first=True,
            batch_size=64,
        )
    r = R.model_randomisation(model, saliency, order=order, similarity=similarity, abs=True)
    for j, name in enumerate(r.curve_x):
        np.testing.assert_allclose(r.extras["similarity"][:, j], expected[name], atol=1e-6)


def test_efficient_model_randomisation_equals_quantus(
    cnn: tuple, saliency: lumos.Explanation, quantus_seeds: None
) -> None:
    import quantus

    model, x, _ = cnn
    metric = quantus.EfficientMPRT(
        abs=False,
        normalise=False,
        complexity_func_kwargs={"n_bins": 100},
        seed=42,
        disable_warnings=True,
        display_progressbar=False,
    )
    with torch.random.fork_rng(devices=[]):
        expected = metric(
            model=model,
            x_batch=x.astype(np.float32),
            y_batch=saliency.target,
            a_batch=saliency.values,
            explain_func=_lumos_explain_func("saliency"),
            channel_first=True,
            batch_size=64,
        )
    r = R.efficient_model_randomisation(model, saliency, n_bins=100, abs=False)
    assert r.higher_is_better is True
    np.testing.assert_allclose(r.scores, expected, atol=1e-6)
    assert np.all(r.scores > 0)  # saliency gets noisier on the randomised CNN


def test_random_logit_equals_quantus(
    cnn: tuple, saliency: lumos.Explanation, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quantus
    from quantus.functions.similarity_func import correlation_spearman

    model, x, _ = cnn
    # quantus: np.random.seed(42), then one index in [0, 9) per row into the other classes
    index = np.random.RandomState(42).randint(0, 9, len(x))
    monkeypatch.setattr(R, "_draw_other_targets", lambda seeds, t, k: index + (index >= t))
    metric = quantus.RandomLogit(
        similarity_func=correlation_spearman,
        num_classes=10,
        seed=42,
        abs=False,
        normalise=False,
        disable_warnings=True,
        display_progressbar=False,
    )
    state = np.random.get_state()  # noqa: NPY002 - quantus reseeds the global generator
    try:
        expected = metric(
            model=model,
            x_batch=x.astype(np.float32),
            y_batch=saliency.target,
            a_batch=saliency.values,
            explain_func=_lumos_explain_func("saliency"),
            channel_first=True,
            batch_size=64,
        )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    r = R.random_logit(model, saliency, similarity="spearman", abs=False, random_state=0)
    np.testing.assert_allclose(r.scores, expected, atol=1e-6)
    assert np.all(r.extras["other_target"] != saliency.target)


# ----------------------------------------------------------------------------- closed forms
def test_random_logit_on_a_linear_model_is_the_rank_correlation_of_weight_rows() -> None:
    """Saliency of class k of f(x) = Wx is |W_k| for every row, so the score of row i is
    spearman(|W_t|, |W_c_i|)."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(5, 7))
    model = _linear(weight)
    x = rng.normal(size=(6, 7))
    target = np.array([0, 1, 2, 3, 4, 0])
    e = lumos.explain(model, x, method="saliency", target=target)
    r = R.random_logit(model, e, random_state=3)
    other = r.extras["other_target"]
    assert np.all(other != target) and np.all((other >= 0) & (other < 5))
    w32 = np.abs(weight.astype(np.float32).astype(np.float64))
    expected = [
        scipy.stats.spearmanr(w32[t], w32[c])[0] for t, c in zip(target, other, strict=True)
    ]
    np.testing.assert_allclose(r.scores, expected, atol=1e-12)
    # a row's draw depends on its own seed only: a subset of rows gets the same classes
    sub = R.random_logit(model, e[:3], random_state=3)
    np.testing.assert_array_equal(sub.extras["other_target"], other[:3])
    np.testing.assert_array_equal(sub.scores, r.scores[:3])
    # every other class is drawn, none more than chance allows (binomial 5 sd)
    many = lumos.explain(model, np.repeat(x[:1], 400, axis=0), method="saliency", target=0)
    drawn = R.random_logit(model, many, random_state=0).extras["other_target"]
    counts = np.bincount(drawn, minlength=5)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] - 100) < 5 * math.sqrt(400 * 0.25 * 0.75))


def test_efficient_model_randomisation_hand_computed() -> None:
    """Original map with two equally filled levels: H = ln 2; randomised map with four:
    H = ln 4; relative rise (ln 4 − ln 2) / ln 2 = 1."""
    model = _linear(np.ones((2, 8)))
    x = np.ones((3, 8))
    e = lumos.Explanation(values=np.tile([0.0, 1.0], (3, 4)), data=x, target=0)

    def four_levels(x, target, model):
        return np.tile([0.0, 1.0, 2.0, 3.0], (len(x), 2))

    r = R.efficient_model_randomisation(model, e, explainer=four_levels, random_state=0)
    np.testing.assert_allclose(r.extras["complexity_original"], math.log(2), atol=1e-12)
    np.testing.assert_allclose(r.extras["complexity_randomised"], math.log(4), atol=1e-12)
    np.testing.assert_allclose(r.scores, 1.0, atol=1e-12)
    # |−1| = |1|: with abs the original is constant, H = 0 and the rise is undefined
    signed = lumos.Explanation(values=np.tile([-1.0, 1.0], (3, 4)), data=x, target=0)
    r = R.efficient_model_randomisation(
        model, signed, explainer=four_levels, abs=True, random_state=0
    )
    assert np.all(np.isnan(r.scores)) and "entropy 0" in r.extras["nan_reason"]


def test_histogram_entropy_of_d_distinct_values_in_d_bins_is_ln_d() -> None:
    a = np.arange(10.0)[None]
    assert R.histogram_entropy(a, 10)[0] == pytest.approx(math.log(10), abs=1e-12)
    assert R.histogram_entropy(np.zeros((1, 10)), 10)[0] == 0.0


def _naive_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Wang et al. (2004), window by window: 11×11 Gaussian weights (σ = 1.5), K1 = 0.01,
    K2 = 0.03, mean over every window inside the image."""
    t = np.arange(-5, 6)
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append(
                (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


def test_ssim_is_wang_et_al_on_max_scaled_maps() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 1, 14, 15))
    b = a + rng.normal(scale=0.5, size=a.shape)
    got = R.ssim_rows(a, b)
    for i in range(2):
        sa, sb = a[i, 0] / np.abs(a[i, 0]).max(), b[i, 0] / np.abs(b[i, 0]).max()
        rng_i = max(sa.max(), sb.max()) - min(sa.min(), sb.min())
        assert got[i] == pytest.approx(_naive_ssim(sa, sb, rng_i), abs=1e-10)
    np.testing.assert_allclose(R.ssim_rows(a, 3.0 * a), 1.0, atol=1e-12)  # scale invariant
    assert np.isnan(R.ssim_rows(np.ones((1, 12, 12)), np.ones((1, 12, 12)))[0])


def test_ssim_similarity_in_model_randomisation(cnn: tuple, saliency: lumos.Explanation) -> None:
    model, _, _ = cnn
    r = R.model_randomisation(model, saliency, similarity="ssim", random_state=0)
    expected = R.ssim_rows(np.abs(saliency.values), np.abs(r.extras["randomised_values"]))
    np.testing.assert_allclose(r.scores, expected, atol=1e-12)
    assert r.mean < 0.5


def test_independent_order_scores_are_the_mean_over_layers(
    cnn: tuple, saliency: lumos.Explanation
) -> None:
    model, _, _ = cnn
    cas = R.model_randomisation(model, saliency, order="cascading", random_state=0)
    ind = R.model_randomisation(model, saliency, order="independent", random_state=0)
    np.testing.assert_allclose(ind.scores, ind.extras["similarity"].mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(ind.curve, ind.extras["similarity"].mean(axis=0), atol=1e-12)
    # step one randomises the output layer alone in both orders, with the same seed
    np.testing.assert_array_equal(cas.extras["similarity"][:, 0], ind.extras["similarity"][:, 0])
    assert "randomised_values" not in ind.extras


def test_normal_init_draws_gaussians_with_each_tensors_own_std() -> None:
    weight = np.random.default_rng(0).normal(scale=3.0, size=(4, 6))
    layer = _linear(weight)
    with torch.no_grad():
        layer.bias.copy_(torch.arange(4.0))
    w_std, b_std = (
        float(layer.weight.detach().double().std(unbiased=False)),
        float(np.std(np.arange(4))),
    )
    rand = R._Randomised(lumos.wrap(layer), None, "test")
    rand.randomise(0, 7, "normal")
    rng = np.random.default_rng(7)
    np.testing.assert_allclose(
        rand.net.weight.detach().numpy(), rng.standard_normal((4, 6)) * w_std, rtol=1e-6
    )
    np.testing.assert_allclose(
        rand.net.bias.detach().numpy(), rng.standard_normal(4) * b_std, rtol=1e-6
    )
    rand.restore(0)
    assert torch.equal(rand.net.weight, layer.weight) and torch.equal(rand.net.bias, layer.bias)


# ----------------------------------------------------------------------------- the user's model
def test_users_model_is_left_untouched(cnn: tuple) -> None:
    model, x, _ = cnn
    e = lumos.explain(model, x[:4], method="saliency")
    model.train()  # a training flag and a frozen parameter must survive
    model.features[0].bias.requires_grad_(False)
    try:
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        flags = [(m.training) for m in model.modules()]
        grads = [p.requires_grad for p in model.parameters()]
        stored = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
        for order in R.ORDERS:
            R.model_randomisation(model, e, order=order, random_state=0)
        R.efficient_model_randomisation(model, e, random_state=0)
        R.random_logit(model, e, random_state=0)
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert [m.training for m in model.modules()] == flags and all(flags)
        assert [p.requires_grad for p in model.parameters()] == grads
        for p, g in zip(model.parameters(), stored, strict=True):  # .grad untouched too
            assert (p.grad is None) == (g is None) and (g is None or torch.equal(p.grad, g))
    finally:
        model.features[0].bias.requires_grad_(True)
        model.eval()


def test_global_random_states_are_not_used(cnn: tuple, saliency: lumos.Explanation) -> None:
    model, _, _ = cnn
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    R.model_randomisation(model, saliency, random_state=0)
    R.efficient_model_randomisation(model, saliency, init="normal", random_state=0)
    R.random_logit(model, saliency, random_state=0)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


def test_keras_model_is_randomised_on_a_clone() -> None:
    model = keras_cnn((1, 12, 12), 3, seed=0)
    x = np.random.default_rng(0).uniform(size=(4, 1, 12, 12))
    e = lumos.explain(model, x, method="saliency")
    weights = [w.copy() for w in model.get_weights()]
    torch_state = torch.get_rng_state()
    r = R.model_randomisation(model, e, random_state=0)
    assert r.curve_x == ["output", "dense_1", "last_conv", "conv_1"]
    assert R.layer_names(model) == r.curve_x[::-1]
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.all(r.scores < 0.99)  # the weights changed, so did the map
    again = R.model_randomisation(model, e, random_state=0)
    np.testing.assert_array_equal(again.extras["similarity"], r.extras["similarity"])
    # init="default" redraws each kernel with the layer's Glorot-uniform initializer
    rand = R._Randomised(lumos.wrap(model), None, "test")
    rand.randomise(0, 5, "default")
    kernel, bias = rand.layers[0][1].get_weights()
    limit = math.sqrt(6 / (9 * 1 + 9 * 8))  # fan_in = 3·3·1, fan_out = 3·3·8
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    assert not np.array_equal(kernel, weights[0]) and np.all(bias == 0)


# ----------------------------------------------------------------------------- randomness
def test_reproducible_and_batch_size_invariant(cnn: tuple, saliency: lumos.Explanation) -> None:
    """Same seed, same result; the seeds do not depend on batch_size (what batch_size
    changes is the float32 rounding of the CNN's batched convolutions, ~1e-10 in the
    maps, which can break an exact tie of saliency values: hence atol=1e-4 on scores)."""
    model, _, _ = cnn
    a = R.model_randomisation(model, saliency, random_state=0)
    again = R.model_randomisation(model, saliency, random_state=0)
    g = R.model_randomisation(model, saliency, random_state=np.random.default_rng(0))
    b = R.model_randomisation(model, saliency, random_state=0, batch_size=5)
    c = R.model_randomisation(model, saliency, random_state=1)
    np.testing.assert_array_equal(again.extras["similarity"], a.extras["similarity"])
    np.testing.assert_array_equal(g.extras["similarity"], a.extras["similarity"])
    scale = np.abs(a.extras["randomised_values"]).max()
    np.testing.assert_allclose(
        b.extras["randomised_values"], a.extras["randomised_values"], atol=1e-6 * scale
    )
    np.testing.assert_allclose(b.extras["similarity"], a.extras["similarity"], atol=1e-4)
    assert np.abs(a.extras["similarity"] - c.extras["similarity"]).max() > 1e-2
    e1 = R.efficient_model_randomisation(model, saliency, random_state=0)
    e2 = R.efficient_model_randomisation(model, saliency, random_state=0, batch_size=5)
    np.testing.assert_array_equal(
        e1.extras["randomised_values"], a.extras["randomised_values"]
    )  # full randomisation = the cascade's last step
    np.testing.assert_allclose(e2.scores, e1.scores, atol=1e-4)
    l1 = R.random_logit(model, saliency, random_state=0)
    l2 = R.random_logit(model, saliency, random_state=0, batch_size=5)
    l3 = R.random_logit(model, saliency, random_state=1)
    np.testing.assert_array_equal(l2.extras["other_target"], l1.extras["other_target"])
    np.testing.assert_allclose(l2.scores, l1.scores, atol=1e-4)
    assert not np.array_equal(l1.extras["other_target"], l3.extras["other_target"])


def test_stochastic_explainer_reuses_its_own_seed(cnn: tuple) -> None:
    """A SmoothGrad explanation made with random_state=3 is re-run with that seed (the
    same noise on every randomised copy): on the unchanged model it gives the same map."""
    model, x, _ = cnn
    e = lumos.explain(model, x[:3], method="smoothgrad", n_samples=4, random_state=3)
    run = R._explain_on(lumos.wrap(model), e, None)
    np.testing.assert_allclose(run(x[:3], e.target, random_state=None), e.values, atol=1e-12)
    assert R._explainer_seed(e, None, np.random.default_rng(0)) is None
    a = R.model_randomisation(model, e, random_state=0)
    b = R.model_randomisation(model, e, random_state=0)
    np.testing.assert_array_equal(a.extras["similarity"], b.extras["similarity"])


# ----------------------------------------------------------------------------- explainers
def test_explainer_name_instance_and_function_agree(cnn: tuple) -> None:
    """Grad-CAM on a non-default layer: the explanation's own method, the name, an
    instance (rebuilt on the randomised copy, same layer) and a function taking model=."""
    model, x, _ = cnn
    e = lumos.explain(model, x[:5], method="grad_cam", layer="features.0")
    own = R.model_randomisation(model, e, random_state=0)
    named = R.model_randomisation(model, e, explainer="grad_cam", random_state=0)
    inst = get_explainer("grad_cam")(model, layer="features.0")
    instance = R.model_randomisation(model, e, explainer=inst, random_state=0)

    def function(x, target, model):
        return lumos.explain(model, x, method="grad_cam", target=target, layer="features.0")

    func = R.model_randomisation(model, e, explainer=function, random_state=0)
    for other in (named, instance, func):
        np.testing.assert_array_equal(other.extras["similarity"], own.extras["similarity"])
    last_conv = get_explainer("grad_cam")(model)  # default layer: features.3
    other_layer = R.model_randomisation(model, e, explainer=last_conv, random_state=0)
    assert not np.allclose(other_layer.extras["randomised_values"], own.extras["randomised_values"])


def test_evaluation_shares_the_randomised_explanations(cnn: tuple) -> None:
    model, x, _ = cnn
    e = lumos.explain(model, x[:4], method="saliency")
    calls = []

    def counted(x, target, model):
        calls.append(len(x))
        return lumos.explain(model, x, method="saliency", target=target).values

    with sharing():
        cas = R.model_randomisation(model, e, explainer=counted, random_state=0)
        assert len(calls) == len(CNN_LAYERS)
        eff = R.efficient_model_randomisation(model, e, explainer=counted, random_state=0)
        assert len(calls) == len(CNN_LAYERS)  # the fully randomised model: cascade's last step
        R.model_randomisation(model, e, explainer=counted, order="independent", random_state=0)
        assert len(calls) == 2 * len(CNN_LAYERS) - 1  # the output layer alone: shared
    np.testing.assert_array_equal(eff.extras["randomised_values"], cas.extras["randomised_values"])
    expected = R.histogram_entropy(cas.extras["randomised_values"], 100)
    np.testing.assert_allclose(eff.extras["complexity_randomised"], expected, atol=1e-12)
    R.efficient_model_randomisation(model, e, explainer=counted, random_state=0)
    assert len(calls) == 2 * len(CNN_LAYERS)  # outside sharing() nothing is kept


def test_registry_metadata() -> None:
    mprt = get_metric("model_randomisation")
    assert mprt.category == "randomisation" and not mprt.higher_is_better
    assert mprt.requires == {"explainer", "differentiable"}
    assert get_metric("efficient_model_randomisation").higher_is_better
    assert get_metric("random_logit").requires == {"explainer"}


# ----------------------------------------------------------------------------- bad input
def test_bad_input(cnn: tuple, saliency: lumos.Explanation) -> None:
    model = cnn[0]
    mr, eff, rl = R.model_randomisation, R.efficient_model_randomisation, R.random_logit
    with pytest.raises(UnknownNameError, match="layer order"):
        mr(model, saliency, order="top_down")
    with pytest.raises(UnknownNameError, match="similarity"):
        mr(model, saliency, similarity="kendall")
    with pytest.raises(UnknownNameError, match="similarity"):
        rl(model, saliency, similarity="ssim2")
    with pytest.raises(UnknownNameError, match="init"):
        mr(model, saliency, init="xavier")
    with pytest.raises(UnknownNameError, match="init"):
        eff(model, saliency, init="zeros")
    with pytest.raises(InputError, match="abs"):
        mr(model, saliency, abs="yes")
    with pytest.raises(InputError, match="batch_size"):
        mr(model, saliency, batch_size=0)
    with pytest.raises(InputError, match="n_bins"):
        eff(model, saliency, n_bins=1)
    with pytest.raises(InputError, match="random_state"):
        mr(model, saliency, random_state="seed")
    with pytest.raises(InputError, match="model="):
        mr(model, saliency, explainer=lambda x, target: x)
    with pytest.raises(InputError, match="Explanation"):
        mr(model, saliency.values)
    with pytest.raises(InputError, match="parameters are"):
        mr(model, saliency, layers=["features.0"])
    custom = lumos.Explanation(values=saliency.values, data=saliency.data, target=0)
    with pytest.raises(InputError, match="explainer="):
        mr(model, custom)
    # ssim needs images of at least 11×11
    tab = _linear(np.ones((2, 4)))
    tab_e = lumos.explain(tab, np.ones((2, 4)), method="saliency")
    with pytest.raises(ShapeError, match="images"):
        mr(tab, tab_e, similarity="ssim")
    small = torch_cnn((1, 8, 8), 3, seed=0)
    small_e = lumos.explain(small, np.ones((2, 1, 8, 8)), method="saliency")
    with pytest.raises(ShapeError, match="11"):
        rl(small, small_e, similarity="ssim")
    # black boxes cannot be randomised
    black_box = lumos.wrap(lambda z: z.reshape(len(z), -1)[:, :3], input_shape=(4,))
    bb_e = lumos.Explanation(values=np.ones((2, 4)), data=np.ones((2, 4)), target=0)
    with pytest.raises(NotDifferentiableError, match="black box"):
        mr(black_box, bb_e, explainer="feature_ablation")
    with pytest.raises(NotDifferentiableError):
        eff(black_box, bb_e, explainer="feature_ablation")
    # random_logit needs a second output; randomisation needs a parameter
    single = lumos.wrap(lambda z: z.sum(axis=1), input_shape=(4,))
    with pytest.raises(InputError, match="two outputs"):
        rl(single, bb_e, explainer="feature_ablation")
    no_params = nn.Sequential(nn.Flatten()).eval()
    np_e = lumos.explain(no_params, np.ones((2, 3)), method="saliency")
    with pytest.raises(ModelError, match="no layer with parameters"):
        mr(no_params, np_e)
