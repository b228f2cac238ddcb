"""Render explanations into one self-contained HTML page."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import numpy as np

from lumos._version import __version__
from lumos.explanation import Explanation

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("lumos", "report/templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def _rows(explanation: Explanation, k: int) -> list[dict[str, Any]]:
    rows = []
    tops = explanation.top_features(k)
    scale = max((abs(v) for top in tops for _, v in top), default=1.0) or 1.0
    flat_data = explanation.data.reshape(len(explanation), -1)
    for i, top in enumerate(tops):
        target = int(explanation.target[i])
        names = explanation.class_names
        label = names[target] if names and target < len(names) else str(target)
        feats = []
        for name, value in top:
            j = (
                explanation.feature_names.index(name)
                if explanation.feature_names is not None
                else None
            )
            feats.append(
                {
                    "name": name,
                    "value": value,
                    "data": None if j is None else float(flat_data[i, j]),
                    "width": 100.0 * abs(value) / scale,
                    "sign": "pos" if value >= 0 else "neg",
                }
            )
        rows.append(
            {
                "index": i,
                "target": label,
                "prediction": None
                if explanation.prediction is None
                else float(explanation.prediction[i]),
                "base_value": None
                if explanation.base_value is None
                else float(explanation.base_value[i]),
                "features": feats,
            }
        )
    return rows


def render_page(
    *,
    title: str,
    summary: Mapping[str, Any],
    explanations: Mapping[str, Explanation],
    notes: Sequence[str] = (),
    top_k: int = 8,
) -> str:
    """Render a page with a summary table and, per explanation, the top features of each row.

    Parameters
    ----------
    title : str
    summary : mapping of str to value
        Shown as a two-column table (data, model, accuracy, ...).
    explanations : mapping of str to Explanation
        Section title → explanation.
    notes : sequence of str
        Plain-language remarks shown under the summary.
    top_k : int
        Features shown per row.

    Returns
    -------
    str
        The HTML document. Every user-supplied string is escaped.
    """
    sections = []
    for name, exp in explanations.items():
        sections.append(
            {
                "name": name,
                "method": exp.method,
                "n": len(exp),
                "params": {
                    k: v
                    for k, v in exp.params.items()
                    if v is not None and not isinstance(v, np.ndarray)
                },
                "rows": _rows(exp, top_k),
            }
        )
    template = _ENV.get_template("page.html")
    return template.render(
        title=title,
        summary=[(str(k), v) for k, v in summary.items()],
        notes=list(notes),
        sections=sections,
        version=__version__,
    )


def write_page(path: str | os.PathLike[str], **kwargs: Any) -> str:
    """Render with :func:`render_page` and write to ``path`` (UTF-8); returns the path."""
    return write_html(path, render_page(**kwargs))


def write_html(path: str | os.PathLike[str], html: str) -> str:
    """Write ``html`` to ``path`` (UTF-8), making its folder; returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(html)
    return path
