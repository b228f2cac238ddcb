"""Local explanation methods, one family per module, found by name in a registry."""

from lumos.attribution._base import Explainer, available_methods, explain, get_explainer, register
from lumos.attribution.cam import GradCam, GradCamPP
from lumos.attribution.gradients import (
    ExpectedGradients,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    VarGrad,
)
from lumos.attribution.lime import Lime
from lumos.attribution.occlusion import FeatureAblation, Occlusion
from lumos.attribution.shapley import ExactShapley, KernelShap, SamplingShapley

__all__ = [
    "ExactShapley",
    "ExpectedGradients",
    "Explainer",
    "FeatureAblation",
    "GradCam",
    "GradCamPP",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "Occlusion",
    "Saliency",
    "SamplingShapley",
    "SmoothGrad",
    "VarGrad",
    "available_methods",
    "explain",
    "get_explainer",
    "register",
]
