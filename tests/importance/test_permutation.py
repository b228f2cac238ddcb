"""permutation importance: equal to scikit-learn's for the same shuffles, scikit-learn's mean
inside our confidence intervals for our own shuffles, closed forms on linear models, a naive
loop on images with groups, reproducibility, and errors."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge

import lumos
import lumos.importance._permutation as permutation_module
from lumos import GlobalExplanation
from lumos.errors import InputError, NonFiniteError, ShapeError, UnknownNameError
from lumos.importance import permutation
from lumos.importance._permutation import _permutation, _prepare
from lumos.zoo import torch_mlp


def with_shuffles(model, x, y, shuffles, *, scoring=None, groups=None, batch_size=None):
    """Our permutation importance with given row orders: ``shuffles[r]`` (n,) shuffles every
    group in repeat r."""
    m = lumos.wrap(model)
    arr, labels, names, n_groups = _prepare(m, x, groups, batch_size)
    return _permutation(
        m,
        arr,
        y,
        labels=labels,
        names=names,
        n_groups=n_groups,
        scoring=scoring,
        n_repeats=len(shuffles),
        permutations=lambda r, g: shuffles[r],
        batch_size=batch_size,
        params={},
        grouped=groups is not None,
    )


def sklearn_shuffles(random_state: int, n: int, n_repeats: int) -> list[np.ndarray]:
    """The row orders scikit-learn's permutation_importance applies to every feature.

    One int seed is drawn from ``RandomState(random_state)`` and serves every feature; each
    repeat shuffles an index array in place and re-indexes the *already shuffled* column with
    it, so repeat r takes the column in the order of the running composition of shuffles.
    """
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rs = np.random.RandomState(seed)
    idx, order, out = np.arange(n), np.arange(n), []
    for _ in range(n_repeats):
        rs.shuffle(idx)
        order = order[idx]
        out.append(order.copy())
    return out


def classification_data(
    n: int = 240, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    """Three classes from a known softmax of four features (the last one unused)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logits = x @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -1.0], [0.5, 0.0, 0.5], [0, 0, 0]])
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    return x, y, LogisticRegression().fit(x, y)


# ---------------------------------------------------------------------- scikit-learn, exact
@pytest.mark.parametrize(
    ("ours", "theirs", "task"),
    [
        ("accuracy", "accuracy", "classification"),
        ("log_loss", "neg_log_loss", "classification"),
        ("r2", "r2", "regression"),
        ("mse", "neg_mean_squared_error", "regression"),
    ],
)
def test_equals_sklearn_for_the_same_shuffles(ours: str, theirs: str, task: str) -> None:
    if task == "classification":
        x, y, est = classification_data()
    else:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(240, 4))
        y = x @ np.array([2.0, -1.0, 0.5, 0.0]) + rng.normal(scale=0.5, size=240)
        est = Ridge(alpha=1.0).fit(x, y)
    sk = permutation_importance(est, x, y, scoring=theirs, n_repeats=6, random_state=5)
    e = with_shuffles(est, x, y, sklearn_shuffles(5, len(x), 6), scoring=ours)
    # same shuffles, same scores: every per-repeat drop agrees to rounding
    np.testing.assert_allclose(e.extras["scores"].T, sk.importances, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.importance, sk.importances_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        e.stderr, sk.importances.std(axis=1, ddof=1) / np.sqrt(6), rtol=0, atol=1e-12
    )
    assert sk.importances_mean.max() > 0.05  # a non-trivial problem


def all_pairs_expected_drop(est, x, y) -> np.ndarray:
    """The exact expectation of the log-loss drop over uniform random permutations.

    Under a uniform permutation π, π(i) is uniform over the rows, so the expected shuffled
    loss of column j is the mean over all pairs (i, k) of the loss of row i with x_ij
    replaced by x_kj: n² evaluations per feature, done once here as a reference."""
    n, d = x.shape
    base = -np.log(est.predict_proba(x)[np.arange(n), y]).mean()
    out = np.empty(d)
    for j in range(d):
        pairs = np.repeat(x, n, axis=0)  # row i repeated n times
        pairs[:, j] = np.tile(x[:, j], n)  # ... with x_kj for every k
        p = est.predict_proba(pairs)[np.arange(n * n), np.repeat(y, n)]
        out[j] = -np.log(p).mean() - base
    return out


def test_sklearn_and_our_means_lie_in_our_ci_of_the_exact_expectation() -> None:
    # Our shuffles come from numpy Generators, scikit-learn's from a legacy RandomState, so
    # the draws differ (the equality above uses scikit-learn's own shuffles). Both estimate
    # the same number, the expected drop over uniform permutations, which all_pairs_...
    # computes exactly. (a) Coverage: over 15 seeds × 4 features our 95 % t-intervals must
    # contain it at least 80 % of the time (a correct interval fails this with probability
    # < 1e-4, binomial; a biased centre or a too-small stderr fails it at once). (b)
    # scikit-learn's mean over 150 repeats lies within 4 of its standard errors of it, and
    # within our interval widened to the two estimates' combined error (4 sd), so the two
    # implementations agree on what they estimate.
    x, y, est = classification_data(150)
    exact = all_pairs_expected_drop(est, x, y)
    covered = []
    for seed in range(15):
        e = permutation(est, x, y, scoring="log_loss", n_repeats=100, random_state=seed)
        covered.append((e.extras["ci_low"] <= exact) & (exact <= e.extras["ci_high"]))
        t975 = 1.9842169515  # Student's t quantile, 99 degrees of freedom
        np.testing.assert_allclose(e.extras["ci_high"] - e.importance, t975 * e.stderr)
    coverage = float(np.mean(covered))
    assert coverage >= 0.8, coverage
    sk = permutation_importance(est, x, y, scoring="neg_log_loss", n_repeats=150, random_state=0)
    sk_se = sk.importances.std(axis=1, ddof=1) / np.sqrt(150)
    assert np.all(np.abs(sk.importances_mean - exact) <= 4 * sk_se)
    ours = permutation(est, x, y, scoring="log_loss", n_repeats=150, random_state=0)
    combined = np.sqrt(ours.stderr**2 + sk_se**2)
    assert np.all(np.abs(ours.importance - sk.importances_mean) <= 4 * combined)
    assert exact.max() > 0.3 and np.all(ours.stderr < 0.05 * exact.max())  # informative


# ---------------------------------------------------------------------- closed forms
W_LIN = np.array([3.0, -2.0, 1.0, 0.0])


def linear(a: np.ndarray) -> np.ndarray:
    return a @ W_LIN + 1.0


def test_linear_model_mse_closed_form() -> None:
    # f(x) = w·x + b, y = f(x) (y=None): shuffling column j changes the output by
    # w_j (x_π(i)j - x_ij). For a uniform permutation π(i) is uniform over the rows, so
    # E[mean_i (x_π(i)j - x_ij)²] = 2 Var(x_j) (population variance of the sample) exactly,
    # and the expected MSE drop is 2 w_j² Var(x_j). The estimate's error is its stderr
    # (about 0.6 % here: relative sd √(2/n) per repeat, 30 repeats): we allow 4 stderr.
    x = np.random.default_rng(2).normal(size=(2000, 4)) * np.array([1.0, 0.5, 2.0, 1.0])
    model = lumos.wrap(linear, output_kind="regression")
    e = permutation(model, x, scoring="mse", n_repeats=30, random_state=0)
    expected = 2 * W_LIN**2 * x.var(axis=0)
    assert np.all(np.abs(e.importance - expected) <= 4 * e.stderr)
    np.testing.assert_allclose(e.importance, expected, rtol=0.03)
    assert e.importance[3] == 0.0 and e.stderr[3] == 0.0  # a weight of zero: no drop at all
    assert e.info["baseline_score"] == 0.0 and e.info["reference"] == "model"
    assert not e.info["higher_is_better"] and e.info["scoring"] == "mse"
    assert e.extras["scores"].shape == (30, 4) and e.ranking.tolist() == [0, 2, 1, 3]


def test_grouped_features_are_shuffled_jointly() -> None:
    # a and b correlated (ρ = 0.8): shuffling them together moves s = w_a a + w_b b as a
    # whole, expected drop 2 Var(s); shuffling each alone gives 2 w² Var of each, whose sum
    # differs from 2 Var(s) by the covariance term 4 w_a w_b Cov(a, b).
    n = 3000
    rng = np.random.default_rng(3)
    z = rng.normal(size=(n, 2))
    a = z[:, 0]
    b = 0.8 * z[:, 0] + 0.6 * z[:, 1]
    c = rng.normal(size=n)
    x = np.column_stack([a, b, c])
    w = np.array([1.0, 2.0, -1.0])
    model = lumos.wrap(lambda t: t @ w, output_kind="regression")
    e = permutation(model, x, scoring="mse", groups=[[0, 1], [2]], n_repeats=30, random_state=1)
    s = x[:, :2] @ w[:2]
    expected = np.array([2 * s.var(), 2 * w[2] ** 2 * c.var()])
    assert np.all(np.abs(e.importance - expected) <= 4 * e.stderr)
    assert e.feature_names == ["x0+x1", "x2"]
    np.testing.assert_array_equal(e.extras["groups"], [0, 0, 1])
    alone = permutation(model, x, scoring="mse", n_repeats=30, random_state=1)
    separate = 2 * w[:2] ** 2 * x[:, :2].var(axis=0)
    assert np.all(np.abs(alone.importance[:2] - separate) <= 4 * alone.stderr[:2])
    gap = expected[0] - separate.sum()  # 4 w_a w_b Cov(a, b) ≈ 6.4
    assert gap > 5 and abs(e.importance[0] - alone.importance[:2].sum() - gap) < 0.5


def test_output_scoring_closed_form_for_regression() -> None:
    # "output": mean |f(x_shuffled) - f(x)| = |w_j| mean_i |x_π(i)j - x_ij|, whose
    # expectation over uniform π is |w_j| times the mean absolute difference over all pairs
    # (i, k) of rows, (1/n²) Σ_i Σ_k |x_kj - x_ij|.
    x = np.random.default_rng(4).normal(size=(600, 4))
    e = permutation(
        lumos.wrap(linear, output_kind="regression"),
        x,
        scoring="output",
        n_repeats=40,
        random_state=2,
    )
    pair_mean = np.abs(x[:, None, :] - x[None, :, :]).mean(axis=(0, 1))
    expected = np.abs(W_LIN) * pair_mean
    assert np.all(np.abs(e.importance - expected) <= 4 * e.stderr + 1e-15)
    assert e.info["baseline_score"] == 0.0


# ---------------------------------------------------------------------- naive loop
W_IMG = np.random.default_rng(5).normal(size=(3, 1, 4, 4))


def softmax_image_model(a: np.ndarray) -> np.ndarray:
    z = np.einsum("nchw,kchw->nk", a, W_IMG)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def naive_scores(model, x, shuffles, labels_flat, n_groups, score):
    """Plain loops: copy x, overwrite the group's elements from the shuffled rows, score."""
    flat = x.reshape(len(x), -1)
    base = score(model(x), model(x))
    out = np.zeros((len(shuffles), n_groups))
    for r, perm in enumerate(shuffles):
        for g in range(n_groups):
            shuffled = flat.copy()
            cols = np.flatnonzero(labels_flat == g)
            shuffled[:, cols] = flat[perm][:, cols]
            out[r, g] = base - score(model(shuffled.reshape(x.shape)), model(x))
    return out


def accuracy_vs_own(out, ref):
    return np.mean(out.argmax(1) == ref.argmax(1))


def output_change(out, ref):
    cls = ref.argmax(1)
    rows = np.arange(len(ref))
    return -np.mean(np.abs(out[rows, cls] - ref[rows, cls]))


@pytest.mark.parametrize(
    ("scoring", "score"), [("accuracy", accuracy_vs_own), ("output", output_change)]
)
@pytest.mark.parametrize("grouped", [False, True])
def test_images_with_and_without_patch_groups_equal_a_naive_loop(scoring, score, grouped) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(30, 1, 4, 4))
    shuffles = [rng.permutation(30) for _ in range(3)]
    patches = (np.arange(4)[:, None] // 2) * 2 + np.arange(4)[None, :] // 2  # 2x2 patches
    groups = patches[None] if grouped else None
    labels = patches.ravel() if grouped else np.arange(16)
    n_groups = 4 if grouped else 16
    e = with_shuffles(
        softmax_image_model, x, None, shuffles, scoring=scoring, groups=groups, batch_size=37
    )
    expected = naive_scores(softmax_image_model, x, shuffles, labels, n_groups, score)
    np.testing.assert_allclose(e.extras["scores"], expected, rtol=0, atol=1e-12)
    assert len(e) == n_groups and np.abs(expected).max() > 0.01
    if grouped:
        assert e.feature_names == ["group0", "group1", "group2", "group3"]


def test_image_features_are_every_element() -> None:
    x = np.random.default_rng(7).normal(size=(25, 1, 4, 4))
    e = permutation(softmax_image_model, x, n_repeats=2, random_state=0)
    assert len(e) == 16 and e.extras["scores"].shape == (2, 16)
    assert e.provenance["input_shape"] == [1, 4, 4]


# ---------------------------------------------------------------------- engine, torch, data
def test_torch_model_equals_the_same_net_as_a_numpy_callable() -> None:
    # The torch adapter builds the shuffled chunks with torch on the model's device, the
    # callable with numpy; gathering moves values without arithmetic, so both see the same
    # float32 inputs and give the same numbers.
    net = torch_mlp(5, 3, hidden=(8,), seed=0)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 5))
    y = rng.integers(0, 3, size=50)

    def as_callable(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(a, dtype=torch.float32)).double().numpy()

    kw = {"n_repeats": 3, "random_state": 4, "batch_size": 64}
    for scoring in ("accuracy", "log_loss", "output"):
        target = None if scoring == "output" else y
        a = permutation(net, x, target, scoring=scoring, **kw)
        b = permutation(as_callable, x, target, scoring=scoring, **kw)
        np.testing.assert_allclose(a.extras["scores"], b.extras["scores"], rtol=0, atol=1e-12)


def test_same_seed_same_result_for_any_batch_size() -> None:
    x, y, est = classification_data(90)
    ref = permutation(est, x, y, n_repeats=4, random_state=123)
    for bs in (1, 7, 90, 1000):
        other = permutation(est, x, y, n_repeats=4, random_state=123, batch_size=bs)
        np.testing.assert_array_equal(other.extras["scores"], ref.extras["scores"])
    different = permutation(est, x, y, n_repeats=4, random_state=124)
    assert not np.array_equal(different.extras["scores"], ref.extras["scores"])
    gen = np.random.default_rng(123)
    g1 = permutation(est, x, y, n_repeats=4, random_state=gen)
    g2 = permutation(est, x, y, n_repeats=4, random_state=gen)  # the stream moved on
    assert not np.array_equal(g1.extras["scores"], g2.extras["scores"])
    assert ref.provenance["seed"] == 123 and ref.params["random_state"] == 123


def test_reference_from_the_model_and_labels_by_name() -> None:
    x, y, est = classification_data(120)
    e = permutation(est, x, n_repeats=3, random_state=0)
    assert e.info["baseline_score"] == 1.0 and e.info["reference"] == "model"
    names = np.array(["a", "b", "c"])[y]
    est_named = LogisticRegression().fit(x, names)
    by_name = permutation(est_named, x, names, n_repeats=3, random_state=0)
    by_int = permutation(est, x, y, n_repeats=3, random_state=0)
    np.testing.assert_allclose(by_name.importance, by_int.importance, atol=1e-12)
    assert by_int.info["baseline_score"] == pytest.approx(np.mean(est.predict(x) == y))


def test_dataframe_names_and_dict_groups() -> None:
    x, y, est = classification_data(80)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    e = permutation(est, frame, y, n_repeats=2, random_state=0)
    assert e.feature_names == ["a", "b", "c", "d"]
    g = permutation(
        est, frame, y, groups={"ab": ["a", "b"], "cd": [2, 3]}, n_repeats=2, random_state=0
    )
    assert g.feature_names == ["ab", "cd"] and g.extras["groups"].tolist() == [0, 0, 1, 1]


def test_save_and_load_round_trip(tmp_path) -> None:
    x, y, est = classification_data(60)
    e = permutation(est, x, y, groups={"ab": [0, 1], "c": [2]}, n_repeats=3, random_state=0)
    back = GlobalExplanation.load(e.save(tmp_path / "perm"))
    np.testing.assert_array_equal(back.importance, e.importance)
    np.testing.assert_array_equal(back.stderr, e.stderr)
    for key in ("scores", "ci_low", "ci_high", "groups"):
        np.testing.assert_array_equal(back.extras[key], e.extras[key])
    assert back.info == e.info and back.params == e.params
    assert back.feature_names == ["ab", "c"] and e.extras["groups"].tolist() == [0, 0, 1, -1]


def test_one_repeat_has_no_stderr() -> None:
    x, y, est = classification_data(60)
    e = permutation(est, x, y, n_repeats=1, random_state=0)
    assert e.stderr is None and np.isnan(e.extras["ci_low"]).all()
    np.testing.assert_array_equal(e.importance, e.extras["scores"][0])


def test_errors() -> None:
    x, y, est = classification_data(40)
    reg = lumos.wrap(linear, output_kind="regression")
    with pytest.raises(UnknownNameError, match="accuracy"):
        permutation(est, x, y, scoring="acuracy")
    with pytest.raises(ShapeError, match="one y value per row"):
        permutation(est, x, y[:-1])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(NonFiniteError):
        permutation(est, bad, y)
    with pytest.raises(InputError, match="needs a classifier"):
        permutation(reg, x, scoring="accuracy")
    with pytest.raises(InputError, match="classifier"):
        permutation(est, x, y, scoring="r2")
    with pytest.raises(InputError, match="n_repeats"):
        permutation(est, x, y, n_repeats=0)
    with pytest.raises(InputError, match="not one of the estimator's classes_"):
        permutation(est, x, y + 5)
    with pytest.raises(InputError, match="does not use y"):
        permutation(est, x, y, scoring="output")
    with pytest.raises(InputError, match="at least 2"):
        permutation(est, x[:1], y[:1])
    with pytest.raises(InputError, match="without gaps"):
        permutation(est, x, y, groups=np.array([0, 0, 2, 2]))
    with pytest.raises(ShapeError, match="input's shape"):
        permutation(est, x, y, groups=np.zeros((40, 4), dtype=int))
    with pytest.raises(InputError, match="not a feature name"):
        permutation(est, x, y, groups={"g": ["nope"]})
    with pytest.raises(InputError, match="constant"):
        permutation(lumos.wrap(lambda a: np.ones(len(a)), output_kind="regression"), x)
    with pytest.raises(InputError, match="batch_size"):
        permutation(est, x, y, batch_size=0)


def test_docstring_examples() -> None:
    assert doctest.testmod(permutation_module, raise_on_error=True).attempted > 0
