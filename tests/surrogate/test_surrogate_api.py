"""surrogate.fit: known relevant features, stability, reproducibility, inputs and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lumos
from lumos import GlobalExplanation, datasets, surrogate
from lumos.errors import (
    InputError,
    ModelError,
    NonFiniteError,
    ShapeError,
    TargetError,
    UnknownNameError,
)


@pytest.fixture(scope="module")
def credit():
    """synthetic_credit (1000 rows); the model is the data's own oracle P(default | x)."""
    ds = datasets.synthetic_credit(1000, seed=0)
    model = lumos.wrap(ds.oracle, feature_names=ds.feature_names, class_names=ds.class_names)
    return model, np.vstack([ds.x_train, ds.x_test]), ds.ground_truth


# ----------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("tree", {}),
        ("forest", {"max_depth": 6, "n_estimators": 30}),
        ("linear", {}),
        ("svm", {}),
        ("tree", {"importance": "permutation"}),
    ],
)
def test_relevant_credit_features_rank_above_irrelevant_ones(credit, kind, options) -> None:
    # The oracle's class depends on 5 of 10 features. Top-5 recall of the relevant set is 1.0
    # for every kind, and every relevant feature outranks every irrelevant one. Measured
    # (min relevant / max irrelevant importance): tree 0.11 / 0.023, forest 0.135 / 0.069,
    # linear 3.24 / 0.137, svm 1.5 / 0.082, tree with permutation importance 0.015 / 0.004.
    model, x, truth = credit
    relevant, irrelevant = truth["relevant"], truth["irrelevant"]
    s = surrogate.fit(model, x, kind=kind, n_bootstrap=3, random_state=0, **options)
    top5 = set(s.ranking[:5].tolist())
    recall = len(top5 & set(relevant)) / len(relevant)
    assert recall == 1.0
    assert s.importance[relevant].min() > s.importance[irrelevant].max()
    # every bootstrap fit found the same top-5 (measured stability 1.0 for each kind)
    np.testing.assert_array_equal(s.extras["top_k_frequency"][relevant], 1.0)
    assert s.info["stability"] == 1.0
    assert sorted(s.info["top_k_features"]) == sorted(truth_names(relevant, model))
    assert s.fidelity >= 0.8  # measured: tree 0.820, forest 0.912, linear 0.972, svm 0.980


def truth_names(indices, model) -> list[str]:
    return [model.feature_names[j] for j in indices]


# ----------------------------------------------------------------------------- stability
def test_stability_numbers_match_a_naive_recomputation(credit) -> None:
    model, x, _ = credit
    s = surrogate.fit(model, x, kind="tree", max_depth=3, n_bootstrap=6, top_k=3, random_state=1)
    boot = s.extras["bootstrap_importance"]
    assert boot.shape == (6, 10)
    sets = []
    for row in boot:  # top-3 by importance, keeping only features the fit used
        ranked = sorted(range(10), key=lambda j: (-row[j], j))[:3]
        sets.append({j for j in ranked if row[j] > 0})
    freq = np.array([sum(j in st for st in sets) / 6 for j in range(10)])
    np.testing.assert_array_equal(s.extras["top_k_frequency"], freq)
    pairs = [len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1 :] if a | b]
    assert s.info["stability"] == pytest.approx(np.mean(pairs), abs=1e-15)
    np.testing.assert_allclose(s.stderr, boot.std(axis=0, ddof=1), atol=0)
    # each bootstrap tree sums its impurity importance to one
    np.testing.assert_allclose(boot.sum(axis=1), 1.0, atol=1e-12)


def test_permutation_importance_is_zero_for_unused_features(credit) -> None:
    model, x, _ = credit
    s = surrogate.fit(
        model, x, kind="tree", max_depth=2, importance="permutation", n_bootstrap=2, random_state=0
    )
    tree = s.estimator.tree_
    used = set(tree.feature[tree.children_left != -1].tolist())
    unused = [j for j in range(10) if j not in used]
    np.testing.assert_array_equal(s.importance[unused], 0.0)  # shuffling them changes nothing
    assert np.all(s.importance[sorted(used)] > 0)
    assert s.info["importance"] == "permutation"


# ----------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("kind", ["tree", "forest", "linear", "svm"])
def test_same_random_state_same_result(credit, kind) -> None:
    model, x, _ = credit
    x = x[:300]
    kw = {"n_bootstrap": 3, "n_estimators": 10} if kind == "forest" else {"n_bootstrap": 3}
    a = surrogate.fit(model, x, kind=kind, random_state=7, **kw)
    b = surrogate.fit(model, x, kind=kind, random_state=7, **kw)
    c = surrogate.fit(model, x, kind=kind, random_state=np.random.default_rng(7), **kw)
    d = surrogate.fit(model, x, kind=kind, random_state=np.random.default_rng(7), **kw)
    for one, two in ((a, b), (c, d)):
        np.testing.assert_array_equal(one.importance, two.importance)
        np.testing.assert_array_equal(one.stderr, two.stderr)
        assert one.fidelity == two.fidelity and one.rules == two.rules
        assert one.formula == two.formula and one.info == two.info
        for key in one.extras:
            np.testing.assert_array_equal(one.extras[key], two.extras[key])
    other = surrogate.fit(model, x, kind=kind, random_state=8, **kw)
    assert not np.array_equal(other.extras["test_index"], a.extras["test_index"])


def test_one_batched_model_call() -> None:
    calls = []

    def model(a):
        calls.append(len(a))
        return np.stack([a[:, 0] > 0, a[:, 0] <= 0], axis=1).astype(float)

    x = np.random.default_rng(0).normal(size=(80, 3))
    s = surrogate.fit(model, x, kind="linear", n_bootstrap=4, random_state=0)
    assert calls == [80]  # bootstraps and curves reuse the model's answers
    test = s.extras["test_index"]
    assert s.fidelity == np.mean(s.estimator.predict(x[test]) == (x[test, 0] <= 0))


# ----------------------------------------------------------------------------- inputs
def test_dataframe_names_and_save_load(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["height", "weight", "age"])

    def model(a):
        return 2.0 * np.asarray(a)[:, 1] - np.asarray(a)[:, 2] + 0.5

    s = surrogate.fit(model, frame, kind="linear", n_bootstrap=2, random_state=0, precision=3)
    assert s.feature_names == ["height", "weight", "age"]
    assert s.formula.splitlines()[0] == "f(x) = 2 * weight - 1 * age + 0.5"
    loaded = GlobalExplanation.load(s.save(tmp_path / "surrogate"))
    assert loaded.formula == s.formula and loaded.info == s.info and loaded.params == s.params
    np.testing.assert_array_equal(loaded.curve, s.curve)
    assert loaded.estimator is None  # the fitted model is not saved


def test_images_are_flattened() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 1, 2, 2))

    def model(a):
        return np.stack([a[:, 0, 1, 0] > 0.3, a[:, 0, 1, 0] <= 0.3], axis=1).astype(float)

    s = surrogate.fit(model, x, kind="tree", max_depth=1, n_bootstrap=0, random_state=0)
    assert s.feature_names == ["x[0,0,0]", "x[0,0,1]", "x[0,1,0]", "x[0,1,1]"]
    assert s.rules.splitlines()[0].startswith("if x[0,1,0] <= 0.3")
    assert s.fidelity == 1.0


def test_single_output_classifier_and_regression_on_a_class_output() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))

    def sigmoid(a):
        return 1 / (1 + np.exp(-(2 * a[:, 0] - a[:, 1])))

    one = lumos.wrap(sigmoid, output_kind="probability", class_names=["spam"])
    s = surrogate.fit(one, x, kind="linear", n_bootstrap=0, random_state=0)
    assert s.info["task"] == "classification" and s.info["classes"] == ["not spam", "spam"]
    test = s.extras["test_index"]
    assert s.fidelity == np.mean(s.estimator.predict(x[test]) == (sigmoid(x[test]) > 0.5))
    assert "log-odds log(P[spam] / P[not spam])" in s.formula
    # target= imitates one output column with a regressor (R² against P(spam))
    two = lumos.wrap(lambda a: np.stack([1 - sigmoid(a), sigmoid(a)], axis=1))
    r = surrogate.fit(two, x, kind="tree", target=1, n_bootstrap=0, random_state=0)
    assert r.info["task"] == "regression" and r.info["target"] == 1
    assert r.info["output"] == "the model's probability 1"
    p = sigmoid(x[r.extras["test_index"]])
    pred = r.estimator.predict(x[r.extras["test_index"]])
    assert r.fidelity == pytest.approx(1 - np.sum((p - pred) ** 2) / np.sum((p - p.mean()) ** 2))


def test_labels_by_class_name() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    model = lumos.wrap(
        lambda a: np.stack([a[:, 0] > 0, a[:, 0] <= 0], axis=1).astype(float),
        class_names=["up", "down"],
    )
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "up", "down")
    s = surrogate.fit(model, x, y=y, kind="tree", max_depth=1, n_bootstrap=0, random_state=0)
    test = s.extras["test_index"]
    truth = (y[test] == "down").astype(int)
    assert s.info["accuracy"] == np.mean(s.estimator.predict(x[test]) == truth)
    assert s.info["model_accuracy"] == np.mean((x[test, 0] <= 0) == truth)


# ----------------------------------------------------------------------------- errors
def _clf(a):
    return np.stack([a[:, 0] > 0, a[:, 0] <= 0], axis=1).astype(float)


X = np.random.default_rng(0).normal(size=(40, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "trees"}, UnknownNameError, "Did you mean 'tree'"),
        ({"importance": "gini"}, UnknownNameError, "native, permutation"),
        ({"max_depth": 0}, InputError, "max_depth must be an int >= 1"),
        ({"max_depth": 2.5}, InputError, "max_depth=3"),
        ({"kind": "linear", "max_depth": 3}, InputError, "n_features= or fidelity_target="),
        ({"n_features": 0}, InputError, "n_features must be an int >= 1"),
        ({"n_features": 4}, InputError, "only 3 features"),
        ({"fidelity_target": 0.9}, InputError, "set max_depth"),
        ({"kind": "linear", "fidelity_target": 1.5}, InputError, "in (0, 1]"),
        ({"kind": "linear", "fidelity_target": 0.9, "n_features": 2}, InputError, "not both"),
        ({"n_estimators": 10}, InputError, "kind='forest' only"),
        ({"n_bootstrap": 1}, InputError, "at least 2"),
        ({"n_bootstrap": -1}, InputError, "n_bootstrap must be an int >= 0"),
        ({"test_size": 1.0}, InputError, "strictly between 0 and 1"),
        ({"test_size": 38}, InputError, "at least 2 held-out and 5 training rows"),
        ({"precision": 0}, InputError, "precision=4"),
        ({"top_k": 0}, InputError, "top_k=5"),
        ({"feature_names": ["a", "b"]}, ShapeError, "one per feature"),
        ({"class_names": ["a", "b", "c"]}, ShapeError, "one name per output"),
        ({"y": np.zeros(39)}, ShapeError, "one label per row"),
        ({"y": np.full(40, 5)}, TargetError, "outside 0..1"),
        ({"y": np.array(["up"] * 40)}, TargetError, "not class names"),
        ({"target": 2}, TargetError, "out of range"),
        ({"random_state": "seed"}, InputError, "random_state"),
    ],
)
def test_bad_options_raise_typed_errors(kwargs, error, message) -> None:
    with pytest.raises(error, match=None) as info:
        surrogate.fit(_clf, X, **kwargs)
    assert message in str(info.value)


def test_bad_data_raise_typed_errors() -> None:
    with pytest.raises(InputError, match="at least 10"):
        surrogate.fit(_clf, X[:9])
    with pytest.raises(NonFiniteError):
        surrogate.fit(_clf, np.where(X > 1.5, np.nan, X))
    with pytest.raises(ShapeError):
        surrogate.fit(lumos.wrap(_clf, input_shape=(4,)), X)
    with pytest.raises(InputError, match="predicts 'class 0' for every row"):
        surrogate.fit(_clf, np.abs(X) + 0.1)
    with pytest.raises(InputError, match="output is constant"):
        surrogate.fit(lambda a: np.ones(len(a)), X)
    with pytest.raises(TargetError, match="pass target="):
        surrogate.fit(lumos.wrap(lambda a: a[:, :2], output_kind="regression"), X)
    with pytest.raises(ModelError, match="NaN or infinite outputs"):
        surrogate.fit(lambda a: np.where(a[:, 0] > 1, np.nan, a[:, 0]), X)
