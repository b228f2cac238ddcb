"""Linear and SVM surrogates: exact recovery, formulas that reproduce the estimator, sparsity."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import lumos
from lumos import surrogate


def parse_equation(rhs: str, names: list[str]) -> tuple[np.ndarray, float]:
    """``w1 * a - w2 * b + c`` → (weights (d,), intercept)."""
    rhs = rhs if rhs.startswith("-") else "+ " + rhs
    rhs = re.sub(r"^-(?=\d)", "- ", rhs)
    weights = np.zeros(len(names))
    *terms, last = re.split(r" (?=[+-] )", rhs)
    for term in terms:
        sign, value, name = re.fullmatch(r"([+-]) (\S+) \* (.+)", term).groups()
        weights[names.index(name)] = float(value) * (1 if sign == "+" else -1)
    sign, value = re.fullmatch(r"([+-]) (\S+)", last).groups()
    return weights, float(value) * (1 if sign == "+" else -1)


def parse_formula(formula: str, names: list[str]) -> dict[str, tuple[np.ndarray, float]]:
    """Each ``f(x) = ...`` / ``f[c](x) = ...`` line → {"" or c: (weights, intercept)}."""
    out = {}
    for line in formula.splitlines():
        m = re.fullmatch(r"f(?:\[(.+)\])?\(x\) = (.+)", line)
        if m:
            out[m.group(1) or ""] = parse_equation(m.group(2), names)
    return out


# ----------------------------------------------------------------------------- regression
@pytest.fixture(scope="module")
def linear_model():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)) * [1.0, 10.0, 0.1, 1.0, 5.0, 2.0] + [0, 3, -1, 0, 0, 1]
    w = rng.normal(size=6)
    b = 0.7
    return LinearRegression().fit(x, x @ w + b), x, w, b


def test_linear_surrogate_recovers_a_linear_model(linear_model) -> None:
    model, x, w, b = linear_model
    names = [f"x{j}" for j in range(6)]
    s = surrogate.fit(model, x, kind="linear", precision=12, n_bootstrap=3, random_state=0)
    assert s.info["task"] == "regression" and s.info["n_nonzero"] == 6
    assert s.fidelity == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.estimator.coef_, w, atol=1e-9)
    assert s.estimator.intercept_ == pytest.approx(b, abs=1e-9)
    weights, intercept = parse_formula(s.formula, names)[""]
    np.testing.assert_allclose(weights, w, atol=1e-6)  # the formula's printed numbers
    assert intercept == pytest.approx(b, abs=1e-6)
    assert "approximates the model's output" in s.formula
    # importance = |w| * std of the feature on the training rows
    train = s.extras["train_index"]
    np.testing.assert_allclose(s.importance, np.abs(w) * x[train].std(axis=0), rtol=1e-9)
    # the formula's terms come by decreasing importance
    rhs = s.formula.splitlines()[0].split(" = ", 1)[1]
    assert re.findall(r"\* (\S+)", rhs) == [names[j] for j in np.argsort(-s.importance)]


def test_sparse_linear_regression_picks_the_true_support() -> None:
    # y depends on 3 of 8 features; n_features=3 must find exactly those, unshrunk
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8))
    w = np.array([0.0, 2.0, 0.0, -1.5, 0.0, 0.0, 0.8, 0.0])

    def model(a):
        return a @ w - 0.3

    s = surrogate.fit(model, x, kind="linear", n_features=3, n_bootstrap=4, random_state=0)
    np.testing.assert_allclose(s.estimator.coef_, w, atol=1e-10)  # relaxed lasso: no shrinkage
    assert s.fidelity == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(s.extras["top_k_frequency"][[1, 3, 6]], 1.0)
    np.testing.assert_array_equal(s.extras["top_k_frequency"][[0, 2, 4, 5, 7]], 0.0)
    # top-5 sets hold only the 3 features with non-zero weight, so every pair overlaps fully
    assert s.info["stability"] == 1.0
    # curve: one point per sparsity level, complexities increasing, best R² reached at 3
    curve = s.curve
    assert np.all(np.diff(curve[:, 0]) > 0) and curve[0, 0] == 0
    assert curve[curve[:, 0] == 3, 1][0] == pytest.approx(1.0, abs=1e-12)
    assert np.all(curve[curve[:, 0] < 3, 1] < 0.99)


def test_svm_surrogate_of_a_linear_regression(linear_model) -> None:
    model, x, w, b = linear_model
    s = surrogate.fit(model, x, kind="svm", n_bootstrap=0, random_state=0)
    # epsilon-insensitive SVR (epsilon 0, C=1) on standardised data fits the noise-free
    # linear output exactly: measured R² 1.0 and a largest weight error of 4e-10
    assert s.fidelity > 1 - 1e-9
    np.testing.assert_allclose(s.estimator.coef_, w, atol=1e-6)
    weights, intercept = parse_formula(s.formula, [f"x{j}" for j in range(6)])[""]
    np.testing.assert_allclose(weights, s.estimator.coef_, rtol=1e-3)  # 4 significant digits
    assert intercept == pytest.approx(float(s.estimator.intercept_[0]), rel=1e-3)
    assert intercept == pytest.approx(b, rel=1e-3)
    assert "linear support-vector regression" in s.formula


# ----------------------------------------------------------------------------- classification
def _logit_model(w: np.ndarray, b: float):
    def model(a):
        z = a @ w + b
        return np.stack([np.zeros_like(z), z], axis=1)  # logits of classes "no", "yes"

    return lumos.wrap(model, output_kind="logit", class_names=["no", "yes"])


@pytest.mark.parametrize("kind", ["linear", "svm"])
def test_binary_formula_reproduces_the_estimator(kind: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5)) * [1.0, 3.0, 0.5, 1.0, 2.0]
    w = np.array([1.0, -0.5, 0.0, 2.0, 0.0])
    model = _logit_model(w, 0.2)
    names = [f"x{j}" for j in range(5)]
    s = surrogate.fit(model, x, kind=kind, precision=12, n_bootstrap=0, random_state=0)
    test = s.extras["test_index"]
    model_class = (x[test] @ w + 0.2 > 0).astype(int)
    predicted = s.estimator.predict(x[test])
    assert s.fidelity == np.mean(predicted == model_class)
    assert s.fidelity >= 0.97  # a linear boundary; measured 1.0 for both kinds
    weights, intercept = parse_formula(s.formula, names)[""]
    f = x[test] @ weights + intercept
    np.testing.assert_allclose(f, s.estimator.decision_function(x[test]), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.where(f > 0, 1, 0), predicted)
    assert "predicts yes when f(x) > 0, else no" in s.formula
    assert ("log-odds log(P[yes] / P[no])" in s.formula) == (kind == "linear")
    # the surrogate's weights point the model's way: cosine with w near 1
    coef = s.estimator.coef_[0]
    assert coef @ w / np.linalg.norm(coef) / np.linalg.norm(w) > 0.99
    np.testing.assert_allclose(
        s.importance, np.abs(coef) * x[s.extras["train_index"]].std(axis=0), rtol=1e-12
    )


def test_multiclass_formula_reproduces_the_estimator() -> None:
    rng = np.random.default_rng(0)
    weights_true = rng.normal(size=(4, 3))

    def model(a):
        z = a @ weights_true
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    x = rng.normal(size=(300, 4))
    s = surrogate.fit(
        model,
        x,
        kind="linear",
        class_names=["a", "b", "c"],
        precision=12,
        n_bootstrap=0,
        random_state=0,
    )
    equations = parse_formula(s.formula, [f"x{j}" for j in range(4)])
    assert sorted(equations) == ["a", "b", "c"]
    test = s.extras["test_index"]
    scores = np.stack([x[test] @ equations[c][0] + equations[c][1] for c in "abc"], axis=1)
    np.testing.assert_allclose(scores, s.estimator.decision_function(x[test]), atol=1e-9)
    np.testing.assert_array_equal(scores.argmax(axis=1), s.estimator.predict(x[test]))
    assert s.fidelity == np.mean(s.estimator.predict(x[test]) == model(x[test]).argmax(axis=1))
    assert s.fidelity >= 0.9  # measured 0.96 (75 held-out rows)
    assert "predicts the class with the largest f[c](x)" in s.formula


def test_sparsity_by_n_features_and_by_fidelity_target() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(500, 10))
    w = np.array([3.0, -2.0, 1.0, 0.5, 0.25, 0, 0, 0, 0, 0])
    model = _logit_model(w, 0.0)
    for k in (1, 2, 4):
        s = surrogate.fit(model, x, kind="linear", n_features=k, n_bootstrap=0, random_state=0)
        assert 1 <= s.info["n_nonzero"] <= k
        assert (
            len(parse_formula(s.formula, [f"x{j}" for j in range(10)])[""][0].nonzero()[0])
            == (s.info["n_nonzero"])
        )
        # the best training agreement among the path points with at most k features
        train_curve = s.extras["curve_train"]
        best = train_curve[train_curve[:, 0] <= k, 1].max()
        assert s.info["fidelity_train"] == pytest.approx(best, abs=1e-12)
    # the leading features enter first: with one feature it is x0
    one = surrogate.fit(model, x, kind="linear", n_features=1, n_bootstrap=0, random_state=0)
    assert np.flatnonzero(one.estimator.coef_[0]).tolist() == [0]
    target = 0.9
    s = surrogate.fit(model, x, kind="svm", fidelity_target=target, n_bootstrap=0, random_state=0)
    assert s.info["fidelity_target_reached"] is True
    assert s.info["fidelity_train"] >= target
    train_curve = s.extras["curve_train"]
    sparser = train_curve[train_curve[:, 0] < s.info["n_nonzero"], 1]
    assert np.all(sparser < target)  # no sparser level reaches the target
    assert one.info["fidelity_target_reached"] is None  # no target asked


def test_fidelity_target_not_reached_is_reported() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))

    def model(a):
        return np.sin(3 * a[:, 0]) * a[:, 1]

    s = surrogate.fit(model, x, kind="linear", fidelity_target=0.99, n_bootstrap=0)
    assert s.info["fidelity_target_reached"] is False
    assert s.info["fidelity_train"] == pytest.approx(s.extras["curve_train"][:, 1].max())
