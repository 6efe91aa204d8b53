"""The `clothes-extractor` command line: thin Typer commands over the library.

Each command parses its options, builds a config, calls one library function and reports.
torch is imported inside the commands that need it, so `--help` and the data commands start
fast. User mistakes (ClothesExtractorError) print one clear message to stderr and exit 1.
The commands register on :data:`app` in the order `--help` lists them: data, training,
inference, then serve/export/demo.
"""

from clothes_extractor.cli.app import app, fail, handle_errors, main
from clothes_extractor.cli import data, train, infer, apps  # noqa: E402,F401  (registers the commands)
from clothes_extractor.cli.data import dedup_command  # noqa: F401  (tests call it)

__all__ = ["app", "fail", "handle_errors", "main"]
