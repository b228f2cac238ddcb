"""lime against the reference implementation (the ``lime`` package).

Two kinds of check:

* exact: given the very perturbations lumos drew (recorded from a black box), lime's own
  ``LimeBase.explain_instance_with_data`` (kernel, feature selection, Ridge surrogate) gives
  the same coefficients, intercept, score and local prediction to 1e-9;
* statistical: ``LimeTabularExplainer`` / ``LimeImageExplainer`` draw their own samples, so at
  a high budget the two must agree up to Monte-Carlo noise: per row, at least 4 of the top 5
  features shared, Spearman correlation of |values| >= 0.9 and Pearson correlation of the
  signed values >= 0.99, weighted R² within 0.02.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from lime import lime_image
from lime.discretize import QuartileDiscretizer
from lime.lime_base import LimeBase
from lime.lime_tabular import LimeTabularExplainer
from scipy.stats import spearmanr
from sklearn.metrics import pairwise_distances

import lumos
import lumos.attribution.lime
from lumos import datasets, zoo
from lumos.attribution.lime import _segment

RNG = np.random.default_rng(11)
BG = RNG.normal(size=(300, 8)) * np.linspace(0.5, 2.0, 8) + np.linspace(-1, 1, 8)
W = RNG.normal(size=8)


def nonlinear(a: np.ndarray) -> np.ndarray:
    return np.stack([np.tanh(a @ W / 2), np.sin(a[:, 0]) * a[:, 1] + a[:, 5] ** 2], axis=1)


def lime_kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def recorded(x: np.ndarray, target: int, **kw) -> tuple[lumos.Explanation, np.ndarray]:
    calls: list[np.ndarray] = []

    def box(a: np.ndarray) -> np.ndarray:
        calls.append(np.array(a))
        return nonlinear(a) if a.ndim == 2 else image_model(a)

    e = lumos.explain(box, x, method="lime", target=target, random_state=2, **kw)
    return e, np.concatenate(calls[1:])


def image_model(a: np.ndarray) -> np.ndarray:
    top = a[:, 0, :6, :6].mean((1, 2))
    return np.stack([np.tanh(3 * top - a[:, 0].mean((1, 2))), a[:, 0, 6:].max((1, 2))], 1)


def lime_fit(data, labels, distances, label, num_features, feature_selection, width):
    base = LimeBase(partial(lime_kernel, kernel_width=width))
    intercept, exp, score, local = base.explain_instance_with_data(
        data, labels, distances, label, num_features, feature_selection=feature_selection
    )
    coef = np.zeros(data.shape[1])
    for j, c in exp:
        coef[j] = c
    return coef, intercept, score, local[0]


def assert_same_fit(e: lumos.Explanation, ref: tuple) -> None:
    coef, intercept, score, local = ref
    assert np.abs(coef).max() > 1e-3
    np.testing.assert_allclose(e.extras["coefficients"][0][: len(coef)], coef, atol=1e-9)
    np.testing.assert_allclose(e.base_value[0], intercept, atol=1e-9)
    np.testing.assert_allclose(e.extras["r2"][0], score, atol=1e-9)
    np.testing.assert_allclose(e.extras["prediction_local"][0], local, atol=1e-9)


@pytest.mark.parametrize(
    ("n_features", "selection"),
    [(None, "auto"), (3, "auto"), (4, "forward_selection"), (3, "highest_weights"), (7, "auto")],
)
def test_tabular_surrogate_equals_lime_base_on_the_same_samples(n_features, selection) -> None:
    x = BG[4:5] + 0.4
    e, s = recorded(x, 1, background=BG, n_samples=500, n_features=n_features,
                    feature_selection=selection)  # fmt: skip
    mean, std = BG.mean(0), BG.std(0)
    scaled = (s - mean) / std  # lime_tabular's scaled_data
    distances = pairwise_distances(scaled, scaled[:1]).ravel()
    ref = lime_fit(
        scaled, nonlinear(s), distances, 1, n_features or 8,
        "none" if n_features is None else selection, 0.75 * np.sqrt(8),
    )  # fmt: skip
    assert_same_fit(e, ref)
    if n_features is not None:
        assert (np.abs(e.values[0]) > 0).sum() == n_features


def test_discretized_surrogate_equals_lime_base_on_the_same_samples() -> None:
    x = BG[7:8]
    e, s = recorded(x, 0, background=BG, n_samples=800, discretize=True)
    disc = QuartileDiscretizer(BG, [], [str(i) for i in range(8)], random_state=0)
    same = (disc.discretize(s) == disc.discretize(x[0])).astype(float)  # lime's binary data
    assert same[0].all() and 0.15 < same[1:].mean() < 0.35
    distances = pairwise_distances(same, same[:1]).ravel()
    ref = lime_fit(same, nonlinear(s), distances, 0, 8, "none", 0.75 * np.sqrt(8))
    assert_same_fit(e, ref)


def test_image_surrogate_equals_lime_base_on_the_same_masks() -> None:
    x = np.random.default_rng(3).random((1, 1, 12, 12)) + 0.5
    seg = np.repeat(np.repeat(np.arange(12).reshape(3, 4), 4, 0), 3, 1)
    e, s = recorded(x, 0, groups=seg, hide="zero", n_samples=600, n_features=10)
    masks = np.stack([(s[:, 0][:, seg == g] != 0).all(1) for g in range(12)], 1).astype(float)
    distances = pairwise_distances(masks, masks[:1], metric="cosine").ravel()  # lime_image's
    ref = lime_fit(masks, image_model(s), distances, 0, 10, "auto", 0.25)
    assert_same_fit(e, ref)


@pytest.fixture(scope="module")
def cancer_mlp():
    data = datasets.breast_cancer()
    net = zoo.torch_mlp(30, 2, hidden=(32, 16), seed=0)
    zoo.fit(net, data.x_train, data.y_train, epochs=5, seed=0, progress=False)
    return data, net


def _agree(ours: np.ndarray, theirs: np.ndarray, top: int = 5) -> None:
    shared = set(np.argsort(-np.abs(ours))[:top]) & set(np.argsort(-np.abs(theirs))[:top])
    assert len(shared) >= top - 1
    assert spearmanr(np.abs(ours), np.abs(theirs))[0] >= 0.9
    assert np.corrcoef(ours, theirs)[0, 1] >= 0.99


@pytest.mark.parametrize("discretize", [False, True])
def test_agrees_with_lime_tabular_at_a_high_budget(cancer_mlp, discretize) -> None:
    data, net = cancer_mlp

    def predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(a, dtype=torch.float32)).double().numpy()

    x = data.x_test[:3]
    n = 20000
    ours = lumos.explain(
        net, x, method="lime", background=data.x_train, n_samples=n, target=1,
        discretize=discretize, random_state=0,
    )  # fmt: skip
    peer = LimeTabularExplainer(
        data.x_train, discretize_continuous=discretize, feature_selection="none", random_state=0
    )  # same kernel width: both default to 0.75 * sqrt(30)
    for i, row in enumerate(x):
        ex = peer.explain_instance(row, predict, labels=(1,), num_features=30, num_samples=n)
        theirs = np.zeros(30)
        for j, c in ex.local_exp[1]:
            theirs[j] = c
        _agree(ours.values[i], theirs)
        assert abs(ours.extras["r2"][i] - ex.score) < 0.02
        assert abs(ours.base_value[i] - ex.intercept[1]) < 0.05


def test_agrees_with_lime_image_on_the_same_superpixels() -> None:
    digits = datasets.digits(28)
    cnn = zoo.torch_cnn((1, 28, 28), 10, output="logit", seed=0)  # fixed random weights
    x = digits.x_test[:2]
    with torch.no_grad():
        target = cnn(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()

    def predict(rgb: np.ndarray) -> np.ndarray:  # lime_image hands over (n, H, W, 3)
        with torch.no_grad():
            return cnn(torch.as_tensor(rgb[..., :1], dtype=torch.float32).permute(0, 3, 1, 2))

    n = 3000
    ours = lumos.explain(cnn, x, method="lime", n_samples=n, target=target, random_state=0)
    peer = lime_image.LimeImageExplainer(random_state=0)
    for i in range(len(x)):
        seg = _segment(x[i], "slic", n_segments=50, compactness=10.0, kernel_size=4, scale=1)
        np.testing.assert_array_equal(ours.groups[i, 0], seg)
        ex = peer.explain_instance(
            x[i, 0], lambda a: predict(a).double().numpy(), labels=(int(target[i]),),
            top_labels=None, hide_color=None, num_samples=n, batch_size=500,
            segmentation_fn=lambda _img, seg=seg: seg,
        )  # fmt: skip
        k = int(seg.max()) + 1
        theirs = np.zeros(k)
        for j, c in ex.local_exp[int(target[i])]:
            theirs[j] = c
        _agree(ours.extras["coefficients"][i, :k], theirs)
        assert abs(ours.extras["r2"][i] - ex.score) < 0.02
