"""Tests of lumos.datasets: real loaders reproduce their sources; synthetic truth holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from lumos import datasets
from lumos.datasets import Dataset, breast_cancer, digits, synthetic_credit, synthetic_shapes
from lumos.errors import InputError, LumosError, ShapeError


def _match_rows(found: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index into ``reference`` of the nearest row to each row of ``found``."""
    d2 = (found**2).sum(1)[:, None] - 2.0 * found @ reference.T + (reference**2).sum(1)[None, :]
    return d2.argmin(axis=1)


def test_public_api() -> None:
    assert set(datasets.__all__) == {
        "Dataset",
        "breast_cancer",
        "digits",
        "synthetic_credit",
        "synthetic_shapes",
    }
    for loader in (breast_cancer, digits, synthetic_credit, synthetic_shapes):
        assert loader.__doc__ and "Returns" in loader.__doc__


# --------------------------------------------------------------------------------------
# breast_cancer
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer() -> Dataset:
    return breast_cancer()


def test_breast_cancer_shapes_and_names(cancer: Dataset) -> None:
    raw = load_breast_cancer()
    assert isinstance(cancer, Dataset)
    assert cancer.x_train.shape == (426, 30)
    assert cancer.x_test.shape == (143, 30)
    assert cancer.x_train.dtype == np.float64 and cancer.y_train.dtype == np.int64
    assert cancer.feature_names == list(raw.feature_names)
    assert cancer.class_names == ["malignant", "benign"]
    assert cancer.n_features == 30 and cancer.n_classes == 2
    assert cancer.oracle is None
    assert "load_breast_cancer" in cancer.description and "train split only" in cancer.description


def test_breast_cancer_is_stratified(cancer: Dataset) -> None:
    # sklearn: 212 malignant (0) and 357 benign (1).
    assert np.bincount(cancer.y_train).tolist() + np.bincount(cancer.y_test).tolist() == [
        159,
        267,
        53,
        90,
    ]
    for y, n in ((cancer.y_train, 426), (cancer.y_test, 143)):
        assert abs(np.bincount(y, minlength=2)[0] - n * 212 / 569) <= 1.0


def test_breast_cancer_standardised_on_train_only(cancer: Dataset) -> None:
    np.testing.assert_allclose(cancer.x_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(cancer.x_train.std(axis=0), 1.0, atol=1e-10)
    test_means = np.abs(cancer.x_test.mean(axis=0))
    assert test_means.max() > 0.05  # fitted on train, so the test split is off-centre
    assert np.all(test_means > 0.0)
    assert cancer.preprocessing["mean"].shape == (30,)
    assert cancer.preprocessing["scale"].shape == (30,)


def test_breast_cancer_inverse_transform_gives_sklearn_rows(cancer: Dataset) -> None:
    raw = load_breast_cancer()
    mean, scale = cancer.preprocessing["mean"], cancer.preprocessing["scale"]
    back = np.vstack([cancer.x_train, cancer.x_test]) * scale + mean
    y = np.concatenate([cancer.y_train, cancer.y_test])
    idx = _match_rows(back / raw.data.std(0), raw.data / raw.data.std(0))
    assert sorted(idx.tolist()) == list(range(569))  # every sklearn row, exactly once
    np.testing.assert_allclose(back, raw.data[idx], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y, raw.target[idx])


def test_breast_cancer_split_depends_on_random_state(cancer: Dataset) -> None:
    again = breast_cancer(random_state=0)
    np.testing.assert_array_equal(again.x_train, cancer.x_train)
    other = breast_cancer(random_state=1)
    assert not np.array_equal(other.y_train, cancer.y_train)
    smaller = breast_cancer(test_size=100)
    assert smaller.x_test.shape == (100, 30) and smaller.x_train.shape == (469, 30)


# --------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_data() -> Dataset:
    return digits()


def test_digits_shapes_and_range(digit_data: Dataset) -> None:
    assert digit_data.x_train.shape == (1347, 1, 28, 28)
    assert digit_data.x_test.shape == (450, 1, 28, 28)
    assert digit_data.x_train.dtype == np.float64 and digit_data.y_train.dtype == np.int64
    assert digit_data.feature_names is None
    assert digit_data.class_names == [str(d) for d in range(10)]
    everything = np.concatenate([digit_data.x_train, digit_data.x_test])
    assert everything.min() == 0.0 and everything.max() == 1.0
    # stratified: every digit in the test split within one row of its share
    counts = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(digit_data.y_test) - counts * 450 / 1797) <= 1.0)


def test_digits_flatten(digit_data: Dataset) -> None:
    flat = digits(flatten=True)
    assert flat.x_train.shape == (1347, 784) and flat.x_test.shape == (450, 784)
    assert flat.feature_names is not None and len(flat.feature_names) == 784
    assert flat.feature_names[3 * 28 + 4] == "px_3_4"
    np.testing.assert_array_equal(flat.x_train, digit_data.x_train.reshape(1347, 784))
    np.testing.assert_array_equal(flat.y_test, digit_data.y_test)


def test_digits_downsample_matches_sklearn(digit_data: Dataset) -> None:
    from skimage.transform import resize

    raw = load_digits()
    big = np.concatenate([digit_data.x_train, digit_data.x_test])[:, 0]
    y = np.concatenate([digit_data.y_train, digit_data.y_test])
    small = resize(big, (len(big), 8, 8), order=1, anti_aliasing=False) * 16.0
    original = raw.images.reshape(len(raw.images), 64)
    idx = _match_rows(small.reshape(len(small), 64), original)
    assert sorted(idx.tolist()) == list(range(1797))  # each sklearn image exactly once
    corr = np.corrcoef(small.ravel(), original[idx].ravel())[0, 1]
    assert corr > 0.95
    per_image = [np.corrcoef(a.ravel(), b)[0, 1] for a, b in zip(small, original[idx], strict=True)]
    assert np.min(per_image) > 0.9 and np.median(per_image) > 0.99
    np.testing.assert_array_equal(y, raw.target[idx])


def test_digits_size_8_is_the_original() -> None:
    raw = load_digits()
    d = digits(8, flatten=True, test_size=0.5)
    both = np.concatenate([d.x_train, d.x_test]) * 16.0
    idx = _match_rows(both, raw.data)
    np.testing.assert_array_equal(both, raw.data[idx])
    assert np.array_equal(np.concatenate([d.y_train, d.y_test]), raw.target[idx])
    big = digits(40)
    assert big.x_train.shape[1:] == (1, 40, 40)


# --------------------------------------------------------------------------------------
# synthetic_credit
# --------------------------------------------------------------------------------------

CREDIT_NAMES = [
    "age",
    "income",
    "savings",
    "debt_to_income",
    "application_hour",
    "credit_utilization",
    "n_dependents",
    "late_payments",
    "region_code",
    "credit_history_years",
]


@pytest.fixture(scope="module")
def credit() -> Dataset:
    return synthetic_credit()


def test_credit_layout(credit: Dataset) -> None:
    assert credit.x_train.shape == (1500, 10) and credit.x_test.shape == (500, 10)
    assert credit.feature_names == CREDIT_NAMES
    assert credit.class_names == ["repaid", "default"]
    gt = credit.ground_truth
    assert gt["relevant"] == [1, 3, 5, 7, 9]
    assert gt["irrelevant"] == [0, 2, 4, 6, 8]
    assert gt["noise"] == [0, 4, 6, 8]
    assert gt["correlated_pairs"] == [(1, 2)]
    assert gt["interactions"] == [(5, 7)]
    assert set(gt["coefficients"]) == {
        "intercept",
        "income",
        "debt_to_income",
        "credit_utilization",
        "late_payments",
        "credit_history_years",
        "credit_utilization*late_payments",
    }
    assert gt["logit_train"].shape == (1500,) and gt["logit_test"].shape == (500,)
    assert credit.preprocessing["mean"].shape == (10,)


def test_credit_is_deterministic_per_seed(credit: Dataset) -> None:
    again = synthetic_credit(seed=0)
    np.testing.assert_array_equal(again.x_train, credit.x_train)
    np.testing.assert_array_equal(again.y_test, credit.y_test)
    np.testing.assert_array_equal(
        again.ground_truth["logit_test"], credit.ground_truth["logit_test"]
    )
    other = synthetic_credit(seed=1)
    assert not np.allclose(other.x_train, credit.x_train)
    assert not np.array_equal(other.y_train, credit.y_train)


def test_credit_class_balance_and_standardisation(credit: Dataset) -> None:
    y = np.concatenate([credit.y_train, credit.y_test])
    assert 0.3 <= y.mean() <= 0.6
    assert abs(credit.y_train.mean() - credit.y_test.mean()) < 0.01  # stratified
    np.testing.assert_allclose(credit.x_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(credit.x_train.std(axis=0), 1.0, atol=1e-10)


def test_credit_correlated_pair(credit: Dataset) -> None:
    ((a, b),) = credit.ground_truth["correlated_pairs"]
    x = np.vstack([credit.x_train, credit.x_test])
    corr = np.corrcoef(x[:, a], x[:, b])[0, 1]
    assert 0.7 <= corr <= 0.9
    assert credit.feature_names[a] == "income" and credit.feature_names[b] == "savings"
    assert b not in credit.ground_truth["relevant"]


def test_credit_oracle_is_the_labelling_function(credit: Dataset) -> None:
    gt = credit.ground_truth
    proba = credit.oracle(credit.x_test)
    assert proba.shape == (500, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-gt["logit_test"])), rtol=1e-10)
    accuracy = np.mean(proba.argmax(axis=1) == credit.y_test)
    assert accuracy >= 0.8
    bayes = np.mean(np.maximum(proba[:, 1], proba[:, 0]))
    assert 0.83 <= bayes <= 0.9
    with pytest.raises(ShapeError):
        credit.oracle(np.zeros((3, 9)))


def test_credit_oracle_on_raw_and_standardised_agree() -> None:
    std = synthetic_credit(500, seed=7)
    raw = synthetic_credit(500, seed=7, standardize=False)
    assert raw.preprocessing == {}
    np.testing.assert_array_equal(std.y_train, raw.y_train)
    back = std.x_test * std.preprocessing["scale"] + std.preprocessing["mean"]
    np.testing.assert_allclose(back, raw.x_test, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.oracle(std.x_test), raw.oracle(raw.x_test), rtol=1e-10)
    # raw units look like raw units: counts are integers, ratios lie in (0, 1)
    x = raw.x_train
    names = raw.feature_names
    late = x[:, names.index("late_payments")]
    assert np.all(late == np.round(late)) and late.min() == 0.0 and late.max() >= 3.0
    util = x[:, names.index("credit_utilization")]
    assert util.min() > 0.0 and util.max() < 1.0
    assert 20.0 < np.median(x[:, names.index("income")]) < 100.0


def test_credit_logistic_refit_recovers_coefficients() -> None:
    data = synthetic_credit(20000, seed=3, standardize=False)
    gt = data.ground_truth
    names = data.feature_names
    x = np.vstack([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    ((i, j),) = gt["interactions"]
    design = np.column_stack([x[:, gt["relevant"]], x[:, i] * x[:, j]])
    terms = [names[k] for k in gt["relevant"]] + [f"{names[i]}*{names[j]}"]
    scale = design.std(axis=0)
    model = LogisticRegression(C=1e6, max_iter=2000).fit(design / scale, y)
    fitted = model.coef_[0] / scale
    true = np.array([gt["coefficients"][t] for t in terms])
    np.testing.assert_array_equal(np.sign(fitted), np.sign(true))
    np.testing.assert_allclose(fitted, true, rtol=0.3)
    assert abs(model.intercept_[0] - gt["coefficients"]["intercept"]) < 0.6


def test_credit_noise_features_carry_no_signal(credit: Dataset) -> None:
    noise = credit.ground_truth["noise"]
    model = LogisticRegression().fit(credit.x_train[:, noise], credit.y_train)
    auc = roc_auc_score(credit.y_test, model.predict_proba(credit.x_test[:, noise])[:, 1])
    assert auc < 0.6
    relevant = credit.ground_truth["relevant"]
    model = LogisticRegression().fit(credit.x_train[:, relevant], credit.y_train)
    auc_relevant = roc_auc_score(
        credit.y_test, model.predict_proba(credit.x_test[:, relevant])[:, 1]
    )
    assert auc_relevant > 0.85


def test_credit_smallest_n() -> None:
    data = synthetic_credit(10, seed=5)
    assert len(data.y_train) + len(data.y_test) == 10
    assert len(data.y_test) == 3


# --------------------------------------------------------------------------------------
# synthetic_shapes
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes() -> Dataset:
    return synthetic_shapes()


def _all_shapes(d: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([d.x_train, d.x_test])[:, 0]
    y = np.concatenate([d.y_train, d.y_test])
    masks = np.concatenate([d.ground_truth["masks_train"], d.ground_truth["masks_test"]])
    boxes = np.concatenate([d.ground_truth["boxes_train"], d.ground_truth["boxes_test"]])
    return x, y, masks, boxes


def test_shapes_layout_and_balance(shapes: Dataset) -> None:
    assert shapes.x_train.shape == (450, 1, 32, 32) and shapes.x_test.shape == (150, 1, 32, 32)
    assert shapes.x_train.dtype == np.float64
    assert shapes.class_names == ["square", "disk", "cross"]
    assert shapes.oracle is None and shapes.feature_names is None
    assert np.bincount(shapes.y_train).tolist() == [150, 150, 150]
    assert np.bincount(shapes.y_test).tolist() == [50, 50, 50]
    gt = shapes.ground_truth
    assert gt["masks_train"].shape == (450, 32, 32) and gt["masks_train"].dtype == bool
    assert gt["masks_test"].shape == (150, 32, 32)
    assert gt["boxes_train"].shape == (450, 4) and gt["boxes_test"].shape == (150, 4)
    x = np.concatenate([shapes.x_train, shapes.x_test])
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_shapes_masks_are_the_shapes(shapes: Dataset) -> None:
    _, y, masks, boxes = _all_shapes(shapes)
    disk_fill = []
    for mask, box, label in zip(masks, boxes, y, strict=True):
        rows, cols = np.nonzero(mask)
        r0, c0, r1, c1 = box.tolist()
        assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == (r0, c0, r1, c1)
        side = r1 - r0
        assert side == c1 - c0 and math.ceil(32 / 5) <= side <= 32 // 3
        crop = mask[r0:r1, c0:c1]
        fill = crop.sum() / side**2
        if label == 0:
            assert fill == 1.0
        elif label == 1:
            disk_fill.append(fill)
            assert abs(fill - math.pi / 4) < 0.1
            np.testing.assert_array_equal(crop, crop[::-1])  # symmetric
            np.testing.assert_array_equal(crop, crop.T)
        else:
            full_rows = np.flatnonzero(crop.all(axis=1))
            width = len(full_rows)
            assert abs(width - side / 3) <= 1.0
            assert np.array_equal(full_rows, np.flatnonzero(crop.all(axis=0)))  # centred bars
            assert full_rows.tolist() == list(range(full_rows[0], full_rows[0] + width))
            assert full_rows[0] == (side - width) // 2
            assert fill == (2 * width * side - width**2) / side**2
    assert abs(np.mean(disk_fill) - math.pi / 4) < 0.05


def test_shapes_inside_brighter_than_outside(shapes: Dataset) -> None:
    x, _, masks, _ = _all_shapes(shapes)
    inside, outside = x[masks].mean(), x[~masks].mean()
    assert inside - outside > 0.5
    assert 0.75 < inside < 0.95 and 0.18 < outside < 0.25


def test_shapes_outside_the_mask_nothing_tells_classes_apart(shapes: Dataset) -> None:
    x, y, masks, boxes = _all_shapes(shapes)
    outside = np.array([img[~m].mean() for img, m in zip(x, masks, strict=True)])
    bright_outside = np.array([(img[~m] > 0.6).sum() for img, m in zip(x, masks, strict=True)])
    beyond_box = np.ones_like(masks)
    for keep, (r0, c0, r1, c1) in zip(beyond_box, boxes, strict=True):
        keep[r0:r1, c0:c1] = False
    outside_box = np.array([img[k].mean() for img, k in zip(x, beyond_box, strict=True)])
    for stat in (outside, bright_outside, outside_box):
        groups = [stat[y == k] for k in range(3)]
        for a in range(3):
            for b in range(a + 1, 3):
                diff = abs(groups[a].mean() - groups[b].mean())
                se = math.sqrt(
                    groups[a].var(ddof=1) / len(groups[a]) + groups[b].var(ddof=1) / len(groups[b])
                )
                assert diff < 3 * se
    # the distractor really is there: bright pixels outside the shape in (nearly) every image
    assert np.mean(bright_outside >= 32 // 4 - 1) > 0.95


def test_shapes_without_noise_are_exact() -> None:
    d = synthetic_shapes(60, 24, seed=2, noise=0.0)
    x, y, masks, boxes = _all_shapes(d)
    for img, m, (r0, c0, r1, c1) in zip(x, masks, boxes, strict=True):
        level = img[m]
        assert np.all(level == level[0]) and 0.7 <= level[0] <= 1.0
        rest = np.unique(img[~m])
        assert rest[0] == 0.2 and set(rest.tolist()) <= {0.2, float(level[0])}
        # inside the box but off the shape: background only (the distractor keeps away)
        assert np.all(img[r0:r1, c0:c1][~m[r0:r1, c0:c1]] == 0.2)
    assert np.bincount(y).tolist() == [20, 20, 20]


def test_shapes_scale_with_size_and_are_seeded(shapes: Dataset) -> None:
    big = synthetic_shapes(90, 64, seed=1)
    boxes = np.concatenate([big.ground_truth["boxes_train"], big.ground_truth["boxes_test"]])
    sides = boxes[:, 2] - boxes[:, 0]
    assert sides.min() >= 13 and sides.max() <= 21 and sides.max() > sides.min()
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 64)
    again = synthetic_shapes()
    np.testing.assert_array_equal(again.x_train, shapes.x_train)
    np.testing.assert_array_equal(
        again.ground_truth["masks_test"], shapes.ground_truth["masks_test"]
    )
    other = synthetic_shapes(seed=1)
    assert not np.array_equal(other.ground_truth["masks_train"], shapes.ground_truth["masks_train"])


# --------------------------------------------------------------------------------------
# bad arguments
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "kwargs"),
    [
        (breast_cancer, {"test_size": 0.0}),
        (breast_cancer, {"test_size": 1.0}),
        (breast_cancer, {"test_size": 569}),
        (breast_cancer, {"test_size": "0.25"}),
        (breast_cancer, {"random_state": -1}),
        (breast_cancer, {"random_state": "zero"}),
        (digits, {"size": 7}),
        (digits, {"size": 28.0}),
        (digits, {"size": True}),
        (digits, {"flatten": "yes"}),
        (synthetic_credit, {"n": 9}),
        (synthetic_credit, {"n": 100.0}),
        (synthetic_credit, {"test_size": -0.1}),
        (synthetic_credit, {"seed": -3}),
        (synthetic_credit, {"standardize": "no"}),
        (synthetic_shapes, {"size": 15}),
        (synthetic_shapes, {"n": 5}),
        (synthetic_shapes, {"noise": -0.1}),
        (synthetic_shapes, {"noise": float("nan")}),
        (synthetic_shapes, {"test_size": 1.5}),
    ],
)
def test_bad_arguments_raise_input_error(loader, kwargs) -> None:
    with pytest.raises(InputError) as info:
        loader(**kwargs)
    assert isinstance(info.value, LumosError) and isinstance(info.value, ValueError)
    assert len(str(info.value)) > 20
