"""Explanation / GlobalExplanation: construction, slicing, views, exact save/load."""

from __future__ import annotations

import numpy as np
import pytest

import lumos
from lumos import Explanation, GlobalExplanation
from lumos.errors import LumosError, ShapeError


def make(rng: np.random.Generator, n: int = 6, d: int = 4) -> Explanation:
    return Explanation(
        values=rng.normal(size=(n, d)),
        data=rng.normal(size=(n, d)),
        target=rng.integers(0, 3, size=n),
        prediction=rng.random(n),
        base_value=rng.random(n),
        stderr=rng.random((n, d)),
        feature_names=[f"f{i}" for i in range(d)],
        class_names=["a", "b", "c"],
        method="kernel_shap",
        params={
            "n_samples": 128,
            "random_state": 7,
            "baseline": np.arange(d) / 3.0,
            "window": (2, 2),
            "nested": {"k": np.float32(0.5)},
        },
        elapsed_s=0.25,
        groups=np.array([0, 0, 1, 2]),
        extras={"r2": rng.random(n)},
    )


def test_construct_from_plain_arrays() -> None:
    e = Explanation(values=[[1.0, -3.0, 2.0]], data=[[0.0, 1.0, 2.0]])
    assert e.target.tolist() == [0] and e.prediction is None and e.method == "custom"
    assert e.top_features(2) == [[("x1", -3.0), ("x2", 2.0)]]
    assert e.provenance["input_shape"] == [3] and e.provenance["lumos_version"] == lumos.__version__
    with pytest.raises(ShapeError, match="same shape"):
        Explanation(values=np.zeros((2, 3)), data=np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="row dimension"):
        Explanation(values=np.zeros(3), data=np.zeros(3))
    with pytest.raises(ShapeError, match="feature names"):
        Explanation(values=np.zeros((1, 3)), data=np.zeros((1, 3)), feature_names=["a"])
    with pytest.raises(ShapeError, match=r"target must have shape \(2,\)"):
        Explanation(values=np.zeros((2, 3)), data=np.zeros((2, 3)), target=[0, 1, 2])


def test_slicing_keeps_every_per_row_field(rng: np.random.Generator) -> None:
    e = make(rng)
    for rows in (slice(1, 4), [0, 5, 2], np.array([True, False] * 3), 3, -1):
        sub = e[rows]
        idx = np.arange(6)[rows] if not isinstance(rows, int) else np.array([rows % 6])
        np.testing.assert_array_equal(sub.values, e.values[idx])
        np.testing.assert_array_equal(sub.data, e.data[idx])
        np.testing.assert_array_equal(sub.target, e.target[idx])
        np.testing.assert_array_equal(sub.stderr, e.stderr[idx])
        np.testing.assert_array_equal(sub.base_value, e.base_value[idx])
        np.testing.assert_array_equal(sub.extras["r2"], e.extras["r2"][idx])
        np.testing.assert_array_equal(sub.groups, e.groups)  # shared map stays shared
    assert len(e[2]) == 1
    with pytest.raises(IndexError):
        e[6]


def test_top_features_ranks_by_magnitude_and_sign() -> None:
    e = Explanation(
        values=[[0.1, -5.0, 3.0, 0.0], [2.0, 1.0, -1.0, 0.5]],
        data=np.zeros((2, 4)),
        feature_names=["a", "b", "c", "d"],
    )
    assert e.top_features(2) == [[("b", -5.0), ("c", 3.0)], [("a", 2.0), ("b", 1.0)]]
    assert e.top_features(1, by="negative") == [[("b", -5.0)], [("c", -1.0)]]
    assert e.top_features(1, by="positive") == [[("c", 3.0)], [("a", 2.0)]]
    assert len(e.top_features(10)[0]) == 4
    img = Explanation(values=np.arange(8.0).reshape(1, 2, 2, 2), data=np.zeros((1, 2, 2, 2)))
    assert img.top_features(1) == [[("x[1,1,1]", 7.0)]]


def test_to_frame_wide_and_long(rng: np.random.Generator) -> None:
    e = make(rng)
    wide = e.to_frame()
    assert list(wide.columns) == e.feature_names
    np.testing.assert_array_equal(wide.to_numpy(), e.values)
    long = e.to_frame(long=True)
    assert len(long) == 6 * 4
    row = long[(long.row == 2) & (long.feature == "f3")].iloc[0]
    assert row.value == e.values[2, 3] and row.data == e.data[2, 3]
    assert row.stderr == e.stderr[2, 3] and row.target == e.target[2]


def test_save_load_round_trip_is_exact(tmp_path, rng: np.random.Generator) -> None:
    e = make(rng)
    path = e.save(tmp_path / "sub" / "exp")
    assert path.endswith(".npz")
    back = Explanation.load(path)
    for name in ("values", "data", "target", "prediction", "base_value", "stderr", "groups"):
        a, b = getattr(e, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert np.array_equal(back.extras["r2"], e.extras["r2"])
    assert back.feature_names == e.feature_names and back.class_names == e.class_names
    assert back.method == e.method and back.elapsed_s == e.elapsed_s
    assert back.provenance == e.provenance
    np.testing.assert_array_equal(back.params["baseline"], e.params["baseline"])
    assert back.params["window"] == [2, 2] == e.params["window"]
    assert back.params["nested"] == {"k": 0.5} and back.params["random_state"] == 7
    # images with per-row segment maps
    img = Explanation(
        values=rng.normal(size=(2, 1, 4, 4)).astype(np.float32),
        data=rng.random((2, 1, 4, 4)),
        groups=rng.integers(0, 3, (2, 1, 4, 4)),
    )
    back = Explanation.load(img.save(tmp_path / "img.npz"))
    assert np.array_equal(back.values, img.values) and np.array_equal(back.groups, img.groups)


def test_load_refuses_foreign_files(tmp_path) -> None:
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(LumosError, match="not one written by lumos"):
        Explanation.load(tmp_path / "other.npz")
    g = GlobalExplanation(importance=[1.0, 2.0])
    path = g.save(tmp_path / "g.npz")
    with pytest.raises(LumosError, match=r"lumos\.global_explanation"):
        Explanation.load(path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(LumosError, match="not a lumos explanation file"):
        Explanation.load(tmp_path / "junk.npz")
    # an object array (a pickle inside the npz) is never unpickled
    np.savez(tmp_path / "obj.npz", __meta__=np.array([{"x": 1}], dtype=object))
    with pytest.raises(LumosError):
        Explanation.load(tmp_path / "obj.npz")


def test_global_explanation(tmp_path, rng: np.random.Generator) -> None:
    g = GlobalExplanation(
        importance=[0.1, -0.9, 0.4],
        stderr=[0.01, 0.02, 0.03],
        feature_names=["a", "b", "c"],
        method="permutation",
        params={"n_repeats": 5},
        fidelity=0.93,
        rules="if b > 1 then x",
        formula="f(x) = 0.1·a − 0.9·b + 0.4·c",
        estimator=object(),
        extras={"curve": np.array([[1, 0.8], [2, 0.9]])},
        info={"score": "accuracy"},
    )
    assert g.ranking.tolist() == [1, 2, 0]
    assert g.top_features(2) == [("b", -0.9), ("c", 0.4)]
    frame = g.to_frame()
    assert frame.feature.tolist() == ["b", "c", "a"] and frame["rank"].tolist() == [1, 2, 3]
    back = GlobalExplanation.load(g.save(tmp_path / "g"))
    assert np.array_equal(back.importance, g.importance) and np.array_equal(back.stderr, g.stderr)
    assert (back.fidelity, back.rules, back.formula) == (g.fidelity, g.rules, g.formula)
    assert np.array_equal(back.extras["curve"], g.extras["curve"]) and back.info == g.info
    assert back.estimator is None  # fitted estimators are not pickled
    with pytest.raises(ShapeError):
        GlobalExplanation(importance=np.zeros((2, 2)))
