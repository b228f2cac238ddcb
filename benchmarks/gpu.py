"""GPU check and timings, run by hand on a CUDA machine (CI has no GPU).

``python -m benchmarks.gpu --out benchmarks/results/gpu.md`` checks that every torch-backed
path gives the CPU's numbers on ``device="cuda"`` (adapters, gradients, feature_ablation, a
Keras model on the torch backend), checks every explainer on CUDA against the CPU, then times
the engine per chunk size, feature_ablation and the gradient explainers against captum on the
GPU. ``python -m benchmarks`` copies the recorded file into
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch

import lumos
from benchmarks._common import Section, best_time, fmt_s, machine
from lumos import datasets, metrics, zoo


def _sync_time(fn, repeats: int = 5, warmup: int = 1) -> float:
    def go() -> None:
        fn()
        torch.cuda.synchronize()

    return best_time(go, repeats=repeats, warmup=warmup)


def checks() -> Section:
    digits = datasets.digits(28)
    x_img = digits.x_test[:64]
    x_flat = x_img.reshape(64, -1)
    section = Section(
        title="GPU correctness: device='cuda' against the CPU",
        description="Max absolute difference between the same computation on CPU and CUDA.",
        header=["check", "max |cpu − cuda|", "tolerance", "ok"],
    )

    def row(name: str, a: np.ndarray, b: np.ndarray, tol: float) -> None:
        diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        section.rows.append([name, f"{diff:.2e}", f"{tol:.0e}", "yes" if diff <= tol else "NO"])

    mlp = zoo.torch_mlp(784, 10, seed=0)
    cnn = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    for name, net, x in (("torch MLP", mlp, x_flat), ("torch CNN", cnn, x_img)):
        cpu = lumos.wrap(net, device="cpu")
        ref = cpu(x)
        ref_ab = lumos.explain(
            cpu, x[:8], method="feature_ablation", target=3, patch_size=None if x.ndim == 2 else 4
        ).values
        xt = torch.tensor(x[:8], dtype=torch.float32, requires_grad=True)
        cpu(xt, grad=True)[:, 3].sum().backward()
        g_cpu = xt.grad.numpy().copy()
        gpu = lumos.wrap(net, device="cuda")
        assert gpu.device.startswith("cuda")
        row(f"{name}: outputs", ref, gpu(x), 1e-3)
        xg = torch.tensor(x[:8], dtype=torch.float32, device="cuda", requires_grad=True)
        gpu(xg, grad=True)[:, 3].sum().backward()
        row(f"{name}: gradient w.r.t. input", g_cpu, xg.grad.cpu().numpy(), 1e-3)
        ab = lumos.explain(
            gpu, x[:8], method="feature_ablation", target=3, patch_size=None if x.ndim == 2 else 4
        ).values
        row(f"{name}: feature_ablation", ref_ab, ab, 1e-3)
        net.to("cpu")
    kmlp = zoo.keras_mlp(784, 10, seed=0)
    kmodel = lumos.wrap(kmlp)
    section.rows.append(
        [
            "Keras MLP: weights placed by Keras on",
            kmodel.device,
            "cuda",
            "yes" if kmodel.device.startswith("cuda") else "NO",
        ]
    )
    twin = zoo.copy_weights(kmlp, zoo.torch_mlp(784, 10, seed=1))
    row("Keras MLP on cuda vs torch twin on cpu", kmodel(x_flat), lumos.wrap(twin)(x_flat), 1e-3)
    xg = torch.tensor(x_flat[:8], dtype=torch.float32, device="cuda", requires_grad=True)
    kmodel(xg, grad=True)[:, 3].sum().backward()
    xt = torch.tensor(x_flat[:8], dtype=torch.float32, requires_grad=True)
    lumos.wrap(twin)(xt, grad=True)[:, 3].sum().backward()
    row(
        "Keras MLP gradient (cuda) vs torch twin (cpu)",
        xg.grad.cpu().numpy(),
        xt.grad.numpy(),
        1e-3,
    )
    return section


def throughput() -> Section:
    digits = datasets.digits(28)
    section = Section(
        title="GPU engine throughput per chunk size",
        description="`Model.evaluate` on CUDA (numpy in, numpy out: includes host↔device "
        "copies); floor: one `module(tensor)` call on a tensor already on the GPU.",
        header=["network", "rows", "chunk (rows)", "time", "rows/s", "lumos ÷ floor"],
    )
    for name, net, pool, n_rows in (
        (
            "MLP 784→128→64→10",
            zoo.torch_mlp(784, 10, seed=0),
            digits.x_train.reshape(len(digits.x_train), -1),
            65536,
        ),
        ("CNN 1×28×28", zoo.torch_cnn((1, 28, 28), 10, seed=0), digits.x_train, 16384),
    ):
        x = np.concatenate([pool] * int(np.ceil(n_rows / len(pool))))[:n_rows]
        model = lumos.wrap(net, device="cuda")
        t = torch.as_tensor(x, dtype=torch.float32, device="cuda")

        def floor_fn(net=net, t=t) -> None:
            with torch.no_grad():
                net(t)

        floor = _sync_time(floor_fn)
        model.evaluate(x[:2])  # learn the input shape, then read the default chunk
        default = model.resolve_batch_size(None)
        for bs in (256, 1024, 4096, 8192, 16384, 65536, None):
            if bs is not None and bs > n_rows:
                continue
            tt = _sync_time(partial(model.evaluate, x, batch_size=bs), repeats=3)
            label = f"default ({default})" if bs is None else str(bs)
            section.rows.append(
                [name, str(n_rows), label, fmt_s(tt), f"{n_rows / tt:,.0f}", f"{tt / floor:.2f}"]
            )
        section.rows.append(
            [name, str(n_rows), "floor", fmt_s(floor), f"{n_rows / floor:,.0f}", "1.00"]
        )
    return section


def ablation() -> Section:
    from captum.attr import FeatureAblation

    digits = datasets.digits(28)
    section = Section(
        title="GPU feature_ablation vs captum FeatureAblation",
        description="Same workload as the CPU table, on CUDA; captum with the inputs already "
        "on the GPU and its default perturbations_per_eval=1, and with 64.",
        header=[
            "workload",
            "lumos",
            "captum (ppe=1)",
            "captum ÷ lumos",
            "captum (ppe=64)",
            "captum64 ÷ lumos",
        ],
    )
    mlp = zoo.torch_mlp(784, 10, seed=0).to("cuda")
    cnn = zoo.torch_cnn((1, 28, 28), 10, seed=0).to("cuda")
    from lumos.attribution._groups import patch_map

    cases = [
        ("MLP, 100 images × 784 pixels", mlp, digits.x_test[:100].reshape(100, -1), None),
        ("CNN, 400 images × 49 patches", cnn, digits.x_test[:400], patch_map((1, 28, 28), 4)),
    ]
    for label, net, x, fmask in cases:
        model = lumos.wrap(net, device="cuda")
        ours = partial(lumos.explain, model, x, method="feature_ablation", target=0, groups=fmask)
        tx = torch.tensor(x, dtype=torch.float32, device="cuda")
        tm = None if fmask is None else torch.tensor(fmask, device="cuda")[None]
        fa = FeatureAblation(net)

        def theirs(ppe: int, fa=fa, tx=tx, tm=tm) -> None:
            with torch.no_grad():
                fa.attribute(
                    tx, baselines=0.0, target=0, feature_mask=tm, perturbations_per_eval=ppe
                )

        a = ours().values
        with torch.no_grad():
            b = fa.attribute(tx, baselines=0.0, target=0, feature_mask=tm).cpu().numpy()
        np.testing.assert_allclose(a, b, atol=1e-3)
        t_ours = _sync_time(ours, repeats=3)
        t1 = _sync_time(partial(theirs, 1), repeats=2)
        t64 = _sync_time(partial(theirs, 64), repeats=3)
        section.rows.append(
            [
                label,
                fmt_s(t_ours),
                fmt_s(t1),
                f"{t1 / t_ours:.1f}×",
                fmt_s(t64),
                f"{t64 / t_ours:.1f}×",
            ]
        )
    return section


#: Every explainer checked on CUDA against the CPU: (method, params, tolerance). Gradients on
#: the GPU differ from the CPU's in float32 rounding; sampling methods share their draws.
_EXPLAINERS: list[tuple[str, dict, float]] = [
    ("saliency", {}, 1e-4),
    ("input_x_gradient", {}, 1e-4),
    ("integrated_gradients", {"n_steps": 32}, 1e-4),
    ("integrated_gradients", {"n_steps": 32, "rows": 2}, 1e-4),  # the one-pass path (<= 4 rows)
    ("integrated_gradients", {"n_steps": 32, "rows": 2, "baseline": 0.1}, 1e-4),
    ("smoothgrad", {"n_samples": 10, "random_state": 0}, 1e-4),
    ("vargrad", {"n_samples": 10, "random_state": 0}, 1e-4),
    ("expected_gradients", {"n_samples": 10, "random_state": 0, "background": "bg"}, 1e-4),
    ("grad_cam", {}, 1e-4),
    ("grad_cam_pp", {}, 1e-4),
    ("occlusion", {"window": 4, "stride": 4}, 1e-3),
    ("lime", {"n_samples": 300, "random_state": 0}, 1e-2),
    ("kernel_shap", {"n_samples": 64, "random_state": 0, "background": "bg", "groups": "p7"}, 1e-3),
]


def explainer_checks() -> Section:
    """Each registered method on the torch CNN and its Keras twin: cuda against cpu."""
    from lumos.attribution._groups import patch_map

    digits = datasets.digits(28)
    x_all, bg = digits.x_test[:6], digits.x_train[:8]
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    zoo.fit(net, digits.x_train[:600], digits.y_train[:600], epochs=1, seed=0, progress=False)
    keras_net = zoo.copy_weights(net, zoo.keras_cnn((1, 28, 28), 10, seed=1))
    section = Section(
        title="GPU explainers: device='cuda' against the CPU",
        description="The reference CNN (trained one epoch) on 6 `digits(28)` images, target 3; "
        "the Keras twin (same weights) runs where Keras placed it (the GPU). Max absolute "
        "difference of the values.",
        header=["method", "torch cuda vs cpu", "Keras (cuda) vs torch cpu", "tolerance", "ok"],
        notes=[
            "grad_cam / grad_cam_pp: torch on its default layer (the last Conv2d, features.3); "
            "the Keras twin's `last_conv` has its ReLU fused, so it is compared with torch at "
            "the ReLU module after the convolution (features.4)."
        ],
    )
    available = lumos.available_methods()
    for method, params, tol in _EXPLAINERS:
        if method not in available:
            section.rows.append([method, "not registered", "", "", "NO"])
            continue
        kw = dict(params)
        rows = kw.pop("rows", len(x_all))
        x = x_all[:rows]
        label = method if rows == len(x_all) else f"{method} ({rows} rows, {kw})"
        if kw.get("background") == "bg":
            kw["background"] = bg
        if kw.get("groups") == "p7":
            kw["groups"] = patch_map((1, 28, 28), 7)
        net.to("cpu")
        ref = lumos.explain(lumos.wrap(net, device="cpu"), x, method=method, target=3, **kw)
        gpu = lumos.explain(lumos.wrap(net, device="cuda"), x, method=method, target=3, **kw)
        twin = ref
        if method.startswith("grad_cam"):
            # Keras' last_conv has its ReLU fused: its twin is torch's ReLU module features.4
            net.to("cpu")
            twin = lumos.explain(
                lumos.wrap(net, device="cpu"), x, method=method, target=3, layer="features.4"
            )
            kw["layer"] = "last_conv"
        ker = lumos.explain(keras_net, x, method=method, target=3, **kw)
        d1 = float(np.max(np.abs(ref.values - gpu.values)))
        d2 = float(np.max(np.abs(twin.values - ker.values)))
        ok = "yes" if max(d1, d2) <= tol else "NO"
        section.rows.append([label, f"{d1:.2e}", f"{d2:.2e}", f"{tol:.0e}", ok])
    net.to("cpu")
    return section


def metric_checks() -> Section:
    """Every applicable metric on CUDA against the CPU, through ``lumos.evaluate``."""
    data = datasets.synthetic_shapes(160, 16, seed=0)
    net = zoo.torch_cnn((1, 16, 16), 3, seed=0)
    zoo.fit(net, data.x_train, data.y_train, epochs=3, seed=0, progress=False)
    x, masks = data.x_test[:8], data.ground_truth["masks_test"][:8]
    tables = {}
    for device in ("cpu", "cuda"):
        net.to(device)
        model = lumos.wrap(net, device=device)
        expl = {
            "saliency": lumos.explain(model, x, method="saliency"),
            "integrated_gradients": lumos.explain(
                model, x, method="integrated_gradients", n_steps=16
            ),
            "smoothgrad": lumos.explain(model, x, method="smoothgrad", n_samples=8, random_state=0),
        }
        tables[device] = lumos.evaluate(model, expl, "all", ground_truth=masks, random_state=0)
    net.to("cpu")
    cpu, gpu = tables["cpu"], tables["cuda"]
    section = Section(
        title="GPU metrics: device='cuda' against the CPU",
        description="`lumos.evaluate(model, {saliency, integrated_gradients, smoothgrad}, "
        '"all", ground_truth=masks, random_state=0)` on 8 `synthetic_shapes(16)` test images '
        "with the reference CNN (3 epochs), once with the model on the CPU and once on CUDA "
        "(each explanation made on its device). Largest difference of the per-row scores over "
        "the methods a metric applies to, absolute and relative to max(1, |cpu score|); NaN "
        "must sit in the same rows.",
        header=["metric", "methods", "max |cpu − cuda|", "relative", "tolerance", "ok"],
        notes=[
            "The stability ratios (relative input / output stability) divide by float32 "
            "differences of near-equal inputs or outputs, so their values reach 1e6 here: "
            "hence a relative tolerance, and 1e-2 for these two. Float32 rounding alone moves "
            "them by about 1e-3: on one CPU, integrated gradients computed with its sums in "
            "another order (split at the CNN's entry layer or not, the same numbers to 1e-8) "
            "moves relative output stability by up to 8.8e-4 (row 0: 8.462e6 to 8.471e6 "
            "over the four device × order combinations, on an H100 machine)."
        ],
    )
    ratios = ("relative_input_stability", "relative_output_stability")
    for metric in cpu.metrics:
        methods = [m for m in cpu.methods if (m, metric) in cpu.results]
        diff = rel = 0.0
        agree = methods == [m for m in gpu.methods if (m, metric) in gpu.results]
        for method in methods if agree else []:
            a, b = cpu.results[(method, metric)].scores, gpu.results[(method, metric)].scores
            na, nb = np.isnan(a), np.isnan(b)
            agree &= bool((na == nb).all())
            if (~na).any():
                d = np.abs(a[~na] - b[~na])
                diff = max(diff, float(d.max()))
                rel = max(rel, float((d / np.maximum(1.0, np.abs(a[~na]))).max()))
        tol = 1e-2 if metric in ratios else 1e-3
        ok = "yes" if agree and methods and rel <= tol else "NO"
        names = "all 3" if len(methods) == 3 else ", ".join(methods) or "none"
        section.rows.append([metric, names, f"{diff:.2e}", f"{rel:.2e}", f"{tol:.0e}", ok])
    return section


def metric_timings() -> Section:
    """Three metrics against quantus on the GPU (the CPU table's workload)."""
    from benchmarks.bench_metrics import RADIUS, RUNS, SAMPLES, STEP, SUBSET, _call, _quantus_metric

    digits = datasets.digits(28)
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    zoo.fit(net, digits.x_train, digits.y_train, epochs=2, seed=0, progress=False)
    net.to("cuda")
    model = lmodel = lumos.wrap(net, device="cuda")
    x, y = digits.x_test[:50].astype(np.float32), digits.y_test[:50].astype(np.int64)
    expl = lumos.explain(model, x, method="integrated_gradients", target=y, n_steps=16)
    a = expl.values.astype(np.float32)

    def ig(inputs: np.ndarray, targets: np.ndarray, **_: object) -> np.ndarray:
        """quantus' explain_func (called with model=, inputs=, targets=): lumos' IG."""
        return lumos.explain(
            lmodel, np.asarray(inputs, dtype=np.float32), method="integrated_gradients",
            target=np.asarray(targets), n_steps=16,
        ).values.astype(np.float32)  # fmt: skip

    cases = [
        (
            "faithfulness_correlation",
            lambda: metrics.faithfulness_correlation(
                model, expl, n_samples=RUNS, subset_size=SUBSET, baseline=0.0, random_state=0
            ),
            lambda: _call(
                _quantus_metric("faithfulness_correlation"),
                net,
                x,
                y,
                a,
                device="cuda",
            ),
        ),
        (
            "pixel_flipping",
            lambda: metrics.pixel_flipping(model, expl, features_per_step=STEP, baseline=0.0),
            lambda: _call(
                _quantus_metric("pixel_flipping"),
                net,
                x,
                y,
                a,
                device="cuda",
            ),
        ),
        (
            "max_sensitivity",
            lambda: metrics.max_sensitivity(
                model, expl, n_samples=SAMPLES, radius=RADIUS, random_state=0
            ),
            lambda: _call(
                _quantus_metric("max_sensitivity"),
                net,
                x,
                y,
                a,
                device="cuda",
                explain_func=ig,
            ),
        ),
    ]
    section = Section(
        title="GPU metrics vs quantus",
        description="The CPU table's workload on CUDA: the reference CNN (2 epochs) on 50 "
        "`digits(28)` images, IG with 16 steps (both libraries re-run lumos' IG for "
        'max-sensitivity), quantus with `device="cuda"`.',
        header=["metric", "lumos", "quantus", "quantus ÷ lumos"],
    )
    for name, ours, theirs in cases:
        t_ours, t_theirs = _sync_time(ours, repeats=3), _sync_time(theirs, repeats=3)
        section.rows.append([name, fmt_s(t_ours), fmt_s(t_theirs), f"{t_theirs / t_ours:.1f}×"])
    net.to("cpu")
    return section


def gradient_timings() -> Section:
    """Gradient explainers against captum on the GPU, 100 images of the reference CNN."""
    from captum.attr import (
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Saliency,
    )

    digits = datasets.digits(28)
    x = digits.x_test[:100]
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0).to("cuda")
    model = lumos.wrap(net, device="cuda")
    tx = torch.tensor(x, dtype=torch.float32, device="cuda")
    target = 3
    sigma = 0.15 * float(np.mean(x.reshape(100, -1).max(1) - x.reshape(100, -1).min(1)))
    layer = dict(net.named_modules())["features.3"]

    def cam() -> None:
        m = LayerGradCam(net, layer).attribute(tx, target=target, relu_attributions=True)
        LayerAttribution.interpolate(m, (28, 28), interpolate_mode="bilinear")

    cases = [
        (
            "saliency",
            {},
            lambda: Saliency(net).attribute(tx, target=target),
        ),
        (
            "integrated_gradients",
            {"n_steps": 50},
            lambda: IntegratedGradients(net).attribute(
                tx, target=target, n_steps=50, internal_batch_size=1000
            ),
        ),
        (
            "smoothgrad",
            {"n_samples": 50, "random_state": 0},
            lambda: NoiseTunnel(Saliency(net)).attribute(
                tx,
                target=target,
                nt_type="smoothgrad",
                nt_samples=50,
                stdevs=sigma,
                nt_samples_batch_size=50,
            ),
        ),
        ("grad_cam", {"layer": "features.3"}, cam),
    ]
    section = Section(
        title="GPU gradient explainers vs captum",
        description="The reference CNN on 100 `digits(28)` images, target 3, on CUDA. captum "
        "runs with the inputs already on the GPU (IG with internal_batch_size=1000, the noise "
        "tunnel 50 samples per call); lumos from numpy inputs with its default chunk. Best of "
        "10 calls after 5 warm-up calls each.",
        header=["method", "lumos", "captum", "captum ÷ lumos"],
    )
    available = lumos.available_methods()
    for method, kw, theirs in cases:
        if method not in available:
            continue

        def ours(method: str = method, kw: dict = kw) -> None:
            lumos.explain(model, x, method=method, target=target, **kw)

        # a few milliseconds each: the first calls of a method on the GPU run slow (Grad-CAM:
        # ~6 ms for its first five or so, then ~2 ms), so 5 warm-up calls, best of 10
        t_ours = _sync_time(ours, repeats=10, warmup=5)
        t_theirs = _sync_time(theirs, repeats=10, warmup=5)
        section.rows.append([method, fmt_s(t_ours), fmt_s(t_theirs), f"{t_theirs / t_ours:.1f}×"])
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 2
    sections = [
        checks(),
        explainer_checks(),
        metric_checks(),
        throughput(),
        ablation(),
        gradient_timings(),
        metric_timings(),
    ]
    text = [
        f"Recorded on {datetime.date.today().isoformat()} with `python -m benchmarks.gpu` on "
        f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}):",
        "",
        *machine(),
        "",
        *[s.markdown().replace("## ", "### ", 1) for s in sections],
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
