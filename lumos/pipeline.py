"""The four steps wired together: data → model → explain → report (used by the CLI)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
        ``"explanations"``, ``"model"``, ``"html"`` → paths written.
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
    """The four stories of the demo in one report.

    1. Medical diagnosis: the classic Keras MLP on breast cancer; three local methods,
       permutation importance, a surrogate tree, six metrics and the verdict.
    2. Images: the reference CNN on digits, gradient and perturbation maps side by side, the
       randomisation sanity check, localisation scored on ``synthetic_shapes`` masks.
    3. Finance with a planted shortcut: ``synthetic_credit`` with a leaked column that the
       explanations expose.
    4. Accuracy vs interpretability: the MLP at several L1 strengths (``lumos._stories``).

    Parameters
    ----------
    out_dir : path
        Folder for ``explanations.npz`` (feature ablation), ``model.keras`` and
        ``index.html`` (the report of all four stories).
    n_rows : int
        Test rows to explain.
    epochs : int
        Maximum training epochs (early stopping usually ends sooner).
    seed : int
        Seed for the split-independent parts: initial weights, shuffling, validation split.
    progress : bool
        Show Rich progress bars.

    Returns
    -------
    DemoResult
    """
    from lumos import datasets, importance, surrogate, zoo
    from lumos.attribution import explain
    from lumos.metrics import evaluate
    from lumos.models import wrap
    from lumos.report import report

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = datasets.breast_cancer()
    net = zoo.keras_mlp(data.n_features, data.n_classes, seed=seed)
    history = zoo.fit(net, data.x_train, data.y_train, epochs=epochs, seed=seed, progress=progress)
    timings["train_s"] = time.perf_counter() - t0

    model = wrap(net, feature_names=data.feature_names, class_names=data.class_names)
    predicted = np.argmax(model(data.x_test), axis=1)
    accuracy = float(np.mean(predicted == data.y_test))

    t1 = time.perf_counter()
    rows = data.x_test[:n_rows]
    explanation = explain(
        model, rows, method="feature_ablation", baseline="mean", background=data.x_train
    )
    local = {
        "feature_ablation": explanation,
        "kernel_shap": explain(
            model, rows, method="kernel_shap", background=data.x_train[:50], n_samples=512,
            random_state=seed,
        ),
        "integrated_gradients": explain(model, rows, method="integrated_gradients", n_steps=32),
    }  # fmt: skip
    timings["explain_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    tree = surrogate.fit(model, data.x_test, kind="tree", max_depth=3, random_state=seed)
    global_ = {
        "permutation": importance.permutation(
            model, data.x_test, data.y_test, n_repeats=5, random_state=seed
        ),
        "kernel_shap (mean |φ|)": importance.aggregate(local["kernel_shap"]),
        "surrogate tree": tree,
    }
    timings["global_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    table = evaluate(
        model,
        local,
        {
            "deletion": {},
            "faithfulness_correlation": {},
            "infidelity": {},
            "max_sensitivity": {"n_samples": 10},
            "model_randomisation": {},
            "sparseness": {},
        },
        random_state=seed,
    )  # fmt: skip
    timings["evaluate_s"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    from lumos._stories import images_story, shortcut_story, tradeoff_story

    stories = [
        images_story(seed=seed, progress=progress),
        shortcut_story(seed=seed, progress=progress),
        tradeoff_story(seed=seed, progress=progress),
    ]
    timings["stories_s"] = time.perf_counter() - t4

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    files = {
        "explanations": explanation.save(os.path.join(out, "explanations.npz")),
        "model": os.path.join(out, "model.keras"),
    }
    net.save(files["model"])
    files["html"] = report(
        model,
        data.x_test,
        data.y_test,
        out=os.path.join(out, "index.html"),
        title="lumos demo — breast cancer, classic Keras MLP",
        explanations=local,
        global_explanations=global_,
        surrogate=tree,
        evaluation=table,
        stories=stories,
        heading="Medical diagnosis: breast cancer, the classic Keras MLP",
        description={
            "data": f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test rows, "
            f"{data.n_features} standardised features (0 = training mean, 1 = one sd)",
            "training": "Keras MLP Dense(128, relu) → Dense(64, relu) → Dense(2, softmax), "
            f"adam, sparse categorical cross-entropy, {history.get('epochs_run')} epochs",
            "explained": f"first {len(explanation)} test rows",
        },
        notes=[
            "Feature ablation: the drop in the explained class probability when one feature "
            "is replaced by its training mean. Kernel SHAP: Shapley values against 50 "
            "training rows. Integrated gradients: the path integral of the gradient from "
            "the all-zero (training-mean) input."
        ],
    )
    timings["total_s"] = time.perf_counter() - t0
    return DemoResult(
        accuracy=accuracy,
        explanation=explanation,
        files=files,
        timings=timings,
        history=history,
    )
