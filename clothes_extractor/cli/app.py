"""The command line's Typer app, its error handling and its entry point.

Each command parses its options, builds a config, calls one library function and reports.
torch is imported inside the commands that need it, so `--help` and the data commands start
fast. User mistakes (ClothesExtractorError) print one clear message to stderr and exit 1.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated

import typer

from clothes_extractor import __version__

if TYPE_CHECKING:
    pass

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
    from rich.markup import escape

    # escaped: a message may hold brackets, e.g. pip install "clothes-extractor[app]"
    _stderr().print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _user_message(exc: Exception) -> str:
    """The message of a user error; one raised in a DataLoader worker comes back wrapped with the
    worker's traceback as text: keep only its last line, the original message."""
    message = str(exc)
    if "Original Traceback" in message:
        last = [line for line in message.splitlines() if line.strip()][-1]
        message = last.split(": ", 1)[1] if last.startswith("clothes_extractor.errors.") else last
    return message


def handle_errors(fn):
    """Turn the library's user errors into a message and exit code 1, Ctrl-C into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from clothes_extractor.errors import ClothesExtractorError

        try:
            return fn(*args, **kwargs)
        except ClothesExtractorError as exc:
            raise fail(_user_message(exc)) from None
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



def main() -> None:
    from clothes_extractor.runtime import prefer_short_spin

    prefer_short_spin()  # before any command imports torch (see clothes_extractor.runtime)
    app()
