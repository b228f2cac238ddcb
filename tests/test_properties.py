"""Property tests (hypothesis): invariants that must hold for any input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lumos
from lumos import Explanation

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    w=arrays(np.float64, st.integers(1, 8), elements=finite),
    seed=st.integers(0, 2**16),
    n_groups=st.integers(1, 4),
    batch_size=st.integers(1, 50),
)
def test_ablation_of_a_partition_is_additive_for_linear_models(
    w: np.ndarray, seed: int, n_groups: int, batch_size: int
) -> None:
    """For f(x) = w·x, the groups of any partition add up to f(x) − f(baseline)."""
    d = len(w)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, d))
    baseline = rng.normal(size=d)
    labels = rng.integers(0, n_groups, size=d)
    labels = np.unique(labels, return_inverse=True)[1]  # labels 0..G-1, none empty
    e = lumos.explain(
        lambda a: a @ w,
        x,
        method="feature_ablation",
        baseline=baseline,
        groups=labels,
        batch_size=batch_size,
    )
    total = e.extras["group_values"].sum(axis=1)
    scale = 1.0 + np.abs(w).sum() * (np.abs(x).max() + np.abs(baseline).max())
    np.testing.assert_allclose(total, e.prediction - e.base_value, atol=1e-9 * scale)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_save_load_round_trip_for_any_shape(tmp_path_factory, shape, n, seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, *shape)) * 10.0 ** rng.integers(-300, 300)
    e = Explanation(values=values, data=rng.normal(size=values.shape), stderr=np.abs(values))
    path = e.save(tmp_path_factory.mktemp("rt") / "e.npz")
    back = Explanation.load(path)
    assert np.array_equal(back.values, e.values) and np.array_equal(back.stderr, e.stderr)
    assert back.input_shape == tuple(shape)
