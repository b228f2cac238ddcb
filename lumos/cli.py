"""The ``lumos`` command (Typer). User errors exit with code 2 and a one-line reason."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lumos._version import __version__
from lumos.errors import LumosError

app = typer.Typer(
    name="lumos",
    help="Explain deep learning models and measure whether the explanations can be trusted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


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
    rows: Annotated[int, typer.Option(min=1, help="Test rows to explain.")] = 5,
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning lumos errors into exit code 2 with one line."""
    try:
        app(args=argv, standalone_mode=False)
    except LumosError as exc:
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
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
