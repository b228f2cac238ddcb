"""lumos: explain deep learning models and measure whether the explanations can be trusted.

The public surface is small: :func:`wrap` and :func:`load_model` turn any model into a
:class:`Model`; :func:`explain` runs a registered local method and returns an
:class:`Explanation`; :class:`GlobalExplanation` holds per-feature importances, from
:mod:`lumos.surrogate` (interpretable models fitted to the model) and :mod:`lumos.importance`
(permutation importance, feature scores, PDP / ALE). Data lives in
:mod:`lumos.datasets`, reference networks in :mod:`lumos.zoo`.
"""

from __future__ import annotations

import os

# Keras 3 runs on the torch backend in lumos; set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

from lumos import importance, metrics, plots, surrogate
from lumos._version import __version__
from lumos.attribution import available_methods, explain
from lumos.errors import LumosError
from lumos.explanation import Explanation, GlobalExplanation
from lumos.metrics import evaluate
from lumos.models import Model, load_model, wrap
from lumos.report import report

__all__ = [
    "Explanation",
    "GlobalExplanation",
    "LumosError",
    "Model",
    "__version__",
    "available_methods",
    "evaluate",
    "explain",
    "importance",
    "load_model",
    "metrics",
    "plots",
    "report",
    "surrogate",
    "wrap",
]
