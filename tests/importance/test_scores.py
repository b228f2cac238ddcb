"""correlation, information_gain, mutual_information and weight_magnitude against scipy,
scikit-learn, hand-computed entropies and the weights themselves."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lumos
import lumos.importance._scores as scores_module
from lumos.errors import (
    InputError,
    ModelError,
    NonFiniteError,
    ShapeError,
    TargetError,
    UnknownNameError,
)
from lumos.importance import correlation, information_gain, mutual_information, weight_magnitude
from lumos.importance._scores import equal_frequency_bins
from lumos.zoo import torch_cnn, torch_mlp

LOG2_3 = np.log2(3.0)


def mixed_table(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features with linear, monotone, non-monotone and no links to a binary label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, 3] = rng.integers(0, 4, size=n)  # discrete, with ties
    score = 1.5 * x[:, 0] - np.exp(x[:, 1]) + 2 * x[:, 2] ** 2 + 0.5 * x[:, 3]
    y = (score + rng.normal(size=n) > np.median(score)).astype(np.int64)
    return x, y, score


# ---------------------------------------------------------------------- correlation
def test_pearson_and_spearman_equal_scipy() -> None:
    x, y, score = mixed_table()
    for method, ref in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        for target in (y, score):
            e = correlation(x, target, method=method)
            expected = [ref(x[:, j], target) for j in range(5)]
            np.testing.assert_allclose(
                e.importance, [r.statistic for r in expected], rtol=0, atol=1e-12
            )
            np.testing.assert_allclose(
                e.extras["p_value"], [r.pvalue for r in expected], rtol=1e-8, atol=1e-300
            )
            np.testing.assert_allclose(e.stderr, np.sqrt((1 - e.importance**2) / (300 - 2)))
    e = correlation(x, score)
    assert e.importance[1] < -0.3 and e.importance[0] > 0.3  # signed
    assert e.ranking[0] in (0, 1, 2) and e.method == "correlation"


def test_correlation_with_the_model_output() -> None:
    x, y, _ = mixed_table()
    est = LogisticRegression().fit(x, y)
    e = correlation(x, model=est)  # a binary classifier: output 1, P(class 1)
    p1 = est.predict_proba(x)[:, 1]
    np.testing.assert_allclose(e.importance, correlation(x, p1).importance, atol=1e-12)
    assert e.info["against"] == "model" and e.info["output"] == 1
    e0 = correlation(x, model=est, target=0, method="spearman")
    np.testing.assert_allclose(
        e0.importance, correlation(x, 1 - p1, method="spearman").importance, atol=1e-12
    )
    three = LogisticRegression().fit(x, np.digitize(x[:, 0], [-0.5, 0.5]))
    with pytest.raises(TargetError, match="target="):
        correlation(x, model=three)
    e2 = correlation(x, model=three, target=2)
    np.testing.assert_allclose(
        e2.importance, correlation(x, three.predict_proba(x)[:, 2]).importance, atol=1e-12
    )


def test_correlation_constant_feature_images_and_errors() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    x[:, 1] = 2.0
    e = correlation(x, x[:, 0] + rng.normal(size=40))
    assert e.importance[1] == 0.0 and e.info["constant_features"] == ["x1"]
    assert e.extras["p_value"][1] == 1.0
    img = rng.normal(size=(30, 1, 2, 2))
    ei = correlation(img, img[:, 0, 1, 0])
    assert len(ei) == 4 and ei.feature_names[2] == "x[0,1,0]" and ei.importance[2] == 1.0
    with pytest.raises(InputError, match="not both"):
        correlation(x, x[:, 0], model=lambda a: a[:, 0])
    with pytest.raises(InputError, match="model="):
        correlation(x)
    with pytest.raises(InputError, match="constant"):
        correlation(x, np.ones(40))
    with pytest.raises(InputError, match="numeric"):
        correlation(x, np.array(["a", "b"] * 20))
    with pytest.raises(ShapeError, match="one y value per row"):
        correlation(x, np.ones(39))
    with pytest.raises(NonFiniteError):
        correlation(x, np.r_[np.nan, np.ones(39)])
    with pytest.raises(InputError, match="at least 3"):
        correlation(x[:2], np.array([1.0, 2.0]))
    with pytest.raises(UnknownNameError, match="spearman"):
        correlation(x, x[:, 0], method="kendal")


# ---------------------------------------------------------------------- information gain
def test_information_gain_hand_computed() -> None:
    # y = 0,0,0,0,1,1,1,1: H(Y) = 1 bit.
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    x = np.column_stack(
        [
            [1, 2, 3, 4, 5, 6, 7, 8],  # splits the classes exactly
            [1, 5, 2, 6, 3, 7, 4, 8],  # alternates
            [1, 2, 3, 5, 4, 6, 7, 8],  # one row of each class on the wrong side
            [0, 0, 0, 0, 0, 1, 1, 1],  # ties
        ]
    ).astype(float)
    e = information_gain(x, y, n_bins=2)
    # n_bins=2: one cut after 4 of the 8 sorted values (a value <= 4 is low, for x0-x2).
    # x0: bins {rows 0-3: y=0000}, {rows 4-7: 1111}; H(Y|B) = 0; IG = 1.
    # x1: low values 1..4 sit in rows 0,2,4,6 (y = 0,0,1,1), high in rows 1,3,5,7 (0,0,1,1);
    #     each bin has H = 1, so IG = 1 - 1 = 0.
    # x2: low {rows 0,1,2,4: y = 0,0,0,1}, high {rows 3,5,6,7: 0,1,1,1}; each bin has
    #     H(3/4, 1/4) = -(3/4 log2 3/4 + 1/4 log2 1/4) = 0.811278; IG = 1 - 0.811278.
    # x3: the ideal cut after 4 values would split the zeros; it moves to the nearest change
    #     of value (after 5), putting the zeros (rows 0-4: y = 0,0,0,0,1) in one bin and the
    #     ones (rows 5-7: 1,1,1) in another: H(Y|B) = 5/8 · H(4/5, 1/5) + 3/8 · 0
    #     = 5/8 · 0.721928 = 0.451205; IG = 0.548795.
    h34 = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    h45 = -(0.8 * np.log2(0.8) + 0.2 * np.log2(0.2))
    expected = [1.0, 0.0, 1.0 - h34, 1.0 - 5 / 8 * h45]
    np.testing.assert_allclose(e.importance, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected[2:], [0.188722, 0.548795], atol=1e-6)
    assert e.info["label_entropy"] == 1.0 and e.info["unit"] == "bits"
    np.testing.assert_array_equal(e.extras["n_bins_used"], [2, 2, 2, 2])
    # n_bins=4: cuts after 2, 4 and 6 values → pairs of values. x1's bins {1,2} rows 0,2 (0,0),
    # {3,4} rows 4,6 (1,1), {5,6} rows 1,3 (0,0), {7,8} rows 5,7 (1,1): all pure, IG = 1.
    # x3 still has only the two values: the same 2 bins and the same gain.
    e4 = information_gain(x, y, n_bins=4)
    np.testing.assert_allclose(e4.importance[[0, 1, 3]], [1.0, 1.0, expected[3]], atol=1e-12)
    np.testing.assert_array_equal(e4.extras["n_bins_used"], [4, 4, 4, 2])
    # three classes, pure bins: IG = H(Y) = log2 3
    e3 = information_gain(
        np.arange(6.0)[:, None], np.array(["a", "a", "b", "b", "c", "c"]), n_bins=3
    )
    assert e3.importance[0] == pytest.approx(LOG2_3, abs=1e-12)


def test_equal_frequency_bins_respect_ties() -> None:
    # 10 distinct values, 3 bins: ideal cuts after 3.33 and 6.67 values → after 3 and 7
    np.testing.assert_array_equal(
        equal_frequency_bins(np.arange(10.0)[::-1], 3), [2, 2, 2, 1, 1, 1, 1, 0, 0, 0]
    )
    # a rare value at either end still gets its own bin; constants get one bin
    np.testing.assert_array_equal(
        equal_frequency_bins(np.array([0.0] + [1.0] * 7), 2), [0] + [1] * 7
    )
    np.testing.assert_array_equal(
        equal_frequency_bins(np.array([1.0] * 7 + [0.0]), 4), [1] * 7 + [0]
    )
    np.testing.assert_array_equal(equal_frequency_bins(np.full(5, 3.0), 3), [0] * 5)
    # ties in the middle: 1,2,2,2,2,3 in 3 bins: ideal cuts after 2 and 4 values both move
    # to a change of value (after 1 or after 5)
    np.testing.assert_array_equal(
        equal_frequency_bins(np.array([1.0, 2, 2, 2, 2, 3]), 3), [0, 1, 1, 1, 1, 2]
    )


def test_information_gain_equals_plugin_mutual_information_of_rank_bins() -> None:
    # With distinct values and n divisible by n_bins, equal-frequency bins are rank // (n / B);
    # IG in bits is then scikit-learn's plug-in mutual_info_score (nats) / ln 2.
    x, y, _ = mixed_table(n=200)
    x = x[:, [0, 1, 2, 4]]  # continuous columns only (distinct values)
    e = information_gain(x, y, n_bins=10)
    ranks = stats.rankdata(x, axis=0).astype(int) - 1
    expected = [mutual_info_score(y, ranks[:, j] // 20) / np.log(2) for j in range(4)]
    np.testing.assert_allclose(e.importance, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(e.extras["n_bins_used"], [10] * 4)


def test_information_gain_with_a_model_and_errors() -> None:
    x, y, _ = mixed_table()
    est = LogisticRegression().fit(x, y)
    e = information_gain(x, model=est, n_bins=5)
    expected = information_gain(x, est.predict(x), n_bins=5)
    np.testing.assert_allclose(e.importance, expected.importance, atol=0)
    with pytest.raises(InputError, match="n_bins"):
        information_gain(x, y, n_bins=1)
    with pytest.raises(InputError, match="class labels"):
        information_gain(x, y + 0.5)
    with pytest.raises(InputError, match="regression model"):
        information_gain(x, model=lumos.wrap(lambda a: a[:, 0], output_kind="regression"))


# ---------------------------------------------------------------------- mutual information
def test_mutual_information_equals_sklearn() -> None:
    x, y, score = mixed_table()
    discrete = np.array([False, False, False, True, False])
    for kw in (
        {"random_state": 0},
        {"random_state": 7, "n_neighbors": 5, "discrete_features": discrete},
        {"random_state": 3, "discrete_features": [3]},
    ):
        e = mutual_information(x, y, **kw)
        np.testing.assert_array_equal(e.importance, mutual_info_classif(x, y, **kw))
        assert e.info["task"] == "classification" and e.info["unit"] == "nats"
        r = mutual_information(x, score, **kw)
        np.testing.assert_array_equal(r.importance, mutual_info_regression(x, score, **kw))
        assert r.info["task"] == "regression"
    ours = mutual_information(x, y, random_state=0)
    assert ours.importance[4] < 0.05 < min(ours.importance[[0, 1, 2]])  # x4 is noise


def test_mutual_information_seeds_models_and_errors() -> None:
    x, y, _ = mixed_table()
    a = mutual_information(x, y, random_state=np.random.default_rng(5))
    b = mutual_information(x, y, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.importance, b.importance)
    seed = a.info["sklearn_random_state"]
    np.testing.assert_array_equal(a.importance, mutual_info_classif(x, y, random_state=seed))
    est = LogisticRegression().fit(x, y)
    m = mutual_information(x, model=est, random_state=1)
    np.testing.assert_array_equal(
        m.importance, mutual_info_classif(x, est.predict(x), random_state=1)
    )
    reg = lumos.wrap(lambda t: t[:, :2] @ np.array([1.0, -1.0]), output_kind="regression")
    mr = mutual_information(x, model=reg, random_state=2)
    np.testing.assert_array_equal(
        mr.importance, mutual_info_regression(x, x[:, 0] - x[:, 1], random_state=2)
    )
    with pytest.raises(UnknownNameError):
        mutual_information(x, y, task="clasification")
    with pytest.raises(InputError, match="discrete_features"):
        mutual_information(x, y, discrete_features=[True, False])
    with pytest.raises(InputError, match="n_neighbors"):
        mutual_information(x, y, n_neighbors=0)
    with pytest.raises(ShapeError, match="one value per row"):
        mutual_information(x, np.column_stack([y, y]))


# ---------------------------------------------------------------------- weight magnitude
def test_weight_magnitude_of_a_torch_mlp() -> None:
    net = torch_mlp(6, 3, hidden=(5, 4), seed=0)
    e = weight_magnitude(net)
    w = net[0].weight.detach().double().numpy()  # (5 units, 6 inputs)
    np.testing.assert_allclose(e.importance, np.abs(w).sum(axis=0), rtol=0, atol=1e-15)
    assert e.info["layer"] == "0" and e.info["n_units"] == 5 and not e.info["linear"]
    assert e.info["sparsity_score"] == pytest.approx(np.abs(w).sum(), abs=1e-12)
    # a linear network with a zeroed input: weight zero, importance zero
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        lin[1].weight[:, 2] = 0.0
    el = weight_magnitude(lumos.wrap(lin, feature_names=["a", "b", "c", "d"]))
    assert el.info["linear"] and el.info["n_zero_weights"] == 2 and el.importance[2] == 0.0
    assert el.feature_names == ["a", "b", "c", "d"] and el.info["layer"] == "1"


def test_weight_magnitude_of_a_keras_mlp() -> None:
    import keras

    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(7, activation="relu"), keras.layers.Dense(2)]
    )
    kernel = model.layers[0].get_weights()[0]  # (5 inputs, 7 units)
    e = weight_magnitude(model)
    # summed in float64 (a float32 reference sum can be 1 ulp off for some weights)
    np.testing.assert_allclose(
        e.importance, np.abs(kernel.astype(np.float64)).sum(axis=1), rtol=1e-12
    )
    assert e.info["layer_type"] == "Dense" and e.info["n_units"] == 7


def test_weight_magnitude_of_sklearn_linear_models() -> None:
    x, _, score = mixed_table()
    three = np.digitize(x[:, 0], [-0.5, 0.5])
    est = LogisticRegression().fit(pd.DataFrame(x, columns=list("abcde")), three)
    e = weight_magnitude(est)
    np.testing.assert_allclose(e.importance, np.abs(est.coef_).sum(axis=0), atol=0)
    assert e.feature_names == list("abcde") and e.info["n_units"] == 3
    lasso = Lasso(alpha=0.2).fit(x, score)
    el = weight_magnitude(lasso)
    assert el.info["linear"] and el.info["sparsity_score"] == pytest.approx(
        np.abs(lasso.coef_).sum(), abs=1e-12
    )
    assert el.info["n_zero_weights"] == int((lasso.coef_ == 0).sum()) >= 1
    np.testing.assert_allclose(el.importance, np.abs(lasso.coef_), atol=0)


def test_weight_magnitude_errors() -> None:
    x, y, _ = mixed_table(60)
    with pytest.raises(ModelError, match="coef_"):
        weight_magnitude(RandomForestClassifier(n_estimators=2).fit(x, y))
    with pytest.raises(ModelError, match="Pipeline"):
        weight_magnitude(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y))
    with pytest.raises(ModelError, match="black box"):
        weight_magnitude(lambda a: a[:, :1])
    with pytest.raises(ModelError, match="Conv2d"):
        weight_magnitude(torch_cnn((1, 8, 8), 2, seed=0))
    bn_first = torch.nn.Sequential(torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    with pytest.raises(ModelError, match="BatchNorm1d"):
        weight_magnitude(bn_first)


def test_docstring_examples() -> None:
    assert doctest.testmod(scores_module, raise_on_error=True).attempted > 0
