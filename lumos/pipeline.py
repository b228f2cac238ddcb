"""The demo: the shipped config ``lumos/configs/demo.toml`` (four stories, one report)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from lumos.explanation import Explanation


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes
    ----------
    accuracy : float
        Test accuracy of the trained reference MLP.
    explanation : Explanation
        ``feature_ablation`` explanations of the first test rows.
    files : dict of str to str
        What :func:`lumos._config.run_config` wrote, by kind (``"report"``,
        ``"explanation:feature_ablation"``, ``"model"``, ...) → path.
    timings : dict of str to float
        Seconds spent per step.
    """

    accuracy: float
    explanation: Explanation
    files: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)


def run_demo(
    out_dir: str | os.PathLike[str] = "lumos-demo",
    *,
    n_rows: int = 20,
    epochs: int = 60,
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """The demo: the shipped config ``lumos/configs/demo.toml`` run by ``lumos run``.

    Four stories in one report:

    1. Medical diagnosis: the classic Keras MLP on breast cancer; feature ablation, kernel
       SHAP and integrated gradients, permutation importance, a surrogate tree, six metrics
       and the verdict.
    2. Images: the reference CNN on digits, gradient and perturbation maps side by side, the
       randomisation sanity check, localisation scored on ``synthetic_shapes`` masks.
    3. Finance with a planted shortcut: ``synthetic_credit`` with a leaked column that the
       explanations expose.
    4. Accuracy vs interpretability: the MLP at several L1 strengths (``lumos._stories``).

    Parameters
    ----------
    out_dir : path
        Folder for the results: ``report.html``, ``explanations/*.npz``, ``global/*.npz``,
        ``evaluation.json`` / ``.csv``, ``performance.json``, ``model.keras``, ``config.toml``.
    n_rows : int
        Test rows explained by each method of story 1.
    epochs : int
        Maximum training epochs of story 1 (early stopping usually ends sooner).
    seed : int
        Seed of every step.
    progress : bool
        Show Rich progress.

    Returns
    -------
    DemoResult
    """
    import dataclasses
    import json
    from pathlib import Path

    from lumos._config import example_configs, load_config, run_config

    t0 = time.perf_counter()
    config = load_config(example_configs()["demo"])
    config = dataclasses.replace(
        config,
        seed=seed,
        model=dataclasses.replace(
            config.model, seed=seed, training={**config.model.training, "epochs": epochs}
        ),
        explain=tuple(dataclasses.replace(e, rows=n_rows) for e in config.explain),
        output=dataclasses.replace(config.output, folder=Path(out_dir)),
    )
    files = run_config(config, progress=progress)
    with open(files["performance"], encoding="utf-8") as fh:
        accuracy = float(json.load(fh)["accuracy"])
    explanation = Explanation.load(files["explanation:feature_ablation"])
    return DemoResult(
        accuracy=accuracy,
        explanation=explanation,
        files=files,
        timings={"total_s": time.perf_counter() - t0},
    )
