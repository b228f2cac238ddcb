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

import weakref
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


# ---------------------------------------------------------------- the entry layer
#
# Integrated gradients needs only a weighted sum of the gradients at a row's path points.
# When a model's inputs go straight into an affine layer h = W x + b (a convolution or a
# linear layer), the gradient at any point is W^T g, with g the gradient at that layer's
# output; so Σ_j w_j ∂f/∂x(p_j) = W^T (Σ_j w_j g_j): the sum can be taken at the layer's
# output and sent back through the layer once per row instead of once per point. For
# images of one or three channels that backward step (a convolution's gradient with respect
# to its input) is the most expensive one of the whole pass.

#: Entry layers whose output the model changed in place: never split again.
_UNSPLITTABLE: weakref.WeakSet = weakref.WeakSet()


def eval_with_entry(model: Model) -> Any:
    """Put the model in eval mode (:func:`set_eval`) and find its entry layer, in one walk.

    Returns
    -------
    torch.nn.Module or None
        The first ``Linear`` / ``Conv1d`` / ``Conv2d`` / ``Conv3d`` (exact types) of a plain
        PyTorch model's module tree, without hooks of its own and with no global module
        hooks set: the layer its inputs may enter first. Whether they do is checked in the
        forward pass (:func:`forward_split`). ``None`` for Keras, TorchScript and compiled
        modules, models on a GPU, or when no such layer exists.
    """
    import torch
    import torch.nn.modules.module as tm

    from lumos.models.torch import _walk, eval_mode

    root = getattr(model, "module", None)
    if (
        not isinstance(root, torch.nn.Module)
        or hasattr(root, "_orig_mod")  # compiled: hooks would recompile it
        or not str(model.device).startswith("cpu")
    ):
        # Keras, compiled modules, and GPUs: there the convolution's input gradient is
        # cheap and the split's few extra kernel launches cost more than they save (H100,
        # reference CNN, 50 steps: 1 image 2.1 -> 2.3 ms, 10 images 2.9 -> 3.3 ms)
        set_eval(model)
        return None
    # exact types: a subclass may override forward
    affine = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    training, entry = False, None
    for _, _, m in _walk(root):
        training = training or m.training
        if entry is None and type(m) in affine:
            entry = m
    if training:
        eval_mode(root)
    if (
        entry is None
        or entry._forward_hooks
        or entry._forward_pre_hooks
        or entry._backward_hooks
        or entry._backward_pre_hooks
        or tm._global_forward_hooks
        or tm._global_forward_pre_hooks
        or tm._global_backward_hooks
        or tm._global_backward_pre_hooks
        or entry in _UNSPLITTABLE
    ):
        return None
    return entry


def forward_split(model: Model, x: Any, entry: Any) -> tuple[Any, Any]:
    """The model's outputs at ``x``, split at the output of its entry layer.

    Parameters
    ----------
    model : Model
        A differentiable model.
    x : tensor of shape (m, *input_shape)
        Inputs that require grad.
    entry : torch.nn.Module or None
        From :func:`eval_with_entry`.

    Returns
    -------
    outputs : tensor of shape (m, n_outputs)
    at_entry : tensor of shape (m, *entry_output_shape) or None
        When ``x`` itself entered ``entry`` (its first call with ``x``), that call's output
        as a leaf that requires grad: the rest of the model was computed from it, so the
        gradient with respect to it is ``g`` of the module notes. Any other use of ``x`` in
        the model (a second call, a skip connection) keeps its path to ``x``. ``None``: no
        split (no entry layer, ``x`` never entered it as it is, or the model changes the
        entry's output in place).
    """
    if entry is None:
        return model._forward_torch_full(x), None
    box: list[Any] = []
    ndim = {"Conv1d": 3, "Conv2d": 4, "Conv3d": 5}.get(type(entry).__name__)

    def hook(_module: Any, args: tuple, output: Any) -> Any:
        if not box and args and args[0] is x and (ndim is None or x.dim() == ndim):
            box.append(output.detach().requires_grad_(True))
            return box[0]
        return None

    handle = entry.register_forward_hook(hook)
    try:
        y = model._forward_torch_full(x)
    except RuntimeError as exc:
        # an in-place operation on the entry's output (ReLU(inplace=True)) refuses a leaf:
        # this model is computed whole from now on
        if not box or "in-place" not in str(exc):
            raise
        _UNSPLITTABLE.add(entry)
        handle.remove()
        return model._forward_torch_full(x), None
    finally:
        handle.remove()
    return y, (box[0] if box else None)


def through_entry(entry: Any, input_shape: tuple[int, ...], at_entry: Any) -> Any:
    """``W^T g``: gradients at the entry layer's output, sent back through it.

    Parameters
    ----------
    entry : torch.nn.Module
        An affine layer (:func:`eval_with_entry`).
    input_shape : tuple of int
        Shape of one input row.
    at_entry : tensor of shape (r, *entry_output_shape)

    Returns
    -------
    tensor of shape (r, *input_shape)
        The gradients with respect to the layer's input (the same at every input: the
        layer is affine).
    """
    import torch

    z = torch.zeros(
        (len(at_entry), *input_shape),
        dtype=at_entry.dtype,
        device=at_entry.device,
        requires_grad=True,
    )
    with torch.enable_grad():
        (g,) = torch.autograd.grad(entry(z), z, grad_outputs=at_entry)
    return g


def differentiate(picked: Any, x: Any, seed: Any, entry: Any, at_entry: Any) -> Any:
    """The gradients of ``seed · picked`` with respect to the inputs ``x``.

    Parameters
    ----------
    picked : tensor of shape (m, 1)
        The target outputs of a pass.
    x : tensor of shape (m, *input_shape)
        The pass' inputs (leaf, requires grad).
    seed : tensor of shape (m, 1)
    entry, at_entry
        From :func:`eval_with_entry` and :func:`forward_split`.

    Returns
    -------
    tensor of shape (m, *input_shape), or SplitGradients
        The latter when the pass was split at the entry layer (``at_entry`` given).
    """
    import torch

    if at_entry is None:
        (grad,) = torch.autograd.grad(picked, x, grad_outputs=seed)
        return grad.detach()
    g_entry, rest = torch.autograd.grad(picked, (at_entry, x), grad_outputs=seed, allow_unused=True)
    return SplitGradients(entry, tuple(x.shape[1:]), g_entry, rest)


def weighted_sums(grad: Any, weights: Any) -> Any:
    """``weights @ ∂f/∂x`` over one pass' inputs, from what :func:`differentiate` returned.

    Parameters
    ----------
    grad : tensor of shape (m, *input_shape), or SplitGradients
    weights : tensor of shape (r, m)

    Returns
    -------
    tensor of shape (r, prod(input_shape))
    """
    if isinstance(grad, SplitGradients):
        return grad.weighted_sums(weights)
    return weights @ grad.reshape(len(grad), -1)


class SplitGradients:
    """One pass's gradients split at the entry layer (:func:`forward_split`), reduced over
    inputs by :meth:`weighted_sums` or :meth:`group_sums`: the reduction is taken at the
    entry's output and its result sent back through the entry once.

    Parameters
    ----------
    entry : torch.nn.Module
    input_shape : tuple of int
    at_entry : tensor of shape (m, *entry_output_shape)
        Gradients at the entry layer's output.
    rest : tensor of shape (m, *input_shape) or None
        Gradients with respect to the inputs along any other path.
    """

    def __init__(self, entry: Any, input_shape: tuple[int, ...], at_entry: Any, rest: Any):
        self.entry, self.input_shape, self.at_entry, self.rest = entry, input_shape, at_entry, rest

    def weighted_sums(self, weights: Any) -> Any:
        """``weights @ ∂f/∂x`` over the inputs.

        Parameters
        ----------
        weights : tensor of shape (r, m)

        Returns
        -------
        tensor of shape (r, prod(input_shape))
        """
        m, r = len(self.at_entry), len(weights)
        at = (weights @ self.at_entry.reshape(m, -1)).reshape(r, *self.at_entry.shape[1:])
        rest = None if self.rest is None else weights @ self.rest.reshape(m, -1)
        return self._back(at, rest)

    def group_sums(self, group: int) -> Any:
        """Sums of ``∂f/∂x`` over consecutive groups of ``group`` inputs.

        Returns
        -------
        tensor of shape (m // group, prod(input_shape))
        """
        r = len(self.at_entry) // group
        at = self.at_entry.reshape(r, group, *self.at_entry.shape[1:]).sum(dim=1)
        rest = None if self.rest is None else self.rest.reshape(r, group, -1).sum(dim=1)
        return self._back(at, rest)

    def _back(self, at: Any, rest: Any) -> Any:
        out = through_entry(self.entry, self.input_shape, at).reshape(len(at), -1)
        return out if rest is None else out + rest


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
    split: bool = False,
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
    split : bool, default False
        For a consumer that needs only weighted sums of the gradients: when the inputs
        enter an affine layer first (:func:`forward_split`), ``consume`` receives a
        :class:`SplitGradients` in place of the gradient tensor.

    Returns
    -------
    ndarray of int, shape (n_inputs,)
        The output index differentiated for each input.
    """
    import torch

    model._require_differentiable()
    if split:
        entry = eval_with_entry(model)
    else:
        set_eval(model)
        entry = None
    rows = gradient_batch_size(model, batch_size)
    chosen = np.empty(n_inputs, dtype=np.int64)
    if target is not None:
        chosen[:] = target
        target_dev = model.array_ops().asarray(chosen[:, None], integer=True)  # (n, 1)
    with _grad_enabled(), full_float32(model.device):
        for sl in group_chunks(n_inputs, rows, group):
            x = make_chunk(sl.start, sl.stop).detach().requires_grad_(True)
            y, at_entry = forward_split(model, x, entry)
            if target is None:
                t = y.detach().argmax(dim=1, keepdim=True)
                chosen[sl] = t.cpu().numpy()[:, 0]
            else:
                t = target_dev[sl]
            picked = y.gather(1, t)  # (m, 1): differentiated with a seed of ones
            grad = differentiate(picked, x, torch.ones_like(picked), entry, at_entry)
            consume(sl.start, sl.stop, grad, picked[:, 0].detach())
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
