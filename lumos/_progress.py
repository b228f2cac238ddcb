"""One progress display for long steps: a transient Rich spinner with elapsed time on stderr,
shown only in a terminal (a pipe or a file gets nothing, not even a blank line)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def spinner(enabled: bool = True, description: str = "starting") -> Iterator[Callable[[str], None]]:
    """Show a spinner while the block runs; yields ``step(description)`` to relabel it.

    Parameters
    ----------
    enabled : bool
        ``False`` shows nothing.
    description : str
        The first label.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    ) as bar:
        task = bar.add_task(escape(description), total=None)
        yield lambda text: bar.update(task, description=escape(text))
