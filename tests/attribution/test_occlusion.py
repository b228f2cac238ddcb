"""occlusion against naive sliding-window references on linear models, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest

import lumos
import lumos.attribution.occlusion  # registers "occlusion"
from lumos.attribution.occlusion import Occlusion
from lumos.errors import InputError, ShapeError

RNG = np.random.default_rng(7)


def positions(size: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Window spans along one axis, stepping until the window reaches the end (cut there)."""
    spans, start = [], 0
    while True:
        spans.append((start, min(start + window, size)))
        if start + window >= size:
            return spans
        start += stride


def naive_image_occlusion(
    contrib: np.ndarray, window: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """For a linear model: each window's drop is the sum of its contributions (all channels);
    each pixel gets the average over the windows containing it. Plain Python loops."""
    n, _, h, w = contrib.shape
    totals = np.zeros((n, h, w))
    counts = np.zeros((h, w))
    drops = []
    for r0, r1 in positions(h, window[0], stride[0]):
        for c0, c1 in positions(w, window[1], stride[1]):
            drop = contrib[:, :, r0:r1, c0:c1].sum(axis=(1, 2, 3))
            drops.append(drop)
            for i in range(r0, r1):
                for j in range(c0, c1):
                    totals[:, i, j] += drop
                    counts[i, j] += 1
    values = np.repeat((totals / counts)[:, None], contrib.shape[1], axis=1)
    return values, np.stack(drops, axis=1)


W_IMG = RNG.normal(size=(2, 8, 11))


def linear_image(a: np.ndarray) -> np.ndarray:
    return (a * W_IMG).sum(axis=(1, 2, 3)) + 0.3


@pytest.mark.parametrize(
    ("window", "stride"),
    [((3, 4), (2, 3)), ((3, 4), (3, 4)), (4, 1), ((8, 2), (5, 2)), ((1, 1), (1, 1))],
)
def test_linear_image_model_equals_the_naive_sliding_window(window: object, stride: object) -> None:
    # (8, 11) with these windows: overlapping, cut-off last windows, full-height windows
    x = RNG.normal(size=(3, 2, 8, 11))
    background = RNG.normal(loc=1.0, size=(20, 2, 8, 11))
    e = lumos.explain(
        linear_image, x, method="occlusion", window=window, stride=stride, background=background
    )
    mean = background.mean(axis=0)
    win = (window, window) if isinstance(window, int) else window
    st = (stride, stride) if isinstance(stride, int) else stride
    values, drops = naive_image_occlusion(W_IMG * (x - mean), win, st)
    np.testing.assert_allclose(e.values, values, atol=1e-10)
    np.testing.assert_allclose(e.extras["window_values"], drops, atol=1e-10)
    np.testing.assert_allclose(e.base_value, linear_image(mean[None]).repeat(3), atol=1e-12)
    grid = [len(positions(8, win[0], st[0])), len(positions(11, win[1], st[1]))]
    assert e.params["window_grid"] == grid and e.params["n_windows"] == grid[0] * grid[1]
    assert e.params["resolved_window"] == list(win) and e.params["resolved_stride"] == list(st)


def test_two_dimensional_images_defaults_and_baselines() -> None:
    w2 = RNG.normal(size=(9, 10))
    f = lambda a: (a * w2).sum(axis=(1, 2))  # noqa: E731 - an (H, W) image model
    x = RNG.normal(size=(2, 9, 10))
    per_row = RNG.normal(size=(2, 9, 10))
    for baseline, ref in ((None, 0.0), (0.5, 0.5), (per_row, per_row)):
        e = lumos.explain(f, x, method="occlusion", baseline=baseline)
        # default window (4, 4), stride half the window (2, 2)
        values, _ = naive_image_occlusion((w2 * (x - ref))[:, None], (4, 4), (2, 2))
        np.testing.assert_allclose(e.values, values[:, 0], atol=1e-10)
        assert e.params["resolved_window"] == [4, 4] and e.params["resolved_stride"] == [2, 2]
        # starts 0, 2, 4, 6 on both axes; the last row window [6, 10) is cut to [6, 9)
        assert e.params["window"] is None and e.params["n_windows"] == 4 * 4
    np.testing.assert_allclose(e.base_value, f(per_row), atol=1e-12)
    # an image smaller than the default window: the window is cut to the image
    small = lumos.explain(lambda a: a.sum(axis=(1, 2)), np.ones((1, 3, 6)), method="occlusion")
    assert small.params["resolved_window"] == [3, 4] and small.params["n_windows"] == 2
    np.testing.assert_allclose(small.values, 12.0, atol=1e-12)  # each window sums 3 × 4 ones


def test_stride_equal_to_window_is_patch_ablation() -> None:
    x = RNG.normal(size=(3, 2, 8, 8))
    w8 = W_IMG[:, :8, :8]
    g = lambda a: np.tanh(a * w8).sum(axis=(1, 2, 3))  # noqa: E731
    occ = lumos.explain(g, x, method="occlusion", window=4, stride=4)
    abl = lumos.explain(g, x, method="feature_ablation", patch_size=4)
    np.testing.assert_allclose(occ.values, abl.values, atol=1e-12)
    np.testing.assert_allclose(occ.extras["window_values"], abl.extras["group_values"], atol=1e-12)
    assert np.abs(occ.values).max() > 0.1


def test_tables_default_is_feature_ablation_and_windows_slide() -> None:
    w = RNG.normal(size=7)
    f = lambda a: np.stack([np.tanh(a @ w), a[:, 0] * a[:, 1] + a @ w], 1)  # noqa: E731
    x = RNG.normal(size=(6, 7))
    background = RNG.normal(size=(30, 7))
    target = [0, 1, 1, 0, 1, 0]
    for kwargs in ({}, {"background": background}, {"baseline": RNG.normal(size=(6, 7))}):
        occ = lumos.explain(f, x, method="occlusion", target=target, **kwargs)
        abl = lumos.explain(f, x, method="feature_ablation", target=target, **kwargs)
        np.testing.assert_allclose(occ.values, abl.values, atol=1e-12)
        np.testing.assert_allclose(occ.base_value, abl.base_value, atol=1e-12)
        assert occ.params["n_windows"] == 7 and occ.params["resolved_window"] == [1]
    # window 3, stride 2 over 7 features: windows [0,3) [2,5) [4,7)
    lin = lambda a: a @ w  # noqa: E731
    e = lumos.explain(lin, x, method="occlusion", window=3, stride=2)
    contrib = w * x
    drops = [contrib[:, a:b].sum(1) for a, b in ((0, 3), (2, 5), (4, 7))]
    expected = np.stack(
        [
            drops[0],
            drops[0],
            (drops[0] + drops[1]) / 2,
            drops[1],
            (drops[1] + drops[2]) / 2,
            drops[2],
            drops[2],
        ],
        axis=1,
    )
    np.testing.assert_allclose(e.values, expected, atol=1e-12)
    np.testing.assert_allclose(e.extras["window_values"], np.stack(drops, 1), atol=1e-12)


def test_batch_size_does_not_change_results() -> None:
    x = RNG.normal(size=(5, 2, 8, 11))
    f = lambda a: np.stack(  # noqa: E731
        [np.tanh(a * W_IMG).sum(axis=(1, 2, 3)), (a[:, 0] * a[:, 1]).mean(axis=(1, 2))], 1
    )
    target = [0, 1, 0, 1, 1]
    results = [
        Occlusion(f, window=(3, 4), stride=(2, 3), batch_size=bs).explain(x, target=target)
        for bs in (1, 7, 1024)
    ]
    for r in results[1:]:
        assert np.array_equal(r.values, results[0].values)
        assert np.array_equal(r.extras["window_values"], results[0].extras["window_values"])
    assert np.abs(results[0].values).max() > 0.1


def test_torch_path_equals_numpy_path_and_is_batch_invariant() -> None:
    import torch

    from lumos import zoo

    net = zoo.torch_cnn((2, 10, 11), 3, channels=(4, 4), hidden=8, output="logit", seed=3)
    x = np.random.default_rng(5).random((4, 2, 10, 11))
    black_box = lumos.wrap(lambda a: net(torch.as_tensor(a, dtype=torch.float32)).detach().numpy())
    assert lumos.wrap(net).array_ops().is_torch and not black_box.array_ops().is_torch
    target = [0, 2, 1, 2]
    per_row = np.random.default_rng(6).random(x.shape)
    for kwargs in ({"window": (3, 4), "stride": (2, 3)}, {}, {"window": 2, "baseline": per_row}):
        ref = lumos.explain(black_box, x, method="occlusion", target=target, **kwargs)
        assert np.abs(ref.values).max() > 1e-3
        for bs in (1, 7, 1024):
            run = lumos.explain(net, x, method="occlusion", target=target, batch_size=bs, **kwargs)
            np.testing.assert_allclose(run.values, ref.values, atol=1e-6)
            np.testing.assert_allclose(run.base_value, ref.base_value, atol=1e-6)


def test_errors_say_how_to_fix() -> None:
    img = RNG.normal(size=(2, 2, 8, 11))
    table = RNG.normal(size=(2, 5))
    f_img = linear_image
    f_tab = lambda a: a.sum(1)  # noqa: E731
    with pytest.raises(ShapeError, match="larger than the input"):
        lumos.explain(f_img, img, method="occlusion", window=(9, 2))
    with pytest.raises(ShapeError, match="larger than the input"):
        lumos.explain(f_tab, table, method="occlusion", window=6)
    for bad in (0, -1, (2, 0), 2.5, True):
        with pytest.raises(InputError, match="positive ints"):
            Occlusion(f_img, window=bad)
        with pytest.raises(InputError, match="positive ints"):
            Occlusion(f_img, stride=bad)
    with pytest.raises(ShapeError, match="covers all channels"):
        lumos.explain(f_img, img, method="occlusion", window=(2, 4, 4))
    with pytest.raises(ShapeError, match="1 spatial axis"):
        lumos.explain(f_tab, table, method="occlusion", window=(2, 2))
    with pytest.raises(ShapeError, match=r"e\.g\. stride="):
        lumos.explain(f_img, img, method="occlusion", window=2, stride=(1, 1, 1))
    with pytest.raises(InputError, match="never be occluded"):
        lumos.explain(f_img, img, method="occlusion", window=(2, 2), stride=(3, 1))
    # a stride larger than a window spanning the whole axis is harmless (one position)
    ok = lumos.explain(f_img, img, method="occlusion", window=(8, 2), stride=(9, 2))
    assert ok.params["window_grid"] == [1, 6]
    with pytest.raises(ShapeError, match="feature_ablation with groups"):
        lumos.explain(
            lambda a: a.sum(axis=(1, 2, 3, 4)), np.ones((1, 2, 2, 2, 2)), method="occlusion"
        )
    with pytest.raises(InputError, match="background"):
        lumos.explain(f_tab, table, method="occlusion", baseline="mean")


def test_save_load_round_trip_keeps_geometry(tmp_path: object) -> None:
    x = RNG.normal(size=(2, 2, 8, 11))
    e = lumos.explain(linear_image, x, method="occlusion", window=np.array([3, 4]), stride=(2, 3))
    back = type(e).load(e.save(tmp_path / "occ.npz"))  # type: ignore[operator]
    np.testing.assert_array_equal(back.values, e.values)
    np.testing.assert_array_equal(back.extras["window_values"], e.extras["window_values"])
    np.testing.assert_array_equal(back.params.pop("window"), e.params.pop("window"))
    assert back.params == e.params and back.params["window_grid"] == [4, 4]
    assert back.params["resolved_window"] == [3, 4] and back.params["n_windows"] == 16
