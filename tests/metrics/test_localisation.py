"""lumos.metrics.localisation: hand-computed oracles, a brute-force reference for ties, naive
re-implementations of OpenXAI's agreement formulas, equality with quantus 0.6 where the
definitions agree, end-to-end checks on synthetic_shapes / synthetic_credit, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import quantus
import torch
from scipy.stats import pearsonr, rankdata

import lumos
import lumos.attribution.gradients  # registers saliency / input_x_gradient
import lumos.attribution.shapley  # registers exact_shapley
import lumos.zoo
from lumos import Explanation
from lumos.datasets import synthetic_credit, synthetic_shapes
from lumos.errors import InputError, NonFiniteError, ShapeError
from lumos.metrics import get_metric
from lumos.metrics import localisation as loc

MASK_METRICS = ("pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy")
AGREEMENT = (
    "feature_agreement",
    "rank_agreement",
    "sign_agreement",
    "signed_rank_agreement",
    "pairwise_rank_agreement",
    "rank_correlation",
)


def expl(values: np.ndarray) -> Explanation:
    values = np.asarray(values, dtype=np.float64)
    return Explanation(values=values, data=np.zeros_like(values))


def run(name: str, values: np.ndarray, ground_truth: object, **kw: object) -> np.ndarray:
    return get_metric(name).func(None, expl(values), ground_truth=ground_truth, **kw).scores


# ============================================================================ masks
def test_relevance_mass_accuracy_of_mask_shaped_attribution_is_one() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((5, 1, 6, 6)) < 0.3
    masks[:, 0, 0, 0] = True  # never empty
    inside = rng.uniform(0.1, 1.0, masks.shape)
    outside = -rng.uniform(0.1, 1.0, masks.shape)  # negative relevance is left out
    values = np.where(masks, inside, outside)
    np.testing.assert_array_equal(run("relevance_mass_accuracy", values, masks), np.ones(5))
    np.testing.assert_array_equal(run("relevance_mass_accuracy", masks * 1.0, masks), np.ones(5))
    # with abs=True the negative mass outside counts: sum_in / (sum_in + sum_out) exactly
    expected = (inside * masks).sum(axis=(1, 2, 3)) / np.abs(values).sum(axis=(1, 2, 3))
    got = run("relevance_mass_accuracy", values, masks, abs=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_relevance_mass_accuracy_hand_computed_and_quantus_difference() -> None:
    a = np.array([[[[2.0, -1.0], [1.0, 0.0]]]])  # (1, 1, 2, 2)
    mask = np.array([[[[True, True], [False, False]]]])
    # paper: positive mass inside / total positive mass = 2 / 3
    assert run("relevance_mass_accuracy", a, mask)[0] == pytest.approx(2 / 3, abs=1e-12)
    assert run("relevance_mass_accuracy", a, mask, abs=True)[0] == pytest.approx(3 / 4, abs=1e-12)
    # quantus divides the signed sums: (2 - 1) / (2 - 1 + 1) = 1 / 2 (documented difference)
    q = quantus.RelevanceMassAccuracy(
        abs=False, normalise=False, disable_warnings=True, display_progressbar=False
    )
    got = q(
        model=_flat_net(4),
        x_batch=np.zeros((1, 1, 2, 2), dtype=np.float32),
        y_batch=np.zeros(1, dtype=int),
        a_batch=a,
        s_batch=mask.astype(float),
        channel_first=True,
    )
    assert got[0] == pytest.approx(0.5, abs=1e-12)


def test_relevance_mass_accuracy_nan_without_positive_mass() -> None:
    res = loc.relevance_mass_accuracy(
        None, expl(-np.ones((2, 4))), ground_truth=np.array([True, False, False, False])
    )
    assert np.isnan(res.scores).all()
    assert all("no positive attribution" in r for r in res.extras["nan_reason"])


def test_pointing_game_on_constructed_maps() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    inside, outside = np.zeros((8, 8)), np.zeros((8, 8))
    inside[3, 2] = 1.0
    outside[6, 6] = 1.0
    values = np.stack([inside, outside])[:, None]  # (2, 1, 8, 8)
    np.testing.assert_array_equal(run("pointing_game", values, mask), [1.0, 0.0])
    # abs: the largest magnitude is a negative value inside the mask
    neg = 0.5 * outside.copy()
    neg[2, 3] = -2.0
    assert run("pointing_game", neg[None, None], mask)[0] == 0.0
    assert run("pointing_game", neg[None, None], mask, abs=True)[0] == 1.0


def test_pointing_game_tolerance_is_euclidean_in_pixels() -> None:
    mask = np.zeros((1, 10, 10), dtype=bool)
    mask[0, 5, 5] = True
    right2 = np.zeros((1, 1, 10, 10))
    right2[0, 0, 5, 7] = 1.0  # distance 2
    diag = np.zeros((1, 1, 10, 10))
    diag[0, 0, 6, 6] = 1.0  # distance sqrt(2)
    assert run("pointing_game", right2, mask, tolerance=1)[0] == 0.0
    assert run("pointing_game", right2, mask, tolerance=1.99)[0] == 0.0
    assert run("pointing_game", right2, mask, tolerance=2)[0] == 1.0
    assert run("pointing_game", diag, mask, tolerance=1)[0] == 0.0
    assert run("pointing_game", diag, mask, tolerance=1.5)[0] == 1.0
    # tolerance does not leak between rows or channels
    two = np.zeros((2, 3, 10, 10))
    two[0, 1, 5, 6] = 1.0  # row 0: one pixel off its mask, channel 1
    two[1, 0, 0, 0] = 1.0  # row 1: far away
    masks = np.zeros((2, 10, 10), dtype=bool)
    masks[0, 5, 5] = True
    masks[1, 9, 9] = True
    np.testing.assert_array_equal(run("pointing_game", two, masks, tolerance=1), [1.0, 0.0])


def test_pointing_game_ties_count_by_expectation() -> None:
    mask = np.array([True, False, False, False, True, False])
    two_max = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])  # one maximum in, one out
    assert run("pointing_game", two_max, mask)[0] == 0.5
    res = loc.pointing_game(None, expl(np.ones((1, 6))), ground_truth=mask)
    assert res.scores[0] == pytest.approx(2 / 6, abs=1e-12)  # constant map: mask share
    assert res.extras["n_max"][0] == 6


def brute_force_top_hits(a: np.ndarray, mask: np.ndarray, k: int) -> float:
    """Mean hits among the top k over every ordering consistent with the values."""
    total, count = 0.0, 0
    for perm in itertools.permutations(range(len(a))):
        if all(a[perm[i]] >= a[perm[i + 1]] for i in range(len(a) - 1)):
            total += sum(mask[j] for j in perm[:k])
            count += 1
    return total / count


def test_relevance_rank_accuracy_and_top_k_hand_computed() -> None:
    a = np.array([[0.9, 0.1, 0.8, 0.3, 0.5, 0.2]])
    mask = np.array([True, True, False, True, False, False])
    # top 3 = {0, 2, 4}; only 0 is in the mask
    assert run("relevance_rank_accuracy", a, mask)[0] == pytest.approx(1 / 3, abs=1e-12)
    assert run("top_k_intersection", a, mask, k=2)[0] == pytest.approx(1 / 2, abs=1e-12)
    assert run("top_k_intersection", a, mask, k=0.5)[0] == pytest.approx(1 / 3, abs=1e-12)
    assert run("top_k_intersection", a, mask, k=1)[0] == 1.0
    # abs ranks by magnitude: top 3 of |a| = {1, 2, 0}
    b = np.array([[0.9, -1.0, 0.8, 0.3, 0.5, 0.2]])
    assert run("relevance_rank_accuracy", b, mask, abs=True)[0] == pytest.approx(2 / 3)
    # ties: three values tie at the top, K = 2 of them are kept: expected hits 2/3, /K
    t = np.array([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    m2 = np.array([True, False, False, True, False, False])
    assert run("relevance_rank_accuracy", t, m2)[0] == pytest.approx(1 / 3, abs=1e-12)


def test_tie_handling_matches_brute_force_over_orderings() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        a = rng.integers(0, 3, size=6).astype(float)
        mask = rng.random(6) < 0.4
        mask[rng.integers(6)] = True
        k = int(rng.integers(1, 7))
        size = int(mask.sum())
        got_rra = run("relevance_rank_accuracy", a[None], mask)[0]
        got_tki = run("top_k_intersection", a[None], mask, k=k)[0]
        got_pg = run("pointing_game", a[None], mask)[0]
        assert got_rra == pytest.approx(brute_force_top_hits(a, mask, size) / size, abs=1e-12)
        assert got_tki == pytest.approx(brute_force_top_hits(a, mask, k) / k, abs=1e-12)
        assert got_pg == pytest.approx(brute_force_top_hits(a, mask, 1), abs=1e-12)


def test_mask_forms_agree() -> None:
    """(n, H, W), (n, 1, H, W), (n, C, H, W), (H, W), 0/1 floats and index lists."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 2, 5, 5))
    pix = rng.random((3, 5, 5)) < 0.3
    pix[:, 2, 2] = True
    full = np.broadcast_to(pix[:, None], values.shape)
    for name in (*MASK_METRICS, "top_k_intersection"):
        ref = run(name, values, full)
        np.testing.assert_array_equal(run(name, values, pix), ref)
        np.testing.assert_array_equal(run(name, values, pix[:, None]), ref)
        np.testing.assert_array_equal(run(name, values, full.astype(float)), ref)
        shared = run(name, values, pix[0])
        np.testing.assert_array_equal(shared, run(name, values, np.stack([pix[0]] * 3)))
        flat_idx = np.flatnonzero(np.broadcast_to(pix[0], (2, 5, 5)))
        np.testing.assert_array_equal(run(name, values, list(flat_idx)), shared)


def test_channel_sum_broadcast_equals_pixel_pooled_map() -> None:
    """The documented recipe for Arras et al.'s "sum,pos" pooling: the channel sum broadcast
    over the channels scores what the pooled (n, 1, H, W) map scores."""
    rng = np.random.default_rng(8)
    values = rng.normal(size=(4, 3, 6, 6))
    values[0, :, 1, 1] = 5.0  # a tied maximum in the pooled map
    values[0, :, 4, 4] = 5.0
    masks = rng.random((4, 6, 6)) < 0.3
    masks[:, 1, 1] = True
    pooled = values.sum(axis=1, keepdims=True)
    spread = np.broadcast_to(pooled, values.shape)
    for name in MASK_METRICS:
        np.testing.assert_allclose(
            run(name, spread, masks), run(name, pooled, masks), rtol=1e-12, err_msg=name
        )


# ---------------------------------------------------------------------------- quantus
def _flat_net(d: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 3)).eval()


def _quantus(metric: object, a: np.ndarray, masks: np.ndarray) -> np.ndarray:
    n = len(a)
    out = metric(
        model=_flat_net(int(np.prod(a.shape[1:]))),
        x_batch=np.zeros(a.shape, dtype=np.float32),
        y_batch=np.zeros(n, dtype=int),
        a_batch=a,
        s_batch=masks.astype(float),
        channel_first=True,
    )
    return np.asarray(out, dtype=np.float64)


def test_equals_quantus_on_cnn_saliency_for_synthetic_shapes() -> None:
    """A tiny CNN's signed saliency on synthetic_shapes, the dataset's masks as s_batch."""
    ds = synthetic_shapes(n=18, size=16, seed=0)
    x, masks = ds.x_test[:5], ds.ground_truth["masks_test"][:5]
    net = lumos.zoo.torch_cnn((1, 16, 16), 3, seed=0)
    e = lumos.explain(net, x, method="saliency", absolute=False)
    a, s = e.values, masks[:, None]
    assert all(len(np.unique(row)) == row.size for row in a.reshape(len(a), -1))  # no ties
    kw = {"normalise": False, "disable_warnings": True, "display_progressbar": False}
    checks = [
        (loc.pointing_game(net, e, ground_truth=masks), quantus.PointingGame(abs=False, **kw)),
        (
            loc.relevance_rank_accuracy(net, e, ground_truth=masks),
            quantus.RelevanceRankAccuracy(abs=False, **kw),
        ),
        (
            loc.top_k_intersection(net, e, ground_truth=masks, k=20),
            quantus.TopKIntersection(k=20, abs=False, **kw),
        ),
        (
            loc.relevance_mass_accuracy(net, e, ground_truth=masks, abs=True),
            quantus.RelevanceMassAccuracy(abs=True, **kw),
        ),
    ]
    for ours, theirs in checks:
        np.testing.assert_allclose(ours.scores, _quantus(theirs, a, s), atol=1e-6, rtol=0)
    # non-negative attributions: relevance mass accuracy agrees without abs as well
    pos = np.abs(a)
    ours = loc.relevance_mass_accuracy(None, expl(pos), ground_truth=masks).scores
    theirs = _quantus(quantus.RelevanceMassAccuracy(abs=False, **kw), pos, s)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore:Return np.nan as result:UserWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_equals_quantus_on_random_maps_with_empty_mask_rows() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 1, 7, 7))
    s = rng.random((6, 1, 7, 7)) < 0.25
    s[2] = False  # empty: both libraries give NaN
    kw = {"normalise": False, "disable_warnings": True, "display_progressbar": False}
    pairs = [
        ("relevance_rank_accuracy", {}, quantus.RelevanceRankAccuracy(abs=False, **kw)),
        ("top_k_intersection", {"k": 9}, quantus.TopKIntersection(k=9, abs=False, **kw)),
        ("pointing_game", {}, quantus.PointingGame(abs=False, **kw)),
    ]
    for name, extra, q in pairs:
        ours = run(name, a, s, **extra)
        theirs = _quantus(q, a, s)
        assert np.isnan(ours[2])
        if name == "pointing_game":
            # quantus writes NaN into a boolean array, which stores True: an empty mask "hits"
            assert theirs[2] == 1.0
            theirs[2] = np.nan
        assert np.isnan(theirs[2])
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0, equal_nan=True)


# ---------------------------------------------------------------------------- end to end
def test_synthetic_shapes_oracle_attributions() -> None:
    """Noise-free shapes: the mask-shaped map scores 1, the distractor line 0, and the
    brightness map |M| / (|M| + |L|) on all three metrics (M shape, L line pixels)."""
    ds = synthetic_shapes(n=30, size=16, seed=2, noise=0.0)
    x, masks = ds.x_test, ds.ground_truth["masks_test"]
    n = len(x)
    bright = x[:, 0] > 0.2 + 1e-9
    line = bright & ~masks
    assert (line.sum(axis=(1, 2)) > 0).all() and np.array_equal(bright & masks, masks)
    oracle = masks[:, None] * 1.0
    for name in MASK_METRICS:
        np.testing.assert_array_equal(run(name, oracle, masks), np.ones(n))
    k = int(masks.sum(axis=(1, 2)).min())
    np.testing.assert_array_equal(run("top_k_intersection", oracle, masks, k=k), np.ones(n))
    distractor = line[:, None] * 1.0
    np.testing.assert_array_equal(run("pointing_game", distractor, masks), np.zeros(n))
    np.testing.assert_array_equal(run("relevance_mass_accuracy", distractor, masks), np.zeros(n))
    size_m, size_l = masks.sum(axis=(1, 2)), line.sum(axis=(1, 2))
    expected = size_m / (size_m + size_l)
    for name in MASK_METRICS:
        np.testing.assert_allclose(run(name, x - 0.2, masks), expected, rtol=1e-12)


def test_synthetic_credit_oracle_shapley_recovers_relevant_features() -> None:
    """Exact Shapley values of the labelling oracle are exactly 0 on the features the label
    does not use, so every set-based metric is 1 against ground_truth["relevant"]."""
    ds = synthetic_credit(n=200, seed=0)
    relevant = ds.ground_truth["relevant"]
    model = lumos.wrap(ds.oracle, output_kind="probability")
    x = ds.x_test[:5]
    e = lumos.explain(model, x, method="exact_shapley", background=ds.x_train[:12], target=1)
    irrelevant = ds.ground_truth["irrelevant"]
    # zero up to the rounding of the weighted sums
    assert np.abs(e.values[:, irrelevant]).max() < 1e-12
    assert np.abs(e.values[:, relevant]).min() > 1e-4
    for name in ("feature_agreement", "pairwise_rank_agreement"):
        res = get_metric(name).func(model, e, ground_truth=relevant)
        np.testing.assert_array_equal(res.scores, np.ones(5))
    assert loc.feature_agreement(model, e, ground_truth=relevant).extras["k"].tolist() == [5] * 5
    for name in ("relevance_rank_accuracy", "pointing_game"):
        res = get_metric(name).func(model, e, ground_truth=relevant, abs=True)
        np.testing.assert_array_equal(res.scores, np.ones(5))
    res = loc.relevance_mass_accuracy(model, e, ground_truth=relevant, abs=True)
    np.testing.assert_allclose(res.scores, np.ones(5), rtol=0, atol=1e-12)
    # the true coefficients in the returned (standardised) units are a reference attribution
    # whose nonzero entries are the relevant features: the default k is their number
    coef = np.zeros(10)
    for j, name in enumerate(ds.feature_names):
        coef[j] = ds.ground_truth["coefficients"].get(name, 0.0) * ds.preprocessing["scale"][j]
    res = loc.feature_agreement(model, e, ground_truth=coef)
    np.testing.assert_array_equal(res.scores, np.ones(5))
    np.testing.assert_array_equal(res.extras["k"], [5] * 5)


def test_logistic_model_with_known_attributions_on_synthetic_credit() -> None:
    """OpenXAI's setting: a linear logit model whose ground truth is w ⊙ x; input × gradient
    recovers it, so every agreement metric is 1, and a sign-flipped reference keeps the
    magnitude metrics at 1 and drops the sign metrics to 0."""
    ds = synthetic_credit(n=200, seed=1)
    x = ds.x_test[:6]
    torch.manual_seed(0)
    net = torch.nn.Linear(10, 2).double().eval()
    w = net.weight.detach().numpy()[1]
    e = lumos.explain(net, x, method="input_x_gradient", target=1)
    truth = x * w
    np.testing.assert_allclose(e.values, truth, rtol=1e-10, atol=1e-12)
    for name in AGREEMENT:
        res = get_metric(name).func(
            net, e, ground_truth=truth, k=4 if "agreement" in name else None
        )
        np.testing.assert_allclose(res.scores, np.ones(6), atol=1e-12)
    for name in AGREEMENT:
        k = 4 if name not in ("pairwise_rank_agreement", "rank_correlation") else None
        res = get_metric(name).func(net, e, ground_truth=-truth, k=k)
        expected = 0.0 if name in ("sign_agreement", "signed_rank_agreement") else 1.0
        np.testing.assert_allclose(res.scores, np.full(6, expected), atol=1e-12)


# ============================================================================ agreement
def top(v: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-np.abs(v), kind="stable")[:k]]


def dense(v: np.ndarray) -> np.ndarray:
    return rankdata(-np.abs(v), method="dense")


def naive(name: str, e: np.ndarray, r: np.ndarray, k: int) -> float:
    """OpenXAI's formulas, one row, written out with sets and loops."""
    te, tr, de, dr = top(e, k), top(r, k), dense(e), dense(r)
    if name == "feature_agreement":
        return len(set(te) & set(tr)) / k
    if name == "rank_agreement":
        return sum(te[j] == tr[j] and de[te[j]] == dr[tr[j]] for j in range(k)) / k
    if name == "sign_agreement":
        se = {(f, np.sign(e[f])) for f in te}
        sr = {(f, np.sign(r[f])) for f in tr}
        return len(se & sr) / k
    if name == "signed_rank_agreement":
        return (
            sum(
                te[j] == tr[j] and de[te[j]] == dr[tr[j]] and np.sign(e[te[j]]) == np.sign(r[tr[j]])
                for j in range(k)
            )
            / k
        )
    if name == "pairwise_rank_agreement":
        d = len(e)
        same = sum(
            (de[i] < de[j]) == (dr[i] < dr[j]) for i, j in itertools.combinations(range(d), 2)
        )
        return same / math.comb(d, 2)
    return float(pearsonr(de, dr)[0])


def test_agreement_hand_computed_with_ties_and_signs() -> None:
    e = np.array([[0.5, -0.5, 0.2, 0.0, -0.9]])
    r = np.array([1.0, 0.3, -0.3, 0.0, -2.0])
    # |e| order 4, 0, 1, 2, 3 (dense ranks 2, 2, 3, 4, 1); |r| order 4, 0, 1, 2, 3 (2, 3, 3, 4, 1)
    expected = {
        "feature_agreement": 1.0,  # top 3 = {4, 0, 1} on both sides
        "rank_agreement": 2 / 3,  # position 3 holds feature 1 with ranks 2 vs 3
        "sign_agreement": 2 / 3,  # feature 1 is negative vs positive
        "signed_rank_agreement": 2 / 3,
    }
    for name, value in expected.items():
        assert run(name, e, r, k=3)[0] == pytest.approx(value, abs=1e-12)
    # pairs (0,1) and (1,2) disagree: 8 of 10
    assert run("pairwise_rank_agreement", e, r)[0] == pytest.approx(0.8, abs=1e-12)
    assert run("rank_correlation", e, r)[0] == pytest.approx(12 / 13, abs=1e-12)
    # default k: the reference's nonzero entries (4)
    res = loc.feature_agreement(None, expl(e), ground_truth=r)
    assert res.extras["k"].tolist() == [4]
    assert res.scores[0] == pytest.approx(1.0)
    # k restricts PRA / RC to the reference's top-k features {0, 1, 4}, ranked among themselves
    assert run("pairwise_rank_agreement", e, r, k=3)[0] == pytest.approx(2 / 3, abs=1e-12)
    sub_e, sub_r = np.array([0.5, -0.5, -0.9]), np.array([1.0, 0.3, -2.0])
    assert run("rank_correlation", e, r, k=3)[0] == pytest.approx(
        pearsonr(dense(sub_e), dense(sub_r))[0], abs=1e-12
    )


def test_agreement_with_a_set_of_relevant_features_hand_computed() -> None:
    e = np.array([[0.5, -0.5, 0.2, 0.0, -0.9]])
    for s in ([0, 2], np.array([True, False, True, False, False]), {2, 0}, (0, 2)):
        # top-2 of |e| = {4, 0}: one of two relevant
        assert run("feature_agreement", e, s)[0] == pytest.approx(0.5, abs=1e-12)
        assert run("feature_agreement", e, s, k=1)[0] == 0.0
        assert run("feature_agreement", e, s, k=4)[0] == 1.0  # recall once k >= |S|
        # (relevant, irrelevant) pairs: (0,1) tie 1/2, (0,3) 1, (0,4) 0, (2,1) 0, (2,3) 1, (2,4) 0
        assert run("pairwise_rank_agreement", e, s)[0] == pytest.approx(2.5 / 6, abs=1e-12)
        indicator = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
        assert run("rank_correlation", e, s)[0] == pytest.approx(
            naive("rank_correlation", e[0], indicator, 5), abs=1e-12
        )
    # at k = |S| feature agreement equals OpenXAI's value for the 0/1 indicator
    rng = np.random.default_rng(4)
    for _ in range(20):
        v = rng.normal(size=8)
        s = rng.random(8) < 0.4
        s[0] = True
        got = run("feature_agreement", v[None], s)[0]
        assert got == pytest.approx(naive("feature_agreement", v, s * 1.0, int(s.sum())))


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_agreement_equals_naive_openxai_on_random_tied_vectors() -> None:
    """Small integers: many ties and zeros; per-row references (n, d) and one shared (d,)."""
    rng = np.random.default_rng(0)
    n, d = 25, 7
    e = rng.integers(-3, 4, size=(n, d)).astype(float)
    r = rng.integers(-3, 4, size=(n, d)).astype(float)
    e[0] = 1.0  # a row of ties (rank correlation: NaN on both sides)
    r[1] = 0.0
    r[1, 2] = 5.0  # a reference with a single nonzero entry
    for name in AGREEMENT[:4]:  # the top-k family at every k
        for k in range(1, d + 1):
            want = [naive(name, e[i], r[i], k) for i in range(n)]
            np.testing.assert_allclose(run(name, e, r, k=k), want, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(
            run(name, e, r[3], k=3), run(name, e, np.tile(r[3], (n, 1)), k=3)
        )
    for name in AGREEMENT[4:]:  # all features, then the reference's top-k features
        want = [naive(name, e[i], r[i], d) for i in range(n)]
        np.testing.assert_allclose(run(name, e, r), want, atol=1e-12, equal_nan=True)
        for k in range(2, d):
            feats = [sorted(top(r[i], k)) for i in range(n)]
            want = [naive(name, e[i, f], r[i, f], k) for i, f in enumerate(feats)]
            got = run(name, e, r, k=k)
            np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True, err_msg=name)
        np.testing.assert_array_equal(run(name, e, r[3]), run(name, e, np.tile(r[3], (n, 1))))


def test_agreement_nan_reasons() -> None:
    e = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    res = loc.feature_agreement(None, expl(e), ground_truth=np.zeros((2, 3)))
    assert np.isnan(res.scores).all() and "zero everywhere" in res.extras["nan_reason"][0]
    res = loc.feature_agreement(None, expl(e), ground_truth=np.zeros(3, dtype=bool))
    assert np.isnan(res.scores).all() and "no relevant feature" in res.extras["nan_reason"][0]
    res = loc.rank_correlation(None, expl(e), ground_truth=np.array([3.0, 1.0, 2.0]))
    assert res.scores[0] == pytest.approx(-0.5) and np.isnan(res.scores[1])
    assert (
        res.extras["nan_reason"][0] == "" and "all magnitudes equal" in res.extras["nan_reason"][1]
    )
    res = loc.pairwise_rank_agreement(None, expl(e), ground_truth=[0, 1, 2])
    assert np.isnan(res.scores).all() and "some but not all" in res.extras["nan_reason"][0]
    res = loc.pairwise_rank_agreement(None, expl(e), ground_truth=np.array([1.0, 2, 3]), k=1)
    assert np.isnan(res.scores).all()


# ============================================================================ registry
def test_registry_metadata() -> None:
    for name in (*MASK_METRICS, "top_k_intersection", *AGREEMENT):
        info = get_metric(name)
        assert info.category == "localisation" and info.higher_is_better
        assert "ground_truth" in info.requires
    for name in AGREEMENT:
        assert "tabular" in get_metric(name).requires
    res = loc.top_k_intersection(None, expl(np.ones((1, 4))), ground_truth=[0], k=2)
    assert res.name == "top_k_intersection" and res.params["k"] == 2
    assert "ground_truth" not in res.params


# ============================================================================ bad input
def test_bad_ground_truth() -> None:
    v = np.ones((2, 1, 4, 4))
    for name in (*MASK_METRICS, "top_k_intersection"):
        with pytest.raises(InputError, match="ground_truth"):
            run(name, v, None)
        with pytest.raises(ShapeError, match="shape"):
            run(name, v, np.ones((3, 4, 4), dtype=bool))
        with pytest.raises(ShapeError):
            run(name, v, np.ones((2, 5, 5), dtype=bool))
        with pytest.raises(InputError, match="0 and 1"):
            run(name, v, np.full((2, 4, 4), 0.5))
        with pytest.raises(InputError, match="outside"):
            run(name, v, [0, 16])
        with pytest.raises(InputError, match="twice"):
            run(name, v, [1, 1])
        with pytest.raises(NonFiniteError):
            run(name, v, np.full((2, 4, 4), np.nan))
        with pytest.raises(InputError, match="True or False"):
            run(name, v, np.ones((2, 4, 4), dtype=bool), abs=1)
    # (n, H, W) with n == C is ambiguous
    with pytest.raises(ShapeError, match="ambiguous"):
        run("pointing_game", np.ones((2, 2, 4, 4)), np.ones((2, 4, 4), dtype=bool))
    with pytest.raises(InputError, match="dtype"):
        run("pointing_game", v, np.array([["a"] * 4] * 4))


def test_empty_mask_gives_nan_with_reason() -> None:
    v = np.arange(32.0).reshape(2, 1, 4, 4)
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[1, 0, 0] = True
    for name in (*MASK_METRICS, "top_k_intersection"):
        res = get_metric(name).func(None, expl(v), ground_truth=masks)
        assert np.isnan(res.scores[0]) and np.isfinite(res.scores[1])
        assert res.extras["nan_reason"][0] == "empty ground-truth mask"
        assert res.extras["nan_reason"][1] == ""
        assert res.n_valid == 1


def test_bad_k_tolerance_and_sets() -> None:
    v = np.ones((2, 5))
    for bad in (0, 6, -1, 1.5, 0.0, True, "3", float("nan")):
        with pytest.raises(InputError, match="k"):
            run("top_k_intersection", v, [0], k=bad)
        with pytest.raises(InputError, match="k"):
            run("feature_agreement", v, np.arange(5.0), k=bad)
        with pytest.raises(InputError, match="k"):
            run("rank_correlation", v, np.arange(5.0), k=bad)
    for bad in (-1, float("inf"), "2", True):
        with pytest.raises(InputError, match="tolerance"):
            run("pointing_game", np.ones((1, 1, 4, 4)), np.ones((4, 4), dtype=bool), tolerance=bad)
    with pytest.raises(InputError, match="images"):
        run("pointing_game", v, [0], tolerance=1)
    for name in ("rank_agreement", "sign_agreement", "signed_rank_agreement"):
        with pytest.raises(InputError, match="reference attribution"):
            run(name, v, [0, 1])
    with pytest.raises(InputError, match="k=None"):
        run("pairwise_rank_agreement", v, [0, 1], k=2)
    with pytest.raises(InputError, match="k=None"):
        run("rank_correlation", v, [0, 1], k=2)
    with pytest.raises(NonFiniteError):
        run("rank_agreement", v, np.array([1.0, np.nan, 0, 0, 0]))
    with pytest.raises(ShapeError):
        run("feature_agreement", v, np.ones(4))
    with pytest.raises(InputError, match="outside"):
        run("feature_agreement", v, np.array([3, -1, 2]))  # integer coefficients read as indices


def test_bad_explanation_and_unknown_parameter() -> None:
    with pytest.raises(InputError, match="Explanation"):
        loc.pointing_game(None, np.ones((1, 4)), ground_truth=[0])
    with pytest.raises(NonFiniteError):
        loc.pointing_game(None, expl(np.array([[np.nan, 1.0]])), ground_truth=[0])
    with pytest.raises(InputError, match="parameters are"):
        loc.pointing_game(None, expl(np.ones((1, 4))), ground_truth=[0], tol=3)
    net = torch.nn.Linear(3, 2)
    with pytest.raises(ShapeError):  # the model validates the explanation's rows
        loc.relevance_mass_accuracy(net, expl(np.ones((1, 4))), ground_truth=[0])
