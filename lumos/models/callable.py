"""Adapter for a plain function on numpy arrays (a black box)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lumos.errors import ModelError
from lumos.models.base import Model


class CallableModel(Model):
    """A function ``f(x: ndarray (n, *input_shape)) -> ndarray (n, k) or (n,)`` as a Model.

    The function is a black box: every model-agnostic method works on it, gradient methods
    do not. Its output kind is read off its first outputs (rows in [0, 1] summing to one
    are probabilities) unless ``output_kind=`` says otherwise.
    """

    framework = "callable"
    _kind_from_outputs = True

    def __init__(self, fn: Callable[[np.ndarray], Any], **hints: Any) -> None:
        if not callable(fn):
            raise ModelError(f"expected a callable, got {type(fn).__name__}.")
        super().__init__(**hints)
        self.fn = fn

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        y = self.fn(chunk)
        if type(y).__module__.startswith("torch"):
            y = y.detach().cpu().numpy()
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number) and y.dtype != bool:
            raise ModelError(
                f"the model function returned dtype {y.dtype}; it must return numbers of shape "
                "(n, n_outputs), e.g. class probabilities rather than labels."
            )
        return y

    def _update_fingerprint(self, h: Any) -> None:
        fn = self.fn
        h.update(
            f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}".encode()
        )
        code = getattr(fn, "__code__", None)
        if code is not None:
            h.update(code.co_code)
