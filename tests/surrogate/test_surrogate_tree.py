"""Tree and forest surrogates: fidelity on the reference MLP, exact rules, depth curves."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import lumos
from lumos import datasets, surrogate, zoo

# ----------------------------------------------------------------------------- rules parser
# A rule line is "if <cond> and <cond> ... then <prediction> (<support>)"; each condition is
# "name <= t", "name > t" or "lo < name <= hi". sklearn compares float32(x) <= threshold, so
# the rules are applied to x rounded to float32 (as the fitted estimator sees it).
_CLASS_LEAF = re.compile(r"^(?P<pred>.+) \((?P<pct>\d+)% of (?P<n>\d+) samples\)$")
_VALUE_LEAF = re.compile(r"^(?P<pred>\S+) \(mean of (?P<n>\d+) samples\)$")


def parse_rules(text: str, names: list[str]) -> list[dict]:
    rules = []
    for line in text.splitlines():
        m = re.fullmatch(r"if (.+) then (.+)", line)
        assert m is not None, line
        conds, leaf = m.group(1), m.group(2)
        bounds = []
        if conds != "true":
            for cond in conds.split(" and "):
                if two := re.fullmatch(r"(\S+) < (.+) <= (\S+)", cond):
                    lo, name, hi = float(two.group(1)), two.group(2), float(two.group(3))
                elif le := re.fullmatch(r"(.+) <= (\S+)", cond):
                    lo, name, hi = -np.inf, le.group(1), float(le.group(2))
                elif gt := re.fullmatch(r"(.+) > (\S+)", cond):
                    lo, name, hi = float(gt.group(2)), gt.group(1), np.inf
                else:
                    raise AssertionError(f"unparsable condition {cond!r}")
                bounds.append((names.index(name), lo, hi))
        if leaf_match := _CLASS_LEAF.fullmatch(leaf):
            pred, pct = leaf_match.group("pred"), int(leaf_match.group("pct"))
        else:
            leaf_match = _VALUE_LEAF.fullmatch(leaf)
            assert leaf_match is not None, leaf
            pred, pct = float(leaf_match.group("pred")), None
        rules.append({"bounds": bounds, "pred": pred, "pct": pct, "n": int(leaf_match["n"])})
    return rules


def rule_membership(rules: list[dict], x: np.ndarray) -> np.ndarray:
    """Boolean (n_rules, n) matrix: which rule each row satisfies."""
    x32 = x.astype(np.float32).astype(np.float64)
    member = np.ones((len(rules), len(x)), dtype=bool)
    for i, rule in enumerate(rules):
        for j, lo, hi in rule["bounds"]:
            member[i] &= (x32[:, j] > lo) & (x32[:, j] <= hi)
    return member


def naive_cut_predictions(estimator, x: np.ndarray, depth: int) -> np.ndarray:
    """Walk each row down the tree, one row at a time, stopping at ``depth``."""
    tree = estimator.tree_
    out = []
    for row in x.astype(np.float32):
        node, level = 0, 0
        while tree.children_left[node] != -1 and level < depth:
            go_left = row[tree.feature[node]] <= tree.threshold[node]
            node = tree.children_left[node] if go_left else tree.children_right[node]
            level += 1
        value = tree.value[node, 0]
        out.append(estimator.classes_[np.argmax(value)] if len(value) > 1 else value[0])
    return np.array(out)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mlp_case():
    """The reference torch MLP trained 3 epochs on breast_cancer, and all 569 rows."""
    ds = datasets.breast_cancer()
    net = zoo.torch_mlp(30, 2, seed=0)
    zoo.fit(net, ds.x_train, ds.y_train, epochs=3, progress=False, seed=0)
    model = lumos.wrap(net, feature_names=ds.feature_names, class_names=ds.class_names)
    x = np.vstack([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    return model, x, y


def test_depth_4_tree_reaches_90_percent_fidelity_on_the_reference_mlp(mlp_case) -> None:
    # The check. The sample is the 569 rows plus four jittered copies (noise of 0.3
    # standard deviations; the model labels them, so they need no labels): 711 held-out rows
    # give a standard error of about 0.009. Measured for the seeds below: 0.942, 0.952, 0.934,
    # 0.941, 0.942; over random_state 0..29: mean 0.938, min 0.923. (On the 569 rows alone,
    # 143 held out: mean 0.942, min 0.895, 29 of 30 seeds >= 0.9; seed 0 gives 0.895.)
    model, x, _ = mlp_case
    rng = np.random.default_rng(0)
    sample = np.vstack([x] + [x + 0.3 * rng.standard_normal(x.shape) for _ in range(4)])
    for seed in range(5):
        s = surrogate.fit(model, sample, kind="tree", max_depth=4, n_bootstrap=0, random_state=seed)
        assert s.info["depth"] <= 4
        assert s.fidelity >= 0.9, (seed, s.fidelity)


@pytest.fixture(scope="module")
def mlp_tree(mlp_case):
    model, x, y = mlp_case
    return surrogate.fit(model, x, kind="tree", max_depth=4, y=y, n_bootstrap=4, random_state=0)


# ----------------------------------------------------------------------------- fidelity
def test_fidelity_and_accuracy_match_a_direct_computation(mlp_case, mlp_tree) -> None:
    model, x, y = mlp_case
    s = mlp_tree
    assert s.info["depth"] <= 4
    # fidelity is the held-out agreement, recomputed here from the model and the estimator
    test = s.extras["test_index"]
    model_class = model(x).argmax(axis=1)
    assert s.fidelity == np.mean(s.estimator.predict(x[test]) == model_class[test])
    train = s.extras["train_index"]
    assert s.info["fidelity_train"] == np.mean(s.estimator.predict(x[train]) == model_class[train])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(x)))
    assert s.info["n_test"] == len(test) == int(np.ceil(0.25 * len(x)))
    # accuracy against the labels, for the surrogate and for the model, on the held-out rows
    assert s.info["accuracy"] == np.mean(s.estimator.predict(x[test]) == y[test])
    assert s.info["model_accuracy"] == np.mean(model_class[test] == y[test])
    assert s.info["model_accuracy"] > 0.9
    # complexity and importance
    assert s.info["n_leaves"] == s.estimator.get_n_leaves() == len(s.rules.splitlines())
    np.testing.assert_array_equal(s.importance, s.estimator.feature_importances_)
    assert s.importance.sum() == pytest.approx(1.0, abs=1e-12)
    assert s.method == "surrogate_tree" and s.info["importance"] == "impurity"


def test_a_tree_model_is_recovered_exactly() -> None:
    # a depth-2 sklearn tree trained on an integer grid has thresholds 1.5, 2.5, 0.5 exactly
    grid = np.array(np.meshgrid(*[np.arange(5.0)] * 3)).reshape(3, -1).T
    labels = np.where(grid[:, 0] <= 1.5, (grid[:, 1] > 2.5).astype(int), 2 * (grid[:, 2] > 0.5))
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(grid, labels)
    internal = tree.tree_.children_left != -1
    model_splits = set(
        zip(tree.tree_.feature[internal], tree.tree_.threshold[internal], strict=True)
    )
    assert model_splits == {(0, 1.5), (1, 2.5), (2, 0.5)}
    model = lumos.wrap(tree, feature_names=["a", "b", "c"])
    x = np.random.default_rng(0).uniform(-1.0, 5.0, size=(600, 3))
    s = surrogate.fit(model, x, kind="tree", max_depth=2, n_bootstrap=0, random_state=0)
    assert s.fidelity == 1.0
    assert s.info["fidelity_train"] == 1.0
    rules = parse_rules(s.rules, ["a", "b", "c"])
    surrogate_splits = {(j, t) for r in rules for j, lo, hi in r["bounds"] for t in (lo, hi)}
    assert surrogate_splits - {(j, t) for j, t in surrogate_splits if np.isinf(t)} == model_splits
    assert sorted(r["pred"] for r in rules) == ["0", "0", "1", "2"]
    assert all(r["pct"] == 100 for r in rules)
    np.testing.assert_array_equal(s.curve, [[1.0, s.curve[0, 1]], [2.0, 1.0]])


# ----------------------------------------------------------------------------- rules text
def _check_rules_reproduce_the_tree(s, x: np.ndarray, labels: np.ndarray, names, classes=None):
    estimator = s.estimator
    rules = parse_rules(s.rules, names)
    leaves = np.flatnonzero(estimator.tree_.children_left == -1)
    assert len(rules) == len(leaves)  # one line per leaf
    for part in ("train_index", "test_index"):
        rows = s.extras[part]
        member = rule_membership(rules, x[rows])
        # the rules partition the rows, and each row lands on the line of its leaf
        np.testing.assert_array_equal(member.sum(axis=0), 1)
        line = member.argmax(axis=0)
        np.testing.assert_array_equal(leaves[line], estimator.apply(x[rows]))
        predicted = estimator.predict(x[rows])
        if classes is not None:
            np.testing.assert_array_equal([rules[i]["pred"] for i in line], classes[predicted])
        else:
            parsed = np.array([rules[i]["pred"] for i in line])
            np.testing.assert_allclose(parsed, predicted, rtol=1e-9)
        if part == "train_index":  # the support numbers are the training rows in the leaf
            for i, rule in enumerate(rules):
                assert rule["n"] == member[i].sum()
                if classes is not None:
                    agree = np.mean(classes[labels[rows][member[i]]] == rule["pred"])
                    expected = round(100 * agree) if agree == 1 else min(round(100 * agree), 99)
                    assert rule["pct"] == expected


def test_rules_text_reproduces_the_classifier(mlp_case, mlp_tree) -> None:
    model, x, _ = mlp_case
    labels = model(x).argmax(axis=1)
    classes = np.array(model.class_names)
    _check_rules_reproduce_the_tree(mlp_tree, x, labels, model.feature_names, classes)
    assert mlp_tree.info["thresholds_snapped"] is True
    first = mlp_tree.rules.splitlines()[0]
    assert re.fullmatch(r"if .+ then (malignant|benign) \(\d+% of \d+ samples\)", first)


def test_rules_text_reproduces_a_regression_tree() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 4)) * [1.0, 100.0, 0.01, 3.0]
    w = np.array([1.0, 0.02, 50.0, -0.5])

    def model(a):
        return np.sin(a @ w)

    s = surrogate.fit(model, x, kind="tree", max_depth=3, n_bootstrap=0, precision=12)
    assert s.info["task"] == "regression" and s.info["fidelity_metric"] == "r2"
    _check_rules_reproduce_the_tree(s, x, model(x), [f"x{j}" for j in range(4)])
    test = s.extras["test_index"]
    out = model(x[test])
    pred = s.estimator.predict(x[test])
    r2 = 1 - np.sum((out - pred) ** 2) / np.sum((out - out.mean()) ** 2)
    assert s.fidelity == pytest.approx(r2, abs=1e-12)


def test_thresholds_are_short_and_keep_the_training_partition(mlp_case, mlp_tree) -> None:
    # the snapped tree sends every training row to the same leaf as sklearn's own tree
    model, x, _ = mlp_case
    train = mlp_tree.extras["train_index"]
    labels = model(x[train]).argmax(axis=1)
    snapped = mlp_tree.estimator
    plain = DecisionTreeClassifier(**snapped.get_params()).fit(x[train], labels)  # same seed
    np.testing.assert_array_equal(plain.tree_.feature, snapped.tree_.feature)
    np.testing.assert_array_equal(plain.tree_.value, snapped.tree_.value)
    np.testing.assert_array_equal(plain.apply(x[train]), snapped.apply(x[train]))
    internal = snapped.tree_.children_left != -1
    digits = [
        len(repr(float(t)).lstrip("-").replace(".", "").lstrip("0"))
        for t in snapped.tree_.threshold[internal]
    ]
    assert max(digits) <= 5  # short decimals such as 0.403 or -0.1623
    assert not np.array_equal(plain.tree_.threshold, snapped.tree_.threshold)  # they moved


# ----------------------------------------------------------------------------- curves
def test_tree_curve_is_the_tree_cut_at_each_depth(mlp_case, mlp_tree) -> None:
    model, x, _ = mlp_case
    s = mlp_tree
    labels = model(x).argmax(axis=1)
    depth = s.info["depth"]
    assert s.curve.shape == (depth, 2) and s.extras["curve_train"].shape == (depth, 2)
    np.testing.assert_array_equal(s.curve[:, 0], np.arange(1, depth + 1))
    for part, curve in (("test_index", s.curve), ("train_index", s.extras["curve_train"])):
        rows = s.extras[part]
        for d in range(1, depth + 1):
            cut = naive_cut_predictions(s.estimator, x[rows], d)
            assert curve[d - 1, 1] == np.mean(cut == labels[rows])
    assert s.curve[-1, 1] == s.fidelity
    assert s.extras["curve_train"][-1, 1] == s.info["fidelity_train"]
    # on the training rows a deeper cut never agrees less (a split keeps or raises each node's
    # majority count); held out it may (measured here: 0.888, 0.916, 0.895, 0.895)
    assert np.all(np.diff(s.extras["curve_train"][:, 1]) >= 0)


def test_regression_tree_curve_is_monotone_on_training_rows() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))

    def model(a):
        return a[:, 0] ** 2 + np.abs(a[:, 1]) - a[:, 2]

    s = surrogate.fit(model, x, kind="tree", max_depth=6, n_bootstrap=0, random_state=1)
    train = s.extras["curve_train"]
    assert train.shape == (6, 2)
    assert np.all(np.diff(train[:, 1]) >= -1e-12)  # SSE never rises when a node is split
    rows = s.extras["train_index"]
    out = model(x[rows])
    for d in (1, 3, 6):
        cut = naive_cut_predictions(s.estimator, x[rows], d)
        r2 = 1 - np.sum((out - cut) ** 2) / np.sum((out - out.mean()) ** 2)
        assert train[d - 1, 1] == pytest.approx(r2, abs=1e-12)


def test_forest_curve_and_complexity(mlp_case) -> None:
    model, x, _ = mlp_case
    s = surrogate.fit(
        model, x, kind="forest", max_depth=5, n_estimators=15, n_bootstrap=0, random_state=0
    )
    forest = s.estimator
    labels = model(x).argmax(axis=1)
    test = s.extras["test_index"]
    assert s.fidelity == np.mean(forest.predict(x[test]) == labels[test])
    assert s.fidelity >= 0.9  # measured 0.972
    assert s.curve[-1, 1] == s.fidelity
    depths = [t.get_depth() for t in forest.estimators_]
    assert s.info["n_leaves"] == sum(t.get_n_leaves() for t in forest.estimators_)
    assert s.info["mean_depth"] == pytest.approx(np.mean(depths))
    assert s.info["depth"] == max(depths) == len(s.curve)
    assert s.info["n_estimators"] == 15 and s.rules is None
    np.testing.assert_allclose(s.importance, forest.feature_importances_, atol=0)
    # a forest cut at depth 1: average of the trees' depth-1 class distributions, by hand
    proba = np.zeros((len(test), 2))
    for t in forest.estimators_:
        tree = t.tree_
        xs = x[test].astype(np.float32)
        child = np.where(
            xs[:, tree.feature[0]] <= tree.threshold[0],
            tree.children_left[0],
            tree.children_right[0],
        )
        value = tree.value[child, 0]
        proba += value / value.sum(axis=1, keepdims=True)
    assert s.curve[0, 1] == np.mean(forest.classes_[proba.argmax(axis=1)] == labels[test])


def test_n_features_limits_the_tree(mlp_case) -> None:
    model, x, _ = mlp_case
    s = surrogate.fit(model, x, kind="tree", max_depth=4, n_features=2, n_bootstrap=0)
    used = set(s.estimator.tree_.feature[s.estimator.tree_.children_left != -1].tolist())
    assert len(used) <= 2
    assert np.count_nonzero(s.importance) == len(used)
    assert s.fidelity >= 0.85  # measured 0.923 with two features


def test_regression_model_with_a_tree_surrogate_reports_r2() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    step = DecisionTreeRegressor(max_depth=1).fit(x, (x[:, 0] > 0.25) * 3.0)
    s = surrogate.fit(step, x, kind="tree", max_depth=1, n_bootstrap=0, random_state=0)
    assert s.fidelity == 1.0 and s.info["target"] == 0
    t = float(s.estimator.tree_.threshold[0])
    train = x[s.extras["train_index"], 0]
    # the printed threshold separates the training rows exactly as the model's own threshold
    model_t = float(step.tree_.threshold[0])
    assert np.array_equal(train <= t, train <= model_t)
    assert len(repr(t)) <= 4  # e.g. "0.26"
    n_left = int(np.sum(train <= t))
    assert s.rules == (
        f"if x0 <= {t!r} then 0 (mean of {n_left} samples)\n"
        f"if x0 > {t!r} then 3 (mean of {len(train) - n_left} samples)"
    )
