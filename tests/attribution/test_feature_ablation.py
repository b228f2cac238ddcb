"""feature_ablation against closed forms on linear models, and its invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lumos
from lumos.attribution import FeatureAblation
from lumos.errors import InputError, ShapeError

RNG = np.random.default_rng(42)
W = RNG.normal(size=5)
C = 0.7


def linear(a: np.ndarray) -> np.ndarray:
    return a @ W + C


def test_linear_model_closed_form() -> None:
    x = RNG.normal(size=(9, 5))
    background = RNG.normal(loc=2.0, size=(50, 5))
    e = lumos.explain(linear, x, method="feature_ablation", background=background)
    mean = background.mean(axis=0)
    np.testing.assert_allclose(e.values, W * (x - mean), atol=1e-12)
    np.testing.assert_allclose(e.base_value, linear(mean[None]).repeat(9), atol=1e-12)
    np.testing.assert_allclose(e.prediction, linear(x), atol=1e-12)
    # for a linear model, ablation is additive: Σ values = f(x) − f(baseline)
    np.testing.assert_allclose(e.values.sum(1), e.prediction - e.base_value, atol=1e-12)
    assert e.method == "feature_ablation" and e.params["baseline"] is None
    assert e.provenance["input_shape"] == [5] and e.provenance["model_fingerprint"]
    np.testing.assert_allclose(e.extras["group_values"], e.values, atol=0)


def test_baselines_scalar_per_row_and_zero() -> None:
    x = RNG.normal(size=(4, 5))
    e0 = lumos.explain(linear, x, method="feature_ablation")
    np.testing.assert_allclose(e0.values, W * x, atol=1e-12)
    e1 = lumos.explain(linear, x, method="feature_ablation", baseline=1.5)
    np.testing.assert_allclose(e1.values, W * (x - 1.5), atol=1e-12)
    per_row = RNG.normal(size=(4, 5))
    e2 = lumos.explain(linear, x, method="feature_ablation", baseline=per_row)
    np.testing.assert_allclose(e2.values, W * (x - per_row), atol=1e-12)
    np.testing.assert_allclose(e2.base_value, linear(per_row), atol=1e-12)
    with pytest.raises(ShapeError, match="one input of shape"):
        lumos.explain(linear, x, method="feature_ablation", baseline=np.zeros(3))
    with pytest.raises(InputError, match="background"):
        lumos.explain(linear, x, method="feature_ablation", baseline="mean")


def test_groups_attribute_the_joint_removal() -> None:
    x = RNG.normal(size=(3, 5))
    quad = lambda a: linear(a) + a[:, 0] * a[:, 1]  # noqa: E731 - an interaction within a group
    e = lumos.explain(quad, x, method="feature_ablation", groups=[[0, 1], [3]])
    joint = W[0] * x[:, 0] + W[1] * x[:, 1] + x[:, 0] * x[:, 1]
    np.testing.assert_allclose(e.values[:, 0], joint, atol=1e-12)
    np.testing.assert_allclose(e.values[:, 1], joint, atol=1e-12)
    np.testing.assert_allclose(e.values[:, 3], W[3] * x[:, 3], atol=1e-12)
    np.testing.assert_array_equal(e.values[:, [2, 4]], 0.0)  # in no group: never perturbed
    np.testing.assert_array_equal(e.groups, [0, 0, -1, 1, -1])
    assert e.extras["group_values"].shape == (3, 2)
    with pytest.raises(InputError, match="overlaps"):
        lumos.explain(linear, x, method="feature_ablation", groups=[[0, 1], [1]])


def test_image_patches_and_per_row_segment_maps() -> None:
    w_img = RNG.normal(size=(2, 6, 6))
    img_model = lambda a: (a * w_img).sum(axis=(1, 2, 3))  # noqa: E731
    x = RNG.normal(size=(3, 2, 6, 6))
    e = lumos.explain(img_model, x, method="feature_ablation", patch_size=3)
    contrib = w_img * x
    for r in range(3):
        for pi in range(2):
            for pj in range(2):
                block = (slice(None), slice(3 * pi, 3 * pi + 3), slice(3 * pj, 3 * pj + 3))
                expected = contrib[r][block].sum()
                np.testing.assert_allclose(e.values[r][block], expected, atol=1e-10)
    assert e.groups.shape == (2, 6, 6) and e.groups.max() == 3
    seg = RNG.integers(0, 4, size=(3, 2, 6, 6))
    e2 = lumos.explain(img_model, x, method="feature_ablation", groups=seg)
    for r in range(3):
        for g in range(4):
            np.testing.assert_allclose(
                e2.values[r][seg[r] == g], contrib[r][seg[r] == g].sum(), atol=1e-10
            )
    with pytest.raises(ShapeError, match="groups= instead"):
        lumos.explain(linear, RNG.normal(size=(2, 5)), method="feature_ablation", patch_size=2)


def test_batch_size_does_not_change_results() -> None:
    x = RNG.normal(size=(11, 5))
    f = lambda a: np.tanh(a * W).sum(1, keepdims=True) * np.array([[1.0, -0.5]])  # noqa: E731
    results = [
        lumos.explain(f, x, method="feature_ablation", target=1, batch_size=bs).values
        for bs in (1, 7, 1024)
    ]
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_targets_dataframes_and_the_explainer_object() -> None:
    names = list("abcde")
    frame = pd.DataFrame(RNG.normal(size=(4, 5)), columns=names)
    two = lambda a: np.stack([linear(a), -2 * linear(a)], 1)  # noqa: E731
    model = lumos.wrap(two, class_names=["pos", "neg"])
    e = FeatureAblation(model).explain(frame, target="neg")
    assert e.feature_names == names and e.target.tolist() == [1] * 4
    np.testing.assert_allclose(e.values, -2 * W * frame.to_numpy(), atol=1e-12)
    default = FeatureAblation(model).explain(frame)
    np.testing.assert_array_equal(default.target, np.argmax(two(frame.to_numpy()), 1))
    assert e.top_features(1)[0][0][0] == names[int(np.argmax(np.abs(W * frame.iloc[0])))]


def test_torch_path_equals_numpy_path_and_is_batch_invariant() -> None:
    import torch

    from lumos import zoo

    net = zoo.torch_cnn((1, 12, 12), 3, channels=(4, 4), hidden=8, seed=3)
    x = np.random.default_rng(5).random((4, 1, 12, 12))
    black_box = lumos.wrap(lambda a: net(torch.as_tensor(a, dtype=torch.float32)).detach().numpy())
    assert lumos.wrap(net).array_ops().is_torch and not black_box.array_ops().is_torch
    for kwargs in ({"patch_size": 4}, {}, {"baseline": np.random.default_rng(6).random(x.shape)}):
        ref = lumos.explain(black_box, x, method="feature_ablation", target=1, **kwargs).values
        runs = [
            lumos.explain(net, x, method="feature_ablation", target=1, batch_size=bs, **kwargs)
            for bs in (1, 7, 1024)
        ]
        assert np.abs(ref).max() > 1e-4
        for run in runs:
            np.testing.assert_allclose(run.values, ref, atol=1e-6)
