"""lumos.plots: every function returns a Figure whose artists carry the numbers of the result
object it was given (bars, lines, images, error bars, bands), nothing leaks into pyplot,
and bad input raises a typed lumos error. The result objects come from real lumos calls on
tiny data."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

import lumos
from lumos import Explanation, GlobalExplanation, plots
from lumos.errors import InputError, ShapeError
from lumos.metrics import MetricResult

Z95 = 1.959963984540054
W = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -0.25])
LONG = "a feature name far too long to fit on any axis of any figure"
NAMES = ["age", "income", LONG, "cost in $", "score", "tenure"]
D = len(W)


def sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-t))


def classifier(a: np.ndarray) -> np.ndarray:
    p = sigmoid(a @ W)
    return np.column_stack([1.0 - p, p])


# the image model: the sum of a bright square minus a dark one, on (n, 1, 8, 8) images
MASK = np.zeros((1, 8, 8))
MASK[0, 1:4, 1:4] = 1.0
MASK[0, 5:8, 5:8] = -1.0


def image_model(a: np.ndarray) -> np.ndarray:
    return (a * MASK).reshape(len(a), -1).sum(axis=1)


@pytest.fixture(scope="module")
def tab() -> dict[str, Any]:
    """Tabular results: Shapley values with and without standard errors, a non-additive
    method, a tree surrogate, a PDP with ICE and an ALE."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, D))
    model = lumos.wrap(
        classifier, feature_names=NAMES, class_names=["bad", "good"], output_kind="probability"
    )
    return {
        "x": x,
        "model": model,
        "exact": lumos.explain(model, x[:12], method="exact_shapley", background=x[:16]),
        "sampled": lumos.explain(
            model,
            x[:12],
            method="sampling_shapley",
            background=x[:16],
            n_samples=32,
            random_state=0,
        ),
        "ablation": lumos.explain(model, x[:12], method="feature_ablation"),
        "tree": lumos.surrogate.fit(
            model, x, kind="tree", max_depth=3, n_bootstrap=3, random_state=0
        ),
        "pdp": lumos.importance.partial_dependence(model, x[:30], [0, 1, 4], grid=6, ice=True),
        "ale": lumos.importance.partial_dependence(model, x, ["age", "score"], kind="ale", grid=5),
    }


@pytest.fixture(scope="module")
def img() -> dict[str, Any]:
    """Image results on 8×8 one-channel images: occlusion, LIME (superpixels) and deletion /
    insertion curves."""
    rng = np.random.default_rng(1)
    x = rng.random((5, 1, 8, 8))
    model = lumos.wrap(image_model)
    occ = lumos.explain(model, x, method="occlusion", window=2)
    lime = lumos.explain(model, x, method="lime", n_samples=60, random_state=0)
    return {"x": x, "model": model, "occlusion": occ, "lime": lime}


@pytest.fixture(autouse=True)
def no_pyplot_figures() -> Iterator[None]:
    """Plots never register figures with pyplot: none is left open by a test."""
    before = set(plt.get_fignums())
    yield
    leaked = set(plt.get_fignums()) - before
    plt.close("all")
    assert not leaked, f"figures left open in pyplot: {leaked}"


def render(fig: Any) -> Figure:
    """The figure, after checking it is a Figure that renders to PNG headless."""
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    return fig


def bar_ends(ax: Any) -> np.ndarray:
    return np.array([p.get_x() + p.get_width() for p in ax.patches])


def errorbar_halfwidths(ax: Any) -> np.ndarray | None:
    """Half-widths of the horizontal error bars of an axes (None without error bars)."""
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    if not containers:
        return None
    (segments,) = [lc.get_segments() for lc in containers[0].lines[2]]
    return np.array([(s[1, 0] - s[0, 0]) / 2 for s in segments])


# ---------------------------------------------------------------------- local
def test_bar_draws_the_largest_values_ranked_with_95_percent_error_bars(tab: dict) -> None:
    e = tab["sampled"]
    ax = render(plots.bar(e, row=3, max_features=4)).axes[0]
    v, se = e.values[3], e.stderr[3]
    top = np.argsort(-np.abs(v), kind="stable")[:4]
    assert len(ax.patches) == 4
    # bottom to top: increasing |value|, so the largest sits on top
    np.testing.assert_allclose(bar_ends(ax), v[top[::-1]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(errorbar_halfwidths(ax), Z95 * se[top[::-1]], rtol=1e-12)
    colors = [p.get_facecolor()[:3] for p in ax.patches]
    red, blue = matplotlib.colors.to_rgb("#d62728"), matplotlib.colors.to_rgb("#1f77b4")
    assert colors == [red if x >= 0 else blue for x in v[top[::-1]]]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1].startswith(e.feature_names[top[0]].replace("$", r"\$") + " = ")


def test_bar_has_error_bars_only_with_stderr_and_counts_every_feature(tab: dict) -> None:
    e = tab["exact"]
    assert e.stderr is None
    ax = render(plots.bar(e, row=-1, max_features=50)).axes[0]
    assert len(ax.patches) == D
    assert errorbar_halfwidths(ax) is None
    np.testing.assert_allclose(np.sort(bar_ends(ax)), np.sort(e.values[-1]), atol=1e-12)


def test_long_and_dollar_names_are_shortened_and_never_break_drawing(tab: dict) -> None:
    ax = render(plots.bar(tab["exact"], max_features=D)).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    long = [s for s in labels if s.startswith(LONG[:10])]
    assert len(long) == 1 and "…" in long[0] and len(long[0].split(" = ")[0]) == 32
    assert any(s.startswith(r"cost in \$ = ") for s in labels)


def test_waterfall_runs_from_the_base_value_to_the_prediction(tab: dict) -> None:
    e = tab["exact"]  # exact Shapley values: they add up to prediction - base value
    for row in range(len(e)):
        ax = render(plots.waterfall(e, row=row, max_features=3)).axes[0]
        bars = ax.patches
        assert len(bars) == 3 + 1  # three features and the folded others, no gap bar
        assert bars[0].get_x() == pytest.approx(e.base_value[row], abs=1e-12)
        for a, b in itertools.pairwise(bars):  # each starts where the last ended
            assert b.get_x() == pytest.approx(a.get_x() + a.get_width(), abs=1e-12)
        assert bar_ends(ax)[-1] == pytest.approx(e.prediction[row], abs=1e-9)
        v = e.values[row]
        top = np.argsort(-np.abs(v), kind="stable")[:3]
        others = np.delete(v, top).sum()
        widths = [p.get_width() for p in bars]
        np.testing.assert_allclose(widths[1:], v[top[::-1]], atol=1e-9)
        assert widths[0] == pytest.approx(others, abs=1e-12)
    plt.close("all")


def test_waterfall_shows_the_completeness_gap_of_a_non_additive_method(tab: dict) -> None:
    e = tab["ablation"]  # feature ablation: values do not sum to prediction - base
    row = 2
    gap = e.prediction[row] - e.base_value[row] - e.values[row].sum()
    assert abs(gap) > 1e-3  # the case is not trivial
    ax = render(plots.waterfall(e, row=row, max_features=D)).axes[0]
    assert len(ax.patches) == D + 1  # every feature and the gap, nothing folded
    assert ax.patches[0].get_width() == pytest.approx(gap, abs=1e-12)
    assert ax.get_yticklabels()[0].get_text().startswith("not attributed")
    assert bar_ends(ax)[-1] == pytest.approx(e.prediction[row], abs=1e-9)


def test_local_plots_reject_bad_input(tab: dict) -> None:
    e = tab["exact"]
    with pytest.raises(InputError, match="out of range"):
        plots.bar(e, row=len(e))
    with pytest.raises(InputError, match="int row index"):
        plots.waterfall(e, row=True)
    with pytest.raises(InputError, match="max_features"):
        plots.bar(e, max_features=0)
    with pytest.raises(InputError, match="importance"):
        plots.bar(tab["tree"])
    with pytest.raises(InputError, match=r"lumos\.explain"):
        plots.waterfall(np.ones((2, 3)))
    bare = Explanation(values=e.values, data=e.data)
    with pytest.raises(InputError, match="base_value"):
        plots.waterfall(bare)


# ---------------------------------------------------------------------- global
def test_importance_ranks_features_with_confidence_intervals(tab: dict) -> None:
    s = tab["tree"]
    assert s.stderr is not None
    ax = render(plots.importance(s, max_features=4)).axes[0]
    order = s.ranking[:4][::-1]
    assert len(ax.patches) == 4
    np.testing.assert_allclose(bar_ends(ax), s.importance[order], atol=1e-12)
    np.testing.assert_allclose(errorbar_halfwidths(ax), Z95 * s.stderr[order], rtol=1e-12)
    assert f"{s.fidelity:.4g}" in ax.get_title()
    no_se = GlobalExplanation(importance=np.array([0.2, -0.5, 0.1]))
    ax = render(plots.importance(no_se)).axes[0]
    assert len(ax.patches) == 3 and errorbar_halfwidths(ax) is None
    with pytest.raises(InputError, match="aggregate"):
        plots.importance(tab["exact"])


def test_beeswarm_one_swarm_per_feature_at_the_attributions(tab: dict) -> None:
    e = tab["sampled"]
    fig = render(plots.beeswarm(e, max_features=4))
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the swarm and its colour bar
    swarms = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(swarms) == 4
    order = np.argsort(-np.abs(e.values).mean(axis=0), kind="stable")[:4][::-1]
    for y, (swarm, j) in enumerate(zip(swarms, order, strict=True)):
        xy = swarm.get_offsets()
        np.testing.assert_allclose(xy[:, 0], e.values[:, j], atol=1e-12)
        assert np.all(np.abs(xy[:, 1] - y) <= 0.4 + 1e-12)
        # colour = the feature's rank among the rows: the highest value gets 1
        shade = np.asarray(swarm.get_array())
        assert shade[np.argmax(e.data[:, j])] == 1.0 and shade[np.argmin(e.data[:, j])] == 0.0


def test_agreement_heatmap_is_the_symmetric_matrix_of_the_pairs_table(tab: dict) -> None:
    s, pdp = tab["tree"], tab["exact"]
    shap = lumos.importance.aggregate(pdp)
    perm = GlobalExplanation(
        importance=np.array([3.0, 2.0, 0.5, 0.0, 4.0, 1.0]), feature_names=NAMES
    )
    table = lumos.importance.agreement({"tree": s, "shap": shap, "perm": perm}, k=3)
    for value in ("spearman", "top_k_overlap"):
        ax = render(plots.agreement_heatmap(table, value=value)).axes[0]
        (image,) = ax.images
        m = np.asarray(image.get_array())
        assert m.shape == (3, 3)
        np.testing.assert_array_equal(np.diag(m), 1.0)
        np.testing.assert_array_equal(m, m.T)
        idx = {"tree": 0, "shap": 1, "perm": 2}
        for a, b, v in zip(table.method_a, table.method_b, table[value], strict=True):
            assert m[idx[a], idx[b]] == v
        assert len(ax.texts) == 9
        assert image.norm.vmin == (-1.0 if value == "spearman" else 0.0)
    ax = render(plots.agreement_heatmap(np.eye(2), labels=["a", "b"])).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    with pytest.raises(ShapeError, match="square"):
        plots.agreement_heatmap(np.ones((2, 3)))
    with pytest.raises(InputError, match="value must be"):
        plots.agreement_heatmap(table, value="kendall")
    with pytest.raises(InputError, match="labels"):
        plots.agreement_heatmap(np.eye(2), labels=["only one"])


def test_surrogate_tree_draws_one_box_per_node(tab: dict) -> None:
    s = tab["tree"]
    ax = render(plots.surrogate_tree(s)).axes[0]
    boxes = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(boxes) == s.estimator.tree_.node_count
    assert any("good" in b.get_text() for b in boxes)  # class names from the surrogate
    shallow = render(plots.surrogate_tree(s, max_depth=1)).axes[0]
    assert 3 <= sum(t.get_bbox_patch() is not None for t in shallow.texts) < len(boxes)


def test_surrogate_tree_refuses_what_is_not_a_fitted_tree(tab: dict, tmp_path: Any) -> None:
    x, model = tab["x"], tab["model"]
    forest = lumos.surrogate.fit(
        model, x, kind="forest", n_estimators=3, max_depth=2, n_bootstrap=0, random_state=0
    )
    with pytest.raises(InputError, match="forest"):
        plots.surrogate_tree(forest)
    linear = lumos.surrogate.fit(model, x, kind="linear", n_bootstrap=0, random_state=0)
    with pytest.raises(InputError, match="not a decision tree"):
        plots.surrogate_tree(linear)
    loaded = GlobalExplanation.load(tab["tree"].save(tmp_path / "tree"))
    with pytest.raises(InputError, match="fit the surrogate again"):
        plots.surrogate_tree(loaded)
    # the linear surrogate still has its fidelity curve: one point per sparsity level
    ax = render(plots.fidelity_curve(linear)).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), linear.curve, atol=0)


def test_fidelity_curve_draws_held_out_and_training_curves(tab: dict) -> None:
    s = tab["tree"]
    ax = render(plots.fidelity_curve(s)).axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_xydata(), s.curve, atol=0)
    np.testing.assert_allclose(ax.lines[1].get_xydata(), s.extras["curve_train"], atol=0)
    (star,) = ax.collections
    np.testing.assert_allclose(star.get_offsets(), [[s.info["complexity"], s.fidelity]])
    assert ax.get_xlabel() == "tree depth"
    with pytest.raises(InputError, match="surrogate"):
        plots.fidelity_curve(tab["pdp"])


def test_dependence_draws_curve_band_and_ice(tab: dict) -> None:
    p = tab["pdp"]
    n = len(tab["x"][:30])
    fig = render(plots.dependence(p, max_ice=10))
    assert len(fig.axes) == 3
    for b, ax in enumerate(fig.axes):
        g, v, se = (p.extras[k][b, : p.info["n_grid"][b]] for k in ("grid", "values", "stderr"))
        assert len(ax.lines) == 1
        np.testing.assert_allclose(ax.lines[0].get_xydata(), np.column_stack([g, v]), atol=0)
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx((v - Z95 * se).min(), abs=1e-12)
        assert ys.max() == pytest.approx((v + Z95 * se).max(), abs=1e-12)
        (ice,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        segments = ice.get_segments()
        assert len(segments) == 10  # max_ice of the n rows, evenly spaced
        np.testing.assert_allclose(segments[0][:, 1], p.extras["ice"][0, b, : len(g)])
        np.testing.assert_allclose(segments[-1][:, 1], p.extras["ice"][n - 1, b, : len(g)])
        assert ax.get_xlabel() == ["age", "income", "score"][b]
    no_ice = render(plots.dependence(p, features=["income"], ice=False))
    assert len(no_ice.axes) == 1
    assert not [c for c in no_ice.axes[0].collections if isinstance(c, LineCollection)]


def test_dependence_of_ale_and_bad_requests(tab: dict) -> None:
    a = tab["ale"]
    fig = render(plots.dependence(a, features=1))
    (ax,) = fig.axes
    g, v = a.extras["grid"][1, : a.info["n_grid"][1]], a.extras["values"][1, : a.info["n_grid"][1]]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), np.column_stack([g, v]), atol=0)
    assert ax.get_xlabel() == "score" and "accumulated local effect" in ax.get_ylabel()
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    with pytest.raises(InputError, match="no curve"):
        plots.dependence(a, features="income")
    with pytest.raises(InputError, match="out of range"):
        plots.dependence(a, features=2)
    with pytest.raises(InputError, match="partial_dependence"):
        plots.dependence(tab["tree"])


# ---------------------------------------------------------------------- images
def test_image_attribution_overlays_a_symmetric_diverging_map(img: dict) -> None:
    e = img["occlusion"]
    fig = render(plots.image_attribution(e, row=2))
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the image and its colour bar
    picture, heat = ax.images
    np.testing.assert_allclose(heat.get_array(), e.values[2, 0], atol=0)
    top = np.abs(e.values[2]).max()
    assert e.values[2].min() < 0 < e.values[2].max()  # a signed map
    assert heat.norm.vmin == -heat.norm.vmax == -top
    assert heat.get_cmap().name == "RdBu_r"
    x = e.data[2, 0]
    np.testing.assert_allclose(picture.get_array(), (x - x.min()) / np.ptp(x), atol=1e-12)
    # magnitudes: a sequential map from 0
    heat = render(plots.image_attribution(e, row=2, reduce="abs")).axes[0].images[1]
    assert heat.norm.vmin == 0.0 and heat.norm.vmax == top
    # an image given in (H, W, C) or (C, H, W) layout is drawn instead of the input, in grey
    rgb = np.random.default_rng(0).random((8, 8, 3))
    grey = ((rgb - rgb.min()) / np.ptp(rgb)).mean(axis=-1)
    for given in (rgb, np.moveaxis(rgb, -1, 0)):
        picture = render(plots.image_attribution(e, image=given)).axes[0].images[0]
        np.testing.assert_allclose(picture.get_array(), grey, atol=1e-12)


def test_image_plots_reject_tables_and_bad_images(img: dict, tab: dict) -> None:
    with pytest.raises(ShapeError, match="images"):
        plots.image_attribution(tab["exact"])
    with pytest.raises(ShapeError, match="images"):
        plots.lime_segments(tab["exact"])
    with pytest.raises(ShapeError, match="images"):
        plots.compare_methods({"shap": tab["exact"]})
    with pytest.raises(ShapeError, match="8×8"):
        plots.image_attribution(img["occlusion"], image=np.zeros((7, 8)))
    with pytest.raises(InputError, match="out of range"):
        plots.image_attribution(img["occlusion"], row=5)
    with pytest.raises(InputError, match="reduce"):
        plots.image_attribution(img["occlusion"], reduce="max")


def test_lime_segments_outline_exactly_the_superpixel_edges(img: dict) -> None:
    e = img["lime"]
    row = 1
    seg = e.groups[row, 0] if e.groups.ndim == 4 else e.groups[0]
    assert len(np.unique(seg)) > 1
    # naive count of pixel edges between two different segments
    h, w = seg.shape
    edges = sum(seg[i, j] != seg[i, j + 1] for i in range(h) for j in range(w - 1))
    edges += sum(seg[i, j] != seg[i + 1, j] for i in range(h - 1) for j in range(w))
    fig = render(plots.lime_segments(e, row=row))
    left, right = fig.axes[:2]
    assert len(left.images) == 1 and len(right.images) == 2
    assert len(left.collections[0].get_segments()) == edges
    heat = right.images[1]
    np.testing.assert_allclose(heat.get_array(), e.values[row, 0], atol=0)
    assert heat.norm.vmin == -heat.norm.vmax
    with pytest.raises(InputError, match="segment map"):
        plots.lime_segments(img["occlusion"])


def test_compare_methods_grid_of_rows_by_methods(img: dict) -> None:
    occ, lime = img["occlusion"], img["lime"]
    rows = [0, 3, -1]
    fig = render(plots.compare_methods({"occlusion": occ, "lime": lime}, rows=rows))
    assert len(fig.axes) == len(rows) * 3
    assert all(len(ax.images) == 1 for ax in fig.axes)
    for i, r in enumerate(rows):
        cells = fig.axes[3 * i : 3 * i + 3]
        x = occ.data[r, 0]
        np.testing.assert_allclose(cells[0].images[0].get_array(), (x - x.min()) / np.ptp(x))
        np.testing.assert_allclose(cells[1].images[0].get_array(), occ.values[r, 0], atol=0)
        np.testing.assert_allclose(cells[2].images[0].get_array(), lime.values[r, 0], atol=0)
        for cell in cells[1:]:
            norm = cell.images[0].norm
            assert norm.vmin == -norm.vmax or norm.vmin == 0.0
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "occlusion", "lime"]
    assert len(render(plots.compare_methods({"occlusion": occ})).axes) == 4 * 2
    other = Explanation(values=occ.values, data=occ.data + 1.0)
    with pytest.raises(InputError, match="same input"):
        plots.compare_methods({"occlusion": occ, "other": other}, rows=[0])
    with pytest.raises(InputError, match="out of range"):
        plots.compare_methods({"occlusion": occ}, rows=[9])
    with pytest.raises(InputError, match="dict"):
        plots.compare_methods([occ])


# ---------------------------------------------------------------------- evaluation
def test_curves_mean_and_band_over_rows(img: dict) -> None:
    model, occ, lime = img["model"], img["occlusion"], img["lime"]
    results = {
        "occlusion": lumos.metrics.deletion(model, occ, n_steps=16),
        "lime": lumos.metrics.deletion(model, lime, n_steps=16),
    }
    ax = render(plots.curves(results)).axes[0]
    assert len(ax.lines) == 2
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    for line, band, r in zip(ax.lines, bands, results.values(), strict=True):
        mean = r.curve.mean(axis=0)
        half = Z95 * r.curve.std(axis=0, ddof=1) / np.sqrt(len(r.curve))
        np.testing.assert_allclose(line.get_xdata(), r.curve_x, atol=0)
        np.testing.assert_allclose(line.get_ydata(), mean, atol=1e-12)
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.max() == pytest.approx((mean + half).max(), abs=1e-12)
        assert ys.min() == pytest.approx((mean - half).min(), abs=1e-12)
    assert ax.get_xlabel() == "fraction of features removed"
    # a subset of rows; one row has no band
    r = results["occlusion"]
    ax = render(plots.curves(r, rows=[1, 3])).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), r.curve[[1, 3]].mean(axis=0))
    ax = render(plots.curves(r, rows=[2])).axes[0]
    assert len(ax.lines) == 1 and not ax.collections


def test_curves_of_one_shared_curve_and_bad_input(img: dict) -> None:
    layers = MetricResult(
        "model_randomisation",
        scores=[0.2, 0.3],
        higher_is_better=False,
        category="randomisation",
        curve=[0.9, 0.5, 0.1],
        curve_x=["fc3", "fc2", "fc1"],
    )
    ax = render(plots.curves(layers)).axes[0]
    assert len(ax.lines) == 1 and not ax.collections
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc3", "fc2", "fc1"]
    sparse = lumos.metrics.sparseness(img["model"], img["occlusion"])
    with pytest.raises(InputError, match="no curve"):
        plots.curves(sparse)
    deletion = lumos.metrics.deletion(img["model"], img["occlusion"], n_steps=4)
    with pytest.raises(InputError, match="out of range"):
        plots.curves(deletion, rows=[7])
    with pytest.raises(InputError, match="MetricResult"):
        plots.curves({"a": img["occlusion"]})
    bad = MetricResult(
        "deletion",
        scores=[0.1],
        higher_is_better=False,
        category="faithfulness",
        curve=[[1.0, 0.0]],
        curve_x=[0.0, 0.5, 1.0],
    )
    with pytest.raises(ShapeError, match="curve_x"):
        plots.curves(bad)


def test_metric_table_colours_by_rank_respecting_direction(img: dict) -> None:
    model, occ = img["model"], img["occlusion"]
    flat = Explanation(values=np.ones_like(occ.values), data=occ.data, target=occ.target)
    table = lumos.evaluate(
        model, {"occlusion": occ, "flat": flat}, metrics=["deletion", "sparseness"]
    )
    ax = render(plots.metric_table(table)).axes[0]
    (image,) = ax.images
    ranks = np.asarray(image.get_array())
    assert ranks.shape == (2, 2)
    for j, metric in enumerate(table.metrics):
        means = np.array([table.mean(m, metric) for m in table.methods])
        assert means[0] != means[1]
        best = np.argmin(means) if metric == "deletion" else np.argmax(means)  # ↓ vs ↑
        assert ranks[best, j] == 1.0 and ranks[1 - best, j] == 2.0
    assert len(ax.texts) == 4
    assert ax.texts[0].get_text().startswith(f"{table.mean('occlusion', 'deletion'):.3g}")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["deletion ↓", "sparseness ↑"]
    with pytest.raises(InputError, match=r"lumos\.evaluate"):
        plots.metric_table({"occlusion": 1.0})


def test_tradeoff_one_line_per_measure_with_labelled_points() -> None:
    points = [
        {"label": "L1=0", "accuracy": 0.97, "sparseness": 0.31, "fidelity": 0.84},
        {"label": "L1=0.01", "accuracy": 0.96, "sparseness": 0.45, "fidelity": 0.9},
        {"label": "L1=0.1", "accuracy": 0.91, "sparseness": 0.62, "fidelity": 0.97},
    ]
    ax = render(plots.tradeoff(points)).axes[0]
    assert len(ax.lines) == 2 and len(ax.texts) == 6
    for line, key in zip(ax.lines, ("sparseness", "fidelity"), strict=True):
        np.testing.assert_allclose(line.get_xdata(), [p[key] for p in points])
        np.testing.assert_allclose(line.get_ydata(), [p["accuracy"] for p in points])
    assert [t.get_text() for t in ax.texts[:3]] == ["L1=0", "L1=0.01", "L1=0.1"]
    ax = render(plots.tradeoff(points, measures=["fidelity"])).axes[0]
    assert len(ax.lines) == 1
    with pytest.raises(InputError, match="no 'fidelity'"):
        plots.tradeoff([*points, {"label": "x", "accuracy": 0.5, "sparseness": 0.1}])
    with pytest.raises(InputError, match="no points"):
        plots.tradeoff([])
    with pytest.raises(InputError, match="not a number"):
        plots.tradeoff([{"accuracy": "high", "fidelity": 0.9}], measures=["fidelity"])
    with pytest.raises(InputError, match="no interpretability measure"):
        plots.tradeoff([{"label": "a", "accuracy": 0.9}])


def test_tradeoff_takes_a_dataframe() -> None:
    import pandas as pd

    frame = pd.DataFrame({"label": ["a", "b"], "accuracy": [0.9, 0.8], "fidelity": [0.7, 0.95]})
    ax = render(plots.tradeoff(frame)).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), [[0.7, 0.9], [0.95, 0.8]])


def test_every_plot_is_a_fresh_figure_outside_pyplot(tab: dict) -> None:
    before = plt.get_fignums()
    a = plots.bar(tab["exact"])
    b = plots.bar(tab["exact"])
    assert a is not b and a.axes[0] is not b.axes[0]
    assert type(a.canvas).__name__ == "FigureCanvasAgg"  # its own canvas, not pyplot's
    assert plt.get_fignums() == before
