"""Gradients of a differentiable model's target outputs, chunk by chunk.

The gradient explainers (``gradients.py``) and the class-activation maps (``cam.py``) send
their forward + backward passes through :func:`for_each_gradient`: inputs are generated per
chunk on the model's device, the target output of every input is summed and differentiated
with :func:`torch.autograd.grad` with respect to the inputs only, so

* parameters' ``.grad`` and ``requires_grad`` flags are never touched,
* memory is bounded by one chunk (``batch_size`` inputs) whatever the total,
* the model is put in eval mode (and left there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lumos._batching import DEFAULT_MAX_ROWS, full_float32, iter_chunks
from lumos.models.base import Model


def torch_modules(model: Model) -> list[Any]:
    """The ``torch.nn.Module`` objects behind a differentiable model (for eval mode, hooks)."""
    import torch

    found = []
    for attr in ("module", "keras_model"):
        obj = getattr(model, attr, None)
        if isinstance(obj, torch.nn.Module):
            found.append(obj)
    return found


def set_eval(model: Model) -> None:
    """Put the model's modules in eval mode (dropout off, batch-norm statistics fixed)."""
    from lumos.models.torch import eval_mode

    for module in torch_modules(model):
        eval_mode(module)


#: Input elements per forward + backward pass on the CPU by default (half the forward-only
#: budget): 167 rows of 784 elements.
GRADIENT_ELEMENT_BUDGET = 1 << 17


def gradient_batch_size(model: Model, batch_size: int | None) -> int:
    """Inputs per forward + backward pass: explicit, the wrap hint, or the default budget.

    On the CPU the default is :data:`GRADIENT_ELEMENT_BUDGET` input elements (at most 8192
    rows), half the forward-only budget: a backward pass keeps every activation of its
    chunk alive, and chunks of 128–200 rows are the fastest for the reference CNN
    (benchmarks/bench_gradients.py, BENCHMARKS.md). Larger chunks are not only slower on
    average but erratic: their buffers cross glibc's mmap threshold, so each pass may
    fault its memory in afresh (SmoothGrad on 100 digits: 430–495 ms at 334 rows, 303–320
    ms at 167). The 784-input MLP would prefer 2048+ rows, a cost a budget in input
    elements accepts. CUDA devices keep the engine's budget.
    """
    if batch_size is None and model.batch_size is None and not str(model.device).startswith("cuda"):
        per_row = max(1, model.n_features or 1)
        return int(max(1, min(DEFAULT_MAX_ROWS, GRADIENT_ELEMENT_BUDGET // per_row)))
    return model.resolve_batch_size(batch_size)


@contextmanager
def _grad_enabled() -> Iterator[None]:
    import torch

    with torch.enable_grad():
        yield


def for_each_gradient(
    model: Model,
    make_chunk: Callable[[int, int], Any],
    n_inputs: int,
    target: np.ndarray | None,
    consume: Callable[[int, int, Any, Any], None],
    *,
    batch_size: int | None = None,
    group: int = 1,
) -> np.ndarray:
    """Differentiate each generated input's target output with respect to that input.

    Parameters
    ----------
    model : Model
        A differentiable model.
    make_chunk : callable
        ``make_chunk(start, stop)`` returns the inputs ``start..stop-1`` as a torch tensor of
        shape (stop - start, *input_shape) on the model's device.
    n_inputs : int
        Total number of inputs.
    target : ndarray of int, shape (n_inputs,), or None
        Output index differentiated for each input; ``None``: each input's largest output
        (its predicted class), read off the same forward pass.
    consume : callable
        ``consume(start, stop, grad, output)`` receives the gradients (stop - start,
        *input_shape) and the target outputs (stop - start,), torch tensors detached from the
        graph, on the model's device, in the model's dtype.
    batch_size : int, optional
        Inputs per forward + backward pass.
    group : int, default 1
        Inputs come in consecutive groups of this size (the points of one row): a chunk then
        holds whole groups, or, when one group exceeds ``batch_size``, part of a single group,
        so a consumer can reduce each group without looking at its neighbours.

    Returns
    -------
    ndarray of int, shape (n_inputs,)
        The output index differentiated for each input.
    """
    import torch

    model._require_differentiable()
    set_eval(model)
    rows = gradient_batch_size(model, batch_size)
    chosen = np.empty(n_inputs, dtype=np.int64)
    if target is not None:
        chosen[:] = target
        target_dev = model.array_ops().asarray(chosen[:, None], integer=True)  # (n, 1)
    with _grad_enabled(), full_float32(model.device):
        for sl in group_chunks(n_inputs, rows, group):
            x = make_chunk(sl.start, sl.stop).detach().requires_grad_(True)
            y = model._forward_torch_full(x)
            if target is None:
                t = y.detach().argmax(dim=1, keepdim=True)
                chosen[sl] = t.cpu().numpy()[:, 0]
            else:
                t = target_dev[sl]
            picked = y.gather(1, t)  # (m, 1): differentiated with a seed of ones
            (grad,) = torch.autograd.grad(picked, x, grad_outputs=torch.ones_like(picked))
            picked = picked[:, 0]
            consume(sl.start, sl.stop, grad.detach(), picked.detach())
    return chosen


def group_chunks(n_inputs: int, batch_size: int, group: int) -> Iterator[slice]:
    """Chunks of at most ``batch_size`` inputs that never split a group of ``group``
    consecutive inputs unless the group alone is larger than ``batch_size`` (then the chunks
    cover that one group in pieces)."""
    if group <= 1:
        yield from iter_chunks(n_inputs, batch_size)
        return
    if batch_size >= group:
        yield from iter_chunks(n_inputs, batch_size // group * group)
        return
    for start in range(0, n_inputs, group):
        for sl in iter_chunks(min(group, n_inputs - start), batch_size):
            yield slice(start + sl.start, start + sl.stop)


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as a float64 numpy array on the host."""
    import torch

    return t.detach().to("cpu", torch.float64).numpy()
