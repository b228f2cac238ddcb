"""Self-contained HTML pages (Jinja2, autoescaped, nothing fetched at view time)."""

from lumos.report._html import render_page, write_page

__all__ = ["render_page", "write_page"]
