"""exact_shapley, kernel_shap and sampling_shapley against closed forms, a naive permutation
reference, the efficiency axiom, convergence rates and standard-error calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lumos
import lumos.attribution.shapley as shapley
from lumos.attribution.shapley import ExactShapley, KernelShap, SamplingShapley
from lumos.errors import InputError, ShapeError, UnknownNameError

RNG = np.random.default_rng(7)
METHODS = ("exact_shapley", "kernel_shap", "sampling_shapley")


def tanh_mlp(d: int, hidden: int = 12, seed: int = 0, outputs: int = 1):
    """A random one-hidden-layer tanh network on numpy arrays (n, d) → (n, outputs)."""
    r = np.random.default_rng(seed)
    w1, b1 = r.normal(size=(d, hidden)), r.normal(size=hidden)
    w2 = r.normal(size=(hidden, outputs))
    return lambda a: np.tanh(a @ w1 + b1) @ w2


def batch_exact_mlp(d: int, hidden: int = 8, seed: int = 0):
    """A tanh network without BLAS calls: a row's output does not depend on the batch."""
    r = np.random.default_rng(seed)
    w1, b1, w2 = r.normal(size=(d, hidden)), r.normal(size=hidden), r.normal(size=hidden)
    return lambda a: (np.tanh((a[:, :, None] * w1).sum(1) + b1) * w2).sum(1)


def naive_shapley(f, x_row, background, groups, weights=None):
    """Average marginal contribution over ALL orders of the players (itertools.permutations)."""
    weights = np.full(len(background), 1 / len(background)) if weights is None else weights

    def v(coalition):
        a = background.copy()
        in_no_group = np.ones(x_row.size, dtype=bool)
        for members in groups:
            in_no_group[members] = False
        a[:, in_no_group] = x_row[in_no_group]
        for p in coalition:
            a[:, groups[p]] = x_row[groups[p]]
        return float(weights @ f(a).reshape(len(a), -1)[:, 0])

    phi = np.zeros(len(groups))
    orders = list(itertools.permutations(range(len(groups))))
    for order in orders:
        before = v(())
        for k, p in enumerate(order):
            after = v(order[: k + 1])
            phi[p] += after - before
            before = after
    return phi / len(orders), v(())


# ----------------------------------------------------------------------------- exact
def test_exact_linear_model_closed_form_and_groups() -> None:
    w, c = RNG.normal(size=6), 0.3
    f = lambda a: a @ w + c  # noqa: E731
    x = RNG.normal(size=(5, 6))
    background = RNG.normal(loc=1.5, size=(40, 6))
    mean = background.mean(0)
    e = lumos.explain(f, x, method="exact_shapley", background=background)
    np.testing.assert_allclose(e.values, w * (x - mean), atol=1e-6)
    np.testing.assert_allclose(e.base_value, np.full(5, mean @ w + c), atol=1e-10)
    assert e.method == "exact_shapley" and e.stderr is None
    assert e.params["background"] == "<ndarray of shape (40, 6)>"
    # groups: each group gets the sum of its members' terms, broadcast to every member;
    # feature 5 is in no group and keeps x's value, so v(∅) depends on the row
    groups = [[0, 2], [1], [3, 4]]
    g = lumos.explain(f, x, method="exact_shapley", background=background, groups=groups)
    terms = w * (x - mean)
    for members in groups:
        for j in members:
            np.testing.assert_allclose(g.values[:, j], terms[:, members].sum(1), atol=1e-6)
    np.testing.assert_array_equal(g.values[:, 5], 0.0)
    np.testing.assert_allclose(g.base_value, (mean @ w + c) + terms[:, 5], atol=1e-10)
    np.testing.assert_array_equal(g.groups, [0, 1, 0, 2, 2, -1])
    assert g.extras["group_values"].shape == (5, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_equals_naive_permutation_reference(seed: int) -> None:
    r = np.random.default_rng(seed)
    f = tanh_mlp(5, seed=seed)
    x, background = r.normal(size=(3, 5)), r.normal(size=(8, 5))
    e = lumos.explain(f, x, method="exact_shapley", background=background)
    singletons = [[j] for j in range(5)]
    for i in range(3):
        ref, v_empty = naive_shapley(f, x[i], background, singletons)
        np.testing.assert_allclose(e.values[i], ref, atol=1e-10)
        np.testing.assert_allclose(e.base_value[i], v_empty, atol=1e-12)
    assert np.abs(e.values).max() > 0.05  # not a trivial game
    # groups over 7 features, one element in no group
    f7 = tanh_mlp(7, seed=seed + 10)
    x7, bg7 = r.normal(size=(2, 7)), r.normal(size=(6, 7))
    groups = [[0, 3], [1], [2, 5], [6]]
    eg = lumos.explain(f7, x7, method="exact_shapley", background=bg7, groups=groups)
    for i in range(2):
        ref, v_empty = naive_shapley(f7, x7[i], bg7, groups)
        np.testing.assert_allclose(eg.extras["group_values"][i], ref, atol=1e-10)
        np.testing.assert_allclose(eg.base_value[i], v_empty, atol=1e-12)


def test_exact_refuses_too_many_players() -> None:
    f = lambda a: a.sum(1)  # noqa: E731
    x = np.zeros((1, shapley.MAX_EXACT_PLAYERS + 1))
    with pytest.raises(InputError, match="kernel_shap"):
        lumos.explain(f, x, method="exact_shapley", background=np.ones((2, x.shape[1])))
    # grouping the same input into few players makes it feasible
    groups = [list(range(0, 11)), list(range(11, 21))]
    e = lumos.explain(f, x, method="exact_shapley", background=np.ones((2, 21)), groups=groups)
    np.testing.assert_allclose(e.extras["group_values"], [[-11.0, -10.0]], atol=1e-12)


# ----------------------------------------------------------------------------- all three
@pytest.mark.parametrize("method", METHODS)
def test_efficiency_holds_exactly(method: str) -> None:
    f = tanh_mlp(6, seed=3, outputs=2)
    x, background = RNG.normal(size=(4, 6)), RNG.normal(size=(10, 6))
    extra = {} if method == "exact_shapley" else {"n_samples": 30, "random_state": 0}
    for groups in (None, [[0, 1], [2], [4, 5]]):
        e = lumos.explain(
            f, x, method=method, background=background, groups=groups, target=1, **extra
        )
        np.testing.assert_allclose(
            e.extras["group_values"].sum(1), e.prediction - e.base_value, atol=1e-10
        )
        np.testing.assert_allclose(e.prediction, f(x)[:, 1], atol=1e-12)
        if groups is None:
            np.testing.assert_allclose(e.values.sum(1), e.prediction - e.base_value, atol=1e-10)
            base = f(background)[:, 1].mean()
            np.testing.assert_allclose(e.base_value, np.full(4, base), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_output_for_any_batch_size(method: str) -> None:
    f = batch_exact_mlp(5, seed=4)
    x, background = RNG.normal(size=(6, 5)), RNG.normal(size=(9, 5))
    extra = {} if method == "exact_shapley" else {"n_samples": 24, "random_state": 11}
    runs = [
        lumos.explain(f, x, method=method, background=background, batch_size=bs, **extra)
        for bs in (1, 7, 1000, None)
    ]
    for run in runs[1:]:
        assert np.array_equal(run.values, runs[0].values)
        assert (run.stderr is None) == (runs[0].stderr is None)
        if run.stderr is not None:
            assert np.array_equal(run.stderr, runs[0].stderr)
    if method != "exact_shapley":
        other = lumos.explain(
            f, x, method=method, background=background, n_samples=24, random_state=12
        )
        assert not np.allclose(other.values, runs[0].values, atol=1e-6)
        assert runs[0].provenance["seed"] == 11


def test_torch_model_equals_numpy_black_box() -> None:
    import torch

    from lumos import zoo

    net = zoo.torch_mlp(6, 3, hidden=(8,), seed=2)
    black_box = lambda a: net(torch.as_tensor(a, dtype=torch.float32)).detach().numpy()  # noqa: E731
    x = RNG.normal(size=(3, 6)).astype(np.float32)
    background = RNG.normal(size=(7, 6)).astype(np.float32)
    for method, extra in (
        ("exact_shapley", {}),
        ("kernel_shap", {"n_samples": 30, "random_state": 0}),
        ("sampling_shapley", {"n_samples": 10, "random_state": 0}),
    ):
        ref = lumos.explain(black_box, x, method=method, background=background, target=2, **extra)
        for bs in (5, None):
            run = lumos.explain(
                net, x, method=method, background=background, target=2, batch_size=bs, **extra
            )
            assert np.abs(ref.values).max() > 1e-3
            np.testing.assert_allclose(run.values, ref.values, atol=1e-6)


# ----------------------------------------------------------------------------- kernel SHAP
def test_kernel_shap_with_full_budget_is_exact_with_zero_stderr() -> None:
    f = tanh_mlp(6, seed=5)
    x, background = RNG.normal(size=(4, 6)), RNG.normal(size=(12, 6))
    exact = lumos.explain(f, x, method="exact_shapley", background=background)
    for budget in (62, 1000):  # 2^6 - 2 coalitions cover everything
        k = lumos.explain(
            f, x, method="kernel_shap", background=background, n_samples=budget, random_state=0
        )
        np.testing.assert_allclose(k.values, exact.values, atol=1e-10)
        np.testing.assert_array_equal(k.stderr, 0.0)
        assert k.extras["n_evaluated"].tolist() == [62] * 4
    for paired in (True, False):  # a budget below that samples, and the values move
        k = lumos.explain(
            f,
            x,
            method="kernel_shap",
            background=background,
            n_samples=40,
            paired=paired,
            random_state=1,
        )
        assert np.abs(k.values - exact.values).max() > 1e-6 and (k.stderr > 0).all()
        assert k.extras["n_evaluated"].tolist() == [40] * 4


def test_kernel_shap_linear_model_is_exact_at_any_budget() -> None:
    w = RNG.normal(size=9)
    f = lambda a: a @ w  # noqa: E731
    x, background = RNG.normal(size=(3, 9)), RNG.normal(size=(5, 9))
    k = lumos.explain(
        f, x, method="kernel_shap", background=background, n_samples=30, random_state=3
    )
    np.testing.assert_allclose(k.values, w * (x - background.mean(0)), atol=1e-10)
    np.testing.assert_allclose(k.stderr, 0.0, atol=1e-10)


def test_kernel_design_enumerates_like_shap() -> None:
    rng = np.random.default_rng(0)
    # 12 players, budget 512: sizes 1, 11, 2, 10 enumerated (156), 356 sampled (shap's choice)
    d = shapley._kernel_design(12, 512, True, rng)
    assert len(d.enumerated) == 156 and sorted(set(d.enumerated.sum(1))) == [1, 2, 10, 11]
    sizes = d.units.sum(2)
    assert set(np.unique(sizes)) <= set(range(3, 10))
    np.testing.assert_array_equal(sizes[:, 0] + sizes[:, 1], 12)  # paired with complements
    assert len(np.unique(np.packbits(d.units.reshape(-1, 12), axis=1), axis=0)) == 356
    np.testing.assert_allclose(d.enumerated_weight.sum() + d.sampled_mass, 1.0, atol=1e-12)


def _error(method: str, f, x, background, exact, budget: int, seeds: range, **kw) -> float:
    errs = [
        np.sqrt(
            np.mean(
                (
                    lumos.explain(
                        f,
                        x,
                        method=method,
                        background=background,
                        n_samples=budget,
                        random_state=s,
                        **kw,
                    ).values
                    - exact
                )
                ** 2
            )
        )
        for s in seeds
    ]
    return float(np.mean(errs))


@pytest.mark.parametrize(("method", "small"), [("kernel_shap", 68), ("sampling_shapley", 40)])
def test_error_halves_when_the_budget_quadruples(method: str, small: int) -> None:
    # kernel_shap with 10 players: sizes 1 and 9 (20 coalitions) are enumerated at both
    # budgets, so the sampled part goes from 24 to 96 pairs of coalitions
    f = tanh_mlp(10, hidden=16, seed=6)
    x, background = RNG.normal(size=(4, 10)), RNG.normal(size=(10, 10))
    exact = lumos.explain(f, x, method="exact_shapley", background=background).values
    big = 20 + 4 * (small - 20) if method == "kernel_shap" else 4 * small
    e_small = _error(method, f, x, background, exact, small, range(12))
    e_big = _error(method, f, x, background, exact, big, range(12))
    assert 0.35 < e_big / e_small < 0.7, (e_small, e_big)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("kernel_shap", {"n_samples": 100}),
        ("kernel_shap", {"n_samples": 100, "paired": False}),
        ("kernel_shap", {"n_samples": 60, "n_background_samples": 1}),
        ("kernel_shap", {"n_samples": 40, "n_background_samples": 3}),
        ("sampling_shapley", {"n_samples": 60}),
        ("sampling_shapley", {"n_samples": 40, "antithetic": False}),
    ],
)
def test_standard_errors_are_calibrated(method: str, params: dict) -> None:
    # 8 players, 2^8 - 2 = 254 coalitions: none of these budgets enumerates everything
    f = tanh_mlp(8, hidden=16, seed=1)
    r = np.random.default_rng(1)
    x, background = r.normal(size=(4, 8)), r.normal(size=(20, 8))
    exact = lumos.explain(f, x, method="exact_shapley", background=background).values
    covered = []
    for seed in range(50):
        e = lumos.explain(f, x, method=method, background=background, random_state=seed, **params)
        covered.append(np.abs(e.values - exact) <= 1.96 * e.stderr)
    coverage = float(np.mean(covered))
    assert 0.90 <= coverage <= 0.99, coverage


def test_kernel_shap_background_strata() -> None:
    f = tanh_mlp(8, hidden=16, seed=1)
    r = np.random.default_rng(1)
    x, background = r.normal(size=(4, 8)), r.normal(size=(20, 8))
    exact = lumos.explain(f, x, method="exact_shapley", background=background)
    calls = []

    def counting(a: np.ndarray) -> np.ndarray:
        calls.append(len(a))
        return f(a)

    runs = {}
    for per_stratum in (None, 1, 3):
        calls.clear()
        runs[per_stratum] = lumos.explain(
            counting,
            x,
            method="kernel_shap",
            background=background,
            n_samples=60,
            n_background_samples=per_stratum,
            random_state=0,
        )
        # the same cost: f(x), f(background), then 60 coalitions × 20 background rows per row
        assert sum(calls) == 4 + 20 + 4 * 60 * 20
        e = runs[per_stratum]
        np.testing.assert_allclose(e.values.sum(1), e.prediction - e.base_value, atol=1e-10)
        np.testing.assert_allclose(e.base_value, exact.base_value, atol=1e-12)
    # 20 strata of one row cover 20 × 60 distinct (coalition, row) pairs: less error
    errors = {
        k: np.mean(
            [
                np.sqrt(np.mean((_kernel(f, x, background, 60, seed, k) - exact.values) ** 2))
                for seed in range(10)
            ]
        )
        for k in (None, 1)
    }
    assert errors[1] < 0.75 * errors[None], errors
    # every coalition of every stratum: exact, standard errors zero
    full = lumos.explain(
        f, x, method="kernel_shap", background=background, n_samples=254, n_background_samples=1
    )
    np.testing.assert_allclose(full.values, exact.values, atol=1e-10)
    np.testing.assert_array_equal(full.stderr, 0.0)
    assert full.extras["n_evaluated"].tolist() == [20 * 254] * 4
    # uneven strata (20 rows in 7: six of 3, one of 2), weighted k-means centres, and an
    # element in no group (v(∅) then depends on the row): still exact, still efficient
    groups = [[0, 1], [2], [3, 4], [6, 7]]
    for kw in ({"background_summary": 9}, {}):
        ref = lumos.explain(
            f, x, method="exact_shapley", background=background, groups=groups, **kw
        )
        k = lumos.explain(
            f,
            x,
            method="kernel_shap",
            background=background,
            groups=groups,
            n_samples=14,
            n_background_samples=3,
            **kw,
        )
        np.testing.assert_allclose(k.values, ref.values, atol=1e-10)
        np.testing.assert_allclose(k.base_value, ref.base_value, atol=1e-12)
        s = lumos.explain(
            f,
            x,
            method="kernel_shap",
            background=background,
            groups=groups,
            n_samples=8,
            n_background_samples=3,
            random_state=2,
            **kw,
        )
        assert np.abs(s.values - ref.values).max() > 1e-6
        np.testing.assert_allclose(
            s.extras["group_values"].sum(1), s.prediction - ref.base_value, atol=1e-10
        )


def _kernel(f, x, background, n_samples, seed, per_stratum):
    return lumos.explain(
        f,
        x,
        method="kernel_shap",
        background=background,
        n_samples=n_samples,
        n_background_samples=per_stratum,
        random_state=seed,
    ).values


# ----------------------------------------------------------------------------- sampling
def test_sampling_shapley_tolerance_stops_early() -> None:
    f = tanh_mlp(6, seed=8)
    x, background = RNG.normal(size=(5, 6)), RNG.normal(size=(10, 6))
    e = lumos.explain(
        f,
        x,
        method="sampling_shapley",
        background=background,
        n_samples=4000,
        tolerance=0.02,
        random_state=0,
    )
    used = e.extras["n_samples_used"]
    stopped = used < 4000
    assert stopped.any() and (used >= 32).all() and (used % 2 == 0).all()
    assert (e.extras["group_stderr"][stopped] < 0.02).all()
    assert (e.extras["group_stderr"][~stopped] >= 0.02).any(axis=1).all()
    # rounds double: 16, 32, 64, ... antithetic pairs
    assert set(used.tolist()) <= {32 * 2**k for k in range(8)} | {4000}
    # a linear game: every permutation gives the exact values, se 0, one round
    w = RNG.normal(size=6)
    lin = lumos.explain(
        lambda a: a @ w,
        x,
        method="sampling_shapley",
        background=background,
        tolerance=1e-9,
        random_state=0,
    )
    np.testing.assert_allclose(lin.values, w * (x - background.mean(0)), atol=1e-10)
    assert lin.extras["n_samples_used"].tolist() == [32] * 5
    # without a tolerance every row uses the whole budget (odd budgets round up to pairs)
    full = lumos.explain(
        f, x, method="sampling_shapley", background=background, n_samples=9, random_state=0
    )
    assert full.extras["n_samples_used"].tolist() == [10] * 5


def test_single_player_and_single_unit() -> None:
    f = tanh_mlp(3, seed=9)
    x, background = RNG.normal(size=(2, 3)), RNG.normal(size=(4, 3))
    for method in METHODS:
        e = lumos.explain(f, x, method=method, background=background, groups=[[0, 1, 2]])
        np.testing.assert_allclose(
            e.values, np.repeat((e.prediction - e.base_value)[:, None], 3, 1), atol=1e-12
        )
    one_pair = lumos.explain(
        f, x, method="sampling_shapley", background=background, n_samples=2, random_state=0
    )
    assert np.isnan(one_pair.stderr).all()  # one antithetic pair: no spread to estimate


# ----------------------------------------------------------------------------- background
def test_background_summary_weights_the_kmeans_centres() -> None:
    from sklearn.cluster import KMeans

    f = tanh_mlp(4, seed=10)
    x, background = RNG.normal(size=(2, 4)), RNG.normal(size=(30, 4))
    e = lumos.explain(f, x, method="exact_shapley", background=background, background_summary=5)
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(background)
    weights = np.bincount(km.labels_, minlength=5) / 30
    for i in range(2):
        ref, v_empty = naive_shapley(f, x[i], km.cluster_centers_, [[j] for j in range(4)], weights)
        np.testing.assert_allclose(e.values[i], ref, atol=1e-10)
        np.testing.assert_allclose(e.base_value[i], v_empty, atol=1e-12)
    with pytest.raises(InputError, match="background_summary"):
        lumos.explain(f, x, method="exact_shapley", background=background, background_summary=31)
    # the summary feeds the other estimators too
    k = lumos.explain(
        f, x, method="kernel_shap", background=background, background_summary=5, n_samples=14
    )
    np.testing.assert_allclose(k.values, e.values, atol=1e-10)  # 14 = 2^4 - 2: exact


def test_bad_arguments_raise_typed_errors() -> None:
    f = tanh_mlp(4, seed=11)
    x = RNG.normal(size=(2, 4))
    for method in METHODS:
        with pytest.raises(InputError, match="background="):
            lumos.explain(f, x, method=method)
        with pytest.raises(ShapeError, match="rows of shape"):
            lumos.explain(f, x, method=method, background=np.zeros((3, 5)))
        with pytest.raises(InputError, match="background_summary"):
            lumos.explain(f, x, method=method, background=np.zeros((3, 4)), background_summary=0)
    with pytest.raises(InputError, match="n_samples"):
        KernelShap(f, background=np.zeros((3, 4)), n_samples=1)
    with pytest.raises(InputError, match="n_samples"):
        SamplingShapley(f, background=np.zeros((3, 4)), n_samples=1.5)
    with pytest.raises(InputError, match="tolerance"):
        SamplingShapley(f, background=np.zeros((3, 4)), tolerance=-0.1)
    with pytest.raises(InputError, match="n_background_samples"):
        KernelShap(f, background=np.zeros((3, 4)), n_background_samples=0)
    with pytest.raises(UnknownNameError, match="nsamples"):
        lumos.explain(f, x, method="kernel_shap", background=np.zeros((3, 4)), nsamples=10)
    with pytest.raises(InputError, match="overlaps"):
        lumos.explain(
            f, x, method="exact_shapley", background=np.zeros((3, 4)), groups=[[0, 1], [1]]
        )


def test_registered_and_described() -> None:
    methods = lumos.available_methods()
    for name, cls in zip(METHODS, (ExactShapley, KernelShap, SamplingShapley), strict=True):
        assert lumos.attribution.get_explainer(name) is cls
        assert methods[name]
    assert KernelShap.stochastic and SamplingShapley.stochastic and not ExactShapley.stochastic
