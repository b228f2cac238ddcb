"""Global feature importance: which features matter to the model as a whole.

- :func:`permutation`: drop in the model's score when a feature (or group) is shuffled.
- :func:`correlation`, :func:`information_gain`, :func:`mutual_information`: filter scores
  of each feature against the labels or the model's predictions.
- :func:`weight_magnitude`: first-layer weight magnitudes of a network or linear model.
- :func:`aggregate`: mean ``|attribution|`` of a local :class:`~lumos.Explanation`.
- :func:`select`: keep the most important features and re-score the model with them.
- :func:`agreement`: do several methods rank the features alike?
- :func:`partial_dependence`: PDP / ICE and ALE curves of chosen features (``kind="pdp"`` or
  ``"ale"``); importance = the curve's variability.

Every score function returns a :class:`~lumos.GlobalExplanation`.
"""

from __future__ import annotations

from lumos.importance._aggregate import FeatureSelection, aggregate, agreement, select
from lumos.importance._permutation import permutation
from lumos.importance._scores import (
    correlation,
    information_gain,
    mutual_information,
    weight_magnitude,
)
from lumos.importance.dependence import partial_dependence

__all__ = [
    "FeatureSelection",
    "aggregate",
    "agreement",
    "correlation",
    "information_gain",
    "mutual_information",
    "partial_dependence",
    "permutation",
    "select",
    "weight_magnitude",
]
