"""The engine: evaluate a model on a large stack of inputs in chunks of bounded size.

Every explainer and metric sends its model evaluations through here. Two entry points:

* :func:`evaluate` — inputs already materialised as one array, evaluated chunk by chunk.
* :func:`evaluate_generated` — inputs *generated* chunk by chunk by a callback
  (``make_chunk(start, stop)``), so that ``n_rows × n_perturbations`` inputs never sit in
  memory at once; only one chunk of inputs and the outputs are held.

The chunk size (``batch_size``, rows per model call) defaults to a budget in scalar input
elements, so a row of an image costs more than a row of a table. The budget and the row cap
come from ``benchmarks/bench_engine.py`` (see ``BENCHMARKS.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lumos.errors import InputError, ShapeError

#: Default chunk budget in scalar input elements per model call on the CPU (BENCHMARKS.md).
DEFAULT_ELEMENT_BUDGET = 1 << 18
#: Upper bound on the default number of rows per model call on the CPU.
DEFAULT_MAX_ROWS = 8192
#: On a CUDA device larger chunks pay off (kernel launches and copies amortise): BENCHMARKS.md.
CUDA_ELEMENT_BUDGET = 1 << 22
CUDA_MAX_ROWS = 8192

Forward = Callable[[np.ndarray], np.ndarray]


def resolve_batch_size(batch_size: int | None, row_size: int, device: str = "cpu") -> int:
    """Rows per model call: ``batch_size`` if given, else the default element budget.

    Parameters
    ----------
    batch_size : int or None
        Explicit rows per call (>= 1), or ``None`` for the default.
    row_size : int
        Scalar elements in one input row (product of the input shape).
    device : str
        The model's device; CUDA devices get a larger default budget.

    Returns
    -------
    int
    """
    if batch_size is None:
        cuda = str(device).startswith("cuda")
        budget = CUDA_ELEMENT_BUDGET if cuda else DEFAULT_ELEMENT_BUDGET
        cap = CUDA_MAX_ROWS if cuda else DEFAULT_MAX_ROWS
        return int(max(1, min(cap, budget // max(1, row_size))))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InputError(f"batch_size must be a positive int or None, got {batch_size!r}.")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}; use e.g. batch_size=256.")
    return int(batch_size)


@contextmanager
def full_float32(device: str) -> Iterator[None]:
    """Full float32 precision for the torch calls inside, on CUDA devices.

    PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) on recent GPUs by default;
    gradients and the small output differences explanations are made of then move by up to
    percents of their scale, and the GPU stops agreeing with the CPU. Inside this block TF32
    is off for convolutions and matrix products (the previous settings come back after). On
    the CPU nothing changes.
    """
    if not str(device).startswith("cuda"):
        yield
        return
    import torch

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def iter_chunks(n_rows: int, batch_size: int) -> Iterator[slice]:
    """Yield consecutive slices covering ``range(n_rows)`` with at most ``batch_size`` rows."""
    for start in range(0, n_rows, batch_size):
        yield slice(start, min(start + batch_size, n_rows))


def _as_output(y: np.ndarray, n_rows: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n_rows:
        raise ShapeError(
            f"the model returned an array of shape {y.shape} for {n_rows} input rows; a model must "
            "return one row of outputs per input row, shape (n_rows, n_outputs). Wrap it in a "
            "function that reshapes its output."
        )
    return y


def evaluate(
    forward: Forward,
    x: np.ndarray,
    batch_size: int,
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Evaluate ``forward`` on ``x`` in chunks and stack the results.

    Parameters
    ----------
    forward : callable
        Maps an array of shape (m, *input_shape) to outputs of shape (m, n_outputs) or (m,).
    x : ndarray of shape (n, *input_shape)
    batch_size : int
        Maximum rows per call of ``forward``.
    on_chunk : callable, optional
        Called with the number of rows done after each chunk (progress reporting).

    Returns
    -------
    ndarray of shape (n, n_outputs), float64
    """
    n = len(x)
    return evaluate_generated(
        forward, lambda start, stop: x[start:stop], n, batch_size, on_chunk=on_chunk
    )


def evaluate_generated(
    forward: Forward,
    make_chunk: Callable[[int, int], np.ndarray],
    n_rows: int,
    batch_size: int,
    *,
    select: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Evaluate ``forward`` on ``n_rows`` inputs built lazily chunk by chunk.

    Only one chunk of inputs (``batch_size`` rows) exists at a time, so memory is bounded by
    the chunk plus the outputs, whatever ``n_rows`` is.

    Parameters
    ----------
    forward : callable
        Maps an array of shape (m, *input_shape) to outputs of shape (m, n_outputs) or (m,).
    make_chunk : callable
        ``make_chunk(start, stop)`` returns the inputs with global indices ``start..stop-1``,
        an array of shape (stop - start, *input_shape).
    n_rows : int
        Total number of inputs.
    batch_size : int
        Maximum rows per call of ``forward``.
    select : callable, optional
        ``select(start, stop, outputs)`` reduces a chunk's outputs (shape (m, n_outputs)) to
        the columns the caller needs (shape (m,) or (m, j)), e.g. the target output of each
        row, so that only those are kept.
    on_chunk : callable, optional
        Called with the number of rows done after each chunk.

    Returns
    -------
    ndarray of shape (n_rows, n_outputs), or (n_rows, j) after ``select``, float64
    """
    if n_rows < 1:
        raise InputError("nothing to evaluate: 0 rows were requested.")
    out: np.ndarray | None = None
    for sl in iter_chunks(n_rows, batch_size):
        chunk = make_chunk(sl.start, sl.stop)
        y = _as_output(forward(chunk), sl.stop - sl.start)
        if select is not None:
            y = _as_output(select(sl.start, sl.stop, y), sl.stop - sl.start)
        if out is None:
            out = np.empty((n_rows, y.shape[1]), dtype=np.float64)
        elif y.shape[1] != out.shape[1]:
            raise ShapeError(
                f"the model returned {y.shape[1]} outputs for one chunk and {out.shape[1]} for "
                "another; its output width must not depend on the input."
            )
        out[sl] = y
        if on_chunk is not None:
            on_chunk(sl.stop)
    return out if out is not None else np.empty((0, 0))


def for_torch(a: np.ndarray) -> np.ndarray:
    """``a`` as ``torch.as_tensor`` takes it: a copy when it is read-only (broadcast views)
    or laid out with negative strides (flipped views such as ``x[::-1]``), else ``a``."""
    if not a.flags.writeable or min(a.strides, default=0) < 0:
        return np.array(a)
    return a


class ArrayOps:
    """numpy, or torch on a device, behind the few operations perturbations are built with.

    Explainers generate their perturbed inputs with these operations, so for a torch-backed
    model the inputs are built on the model's device in the model's dtype (no per-chunk
    float64 → float32 conversion, no host → device copy of every perturbed input). Selecting
    values (``where``, indexing) involves no arithmetic, so both paths give identical inputs.

    Parameters
    ----------
    device : str or None
        ``None`` for numpy; a torch device string for torch.
    dtype : torch.dtype, optional
        Floating dtype of arrays made by :meth:`asarray` on the torch path.
    """

    def __init__(self, device: str | None = None, dtype: Any = None) -> None:
        self.device = device
        self.dtype = dtype
        if device is not None:
            import torch

            self._torch = torch
            # arrays already in the wanted dtype on the CPU are shared through
            # torch.from_numpy, the cheap door (torch.as_tensor shares them too, at several
            # times the cost)
            self._cpu = str(device) == "cpu"
            self._np_float = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)

    @property
    def is_torch(self) -> bool:
        return self.device is not None

    def asarray(self, a: Any, *, integer: bool = False) -> Any:
        """``a`` (numpy) as an array of this backend (floating, or int64 with ``integer``)."""
        if not self.is_torch:
            return np.asarray(a, dtype=np.int64) if integer else np.asarray(a)
        dtype = self._torch.int64 if integer else self.dtype
        arr = for_torch(np.asarray(a))
        if (
            self._cpu
            and arr.flags.c_contiguous
            and arr.dtype == (np.int64 if integer else self._np_float)
        ):
            return self._torch.from_numpy(arr)
        return self._torch.as_tensor(arr, dtype=dtype, device=self.device)

    def arange(self, start: int, stop: int) -> Any:
        if not self.is_torch:
            return np.arange(start, stop)
        return self._torch.arange(start, stop, device=self.device)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self._torch.where(condition, a, b) if self.is_torch else np.where(condition, a, b)


NUMPY_OPS = ArrayOps()
