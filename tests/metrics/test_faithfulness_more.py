"""infidelity, road, comprehensiveness, sufficiency, pgi, pgu: closed forms on linear models,
naive reference implementations, captum / quantus where the definitions agree, seeds and
batch-size invariance, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import lumos
import lumos.zoo
from lumos.errors import InputError, NonFiniteError, ShapeError, UnknownNameError
from lumos.metrics import _base
from lumos.metrics.faithfulness import (
    _infidelity_draws,
    comprehensiveness,
    infidelity,
    noisy_linear_imputation,
    pgi,
    pgu,
    road,
    sufficiency,
)

D = 6  # tabular features
N_OUT = 3


# ----------------------------------------------------------------------------- fixtures
def _linear(w: np.ndarray, c: np.ndarray, *, flatten: bool = False) -> torch.nn.Module:
    """A float64 torch linear model with the given weights (no global RNG used)."""
    lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(w))
        lin.bias.copy_(torch.as_tensor(c))
    return (torch.nn.Sequential(torch.nn.Flatten(), lin) if flatten else lin).eval()


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(N_OUT, D))
    c = rng.normal(size=N_OUT)
    x = rng.normal(size=(5, D))
    target = np.array([0, 1, 2, 1, 0])
    return _linear(w, c), w, c, x, target


@pytest.fixture
def image():
    """Linear model on 2×5×6 images, its weights (3, 60), images, targets."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(N_OUT, 2 * 5 * 6))
    c = rng.normal(size=N_OUT)
    x = rng.random((4, 2, 5, 6))
    target = np.array([2, 0, 1, 2])
    model = lumos.wrap(_linear(w, c, flatten=True), input_shape=(2, 5, 6))
    return model, w, c, x, target


def _cnn64(shape=(1, 8, 8)):
    return lumos.zoo.torch_cnn(shape, N_OUT, seed=0).double().eval()


# ----------------------------------------------------------------------------- infidelity
@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_infidelity_is_zero_for_integrated_gradients_with_removals(table, image, baseline):
    """IG from baseline b on a linear model is exactly w ⊙ (x − b): every subset/square
    removal's output drop equals the attribution sum, so infidelity is 0."""
    for model, w, _, x, target, perturbation in (
        (*table, "subset"),
        (*image, "square"),
    ):
        e = lumos.explain(
            model, x, method="integrated_gradients", target=target, baseline=baseline, n_steps=4
        )
        np.testing.assert_allclose(
            e.values.reshape(len(x), -1), w[target] * (x.reshape(len(x), -1) - baseline),
            rtol=1e-12, atol=1e-12,
        )  # fmt: skip
        for normalise in (True, False):
            r = infidelity(
                model, e, perturbation=perturbation, baseline=baseline, normalise=normalise,
                n_samples=40, random_state=0,
            )  # fmt: skip
            assert np.all(r.scores < 1e-9)
            assert np.all(np.abs(r.extras["output_drop"]).max(axis=1) > 1e-2)  # non-trivial
        # a wrong attribution is far from 0 under the same perturbations
        noise = np.random.default_rng(123).normal(size=x.shape)
        wrong = lumos.Explanation(values=noise, data=x, target=target)
        bad = infidelity(model, wrong, perturbation=perturbation, baseline=baseline,
                         n_samples=40, random_state=0)  # fmt: skip
        assert np.all(bad.scores > 1e-3)


def test_infidelity_gaussian_is_zero_for_the_gradient_only(table):
    model, w, _, x, target = table
    grad = lumos.Explanation(values=w[target], data=x, target=target)
    for normalise in (True, False):
        r = infidelity(model, grad, normalise=normalise, random_state=3)
        assert np.all(r.scores < 1e-9)
    ig = lumos.Explanation(values=w[target] * x, data=x, target=target)
    assert np.all(infidelity(model, ig, random_state=3).scores > 1e-4)


def test_infidelity_normalised_is_scale_invariant(table):
    model, _, _, x, target = table
    a = np.random.default_rng(5).normal(size=x.shape)
    e1 = lumos.Explanation(values=a, data=x, target=target)
    e2 = lumos.Explanation(values=-3.7 * a, data=x, target=target)
    for perturbation in ("gaussian", "subset"):
        r1 = infidelity(model, e1, perturbation=perturbation, random_state=1)
        r2 = infidelity(model, e2, perturbation=perturbation, random_state=1)
        np.testing.assert_allclose(r1.scores, r2.scores, rtol=1e-10)
        np.testing.assert_allclose(r2.extras["beta"], r1.extras["beta"] / -3.7, rtol=1e-10)
        u1 = infidelity(model, e1, perturbation=perturbation, normalise=False, random_state=1)
        u2 = infidelity(model, e2, perturbation=perturbation, normalise=False, random_state=1)
        assert np.all(np.abs(u1.scores - u2.scores) > 1e-3 * u1.scores)


def test_infidelity_equals_naive_loop(table):
    """Hand loop over the documented draws: Iᵀa and f(x) − f(x̃) with numpy, then the
    paper's formula with the optimal β."""
    model, w, c, x, target = table
    a = np.random.default_rng(2).normal(size=x.shape)
    e = lumos.Explanation(values=a, data=x, target=target)
    for perturbation in ("gaussian", "subset"):
        r = infidelity(model, e, perturbation=perturbation, baseline=0.25, n_samples=7,
                       noise_std=0.3, random_state=11)  # fmt: skip
        seeds = _base.row_seeds(11, len(x))
        for i in range(len(x)):
            g = np.random.default_rng(seeds[i])
            if perturbation == "gaussian":
                pert = 0.3 * g.standard_normal((7, D))
                xt = x[i] - pert
            else:
                pert = (g.random((7, D)) < 0.5).astype(float)
                xt = np.where(pert > 0, 0.25, x[i])
            drop = (w[target[i]] @ x[i] + c[target[i]]) - (xt @ w[target[i]] + c[target[i]])
            dot = pert @ a[i]
            beta = (dot @ drop) / (dot @ dot)
            expected = np.mean((beta * dot - drop) ** 2)
            np.testing.assert_allclose(r.scores[i], expected, rtol=1e-10)
            np.testing.assert_allclose(r.extras["attribution_sum"][i], dot, rtol=1e-12)


def _captum_infidelity(model, e, perturbation, n_samples, seed, normalize, **kw):
    """captum.metrics.infidelity fed lumos' perturbations, in captum's (row, sample) order."""
    from captum.metrics import infidelity as captum_infidelity

    n = len(e.data)
    seeds = _base.row_seeds(seed, n)
    base = kw.pop("base", np.zeros_like(e.data))
    perts, perturbed = [], []
    for i in range(n):
        pt, xp, _ = _infidelity_draws(
            perturbation, e.data[i], e.values[i], base[i], np.random.default_rng(seeds[i]),
            n_samples, **kw,
        )  # fmt: skip
        perts.append(pt)
        perturbed.append(xp)
    pert_t = torch.as_tensor(np.concatenate(perts))
    perturbed_t = torch.as_tensor(np.concatenate(perturbed))

    def perturb_func(inputs):
        assert inputs.shape == perturbed_t.shape
        return pert_t, perturbed_t

    return captum_infidelity(
        model, perturb_func, torch.as_tensor(e.data), torch.as_tensor(e.values),
        target=torch.as_tensor(e.target), n_perturb_samples=n_samples, normalize=normalize,
    ).numpy()  # fmt: skip


@pytest.mark.parametrize("normalise", [True, False])
def test_infidelity_equals_captum(table, normalise):
    model, _, _, x, target = table
    a = np.random.default_rng(4).normal(size=x.shape)
    e = lumos.Explanation(values=a, data=x, target=target)
    ours = infidelity(model, e, n_samples=9, noise_std=0.2, normalise=normalise, random_state=2)
    theirs = _captum_infidelity(model, e, "gaussian", 9, 2, normalise,
                                noise_std=0.2, square_sizes=())  # fmt: skip
    np.testing.assert_allclose(ours.scores, theirs, rtol=1e-6, atol=1e-12)
    ours = infidelity(model, e, perturbation="subset", n_samples=9, normalise=normalise,
                      random_state=2)  # fmt: skip
    theirs = _captum_infidelity(model, e, "subset", 9, 2, normalise,
                                noise_std=0.1, square_sizes=())  # fmt: skip
    np.testing.assert_allclose(ours.scores, theirs, rtol=1e-6, atol=1e-12)


def test_infidelity_square_equals_captum_on_a_cnn():
    model = _cnn64()
    rng = np.random.default_rng(6)
    x = rng.random((3, 1, 8, 8))
    e = lumos.Explanation(values=rng.normal(size=x.shape), data=x, target=[0, 1, 2])
    ours = infidelity(model, e, perturbation="square", n_samples=12, square_sizes=(2, 3),
                      random_state=8)  # fmt: skip
    theirs = _captum_infidelity(model, e, "square", 12, 8, True,
                                noise_std=0.1, square_sizes=(2, 3))  # fmt: skip
    np.testing.assert_allclose(ours.scores, theirs, rtol=1e-6, atol=1e-12)


def test_square_draws_are_squares_across_channels():
    rng = np.random.default_rng(0)
    x = rng.random((2, 5, 6))
    pert, perturbed, sums = _infidelity_draws(
        "square", x, np.ones_like(x), np.full_like(x, -1.0), rng, 50, noise_std=0.1,
        square_sizes=(1, 2, 3),
    )  # fmt: skip
    for m, xp, s in zip(pert, perturbed, sums, strict=True):
        np.testing.assert_array_equal(m[0], m[1])  # every channel alike
        rows, cols = np.nonzero(m[0])
        side = rows.max() - rows.min() + 1
        assert side in (1, 2, 3) and cols.max() - cols.min() + 1 == side
        assert len(rows) == side * side  # a full square
        np.testing.assert_array_equal(xp, np.where(m > 0, -1.0, x))
        assert s == 2 * side * side


def test_infidelity_equals_quantus_where_definitions_agree():
    """quantus.Infidelity with one patch covering the image and a perturb_func returning
    x − I computes (Δf − Iᵀa)² per sample: lumos' gaussian, normalise=False."""
    import quantus

    rng = np.random.default_rng(7)
    w = rng.normal(size=(N_OUT, 16)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, N_OUT)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(w))
        model[1].bias.zero_()
    x = rng.random((3, 1, 4, 4))
    a = rng.normal(size=x.shape)
    target = np.array([0, 2, 1])
    e = lumos.Explanation(values=a, data=x, target=target)
    ours = infidelity(lumos.wrap(model, input_shape=(1, 4, 4)), e, n_samples=5, noise_std=0.3,
                      normalise=False, random_state=3)  # fmt: skip
    seeds = _base.row_seeds(3, 3)
    noise = np.stack([0.3 * np.random.default_rng(s).standard_normal((5, 1, 4, 4)) for s in seeds])
    calls = iter(range(5))

    def perturb_func(arr, indices, **kwargs):
        return arr - noise[:, next(calls)].reshape(3, -1)

    metric = quantus.Infidelity(
        perturb_patch_sizes=[4], n_perturb_samples=5, perturb_func=perturb_func, abs=False,
        normalise=False, disable_warnings=True, display_progressbar=False,
    )  # fmt: skip
    theirs = metric(model=model, x_batch=x.astype(np.float32), y_batch=target, a_batch=a,
                    channel_first=True, device="cpu")  # fmt: skip
    np.testing.assert_allclose(ours.scores, theirs, rtol=1e-6)


def test_quantus_infidelity_removes_patches_cumulatively():
    """Why lumos differs from quantus.Infidelity (docs): quantus' patches accumulate, so its
    number equals the cumulative raster-order removal, not independent perturbations."""
    import quantus

    rng = np.random.default_rng(8)
    w = rng.normal(size=(N_OUT, 16)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, N_OUT, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(w))
    x = rng.random((2, 1, 4, 4))
    a = rng.normal(size=x.shape)
    y = np.array([0, 1])
    theirs = quantus.Infidelity(
        perturb_patch_sizes=[2], n_perturb_samples=3, perturb_baseline=0.0, abs=False,
        normalise=False, disable_warnings=True, display_progressbar=False,
    )(model=model.eval(), x_batch=x.astype(np.float32), y_batch=y, a_batch=a,
      channel_first=True, device="cpu")  # fmt: skip
    cumulative, independent = [], []
    for i in range(2):
        wi = w[y[i]].astype(np.float64)
        xc = x[i].copy()
        errs_c, errs_i = [], []
        for r in range(2):
            for s in range(2):
                xc[:, 2 * r : 2 * r + 2, 2 * s : 2 * s + 2] = 0.0
                xi = x[i].copy()
                xi[:, 2 * r : 2 * r + 2, 2 * s : 2 * s + 2] = 0.0
                for xt, errs in ((xc, errs_c), (xi, errs_i)):
                    diff = (x[i] - xt).ravel()
                    errs.append((wi @ diff - a[i].ravel() @ diff) ** 2)
        cumulative.append(np.mean(errs_c))
        independent.append(np.mean(errs_i))
    np.testing.assert_allclose(theirs, cumulative, rtol=1e-5)
    assert np.all(np.abs(np.array(cumulative) - independent) > 1e-3)


# ----------------------------------------------------------------------------- ROAD
_NB = [(-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
       (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12)]  # fmt: skip


def _dense_imputation(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The paper's linear system built pixel by pixel and solved densely."""
    c, h, w = img.shape
    unknown = [(r, q) for r in range(h) for q in range(w) if removed[r, q]]
    var = {p: k for k, p in enumerate(unknown)}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for k, (r, q) in enumerate(unknown):
        for dr, dq, wt in _NB:
            rr, qq = r + dr, q + dq
            if 0 <= rr < h and 0 <= qq < w:
                a[k, k] += wt
                if removed[rr, qq]:
                    a[k, var[(rr, qq)]] -= wt
                else:
                    b[k] += wt * img[:, rr, qq]
    sol = np.linalg.solve(a, b)
    out = img.copy()
    for k, (r, q) in enumerate(unknown):
        out[:, r, q] = sol[k]
    return out


def test_noisy_linear_imputation_equals_dense_solve():
    rng = np.random.default_rng(0)
    img = rng.random((3, 6, 7))
    for frac in (0.1, 0.5, 0.95):
        removed = rng.random((6, 7)) < frac
        removed[0, 0] = removed[-1, -1] = True  # corners: fewer neighbours
        removed[2, 3] = False
        ours = noisy_linear_imputation(img, removed)
        np.testing.assert_allclose(ours, _dense_imputation(img, removed), atol=1e-10)
        np.testing.assert_array_equal(ours[:, ~removed], img[:, ~removed])
    # (H, W) images too
    removed = rng.random((6, 7)) < 0.5
    np.testing.assert_allclose(
        noisy_linear_imputation(img[0], removed), _dense_imputation(img[:1], removed)[0],
        atol=1e-10,
    )  # fmt: skip


def test_noisy_linear_imputation_equals_quantus():
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_nli

    rng = np.random.default_rng(1)
    for c in (1, 3):
        img = rng.random((c, 7, 5))
        removed = rng.random((7, 5)) < 0.6
        theirs = quantus_nli(img, np.flatnonzero(removed.ravel()), noise=0.0)
        np.testing.assert_allclose(noisy_linear_imputation(img, removed), theirs, atol=1e-10)


def test_imputation_noise_is_added_to_removed_pixels_only():
    rng = np.random.default_rng(2)
    img = rng.random((2, 6, 6))
    removed = rng.random((6, 6)) < 0.4
    clean = noisy_linear_imputation(img, removed)
    noisy = noisy_linear_imputation(img, removed, noise=0.5, random_state=9)
    z = np.random.default_rng(9).standard_normal((2, int(removed.sum())))
    np.testing.assert_allclose(noisy[:, removed], clean[:, removed] + 0.5 * z, atol=1e-12)
    np.testing.assert_array_equal(noisy[:, ~removed], img[:, ~removed])


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_equals_naive_loop(order):
    model = _cnn64((2, 6, 6))
    rng = np.random.default_rng(3)
    x = rng.random((3, 2, 6, 6))
    a = rng.normal(size=x.shape)
    target = np.array([0, 1, 2])
    e = lumos.Explanation(values=a, data=x, target=target)
    pct = (10, 25, 50, 90)
    r = road(model, e, percentages=pct, order=order, noise=0.0, batch_size=5)
    f = lumos.wrap(model)
    expected = np.empty((3, len(pct)))
    for i in range(3):
        pixel = a[i].sum(axis=0).ravel()
        ranked = np.argsort(-pixel if order == "morf" else pixel, kind="stable")
        for j, q in enumerate(pct):
            removed = np.zeros(36, dtype=bool)
            removed[ranked[: int(36 * q / 100)]] = True
            xt = _dense_imputation(x[i], removed.reshape(6, 6))
            expected[i, j] = f(xt[None])[0, target[i]]
    np.testing.assert_allclose(r.curve, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(r.extras["n_removed"], [3, 9, 18, 32])
    full = f(x)[np.arange(3), target]
    want = expected.mean(axis=1) if order == "morf" else (full[:, None] - expected).mean(axis=1)
    np.testing.assert_allclose(r.scores, want, rtol=1e-10)


def test_road_accuracy_equals_quantus():
    """quantus.ROAD scores the batch: the accuracy per percentage (no noise to compare)."""
    import quantus

    rng = np.random.default_rng(4)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, N_OUT)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(rng.normal(size=(N_OUT, 64))))
        model[1].bias.zero_()
    x = rng.random((8, 1, 8, 8)).astype(np.float32)
    a = rng.normal(size=x.shape)
    y = np.argmax(lumos.wrap(model, input_shape=(1, 8, 8))(x), axis=1)
    pct = [5, 20, 40, 60, 80, 95]
    e = lumos.Explanation(values=a, data=x, target=y)
    ours = road(lumos.wrap(model, input_shape=(1, 8, 8)), e, percentages=pct, noise=0.0,
                measure="accuracy")  # fmt: skip
    theirs = quantus.ROAD(noise=0.0, percentages=pct, normalise=False, abs=False,
                          disable_warnings=True, display_progressbar=False)(
        model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=True, device="cpu"
    )  # fmt: skip
    np.testing.assert_allclose(ours.curve.mean(axis=0), [theirs[q] for q in pct], atol=1e-12)
    assert 0 < ours.curve.mean() < 1  # the removals change some predictions
    # quantus fails on colour images (pixel indices over C·H·W); lumos does not
    x3 = rng.random((2, 3, 8, 8)).astype(np.float32)
    model3 = lumos.zoo.torch_cnn((3, 8, 8), N_OUT, seed=0).eval()
    with pytest.raises(IndexError):
        quantus.ROAD(noise=0.0, percentages=[50], disable_warnings=True)(
            model=model3, x_batch=x3, y_batch=np.array([0, 1]),
            a_batch=rng.normal(size=x3.shape), channel_first=True, device="cpu",
        )  # fmt: skip
    e3 = lumos.Explanation(values=rng.normal(size=x3.shape), data=x3, target=[0, 1])
    assert road(model3, e3, percentages=[50], random_state=0).scores.shape == (2,)


# ----------------------------------------------------------------------------- ERASER
@pytest.fixture
def hand():
    """f(x) = w·x + 0.1 with w = (3, −1, 2, 0.5), x = (1, 2, −1, 4): a = w ⊙ x = (3, −2, −2, 2)."""
    w = np.array([[3.0, -1.0, 2.0, 0.5]])
    model = _linear(w, np.array([0.1]))
    x = np.array([[1.0, 2.0, -1.0, 4.0]])
    e = lumos.Explanation(values=w * x, data=x, target=[0])
    return model, e


def test_comprehensiveness_and_sufficiency_by_hand(hand):
    model, e = hand
    # signed order: f0 (3), f3 (2), f1 (−2), f2 (−2) (ties by index); k = 1, 2
    comp = comprehensiveness(model, e, fractions=(0.25, 0.5))
    np.testing.assert_allclose(comp.curve, [[3.0, 5.0]], rtol=1e-12)  # removed w·x
    np.testing.assert_allclose(comp.scores, [4.0], rtol=1e-12)
    suff = sufficiency(model, e, fractions=(0.25, 0.5))
    np.testing.assert_allclose(suff.curve, [[-2.0, -4.0]], rtol=1e-12)  # all but kept w·x
    np.testing.assert_allclose(suff.scores, [-3.0], rtol=1e-12)
    # |a| order: f0, f1, f2, f3
    comp_abs = comprehensiveness(model, e, fractions=(0.25, 0.5), abs=True)
    np.testing.assert_allclose(comp_abs.curve, [[3.0, 1.0]], rtol=1e-12)
    # baseline 0.5: the gap is Σ_removed w_j (x_j − 0.5)
    comp_b = comprehensiveness(model, e, fractions=(0.25, 0.5), baseline=0.5)
    np.testing.assert_allclose(comp_b.curve, [[1.5, 1.5 + 0.5 * 3.5]], rtol=1e-12)
    # ERASER's default bins on 4 features: ceil(q·4) = 1, 1, 1, 1, 2
    default = comprehensiveness(model, e)
    np.testing.assert_array_equal(default.extras["k"], [1, 1, 1, 1, 2])
    np.testing.assert_allclose(default.scores, [(4 * 3.0 + 5.0) / 5], rtol=1e-12)
    assert comp.higher_is_better and not suff.higher_is_better


def test_comprehensiveness_matches_loop_on_many_rows(table):
    model, w, _, x, target = table
    a = np.random.default_rng(9).normal(size=x.shape)
    e = lumos.Explanation(values=a, data=x, target=target)
    fr = (0.2, 0.5, 1.0)
    comp = comprehensiveness(model, e, fractions=fr, batch_size=4)
    suff = sufficiency(model, e, fractions=fr, batch_size=4)
    for i in range(len(x)):
        order = np.argsort(-a[i], kind="stable")
        contrib = w[target[i]] * x[i]
        for j, k in enumerate((2, 3, 6)):
            top = order[:k]
            np.testing.assert_allclose(comp.curve[i, j], contrib[top].sum(), rtol=1e-10)
            rest = np.setdiff1d(np.arange(D), top)
            np.testing.assert_allclose(suff.curve[i, j], contrib[rest].sum(), atol=1e-12)


# ----------------------------------------------------------------------------- PGI / PGU
def test_pgi_pgu_equal_naive_loop_with_the_same_draws(table):
    model, w, _, x, target = table
    a = np.random.default_rng(10).normal(size=x.shape)
    e = lumos.Explanation(values=a, data=x, target=target)
    gi = pgi(model, e, k=2, n_samples=8, noise_std=0.3, random_state=5)
    gu = pgu(model, e, k=2, n_samples=8, noise_std=0.3, random_state=5)
    seeds = _base.row_seeds(5, len(x))
    for i in range(len(x)):
        eps = 0.3 * np.random.default_rng(seeds[i]).standard_normal((8, D))
        top = np.zeros(D, dtype=bool)
        top[np.argsort(-np.abs(a[i]), kind="stable")[:2]] = True
        wt = w[target[i]]
        np.testing.assert_allclose(gi.extras["gaps"][i], np.abs(eps[:, top] @ wt[top]), rtol=1e-10)
        np.testing.assert_allclose(gu.extras["gaps"][i], np.abs(eps[:, ~top] @ wt[~top]),
                                   rtol=1e-10)  # fmt: skip
    np.testing.assert_allclose(gi.scores, gi.extras["gaps"].mean(axis=1), rtol=1e-12)
    assert gi.params["resolved_k"] == 2 and gi.higher_is_better and not gu.higher_is_better


def test_pgi_matches_its_closed_form_expectation(table):
    """On f = w·x + c, f(x) − f(x + m ⊙ ε) ~ N(0, σ² ‖w_m‖²): E|·| = σ ‖w_m‖ √(2/π)."""
    model, w, _, x, target = table
    e = lumos.Explanation(values=w[target] * x, data=x, target=target)
    n_samples, sigma = 20000, 0.2
    r = pgi(model, e, k=0.5, n_samples=n_samples, noise_std=sigma, random_state=0)
    assert r.params["resolved_k"] == 3
    for i in range(len(x)):
        top = np.argsort(-np.abs(w[target[i]] * x[i]), kind="stable")[:3]
        scale = sigma * np.linalg.norm(w[target[i], top])
        mean, sd = scale * np.sqrt(2 / np.pi), scale * np.sqrt(1 - 2 / np.pi)
        assert abs(r.scores[i] - mean) < 4 * sd / np.sqrt(n_samples)
    assert np.all(pgu(model, e, k=D, random_state=0).scores == 0)  # nothing left to perturb


# ----------------------------------------------------------------------------- seeds
def _stochastic_cases(table, image):
    model_t, _, _, x_t, t_t = table
    e_t = lumos.Explanation(values=np.random.default_rng(100).normal(size=x_t.shape),
                            data=x_t, target=t_t)  # fmt: skip
    model_i, _, _, x_i, t_i = image
    e_i = lumos.Explanation(values=np.random.default_rng(101).normal(size=x_i.shape),
                            data=x_i, target=t_i)  # fmt: skip
    return [
        (infidelity, model_t, e_t, {"n_samples": 13}),
        (infidelity, model_t, e_t, {"n_samples": 13, "perturbation": "subset", "baseline": 2.0}),
        (infidelity, model_t, e_t, dict(n_samples=13, perturbation="subset", baseline="uniform")),
        (infidelity, model_i, e_i, {"n_samples": 13, "perturbation": "square"}),
        (road, model_i, e_i, {"percentages": (20, 60)}),
        (pgi, model_t, e_t, {"n_samples": 13}),
        (pgu, model_t, e_t, {"n_samples": 13}),
    ]


def test_reproducible_and_batch_size_invariant(table, image):
    for metric, model, e, kw in _stochastic_cases(table, image):
        ref = metric(model, e, random_state=7, **kw)
        for bs in (1, 5, 29):
            got = metric(model, e, random_state=7, batch_size=bs, **kw)
            np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-12, atol=1e-15)
        gen1 = metric(model, e, random_state=np.random.default_rng(7), **kw)
        gen2 = metric(model, e, random_state=np.random.default_rng(7), **kw)
        np.testing.assert_allclose(gen1.scores, gen2.scores, rtol=1e-12)
        other = metric(model, e, random_state=8, **kw)
        assert not np.allclose(other.scores, ref.scores), metric.__name__


def test_a_row_score_depends_only_on_its_own_seed(table, image):
    """Row i draws from row_seeds(random_state, n)[i], the same child for any n: scoring the
    first rows alone gives their scores in the full run."""
    for metric, model, e, kw in _stochastic_cases(table, image):
        if kw.get("baseline") == "uniform":
            continue  # the uniform baseline draws per row too, but from the whole batch's range
        full = metric(model, e, random_state=4, **kw)
        head = lumos.Explanation(values=e.values[:2], data=e.data[:2], target=e.target[:2])
        np.testing.assert_allclose(
            metric(model, head, random_state=4, **kw).scores, full.scores[:2], rtol=1e-12
        )


def test_shared_computations_run_once(table):
    _, w, c, x, target = table
    calls = []

    def f(z):
        calls.append(len(z))
        return z @ w.T + c

    m = lumos.wrap(f)
    e = lumos.Explanation(values=np.random.default_rng(1).normal(size=x.shape), data=x,
                          target=target)  # fmt: skip
    with _base.sharing():
        infidelity(m, e, random_state=0, n_samples=10)
        n_first = sum(calls)
        r = infidelity(m, e, random_state=0, n_samples=10, normalise=False)
        assert sum(calls) == n_first  # same draws and outputs, only β differs
        before = sum(calls)
        sufficiency(m, e)
        sufficiency(m, e, abs=False)  # the default, spelled out: same computation
        assert sum(calls) - before == len(x) * 5  # 5 bins, f(x) already known
    assert r.scores.shape == (len(x),)


# ----------------------------------------------------------------------------- registry / errors
def test_registry_metadata():
    expect = {
        "infidelity": False, "road": False, "comprehensiveness": True, "sufficiency": False,
        "pgi": True, "pgu": False,
    }  # fmt: skip
    for name, hib in expect.items():
        info = _base.get_metric(name)
        assert info.category == "faithfulness" and info.higher_is_better is hib
    assert "image" in _base.get_metric("road").requires
    assert "tabular" in _base.get_metric("sufficiency").requires


def test_bad_inputs(table, image):
    model, _, _, x, target = table
    e = lumos.Explanation(values=np.ones_like(x), data=x, target=target)
    model_i, _, _, x_i, t_i = image
    e_i = lumos.Explanation(values=np.ones_like(x_i), data=x_i, target=t_i)
    cases = [
        (UnknownNameError, infidelity, e, {"perturbation": "noise"}),
        (InputError, infidelity, e, {"n_samples": 1}),
        (InputError, infidelity, e, {"n_samples": 0, "normalise": False}),
        (InputError, infidelity, e, {"noise_std": -1.0}),
        (InputError, infidelity, e, {"noise_std": float("nan")}),
        (InputError, infidelity, e, {"normalise": "yes"}),
        (ShapeError, infidelity, e, {"perturbation": "square"}),
        (InputError, infidelity, e, {"square_sizes": (2,)}),
        (ShapeError, infidelity, e, {"perturbation": "subset", "baseline": np.zeros(D + 1)}),
        (InputError, infidelity, e, {"bogus": 1}),
        (ShapeError, road, e, {}),
        (InputError, road, e_i, {"percentages": (0, 50)}),
        (InputError, road, e_i, {"percentages": (50, 100)}),
        (InputError, road, e_i, {"percentages": ()}),
        (InputError, road, e_i, {"percentages": ("a",)}),
        (UnknownNameError, road, e_i, {"order": "up"}),
        (UnknownNameError, road, e_i, {"measure": "loss"}),
        (InputError, road, e_i, {"noise": -0.1}),
        (InputError, comprehensiveness, e, {"fractions": (0.0, 0.5)}),
        (InputError, comprehensiveness, e, {"fractions": (1.5,)}),
        (InputError, sufficiency, e, {"fractions": "a"}),
        (InputError, sufficiency, e, {"abs": 1}),
        (UnknownNameError, sufficiency, e, {"baseline": "median"}),
        (InputError, pgi, e, {"k": 0}),
        (InputError, pgi, e, {"k": 1.5}),
        (InputError, pgi, e, {"k": D + 1}),
        (InputError, pgu, e, {"k": "3"}),
        (InputError, pgu, e, {"n_samples": 0}),
        (InputError, pgu, e, {"noise_std": 0.0}),
        (InputError, pgi, e, {"random_state": -1}),
    ]
    for err, metric, expl, kw in cases:
        m = model_i if expl is e_i else model
        with pytest.raises(err):
            metric(m, expl, **kw)
    with pytest.raises(InputError):
        infidelity(model_i, e_i, perturbation="square", square_sizes=(6,))
    with pytest.raises(InputError):
        pgi(model, {"values": x}, k=2)
    nan = lumos.Explanation(values=np.full_like(x, np.nan), data=x, target=target)
    with pytest.raises(NonFiniteError):
        comprehensiveness(model, nan)
    with pytest.raises(InputError):
        noisy_linear_imputation(np.ones((3, 3)), np.ones((3, 3), dtype=bool))
    with pytest.raises(ShapeError):
        noisy_linear_imputation(np.ones((3, 3)), np.ones((2, 3), dtype=bool))


def test_results_carry_metadata(table):
    model, _, _, x, target = table
    e = lumos.Explanation(values=np.ones_like(x), data=x, target=target, method="saliency")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pgu(model, e, random_state=0, k=3)
    assert r.name == "pgu" and r.category == "faithfulness" and r.method == "saliency"
    assert r.params["k"] == 3 and r.params["random_state"] == 0 and r.params["resolved_k"] == 3
