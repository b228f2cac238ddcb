"""Gradient explanations of differentiable models (PyTorch modules, Keras 3 on torch).

``saliency``, ``input_x_gradient``, ``integrated_gradients``, ``expected_gradients`` and the
noise tunnels ``smoothgrad`` / ``vargrad`` around any of them. Every method evaluates the
gradient of the target output at a set of points per row (the row itself, points on a path,
noisy copies); all points of all rows go through one chunked forward + backward loop
(:func:`lumos.attribution._autograd.for_each_gradient`), and per-row sums are accumulated on
the model's device in float64. What one chunk adds to a row is summed in the model's dtype
first (as captum sums), so the chunk size moves results only at that dtype's rounding.
Integrated gradients needs only those sums: it takes them at the output of the model's affine
entry layer and sends them back through that layer once per row (see ``_autograd``).
"""

from __future__ import annotations

import abc
import copy
import functools
import math
import numbers
from typing import Any, ClassVar

import numpy as np

from lumos._batching import full_float32
from lumos._random import check_random_state
from lumos._validation import check_array, check_name, check_positive_int, check_target
from lumos.attribution._autograd import (
    SplitGradients,
    differentiate,
    eval_with_entry,
    for_each_gradient,
    forward_split,
    gradient_batch_size,
    to_numpy,
    weighted_sums,
)
from lumos.attribution._base import Explainer, get_explainer, parameter_names, register
from lumos.attribution._baselines import resolve_baseline
from lumos.errors import InputError, UnknownNameError

#: Integration rules of ``integrated_gradients`` (captum's names).
RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
#: Integrated gradients on at most this many rows (all in one pass) evaluates each row and
#: its baseline in the gradient pass itself rather than in a forward call of their own: two
#: extra points per row cost less than a call's fixed overhead only when the rows are few
#: (reference CNN, 50 steps: 18% faster for 1 row, 11% for 3; 4 rows' 208 points exceed one
#: default pass; with a larger pass an earlier measurement found 6 rows 12% slower).
_FEW_ROWS = 4
#: Elements of noisy inputs (rows × samples × features) a noise tunnel builds at once.
_NOISE_BLOCK_ELEMENTS = 1 << 22


def integration_rule(rule: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights of a quadrature rule for ∫₀¹ g(α) dα.

    Parameters
    ----------
    rule : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", \
"riemann_trapezoid"}
    n_steps : int
        Number of nodes (>= 2 for the trapezoid rule).

    Returns
    -------
    alphas, weights : ndarray of shape (n_steps,)
    """
    rule = check_name(rule, RULES, kind="integration rule")
    alphas, weights = _rule(rule, int(n_steps))
    return alphas.copy(), weights.copy()


@functools.lru_cache(maxsize=32)
def _endpoint_tensors(
    rule: str, n_steps: int, n_rows: int, ndim: int, device: str, dtype: Any
) -> tuple[Any, Any]:
    """Constants of the one-pass path, as tensors on ``device`` (cached: a few rows pay no
    conversion; read-only).

    Returns
    -------
    coef : tensor of shape (1, n_steps + 2, 1, ..., 1) (``ndim`` ones)
        ``[1, 0, nodes...]``: a group's points are ``x' + coef (x - x')``.
    seed : tensor of shape (n_rows (n_steps + 2), 1)
        The backward pass' seed: per row two zeros (the row and its baseline) and the rule's
        weights, so the gradients at the path points come out already weighted.
    """
    import torch

    nodes, weights = integration_rule(rule, n_steps)
    coef = np.concatenate([[1.0, 0.0], nodes]).reshape(1, n_steps + 2, *(1,) * ndim)
    seed = np.tile(np.concatenate([[0.0, 0.0], weights]), n_rows)[:, None]
    return (
        torch.as_tensor(coef, dtype=dtype, device=device),
        torch.as_tensor(seed, dtype=dtype, device=device),
    )


@functools.lru_cache(maxsize=64)
def _target_index(target: tuple[int, ...], group: int, device: str) -> Any:
    """Each target repeated ``group`` times, as an int64 column tensor on ``device`` (the
    one-pass path's gather index; cached: a few rows' targets repeat across calls)."""
    import torch

    return torch.as_tensor(np.repeat(target, group)[:, None], device=device)


@functools.lru_cache(maxsize=64)
def _rule(rule: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cached nodes and weights (Gauss–Legendre needs an eigenvalue problem per call)."""
    if rule == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(k)
        return 0.5 * nodes + 0.5, 0.5 * w
    if rule == "riemann_trapezoid":
        if k < 2:
            raise InputError("the trapezoid rule needs n_steps >= 2.")
        w = np.full(k, 1.0 / (k - 1))
        w[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, k), w
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(k) + offset) / k, np.full(k, 1.0 / k)


def _check_real(value: Any, name: str, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}.")
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}.")
    return float(value)


class _Accumulator:
    """Per-row sums (and centred sums of squares) of per-point attributions, on the device.

    Points are numbered ``row * k + j`` and arrive in chunks that hold whole rows, or part of
    one row (:func:`~lumos.attribution._autograd.group_chunks`). A chunk's rows are reduced
    in the model's dtype with one ``sum`` over their points (as captum does) and added to
    float64 totals; pieces of a split row are merged with Chan et al.'s update.
    """

    def __init__(self, n: int, k: int, shape: tuple[int, ...], device: str, squares: bool):
        import torch

        self.k = k
        self.count = np.zeros(n, dtype=np.int64)
        self.sum = torch.zeros((n, *shape), dtype=torch.float64, device=device)
        self.m2 = torch.zeros_like(self.sum) if squares else None

    def add(self, start: int, stop: int, values: Any) -> None:
        k = self.k
        r0 = start // k
        rows = max(1, (stop - start) // k) if start % k == 0 else 1
        v = values.reshape(rows, -1, *values.shape[1:])  # (rows, points of each row, ...)
        c = v.shape[1]
        part = v.sum(dim=1)
        sl = slice(r0, r0 + rows)
        if self.m2 is not None:
            m2 = ((v - (part / c)[:, None]) ** 2).sum(dim=1).double()
            prior = int(self.count[r0])  # > 0 only for the later pieces of a split row
            if prior:
                delta = part.double() / c - self.sum[sl] / prior
                m2 = m2 + delta**2 * (prior * c / (prior + c))
            self.m2[sl] += m2
        self.sum[sl] += part.double()
        self.count[sl] += c

    def mean(self) -> np.ndarray:
        return to_numpy(self.sum) / self.k

    def stderr(self) -> np.ndarray:
        """Standard error of the mean over the ``k`` points (NaN for one point)."""
        if self.m2 is None or self.k < 2:
            return np.full(tuple(self.sum.shape), np.nan)
        return np.sqrt(to_numpy(self.m2) / (self.k - 1) / self.k)


class _GradientExplainer(Explainer):
    """Base of the gradient methods: :meth:`attribute` works on any stack of inputs (the
    noise tunnels call it on noisy copies), :meth:`_explain` adds what needs the rows'
    outputs."""

    needs_gradients: ClassVar[bool] = True

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        return self.attribute(x, target, outputs=outputs)

    @abc.abstractmethod
    def attribute(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        seeds: list[np.random.SeedSequence] | None = None,
    ) -> dict[str, Any]:
        """``values`` (n, *input_shape) and optionally ``base_value`` (n,), ``stderr``,
        ``extras`` for validated inputs ``x`` and target indices ``target`` (n,).

        ``outputs`` (n, n_outputs) are the model's outputs at ``x`` when already known;
        ``seeds`` (one per row) replace a stochastic method's own per-row seeds (the noise
        tunnels pass them so a row's draws never depend on the rows around it)."""

    def _at_input(
        self, x: np.ndarray, target: Any, contribution: Any
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Gradients at the rows themselves, with the target resolved and the predictions
        read in the same forward pass (no separate forward). ``contribution(x_dev, grad)``
        maps the rows' gradients to their values."""
        import torch

        n = len(x)
        if target is not None:
            target = check_target(
                target, n, self.model.n_outputs, class_names=self.model.class_names
            )
        x_dev = self.model.array_ops().asarray(x)
        # each chunk's values and predictions go to the host as they are and become float64
        # there, copied into the result's own rows as they are converted
        values = np.empty(x.shape, dtype=np.float64)
        prediction = np.empty(n, dtype=np.float64)

        def rows(start: int, stop: int) -> Any:
            return x_dev if stop - start == n else x_dev[start:stop]  # one chunk: no slice

        def consume(start: int, stop: int, grad: Any, output: Any) -> None:
            torch.from_numpy(values[start:stop]).copy_(contribution(rows(start, stop), grad).cpu())
            prediction[start:stop] = output.cpu().numpy()

        chosen = for_each_gradient(self.model, rows, n, target, consume, batch_size=self.batch_size)
        return chosen, prediction, {"values": values}

    def _gradient_pass(
        self,
        x: np.ndarray,
        target: np.ndarray,
        k: int,
        point: Any,
        contribution: Any,
        *,
        squares: bool = False,
    ) -> _Accumulator:
        """Gradients at ``k`` points per row, reduced to per-row sums.

        ``point(i, j)`` builds the points with row indices ``i`` and point indices ``j``
        (torch int64 tensors of one chunk) on the device; ``contribution(i, j, grad)`` turns
        their gradients into the per-point attributions that are summed per row.
        """
        import torch

        n, shape = len(x), x.shape[1:]
        device = self.model.device
        acc = _Accumulator(n, k, shape, device, squares)

        def make_chunk(start: int, stop: int) -> Any:
            idx = torch.arange(start, stop, device=device)
            return point(idx // k, idx % k)

        def consume(start: int, stop: int, grad: Any, _output: Any) -> None:
            idx = torch.arange(start, stop, device=device)
            acc.add(start, stop, contribution(idx // k, idx % k, grad))

        for_each_gradient(
            self.model, make_chunk, n * k, np.repeat(target, k), consume,
            batch_size=self.batch_size, group=k,
        )  # fmt: skip
        return acc


class _AtInput(_GradientExplainer):
    """Methods made of the gradient at the input itself: one point per row, evaluated in the
    pass that also gives the target (when not given) and the prediction."""

    @abc.abstractmethod
    def _contribution(self, x: Any, g: Any) -> Any:
        """Values from the points ``x`` and their gradients ``g`` (torch, same shape)."""

    def _explain_fused(self, x: np.ndarray, target: Any) -> Any:
        return self._at_input(x, target, self._contribution)

    def attribute(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        seeds: list[np.random.SeedSequence] | None = None,
    ) -> dict[str, Any]:
        return self._at_input(x, target, self._contribution)[2]


@register("saliency")
class Saliency(_AtInput):
    """Saliency: the gradient of the target output with respect to the input.

    Simonyan et al. (2014): ``|∂f_t/∂x|`` (``absolute=True``, the classic map) or the signed
    gradient. On a linear model ``f(x) = wᵀx + b`` the signed map is ``w``.

    Parameters
    ----------
    model : object
        A PyTorch module, Keras 3 model on the torch backend, or a differentiable
        :class:`~lumos.Model`.
    absolute : bool, default True
        Return ``|gradient|`` (``False``: the signed gradient).
    batch_size : int, optional
        Inputs per forward + backward pass (bounds memory).

    References
    ----------
    Simonyan, K., Vedaldi, A. & Zisserman, A. (2014). Deep inside convolutional networks:
    visualising image classification models and saliency maps. ICLR workshop.
    """

    def __init__(self, model: Any, *, absolute: bool = True, batch_size: int | None = None):
        super().__init__(model, batch_size=batch_size)
        self.absolute = bool(absolute)

    def _contribution(self, x: Any, g: Any) -> Any:
        return g.abs() if self.absolute else g


@register("input_x_gradient")
class InputXGradient(_AtInput):
    """Input × gradient: each feature times the target output's gradient with respect to it.

    Shrikumar et al. (2016): ``x ⊙ ∂f_t/∂x``. On a linear model it is ``w ⊙ x``, the exact
    contribution of each feature relative to a zero input.

    Parameters
    ----------
    model : object
        A differentiable model (see :class:`Saliency`).
    batch_size : int, optional
        Inputs per forward + backward pass.
    """

    def __init__(self, model: Any, *, batch_size: int | None = None):
        super().__init__(model, batch_size=batch_size)

    def _contribution(self, x: Any, g: Any) -> Any:
        return g * x


@register("integrated_gradients")
class IntegratedGradients(_GradientExplainer):
    """Integrated Gradients: the path integral of the gradient from a baseline to the input.

    Sundararajan et al. (2017): ``φ = (x − x') ⊙ ∫₀¹ ∂f_t(x' + α(x − x'))/∂x dα``, computed
    with ``n_steps`` nodes of a quadrature ``rule``. Completeness says ``Σφ = f_t(x) −
    f_t(x')``; the gap ``|Σφ − (f_t(x) − f_t(x'))|`` is recorded per row in
    ``extras["completeness_gap"]`` (it shrinks as ``n_steps`` grows; Gauss–Legendre converges
    fastest on smooth models).

    Parameters
    ----------
    model : object
        A differentiable model (see :class:`Saliency`).
    baseline : None, "zeros", "mean", "blurred", float or array, optional
        The reference input ``x'``: zeros (default without background), the background mean
        (default with ``background``), each image blurred (``blur_sigma``), a constant, or an
        array of shape ``input_shape`` (one for all rows) or (n, *input_shape).
    background : array-like of shape (m, *input_shape), optional
        Rows whose mean is the ``"mean"`` baseline.
    n_steps : int, default 50
        Quadrature nodes per row.
    rule : str, default "gausslegendre"
        ``"gausslegendre"``, ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"`` or
        ``"riemann_trapezoid"`` (captum's names and default). The trapezoid rule here is
        the composite rule (weights summing to 1); captum's sums to ``(n − 1)/n``, so its
        values are that factor smaller.
    blur_sigma : float, optional
        Blur std in pixels for ``baseline="blurred"`` (default ``max(H, W) / 8``).
    batch_size : int, optional
        Path points per forward + backward pass: all rows × steps are chunked, so any number
        of rows fits in memory.

    Notes
    -----
    ``base_value`` is ``f_t(x')``; ``extras["completeness_gap"]`` (n,).

    References
    ----------
    Sundararajan, M., Taly, A. & Yan, Q. (2017). Axiomatic attribution for deep networks.
    ICML.
    """

    def __init__(
        self,
        model: Any,
        *,
        baseline: Any = None,
        background: Any = None,
        n_steps: int = 50,
        rule: str = "gausslegendre",
        blur_sigma: float | None = None,
        batch_size: int | None = None,
    ):
        super().__init__(model, batch_size=batch_size)
        self.baseline = baseline
        self.background = background
        self.n_steps = check_positive_int(n_steps, name="n_steps")
        self.rule = check_name(rule, RULES, kind="integration rule")
        _rule(self.rule, self.n_steps)  # fail early on a bad combination (cached)
        if blur_sigma is not None:
            _check_real(blur_sigma, "blur_sigma", minimum=1e-12)
            if not (isinstance(baseline, str) and baseline == "blurred"):
                raise InputError(
                    "blur_sigma sets the blur of baseline='blurred'; pass that baseline too, or "
                    "drop blur_sigma."
                )
        self.blur_sigma = blur_sigma

    def _explain_fused(self, x: np.ndarray, target: Any) -> Any:
        points = len(x) * (self.n_steps + 2)
        if len(x) <= _FEW_ROWS and points <= gradient_batch_size(self.model, self.batch_size):
            b = self.baseline  # the default zeros need no array
            zeros = (b is None and self.background is None) or (isinstance(b, str) and b == "zeros")
            return self._with_endpoints(x, target, None if zeros else self._baseline(x))
        base = self._baseline(x)
        # the rows and their baselines in one forward call (target, prediction and f(x')),
        # then the paths
        both = self.model.evaluate(np.concatenate([x, base]), batch_size=self.batch_size)
        outputs, f_base = both[: len(x)], both[len(x) :]
        tgt = self.model.resolve_target(target, outputs)
        result = self.attribute(x, tgt, outputs=outputs, base=base, f_base=f_base)
        return tgt, outputs[np.arange(len(x)), tgt], result

    def _with_endpoints(self, x: np.ndarray, target: Any, base: np.ndarray | None) -> Any:
        """Each row's path in one forward + backward pass together with the row and its
        baseline, so the target (when not given), the prediction and ``f(x')`` come from
        that same pass: no separate forward call. Rows are sent as groups of ``k + 2``
        points ``[x, x', path...]``. The backward pass is seeded with the rule's weights
        (zero at the endpoints), so it returns ``w_j ∂f/∂x`` at the path points, which are
        summed on the host. The caller checked that all ``n (k + 2)`` points fit
        one pass, so this is that one pass, without the chunking engine's bookkeeping: this
        path serves a handful of rows, where every further operation shows (each one runs
        with cold caches after the pass)."""
        import torch

        n, k, g = len(x), self.n_steps, self.n_steps + 2
        model, shape = self.model, x.shape[1:]
        if target is not None:
            target = check_target(target, n, model.n_outputs, class_names=model.class_names)
        ops = model.array_ops()
        coef, seed = _endpoint_tensors(self.rule, k, n, len(shape), ops.device, ops.dtype)
        x_dev = ops.asarray(x)
        if base is None or not base.any():  # zero baseline (None: the default): the points
            # are coef * x ([x, 0, α x...]), exactly
            diff = x_dev
            points = coef * x_dev[:, None]
        else:  # x' + α (x - x'), with the endpoints copied exactly
            b_dev = ops.asarray(np.broadcast_to(base, x.shape))
            diff = x_dev - b_dev
            path = b_dev[:, None] + coef[:, 2:] * diff[:, None]
            points = torch.cat([x_dev[:, None], b_dev[:, None], path], dim=1)
        points = points.reshape(n * g, *shape)
        entry = eval_with_entry(model)
        with torch.enable_grad(), full_float32(model.device):
            points.requires_grad_(True)
            out, at_entry = forward_split(model, points, entry)
            if target is None:  # the predicted class at x, each group's first point
                target = out.detach()[::g].argmax(dim=1).cpu().numpy().astype(np.int64)
            picked = out.gather(1, _target_index(tuple(target.tolist()), g, ops.device))
            grad = differentiate(picked, points, seed, entry, at_entry)
            if isinstance(grad, SplitGradients):  # summed at the entry's output, sent back
                summed = grad.group_sums(g).cpu().numpy()
            else:
                summed = grad.cpu().numpy().reshape(n, g, -1).sum(axis=1)
        # Σ_j w_j ∂f/∂x at the path points (summed in the model's dtype, as the chunked path
        # sums a row's points), times x - x' in float64; the few scalars in Python
        vals = summed.reshape(x.shape) * diff.cpu().numpy().astype(np.float64)
        f = picked.detach().cpu().numpy().ravel().tolist()  # f at [x, x', path...] per row
        f_x, f_base = f[::g], f[1::g]
        totals = vals.reshape(n, -1).sum(axis=1).tolist()
        gap = [abs(t - (a - b)) for t, a, b in zip(totals, f_x, f_base, strict=True)]
        result = {
            "values": vals,
            "base_value": np.array(f_base),
            "extras": {"completeness_gap": np.array(gap)},
        }
        return np.asarray(target, dtype=np.int64), np.array(f_x), result

    def _baseline(self, x: np.ndarray) -> np.ndarray:
        return resolve_baseline(
            self.baseline, x, background=self.background, blur_sigma=self.blur_sigma
        )

    def attributions(self, x: Any, target: Any = None) -> np.ndarray:
        if target is None:  # the predicted class needs the rows' outputs anyway
            return super().attributions(x, target)
        m = self.model
        arr, _ = m.check_input(x)
        tgt = check_target(target, len(arr), m.n_outputs, class_names=m.class_names)
        return self.attribute(arr, tgt, ends=False)["values"]

    def attribute(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        seeds: list[np.random.SeedSequence] | None = None,
        base: np.ndarray | None = None,
        f_base: np.ndarray | None = None,
        ends: bool = True,
    ) -> dict[str, Any]:
        """``base`` (1 or n, *input_shape) and ``f_base`` (1 or n, n_outputs), when known,
        spare resolving and evaluating the baseline; ``ends=False`` returns only
        ``values``, without evaluating the model at the rows and their baselines."""
        import torch

        if base is None:
            base = self._baseline(x)
        n, k, shape = len(x), self.n_steps, x.shape[1:]
        alphas, weights = _rule(self.rule, k)  # cached: read only
        ops = self.model.array_ops()
        x_dev = ops.asarray(x)
        b_dev = ops.asarray(np.broadcast_to(base, x.shape))
        diff = x_dev - b_dev
        a_dev = ops.asarray(alphas)
        a_col = a_dev.reshape(1, k, *(1,) * len(shape))
        summed = torch.zeros((n, math.prod(shape)), dtype=torch.float64, device=x_dev.device)

        def make_chunk(start: int, stop: int) -> Any:
            r0, r1 = start // k, (stop - 1) // k + 1
            if (r1 - r0) * k <= 2 * (stop - start):
                # the path points of the rows the chunk touches, by broadcasting, then the chunk
                path = b_dev[r0:r1, None] + a_col * diff[r0:r1, None]
                return path.reshape(-1, *shape)[start - r0 * k : stop - r0 * k]
            # a chunk far smaller than a row: only its own points (the same arithmetic)
            idx = torch.arange(start, stop, device=x_dev.device)
            i, a = idx // k, a_dev[idx % k].reshape(-1, *(1,) * len(shape))
            return b_dev[i] + a * diff[i]

        def consume(start: int, stop: int, grad: Any, _output: Any) -> None:
            # Σ_j w_j ∂f/∂x per row over the chunk's points, as one matrix product with the
            # weights laid out per row (a row split between chunks adds up across them)
            r0, r1 = start // k, (stop - 1) // k + 1
            p = np.arange(start, stop)
            w = np.zeros((r1 - r0, stop - start))
            w[p // k - r0, p - start] = weights[p % k]
            # (taken at the entry layer's output when the pass was split there)
            w_dev = torch.as_tensor(w, dtype=x_dev.dtype, device=x_dev.device)
            summed[r0:r1] += weighted_sums(grad, w_dev).double()

        # chunks of the full size across row boundaries: fewer passes than whole rows
        for_each_gradient(
            self.model, make_chunk, n * k, np.repeat(target, k), consume,
            batch_size=self.batch_size, split=True,
        )  # fmt: skip
        values = to_numpy(summed.reshape(n, *shape) * diff)
        if not ends:
            return {"values": values}
        if f_base is None:
            f_base = self.model.evaluate(np.ascontiguousarray(base), batch_size=self.batch_size)
        f_base = f_base[np.arange(len(x)) % len(base), target]
        if outputs is None:
            outputs = self.model.evaluate(x, batch_size=self.batch_size)
        f_x = outputs[np.arange(len(x)), target]
        total = values.reshape(len(x), -1).sum(axis=1)
        gap = np.abs(total - (f_x - f_base))
        return {"values": values, "base_value": f_base, "extras": {"completeness_gap": gap}}


@register("expected_gradients")
class ExpectedGradients(_GradientExplainer):
    """Expected Gradients (GradientSHAP): Integrated Gradients averaged over baselines drawn
    from a background, with one random point per path.

    Erion et al. (2021); Lundberg & Lee (2017): for each sample a background row ``b`` and
    ``α ~ U(0, 1)`` are drawn and ``(x − b) ⊙ ∂f_t(b + α(x − b))/∂x`` is one unbiased
    estimate of ``E_b[IG(x; b)]``, whose values sum to ``f_t(x) − E_b f_t(b)`` in
    expectation. The mean over ``n_samples`` draws is returned with its standard error per
    feature (``stderr``).

    Parameters
    ----------
    model : object
        A differentiable model (see :class:`Saliency`).
    background : array-like of shape (m, *input_shape)
        Rows the baselines are drawn from (required).
    n_samples : int, default 50
        Draws per row.
    batch_size : int, optional
        Points per forward + backward pass.
    random_state : int, numpy Generator or None
        Seed of the draws; each row draws from its own child seed, so a row's values do not
        depend on the other rows or on ``batch_size``.

    Notes
    -----
    ``base_value`` is ``E_b f_t(b)`` over the background.

    References
    ----------
    Erion, G., Janizek, J. D., Sturmfels, P., Lundberg, S. M. & Lee, S.-I. (2021). Improving
    performance of deep learning models with axiomatic attribution priors and expected
    gradients. Nature Machine Intelligence 3.
    """

    stochastic: ClassVar[bool] = True

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        n_samples: int = 50,
        batch_size: int | None = None,
        random_state: Any = None,
    ):
        super().__init__(model, batch_size=batch_size)
        if background is None:
            raise InputError(
                "expected_gradients needs background=<rows of training data> to draw its "
                "baselines from, e.g. background=x_train[:100]."
            )
        self.background = background
        self.n_samples = check_positive_int(n_samples, name="n_samples")
        self.random_state = random_state

    def attribute(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        seeds: list[np.random.SeedSequence] | None = None,
    ) -> dict[str, Any]:
        bg, _ = check_array(self.background, name="background", input_shape=x.shape[1:])
        n, s = len(x), self.n_samples
        children = seeds if seeds is not None else _row_seeds(self.random_state, n)
        draws = [_path_draws(np.random.default_rng(c), s, len(bg)) for c in children]
        idx = np.stack([d[0] for d in draws])  # (n, s) background row of each sample
        alpha = np.stack([d[1] for d in draws])  # (n, s)
        ops = self.model.array_ops()
        x_dev, bg_dev = ops.asarray(x), ops.asarray(bg)
        idx_dev = ops.asarray(idx, integer=True)
        a_dev = ops.asarray(alpha)
        tail = (1,) * (x.ndim - 1)

        def point(i: Any, j: Any) -> Any:
            b = bg_dev[idx_dev[i, j]]
            return b + a_dev[i, j].reshape(-1, *tail) * (x_dev[i] - b)

        def contribution(i: Any, j: Any, g: Any) -> Any:
            return g * (x_dev[i] - bg_dev[idx_dev[i, j]])

        acc = self._gradient_pass(x, target, s, point, contribution, squares=True)
        f_bg = self.model.evaluate(bg, batch_size=self.batch_size)
        return {
            "values": acc.mean(),
            "stderr": acc.stderr() if s > 1 else None,
            "base_value": f_bg[:, target].mean(axis=0),
        }


def _row_seeds(random_state: Any, n: int) -> list[np.random.SeedSequence]:
    """One independent seed per row from ``random_state`` (a row's draws then do not depend
    on the other rows, nor on how the points are chunked)."""
    rng = check_random_state(random_state)
    return np.random.SeedSequence(rng.integers(0, 2**63, size=4)).spawn(n)


class _NoiseStream:
    """One row's standard normal noise, drawn in order on the host from the row's seed.

    Drawn with a torch CPU generator (its vectorised sampler is ~4× faster than numpy's per
    element) and moved to the model's device afterwards, so a GPU run sees the same noise
    as a CPU run. Each copy's draw is padded to a multiple of 16 numbers, the block torch's
    sampler fills at once: drawing a row's copies in several pieces (a chunk boundary
    inside the row) then gives exactly the numbers of one draw.
    """

    def __init__(self, seed: np.random.SeedSequence, shape: tuple[int, ...]):
        import torch

        self.shape = shape
        self.size = int(np.prod(shape))
        self.padded = max(16, -(-self.size // 16) * 16)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(seed.generate_state(1, np.uint64)[0] >> 1))

    def draw(self, count: int) -> Any:
        """The next ``count`` copies' noise, a float32 CPU tensor (count, *shape)."""
        import torch

        eps = torch.randn((count, self.padded), generator=self.generator)
        return eps[:, : self.size].reshape(count, *self.shape)


def _path_draws(rng: np.random.Generator, n_samples: int, n_background: int) -> tuple:
    """One row's draws for :class:`ExpectedGradients`: background row indices (n_samples,)
    and interpolation points α ~ U(0, 1) (n_samples,)."""
    return rng.integers(0, n_background, size=n_samples), rng.random(n_samples)


class _NoiseTunnel(_GradientExplainer):
    """Shared machinery of SmoothGrad and VarGrad: a gradient method run on noisy copies."""

    stochastic: ClassVar[bool] = True

    def __init__(
        self,
        model: Any,
        *,
        base: str = "saliency",
        base_params: dict[str, Any] | None = None,
        n_samples: int = 50,
        noise_level: float = 0.15,
        batch_size: int | None = None,
        random_state: Any = None,
    ):
        super().__init__(model, batch_size=batch_size)
        cls = get_explainer(base)
        if not issubclass(cls, _GradientExplainer) or issubclass(cls, _NoiseTunnel):
            gradient = sorted(
                name for name, c in _gradient_methods().items() if not issubclass(c, _NoiseTunnel)
            )
            raise InputError(
                f"{self.name} wraps a gradient method; {base!r} is not one. Use one of "
                f"{', '.join(gradient)}."
            )
        if base_params is not None and not isinstance(base_params, dict):
            raise InputError(f"base_params must be a dict of {base}'s parameters or None.")
        self.base = base
        self.base_params = dict(base_params or {})
        for own in ("batch_size", "random_state"):
            if own in self.base_params:
                raise InputError(
                    f"pass {own} to {self.name} itself, not in base_params: it seeds / chunks "
                    "the base method's draws too."
                )
        allowed = parameter_names(cls)
        unknown = sorted(set(self.base_params) - set(allowed))
        if unknown:
            raise UnknownNameError(
                f"{base!r} has no parameter(s) {unknown}; its parameters are: "
                f"{', '.join(p for p in allowed if p not in ('batch_size', 'random_state'))}."
            )
        self._base = cls(self.model, batch_size=batch_size, **self.base_params)
        self.n_samples = check_positive_int(n_samples, name="n_samples")
        self.noise_level = _check_real(noise_level, "noise_level", minimum=0.0)
        self.random_state = random_state

    def attribute(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        seeds: list[np.random.SeedSequence] | None = None,
    ) -> dict[str, Any]:
        mean, var = self._noisy_values(x, target, seeds)
        return self._result(mean, var)

    @abc.abstractmethod
    def _result(self, mean: np.ndarray, var: np.ndarray) -> dict[str, Any]:
        """The method's result from the mean and (population) variance over the copies,
        both of shape (n, *input_shape)."""

    def _noisy_values(
        self,
        x: np.ndarray,
        target: np.ndarray,
        seeds: list[np.random.SeedSequence] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (ddof=0) over the noisy copies of the base method's values.

        Row ``i``'s seed splits into one for its noise and one per noisy copy for a
        stochastic base method, so the result of a row depends on nothing but its seed.
        """
        n, s = len(x), self.n_samples
        shape = x.shape[1:]
        d = int(np.prod(shape))
        children = seeds if seeds is not None else _row_seeds(self.random_state, n)
        flat = x.reshape(n, -1)
        sigma = self.noise_level * (flat.max(axis=1) - flat.min(axis=1))  # per row
        if isinstance(self._base, _AtInput):
            return self._noisy_gradients(x, target, children, sigma)
        mean, var = np.empty(x.shape), np.empty(x.shape)
        block = max(1, _NOISE_BLOCK_ELEMENTS // max(1, s * d))
        for start in range(0, n, block):
            rows = range(start, min(n, start + block))
            split = [children[i].spawn(2) for i in rows]
            noise = [  # float32 draws: the model sees float32 inputs anyway
                _NoiseStream(noise_seed, shape).draw(s).numpy() for noise_seed, _ in split
            ]
            noisy = np.concatenate([x[i] + sigma[i] * e for i, e in zip(rows, noise, strict=True)])
            tgt = np.repeat(target[start : rows.stop], s)
            copy_seeds = [seq for _, base_seed in split for seq in base_seed.spawn(s)]
            base = self._base_for_rows(np.arange(start, rows.stop), n)
            v = base.attribute(noisy, tgt, seeds=copy_seeds)["values"]
            v = v.reshape(len(rows), s, *shape)
            m = v.mean(axis=1)
            mean[start : rows.stop] = m
            var[start : rows.stop] = ((v - m[:, None]) ** 2).mean(axis=1)  # centred: >= 0
        return mean, var

    def _noisy_gradients(
        self,
        x: np.ndarray,
        target: np.ndarray,
        children: list[np.random.SeedSequence],
        sigma: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Saliency / input × gradient bases: one gradient pass over all noisy copies, the
        copies built chunk by chunk on the device and reduced there (no host array of every
        copy's map). Row ``i``'s noise comes from its own seed, drawn in order as its copies
        are reached, so the numbers equal the general path's."""
        s = self.n_samples
        shape = x.shape[1:]
        ops = self.model.array_ops()
        x_dev = ops.asarray(x)
        sigma_dev = ops.asarray(sigma)
        import torch

        streams = [_NoiseStream(c.spawn(2)[0], shape) for c in children]
        tail = (1,) * len(shape)
        base = self._base
        chunk_points: dict[str, Any] = {}

        def point(i: Any, j: Any) -> Any:
            rows = i.cpu().numpy()
            first, last = int(rows[0]), int(rows[-1])  # a chunk holds consecutive points
            if first == last:
                draws = [streams[first].draw(len(rows))]
            else:  # whole rows (a chunk splits a row only when it holds that row alone)
                draws = [streams[r].draw(s) for r in range(first, last + 1)]
            eps = torch.cat(draws).to(device=x_dev.device, dtype=x_dev.dtype)
            p = x_dev[i] + sigma_dev[i].reshape(-1, *tail) * eps
            chunk_points["p"] = p
            return p

        def contribution(i: Any, j: Any, g: Any) -> Any:
            return base._contribution(chunk_points["p"], g)

        acc = self._gradient_pass(x, target, s, point, contribution, squares=True)
        mean = acc.mean()
        var = to_numpy(acc.m2) / s if acc.m2 is not None else np.zeros(x.shape)
        return mean, var

    def _base_for_rows(self, rows: np.ndarray, n: int) -> _GradientExplainer:
        """The base explainer for the noisy copies of ``rows``: a per-row baseline of
        Integrated Gradients is repeated for each row's copies."""
        baseline = getattr(self._base, "baseline", None)
        if not isinstance(baseline, (np.ndarray, list)) and not hasattr(baseline, "shape"):
            return self._base
        arr = np.asarray(baseline, dtype=np.float64)
        if arr.ndim == 0 or len(arr) != n or arr.ndim < 2:
            return self._base
        base = copy.copy(self._base)
        base.baseline = np.repeat(arr[rows], self.n_samples, axis=0)
        return base


def _gradient_methods() -> dict[str, type[Explainer]]:
    from lumos.attribution._base import _REGISTRY

    return {k: c for k, c in _REGISTRY.items() if issubclass(c, _GradientExplainer)}


_TUNNEL_DOC = """
    Parameters
    ----------
    model : object
        A differentiable model (see :class:`Saliency`).
    base : str, default "saliency"
        The gradient method run on each noisy copy: ``"saliency"``, ``"input_x_gradient"``,
        ``"integrated_gradients"`` or ``"expected_gradients"``.
    base_params : dict, optional
        Keyword arguments of the base method (e.g. ``{"absolute": False}``, ``{"n_steps": 20}``).
    n_samples : int, default 50
        Noisy copies per row.
    noise_level : float, default 0.15
        Noise std relative to each row's value range: ``σ = noise_level · (max x − min x)``
        (the SmoothGrad paper's σ / (x_max − x_min); 0.1–0.2 works well on images).
    batch_size : int, optional
        Points per forward + backward pass.
    random_state : int, numpy Generator or None
        Seed of the noise; each row draws from its own child seed, so a row's values do not
        depend on the other rows or on ``batch_size``.
"""


@register("smoothgrad")
class SmoothGrad(_NoiseTunnel):
    """SmoothGrad: a gradient method averaged over noisy copies of the input.

    Smilkov et al. (2017): the mean of the base method's values at ``x + ε``,
    ``ε ~ N(0, σ²)``, removes the high-frequency noise of raw gradients. ``stderr`` is the
    standard error of that mean per feature.
    {parameters}
    References
    ----------
    Smilkov, D., Thorat, N., Kim, B., Viégas, F. & Wattenberg, M. (2017). SmoothGrad:
    removing noise by adding noise. arXiv:1706.03825.
    """

    def _result(self, mean: np.ndarray, var: np.ndarray) -> dict[str, Any]:
        s = self.n_samples
        stderr = np.sqrt(var * s / (s - 1) / s) if s > 1 else None
        return {"values": mean, "stderr": stderr}


SmoothGrad.__doc__ = (SmoothGrad.__doc__ or "").replace("{parameters}", _TUNNEL_DOC)


@register("vargrad")
class VarGrad(_NoiseTunnel):
    """VarGrad: the variance of a gradient method over noisy copies of the input.

    Adebayo et al. (2018): the map is the (population) variance of the base method's values
    at ``x + ε``, ``ε ~ N(0, σ²)``; where it is large the explanation is unstable, so it
    doubles as an uncertainty map. ``extras["mean"]`` holds the SmoothGrad mean.
    {parameters}
    References
    ----------
    Adebayo, J., Gilmer, J., Goodfellow, I. & Kim, B. (2018). Local explanation methods for
    deep neural networks lack sensitivity to parameter values. ICLR workshop.
    """

    def _result(self, mean: np.ndarray, var: np.ndarray) -> dict[str, Any]:
        return {"values": var, "extras": {"mean": mean}}


VarGrad.__doc__ = (VarGrad.__doc__ or "").replace("{parameters}", _TUNNEL_DOC)
