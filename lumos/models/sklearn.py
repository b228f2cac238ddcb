"""Adapter for scikit-learn estimators and pipelines (black boxes)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from lumos._validation import check_name
from lumos.errors import ModelError
from lumos.models.base import Model

_METHODS = ("predict_proba", "decision_function", "predict")


class SklearnModel(Model):
    """A fitted scikit-learn estimator or pipeline as a lumos :class:`Model`.

    Classifiers answer with ``predict_proba`` (output kind ``"probability"``) when they have
    it, else ``decision_function`` (``"logit"``); regressors with ``predict``
    (``"regression"``). Pass ``method=`` to choose. A classifier that only has ``predict``
    answers with one-hot predicted labels. Feature and class names come from the estimator
    (``feature_names_in_``, ``classes_``) unless given.
    """

    framework = "sklearn"
    extra_hints = ("method",)

    def __init__(self, estimator: Any, *, method: str | None = None, **hints: Any) -> None:
        if method is None:
            method = next((m for m in _METHODS if hasattr(estimator, m)), None)
            if method is None:
                raise ModelError(
                    f"{type(estimator).__name__} has none of {_METHODS}; it cannot be explained."
                )
        check_name(method, _METHODS, kind="scikit-learn method")
        if not hasattr(estimator, method):
            raise ModelError(f"{type(estimator).__name__} has no method {method!r}.")
        n_in = getattr(estimator, "n_features_in_", None)
        if n_in is None and hasattr(estimator, "steps"):
            n_in = getattr(estimator.steps[0][1], "n_features_in_", None)
        if n_in is None and not _is_fitted(estimator):
            raise ModelError(
                f"{type(estimator).__name__} is not fitted; call .fit(X, y) before wrapping it."
            )
        names_in = getattr(estimator, "feature_names_in_", None)
        if hints.get("input_shape") is None and n_in is not None:
            hints["input_shape"] = (int(n_in),)
        if hints.get("feature_names") is None and names_in is not None:
            hints["feature_names"] = [str(n) for n in names_in]
        self.classes_ = getattr(estimator, "classes_", None)
        if hints.get("class_names") is None and self.classes_ is not None:
            hints["class_names"] = [str(c) for c in self.classes_]
        if method == "predict_proba":
            kind = "probability"
        elif method == "decision_function":
            kind = "logit"
        elif self.classes_ is not None:
            kind = "probability"
        else:
            kind = "regression"
        hints.setdefault("output_kind", None)
        super().__init__(**hints)
        self.estimator = estimator
        self.method = method
        self._default_kind = kind
        self._names_in = None if names_in is None else list(names_in)

    def _detect_output_kind(self) -> str:
        return self._default_kind

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        x: Any = chunk
        if self._names_in is not None:
            import pandas as pd

            x = pd.DataFrame(chunk, columns=self._names_in)
        if self.method == "predict" and self.classes_ is not None:
            labels = self.estimator.predict(x)
            idx = np.searchsorted(self.classes_, labels)
            out = np.zeros((len(chunk), len(self.classes_)))
            out[np.arange(len(chunk)), idx] = 1.0
            return out
        return np.asarray(getattr(self.estimator, self.method)(x), dtype=np.float64)

    def _update_fingerprint(self, h: Any) -> None:
        h.update(pickle.dumps(self.estimator))  # hashing bytes only; nothing is unpickled


def _is_fitted(estimator: Any) -> bool:
    try:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        return True
    except Exception:
        return False
