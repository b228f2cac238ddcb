"""occlusion equals captum's Occlusion (sliding window over all channels) exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion as CaptumOcclusion

import lumos
import lumos.attribution.occlusion  # registers "occlusion"
from lumos import zoo

SHAPE = (2, 11, 13)  # neither 11 nor 13 is tiled evenly by the windows below
TARGET = np.array([0, 1, 2, 1, 0])

# (window, stride): overlap, overlap with cut-off last windows, no overlap with cut-off
# last windows, a window spanning a whole axis, one pixel
GEOMETRIES = [((4, 4), (2, 2)), ((3, 4), (2, 3)), ((4, 5), (4, 5)), ((11, 2), (5, 1)), (1, 1)]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def _captum(forward, x, window, stride, baselines, target, channels=None):  # type: ignore[no-untyped-def]
    win, st = _pair(window), _pair(stride)
    if channels is not None:  # captum's window covers the channels explicitly
        win, st = (channels, *win), (channels, *st)
    with torch.no_grad():
        out = CaptumOcclusion(forward).attribute(
            torch.as_tensor(x),
            sliding_window_shapes=win,
            strides=st,
            baselines=baselines,
            target=torch.as_tensor(target),
        )
    return out.numpy()


@pytest.mark.parametrize(("window", "stride"), GEOMETRIES)
def test_equals_captum_on_the_cnn(window: object, stride: object) -> None:
    net = zoo.torch_cnn(SHAPE, 3, channels=(4, 6), hidden=16, seed=1)
    rng = np.random.default_rng(2)
    x = rng.random((5, *SHAPE)).astype(np.float32)
    background = rng.random((16, *SHAPE)).astype(np.float32)
    per_row = rng.random(x.shape).astype(np.float32)
    mean = background.mean(axis=0, dtype=np.float64).astype(np.float32)
    cases = [
        ({}, 0.0),
        ({"baseline": 0.25}, 0.25),
        ({"background": background}, torch.tensor(mean)[None]),
        ({"baseline": per_row}, torch.tensor(per_row)),
    ]
    for kwargs, their_baseline in cases:
        ours = lumos.explain(
            net, x, method="occlusion", window=window, stride=stride, target=TARGET, **kwargs
        )
        theirs = _captum(net, x, window, stride, their_baseline, TARGET, channels=SHAPE[0])
        assert np.abs(ours.values).max() > 1e-3
        np.testing.assert_allclose(ours.values, theirs, atol=1e-6)


def test_equals_captum_on_a_black_box_callable() -> None:
    # a numpy function lumos sees as a black box; captum calls it through a torch shim, in
    # float64, so both run the same arithmetic
    rng = np.random.default_rng(3)
    proj = rng.normal(size=(9 * 10, 4))

    def f(a: np.ndarray) -> np.ndarray:
        h = np.tanh(a.reshape(len(a), -1) @ proj)
        return h * np.array([1.0, -2.0, 0.5, 3.0]) + a.reshape(len(a), -1)[:, :4] ** 2

    def shim(t: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(f(t.numpy()))

    x = rng.normal(size=(4, 9, 10))  # (H, W) images, no channel axis
    target = np.array([3, 0, 1, 2])
    per_row = rng.normal(size=x.shape)
    model = lumos.wrap(f)
    assert not model.array_ops().is_torch
    for window, stride in [((4, 3), (2, 2)), ((2, 5), (2, 4)), (3, 3)]:
        for baseline, their_baseline in ((None, 0.0), (per_row, torch.tensor(per_row))):
            ours = lumos.explain(
                model,
                x,
                method="occlusion",
                window=window,
                stride=stride,
                target=target,
                baseline=baseline,
            )
            theirs = _captum(shim, x, window, stride, their_baseline, target)
            assert np.abs(ours.values).max() > 0.1
            np.testing.assert_allclose(ours.values, theirs, atol=1e-6)


def test_equals_captum_on_a_table_window() -> None:
    net = zoo.torch_mlp(12, 3, hidden=(16,), seed=4)
    x = np.random.default_rng(5).normal(size=(6, 12)).astype(np.float32)
    target = np.array([0, 1, 2, 0, 1, 2])
    for window, stride in [(1, 1), (3, 2), (5, 3), (4, 4)]:
        ours = lumos.explain(
            net, x, method="occlusion", window=window, stride=stride, target=target
        )
        with torch.no_grad():
            theirs = CaptumOcclusion(net).attribute(
                torch.tensor(x),
                sliding_window_shapes=(window,),
                strides=stride,
                target=torch.tensor(target),
            )
        assert np.abs(ours.values).max() > 1e-3
        np.testing.assert_allclose(ours.values, theirs.numpy(), atol=1e-6)
