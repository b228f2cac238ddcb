"""Local explanation methods, one family per module, found by name in a registry."""

from lumos.attribution._base import Explainer, available_methods, explain, get_explainer, register
from lumos.attribution.lime import Lime
from lumos.attribution.occlusion import FeatureAblation, Occlusion

__all__ = [
    "Explainer",
    "FeatureAblation",
    "Lime",
    "Occlusion",
    "available_methods",
    "explain",
    "get_explainer",
    "register",
]
