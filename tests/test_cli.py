"""The lumos command: the demo end to end, listings, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import lumos
from lumos import Explanation
from lumos.cli import main


def test_demo_trains_explains_and_writes(tmp_path, capsys, open_in_chromium) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.95
    e = Explanation.load(out / "explanations" / "feature_ablation.npz")
    assert len(e) == 20 and e.method == "feature_ablation" and e.input_shape == (30,)
    assert e.feature_names[0] == "mean radius" and e.class_names == ["malignant", "benign"]
    # ablation against the training mean (≈ 0 after standardisation) of every feature
    assert np.isfinite(e.values).all() and np.abs(e.values).max() > 0
    html = (out / "report.html").read_text()
    assert f"{accuracy:.4g}" in html and "feature_ablation" in html
    for section in ("summary", "data-model", "global", "surrogate", "local", "quality"):
        assert f'<section id="{section}">' in html
    assert "Explanation method to trust:" in html
    # the other three stories, each a section listed in the opening summary
    for i in (1, 2, 3):
        assert f'<section id="story-{i}">' in html and f'href="#story-{i}"' in html
    assert "Medical diagnosis" in html
    # the demo report in a real browser: loads cleanly, every figure renders
    seen = open_in_chromium(out / "report.html")
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["requests"] == []
    assert len(seen["images"]) >= 20
    assert all(c and w > 0 and h > 0 for c, w, h in seen["images"])
    assert seen["sections"][:2] == ["summary", "data-model"] and "caveats" in seen["sections"]
    assert seen["scripts"] == 0
    assert Path(seen["screenshot"]).stat().st_size > 10_000  # under the test's tmp dir
    assert (out / "model.keras").stat().st_size > 10_000


def test_methods_listing(capsys) -> None:
    assert main(["methods"]) == 0
    assert "feature_ablation" in capsys.readouterr().out


def test_metrics_listing(capsys) -> None:
    from lumos.metrics import available_metrics

    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    for name in available_metrics():  # every registered metric is listed
        assert name in out
    assert "faithfulness" in out and "lower" in out and "higher" in out


def test_usage_errors_exit_2_without_traceback(capsys) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["demo", "--rows", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lumos", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("lumos ")
    done = subprocess.run(
        [sys.executable, "-m", "lumos", "demo", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "--out" in done.stdout


def test_commands_through_typers_runner(tmp_path) -> None:
    """The same app through typer.testing.CliRunner: listings, an explanation written from
    files, and user errors with exit code 2 and a one-line message."""
    import torch
    from typer.testing import CliRunner

    from lumos.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["metrics"])
    assert listed.exit_code == 0 and "faithfulness_correlation" in listed.output
    assert "saliency" in runner.invoke(app, ["methods"]).output

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    scripted = torch.jit.script(net)
    model_path = tmp_path / "m.pt"
    scripted.save(str(model_path))
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "e.npz"
    done = runner.invoke(
        app, ["explain", str(model_path), str(tmp_path / "x.npy"), "-m", "saliency",
              "--out", str(out), "--no-progress"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    e = Explanation.load(out)
    expected = lumos.explain(lumos.load_model(model_path), x, method="saliency")
    np.testing.assert_allclose(e.values, expected.values, rtol=0, atol=1e-12)
    assert e.method == "saliency" and len(e) == 4

    bad = runner.invoke(app, ["explain", str(model_path), str(tmp_path / "x.npy"), "-m",
                              "no_such_method", "--out", str(out)])  # fmt: skip
    # the app raises the typed error; `main` (the console script) turns it into exit code 2
    assert bad.exit_code != 0 and type(bad.exception).__name__ == "UnknownNameError"
    assert "\n" not in str(bad.exception).strip()
    args = ["explain", str(model_path), str(tmp_path / "x.npy"), "-m", "no_such_method",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 2
