"""Keras reference networks and :func:`copy_weights` between them and their torch twins.

The Keras networks run on the torch backend (``import lumos`` sets ``KERAS_BACKEND=torch``).
Images are channels-first, ``(n, C, H, W)``, like torch and the :mod:`lumos.datasets` loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# ``lumos/__init__.py`` has already run (this module lives in the package), so
# KERAS_BACKEND=torch is set before keras is imported here.
import keras
import numpy as np
import torch
from torch import nn

from lumos._random import RandomState
from lumos.errors import ModelError
from lumos.zoo.torch_nets import (
    _image_shape,
    _int_tuple,
    _layer_seeds,
    _penalty,
    _positive_int,
)

__all__ = ["copy_weights", "keras_cnn", "keras_mlp"]


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    if l1 == 0.0 and l2 == 0.0:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def _compile(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    return model


def _dense(units: int, activation: str, name: str, seed: int, reg: Any) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.Zeros(),
        kernel_regularizer=reg,
        name=name,
    )


def keras_mlp(
    input_dim: int,
    n_classes: int,
    *,
    hidden: Sequence[int] = (128, 64),
    l1: float = 0.0,
    l2: float = 0.0,
    seed: RandomState = None,
) -> keras.Model:
    """The classic tabular network: ``Dense(128, relu) → Dense(64, relu) → Dense(n, softmax)``.

    Layers are named ``"dense_1"``, ``"dense_2"``, ... for the hidden layers and ``"output"``
    for the softmax layer. Compiled with ``keras.optimizers.Adam()``, sparse categorical
    cross-entropy and ``metrics=["accuracy"]``.

    Parameters
    ----------
    input_dim : int
        Number of input features.
    n_classes : int
        Number of classes (>= 2).
    hidden : tuple of int, default (128, 64)
        Widths of the hidden ReLU layers.
    l1, l2 : float, default 0.0
        When either is non-zero every Dense layer gets
        ``kernel_regularizer=keras.regularizers.L1L2(l1, l2)``.
    seed : int, numpy Generator or None
        Seeds the Glorot-uniform initialisers: the same seed gives the same initial weights.

    Returns
    -------
    keras.Model
        Maps an array of shape (n, input_dim) to class probabilities of shape (n, n_classes).
    """
    input_dim = _positive_int(input_dim, "input_dim")
    n_classes = _positive_int(n_classes, "n_classes", minimum=2)
    widths = _int_tuple(hidden, "hidden", allow_empty=True)
    reg = _regularizer(_penalty(l1, "l1"), _penalty(l2, "l2"))
    seeds = _layer_seeds(seed, len(widths) + 1)

    inputs = keras.Input(shape=(input_dim,), name="input")
    x = inputs
    for i, width in enumerate(widths):
        x = _dense(width, "relu", f"dense_{i + 1}", seeds[i], reg)(x)
    outputs = _dense(n_classes, "softmax", "output", seeds[-1], reg)(x)
    return _compile(keras.Model(inputs, outputs, name="mlp"))


def keras_cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    *,
    channels: Sequence[int] = (8, 16),
    hidden: int = 64,
    l1: float = 0.0,
    l2: float = 0.0,
    seed: RandomState = None,
) -> keras.Model:
    """Small channels-first CNN for images, the Keras twin of :func:`lumos.zoo.torch_cnn`.

    ``Conv2D(8, 3, relu, same) → MaxPool(2) → Conv2D(16, 3, relu, same) → MaxPool(2) →
    Flatten → Dense(hidden, relu) → Dense(n_classes, softmax)``, all channels-first.
    Layer names: ``"conv_1"``, ``"pool_1"``, ..., ``"last_conv"`` (the last convolution),
    ``"pool_<k>"``, ``"flatten"``, ``"dense_1"``, ``"output"``. ``Flatten`` keeps the
    ``(C, H, W)`` element order, as ``torch.nn.Flatten`` does, so weights copy between the
    twins unchanged. Compiled like :func:`keras_mlp`.

    Parameters
    ----------
    input_shape : tuple of int, default (1, 28, 28)
        Channels-first ``(channels, height, width)`` of one image.
    n_classes : int, default 10
        Number of classes (>= 2).
    channels : tuple of int, default (8, 16)
        Filters of each conv/pool block.
    hidden : int, default 64
        Width of the dense hidden layer.
    l1, l2 : float, default 0.0
        When either is non-zero every Conv2D and Dense layer gets an ``L1L2`` kernel
        regularizer with these factors.
    seed : int, numpy Generator or None
        Seeds the initialisers: the same seed gives the same initial weights.

    Returns
    -------
    keras.Model
        Maps an array of shape (n, C, H, W) to class probabilities of shape (n, n_classes).
    """
    widths = _int_tuple(channels, "channels", allow_empty=False)
    shape = _image_shape(input_shape, len(widths))
    n_classes = _positive_int(n_classes, "n_classes", minimum=2)
    hidden = _positive_int(hidden, "hidden")
    reg = _regularizer(_penalty(l1, "l1"), _penalty(l2, "l2"))
    seeds = _layer_seeds(seed, len(widths) + 2)

    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    for i, filters in enumerate(widths):
        name = "last_conv" if i == len(widths) - 1 else f"conv_{i + 1}"
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            data_format="channels_first",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[i]),
            bias_initializer=keras.initializers.Zeros(),
            kernel_regularizer=reg,
            name=name,
        )(x)
        x = keras.layers.MaxPooling2D(2, data_format="channels_first", name=f"pool_{i + 1}")(x)
    # "channels_last" here means: flatten the tensor as it is laid out, (C, H, W) row-major,
    # exactly like torch.nn.Flatten. ("channels_first" would transpose to (H, W, C) first.)
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    x = _dense(hidden, "relu", "dense_1", seeds[-2], reg)(x)
    outputs = _dense(n_classes, "softmax", "output", seeds[-1], reg)(x)
    return _compile(keras.Model(inputs, outputs, name="cnn"))


# --------------------------------------------------------------------------- copy_weights

# A framework-neutral layer: kind, name, weight in torch layout, bias (or None), conv config.
_Layer = dict[str, Any]


def _keras_layers(model: keras.Model) -> list[keras.layers.Layer]:
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model | keras.Sequential):
            out += _keras_layers(layer)
        elif layer.weights:
            out.append(layer)
    return out


def _torch_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, m)
        for name, m in model.named_modules()
        if any(True for _ in m.parameters(recurse=False))
    ]


def _read_keras(model: keras.Model) -> list[_Layer]:
    layers = []
    for layer in _keras_layers(model):
        arrays = [np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.get_weights()]
        bias = arrays[1] if getattr(layer, "use_bias", False) and len(arrays) > 1 else None
        if type(layer) is keras.layers.Dense:
            layers.append(
                {"kind": "dense", "name": layer.name, "weight": arrays[0].T, "bias": bias}
            )
        elif type(layer) is keras.layers.Conv2D:
            if layer.data_format != "channels_first":
                raise ModelError(
                    f"Keras layer {layer.name!r} is a channels_last Conv2D; its torch twin "
                    "reads channels-first images. Build it with data_format='channels_first' "
                    "(as lumos.zoo.keras_cnn does) before copying weights."
                )
            k = tuple(layer.kernel_size)
            if layer.padding == "same":
                dil = tuple(layer.dilation_rate)
                padding = tuple(d * (s - 1) // 2 for d, s in zip(dil, k, strict=True))
            else:
                padding = (0, 0)
            layers.append(
                {
                    "kind": "conv",
                    "name": layer.name,
                    "weight": arrays[0].transpose(3, 2, 0, 1),
                    "bias": bias,
                    "config": (tuple(layer.strides), padding, tuple(layer.dilation_rate)),
                    "groups": layer.groups,
                }
            )
        else:
            raise ModelError(
                f"copy_weights supports Dense and Conv2D layers only; Keras layer "
                f"{layer.name!r} is a {type(layer).__name__} with weights."
            )
    return layers


def _torch_conv_config(m: nn.Conv2d) -> tuple[tuple[int, ...], ...]:
    padding = m.padding
    if padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size, strict=True))
    elif padding == "valid":
        padding = (0, 0)
    return (tuple(m.stride), tuple(padding), tuple(m.dilation))


def _read_torch(model: nn.Module) -> list[_Layer]:
    layers = []
    for name, m in _torch_layers(model):
        weight = m.weight.detach().cpu().numpy() if m.weight is not None else None
        bias = m.bias.detach().cpu().numpy() if getattr(m, "bias", None) is not None else None
        if type(m) is nn.Linear:
            layers.append({"kind": "dense", "name": name, "weight": weight, "bias": bias})
        elif type(m) is nn.Conv2d:
            layers.append(
                {
                    "kind": "conv",
                    "name": name,
                    "weight": weight,
                    "bias": bias,
                    "config": _torch_conv_config(m),
                    "groups": m.groups,
                }
            )
        else:
            raise ModelError(
                f"copy_weights supports nn.Linear and nn.Conv2d only; torch module "
                f"{name!r} is a {type(m).__name__} with parameters."
            )
    return layers


def _framework(model: object, role: str) -> str:
    if isinstance(model, keras.Model):
        return "keras"
    if isinstance(model, nn.Module):
        return "torch"
    raise ModelError(
        f"copy_weights {role} must be a keras.Model or a torch.nn.Module, "
        f"got {type(model).__name__}."
    )


def _read(model: object, framework: str) -> list[_Layer]:
    return _read_keras(model) if framework == "keras" else _read_torch(model)  # type: ignore[arg-type]


def _check_pair(i: int, s: _Layer, d: _Layer, s_fw: str, d_fw: str) -> None:
    where = f"layer {i} ({s_fw} {s['name']!r} → {d_fw} {d['name']!r})"
    if s["kind"] != d["kind"]:
        raise ModelError(
            f"Architectures differ at {where}: a {s['kind']} layer cannot be copied into a "
            f"{d['kind']} layer. Build the twin with the same layers (e.g. keras_mlp/torch_mlp)."
        )
    if s["weight"].shape != d["weight"].shape:
        raise ModelError(
            f"Architectures differ at {where}: weight shapes {s['weight'].shape} and "
            f"{d['weight'].shape} (torch layout, out × in...) do not match. Build both nets "
            "with the same input shape, widths and n_classes."
        )
    if (s["bias"] is None) != (d["bias"] is None):
        raise ModelError(f"Architectures differ at {where}: one has a bias and the other does not.")
    if s["kind"] == "conv" and (s["config"], s["groups"]) != (d["config"], d["groups"]):
        raise ModelError(
            f"Architectures differ at {where}: convolution (stride, padding, dilation) "
            f"{s['config']} vs {d['config']}, groups {s['groups']} vs {d['groups']}."
        )


def _write_keras(model: keras.Model, layers: list[_Layer]) -> None:
    for layer, src in zip(_keras_layers(model), layers, strict=True):
        kernel = src["weight"].T if src["kind"] == "dense" else src["weight"].transpose(2, 3, 1, 0)
        weights = [kernel] if src["bias"] is None else [kernel, src["bias"]]
        layer.set_weights([np.ascontiguousarray(w) for w in weights])


def _write_torch(model: nn.Module, layers: list[_Layer]) -> None:
    with torch.no_grad():
        for (_, m), src in zip(_torch_layers(model), layers, strict=True):
            m.weight.copy_(torch.as_tensor(np.ascontiguousarray(src["weight"])))
            if src["bias"] is not None:
                m.bias.copy_(torch.as_tensor(src["bias"]))


def copy_weights(src: keras.Model | nn.Module, dst: keras.Model | nn.Module) -> Any:
    """Copy the weights of ``src`` into ``dst``, a twin with the same architecture.

    Works Keras → torch, torch → Keras (and Keras → Keras, torch → torch). Layers are paired
    in order: Keras ``Dense`` with torch ``nn.Linear`` (kernel (in, out) ↔ weight (out, in)),
    Keras ``Conv2D`` (channels-first) with ``nn.Conv2d`` (kernel (kh, kw, in, out) ↔ weight
    (out, in, kh, kw)). Layers without weights (activations, pooling, flatten) are skipped.

    Parameters
    ----------
    src : keras.Model or torch.nn.Module
        The network to read weights from.
    dst : keras.Model or torch.nn.Module
        The twin to write them into; changed in place.

    Returns
    -------
    keras.Model or torch.nn.Module
        ``dst``.

    Raises
    ------
    ModelError
        When either is not a network, holds a layer kind other than Dense/Linear or
        Conv2D/Conv2d, or the two do not line up layer for layer; the message names the layer.
    """
    s_fw, d_fw = _framework(src, "src"), _framework(dst, "dst")
    s_layers, d_layers = _read(src, s_fw), _read(dst, d_fw)
    if len(s_layers) != len(d_layers):
        raise ModelError(
            f"Architectures differ: src ({s_fw}) has {len(s_layers)} layers with weights "
            f"({[layer['name'] for layer in s_layers]}), dst ({d_fw}) has {len(d_layers)} "
            f"({[layer['name'] for layer in d_layers]}). Build twins with the same widths."
        )
    for i, (s, d) in enumerate(zip(s_layers, d_layers, strict=True)):
        _check_pair(i, s, d, s_fw, d_fw)
    if d_fw == "keras":
        _write_keras(dst, s_layers)  # type: ignore[arg-type]
    else:
        _write_torch(dst, s_layers)  # type: ignore[arg-type]
    return dst
