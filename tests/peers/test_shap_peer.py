"""exact_shapley and kernel_shap against shap's Exact and KernelExplainer on the same games."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch

import lumos
import lumos.attribution.shapley  # registers the Shapley explainers
from lumos import zoo


def _network(d: int, seed: int):
    net = zoo.torch_mlp(d, 2, hidden=(16,), seed=seed)

    def f(a: np.ndarray) -> np.ndarray:  # class-1 probability, one output as shap expects
        with torch.no_grad():
            return net(torch.as_tensor(a, dtype=torch.float32)).numpy()[:, 1].astype(np.float64)

    return f


def _shap_kernel(f, background: np.ndarray, x: np.ndarray, nsamples: int) -> np.ndarray:
    """shap's KernelExplainer (full regression, no feature selection), seeded through
    numpy's global generator, which is restored afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - shap draws from the global generator
    try:
        np.random.seed(0)  # noqa: NPY002
        explainer = shap.KernelExplainer(f, background)
        return explainer.shap_values(x, nsamples=nsamples, silent=True, l1_reg=False)
    finally:
        np.random.set_state(state)  # noqa: NPY002


def test_exact_equals_shap_exact_with_independent_masker() -> None:
    f = _network(8, seed=0)
    r = np.random.default_rng(0)
    x, background = r.normal(size=(3, 8)), r.normal(size=(15, 8))
    ours = lumos.explain(f, x, method="exact_shapley", background=background)
    masker = shap.maskers.Independent(background, max_samples=len(background))
    theirs = shap.explainers.Exact(f, masker)(x)
    assert np.abs(ours.values).max() > 1e-2
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-6)
    np.testing.assert_allclose(ours.base_value, theirs.base_values, atol=1e-6)


def test_kernel_shap_with_every_coalition_equals_shap_kernel_explainer() -> None:
    f = _network(7, seed=1)
    r = np.random.default_rng(1)
    x, background = r.normal(size=(4, 7)), r.normal(size=(12, 7))
    ours = lumos.explain(f, x, method="kernel_shap", background=background, n_samples=126)
    theirs = _shap_kernel(f, background, x, nsamples=126)  # 2^7 - 2: both enumerate all
    assert np.abs(ours.values).max() > 1e-2
    np.testing.assert_allclose(ours.values, theirs, atol=1e-6)
    np.testing.assert_array_equal(ours.stderr, 0.0)


@pytest.mark.parametrize("budget", [400, 800])
def test_kernel_shap_at_a_high_budget_is_as_close_to_exact_as_shap(budget: int) -> None:
    # 10 players, 1022 coalitions: both sample part of the coalition space
    f = _network(10, seed=2)
    r = np.random.default_rng(2)
    x, background = r.normal(size=(5, 10)), r.normal(size=(20, 10))
    exact = lumos.explain(f, x, method="exact_shapley", background=background).values
    ours = lumos.explain(
        f, x, method="kernel_shap", background=background, n_samples=budget, random_state=0
    )
    theirs = _shap_kernel(f, background, x, nsamples=budget)
    scale = np.abs(exact).max()
    assert scale > 1e-2
    # both within 5% of the largest exact value, and within 8% of each other
    assert np.abs(ours.values - exact).max() <= 0.05 * scale
    assert np.abs(theirs - exact).max() <= 0.05 * scale
    assert np.abs(ours.values - theirs).max() <= 0.08 * scale
    # lumos's standard errors describe its actual error
    assert np.abs(ours.values - exact).max() <= 4 * ours.stderr.max()
