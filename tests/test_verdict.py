"""The report's plain-language verdict and caveats, on constructed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lumos.explanation import GlobalExplanation
from lumos.metrics import MetricResult
from lumos.metrics._evaluate import EvaluationTable
from lumos.report._verdict import SANITY_LIMIT, caveats, decide


def _result(name: str, category: str, hib: bool, scores: list[float]) -> MetricResult:
    return MetricResult(name=name, scores=np.array(scores), higher_is_better=hib, category=category)


def _table(values: dict[str, dict[str, float]]) -> EvaluationTable:
    """``values[method][metric]`` → a table (categories / directions from the metric names)."""
    meta = {
        "deletion": ("faithfulness", False),
        "faithfulness_correlation": ("faithfulness", True),
        "max_sensitivity": ("robustness", False),
        "model_randomisation": ("randomisation", False),
        "seed_consistency": ("robustness", True),
    }
    results = {}
    for method, row in values.items():
        for metric, v in row.items():
            cat, hib = meta[metric]
            results[(method, metric)] = _result(metric, cat, hib, [v, v])
    metrics = list(dict.fromkeys(m for row in values.values() for m in row))
    return EvaluationTable(results=results, methods=list(values), metrics=metrics)


def test_best_faithfulness_rank_among_methods_that_pass_the_sanity_check() -> None:
    table = _table(
        {
            # most faithful, but its maps survive randomisation: disqualified
            "ig": {"deletion": 0.05, "faithfulness_correlation": 0.9, "model_randomisation": 0.8},
            "saliency": {
                "deletion": 0.3,
                "faithfulness_correlation": 0.5,
                "model_randomisation": 0.1,
            },
            "lime": {"deletion": 0.4, "faithfulness_correlation": 0.4, "model_randomisation": 0.2},
        }
    )
    v = decide(table)
    assert v.best == "saliency"
    assert v.failed_sanity == {"ig": 0.8}
    assert "best mean rank over the 2 faithfulness metric(s) (2.0; 1 is best)" in v.text
    assert "similarity 0.10" in v.text and "Treat ig with caution" in v.text
    assert len(v.caveats) == 1 and "ig fails the randomisation sanity check" in v.caveats[0]
    assert f"> {SANITY_LIMIT}" in v.caveats[0]


def test_ties_go_to_robustness_and_without_checks_every_method_competes() -> None:
    table = _table(
        {
            "a": {"deletion": 0.1, "faithfulness_correlation": 0.5, "max_sensitivity": 0.9},
            "b": {"deletion": 0.2, "faithfulness_correlation": 0.6, "max_sensitivity": 0.1},
        }
    )
    v = decide(table)  # both mean faithfulness rank 1.5; b is more robust
    assert v.best == "b"
    assert v.failed_sanity == {}
    assert "mean robustness rank is 1.0" in v.text


def test_when_every_method_fails_the_best_is_still_named_with_a_warning() -> None:
    table = _table(
        {
            "a": {"deletion": 0.1, "model_randomisation": 0.9},
            "b": {"deletion": 0.2, "model_randomisation": 0.7},
        }
    )
    v = decide(table)
    assert v.best == "a" and set(v.failed_sanity) == {"a", "b"}
    assert "recommendation is weak" in v.text


def test_no_faithfulness_metric_no_recommendation() -> None:
    v = decide(_table({"a": {"max_sensitivity": 0.2}}))
    assert v.best is None and "No faithfulness metric" in v.text


def test_caveats() -> None:
    weak = GlobalExplanation(
        importance=np.ones(3), method="surrogate_tree", fidelity=0.72, info={"stability": 0.4}
    )
    agreement = pd.DataFrame(
        {
            "method_a": ["perm", "perm", "tree"],
            "method_b": ["tree", "shap", "shap"],
            "spearman": [0.9, 0.2, 0.3],
            # tree vs shap: low Spearman (a sparse tree) but the same top features: no caveat
            "top_k_overlap": [1.0, 0.2, 0.8],
        }
    )
    table = _table({"sg": {"seed_consistency": 0.5}, "ig": {"seed_consistency": 0.95}})
    out = caveats(
        surrogate=weak,
        agreement=agreement,
        table=table,
        performance={"expected_calibration_error": 0.15, "balanced_accuracy": 0.6},
    )
    text = "\n".join(out)
    assert len(out) == 6
    assert "only 72% of held-out rows" in text
    assert "mean overlap 0.40" in text
    assert "perm and shap disagree" in text and "top-k overlap 0.20" in text
    assert "perm and tree" not in text and "tree and shap" not in text
    assert "sg is stochastic" in text and "ig is stochastic" not in text
    assert "0.150 > 0.1" in text and "balanced accuracy 0.60" in text
    good = GlobalExplanation(importance=np.ones(3), fidelity=0.95, info={"stability": 0.9})
    assert caveats(surrogate=good, performance={"expected_calibration_error": 0.02}) == []
