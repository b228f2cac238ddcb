"""The :class:`Dataset` container returned by every loader in :mod:`lumos.datasets`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Dataset:
    """A train/test split with names and, where known, the ground truth of what matters.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"breast_cancer"``.
    x_train : ndarray of shape (n_train, *input_shape)
    y_train : ndarray of shape (n_train,)
        Integer class labels (classification) or float targets (regression).
    x_test : ndarray of shape (n_test, *input_shape)
    y_test : ndarray of shape (n_test,)
    feature_names : list of str or None
        One name per feature for tabular data; ``None`` for images.
    class_names : list of str or None
        One name per class for classification.
    task : {"classification", "regression"}
    description : str
        One paragraph saying where the data comes from and how it was prepared.
    ground_truth : dict
        What is known to matter, when the data is synthetic. Keys depend on the loader
        (for example ``"relevant"``: indices of the features the label depends on,
        ``"masks_train"`` / ``"masks_test"``: boolean masks of the class-deciding region).
    oracle : callable or None
        The known labelling function, mapping ``x`` of shape (n, *input_shape) to class
        probabilities of shape (n, n_classes), when the data is synthetic.
    preprocessing : dict
        Arrays describing any fitted preprocessing (for example the scaler's ``mean`` and
        ``scale``), so values can be mapped back to original units.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    task: str = "classification"
    description: str = ""
    ground_truth: dict[str, Any] = field(default_factory=dict)
    oracle: Callable[[np.ndarray], np.ndarray] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input row, without the batch dimension."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of scalar features in one input (product of ``input_shape``)."""
        return int(np.prod(self.input_shape))

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or ``None`` for regression."""
        return None if self.class_names is None else len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
            f"task={self.task!r}, classes={self.n_classes})"
        )
