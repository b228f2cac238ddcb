"""aggregate against numpy, select's top-k / threshold and its model scores against direct
scikit-learn computations, agreement against scipy.stats.spearmanr and hand counts."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

import lumos
import lumos.importance._aggregate as aggregate_module
from lumos import Explanation, GlobalExplanation
from lumos.errors import InputError, ShapeError, UnknownNameError
from lumos.importance import FeatureSelection, aggregate, agreement, permutation, select


# ---------------------------------------------------------------------- aggregate
def test_aggregate_mean_and_stderr_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(25, 4)) * np.array([1.0, 3.0, 0.1, 2.0])
    e = Explanation(values=values, data=np.zeros_like(values), feature_names=list("abcd"))
    g = aggregate(e)
    np.testing.assert_allclose(g.importance, np.abs(values).mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        g.stderr, np.abs(values).std(axis=0, ddof=1) / np.sqrt(25), rtol=0, atol=1e-15
    )
    assert g.feature_names == list("abcd") and g.method == "aggregate"
    assert g.params["source_method"] == "custom" and g.ranking.tolist() == [1, 3, 0, 2]


def test_aggregate_images_keep_every_element() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(6, 2, 3, 4))
    g = aggregate(Explanation(values=values, data=values))
    assert len(g) == 24 and g.info["input_shape"] == [2, 3, 4]
    np.testing.assert_allclose(
        g.importance.reshape(2, 3, 4), np.abs(values).mean(axis=0), rtol=0, atol=1e-15
    )
    assert g.feature_names[5] == "x[0,1,1]"  # element 5 of (2, 3, 4) in C order
    one = aggregate(Explanation(values=values[:1], data=values[:1]))
    assert one.stderr is None
    np.testing.assert_allclose(one.importance, np.abs(values[0]).ravel())


def test_aggregate_of_a_real_explainer() -> None:
    rng = np.random.default_rng(2)
    w = np.array([2.0, -1.0, 0.0])
    x = rng.normal(size=(40, 3))
    e = lumos.explain(lambda a: a @ w, x, method="feature_ablation")  # values = w x
    g = aggregate(e)
    np.testing.assert_allclose(g.importance, np.abs(w) * np.abs(x).mean(axis=0), atol=1e-12)
    assert g.params["source_method"] == "feature_ablation" and g.importance[2] == 0.0
    with pytest.raises(InputError, match="a local lumos"):
        aggregate(g)


# ---------------------------------------------------------------------- select
IMP = GlobalExplanation(
    importance=np.array([0.1, -0.9, 0.4, 0.0, 0.4, 0.05]), feature_names=list("abcdef")
)


def test_select_top_k_and_threshold() -> None:
    s = select(IMP, k=3)
    assert isinstance(s, FeatureSelection) and len(s) == 3
    assert s.indices.tolist() == [1, 2, 4] and s.names == ["b", "c", "e"]  # tie: lower first
    np.testing.assert_array_equal(s.importance, [-0.9, 0.4, 0.4])
    np.testing.assert_array_equal(s.mask, [False, True, True, False, True, False])
    assert s.score_full is None and s.scoring is None
    t = select(IMP, threshold=0.1)  # |importance| >= 0.1, by magnitude
    assert t.indices.tolist() == [1, 2, 4, 0]
    both = select(IMP, k=2, threshold=0.3)
    assert both.indices.tolist() == [1, 2]
    assert select(IMP, k=6).indices.tolist() == [1, 2, 4, 0, 5, 3]


def test_select_errors() -> None:
    with pytest.raises(InputError, match="k="):
        select(IMP)
    for k in (0, 7, 2.5, True):
        with pytest.raises(InputError, match=r"1\.\.6"):
            select(IMP, k=k)
    with pytest.raises(InputError, match="lower the threshold"):
        select(IMP, threshold=1.0)
    with pytest.raises(InputError, match="aggregate"):
        select(Explanation(values=np.ones((2, 6)), data=np.ones((2, 6))), k=1)
    with pytest.raises(InputError, match="model="):
        select(IMP, k=2, x=np.ones((3, 6)))
    with pytest.raises(InputError, match="x and y"):
        select(IMP, k=2, model=lambda a: a[:, :1], x=np.ones((3, 6)))
    with pytest.raises(ShapeError, match="6 features"):
        select(IMP, k=2, model=lambda a: a[:, :1], x=np.ones((3, 5)), y=np.ones(3))


def selection_data(seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)) + np.arange(6)  # non-zero means
    logit = 2 * (x[:, 1] - 1) - 1.5 * (x[:, 2] - 2) + 0.3 * (x[:, 0] - 0)
    y = (logit + rng.normal(size=300) > 0).astype(int)
    return x[:200], y[:200], x[200:], y[200:]


def test_select_scores_the_model_with_means_and_retrained() -> None:
    x_train, y_train, x_test, y_test = selection_data()
    est = LogisticRegression().fit(x_train, y_train)
    s = select(IMP, k=2, model=est, x=x_test, y=y_test, x_train=x_train, y_train=y_train)
    keep = np.array([False, True, True, False, False, False])
    np.testing.assert_array_equal(s.mask, keep)
    reduced = np.where(keep, x_test, x_train.mean(axis=0))
    assert s.scoring == "accuracy"
    assert s.score_full == pytest.approx(accuracy_score(y_test, est.predict(x_test)), abs=1e-15)
    assert s.score_selected == pytest.approx(accuracy_score(y_test, est.predict(reduced)))
    refit = clone(est).fit(x_train[:, keep], y_train)
    assert s.score_retrained == pytest.approx(
        accuracy_score(y_test, refit.predict(x_test[:, keep])), abs=1e-15
    )
    assert s.retrained_on == "x_train"
    np.testing.assert_allclose(s.estimator.coef_, refit.coef_)
    # without a training split the means and the refit come from x itself (in-sample)
    ll = select(IMP, k=2, model=est, x=x_test, y=y_test, scoring="log_loss")
    reduced_in = np.where(keep, x_test, x_test.mean(axis=0))
    assert ll.score_selected == pytest.approx(log_loss(y_test, est.predict_proba(reduced_in)))
    assert ll.retrained_on == "x" and ll.score_retrained == pytest.approx(
        log_loss(y_test, clone(est).fit(x_test[:, keep], y_test).predict_proba(x_test[:, keep]))
    )
    # keeping only features the label does not depend on costs accuracy
    weak = select(
        GlobalExplanation(importance=np.array([0, 0, 0, 1.0, 1.0, 1.0])),
        k=3,
        model=est,
        x=x_test,
        y=y_test,
    )
    assert weak.score_selected < s.score_selected - 0.2


def test_select_regression_non_sklearn_and_groups() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 4))
    y = x @ np.array([1.0, 0.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    ridge = Ridge().fit(x, y)
    imp = permutation(ridge, x, y, groups=[[0, 3], [1], [2]], n_repeats=3, random_state=0)
    s = select(imp, k=2, model=ridge, x=x, y=y, scoring="mse")
    # the groups {x2} and {x0, x3} matter most; their three members are kept
    assert s.names == ["x2", "x0+x3"] and s.mask.tolist() == [True, False, True, True]
    reduced = np.where(s.mask, x, x.mean(axis=0))
    assert s.score_selected == pytest.approx(mean_squared_error(y, ridge.predict(reduced)))
    assert s.score_full == pytest.approx(mean_squared_error(y, ridge.predict(x)))
    r2 = select(imp, k=1, model=lambda a: ridge.predict(a), x=x, y=y)
    assert r2.scoring == "r2" and r2.score_retrained is None and r2.retrained_on is None
    assert r2.score_full == pytest.approx(r2_score(y, ridge.predict(x)))
    with pytest.raises(UnknownNameError):
        select(imp, k=1, model=ridge, x=x, y=y, scoring="output")


# ---------------------------------------------------------------------- agreement
def test_agreement_equals_spearmanr_and_hand_counts() -> None:
    a = GlobalExplanation(importance=np.array([5.0, 4, 3, 2, 1, 0]))
    b = GlobalExplanation(importance=np.array([-5.0, 1, 4, 2, 3, 0.5]))  # signs ignored
    c = GlobalExplanation(importance=np.array([0.0, 1, 2, 3, 4, 5]))
    table = agreement({"a": a, "b": b, "c": c}, k=3)
    assert list(table.columns) == [
        "method_a",
        "method_b",
        "spearman",
        "top_k_common",
        "top_k_overlap",
    ]
    assert table[["method_a", "method_b"]].values.tolist() == [["a", "b"], ["a", "c"], ["b", "c"]]
    for row, (p, q) in zip(table.itertuples(), [(a, b), (a, c), (b, c)], strict=True):
        rho = stats.spearmanr(np.abs(p.importance), np.abs(q.importance)).statistic
        assert row.spearman == pytest.approx(rho, abs=1e-12)
    # top-3 by |importance|: a {0, 1, 2}; b {0, 2, 4}; c {5, 4, 3}
    assert table["top_k_common"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(table["top_k_overlap"], [2 / 3, 0.0, 1 / 3])
    assert table["spearman"].iloc[1] == pytest.approx(-1.0)


def test_agreement_ties_constant_and_errors() -> None:
    a = GlobalExplanation(importance=np.array([1.0, 1.0, 0.0, 2.0]), feature_names=list("pqrs"))
    b = GlobalExplanation(importance=np.array([3.0, 0.0, 1.0, 2.0]), feature_names=list("pqrs"))
    flat = GlobalExplanation(importance=np.ones(4))
    t = agreement({"a": a, "b": b, "flat": flat}, k=2)
    assert t["spearman"].iloc[0] == pytest.approx(
        stats.spearmanr([1.0, 1.0, 0.0, 2.0], [3.0, 0.0, 1.0, 2.0]).statistic
    )
    assert np.isnan(t["spearman"].iloc[1])  # flat has no ranking
    assert t["top_k_common"].tolist() == [2, 1, 1]  # a {3, 0}, b {0, 3}, flat {0, 1}
    with pytest.raises(InputError, match="at least two"):
        agreement({"a": a})
    with pytest.raises(InputError, match=r"1\.\.4"):
        agreement({"a": a, "b": b}, k=5)
    with pytest.raises(ShapeError, match="3 importances"):
        agreement({"a": a, "z": GlobalExplanation(importance=np.ones(3))})
    renamed = GlobalExplanation(importance=np.ones(4), feature_names=list("sqrp"))
    with pytest.raises(ShapeError, match="same order"):
        agreement({"a": a, "r": renamed})
    with pytest.raises(InputError, match="aggregate"):
        agreement({"a": a, "e": Explanation(values=np.ones((1, 4)), data=np.ones((1, 4)))})


def test_docstring_examples() -> None:
    assert doctest.testmod(aggregate_module, raise_on_error=True).attempted > 0
