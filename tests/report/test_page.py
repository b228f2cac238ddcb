"""The HTML page: self-contained, every user string escaped."""

from __future__ import annotations

import numpy as np

from lumos import Explanation
from lumos.report import render_page, write_page

EVIL = "<script>alert(1)</script>"


def test_user_strings_are_escaped(tmp_path) -> None:
    e = Explanation(
        values=np.array([[2.0, -1.0]]),
        data=np.array([[0.5, 1.5]]),
        feature_names=[EVIL, "age & <b>income</b>"],
        class_names=[f"{EVIL}class"],
        prediction=[0.9],
        base_value=[0.4],
    )
    html = render_page(
        title=f"title {EVIL}", summary={EVIL: EVIL}, notes=[EVIL], explanations={EVIL: e}
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "age &amp; &lt;b&gt;income&lt;/b&gt;" in html
    assert "+2.0000" in html and "-1.0000" in html and "0.9000" in html
    # no network at view time: no external URLs for scripts, styles or images
    for marker in ("http://", "https://", "src=", "<link"):
        assert marker not in html
    path = write_page(tmp_path / "x" / "page.html", title="t", summary={}, explanations={"e": e})
    assert open(path, encoding="utf-8").read().startswith("<!DOCTYPE html>")
