"""``lumos.evaluate``: several explanations scored on several metrics, one table.

Every metric runs inside one :func:`~lumos.metrics._base.sharing` block, so work two metrics
have in common (the rows' outputs, a removal curve, perturbed inputs and their
re-explanations) is done once; every stochastic metric gets the same ``random_state`` for
every method, so methods are compared on the same random draws.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos.errors import InputError, LumosError
from lumos.explanation import Explanation
from lumos.metrics._base import (
    _REGISTRY,
    CATEGORIES,
    MetricResult,
    callable_parameters,
    get_metric,
    rerun_problem,
    sharing,
)
from lumos.models.base import Model, wrap


@dataclass(eq=False)
class EvaluationTable:
    """Method × metric scores from :func:`evaluate`.

    Attributes
    ----------
    results : dict of (method, metric) to MetricResult
        Every score, per row.
    skipped : dict of (method, metric) to str
        Metrics not run for a method, with the reason (not applicable, or the error a metric
        raised when ``errors="skip"``).
    methods, metrics : list of str
        Row and column order.
    elapsed_s : float
    """

    results: dict[tuple[str, str], MetricResult]
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def __getitem__(self, key: tuple[str, str]) -> MetricResult:
        return self.results[key]

    def mean(self, method: str, metric: str) -> float:
        r = self.results.get((method, metric))
        return float("nan") if r is None else r.mean

    def ranks(self) -> dict[str, dict[str, float]]:
        """Per metric, each method's rank (1 = best, respecting ``higher_is_better``; ties
        share their mean rank; methods without a finite mean get NaN)."""
        from scipy.stats import rankdata

        out: dict[str, dict[str, float]] = {}
        for metric in self.metrics:
            scored = [
                (m, self.results[(m, metric)])
                for m in self.methods
                if (m, metric) in self.results and np.isfinite(self.results[(m, metric)].mean)
            ]
            col = {m: float("nan") for m in self.methods}
            if scored:
                hib = scored[0][1].higher_is_better
                values = np.array([r.mean for _, r in scored])
                r = rankdata(-values if hib else values)
                col.update({m: float(k) for (m, _), k in zip(scored, r, strict=True)})
            out[metric] = col
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One record per (method, metric): mean, stderr, rank, direction, category."""
        ranks = self.ranks()
        records = []
        for metric in self.metrics:
            for method in self.methods:
                r = self.results.get((method, metric))
                records.append(
                    {
                        "method": method,
                        "metric": metric,
                        "category": r.category if r else get_metric(metric).category,
                        "higher_is_better": (
                            r.higher_is_better if r else get_metric(metric).higher_is_better
                        ),
                        "mean": None if r is None or not np.isfinite(r.mean) else r.mean,
                        "stderr": None if r is None or not np.isfinite(r.stderr) else r.stderr,
                        "n_valid": None if r is None else r.n_valid,
                        "rank": None if np.isnan(ranks[metric][method]) else ranks[metric][method],
                        "skipped": self.skipped.get((method, metric)),
                    }
                )
        return records

    def to_frame(self) -> Any:
        """A pandas DataFrame with one row per (method, metric) (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is a dependency
            raise LumosError("to_frame() needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.rows())

    def to_json(self) -> str:
        """The records of :meth:`rows` as JSON."""
        return json.dumps(self.rows(), indent=2)

    def to_csv(self) -> str:
        """The records of :meth:`rows` as CSV text."""
        import csv
        import io

        buf = io.StringIO()
        fields = list(self.rows()[0]) if self.rows() else ["method", "metric"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for rec in self.rows():
            writer.writerow({k: "" if v is None else v for k, v in rec.items()})
        return buf.getvalue()

    def __str__(self) -> str:
        ranks = self.ranks()
        head = ["metric", *self.methods]
        lines = [head]
        for metric in self.metrics:
            arrow = "↑" if get_metric(metric).higher_is_better else "↓"
            row = [f"{metric} {arrow}"]
            for method in self.methods:
                r = self.results.get((method, metric))
                if r is None or not np.isfinite(r.mean):
                    row.append("—")
                else:
                    se = f" ± {r.stderr:.2g}" if np.isfinite(r.stderr) else ""
                    row.append(f"{r.mean:.4g}{se} (#{ranks[metric][method]:g})")
            lines.append(row)
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
        return "\n".join(text)

    def __repr__(self) -> str:
        return (
            f"EvaluationTable({len(self.methods)} methods × {len(self.metrics)} metrics, "
            f"{len(self.skipped)} skipped)"
        )


def _metric_requests(metrics: Any) -> list[tuple[str, dict[str, Any]]]:
    if metrics is None or (isinstance(metrics, str) and metrics in ("all", "all applicable")):
        order = {c: i for i, c in enumerate(CATEGORIES)}
        names = sorted(_REGISTRY, key=lambda n: (order[_REGISTRY[n].category], n))
        return [(n, {}) for n in names]
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    else:
        items = [(m, {}) if isinstance(m, str) else tuple(m) for m in metrics]
    out = []
    for name, params in items:
        get_metric(name)  # unknown names fail here, before any work
        if not isinstance(params, Mapping):
            raise InputError(
                f"parameters of metric {name!r} must be a dict, got {type(params).__name__}."
            )
        out.append((name, dict(params)))
    if not out:
        raise InputError("no metrics requested; pass metric names or 'all'.")
    return out


def evaluate(
    model: Any,
    explanations: Mapping[str, Explanation] | Explanation,
    metrics: Any = "all",
    *,
    ground_truth: Any = None,
    explainers: Mapping[str, Any] | None = None,
    random_state: Any = 0,
    batch_size: int | None = None,
    errors: str | None = None,
) -> EvaluationTable:
    """Score explanations on metrics: a method × metric table.

    Parameters
    ----------
    model : object
        The explained model (anything :func:`lumos.wrap` accepts).
    explanations : dict of str to Explanation, or one Explanation
        The explanations to compare, by a display name (one is named by its method).
    metrics : "all", list of str, or dict of str to dict
        Metric names (see :func:`lumos.metrics.available_metrics`), optionally with their
        parameters (``{"deletion": {"baseline": "blurred"}}``). ``"all"``: every metric
        applicable to the explanations (image-only metrics on images, ground-truth metrics
        when ``ground_truth`` is given, ...); explicitly requested metrics that do not apply
        are reported in ``skipped``.
    ground_truth : array, optional
        Passed to localisation metrics (masks, or truly relevant features).
    explainers : dict of str to explainer, optional
        Per explanation name, what metrics that re-run an explainer should run (a method
        name, an Explainer, or a function ``f(x, target) -> attributions``); default: each
        explanation's own method with its parameters.
    random_state : int, Generator or None, default 0
        Given to every stochastic metric, the same for every method (common random draws).
    batch_size : int, optional
        Rows per model call, for every metric that takes it.
    errors : {"raise", "skip"}, optional
        What a metric's lumos error does: ``"raise"`` stops the evaluation, ``"skip"``
        records it in ``skipped`` and goes on. Default: ``"skip"`` with ``metrics="all"``
        (a metric that cannot score one explanation, e.g. input invariance of a Keras model,
        does not stop the others), ``"raise"`` for metrics named explicitly.

    Returns
    -------
    EvaluationTable
    """
    from lumos.attribution._base import _REGISTRY as METHODS

    start = time.perf_counter()
    if errors not in (None, "raise", "skip"):
        raise InputError(f"errors must be 'raise' or 'skip', got {errors!r}.")
    if isinstance(explanations, Explanation):
        explanations = {explanations.method: explanations}
    if not isinstance(explanations, Mapping) or not explanations:
        raise InputError(
            "explanations must be a non-empty dict of name -> Explanation (or one Explanation)."
        )
    for name, e in explanations.items():
        if not isinstance(e, Explanation):
            raise InputError(
                f"explanations[{name!r}] is a {type(e).__name__}, not a lumos Explanation; build "
                "one with lumos.Explanation(values=..., data=..., target=...)."
            )
    explainers = dict(explainers or {})
    unknown = sorted(set(explainers) - set(explanations))
    if unknown:
        raise InputError(f"explainers names {unknown} match no explanation.")
    m: Model = wrap(model)
    requests = _metric_requests(metrics)
    implicit = metrics is None or (
        isinstance(metrics, str) and metrics in ("all", "all applicable")
    )
    if errors is None:
        errors = "skip" if implicit else "raise"
    table = EvaluationTable(results={}, methods=list(explanations))
    with sharing():
        for metric_name, params in requests:
            info = get_metric(metric_name)
            accepted = inspect.signature(info.func).parameters
            ran = False
            for method, expl in explanations.items():
                explainer = explainers.get(method)
                problem = rerun_problem(expl, explainer)
                ok, why = info.applicable(
                    expl, m, has_ground_truth=ground_truth is not None, has_explainer=not problem
                )
                if (
                    not ok
                    and problem
                    and "explainer" in info.requires
                    and why.startswith("needs an")
                ):
                    why = problem
                if ok and "stochastic" in info.requires:
                    ok, why = _stochastic(expl, explainer, METHODS)
                if not ok:
                    if not implicit:
                        table.skipped[(method, metric_name)] = why
                    continue
                kwargs = dict(params)
                if "random_state" in accepted:
                    kwargs.setdefault("random_state", random_state)
                if "batch_size" in accepted and batch_size is not None:
                    kwargs.setdefault("batch_size", batch_size)
                if "ground_truth" in accepted and ground_truth is not None:
                    kwargs.setdefault("ground_truth", ground_truth)
                if "explainer" in accepted and explainer is not None:
                    kwargs.setdefault("explainer", explainer)
                try:
                    table.results[(method, metric_name)] = info.func(m, expl, **kwargs)
                    ran = True
                except LumosError as exc:
                    if errors == "raise":
                        raise
                    table.skipped[(method, metric_name)] = f"{type(exc).__name__}: {exc}"
            if ran or not implicit:
                table.metrics.append(metric_name)
    table.elapsed_s = time.perf_counter() - start
    return table


def _stochastic(expl: Explanation, explainer: Any, methods: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the explainer behind ``expl`` draws random numbers (takes a seed)."""
    if explainer is None:
        explainer = expl.method
    if isinstance(explainer, str):
        cls = methods.get(explainer)
        ok = bool(getattr(cls, "stochastic", False))
    else:
        ok = bool(getattr(explainer, "stochastic", False)) or (
            callable(explainer) and "random_state" in callable_parameters(explainer)
        )
    return ok, "" if ok else "needs a stochastic explainer (one that takes random_state)"
