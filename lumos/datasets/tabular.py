"""Tabular datasets: a real benchmark (breast cancer) and a synthetic credit table with known truth.

Every loader returns a :class:`~lumos.datasets.Dataset`. The private helpers at the top
(argument checks and the stratified split) are shared with :mod:`lumos.datasets.images`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from lumos._random import RandomState, check_random_state
from lumos._validation import check_test_size
from lumos.datasets._base import Dataset
from lumos.errors import InputError, ShapeError

__all__ = ["breast_cancer", "synthetic_credit"]


# --------------------------------------------------------------------------------------
# Shared private helpers
# --------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(
            f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__}); "
            f"pass e.g. {name}={max(minimum, 1)}."
        )
    if int(value) < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}; pass a larger {name}.")
    return int(value)


def _check_float(name: str, value: Any, minimum: float = 0.0) -> float:
    """Return ``value`` as a finite ``float >= minimum``, else raise :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(
            f"{name} must be a real number >= {minimum}, got {value!r} ({type(value).__name__})."
        )
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise InputError(f"{name} must be a finite number >= {minimum}, got {value}.")
    return value


def _stratified_split(
    y: np.ndarray, test_size: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled stratified train/test indices drawn with ``rng``.

    Each class contributes to the test split in proportion to its size (largest-remainder
    rounding). When some class has fewer than two members, or there are fewer rows than
    classes in a split, the split falls back to a plain random one.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Class labels.
    test_size : float or int
        Fraction of rows in (0, 1), or number of rows, for the test split.
    rng : numpy.random.Generator

    Returns
    -------
    train_idx, test_idx : ndarray of int64
    """
    n = len(y)
    n_test = check_test_size(test_size, n)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    stratify = counts.min() >= 2 and n_test >= len(classes) and n - n_test >= len(classes)
    if not stratify:
        perm = rng.permutation(n)
        return perm[n_test:].astype(np.int64), perm[:n_test].astype(np.int64)
    ideal = counts * n_test / n
    per_class = np.floor(ideal).astype(np.int64)
    remainder = n_test - int(per_class.sum())
    if remainder > 0:
        order = np.argsort(-(ideal - per_class), kind="stable")
        per_class[order[:remainder]] += 1
    # Keep at least one row of every class on each side.
    per_class = np.clip(per_class, 1, counts - 1)
    test_parts, train_parts = [], []
    for k in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == k))
        test_parts.append(members[: per_class[k]])
        train_parts.append(members[per_class[k] :])
    train_idx = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    test_idx = rng.permutation(np.concatenate(test_parts)).astype(np.int64)
    return train_idx, test_idx


def _standardize(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardise both splits with the train split's mean and (population) std."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    return (x_train - mean) / scale, (x_test - mean) / scale, mean, scale


def _sigmoid(t: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(t, dtype=np.float64)
    pos = t >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-t[pos]))
    e = np.exp(t[~pos])
    out[~pos] = e / (1.0 + e)
    return out


# --------------------------------------------------------------------------------------
# Breast cancer
# --------------------------------------------------------------------------------------


def breast_cancer(*, test_size: float | int = 0.25, random_state: RandomState = 0) -> Dataset:
    """Wisconsin diagnostic breast-cancer data, split and standardised.

    The 569 rows and 30 features of :func:`sklearn.datasets.load_breast_cancer` (bundled
    with scikit-learn, no download), split into train and test stratified by class, then
    standardised with a scaler fitted on the train split only.

    Parameters
    ----------
    test_size : float or int, default 0.25
        Fraction of rows in (0, 1), or number of rows, put in the test split.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the split.

    Returns
    -------
    Dataset
        ``x_train`` of shape (n_train, 30) and ``x_test`` of shape (n_test, 30), float64;
        ``y_*`` int64 with 0 = malignant, 1 = benign (scikit-learn's order);
        ``feature_names`` the 30 scikit-learn names; ``preprocessing`` holds the train
        ``mean`` and ``scale`` (each of shape (30,)) so ``x * scale + mean`` gives the
        original units. ``ground_truth`` is empty and ``oracle`` is ``None``.

    Raises
    ------
    InputError
        If ``test_size`` or ``random_state`` is invalid.
    """
    from sklearn.datasets import load_breast_cancer

    rng = check_random_state(random_state)
    raw = load_breast_cancer()
    x = np.asarray(raw.data, dtype=np.float64)
    y = np.asarray(raw.target, dtype=np.int64)
    train_idx, test_idx = _stratified_split(y, test_size, rng)
    x_train, x_test, mean, scale = _standardize(x[train_idx], x[test_idx])
    return Dataset(
        name="breast_cancer",
        x_train=x_train,
        y_train=y[train_idx],
        x_test=x_test,
        y_test=y[test_idx],
        feature_names=[str(f) for f in raw.feature_names],
        class_names=["malignant", "benign"],
        task="classification",
        description=(
            "Wisconsin diagnostic breast-cancer data (UCI; W. N. Street, W. H. Wolberg and "
            "O. L. Mangasarian, 1993) as bundled with scikit-learn "
            "(sklearn.datasets.load_breast_cancer): 569 fine-needle-aspirate images described "
            "by 30 real-valued features (mean, standard error and worst value of ten nucleus "
            "measurements), labelled malignant (0, 212 rows) or benign (1, 357 rows). Rows "
            f"were split into train ({len(train_idx)}) and test ({len(test_idx)}) stratified "
            "by class, and every feature was standardised with a StandardScaler fitted on the "
            "train split only; preprocessing['mean'] and preprocessing['scale'] map values "
            "back to the original units (x * scale + mean)."
        ),
        ground_truth={},
        oracle=None,
        preprocessing={"mean": mean, "scale": scale},
    )


# --------------------------------------------------------------------------------------
# Synthetic credit
# --------------------------------------------------------------------------------------

#: Column order of :func:`synthetic_credit`; relevant and irrelevant features alternate.
CREDIT_FEATURES: tuple[str, ...] = (
    "age",
    "income",
    "savings",
    "debt_to_income",
    "application_hour",
    "credit_utilization",
    "n_dependents",
    "late_payments",
    "region_code",
    "credit_history_years",
)

#: Coefficients of the default logit on the raw (unstandardised) scale.
CREDIT_COEFFICIENTS: dict[str, float] = {
    "intercept": -1.0,
    "income": -0.08,
    "debt_to_income": 12.0,
    "credit_utilization": 6.0,
    "late_payments": 0.8,
    "credit_history_years": -0.3,
    "credit_utilization*late_payments": 3.0,
}

_INTERACTION = ("credit_utilization", "late_payments")


def _credit_logit(x_raw: np.ndarray) -> np.ndarray:
    """Default logit of raw-unit rows ``x_raw`` of shape (n, 10)."""
    col = {name: x_raw[:, j] for j, name in enumerate(CREDIT_FEATURES)}
    logit = np.full(x_raw.shape[0], CREDIT_COEFFICIENTS["intercept"], dtype=np.float64)
    for name, coef in CREDIT_COEFFICIENTS.items():
        if name == "intercept":
            continue
        if "*" in name:
            a, b = name.split("*")
            logit += coef * col[a] * col[b]
        else:
            logit += coef * col[name]
    return logit


def _credit_raw(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` rows of raw credit features, shape (n, 10), from latent normals."""
    z = rng.standard_normal((n, 7))
    rho = 0.85  # latent correlation of income and savings (about 0.8 after exp)
    income = np.exp(np.log(52.0) + 0.4 * z[:, 0])  # thousands per year
    savings = np.exp(np.log(15.0) + 0.7 * (rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]))
    debt_to_income = _sigmoid(-1.0 + 0.55 * z[:, 2])
    credit_utilization = _sigmoid(-0.4 + 1.1 * z[:, 3])
    late_payments = rng.poisson(np.exp(-0.5 + 0.6 * z[:, 4])).astype(np.float64)
    credit_history_years = 0.5 + 30.0 * _sigmoid(-1.2 + 0.9 * z[:, 5])
    age = np.clip(np.round(41.0 + 12.0 * z[:, 6]), 21, 80)
    n_dependents = np.minimum(rng.poisson(1.0, size=n), 6).astype(np.float64)
    application_hour = rng.integers(0, 24, size=n).astype(np.float64)
    region_code = rng.integers(0, 8, size=n).astype(np.float64)
    columns = {
        "age": age,
        "income": income,
        "savings": savings,
        "debt_to_income": debt_to_income,
        "application_hour": application_hour,
        "credit_utilization": credit_utilization,
        "n_dependents": n_dependents,
        "late_payments": late_payments,
        "region_code": region_code,
        "credit_history_years": credit_history_years,
    }
    return np.column_stack([columns[name] for name in CREDIT_FEATURES])


def _make_credit_oracle(
    mean: np.ndarray | None, scale: np.ndarray | None
) -> Callable[[np.ndarray], np.ndarray]:
    """The labelling function, taking rows in the space the dataset is returned in."""
    n_features = len(CREDIT_FEATURES)

    def oracle(x: np.ndarray) -> np.ndarray:
        """Class probabilities [P(repaid), P(default)] of shape (n, 2) for ``x`` (n, 10)."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 1 and arr.shape[0] == n_features:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != n_features:
            raise ShapeError(
                f"the synthetic_credit oracle expects an array of shape (n, {n_features}), "
                f"got {arr.shape}; pass rows with the dataset's {n_features} columns."
            )
        raw = arr if mean is None or scale is None else arr * scale + mean
        p_default = _sigmoid(_credit_logit(raw))
        return np.column_stack([1.0 - p_default, p_default])

    return oracle


def synthetic_credit(
    n: int = 2000,
    *,
    seed: RandomState = 0,
    test_size: float | int = 0.25,
    standardize: bool = True,
) -> Dataset:
    """Synthetic credit-risk table whose label is a known function of known features.

    Ten features in realistic raw units are drawn from latent normals:

    ==  ======================  ===========================================  ==========
    j   name                    distribution (raw units)                     role
    ==  ======================  ===========================================  ==========
    0   age                     years, normal(41, 12) rounded, in [21, 80]   irrelevant
    1   income                  thousands / year, log-normal, median 52      relevant
    2   savings                 thousands, log-normal, corr. ~0.8 w. income  irrelevant
    3   debt_to_income          ratio in (0, 1), mean ~0.28                  relevant
    4   application_hour        int 0..23, uniform                           irrelevant
    5   credit_utilization      ratio in (0, 1), mean ~0.42                  relevant
    6   n_dependents            int 0..6, Poisson(1) capped                  irrelevant
    7   late_payments           count, Poisson with log-normal rate, ~0.7    relevant
    8   region_code             int 0..7, uniform                            irrelevant
    9   credit_history_years    years in (0.5, 30.5), mean ~8.4              relevant
    ==  ======================  ===========================================  ==========

    The default logit is linear in the raw relevant features plus one interaction::

        logit = -1 - 0.08 income + 12 debt_to_income + 6 credit_utilization
                + 0.8 late_payments - 0.3 credit_history_years
                + 3 credit_utilization * late_payments

    and ``y ~ Bernoulli(sigmoid(logit))`` (1 = default). About 42 % of rows default and the
    Bayes accuracy (of the oracle) is about 0.86. ``savings`` is correlated with ``income``
    but does not enter the label.

    Parameters
    ----------
    n : int, default 2000
        Total number of rows (train + test), at least 10.
    seed : int, numpy.random.Generator or None, default 0
        Seed of every random draw (features, labels and split). The same int gives
        identical data.
    test_size : float or int, default 0.25
        Fraction of rows in (0, 1), or number of rows, put in the test split (stratified).
    standardize : bool, default True
        Standardise every column with the train split's mean and std (stored in
        ``preprocessing``). With ``False`` the raw units are returned.

    Returns
    -------
    Dataset
        ``x_train`` (n_train, 10) and ``x_test`` (n_test, 10) float64, ``y_*`` int64,
        ``class_names = ["repaid", "default"]``. ``ground_truth`` holds

        - ``"relevant"``: sorted indices of the features the label depends on,
        - ``"irrelevant"``: the other indices (including the correlated twin ``savings``),
        - ``"noise"``: irrelevant indices that are also independent of the label,
        - ``"correlated_pairs"``: ``[(income, savings)]`` as index tuples,
        - ``"interactions"``: ``[(credit_utilization, late_payments)]`` as index tuples,
        - ``"coefficients"``: name -> raw-scale coefficient, with
          ``"credit_utilization*late_payments"`` and ``"intercept"``,
        - ``"logit_train"`` / ``"logit_test"``: true logits, shapes (n_train,), (n_test,).

        ``oracle(x)`` takes ``x`` of shape (m, 10) in the returned space (standardised or
        raw) and returns probabilities of shape (m, 2): [P(repaid), P(default)].

    Raises
    ------
    InputError
        If ``n < 10`` or ``seed`` / ``test_size`` is invalid.
    """
    n = _check_int("n", n, 10)
    if not isinstance(standardize, bool | np.bool_):
        raise InputError(f"standardize must be True or False, got {standardize!r}.")
    rng = check_random_state(seed)
    x_raw = _credit_raw(n, rng)
    logit = _credit_logit(x_raw)
    y = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    train_idx, test_idx = _stratified_split(y, test_size, rng)

    x_train, x_test = x_raw[train_idx], x_raw[test_idx]
    preprocessing: dict[str, Any] = {}
    mean = scale = None
    if standardize:
        x_train, x_test, mean, scale = _standardize(x_train, x_test)
        preprocessing = {"mean": mean, "scale": scale}

    index = {name: j for j, name in enumerate(CREDIT_FEATURES)}
    relevant = sorted(index[k] for k in CREDIT_COEFFICIENTS if k != "intercept" and "*" not in k)
    irrelevant = sorted(set(range(len(CREDIT_FEATURES))) - set(relevant))
    pairs = [(index["income"], index["savings"])]
    twins = {j for pair in pairs for j in pair}
    ground_truth: dict[str, Any] = {
        "relevant": relevant,
        "irrelevant": irrelevant,
        "noise": [j for j in irrelevant if j not in twins],
        "correlated_pairs": pairs,
        "interactions": [(index[_INTERACTION[0]], index[_INTERACTION[1]])],
        "coefficients": dict(CREDIT_COEFFICIENTS),
        "logit_train": logit[train_idx],
        "logit_test": logit[test_idx],
    }
    how = (
        "every column was standardised with the train split's mean and std "
        "(preprocessing['mean'], preprocessing['scale']; x * scale + mean gives raw units)"
        if standardize
        else "values are in raw units (no scaling)"
    )
    description = (
        f"Synthetic credit-risk table generated by lumos (seed={seed!r}, n={n}): ten "
        "applicant features in realistic units drawn from latent normals (income and savings "
        "in thousands, ratios in (0, 1), counts, years, hour of application, region code). "
        "The label (1 = default, 0 = repaid) is sampled from Bernoulli(sigmoid(logit)) with "
        "a known logit that is linear in income, debt_to_income, credit_utilization, "
        "late_payments and credit_history_years plus a credit_utilization*late_payments "
        "interaction (coefficients in ground_truth['coefficients']); savings is correlated "
        "with income (about 0.8) but unused, and age, application_hour, n_dependents and "
        f"region_code are pure noise. Rows were split into train ({len(train_idx)}) and test "
        f"({len(test_idx)}) stratified by label; {how}."
    )
    return Dataset(
        name="synthetic_credit",
        x_train=x_train,
        y_train=y[train_idx],
        x_test=x_test,
        y_test=y[test_idx],
        feature_names=list(CREDIT_FEATURES),
        class_names=["repaid", "default"],
        task="classification",
        description=description,
        ground_truth=ground_truth,
        oracle=_make_credit_oracle(mean, scale),
        preprocessing=preprocessing,
    )
