"""The :class:`Model` protocol every adapter implements, and :func:`wrap` to build one."""

from __future__ import annotations

import abc
import hashlib
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lumos import _batching
from lumos._validation import check_array, check_name, check_target
from lumos.errors import InputError, ModelError, NotDifferentiableError, UnknownNameError

OUTPUT_KINDS = ("probability", "logit", "regression")


class Model(abc.ABC):
    """Uniform face of a model: numpy in, ``(n, n_outputs)`` float64 out, in chunks.

    Do not instantiate directly; use :func:`lumos.wrap`. Subclasses implement
    :meth:`_forward` (numpy chunk → numpy outputs, no autograd) and, when differentiable,
    :meth:`_forward_torch` (torch tensor → torch tensor with the autograd graph kept).

    Parameters
    ----------
    input_shape : tuple of int, optional
        Shape of one input row. Taken from the model when it says, else from the first data.
    output_kind : {"probability", "logit", "regression"}, optional
        Overrides the detected kind of output.
    feature_names, class_names : sequence of str, optional
        Names of the input features / the outputs.
    batch_size : int, optional
        Maximum rows per model call; ``None`` uses the engine's element budget.
    device : str, optional
        ``"cpu"`` or ``"cuda"`` for torch-backed models.
    preprocess : callable, optional
        Applied to every input before the model: numpy → numpy for black boxes, torch →
        torch for differentiable models (so gradients flow to the raw input).
    """

    differentiable: bool = False
    framework: str = "unknown"
    #: Hints this adapter accepts beyond the common ones.
    extra_hints: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        input_shape: Sequence[int] | None = None,
        output_kind: str | None = None,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        preprocess: Callable[[Any], Any] | None = None,
    ) -> None:
        if output_kind is not None:
            check_name(output_kind, OUTPUT_KINDS, kind="output_kind")
        if batch_size is not None:
            _batching.resolve_batch_size(batch_size, 1)
        if preprocess is not None and not callable(preprocess):
            raise InputError("preprocess must be a callable applied to every input batch.")
        self._input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self._output_kind_hint = output_kind
        self._detected_kind: str | None = None
        self._n_outputs: int | None = None
        self.feature_names = None if feature_names is None else [str(f) for f in feature_names]
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.batch_size = batch_size
        self.device = device or "cpu"
        self.preprocess = preprocess

    # ------------------------------------------------------------------ shapes and kinds
    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one input row, or ``None`` until the model has seen data."""
        return self._input_shape

    @property
    def n_features(self) -> int | None:
        """Scalar features per input row (product of ``input_shape``)."""
        return None if self._input_shape is None else math.prod(self._input_shape)

    @property
    def n_outputs(self) -> int:
        """Number of model outputs (columns of ``model(x)``)."""
        if self._n_outputs is None:
            if self._input_shape is None:
                raise ModelError(
                    "the number of outputs is not known until the model sees data; call the "
                    "model on a batch first or pass input_shape= to lumos.wrap."
                )
            self(np.zeros((1, *self._input_shape)))
        return int(self._n_outputs)  # type: ignore[arg-type]

    @property
    def output_kind(self) -> str:
        """One of ``"probability"``, ``"logit"``, ``"regression"``."""
        if self._output_kind_hint is not None:
            return self._output_kind_hint
        if self._detected_kind is None:
            self._detected_kind = self._detect_output_kind()
        return self._detected_kind

    #: Black boxes whose output kind can only be read off their outputs set this.
    _kind_from_outputs: bool = False

    def _detect_output_kind(self) -> str:
        n_outputs = self.n_outputs  # evaluates once on zeros when no data was seen yet
        if self._kind_from_outputs and self._detected_kind is not None:
            return self._detected_kind
        return "regression" if n_outputs == 1 else "logit"

    @property
    def torch_module(self) -> Callable[[Any], Any]:
        """A torch callable mapping a tensor (n, *input_shape) to outputs (n, n_outputs).

        Raises
        ------
        NotDifferentiableError
            For black-box models.
        """
        self._require_differentiable()
        return self._forward_torch_full

    def _require_differentiable(self) -> None:
        if not self.differentiable:
            raise NotDifferentiableError(
                f"this {self.framework} model is a black box: gradient methods need a PyTorch "
                "module or a Keras 3 model on the torch backend. Use a model-agnostic method "
                "instead (feature_ablation, occlusion, kernel_shap, lime)."
            )

    @property
    def fingerprint(self) -> str:
        """Short hash of the model's parameters, recorded in explanation provenance."""
        key = self._fingerprint_key()
        cached = getattr(self, "_fingerprint_cache", None)
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        h = hashlib.sha256()
        h.update(self.framework.encode())
        self._update_fingerprint(h)
        digest = h.hexdigest()[:16]
        if key is not None:
            self._fingerprint_cache = (key, digest)
        return digest

    def _fingerprint_key(self) -> Any:
        """Something that changes whenever the parameters may have changed (``None``: no
        cache, hash every time). Torch tensors offer their storage address and version
        counter, which every in-place update bumps."""
        return None

    def _update_fingerprint(self, h: Any) -> None:  # pragma: no cover - overridden
        h.update(repr(self).encode())

    # ------------------------------------------------------------------ evaluation
    def check_input(self, x: Any, *, name: str = "x") -> tuple[np.ndarray, list[str] | None]:
        """Validate ``x`` against this model and return it as a float ndarray.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape)
            numpy array, torch tensor or pandas DataFrame.

        Returns
        -------
        array : ndarray of shape (n, *input_shape)
        feature_names : list of str or None
            The DataFrame's columns, when ``x`` is one.
        """
        arr, names = check_array(x, name=name, input_shape=self._input_shape)
        if self._input_shape is None:
            self._input_shape = tuple(arr.shape[1:])
        if names is not None:
            if self.feature_names is None:
                self.feature_names = names
            elif names != self.feature_names:
                raise InputError(
                    f"{name}'s columns {names[:5]}... differ from the model's feature names "
                    f"{self.feature_names[:5]}...; reorder the columns to match the model."
                )
        return arr, names

    def resolve_batch_size(self, batch_size: int | None = None) -> int:
        """Rows per model call for this model (explicit, the wrap hint, or the default)."""
        bs = batch_size if batch_size is not None else self.batch_size
        return _batching.resolve_batch_size(bs, self.n_features or 1, self.device)

    def __call__(self, x: Any, *, batch_size: int | None = None, grad: bool = False) -> Any:
        """Evaluate the model.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape)
        batch_size : int, optional
            Rows per model call (defaults to the wrap hint or the engine budget).
        grad : bool
            ``False`` (default): chunked evaluation without autograd, returns an ndarray.
            ``True``: differentiable models only; ``x`` is (converted to) a torch tensor and a
            torch tensor attached to the autograd graph is returned.

        Returns
        -------
        ndarray of shape (n, n_outputs), float64 (or a torch tensor when ``grad=True``)
        """
        if grad:
            return self._forward_torch_full(x)
        arr, _ = self.check_input(x)
        return self.evaluate(arr, batch_size=batch_size)

    predict = __call__

    def evaluate(self, x: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Evaluate already validated inputs in chunks (no checks, no autograd).

        Parameters
        ----------
        x : ndarray of shape (n, *input_shape)

        Returns
        -------
        ndarray of shape (n, n_outputs), float64
        """
        if self._input_shape is None:
            self._input_shape = tuple(x.shape[1:])
        return _batching.evaluate(self._forward_checked, x, self.resolve_batch_size(batch_size))

    def evaluate_generated(
        self,
        make_chunk: Callable[[int, int], np.ndarray],
        n_rows: int,
        *,
        batch_size: int | None = None,
        select: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Evaluate ``n_rows`` inputs generated chunk by chunk (see :mod:`lumos._batching`).

        Returns
        -------
        ndarray of shape (n_rows, n_outputs), or what ``select`` keeps, float64
        """
        return _batching.evaluate_generated(
            self._forward_checked,
            make_chunk,
            n_rows,
            self.resolve_batch_size(batch_size),
            select=select,
            on_chunk=on_chunk,
        )

    def array_ops(self) -> _batching.ArrayOps:
        """Where explainers should build perturbed inputs: numpy for black boxes, torch on
        the model's device for torch-backed models (see :class:`lumos._batching.ArrayOps`)."""
        return _batching.NUMPY_OPS

    def _forward_checked(self, chunk: np.ndarray) -> np.ndarray:
        if self.preprocess is not None and not self.differentiable:
            chunk = np.asarray(self.preprocess(chunk))
        y = np.asarray(self._forward(chunk), dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if self._n_outputs is None and y.ndim == 2:
            self._n_outputs = int(y.shape[1])
            if self._output_kind_hint is None and self._detected_kind is None:
                self._detected_kind = self._detect_output_kind_from(y)
        return y

    def _detect_output_kind_from(self, y: np.ndarray) -> str | None:
        """Kind read off the first outputs: rows in [0, 1] summing to one are probabilities."""
        if not self._kind_from_outputs:
            return None
        if _looks_like_probabilities(y):
            return "probability"
        return "regression" if y.shape[1] == 1 else "logit"

    @abc.abstractmethod
    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        """Outputs of one chunk, shape (m, n_outputs) or (m,), without autograd."""

    def _forward_torch(self, x: Any) -> Any:
        """Outputs of a torch tensor with the autograd graph kept (differentiable models)."""
        self._require_differentiable()

    def _forward_torch_full(self, x: Any) -> Any:
        self._require_differentiable()
        import torch

        if not isinstance(x, torch.Tensor):
            arr, _ = self.check_input(x)
            x = torch.as_tensor(arr, dtype=self._torch_dtype(), device=self.device)
        elif self._input_shape is None:
            self._input_shape = tuple(x.shape[1:])
        if self.preprocess is not None:
            x = self.preprocess(x)
        y = self._forward_torch(x)
        if y.ndim == 1:
            y = y[:, None]
        return y

    def _torch_dtype(self) -> Any:
        import torch

        return torch.float32

    # ------------------------------------------------------------------ targets
    def predicted_class(self, outputs: np.ndarray) -> np.ndarray:
        """Index of the largest output per row (0 for single-output models).

        Parameters
        ----------
        outputs : ndarray of shape (n, n_outputs)

        Returns
        -------
        ndarray of shape (n,), int64
        """
        if outputs.shape[1] == 1:
            return np.zeros(len(outputs), dtype=np.int64)
        return np.argmax(outputs, axis=1).astype(np.int64)

    def resolve_target(self, target: Any, outputs: np.ndarray) -> np.ndarray:
        """Turn ``target`` (None, int, class name, or one per row) into indices (n,).

        ``None`` means the predicted class, read off ``outputs`` of shape (n, n_outputs).
        """
        return check_target(
            target,
            len(outputs),
            outputs.shape[1],
            class_names=self.class_names,
            default=self.predicted_class(outputs),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(input_shape={self._input_shape}, "
            f"output_kind={self._output_kind_hint or self._detected_kind}, "
            f"n_outputs={self._n_outputs})"
        )


def _looks_like_probabilities(y: np.ndarray) -> bool:
    if y.shape[1] < 2 or not np.all((y >= 0) & (y <= 1)):
        return False
    return bool(np.allclose(y.sum(axis=1), 1.0, atol=1e-4))


def wrap(obj: Any, **hints: Any) -> Model:
    """Wrap any supported model as a lumos :class:`Model`.

    Parameters
    ----------
    obj : object
        A ``torch.nn.Module``, a Keras 3 model (torch backend), a scikit-learn estimator or
        pipeline, an ONNX model (path, bytes, ``onnx.ModelProto`` or
        ``onnxruntime.InferenceSession``), a plain callable on numpy arrays, or a
        :class:`Model` (returned as is, with any hints applied).
    **hints
        ``input_shape``, ``output_kind``, ``feature_names``, ``class_names``, ``batch_size``,
        ``device``, ``preprocess``; adapter-specific: ``output_name`` (ONNX),
        ``method`` (scikit-learn: ``"predict_proba"``, ``"decision_function"``, ``"predict"``).

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        If ``obj`` is none of the supported kinds.
    """
    if isinstance(obj, Model):
        if hints:
            raise ModelError(
                "this object is already a lumos Model; pass hints when wrapping the raw model."
            )
        return obj
    cls = _adapter_for(obj)
    unknown = sorted(set(hints) - set(_BASE_HINTS) - set(cls.extra_hints))
    if unknown:
        allowed = sorted(set(_BASE_HINTS) | set(cls.extra_hints))
        raise UnknownNameError(
            f"unknown hint(s) {unknown} for a {cls.framework} model; "
            f"known hints: {', '.join(allowed)}."
        )
    return cls(obj, **hints)


_BASE_HINTS = (
    "input_shape",
    "output_kind",
    "feature_names",
    "class_names",
    "batch_size",
    "device",
    "preprocess",
)


def _adapter_for(obj: Any) -> type[Model]:
    mro = [f"{c.__module__}.{c.__name__}" for c in type(obj).__mro__]
    if any(m.startswith("keras.") for m in mro):
        from lumos.models.keras import KerasModel

        return KerasModel
    if "torch.nn.modules.module.Module" in mro:
        from lumos.models.torch import TorchModel

        return TorchModel
    if any(m.startswith(("onnxruntime.", "onnx.")) for m in mro) or isinstance(obj, bytes):
        from lumos.models.onnx import OnnxModel

        return OnnxModel
    if isinstance(obj, (str, os.PathLike)):
        raise ModelError(
            f"{obj!r} is a path; load model files with lumos.load_model(path) instead of wrap()."
        )
    if hasattr(obj, "fit") and any(
        hasattr(obj, m) for m in ("predict_proba", "decision_function", "predict")
    ):
        from lumos.models.sklearn import SklearnModel

        return SklearnModel
    if callable(obj):
        from lumos.models.callable import CallableModel

        return CallableModel
    raise ModelError(
        f"cannot wrap an object of type {type(obj).__name__}: pass a torch.nn.Module, a Keras 3 "
        "model, a scikit-learn estimator, an ONNX model, or a function mapping a numpy array "
        "(n, ...) to outputs (n, k)."
    )
