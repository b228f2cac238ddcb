"""Adapter for ONNX models run with onnxruntime (black boxes; loading runs no code)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lumos.errors import ModelError
from lumos.models.base import Model

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class OnnxModel(Model):
    """An ONNX model as a lumos :class:`Model`.

    Parameters
    ----------
    source : str, os.PathLike, bytes, onnx.ModelProto or onnxruntime.InferenceSession
    output_name : str, optional
        Which graph output to explain; default: the one whose name contains ``"prob"``,
        else the first float tensor output.
    **hints
        See :func:`lumos.wrap`.
    """

    framework = "onnx"
    _kind_from_outputs = True
    extra_hints = ("output_name",)

    def __init__(self, source: Any, *, output_name: str | None = None, **hints: Any) -> None:
        import onnxruntime as ort

        self._bytes: bytes | None = None
        if isinstance(source, ort.InferenceSession):
            session = source
        else:
            if isinstance(source, (str, os.PathLike)):
                if not os.path.exists(source):
                    raise ModelError(f"ONNX file {os.fspath(source)!r} does not exist.")
                with open(source, "rb") as fh:
                    self._bytes = fh.read()
            elif isinstance(source, bytes):
                self._bytes = source
            elif hasattr(source, "SerializeToString"):
                self._bytes = source.SerializeToString()
            else:
                raise ModelError(f"cannot read an ONNX model from {type(source).__name__}.")
            try:
                session = ort.InferenceSession(self._bytes, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelError(f"onnxruntime could not load this model: {exc}") from None
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"lumos explains single-input ONNX models; this one has {len(inputs)} inputs "
                f"({[i.name for i in inputs]})."
            )
        inp = inputs[0]
        if inp.type not in _FLOAT_TYPES:
            raise ModelError(f"ONNX input {inp.name!r} has type {inp.type}; float input expected.")
        self._in_name = inp.name
        self._in_dtype = _FLOAT_TYPES[inp.type]
        dims = list(inp.shape)
        self._fixed_batch = dims[0] if dims and isinstance(dims[0], int) else None
        if (
            hints.get("input_shape") is None
            and dims[1:]
            and all(isinstance(d, int) for d in dims[1:])
        ):
            hints["input_shape"] = tuple(int(d) for d in dims[1:])
        tensor_outputs = [o for o in session.get_outputs() if o.type in _FLOAT_TYPES]
        if output_name is None:
            if not tensor_outputs:
                raise ModelError("this ONNX model has no float tensor output to explain.")
            probs = [o for o in tensor_outputs if "prob" in o.name.lower()]
            output_name = (probs or tensor_outputs)[0].name
        elif output_name not in [o.name for o in session.get_outputs()]:
            raise ModelError(
                f"ONNX output {output_name!r} does not exist; outputs: "
                f"{[o.name for o in session.get_outputs()]}."
            )
        self._out_name = output_name
        if self._fixed_batch is not None and hints.get("batch_size") is None:
            hints["batch_size"] = self._fixed_batch
        super().__init__(**hints)
        self.session = session

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(chunk, dtype=self._in_dtype)
        if self._fixed_batch is not None and len(x) != self._fixed_batch:
            pad = self._fixed_batch - len(x)
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
            return self.session.run([self._out_name], {self._in_name: x})[0][: len(chunk)]
        return self.session.run([self._out_name], {self._in_name: x})[0]

    def _update_fingerprint(self, h: Any) -> None:
        if self._bytes is not None:
            h.update(self._bytes)
        else:
            h.update(self._in_name.encode() + self._out_name.encode())
