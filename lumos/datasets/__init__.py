"""Datasets for explaining models: real benchmarks and synthetic data with known ground truth.

Every loader returns a :class:`Dataset` with train/test splits, names, a description of
where the data comes from and, for synthetic data, the ground truth of what decides the label.

- :func:`breast_cancer`: scikit-learn's Wisconsin breast-cancer table, standardised.
- :func:`digits`: scikit-learn's 8x8 digits upsampled to ``size`` x ``size``.
- :func:`synthetic_credit`: credit-risk table whose label is a known logistic function.
- :func:`synthetic_shapes`: images whose class is decided only by a shape inside a known mask.
"""

from __future__ import annotations

from lumos.datasets._base import Dataset
from lumos.datasets.images import digits, synthetic_shapes
from lumos.datasets.tabular import breast_cancer, synthetic_credit

__all__ = ["Dataset", "breast_cancer", "digits", "synthetic_credit", "synthetic_shapes"]
