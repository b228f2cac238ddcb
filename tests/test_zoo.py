"""Tests for lumos.zoo: the reference networks, copy_weights and fit."""

from __future__ import annotations

import random

import lumos  # noqa: F401  (sets KERAS_BACKEND=torch before keras is imported)

# isort: split
import keras
import numpy as np
import pytest
import torch
from keras.src.utils.rng_utils import get_random_seed as keras_global_seed
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn

from lumos.errors import (
    EmptyInputError,
    InputError,
    LumosError,
    ModelError,
    NonFiniteError,
    NonNumericError,
    ShapeError,
    TargetError,
    UnknownNameError,
)
from lumos.zoo import copy_weights, fit, keras_cnn, keras_mlp, torch_cnn, torch_mlp

QUIET = {"progress": False}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """300 standardised rows of breast cancer (30 features, 2 classes)."""
    x, y = load_breast_cancer(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(y))[:300]
    x = StandardScaler().fit_transform(x[rows]).astype(np.float32)
    return x, y[rows].astype(np.int64)


@pytest.fixture(scope="module")
def noise() -> tuple[np.ndarray, np.ndarray]:
    """Pure-noise labels: validation loss can only get worse after a couple of epochs."""
    rng = np.random.default_rng(1)
    return rng.normal(size=(200, 10)).astype(np.float32), rng.integers(0, 2, size=200)


def torch_weights(model: nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


def n_params_torch(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torch_predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()


def keras_predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def global_rng_state() -> tuple:
    return (
        torch.get_rng_state().clone(),
        np.random.get_state()[1].copy(),  # noqa: NPY002
        random.getstate(),
        keras_global_seed(),
    )


def assert_same_global_state(before: tuple, after: tuple) -> None:
    assert torch.equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]
    assert before[3] == after[3]


def val_rows(n: int, split: float, seed: int) -> np.ndarray:
    """The validation rows as fit documents them."""
    return np.random.default_rng(seed).permutation(n)[: max(1, round(n * split))]


# --------------------------------------------------------------------------- architecture


def test_keras_mlp_is_the_classic_network() -> None:
    d, n = 30, 3
    model = keras_mlp(d, n, seed=0)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.name for layer in dense] == ["dense_1", "dense_2", "output"]
    assert [layer.units for layer in dense] == [128, 64, n]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "softmax"]
    assert [layer.kernel_regularizer for layer in dense] == [None, None, None]
    assert model.input_shape == (None, d)
    assert model.output_shape == (None, n)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.get_compile_config()["metrics"] == ["accuracy"]
    assert model.count_params() == (d + 1) * 128 + 129 * 64 + 65 * n == 12419


def test_keras_mlp_regularizers_and_widths() -> None:
    model = keras_mlp(5, 2, hidden=(16, 8, 4), l1=0.01, l2=0.002, seed=0)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.name for layer in dense] == ["dense_1", "dense_2", "dense_3", "output"]
    assert [layer.units for layer in dense] == [16, 8, 4, 2]
    for layer in dense:
        reg = layer.kernel_regularizer
        assert isinstance(reg, keras.regularizers.L1L2)
        assert reg.l1 == pytest.approx(0.01)
        assert reg.l2 == pytest.approx(0.002)
    only_l2 = keras_mlp(5, 2, l2=0.5, seed=0).get_layer("output").kernel_regularizer
    assert (only_l2.l1, only_l2.l2) == (pytest.approx(0.0), pytest.approx(0.5))


def test_cnn_twins_architecture() -> None:
    kc = keras_cnn(seed=0)
    convs = [layer for layer in kc.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in convs] == ["conv_1", "last_conv"]
    assert [c.filters for c in convs] == [8, 16]
    assert all(c.data_format == "channels_first" and c.padding == "same" for c in convs)
    assert kc.get_layer("last_conv").output.shape == (None, 16, 14, 14)
    assert kc.get_layer("flatten").output.shape == (None, 784)
    assert kc.get_layer("dense_1").units == 64
    assert kc.get_layer("output").activation.__name__ == "softmax"
    assert isinstance(kc.optimizer, keras.optimizers.Adam)

    tc = torch_cnn(seed=0)
    modules = dict(tc.named_modules())
    assert tc.last_conv == "features.3"
    assert isinstance(modules["features.3"], nn.Conv2d)
    assert modules["features.3"].out_channels == 16
    assert isinstance(modules["classifier.0"], nn.Flatten)
    assert isinstance(modules["classifier.4"], nn.Softmax)
    assert not tc.training
    expected = (9 * 1 * 8 + 8) + (9 * 8 * 16 + 16) + (16 * 7 * 7 + 1) * 64 + 65 * 10
    assert kc.count_params() == n_params_torch(tc) == expected == 52138
    logit = torch_cnn(output="logit", seed=0)
    assert "classifier.4" not in dict(logit.named_modules())
    assert n_params_torch(logit) == expected


def test_torch_mlp_matches_keras_parameter_count() -> None:
    for d, n, hidden in [(30, 2, (128, 64)), (7, 5, (10,))]:
        tm = torch_mlp(d, n, hidden=hidden, l1=0.1, l2=0.2, seed=0)
        assert n_params_torch(tm) == keras_mlp(d, n, hidden=hidden, seed=0).count_params()
        assert (tm.l1, tm.l2) == (0.1, 0.2)
        assert not tm.training
    tm = torch_mlp(30, 2, seed=0)
    assert [type(m).__name__ for _, m in tm.named_children()] == [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
        "Softmax",
    ]
    assert [(m.in_features, m.out_features) for m in tm if isinstance(m, nn.Linear)] == [
        (30, 128),
        (128, 64),
        (64, 2),
    ]
    assert not isinstance(list(torch_mlp(30, 2, output="logit", seed=0))[-1], nn.Softmax)


# --------------------------------------------------------------------------- copy_weights


def test_copy_weights_mlp_both_directions() -> None:
    x = np.random.default_rng(0).normal(scale=3.0, size=(16, 12)).astype(np.float32)
    km, tm = keras_mlp(12, 4, seed=1), torch_mlp(12, 4, seed=2)
    assert np.abs(keras_predict(km, x) - torch_predict(tm, x)).max() > 1e-2  # really differ

    copy_weights(km, tm)
    out = keras_predict(km, x)
    assert np.ptp(out) > 0.1  # not a flat softmax that would hide a wrong copy
    np.testing.assert_allclose(torch_predict(tm, x), out, atol=1e-5)

    tm2 = torch_mlp(12, 4, seed=3)
    assert copy_weights(tm2, km) is km
    np.testing.assert_allclose(keras_predict(km, x), torch_predict(tm2, x), atol=1e-5)

    logit = copy_weights(km, torch_mlp(12, 4, output="logit", seed=0))
    probs = torch.softmax(torch.as_tensor(torch_predict(logit, x)), dim=1).numpy()
    np.testing.assert_allclose(probs, torch_predict(tm2, x), atol=1e-5)


def test_copy_weights_cnn_both_directions() -> None:
    shape = (3, 12, 16)  # non-square, several channels: catches a wrong flatten order
    x = np.random.default_rng(0).normal(scale=3.0, size=(6, *shape)).astype(np.float32)
    kc = keras_cnn(shape, 5, hidden=32, seed=1)
    tc = torch_cnn(shape, 5, hidden=32, seed=2)
    assert n_params_torch(tc) == kc.count_params()
    assert np.abs(keras_predict(kc, x) - torch_predict(tc, x)).max() > 1e-2

    copy_weights(kc, tc)
    out = keras_predict(kc, x)
    assert np.ptp(out) > 0.1
    np.testing.assert_allclose(torch_predict(tc, x), out, atol=1e-5)
    np.testing.assert_array_equal(
        kc.get_layer("last_conv").get_weights()[0].transpose(3, 2, 0, 1),
        tc.features[3].weight.detach().numpy(),
    )

    tc2 = torch_cnn(shape, 5, hidden=32, seed=3)
    copy_weights(tc2, kc)
    np.testing.assert_allclose(keras_predict(kc, x), torch_predict(tc2, x), atol=1e-5)


def test_copy_weights_rejects_mismatched_architectures() -> None:
    with pytest.raises(ModelError, match=r"'output'.*'4'"):
        copy_weights(keras_mlp(10, 2, seed=0), torch_mlp(10, 3, seed=0))
    with pytest.raises(ModelError, match="3 layers with weights"):
        copy_weights(keras_mlp(10, 2, seed=0), torch_mlp(10, 2, hidden=(8,), seed=0))
    with pytest.raises(ModelError, match="conv"):
        copy_weights(keras_cnn((1, 8, 8), 2, seed=0), torch_mlp(64, 2, hidden=(8, 8), seed=0))
    with pytest.raises(ModelError, match=r"keras\.Model or a torch\.nn\.Module"):
        copy_weights(keras_mlp(10, 2, seed=0), {"weights": []})
    bn = nn.Sequential(nn.Linear(10, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ModelError, match="BatchNorm1d"):
        copy_weights(bn, keras_mlp(10, 2, hidden=(4,), seed=0))


# --------------------------------------------------------------------------- seeding


def test_seeds_control_initial_weights_and_leave_global_rng_alone() -> None:
    before = global_rng_state()
    t0, t1, t2 = torch_mlp(8, 2, seed=0), torch_mlp(8, 2, seed=0), torch_mlp(8, 2, seed=1)
    c0, c1 = torch_cnn((1, 8, 8), 2, seed=4), torch_cnn((1, 8, 8), 2, seed=4)
    k0, k1, k2 = keras_mlp(8, 2, seed=0), keras_mlp(8, 2, seed=0), keras_mlp(8, 2, seed=1)
    assert_same_global_state(before, global_rng_state())

    for a, b in zip(torch_weights(t0), torch_weights(t1), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(torch_weights(c0), torch_weights(c1), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(k0.get_weights(), k1.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(torch_weights(t0)[0], torch_weights(t2)[0])
    assert not np.array_equal(k0.get_weights()[0], k2.get_weights()[0])
    # Glorot-uniform like Keras: |w| <= sqrt(6 / (fan_in + fan_out)), biases zero.
    w0, b0 = torch_weights(t0)[:2]
    assert np.abs(w0).max() <= np.sqrt(6 / (8 + 128)) + 1e-7
    assert np.abs(w0).max() > 0.9 * np.sqrt(6 / (8 + 128))
    assert not b0.any()


# --------------------------------------------------------------------------- fit


def test_fit_torch_learns_is_reproducible_and_keeps_global_rng(cancer) -> None:
    x, y = cancer
    before = global_rng_state()
    runs = []
    for _ in range(2):
        model = torch_mlp(30, 2, seed=0)
        hist = fit(model, x, y, epochs=8, seed=5, **QUIET)
        runs.append((model, hist))
    assert_same_global_state(before, global_rng_state())

    (m1, h1), (m2, h2) = runs
    assert h1["val_accuracy"][h1["best_epoch"]] >= 0.9
    assert set(h1) == {"loss", "val_loss", "accuracy", "val_accuracy", "epochs_run", "best_epoch"}
    assert len(h1["loss"]) == len(h1["val_accuracy"]) == h1["epochs_run"] <= 8
    assert h1["loss"][-1] < h1["loss"][0]
    assert h1 == h2
    for a, b in zip(torch_weights(m1), torch_weights(m2), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not m1.training
    assert all(p.grad is None for p in m1.parameters())  # no training gradients left behind

    # The final Softmax is looked through: the logit twin trains to the same weights.
    logit = torch_mlp(30, 2, output="logit", seed=0)
    h3 = fit(logit, x, y, epochs=8, seed=5, **QUIET)
    np.testing.assert_allclose(h3["val_loss"], h1["val_loss"], rtol=1e-5)
    for a, b in zip(torch_weights(logit), torch_weights(m1), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fit_keras_learns_is_reproducible_and_keeps_global_rng(cancer) -> None:
    x, y = cancer
    before = global_rng_state()
    runs = []
    for _ in range(2):
        model = keras_mlp(30, 2, seed=0)
        hist = fit(model, x, y, epochs=8, seed=5, **QUIET)
        runs.append((model, hist))
    assert_same_global_state(before, global_rng_state())

    (m1, h1), (m2, h2) = runs
    assert h1["val_accuracy"][h1["best_epoch"]] >= 0.9
    assert len(h1["loss"]) == len(h1["val_loss"]) == len(h1["accuracy"]) == h1["epochs_run"]
    assert h1["loss"][-1] < h1["loss"][0]
    np.testing.assert_allclose(h1["val_loss"], h2["val_loss"], atol=1e-6)
    for a, b in zip(m1.get_weights(), m2.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_early_stopping_stops_and_restores_best(noise, framework: str) -> None:
    x, y = noise
    build = torch_mlp if framework == "torch" else keras_mlp
    model = build(10, 2, seed=0)
    hist = fit(
        model,
        x,
        y,
        epochs=40,
        validation_split=0.3,
        patience=2,
        learning_rate=1e-2,
        seed=0,
        **QUIET,
    )
    run, best = hist["epochs_run"], hist["best_epoch"]
    assert run < 40
    assert run - 1 - best == 2  # stopped `patience` epochs after the best one
    assert hist["val_loss"][best] == min(hist["val_loss"])
    assert hist["val_loss"][-1] > hist["val_loss"][best]

    rows = val_rows(len(y), 0.3, 0)
    if framework == "torch":
        probs = torch_predict(model, x[rows])
    else:
        probs = keras_predict(model, x[rows])
    val_loss = float(-np.log(np.clip(probs[np.arange(len(rows)), y[rows]], 1e-12, None)).mean())
    assert val_loss == pytest.approx(hist["val_loss"][best], abs=1e-5)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_l2_shrinks_weights(cancer, framework: str) -> None:
    x, y = cancer
    norms = []
    for l2 in (0.0, 0.01):
        if framework == "torch":
            model = torch_mlp(30, 2, hidden=(32, 16), l2=l2, seed=0)
            fit(model, x, y, epochs=6, early_stopping=False, seed=0, **QUIET)
            kernels = [m.weight.detach().numpy() for m in model if isinstance(m, nn.Linear)]
        else:
            model = keras_mlp(30, 2, hidden=(32, 16), l2=l2, seed=0)
            fit(model, x, y, epochs=6, early_stopping=False, seed=0, **QUIET)
            kernels = [w for w in model.get_weights() if w.ndim == 2]
        norms.append(sum(float((k**2).sum()) for k in kernels))
    assert norms[1] < 0.9 * norms[0]


def test_fit_torch_cnn_with_penalty_and_progress(capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(int)
    plain = fit(torch_cnn((1, 8, 8), 2, seed=0), x, y, epochs=2, seed=0, **QUIET)
    model = torch_cnn((1, 8, 8), 2, l1=1e-3, seed=0)
    l1_sum = sum(
        float(m.weight.detach().abs().sum())
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    )
    hist = fit(model, x, y, epochs=2, seed=0, progress=True)
    assert hist["epochs_run"] == 2
    # The penalty is part of the reported loss: about l1·Σ|W| more than without it.
    assert hist["loss"][0] - plain["loss"][0] == pytest.approx(1e-3 * l1_sum, rel=0.05)
    err = capsys.readouterr().err
    assert "2/2" in err and "val_loss" in err


def test_fit_without_validation(cancer) -> None:
    x, y = cancer
    hist = fit(torch_mlp(30, 2, seed=0), x, y, epochs=3, validation_split=0.0, **QUIET)
    assert hist["val_loss"] == hist["val_accuracy"] == []
    assert hist["epochs_run"] == 3
    assert hist["best_epoch"] == int(np.argmin(hist["loss"]))


# --------------------------------------------------------------------------- errors


def test_fit_rejects_bad_inputs(cancer) -> None:
    x, y = cancer
    model = torch_mlp(30, 2, seed=0)
    bad_x = x.copy()
    bad_x[3, 4] = np.nan
    cases = [
        ((x, y[:-1]), {}, ShapeError, "300 rows but y has 299"),
        ((bad_x, y), {}, NonFiniteError, "NaN"),
        ((x[:0], y[:0]), {}, EmptyInputError, "0 row"),
        ((x, y + 0.5), {}, InputError, "integer class labels"),
        ((x, y.astype(str)), {}, NonNumericError, "LabelEncoder"),
        ((x, y * 2), {}, TargetError, "n_classes=3"),
        ((x, -y), {}, TargetError, "negative"),
        ((x, np.eye(2)[y]), {}, ShapeError, "argmax"),
        ((x[:, :5], y), {}, ShapeError, "cannot run"),
        ((x[:, 0], y), {}, ShapeError, "reshape"),
        ((x.astype(str), y), {}, NonNumericError, "dtype"),
        ((x, y), {"validation_split": 1.0}, InputError, "validation_split"),
        ((x, y), {"epochs": 0}, InputError, "epochs"),
        ((x, y), {"batch_size": 2.5}, InputError, "batch_size"),
        ((x, y), {"learning_rate": -1.0}, InputError, "learning_rate"),
        ((x, y), {"seed": -1}, InputError, "seed"),
    ]
    for args, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            fit(model, *args, **kwargs, **QUIET)
    # float labels that are whole numbers are fine
    fit(model, x[:40], y[:40].astype(float), epochs=1, **QUIET)

    with pytest.raises(ModelError, match=r"keras\.Model or a torch\.nn\.Module"):
        fit(lambda v: v, x, y, **QUIET)
    uncompiled = keras.Sequential([keras.Input((30,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="compile"):
        fit(uncompiled, x, y, **QUIET)
    with pytest.raises(ModelError, match="no trainable parameters"):
        fit(nn.Softmax(dim=1), x, y, **QUIET)
    with pytest.raises(ModelError, match="n_classes >= 2"):
        fit(nn.Linear(30, 1), x, y, **QUIET)


def test_builders_reject_bad_arguments() -> None:
    cases = [
        (lambda: keras_mlp(0, 2), InputError, "input_dim"),
        (lambda: torch_mlp(4, 1), InputError, "n_classes"),
        (lambda: keras_mlp(4, 2, hidden=(16, 0)), InputError, "hidden"),
        (lambda: torch_mlp(4, 2, hidden="wide"), InputError, "hidden"),
        (lambda: torch_mlp(4, 2, l2=-0.1), InputError, "l2"),
        (lambda: keras_mlp(4, 2, l1=float("nan")), InputError, "l1"),
        (lambda: torch_mlp(4, 2, output="probabilities"), UnknownNameError, "logit"),
        (lambda: keras_cnn((28, 28)), ShapeError, "channels"),
        (lambda: torch_cnn((1, 3, 3)), ShapeError, "too small"),
        (lambda: keras_cnn(channels=()), InputError, "at least one"),
        (lambda: torch_mlp(4, 2, seed=-3), InputError, "random_state"),
    ]
    for build, error, message in cases:
        with pytest.raises(error, match=message):
            build()
    assert issubclass(ModelError, LumosError)
