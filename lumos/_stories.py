"""The demo's further stories: images, a planted shortcut, accuracy vs interpretability.

Each function trains small reference networks from :mod:`lumos.zoo` on embedded or
generated data, explains and scores them, and returns a :class:`Story`: plain-language
sentences with the measured numbers, a table of facts, figures from :mod:`lumos.plots`,
longer notes and the key numbers. Nothing is hard-coded: every number in the text is
measured in the run. :func:`lumos.report` renders stories as sections after the main one.

* :func:`images_story` — story 2: what does the CNN look at? Gradient and perturbation maps
  on digits, the randomisation sanity check, localisation scored against known masks.
* :func:`shortcut_story` — story 3: a credit model with a leaked column; the explanations
  reveal that it leans on the leak, and accuracy collapses once the leak stops tracking the
  outcome.
* :func:`tradeoff_story` — story 4: the MLP trained at several L1 strengths; test accuracy
  against explanation sparseness and surrogate fidelity, as one plot.

Randomness: every step is seeded from ``seed`` (data, initial weights, training, explainers,
metrics); no global random state is read or changed.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError
from lumos.report._verdict import SANITY_LIMIT  # the report's limit: one rule for both

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SANITY_LIMIT", "Story", "add_leak", "images_story", "shortcut_story", "tradeoff_story"]


#: The image methods of story 2, by registry name, with their parameters.
IMAGE_METHODS: dict[str, dict[str, Any]] = {
    "saliency": {},
    "integrated_gradients": {"n_steps": 32},
    "grad_cam": {"layer": "features.3"},
    "occlusion": {"window": 4, "stride": 2},
}

#: Name of the leaked column added in story 3.
LEAK_NAME = "account_flag"


@dataclass
class Story:
    """One study of the demo, ready for :func:`lumos.report` (``stories=[...]``).

    Attributes
    ----------
    title : str
        Section heading, e.g. ``"Images: what does the CNN look at?"``.
    summary : list of str
        Two to four plain-language sentences with the measured numbers, also listed in the
        report's opening summary.
    facts : dict of str to str
        Key → value lines: data, model, training, accuracy, what was explained, run time.
    figures : dict of str to Figure
        Caption → matplotlib figure (from :mod:`lumos.plots`).
    notes : list of str
        Longer paragraphs explaining what the figures show.
    evaluation : EvaluationTable or None
        The method × metric table when the story scores explanation methods (the report
        states its verdict).
    numbers : dict of str to float
        The key measured numbers, by name (for tests and the command line).
    """

    title: str
    summary: list[str]
    facts: dict[str, str]
    figures: dict[str, Figure]
    notes: list[str]
    evaluation: Any = None
    numbers: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


class _Steps:
    """A Rich bar over a story's steps on stderr; a no-op when disabled or when another
    live display is running. :meth:`paused` hides it while :func:`lumos.zoo.fit` shows its
    own epoch bar."""

    def __init__(self, enabled: bool, title: str, total: int) -> None:
        self.progress: Any = None
        self.task: Any = None
        self.title = title
        if not enabled:
            return
        from rich.console import Console
        from rich.errors import LiveError
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        try:
            progress.start()
        except LiveError:
            return
        self.progress = progress
        self.task = progress.add_task(title, total=total)

    def step(self, what: str) -> None:
        """Start the step ``what`` (the previous one is counted as done)."""
        if self.progress is not None:
            task = self.progress.tasks[0]
            done = task.completed + (1 if task.description != self.title else 0)
            self.progress.update(self.task, completed=done, description=f"{self.title}: {what}")

    @contextmanager
    def paused(self) -> Iterator[bool]:
        """Hide the bar; yields whether a nested progress bar may be shown."""
        if self.progress is None:
            yield False
            return
        self.progress.stop()
        try:
            yield True
        finally:
            self.progress.start()

    def close(self) -> None:
        if self.progress is not None:
            total = self.progress.tasks[0].total
            self.progress.update(self.task, completed=total, description=f"{self.title}: done")
            self.progress.stop()
            self.progress = None


@contextmanager
def _steps(enabled: bool, title: str, total: int) -> Iterator[_Steps]:
    bar = _Steps(enabled, title, total)
    try:
        yield bar
    finally:
        bar.close()


def _train(
    bar: _Steps, progress: bool, net: Any, x: np.ndarray, y: np.ndarray, **kw: Any
) -> dict[str, Any]:
    """:func:`lumos.zoo.fit` with its own epoch bar while the story's bar is paused."""
    from lumos import zoo

    with bar.paused() as show:
        return zoo.fit(net, x, y, progress=bool(progress and show), **kw)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an int in [0, 2**32), got {seed!r}; e.g. seed=0.")
    return int(seed)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _pct(v: float) -> str:
    return f"{100.0 * v:.1f}%"


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _label(method: str) -> str:
    return {
        "saliency": "saliency",
        "integrated_gradients": "integrated gradients",
        "grad_cam": "Grad-CAM",
        "occlusion": "occlusion",
    }.get(method, method)


# --------------------------------------------------------------------------- story 2


def images_story(
    *,
    seed: int = 0,
    progress: bool = False,
    n_images: int = 8,
    epochs: int = 10,
    n_shapes: int = 3000,
    shape_epochs: int = 30,
    n_localise: int = 64,
) -> Story:
    """Story 2 — images: what does the CNN look at?

    1. The reference CNN (:func:`lumos.zoo.torch_cnn`, two conv/pool blocks) is trained on
       :func:`lumos.datasets.digits` (28×28) and the first ``n_images`` test images are
       explained by three gradient methods (saliency, integrated gradients with 32 steps,
       Grad-CAM on the last convolution ``"features.3"``) and one perturbation method
       (occlusion, 4×4 window, stride 2, zero baseline).
    2. Each method goes through the cascading model-randomisation test (Adebayo et al.
       2018; :func:`lumos.metrics.model_randomisation`, Spearman similarity of absolute
       maps): a method passes when its mean similarity once every layer is re-initialised
       is below 0.5. The deletion metric scores faithfulness; both are in
       :attr:`Story.evaluation`, whose verdict the report states.
    3. A second CNN of the same architecture is trained on
       :func:`lumos.datasets.synthetic_shapes` (32×32, three classes decided only by the
       shape's pixels) and the first ``n_localise`` test images are explained with the same
       methods and scored against the shapes' masks with
       :func:`lumos.metrics.relevance_mass_accuracy` and :func:`lumos.metrics.pointing_game`.
       Chance level of both is the share of the image the mask covers. The randomisation
       check is repeated on this model, whose background is grey rather than black.

    Parameters
    ----------
    seed : int, default 0
        Seeds data, weights, training, the randomisation and the metrics.
    progress : bool, default False
        Show a Rich bar over the steps and each training's epoch bar (stderr).
    n_images : int, default 8
        Digits test images explained and checked (the first 4 are drawn).
    epochs : int, default 10
        Maximum training epochs on digits (early stopping, patience 5).
    n_shapes : int, default 3000
        Images generated by ``synthetic_shapes`` (a quarter held out).
    shape_epochs : int, default 30
        Maximum training epochs on the shapes (early stopping, patience 8).
    n_localise : int, default 64
        Shapes test images explained and scored against their masks.

    Returns
    -------
    Story
        ``numbers``: ``digits_accuracy``, ``digits_epochs``, ``randomisation[<method>]``
        (similarity after full randomisation, lower is better), ``deletion[<method>]``,
        ``shapes_accuracy``, ``mask_fraction`` (chance level), ``relevance_mass[<method>]``,
        ``pointing_game[<method>]``, ``randomisation_shapes[<method>]`` (the same check on
        the shapes model), ``elapsed_s``. ``evaluation``: the digits table
        (``model_randomisation``, ``deletion``).
    """
    from lumos import datasets, plots, zoo
    from lumos.attribution import explain
    from lumos.metrics import evaluate
    from lumos.metrics import performance as perf
    from lumos.models import wrap

    seed = _check_seed(seed)
    n_images = _check_int(n_images, "n_images", 2)
    epochs = _check_int(epochs, "epochs", 1)
    n_shapes = _check_int(n_shapes, "n_shapes", 60)
    shape_epochs = _check_int(shape_epochs, "shape_epochs", 1)
    n_localise = _check_int(n_localise, "n_localise", 2)
    start = time.perf_counter()
    numbers_: dict[str, float] = {}

    with _steps(progress, "story 2 · images", 6) as bar:
        # ---- digits: train, explain, sanity check
        bar.step("training the CNN on digits")
        digits = datasets.digits(28, random_state=seed)
        net = zoo.torch_cnn((1, 28, 28), 10, seed=seed)
        hist = _train(
            bar, progress, net, digits.x_train, digits.y_train,
            epochs=epochs, batch_size=64, learning_rate=3e-3, seed=seed,
        )  # fmt: skip
        model = wrap(net, class_names=digits.class_names)
        acc = perf.accuracy(model, digits.x_test, digits.y_test)
        numbers_["digits_accuracy"] = acc
        numbers_["digits_epochs"] = float(hist["epochs_run"])

        bar.step("explaining digits")
        rows = digits.x_test[: min(n_images, len(digits.x_test))]
        maps = {name: explain(model, rows, method=name, **kw) for name, kw in IMAGE_METHODS.items()}

        bar.step("randomisation sanity check")
        table = evaluate(
            model, maps, {"model_randomisation": {}, "deletion": {}}, random_state=seed
        )
        sims = {m: table.mean(m, "model_randomisation") for m in maps}
        for m in maps:
            numbers_[f"randomisation[{m}]"] = sims[m]
            numbers_[f"deletion[{m}]"] = table.mean(m, "deletion")
        passed = [m for m in maps if sims[m] < SANITY_LIMIT]
        failed = [m for m in maps if not sims[m] < SANITY_LIMIT]

        # ---- shapes: train, explain, localisation against the masks
        bar.step("training the CNN on synthetic shapes")
        shapes = datasets.synthetic_shapes(n_shapes, 32, seed=seed)
        snet = zoo.torch_cnn((1, 32, 32), len(shapes.class_names), seed=seed)
        shist = _train(
            bar, progress, snet, shapes.x_train, shapes.y_train,
            epochs=shape_epochs, batch_size=32, learning_rate=2e-3, patience=8, seed=seed,
        )  # fmt: skip
        smodel = wrap(snet, class_names=shapes.class_names)
        sacc = perf.accuracy(smodel, shapes.x_test, shapes.y_test)
        numbers_["shapes_accuracy"] = sacc

        bar.step("explaining shapes")
        k = min(n_localise, len(shapes.x_test))
        srows = shapes.x_test[:k]
        masks = shapes.ground_truth["masks_test"][:k]
        smaps = {
            name: explain(smodel, srows, method=name, **kw) for name, kw in IMAGE_METHODS.items()
        }

        bar.step("scoring localisation")
        loc = evaluate(
            smodel,
            smaps,
            {"relevance_mass_accuracy": {}, "pointing_game": {}, "model_randomisation": {}},
            ground_truth=masks,
            random_state=seed,
        )
        chance = float(masks.reshape(k, -1).mean(axis=1).mean())
        numbers_["mask_fraction"] = chance
        rma = {m: loc.mean(m, "relevance_mass_accuracy") for m in smaps}
        pg = {m: loc.mean(m, "pointing_game") for m in smaps}
        ssims = {m: loc.mean(m, "model_randomisation") for m in smaps}
        for m in smaps:
            numbers_[f"relevance_mass[{m}]"] = rma[m]
            numbers_[f"pointing_game[{m}]"] = pg[m]
            numbers_[f"randomisation_shapes[{m}]"] = ssims[m]

        figures = {
            "Digits: three gradient maps (saliency, integrated gradients, Grad-CAM) and a "
            "perturbation map (occlusion) of the same test images": plots.compare_methods(
                maps, rows=list(range(min(4, len(rows))))
            ),
            "Randomisation sanity check on digits: similarity of each method's maps to the "
            "originals as the layers are re-initialised, output layer first (lower is "
            f"better; a method passes below {SANITY_LIMIT})": plots.curves(
                {m: table[(m, "model_randomisation")] for m in maps}
            ),
            "Synthetic shapes: the same methods on a CNN trained where the class-deciding "
            "pixels are known": plots.compare_methods(smaps, rows=list(range(min(4, k)))),
            "Synthetic shapes: localisation against the masks (relevance mass, pointing game; "
            "higher is better) and the randomisation check (lower is better)": (
                plots.metric_table(loc)
            ),
        }
    elapsed = time.perf_counter() - start
    numbers_["elapsed_s"] = elapsed

    def ranked(scores: dict[str, float]) -> list[str]:
        """Methods from best to worst (NaN last)."""
        return sorted(scores, key=lambda m: (-np.nan_to_num(scores[m], nan=-np.inf), m))

    best_rma, worst_rma = ranked(rma)[0], ranked(rma)[-1]
    best_pg = ranked(pg)[0]
    shape_failed = [m for m in smaps if not ssims[m] < SANITY_LIMIT]
    summary = [
        f"Images: the small CNN reaches {_pct(acc)} test accuracy on 28×28 digits after "
        f"{_plural(hist['epochs_run'], 'epoch')}. " + _sanity_sentence(sims, passed, failed),
        f"Where the truth is known (synthetic shapes, CNN accuracy {_pct(sacc)}), "
        f"{_label(best_rma)} puts {_pct(rma[best_rma])} of its positive relevance on the "
        f"shape and {_label(worst_rma)} {_pct(rma[worst_rma])} (chance {_pct(chance)}); "
        f"the strongest pixel of {_label(best_pg)} lies on the shape in {_pct(pg[best_pg])} "
        "of the images. On this model "
        + (
            "every method passes the randomisation check."
            if not shape_failed
            else f"{_join([_label(m) for m in shape_failed])} fail the randomisation check."
        ),
    ]
    facts = {
        "digits": f"{len(digits.x_train)} train / {len(digits.x_test)} test images, "
        "1×28×28 in [0, 1]",
        "model": "torch CNN: Conv(8) → pool → Conv(16) → pool → Dense(64) → Dense(n, softmax)",
        "training (digits)": f"Adam 3e-3, batch 64, {hist['epochs_run']} of ≤ {epochs} "
        f"epochs (early stopping), seed {seed}",
        "digits test accuracy": _pct(acc),
        "explained": f"first {len(rows)} digits test images; " + ", ".join(_label(m) for m in maps),
        "sanity check (digits)": "cascading model randomisation (Spearman of |maps|), pass "
        f"below {SANITY_LIMIT}: " + ", ".join(f"{_label(m)} {sims[m]:.2f}" for m in maps),
        "synthetic shapes": f"{len(shapes.x_train)} train / {len(shapes.x_test)} test "
        f"images, 1×32×32, classes {', '.join(shapes.class_names)}; test accuracy "
        f"{_pct(sacc)} after {shist['epochs_run']} epochs (Adam 2e-3, batch 32)",
        "localisation": f"first {k} shapes test images; the mask covers {_pct(chance)} of an "
        "image on average (chance level)",
        "sanity check (shapes)": ", ".join(f"{_label(m)} {ssims[m]:.2f}" for m in smaps),
        "run time": f"{elapsed:.1f} s",
    }
    both = [m for m in failed if m not in shape_failed]
    notes = [
        "Gradient maps read the network's derivatives: saliency is |∂output/∂pixel|, "
        "integrated gradients averages the gradient along the straight path from a black "
        "image and multiplies it by the pixel's change, Grad-CAM weights the last "
        "convolution's channels by their mean gradient (a coarse map, upsampled to the "
        "image). Occlusion is a perturbation map: it blacks out a 4×4 window and records "
        "how much the predicted class's probability drops, without looking inside the "
        "network.",
        "The randomisation sanity check (Adebayo et al., 2018) re-initialises the network "
        "from the output layer down and re-explains. A map that stays the same while the "
        "model it explains is destroyed shows the input, not what the model learnt. "
        + (
            f"On digits {_join([_label(m) for m in failed])} stay at or above the "
            f"{SANITY_LIMIT} limit. The digits' background is 0 — the black baseline itself "
            "— so a method that multiplies by the change from that baseline, or that "
            "measures what blacking out a patch does, gives the background nothing and "
            "traces the strokes whatever the weights are. "
            if failed
            else f"On digits every method stays below the {SANITY_LIMIT} limit. "
        )
        + (
            f"{_cap(_join([_label(m) for m in passed]))} follow the weights and pass."
            if passed
            else "No method passes."
        )
        + (
            f" On the shapes, whose background is grey (0.2), {_join([_label(m) for m in both])}"
            " pass (" + ", ".join(f"{_label(m)} {ssims[m]:.2f}" for m in both) + "): the "
            "check judges a method on a model and its data, not once and for all."
            if both
            else ""
        ),
        "Localisation needs to know where the evidence is. In the synthetic shapes each "
        "image holds one shape, whose kind is the class, and a distractor line of the same "
        "brightness; the masks mark exactly the shape's pixels. Relevance mass accuracy is "
        "the share of positive relevance inside the mask; the pointing game asks whether "
        "the single most relevant pixel is inside. A map spread at random would score the "
        f"mask's share of the image, {_pct(chance)}, on both. Scores: "
        + "; ".join(f"{_label(m)} {rma[m]:.2f} / {pg[m]:.2f}" for m in smaps)
        + " (relevance mass / pointing game).",
    ]
    return Story(
        title="Images: what does the CNN look at?",
        summary=summary,
        facts=facts,
        figures=figures,
        notes=notes,
        evaluation=table,
        numbers={key: float(v) for key, v in numbers_.items()},
    )


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def _noise(p: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies near ``p`` on ``n`` rows,
    ``2·√(2p(1 − p)/n)`` (independent errors; a rough yardstick for "within noise")."""
    return 2.0 * float(np.sqrt(2.0 * p * (1.0 - p) / n))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sanity_sentence(sims: dict[str, float], passed: list[str], failed: list[str]) -> str:
    """One sentence naming the methods that pass and fail, with their similarities."""

    def listed(ms: list[str]) -> str:
        return _join([f"{_label(m)} ({sims[m]:.2f})" for m in ms])

    text = "Randomisation sanity check: once every layer is re-initialised, "
    if passed:
        verb = "changes its map" if len(passed) == 1 else "change their maps"
        text += f"{listed(passed)} {verb} (similarity below {SANITY_LIMIT}: pass)"
    if passed and failed:
        text += ", while "
    if failed:
        verb = "keeps its map" if len(failed) == 1 else "keep their maps"
        text += f"{listed(failed)} {verb} close to the originals (fail)"
    return text + "."


# --------------------------------------------------------------------------- story 3


def add_leak(
    data: Any, *, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Append a leaked column to a binary classification :class:`~lumos.datasets.Dataset`.

    The column is the label plus Gaussian noise of standard deviation ``noise``, drawn from
    ``numpy.random.default_rng(seed)`` (train rows first, then test rows), then
    standardised with the train split's mean and standard deviation.

    Parameters
    ----------
    data : Dataset
        With integer labels ``y_train`` (n_train,) and ``y_test`` (n_test,) and tabular
        ``x_train`` (n_train, d), ``x_test`` (n_test, d).
    noise : float, default 0.3
        Standard deviation of the noise added to the label.
    seed : int, default 0

    Returns
    -------
    x_train : ndarray of shape (n_train, d + 1)
    x_test : ndarray of shape (n_test, d + 1)
    feature_names : list of str
        The data's names and :data:`LEAK_NAME`.
    """
    rng = np.random.default_rng(seed)
    raw_tr = data.y_train + rng.normal(0.0, noise, len(data.y_train))
    raw_te = data.y_test + rng.normal(0.0, noise, len(data.y_test))
    mu, sd = float(raw_tr.mean()), float(raw_tr.std())
    x_tr = np.column_stack([data.x_train, (raw_tr - mu) / sd])
    x_te = np.column_stack([data.x_test, (raw_te - mu) / sd])
    return x_tr, x_te, [*list(data.feature_names), LEAK_NAME]


def shortcut_story(
    *,
    seed: int = 0,
    progress: bool = False,
    n: int = 2000,
    leak_noise: float = 0.3,
    epochs: int = 30,
    n_shap: int = 40,
) -> Story:
    """Story 3 — finance with a planted shortcut: the explanations reveal the leak.

    :func:`lumos.datasets.synthetic_credit` (``n`` rows, label = default) gets an extra
    column ``account_flag``: the label plus Gaussian noise (:func:`add_leak`), a stand-in
    for a field filled in after the outcome was known. The reference MLP
    (:func:`lumos.zoo.torch_mlp`, 128-64, softmax) is trained on all eleven columns, and a
    twin on the ten honest ones. The leaked model is then explained:

    * permutation importance on the test rows (accuracy drop, 5 repeats),
    * mean ``|SHAP|`` of Kernel SHAP for P(default) on the first ``n_shap`` test rows
      (512 coalitions, 32 training rows as background),
    * a depth-3 surrogate tree fitted to its predictions on the test rows,

    and its accuracy is measured on the test rows as they are, with the flag shuffled
    across rows (the flag carries no information, as at deployment) and with the flag set
    to its training mean (removed).

    Parameters
    ----------
    seed : int, default 0
    progress : bool, default False
    n : int, default 2000
        Rows of ``synthetic_credit`` (a quarter held out).
    leak_noise : float, default 0.3
        Standard deviation of the noise added to the label to make the flag.
    epochs : int, default 30
        Maximum training epochs (early stopping, patience 5).
    n_shap : int, default 40
        Test rows explained by Kernel SHAP.

    Returns
    -------
    Story
        ``numbers``: ``accuracy`` (with the leak), ``accuracy_shuffled``,
        ``accuracy_removed``, ``accuracy_honest`` (twin trained without the flag),
        ``accuracy_oracle`` (the true labelling function), ``majority_rate``,
        ``leak_alone_accuracy`` (the flag alone, cut halfway between the two classes'
        mean flag on the train rows),
        ``permutation_rank`` / ``shap_rank`` (1 = most important),
        ``permutation_share`` / ``shap_share`` (the leak's share of the total),
        ``surrogate_root_is_leak`` (1.0 or 0.0), ``surrogate_fidelity``,
        ``shap_flag_correlation`` (Pearson correlation of the flag's value and its SHAP
        value over the explained rows), ``elapsed_s``.
    """
    from lumos import datasets, importance, plots, surrogate, zoo
    from lumos.attribution import explain
    from lumos.metrics import performance as perf
    from lumos.models import wrap

    seed = _check_seed(seed)
    n = _check_int(n, "n", 100)
    epochs = _check_int(epochs, "epochs", 1)
    n_shap = _check_int(n_shap, "n_shap", 2)
    if (
        isinstance(leak_noise, bool)
        or not isinstance(leak_noise, numbers.Real)
        or not np.isfinite(leak_noise)
        or leak_noise < 0
    ):
        raise InputError(f"leak_noise must be a number >= 0, got {leak_noise!r}; e.g. 0.3.")
    start = time.perf_counter()
    numbers_: dict[str, float] = {}

    with _steps(progress, "story 3 · shortcut", 5) as bar:
        bar.step("training credit models")
        data = datasets.synthetic_credit(n, seed=seed)
        x_tr, x_te, names = add_leak(data, noise=float(leak_noise), seed=seed)
        leak = len(names) - 1
        net = zoo.torch_mlp(len(names), 2, seed=seed)
        hist = _train(bar, progress, net, x_tr, data.y_train, epochs=epochs, seed=seed)
        model = wrap(net, feature_names=names, class_names=data.class_names)
        honest_net = zoo.torch_mlp(data.n_features, 2, seed=seed)
        _train(bar, progress, honest_net, data.x_train, data.y_train, epochs=epochs, seed=seed)
        honest = wrap(honest_net, feature_names=data.feature_names, class_names=data.class_names)

        y = data.y_test
        acc = perf.accuracy(model, x_te, y)
        shuffled = x_te.copy()
        shuffled[:, leak] = np.random.default_rng(seed).permutation(shuffled[:, leak])
        removed = x_te.copy()
        removed[:, leak] = x_tr[:, leak].mean()
        numbers_.update(
            accuracy=acc,
            accuracy_shuffled=perf.accuracy(model, shuffled, y),
            accuracy_removed=perf.accuracy(model, removed, y),
            accuracy_honest=perf.accuracy(honest, data.x_test, y),
            accuracy_oracle=float(np.mean(data.oracle(data.x_test).argmax(axis=1) == y)),
            majority_rate=float(max(np.mean(y), 1.0 - np.mean(y))),
        )
        # The flag alone, cut halfway between the two classes' mean flag on the train rows.
        cut = _flag_cut(x_tr[:, leak], data.y_train)
        numbers_["leak_alone_accuracy"] = float(np.mean((x_te[:, leak] > cut) == (y == 1)))

        bar.step("permutation importance")
        perm = importance.permutation(model, x_te, y, n_repeats=5, random_state=seed)

        bar.step("Kernel SHAP")
        shap = explain(
            model,
            x_te[: min(n_shap, len(x_te))],
            method="kernel_shap",
            background=x_tr[:32],
            n_samples=512,
            target=1,
            random_state=seed,
        )
        mean_shap = importance.aggregate(shap)
        numbers_["shap_flag_correlation"] = float(
            np.corrcoef(shap.data[:, leak], shap.values[:, leak])[0, 1]
        )

        bar.step("surrogate tree")
        tree = surrogate.fit(model, x_te, kind="tree", max_depth=3, random_state=seed)

        bar.step("figures")
        p_rank = _rank_of(perm.importance, leak)
        s_rank = _rank_of(mean_shap.importance, leak)
        p_share = _share(perm.importance, leak)
        s_share = _share(mean_shap.importance, leak)
        root = int(tree.estimator.tree_.feature[0])
        numbers_.update(
            permutation_rank=float(p_rank),
            shap_rank=float(s_rank),
            permutation_share=p_share,
            shap_share=s_share,
            surrogate_root_is_leak=float(root == leak),
            surrogate_fidelity=float(tree.fidelity),
        )
        figures = {
            "Permutation importance of the leaked model (test accuracy lost when a column "
            "is shuffled, 95% intervals)": plots.importance(perm, max_features=11),
            f"Mean |SHAP| of P(default) over {len(shap)} test rows (Kernel SHAP)": plots.importance(
                mean_shap, max_features=11
            ),
            "Kernel SHAP values of P(default) against feature values, row by row": plots.beeswarm(
                shap, max_features=6
            ),
            "Depth-3 surrogate tree imitating the leaked model": plots.surrogate_tree(tree),
        }
    elapsed = time.perf_counter() - start
    numbers_["elapsed_s"] = elapsed

    d = len(names)
    nb = numbers_
    root_name = names[root]
    root_text = (
        f"the depth-3 surrogate tree (fidelity {tree.fidelity:.2f}) splits on it first"
        if root == leak
        else f"the depth-3 surrogate tree (fidelity {tree.fidelity:.2f}) splits first on "
        f"{root_name}"
    )
    found = p_rank == 1 and s_rank == 1 and root == leak
    summary = [
        f"Finance: a credit model given a leaked column, {LEAK_NAME} (the outcome plus "
        f"noise), scores {_pct(acc)} on test rows that still carry it, against "
        f"{_pct(nb['accuracy_honest'])} for the same network trained without it and "
        f"{_pct(nb['accuracy_oracle'])} for the true labelling function.",
        ("The explanations give it away: " if found else "The explanations: ")
        + f"permutation importance ranks {LEAK_NAME} {_ordinal(p_rank)} of {d} "
        f"({_pct(p_share)} of the total), mean |SHAP| ranks it {_ordinal(s_rank)} "
        f"({_pct(s_share)}), and {root_text}.",
        "With the flag shuffled across rows — present but unrelated to the outcome — "
        + ("accuracy falls to " if nb["accuracy_shuffled"] < acc else "accuracy is ")
        + f"{_pct(nb['accuracy_shuffled'])} (always predicting the majority class: "
        f"{_pct(nb['majority_rate'])}); with the flag held at its training mean it is "
        f"{_pct(nb['accuracy_removed'])}.",
    ]
    facts = {
        "data": f"synthetic_credit: {len(x_tr)} train / {len(x_te)} test rows, 10 applicant "
        f"features + {LEAK_NAME} = label + N(0, {float(leak_noise):g}²), standardised",
        "model": "torch MLP Dense(128, relu) → Dense(64, relu) → Dense(2, softmax), "
        f"Adam 1e-3, {hist['epochs_run']} of ≤ {epochs} epochs, seed {seed}",
        "accuracy with the leak": _pct(acc),
        "accuracy, leak shuffled / removed": f"{_pct(nb['accuracy_shuffled'])} / "
        f"{_pct(nb['accuracy_removed'])}",
        "accuracy, twin trained without the leak": _pct(nb["accuracy_honest"]),
        "accuracy of the true labelling function": _pct(nb["accuracy_oracle"]),
        "majority-class rate": _pct(nb["majority_rate"]),
        f"{LEAK_NAME} alone (one threshold)": _pct(nb["leak_alone_accuracy"]),
        "run time": f"{elapsed:.1f} s",
    }
    notes = [
        f"{LEAK_NAME} plays the part of a field that is only filled in once the outcome is "
        "known — a collections flag, a closed-account marker. It sits in the historical "
        "table, so a model trained on that table finds it and scores well on a test split "
        "cut from the same table. Accuracy alone cannot tell this model from a good one.",
        "Permutation importance shuffles one column at a time and measures the accuracy "
        "lost; mean |SHAP| averages each feature's Shapley value magnitude over rows; the "
        "surrogate tree is a three-level tree trained to copy the model's predictions. "
        + (
            f"All three point at {LEAK_NAME}: a reviewer seeing one feature carry "
            f"{_pct(p_share)} of the permutation importance would ask what it is before "
            "anything else. "
            if found
            else f"Here they do not all point at {LEAK_NAME} (ranks {p_rank} and {s_rank}, "
            f"tree root {root_name}). "
        )
        + "In the beeswarm the flag's SHAP value follows its value (correlation "
        f"{nb['shap_flag_correlation']:.2f} over the explained rows).",
        "The safety lesson: at deployment the flag does not exist yet, and the "
        f"{_pct(acc)} measured on a held-out split is not what the model will deliver. Fed a "
        "flag that does not track the outcome as it did in the historical table, it is "
        f"right {_pct(nb['accuracy_shuffled'])} of the time, against "
        f"{_pct(nb['accuracy_honest'])} for the same network trained without the flag. "
        + (
            f"Held at a neutral value the flag leaves it at {_pct(nb['accuracy_removed'])}, "
            "close to the honest model: the network did learn the real risk factors, but a "
            "confident flag overrides them. "
            if nb["accuracy_removed"]
            >= nb["accuracy_honest"] - _noise(nb["accuracy_honest"], len(x_te))
            else f"Even with the flag held at a neutral value it reaches only "
            f"{_pct(nb['accuracy_removed'])}: leaning on the shortcut, it learnt the real "
            "risk factors less well than the honest model. "
        )
        + "The explanations caught the leak before deployment; held-out accuracy did not.",
    ]
    return Story(
        title="Finance: a planted shortcut, found by the explanations",
        summary=summary,
        facts=facts,
        figures=figures,
        notes=notes,
        numbers={key: float(v) for key, v in numbers_.items()},
    )


def _flag_cut(flag_train: np.ndarray, y_train: np.ndarray) -> float:
    """Midpoint between the two classes' mean flag on the training rows."""
    return float((flag_train[y_train == 0].mean() + flag_train[y_train == 1].mean()) / 2.0)


def _rank_of(scores: np.ndarray, j: int) -> int:
    """1-based rank of feature ``j`` by decreasing score (ties counted in its favour)."""
    s = np.asarray(scores, dtype=np.float64)
    return int(np.sum(s > s[j])) + 1


def _share(scores: np.ndarray, j: int) -> float:
    """Feature ``j``'s share of the total positive importance."""
    s = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    total = float(s.sum())
    return float(s[j] / total) if total > 0 else float("nan")


# --------------------------------------------------------------------------- story 4


def tradeoff_story(
    *,
    seed: int = 0,
    progress: bool = False,
    l1: Sequence[float] = (0.0, 1e-4, 1e-3, 1e-2, 3e-2),
    epochs: int = 60,
) -> Story:
    """Story 4 — accuracy vs interpretability: the MLP trained at several L1 strengths.

    For each ``l1`` the reference MLP (:func:`lumos.zoo.torch_mlp`, 128-64, softmax; the
    penalty ``l1·Σ|W|`` over every weight matrix is added to the loss by
    :func:`lumos.zoo.fit`) is trained on :func:`lumos.datasets.breast_cancer` with the same
    seed, and measured three ways:

    * **accuracy** on the test rows;
    * **sparseness**: mean Gini index (:func:`lumos.metrics.sparseness`) of integrated
      gradients (32 steps, all-zero = training-mean baseline) on every test row;
    * **fidelity**: held-out agreement of a depth-3 surrogate tree
      (:func:`lumos.surrogate.fit`, ``kind="tree"``, no bootstrap) fitted to the model's
      predictions on all 569 rows (a quarter held out; a surrogate needs no labels).

    A model that predicts one class everywhere (L1 too strong) has neither: its sparseness
    and fidelity are NaN and the text says so.

    Parameters
    ----------
    seed : int, default 0
    progress : bool, default False
    l1 : sequence of float, default (0, 0.0001, 0.001, 0.01, 0.03)
        L1 strengths, in the order drawn.
    epochs : int, default 60
        Maximum training epochs (early stopping, patience 5, watches the penalised
        validation loss).

    Returns
    -------
    Story
        ``numbers``: ``accuracy[l1=<v>]``, ``sparseness[l1=<v>]``, ``fidelity[l1=<v>]``
        (``<v>`` formatted with ``:g``), ``n_test``, ``elapsed_s``. ``figures``: one trade-off
        plot (:func:`lumos.plots.tradeoff`) with a line for sparseness and one for fidelity.
    """
    from lumos import datasets, plots, surrogate, zoo
    from lumos.attribution import explain
    from lumos.metrics import performance as perf
    from lumos.metrics import sparseness
    from lumos.models import wrap

    seed = _check_seed(seed)
    epochs = _check_int(epochs, "epochs", 1)
    if isinstance(l1, str) or not isinstance(l1, Sequence) or len(l1) < 2:
        raise InputError(f"l1 must be a sequence of at least two strengths, got {l1!r}.")
    strengths = []
    for v in l1:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < np.inf:
            raise InputError(f"every l1 strength must be a finite number >= 0, got {v!r}.")
        strengths.append(float(v))
    if len(set(strengths)) != len(strengths):
        raise InputError(f"l1 strengths must differ from each other, got {strengths}.")
    start = time.perf_counter()
    data = datasets.breast_cancer(random_state=seed)
    x_all = np.concatenate([data.x_train, data.x_test])
    points: list[dict[str, Any]] = []
    numbers_: dict[str, float] = {"n_test": float(len(data.x_test))}
    collapsed: list[float] = []

    with _steps(progress, "story 4 · L1 trade-off", len(strengths)) as bar:
        for v in strengths:
            bar.step(f"L1 = {v:g}")
            net = zoo.torch_mlp(data.n_features, 2, l1=v, seed=seed)
            _train(bar, progress, net, data.x_train, data.y_train, epochs=epochs, seed=seed)
            model = wrap(net, feature_names=data.feature_names, class_names=data.class_names)
            acc = perf.accuracy(model, data.x_test, data.y_test)
            if len(np.unique(model(x_all).argmax(axis=1))) < 2:
                collapsed.append(v)
                sp = fid = float("nan")
            else:
                ig = explain(model, data.x_test, method="integrated_gradients", n_steps=32)
                sp = sparseness(model, ig).mean
                tree = surrogate.fit(
                    model, x_all, kind="tree", max_depth=3, n_bootstrap=0, random_state=seed
                )
                fid = float(tree.fidelity)
            points.append(
                {"label": f"L1={v:g}", "accuracy": acc, "sparseness": sp, "fidelity": fid}
            )
            numbers_[f"accuracy[l1={v:g}]"] = acc
            numbers_[f"sparseness[l1={v:g}]"] = sp
            numbers_[f"fidelity[l1={v:g}]"] = fid
        figure = plots.tradeoff(points, measures=["sparseness", "fidelity"])
    elapsed = time.perf_counter() - start
    numbers_["elapsed_s"] = elapsed

    accs = np.array([p["accuracy"] for p in points])
    sps = np.array([p["sparseness"] for p in points])
    fids = np.array([p["fidelity"] for p in points])
    n_test = len(data.x_test)
    spread_rows = round((accs.max() - accs.min()) * n_test)
    noise_rows = _noise(float(accs.mean()), n_test) * n_test
    readable = [p for p in points if np.isfinite(p["sparseness"]) and np.isfinite(p["fidelity"])]
    first, last = (readable[0], readable[-1]) if readable else (points[0], points[-1])
    levels = _join([f"{v:g}" for v in strengths])
    summary = [
        f"Accuracy vs interpretability: the breast-cancer MLP trained at L1 = {levels} has "
        f"a test accuracy between {_pct(accs.min())} and {_pct(accs.max())} (a spread of "
        f"{spread_rows} of {n_test} test rows).",
        f"From {first['label']} to {last['label']} the Gini sparseness of its integrated-"
        f"gradients explanations goes from {first['sparseness']:.2f} to "
        f"{last['sparseness']:.2f} and a depth-3 surrogate tree's fidelity from "
        f"{first['fidelity']:.2f} to {last['fidelity']:.2f}.",
    ]
    if collapsed:
        summary.append(
            f"At L1 = {_join([f'{v:g}' for v in collapsed])} the network collapsed to one "
            "class: no explanation is left to read."
        )
    facts = {
        "data": f"breast_cancer: {len(data.x_train)} train / {n_test} test rows, 30 "
        "standardised features",
        "model": "torch MLP Dense(128, relu) → Dense(64, relu) → Dense(2, softmax), Adam "
        f"1e-3, ≤ {epochs} epochs with early stopping, seed {seed}; loss + L1·Σ|W|",
        "L1 strengths": levels,
        "sparseness": f"mean Gini index of |integrated gradients| over the {n_test} test rows",
        "fidelity": "held-out agreement of a depth-3 surrogate tree on all "
        f"{len(x_all)} rows (25% held out)",
    }
    for p in points:
        facts[p["label"]] = (
            f"accuracy {_pct(p['accuracy'])}, sparseness {p['sparseness']:.3f}, "
            f"fidelity {p['fidelity']:.3f}"
        )
    facts["run time"] = f"{elapsed:.1f} s"
    finite = np.isfinite(sps)
    monotone = bool(np.all(np.diff(sps[finite]) > 0)) if finite.sum() >= 2 else False
    notes = [
        "An L1 penalty on the weights pushes the network to use fewer inputs and fewer "
        "hidden units. Interpretability is measured on the model's explanations, not on its "
        "weights: sparseness is the Gini index of the attribution magnitudes (0 when every "
        "feature gets the same share, near 1 when one feature gets everything), fidelity is "
        "how often a three-level decision tree trained to copy the model agrees with it on "
        "rows it did not see.",
        "The plot puts accuracy on the vertical axis and each interpretability measure on "
        "the horizontal one, one point per L1 strength, in increasing order along each "
        "line. "
        + (
            "Sparseness rises at every step of L1 here. "
            if monotone
            else "Sparseness does not rise at every step of L1 here. "
        )
        + f"Test accuracy differs by {_plural(spread_rows, 'row')} of {n_test} between the "
        "best and the worst strength; two standard errors of a difference between two "
        f"accuracies on {n_test} rows are about {noise_rows:.0f} rows, so "
        + (
            "the differences are within noise. "
            if spread_rows <= noise_rows
            else "the strengths differ in accuracy beyond noise. "
        )
        + (
            f"The surrogate's fidelity ranges from {np.nanmin(fids):.2f} to {np.nanmax(fids):.2f}."
            if np.isfinite(fids).any()
            else "No surrogate could be fitted."
        ),
    ]
    return Story(
        title="Accuracy vs interpretability: one network, several L1 strengths",
        summary=summary,
        facts=facts,
        figures={
            "Test accuracy against explanation sparseness and surrogate fidelity, one point "
            "per L1 strength": figure
        },
        notes=notes,
        numbers={key: float(v) for key, v in numbers_.items()},
    )


#: The stories by the name a config's ``[output] stories`` uses.
STORIES: dict[str, Callable[..., Story]] = {
    "images": images_story,
    "shortcut": shortcut_story,
    "tradeoff": tradeoff_story,
}
