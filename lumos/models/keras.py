"""Adapter for Keras 3 models on the torch backend (differentiable end to end)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lumos._batching import ArrayOps, for_torch, full_float32
from lumos.errors import ModelError
from lumos.models.base import Model


def _keras() -> Any:
    import keras

    backend = keras.backend.backend()
    if backend != "torch":
        raise ModelError(
            f"Keras is running on the {backend!r} backend; lumos needs the torch backend. "
            "Set the environment variable KERAS_BACKEND=torch before Python starts "
            "(or import lumos before keras)."
        )
    return keras


class KerasModel(Model):
    """A Keras 3 model as a lumos :class:`Model`.

    On the torch backend a Keras model is a ``torch.nn.Module``: calling it on a torch tensor
    keeps the autograd graph, so every gradient method works on it as on a PyTorch module.
    """

    framework = "keras"
    differentiable = True

    def __init__(self, model: Any, **hints: Any) -> None:
        keras = _keras()
        if not isinstance(model, keras.Model):
            raise ModelError(f"expected a keras.Model, got {type(model).__name__}.")
        self.keras_model = model
        if hints.get("input_shape") is None:
            hints["input_shape"] = self._declared_input_shape()
        weights = model.weights
        device = str(weights[0].value.device) if weights else "cpu"
        requested = hints.pop("device", None)
        if requested is not None and not str(requested).startswith(device.split(":")[0]):
            raise ModelError(
                f"this Keras model's weights live on {device!r}; Keras places them itself. "
                f"Drop device={requested!r} or build the model with Keras on that device."
            )
        super().__init__(device=device, **hints)
        declared = self._declared_n_outputs()
        if declared is not None:
            self._n_outputs = declared

    def _declared_input_shape(self) -> tuple[int, ...] | None:
        try:
            inputs = self.keras_model.inputs
        except (AttributeError, ValueError):
            return None
        if not inputs or len(inputs) != 1:
            if inputs:
                raise ModelError("lumos explains single-input Keras models; this one has several.")
            return None
        shape = tuple(inputs[0].shape[1:])
        if any(s is None for s in shape):
            return None
        return tuple(int(s) for s in shape)

    def _declared_n_outputs(self) -> int | None:
        try:
            outputs = self.keras_model.outputs
        except (AttributeError, ValueError):
            return None
        if not outputs:
            return None
        if len(outputs) != 1:
            raise ModelError("lumos explains single-output Keras models; this one has several.")
        shape = outputs[0].shape
        if len(shape) == 1:
            return 1
        if len(shape) != 2 or shape[-1] is None:
            return None
        return int(shape[-1])

    def array_ops(self) -> ArrayOps:
        import torch

        return ArrayOps(self.device, torch.float32)

    def _detect_output_kind(self) -> str:
        keras = _keras()
        layers = self.keras_model.layers
        act = getattr(layers[-1], "activation", None) if layers else None
        if act is not None:
            name = getattr(act, "__name__", "")
            if act in (keras.activations.softmax, keras.activations.sigmoid) or name in (
                "softmax",
                "sigmoid",
            ):
                return "probability"
        if layers and type(layers[-1]).__name__ in ("Softmax",):
            return "probability"
        return super()._detect_output_kind()

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        if isinstance(chunk, np.ndarray):
            chunk = for_torch(chunk)
        import torch

        with torch.no_grad(), full_float32(self.device):
            x = torch.as_tensor(chunk, dtype=torch.float32, device=self.device)
            if self.preprocess is not None:
                x = self.preprocess(x)
            y = self.keras_model(x, training=False)
        if isinstance(y, (list, tuple)):
            y = y[0]
        return y.detach().to("cpu", torch.float64).numpy()

    def _forward_torch(self, x: Any) -> Any:
        import torch

        y = self.keras_model(x.to(device=self.device, dtype=torch.float32), training=False)
        return y[0] if isinstance(y, (list, tuple)) else y

    def _fingerprint_key(self) -> Any:
        try:
            weights = tuple(
                (w.path, w.value.data_ptr(), w.value._version, tuple(w.shape))
                for w in self.keras_model.weights
            )
            return (id(self.keras_model), *weights)
        except (AttributeError, RuntimeError):  # not torch-backed variables: hash each time
            return None

    def _update_fingerprint(self, h: Any) -> None:
        try:
            config = _strip_names(self.keras_model.get_config())
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
        except (NotImplementedError, TypeError, AttributeError):
            h.update(type(self.keras_model).__name__.encode())
        for w in self.keras_model.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())


def _strip_names(config: Any) -> Any:
    """The architecture without auto-generated names (``dense_3``), which differ per session."""
    if isinstance(config, dict):
        return {k: _strip_names(v) for k, v in config.items() if k not in ("name", "build_config")}
    if isinstance(config, list):
        return [_strip_names(v) for v in config]
    return config
