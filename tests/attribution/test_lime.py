"""lime: closed forms on linear models, a naive weighted-ridge reference, sampling, images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import truncnorm
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances

import lumos
import lumos.attribution.lime
from lumos.attribution.lime import Lime, _segment
from lumos.errors import InputError, ShapeError, UnknownNameError

RNG = np.random.default_rng(7)
W = np.array([1.5, -2.0, 0.5, 0.0, 3.0])
C = 0.4
BG = RNG.normal(size=(400, 5))  # unit-variance features
STD = np.array([1.0, 2.0, 0.5, 1.0, 3.0])


def linear(a: np.ndarray) -> np.ndarray:
    return a @ W + C


def nonlinear(a: np.ndarray) -> np.ndarray:
    return np.stack([np.tanh(a @ W / 3), np.sin(a[:, 0]) + a[:, 1] * a[:, 2]], axis=1)


class Recorder:
    """A black box that keeps every batch it is called on."""

    def __init__(self, f):
        self.f, self.calls = f, []

    def __call__(self, a: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(a))
        return self.f(a)

    def samples(self) -> np.ndarray:
        return np.concatenate(self.calls[1:])  # calls[0] is explain()'s own f(x)


def kernel(d: np.ndarray, width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / width**2))


def test_linear_model_recovers_weight_times_std() -> None:
    for bg in (BG, BG * STD):
        x = bg[:6] + 0.2
        e = lumos.explain(linear, x, method="lime", background=bg, random_state=0)
        std = bg.std(axis=0)
        # values are slopes per background std; the ridge penalty (alpha=1 against a total
        # kernel weight of ~1000) shrinks them by well under 1 %
        np.testing.assert_allclose(
            e.values, np.broadcast_to(W * std, x.shape), rtol=1e-2, atol=1e-3
        )
        assert np.all(np.sign(e.values[:, W != 0]) == np.sign(W[W != 0]))
        order = np.argsort(-np.abs(W * std), kind="stable")
        assert all(
            np.array_equal(np.argsort(-np.abs(v), kind="stable")[:4], order[:4]) for v in e.values
        )
        assert np.all(e.extras["r2"] > 0.9999)
        # a linear surrogate of a linear model: exact at x and, as intercept, at the mean
        scale = np.abs(W * std).sum()
        np.testing.assert_allclose(e.extras["prediction_local"], linear(x), atol=0.01 * scale)
        np.testing.assert_allclose(
            e.base_value, linear(bg.mean(0)[None]).repeat(6), atol=0.01 * scale
        )
        np.testing.assert_array_equal(e.base_value, e.extras["intercept"])
        np.testing.assert_array_equal(e.extras["coefficients"], e.values)
        assert e.method == "lime" and e.groups is None and e.stderr is None
        assert e.params["background"].startswith("<ndarray of shape (400, 5)")


def test_surrogate_equals_a_weighted_ridge_on_the_samples() -> None:
    """Naive reference: lime's kernel and sklearn's Ridge on the recorded perturbations."""
    x = BG[3:4] + 0.5
    mean, std = BG.mean(0), BG.std(0)
    for around in (False, True):
        rec = Recorder(nonlinear)
        e = lumos.explain(
            rec, x, method="lime", background=BG, n_samples=300, target=1, random_state=3,
            sample_around_instance=around, kernel_width=1.7, alpha=0.5,
        )  # fmt: skip
        s = rec.samples()
        assert s.shape == (300, 5)
        np.testing.assert_array_equal(s[0], x[0])
        z = (s - mean) / std
        wts = kernel(np.linalg.norm(z - z[0], axis=1), 1.7)
        y = nonlinear(s)[:, 1]
        ridge = Ridge(alpha=0.5).fit(z, y, sample_weight=wts)
        np.testing.assert_allclose(e.values[0], ridge.coef_, atol=1e-10)
        np.testing.assert_allclose(e.base_value[0], ridge.intercept_, atol=1e-10)
        np.testing.assert_allclose(e.extras["r2"][0], ridge.score(z, y, wts), atol=1e-10)
        np.testing.assert_allclose(
            e.extras["prediction_local"][0], ridge.predict(z[:1])[0], atol=1e-10
        )
        # the normal is centred on the background mean (lime's default) or on x
        centre = x[0] if around else mean
        np.testing.assert_allclose(s[1:].mean(0), centre, atol=4 * std.max() / np.sqrt(299))
        np.testing.assert_allclose(s[1:].std(0) / std, 1.0, atol=0.15)


def test_discretized_samples_bins_and_reference_fit() -> None:
    x = np.quantile(BG, [0.9, 0.1, 0.6], axis=0)  # rows: high, low, mixed quartiles
    rec = Recorder(linear)
    e = lumos.explain(
        rec, x[:1], method="lime", background=BG, discretize=True, n_samples=2000, random_state=1
    )
    s = rec.samples()
    edges = [np.percentile(BG[:, f], [25, 50, 75]) for f in range(5)]
    bins = np.stack([np.searchsorted(edges[f], s[:, f]) for f in range(5)], 1)
    x_bins = np.array([np.searchsorted(edges[f], x[0, f]) for f in range(5)])
    # bins are drawn with their background frequencies (1/4 each), values stay in the bin
    freq = np.stack([np.bincount(bins[1:, f], minlength=4) for f in range(5)]) / 1999
    np.testing.assert_allclose(freq, 0.25, atol=0.04)
    same = (bins == x_bins).astype(float)
    wts = kernel(np.sqrt(5 - same.sum(1)), 0.75 * np.sqrt(5))
    ridge = Ridge(alpha=1.0).fit(same, linear(s), sample_weight=wts)
    np.testing.assert_allclose(e.values[0], ridge.coef_, atol=1e-10)
    np.testing.assert_allclose(e.base_value[0], ridge.intercept_, atol=1e-10)
    # sensible signs: in the top quartile "same bin" raises f when w > 0, the bottom lowers it
    e = lumos.explain(
        linear, x, method="lime", background=BG, discretize=True, n_samples=20000, random_state=0
    )
    nz = W != 0
    assert np.all(np.sign(e.values[0, nz]) == np.sign(W[nz]))
    assert np.all(np.sign(e.values[1, nz]) == -np.sign(W[nz]))
    # w = 0: only sampling noise (within-bin spread of the other features, ~0.1 here)
    assert np.abs(e.values[:2, 3]).max() < 0.15 < 0.8 < np.abs(e.values[:2, nz]).min()
    # f is linear and features are drawn independently, so "same bin" is worth
    # w · (E[value | x's bin] − E[value | other bins]) under lime's truncated normals
    for r in range(2):
        gap = np.zeros(5)
        for f in range(5):
            col = BG[:, f]
            b = np.searchsorted(edges[f], col)
            lo = np.concatenate([[col.min()], edges[f]])
            hi = np.concatenate([edges[f], [col.max()]])
            mu = np.array([col[b == k].mean() for k in range(4)])
            sd = np.array([col[b == k].std() for k in range(4)]) + 1e-11
            means = truncnorm.mean((lo - mu) / sd, (hi - mu) / sd, loc=mu, scale=sd)
            freq = np.bincount(b, minlength=4) / len(col)
            xb = np.searchsorted(edges[f], x[r, f])
            rest = np.arange(4) != xb
            gap[f] = means[xb] - (freq[rest] * means[rest]).sum() / freq[rest].sum()
        np.testing.assert_allclose(e.values[r], W * gap, rtol=0.05, atol=0.15)
    deciles = lumos.explain(
        linear,
        x,
        method="lime",
        background=BG,
        discretize=True,
        discretizer="decile",
        random_state=0,
    )
    assert not np.allclose(deciles.values, e.values)


def test_same_seed_same_output_on_any_batch_size_and_seeds_differ() -> None:
    x = BG[:3] + 0.1
    img = RNG.random((2, 3, 12, 12))
    quad = lambda a: np.stack([a[:, :, :6, :6].mean((1, 2, 3)), a.mean((1, 2, 3))], 1)  # noqa: E731
    cases = [
        (nonlinear, x, {"background": BG, "n_samples": 120}),
        (nonlinear, x, {"background": BG, "n_samples": 120, "discretize": True}),
        (nonlinear, x, {"background": BG, "n_samples": 120, "groups": [[0, 1], [2, 4]]}),
        (nonlinear, x, {"background": BG, "n_samples": 120, "n_features": 2}),
        (quad, img, {"n_samples": 60, "n_segments": 8, "hide": "zero"}),
    ]
    for f, data, kw in cases:
        runs = [
            lumos.explain(f, data, method="lime", target=1, batch_size=bs, random_state=5, **kw)
            for bs in (1, 7, 1024)
        ]
        for r in runs[1:]:
            np.testing.assert_array_equal(r.values, runs[0].values)
            np.testing.assert_array_equal(r.extras["r2"], runs[0].extras["r2"])
        other = lumos.explain(f, data, method="lime", target=1, random_state=6, **kw)
        assert np.abs(other.values - runs[0].values).max() > 1e-6
        # a numpy Generator works too, and advances between calls
        g = np.random.default_rng(5)
        a = lumos.explain(f, data, method="lime", target=1, random_state=g, **kw)
        b = lumos.explain(f, data, method="lime", target=1, random_state=g, **kw)
        assert np.abs(a.values - b.values).max() > 1e-6


def test_rows_are_independent_of_blocks_and_of_their_neighbours(monkeypatch) -> None:
    x = BG[:5] + 0.1
    kw = {"background": BG, "n_samples": 150, "random_state": 3, "target": 0}
    ref = lumos.explain(nonlinear, x, method="lime", **kw)
    monkeypatch.setattr(lumos.attribution.lime, "_BLOCK_ELEMENTS", 1)  # one row per block
    blocked = lumos.explain(nonlinear, x, method="lime", **kw)
    np.testing.assert_array_equal(blocked.values, ref.values)
    np.testing.assert_array_equal(blocked.base_value, ref.base_value)
    # every row draws from its own child seed: a row's samples do not depend on the others
    alone = lumos.explain(nonlinear, x[:2], method="lime", **kw)
    np.testing.assert_array_equal(alone.values, ref.values[:2])


def test_shared_draw_rows_do_not_depend_on_their_position() -> None:
    # the shared continuous path fits rows in fixed blocks of _SHARED_ROWS: a row gives the
    # same bits whether it sits first in a block, mid-block or across a block boundary
    r = lumos.attribution.lime._SHARED_ROWS
    x = BG[: r + 8] * 0.7 + 0.2
    kw = {"background": BG, "n_samples": 300, "random_state": 5}
    ref = lumos.explain(nonlinear, x, method="lime", **kw)
    for part in (slice(r - 3, r + 4), slice(1, 2), slice(r, r + 8)):
        e = lumos.explain(nonlinear, x[part], method="lime", **kw)
        np.testing.assert_array_equal(e.values, ref.values[part])
        np.testing.assert_array_equal(e.extras["r2"], ref.extras["r2"][part])
        np.testing.assert_array_equal(e.base_value, ref.base_value[part])


def test_table_groups_are_kept_or_replaced_together() -> None:
    x = BG[:2] + 0.3
    rec = Recorder(linear)
    e = lumos.explain(
        rec,
        x[:1],
        method="lime",
        background=BG,
        groups=[[0, 1], [4]],
        n_samples=600,
        random_state=2,
    )
    s = rec.samples()
    np.testing.assert_array_equal(s[:, [2, 3]], np.broadcast_to(x[0, [2, 3]], (600, 2)))
    kept = np.stack([(s[:, [0, 1]] == x[0, [0, 1]]).all(1), s[:, 4] == x[0, 4]], 1)
    partial = (s[:, [0, 1]] == x[0, [0, 1]]).any(1) & ~kept[:, 0]
    assert not partial.any() and kept[0].all()
    np.testing.assert_allclose(kept[1:].mean(0), 0.5, atol=0.07)
    wts = kernel(np.sqrt(2 - kept.sum(1)), 0.75 * np.sqrt(2))
    ridge = Ridge(alpha=1.0).fit(kept.astype(float), linear(s), sample_weight=wts)
    np.testing.assert_allclose(e.extras["coefficients"][0], ridge.coef_, atol=1e-10)
    np.testing.assert_allclose(
        e.values[0], ridge.coef_[[0, 0, -1, -1, 1]] * [1, 1, 0, 0, 1], atol=1e-10
    )
    np.testing.assert_array_equal(e.groups, [0, 0, -1, -1, 1])
    # keeping a group is worth w · (x − background mean) summed over the group (linear f);
    # a tight background (std 0.1) around 2 keeps the replacement noise small
    tight = 2.0 + 0.1 * BG
    e2 = lumos.explain(
        linear, x * 0.1, method="lime", background=tight, groups=[[0, 1], [4]], random_state=0
    )
    m = tight.mean(0)
    gap = W * (x * 0.1 - m)
    expected = np.stack([gap[:, :2].sum(1), gap[:, 4]], 1)
    np.testing.assert_allclose(e2.extras["coefficients"], expected, rtol=0.02, atol=0.02)
    assert np.all(e2.extras["r2"] > 0.95)


def test_n_features_keeps_the_strongest_features() -> None:
    x = BG[:4]
    bg = BG * STD
    z0 = (x - bg.mean(0)) / bg.std(0)
    for method in ("auto", "forward_selection", "highest_weights"):
        e = lumos.explain(
            linear, x, method="lime", background=bg, n_features=2, feature_selection=method,
            random_state=0,
        )  # fmt: skip
        # forward selection adds the features explaining most variance (|w·std| largest);
        # lime's highest weights ranks |coef · z_0|, the slope times x's standardised value
        key = np.abs(W * bg.std(0)) if method != "highest_weights" else np.abs(W * bg.std(0) * z0)
        top2 = np.argsort(-np.broadcast_to(key, x.shape), axis=1)[:, :2]
        expected = np.zeros(x.shape, dtype=bool)
        np.put_along_axis(expected, top2, True, axis=1)
        np.testing.assert_array_equal(np.abs(e.values) > 0, expected)
        np.testing.assert_allclose(
            e.values[expected], np.broadcast_to(W * bg.std(0), x.shape)[expected], rtol=0.1
        )  # the dropped features act as noise of std up to 4 (|w·std| of feature 1)
        assert np.all(e.extras["r2"] < 0.99)  # the dropped features are missed
    e_all = lumos.explain(linear, x, method="lime", background=BG, n_features=7, random_state=0)
    assert np.all(np.abs(e_all.values[:, W != 0]) > 0.1)


def _quadrant_model(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[-2:]
    return a[..., : h // 2, : w // 2].reshape(len(a), -1).mean(axis=1)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 16, 16), (16, 16)])
def test_image_top_superpixels_lie_in_the_quadrant_the_model_reads(shape) -> None:
    noise = np.random.default_rng(1).random((3, *shape))
    x = gaussian_filter(noise, (0,) * (len(shape) - 1) + (1.5, 1.5)) + 0.5  # smooth: superpixels
    e = lumos.explain(
        _quadrant_model, x, method="lime", hide="zero", n_segments=16, n_samples=500, random_state=0
    )
    assert e.groups.shape == (3, *shape) and e.values.shape == x.shape
    inside = np.zeros(shape[-2:], dtype=bool)
    inside[:8, :8] = True
    outside = []
    for r in range(3):
        seg = e.groups[r] if len(shape) == 2 else e.groups[r, 0]
        coef = e.extras["coefficients"][r]
        k = e.extras["n_segments"][r]
        assert k == seg.max() + 1 and np.all(coef[k:] == 0)
        np.testing.assert_allclose(e.values[r], coef[e.groups[r]], atol=0)
        frac_in = np.array([inside[seg == g].mean() for g in range(k)])
        top = np.argsort(-coef[:k])[:3]
        assert np.all(frac_in[top] > 0)
        outside.append(coef[:k][frac_in == 0])
        # f is linear in the masks: a superpixel is worth its share of the quadrant's sum
        share = np.array(
            [
                x[r][..., :8, :8][np.broadcast_to(seg == g, x[r].shape)[..., :8, :8]].sum()
                for g in range(k)
            ]
        )
        np.testing.assert_allclose(coef[:k], share / (x[r][..., :8, :8].size), rtol=0.03, atol=2e-3)
    assert np.all(e.extras["r2"] > 0.999)
    outside = np.concatenate(outside)  # superpixels the model never reads: worth ~0
    assert outside.size >= 3 and np.abs(outside).max() < 2e-3


def test_image_surrogate_equals_reference_and_hide_fills() -> None:
    x = np.random.default_rng(2).random((1, 3, 12, 12)) + 0.5
    seg = np.repeat(np.repeat(np.arange(9).reshape(3, 3), 4, 0), 4, 1)
    rec = Recorder(
        lambda a: np.stack(
            [np.tanh(a[:, 0, :6].mean((1, 2)) - a[:, 1].mean((1, 2))), a.max((1, 2, 3))], 1
        )
    )
    e = lumos.explain(
        rec, x, method="lime", groups=seg, hide="zero", n_samples=400, target=0, random_state=4
    )
    s = rec.samples()
    masks = np.stack([(s[:, 0][:, seg == g] != 0).all(1) for g in range(9)], 1).astype(float)
    assert masks[0].all() and 0.4 < masks[1:].mean() < 0.6
    dist = pairwise_distances(masks, masks[:1], metric="cosine").ravel()
    ridge = Ridge(alpha=1.0).fit(masks, rec.f(s)[:, 0], sample_weight=kernel(dist, 0.25))
    np.testing.assert_allclose(e.extras["coefficients"][0], ridge.coef_, atol=1e-10)
    np.testing.assert_allclose(e.base_value[0], ridge.intercept_, atol=1e-10)
    np.testing.assert_array_equal(e.groups, np.broadcast_to(seg, (1, 3, 12, 12)))
    # hidden superpixels show the segment's mean per channel, the blurred image, a constant
    means = np.stack([[x[0, c][seg == g].mean() for g in range(9)] for c in range(3)])
    blurred = gaussian_filter(x[0], sigma=(0, 2.0, 2.0), mode="nearest")
    for hide, fill in (
        ("mean", means[:, seg]),
        ("blur", blurred),
        (0.25, np.full_like(x[0], 0.25)),
    ):
        rec = Recorder(rec.f)
        lumos.explain(
            rec,
            x,
            method="lime",
            groups=seg,
            hide=hide,
            blur_sigma=2.0,
            n_samples=50,
            random_state=4,
        )
        s = rec.samples()
        hidden = np.broadcast_to((masks[:50] == 0)[:, seg][:, None], s.shape)
        np.testing.assert_allclose(s[hidden], np.broadcast_to(fill, s.shape)[hidden], atol=1e-12)
        np.testing.assert_array_equal(s[~hidden], np.broadcast_to(x[0], s.shape)[~hidden])


def test_segmentations_cover_the_image() -> None:
    from lumos import datasets

    img = datasets.digits(28).x_test[:2]
    rgb = gaussian_filter(np.random.default_rng(3).random((3, 20, 20)), (0, 2, 2))
    for name in ("slic", "quickshift", "felzenszwalb"):
        for im in (img[0], rgb):
            seg = _segment(im, name, n_segments=30, compactness=10.0, kernel_size=1.0, scale=1.0)
            assert seg.shape == im.shape[-2:] and seg.min() == 0
            assert 2 <= seg.max() + 1 <= im.shape[-1] * im.shape[-2] // 4
            np.testing.assert_array_equal(np.unique(seg), np.arange(seg.max() + 1))
        e = lumos.explain(
            _quadrant_model, img, method="lime", segmentation=name, n_samples=50, random_state=0
        )
        assert e.groups.shape == img.shape and np.isfinite(e.values).all()
    fewer = _segment(img[0], "slic", n_segments=10, compactness=10.0, kernel_size=4.0, scale=1.0)
    more = _segment(img[0], "slic", n_segments=60, compactness=10.0, kernel_size=4.0, scale=1.0)
    assert fewer.max() < more.max()


def test_torch_model_equals_black_box() -> None:
    import torch

    from lumos import zoo

    cnn = zoo.torch_cnn((1, 12, 12), 3, channels=(4, 4), hidden=8, seed=3)
    x = np.random.default_rng(5).random((2, 1, 12, 12))
    box = lambda a: cnn(torch.as_tensor(a, dtype=torch.float32)).detach().numpy()  # noqa: E731
    kw = {"target": 1, "n_samples": 80, "n_segments": 10, "random_state": 0}
    ref = lumos.explain(box, x, method="lime", **kw)
    ours = lumos.explain(cnn, x, method="lime", **kw)
    assert lumos.wrap(cnn).array_ops().is_torch and np.abs(ref.values).max() > 1e-4
    np.testing.assert_allclose(ours.values, ref.values, atol=1e-6)
    mlp = zoo.torch_mlp(5, 2, hidden=(8,), seed=0)
    tbox = lambda a: mlp(torch.as_tensor(a, dtype=torch.float32)).detach().numpy()  # noqa: E731
    for extra in ({}, {"discretize": True}):
        a = lumos.explain(
            mlp, BG[:2], method="lime", background=BG, n_samples=200, random_state=0, **extra
        )
        b = lumos.explain(
            tbox, BG[:2], method="lime", background=BG, n_samples=200, random_state=0, **extra
        )
        np.testing.assert_allclose(a.values, b.values, atol=1e-6)


def test_errors_say_how_to_fix() -> None:
    x = BG[:2]
    with pytest.raises(InputError, match="background=<training rows>"):
        lumos.explain(linear, x, method="lime")
    with pytest.raises(ShapeError, match="background"):
        lumos.explain(linear, x, method="lime", background=BG[:, :3])
    with pytest.raises(UnknownNameError, match="Did you mean 'slic'"):
        lumos.explain(_quadrant_model, np.ones((1, 8, 8)), method="lime", segmentation="slick")
    for bad in (
        {"hide": "black"},
        {"discretizer": "tertile"},
        {"feature_selection": "lasso"},
    ):
        with pytest.raises(UnknownNameError):
            Lime(linear, **bad)
    for bad in (
        {"n_samples": 1},
        {"kernel_width": 0.0},
        {"alpha": -1.0},
        {"n_features": 0},
        {"discretize": "yes"},
        {"n_segments": 0},
        {"blur_sigma": -2.0},
        {"hide": float("nan")},
    ):
        with pytest.raises(InputError):
            Lime(linear, **bad)
    with pytest.raises(ShapeError, match="tables"):
        lumos.explain(lambda a: a.sum((1, 2, 3, 4)), np.ones((1, 2, 2, 2, 2)), method="lime")
    per_row = np.array([[0, 0, 1, 1, -1], [-1, -1, -1, -1, -1]])
    with pytest.raises(InputError, match="row 1 has no feature group"):
        lumos.explain(linear, x, method="lime", background=BG, groups=per_row)
    with pytest.raises(InputError, match="overlaps"):
        lumos.explain(linear, x, method="lime", background=BG, groups=[[0, 1], [1]])
    assert "lime" in lumos.available_methods()


def test_shared_samples_evaluate_the_model_n_plus_s_minus_1_times() -> None:
    """Tables sampled from the background: one draw serves every row, each row's own sample
    comes first, and each row's surrogate equals a naive ridge on exactly those samples."""
    x = BG[:6] + 0.3
    for discretize in (False, True):
        rec = Recorder(nonlinear)
        e = lumos.explain(
            rec, x, method="lime", background=BG, n_samples=200, target=1, random_state=4,
            discretize=discretize,
        )  # fmt: skip
        s = rec.samples()
        assert s.shape == (6 + 199, 5)
        np.testing.assert_array_equal(s[:6], x)
        own = lumos.explain(
            nonlinear, x, method="lime", background=BG, n_samples=200, target=1,
            random_state=4, discretize=discretize, shared_samples=False,
        )  # fmt: skip
        # same estimator, independent draws: not equal
        assert np.abs(own.values - e.values).max() > 1e-6
        if discretize:
            continue
        np.testing.assert_allclose(own.values, e.values, atol=0.25)
        mean, std = BG.mean(0), BG.std(0)
        for i in range(6):
            rows = np.concatenate([x[i : i + 1], s[6:]])
            z = (rows - mean) / std
            wts = kernel(np.linalg.norm(z - z[0], axis=1), 0.75 * np.sqrt(5))
            ridge = Ridge(alpha=1.0).fit(z, nonlinear(rows)[:, 1], sample_weight=wts)
            np.testing.assert_allclose(e.values[i], ridge.coef_, atol=1e-10)
            np.testing.assert_allclose(e.base_value[i], ridge.intercept_, atol=1e-10)
