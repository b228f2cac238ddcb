"""lumos.metrics.performance against sklearn.metrics and hand-computed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import lumos
from lumos.errors import InputError, ShapeError, TargetError
from lumos.metrics import performance


def _logit_model(n_features: int, n_classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(n_features, n_classes).double()


@pytest.fixture(scope="module")
def three_class() -> tuple:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    net = _logit_model(4, 3)
    with torch.no_grad():
        logits = net(torch.as_tensor(x)).numpy()
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    # labels that agree with the model most of the time, so every score is informative
    y = np.where(rng.random(200) < 0.7, p.argmax(axis=1), rng.integers(0, 3, 200))
    return lumos.wrap(net, output_kind="logit"), x, y, p


def test_classification_scores_equal_sklearn(three_class: tuple) -> None:
    model, x, y, p = three_class
    pred = p.argmax(axis=1)
    assert performance.accuracy(model, x, y) == pytest.approx(
        skm.accuracy_score(y, pred), abs=1e-12
    )
    assert performance.balanced_accuracy(model, x, y) == pytest.approx(
        skm.balanced_accuracy_score(y, pred), abs=1e-12
    )
    for average in ("macro", "weighted"):
        assert performance.f1(model, x, y, average=average) == pytest.approx(
            skm.f1_score(y, pred, average=average), abs=1e-12
        )
    assert performance.roc_auc(model, x, y) == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert performance.log_loss(model, x, y) == pytest.approx(skm.log_loss(y, p), abs=1e-10)


def test_binary_scores_with_a_sigmoid_output_equal_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 3))
    net = _logit_model(3, 1, seed=2)
    with torch.no_grad():
        p1 = torch.sigmoid(net(torch.as_tensor(x)))[:, 0].numpy()
    y = (rng.random(150) < p1).astype(int)
    model = lumos.wrap(net, output_kind="logit")
    pred = (p1 > 0.5).astype(int)
    s = performance.summary(model, x, y)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1), abs=1e-12)
    assert s["log_loss"] == pytest.approx(skm.log_loss(y, np.column_stack([1 - p1, p1])), abs=1e-10)


def test_probability_outputs_are_used_as_they_are() -> None:
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    lookup = {tuple(r): q for r, q in zip(np.eye(4), p, strict=True)}

    def f(x: np.ndarray) -> np.ndarray:
        return np.array([lookup[tuple(r)] for r in x])

    model = lumos.wrap(f, output_kind="probability")
    y = np.array([0, 1, 1, 1])
    assert performance.accuracy(model, np.eye(4), y) == pytest.approx(0.75)
    # log loss by hand: −mean(log 0.9, log 0.8, log 0.4, log 0.7)
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.7]))
    assert performance.log_loss(model, np.eye(4), y) == pytest.approx(expected, abs=1e-12)


def test_expected_calibration_error_by_hand() -> None:
    # confidences 0.9, 0.9, 0.6, 0.6 (two bins of 10): bin (0.8, 0.9] holds rows 0, 1 (one
    # correct: |0.5 − 0.9| = 0.4), bin (0.5, 0.6] holds rows 2, 3 (both correct: |1 − 0.6|)
    p = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    lookup = {tuple(r): q for r, q in zip(np.eye(4), p, strict=True)}
    model = lumos.wrap(lambda x: np.array([lookup[tuple(r)] for r in x]), output_kind="probability")
    y = np.array([0, 0, 0, 1])
    ece = performance.expected_calibration_error(model, np.eye(4), y, n_bins=10)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4, abs=1e-12)
    # a perfectly calibrated case: confidence 1 and always right
    exact = lumos.wrap(lambda x: np.column_stack([x[:, 0], 1 - x[:, 0]]), output_kind="probability")
    xs = np.array([[1.0], [0.0], [1.0]])
    assert performance.expected_calibration_error(exact, xs, np.array([0, 1, 0])) == 0.0


def test_ece_equals_a_naive_reference(three_class: tuple) -> None:
    model, x, y, p = three_class
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    edges = np.linspace(0, 1, 16)
    ref = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ref += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
    assert performance.expected_calibration_error(model, x, y) == pytest.approx(ref, abs=1e-12)


def test_regression_scores_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 5))
    w = rng.normal(size=5)
    model = lumos.wrap(lambda a: a @ w, output_kind="regression")
    y = x @ w + rng.normal(scale=0.5, size=80)
    assert performance.r2(model, x, y) == pytest.approx(skm.r2_score(y, x @ w), abs=1e-12)
    assert performance.mae(model, x, y) == pytest.approx(
        skm.mean_absolute_error(y, x @ w), abs=1e-12
    )
    assert performance.summary(model, x, y) == pytest.approx(
        {"r2": skm.r2_score(y, x @ w), "mae": skm.mean_absolute_error(y, x @ w)}
    )


def test_summary_makes_one_model_pass(three_class: tuple) -> None:
    model, x, y, _ = three_class
    calls = []
    inner = model.module

    def counting(a: np.ndarray) -> np.ndarray:
        calls.append(len(a))
        with torch.no_grad():
            return inner(torch.as_tensor(a)).numpy()

    counted = lumos.wrap(counting, output_kind="logit", input_shape=(4,))
    s = performance.summary(counted, x, y)
    assert sum(calls) == len(x)
    assert set(s) == {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "roc_auc",
        "log_loss",
        "expected_calibration_error",
    }


def test_bad_input(three_class: tuple) -> None:
    model, x, y, _ = three_class
    with pytest.raises(ShapeError, match="one label per row"):
        performance.accuracy(model, x, y[:-1])
    with pytest.raises(TargetError, match="labels must lie"):
        performance.accuracy(model, x, np.full(len(x), 3))
    with pytest.raises(InputError, match="encode"):
        performance.accuracy(model, x, np.array(["a"] * len(x)))
    with pytest.raises(InputError, match="average"):
        performance.f1(model, x, y, average="micro")
    with pytest.raises(InputError, match="binary"):
        performance.f1(model, x, y, average="binary")
    with pytest.raises(InputError, match="n_bins"):
        performance.expected_calibration_error(model, x, y, n_bins=0)
    regressor = lumos.wrap(lambda a: a.sum(axis=1), output_kind="regression")
    with pytest.raises(InputError, match="needs a classifier"):
        performance.accuracy(regressor, x, y)
    with pytest.raises(InputError, match="NaN"):
        performance.r2(regressor, x, np.full(len(x), np.nan))
