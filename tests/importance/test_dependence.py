"""partial_dependence (PDP / ICE / ALE) against closed forms, a naive ALE, and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

import lumos
from lumos.errors import (
    EmptyInputError,
    InputError,
    NonFiniteError,
    ShapeError,
    TargetError,
    UnknownNameError,
)
from lumos.explanation import GlobalExplanation
from lumos.importance.dependence import partial_dependence

W = np.array([1.5, -2.0, 0.25, 3.0])
B = 0.7


def linear(a: np.ndarray) -> np.ndarray:
    return a @ W + B


def curve(e: GlobalExplanation, b: int, key: str = "values") -> np.ndarray:
    """Feature ``b``'s curve without the NaN padding."""
    return e.extras[key][b, : e.info["n_grid"][b]]


# ---------------------------------------------------------------------- PDP closed forms
def test_pdp_of_a_linear_model_is_the_line_through_the_other_features_means() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * [1.0, 2.0, 0.5, 1.0] + [0.0, 1.0, -3.0, 2.0]
    e = partial_dependence(linear, x, [0, 1, 2, 3], grid=7, ice=True)
    assert e.method == "pdp"
    assert e.feature_names == ["x0", "x1", "x2", "x3"]
    assert e.extras["grid"].shape == e.extras["values"].shape == (4, 7)
    assert e.extras["ice"].shape == (50, 4, 7)
    for j in range(4):
        z, pd_, se = curve(e, j, "grid"), curve(e, j), curve(e, j, "stderr")
        # slope w_j exactly, intercept b + Σ_{l≠j} w_l mean(x_l)
        np.testing.assert_allclose(np.diff(pd_) / np.diff(z), W[j], rtol=0, atol=1e-10)
        rest = np.delete(x, j, axis=1) @ np.delete(W, j)
        np.testing.assert_allclose(pd_ - W[j] * z, B + rest.mean(), rtol=0, atol=1e-10)
        # stderr of the mean: only the other features vary across rows
        np.testing.assert_allclose(se, rest.std(ddof=1) / np.sqrt(50), rtol=0, atol=1e-10)
        # ICE of row i: f(x_i) + w_j (z - x_ij)
        ice = e.extras["ice"][:, j]
        expected = linear(x)[:, None] + W[j] * (z[None, :] - x[:, j : j + 1])
        np.testing.assert_allclose(ice, expected, rtol=0, atol=1e-10)
        # importance (Greenwell et al.): std of the curve over the grid = |w_j| std(grid)
        assert e.importance[j] == pytest.approx(abs(W[j]) * z.std(ddof=1), abs=1e-10)
        # default grid: quantiles 0, 1/6, ..., 1 of the feature (observed values, min..max)
        assert z[0] == x[:, j].min() and z[-1] == x[:, j].max()
        assert np.isin(z, x[:, j]).all()


def test_discrete_features_use_their_values_and_grids_are_padded_with_nan() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.integers(0, 3, 40), rng.normal(size=40), rng.integers(0, 2, 40)])
    x = x.astype(float)
    e = partial_dependence(lambda a: a @ [1.0, 2.0, -1.0], x, [0, 1, 2], grid=5)
    assert e.info["discrete"] == [True, False, True]
    assert e.info["n_grid"] == [3, 5, 2]
    np.testing.assert_array_equal(e.extras["grid"][0], [0.0, 1.0, 2.0, np.nan, np.nan])
    np.testing.assert_array_equal(e.extras["grid"][2], [0.0, 1.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(
        e.extras["grid"][1], np.quantile(x[:, 1], [0, 0.25, 0.5, 0.75, 1], method="inverted_cdf")
    )
    assert np.isnan(e.extras["values"][0, 3:]).all() and np.isnan(e.extras["stderr"][2, 2:]).all()
    expected = np.array([0.0, -1.0]) + (x[:, :2] @ [1.0, 2.0]).mean()
    np.testing.assert_allclose(curve(e, 2), expected, rtol=0, atol=1e-12)


def test_explicit_grids_one_for_all_or_one_per_feature() -> None:
    x = np.random.default_rng(2).normal(size=(30, 4))
    shared = partial_dependence(linear, x, [0, 3], grid=[2.0, -1.0, 0.5, 0.5])
    np.testing.assert_array_equal(shared.extras["grid"], [[-1.0, 0.5, 2.0]] * 2)
    per = partial_dependence(linear, x, [0, 3], grid=[[0.0, 1.0], [-5.0, 0.0, 5.0]])
    np.testing.assert_array_equal(per.extras["grid"], [[0.0, 1.0, np.nan], [-5.0, 0.0, 5.0]])
    np.testing.assert_allclose(np.diff(curve(per, 1)), [15.0, 15.0], rtol=0, atol=1e-10)
    # a PDP can be evaluated off the data, even for a feature constant on x
    x[:, 2] = 1.0
    flat = partial_dependence(linear, x, 2, grid=[0.0, 4.0])
    assert np.diff(curve(flat, 0))[0] == pytest.approx(4 * W[2], abs=1e-12)


# ---------------------------------------------------------------------- scikit-learn
def test_pdp_and_ice_match_sklearn_brute_force_on_a_regressor() -> None:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.inspection import partial_dependence as sk_partial_dependence

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 3))
    y = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=120)
    est = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    e = partial_dependence(est, x, [0, 2], grid=12, ice=True)
    for b, j in enumerate([0, 2]):
        z = curve(e, b, "grid")
        ours = curve(e, b)
        assert ours.std() > 0.05  # not a trivially flat curve
        for kind, key in (("average", "values"), ("individual", "ice")):
            ref = sk_partial_dependence(
                est, x, [j], method="brute", kind=kind, custom_values={j: z}
            )
            np.testing.assert_array_equal(ref["grid_values"][0], z)
            got = ours if key == "values" else e.extras["ice"][:, b, : len(z)]
            want = ref[kind][0]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_pdp_matches_sklearn_for_each_class_and_the_default_target() -> None:
    from sklearn.inspection import partial_dependence as sk_partial_dependence
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 3))
    labels = np.array(["cat", "dog", "eel"])[np.argmax(x @ rng.normal(size=(3, 3)), axis=1)]
    clf = LogisticRegression().fit(x, labels)
    ref = sk_partial_dependence(clf, x, [1], method="brute", kind="average", grid_resolution=9)
    z = ref["grid_values"][0]
    for c, name in enumerate(["cat", "dog", "eel"]):
        by_index = partial_dependence(clf, x, 1, grid=z, target=c)
        by_name = partial_dependence(clf, x, 1, grid=z, target=name)
        np.testing.assert_allclose(curve(by_index, 0), ref["average"][c], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(curve(by_name, 0), curve(by_index, 0))
        assert by_index.info["target"] == c and by_index.info["target_rule"] == "given"
    # default: the class predicted most often on x
    most = int(np.argmax(np.bincount(np.argmax(clf.predict_proba(x), axis=1), minlength=3)))
    default = partial_dependence(clf, x, 1, grid=z)
    assert default.info["target"] == most
    assert default.info["target_rule"] == "the class predicted most often on x"
    np.testing.assert_allclose(curve(default, 0), ref["average"][most], rtol=0, atol=1e-10)


# ---------------------------------------------------------------------- ALE
def naive_ale(f, x: np.ndarray, j: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ALE straight from Apley & Zhu: bins (z_{k-1}, z_k] (first one closed), one model call
    per bin for each edge, cumulative sum, centred so the interpolated curve averages 0.
    Also returns each bin's mean and standard error of the local effects."""
    col = x[:, j]
    means, ses = [], []
    for k in range(1, len(edges)):
        inside = (col > edges[k - 1]) & (col <= edges[k])
        if k == 1:
            inside |= col == edges[0]
        upper, lower = x[inside].copy(), x[inside].copy()
        upper[:, j], lower[:, j] = edges[k], edges[k - 1]
        effects = f(upper) - f(lower)
        means.append(effects.mean())
        ses.append(effects.std(ddof=1) / np.sqrt(len(effects)))
    return np.array(means), np.array(ses)


def naive_centred(edges: np.ndarray, means: np.ndarray, col: np.ndarray) -> np.ndarray:
    uncentred = np.concatenate([[0.0], np.cumsum(means)])
    return uncentred - np.interp(col, edges, uncentred).mean()


def test_ale_matches_a_naive_implementation_with_its_error_propagation() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(300, 3))

    def f(a: np.ndarray) -> np.ndarray:
        return np.exp(a[:, 0]) * a[:, 1] + a[:, 2] ** 3 - 2 * a[:, 0] * a[:, 2]

    e = partial_dependence(f, x, [0, 2], kind="ale", grid=15)
    assert e.method == "ale" and e.stderr is None
    for b, j in enumerate([0, 2]):
        edges = curve(e, b, "grid")
        means, ses = naive_ale(f, x, j, edges)
        centred = naive_centred(edges, means, x[:, j])
        np.testing.assert_allclose(curve(e, b), centred, rtol=0, atol=1e-12)
        # centred: the interpolated curve has mean zero over the data; importance is its std
        on_rows = np.interp(x[:, j], edges, curve(e, b))
        assert abs(on_rows.mean()) < 1e-12
        assert e.importance[b] == pytest.approx(np.sqrt(np.mean(on_rows**2)), abs=1e-12)
        # the curve is linear in the bin means: stderr = sqrt(Σ_l J_kl² se_l²), J by unit steps
        jac = np.stack(
            [naive_centred(edges, np.eye(len(means))[ell], x[:, j]) for ell in range(len(means))],
            axis=1,
        )
        np.testing.assert_allclose(
            curve(e, b, "stderr"), np.sqrt(jac**2 @ ses**2), rtol=1e-10, atol=1e-14
        )
        # rows per bin (z_{k-1}, z_k], the minimum in the first
        counts = np.diff(np.searchsorted(np.sort(x[:, j]), edges, side="right"))
        counts[0] += 1
        np.testing.assert_array_equal(e.extras["bin_counts"][b, : len(edges) - 1], counts)


def test_ale_recovers_additive_components_up_to_a_constant() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=(400, 2))

    def g1(t: np.ndarray) -> np.ndarray:
        return t**2

    def g2(t: np.ndarray) -> np.ndarray:
        return np.sin(3 * t)

    e = partial_dependence(lambda a: g1(a[:, 0]) + g2(a[:, 1]), x, [0, 1], kind="ale", grid=20)
    for b, (g, max_g2) in enumerate([(g1, 2.0), (g2, 9.0)]):
        z, ale = curve(e, b, "grid"), curve(e, b)
        # differences between edges are exact: each local effect is g(z_k) - g(z_{k-1})
        np.testing.assert_allclose(ale - ale[0], g(z) - g(z[0]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(curve(e, b, "stderr"), 0.0, rtol=0, atol=1e-12)
        # against the truly centred g: the centring uses the curve interpolated linearly in
        # each bin, off by at most h² max|g''| / 8 (h the widest bin)
        h = np.diff(z).max()
        truth = g(z) - g(x[:, b]).mean()
        tol = h**2 * max_g2 / 8
        assert np.abs(ale - truth).max() <= tol
        assert tol < 0.05 * np.ptp(truth)  # the bound is tight relative to the curve


def test_ale_is_right_where_correlated_features_bias_the_pdp() -> None:
    # x2 ≈ x1; the model adds c (x1 - x2)², ~0 on the data but large off it. Along the data
    # ∂f/∂x1 = 1 + 2c (x1 - x2) ≈ 1, so the effect of x1 is the line z (Apley & Zhu 2020);
    # the PDP averages f over (z, x2) pairs never seen and bends by c E[(z - x2)²].
    rng = np.random.default_rng(7)
    n, eps, c = 2000, 0.002, 20.0
    x1 = rng.uniform(0, 1, n)
    x = np.column_stack([x1, x1 + rng.uniform(-eps, eps, n)])

    def f(a: np.ndarray) -> np.ndarray:
        return a[:, 0] + a[:, 1] + c * (a[:, 0] - a[:, 1]) ** 2

    ale = partial_dependence(f, x, 0, kind="ale", grid=100)
    z = curve(ale, 0, "grid")
    # a bin's mean local effect is h + c h (z_k + z_{k-1} - 2 x2) with |z_k + z_{k-1} - 2 x1|
    # <= h and |x2 - x1| <= eps: the accumulated excess stays within B = c Σ h (h + 2 eps)
    h = np.diff(z)
    bound = c * np.sum(h * (h + 2 * eps))
    assert np.ptp(curve(ale, 0) - z) <= 2 * bound
    pdp = partial_dependence(f, x, 0, grid=z)
    closed = z + x[:, 1].mean() + c * ((z[:, None] - x[None, :, 1]) ** 2).mean(axis=1)
    np.testing.assert_allclose(curve(pdp, 0), closed, rtol=0, atol=1e-10)
    assert np.ptp(curve(pdp, 0) - z) > 5 * 2 * bound  # the PDP is far from the line


def test_ale_of_a_binary_feature_and_explicit_edges() -> None:
    rng = np.random.default_rng(8)
    x = np.column_stack([rng.integers(0, 2, 60), rng.normal(size=60)]).astype(float)
    e = partial_dependence(lambda a: 3 * a[:, 0] + a[:, 1] ** 2, x, 0, kind="ale")
    p = x[:, 0].mean()
    np.testing.assert_allclose(curve(e, 0), [-3 * p, 3 * (1 - p)], rtol=0, atol=1e-12)
    assert e.info["discrete"] == [True]
    # explicit edges: rows outside them are left out, and said so
    edges = [-1.0, 0.0, 1.0]
    inside = (x[:, 1] >= -1) & (x[:, 1] <= 1)
    sq = partial_dependence(lambda a: 3 * a[:, 0] + a[:, 1] ** 2, x, 1, kind="ale", grid=edges)
    assert sq.info["n_rows_used"] == [int(inside.sum())] and inside.sum() < 60
    means = np.array([-1.0, 1.0])  # (0² - 1²), (1² - 0²)
    expected = naive_centred(np.array(edges), means, x[inside, 1])
    np.testing.assert_allclose(curve(sq, 0), expected, rtol=0, atol=1e-12)
    # a bin holding a single row has no variance estimate: the bands say so with NaN
    lone = np.sort(x[:, 1])[-2:].mean()  # only the largest value lies above this edge
    one = partial_dependence(lambda a: a[:, 1] ** 2, x, 1, kind="ale", grid=[-1.0, lone, 9.0])
    assert one.extras["bin_counts"][0, 1] == 1
    assert np.isnan(curve(one, 0, "stderr")).all() and np.isfinite(curve(one, 0)).all()


# ---------------------------------------------------------------------- invariances
def test_curves_do_not_depend_on_batch_size_or_on_which_features_share_the_call() -> None:
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 3))
    est = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, x[:, 0] * x[:, 1])
    for kind in ("pdp", "ale"):
        runs = [
            partial_dependence(est, x, [2, 0, 1], kind=kind, grid=6, batch_size=bs)
            for bs in (1, 7, 113, None)
        ]
        for other in runs[1:]:
            for key in ("grid", "values", "stderr"):
                np.testing.assert_allclose(
                    other.extras[key], runs[0].extras[key], rtol=0, atol=1e-12
                )
            np.testing.assert_allclose(other.importance, runs[0].importance, rtol=0, atol=1e-12)
        for b, j in enumerate([2, 0, 1]):  # one feature per call gives the same rows
            alone = partial_dependence(est, x, j, kind=kind, grid=6, batch_size=5)
            np.testing.assert_allclose(curve(alone, 0), curve(runs[0], b), rtol=0, atol=1e-12)


def test_feature_by_name_and_by_index_agree() -> None:
    import pandas as pd

    rng = np.random.default_rng(10)
    x = rng.normal(size=(25, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    by_name = partial_dependence(linear, frame, ["d", "b"], kind="ale", grid=5)
    by_index = partial_dependence(linear, x, [3, 1], kind="ale", grid=5)
    assert by_name.feature_names == ["d", "b"] and by_index.feature_names == ["x3", "x1"]
    assert by_name.info["features"] == by_index.info["features"] == [3, 1]
    np.testing.assert_array_equal(by_name.extras["values"], by_index.extras["values"])
    named = lumos.wrap(linear, feature_names=["a", "b", "c", "d"])
    one = partial_dependence(named, x, "c", grid=5)
    np.testing.assert_array_equal(
        one.extras["values"], partial_dependence(linear, x, np.int64(2), grid=5).extras["values"]
    )
    assert one.feature_names == ["c"]


def test_torch_model_curves_match_direct_evaluation() -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x = np.random.default_rng(11).normal(size=(30, 3))
    e = partial_dependence(net, x, [1, 2], grid=4, target=1, ice=True, batch_size=16)
    model = lumos.wrap(net)
    for b, j in enumerate([1, 2]):
        for g, z in enumerate(curve(e, b, "grid")):
            copy = x.copy()
            copy[:, j] = z
            direct = model(copy)[:, 1]
            np.testing.assert_allclose(e.extras["ice"][:, b, g], direct, rtol=0, atol=1e-6)


def test_result_round_trips_through_save_and_load(tmp_path) -> None:
    x = np.random.default_rng(12).normal(size=(20, 4))
    e = partial_dependence(linear, x, [0, 1], kind="ale", grid=4)
    back = GlobalExplanation.load(e.save(tmp_path / "ale"))
    for key, value in e.extras.items():
        np.testing.assert_array_equal(back.extras[key], value)
    assert back.info == e.info and back.params == e.params and back.method == "ale"


# ---------------------------------------------------------------------- errors
def test_images_are_refused_with_a_pointer_to_local_methods() -> None:
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(ShapeError, match="occlusion"):
        partial_dependence(lambda a: a.sum(axis=(1, 2, 3)), x, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "pdq"}, UnknownNameError, "Did you mean 'pdp'"),
        ({"feature": "zz"}, UnknownNameError, "no feature names"),
        ({"feature": 4}, InputError, "out of range"),
        ({"feature": [0, 0]}, InputError, "twice"),
        ({"feature": []}, InputError, "empty"),
        ({"feature": 1.5}, InputError, "neither"),
        ({"feature": True}, InputError, "neither"),
        ({"grid": 1}, InputError, "grid >= 2"),
        ({"grid": True}, InputError, "int >= 2"),
        ({"grid": 2.5}, InputError, "int >= 2"),
        ({"grid": [1.0, np.nan]}, InputError, "finite"),
        ({"grid": [3.0, 3.0]}, InputError, "at least 2"),
        ({"grid": np.ones((2, 2))}, InputError, "1-D"),
        ({"grid": [[0.0, 1.0], [2.0, 3.0]]}, InputError, "one grid per feature"),
        ({"feature": 3}, InputError, "constant"),
        ({"ice": True, "kind": "ale"}, InputError, "kind='pdp'"),
        ({"kind": "ale", "grid": [0.0, 0.5, 5.0, 10.0]}, InputError, "holds no row"),
        ({"kind": "ale", "grid": [50.0, 60.0]}, InputError, "inside the grid"),
        ({"target": 1}, TargetError, "out of range"),
        ({"target": [0, 0]}, TargetError, "one output"),
        ({"batch_size": 0}, InputError, "batch_size"),
    ],
)
def test_bad_arguments_raise_typed_errors(kwargs: dict, error: type, match: str) -> None:
    x = np.random.default_rng(13).uniform(0, 1, size=(30, 4))
    x[:, 3] = 2.0
    kwargs = {"feature": 0, **kwargs}
    with pytest.raises(error, match=match):
        partial_dependence(linear, x, kwargs.pop("feature"), **kwargs)


def test_unknown_feature_name_suggests_the_closest() -> None:
    named = lumos.wrap(linear, feature_names=["age", "income", "height", "weight"])
    with pytest.raises(UnknownNameError, match="Did you mean 'income'"):
        partial_dependence(named, np.ones((3, 4)), "incme")


def test_bad_data_and_ambiguous_targets() -> None:
    with pytest.raises(EmptyInputError):
        partial_dependence(linear, np.empty((0, 4)), 0)
    x = np.random.default_rng(14).normal(size=(10, 4))
    x[3, 2] = np.nan
    with pytest.raises(NonFiniteError, match="impute"):
        partial_dependence(linear, x, 0)
    two = lumos.wrap(lambda a: a[:, :2] * 3.0, output_kind="regression")
    with pytest.raises(TargetError, match="target=<index"):
        partial_dependence(two, np.random.default_rng(15).normal(size=(10, 4)), 0)
    ok = partial_dependence(two, np.random.default_rng(15).normal(size=(10, 4)), 1, target=1)
    np.testing.assert_allclose(np.diff(curve(ok, 0)) / np.diff(curve(ok, 0, "grid")), 3.0)
