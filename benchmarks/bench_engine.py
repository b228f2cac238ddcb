"""The engine: throughput per chunk size on the reference MLP and CNN, and feature ablation
side by side with captum's FeatureAblation on the same workload."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from captum.attr import FeatureAblation as CaptumFeatureAblation

import lumos
from benchmarks._common import Section, best_time, fmt_s, model_floor
from lumos import _batching, datasets, zoo
from lumos.attribution._groups import patch_map


def _throughput(quick: bool) -> Section:
    digits = datasets.digits(28)
    nets = {
        "MLP 784→128→64→10": (
            zoo.torch_mlp(784, 10, seed=0),
            digits.x_train.reshape(len(digits.x_train), -1),
            4096 if quick else 16384,
        ),
        "Keras MLP 784→128→64→10": (
            zoo.keras_mlp(784, 10, seed=0),
            digits.x_train.reshape(len(digits.x_train), -1),
            4096 if quick else 16384,
        ),
        "MLP 30→128→64→2 (breast cancer)": (
            zoo.torch_mlp(30, 2, seed=0),
            datasets.breast_cancer().x_train,
            32768 if quick else 131072,
        ),
        "CNN 1×28×28 (8, 16 channels)": (
            zoo.torch_cnn((1, 28, 28), 10, seed=0),
            digits.x_train,
            1024 if quick else 4096,
        ),
    }
    sizes = [16, 64, 128, 256, 512, 1024, 4096, 8192, 16384, 65536]
    section = Section(
        title="Engine throughput per chunk size",
        description=(
            "`Model.evaluate` (numpy in, float64 numpy out, chunked, no autograd) on the "
            "reference networks (torch and Keras) over rows of `digits(28)`; the floor is one raw "
            "`module(tensor)` call over all rows. The default chunk comes from the element "
            f"budget ({_batching.DEFAULT_ELEMENT_BUDGET:,} input elements, at most "
            f"{_batching.DEFAULT_MAX_ROWS} rows)."
        ),
        header=["network", "rows", "chunk (rows)", "time", "rows/s", "lumos ÷ floor"],
        notes=[
            "Chosen default: a budget of 2^18 input elements per call (334 rows of 784 "
            "features, 8192 rows of a 30-feature table). Moderate chunks beat one huge call "
            "on the CNN (activations stay in cache) and stay close to the best on the MLPs; "
            "tiny chunks pay the per-call overhead. The row cap (8192) is for small tabular "
            "models, which the 30-feature MLP row measures.",
        ],
    )
    for name, (net, pool, n_rows) in nets.items():
        reps = int(np.ceil(n_rows / len(pool)))
        x = np.concatenate([pool] * reps)[:n_rows]
        model = lumos.wrap(net)
        floor = model_floor(net, x)
        default = _batching.resolve_batch_size(None, int(np.prod(x.shape[1:])))
        configs = [s for s in sizes if s <= n_rows] + [None]
        # interleaved rounds, minimum per configuration: no configuration is favoured by
        # running right after another one that left caches or the allocator in some state
        times = {bs: float("inf") for bs in configs}
        for _ in range(4):
            for bs in configs:
                t = best_time(partial(model.evaluate, x, batch_size=bs), repeats=1)
                times[bs] = min(times[bs], t)
        for bs in configs:
            t = times[bs]
            label = f"default ({default})" if bs is None else str(bs)
            section.rows.append(
                [name, str(n_rows), label, fmt_s(t), f"{n_rows / t:,.0f}", f"{t / floor:.2f}"]
            )
        section.rows.append(
            [name, str(n_rows), "floor: one call", fmt_s(floor), f"{n_rows / floor:,.0f}", "1.00"]
        )
        best = min(times, key=lambda k: times[k])
        section.notes.append(
            f"{name}: the default chunk ({default} rows) takes {times[None] / times[best]:.2f}× "
            f"the time of the fastest chunk here ({best if best is not None else default} rows)."
        )
    return section


def _ablation(quick: bool) -> Section:
    digits = datasets.digits(28)
    mlp = zoo.torch_mlp(784, 10, seed=0)
    cnn = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    n_mlp = 10 if quick else 20
    n_cnn = 50 if quick else 100
    x_mlp = digits.x_test[:n_mlp].reshape(n_mlp, -1).astype(np.float32)
    x_cnn = digits.x_test[:n_cnn].astype(np.float32)
    mask = patch_map((1, 28, 28), 4)
    section = Section(
        title="feature_ablation vs captum FeatureAblation",
        description=(
            "Same model, inputs, baseline (zeros) and targets (class 0). MLP: every one of the "
            "784 pixels ablated alone; CNN: 4×4 patches (49 groups). captum runs with its "
            "default `perturbations_per_eval=1` and with 64; lumos with its default chunk. "
            "The floor is one forward over all n × groups perturbed inputs, pre-built."
        ),
        header=[
            "workload",
            "evaluations",
            "lumos",
            "captum (ppe=1)",
            "captum ÷ lumos",
            "captum (ppe=64)",
            "captum64 ÷ lumos",
            "lumos ÷ floor",
        ],
    )
    cases = [
        (f"MLP, {n_mlp} images × 784 pixels", mlp, x_mlp, None),
        (f"CNN, {n_cnn} images × 49 patches", cnn, x_cnn, mask),
    ]
    for label, net, x, fmask in cases:
        model = lumos.wrap(net)
        ours = partial(lumos.explain, model, x, method="feature_ablation", target=0, groups=fmask)
        tx = torch.tensor(x)
        tm = None if fmask is None else torch.tensor(fmask)[None]
        fa = CaptumFeatureAblation(net)

        def theirs(
            ppe: int,
            tx: torch.Tensor = tx,
            tm: torch.Tensor | None = tm,
            fa: CaptumFeatureAblation = fa,
        ) -> None:
            with torch.no_grad():
                fa.attribute(
                    tx, baselines=0.0, target=0, feature_mask=tm, perturbations_per_eval=ppe
                )

        # check they agree before timing
        a = ours().values
        with torch.no_grad():
            b = fa.attribute(tx, baselines=0.0, target=0, feature_mask=tm).numpy()
        np.testing.assert_allclose(a, b, atol=1e-5)
        n_groups = int((fmask.max() + 1) if fmask is not None else x.shape[1])
        evals = len(x) * n_groups
        pool = np.repeat(x, n_groups, axis=0)
        t_floor = model_floor(net, pool)
        t_ours = best_time(ours)
        t_c1 = best_time(lambda: theirs(1), repeats=2)
        t_c64 = best_time(lambda: theirs(64))
        section.rows.append(
            [
                label,
                f"{evals:,}",
                fmt_s(t_ours),
                fmt_s(t_c1),
                f"{t_c1 / t_ours:.1f}×",
                fmt_s(t_c64),
                f"{t_c64 / t_ours:.1f}×",
                f"{t_ours / t_floor:.2f}",
            ]
        )
    return section


def run(quick: bool = False) -> list[Section]:
    """Both engine benchmarks."""
    return [_throughput(quick), _ablation(quick)]
