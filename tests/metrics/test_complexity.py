"""Complexity metrics against their closed forms (Gini of one-hot / uniform rows, entropy
ln d), naive re-implementations, hand-counted thresholds, quantus 0.6.0 where the definitions
agree and hand-computed cases where they do not, and their errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus
from torch import nn

import lumos
from lumos.errors import InputError, NonFiniteError, ShapeError
from lumos.metrics._base import get_metric
from lumos.metrics.complexity import complexity, effective_complexity, sparseness


def expl(values: np.ndarray) -> lumos.Explanation:
    values = np.asarray(values, dtype=np.float64)
    return lumos.Explanation(values=values, data=np.zeros_like(values))


def naive_gini(m: np.ndarray) -> float:
    """Mean absolute difference form: Σ_i Σ_j |m_i − m_j| / (2 d Σ m)."""
    return float(np.abs(m[:, None] - m[None, :]).sum() / (2 * len(m) * m.sum()))


def naive_entropy(m: np.ndarray) -> float:
    p = m / m.sum()
    return float(-sum(v * np.log(v) for v in p if v > 0))


# ----------------------------------------------------------------------------- sparseness
@pytest.mark.parametrize("d", [1, 2, 5, 64])
def test_gini_of_one_hot_is_d_minus_1_over_d_and_of_uniform_is_0(d: int) -> None:
    one_hot = np.zeros((1, d))
    one_hot[0, d // 2] = -3.5  # sign and scale do not matter
    uniform = np.full((1, d), 0.2)
    scores = sparseness(None, expl(np.concatenate([one_hot, uniform]))).scores
    np.testing.assert_allclose(scores, [(d - 1) / d, 0.0], atol=1e-12)


def test_gini_hand_computed_and_scale_invariant() -> None:
    # sorted [0, 0, 1, 3], d = 4, Σ = 4: Σ(2i − 5) m_(i) = 1·1 + 3·3 = 10 → 10 / 16
    row = np.array([[3.0, 0.0, -1.0, 0.0]])
    for scale in (1.0, 1e-6, 1e6):
        assert sparseness(None, expl(scale * row)).scores[0] == pytest.approx(0.625, abs=1e-12)


def test_gini_equals_the_mean_absolute_difference_form(rng: np.random.Generator) -> None:
    values = rng.normal(size=(5, 2, 3, 4)) * rng.uniform(0, 3, size=(5, 1, 1, 1))
    values[2, 0] = 0.0  # ties at zero
    scores = sparseness(None, expl(values)).scores
    ref = [naive_gini(np.abs(v).ravel()) for v in values]
    np.testing.assert_allclose(scores, ref, atol=1e-12)


# ----------------------------------------------------------------------------- complexity
@pytest.mark.parametrize("d", [1, 2, 7, 64])
def test_entropy_of_uniform_is_ln_d_and_of_one_hot_is_0(d: int) -> None:
    uniform = np.full((1, d), -0.3)
    one_hot = np.zeros((1, d))
    one_hot[0, -1] = 5.0
    scores = complexity(None, expl(np.concatenate([uniform, one_hot]))).scores
    np.testing.assert_allclose(scores, [np.log(d), 0.0], atol=1e-12)


def test_entropy_hand_computed_and_naive(rng: np.random.Generator) -> None:
    # p = (1/4, 1/4, 1/2, 0): H = 2 · (1/4) ln 4 + (1/2) ln 2 = 1.5 ln 2
    row = np.array([[1.0, -1.0, 2.0, 0.0]])
    assert complexity(None, expl(row)).scores[0] == pytest.approx(1.5 * np.log(2), abs=1e-12)
    values = rng.normal(size=(4, 3, 5))
    values[1, 0] = 0.0
    scores = complexity(None, expl(1e-8 * values)).scores
    ref = [naive_entropy(np.abs(v).ravel()) for v in values]
    np.testing.assert_allclose(scores, ref, atol=1e-12)


# ----------------------------------------------------------------------------- effective complexity
def test_effective_complexity_counted_by_hand() -> None:
    row = np.array([[0.5, -2.0, 1e-6, 0.0, 3e-5, 1.0]])
    e = expl(row)
    # relative: shares of max 2 are .25, 1, 5e-7, 0, 1.5e-5, .5
    assert effective_complexity(None, e).scores[0] == 4  # eps = 1e-5: all but 5e-7 and 0
    assert effective_complexity(None, e, eps=0.3).scores[0] == 2  # 1 and .5
    assert effective_complexity(None, e, eps=0.3, relative=False).scores[0] == 3  # .5, 2, 1
    assert effective_complexity(None, e, eps=0.0, relative=False).scores[0] == 5  # non-zeros
    r = effective_complexity(None, e, eps=0.3)
    np.testing.assert_allclose(r.extras["fraction"], [2 / 6])


# ----------------------------------------------------------------------------- all-zero rows
def test_all_zero_rows_are_nan_with_a_reason_or_count_zero() -> None:
    values = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    e = expl(values)
    for metric, good in ((sparseness, 0.75), (complexity, 0.0)):
        r = metric(None, e)
        assert np.isnan(r.scores[0]) and r.scores[1] == pytest.approx(good, abs=1e-12)
        assert r.extras["zero_rows"].tolist() == [True, False]
        assert "all-zero" in r.extras["nan_reason"]
        assert r.n_valid == 1 and r.mean == pytest.approx(good, abs=1e-12)
    np.testing.assert_array_equal(effective_complexity(None, e).scores, [0.0, 1.0])
    assert "nan_reason" not in sparseness(None, expl(values[1:])).extras


# ----------------------------------------------------------------------------- quantus
def _quantus(cls: type, a: np.ndarray, **kwargs: object) -> np.ndarray:
    metric = cls(disable_warnings=True, display_progressbar=False, **kwargs)
    x = np.zeros_like(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(
            model=None, x_batch=x, y_batch=np.zeros(len(a), dtype=int), a_batch=a.copy(),
            channel_first=True,
        )  # fmt: skip
    return np.asarray(out, dtype=np.float64)


def test_sparseness_and_complexity_equal_quantus(rng: np.random.Generator) -> None:
    a = rng.normal(size=(5, 1, 8, 8))
    e = expl(a)
    np.testing.assert_allclose(
        sparseness(None, e).scores, _quantus(quantus.Sparseness, a), atol=1e-6
    )
    np.testing.assert_allclose(
        complexity(None, e).scores, _quantus(quantus.Complexity, a), atol=1e-6
    )


def test_sparseness_of_small_attributions_differs_from_quantus_offset() -> None:
    # quantus adds 1e-7 to every |a|: on 1e-6 · [0, 0, 1, 3] (normalise=False) its index is
    # 10e-6 / (4 · 4.4e-6) = 0.568; the Gini index is 0.625 at any scale
    a = 1e-6 * np.array([[[[0.0, 0.0, 1.0, 3.0]]]])
    q = _quantus(quantus.Sparseness, a, normalise=False)
    assert q[0] == pytest.approx(10e-6 / (4 * 4.4e-6), rel=1e-9)
    assert sparseness(None, expl(a)).scores[0] == pytest.approx(0.625, abs=1e-12)


def test_effective_complexity_equals_quantus(rng: np.random.Generator) -> None:
    a = rng.normal(size=(4, 1, 6, 6)) * rng.uniform(0.1, 10, size=(4, 1, 1, 1))
    e = expl(a)
    ours = effective_complexity(None, e, eps=0.5, relative=False).scores
    theirs = _quantus(quantus.EffectiveComplexity, a, eps=0.5, normalise=False)
    np.testing.assert_array_equal(ours, theirs)
    # relative=True is quantus' normalise=True on a batch of one row (quantus divides the
    # whole batch by the batch maximum, lumos each row by its own)
    ours = effective_complexity(None, e, eps=0.2).scores
    theirs = [_quantus(quantus.EffectiveComplexity, a[i : i + 1], eps=0.2)[0] for i in range(4)]
    np.testing.assert_array_equal(ours, theirs)


def test_effective_complexity_is_per_row_unlike_quantus_batch_normalisation() -> None:
    # row 0 has max 100, row 1 max 1: quantus (normalise=True) divides both by 100, so with
    # eps = 0.05 row 1 ([1, .6, .02]) keeps only features above 5 → 0; lumos counts 2
    a = np.array([[100.0, 1.0, 0.0], [1.0, 0.6, 0.02]]).reshape(2, 1, 1, 3)
    theirs = _quantus(quantus.EffectiveComplexity, a, eps=0.05)
    np.testing.assert_array_equal(theirs, [1, 0])
    np.testing.assert_array_equal(effective_complexity(None, expl(a), eps=0.05).scores, [1, 2])


# ----------------------------------------------------------------------------- model argument
def test_with_a_model_the_explanation_is_checked_and_scores_agree(rng: np.random.Generator) -> None:
    lin = nn.Linear(4, 3)
    x = rng.normal(size=(3, 4))
    e = lumos.Explanation(values=rng.normal(size=(3, 4)), data=x, target=[0, 2, 1])
    for metric in (sparseness, complexity, effective_complexity):
        np.testing.assert_array_equal(metric(lin, e).scores, metric(None, e).scores)
    wrong = lumos.Explanation(values=rng.normal(size=(3, 5)), data=rng.normal(size=(3, 5)))
    with pytest.raises(ShapeError):
        sparseness(lin, wrong)
    bad_target = lumos.Explanation(values=e.values, data=x, target=[0, 3, 1])
    with pytest.raises(InputError, match="target"):
        complexity(lin, bad_target)


def test_registry_metadata() -> None:
    for name, direction in (
        ("sparseness", True),
        ("complexity", False),
        ("effective_complexity", False),
    ):
        info = get_metric(name)
        assert info.category == "complexity" and info.higher_is_better is direction
        assert not info.requires
    r = effective_complexity(None, expl(np.ones((2, 3))), eps=0.1)
    assert r.name == "effective_complexity" and r.params == {"eps": 0.1, "relative": True}


# ----------------------------------------------------------------------------- bad input
def test_bad_input_raises_typed_errors() -> None:
    e = expl(np.ones((2, 3)))
    with pytest.raises(InputError, match="Explanation"):
        sparseness(None, np.ones((2, 3)))
    nan = lumos.Explanation(values=np.array([[1.0, np.nan]]), data=np.zeros((1, 2)))
    for metric in (sparseness, complexity, effective_complexity):
        with pytest.raises(NonFiniteError):
            metric(None, nan)
    with pytest.raises(InputError, match="eps"):
        effective_complexity(None, e, eps=-1e-3)
    with pytest.raises(InputError, match="below 1"):
        effective_complexity(None, e, eps=1.0)
    with pytest.raises(InputError, match="eps"):
        effective_complexity(None, e, eps="small")
    with pytest.raises(InputError, match="relative"):
        effective_complexity(None, e, relative="yes")
    with pytest.raises(InputError, match="parameters"):
        sparseness(None, e, abs=False)
