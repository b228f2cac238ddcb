"""Faithfulness metrics: analytic oracles on a linear model, hand-computed paper formulas,
equality with quantus 0.6.0 where the definitions agree, reproducibility, batch-size
invariance, sharing under ``lumos.evaluate`` and bad input."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

import lumos
import lumos.zoo
from lumos import Explanation
from lumos.errors import InputError, ShapeError, UnknownNameError
from lumos.metrics import faithfulness as F
from lumos.metrics._base import get_metric, row_seeds, sharing

ALL = (
    "deletion",
    "insertion",
    "pixel_flipping",
    "region_perturbation",
    "faithfulness_correlation",
    "faithfulness_estimate",
    "monotonicity",
    "monotonicity_correlation",
)


# ----------------------------------------------------------------------------- fixtures
class Linear:
    """f(x) = x_flat @ W + c in float64, counting its calls."""

    def __init__(self, d: int, k: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = rng.normal(size=(d, k))
        self.c = rng.normal(size=k)
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x.reshape(len(x), -1) @ self.W + self.c


def linear_case(d: int = 8, n: int = 5, b: float = 0.3, seed: int = 0):
    """A linear model, rows, targets and the exact attribution a = w_t ⊙ (x - b)."""
    f = Linear(d, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(n, d))
    t = rng.integers(0, 3, size=n)
    a = f.W[:, t].T * (x - b)
    model = lumos.wrap(f, output_kind="logit")
    return f, model, Explanation(values=a, data=x, target=t)


class Cast(torch.nn.Module):
    """A float64 network that accepts the float32 tensors quantus feeds it."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(torch.float64))


def cnn_case(channels: int = 1, n: int = 4, seed: int = 0):
    """The tiny reference CNN in float64 (so quantus' float32 inputs change nothing) with
    float32-exact inputs and tie-free random attributions."""
    net = lumos.zoo.torch_cnn((channels, 8, 8), 3, seed=seed, output="logit").double()
    net = Cast(net).eval()
    rng = np.random.default_rng(seed + 10)
    x = rng.normal(size=(n, channels, 8, 8)).astype(np.float32).astype(np.float64)
    a = rng.normal(size=x.shape)
    t = rng.integers(0, 3, size=n)
    return net, x, a, t, Explanation(values=a, data=x, target=t)


def run_quantus(metric, net, x, a, t):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(
            model=net,
            x_batch=x,
            y_batch=t,
            a_batch=a,
            channel_first=True,
            softmax=False,
            device="cpu",
            batch_size=len(x),
        )
    return np.asarray(out, dtype=np.float64)


QUANTUS_FLAGS = {"normalise": False, "disable_warnings": True, "display_progressbar": False}


# ----------------------------------------------------------------------------- registry
def test_registry_metadata() -> None:
    directions = {
        "deletion": False,
        "insertion": True,
        "pixel_flipping": True,
        "region_perturbation": True,
        "faithfulness_correlation": True,
        "faithfulness_estimate": True,
        "monotonicity": True,
        "monotonicity_correlation": True,
    }
    for name in ALL:
        info = get_metric(name)
        assert info.category == "faithfulness"
        assert info.higher_is_better is directions[name]
        assert info.requires == (frozenset({"image"}) if name == "region_perturbation" else set())
    more = (
        "comprehensiveness",
        "infidelity",
        "noisy_linear_imputation",
        "pgi",
        "pgu",
        "road",
        "sufficiency",
    )  # the module's second half (tests/metrics/test_faithfulness_more.py)
    assert sorted(F.__all__) == sorted(ALL + more)


# ----------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("b", [0.0, 0.3, -1.5])
def test_linear_oracle_correlations_are_exactly_one(b: float) -> None:
    _, model, e = linear_case(d=10, n=5, b=b)
    for subset_size in (1, 3, 9):
        r = F.faithfulness_correlation(
            model, e, baseline=b, n_samples=30, subset_size=subset_size, random_state=1
        )
        np.testing.assert_allclose(r.scores, 1.0, rtol=0, atol=1e-9)
        # the output drops equal the attribution sums, subset by subset
        np.testing.assert_allclose(
            r.extras["output_drops"], r.extras["attribution_sums"], rtol=0, atol=1e-12
        )
    for k in (1, 2, 3):
        r = F.faithfulness_estimate(model, e, baseline=b, features_per_step=k)
        np.testing.assert_allclose(r.scores, 1.0, rtol=0, atol=1e-9)
    # monotonicity correlation: e_i = a_i^2 is increasing in |a_i|
    r = F.monotonicity_correlation(model, e, baseline=b, n_samples=3)
    np.testing.assert_allclose(r.scores, 1.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        r.extras["expected_change"], r.extras["attribution_sums"] ** 2, rtol=1e-10, atol=1e-12
    )


def test_deletion_curve_closed_form() -> None:
    f, model, e = linear_case(d=8, n=4, b=0.5)
    r = F.deletion(model, e, baseline=0.5, features_per_step=1)
    fx = (e.data @ f.W + f.c)[np.arange(4), e.target]
    expected = fx[:, None] - np.concatenate(
        [np.zeros((4, 1)), np.cumsum(-np.sort(-e.values, axis=1), axis=1)], axis=1
    )
    np.testing.assert_allclose(r.curve, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r.curve_x, np.arange(9) / 8)


def _curve_for_ordering(model, e: Explanation, order: np.ndarray, b: float) -> np.ndarray:
    """The deletion curve when features are removed in ``order`` (one per row)."""
    d = e.n_features
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(d)[None].repeat(len(order), 0), 1)
    # values that make ``order`` the MoRF order: the first gets the largest value
    forced = Explanation(values=(d - ranks).astype(float), data=e.data, target=e.target)
    return F.deletion(model, forced, baseline=b, features_per_step=1).curve


def test_morf_deletion_curve_is_pointwise_lowest_of_random_orderings() -> None:
    _, model, e = linear_case(d=12, n=4, b=0.2)
    morf = F.deletion(model, e, baseline=0.2, features_per_step=1).curve
    rng = np.random.default_rng(3)
    lowest = np.full_like(morf, np.inf)
    for _ in range(200):
        order = np.stack([rng.permutation(12) for _ in range(4)])
        other = _curve_for_ordering(model, e, order, 0.2)
        assert np.all(morf <= other + 1e-12)
        lowest = np.minimum(lowest, other)
    # not vacuous: random orderings do lie strictly above somewhere
    assert np.max(lowest - morf) > 1e-3


def test_morf_deletion_curve_is_the_exact_minimum_over_all_orderings() -> None:
    _, model, e = linear_case(d=5, n=3, b=-0.4)
    morf = F.deletion(model, e, baseline=-0.4, features_per_step=1).curve
    perms = np.array(list(itertools.permutations(range(5))))
    lowest = np.full_like(morf, np.inf)
    for perm in perms:
        other = _curve_for_ordering(model, e, np.tile(perm, (3, 1)), -0.4)
        lowest = np.minimum(lowest, other)
    np.testing.assert_allclose(morf, lowest, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- deletion / insertion
def test_deletion_auc_trapezoid_on_fraction_axis() -> None:
    _, model, e = linear_case(d=10, n=3)
    r = F.deletion(model, e, baseline=0.0, n_steps=4)
    # counts floor(j * 10 / 4) = 0, 2, 5, 7, 10: uneven steps
    np.testing.assert_array_equal(r.extras["n_features_changed"], [0, 2, 5, 7, 10])
    x = np.array([0, 2, 5, 7, 10]) / 10
    y = r.curve
    by_hand = sum((x[j + 1] - x[j]) * (y[:, j] + y[:, j + 1]) / 2 for j in range(4))
    np.testing.assert_allclose(r.scores, by_hand, rtol=0, atol=1e-12)
    # RISE's equal-step formula (sum - ends / 2) / K when K divides d
    r5 = F.deletion(model, e, baseline=0.0, n_steps=5)
    y5 = r5.curve
    rise = (y5.sum(axis=1) - y5[:, 0] / 2 - y5[:, -1] / 2) / 5
    np.testing.assert_allclose(r5.scores, rise, rtol=0, atol=1e-12)
    assert r5.params["n_steps"] == 5


def _image_model(x: np.ndarray) -> np.ndarray:
    """A nonlinear numpy classifier on (n, 1, 8, 8) images: softmax of 3 pooled features."""
    flat = x.reshape(len(x), -1)
    z = np.stack(
        [np.tanh(flat[:, :32]).sum(1), (flat[:, 16:48] ** 2).mean(1), np.sin(flat).sum(1)],
        axis=1,
    )
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_insertion_from_blurred_image_matches_naive_loop() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 1, 8, 8))
    a = rng.normal(size=x.shape)
    t = np.array([0, 2, 1])
    e = Explanation(values=a, data=x, target=t)
    r = F.insertion(_image_model, e, n_steps=16)
    assert r.params["baseline"] == "blurred"
    blurred = gaussian_filter(x, sigma=(0, 0, 1.0, 1.0), mode="nearest")  # sigma = 8 / 8
    expected = np.empty((3, 17))
    for i in range(3):
        order = np.argsort(-a[i].ravel(), kind="stable")
        for j in range(17):
            z = blurred[i].ravel().copy()
            z[order[: j * 4]] = x[i].ravel()[order[: j * 4]]
            expected[i, j] = _image_model(z.reshape(1, 1, 8, 8))[0, t[i]]
    np.testing.assert_allclose(r.curve, expected, rtol=0, atol=1e-12)
    auc = ((expected[:, 1:] + expected[:, :-1]) / 2).sum(axis=1) / 16
    np.testing.assert_allclose(r.scores, auc, rtol=0, atol=1e-12)
    assert r.higher_is_better and r.curve_x[0] == 0 and r.curve_x[-1] == 1


def test_insertion_default_baseline_on_tables_is_zeros() -> None:
    f, model, e = linear_case(d=6, n=3)
    r = F.insertion(model, e, features_per_step=2)
    assert r.params["baseline"] == "zeros"
    np.testing.assert_allclose(r.curve[:, 0], f.c[e.target], rtol=0, atol=1e-12)
    fx = (e.data @ f.W + f.c)[np.arange(3), e.target]
    np.testing.assert_allclose(r.curve[:, -1], fx, rtol=0, atol=1e-12)
    # insertion of a = w ⊙ x from zeros rises by the largest attributions first
    e0 = Explanation(values=f.W[:, e.target].T * e.data, data=e.data, target=e.target)
    r0 = F.insertion(model, e0, features_per_step=2)
    expected = f.c[e.target][:, None] + np.concatenate(
        [np.zeros((3, 1)), np.cumsum(-np.sort(-e0.values, axis=1), axis=1)[:, 1::2]], axis=1
    )
    np.testing.assert_allclose(r0.curve, expected, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- quantus
@pytest.mark.parametrize(("channels", "step"), [(1, 1), (1, 4), (3, 8)])
def test_pixel_flipping_curve_equals_quantus(channels: int, step: int) -> None:
    import quantus

    net, x, a, t, e = cnn_case(channels)
    q = quantus.PixelFlipping(
        features_in_step=step, abs=False, perturb_baseline=0.0, **QUANTUS_FLAGS
    )
    expected = run_quantus(q, net, x, a, t)
    r = F.pixel_flipping(net, e, baseline=0.0, features_per_step=step)
    np.testing.assert_allclose(r.curve, expected, rtol=0, atol=1e-6)
    # AOPC (Samek et al. 2017) over f(x) and the quantus curve, by hand
    fx = net(torch.as_tensor(x)).detach().numpy()[np.arange(len(x)), t]
    aopc = (fx[:, None] - np.concatenate([fx[:, None], expected], axis=1)).mean(axis=1)
    np.testing.assert_allclose(r.scores, aopc, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("channels", "patch", "regions"), [(1, 2, 10), (1, 4, 100), (3, 2, 7)])
def test_region_perturbation_curve_equals_quantus(channels: int, patch: int, regions: int) -> None:
    import quantus

    net, x, a, t, e = cnn_case(channels)
    for order in ("morf", "lerf"):
        q = quantus.RegionPerturbation(
            patch_size=patch,
            regions_evaluation=regions,
            order=order,
            abs=False,
            perturb_baseline=0.0,
            **QUANTUS_FLAGS,
        )
        expected = run_quantus(q, net, x, a, t)
        r = F.region_perturbation(
            net, e, patch_size=patch, n_regions=regions, order=order, baseline=0.0
        )
        np.testing.assert_allclose(r.curve, expected, rtol=0, atol=1e-6)
        # the paper's AOPC: the k = 0 term (zero) counts, divide by L + 1
        n_steps = expected.shape[1]
        np.testing.assert_allclose(r.scores, expected.sum(axis=1) / (n_steps + 1), atol=1e-6)
        assert r.params["n_regions"] == n_steps == min(regions, (8 // patch) ** 2)


def test_faithfulness_correlation_equals_quantus_on_the_same_subsets(monkeypatch) -> None:
    import quantus

    net, x, a, t, e = cnn_case(1)
    n, runs = len(x), 25
    r = F.faithfulness_correlation(
        net, e, baseline=0.0, n_samples=runs, subset_size=12, random_state=5
    )
    # quantus draws subset (run s, row i) from np.random.choice, runs outer, rows inner
    fed = iter([r.extras["subsets"][i, s] for s in range(runs) for i in range(n)])
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(fed))
    q = quantus.FaithfulnessCorrelation(
        nr_runs=runs,
        subset_size=12,
        abs=False,
        perturb_baseline=0.0,
        return_aggregate=False,
        **QUANTUS_FLAGS,
    )
    expected = run_quantus(q, net, x, a, t)
    np.testing.assert_allclose(r.scores, expected, rtol=0, atol=1e-6)


def test_faithfulness_correlation_matches_naive_loop() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 1, 8, 8))
    e = Explanation(values=rng.normal(size=x.shape), data=x, target=[0, 1, 2])
    r = F.faithfulness_correlation(
        _image_model, e, baseline=-0.5, n_samples=15, subset_size=6, abs=True, random_state=2
    )
    subsets = r.extras["subsets"]
    assert subsets.shape == (3, 15, 6)
    assert all(len(set(s)) == 6 for s in subsets.reshape(-1, 6))  # without replacement
    for i in range(3):
        fx = _image_model(x[i : i + 1])[0, i]
        att, drop = [], []
        for s in subsets[i]:
            z = x[i].ravel().copy()
            z[s] = -0.5
            drop.append(fx - _image_model(z.reshape(1, 1, 8, 8))[0, i])
            att.append(np.abs(e.values[i].ravel()[s]).sum())
        np.testing.assert_allclose(r.scores[i], np.corrcoef(att, drop)[0, 1], atol=1e-12)


def test_random_subsets_are_uniform() -> None:
    # every 2-subset of 5 features has probability 1/10: counts within 5 standard deviations
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(3).spawn(4)]
    subsets, _ = F._random_subsets(gens, np.zeros((4, 5)), 2, 5000)
    pairs = subsets.reshape(-1, 2)
    assert (pairs[:, 0] < pairs[:, 1]).all()  # sorted, distinct
    counts = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)
    counts = counts[[i * 5 + j for i, j in itertools.combinations(range(5), 2)]]
    expected, sd = 2000, np.sqrt(20000 * 0.1 * 0.9)
    assert np.abs(counts - expected).max() < 5 * sd, counts


class _TiedBitGenerator:
    """Raw draws that are all zero: every key ties."""

    @staticmethod
    def random_raw(size: int) -> np.ndarray:
        return np.zeros(size, dtype=np.uint64)


class _TiedGenerator:
    def __init__(self, seed: int) -> None:
        self.bit_generator = _TiedBitGenerator()
        self._rng = np.random.default_rng(seed)

    def choice(self, *args, **kwargs):
        return self._rng.choice(*args, **kwargs)


def test_random_subsets_redraw_samples_tied_at_the_kth_key() -> None:
    subsets = F._subsets_of([_TiedGenerator(0), _TiedGenerator(1)], 30, 7, 40)
    assert subsets.shape == (2, 40, 7)
    flat = subsets.reshape(-1, 7)
    assert (np.diff(flat, axis=1) > 0).all() and flat.min() >= 0 and flat.max() < 30
    expected = np.sort(np.random.default_rng(1).choice(30, 7, replace=False))
    np.testing.assert_array_equal(subsets[1, 0], expected)  # the row's own generator
    assert len({tuple(s) for s in flat}) > 70  # redrawn, not all the same


def test_random_subsets_do_not_depend_on_the_thread_split(monkeypatch) -> None:
    a = np.random.default_rng(0).normal(size=(7, 3000))
    seq = np.random.SeedSequence(11)

    def draw(threads: int) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr(F, "_n_threads", lambda: threads)
        return F._random_subsets(F.row_generators(seq, 7), a, 300, 60)

    (s1, a1), (s3, a3) = draw(1), draw(3)  # 7 * 60 * 3000 keys: 2 blocks of 3 or 4 rows
    np.testing.assert_array_equal(s1, s3)
    np.testing.assert_array_equal(a1, a3)
    np.testing.assert_allclose(a1, np.take_along_axis(a[:, None], s1, axis=2).sum(-1))


@pytest.mark.parametrize("step", [1, 2, 8])
def test_faithfulness_estimate_equals_quantus(step: int) -> None:
    import quantus

    net, x, a, t, e = cnn_case(1)
    for use_abs in (False, True):
        q = quantus.FaithfulnessEstimate(
            features_in_step=step, abs=use_abs, perturb_baseline=0.25, **QUANTUS_FLAGS
        )
        expected = run_quantus(q, net, x, a, t)
        r = F.faithfulness_estimate(net, e, baseline=0.25, features_per_step=step, abs=use_abs)
        np.testing.assert_allclose(r.scores, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("step", [1, 4])
def test_monotonicity_correlation_equals_quantus_with_a_fixed_baseline(step: int) -> None:
    import quantus

    net, x, a, t, e = cnn_case(1)
    q = quantus.MonotonicityCorrelation(
        nr_samples=3, features_in_step=step, abs=True, perturb_baseline=0.5, **QUANTUS_FLAGS
    )
    expected = run_quantus(q, net, x, a, t)
    r = F.monotonicity_correlation(net, e, baseline=0.5, n_samples=3, features_per_step=step)
    np.testing.assert_allclose(r.scores, expected, rtol=0, atol=1e-6)


def test_monotonicity_correlation_uniform_draws_match_naive_loop() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 1, 4, 4))
    e = Explanation(values=rng.normal(size=x.shape), data=x, target=[2, 0, 1])
    r = F.monotonicity_correlation(
        _image_model_small, e, n_samples=5, features_per_step=3, random_state=9
    )
    seeds = row_seeds(9, 3)
    for i in range(3):
        flat, a = x[i].ravel(), np.abs(e.values[i].ravel())
        lo, hi = flat.min(), flat.max()
        order = np.argsort(a, kind="stable")
        groups = [order[j : j + 3] for j in range(0, 16, 3)]
        fx = _image_model_small(x[i : i + 1])[0, e.target[i]]
        change = np.zeros(len(groups))
        for s in range(5):
            seq = np.random.SeedSequence(seeds[i].entropy, spawn_key=(*seeds[i].spawn_key, s))
            draw = lo + (hi - lo) * np.random.default_rng(seq).random(16)
            for g, members in enumerate(groups):
                z = flat.copy()
                z[members] = draw[members]
                change[g] += (_image_model_small(z.reshape(1, 1, 4, 4))[0, e.target[i]] - fx) ** 2
        change /= 5
        np.testing.assert_allclose(r.extras["expected_change"][i], change, rtol=1e-12, atol=1e-15)
        sums = [a[m].sum() for m in groups]
        np.testing.assert_allclose(r.scores[i], spearmanr(sums, change)[0], atol=1e-12)


def _image_model_small(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    z = np.stack([np.tanh(flat[:, :8]).sum(1), (flat[:, 4:] ** 2).mean(1), np.sin(flat).sum(1)], 1)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- monotonicity
def test_monotonicity_follows_arya_et_al_on_a_hand_computed_case() -> None:
    # f(x) = x1 + 2 x2 - x3 (output 0), baseline 0, x = (1, 1, 1)
    w = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    model = lumos.wrap(lambda z: z @ w, output_kind="regression")
    x = np.ones((2, 3))
    # row 0: ascending order x2, x3, x1 -> outputs 2, 1, 2 (falls once): not monotone
    # row 1: ascending order x3, x2, x1 -> outputs -1, 1, 2: monotone
    values = np.array([[0.3, 0.1, 0.2], [0.3, 0.2, 0.1]])
    e = Explanation(values=values, data=x, target=0)
    r = F.monotonicity(model, e, baseline=0.0)
    np.testing.assert_allclose(r.curve, [[2.0, 1.0, 2.0], [-1.0, 1.0, 2.0]], atol=1e-12)
    np.testing.assert_array_equal(r.scores, [0.0, 1.0])
    np.testing.assert_allclose(r.extras["fraction_increasing"], [0.5, 1.0])
    np.testing.assert_allclose(r.curve_x, [1 / 3, 2 / 3, 1.0])
    # abs=True orders by magnitude instead: row 0 with values (-0.3, 0.1, 0.2) -> x2, x3, x1
    e_neg = Explanation(values=np.array([[-0.3, 0.1, 0.2]]), data=x[:1], target=0)
    assert F.monotonicity(model, e_neg, baseline=0.0).curve[0, 0] == 1.0  # x1 first (signed)
    assert F.monotonicity(model, e_neg, baseline=0.0, abs=True).curve[0, 0] == 2.0


def test_quantus_monotonicity_never_changes_its_input() -> None:
    """Why lumos does not follow quantus.Monotonicity: on the CNN, the paper's curve falls
    for these rows, yet quantus calls them all monotone because its 'adding' step writes the
    baseline value and the input stays the baseline."""
    import quantus

    net, x, a, t, e = cnn_case(1)
    r = F.monotonicity(net, e, baseline=0.0)
    assert np.all(r.scores == 0.0) and np.all(r.extras["fraction_increasing"] < 1)
    q = quantus.Monotonicity(features_in_step=1, abs=False, perturb_baseline=0.0, **QUANTUS_FLAGS)
    assert np.all(run_quantus(q, net, x, a, t) == 1.0)


# ----------------------------------------------------------------------------- engine paths
def test_torch_device_path_equals_numpy_path() -> None:
    """Perturbations built with torch ops (a torch model) and with numpy ops (the same net as
    a black-box function) give the same scores."""
    net = lumos.zoo.torch_cnn((1, 8, 8), 3, seed=1, output="probability").eval()

    def black_box(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(z, dtype=torch.float32)).numpy()

    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 1, 8, 8)).astype(np.float32).astype(np.float64)
    e = Explanation(values=rng.normal(size=x.shape), data=x, target=[0, 1, 2])
    kw = {
        "deletion": {"n_steps": 8},
        "insertion": {"n_steps": 8},
        "pixel_flipping": {"features_per_step": 8},
        "region_perturbation": {"patch_size": 2, "random_state": 0},
        "faithfulness_correlation": {"n_samples": 10, "random_state": 0},
        "faithfulness_estimate": {"features_per_step": 4},
        "monotonicity": {"features_per_step": 4},
        "monotonicity_correlation": {"n_samples": 2, "features_per_step": 8, "random_state": 0},
    }
    for name in ALL:
        fn = getattr(F, name)
        r_torch = fn(net, e, **kw[name])
        r_numpy = fn(lumos.wrap(black_box, output_kind="probability"), e, **kw[name])
        np.testing.assert_allclose(r_torch.scores, r_numpy.scores, rtol=0, atol=1e-5)
        if r_torch.curve is not None:
            np.testing.assert_allclose(r_torch.curve, r_numpy.curve, rtol=0, atol=1e-6)


STOCHASTIC = {
    "faithfulness_correlation": {"n_samples": 12, "subset_size": 5},
    "monotonicity_correlation": {"n_samples": 4, "features_per_step": 4},
    "region_perturbation": {"patch_size": 2, "baseline": "uniform"},
    "deletion": {"baseline": "uniform", "n_steps": 8},
    "pixel_flipping": {"baseline": "uniform", "features_per_step": 4},
}


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_reproducible_and_batch_size_invariant(name: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 1, 8, 8))
    e = Explanation(values=rng.normal(size=x.shape), data=x, target=[0, 1, 2, 0])
    fn = getattr(F, name)
    ref = fn(_image_model, e, random_state=11, **STOCHASTIC[name])
    for batch_size in (1, 7, 64):
        other = fn(_image_model, e, random_state=11, batch_size=batch_size, **STOCHASTIC[name])
        np.testing.assert_allclose(other.scores, ref.scores, rtol=0, atol=1e-12)
    # a generator seeded alike gives the same draws; another seed gives other ones
    gen = fn(_image_model, e, random_state=np.random.default_rng(11), **STOCHASTIC[name])
    np.testing.assert_allclose(gen.scores, ref.scores, rtol=0, atol=1e-12)
    other_seed = fn(_image_model, e, random_state=12, **STOCHASTIC[name])
    assert np.max(np.abs(other_seed.scores - ref.scores)) > 1e-6
    # a row's score depends on its own seed only: dropping the last row changes nothing
    head = fn(_image_model, e[:3], random_state=11, **STOCHASTIC[name])
    np.testing.assert_allclose(head.scores, ref.scores[:3], rtol=0, atol=1e-12)


def test_deletion_and_pixel_flipping_share_one_curve() -> None:
    f, model, e = linear_case(d=12, n=4)
    alone_del = F.deletion(model, e, baseline=0.1, features_per_step=1)
    alone_pf = F.pixel_flipping(model, e, baseline=0.1)
    with sharing():
        f.calls = 0
        d1 = F.deletion(model, e, baseline=0.1, features_per_step=1)
        after_deletion = f.calls
        p1 = F.pixel_flipping(model, e, baseline=0.1)
        assert f.calls == after_deletion  # no new model call
        F.pixel_flipping(model, e, baseline=0.1, features_per_step=2)  # a subset of steps
        assert f.calls == after_deletion
        F.deletion(model, e, baseline=0.2, features_per_step=1)  # other baseline: new curve
        assert f.calls > after_deletion
    np.testing.assert_array_equal(d1.curve, alone_del.curve)
    np.testing.assert_array_equal(p1.scores, alone_pf.scores)
    np.testing.assert_array_equal(p1.curve, alone_pf.curve)


def test_region_perturbation_with_single_pixels_is_pixel_flipping() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 1, 4, 4))
    e = Explanation(values=rng.normal(size=x.shape), data=x, target=[0, 1, 2])
    calls = []

    def counted(z: np.ndarray) -> np.ndarray:
        calls.append(len(z))
        return _image_model_small(z)

    model = lumos.wrap(counted, output_kind="probability")

    with sharing():
        pf = F.pixel_flipping(model, e, baseline=0.0)
        n_calls = len(calls)
        rp = F.region_perturbation(model, e, patch_size=1, n_regions=16, baseline=0.0)
        assert len(calls) == n_calls
    np.testing.assert_allclose(rp.scores, pf.scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rp.curve, pf.extras["prediction"][:, None] - pf.curve, atol=1e-12)


def test_result_shapes_and_params() -> None:
    _, model, e = linear_case(d=9, n=3)
    r = F.deletion(model, e)
    assert r.curve.shape == (3, 10) and r.params["n_steps"] == 9  # min(d, 100)
    r = F.pixel_flipping(model, e, features_per_step=4)
    assert r.curve.shape == (3, 3)
    np.testing.assert_allclose(r.curve_x, [4 / 9, 8 / 9, 1.0])
    r = F.faithfulness_correlation(model, e, random_state=0)
    assert r.params["subset_size"] == 1 and r.extras["subsets"].shape == (3, 100, 1)
    assert r.params["random_state"] == 0 and r.name == "faithfulness_correlation"


def test_constant_attributions_give_nan_with_a_reason() -> None:
    _, model, e = linear_case(d=6, n=2)
    flat = Explanation(values=np.ones((2, 6)), data=e.data, target=e.target)
    for fn in (F.faithfulness_estimate, F.monotonicity_correlation):
        r = fn(model, flat, baseline=0.0)
        assert np.all(np.isnan(r.scores)) and "constant" in r.extras["nan_reason"]
    r = F.faithfulness_correlation(model, flat, baseline=0.0, subset_size=2, random_state=0)
    assert np.all(np.isnan(r.scores)) and "constant" in r.extras["nan_reason"]
    assert "nan_reason" not in F.faithfulness_estimate(model, e, baseline=0.0).extras


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_typed_errors() -> None:
    _, model, e = linear_case(d=6, n=2)
    img = Explanation(values=np.ones((2, 1, 4, 4)), data=np.ones((2, 1, 4, 4)))
    cases = [
        (F.deletion, {"baseline": "black"}, UnknownNameError),
        (F.deletion, {"baseline": np.zeros(5)}, ShapeError),
        (F.deletion, {"baseline": float("nan")}, InputError),
        (F.deletion, {"n_steps": 0}, InputError),
        (F.deletion, {"n_steps": 7}, InputError),
        (F.deletion, {"n_steps": 2, "features_per_step": 2}, InputError),
        (F.deletion, {"abs": "yes"}, InputError),
        (F.deletion, {"batch_size": 0}, InputError),
        (F.deletion, {"steps": 3}, InputError),
        (F.insertion, {"baseline": "blurred"}, ShapeError),
        (F.pixel_flipping, {"features_per_step": 7}, InputError),
        (F.pixel_flipping, {"features_per_step": 1.5}, InputError),
        (F.faithfulness_correlation, {"n_samples": 1}, InputError),
        (F.faithfulness_correlation, {"subset_size": 6}, InputError),
        (F.faithfulness_correlation, {"random_state": "seed"}, InputError),
        (F.faithfulness_estimate, {"features_per_step": 6}, InputError),
        (F.monotonicity, {"features_per_step": 6}, InputError),
        (F.monotonicity_correlation, {"n_samples": 0}, InputError),
        (F.region_perturbation, {}, ShapeError),  # tables are not images
    ]
    for fn, kw, err in cases:
        with pytest.raises(err):
            fn(model, e, **kw)
    img_model = lumos.wrap(lambda z: z.reshape(len(z), -1)[:, :2], output_kind="logit")
    for kw in ({"patch_size": 0}, {"patch_size": (2, 2, 2)}, {"patch_size": "4"}):
        with pytest.raises(InputError):
            F.region_perturbation(img_model, img, **kw)
    with pytest.raises(UnknownNameError):
        F.region_perturbation(img_model, img, order="random")
    with pytest.raises(InputError):
        F.region_perturbation(img_model, img, n_regions=0)
    with pytest.raises(InputError):  # not an Explanation
        F.deletion(model, e.values)
    nan_values = Explanation(values=np.full((2, 6), np.nan), data=e.data)
    with pytest.raises(InputError):
        F.faithfulness_estimate(model, nan_values)
    one = Explanation(values=np.ones((2, 1)), data=np.ones((2, 1)))
    one_model = lumos.wrap(lambda z: z, output_kind="regression")
    for fn in (F.faithfulness_correlation, F.faithfulness_estimate, F.monotonicity,
               F.monotonicity_correlation):  # fmt: skip
        with pytest.raises(ShapeError):
            fn(one_model, one, baseline=0.0)


def test_two_dimensional_images_equal_one_channel_images() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 8, 8))
    a = rng.normal(size=x.shape)
    e2 = Explanation(values=a, data=x, target=[0, 1, 2])
    e3 = Explanation(values=a[:, None], data=x[:, None], target=[0, 1, 2])
    for fn, kw in (
        (F.region_perturbation, {"patch_size": (2, 4), "baseline": 0.0}),
        (F.insertion, {"n_steps": 8}),
    ):
        r2, r3 = fn(_image_model, e2, **kw), fn(_image_model, e3, **kw)
        np.testing.assert_allclose(r2.scores, r3.scores, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r2.curve, r3.curve, rtol=0, atol=1e-12)
    # rectangular patches: 4 rows x 2 columns of patches, ranked by their sums
    sums = a.reshape(3, 4, 2, 2, 4).sum(axis=(2, 4)).reshape(3, 8)
    r = F.region_perturbation(_image_model, e2, patch_size=(2, 4), baseline=0.0)
    first = np.argmax(sums, axis=1)
    for i in range(3):
        z = x[i].copy()
        pr, pc = divmod(first[i], 2)
        z[2 * pr : 2 * pr + 2, 4 * pc : 4 * pc + 4] = 0.0
        drop = _image_model(x[i : i + 1])[0, i] - _image_model(z[None])[0, i]
        np.testing.assert_allclose(r.curve[i, 0], drop, rtol=0, atol=1e-12)
