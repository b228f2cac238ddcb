"""Bad input gets a typed LumosError that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import lumos
from lumos._random import check_random_state
from lumos._validation import check_target
from lumos.errors import (
    EmptyInputError,
    InputError,
    LumosError,
    NonFiniteError,
    NonNumericError,
    ShapeError,
    TargetError,
    UnknownNameError,
)

W = np.array([1.0, -2.0, 0.5])


@pytest.fixture
def model() -> lumos.Model:
    return lumos.wrap(
        lambda a: np.stack([a @ W, -(a @ W)], axis=1), input_shape=(3,), class_names=["up", "down"]
    )


def test_every_error_is_a_lumos_error() -> None:
    for cls in (
        EmptyInputError,
        NonFiniteError,
        NonNumericError,
        ShapeError,
        TargetError,
        UnknownNameError,
    ):
        assert issubclass(cls, LumosError)
    assert issubclass(ShapeError, ValueError) and issubclass(NonNumericError, TypeError)


def test_wrong_shape(model: lumos.Model) -> None:
    with pytest.raises(ShapeError, match=r"expects rows of shape \(3,\)"):
        model(np.zeros((4, 5)))
    with pytest.raises(ShapeError, match=r"x\[None\]"):
        model(np.zeros(3))
    with pytest.raises(ShapeError, match="scalar"):
        model(np.float64(1.0))
    with pytest.raises(ShapeError, match="expects rows"):
        lumos.explain(model, np.zeros((2, 3, 1)), method="feature_ablation")


def test_nan_and_inf(model: lumos.Model) -> None:
    x = np.ones((4, 3))
    x[2, 1] = np.nan
    with pytest.raises(
        NonFiniteError, match=r"1 NaN or infinite value\(s\), the first at index \(2, 1\)"
    ):
        model(x)
    x[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match="impute"):
        lumos.explain(model, x, method="feature_ablation")
    with pytest.raises(NonFiniteError):
        model(torch.full((2, 3), float("nan")))


def test_non_numeric(model: lumos.Model) -> None:
    with pytest.raises(NonNumericError, match="not numeric"):
        model(np.array([["a", "b", "c"]]))
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [0.0, 1.0]})
    with pytest.raises(NonNumericError, match=r"\['b'\].*one-hot"):
        model(frame)
    with pytest.raises(NonNumericError, match="rectangular"):
        model([[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(NonNumericError, match="complex"):
        model(np.ones((1, 3), dtype=complex))


def test_empty(model: lumos.Model) -> None:
    with pytest.raises(EmptyInputError, match="0 row"):
        model(np.zeros((0, 3)))
    with pytest.raises(EmptyInputError, match="no features"):
        lumos.wrap(lambda a: a)(np.zeros((2, 0)))
    with pytest.raises(EmptyInputError):
        lumos.explain(
            model, pd.DataFrame({"a": [], "b": [], "c": []}, dtype=float), method="feature_ablation"
        )


def test_unknown_method_suggests_the_closest(model: lumos.Model) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'feature_ablation'"):
        lumos.explain(model, np.ones((1, 3)), method="feature_ablaton")
    with pytest.raises(UnknownNameError, match="no parameter"):
        lumos.explain(model, np.ones((1, 3)), method="feature_ablation", n_stepz=3)


def test_targets(model: lumos.Model) -> None:
    x = np.ones((2, 3))
    with pytest.raises(TargetError, match=r"out of range.*0\.\.1"):
        lumos.explain(model, x, method="feature_ablation", target=2)
    with pytest.raises(TargetError, match="not a class name"):
        lumos.explain(model, x, method="feature_ablation", target="sideways")
    with pytest.raises(TargetError, match="one per row"):
        lumos.explain(model, x, method="feature_ablation", target=[0, 1, 0])
    e = lumos.explain(model, x, method="feature_ablation", target=["down", 0])
    assert e.target.tolist() == [1, 0]
    e = lumos.explain(model, x, method="feature_ablation", target=-1)
    assert e.target.tolist() == [1, 1]


def test_many_targets_are_range_checked_and_wrapped() -> None:
    """More targets than the Python fast path takes: checked by their min and max."""
    t = np.tile(np.array([0, -1, 2, -3]), 5)  # 20 rows, 3 outputs
    np.testing.assert_array_equal(check_target(t, 20, 3), np.tile([0, 2, 2, 0], 5))
    np.testing.assert_array_equal(check_target(np.arange(20) % 3, 20, 3), np.arange(20) % 3)
    for bad, first in ((np.r_[np.zeros(18, int), 3, -4], 3), (np.r_[np.ones(19, int), -4], -4)):
        with pytest.raises(TargetError, match=rf"target {first} is out of range.*0\.\.2"):
            check_target(bad, 20, 3)


def test_random_state() -> None:
    assert check_random_state(3).integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)
    g = np.random.default_rng(1)
    assert check_random_state(g) is g
    with pytest.raises(InputError):
        check_random_state("seed")
    with pytest.raises(InputError):
        check_random_state(-1)


def test_batch_size_must_be_positive(model: lumos.Model) -> None:
    with pytest.raises(InputError, match="batch_size must be >= 1"):
        model(np.ones((2, 3)), batch_size=0)
    with pytest.raises(InputError, match="positive int"):
        lumos.wrap(lambda a: a, batch_size=2.5)
