"""lumos.report: the sections, escaping, row choice, and the page in a real browser."""

from __future__ import annotations

import base64
import os
import re

import numpy as np
import pytest

import lumos
from lumos import datasets, zoo
from lumos.errors import InputError
from lumos.report import choose_rows, render_report
from lumos.report._verdict import decide

EVIL = "<script>alert(1)</script>"
SECTIONS = ("summary", "data-model", "global", "surrogate", "local", "quality", "caveats")


@pytest.fixture(scope="module")
def credit() -> dict:
    """A small torch MLP on synthetic_credit with a feature named like a script, and every
    kind of result the report shows."""
    d = datasets.synthetic_credit(400, seed=0)
    names = [EVIL, *d.feature_names[1:]]
    net = zoo.torch_mlp(d.n_features, d.n_classes, seed=0)
    zoo.fit(net, d.x_train, d.y_train, epochs=15, seed=0, progress=False)
    model = lumos.wrap(net, feature_names=names, class_names=d.class_names)
    x = d.x_test[:12]
    ig = lumos.explain(model, x, method="integrated_gradients", n_steps=16)
    sal = lumos.explain(model, x, method="saliency", absolute=False)
    perm = lumos.importance.permutation(model, d.x_test, d.y_test, n_repeats=3, random_state=0)
    tree = lumos.surrogate.fit(model, d.x_test, kind="tree", max_depth=3, random_state=0)
    table = lumos.evaluate(
        model,
        {"integrated_gradients": ig, "saliency": sal},
        ["deletion", "faithfulness_correlation", "model_randomisation", "sparseness"],
    )
    return {
        "model": model,
        "x": d.x_test,
        "y": d.y_test,
        "explanations": {"integrated_gradients": ig, "saliency": sal},
        "global_explanations": {"permutation": perm, "tree": tree},
        "surrogate": tree,
        "evaluation": table,
    }


def _render(c: dict, **kw: object) -> str:
    return render_report(
        c["model"],
        c["x"],
        c["y"],
        explanations=c["explanations"],
        global_explanations=c["global_explanations"],
        surrogate=c["surrogate"],
        evaluation=c["evaluation"],
        title=f"credit {EVIL}",
        **kw,
    )


def test_sections_figures_and_escaping(credit: dict) -> None:
    html = _render(credit)
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    # user strings are escaped everywhere; no script element, no external resource
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for marker in ("http://", "https://", "<link"):
        assert marker not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    # importance × 2 + agreement, tree + fidelity curve, waterfalls, table + deletion curves
    assert len(images) >= 9
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    best = decide(credit["evaluation"]).best
    assert f"Explanation method to trust: {best}." in html
    perf = lumos.metrics.performance.summary(credit["model"], credit["x"], credit["y"])
    assert f"{perf['accuracy']:.4g}" in html


def test_rows_chosen_by_kind(credit: dict) -> None:
    model, x, y = credit["model"], credit["x"], credit["y"]
    e = credit["explanations"]["integrated_gradients"]
    chosen = choose_rows(model, e, x, y)
    out = model(e.data)
    pred = out.argmax(axis=1)
    labels = y[: len(e)]  # the explained rows are the first test rows
    margin = np.sort(out, axis=1)[:, -1] - np.sort(out, axis=1)[:, -2]
    right = np.flatnonzero(pred == labels)
    assert chosen["correct"] == right[np.argmax(margin[right])]
    wrong = np.flatnonzero(pred != labels)
    if len(wrong):
        assert chosen["wrong"] == wrong[np.argmax(margin[wrong])]
    assert chosen["uncertain"] == int(np.argmin(margin))
    # without labels: an example and the uncertain row
    assert set(choose_rows(model, e, x, None)) == {"example", "uncertain"}


def test_report_writes_one_file_and_checks_its_inputs(credit: dict, tmp_path) -> None:
    path = lumos.report(credit["model"], credit["x"], credit["y"], out=tmp_path / "sub" / "r.html")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    assert '<section id="data-model">' in text and '<section id="quality">' not in text
    with pytest.raises(InputError, match="Explanation"):
        lumos.report(credit["model"], credit["x"], explanations={"a": np.ones(3)})


def test_image_report_uses_method_grids() -> None:
    d = datasets.synthetic_shapes(24, size=16, seed=0)
    net = zoo.torch_cnn((1, 16, 16), d.n_classes, seed=0)
    x = d.x_test[:4].astype(np.float32)
    e1 = lumos.explain(net, x, method="saliency")
    e2 = lumos.explain(net, x, method="grad_cam", layer="features.3")
    html = render_report(net, d.x_test, d.y_test, explanations={"saliency": e1, "cam": e2})
    assert "maps of row" in html
    assert html.count('<img src="data:image/png') == len(
        choose_rows(lumos.wrap(net), e1, d.x_test, d.y_test)
    )


def test_report_in_a_real_browser(credit: dict, tmp_path, open_in_chromium) -> None:
    """Headless Chromium: no console errors, no script runs (no dialog), every image
    renders, every section is there, the script-like feature name shows as text."""
    path = tmp_path / "report.html"
    path.write_text(_render(credit), encoding="utf-8")
    seen = open_in_chromium(path)
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["requests"] == []
    images = seen["images"]
    assert len(images) >= 9 and all(c and w > 0 and h > 0 for c, w, h in images)
    assert seen["sections"] == list(SECTIONS)
    assert EVIL in seen["text"]  # shown as text, never run
    assert seen["scripts"] == 0
    assert os.path.getsize(seen["screenshot"]) > 10_000


def test_further_stories_get_sections_and_open_the_summary(credit: dict) -> None:
    from types import SimpleNamespace

    fig = lumos.plots.importance(credit["global_explanations"]["permutation"])
    story = SimpleNamespace(
        title=f"Shortcut {EVIL}",
        summary=["The leaked column ranks first (share 0.61)."],
        facts={"data": "synthetic_credit + leak"},
        figures={"importance": fig},
        notes=["Shuffling the leak drops accuracy from 0.98 to 0.71."],
        evaluation=credit["evaluation"],
    )
    html = _render(credit, stories=[story])
    assert '<section id="story-1">' in html and 'href="#story-1"' in html
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert "The leaked column ranks first (share 0.61)." in summary
    assert "Shortcut &lt;script&gt;" in html and "<script" not in html
    assert decide(credit["evaluation"]).text in html.split('<section id="story-1">')[1]
    with pytest.raises(InputError, match="has no 'figures'"):
        _render(credit, stories=[SimpleNamespace(title="t", summary=[], facts={}, notes=[])])
