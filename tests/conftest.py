import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def open_in_chromium(tmp_path):
    """``open_in_chromium(path) -> dict``: load an HTML file in headless Debian Chromium
    (Playwright) and report what a reader's browser saw: console / page errors, dialogs
    (a script that ran), requests other than file: / data:, every image's
    (complete, naturalWidth, naturalHeight), the section ids, the page text, the number of
    <script> elements, and a screenshot's path."""
    import shutil

    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "browser tests need Debian's chromium: `make test` installs it"

    def run(path) -> dict:
        seen: dict = {"errors": [], "dialogs": [], "requests": []}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking"],
            )  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on("console", lambda m: seen["errors"].append(m.text)
                        if m.type == "error" else None)  # fmt: skip
                page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
                page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
                page.on("request", lambda r: seen["requests"].append(r.url)
                        if not r.url.startswith(("file:", "data:")) else None)  # fmt: skip
                page.goto(f"file://{os.path.abspath(path)}")
                seen["images"] = page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
                )
                seen["sections"] = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
                seen["text"] = page.inner_text("body")
                seen["scripts"] = page.eval_on_selector_all("script", "els => els.length")
                seen["screenshot"] = str(tmp_path / "page.png")
                page.screenshot(path=seen["screenshot"])
            finally:
                browser.close()
        return seen

    return run
