"""PyTorch reference networks: the twins of :mod:`lumos.zoo.keras_nets`.

Both builders return an :class:`torch.nn.Sequential` subclass whose layers line up one to one
with the Keras twin, so :func:`lumos.zoo.copy_weights` can move weights either way and the
two give the same outputs. The networks are initialised like the Keras twins (Glorot-uniform
weights, zero biases) from their own seed, never from the global torch random state.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn

from lumos._random import RandomState, check_random_state
from lumos.errors import InputError, ShapeError, UnknownNameError

__all__ = ["TorchCNN", "TorchMLP", "torch_cnn", "torch_mlp"]

_OUTPUTS = ("probability", "logit")
_M = TypeVar("_M", bound=nn.Module)


# --------------------------------------------------------------------------- argument checks
# Shared with keras_nets (torch is always present: it is the Keras backend in lumos).


def _positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(
            f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})."
        )
    if int(value) < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value}.")
    return int(value)


def _int_tuple(value: object, name: str, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InputError(f"{name} must be a tuple of positive ints, e.g. (128, 64), got {value!r}.")
    out = tuple(_positive_int(v, f"each entry of {name}") for v in value)
    if not out and not allow_empty:
        raise InputError(f"{name} must hold at least one width, e.g. (8, 16); got ().")
    return out


def _penalty(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a non-negative float, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite float >= 0 (0 turns it off), got {value}.")
    return value


def _image_shape(input_shape: object, n_blocks: int) -> tuple[int, int, int]:
    if isinstance(input_shape, str | bytes) or not isinstance(input_shape, Sequence):
        raise ShapeError(
            f"input_shape must be (channels, height, width), e.g. (1, 28, 28); got {input_shape!r}."
        )
    if len(input_shape) != 3:
        raise ShapeError(
            "input_shape must be channels-first (channels, height, width), e.g. (1, 28, 28); "
            f"got {tuple(input_shape)} with {len(input_shape)} entries."
        )
    shape = tuple(_positive_int(v, "each entry of input_shape") for v in input_shape)
    smallest = 2**n_blocks
    if shape[1] < smallest or shape[2] < smallest:
        raise ShapeError(
            f"input_shape {shape} is too small for {n_blocks} conv/2x2-pool blocks: height and "
            f"width must be at least {smallest}. Use fewer channels entries or larger images."
        )
    return shape  # type: ignore[return-value]


def _output_kind(output: object) -> str:
    if output not in _OUTPUTS:
        raise UnknownNameError(
            f"output must be 'probability' (ends with Softmax) or 'logit' (no Softmax), "
            f"got {output!r}."
        )
    return str(output)


def _layer_seeds(seed: RandomState, n: int) -> list[int]:
    """``n`` integer seeds derived from ``seed`` without touching any global random state."""
    rng = check_random_state(seed)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


def _glorot_init(module: nn.Module, seed: int) -> None:
    """Glorot-uniform weights and zero biases, as Keras does, from a private generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                w = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)
                nn.init.xavier_uniform_(w, generator=gen)
                layer.weight.copy_(w)
                if layer.bias is not None:
                    layer.bias.zero_()


def _build_seeded(builder: Callable[[], _M], seed: RandomState) -> _M:
    """Call ``builder()`` with the global torch RNG forked so it is left as it was."""
    (torch_seed,) = _layer_seeds(seed, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        module = builder()
    _glorot_init(module, torch_seed)
    return module


# --------------------------------------------------------------------------- networks


class TorchMLP(nn.Sequential):
    """Multi-layer perceptron ``Linear → ReLU → ... → Linear (→ Softmax)``.

    Built by :func:`torch_mlp`; children are numbered ``"0"``, ``"1"``, ... as in any
    :class:`torch.nn.Sequential`.

    Attributes
    ----------
    input_dim : int
    n_classes : int
    hidden : tuple of int
    output : {"probability", "logit"}
    l1, l2 : float
        Weight penalties that :func:`lumos.zoo.fit` adds to the loss.
    """

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        hidden: tuple[int, ...],
        output: str,
        l1: float,
        l2: float,
    ) -> None:
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        if output == "probability":
            layers.append(nn.Softmax(dim=1))
        super().__init__(*layers)
        self.input_dim = input_dim
        self.n_classes = n_classes
        self.hidden = hidden
        self.output = output
        self.l1 = l1
        self.l2 = l2


class TorchCNN(nn.Sequential):
    """Small channels-first CNN with two children, ``features`` and ``classifier``.

    ``features`` holds ``Conv2d → ReLU → MaxPool2d`` per entry of ``channels`` (the last
    convolution is ``features.3`` with the default two blocks); ``classifier`` holds
    ``Flatten → Linear → ReLU → Linear (→ Softmax)``.

    Attributes
    ----------
    input_shape : tuple of int
        ``(channels, height, width)``.
    n_classes : int
    channels : tuple of int
    hidden : int
    output : {"probability", "logit"}
    l1, l2 : float
        Weight penalties that :func:`lumos.zoo.fit` adds to the loss.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        channels: tuple[int, ...],
        hidden: int,
        output: str,
        l1: float,
        l2: float,
    ) -> None:
        c, h, w = input_shape
        feats: list[nn.Module] = []
        for out_c in channels:
            feats += [nn.Conv2d(c, out_c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out_c, h // 2, w // 2
        head: list[nn.Module] = [
            nn.Flatten(),
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        ]
        if output == "probability":
            head.append(nn.Softmax(dim=1))
        super().__init__(
            OrderedDict([("features", nn.Sequential(*feats)), ("classifier", nn.Sequential(*head))])
        )
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.channels = channels
        self.hidden = hidden
        self.output = output
        self.l1 = l1
        self.l2 = l2

    @property
    def last_conv(self) -> str:
        """``named_modules()`` path of the last convolution, e.g. ``"features.3"``."""
        return f"features.{3 * (len(self.channels) - 1)}"


def torch_mlp(
    input_dim: int,
    n_classes: int,
    *,
    hidden: Sequence[int] = (128, 64),
    output: str = "probability",
    l1: float = 0.0,
    l2: float = 0.0,
    seed: RandomState = None,
) -> TorchMLP:
    """The PyTorch twin of :func:`lumos.zoo.keras_mlp`.

    ``Linear(input_dim, 128) → ReLU → Linear(128, 64) → ReLU → Linear(64, n_classes)
    → Softmax(dim=1)``; ``named_modules()`` paths are ``"0"`` to ``"5"``.

    Parameters
    ----------
    input_dim : int
        Number of input features.
    n_classes : int
        Number of classes (>= 2).
    hidden : tuple of int, default (128, 64)
        Widths of the hidden layers.
    output : {"probability", "logit"}, default "probability"
        ``"probability"`` ends with ``nn.Softmax(dim=1)``; ``"logit"`` leaves it out.
    l1, l2 : float, default 0.0
        Weight penalties stored on the module; :func:`lumos.zoo.fit` adds
        ``l1·Σ|W| + l2·ΣW²`` over the Linear weights to the loss.
    seed : int, numpy Generator or None
        Seeds the initial weights; the global torch random state is not touched.

    Returns
    -------
    TorchMLP
        In ``eval()`` mode. Maps a float tensor of shape (n, input_dim) to (n, n_classes).
    """
    input_dim = _positive_int(input_dim, "input_dim")
    n_classes = _positive_int(n_classes, "n_classes", minimum=2)
    widths = _int_tuple(hidden, "hidden", allow_empty=True)
    kind = _output_kind(output)
    l1, l2 = _penalty(l1, "l1"), _penalty(l2, "l2")
    model = _build_seeded(lambda: TorchMLP(input_dim, n_classes, widths, kind, l1, l2), seed)
    return model.eval()


def torch_cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    *,
    channels: Sequence[int] = (8, 16),
    hidden: int = 64,
    output: str = "probability",
    l1: float = 0.0,
    l2: float = 0.0,
    seed: RandomState = None,
) -> TorchCNN:
    """The PyTorch twin of :func:`lumos.zoo.keras_cnn`.

    ``features``: ``Conv2d(C, 8, 3, padding=1) → ReLU → MaxPool2d(2) → Conv2d(8, 16, 3,
    padding=1) → ReLU → MaxPool2d(2)``; ``classifier``: ``Flatten → Linear(16·H/4·W/4,
    hidden) → ReLU → Linear(hidden, n_classes) → Softmax(dim=1)``. The last convolution's
    ``named_modules()`` path is ``"features.3"`` (also in ``model.last_conv``).

    Parameters
    ----------
    input_shape : tuple of int, default (1, 28, 28)
        Channels-first ``(channels, height, width)`` of one image.
    n_classes : int, default 10
        Number of classes (>= 2).
    channels : tuple of int, default (8, 16)
        Output channels of each conv/pool block.
    hidden : int, default 64
        Width of the dense hidden layer.
    output : {"probability", "logit"}, default "probability"
        ``"probability"`` ends with ``nn.Softmax(dim=1)``; ``"logit"`` leaves it out.
    l1, l2 : float, default 0.0
        Weight penalties stored on the module for :func:`lumos.zoo.fit`.
    seed : int, numpy Generator or None
        Seeds the initial weights; the global torch random state is not touched.

    Returns
    -------
    TorchCNN
        In ``eval()`` mode. Maps a float tensor of shape (n, C, H, W) to (n, n_classes).
    """
    widths = _int_tuple(channels, "channels", allow_empty=False)
    shape = _image_shape(input_shape, len(widths))
    n_classes = _positive_int(n_classes, "n_classes", minimum=2)
    hidden = _positive_int(hidden, "hidden")
    kind = _output_kind(output)
    l1, l2 = _penalty(l1, "l1"), _penalty(l2, "l2")
    model = _build_seeded(lambda: TorchCNN(shape, n_classes, widths, hidden, kind, l1, l2), seed)
    return model.eval()
