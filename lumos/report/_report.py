"""``lumos.report``: one self-contained HTML file a person can read and share.

Sections: a summary of everything; the data and the model with its performance; which
features matter globally (several methods side by side and their agreement); a readable
surrogate with its fidelity; individual predictions (a correct, a wrong and an uncertain
one); whether the explanations can be trusted (every method on every metric, with a
plain-language verdict); caveats. Figures are PNGs embedded as data URIs; every
user-supplied string is escaped by Jinja2; nothing is fetched when the page is viewed.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lumos._version import __version__
from lumos.errors import InputError
from lumos.explanation import Explanation, GlobalExplanation
from lumos.models.base import Model, wrap
from lumos.report._html import _ENV, write_html
from lumos.report._verdict import caveats as _caveats
from lumos.report._verdict import decide

#: Local rows shown per kind (correct / wrong / uncertain).
ROW_KINDS = ("correct", "wrong", "uncertain")


def _png(fig: Any, alt: str) -> dict[str, str]:
    """A figure as an embedded PNG (data URI) with its alt text."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return {"src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), "alt": alt}


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (float, np.floating)):
        return "—" if not np.isfinite(v) else f"{float(v):.4g}"
    return str(v)


def _row_index(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index in ``x`` of each row of ``rows`` (-1 where it is not one of them)."""
    lookup = {r.tobytes(): i for i, r in enumerate(np.ascontiguousarray(x, dtype=np.float64))}
    flat = np.ascontiguousarray(rows.reshape(len(rows), -1), dtype=np.float64)
    return np.array([lookup.get(r.tobytes(), -1) for r in flat])


def choose_rows(
    model: Model, explanation: Explanation, x: np.ndarray, y: np.ndarray | None
) -> dict[str, int]:
    """One explained row of each kind: ``correct`` (the most confident right prediction),
    ``wrong`` (the most confident wrong one), ``uncertain`` (the smallest margin between the
    two largest outputs). Labels come from ``y`` by matching the explained rows in ``x``;
    without labels only ``uncertain`` (and the first row as ``example``) is chosen."""
    out = model.evaluate(explanation.data)
    order = np.sort(out, axis=1)
    margin = order[:, -1] - (order[:, -2] if out.shape[1] > 1 else 0.0)
    pred = np.argmax(out, axis=1)
    chosen: dict[str, int] = {}
    labels = None
    if y is not None:
        idx = _row_index(x.reshape(len(x), -1), explanation.data)
        known = idx >= 0
        if known.any():
            labels = np.where(known, np.asarray(y)[np.maximum(idx, 0)], -1)
    if labels is not None:
        right = np.flatnonzero((labels >= 0) & (pred == labels))
        wrong = np.flatnonzero((labels >= 0) & (pred != labels))
        if len(right):
            chosen["correct"] = int(right[np.argmax(margin[right])])
        if len(wrong):
            chosen["wrong"] = int(wrong[np.argmax(margin[wrong])])
    else:
        chosen["example"] = 0
    if len(explanation) > 1 or not chosen:
        chosen["uncertain"] = int(np.argmin(margin))
    return chosen


def _table_of(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), _fmt(v)) for k, v in d.items()]


def render_report(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    explanations: Mapping[str, Explanation] | None = None,
    global_explanations: Mapping[str, GlobalExplanation] | None = None,
    surrogate: GlobalExplanation | None = None,
    evaluation: Any = None,
    performance: Mapping[str, float] | None = None,
    title: str = "lumos report",
    description: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    extra_figures: Mapping[str, Any] | None = None,
    stories: Sequence[Any] = (),
    heading: str | None = None,
) -> str:
    """The report as an HTML string (see :func:`report`)."""
    from lumos import plots
    from lumos.importance import agreement
    from lumos.metrics import performance as perf

    m = wrap(model)
    arr, _ = m.check_input(x)
    labels = None if y is None else np.asarray(y)
    explanations = dict(explanations or {})
    global_explanations = dict(global_explanations or {})
    for name, e in explanations.items():
        if not isinstance(e, Explanation):
            raise InputError(f"explanations[{name!r}] must be a lumos Explanation.")
    for name, g in global_explanations.items():
        if not isinstance(g, GlobalExplanation):
            raise InputError(f"global_explanations[{name!r}] must be a lumos GlobalExplanation.")
    if performance is None and labels is not None:
        performance = perf.summary(m, arr, labels)
    image_data = arr.ndim >= 3

    # ---- data and model
    facts: dict[str, Any] = {
        "rows": len(arr),
        "input shape": " × ".join(str(s) for s in arr.shape[1:]),
        "model": f"{m.framework} ({m.output_kind}, {m.n_outputs} outputs)",
    }
    if m.feature_names:
        shown = m.feature_names[:12]
        more = len(m.feature_names) - len(shown)
        facts["features"] = ", ".join(shown) + (f", … ({more} more)" if more else "")
    if m.class_names:
        facts["classes"] = ", ".join(m.class_names)
    facts.update(dict(description or {}))

    # ---- global
    global_figs = [
        _png(plots.importance(g, max_features=15), f"importance by {name}")
        for name, g in global_explanations.items()
    ]
    agree = None
    agree_rows: list[dict[str, str]] = []
    if len(global_explanations) >= 2:
        d = len(next(iter(global_explanations.values())))
        agree = agreement(global_explanations, k=min(5, d))
        global_figs.append(_png(plots.agreement_heatmap(agree), "agreement between methods"))
        agree_rows = [
            {
                "a": str(r["method_a"]),
                "b": str(r["method_b"]),
                "spearman": _fmt(r["spearman"]),
                "overlap": _fmt(r.get("top_k_overlap")),
            }
            for _, r in agree.iterrows()
        ]

    # ---- surrogate
    sur: dict[str, Any] | None = None
    if surrogate is not None:
        figs = []
        if surrogate.estimator is not None and hasattr(surrogate.estimator, "tree_"):
            figs.append(_png(plots.surrogate_tree(surrogate, max_depth=3), "surrogate tree"))
        if getattr(surrogate, "curve", None) is not None:
            figs.append(_png(plots.fidelity_curve(surrogate), "fidelity against complexity"))
        sur = {
            "method": surrogate.method,
            "fidelity": _fmt(surrogate.fidelity),
            "rules": surrogate.rules,
            "formula": surrogate.formula,
            "figures": figs,
        }

    # ---- local rows
    local: list[dict[str, Any]] = []
    if explanations:
        first = next(iter(explanations.values()))
        chosen = choose_rows(m, first, arr, labels)
        names = m.class_names
        for kind, i in chosen.items():
            t = int(first.target[i])
            figs = []
            if image_data:
                fig = plots.compare_methods(explanations, rows=[i])
                figs.append(_png(fig, f"maps of row {i} by every method"))
            else:
                for name, e in explanations.items():
                    if len(e) == len(first) and np.array_equal(e.data, first.data):
                        # a waterfall needs a base value (saliency has none): bars then
                        draw = plots.waterfall if e.base_value is not None else plots.bar
                        figs.append(_png(draw(e, row=i), f"{name}, row {i}"))
            local.append(
                {
                    "kind": kind,
                    "row": i,
                    "target": names[t] if names and t < len(names) else str(t),
                    "prediction": _fmt(None if first.prediction is None else first.prediction[i]),
                    "figures": figs,
                }
            )

    # ---- quality
    quality: dict[str, Any] | None = None
    verdict = None
    if evaluation is not None:
        verdict = decide(evaluation)
        records = evaluation.rows()
        by_metric: dict[str, dict[str, Any]] = {}
        for r in records:
            row = by_metric.setdefault(
                r["metric"],
                {
                    "metric": r["metric"],
                    "category": r["category"],
                    "arrow": "↑" if r["higher_is_better"] else "↓",
                    "cells": [],
                },
            )
            cell = "—" if r["mean"] is None else f"{r['mean']:.3g}"
            if r["stderr"] is not None:
                cell += f" ± {r['stderr']:.2g}"
            row["cells"].append({"text": cell, "best": r["rank"] == 1.0})
        figs = [_png(plots.metric_table(evaluation), "method × metric table")]
        curve_results = {
            name: evaluation.results[(name, "deletion")]
            for name in evaluation.methods
            if (name, "deletion") in evaluation.results
        }
        if curve_results:
            figs.append(_png(plots.curves(curve_results), "deletion curves"))
        quality = {
            "methods": list(evaluation.methods),
            "rows": list(by_metric.values()),
            "figures": figs,
            "verdict": verdict.text,
        }

    # ---- caveats and summary
    cav = list(verdict.caveats if verdict else [])
    cav += _caveats(surrogate=surrogate, agreement=agree, table=evaluation, performance=performance)
    glance: list[str] = []
    if performance:
        key = "accuracy" if "accuracy" in performance else next(iter(performance))
        glance.append(
            f"The model's {key} on the {len(arr)} rows given is {_fmt(performance[key])}."
        )
    if verdict is not None:
        glance.append(
            f"Explanation method to trust: {verdict.best}." if verdict.best else verdict.text
        )
    if surrogate is not None and surrogate.fidelity is not None:
        glance.append(
            f"A readable {surrogate.method} imitates the model with fidelity "
            f"{surrogate.fidelity:.2f} on held-out rows."
        )
    if global_explanations:
        top = next(iter(global_explanations.values()))
        names_top = [top.feature_label(int(j)) for j in top.ranking[:3]]
        glance.append(
            f"Most important features ({next(iter(global_explanations))}): "
            + ", ".join(names_top)
            + "."
        )
    glance.append(f"{len(cav)} caveat(s) — see the last section.")
    extra = [
        _png(fig, str(name)) | {"title": str(name)} for name, fig in (extra_figures or {}).items()
    ]
    story_sections = [_story(i, st) for i, st in enumerate(stories, start=1)]
    template = _ENV.get_template("report.html")
    return template.render(
        title=title,
        version=__version__,
        glance=glance,
        notes=list(notes),
        facts=_table_of(facts),
        performance=_table_of(performance or {}),
        global_figs=global_figs,
        agree_rows=agree_rows,
        surrogate=sur,
        local=local,
        quality=quality,
        caveats=cav,
        extra=extra,
        stories=story_sections,
        heading=heading,
    )


def _story(i: int, story: Any) -> dict[str, Any]:
    """A further story (title, summary, facts, figures, notes, evaluation) as a section."""
    for attr in ("title", "summary", "facts", "figures", "notes"):
        if not hasattr(story, attr):
            raise InputError(
                f"stories[{i - 1}] has no {attr!r}; a story needs title, summary, facts, "
                "figures and notes (see lumos._stories.Story)."
            )
    evaluation = getattr(story, "evaluation", None)
    return {
        "id": f"story-{i}",
        "title": str(story.title),
        "summary": [str(x) for x in story.summary],
        "facts": _table_of(story.facts),
        "figures": [_png(fig, str(caption)) for caption, fig in story.figures.items()],
        "notes": [str(x) for x in story.notes],
        "verdict": None if evaluation is None else decide(evaluation).text,
    }


def report(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    out: str | os.PathLike[str] = "lumos-report.html",
    **sections: Any,
) -> str:
    """Write one self-contained HTML report and return its path.

    Parameters
    ----------
    model : object
        The model (anything :func:`lumos.wrap` accepts).
    x : array-like of shape (n, *input_shape)
        Data the model is judged on (performance, summary); the local explanations' rows are
        found in it to read their labels.
    y : array-like of shape (n,), optional
        Labels: performance (accuracy, F1, ROC-AUC, calibration) and the choice of a correct
        and a wrong prediction to show.
    out : path, default "lumos-report.html"
    explanations : dict of str to Explanation, optional
        Local explanations by method name (same rows for every method).
    global_explanations : dict of str to GlobalExplanation, optional
        Global importances (permutation, aggregated attributions, surrogates...).
    surrogate : GlobalExplanation, optional
        A :func:`lumos.surrogate.fit` result: rules, formula, fidelity.
    evaluation : EvaluationTable, optional
        :func:`lumos.evaluate`'s table: the quality section and the verdict.
    performance : dict, optional
        Model scores (default: :func:`lumos.metrics.performance.summary` when ``y`` given).
    title : str
    description : dict, optional
        Extra lines for the data and model table (data name, training recipe, ...).
    notes : sequence of str
        Paragraphs shown under the summary.
    extra_figures : dict of str to Figure, optional
        Further figures (e.g. a trade-off plot), each under its title.
    heading : str, optional
        A name for the main study, shown above its summary lines when there are stories.
    stories : sequence of Story, optional
        Further studies shown as their own sections after the main one, each with a
        ``title``, ``summary`` (sentences also listed in the opening summary), ``facts``,
        ``figures`` (caption → Figure), ``notes`` and optionally an ``evaluation`` table
        whose verdict is stated (see ``lumos._stories.Story``).

    Returns
    -------
    str
        The path written.
    """
    return write_html(out, render_report(model, x, y, **sections))
