"""feature_ablation equals captum's FeatureAblation on the reference networks."""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import FeatureAblation as CaptumFeatureAblation

import lumos
from lumos import zoo
from lumos.attribution._groups import patch_map


def test_equals_captum_on_the_mlp() -> None:
    net = zoo.torch_mlp(20, 3, hidden=(16, 8), seed=0)
    x = np.random.default_rng(0).normal(size=(7, 20)).astype(np.float32)
    baseline = np.random.default_rng(1).normal(size=(20,)).astype(np.float32)
    ours = lumos.explain(net, x, method="feature_ablation", baseline=baseline, target=2)
    theirs = CaptumFeatureAblation(net).attribute(
        torch.tensor(x), baselines=torch.tensor(baseline)[None], target=2
    )
    assert np.abs(ours.values).max() > 1e-3
    np.testing.assert_allclose(ours.values, theirs.numpy(), atol=1e-6)


def test_equals_captum_on_the_cnn_with_patches() -> None:
    net = zoo.torch_cnn((1, 12, 12), 4, channels=(4, 6), hidden=16, seed=1)
    x = np.random.default_rng(2).random((5, 1, 12, 12)).astype(np.float32)
    target = np.array([0, 1, 2, 3, 0])
    ours = lumos.explain(net, x, method="feature_ablation", patch_size=3, target=target)
    mask = torch.tensor(patch_map((1, 12, 12), 3))[None]
    theirs = CaptumFeatureAblation(net).attribute(
        torch.tensor(x), baselines=0.0, target=torch.tensor(target), feature_mask=mask
    )
    assert np.abs(ours.values).max() > 1e-4
    np.testing.assert_allclose(ours.values, theirs.numpy(), atol=1e-6)
