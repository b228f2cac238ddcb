"""The ``lumos`` command (Typer). User errors exit with code 2 and a one-line reason."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lumos._progress import spinner
from lumos._version import __version__
from lumos.errors import InputError, LumosError, ModelError, ShapeError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np

    from lumos.models.base import Model

app = typer.Typer(
    name="lumos",
    help="Explain deep learning models and measure whether the explanations can be trusted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


# Options several commands share (one definition each).
KeyOpt = Annotated[str | None, typer.Option(help="Array to read from a DATA .npz file.")]
ClassNamesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated names of the model's outputs.")
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="Run a torch / Keras model on this device (cpu, cuda).")
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Load model formats that can run code from the file (pickle). Only for "
        "files you made yourself.",
    ),
]
BatchSizeOpt = Annotated[int | None, typer.Option(min=1, help="Rows per model call.")]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress indicator.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"lumos {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Explain deep learning models and measure whether the explanations can be trusted."""


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("lumos-demo"),
    rows: Annotated[int, typer.Option(min=1, help="Test rows to explain.")] = 20,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum training epochs.")] = 60,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train the classic Keras MLP on breast cancer, explain test rows, write a page."""
    from lumos.pipeline import run_demo

    console.print("[bold]lumos demo[/bold]: breast cancer (Wisconsin), classic Keras MLP")
    result = run_demo(out, n_rows=rows, epochs=epochs, seed=seed, progress=progress)
    console.print(f"test accuracy: [bold]{result.accuracy:.4f}[/bold]")
    table = Table(title=f"feature_ablation, first {len(result.explanation)} test rows")
    table.add_column("row")
    table.add_column("explained class")
    table.add_column("p")
    table.add_column("top features (attribution)")
    names = result.explanation.class_names or []
    for i, top in enumerate(result.explanation.top_features(3)):
        t = int(result.explanation.target[i])
        table.add_row(
            str(i),
            names[t] if t < len(names) else str(t),
            f"{result.explanation.prediction[i]:.3f}",
            ", ".join(f"{n} ({v:+.3f})" for n, v in top),
        )
    console.print(table)
    for kind, path in result.files.items():
        console.print(f"wrote {kind}: {path}")
    console.print(f"done in {result.timings['total_s']:.1f} s")


@app.command()
def methods() -> None:
    """List the explanation methods with one-line descriptions."""
    from lumos.attribution import available_methods

    table = Table(title="explanation methods")
    table.add_column("name")
    table.add_column("description")
    for name, doc in available_methods().items():
        table.add_row(name, doc)
    console.print(table)


@app.command()
def metrics() -> None:
    """List the explanation-quality metrics by category, with their direction."""
    from lumos.metrics import available_metrics, get_metric

    table = Table(title="explanation metrics")
    table.add_column("name", no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("better", no_wrap=True)
    table.add_column("description")
    for name, doc in available_metrics().items():
        info = get_metric(name)
        table.add_row(name, info.category, "higher" if info.higher_is_better else "lower", doc)
    console.print(table)


# ---------------------------------------------------------------------- explain / evaluate
_MODEL_HELP = (
    "Model file: .keras, .onnx, TorchScript .pt / .pth / .ts, or .pt2 (torch.export). "
    "Pickle files are refused unless --trust."
)
_DATA_HELP = (
    "Rows: a CSV file (header = feature names), .npy, .npz (one array, or --key), a PNG / "
    "JPEG image or a folder of them (scaled to [0, 1], channels first)."
)


def _parse_value(text: str) -> Any:
    """A ``--param`` value: bool, None, int, float, a JSON list / object, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.strip().startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"cannot parse {text!r} as a JSON list / object ({exc}).") from None
    return text


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["n_steps=32", "random_state=0"]`` → ``{"n_steps": 32, "random_state": 0}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--param {item!r} is not of the form key=value (e.g. n_steps=32).")
        if name in out:
            raise InputError(f"--param {name} is given twice; give each parameter once.")
        out[name] = _parse_value(value)
    return out


def _parse_target(text: str) -> Any:
    if text.strip().lower() == "predicted":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _metric_request(requested: list[str], param: list[str] | None) -> Any:
    """``--metrics`` / ``--param`` as :func:`lumos.evaluate` takes them: ``"all"`` or
    ``{metric: parameters}``; unknown or repeated names fail here, listing the valid ones."""
    from lumos.metrics import get_metric

    if requested == ["all"]:
        if param:
            raise InputError("--param needs the metrics named in --metrics, not 'all'.")
        return "all"
    for name in requested:
        get_metric(name)
    if len(set(requested)) != len(requested):
        raise InputError(f"--metrics names a metric twice: {requested}.")
    return _metric_params(param, requested)


def _split_names(values: list[str] | None) -> list[str]:
    """Comma-separated and repeated option values as one list (``a,b --x c`` → a, b, c)."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def _load_rows(
    path: str | os.PathLike[str],
    *,
    key: str | None,
    drop: list[str] | None,
    row_axis: bool = True,
) -> tuple[np.ndarray, list[str] | None]:
    from lumos._io import load_data

    return load_data(path, key=key, drop=drop or None, row_axis=row_axis)


def _load_model(
    path: Path,
    *,
    trust: bool,
    feature_names: list[str] | None,
    class_names: list[str] | None,
    device: str | None,
) -> Model:
    from lumos.models import load_model

    hints: dict[str, Any] = {}
    if feature_names is not None:
        hints["feature_names"] = feature_names
    if class_names:
        hints["class_names"] = class_names
    if device is not None:
        hints["device"] = device
    return load_model(path, trust=trust, **hints)


def _check_model_runs(
    model: Model, x: np.ndarray, *, what: str, path: Path, names: list[str] | None = None
) -> None:
    """Fail early, with one line, when the model cannot take these rows.

    ``check_input`` catches a wrong row shape when the model states its input shape; models
    that do not (TorchScript, torch.export) are run on one row and on two rows, so a wrong
    shape or a batch size frozen at export time is reported before the long step starts.
    """
    import numpy as np

    from lumos._io import label_like_columns

    labels = label_like_columns(names)
    hint = (
        f"; {what} has a column named like a label ({', '.join(labels)}): leave it out with "
        f"--drop {labels[0]}"
        if labels
        else ""
    )
    try:
        arr, _ = model.check_input(x, name=what)
    except ShapeError as exc:
        raise ShapeError(f"{exc}{hint}") from None
    for rows in (arr[:1], arr[np.arange(2) % len(arr)]):
        try:
            model.evaluate(rows)
        except LumosError:
            raise
        except Exception as exc:
            # the last line is the cause (TorchScript puts its own traceback first)
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            last = lines[-1] if lines else ""
            cause = (
                last if last.split(":")[0].endswith("Error") else f"{type(exc).__name__}: {last}"
            )
            export = (
                "; a .pt2 model exported with a fixed batch size needs a dynamic batch "
                "dimension (torch.export.export(..., dynamic_shapes=...))"
                if path.suffix.lower() == ".pt2"
                else ""
            )
            raise ModelError(
                f"the model in {str(path)!r} fails on {what} rows of shape {arr.shape[1:]} "
                f"(batch of {len(rows)}): {cause}{hint}{export}"
            ) from None


def _print_table(table: Table) -> None:
    """A terminal wraps the table to its width; a file or pipe gets it unwrapped."""
    if console.is_terminal:
        console.print(table)
    else:
        wide = console.options.update_width(10_000)
        width = max(console.width, console.measure(table, options=wide).maximum)
        Console(file=console.file, width=width).print(table)


def _write_text(path: Path, text: str, what: str) -> None:
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write the {what} to {str(path)!r} ({exc}).") from None


_EXPLAIN_HELP = (
    "Explain a model file on a data file with one method and write the explanation (.npz)."
    "\n\nExample: lumos explain model.pt rows.csv --drop label --method integrated_gradients "
    "--param n_steps=32 --out ig.npz"
)
_EVALUATE_HELP = (
    "Score saved explanations on metrics: prints the method × metric table."
    "\n\nThe explanations are scored on the rows stored in them; DATA checks that they are "
    "the rows meant (each explanation's rows must be the first rows of DATA, equal to rtol "
    "1e-6) and gives the model its feature names; '-' skips the check."
    "\n\nExample: lumos evaluate model.pt rows.csv --drop label ig.npz shap.npz "
    "--metrics deletion,sparseness --json table.json"
)


@app.command(help=_EXPLAIN_HELP)
def explain(
    model: Annotated[Path, typer.Argument(help=_MODEL_HELP, show_default=False)],
    data: Annotated[Path, typer.Argument(help=_DATA_HELP, show_default=False)],
    method: Annotated[
        str,
        typer.Option(
            "--method", "-m", help="Method name (see `lumos methods`).", show_default=False
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Explanation file to write (.npz).", show_default=False),
    ],
    target: Annotated[
        str,
        typer.Option(
            help="Output to explain: an index, a class name (see --class-names), or 'predicted'."
        ),
    ] = "predicted",
    background: Annotated[
        Path | None,
        typer.Option(help="Background rows (same formats as DATA) for methods that take them."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Method parameter key=value (int, float, true/false, none, JSON list, or "
            "text); repeat for several.",
        ),
    ] = None,
    rows: Annotated[int | None, typer.Option(min=1, help="Explain the first N rows only.")] = None,
    key: KeyOpt = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="CSV column to leave out (e.g. the label); repeat or comma-separate."),
    ] = None,
    background_key: Annotated[
        str | None, typer.Option(help="Array to read from a background .npz file.")
    ] = None,
    class_names: ClassNamesOpt = None,
    device: DeviceOpt = None,
    trust: TrustOpt = False,
    top: Annotated[int, typer.Option(min=1, help="Features listed in the summary (tables).")] = 5,
    progress: ProgressOpt = True,
) -> None:
    """Explain a model file on a data file with one method and write the explanation (.npz)."""
    import numpy as np

    from lumos._io import csv_header
    from lumos.attribution import explain as run_explain
    from lumos.attribution._base import get_explainer, parameter_names

    # everything that needs no file is checked before the model is loaded
    allowed = parameter_names(get_explainer(method))
    params = _parse_params(param)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UnknownNameError(
            f"{method!r} has no parameter(s) {unknown}; its parameters are: {', '.join(allowed)}."
        )
    if "background" in params:
        raise InputError("give background rows as a file with --background FILE, not --param.")
    if background is not None and "background" not in allowed:
        raise InputError(
            f"{method!r} takes no background; its parameters are: {', '.join(allowed)}."
        )
    tgt = _parse_target(target)
    drops = _split_names(drop)
    classes = _split_names([class_names]) if class_names else None
    if isinstance(tgt, str) and not classes:
        raise InputError(
            f"--target {target!r} is a class name, but model files carry no class names: "
            "give them with --class-names NAME,NAME,... or pass an output index."
        )

    with spinner(progress) as step:
        step(f"reading {data}")
        x, names = _load_rows(data, key=key, drop=drops)
        if rows is not None:
            x = x[:rows]
        if background is not None:
            step(f"reading {background}")
            header = csv_header(background) or []
            bg, bg_names = _load_rows(
                background, key=background_key, drop=[d for d in drops if d in header]
            )
            if names is not None and bg_names is not None and bg_names != names:
                raise InputError(
                    f"the background columns {bg_names} differ from DATA's {names}; give both "
                    "files the same columns in the same order."
                )
            params["background"] = bg
        step(f"loading {model}")
        m = _load_model(model, trust=trust, feature_names=names, class_names=classes, device=device)
        _check_model_runs(m, x, what="DATA", path=model, names=names)
        step(f"explaining {len(x)} row(s) with {method}")
        e = run_explain(m, x, method=method, target=tgt, **params)
    try:
        written = e.save(out)
    except OSError as exc:
        raise InputError(f"cannot write the explanation to {str(out)!r} ({exc}).") from None

    console.print(
        f"[bold]{e.method}[/bold]: {len(e)} row(s) of shape {e.input_shape}, "
        f"target {escape(target)}, {e.elapsed_s or 0.0:.2f} s"
    )
    if len(e.input_shape) == 1:
        mean_abs = np.abs(e.values).mean(axis=0)
        mean = e.values.mean(axis=0)
        order = np.argsort(-mean_abs, kind="stable")[: min(top, e.n_features)]
        table = Table(title=f"top features (mean |attribution| over {len(e)} row(s))")
        table.add_column("feature")
        table.add_column("mean |attribution|", justify="right")
        table.add_column("mean attribution", justify="right")
        for j in order:
            table.add_row(escape(e.feature_label(int(j))), f"{mean_abs[j]:.4g}", f"{mean[j]:+.4g}")
        _print_table(table)
    console.print(f"wrote explanation: {escape(written)}")


def _explanation_names(paths: list[Path], methods: list[str]) -> list[str]:
    """Display names: the method, or ``method (file stem)`` where two share a method."""
    names = []
    for path, method in zip(paths, methods, strict=True):
        name = method if methods.count(method) == 1 else f"{method} ({path.stem})"
        while name in names:
            name = f"{name}'"
        names.append(name)
    return names


def _metric_params(items: list[str] | None, requested: list[str]) -> dict[str, dict[str, Any]]:
    """``["deletion.n_steps=10"]`` → ``{"deletion": {"n_steps": 10}}``."""
    out: dict[str, dict[str, Any]] = {name: {} for name in requested}
    for item in items or []:
        head, sep, value = item.partition("=")
        metric, dot, name = head.strip().partition(".")
        if not sep or not dot or not metric or not name:
            raise InputError(
                f"--param {item!r} is not of the form metric.key=value (e.g. deletion.n_steps=10)."
            )
        if metric not in out:
            raise InputError(
                f"--param {item!r} is for metric {metric!r}, which is not among --metrics "
                f"({', '.join(requested)})."
            )
        if name in out[metric]:
            raise InputError(f"--param {head.strip()} is given twice; give each parameter once.")
        out[metric][name] = _parse_value(value)
    return out


@app.command(help=_EVALUATE_HELP)
def evaluate(
    model: Annotated[Path, typer.Argument(help=_MODEL_HELP, show_default=False)],
    data: Annotated[
        str,
        typer.Argument(
            help=_DATA_HELP + " The explanations must have been computed on its first rows; "
            "'-' scores the rows stored in each explanation.",
            show_default=False,
        ),
    ],
    explanations: Annotated[
        list[Path],
        typer.Argument(help="Explanation files written by `lumos explain`.", show_default=False),
    ],
    metrics: Annotated[
        list[str],
        typer.Option(
            "--metrics",
            "-M",
            help="Metric names, comma-separated or repeated (see `lumos metrics`), or 'all'.",
            show_default=False,
        ),
    ],
    ground_truth: Annotated[
        Path | None,
        typer.Option(help="Ground truth for localisation metrics (masks or relevant features)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the table as JSON records.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Metric parameter metric.key=value (e.g. deletion.n_steps=10)."
        ),
    ] = None,
    key: KeyOpt = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="CSV column to leave out (e.g. the label); repeat or comma-separate."),
    ] = None,
    ground_truth_key: Annotated[
        str | None, typer.Option(help="Array to read from a ground-truth .npz file.")
    ] = None,
    class_names: ClassNamesOpt = None,
    random_state: Annotated[
        int, typer.Option(min=0, help="Seed of every stochastic metric (same for all methods).")
    ] = 0,
    batch_size: BatchSizeOpt = None,
    skip_errors: Annotated[
        bool,
        typer.Option(
            "--skip-errors", help="Record a metric that fails as skipped instead of stopping."
        ),
    ] = False,
    device: DeviceOpt = None,
    trust: TrustOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Score saved explanations on metrics: prints the method × metric table.

    The explanations are scored on the rows stored in them; DATA checks that they are the
    rows meant (each explanation's rows must be the first rows of DATA, equal to rtol 1e-6)
    and gives the model its feature names; '-' skips the check.
    """
    import numpy as np

    from lumos._io import label_like_columns
    from lumos.explanation import Explanation
    from lumos.metrics import evaluate as run_evaluate
    from lumos.metrics import get_metric

    requested = _split_names(metrics)
    if not requested:
        raise InputError("--metrics is empty; name metrics (see `lumos metrics`) or 'all'.")
    request = _metric_request(requested, param)
    classes = _split_names([class_names]) if class_names else None

    with spinner(progress) as step:
        loaded = []
        for path in explanations:
            step(f"reading {path}")
            loaded.append(Explanation.load(path))
        names = _explanation_names(explanations, [e.method for e in loaded])
        feature_names = loaded[0].feature_names
        if data != "-":
            step(f"reading {data}")
            x, feature_names = _load_rows(data, key=key, drop=_split_names(drop))
            for path, e in zip(explanations, loaded, strict=True):
                same = (
                    x.shape[1:] == e.input_shape
                    and len(x) >= len(e)
                    and np.allclose(x[: len(e)], e.data, rtol=1e-6, atol=1e-9)
                )
                if not same:
                    labels = label_like_columns(feature_names)
                    hint = f" (DATA has a label-like column: --drop {labels[0]}?)" if labels else ""
                    raise InputError(
                        f"{str(path)!r} explains {len(e)} row(s) of shape {e.input_shape} that "
                        f"are not the first rows of DATA (shape {x.shape}){hint}; pass the DATA "
                        "file (and --key / --drop) given to `lumos explain`, or '-' to score "
                        "the rows stored in the explanations."
                    )
        elif key is not None or drop:
            raise InputError("--key / --drop apply to a DATA file; DATA is '-'.")
        gt = None
        if ground_truth is not None:
            step(f"reading {ground_truth}")
            gt, _ = _load_rows(ground_truth, key=ground_truth_key, drop=None, row_axis=False)
        step(f"loading {model}")
        m = _load_model(
            model, trust=trust, feature_names=feature_names, class_names=classes, device=device
        )
        for path, e in zip(explanations, loaded, strict=True):
            _check_model_runs(m, e.data, what=f"the rows of {path.name}", path=model)
        step(f"scoring {len(loaded)} explanation(s)")
        table = run_evaluate(
            m,
            dict(zip(names, loaded, strict=True)),
            request,
            ground_truth=gt,
            random_state=random_state,
            batch_size=batch_size,
            errors="skip" if skip_errors else None,
        )

    ranks = table.ranks()
    counts = sorted({len(e) for e in loaded})
    out = Table(
        title=f"explanation quality, {'/'.join(map(str, counts))} row(s); "
        "mean ± stderr #rank; ↑ higher, ↓ lower is better"
    )
    out.add_column("metric", no_wrap=True)
    for name in table.methods:
        out.add_column(escape(name), justify="right")
    for metric in table.metrics:
        arrow = "↑" if get_metric(metric).higher_is_better else "↓"
        cells = []
        for name in table.methods:
            r = table.results.get((name, metric))
            if r is None or not np.isfinite(r.mean):
                cells.append("—")
                continue
            se = f" ± {r.stderr:.2g}" if np.isfinite(r.stderr) else ""
            cells.append(f"{r.mean:.4g}{se} #{ranks[metric][name]:g}")
        out.add_row(f"{metric} {arrow}", *cells)
    _print_table(out)
    for (name, metric), why in table.skipped.items():
        console.print(f"skipped {escape(metric)} for {escape(name)}: {escape(why)}")
    if json_out is not None:
        _write_text(json_out, table.to_json() + "\n", "JSON table")
        console.print(f"wrote JSON: {escape(str(json_out))}")
    if csv_out is not None:
        _write_text(csv_out, table.to_csv(), "CSV table")
        console.print(f"wrote CSV: {escape(str(csv_out))}")
    console.print(f"done in {table.elapsed_s:.1f} s")


# ---------------------------------------------------------------------- report / run
def _quality_table(records: list[dict[str, Any]], title: str) -> Table:
    """Method × metric table from :meth:`EvaluationTable.rows` records:
    mean ± stderr #rank, each metric with its direction."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    metrics = list(dict.fromkeys(r["metric"] for r in records))
    cells = {(r["method"], r["metric"]): r for r in records}
    out = Table(title=title)
    out.add_column("metric", no_wrap=True)
    for name in methods:
        out.add_column(escape(name), justify="right")
    for metric in metrics:
        first = cells[(methods[0], metric)]
        arrow = "↑" if first["higher_is_better"] else "↓"
        row = []
        for name in methods:
            r = cells.get((name, metric))
            if r is None or r["mean"] is None:
                row.append("—")
                continue
            se = f" ± {r['stderr']:.2g}" if r["stderr"] is not None else ""
            rank = f" #{r['rank']:g}" if r["rank"] is not None else ""
            row.append(f"{r['mean']:.4g}{se}{rank}")
        out.add_row(f"{escape(metric)} {arrow}", *row)
    return out


def _print_quality(records: list[dict[str, Any]], title: str) -> None:
    _print_table(_quality_table(records, title))
    for r in records:
        if r["skipped"]:
            console.print(
                f"skipped {escape(r['metric'])} for {escape(r['method'])}: {escape(r['skipped'])}"
            )


def _print_performance(performance: dict[str, float], title: str) -> None:
    table = Table(title=title)
    table.add_column("score")
    table.add_column("value", justify="right")
    for name, value in performance.items():
        table.add_row(name, f"{value:.4g}")
    _print_table(table)


_REPORT_HELP = (
    "Write one self-contained HTML report of a model file on a data file: performance "
    "(with labels), permutation importance and a surrogate tree (tables), the local "
    "explanations given and their quality on metrics, a verdict and caveats."
    "\n\nPermutation importance runs on tables with labels, the surrogate on tables, unless "
    "--permutation / --surrogate (or --no-...) say otherwise. Metrics that re-run an "
    "explainer (robustness, randomisation) are skipped, with the reason, for explanation "
    "files that record their background only by its shape."
    "\n\nExample: lumos report model.pt rows.csv --label-column label ig.npz shap.npz "
    "--out report.html"
)


@app.command(help=_REPORT_HELP)
def report(
    model: Annotated[Path, typer.Argument(help=_MODEL_HELP, show_default=False)],
    data: Annotated[
        Path,
        typer.Argument(help=_DATA_HELP + " The model is judged on every row.", show_default=False),
    ],
    explanations: Annotated[
        list[Path] | None,
        typer.Argument(help="Explanation files written by `lumos explain`.", show_default=False),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    labels: Annotated[
        Path | None, typer.Option(help="Labels of DATA's rows: a .npy / .npz / one-column CSV.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="The CSV column of DATA holding the labels.")
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-M",
            help="Metrics scoring the explanations, comma-separated or repeated, or 'all' "
            "(default: deletion, faithfulness_correlation, sparseness).",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Metric parameter metric.key=value (e.g. deletion.n_steps=10)."
        ),
    ] = None,
    surrogate: Annotated[
        bool | None,
        typer.Option(
            "--surrogate/--no-surrogate",
            help="Fit a surrogate tree to the model (default: on tables).",
            show_default=False,
        ),
    ] = None,
    max_depth: Annotated[int, typer.Option(min=1, help="Depth of the surrogate tree.")] = 3,
    permutation: Annotated[
        bool | None,
        typer.Option(
            "--permutation/--no-permutation",
            help="Permutation importance (against the labels, else the model's own "
            "predictions) (default: on tables with labels).",
            show_default=False,
        ),
    ] = None,
    n_repeats: Annotated[int, typer.Option(min=1, help="Permutation repeats.")] = 5,
    title: Annotated[str | None, typer.Option(help="Title of the report.")] = None,
    key: KeyOpt = None,
    labels_key: Annotated[
        str | None, typer.Option(help="Array to read from a --labels .npz file.")
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="CSV column to leave out (e.g. an id); repeat or comma-separate."),
    ] = None,
    class_names: ClassNamesOpt = None,
    random_state: Annotated[
        int, typer.Option(min=0, help="Seed of permutations, the surrogate and the metrics.")
    ] = 0,
    batch_size: BatchSizeOpt = None,
    device: DeviceOpt = None,
    trust: TrustOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Write one self-contained HTML report of a model file on a data file."""
    from lumos import importance
    from lumos import surrogate as surrogates
    from lumos._config import (
        DEFAULT_METRICS,
        evaluate_explanations,
        load_labeled_data,
        metric_parameter_names,
    )
    from lumos.explanation import Explanation
    from lumos.metrics import performance as perf
    from lumos.report import report as write_report

    # everything that needs no file is checked before anything is loaded
    if labels is not None and label_column is not None:
        raise InputError("give the labels with --labels FILE or --label-column COL, not both.")
    if labels_key is not None and labels is None:
        raise InputError("--labels-key selects an array of the --labels file; give --labels.")
    paths = list(explanations or [])
    requested = _split_names(metrics)
    if requested and not paths:
        raise InputError("--metrics scores explanations; give explanation files after DATA.")
    if param and not paths:
        raise InputError("--param sets metric parameters; give explanation files after DATA.")
    request: Any = None
    if paths:
        requested = requested or list(DEFAULT_METRICS)
        request = _metric_request(requested, param)
        if request != "all":
            for name, given in request.items():
                allowed = metric_parameter_names(name)
                unknown = sorted(set(given) - set(allowed))
                if unknown:
                    raise UnknownNameError(
                        f"metric {name!r} has no parameter(s) {unknown}; its parameters are: "
                        f"{', '.join(allowed)}."
                    )
    classes = _split_names([class_names]) if class_names else None

    notes: list[str] = []
    with spinner(progress) as step:
        step(f"reading {data}")
        x, names, y = load_labeled_data(
            data,
            key=key,
            drop=_split_names(drop),
            labels=labels,
            labels_key=labels_key,
            label_column=label_column,
        )
        loaded = []
        for path in paths:
            step(f"reading {path}")
            e = Explanation.load(path)
            if e.input_shape != x.shape[1:]:
                raise ShapeError(
                    f"{str(path)!r} explains rows of shape {e.input_shape} but DATA has rows of "
                    f"shape {x.shape[1:]}; pass the DATA file (and --key / --drop / "
                    "--label-column) the explanation was made on."
                )
            loaded.append(e)
        local = dict(
            zip(_explanation_names(paths, [e.method for e in loaded]), loaded, strict=True)
        )
        step(f"loading {model}")
        m = _load_model(model, trust=trust, feature_names=names, class_names=classes, device=device)
        _check_model_runs(m, x, what="DATA", path=model, names=names)
        tabular = x.ndim == 2
        performance = None if y is None else perf.summary(m, x, y, batch_size=batch_size)

        global_: dict[str, Any] = {}
        if permutation if permutation is not None else (tabular and y is not None):
            step(f"permutation importance ({n_repeats} repeats over {len(x)} rows)")
            try:
                global_["permutation"] = importance.permutation(
                    m, x, y, n_repeats=n_repeats, batch_size=batch_size, random_state=random_state
                )
            except LumosError as exc:
                if permutation:
                    raise
                notes.append(f"no permutation importance: {exc}")
        for name, e in local.items():
            if len(e.input_shape) == 1:
                global_[f"{name} (mean |φ|)"] = importance.aggregate(e)
        tree = None
        if surrogate if surrogate is not None else tabular:
            step(f"fitting a surrogate tree of depth {max_depth}")
            try:
                tree = surrogates.fit(
                    m,
                    x,
                    kind="tree",
                    max_depth=max_depth,
                    batch_size=batch_size,
                    random_state=random_state,
                )
                global_["surrogate tree"] = tree
            except LumosError as exc:
                if surrogate:
                    raise
                notes.append(f"no surrogate tree: {exc}")
        table = None
        if local:
            step(f"scoring {len(local)} explanation(s)")
            table = evaluate_explanations(
                m, local, request, random_state=random_state, batch_size=batch_size
            )
        step(f"writing {out}")
        description = {"data file": data.name, "model file": model.name}
        if paths:
            description["explanation files"] = ", ".join(p.name for p in paths)
        try:
            written = write_report(
                m,
                x,
                y,
                out=out,
                title=title or f"lumos report — {model.name} on {data.name}",
                explanations=local,
                global_explanations=global_,
                surrogate=tree,
                evaluation=table,
                performance=performance,
                description=description,
                notes=notes,
            )
        except OSError as exc:
            raise InputError(f"cannot write the report to {str(out)!r} ({exc}).") from None

    console.print(
        f"[bold]{escape(model.name)}[/bold] on {len(x)} row(s) of {escape(data.name)}"
        + ("" if y is not None else " (no labels: no performance)")
    )
    if performance is not None:
        _print_performance(performance, "performance")
    if "permutation" in global_:
        g = global_["permutation"]
        top = Table(title=f"permutation importance ({n_repeats} repeats), top features")
        top.add_column("feature")
        top.add_column("importance", justify="right")
        for j in g.ranking[:5]:
            se = f" ± {g.stderr[j]:.2g}" if g.stderr is not None else ""
            top.add_row(escape(g.feature_label(int(j))), f"{g.importance[j]:.4g}{se}")
        _print_table(top)
    if tree is not None:
        console.print(f"surrogate tree (depth {max_depth}): fidelity {tree.fidelity:.4f}")
    if table is not None:
        _print_quality(
            table.rows(), "explanation quality: mean ± stderr #rank; ↑ higher, ↓ lower is better"
        )
    for note in notes:
        console.print(escape(note))
    console.print(f"wrote report: {escape(written)}", soft_wrap=True)


_RUN_HELP = (
    "Run the whole pipeline from one TOML config file: data, model (a file or a training "
    "recipe), explanations, global importance, evaluation and the report."
    "\n\nCONFIG is a .toml file, or lumos:NAME for a config shipped with lumos "
    "(lumos:breast_cancer, which --example runs). Sections: \\[data], \\[model], "
    "\\[\\[explain]], \\[evaluate], \\[global], \\[output]; --check validates a config "
    "and prints its steps."
    "\n\nExample: lumos run pipeline.toml --out results"
)


@app.command(help=_RUN_HELP)
def run(
    config: Annotated[
        str | None,
        typer.Argument(help="Config file (.toml), or lumos:NAME.", show_default=False),
    ] = None,
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help="Run the shipped example lumos:breast_cancer (the demo's first story, small).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (instead of \\[output] folder)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Check the config and list its steps; run nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run the whole pipeline from one TOML config file."""
    from lumos._config import describe, load_config, replace_output, run_config

    if example and config is not None:
        raise InputError("give a CONFIG file or --example, not both.")
    if config is None and not example:
        raise InputError("give a CONFIG.toml file, lumos:NAME for a shipped config, or --example.")
    cfg = load_config("lumos:breast_cancer" if example else str(config))
    if out is not None:
        cfg = replace_output(cfg, out)
    if check:
        console.print(f"[bold]{escape(cfg.source)}[/bold]: the config is valid")
        for line in describe(cfg):
            console.print(escape(line), soft_wrap=True)
        return
    console.print(f"[bold]lumos run[/bold] {escape(cfg.source)}")
    files = run_config(cfg, progress=progress)
    if "performance" in files:
        with open(files["performance"], encoding="utf-8") as fh:
            _print_performance(json.load(fh), "performance on the test rows")
    if "evaluation_json" in files:
        with open(files["evaluation_json"], encoding="utf-8") as fh:
            _print_quality(
                json.load(fh),
                "explanation quality: mean ± stderr #rank; ↑ higher, ↓ lower is better",
            )
    for kind, path in files.items():
        console.print(f"wrote {escape(kind)}: {escape(path)}", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning lumos errors into exit code 2 with one line."""
    try:
        app(args=argv, standalone_mode=False)
    except LumosError as exc:
        # one line, whatever the message holds (newlines from a wrapped library's error,
        # square brackets that Rich would read as markup)
        line = " ".join(str(exc).split())
        err_console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except Exception as exc:
        # usage errors (unknown command, bad option) from Typer's click layer
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
