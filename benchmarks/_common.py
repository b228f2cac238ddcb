"""Timing helpers and the BENCHMARKS.md writer shared by every benchmark."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """One benchmark's results: a heading, a paragraph, and a Markdown table."""

    title: str
    description: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.description, ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines.append("")
        lines += [f"- {n}" for n in self.notes]
        if self.notes:
            lines.append("")
        return "\n".join(lines)


def best_time(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> float:
    """Minimum wall time of ``repeats`` calls after ``warmup`` calls, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def paired_best_times(
    fn: Callable[[], Any], floor: Callable[[], Any], *, repeats: int = 5
) -> tuple[float, float]:
    """Best times of ``fn`` and ``floor``, measured alternately (after one warm-up each).

    On a shared machine the speed drifts by tens of percent within seconds; alternating the
    two measurements exposes both to the same drift, so their ratio is what it claims.
    """
    fn()
    floor()
    best_fn = best_floor = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best_fn = min(best_fn, time.perf_counter() - start)
        start = time.perf_counter()
        floor()
        best_floor = min(best_floor, time.perf_counter() - start)
    return best_fn, best_floor


def interleaved_best_times(
    fns: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 5,
    budget_s: float | None = None,
    max_rounds: int = 25,
) -> dict[str, float]:
    """Best time of each of several functions, measured in interleaved rounds.

    The many-way :func:`paired_best_times`: after one warm-up call each, every round times
    each function once, so a slow spell of a shared machine hits all of them alike and each
    minimum comes from a quiet moment. Ratios between the results compare like with like.
    Each round runs the functions in a fresh random order (seeded, so runs repeat): what
    one function leaves behind slows the next one (after captum's loop of one-image calls,
    thousands of small single-threaded operations, the next 100-image forward + backward
    takes ~1 ms longer, whichever library runs it), and a fixed rotation would always hand
    that cost to the same successor. With ``budget_s``, cheap sets of functions get more
    rounds: as many as fit in ``budget_s`` judging by the warm-up, at least ``rounds`` and
    at most ``max_rounds``.
    """
    names = list(fns)
    start = time.perf_counter()
    for name in names:
        fns[name]()
    if budget_s is not None:
        per_round = max(time.perf_counter() - start, 1e-6)
        rounds = int(min(max_rounds, max(rounds, budget_s // per_round)))
    best = dict.fromkeys(names, float("inf"))
    order = random.Random(0)
    for _ in range(rounds):
        for name in order.sample(names, len(names)):
            start = time.perf_counter()
            fns[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def model_floor(net: Any, inputs: Any, *, repeats: int = 3) -> float:
    """The model alone: one no-grad forward over all ``inputs``, pre-built as a float32 tensor.

    This is the floor every explainer is compared with: the same model evaluations with no
    explainer around them.
    """
    import torch

    t = torch.as_tensor(inputs, dtype=torch.float32)

    def go() -> None:
        with torch.no_grad():
            net(t)

    return best_time(go, repeats=repeats)


def machine() -> list[str]:
    """Lines describing the machine and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for pkg in ("lumos", "numpy", "torch", "keras", "captum", "shap", "lime", "quantus"):
        try:
            versions.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
        f"- {', '.join(versions)}",
    ]


def fmt_s(seconds: float) -> str:
    """Seconds with three significant figures, in ms below one second."""
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
