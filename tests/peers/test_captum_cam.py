"""grad_cam equals captum's LayerGradCam (+ LayerAttribution.interpolate) on the torch CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam

import lumos
import lumos.attribution.cam  # registers "grad_cam"
from lumos import datasets, zoo

X = datasets.digits(size=28).x_test[:6].astype(np.float32)


def _captum(net: torch.nn.Module, layer: torch.nn.Module, target: np.ndarray, relu: bool):
    cam = LayerGradCam(net, layer).attribute(
        torch.as_tensor(X),
        target=torch.as_tensor(target),
        relu_attributions=relu,
        attribute_to_layer_input=False,
    )
    up = LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")
    return cam.detach().numpy()[:, 0].astype(np.float64), up.detach().numpy()[:, 0]


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    scale = np.abs(theirs).max()
    assert scale > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(
    "target",
    [np.arange(6) % 10, np.array([9, 3, 3, 0, 7, 1]), np.full(6, 4)],
    ids=["0-5", "mixed", "all-4"],
)
def test_equals_captum_layer_grad_cam(target: np.ndarray, relu: bool) -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    ours = lumos.explain(net, X, method="grad_cam", target=target, relu=relu)
    layer_map, upsampled = _captum(net, net.features[3], target, relu)
    assert ours.params["layer"] == "features.3"  # the default: the last convolution
    assert ours.extras["layer_map"].shape == (6, 14, 14)
    _close(ours.extras["layer_map"], layer_map)
    _close(ours.values[:, 0], upsampled)
    # the maps are not trivial: many cells on, some off when the ReLU is applied
    on = (layer_map > 0).mean()
    assert 0.05 < on < (1.0 if not relu else 0.99)
    if not relu:
        assert (layer_map < 0).any()


def test_equals_captum_on_a_logit_network_and_another_layer() -> None:
    """The first convolution (28 x 28 map: no upsampling) of a network ending in logits."""
    net = zoo.torch_cnn((1, 28, 28), 10, seed=3, output="logit")
    target = np.array([1, 2, 3, 4, 5, 6])
    ours = lumos.explain(net, X, method="grad_cam", target=target, layer=net.features[0])
    layer_map, upsampled = _captum(net, net.features[0], target, True)
    assert ours.params["layer"] == "features.0"
    _close(ours.extras["layer_map"], layer_map)
    _close(ours.values[:, 0], upsampled)
    np.testing.assert_array_equal(ours.values[:, 0], ours.extras["layer_map"])
