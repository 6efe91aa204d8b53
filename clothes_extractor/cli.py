"""The `clothes-extractor` command line: thin Typer commands over the library.

Each command parses its options, builds a config, calls one library function and reports.
torch is imported inside the commands that need it, so `--help` and the data commands start
fast. User mistakes (ClothesExtractorError) print one clear message to stderr and exit 1.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from clothes_extractor import __version__

app = typer.Typer(
    name="clothes-extractor",
    help=(
        "Virtual try-off on VITON-HD: from a photo of a person and a mask of the garment, "
        "generate the flat catalogue image of the garment.\n\n"
        "Typical flow: make-sample-data (or download VITON-HD) -> downsample -> split -> "
        "train-unet / train-gan -> evaluate -> extract."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error (no traceback) and return the Exit to raise."""
    _stderr().print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn):
    """Turn the library's user errors into a message and exit code 1, Ctrl-C into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from clothes_extractor.errors import ClothesExtractorError

        try:
            return fn(*args, **kwargs)
        except ClothesExtractorError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clothes-extractor {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


# --- data commands -------------------------------------------------------------------------------
# (make-sample-data, downsample, split: no torch import)


# --- training commands ---------------------------------------------------------------------------


# --- evaluation and inference --------------------------------------------------------------------


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
