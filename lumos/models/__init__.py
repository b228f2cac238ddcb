"""Adapters that turn any model into one :class:`Model` protocol."""

from lumos.models.base import OUTPUT_KINDS, Model, wrap
from lumos.models.loading import load_model

__all__ = ["OUTPUT_KINDS", "Model", "load_model", "wrap"]
