"""Adapter for PyTorch ``nn.Module`` and TorchScript models."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lumos._batching import ArrayOps, for_torch, full_float32
from lumos.errors import ModelError
from lumos.models.base import Model


def _resolve_device(device: str | None, module: torch.nn.Module) -> str:
    if device is None:
        try:
            return str(next(module.parameters()).device)
        except StopIteration:
            return "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"device={device!r} was asked for but no CUDA device is available here; "
            "use device='cpu'."
        )
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ModelError(f"unknown device {device!r} ({exc}); use 'cpu' or 'cuda'.") from None
    return device


def _infer_input_shape(module: torch.nn.Module) -> tuple[int, ...] | None:
    """A first Linear layer fixes the input shape to ``(in_features,)``, unless a layer that
    reshapes (Flatten, Unflatten) or a convolution comes first: then the shape is learnt
    from the first data."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Flatten, torch.nn.Unflatten)):
            return None
        if isinstance(m, torch.nn.Linear):
            return (int(m.in_features),)
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            return None  # spatial size unknown until data is seen
    return None


def _last_leaf(module: torch.nn.Module) -> torch.nn.Module | None:
    leaves = [m for m in module.modules() if not list(m.children())]
    return leaves[-1] if leaves else None


class TorchModel(Model):
    """A PyTorch module (or TorchScript module) as a lumos :class:`Model`.

    The module is moved to ``device`` (default: where its parameters are) and put in eval
    mode. Inputs are cast to the dtype of the module's parameters; outputs come back as
    float64 numpy arrays, evaluated under ``torch.no_grad`` unless ``grad=True``.
    """

    framework = "torch"
    differentiable = True

    def __init__(self, module: torch.nn.Module, **hints: Any) -> None:
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}.")
        device = _resolve_device(hints.pop("device", None), module)
        if hints.get("input_shape") is None:
            hints["input_shape"] = _infer_input_shape(module)
        super().__init__(device=device, **hints)
        self.module = _prepare(module, device)
        try:
            self._dtype = next(module.parameters()).dtype
        except StopIteration:
            self._dtype = torch.float32
        if not self._dtype.is_floating_point:
            self._dtype = torch.float32

    def _torch_dtype(self) -> torch.dtype:
        return self._dtype

    def array_ops(self) -> ArrayOps:
        return ArrayOps(self.device, self._dtype)

    def _detect_output_kind(self) -> str:
        last = _last_leaf(self.module)
        if isinstance(last, (torch.nn.Softmax, torch.nn.Sigmoid)):
            return "probability"
        # TorchScript (scripted or traced) modules keep the original class name
        if getattr(last, "original_name", None) in ("Softmax", "Sigmoid"):
            return "probability"
        return super()._detect_output_kind()

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        if isinstance(chunk, np.ndarray):
            chunk = for_torch(chunk)
        with torch.no_grad(), full_float32(self.device):
            t = torch.as_tensor(chunk, dtype=self._dtype).to(self.device)
            if self.preprocess is not None:
                t = self.preprocess(t)
            y = self.module(t)
        return _output_to_numpy(y)

    def _forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(device=self.device, dtype=self._dtype))

    def _fingerprint_key(self) -> Any:
        # (storage address, version counter, shape) of every parameter and buffer, with the
        # depth and names that state_dict spells: equal keys mean no tensor was modified in
        # place, replaced or moved. One loop without named_modules' generator frames: this
        # runs on every explanation
        key: list[tuple] = []
        for depth, name, m in _walk(self.module):
            key.append((depth, name))
            for attr, t in (*m._parameters.items(), *m._buffers.items()):
                if t is not None:
                    key.append((attr, t.data_ptr(), t._version, t.shape))
        return tuple(key)

    def _update_fingerprint(self, h: Any) -> None:
        h.update(type(self.module).__name__.encode())
        for name, tensor in self.module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())


def _prepare(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """Move to ``device`` and switch to eval mode (dropout off, batch-norm statistics fixed)."""
    module = module.to(device)
    eval_mode(module)
    return module


def eval_mode(module: torch.nn.Module) -> None:
    """Switch ``module`` to eval mode if any part of it is training (torch.export modules
    refuse ``.eval()``: they stay in the mode they were exported in)."""
    if not _any_training(module):
        return
    try:
        module.eval()
    except NotImplementedError:
        pass


def _any_training(module: torch.nn.Module) -> bool:
    """Whether ``module`` or anything under it is in training mode (a plain loop that stops
    at the first: it runs on every explanation)."""
    stack = [module]
    while stack:
        m = stack.pop()
        if m is None:
            continue
        if m.training:
            return True
        stack.extend(m._modules.values())
    return False


def _walk(module: torch.nn.Module) -> list[tuple[int, str, torch.nn.Module]]:
    """``(depth, name, submodule)`` for ``module`` (depth 0, name ``""``) and everything under
    it, depth first in ``named_modules(remove_duplicate=False)``'s order, from a plain loop:
    explanations walk the model on every call (fingerprint, entry layer), where
    ``named_modules``' recursive generators were a measurable part of what a one-image
    gradient explanation costs beyond its forward + backward pass."""
    found: list[tuple[int, str, torch.nn.Module]] = []
    stack = [(0, "", module)]
    while stack:
        item = stack.pop()
        found.append(item)
        # items(), as named_modules reads them (TorchScript's module dict is no plain dict)
        for name, child in reversed(list(item[2]._modules.items())):  # popped in order
            if child is not None:
                stack.append((item[0] + 1, name, child))
    return found


def _output_to_numpy(y: Any) -> np.ndarray:
    if isinstance(y, (tuple, list)):
        y = y[0]
    if not isinstance(y, torch.Tensor):
        raise ModelError(
            f"the torch model returned {type(y).__name__}; it must return a tensor of shape "
            "(n, n_outputs)."
        )
    return y.detach().to("cpu", torch.float64).numpy()
