"""Pipeline config files: ``lumos run CONFIG.toml`` runs data → model → explain → evaluate →
report from one TOML file.

A config has these sections (every key is checked: an unknown section or key, a value of the
wrong type or a missing required key is an error that names it and lists the valid ones)::

    seed = 0                        # optional: default seed of every step below

    [data]                          # required: a bundled dataset with its keyword options ...
    dataset = "breast_cancer"       # breast_cancer | digits | synthetic_credit | synthetic_shapes
    test_size = 0.25                # (any keyword of the dataset's loader, e.g. n, size, seed)
    # ... or a data file (CSV with a header, .npy, .npz, an image folder)
    # path = "rows.csv"             # relative paths are read from the config file's folder
    # label_column = "label"        # or labels = "labels.npy" (+ labels_key); optional
    # drop = ["id"]  key = "x"  class_names = ["no", "yes"]
    # test_size = 0.25              # split off training rows (default: 0.25 when [model]
    #                               # trains a network, else none: every row is explained)

    [model]                         # required: a model file ...
    # path = "model.keras"          # .keras, .onnx, TorchScript, .pt2; trust = true for pickle
    # ... or a training recipe: a reference network of lumos.zoo and lumos.zoo.fit's options
    zoo = "keras_mlp"               # keras_mlp | torch_mlp | keras_cnn | torch_cnn
    epochs = 60                     # also: batch_size, learning_rate, patience, l1, l2, hidden,
    seed = 0                        # channels, validation_split, early_stopping, output (torch)

    [[explain]]                     # one table per explanation (optional)
    method = "kernel_shap"          # a registered method (lumos methods)
    rows = 20                       # explain the first 20 test rows (default: 20, or fewer)
    background_rows = 50            # the first 50 training rows as background (or "all")
    n_samples = 512                 # every other key is a parameter of the method
    # name = "shap_512"             # file / display name (default: the method)
    # target = "predicted"          # an output index or class name

    [evaluate]                      # score the explanations (optional)
    metrics = ["deletion", "max_sensitivity"]      # or "all"
    # random_state = 0  batch_size = 256  skip_errors = false  ground_truth = "truth.npy"
    [evaluate.params.max_sensitivity]
    n_samples = 10

    [global]                        # global explanations (optional)
    permutation = true              # permutation importance on the test rows (n_repeats, scoring)
    surrogate = "tree"              # tree | forest | linear | svm, or false (max_depth, n_features)
    # aggregate = true              # mean |attribution| of every tabular explanation

    [output]                        # optional
    folder = "lumos-run"            # relative to the current folder
    # report = true  model = true  title = "..."
    # stories = ["images", "shortcut", "tradeoff"]   # further studies (lumos._stories)
    # heading = "..."               # the name of this config's own study in the summary

:func:`load_config` parses and checks a file into a :class:`Config`; :func:`run_config` runs
it and writes ``explanations/<name>.npz``, ``global/*.npz``, ``evaluation.json`` / ``.csv``,
``performance.json``, ``report.html``, the trained model and a copy of the config into the
output folder. ``lumos:NAME`` names a config shipped in ``lumos/configs`` (see
:func:`example_configs`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lumos._progress import spinner
from lumos.errors import InputError, LumosError, ModelError, UnknownNameError

__all__ = [
    "DATASETS",
    "DEFAULT_METRICS",
    "ZOO",
    "Config",
    "DataConfig",
    "EvaluateConfig",
    "ExplainConfig",
    "GlobalConfig",
    "ModelConfig",
    "OutputConfig",
    "evaluate_explanations",
    "example_configs",
    "load_config",
    "load_labeled_data",
    "run_config",
]

#: Bundled datasets a config may name (``[data] dataset = ...``).
DATASETS = ("breast_cancer", "digits", "synthetic_credit", "synthetic_shapes")
#: Reference networks a training recipe may name (``[model] zoo = ...``).
ZOO = ("keras_mlp", "torch_mlp", "keras_cnn", "torch_cnn")
#: Metrics scored when none are named: fast, and meaningful for tables and images alike.
DEFAULT_METRICS = ("deletion", "faithfulness_correlation", "sparseness")
#: Rows explained by an ``[[explain]]`` table without ``rows`` (fewer when the data has fewer).
DEFAULT_ROWS = 20

_SECTIONS = ("data", "model", "explain", "evaluate", "global", "output")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ====================================================================== config objects
@dataclass(frozen=True)
class DataConfig:
    """``[data]``: a bundled dataset (``dataset`` + ``options``) or a file (``path`` ...)."""

    dataset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    key: str | None = None
    drop: tuple[str, ...] = ()
    labels: Path | None = None
    labels_key: str | None = None
    label_column: str | None = None
    class_names: tuple[str, ...] | None = None
    test_size: float | int | None = None


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: a model file (``path``) or a training recipe (``zoo`` + options)."""

    path: Path | None = None
    trust: bool = False
    device: str | None = None
    zoo: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class ExplainConfig:
    """One ``[[explain]]`` table: a method, its parameters and the rows it explains."""

    method: str
    name: str
    rows: int | None = None
    target: int | str | None = None
    background_rows: int | str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateConfig:
    """``[evaluate]``: metrics (name → parameters, or ``"all"``) and their shared options."""

    metrics: dict[str, dict[str, Any]] | str
    random_state: int = 0
    batch_size: int | None = None
    ground_truth: Path | None = None
    ground_truth_key: str | None = None
    skip_errors: bool = False


@dataclass(frozen=True)
class GlobalConfig:
    """``[global]``: permutation importance, a surrogate, aggregated attributions."""

    permutation: bool = False
    n_repeats: int = 5
    scoring: str | None = None
    surrogate: str | None = None
    max_depth: int | None = None
    n_features: int | None = None
    aggregate: bool = True


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where the results go and which are written."""

    folder: Path = Path("lumos-run")
    report: bool = True
    model: bool = True
    title: str | None = None
    #: Further studies of lumos._stories added to the report as their own sections.
    stories: tuple[str, ...] = ()
    #: A name for the config's own study, above its lines in the report's summary.
    heading: str | None = None


@dataclass(frozen=True)
class Config:
    """A checked pipeline config (see the module docstring for the file format).

    Attributes
    ----------
    data, model : DataConfig, ModelConfig
    explain : tuple of ExplainConfig
    evaluate : EvaluateConfig or None
    global_explanations : GlobalConfig
    output : OutputConfig
    seed : int
        The top-level ``seed`` (default of every step's seed).
    source : str
        Where the config came from (file path or ``lumos:NAME``), used in error messages.
    text : str
        The file's text (copied into the output folder).
    """

    data: DataConfig
    model: ModelConfig
    explain: tuple[ExplainConfig, ...] = ()
    evaluate: EvaluateConfig | None = None
    global_explanations: GlobalConfig = field(default_factory=GlobalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    seed: int = 0
    source: str = "<config>"
    text: str = ""


# ====================================================================== value kinds
@dataclass(frozen=True)
class _Kind:
    text: str
    test: Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


_ANY = _Kind("any value", lambda v: True)
_INT = _Kind("an integer", _is_int)
_COUNT = _Kind("an integer >= 1", lambda v: _is_int(v) and v >= 1)
_SEED = _Kind("an integer >= 0", lambda v: _is_int(v) and v >= 0)
_NUMBER = _Kind("a number", _is_number)
_BOOL = _Kind("true or false", lambda v: isinstance(v, bool))
_TEXT = _Kind("a string", lambda v: isinstance(v, str))
_TEXTS = _Kind(
    "an array of strings", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)
)
_INTS = _Kind("an array of integers", lambda v: isinstance(v, list) and all(map(_is_int, v)))
_TABLE = _Kind("a table", lambda v: isinstance(v, dict))
_TARGET = _Kind(
    'an output index, a class name or "predicted"', lambda v: _is_int(v) or isinstance(v, str)
)
_ROWS_OR_ALL = _Kind('an integer >= 1 or "all"', lambda v: _COUNT.test(v) or v == "all")
_KIND_OR_FALSE = _Kind("a surrogate kind or false", lambda v: isinstance(v, str) or v is False)
_METRICS = _Kind(
    'an array of metric names or "all"', lambda v: v == "all" or (_TEXTS.test(v) and bool(v))
)

#: Python annotations (as strings) of loader / builder / fit parameters → the TOML kind.
_ANNOTATIONS = {
    "int": _INT,
    "int | None": _INT,
    "RandomState": _SEED,
    "float": _NUMBER,
    "float | int": _NUMBER,
    "float | None": _NUMBER,
    "float | int | None": _NUMBER,
    "bool": _BOOL,
    "str": _TEXT,
    "str | None": _TEXT,
    "Sequence[int]": _INTS,
}


def _kind_of(parameter: inspect.Parameter) -> _Kind:
    annotation = parameter.annotation
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    return _ANNOTATIONS.get(annotation, _ANY)


def _toml_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    return "a date / time"


class _Checker:
    """Checks tables of one config, naming the file and the section in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str, kind: type[LumosError] = InputError) -> LumosError:
        return kind(f"{self.source} {where}: {message}")

    def keys(
        self,
        table: Mapping[str, Any],
        spec: Mapping[str, _Kind],
        where: str,
        *,
        required: Sequence[str] = (),
        hint: str = "",
    ) -> None:
        for key in table:
            if key not in spec:
                close = difflib.get_close_matches(key, list(spec), n=1)
                did = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(
                    where,
                    f"unknown key {key!r}{did}{hint}; valid keys: {', '.join(spec)}.",
                    UnknownNameError,
                )
        for key in required:
            if key not in table:
                raise self.error(where, f"the key {key!r} is missing; set {key} = ....")
        for key, value in table.items():
            if not spec[key].test(value):
                raise self.error(
                    where,
                    f"{key} must be {spec[key].text}, got {value!r} ({_toml_type(value)}).",
                )

    def name(self, value: str, known: Sequence[str], where: str, kind: str) -> str:
        from lumos._validation import check_name

        try:
            return check_name(value, known, kind=kind)
        except UnknownNameError as exc:
            raise self.error(where, str(exc), UnknownNameError) from None

    def path(self, value: str, base: Path, where: str, key: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = base / p
        if not p.exists():
            raise self.error(
                where,
                f"{key} = {value!r}: no such file or folder ({str(p)!r}; relative paths are "
                "read from the config file's folder).",
            )
        return p


# ====================================================================== reading
def example_configs() -> dict[str, Path]:
    """The configs shipped with lumos (``lumos/configs/*.toml``), by name.

    Returns
    -------
    dict of str to Path
        ``{"breast_cancer": .../lumos/configs/breast_cancer.toml, ...}``; run one with
        ``lumos run lumos:NAME`` (``lumos run --example`` runs ``breast_cancer``).
    """
    from importlib import resources

    folder = resources.files("lumos").joinpath("configs")
    if not folder.is_dir():
        return {}
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def _read_source(path: str | os.PathLike[str]) -> tuple[str, str, Path]:
    """``(source name, text, folder for relative paths)`` of a config file or ``lumos:NAME``."""
    from lumos._validation import check_name

    text_path = os.fspath(path)
    if text_path.startswith("lumos:"):
        shipped = example_configs()
        name = check_name(text_path[len("lumos:") :], shipped, kind="shipped config")
        file = shipped[name]
        return text_path, file.read_text(encoding="utf-8"), Path.cwd()
    file = Path(text_path)
    if not file.exists():
        raise InputError(f"no such config file: {text_path!r}; check the path.")
    if not file.is_file():
        raise InputError(f"{text_path!r} is a folder; pass a .toml config file.")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config file {text_path!r} ({exc}).") from None
    return text_path, text, file.resolve().parent


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a pipeline config file.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file, or ``"lumos:NAME"`` for a config shipped with lumos.

    Returns
    -------
    Config

    Raises
    ------
    InputError
        The file is missing, not TOML, lacks ``[data]`` / ``[model]``, or a value has the
        wrong type or points to a missing file; the message names the section and key.
    UnknownNameError
        An unknown section, key, dataset, network, method, metric or surrogate kind; the
        message lists the valid names.
    """
    source, text, base = _read_source(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source} is not valid TOML ({exc}).") from None
    return _parse(raw, source=source, base=base, text=text)


def _parse(raw: dict[str, Any], *, source: str, base: Path, text: str) -> Config:
    check = _Checker(source)
    root_spec = {name: _ANY for name in _SECTIONS} | {"seed": _SEED}
    check.keys(raw, root_spec, "(top level)", hint=" (sections are [data], [model], ...)")
    for name in ("data", "model"):
        if name not in raw:
            raise check.error(
                f"[{name}]",
                "this section is missing; a config needs [data] and [model] "
                "(see the example: lumos run --example --check).",
            )
    for name in ("data", "model", "evaluate", "global", "output"):
        if name in raw and not isinstance(raw[name], dict):
            raise check.error(
                f"[{name}]",
                f"must be a table (a [{name}] header followed by key = value lines), "
                f"got {_toml_type(raw[name])}.",
            )
    seed = raw.get("seed", 0)
    data = _parse_data(raw["data"], check, base)
    model = _parse_model(raw["model"], check, base, seed)
    if model.zoo is not None and data.path is not None and not (data.labels or data.label_column):
        raise check.error(
            "[data]",
            f'[model] trains {model.zoo}, which needs labels: set label_column = "..." '
            '(a CSV column) or labels = "labels.npy".',
        )
    explain_raw = raw.get("explain", [])
    if isinstance(explain_raw, dict):
        raise check.error(
            "[explain]", "write [[explain]] (double brackets): one table per explanation."
        )
    if not isinstance(explain_raw, list) or not all(isinstance(t, dict) for t in explain_raw):
        raise check.error("[[explain]]", "must be tables, one [[explain]] per explanation.")
    explain = tuple(_parse_explain(t, i + 1, check, seed) for i, t in enumerate(explain_raw))
    names = [e.name for e in explain]
    for name in names:
        if names.count(name) > 1:
            raise check.error(
                "[[explain]]",
                f'two tables are named {name!r}; give one of them name = "..." (used for '
                "its file and in the tables).",
            )
    evaluate = None
    if "evaluate" in raw:
        evaluate = _parse_evaluate(raw["evaluate"], check, base, seed)
        if not explain:
            raise check.error(
                "[evaluate]", "scores explanations; add at least one [[explain]] table."
            )
    global_ = _parse_global(raw.get("global", {}), check)
    output = _parse_output(raw.get("output", {}), check)
    return Config(
        data=data,
        model=model,
        explain=explain,
        evaluate=evaluate,
        global_explanations=global_,
        output=output,
        seed=seed,
        source=source,
        text=text,
    )


def _dataset_spec(name: str) -> dict[str, _Kind]:
    from lumos import datasets

    params = inspect.signature(getattr(datasets, name)).parameters.values()
    return {"dataset": _TEXT} | {p.name: _kind_of(p) for p in params}


_FILE_SPEC = {
    "path": _TEXT,
    "key": _TEXT,
    "drop": _TEXTS,
    "labels": _TEXT,
    "labels_key": _TEXT,
    "label_column": _TEXT,
    "class_names": _TEXTS,
    "test_size": _NUMBER,
}


def _parse_data(t: dict[str, Any], check: _Checker, base: Path) -> DataConfig:
    where = "[data]"
    if "dataset" in t and "path" in t:
        raise check.error(where, 'give either dataset = "..." or path = "...", not both.')
    if "dataset" in t:
        if not isinstance(t["dataset"], str):
            raise check.error(where, f"dataset must be a string, got {t['dataset']!r}.")
        name = check.name(t["dataset"], DATASETS, where, "dataset")
        spec = _dataset_spec(name)
        check.keys(t, spec, where, hint=f" for dataset {name!r}")
        options = {k: v for k, v in t.items() if k != "dataset"}
        return DataConfig(dataset=name, options=options)
    if "path" not in t:
        raise check.error(
            where,
            f'set dataset = "..." (one of {", ".join(DATASETS)}) or path = "data.csv" '
            "(a CSV, .npy, .npz or image folder).",
        )
    check.keys(t, _FILE_SPEC, where)
    if "labels" in t and "label_column" in t:
        raise check.error(where, 'give labels = "file" or label_column = "...", not both.')
    if "labels_key" in t and "labels" not in t:
        raise check.error(where, "labels_key selects an array of the labels = file; set labels.")
    path = check.path(t["path"], base, where, "path")
    if "label_column" in t and path.suffix.lower() != ".csv":
        raise check.error(where, "label_column names a CSV column; path is not a .csv file.")
    return DataConfig(
        path=path,
        key=t.get("key"),
        drop=tuple(t.get("drop", ())),
        labels=check.path(t["labels"], base, where, "labels") if "labels" in t else None,
        labels_key=t.get("labels_key"),
        label_column=t.get("label_column"),
        class_names=tuple(t["class_names"]) if "class_names" in t else None,
        test_size=t.get("test_size"),
    )


#: Parameters of the builders and of ``fit`` that the pipeline fills itself.
_FILLED = ("input_dim", "input_shape", "n_classes", "model", "x", "y", "progress", "seed")


def _recipe_spec(name: str) -> tuple[dict[str, _Kind], dict[str, _Kind]]:
    from lumos import zoo

    builder = inspect.signature(getattr(zoo, name)).parameters.values()
    fit = inspect.signature(zoo.fit).parameters.values()
    return (
        {p.name: _kind_of(p) for p in builder if p.name not in _FILLED},
        {p.name: _kind_of(p) for p in fit if p.name not in _FILLED},
    )


def _parse_model(t: dict[str, Any], check: _Checker, base: Path, seed: int) -> ModelConfig:
    where = "[model]"
    if "path" in t and "zoo" in t:
        raise check.error(where, 'give either path = "..." or zoo = "...", not both.')
    if "path" in t:
        check.keys(t, {"path": _TEXT, "trust": _BOOL, "device": _TEXT}, where)
        return ModelConfig(
            path=check.path(t["path"], base, where, "path"),
            trust=t.get("trust", False),
            device=t.get("device"),
        )
    if "zoo" not in t:
        raise check.error(
            where,
            'set path = "model.keras" (a model file) or zoo = "..." (train one of '
            f"{', '.join(ZOO)}).",
        )
    if not isinstance(t["zoo"], str):
        raise check.error(where, f"zoo must be a string, got {t['zoo']!r}.")
    name = check.name(t["zoo"], ZOO, where, "reference network")
    builder, fit = _recipe_spec(name)
    spec = {"zoo": _TEXT, "seed": _SEED} | builder | fit
    check.keys(t, spec, where, hint=f" for zoo {name!r}")
    return ModelConfig(
        zoo=name,
        options={k: v for k, v in t.items() if k in builder},
        training={k: v for k, v in t.items() if k in fit},
        seed=t.get("seed", seed),
    )


def _parse_explain(t: dict[str, Any], i: int, check: _Checker, seed: int) -> ExplainConfig:
    from lumos.attribution._base import get_explainer, parameter_names

    where = f"[[explain]] #{i}"
    if "method" not in t:
        raise check.error(where, 'the key "method" is missing; set method = "..." (lumos methods).')
    if not isinstance(t["method"], str):
        raise check.error(where, f"method must be a string, got {t['method']!r}.")
    try:
        cls = get_explainer(t["method"])
    except UnknownNameError as exc:
        raise check.error(where, str(exc), UnknownNameError) from None
    method = t["method"]
    where = f"[[explain]] #{i} ({method})"
    allowed = [p for p in parameter_names(cls) if p != "background"]
    if "background" in t:
        raise check.error(
            where,
            "give the background as rows of the data: background_rows = N (the first N "
            'training rows) or "all".',
        )
    spec = {
        "method": _TEXT,
        "name": _TEXT,
        "rows": _COUNT,
        "target": _TARGET,
        "background_rows": _ROWS_OR_ALL,
    } | {p: _ANY for p in allowed}
    check.keys(t, spec, where, hint=f" (parameters of {method}: {', '.join(allowed)})")
    if "background_rows" in t and "background" not in parameter_names(cls):
        raise check.error(where, f"{method} takes no background; remove background_rows.")
    name = t.get("name", method)
    if not _NAME.match(name):
        raise check.error(
            where, f"name {name!r} must be letters, digits, '_', '-' or '.' (it names a file)."
        )
    params = {k: v for k, v in t.items() if k in allowed}
    if getattr(cls, "stochastic", False) and "random_state" in allowed:
        params.setdefault("random_state", seed)
    target = t.get("target")
    return ExplainConfig(
        method=method,
        name=name,
        rows=t.get("rows"),
        target=None if target == "predicted" else target,
        background_rows=t.get("background_rows"),
        params=params,
    )


def metric_parameter_names(name: str) -> tuple[str, ...]:
    """The parameters a config or ``--param`` may set for metric ``name``."""
    from lumos.metrics import get_metric

    params = inspect.signature(get_metric(name).func).parameters
    return tuple(p for p in params if p not in ("model", "explanation", "ground_truth"))


def _parse_evaluate(t: dict[str, Any], check: _Checker, base: Path, seed: int) -> EvaluateConfig:
    from lumos.metrics import available_metrics

    where = "[evaluate]"
    spec = {
        "metrics": _METRICS,
        "params": _TABLE,
        "random_state": _SEED,
        "batch_size": _COUNT,
        "ground_truth": _TEXT,
        "ground_truth_key": _TEXT,
        "skip_errors": _BOOL,
    }
    check.keys(t, spec, where)
    requested = t.get("metrics", list(DEFAULT_METRICS))
    params = t.get("params", {})
    metrics: dict[str, dict[str, Any]] | str
    if requested == "all":
        if params:
            raise check.error(where, 'params need the metrics named in metrics, not "all".')
        metrics = "all"
    else:
        known = list(available_metrics())
        names = [check.name(m, known, where, "metric") for m in requested]
        for m in names:
            if names.count(m) > 1:
                raise check.error(where, f"metrics names {m!r} twice.")
        for m in params:
            if m not in names:
                raise check.error(
                    f"[evaluate.params.{m}]",
                    f"{m!r} is not among metrics ({', '.join(names)}); add it there.",
                )
        metrics = {}
        for m in names:
            table = params.get(m, {})
            if not isinstance(table, dict):
                raise check.error(
                    "[evaluate.params]",
                    f"{m} must be a table of parameters ([evaluate.params.{m}]).",
                )
            allowed = metric_parameter_names(m)
            check.keys(table, dict.fromkeys(allowed, _ANY), f"[evaluate.params.{m}]")
            metrics[m] = dict(table)
    if "ground_truth_key" in t and "ground_truth" not in t:
        raise check.error(where, "ground_truth_key selects an array of ground_truth = file.")
    return EvaluateConfig(
        metrics=metrics,
        random_state=t.get("random_state", seed),
        batch_size=t.get("batch_size"),
        ground_truth=(
            check.path(t["ground_truth"], base, where, "ground_truth")
            if "ground_truth" in t
            else None
        ),
        ground_truth_key=t.get("ground_truth_key"),
        skip_errors=t.get("skip_errors", False),
    )


def _parse_global(t: dict[str, Any], check: _Checker) -> GlobalConfig:
    from lumos.importance._scoring import SCORINGS
    from lumos.surrogate import KINDS

    where = "[global]"
    spec = {
        "permutation": _BOOL,
        "n_repeats": _COUNT,
        "scoring": _TEXT,
        "surrogate": _KIND_OR_FALSE,
        "max_depth": _COUNT,
        "n_features": _COUNT,
        "aggregate": _BOOL,
    }
    check.keys(t, spec, where)
    kind = t.get("surrogate", False)
    surrogate = None if kind is False else check.name(kind, KINDS, where, "surrogate kind")
    for key in ("max_depth", "n_features"):
        if key in t and surrogate is None:
            raise check.error(where, f'{key} sets the surrogate; set surrogate = "tree" (or ...).')
    for key in ("n_repeats", "scoring"):
        if key in t and not t.get("permutation", False):
            raise check.error(where, f"{key} sets permutation importance; set permutation = true.")
    scoring = t.get("scoring")
    if scoring is not None:
        scoring = check.name(scoring, SCORINGS, where, "scoring")
    return GlobalConfig(
        permutation=t.get("permutation", False),
        n_repeats=t.get("n_repeats", 5),
        scoring=scoring,
        surrogate=surrogate,
        max_depth=t.get("max_depth"),
        n_features=t.get("n_features"),
        aggregate=t.get("aggregate", True),
    )


def _parse_output(t: dict[str, Any], check: _Checker) -> OutputConfig:
    from lumos._stories import STORIES

    spec = {
        "folder": _TEXT,
        "report": _BOOL,
        "model": _BOOL,
        "title": _TEXT,
        "stories": _TEXTS,
        "heading": _TEXT,
    }
    check.keys(t, spec, "[output]")
    stories = tuple(
        check.name(name, list(STORIES), "[output] stories", "story")
        for name in t.get("stories", [])
    )
    return OutputConfig(
        folder=Path(t.get("folder", "lumos-run")).expanduser(),
        report=t.get("report", True),
        model=t.get("model", True),
        title=t.get("title"),
        stories=stories,
        heading=t.get("heading"),
    )


# ====================================================================== data files
def load_labeled_data(
    path: str | os.PathLike[str],
    *,
    key: str | None = None,
    drop: Sequence[str] = (),
    labels: str | os.PathLike[str] | None = None,
    labels_key: str | None = None,
    label_column: str | None = None,
) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    """Rows of a data file and, optionally, their labels (a CSV column or a second file).

    Parameters
    ----------
    path : str or path-like
        Any file :func:`lumos._io.load_data` reads.
    key : str, optional
        Array of a ``.npz`` data file.
    drop : sequence of str
        CSV columns to leave out.
    labels : str or path-like, optional
        A file of one label per row: CSV with one column, ``.npy``, ``.npz`` (``labels_key``).
    labels_key : str, optional
    label_column : str, optional
        The CSV column holding the labels (taken out of the features).

    Returns
    -------
    x : ndarray of shape (n, *input_shape)
    feature_names : list of str or None
    y : ndarray of shape (n,) or None
        int64 when every label is a whole number (class indices), else float64.

    Raises
    ------
    InputError
        A missing column, labels that are not one number per row, or a row count that
        differs from the data's.
    """
    from lumos._io import csv_header, load_data

    if labels is not None and label_column is not None:
        raise InputError("give labels as a file or as a CSV column, not both.")
    drops = list(drop)
    if label_column is None:
        x, names = load_data(path, key=key, drop=drops or None)
        y = None
        if labels is not None:
            raw, _ = load_data(labels, key=labels_key, row_axis=False)
            y = _label_vector(raw, str(labels), len(x))
        return x, names, y
    header = csv_header(path)
    if header is None:
        raise InputError(
            f"the label column {label_column!r} must be a column of a CSV file; "
            f"{os.fspath(path)!r} is not one."
        )
    if label_column not in header:
        raise InputError(
            f"{os.fspath(path)!r} has no column {label_column!r}; its columns are: "
            f"{', '.join(header)}."
        )
    if label_column in drops:
        raise InputError(f"the label column {label_column!r} is also dropped; drop it once.")
    everything, names_all = load_data(path, key=key, drop=drops or None)
    j = (names_all or []).index(label_column)
    y = _label_vector(everything[:, j], f"column {label_column!r}", len(everything))
    x = np.delete(everything, j, axis=1)
    names = [n for i, n in enumerate(names_all or []) if i != j]
    if x.shape[1] == 0:
        raise InputError(f"{os.fspath(path)!r} has no feature column besides the labels.")
    return x, names, y


def _label_vector(raw: np.ndarray, what: str, n: int) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(
            f"the labels in {what} have shape {arr.shape}; give one label per row (shape (n,))."
        )
    if len(arr) != n:
        raise InputError(
            f"{what} holds {len(arr)} label(s) for {n} data row(s); give one label per row."
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"the labels in {what} have missing or non-finite values; fill them.")
    return arr.astype(np.int64) if np.array_equal(arr, np.round(arr)) else arr


# ====================================================================== evaluation
def _not_rebuildable(explanation: Any) -> str | None:
    """Why metrics cannot re-run the explainer behind a saved explanation (None: they can)."""
    from lumos.attribution._base import _REGISTRY, Explainer, parameter_names

    if isinstance(getattr(explanation, "_explainer", None), Explainer):
        return None
    cls = _REGISTRY.get(explanation.method)
    if cls is None:
        return None  # evaluate itself reports "needs an explainer it can re-run"
    allowed = set(parameter_names(cls))
    recorded = sorted(
        k
        for k, v in explanation.params.items()
        if k in allowed and isinstance(v, str) and v.startswith("<")
    )
    if not recorded:
        return None
    return (
        f"re-runs {explanation.method}, whose {', '.join(recorded)} the file records only by "
        "shape; score it in Python with explainers= (lumos.evaluate) instead"
    )


def evaluate_explanations(
    model: Any,
    explanations: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, Any]] | str,
    *,
    ground_truth: Any = None,
    random_state: Any = 0,
    batch_size: int | None = None,
    errors: str | None = None,
) -> Any:
    """:func:`lumos.evaluate`, whose skipped (explanation, metric) pairs that re-run an
    explainer say why in terms of the saved file when the file cannot rebuild it (a
    background recorded only by its shape).

    Parameters
    ----------
    model : Model
    explanations : dict of str to Explanation
    metrics : dict of str to dict, or "all"
    ground_truth, random_state, batch_size, errors
        As :func:`lumos.evaluate`.

    Returns
    -------
    EvaluationTable
    """
    from lumos.metrics import evaluate
    from lumos.metrics._base import rerun_problem

    table = evaluate(
        model,
        dict(explanations),
        metrics,
        ground_truth=ground_truth,
        random_state=random_state,
        batch_size=batch_size,
        errors=errors,
    )
    # lumos.evaluate skips what it cannot re-run; say why in terms of the saved file
    for n, e in explanations.items():
        why = _not_rebuildable(e)
        if why is None:
            continue
        generic = rerun_problem(e)
        for key, reason in table.skipped.items():
            if key[0] == n and reason == generic:
                table.skipped[key] = why
    return table


# ====================================================================== running
@dataclass
class _Data:
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    feature_names: list[str] | None
    class_names: list[str] | None
    summary: str
    ground_truth: tuple[str, Any] | None = None  # ("rows", per-row array) | ("any", value)


@contextlib.contextmanager
def _where(source: str, where: str) -> Iterator[None]:
    """Prefix lumos errors (and the TypeError / ValueError a bad parameter value raises in a
    library call) with the config file and section they come from."""
    try:
        yield
    except LumosError as exc:
        try:
            wrapped = type(exc)(f"{source} {where}: {exc}")
        except Exception:  # a subclass with another constructor: keep it as it is
            raise exc from None
        raise wrapped from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source} {where}: {type(exc).__name__}: {exc}") from None


def _load_data(config: Config) -> _Data:
    from lumos import datasets

    cfg = config.data
    if cfg.dataset is not None:
        d = getattr(datasets, cfg.dataset)(**cfg.options)
        gt: tuple[str, Any] | None = None
        if "masks_test" in d.ground_truth:
            gt = ("rows", d.ground_truth["masks_test"])
        elif "relevant" in d.ground_truth:
            gt = ("any", list(d.ground_truth["relevant"]))
        options = ", ".join(f"{k}={v!r}" for k, v in cfg.options.items())
        return _Data(
            x_train=d.x_train,
            y_train=d.y_train,
            x_test=d.x_test,
            y_test=d.y_test,
            feature_names=d.feature_names,
            class_names=d.class_names,
            summary=f"{d.name}({options}): {len(d.x_train)} train / {len(d.x_test)} test rows",
            ground_truth=gt,
        )
    path = Path(cfg.path or "")
    x, names, y = load_labeled_data(
        path,
        key=cfg.key,
        drop=cfg.drop,
        labels=cfg.labels,
        labels_key=cfg.labels_key,
        label_column=cfg.label_column,
    )
    test_size = cfg.test_size
    if test_size is None and config.model.zoo is not None:
        test_size = 0.25
    if test_size is None:
        train, test = np.arange(0), np.arange(len(x))
        summary = f"{path.name}: {len(x)} rows"
    else:
        from lumos.datasets.tabular import _stratified_split

        strata = y if y is not None and y.dtype.kind == "i" else np.zeros(len(x), np.int64)
        train, test = _stratified_split(strata, test_size, np.random.default_rng(config.seed))
        summary = f"{path.name}: {len(train)} train / {len(test)} test rows (seed {config.seed})"
    return _Data(
        x_train=x[train],
        y_train=None if y is None else y[train],
        x_test=x[test],
        y_test=None if y is None else y[test],
        feature_names=names,
        class_names=list(cfg.class_names) if cfg.class_names else None,
        summary=summary,
    )


def _check_runs(model: Any, x: np.ndarray) -> None:
    """The model takes these rows (one line with the cause if not)."""
    arr, _ = model.check_input(x[:2], name="the data")
    try:
        model.evaluate(arr)
    except LumosError:
        raise
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise ModelError(
            f"the model fails on rows of shape {arr.shape[1:]}: "
            f"{type(exc).__name__}: {lines[-1] if lines else ''}"
        ) from None


def _make_model(config: Config, data: _Data, progress: bool) -> tuple[Any, Any, str]:
    """``(Model, trained network or None, one-line description)``."""
    from lumos import zoo
    from lumos.models import load_model, wrap

    cfg, src = config.model, config.source
    if cfg.path is not None:
        hints: dict[str, Any] = {}
        if data.feature_names is not None:
            hints["feature_names"] = data.feature_names
        if data.class_names:
            hints["class_names"] = data.class_names
        if cfg.device is not None:
            hints["device"] = cfg.device
        with _where(src, "[model]"):
            model = load_model(cfg.path, trust=cfg.trust, **hints)
            _check_runs(model, data.x_test)
        return model, None, f"{cfg.path.name} ({model.framework})"
    y = data.y_train
    if y is None or cfg.zoo is None:  # load_config refuses recipes without labels
        raise InputError(f"{src} [model]: training needs labels; give them in [data].")
    if y.dtype.kind != "i" or y.min() < 0:
        raise InputError(
            f"{src} [model]: {cfg.zoo} is a classifier and needs class indices 0, 1, ... as "
            "labels; the labels are not whole numbers >= 0."
        )
    n_classes = len(data.class_names) if data.class_names else int(y.max()) + 1
    shape = data.x_train.shape[1:]
    tabular = cfg.zoo.endswith("mlp")
    if tabular and len(shape) != 1:
        raise InputError(
            f"{src} [model]: {cfg.zoo} takes rows of shape (d,), the data has rows of shape "
            f"{shape}; use a CNN (keras_cnn, torch_cnn) or flat rows (digits: flatten = true)."
        )
    if not tabular and len(shape) != 3:
        raise InputError(
            f"{src} [model]: {cfg.zoo} takes images of shape (C, H, W), the data has rows of "
            f"shape {shape}; use an MLP (keras_mlp, torch_mlp) for tables."
        )
    with _where(src, "[model]"):
        build = getattr(zoo, cfg.zoo)
        first = shape[0] if tabular else tuple(shape)
        net = build(first, n_classes, seed=cfg.seed, **cfg.options)
        history = zoo.fit(net, data.x_train, y, seed=cfg.seed, progress=progress, **cfg.training)
        model = wrap(net, feature_names=data.feature_names, class_names=data.class_names)
    options = ", ".join(f"{k}={v!r}" for k, v in {**cfg.options, **cfg.training}.items())
    about = (
        f"{cfg.zoo}({options}{', ' if options else ''}seed={cfg.seed}) trained for "
        f"{history.get('epochs_run')} epoch(s)"
    )
    return model, net, about


def _explain_rows(config: Config, ex: ExplainConfig, data: _Data, i: int) -> tuple[Any, int]:
    n = len(data.x_test)
    rows = ex.rows if ex.rows is not None else min(DEFAULT_ROWS, n)
    if rows > n:
        raise InputError(
            f"{config.source} [[explain]] #{i} ({ex.method}): rows = {rows}, but there are "
            f"only {n} test rows; ask for at most {n}."
        )
    return data.x_test[:rows], rows


def _background(config: Config, ex: ExplainConfig, data: _Data, i: int) -> np.ndarray | None:
    if ex.background_rows is None:
        return None
    pool = data.x_train if len(data.x_train) else data.x_test
    k = len(pool) if ex.background_rows == "all" else int(ex.background_rows)
    if k > len(pool):
        raise InputError(
            f"{config.source} [[explain]] #{i} ({ex.method}): background_rows = {k}, but there "
            f'are only {len(pool)} training rows; ask for at most {len(pool)} or "all".'
        )
    return pool[:k]


def _save_model(net: Any, folder: Path, x: np.ndarray) -> str:
    import keras
    import torch

    if isinstance(net, keras.Model):
        path = folder / "model.keras"
        net.save(path)
        return str(path)
    path = folder / "model.pt"
    example = torch.as_tensor(x[:2], dtype=next(net.parameters()).dtype)
    with torch.no_grad():
        traced = torch.jit.trace(net.eval(), example)
    traced.save(str(path))
    return str(path)


def _write_json(path: Path, obj: Any) -> str:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    return str(path)


def run_config(config: Config, *, progress: bool = False) -> dict[str, str]:
    """Run a pipeline config: data → model → explanations → global → evaluation → report.

    Parameters
    ----------
    config : Config
        From :func:`load_config`.
    progress : bool, default False
        Rich progress on stderr: the training bar of :func:`lumos.zoo.fit` and a spinner on
        every other long step (terminals only).

    Returns
    -------
    dict of str to str
        What was written, by kind: ``"explanation:<name>"`` (one ``.npz`` per
        ``[[explain]]``), ``"global:permutation"`` / ``"global:surrogate"``,
        ``"evaluation_json"``, ``"evaluation_csv"``, ``"performance"`` (when there are
        labels), ``"model"`` (a trained network: ``model.keras`` or TorchScript
        ``model.pt``), ``"report"``, ``"config"`` (a copy of the config).

    Raises
    ------
    LumosError
        Any step's error, its message prefixed with the config file and section.
    """
    from lumos import importance
    from lumos import surrogate as surrogates
    from lumos.attribution import explain
    from lumos.metrics import get_metric
    from lumos.metrics import performance as perf

    src = config.source
    t0 = time.perf_counter()
    with spinner(progress, "loading the data"), _where(src, "[data]"):
        data = _load_data(config)
    # a trained network shows lumos.zoo.fit's own epoch bar instead of a spinner
    with spinner(progress and config.model.path is not None, "loading the model"):
        model, net, model_about = _make_model(config, data, progress)
    performance = None
    if data.y_test is not None:
        with _where(src, "[data]"):
            performance = perf.summary(model, data.x_test, data.y_test)

    local: dict[str, Any] = {}
    explained: dict[str, int] = {}
    for i, ex in enumerate(config.explain, start=1):
        x, rows = _explain_rows(config, ex, data, i)
        params = dict(ex.params)
        background = _background(config, ex, data, i)
        if background is not None:
            params["background"] = background
        where = f"[[explain]] #{i} ({ex.method})"
        with spinner(progress, f"explaining {rows} row(s) with {ex.name}"), _where(src, where):
            local[ex.name] = explain(model, x, method=ex.method, target=ex.target, **params)
        explained[ex.name] = rows

    g = config.global_explanations
    global_: dict[str, Any] = {}
    tree = None
    if g.permutation:
        with (
            spinner(progress, f"permutation importance ({g.n_repeats} repeats)"),
            _where(src, "[global]"),
        ):
            global_["permutation"] = importance.permutation(
                model,
                data.x_test,
                data.y_test,
                scoring=g.scoring,
                n_repeats=g.n_repeats,
                random_state=config.seed,
            )
    if g.aggregate:
        for name, e in local.items():
            if len(e.input_shape) == 1:
                global_[f"{name} (mean |φ|)"] = importance.aggregate(e)
    if g.surrogate is not None:
        kw = {k: v for k, v in (("max_depth", g.max_depth), ("n_features", g.n_features)) if v}
        with spinner(progress, f"fitting a surrogate {g.surrogate}"), _where(src, "[global]"):
            tree = surrogates.fit(
                model, data.x_test, kind=g.surrogate, random_state=config.seed, **kw
            )
        global_[f"surrogate {g.surrogate}"] = tree

    table = None
    ev = config.evaluate
    if ev is not None:
        ground_truth = None
        if ev.ground_truth is not None:
            from lumos._io import load_data

            with _where(src, "[evaluate]"):
                ground_truth, _ = load_data(
                    ev.ground_truth, key=ev.ground_truth_key, row_axis=False
                )
        elif data.ground_truth is not None:
            kind, value = data.ground_truth
            ground_truth = value
            if kind == "rows":
                counts = sorted(set(explained.values()))
                wants = ev.metrics == "all" or any(
                    "ground_truth" in get_metric(m).requires for m in ev.metrics
                )
                if len(counts) > 1 and wants:
                    raise InputError(
                        f"{src} [evaluate]: the dataset's ground truth is one mask per row; give "
                        f"every [[explain]] the same rows (now {counts}) to score it."
                    )
                ground_truth = value[: counts[0]]
        with spinner(progress, "scoring the explanations"), _where(src, "[evaluate]"):
            table = evaluate_explanations(
                model,
                local,
                ev.metrics,
                ground_truth=ground_truth,
                random_state=ev.random_state,
                batch_size=ev.batch_size,
                errors="skip" if ev.skip_errors else None,
            )

    folder = config.output.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{src} [output]: cannot create the folder {str(folder)!r} ({exc})."
        ) from None
    files: dict[str, str] = {}
    with spinner(progress, f"writing to {folder}"):
        for name, e in local.items():
            files[f"explanation:{name}"] = e.save(folder / "explanations" / f"{name}.npz")
        if "permutation" in global_:
            files["global:permutation"] = global_["permutation"].save(
                folder / "global" / "permutation.npz"
            )
        if tree is not None:
            files["global:surrogate"] = tree.save(
                folder / "global" / f"surrogate_{g.surrogate}.npz"
            )
        if table is not None:
            files["evaluation_json"] = str(folder / "evaluation.json")
            (folder / "evaluation.json").write_text(table.to_json() + "\n", encoding="utf-8")
            files["evaluation_csv"] = str(folder / "evaluation.csv")
            (folder / "evaluation.csv").write_text(table.to_csv(), encoding="utf-8")
        if performance is not None:
            files["performance"] = _write_json(folder / "performance.json", performance)
        if net is not None and config.output.model:
            files["model"] = _save_model(net, folder, data.x_test)
        (folder / "config.toml").write_text(config.text, encoding="utf-8")
        files["config"] = str(folder / "config.toml")

    if config.output.report:
        from lumos.report import report

        first_rows = sorted(set(explained.values()))
        description = {
            "data": data.summary,
            "training" if net is not None else "model file": model_about,
            "config": src,
        }
        if first_rows:
            description["explained"] = (
                f"first {'/'.join(map(str, first_rows))} test row(s) by "
                + ", ".join(n if n == e.method else f"{n} ({e.method})" for n, e in local.items())
            )
        title = config.output.title or f"lumos run — {Path(src).stem}"
        stories = []
        if config.output.stories:
            from lumos._stories import STORIES

            for name in config.output.stories:
                with spinner(progress, f"story: {name}"), _where(src, "[output] stories"):
                    stories.append(STORIES[name](seed=config.seed, progress=progress))
        with spinner(progress, "writing the report"), _where(src, "[output]"):
            files["report"] = report(
                model,
                data.x_test,
                data.y_test,
                out=folder / "report.html",
                title=title,
                explanations=local,
                global_explanations=global_,
                surrogate=tree,
                evaluation=table,
                performance=performance,
                description=description,
                notes=[f"Made by `lumos run {src}` in {time.perf_counter() - t0:.0f} s."],
                stories=stories,
                heading=config.output.heading,
            )
    return files


def describe(config: Config) -> list[str]:
    """One line per step the config will run (``lumos run --check``)."""
    d, m = config.data, config.model
    lines = [
        f"data: {d.dataset}({', '.join(f'{k}={v!r}' for k, v in d.options.items())})"
        if d.dataset
        else f"data: {d.path}"
        + (f" (labels: {d.label_column or d.labels})" if d.label_column or d.labels else ""),
        f"model: {m.path}"
        if m.path
        else f"model: train {m.zoo} {dict(m.options) | dict(m.training) | {'seed': m.seed}}",
    ]
    for ex in config.explain:
        rows = ex.rows if ex.rows is not None else f"up to {DEFAULT_ROWS}"
        bg = f", background: {ex.background_rows} training rows" if ex.background_rows else ""
        named = "" if ex.name == ex.method else f" as {ex.name!r}"
        lines.append(f"explain: {ex.method}{named} {ex.params}, {rows} rows{bg}")
    g = config.global_explanations
    if g.permutation:
        lines.append(f"global: permutation importance, {g.n_repeats} repeats")
    if g.surrogate:
        lines.append(f"global: surrogate {g.surrogate}")
    if config.evaluate is not None:
        metrics = config.evaluate.metrics
        lines.append(f"evaluate: {metrics if isinstance(metrics, str) else ', '.join(metrics)}")
    o = config.output
    lines.append(f"output: {o.folder}" + ("" if o.report else " (no report)"))
    return lines


def replace_output(config: Config, folder: str | os.PathLike[str]) -> Config:
    """``config`` writing to ``folder`` instead (``lumos run --out``)."""
    return dataclasses.replace(
        config, output=dataclasses.replace(config.output, folder=Path(folder))
    )
