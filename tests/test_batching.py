"""The engine: chunking, bounded memory, output checks."""

from __future__ import annotations

import numpy as np
import pytest

from lumos import _batching
from lumos.errors import ShapeError


def test_default_batch_size_follows_the_element_budget() -> None:
    assert _batching.resolve_batch_size(None, 1) == _batching.DEFAULT_MAX_ROWS
    assert _batching.resolve_batch_size(None, 784) == _batching.DEFAULT_ELEMENT_BUDGET // 784
    assert _batching.resolve_batch_size(None, 10**9) == 1
    assert _batching.resolve_batch_size(17, 784) == 17


def test_generated_chunks_are_bounded_and_complete() -> None:
    seen: list[tuple[int, int]] = []

    def make(start: int, stop: int) -> np.ndarray:
        seen.append((start, stop))
        return np.arange(start, stop, dtype=float)[:, None] * np.ones((1, 3))

    progress: list[int] = []
    out = _batching.evaluate_generated(
        lambda c: c.sum(axis=1), make, 1000, 64, on_chunk=progress.append
    )
    assert out.shape == (1000, 1)
    np.testing.assert_array_equal(out[:, 0], 3.0 * np.arange(1000))
    assert max(b - a for a, b in seen) == 64
    assert seen[0] == (0, 64) and seen[-1] == (960, 1000) and len(seen) == 16
    assert progress[-1] == 1000


def test_select_keeps_only_what_is_needed() -> None:
    x = np.arange(20.0).reshape(10, 2)
    out = _batching.evaluate_generated(
        lambda c: np.stack([c[:, 0], c[:, 1], c.sum(1)], 1),
        lambda a, b: x[a:b],
        10,
        3,
        select=lambda a, b, y: y[:, 2],
    )
    np.testing.assert_array_equal(out[:, 0], x.sum(1))


def test_output_checks() -> None:
    x = np.ones((10, 2))
    with pytest.raises(ShapeError, match="one row of outputs per input row"):
        _batching.evaluate(lambda c: c[:1], x, 4)
    with pytest.raises(ShapeError, match="must not depend on the input"):
        _batching.evaluate(lambda c: np.ones((len(c), len(c))), x, 4)


def test_model_default_chunk_uses_the_row_size() -> None:
    import lumos

    sizes: list[int] = []
    model = lumos.wrap(lambda a: sizes.append(len(a)) or a.reshape(len(a), -1)[:, :2])
    x = np.zeros((2000, 1, 28, 28))
    model.evaluate(x)  # input shape learnt from the data, even without check_input
    expected = _batching.resolve_batch_size(None, 784)
    assert sizes[0] == expected < 2000


def test_cuda_devices_get_a_larger_default_chunk() -> None:
    cpu = _batching.resolve_batch_size(None, 784, "cpu")
    cuda = _batching.resolve_batch_size(None, 784, "cuda:0")
    assert cuda == _batching.CUDA_ELEMENT_BUDGET // 784 > cpu


def test_array_ops_asarray_gives_the_model_dtype_whatever_the_layout() -> None:
    """``ArrayOps.asarray`` on the torch path: the model's dtype on its device for every input
    layout (float32 C-contiguous arrays are shared, as ``torch.as_tensor`` shares them)."""
    import torch

    from lumos._batching import ArrayOps

    rng = np.random.default_rng(0)
    base = rng.random((4, 6)).astype(np.float32)
    for dtype in (torch.float32, torch.float64):
        ops = ArrayOps("cpu", dtype)
        inputs = {
            "contiguous": base,
            "float64": base.astype(np.float64),
            "transposed": base.T,
            "reversed": base[::-1],
            "read-only": np.broadcast_to(base[:1], (4, 6)),
        }
        for name, a in inputs.items():
            t = ops.asarray(a)
            assert t.dtype == dtype and t.shape == a.shape, name
            np.testing.assert_array_equal(t.numpy(), np.asarray(a, dtype=t.numpy().dtype))
        shared = ArrayOps("cpu", torch.float32).asarray(base)
        assert shared.data_ptr() == base.ctypes.data  # no copy
        assert ops.asarray(np.array([1, 2]), integer=True).dtype == torch.int64
