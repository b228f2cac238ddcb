"""Explanation quality, one module per category, and the model's own performance.

Every metric is a function ``metric(model, explanation, *, ..., random_state=None) ->
MetricResult`` registered under its snake_case name (:func:`available_metrics`);
:func:`lumos.evaluate` scores several explanations on several metrics in one table, sharing
model evaluations between metrics that need the same perturbed inputs.

Categories (modules): faithfulness, robustness, complexity, randomisation, localisation,
axiomatic; :mod:`lumos.metrics.performance` scores the model itself (accuracy, calibration).
The metric named ``complexity`` shadows its module's name here: import the module's other
names with ``from lumos.metrics.complexity import ...``.
"""

from lumos.metrics import performance
from lumos.metrics._base import (
    CATEGORIES,
    MetricInfo,
    MetricResult,
    available_metrics,
    get_metric,
    register_metric,
)
from lumos.metrics._evaluate import EvaluationTable, evaluate
from lumos.metrics.axiomatic import completeness, input_invariance, non_sensitivity
from lumos.metrics.complexity import complexity, effective_complexity, sparseness
from lumos.metrics.faithfulness import (
    comprehensiveness,
    deletion,
    faithfulness_correlation,
    faithfulness_estimate,
    infidelity,
    insertion,
    monotonicity,
    monotonicity_correlation,
    pgi,
    pgu,
    pixel_flipping,
    region_perturbation,
    road,
    sufficiency,
)
from lumos.metrics.localisation import (
    feature_agreement,
    pairwise_rank_agreement,
    pointing_game,
    rank_agreement,
    rank_correlation,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    sign_agreement,
    signed_rank_agreement,
    top_k_intersection,
)
from lumos.metrics.randomisation import (
    efficient_model_randomisation,
    model_randomisation,
    random_logit,
)
from lumos.metrics.robustness import (
    avg_sensitivity,
    local_lipschitz,
    max_sensitivity,
    relative_input_stability,
    relative_output_stability,
    seed_consistency,
)

__all__ = [
    "CATEGORIES",
    "EvaluationTable",
    "MetricInfo",
    "MetricResult",
    "available_metrics",
    "avg_sensitivity",
    "completeness",
    "complexity",
    "comprehensiveness",
    "deletion",
    "effective_complexity",
    "efficient_model_randomisation",
    "evaluate",
    "faithfulness_correlation",
    "faithfulness_estimate",
    "feature_agreement",
    "get_metric",
    "infidelity",
    "input_invariance",
    "insertion",
    "local_lipschitz",
    "max_sensitivity",
    "model_randomisation",
    "monotonicity",
    "monotonicity_correlation",
    "non_sensitivity",
    "pairwise_rank_agreement",
    "performance",
    "pgi",
    "pgu",
    "pixel_flipping",
    "pointing_game",
    "random_logit",
    "rank_agreement",
    "rank_correlation",
    "region_perturbation",
    "register_metric",
    "relative_input_stability",
    "relative_output_stability",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "road",
    "seed_consistency",
    "sign_agreement",
    "signed_rank_agreement",
    "sparseness",
    "sufficiency",
    "top_k_intersection",
]
