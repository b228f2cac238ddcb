"""The :class:`Explainer` base class and the registry of local explanation methods."""

from __future__ import annotations

import abc
import functools
import inspect
import time
from typing import Any, ClassVar

import numpy as np

from lumos._validation import check_name
from lumos.errors import UnknownNameError
from lumos.explanation import Explanation, _provenance
from lumos.models.base import Model, wrap

_REGISTRY: dict[str, type[Explainer]] = {}


def register(name: str) -> Any:
    """Class decorator: register an :class:`Explainer` under ``name``."""

    def deco(cls: type[Explainer]) -> type[Explainer]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"explainer {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_explainer(name: str) -> type[Explainer]:
    """The explainer class registered as ``name``.

    Raises
    ------
    UnknownNameError
        With the closest known names.
    """
    return _REGISTRY[check_name(name, _REGISTRY, kind="explanation method")]


@functools.cache
def parameter_names(cls: type) -> tuple[str, ...]:
    """The keyword arguments of an explainer class's constructor (without ``model``)."""
    sig = inspect.signature(cls.__init__)
    return tuple(p for p in sig.parameters if p not in ("self", "model"))


def available_methods() -> dict[str, str]:
    """Registered method names mapped to their one-line descriptions."""
    return {
        name: (inspect.getdoc(cls) or "").splitlines()[0] for name, cls in sorted(_REGISTRY.items())
    }


class Explainer(abc.ABC):
    """Base class of local explainers: configuration in ``__init__``, data in :meth:`explain`.

    Subclasses set ``name`` through :func:`register` and implement :meth:`_explain`, which
    receives validated inputs and resolved targets and returns ``values`` and ``base_value``
    (plus optional ``stderr``, ``groups``, ``extras``).
    """

    name: ClassVar[str] = "explainer"
    #: Needs a differentiable model (gradient methods).
    needs_gradients: ClassVar[bool] = False
    #: Draws random numbers (takes ``random_state``).
    stochastic: ClassVar[bool] = False

    def __init__(self, model: Any, *, batch_size: int | None = None) -> None:
        self.model: Model = wrap(model)
        if self.needs_gradients:
            self.model._require_differentiable()
        self.batch_size = batch_size
        if batch_size is not None:
            self.model.resolve_batch_size(batch_size)

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments as set on this instance.

        Data-sized arguments (``background``) are recorded by their shape, not copied into
        every explanation.
        """
        params = {p: getattr(self, p) for p in parameter_names(type(self)) if hasattr(self, p)}
        background = params.get("background")
        if background is not None:
            params["background"] = f"<{type(background).__name__} of shape {np.shape(background)}>"
        return params

    def explain(self, x: Any, target: Any = None) -> Explanation:
        """Explain the model's ``target`` output on each row of ``x``.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape)
            numpy array, torch tensor or pandas DataFrame.
        target : None, int, str or sequence, optional
            Output to explain per row; ``None`` is the predicted class.

        Returns
        -------
        Explanation
        """
        start = time.perf_counter()
        arr, _ = self.model.check_input(x)
        fused = self._explain_fused(arr, target)
        if fused is None:
            outputs = self.model.evaluate(arr, batch_size=self.batch_size)
            tgt = self.model.resolve_target(target, outputs)
            prediction = outputs[np.arange(len(arr)), tgt]
            result = self._explain(arr, tgt, outputs)
        else:
            tgt, prediction, result = fused
        params = self.get_params()
        explanation = Explanation(
            values=result["values"],
            data=arr,
            target=tgt,
            prediction=prediction,
            base_value=result.get("base_value"),
            stderr=result.get("stderr"),
            feature_names=self.model.feature_names,
            class_names=self.model.class_names,
            method=self.name,
            params=params,
            elapsed_s=time.perf_counter() - start,
            groups=result.get("groups"),
            extras=result.get("extras", {}),
            provenance=_provenance(
                model=self.model,
                input_shape=arr.shape[1:],
                seed=params.get("random_state")
                if isinstance(params.get("random_state"), int)
                else None,
            ),
        )
        # the explainer itself, kept in memory only (never saved): metrics that re-run the
        # explainer (robustness, randomisation) use it as it was, background included
        explanation._explainer = self  # type: ignore[attr-defined]
        return explanation

    def attributions(self, x: Any, target: Any = None) -> np.ndarray:
        """Only the attributions of :meth:`explain`: what a metric that re-runs the
        explainer on new inputs needs.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape)
        target : None, int, str or sequence, optional
            As in :meth:`explain`.

        Returns
        -------
        ndarray of shape (n, *input_shape)
            ``explain(x, target).values``. Methods that compute by-products for the
            :class:`Explanation` skip them here (integrated gradients: the model's outputs at
            the rows and their baselines, which only its completeness gap reads).
        """
        return self.explain(x, target=target).values

    def _explain_fused(
        self, x: np.ndarray, target: Any
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
        """Methods that evaluate the model at ``x`` itself may resolve the target and read
        the predictions in that same pass: return ``(target (n,), prediction (n,), result)``.
        ``None`` (the default) takes the usual path: one forward pass for the outputs, then
        :meth:`_explain`."""
        return None

    @abc.abstractmethod
    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        """Values (n, *input_shape) and base_value (n,) for validated ``x`` and ``target``."""


def explain(model: Any, x: Any, *, method: str, target: Any = None, **params: Any) -> Explanation:
    """Explain ``model`` on ``x`` with the registered ``method``.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts, or a :class:`Model`.
    x : array-like of shape (n, *input_shape)
    method : str
        A registered method name (see :func:`available_methods`).
    target : None, int, str or sequence, optional
        Output to explain per row; ``None`` is the predicted class.
    **params
        Keyword arguments of the method's explainer class.

    Returns
    -------
    Explanation

    Examples
    --------
    >>> import numpy as np, lumos
    >>> f = lambda x: x @ np.array([1.0, -2.0])
    >>> e = lumos.explain(f, np.array([[1.0, 1.0]]), method="feature_ablation")
    >>> e.values
    array([[ 1., -2.]])
    """
    cls = get_explainer(method)
    allowed = parameter_names(cls)
    unknown = sorted(p for p in params if p not in allowed)
    if unknown:
        raise UnknownNameError(
            f"{method!r} has no parameter(s) {unknown}; its parameters are: {', '.join(allowed)}."
        )
    return cls(model, **params).explain(x, target=target)
