"""Randomisation sanity checks: does the explanation change when what it should depend on
changes?

* :func:`model_randomisation` — Adebayo et al. (2018): re-initialise the network's layers,
  from the output layer down (``"cascading"``) or one at a time (``"independent"``), re-run
  the explainer and measure how similar the new attribution still is to the original.
* :func:`efficient_model_randomisation` — Hedström et al. (2024): the relative rise in the
  explanation's complexity (histogram entropy) once every layer is re-initialised.
* :func:`random_logit` — Sixt et al. (2020): explain a randomly drawn other class and
  measure how similar that attribution is to the one of the explained class.

How a model is randomised
-------------------------
The user's model is never touched: the network is deep-copied (PyTorch) or cloned with
``keras.models.clone_model`` and given the same weights (Keras 3 on the torch backend), and
only the copy is re-initialised; the user's parameters, ``requires_grad`` flags and
training / eval flags are as they were before the call.

*Layers* are, for PyTorch, the modules that own parameters (``module.parameters(recurse=
False)`` is not empty — for ordinary networks exactly the leaf modules with parameters), in
``named_modules()`` order and named as ``named_modules()`` spells them (``"features.0"``);
for Keras, the layers with weights (nested models' layers included), named by
``layer.name``. Layer ``k`` (counted in that order) is always re-initialised from the same
seed, ``_layer_seeds(check_random_state(random_state), n_layers)[k]``, whatever the order,
so the cascade's last step and the efficient variant's fully randomised model coincide.

``init="default"`` re-initialises a layer the way its framework initialises a new one:
PyTorch calls the layer's own ``reset_parameters()`` (``nn.Linear`` / ``nn.Conv*d``: weights
Kaiming-uniform with ``a = √5``, i.e. ``U(−1/√fan_in, 1/√fan_in)``, biases
``U(−1/√fan_in, 1/√fan_in)``; batch norm: weight 1, bias 0 and fresh running statistics) on a
CPU copy of the layer whose draws come from torch's CPU generator seeded with the layer's
seed inside :func:`torch.random.fork_rng` (so the global torch state is restored); Keras
redraws each weight with the layer's own ``<weight>_initializer`` (``kernel_initializer``,
``bias_initializer``, ...) re-seeded with a seed derived from the layer's. A layer without
one (no ``reset_parameters``, or a weight with no initializer) falls back to ``"normal"``:
every parameter tensor is redrawn i.i.d. from ``N(0, σ²)``, ``σ`` the standard deviation of
that tensor's original entries (a constant tensor becomes zeros), from a NumPy generator
seeded with the layer's seed.

Re-running the explainer
------------------------
``explainer=None`` re-runs the explanation's own registered method with its parameters;
a method name or an :class:`~lumos.attribution.Explainer` (rebuilt on the randomised copy
with the same constructor arguments) work as everywhere in :mod:`lumos.metrics`. A plain
function must take the model to explain: ``f(x, target, model=...) -> values`` (``model``
is the randomised ``torch.nn.Module`` / ``keras.Model``; add a ``random_state`` parameter
to receive a seed). Stochastic explainers get one seed for every re-run (their own integer
``random_state`` when the explanation or instance has one, else one drawn from
``random_state``), so the layers' curves differ by the weights only.

Within :func:`lumos.metrics._base.sharing` (as :func:`lumos.evaluate` runs) each re-run
explanation is computed once per (explanation, model, explainer, ``init``,
``random_state``, set of randomised layers): the cascade's last step is the efficient
variant's fully randomised explanation.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lumos._random import check_random_state
from lumos._validation import check_name
from lumos.errors import InputError, ModelError, NotDifferentiableError, ShapeError
from lumos.explanation import Explanation
from lumos.metrics._base import (
    MetricResult,
    Prepared,
    callable_parameters,
    check_bool,
    check_count,
    explainer_key,
    own_explainer,
    pearson_rows,
    prepare,
    register_metric,
    resolve_explainer,
    row_seeds,
    seed_key,
    shared,
    spearman_rows,
)
from lumos.models.base import Model

__all__ = ["efficient_model_randomisation", "model_randomisation", "random_logit"]

#: How the layers are randomised in :func:`model_randomisation`.
ORDERS = ("cascading", "independent")
#: Similarity measures between the original and the new attribution of a row.
SIMILARITIES = ("spearman", "pearson", "ssim")
#: How a layer is re-initialised.
INITS = ("default", "normal")

#: Side of the Gaussian SSIM window (σ = 1.5, truncated at 3.5σ: 2·5 + 1), Wang et al. 2004.
SSIM_WINDOW = 11

_CONSTANT = "a constant attribution (original or re-explained) has no defined similarity"
_ZERO_ENTROPY = "the original attribution is constant (entropy 0): no relative rise"


# ----------------------------------------------------------------------------- checks


def _check_similarity(similarity: Any, input_shape: tuple[int, ...]) -> str:
    similarity = check_name(similarity, SIMILARITIES, kind="similarity")
    if similarity == "ssim":
        spatial = _ssim_spatial(input_shape)
        if spatial is None:
            raise ShapeError(
                f"similarity='ssim' compares images (rows of shape (H, W) or (C, H, W)); these "
                f"rows have shape {input_shape}. Use similarity='spearman' or 'pearson'."
            )
        if min(spatial) < SSIM_WINDOW:
            raise ShapeError(
                f"similarity='ssim' uses Wang et al.'s {SSIM_WINDOW}×{SSIM_WINDOW} Gaussian "
                f"window and needs images at least that large; these are {spatial[0]}×"
                f"{spatial[1]}. Use similarity='spearman' or 'pearson'."
            )
    return similarity


def _ssim_spatial(input_shape: tuple[int, ...]) -> tuple[int, int] | None:
    if len(input_shape) not in (2, 3):
        return None
    return int(input_shape[-2]), int(input_shape[-1])


def _check_batch_size(model: Model, batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    model.resolve_batch_size(batch_size)  # raises InputError for a bad value
    return int(batch_size)


def _check_differentiable(model: Model, metric: str) -> None:
    if not model.differentiable or _network(model) is None:
        raise NotDifferentiableError(
            f"{metric} re-initialises the network's layers, so it needs a PyTorch module or a "
            f"Keras 3 model (torch backend); this {model.framework} model is a black box. "
            "Wrap the network itself with lumos.wrap, or use metrics that only evaluate the "
            "model (e.g. random_logit, the faithfulness metrics)."
        )


def _check_explainer(explainer: Any, p: Prepared, metric: str) -> None:
    """Fail early, before any layer is randomised."""
    from lumos.attribution._base import Explainer

    if explainer is None or isinstance(explainer, (str, Explainer)):
        resolve_explainer(p.model, p.explanation, explainer)
        return
    if callable(explainer):
        if "model" not in callable_parameters(explainer):
            raise InputError(
                f"{metric} re-runs the explainer on a randomised copy of the model, so a "
                "function passed as explainer= must take it: f(x, target, model=...) -> "
                "attributions (model is the randomised torch.nn.Module or keras.Model)."
            )
        return
    resolve_explainer(p.model, p.explanation, explainer)  # raises the usual InputError


# ----------------------------------------------------------------------------- similarity
def _transform(a: np.ndarray, use_abs: bool) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.abs(a) if use_abs else a


def similarity_rows(a: np.ndarray, b: np.ndarray, similarity: str) -> np.ndarray:
    """Similarity of each row of ``a`` with the same row of ``b``.

    Parameters
    ----------
    a, b : ndarray of shape (n, *input_shape)
    similarity : {"spearman", "pearson", "ssim"}
        Spearman rank correlation (average ranks for ties) or Pearson correlation of the
        flattened rows; or the mean structural similarity of two images (see
        :func:`ssim_rows`).

    Returns
    -------
    ndarray of shape (n,)
        NaN where a row is constant (correlation and SSIM are undefined there).
    """
    if similarity == "spearman":
        return spearman_rows(a, b)
    if similarity == "pearson":
        return pearson_rows(a, b)
    return ssim_rows(a, b)


def ssim_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean structural similarity (Wang et al. 2004) of each image of ``a`` with that of ``b``.

    Each map is first divided by its largest absolute value (attributions of a randomised
    model live on another scale; SSIM is not scale invariant), the dynamic range ``L`` is
    ``max − min`` over both scaled maps, and SSIM uses Wang et al.'s settings: an 11×11
    Gaussian window with σ = 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population (co)variances,
    averaged over every window position inside the image
    (:func:`skimage.metrics.structural_similarity` with ``gaussian_weights=True``,
    ``sigma=1.5``, ``use_sample_covariance=False``). Images with several channels average
    the channels' SSIM.

    Parameters
    ----------
    a, b : ndarray of shape (n, H, W) or (n, C, H, W)

    Returns
    -------
    ndarray of shape (n,)
        NaN where both scaled maps are one constant (``L = 0``).
    """
    from skimage.metrics import structural_similarity

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.full(len(a), np.nan)
    for i in range(len(a)):  # per-row image statistics, no model calls
        ai, bi = _unit_scale(a[i]), _unit_scale(b[i])
        if ai.ndim == 3 and ai.shape[0] == 1:
            ai, bi = ai[0], bi[0]
        data_range = float(max(ai.max(), bi.max()) - min(ai.min(), bi.min()))
        if data_range == 0.0:
            continue
        out[i] = structural_similarity(
            ai,
            bi,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=0 if ai.ndim == 3 else None,
        )
    return out


def _unit_scale(a: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(a)))
    return a / top if top > 0 else a


def histogram_entropy(a: np.ndarray, n_bins: int) -> np.ndarray:
    """Discrete entropy (natural log) of each row's histogram of values.

    Each flattened row is binned into ``n_bins`` equal-width bins between its own minimum
    and maximum (:func:`numpy.histogram`), ``p_k`` is the fraction of values in bin ``k``
    and ``H = −Σ_k p_k ln p_k``.

    Parameters
    ----------
    a : ndarray of shape (n, *input_shape)
    n_bins : int

    Returns
    -------
    ndarray of shape (n,)
    """
    flat = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    out = np.empty(len(flat))
    for i, row in enumerate(flat):  # one histogram per row, no model calls
        counts, _ = np.histogram(row, bins=n_bins)
        p = counts[counts > 0] / counts.sum()
        out[i] = float(-(p * np.log(p)).sum())
    return out


# ----------------------------------------------------------------------------- layers
def _network(model: Model) -> Any:
    """The torch module or Keras model behind ``model`` (None for black boxes)."""
    import torch

    keras_model = getattr(model, "keras_model", None)
    if keras_model is not None:
        return keras_model
    module = getattr(model, "module", None)
    return module if isinstance(module, torch.nn.Module) else None


def _is_keras(model: Model) -> bool:
    return getattr(model, "keras_model", None) is not None


def layer_names(model: Any) -> list[str]:
    """The layers :func:`model_randomisation` randomises, in the network's order.

    Parameters
    ----------
    model : object
        A PyTorch module, a Keras 3 model or a differentiable :class:`~lumos.Model`.

    Returns
    -------
    list of str
        PyTorch: ``named_modules()`` paths of the modules that own parameters; Keras: the
        names of the layers with weights.
    """
    from lumos.models.base import wrap

    m = wrap(model)
    _check_differentiable(m, "model_randomisation")
    return [name for name, _ in _layers(m)]


def _layers(model: Model) -> list[tuple[str, Any]]:
    net = _network(model)
    if _is_keras(model):
        return [(layer.name, layer) for layer in _keras_layers(net) if layer.weights]
    found = []
    for name, module in net.named_modules():
        if next(module.parameters(recurse=False), None) is not None:
            found.append((name or "<root>", module))
    return found


def _keras_layers(model: Any) -> list[Any]:
    import keras

    found: list[Any] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found += _keras_layers(layer)
        else:
            found.append(layer)
    return found


def _layer_seeds(rng: np.random.Generator, n_layers: int) -> list[int]:
    """One seed per layer (counted in the network's order) from ``rng``."""
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n_layers)]


class _Randomised:
    """A copy of a differentiable model whose layers can be re-initialised and restored.

    The copy is a deep copy (PyTorch) or a ``keras.models.clone_model`` clone carrying the
    same weights (Keras); ``model`` is a shallow copy of the lumos :class:`Model` pointing
    at it, so hints (preprocess, class names, device) carry over.
    """

    def __init__(self, model: Model, batch_size: int | None, metric: str) -> None:
        self.keras = _is_keras(model)
        original = _network(model)
        if self.keras:
            import keras

            try:
                clone = keras.models.clone_model(original)
                clone.set_weights(original.get_weights())
            except Exception as exc:  # subclassed models without a config, ...
                raise ModelError(
                    f"{metric} randomises a clone of the Keras model made with "
                    f"keras.models.clone_model, and this model cannot be cloned ({exc}). "
                    "Build it as a Sequential or functional model, or pass a PyTorch module."
                ) from None
            net = clone
        else:
            net = copy.deepcopy(original)
        self.model = copy.copy(model)
        if self.keras:
            self.model.keras_model = net
        else:
            self.model.module = net
        if batch_size is not None:
            self.model.batch_size = batch_size
        self.net = net
        self.original_layers = _layers(model)
        self.layers = _layers(self.model)
        if len(self.layers) != len(self.original_layers):  # pragma: no cover - defensive
            raise ModelError(f"{metric}: the copy of the model has other layers than it.")

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.layers]

    def randomise(self, k: int, seed: int, init: str) -> None:
        """Re-initialise layer ``k`` of the copy from ``seed``."""
        layer = self.layers[k][1]
        if self.keras:
            _randomise_keras(layer, seed, init)
        else:
            _randomise_torch(layer, seed, init)

    def restore(self, k: int) -> None:
        """Give layer ``k`` of the copy its original weights back."""
        layer, original = self.layers[k][1], self.original_layers[k][1]
        if self.keras:
            layer.set_weights(original.get_weights())
        else:
            import torch

            with torch.no_grad():
                for (_, dst), (_, src) in zip(
                    _own_tensors(layer), _own_tensors(original), strict=True
                ):
                    dst.copy_(src)


def _own_tensors(module: Any) -> list[tuple[str, Any]]:
    """Parameters and buffers a module owns itself (not its children's)."""
    return [
        *module.named_parameters(recurse=False),
        *module.named_buffers(recurse=False),
    ]


def _randomise_torch(layer: Any, seed: int, init: str) -> None:
    import torch

    if init == "default" and callable(getattr(layer, "reset_parameters", None)):
        fresh = copy.deepcopy(layer).to("cpu")
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            fresh.reset_parameters()
        with torch.no_grad():
            for (_, dst), (_, src) in zip(_own_tensors(layer), _own_tensors(fresh), strict=True):
                dst.copy_(src.to(device=dst.device, dtype=dst.dtype))
        return
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, param in layer.named_parameters(recurse=False):
            new = _normal_like(param.detach().cpu().double().numpy(), rng)
            param.copy_(torch.as_tensor(new, dtype=param.dtype, device=param.device))


def _normal_like(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. N(0, σ²) of ``w``'s shape, σ the standard deviation of ``w``'s entries."""
    sigma = float(np.std(w)) if w.size else 0.0
    return rng.standard_normal(w.shape) * sigma


def _randomise_keras(layer: Any, seed: int, init: str) -> None:
    import keras

    rng = np.random.default_rng(seed)
    new = []
    for var in layer.weights:
        current = np.asarray(keras.ops.convert_to_numpy(var.value))
        var_seed = int(rng.integers(0, 2**31 - 1))
        initializer = getattr(layer, f"{var.name}_initializer", None) if init == "default" else None
        if initializer is not None:
            new.append(_keras_draw(initializer, var_seed, current))
        else:
            new.append(_normal_like(current, np.random.default_rng(var_seed)).astype(current.dtype))
    layer.set_weights(new)


def _keras_draw(initializer: Any, seed: int, current: np.ndarray) -> np.ndarray:
    """``initializer`` re-seeded with ``seed`` (when it takes one) at ``current``'s shape."""
    import keras

    config = initializer.get_config()
    if "seed" in config:
        config = {**config, "seed": seed}
    fresh = type(initializer).from_config(config)
    values = fresh(shape=current.shape, dtype=str(current.dtype))
    return np.asarray(keras.ops.convert_to_numpy(values), dtype=current.dtype)


@contextmanager
def _untouched(model: Any) -> Iterator[None]:
    """Leave a user's torch / Keras module with the training flags it came with (wrapping
    it switches it to eval mode)."""
    import torch

    net = model if isinstance(model, torch.nn.Module) else None
    flags = [(m, m.training) for m in net.modules()] if net is not None else []
    try:
        yield
    finally:
        for m, flag in flags:
            if m.training != flag:
                m.train(flag)


# ----------------------------------------------------------------------------- explainers
def _explainer_seed(explanation: Explanation, explainer: Any, rng: np.random.Generator) -> Any:
    """The seed every re-run gets: the explainer's own int seed (None: keep it), else a
    fresh draw from ``rng``."""
    from lumos.attribution._base import Explainer

    drawn = int(rng.integers(0, 2**31 - 1))
    own: Any = None
    if explainer is None or explainer == explanation.method:
        own = explanation.params.get("random_state")
    elif isinstance(explainer, Explainer):
        own = getattr(explainer, "random_state", None)
    if isinstance(own, numbers.Integral) and not isinstance(own, bool):
        return None
    return drawn


def _explain_on(
    model: Model, explanation: Explanation, explainer: Any
) -> Callable[..., np.ndarray]:
    """``run(x, target, random_state=None) -> values`` of ``explainer`` on ``model`` (a
    randomised copy): instances are rebuilt on it, functions get it as ``model=``."""
    from lumos.attribution._base import Explainer, parameter_names

    explainer = own_explainer(explanation, explainer)  # an instance is rebuilt on the copy
    if isinstance(explainer, Explainer):
        cls = type(explainer)
        kwargs = {p: getattr(explainer, p) for p in parameter_names(cls) if hasattr(explainer, p)}
        explainer = cls(model, **kwargs)
    elif callable(explainer) and not isinstance(explainer, str):
        explainer = _bind_model(explainer, _network(model))
    return resolve_explainer(model, explanation, explainer)


def _bind_model(f: Callable[..., Any], net: Any) -> Callable[..., Any]:
    if "random_state" in callable_parameters(f):

        def seeded(x: np.ndarray, target: np.ndarray, random_state: Any = None) -> Any:
            return f(x, target, model=net, random_state=random_state)

        return seeded

    def plain(x: np.ndarray, target: np.ndarray) -> Any:
        return f(x, target, model=net)

    return plain


def _randomised_values(
    rand: _Randomised,
    randomised: frozenset[int],
    p: Prepared,
    explainer: Any,
    init: str,
    state_key: Any,
    explainer_seed: Any,
) -> np.ndarray:
    """Attributions of the copy in its current state (the layers in ``randomised``
    re-initialised), shared within an evaluation."""
    key = (
        "randomised_explanation",
        id(p.explanation),
        id(_network(p.model)),  # the user's network (a raw module is wrapped anew per call)
        id(p.model.preprocess),
        explainer_key(p.explanation, explainer),
        init,
        state_key,
        randomised,
    )

    def compute() -> np.ndarray:
        run = _explain_on(rand.model, p.explanation, explainer)
        return np.asarray(run(p.x, p.target, random_state=explainer_seed), dtype=np.float64)

    return shared(key, compute)


def _nan_mean(a: np.ndarray, axis: int) -> np.ndarray:
    finite = np.isfinite(a)
    count = finite.sum(axis=axis)
    total = np.where(finite, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ----------------------------------------------------------------------------- metrics
@register_metric(
    "model_randomisation",
    category="randomisation",
    higher_is_better=False,
    requires=("explainer", "differentiable"),
    reference="Adebayo et al. (2018)",
)
def model_randomisation(
    model: Any,
    explanation: Explanation,
    *,
    explainer: Any = None,
    order: str = "cascading",
    similarity: str = "spearman",
    abs: bool = True,
    init: str = "default",
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Model parameter randomisation test: similarity to the original attribution as the
    network's layers are re-initialised (lower is better).

    Adebayo et al. (2018) re-initialise a trained network's weights layer by layer and
    re-explain: an explanation that stays the same while the model it explains is
    destroyed does not reflect the model. For the layers ``L_K, ..., L_1`` (output layer
    first) the explainer is re-run on a copy of the model with

    * ``order="cascading"``: layers ``L_K .. L_j`` re-initialised (cumulatively, top down);
    * ``order="independent"``: layer ``L_j`` alone re-initialised (the others original);

    and ``s_ij = sim(T(a_i), T(â_ij))`` is recorded for row ``i`` and step ``j``, with
    ``T = |·|`` when ``abs`` (Adebayo et al. report the rank correlation of absolute values
    and of signed ones) and ``sim`` the Spearman rank correlation, Pearson correlation or
    SSIM. How layers are enumerated, re-initialised and seeded, and how the explainer is
    re-run, is described in :mod:`lumos.metrics.randomisation`.

    Parameters
    ----------
    model : object
        A PyTorch module, a Keras 3 model (torch backend) or a differentiable
        :class:`~lumos.Model`. Never modified: a copy is randomised.
    explanation : Explanation
        The original attributions ``values`` (n, *input_shape) of ``data`` for ``target``.
    explainer : None, str, Explainer or callable, optional
        What to re-run on the randomised copies (default: the explanation's own method and
        parameters). A function must accept ``f(x, target, model=...)``.
    order : {"cascading", "independent"}, default "cascading"
    similarity : {"spearman", "pearson", "ssim"}, default "spearman"
        ``"ssim"`` needs image rows of at least 11×11 (see :func:`ssim_rows`).
    abs : bool, default True
        Compare absolute values.
    init : {"default", "normal"}, default "default"
        The layer's own framework initialiser, or ``N(0, σ²)`` with the original σ of each
        parameter tensor.
    random_state : int, numpy Generator or None
        Seeds the re-initialisation (and stochastic explainers); the global NumPy / torch /
        Keras random states are not used.
    batch_size : int, optional
        Rows per model call of the re-run explainer.

    Returns
    -------
    MetricResult
        ``scores`` (n,): for ``"cascading"`` the similarity once every layer is
        re-initialised; for ``"independent"`` the mean over layers of the row's
        similarities. ``curve`` (n_layers,): mean similarity over rows at each step, with
        ``curve_x`` the layer names in randomisation order (output layer first).
        ``extras``: ``"similarity"`` (n, n_layers) per row and step, ``"layers"`` (the
        names), ``"randomised_values"`` (n, *input_shape) the attributions of the fully
        randomised model (cascading only), ``"nan_reason"`` where scores are NaN (a
        constant attribution).

    Raises
    ------
    NotDifferentiableError
        For a black-box model.
    UnknownNameError
        For an unknown ``order``, ``similarity`` or ``init``.
    ShapeError
        For ``similarity="ssim"`` on rows that are not images of at least 11×11.
    InputError
        For a function explainer without a ``model`` parameter or other bad arguments.

    References
    ----------
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M. & Kim, B. (2018).
    Sanity checks for saliency maps. NeurIPS 31.

    Notes
    -----
    Equals ``quantus.MPRT`` (0.6; ``layer_order="top_down"`` for cascading) per layer and
    row when the layers get the same weights (quantus seeds the *global* torch generator
    with ``seed + 1`` before every layer's ``reset_parameters()``) and ``normalise=False``
    (max-normalisation does not change correlations). Quantus differs in: its SSIM runs on
    the flattened attribution vector (here: 2-D windows as Wang et al. define it); its
    independent order runs bottom up (here: top down like the cascade, so the curves line
    up); it also reports the re-run of the unchanged model (``"original"``), which lumos
    leaves out (the curve has one point per layer).
    """
    with _untouched(model):
        p = prepare(model, explanation)
        _check_differentiable(p.model, "model_randomisation")
        order = check_name(order, ORDERS, kind="layer order")
        similarity = _check_similarity(similarity, p.input_shape)
        use_abs = check_bool(abs, "abs")
        init = check_name(init, INITS, kind="init")
        batch_size = _check_batch_size(p.model, batch_size)
        _check_explainer(explainer, p, "model_randomisation")

        state_key = seed_key(random_state)
        rng = check_random_state(random_state)
        rand = _Randomised(p.model, batch_size, "model_randomisation")
        n_layers = len(rand.layers)
        if n_layers == 0:
            raise ModelError("model_randomisation: this model has no layer with parameters.")
        seeds = _layer_seeds(rng, n_layers)
        exp_seed = _explainer_seed(explanation, explainer, rng)
        steps = list(range(n_layers))[::-1]  # output layer first

        reference = _transform(p.a, use_abs)
        sims = np.full((p.n, n_layers), np.nan)
        values = None
        for j, k in enumerate(steps):
            rand.randomise(k, seeds[k], init)
            done = frozenset(steps[: j + 1]) if order == "cascading" else frozenset([k])
            values = _randomised_values(rand, done, p, explainer, init, state_key, exp_seed)
            sims[:, j] = similarity_rows(reference, _transform(values, use_abs), similarity)
            if order == "independent":
                rand.restore(k)

    scores = sims[:, -1] if order == "cascading" else _nan_mean(sims, axis=1)
    extras: dict[str, Any] = {"similarity": sims, "layers": [rand.names[k] for k in steps]}
    if order == "cascading":
        extras["randomised_values"] = values
    if not np.all(np.isfinite(scores)):
        extras["nan_reason"] = _CONSTANT
    return MetricResult(
        name="",
        scores=scores,
        higher_is_better=False,
        category="",
        curve=_nan_mean(sims, axis=0),
        curve_x=[rand.names[k] for k in steps],
        extras=extras,
    )


@register_metric(
    "efficient_model_randomisation",
    category="randomisation",
    higher_is_better=True,
    requires=("explainer", "differentiable"),
    reference="Hedström et al. (2024)",
)
def efficient_model_randomisation(
    model: Any,
    explanation: Explanation,
    *,
    explainer: Any = None,
    n_bins: int = 100,
    abs: bool = False,
    init: str = "default",
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Efficient model parameter randomisation test (eMPRT): relative rise of the
    explanation's entropy once every layer is re-initialised (higher is better).

    Hedström et al. (2024) replace MPRT's layer-by-layer similarity by a comparison of two
    model states: the explanation ``e`` of the trained model and ``ê`` of the fully
    randomised one. An explanation that reflects the model should become noisier, i.e.
    more complex, when the model is destroyed::

        eMPRT_i = (H(T(ê_i)) − H(T(e_i))) / H(T(e_i))

    with ``H`` the discrete entropy of the row's histogram of values (``n_bins`` equal
    bins between its minimum and maximum, :func:`histogram_entropy`) and ``T = |·|`` when
    ``abs``. The fully randomised model re-initialises every layer as
    :func:`model_randomisation` does (same seeds: it is the cascade's last step).

    Parameters
    ----------
    model : object
        A PyTorch module, a Keras 3 model (torch backend) or a differentiable
        :class:`~lumos.Model`. Never modified: a copy is randomised.
    explanation : Explanation
        The original attributions (``e``).
    explainer : None, str, Explainer or callable, optional
        As in :func:`model_randomisation`.
    n_bins : int, default 100
        Histogram bins (quantus' default).
    abs : bool, default False
        Entropy of absolute values.
    init : {"default", "normal"}, default "default"
        See :func:`model_randomisation`.
    random_state : int, numpy Generator or None
    batch_size : int, optional
        Rows per model call of the re-run explainer.

    Returns
    -------
    MetricResult
        ``scores`` (n,) the relative rise; NaN where ``H(T(e_i)) = 0`` (a constant
        original attribution). ``extras``: ``"complexity_original"``,
        ``"complexity_randomised"`` (n,) the two entropies, ``"randomised_values"``
        (n, *input_shape).

    References
    ----------
    Hedström, A., Weber, L., Lapuschkin, S. & Höhne, M. M.-C. (2024). Sanity checks
    revisited: an exploration to repair the model parameter randomisation test. XAI in
    Action workshop, NeurIPS 2023; arXiv:2401.06465.

    Notes
    -----
    Equals ``quantus.EfficientMPRT`` (0.6, ``abs=False, normalise=False,
    complexity_func_kwargs={"n_bins": 100}``) when the layers get the same weights. Quantus
    takes ``H(e)`` of a re-run of the explainer on the unchanged model; lumos takes the
    explanation given (the same for deterministic explainers).
    """
    with _untouched(model):
        p = prepare(model, explanation)
        _check_differentiable(p.model, "efficient_model_randomisation")
        n_bins = check_count(n_bins, "n_bins", minimum=2)
        use_abs = check_bool(abs, "abs")
        init = check_name(init, INITS, kind="init")
        batch_size = _check_batch_size(p.model, batch_size)
        _check_explainer(explainer, p, "efficient_model_randomisation")

        state_key = seed_key(random_state)
        rng = check_random_state(random_state)
        rand = _Randomised(p.model, batch_size, "efficient_model_randomisation")
        n_layers = len(rand.layers)
        if n_layers == 0:
            raise ModelError(
                "efficient_model_randomisation: this model has no layer with parameters."
            )
        seeds = _layer_seeds(rng, n_layers)
        exp_seed = _explainer_seed(explanation, explainer, rng)
        for k in range(n_layers):
            rand.randomise(k, seeds[k], init)
        everything = frozenset(range(n_layers))
        values = _randomised_values(rand, everything, p, explainer, init, state_key, exp_seed)

    h_orig = histogram_entropy(_transform(p.a, use_abs), n_bins)
    h_rand = histogram_entropy(_transform(values, use_abs), n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(h_orig > 0, (h_rand - h_orig) / np.where(h_orig > 0, h_orig, 1), np.nan)
    extras: dict[str, Any] = {
        "complexity_original": h_orig,
        "complexity_randomised": h_rand,
        "randomised_values": values,
    }
    if not np.all(np.isfinite(scores)):
        extras["nan_reason"] = _ZERO_ENTROPY
    return MetricResult(name="", scores=scores, higher_is_better=True, category="", extras=extras)


def _draw_other_targets(
    seeds: list[np.random.SeedSequence], target: np.ndarray, n_outputs: int
) -> np.ndarray:
    """Per row, an output index other than the row's target, uniform over the other
    ``n_outputs − 1``, from the row's own seed."""
    other = np.empty(len(target), dtype=np.int64)
    for i, s in enumerate(seeds):
        r = int(np.random.default_rng(s).integers(0, n_outputs - 1))
        other[i] = r + (r >= target[i])
    return other


@register_metric(
    "random_logit",
    category="randomisation",
    higher_is_better=False,
    requires=("explainer",),
    reference="Sixt et al. (2020)",
)
def random_logit(
    model: Any,
    explanation: Explanation,
    *,
    explainer: Any = None,
    similarity: str = "spearman",
    abs: bool = False,
    random_state: Any = None,
    batch_size: int | None = None,
) -> MetricResult:
    """Random-logit test: similarity of the explanation of the target to that of a random
    other class (lower is better).

    Sixt et al. (2020) show that several modified back-propagation methods give nearly
    the same map whichever output they explain. For each row ``i`` a class
    ``c_i ≠ t_i`` is drawn uniformly from the other ``n_outputs − 1`` outputs (from the
    row's own seed, :func:`~lumos.metrics._base.row_seeds`), the explainer is re-run for
    ``c_i`` and ``score_i = sim(T(a_i), T(a_i^{c_i}))`` with ``T = |·|`` when ``abs``.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts with at least two outputs.
    explanation : Explanation
        The attributions of the explained classes.
    explainer : None, str, Explainer or callable, optional
        What to re-run (default: the explanation's own method; a function
        ``f(x, target) -> values``).
    similarity : {"spearman", "pearson", "ssim"}, default "spearman"
        Sixt et al. report SSIM (``similarity="ssim"``, images of at least 11×11); the
        rank correlation applies to every kind of data.
    abs : bool, default False
        Compare absolute values.
    random_state : int, numpy Generator or None
        Seeds the classes drawn (and stochastic explainers).
    batch_size : int, optional
        Rows per model call of the re-run explainer.

    Returns
    -------
    MetricResult
        ``scores`` (n,); ``extras``: ``"other_target"`` (n,) the classes drawn,
        ``"other_values"`` (n, *input_shape) their attributions, ``"nan_reason"`` where a
        score is NaN (a constant attribution).

    References
    ----------
    Sixt, L., Granz, M. & Landgraf, T. (2020). When explanations lie: why many modified BP
    attributions fail. ICML 2020.

    Notes
    -----
    Equals ``quantus.RandomLogit`` (0.6; ``normalise=False``, its ``similarity_func``
    set to the same correlation) given the same classes; quantus draws them from the
    global NumPy generator re-seeded for every batch, and its default SSIM runs on the
    flattened attribution vector rather than on 2-D windows.
    """
    with _untouched(model):
        p = prepare(model, explanation)
        similarity = _check_similarity(similarity, p.input_shape)
        use_abs = check_bool(abs, "abs")
        batch_size = _check_batch_size(p.model, batch_size)
        n_outputs = p.model.n_outputs
        if n_outputs < 2:
            raise InputError(
                "random_logit explains another output than the target, so the model needs at "
                f"least two outputs; this one has {n_outputs}."
            )
        m = p.model
        if batch_size is not None:  # a shallow copy: the user's Model keeps its own hint
            m = copy.copy(p.model)
            m.batch_size = batch_size
        run = resolve_explainer(m, explanation, explainer)
        rng = check_random_state(random_state)
        seeds = row_seeds(rng, p.n)
        exp_seed = _explainer_seed(explanation, explainer, rng)
        other = _draw_other_targets(seeds, p.target, n_outputs)
        values = np.asarray(run(p.x, other, random_state=exp_seed), dtype=np.float64)
    scores = similarity_rows(_transform(p.a, use_abs), _transform(values, use_abs), similarity)
    extras: dict[str, Any] = {"other_target": other, "other_values": values}
    if not np.all(np.isfinite(scores)):
        extras["nan_reason"] = _CONSTANT
    return MetricResult(name="", scores=scores, higher_is_better=False, category="", extras=extras)
