"""Global surrogates: interpretable models fitted to a model's predictions, with fidelity.

:func:`fit` evaluates the model once on a data sample, trains a decision tree, random
forest, sparse linear / logistic model or linear SVM on its answers (its predicted class,
or one output), and returns a :class:`~lumos.GlobalExplanation` with the held-out fidelity,
the rules (trees) or formula (linear kinds), feature importances, the fidelity–complexity
curve and a bootstrap stability check.

>>> from lumos import surrogate                                      # doctest: +SKIP
>>> s = surrogate.fit(model, x, kind="tree", max_depth=3, random_state=0)  # doctest: +SKIP
>>> s.fidelity, print(s.rules)                                       # doctest: +SKIP
"""

from __future__ import annotations

from lumos.surrogate._fit import IMPORTANCES, KINDS, fit

__all__ = ["IMPORTANCES", "KINDS", "fit"]
