"""lumos.evaluate: the method × metric table, applicability, ranks, sharing between metrics."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lumos
from lumos.errors import InputError, UnknownNameError
from lumos.metrics import _base
from lumos.metrics._base import MetricResult, prepare, register_metric, shared

W = np.array([1.0, -2.0, 0.5])


def f(x: np.ndarray) -> np.ndarray:
    return x @ W


CALLS: list[str] = []


@pytest.fixture()
def toy_metrics() -> Iterator[None]:
    """Two toy metrics sharing one computation, one image-only metric, one that fails."""
    CALLS.clear()

    def abs_sum(p: Any) -> np.ndarray:
        CALLS.append("abs_sum")
        return np.abs(p.a).reshape(p.n, -1).sum(axis=1)

    @register_metric("_toy_total", category="complexity", higher_is_better=False)
    def toy_total(model: Any, explanation: Any, *, scale: float = 1.0) -> MetricResult:
        """Sum of |a| times scale."""
        p = prepare(model, explanation)
        s = shared(("toy", id(explanation)), lambda: abs_sum(p))
        return MetricResult(name="", scores=scale * s, higher_is_better=False, category="")

    @register_metric("_toy_half", category="complexity", higher_is_better=True)
    def toy_half(model: Any, explanation: Any, *, random_state: Any = None) -> MetricResult:
        """Half the sum of |a| (shares the sum with _toy_total)."""
        p = prepare(model, explanation)
        s = shared(("toy", id(explanation)), lambda: abs_sum(p))
        return MetricResult(name="", scores=s / 2, higher_is_better=True, category="")

    @register_metric("_toy_image", category="localisation", higher_is_better=True,
                     requires=("image",))  # fmt: skip
    def toy_image(model: Any, explanation: Any) -> MetricResult:
        """Images only."""
        return MetricResult(name="", scores=np.ones(len(explanation)), higher_is_better=True,
                            category="")  # fmt: skip

    @register_metric("_toy_fails", category="axiomatic", higher_is_better=True)
    def toy_fails(model: Any, explanation: Any) -> MetricResult:
        """Always raises a lumos error."""
        raise InputError("this toy metric always fails")

    names = ["_toy_total", "_toy_half", "_toy_image", "_toy_fails"]
    try:
        yield
    finally:
        for n in names:
            _base._REGISTRY.pop(n, None)


@pytest.fixture()
def explanations() -> dict[str, lumos.Explanation]:
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    exact = lumos.explain(f, x, method="feature_ablation")  # = w ⊙ x
    noisy = lumos.Explanation(values=exact.values * 3.0, data=x, method="custom")
    return {"ablation": exact, "tripled": noisy}


def test_table_means_and_ranks_respect_direction(toy_metrics: None, explanations: dict) -> None:
    table = lumos.evaluate(f, explanations, metrics=["_toy_total", "_toy_half"])
    a = explanations["ablation"].values
    total = np.abs(a).sum(axis=1)
    assert table["ablation", "_toy_total"].scores == pytest.approx(total)
    assert table["tripled", "_toy_total"].mean == pytest.approx(3 * total.mean())
    assert table["ablation", "_toy_total"].stderr == pytest.approx(total.std(ddof=1) / np.sqrt(2))
    ranks = table.ranks()
    # lower is better for _toy_total: the smaller attribution wins; higher for _toy_half
    assert ranks["_toy_total"] == {"ablation": 1.0, "tripled": 2.0}
    assert ranks["_toy_half"] == {"ablation": 2.0, "tripled": 1.0}
    assert table.methods == ["ablation", "tripled"]
    assert table.metrics == ["_toy_total", "_toy_half"]


def test_metrics_share_work_inside_one_evaluation(toy_metrics: None, explanations: dict) -> None:
    lumos.evaluate(f, explanations, metrics=["_toy_total", "_toy_half"])
    assert CALLS == ["abs_sum", "abs_sum"]  # once per explanation, not once per metric
    CALLS.clear()
    e = explanations["ablation"]
    lumos.metrics.get_metric("_toy_total").func(f, e)
    lumos.metrics.get_metric("_toy_half").func(f, e)
    assert CALLS == ["abs_sum", "abs_sum"]  # outside evaluate nothing is kept


def test_parameters_seed_and_skips(toy_metrics: None, explanations: dict) -> None:
    table = lumos.evaluate(
        f,
        explanations,
        metrics={"_toy_total": {"scale": 10.0}, "_toy_half": {}, "_toy_image": {}},
        random_state=7,
    )
    assert table["ablation", "_toy_total"].params["scale"] == 10.0
    assert table["ablation", "_toy_half"].params["random_state"] == 7
    assert "_toy_total" in table.metrics
    # explicitly requested but not applicable: reported, with the reason
    assert table.skipped[("ablation", "_toy_image")].startswith("needs images")
    # "all": inapplicable metrics are left out silently
    auto = lumos.evaluate(f, explanations, metrics="all", errors="skip")
    assert "_toy_image" not in auto.metrics
    assert auto.skipped[("ablation", "_toy_fails")] == "InputError: this toy metric always fails"
    with pytest.raises(InputError, match="always fails"):
        lumos.evaluate(f, explanations, metrics=["_toy_fails"])
    with pytest.raises(InputError, match="always fails"):  # one name is explicit too
        lumos.evaluate(f, explanations, metrics="_toy_fails")
    # "all" skips a failing metric by default, and reports why
    default = lumos.evaluate(f, explanations, metrics={"_toy_total": {}}, errors="skip")
    assert default.metrics == ["_toy_total"]
    everything = lumos.evaluate(f, explanations)
    assert "always fails" in everything.skipped[("tripled", "_toy_fails")]
    assert everything["tripled", "_toy_total"].mean == pytest.approx(
        auto["tripled", "_toy_total"].mean
    )


def test_exports(toy_metrics: None, explanations: dict) -> None:
    table = lumos.evaluate(f, explanations, metrics=["_toy_total", "_toy_half"])
    records = json.loads(table.to_json())
    assert len(records) == 4
    first = records[0]
    assert first["method"] == "ablation" and first["metric"] == "_toy_total"
    assert first["mean"] == pytest.approx(table["ablation", "_toy_total"].mean)
    assert first["rank"] == 1.0 and first["higher_is_better"] is False
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [r["method"] for r in rows] == ["ablation", "tripled"] * 2
    frame = table.to_frame()
    assert frame.shape[0] == 4
    text = str(table)
    assert "_toy_total ↓" in text and "(#1)" in text


def test_one_explanation_is_named_by_its_method(toy_metrics: None, explanations: dict) -> None:
    table = lumos.evaluate(f, explanations["ablation"], metrics=["_toy_total"])
    assert table.methods == ["feature_ablation"]


def test_bad_input(toy_metrics: None, explanations: dict) -> None:
    with pytest.raises(UnknownNameError, match="metric"):
        lumos.evaluate(f, explanations, metrics=["no_such_metric"])
    with pytest.raises(InputError, match="non-empty"):
        lumos.evaluate(f, {}, metrics=["_toy_total"])
    with pytest.raises(InputError, match="not a lumos Explanation"):
        lumos.evaluate(f, {"a": np.ones((2, 3))}, metrics=["_toy_total"])
    with pytest.raises(InputError, match="must be a dict"):
        lumos.evaluate(f, explanations, metrics={"_toy_total": 3})
    with pytest.raises(InputError, match="errors"):
        lumos.evaluate(f, explanations, metrics=["_toy_total"], errors="ignore")
    with pytest.raises(InputError, match="match no explanation"):
        lumos.evaluate(f, explanations, metrics=["_toy_total"], explainers={"zzz": "saliency"})
    with pytest.raises(InputError, match="parameters are"):
        lumos.metrics.get_metric("_toy_total").func(f, explanations["ablation"], scael=2)


def test_explanations_made_elsewhere_are_scored_like_lumos_ones() -> None:
    """captum's integrated gradients, wrapped from plain arrays (with captum as the explainer
    re-run by max-sensitivity), score what lumos' own IG scores: the two attributions agree
    to ~1e-7, so every metric agrees to 1e-4."""
    import torch
    from captum.attr import IntegratedGradients

    from lumos import zoo

    net = zoo.torch_cnn((1, 8, 8), 3, seed=0).double()
    x = np.random.default_rng(0).random((4, 1, 8, 8))
    t = np.array([0, 1, 2, 1])
    ig = IntegratedGradients(net)

    def captum_ig(inputs: np.ndarray, target: np.ndarray) -> np.ndarray:
        attr = ig.attribute(torch.as_tensor(inputs), target=torch.as_tensor(target), n_steps=20)
        return attr.detach().numpy()

    theirs = lumos.Explanation(values=captum_ig(x, t), data=x, target=t, method="captum_ig")
    ours = lumos.explain(net, x, method="integrated_gradients", target=t, n_steps=20)
    np.testing.assert_allclose(theirs.values, ours.values, atol=1e-7)
    names = ["deletion", "faithfulness_correlation", "sparseness", "max_sensitivity"]
    params = {"max_sensitivity": {"n_samples": 4}}
    table = lumos.evaluate(
        net,
        {"captum": theirs, "lumos": ours},
        {n: params.get(n, {}) for n in names},
        explainers={"captum": captum_ig},
    )
    assert not table.skipped
    for name in names:
        np.testing.assert_allclose(
            table["captum", name].scores, table["lumos", name].scores, atol=1e-4, err_msg=name
        )
    # without an explainer to re-run, the custom explanation cannot be re-explained: the
    # table says so, and the metric called directly says how to fix it
    alone = lumos.evaluate(net, {"captum": theirs}, ["max_sensitivity"])
    assert alone.skipped[("captum", "max_sensitivity")] == "needs an explainer it can re-run"
    with pytest.raises(InputError, match="pass explainer="):
        lumos.metrics.max_sensitivity(net, theirs)


def test_an_explanation_made_in_this_session_is_re_run_with_its_own_explainer(tmp_path) -> None:
    """Expected gradients records its background only by shape; the metrics re-run the very
    explainer that made it (kept in memory), on the randomised copy for the randomisation
    test; after save / load they ask for the explainer instead."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    rng = np.random.default_rng(1)
    x, background = rng.normal(size=(3, 12)), rng.normal(size=(8, 12))
    kw = {"background": background, "n_samples": 16, "random_state": 0}
    e = lumos.explain(net, x, method="expected_gradients", target=[0, 1, 2], **kw)
    sens = lumos.metrics.max_sensitivity(net, e, n_samples=4, radius=0.1, random_state=3)
    explainer = lumos.attribution.get_explainer("expected_gradients")(net, **kw)
    same = lumos.metrics.max_sensitivity(
        net, e, explainer=explainer, n_samples=4, radius=0.1, random_state=3
    )
    np.testing.assert_allclose(sens.scores, same.scores, rtol=1e-12)
    # the randomisation test explains the randomised copy, not the original network
    rand = lumos.metrics.model_randomisation(net, e, random_state=0)
    assert (
        np.abs(rand.extras["randomised_values"] - e.values).reshape(3, -1).max(axis=1).min() > 1e-3
    )
    assert rand.mean < 0.9
    path = e.save(tmp_path / "eg.npz")
    loaded = lumos.Explanation.load(path)
    with pytest.raises(InputError, match="only by type and shape"):
        lumos.metrics.max_sensitivity(net, loaded, n_samples=4)
    # in a table the loaded one is skipped with that reason; the metrics that need no re-run
    # still score it (the same numbers as the in-memory original)
    table = lumos.evaluate(
        net, {"loaded": loaded, "fresh": e}, {"max_sensitivity": {"n_samples": 4}, "sparseness": {}}
    )
    assert "only by type and shape" in table.skipped[("loaded", "max_sensitivity")]
    assert ("fresh", "max_sensitivity") in table.results
    np.testing.assert_array_equal(
        table["loaded", "sparseness"].scores, table["fresh", "sparseness"].scores
    )
