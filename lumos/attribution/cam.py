"""Class activation maps of a convolutional layer: ``grad_cam`` and ``grad_cam_pp``.

Both weigh the channels of one layer's activation ``A`` (shape ``(n, C, *spatial)``) by
statistics of the gradient ``g = ∂y_t/∂A`` of the target output and sum them into a map over
the layer's spatial grid, which is then upsampled to the input's spatial size and broadcast
over the input channels, so the values live in input space like every other explanation.

How the activation is reached: a forward hook on the layer (``register_forward_hook``) keeps
its output tensor, and :func:`torch.autograd.grad` differentiates the summed target outputs
with respect to that tensor. Keras 3 layers on the torch backend are ``torch.nn.Module``
subclasses and a Keras model's call runs each layer through ``nn.Module.__call__``, so the
same forward hook fires inside a Keras functional or sequential model; both frameworks share
this one code path (checked against a Keras sub-model exposing the layer output, which gives
the same activation and gradient). The hook is removed in a ``finally`` clause, also when the
forward pass raises.

The hook hands the layer's output on as a leaf tensor of its own (detached, requiring grad),
so the activation is on the autograd graph even when every parameter is frozen and the
backward pass stops at the layer (nothing below it is differentiated, as in captum). Only the
gradient with respect to the activation is computed, so parameters' ``.grad`` and
``requires_grad`` flags are never touched. The forward pass that produces the maps also gives
the predictions and, with ``target=None``, the predicted classes: no separate forward pass.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from lumos._batching import full_float32, iter_chunks
from lumos._validation import check_name, check_target
from lumos.attribution._autograd import gradient_batch_size, set_eval, to_numpy, torch_modules
from lumos.attribution._base import Explainer, register
from lumos.errors import InputError, ModelError, ShapeError
from lumos.models.base import Model

#: Interpolation mode of ``torch.nn.functional.interpolate`` per number of spatial axes.
_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
#: Keras convolution classes the default layer is chosen among.
_KERAS_CONVS = (
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
)


# --------------------------------------------------------------------------- layers


def _root(model: Model) -> tuple[Any, bool]:
    """The module behind ``model`` and whether it is a Keras model."""
    modules = torch_modules(model)
    if not modules:
        raise ModelError(
            f"class activation maps hook a layer of the network, but this {model.framework} "
            "model exposes no torch module; wrap the PyTorch module or Keras 3 model itself "
            "with lumos.wrap."
        )
    keras_model = getattr(model, "keras_model", None)
    return modules[0], keras_model is not None and modules[0] is keras_model


def _keras_layers(model: Any) -> list[tuple[str, Any]]:
    """(name, layer) of a Keras model in definition order, nested models' layers included."""
    import keras

    found: list[tuple[str, Any]] = []
    for layer in getattr(model, "layers", []):
        found.append((layer.name, layer))
        if isinstance(layer, keras.Model):
            found += _keras_layers(layer)
    return found


def named_layers(model: Model) -> list[tuple[str, Any]]:
    """The layers a CAM method can hook, with the names ``layer=`` accepts.

    Parameters
    ----------
    model : Model
        A differentiable model (PyTorch module or Keras 3 model on the torch backend).

    Returns
    -------
    list of (str, module)
        For PyTorch, the ``named_modules()`` paths (``"features.3"``) without the root; for
        Keras, the layer names (``"last_conv"``), nested models' layers included.
    """
    root, is_keras = _root(model)
    if is_keras:
        layers = _keras_layers(root)
    else:
        layers = [(name, m) for name, m in root.named_modules() if name]
    seen: set[str] = set()
    unique = []
    for name, layer in layers:  # a Keras name used twice (nested models) means the first
        if name not in seen:
            seen.add(name)
            unique.append((name, layer))
    return unique


def _is_conv(layer: Any, is_keras: bool) -> bool:
    if is_keras:
        import keras

        kinds = tuple(getattr(keras.layers, k) for k in _KERAS_CONVS if hasattr(keras.layers, k))
        return isinstance(layer, kinds)
    import torch

    return isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))


def resolve_layer(model: Model, layer: Any) -> tuple[str, Any]:
    """The name and module of ``layer`` in ``model``.

    Parameters
    ----------
    model : Model
        A differentiable model.
    layer : None, str or module
        ``None``: the last convolution (``nn.Conv1d/2d/3d`` for PyTorch, a Keras ``Conv*D``
        layer for Keras). A string: a ``named_modules()`` path (PyTorch) or a layer name
        (Keras). A module / layer object of the model.

    Returns
    -------
    name : str
    module : torch.nn.Module

    Raises
    ------
    UnknownNameError
        For a name the model does not have (the closest names are listed).
    ShapeError
        When ``layer=None`` and the model has no convolution, or the layer is a Keras
        ``channels_last`` layer.
    InputError
        For a layer object that is not part of the model, or a ``layer`` of another type.
    """
    import torch

    _, is_keras = _root(model)
    layers = named_layers(model)
    if layer is None:
        convs = [(name, m) for name, m in layers if _is_conv(m, is_keras)]
        if not convs:
            raise ShapeError(
                "class activation maps need a convolutional network, and this model has no "
                "convolution layer (nn.Conv1d/2d/3d or keras Conv*D). Pass layer= with a "
                "layer whose output is (n, channels, *spatial), or use a method for any "
                "network such as integrated_gradients, saliency or occlusion."
            )
        name, module = convs[-1]
    elif isinstance(layer, str):
        by_name = dict(layers)
        name = check_name(layer, by_name, kind="layer")
        module = by_name[name]
    elif isinstance(layer, torch.nn.Module):
        matches = [(n, m) for n, m in layers if m is layer]
        if not matches:
            raise InputError(
                f"the {type(layer).__name__} passed as layer= is not part of this model; pass "
                f"one of its own layers or a name such as {layers[-1][0]!r}."
            )
        name, module = matches[0]
    else:
        raise InputError(
            f"layer must be None, a layer name (str) or a layer object of the model, got "
            f"{type(layer).__name__}."
        )
    if is_keras and getattr(module, "data_format", None) == "channels_last":
        raise ShapeError(
            f"Keras layer {name!r} is channels_last (output (n, *spatial, channels)); class "
            "activation maps read (n, channels, *spatial) like lumos images. Build the "
            "network with data_format='channels_first' or pick a channels-first layer."
        )
    return name, module


# --------------------------------------------------------------------------- explainers


class _CamExplainer(Explainer):
    """Shared machinery: hook the layer, differentiate with respect to its output, map."""

    needs_gradients: ClassVar[bool] = True
    #: Weights and maps in float64 (Grad-CAM++'s ratios amplify rounding) rather than in the
    #: model's dtype (Grad-CAM's means and sums do not).
    _float64: ClassVar[bool] = False

    def __init__(
        self,
        model: Any,
        *,
        layer: Any = None,
        relu: bool = True,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.layer, self._module = resolve_layer(self.model, layer)
        self.relu = bool(relu)

    @abc.abstractmethod
    def _channel_weights(self, act: Any, grad: Any) -> Any:
        """Channel weights (m, C) from activations and gradients (m, C, *spatial)."""

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        return self._run(x, target)[2]

    def _explain_fused(self, x: np.ndarray, target: Any) -> Any:
        # the maps' forward pass runs at x itself: target and prediction are read from it
        if target is not None:
            target = check_target(
                target, len(x), self.model.n_outputs, class_names=self.model.class_names
            )
        return self._run(x, target)

    def _run(
        self, x: np.ndarray, target: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Maps of every row; ``target=None``: each row's predicted class, read off the same
        forward pass. Returns (target (n,), prediction (n,), result)."""
        import torch
        import torch.nn.functional as F

        model = self.model
        set_eval(model)
        rows = gradient_batch_size(model, self.batch_size)
        ops = model.array_ops()
        chosen = np.empty(len(x), dtype=np.int64)
        prediction = np.empty(len(x))
        if target is not None:
            chosen[:] = target
        target_dev = torch.as_tensor(chosen, device=model.device)
        maps, weights, upsampled = [], [], []
        captured: list[Any] = []

        def keep_output(_module: Any, _args: Any, output: Any) -> Any:
            # the layer's output continues as a leaf of its own: the backward pass stops here.
            # The layers below it ran without autograd (nothing recorded, no pooling indices
            # kept); from here on the graph is recorded.
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                output = output.detach().requires_grad_(True)
            torch.set_grad_enabled(True)
            captured.append(output)
            return output

        try:
            handle = self._module.register_forward_hook(keep_output)
        except RuntimeError as exc:  # TorchScript modules take no Python hooks
            raise ModelError(
                f"cannot hook layer {self.layer!r} ({exc}); class activation maps need an "
                "eager PyTorch module or a Keras model, not a scripted one."
            ) from None
        try:
            with torch.no_grad(), full_float32(model.device):
                for sl in iter_chunks(len(x), rows):
                    captured.clear()
                    try:
                        y = model._forward_torch_full(ops.asarray(x[sl]))
                    finally:
                        torch.set_grad_enabled(False)  # the hook turned it on
                    act = self._activation(captured, sl.stop - sl.start, x.shape[1:])
                    if target is None:
                        chosen[sl] = to_numpy(y.detach().argmax(dim=1)).astype(np.int64)
                        t = torch.as_tensor(chosen[sl], device=y.device)
                    else:
                        t = target_dev[sl]
                    with torch.enable_grad():
                        picked = y.gather(1, t[:, None])[:, 0]
                        total = picked.sum()
                    prediction[sl] = to_numpy(picked)
                    if not picked.requires_grad:
                        raise ModelError(
                            f"the model's output does not depend differentiably on layer "
                            f"{self.layer!r} (a step after it detaches the graph); class "
                            "activation maps need gradients from the output to this layer."
                        )
                    (grad,) = torch.autograd.grad(total, act, allow_unused=True)
                    captured.clear()
                    if grad is None:  # the target does not depend on this layer
                        grad = torch.zeros_like(act)
                    a, g = act.detach(), grad.detach()
                    if self._float64:
                        a, g = a.double(), g.double()
                    w = self._channel_weights(a, g)
                    cam = (w.reshape(*w.shape, *(1,) * (a.ndim - 2)) * a).sum(dim=1)
                    if self.relu:
                        cam = cam.clamp_min(0.0)
                    spatial = x.shape[x.ndim - cam.ndim + 1 :]
                    up = cam
                    if tuple(cam.shape[1:]) != tuple(spatial):
                        up = F.interpolate(
                            cam[:, None],
                            size=tuple(spatial),
                            mode=_MODES[cam.ndim - 1],
                            align_corners=False,
                        )[:, 0]
                    maps.append(to_numpy(cam))
                    weights.append(to_numpy(w))
                    upsampled.append(to_numpy(up))
        finally:
            handle.remove()
            captured.clear()
        up_all = np.concatenate(upsampled)
        lead = x.ndim - up_all.ndim  # input axes the map is broadcast over (channels)
        values = np.broadcast_to(
            up_all.reshape(len(x), *(1,) * lead, *up_all.shape[1:]), x.shape
        ).copy()
        result = {
            "values": values,
            "extras": {
                "layer_map": np.concatenate(maps),
                "channel_weights": np.concatenate(weights),
            },
        }
        return chosen, prediction, result

    def _activation(self, captured: list[Any], m: int, input_shape: tuple[int, ...]) -> Any:
        """The one output the hooked layer produced for a chunk of ``m`` rows, checked."""
        import torch

        if not captured:
            raise ModelError(
                f"layer {self.layer!r} did not run during the forward pass, so it has no "
                "activation to explain; pick a layer the model calls."
            )
        if len(captured) > 1:
            raise InputError(
                f"layer {self.layer!r} ran {len(captured)} times in one forward pass (a shared "
                "module); class activation maps need a layer that runs once. Pick another layer."
            )
        act = captured[0]
        if not isinstance(act, torch.Tensor) or act.ndim not in (3, 4, 5) or act.shape[0] != m:
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise ShapeError(
                f"layer {self.layer!r} outputs {shape} for {m} inputs; class activation maps "
                "need a convolutional layer whose output is (n, channels, *spatial) with 1 to "
                "3 spatial axes, e.g. the last convolution (the default, layer=None)."
            )
        n_spatial = act.ndim - 2
        if len(input_shape) < n_spatial:
            raise ShapeError(
                f"layer {self.layer!r} has {n_spatial} spatial axes {tuple(act.shape[2:])} but "
                f"the inputs have rows of shape {input_shape}, so its map cannot be upsampled "
                "to the input. Class activation maps explain images and signals "
                "(channels, *spatial); for tables use e.g. integrated_gradients or kernel_shap."
            )
        return act


@register("grad_cam")
class GradCam(_CamExplainer):
    """Grad-CAM: a layer's channels weighted by their mean gradient, upsampled to the input.

    Selvaraju et al. (2017). With ``A`` the activation of ``layer`` (channels ``A_c`` over a
    spatial grid of ``Z`` cells) and ``y_t`` the target output, the weight of channel ``c`` is
    ``w_c = (1/Z) Σ_ij ∂y_t/∂A_cij`` and the map is ``ReLU(Σ_c w_c A_c)``. The map is
    upsampled to the input's spatial size (``torch.nn.functional.interpolate`` with
    ``align_corners=False``: linear for 1-D, bilinear for 2-D, trilinear for 3-D layers) and
    broadcast over the input channels. Equal to Captum's ``LayerGradCam`` followed by
    ``LayerAttribution.interpolate``. When the layer feeds a global average pooling and a
    linear head, ``w_c`` is the head's weight divided by ``Z`` (CAM of Zhou et al., 2016).

    Parameters
    ----------
    model : object
        A PyTorch module or Keras 3 model on the torch backend (or a differentiable
        :class:`~lumos.Model`); black boxes raise ``NotDifferentiableError``.
    layer : None, str or module, optional
        The layer to explain: a ``named_modules()`` path for PyTorch (``"features.3"``), a
        layer name for Keras (``"last_conv"``), or the module / layer object. Its output must
        be ``(n, channels, *spatial)`` with 1 to 3 spatial axes. Default: the last
        convolution (``nn.Conv1d/2d/3d``; Keras ``Conv*D``).
    relu : bool, default True
        Keep only the positive part of the map (``False``: the signed map).
    batch_size : int, optional
        Inputs per forward + backward pass (bounds memory).

    Notes
    -----
    ``params["layer"]`` records the resolved layer name. ``extras["layer_map"]`` holds the
    map at the layer's resolution, shape ``(n, *layer_spatial)``, and
    ``extras["channel_weights"]`` the weights ``w``, shape ``(n, C)``. ``base_value`` is
    ``None``: the map is not an additive decomposition of the output. Keras layers are
    hooked like PyTorch modules (a Keras layer on the torch backend is an ``nn.Module``); a
    Keras layer with a fused activation (``Conv2D(..., activation="relu")``) is explained
    after its activation, like the ``nn.ReLU`` following an ``nn.Conv2d`` in PyTorch.

    On CUDA, PyTorch's default TF32 convolutions would round activations and gradients to
    about 1e-3 (seen on an H100: maps moved by up to 6 % of their scale); lumos turns TF32 off
    for its passes (:func:`lumos._batching.full_float32`), so the GPU gives the CPU's maps.

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh and D. Batra. Grad-CAM:
    visual explanations from deep networks via gradient-based localization. ICCV 2017.
    https://arxiv.org/abs/1610.02391
    """

    def _channel_weights(self, act: Any, grad: Any) -> Any:
        return grad.mean(dim=tuple(range(2, grad.ndim)))


@register("grad_cam_pp")
class GradCamPP(_CamExplainer):
    """Grad-CAM++: channel weights from positive gradients, weighted per cell (closed form).

    Chattopadhay et al. (2018), with the usual closed form in first-order gradients
    ``g = ∂y_t/∂A`` (their eq. 19, as in pytorch-grad-cam): per channel ``c`` and cell
    ``ij``, ``α_cij = g_cij² / (2 g_cij² + (Σ_ab A_cab) g_cij³)`` (0 where the denominator
    is 0), the channel weight is ``w_c = Σ_ij α_cij ReLU(g_cij)`` and the map is
    ``ReLU(Σ_c w_c A_c)``, upsampled and broadcast as in :class:`GradCam`. The paper's
    exponential of the score only rescales each row's map by a positive factor and is left
    out (as in pytorch-grad-cam). When ``y_t`` is linear in ``A`` through global average
    pooling with head weights ``W``, ``g_cij = W_tc / Z`` and ``w_c = Z ReLU(g_c) /
    (2 + g_c Σ_ab A_cab)``.

    Parameters
    ----------
    model : object
        A PyTorch module or Keras 3 model on the torch backend (or a differentiable
        :class:`~lumos.Model`); black boxes raise ``NotDifferentiableError``.
    layer : None, str or module, optional
        The layer to explain, as for :class:`GradCam`. Default: the last convolution.
    relu : bool, default True
        Keep only the positive part of the map (``False``: the signed map).
    batch_size : int, optional
        Inputs per forward + backward pass (bounds memory).

    Notes
    -----
    ``params["layer"]``, ``extras["layer_map"]`` (n, *layer_spatial) and
    ``extras["channel_weights"]`` (n, C) as for :class:`GradCam`; ``base_value`` is ``None``.

    The paper applies the formula to non-negative activations (after a ReLU). On a layer
    whose outputs can be negative, such as a convolution before its ``nn.ReLU`` (the default
    layer of a PyTorch network), ``2 + g_cij Σ_ab A_cab`` can come close to 0 for a positive
    gradient and the weights then amplify rounding: on ``lumos.zoo.torch_cnn`` float32 maps
    differed from float64 ones by up to 2e-3 of their scale at ``"features.3"`` and 1e-7 at
    ``"features.4"`` (its ReLU). Prefer the activation after the ReLU (Keras layers with a
    fused activation already are).

    References
    ----------
    A. Chattopadhay, A. Sarkar, P. Howlader and V. N. Balasubramanian. Grad-CAM++:
    generalized gradient-based visual explanations for deep convolutional networks.
    WACV 2018. https://arxiv.org/abs/1710.11063
    """

    _float64: ClassVar[bool] = True

    def _channel_weights(self, act: Any, grad: Any) -> Any:
        import torch

        axes = tuple(range(2, grad.ndim))
        g2 = grad * grad
        denom = 2.0 * g2 + act.sum(dim=axes, keepdim=True) * g2 * grad
        nonzero = denom != 0
        alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, 1.0), 0.0)
        return (alpha * grad.clamp_min(0.0)).sum(dim=axes)
