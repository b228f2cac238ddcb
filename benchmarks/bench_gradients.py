"""Gradient explainers side by side with captum on the reference CNN over digit images.

Three sections: forward + backward throughput per chunk size (the floor's chunk comes from
it), saliency / integrated gradients / SmoothGrad / Grad-CAM against captum (one image per
call, all images in one call, and captum's own batching), and peak memory of integrated
gradients on many images, each configuration in a fresh process.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from captum.attr import Saliency as CaptumSaliency

import lumos
from benchmarks._common import Section, fmt_s, interleaved_best_times
from lumos import _batching, datasets, zoo
from lumos.attribution._autograd import gradient_batch_size

ROOT = Path(__file__).resolve().parent.parent
N_STEPS = 50
N_SAMPLES = 50
NOISE_LEVEL = 0.15
#: Rows a lumos run in the memory section sends per forward + backward pass.
MEMORY_BATCH = 256


# --------------------------------------------------------------------------- helpers


def _trained_cnn(digits: Any) -> torch.nn.Module:
    """The reference CNN after a short training on digits (~93% test accuracy), so the
    gradients are those of a network that has learnt something."""
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    zoo.fit(
        net,
        digits.x_train,
        digits.y_train,
        epochs=3,
        batch_size=64,
        learning_rate=3e-3,
        progress=False,
    )
    return net


def _fwd_bwd(
    net: torch.nn.Module, points: torch.Tensor, target: torch.Tensor, chunk: int
) -> Callable[[], None]:
    """The floor: forward + backward of pre-built ``points`` through the bare module,
    ``chunk`` rows per pass, differentiating each point's target output (what every
    gradient method needs at least once per point)."""

    def go() -> None:
        for s in range(0, len(points), chunk):
            xc = points[s : s + chunk].detach().requires_grad_(True)
            y = net(xc)
            torch.autograd.grad(y.gather(1, target[s : s + chunk, None]).sum(), xc)

    return go


def _ig_path(x: np.ndarray) -> torch.Tensor:
    """The points of integrated gradients from a zero baseline on images ``x`` (n, C, H, W):
    the ``N_STEPS`` Gauss–Legendre nodes of each image, image by image (n N_STEPS, C, H, W)."""
    alphas, _ = np.polynomial.legendre.leggauss(N_STEPS)
    alphas = (0.5 * alphas + 0.5).astype(np.float32)
    return torch.as_tensor(
        (alphas[None, :, None, None, None] * x[:, None]).reshape(-1, *x.shape[1:])
    )


def _layer_fwd_bwd(
    net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, chunk: int
) -> Callable[[], None]:
    """Grad-CAM's floor: the stem up to ``features.3`` without autograd, then forward +
    backward of the rest differentiating with respect to that layer's output."""
    stem = net.features[:4]
    head = torch.nn.Sequential(net.features[4:], net.classifier)

    def go() -> None:
        for s in range(0, len(x), chunk):
            with torch.no_grad():
                a = stem(x[s : s + chunk])
            a.requires_grad_(True)
            y = head(a)
            torch.autograd.grad(y.gather(1, target[s : s + chunk, None]).sum(), a)

    return go


def _ratio(a: float | None, b: float) -> str:
    return "—" if a is None else f"{a / b:.1f}×"


# --------------------------------------------------------------------------- chunk study


def _defaults(net: torch.nn.Module, row: np.ndarray) -> tuple[int, int]:
    """Rows per pass of the engine's forward-only default and of lumos' gradient default
    for ``net`` on rows like ``row`` (shape (1, *input_shape))."""
    model = lumos.wrap(net)
    model.check_input(row)  # the input shape fixes the element budget's row count
    return model.resolve_batch_size(None), gradient_batch_size(model, None)


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _chunk_study(quick: bool, cnn: torch.nn.Module, digits: Any) -> tuple[Section, int]:
    """Points/s of forward + backward per chunk size; returns the CNN's fastest chunk."""
    mlp = zoo.torch_mlp(784, 10, seed=0)
    cases = [
        ("CNN 1×28×28 (8, 16 channels)", cnn, digits.x_train, 1024 if quick else 4096),
        ("MLP 784→128→64→10", mlp, digits.x_train.reshape(-1, 784), 4096 if quick else 16384),
    ]
    sizes = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
    fwd, grad = _defaults(cnn, digits.x_train[:1])
    section = Section(
        title="Forward + backward throughput per chunk size",
        description=(
            "The bare torch module, forward + `torch.autograd.grad` of each row's target "
            "output with respect to the input, over pre-built float32 rows of `digits(28)`, "
            "`chunk` rows per pass (the work every gradient method does once per point). "
            "Each chunk size keeps its best time over interleaved rounds (all sizes once "
            "per round, `interleaved_best_times`). Marked: the engine's forward-only default "
            f"chunk ({_batching.DEFAULT_ELEMENT_BUDGET:,} input elements per call: {fwd} rows "
            "of 784 inputs) and the default chunk of lumos' gradient passes "
            f"(`_autograd.gradient_batch_size`: {grad} rows of 784 inputs)."
        ),
        header=[
            "network",
            "points",
            "chunk (rows)",
            "input elements",
            "time",
            "points/s",
            "÷ best",
        ],
    )
    best_cnn = fwd
    loads = [_load()]
    for name, net, pool, n_points in cases:
        fwd, grad = _defaults(net, pool[:1])
        marks = {fwd: "forward default", grad: "gradient default"}
        if fwd == grad:
            marks = {fwd: "forward and gradient default"}
        reps = -(-n_points // len(pool))
        pts = torch.as_tensor(np.concatenate([pool] * reps)[:n_points], dtype=torch.float32)
        tgt = torch.as_tensor(np.tile(digits.y_train, reps)[:n_points], dtype=torch.int64)
        configs = sorted({c for c in [*sizes, *marks] if c <= n_points})
        timed = interleaved_best_times(
            {str(c): _fwd_bwd(net, pts, tgt, c) for c in configs}, rounds=2 if quick else 3
        )
        times = {c: timed[str(c)] for c in configs}
        best = min(times, key=lambda c: times[c])
        for c in configs:
            t = times[c]
            section.rows.append(
                [
                    name,
                    f"{n_points:,}",
                    f"{c} ({marks[c]})" if c in marks else str(c),
                    f"{c * 784:,}",
                    fmt_s(t),
                    f"{n_points / t:,.0f}",
                    f"{t / times[best]:.2f}",
                ]
            )
        near = [c for c in configs if times[c] <= 1.1 * times[best]]
        versus = "; ".join(
            f"the {label} ({c} rows) takes {times[c] / times[best]:.2f}× the fastest"
            for c, label in marks.items()
            if c in times
        )
        section.notes.append(
            f"{name}: fastest chunk {best} rows ({best * 784:,} input elements); within 10% of "
            f"it: {min(near)}–{max(near)} rows; {versus}."
        )
        if net is cnn:
            best_cnn = best
        loads.append(_load())
    section.notes.append(
        f"1-minute load average of this {os.cpu_count()}-core machine before, between and "
        f"after the two networks: {', '.join(loads)}. With other work running, torch's "
        "threads wait for each other at every operation and small chunks suffer most: the "
        "fastest chunk then moves up and the points/s fall several-fold, so read this table "
        "from a run on a quiet machine."
    )
    return section, best_cnn


# --------------------------------------------------------------------------- methods


def _methods(quick: bool, net: torch.nn.Module, digits: Any, chunk: int) -> Section:
    """lumos vs captum per method, all variants and the floor timed in interleaved rounds."""
    try:  # Grad-CAM is measured when its module exists (importing it registers "grad_cam")
        importlib.import_module("lumos.attribution.cam")
        has_cam = True
    except ImportError:
        has_cam = False
    n = 20 if quick else 100
    ig_sizes = (1, 20) if quick else (1, 10, 100)
    x_all = digits.x_test[: max(n, *ig_sizes)].astype(np.float32)
    y_all = digits.y_test[: len(x_all)].astype(np.int64)
    model = lumos.wrap(net)
    lumos_chunk = _defaults(net, x_all[:1])[1]
    load_start = _load()
    ranges = x_all.reshape(len(x_all), -1)
    ranges = ranges.max(axis=1) - ranges.min(axis=1)
    stdev = float(NOISE_LEVEL * np.median(ranges))
    # the floor's chunk: the fastest of a few around the study's fastest; captum's batch
    # parameter: a few values from that chunk up; the best of each is kept
    floor_chunks = sorted({chunk, 128, 256})
    batch_candidates = sorted({chunk, 4 * chunk})
    section = Section(
        title="Gradient methods vs captum",
        description=(
            "The reference CNN (`zoo.torch_cnn((1, 28, 28), 10, seed=0)`, trained 3 epochs on "
            "`digits(28)` with `zoo.fit`, ~93% test accuracy, softmax output) on `digits(28)` "
            "test images, target the true class. Integrated gradients: zero baseline, "
            f"{N_STEPS} Gauss–Legendre steps (captum's default rule). SmoothGrad: "
            f"{N_SAMPLES} noisy copies of absolute-gradient saliency. Grad-CAM: layer "
            "`features.3` (the last convolution), ReLU, bilinear upsampling (captum: "
            "`LayerGradCam(relu_attributions=True)` + `LayerAttribution.interpolate(..., "
            '"bilinear")`). captum runs three ways: one image per call (a loop over the '
            "images), all images in one call (captum's default: one batch of every point), "
            "and batched with its own parameter (`internal_batch_size` = B for IG, "
            "`nt_samples_batch_size` = B ÷ images for SmoothGrad; the best of B in "
            f"{batch_candidates} is shown). lumos runs with its default chunk ({lumos_chunk} "
            "rows per pass; IG never splits one image's steps). The floor is "
            "forward + "
            "backward of the same points through the bare module, pre-built, at the fastest "
            f"of {floor_chunks} rows per pass (capped at the number of points; shown in "
            "brackets). lumos, the floor at each chunk and every captum "
            "variant of a row are timed in interleaved rounds (each once per round, in a "
            f"random order, at least {5 if not quick else 3} rounds, best time kept), so a slow "
            "spell of the machine hits them alike and none always follows the same one."
        ),
        header=[
            "method",
            "images",
            "points",
            "lumos",
            "captum, 1 image/call",
            "÷ lumos",
            "captum, one call",
            "÷ lumos",
            "captum, batched",
            "÷ lumos",
            "floor (chunk)",
            "lumos ÷ floor",
        ],
    )
    agree: list[str] = []

    def add_row(
        method: str,
        k: int,
        ours: Callable[[], Any],
        per_image: Callable[[], Any] | None,
        one_call: Callable[[], Any],
        batched: Callable[[int], Any] | None,
        batch_label: Callable[[int], str],
        floor_at: Callable[[int], Callable[[], Any]],
        m: int,
    ) -> None:
        chunks = sorted({min(c, m * k) for c in floor_chunks})
        fns = {"lumos": ours, "one call": one_call}
        fns.update({f"floor {c}": floor_at(c) for c in chunks})
        if per_image is not None:
            fns["per image"] = per_image
        if batched is not None:
            fns.update({f"batch {b}": partial(batched, b) for b in batch_candidates})
        t = interleaved_best_times(
            fns, rounds=3 if quick else 5, budget_s=1.0 if quick else 4.0, max_rounds=100
        )
        t_ours, t_one = t["lumos"], t["one call"]
        c_floor = min(chunks, key=lambda c: t[f"floor {c}"])
        t_floor = t[f"floor {c_floor}"]
        t_img = t.get("per image")
        t_bat, label = None, "—"
        if batched is not None:
            b_best = min(batch_candidates, key=lambda b: t[f"batch {b}"])
            t_bat = t[f"batch {b_best}"]
            label = f"{fmt_s(t_bat)} ({batch_label(b_best)})"
        section.rows.append(
            [
                method,
                str(m),
                f"{m * k:,}",
                fmt_s(t_ours),
                "—" if t_img is None else fmt_s(t_img),
                _ratio(t_img, t_ours),
                fmt_s(t_one),
                _ratio(t_one, t_ours),
                label,
                _ratio(t_bat, t_ours),
                f"{fmt_s(t_floor)} ({c_floor})",
                f"{t_ours / t_floor:.2f}",
            ]
        )
        if method == "integrated_gradients":
            parts = [f"one call {t_one / t_floor:.1f}×"]
            if t_img is not None:
                parts.insert(0, f"1 image/call {t_img / t_floor:.1f}×")
            if t_bat is not None:
                parts.append(f"batched {t_bat / t_floor:.1f}×")
            section.notes.append(
                f"captum IG on {m} image(s) ÷ the floor: {', '.join(parts)} (lumos "
                f"{t_ours / t_floor:.2f}×)."
            )

    # ---- saliency
    x, y = x_all[:n], y_all[:n]
    tx, ty = torch.as_tensor(x), torch.as_tensor(y)
    sal = CaptumSaliency(net)
    ours = partial(lumos.explain, model, x, method="saliency", target=y)
    a, b = ours().values, sal.attribute(tx, target=ty).numpy()
    np.testing.assert_allclose(a, b, atol=1e-6 * np.abs(b).max())
    agree.append(f"saliency {np.abs(a - b).max():.1e} (max |value| {np.abs(b).max():.2g})")
    add_row(
        "saliency",
        1,
        ours,
        lambda: [sal.attribute(tx[i : i + 1], target=int(ty[i])) for i in range(n)],
        lambda: sal.attribute(tx, target=ty),
        None,
        str,
        partial(_fwd_bwd, net, tx, ty),
        n,
    )

    # ---- integrated gradients, several numbers of images
    ig = CaptumIG(net)
    for m in ig_sizes:
        x, y = x_all[:m], y_all[:m]
        tx, ty = torch.as_tensor(x), torch.as_tensor(y)
        ours = partial(
            lumos.explain,
            model,
            x,
            method="integrated_gradients",
            target=y,
            n_steps=N_STEPS,
            rule="gausslegendre",
        )

        def theirs(
            ibs: int | None = None, tx: torch.Tensor = tx, ty: torch.Tensor = ty
        ) -> torch.Tensor:
            return ig.attribute(
                tx,
                target=ty,
                n_steps=N_STEPS,
                method="gausslegendre",
                internal_batch_size=ibs,
            )

        def per_image(tx: torch.Tensor = tx, ty: torch.Tensor = ty, m: int = m) -> list:
            return [
                ig.attribute(
                    tx[i : i + 1], target=int(ty[i]), n_steps=N_STEPS, method="gausslegendre"
                )
                for i in range(m)
            ]

        a, b = ours().values, theirs().detach().numpy()
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max())
        agree.append(
            f"IG on {m} image(s) {np.abs(a - b).max():.1e} (max |value| {np.abs(b).max():.2g})"
        )
        path = _ig_path(x)
        add_row(
            "integrated_gradients",
            N_STEPS,
            ours,
            per_image,
            theirs,
            theirs,
            lambda b, m=m: (
                f"internal_batch_size={b}: {min(N_STEPS, max(1, b // m)) * m} points/pass"
            ),
            partial(_fwd_bwd, net, path, ty.repeat_interleave(N_STEPS)),
            m,
        )

    # ---- integrated gradients one image per call, over a stream of images
    m = 5 if quick else 10
    xs, ys = x_all[:m], y_all[:m]
    txs, tys = torch.as_tensor(xs), torch.as_tensor(ys)
    stream_path = _ig_path(xs)

    def lumos_stream() -> None:
        for i in range(m):
            lumos.explain(model, xs[i : i + 1], method="integrated_gradients",
                          target=ys[i : i + 1], n_steps=N_STEPS, rule="gausslegendre")  # fmt: skip

    def captum_stream() -> None:
        for i in range(m):
            ig.attribute(
                txs[i : i + 1], target=int(tys[i]), n_steps=N_STEPS, method="gausslegendre"
            )

    t = interleaved_best_times(
        {"lumos": lumos_stream, "captum": captum_stream,
         "floor": _fwd_bwd(net, stream_path, tys.repeat_interleave(N_STEPS), N_STEPS)},
        rounds=3 if quick else 5, budget_s=1.0 if quick else 4.0, max_rounds=100,
    )  # fmt: skip
    section.notes.append(
        f"Integrated gradients one image per call over {m} images (a loop of calls, as when "
        f"explaining a stream of images): lumos {fmt_s(t['lumos'])}, captum "
        f"{fmt_s(t['captum'])} ({t['captum'] / t['lumos']:.1f}× lumos), the floor ({m} passes "
        f"of {N_STEPS} points) {fmt_s(t['floor'])}: lumos ÷ floor {t['lumos'] / t['floor']:.2f}, "
        f"captum ÷ floor {t['captum'] / t['floor']:.2f}. Here each lumos call but the first "
        "follows another lumos call; in the 1-image row above every call follows other work."
    )

    # ---- SmoothGrad
    x, y = x_all[:n], y_all[:n]
    tx, ty = torch.as_tensor(x), torch.as_tensor(y)
    nt = NoiseTunnel(CaptumSaliency(net))

    def smooth(level: float, seed: int = 0) -> np.ndarray:
        return lumos.explain(
            model,
            x,
            method="smoothgrad",
            target=y,
            n_samples=N_SAMPLES,
            noise_level=level,
            random_state=seed,
        ).values

    def theirs_sg(
        bs: int | None = None, level: float = stdev, samples: int = N_SAMPLES
    ) -> torch.Tensor:
        return nt.attribute(
            tx,
            target=ty,
            nt_type="smoothgrad",
            nt_samples=samples,
            stdevs=level,
            nt_samples_batch_size=bs,
        )

    a, b = smooth(0.0), theirs_sg(level=0.0).numpy()
    np.testing.assert_allclose(a, b, atol=1e-6 * np.abs(b).max())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        c = theirs_sg().numpy()
    s0, s1 = smooth(NOISE_LEVEL, 0), smooth(NOISE_LEVEL, 1)
    d_peer = np.linalg.norm(s0 - c) / np.linalg.norm(c)
    d_seed = np.linalg.norm(s0 - s1) / np.linalg.norm(s1)
    assert d_peer < 1.5 * d_seed, (d_peer, d_seed)
    agree.append(
        f"SmoothGrad without noise {np.abs(a - b).max():.1e}; with noise (independent draws) "
        f"‖lumos − captum‖/‖captum‖ = {d_peer:.3f} against {d_seed:.3f} between two lumos "
        "seeds"
    )
    rng = np.random.default_rng(0)
    sigma = NOISE_LEVEL * ranges[:n].astype(np.float32)
    noisy = x[:, None] + sigma[:, None, None, None, None] * rng.standard_normal(
        (n, N_SAMPLES, *x.shape[1:]), dtype=np.float32
    )
    add_row(
        "smoothgrad",
        N_SAMPLES,
        partial(smooth, NOISE_LEVEL),
        lambda: [
            nt.attribute(
                tx[i : i + 1], target=int(ty[i]), nt_type="smoothgrad", nt_samples=N_SAMPLES
            )
            for i in range(n)
        ],
        theirs_sg,
        lambda b: theirs_sg(min(N_SAMPLES, max(1, b // n))),
        lambda b: (
            f"nt_samples_batch_size={min(N_SAMPLES, max(1, b // n))}: "
            f"{min(N_SAMPLES, max(1, b // n)) * n} points/pass"
        ),
        partial(
            _fwd_bwd,
            net,
            torch.as_tensor(noisy.reshape(-1, *x.shape[1:])),
            ty.repeat_interleave(N_SAMPLES),
        ),
        n,
    )

    # ---- Grad-CAM
    if has_cam:
        layer = net.features[3]
        gc = LayerGradCam(net, layer)

        def theirs_cam(tx: torch.Tensor = tx, ty: Any = ty) -> torch.Tensor:
            cam = gc.attribute(tx, target=ty, relu_attributions=True)
            return LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")

        ours = partial(lumos.explain, model, x, method="grad_cam", target=y, layer="features.3")
        a, b = ours().values, theirs_cam().detach().numpy()
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max())
        agree.append(f"Grad-CAM {np.abs(a - b).max():.1e} (max |value| {np.abs(b).max():.2g})")
        add_row(
            "grad_cam",
            1,
            ours,
            lambda: [theirs_cam(tx[i : i + 1], int(ty[i])) for i in range(n)],
            theirs_cam,
            None,
            str,
            partial(_layer_fwd_bwd, net, tx, ty),
            n,
        )
    else:
        section.notes.append(
            "grad_cam: not measured, `lumos.attribution.cam` could not be imported."
        )

    section.notes += [
        f"1-minute load average of this {os.cpu_count()}-core machine before and after the "
        f"timings: {load_start}, {_load()}.",
        "Values agree with captum before timing, max |lumos − captum|: " + "; ".join(agree) + ".",
        f"SmoothGrad noise: lumos draws σ = noise_level · (max x − min x) per row "
        f"(noise_level {NOISE_LEVEL}; the digits' per-row range is {ranges.min():.3f}–"
        f"{ranges.max():.3f}, median {np.median(ranges):.3f}); captum takes one scalar "
        f"`stdevs`, set to {NOISE_LEVEL} × the median range = {stdev:.4f}. The floor's noisy "
        "points use lumos' per-row σ.",
        "lumos ÷ floor counts everything lumos does beyond the floor's forward + backward "
        "passes: input checks, any further forward pass (each row's prediction where the "
        "method does not read it from its own pass; IG's f(baseline) for its completeness "
        "check), per-row sums in float64, the results' copy to numpy; SmoothGrad also "
        "draws its noise on the host, per row from the row's own seed. Integrated "
        "gradients can run below its floor: it sums each row's weighted path gradients at "
        "the output of the CNN's first convolution and sends that sum back through the "
        "convolution once per row and pass, where the floor (and captum) take the "
        "convolution's input gradient at every point. "
        "Grad-CAM's floor stops the backward pass at `features.3` (the stem runs without "
        "autograd), the least any Grad-CAM can do.",
        "captum's `internal_batch_size` splits the steps, not the points: a pass holds "
        "⌊internal_batch_size / images⌋ steps of every image (at least one), so with more "
        "images than `internal_batch_size` a pass is one step of all images.",
    ]
    return section


# --------------------------------------------------------------------------- memory


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status``, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def _memory_probe(config: str) -> None:
    """Run one memory configuration in this (fresh) process and print its memory as JSON.

    ``config`` is a JSON object: ``kind`` ("lumos" or "captum"), ``images``, ``batch``
    (lumos ``batch_size`` / captum ``internal_batch_size``, or null). After the imports, the
    data, the model and a one-image warm-up of the same method, the peak-RSS mark is reset
    (``/proc/self/clear_refs``), so the peak read afterwards is the attribution's own.
    """
    cfg = json.loads(config)
    digits = datasets.digits(28)
    net = zoo.torch_cnn((1, 28, 28), 10, seed=0)
    m = int(cfg["images"])
    reps = -(-m // len(digits.x_test))
    x = np.concatenate([digits.x_test] * reps)[:m].astype(np.float32)
    y = np.tile(digits.y_test, reps)[:m].astype(np.int64)

    def attribute(x: np.ndarray, y: np.ndarray) -> None:
        if cfg["kind"] == "lumos":
            lumos.explain(
                net,
                x,
                method="integrated_gradients",
                target=y,
                n_steps=N_STEPS,
                batch_size=cfg["batch"],
            )
        else:
            CaptumIG(net).attribute(
                torch.as_tensor(x),
                target=torch.as_tensor(y),
                n_steps=N_STEPS,
                internal_batch_size=cfg["batch"],
            )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attribute(x[:1], y[:1])  # one-time allocations (thread pools, kernels) happen here
        before = _status_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS mark (VmHWM, and ru_maxrss's own part)
        start = time.perf_counter()
        attribute(x, y)
        elapsed = time.perf_counter() - start
    out = {
        "before_mb": before,
        "peak_mb": _status_mb("VmHWM"),
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB
        "seconds": elapsed,
    }
    print(json.dumps(out))


def _probe(kind: str, images: int, batch: int | None) -> dict[str, float]:
    config = json.dumps({"kind": kind, "images": images, "batch": batch})
    code = f"from benchmarks.bench_gradients import _memory_probe; _memory_probe({config!r})"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _available_mb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memory(quick: bool) -> Section:
    big = 200 if quick else 2000
    small = (20, 40) if quick else (100, 200)
    available = _available_mb()
    section = Section(
        title="Integrated gradients: peak memory",
        description=(
            "Each configuration runs in a fresh Python process: imports, `digits(28)` test "
            f"images (tiled), the CNN, a one-image warm-up, then integrated gradients "
            f"({N_STEPS} steps) once. 'before' is the resident memory just before the call; "
            "'peak' the highest resident memory during it (the peak-RSS mark is reset after "
            "the warm-up through `/proc/self/clear_refs` and read from `VmHWM`). Not the "
            "process' `ru_maxrss`: a child started by a large benchmark process inherits the "
            "parent's high-water mark through fork + exec, which hides small peaks. The "
            "untrained CNN (`seed=0`) is used: memory does not depend on the weights."
        ),
        header=[
            "configuration",
            "images",
            "points",
            "largest pass (points)",
            "before",
            "peak",
            "peak − before",
            "time",
        ],
    )
    configs = [
        (f"lumos, batch_size={MEMORY_BATCH}", "lumos", big, MEMORY_BATCH, f"≤ {MEMORY_BATCH}"),
        *[
            ("captum, internal_batch_size=None (one call)", "captum", s, None, f"{s * N_STEPS:,}")
            for s in small
        ],
        (
            f"captum, internal_batch_size={MEMORY_BATCH}",
            "captum",
            big,
            MEMORY_BATCH,
            f"{max(1, MEMORY_BATCH // big) * big:,}",
        ),
    ]
    results = []
    for label, kind, images, batch, largest in configs:
        r = _probe(kind, images, batch)
        results.append(r)
        section.rows.append(
            [
                label,
                f"{images:,}",
                f"{images * N_STEPS:,}",
                largest,
                f"{r['before_mb']:,.0f} MB",
                f"{r['peak_mb']:,.0f} MB",
                f"{r['peak_mb'] - r['before_mb']:,.0f} MB",
                f"{r['seconds']:.2f} s",
            ]
        )
    (s1, s2), (r1, r2) = small, results[1:3]
    grow1, grow2 = (r["peak_mb"] - r["before_mb"] for r in (r1, r2))
    per_image = (grow2 - grow1) / (s2 - s1)
    extrapolated = grow2 + per_image * (big - s2)
    section.notes += [
        f"captum in one call holds every path point's activations and gradients at once: "
        f"{per_image:.1f} MB more per image ({per_image / N_STEPS * 1024:.0f} KiB per path "
        f"point) between {s1} and {s2} images. Extrapolated linearly, {big:,} images in one "
        f"call would need about {extrapolated:,.0f} MB above 'before' (this machine had "
        f"{available:,.0f} MB available when the section started); that run is not made. "
        f"lumos with batch_size={MEMORY_BATCH} holds one chunk's activations plus the "
        "per-row results, whatever the number of images.",
        "captum's `internal_batch_size` cannot make a pass smaller than the number of "
        f"images: with {big:,} images and internal_batch_size={MEMORY_BATCH} each pass holds "
        f"one step of all {big:,} images.",
    ]
    return section


def run(quick: bool = False) -> list[Section]:
    """Chunk study, the methods against captum, and the memory of many-image IG."""
    digits = datasets.digits(28)
    net = _trained_cnn(digits)
    with warnings.catch_warnings():
        # captum warns on every call that the inputs did not require gradients
        warnings.simplefilter("ignore", UserWarning)
        chunks, best = _chunk_study(quick, net, digits)
        methods = _methods(quick, net, digits, best)
    return [chunks, methods, _memory(quick)]
