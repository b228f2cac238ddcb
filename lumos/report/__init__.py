"""Self-contained HTML pages (Jinja2, autoescaped, nothing fetched at view time).

:func:`report` writes the full report (summary, data and model, global importance,
surrogate, individual predictions, explanation quality with a verdict, caveats);
:func:`render_page` / :func:`write_page` the simple page of local explanations.
"""

from lumos.report._html import render_page, write_page
from lumos.report._report import choose_rows, render_report, report

__all__ = ["choose_rows", "render_page", "render_report", "report", "write_page"]
