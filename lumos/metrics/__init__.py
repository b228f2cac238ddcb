"""Explanation quality, one module per category, and the model's own performance.

Every metric is a function ``metric(model, explanation, *, ..., random_state=None) ->
MetricResult`` registered under its snake_case name (:func:`available_metrics`);
:func:`lumos.evaluate` scores several explanations on several metrics in one table, sharing
model evaluations between metrics that need the same perturbed inputs.
"""

from lumos.metrics._base import (
    CATEGORIES,
    MetricInfo,
    MetricResult,
    available_metrics,
    get_metric,
    register_metric,
)
from lumos.metrics._evaluate import EvaluationTable, evaluate

__all__ = [
    "CATEGORIES",
    "EvaluationTable",
    "MetricInfo",
    "MetricResult",
    "available_metrics",
    "evaluate",
    "get_metric",
    "register_metric",
]
