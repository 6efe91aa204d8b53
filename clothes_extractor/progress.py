"""A rich progress bar on stderr for the commands that loop over files."""

from __future__ import annotations

from collections.abc import Callable


def progress_bar(
    label: str, total: int, *, console=None, transient: bool = False, enabled: bool = True
) -> tuple[Callable[..., None], Callable[[], None]]:
    """Start a bar of ``total`` steps on ``console`` (default: stderr); returns (advance(n=1),
    stop). ``enabled=False`` draws nothing and returns functions that do nothing."""
    if not enabled:
        return (lambda n=1: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console or Console(stderr=True), transient=transient,
    )
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n=1: bar.advance(task, n)), bar.stop
