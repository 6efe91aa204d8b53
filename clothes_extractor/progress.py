"""A rich progress bar on stderr for the commands that loop over files."""

from __future__ import annotations

from collections.abc import Callable


def progress_bar(label: str, total: int) -> tuple[Callable[..., None], Callable[[], None]]:
    """Start a bar of ``total`` steps; returns (advance(n=1), stop)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n=1: bar.advance(task, n)), bar.stop
