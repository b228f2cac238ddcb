"""grad_cam and grad_cam_pp: closed forms, a naive Grad-CAM++, the Keras twin, invariances,
hook hygiene and errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from torch import nn

import lumos
import lumos.attribution.cam  # registers "grad_cam" and "grad_cam_pp"
from lumos import datasets, zoo
from lumos.attribution.cam import GradCam, GradCamPP
from lumos.errors import (
    InputError,
    NotDifferentiableError,
    ShapeError,
    UnknownNameError,
)

DIGITS = datasets.digits(size=28)
X = DIGITS.x_test[:5].astype(np.float32)
METHODS = ["grad_cam", "grad_cam_pp"]


def close(ours: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """``ours == ref`` up to ``tol`` relative to the reference's scale (which must be > 0)."""
    scale = np.abs(ref).max()
    assert scale > 0
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * scale)


def interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear interpolation with half-pixel centres (align_corners=False), as a matrix
    (n_out, n_in): output o samples the input at (o + 1/2) n_in / n_out - 1/2, clamped."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[o, i0] += 1 - lam
        m[o, i1] += lam
    return m


def upsample(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Separable (bi/tri)linear upsampling of maps (n, *s) to (n, *size)."""
    out = maps
    for axis, n_out in enumerate(size, start=1):
        mat = interp_matrix(out.shape[axis], n_out)
        out = np.moveaxis(np.tensordot(mat, np.moveaxis(out, axis, 0), axes=1), 0, axis)
    return out


# --------------------------------------------------------------------------- closed forms


class GapNet(nn.Module):
    """conv → global average pooling → linear head: the target is linear in the conv output."""

    def __init__(self, dims: int, c_in: int, c_out: int, n_out: int, seed: int) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        self.conv = conv(c_in, c_out, 3, stride=2)
        self.head = nn.Linear(c_out, n_out)
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.as_tensor(rng.normal(size=tuple(p.shape))))
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        return self.head(a.mean(dim=tuple(range(2, a.ndim))))


@pytest.mark.parametrize(
    "input_shape", [(2, 21), (2, 13, 11), (1, 7, 9, 8)], ids=["conv1d", "conv2d", "conv3d"]
)
def test_closed_form_on_a_gap_linear_head(input_shape: tuple[int, ...]) -> None:
    """y_t = Σ_c W_tc mean(A_c) + b, so ∂y_t/∂A_cij = W_tc / Z for every cell: Grad-CAM
    weights are W_t / Z (CAM of Zhou et al.), Grad-CAM++ weights Z ReLU(k) / (2 + k Σ A_c)
    with k = W_t / Z; maps are ReLU(Σ_c w_c A_c), (bi/tri)linearly upsampled, broadcast."""
    dims = len(input_shape) - 1
    net = GapNet(dims, input_shape[0], 4, 3, seed=dims)
    rng = np.random.default_rng(10 + dims)
    x = rng.normal(size=(4, *input_shape))
    target = np.array([0, 2, 1, 2])
    with torch.no_grad():
        acts = net.conv(torch.as_tensor(x)).numpy()  # (n, C, *s)
    spatial_axes = tuple(range(2, acts.ndim))
    z = np.prod(acts.shape[2:])
    k = net.head.weight.detach().numpy()[target] / z  # the constant gradient, (n, C)
    expected_w = {
        "grad_cam": k,
        "grad_cam_pp": z * np.maximum(k, 0) / (2 + k * acts.sum(axis=spatial_axes)),
    }
    for method in METHODS:
        e = lumos.explain(net, x, method=method, target=target)
        w = expected_w[method]
        layer_map = np.maximum(np.einsum("nc,nc...->n...", w, acts), 0)
        assert e.params["layer"] == "conv"
        assert layer_map.max() > 0.1 and (layer_map == 0).any()  # not trivial
        np.testing.assert_allclose(e.extras["channel_weights"], w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(e.extras["layer_map"], layer_map, rtol=1e-10, atol=1e-12)
        up = upsample(layer_map, input_shape[1:])
        np.testing.assert_allclose(
            e.values, np.broadcast_to(up[:, None], x.shape), rtol=1e-10, atol=1e-12
        )
        assert e.base_value is None


def test_relu_false_keeps_the_signed_map() -> None:
    net = GapNet(2, 1, 4, 3, seed=5)
    x = np.random.default_rng(5).normal(size=(3, 1, 13, 13))
    signed = lumos.explain(net, x, method="grad_cam", relu=False)
    clipped = lumos.explain(net, x, method="grad_cam")
    with torch.no_grad():
        acts = net.conv(torch.as_tensor(x)).numpy()
    k = net.head.weight.detach().numpy()[signed.target] / 36
    np.testing.assert_allclose(
        signed.extras["layer_map"], np.einsum("nc,nchw->nhw", k, acts), rtol=1e-10, atol=1e-12
    )
    assert (signed.extras["layer_map"] < -0.1).any()
    np.testing.assert_array_equal(
        clipped.extras["layer_map"], np.maximum(signed.extras["layer_map"], 0)
    )
    assert signed.params["relu"] is False


# --------------------------------------------------------------------------- naive Grad-CAM++


def naive_grad_cam_pp(net: zoo.TorchCNN, x: np.ndarray, target: np.ndarray):  # type: ignore[no-untyped-def]
    """One image at a time: split the network at the last convolution, differentiate the
    target with autograd, then Grad-CAM++ (Chattopadhay et al. eq. 19) in plain loops."""
    head = nn.Sequential(net.features[4:], net.classifier)
    maps, weights = [], []
    for i in range(len(x)):
        with torch.no_grad():
            a = net.features[:4](torch.as_tensor(x[i : i + 1]))
        a.requires_grad_(True)
        (g,) = torch.autograd.grad(head(a)[0, int(target[i])], a)
        act, grad = a[0].detach().double().numpy(), g[0].double().numpy()
        n_c, h, w = act.shape
        wc = np.zeros(n_c)
        for c in range(n_c):
            s = act[c].sum()
            for r in range(h):
                for q in range(w):
                    g1 = float(grad[c, r, q])
                    den = 2 * g1**2 + s * g1**3
                    alpha = g1**2 / den if den != 0 else 0.0
                    wc[c] += alpha * max(g1, 0.0)
        cam = np.zeros((h, w))
        for c in range(n_c):
            cam += wc[c] * act[c]
        maps.append(np.maximum(cam, 0))
        weights.append(wc)
    return np.stack(maps), np.stack(weights)


def test_grad_cam_pp_equals_a_naive_implementation() -> None:
    # float64 so that only the two implementations differ, not float32 rounding of batches
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0).double()
    x = X.astype(np.float64)
    target = np.array([3, 0, 9, 3, 5])
    e = lumos.explain(net, x, method="grad_cam_pp", target=target)
    maps, weights = naive_grad_cam_pp(net, x, target)
    assert e.params["layer"] == "features.3"
    assert (maps > 0).any() and (maps == 0).any()  # not trivial
    close(e.extras["channel_weights"], weights, 1e-6)
    close(e.extras["layer_map"], maps, 1e-6)
    close(e.values[:, 0], upsample(maps, (28, 28)), 1e-6)


# --------------------------------------------------------------------------- Keras twin


def twins() -> tuple[keras.Model, zoo.TorchCNN]:
    k = zoo.keras_cnn((1, 28, 28), 10, seed=0)
    t = zoo.copy_weights(k, zoo.torch_cnn((1, 28, 28), 10, seed=1))
    np.testing.assert_allclose(lumos.wrap(k)(X), lumos.wrap(t)(X), rtol=1e-5, atol=1e-7)
    return k, t


@pytest.mark.parametrize("method", METHODS)
def test_keras_layer_by_name_equals_its_torch_twin(method: str) -> None:
    """Keras's "last_conv" has its ReLU fused, so its output is the torch twin's "features.4"
    (the nn.ReLU after the last nn.Conv2d)."""
    k, t = twins()
    target = np.array([1, 4, 4, 7, 0])
    ours = lumos.explain(k, X, method=method, target=target, layer="last_conv")
    twin = lumos.explain(t, X, method=method, target=target, layer="features.4")
    assert ours.params["layer"] == "last_conv"
    for key in ("layer_map", "channel_weights"):
        close(ours.extras[key], twin.extras[key], 1e-5)
    close(ours.values, twin.values, 1e-5)
    # the default Keras layer is the last Conv2D; a layer object resolves to its name
    default = lumos.explain(k, X, method=method, target=target)
    by_object = lumos.explain(k, X, method=method, target=target, layer=k.get_layer("last_conv"))
    for e in (default, by_object):
        assert e.params["layer"] == "last_conv"
        np.testing.assert_array_equal(e.values, ours.values)
    layer = k.get_layer("last_conv")
    assert not layer._forward_hooks and not layer._backward_hooks


# --------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("method", METHODS)
def test_batch_size_targets_and_default_target(method: str) -> None:
    # float64: float32 convolutions round differently per batch size (~3e-7 of the scale)
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0).double()
    x = DIGITS.x_test[:10]
    target = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    runs = [lumos.explain(net, x, method=method, target=target, batch_size=b) for b in (1, 7, 1024)]
    for e in runs[1:]:
        for key in ("layer_map", "channel_weights"):
            close(e.extras[key], runs[0].extras[key], 1e-6)
        close(e.values, runs[0].values, 1e-6)
    # targets per row: each row explained alone with its own scalar target gives the same
    for i in (0, 6):
        alone = lumos.explain(net, x[i : i + 1], method=method, target=int(target[i]))
        close(alone.values[0], runs[0].values[i], 1e-6)
    # the default target is the predicted class
    predicted = np.argmax(lumos.wrap(net)(x), axis=1)
    default = lumos.explain(net, x, method=method)
    np.testing.assert_array_equal(default.target, predicted)
    explicit = lumos.explain(net, x, method=method, target=predicted)
    np.testing.assert_array_equal(default.values, explicit.values)
    assert not np.allclose(default.values, runs[0].values)  # targets matter


def test_values_broadcast_over_input_channels() -> None:
    net = zoo.torch_cnn((3, 16, 16), 4, seed=2)
    x = np.random.default_rng(2).random((3, 3, 16, 16)).astype(np.float32)
    e = lumos.explain(net, x, method="grad_cam")
    assert e.values.shape == (3, 3, 16, 16)
    assert e.extras["layer_map"].shape == (3, 8, 8)
    for c in range(3):
        np.testing.assert_array_equal(e.values[:, c], e.values[:, 0])
    # a float32 network: Grad-CAM maps and their upsampling are computed in float32
    close(e.values[:, 0], upsample(e.extras["layer_map"], (16, 16)), 1e-6)


# --------------------------------------------------------------------------- model hygiene


class Boom(nn.Module):
    """Raises after the conv layer ran, but only in a gradient pass (the explainer's first,
    no-grad evaluation of the outputs succeeds)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        if torch.is_grad_enabled():
            raise RuntimeError("boom after the hooked layer")
        return self.head(a.mean(dim=(2, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_hooks_removed_when_the_forward_raises(method: str) -> None:
    net = Boom()
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    with pytest.raises(RuntimeError, match="boom"):
        lumos.explain(net, x, method=method)
    assert torch.is_grad_enabled()  # the hook turns autograd on mid-forward; restored
    for m in net.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
    # and when the layer is rejected after the forward pass (not convolutional)
    cnn = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    with pytest.raises(ShapeError):
        lumos.explain(cnn, X, method=method, layer="classifier.1")
    for m in cnn.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks


@pytest.mark.parametrize("method", METHODS)
def test_autograd_mode_of_the_caller_is_kept(method: str) -> None:
    """The layers below the hooked one run without autograd and the hook switches it on;
    the caller's mode is what it was afterwards, and the maps do not depend on it."""
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    reference = lumos.explain(net, X, method=method, target=3).values
    with torch.no_grad():
        inside = lumos.explain(net, X, method=method, target=3).values
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    np.testing.assert_array_equal(inside, reference)


@pytest.mark.parametrize("method", METHODS)
def test_parameters_flags_and_mode_untouched(method: str) -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    net.features[0].weight.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    flags = {n: p.requires_grad for n, p in net.named_parameters()}
    explainer = {"grad_cam": GradCam, "grad_cam_pp": GradCamPP}[method](lumos.wrap(net))
    reference = explainer.explain(X, target=3)
    net.train()  # after wrapping (which sets eval mode itself): the explainer must reset it
    e = explainer.explain(X, target=3)
    for n, p in net.named_parameters():
        assert torch.equal(p, before[n])
        assert p.requires_grad == flags[n]
        assert p.grad is None
    assert not any(m.training for m in net.modules())
    np.testing.assert_array_equal(e.values, reference.values)
    # every parameter frozen: the layer output is still differentiated, same result
    for p in net.parameters():
        p.requires_grad_(False)
    frozen = lumos.explain(net, X, method=method, target=3)
    np.testing.assert_array_equal(frozen.values, reference.values)
    assert not any(p.requires_grad for p in net.parameters())


def test_layer_given_as_object_is_recorded_by_name() -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    by_object = GradCamPP(net, layer=net.features[3]).explain(X, target=2)
    by_name = GradCamPP(net, layer="features.3").explain(X, target=2)
    expected = {"layer": "features.3", "relu": True, "batch_size": None}
    assert by_object.params == by_name.params == expected
    np.testing.assert_array_equal(by_object.values, by_name.values)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("method", METHODS)
def test_black_box_model_is_refused(method: str) -> None:
    def f(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1)[:, :3]

    with pytest.raises(NotDifferentiableError, match="occlusion"):
        lumos.explain(f, X, method=method)


def test_unknown_layer_names_list_close_matches() -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    with pytest.raises(UnknownNameError, match=r"'features\.3'"):
        GradCam(net, layer="features.33")
    k = zoo.keras_cnn((1, 28, 28), 10, seed=0)
    with pytest.raises(UnknownNameError, match="'last_conv'"):
        GradCamPP(k, layer="last_cnv")


def test_non_convolutional_layer_is_a_shape_error() -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    with pytest.raises(ShapeError, match=r"\(n, channels, \*spatial\)"):
        GradCam(net, layer="classifier.1").explain(X)
    with pytest.raises(ShapeError, match=r"\(n, channels, \*spatial\)"):
        GradCam(zoo.keras_cnn((1, 28, 28), 10, seed=0), layer="dense_1").explain(X)


def test_tabular_inputs_are_refused() -> None:
    mlp = zoo.torch_mlp(16, 3, seed=0)
    with pytest.raises(ShapeError, match="no convolution layer"):
        GradCam(mlp)

    class TableAsImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 2)
            self.head = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.conv(x.reshape(len(x), 1, 4, 4))
            return self.head(a.mean(dim=(2, 3)))

    rows = np.random.default_rng(0).random((3, 16)).astype(np.float32)
    with pytest.raises(ShapeError, match=r"rows of shape \(16,\)"):
        lumos.explain(TableAsImage(), rows, method="grad_cam_pp")


def test_other_layer_errors() -> None:
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    other = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    with pytest.raises(InputError, match="not part of this model"):
        GradCam(net, layer=other.features[3])
    with pytest.raises(InputError, match="layer must be None"):
        GradCam(net, layer=3)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x)).mean(dim=(2, 3))

    with pytest.raises(InputError, match="ran 2 times"):
        lumos.explain(Twice(), X, method="grad_cam")

    channels_last = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ShapeError, match="channels_first"):
        GradCam(channels_last)
