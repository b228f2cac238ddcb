"""Plain-language reading of the results: which explanation method to trust, and caveats.

Rules (each one is stated in the text it produces, so a reader can check it):

* A method **fails the randomisation sanity check** (Adebayo et al. 2018) when its maps stay
  similar to the original after every layer of the model has been randomised: mean
  ``model_randomisation`` similarity above :data:`SANITY_LIMIT`.
* Among the methods that pass (all of them when none was checked), the one to trust has the
  best mean rank over the faithfulness metrics; ties go to the better mean rank over the
  robustness metrics, then to the name.
* Caveats are raised for low surrogate fidelity, unstable surrogate features, methods that
  disagree, stochastic explanations whose top features change from seed to seed, a poorly
  calibrated or inaccurate model, and every failed sanity check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumos.explanation import GlobalExplanation

#: Mean similarity after full randomisation above which a method fails the sanity check.
SANITY_LIMIT = 0.5
#: Held-out fidelity below which a surrogate's rules are called a rough sketch.
FIDELITY_LIMIT = 0.8
#: Mean Jaccard overlap of bootstrap top-k sets below which features are called unstable.
STABILITY_LIMIT = 0.6
#: Spearman agreement between global methods below which they are said to disagree.
AGREEMENT_LIMIT = 0.5
#: Seed-to-seed top-k overlap below which a stochastic explanation is called unstable.
SEED_LIMIT = 0.7
#: Expected calibration error above which probabilities are called poorly calibrated.
ECE_LIMIT = 0.1


@dataclass
class Verdict:
    """Which method to trust and why, plus the caveats.

    Attributes
    ----------
    best : str or None
        The method to trust (None when no faithfulness metric was scored).
    text : str
        One paragraph saying so, with the numbers behind it.
    failed_sanity : dict of str to float
        Methods failing the randomisation check, with their similarity.
    caveats : list of str
    """

    best: str | None
    text: str
    failed_sanity: dict[str, float] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)


def _category_ranks(table: Any, category: str) -> dict[str, float]:
    """Mean rank of each method over the metrics of ``category`` it was scored on."""
    ranks = table.ranks()
    out: dict[str, list[float]] = {m: [] for m in table.methods}
    for metric in table.metrics:
        results = [table.results.get((m, metric)) for m in table.methods]
        if not any(r is not None and r.category == category for r in results):
            continue
        for m in table.methods:
            r = ranks[metric][m]
            if np.isfinite(r):
                out[m].append(r)
    return {m: float(np.mean(v)) for m, v in out.items() if v}


def decide(table: Any) -> Verdict:
    """The method to trust from an :class:`~lumos.metrics.EvaluationTable`.

    Parameters
    ----------
    table : EvaluationTable

    Returns
    -------
    Verdict
    """
    failed: dict[str, float] = {}
    checked: dict[str, float] = {}
    for m in table.methods:
        r = table.results.get((m, "model_randomisation"))
        if r is not None and np.isfinite(r.mean):
            checked[m] = r.mean
            if r.mean > SANITY_LIMIT:
                failed[m] = r.mean
    faith = _category_ranks(table, "faithfulness")
    robust = _category_ranks(table, "robustness")
    candidates = [m for m in table.methods if m in faith and m not in failed]
    caveats = [
        f"{m} fails the randomisation sanity check: after every layer of the model is "
        f"randomised its maps keep a similarity of {s:.2f} (> {SANITY_LIMIT}) with the "
        "originals, so they show the input more than what the model learnt."
        for m, s in failed.items()
    ]
    if not faith:
        return Verdict(
            best=None,
            text="No faithfulness metric was scored, so no method can be recommended.",
            failed_sanity=failed,
            caveats=caveats,
        )
    if not candidates:
        candidates = [m for m in table.methods if m in faith]
    best = min(candidates, key=lambda m: (faith[m], robust.get(m, np.inf), m))
    n_faith = sum(
        1
        for metric in table.metrics
        if any(
            (r := table.results.get((m, metric))) is not None and r.category == "faithfulness"
            for m in table.methods
        )
    )
    firsts = [
        metric
        for metric in table.metrics
        if table.ranks()[metric].get(best) == 1.0
        and table.results.get((best, metric)) is not None
        and table.results[(best, metric)].category == "faithfulness"
    ]
    parts = [
        f"Trust {best} most for this model: it has the best mean rank over the "
        f"{n_faith} faithfulness metric(s) ({faith[best]:.1f}; 1 is best) and is first on "
        f"{len(firsts)} of them{(' (' + ', '.join(firsts) + ')') if firsts else ''}."
    ]
    if best in checked:
        parts.append(
            f"It passes the randomisation sanity check (similarity {checked[best]:.2f} after "
            "randomising every layer)."
        )
    elif failed and best not in failed:
        parts.append("It was not checked for randomisation.")
    if best in failed:
        parts.append(
            "Every method failed the randomisation sanity check, so this recommendation is weak."
        )
    if best in robust:
        parts.append(f"Its mean robustness rank is {robust[best]:.1f}.")
    if failed:
        parts.append("Treat " + ", ".join(sorted(failed)) + " with caution (see the caveats).")
    return Verdict(best=best, text=" ".join(parts), failed_sanity=failed, caveats=caveats)


def caveats(
    *,
    surrogate: GlobalExplanation | None = None,
    agreement: Any = None,
    table: Any = None,
    performance: Mapping[str, float] | None = None,
) -> list[str]:
    """Caveats from the surrogate, the agreement between methods, the evaluation table and
    the model's performance (each argument optional)."""
    out: list[str] = []
    if surrogate is not None and surrogate.fidelity is not None:
        if surrogate.fidelity < FIDELITY_LIMIT:
            out.append(
                f"The surrogate ({surrogate.method}) matches the model on only "
                f"{surrogate.fidelity:.0%} of held-out rows (< {FIDELITY_LIMIT:.0%}): read its "
                "rules as a rough sketch of the model, not as the model."
            )
        stability = surrogate.info.get("stability")
        if stability is not None and stability < STABILITY_LIMIT:
            out.append(
                f"The surrogate's top features change between bootstrap refits (mean overlap "
                f"{stability:.2f} < {STABILITY_LIMIT}): its feature ranking is unstable."
            )
    if agreement is not None and len(agreement):
        # disagreement: the rankings differ overall AND their top features differ (a sparse
        # method such as a tree ranks its unused features arbitrarily, which alone lowers
        # the Spearman correlation without any disagreement on what matters)
        low = agreement["spearman"] < AGREEMENT_LIMIT
        if "top_k_overlap" in agreement:
            low &= agreement["top_k_overlap"] < AGREEMENT_LIMIT
        for _, row in agreement[low].iterrows():
            overlap = (
                f", top-k overlap {row['top_k_overlap']:.2f}" if "top_k_overlap" in row else ""
            )
            out.append(
                f"{row['method_a']} and {row['method_b']} disagree on which features matter "
                f"(Spearman {row['spearman']:.2f}{overlap}, both < {AGREEMENT_LIMIT}): do not "
                "rely on either ranking alone."
            )
    if table is not None:
        for m in table.methods:
            r = table.results.get((m, "seed_consistency"))
            if r is not None and np.isfinite(r.mean) and r.mean < SEED_LIMIT:
                out.append(
                    f"{m} is stochastic and its top features change from seed to seed (mean "
                    f"overlap {r.mean:.2f} < {SEED_LIMIT}): average several seeds."
                )
    if performance:
        ece = performance.get("expected_calibration_error")
        if ece is not None and np.isfinite(ece) and ece > ECE_LIMIT:
            out.append(
                f"The model's probabilities are poorly calibrated (expected calibration error "
                f"{ece:.3f} > {ECE_LIMIT}): its confidence is not a probability of being right."
            )
        acc = performance.get("balanced_accuracy")
        if acc is not None and np.isfinite(acc) and acc < 0.7:
            out.append(
                f"The model itself is weak (balanced accuracy {acc:.2f}): explanations describe "
                "what it does, not what is true."
            )
    return out
