"""`serve`: a web page (gradio) that turns a photo into a garment, and its API.

- :mod:`clothes_extractor.serve.engine`: the requests, on the library functions `extract` uses
  (no gradio: testable without a browser);
- :mod:`clothes_extractor.serve.page`: the gradio page and its API endpoints;
- :mod:`clothes_extractor.serve.batcher`: the one thread that runs the models, batching the
  requests that wait at the same time;
- here: the settings (:class:`ServeConfig`), loading the models once, the model card, the
  example photos and :func:`serve`, which runs the server until Ctrl-C or SIGTERM.

gradio is an optional extra (``pip install "clothes-extractor[app]"``), imported only by
:func:`serve`, so the rest of the toolkit neither needs it nor waits for it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clothes_extractor import pretrained
from clothes_extractor.errors import CheckpointError, ClothesExtractorError, ConfigError

EXAMPLES_DIR = pretrained.HERE / "examples"
EXAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# the environment serve() changes while it runs (and restores)
_SERVE_ENV = ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED", "TMPDIR", "TORCHINDUCTOR_CACHE_DIR")
INSTALL_HINT = 'the web page needs gradio, which is not installed: pip install "clothes-extractor[app]"'


@dataclass(frozen=True)
class ServeConfig:
    """How `serve` runs. ``checkpoint`` / ``segmenter`` None: the models shipped with the package
    (without a shipped segmenter the page asks for uploaded or painted masks)."""

    checkpoint: Path | None = None
    segmenter: Path | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 20
    max_megapixels: float = 40
    max_files: int = 64
    concurrency: int = 8  # requests handled at once; their model calls share batches of up to this many
    queue_size: int = 16
    device: str = "cpu"
    examples: tuple[Path, ...] | None = None  # None: example_photos()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not a port number (0-65535)")
        for flag, value in (("--max-upload-mb", self.max_upload_mb), ("--max-megapixels", self.max_megapixels),
                            ("--max-files", self.max_files), ("--concurrency", self.concurrency),
                            ("--queue-size", self.queue_size)):
            if value <= 0:
                raise ConfigError(f"{flag} must be positive, got {value}")

    @property
    def public(self) -> bool:
        """True when the page is reachable from other machines (not a loopback address)."""
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True


def example_photos(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example photos shipped with the package, sorted; [] when there are none."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXAMPLE_SUFFIXES)


def model_card(generator_meta: dict, segmenter_meta: dict | None, shipped: bool) -> str:
    """Markdown: the shipped MODEL_CARD.md when the models are the shipped ones, else the
    checkpoints' own metadata (what they were trained on and how they scored)."""
    if shipped and pretrained.MODEL_CARD.is_file():
        return pretrained.MODEL_CARD.read_text(encoding="utf-8")
    parts = []
    for what, meta in (("Generator", generator_meta), ("Segmenter", segmenter_meta)):
        if meta is None:
            parts.append(f"## {what}\n\nnone: masks are uploaded or painted.")
            continue
        shown = {k: v for k, v in meta.items() if k != "path"}
        parts.append(f"## {what}: `{Path(meta.get('path', '?')).name}`\n\n"
                     f"```json\n{json.dumps(shown, indent=2, default=str)}\n```")
    return "# Model card\n\nThe checkpoints' metadata (written by training):\n\n" + "\n\n".join(parts)


def load_engine(cfg: ServeConfig, root: Path):
    """Load the models once: (Engine, what was loaded, in words)."""
    from clothes_extractor.inference.extractor import load_extractor
    from clothes_extractor.inference.segmenter import load_segmenter
    from clothes_extractor.serve.engine import Engine, Limits

    extractor = load_extractor(pretrained.resolve(cfg.checkpoint, "generator"), cfg.device)
    segmenter, seg_path = None, None
    try:
        seg_path = pretrained.resolve(cfg.segmenter, "segmenter")
    except CheckpointError:
        if cfg.segmenter is not None:
            raise
    if seg_path is not None:
        segmenter = load_segmenter(seg_path, cfg.device)
    shipped = cfg.checkpoint is None and cfg.segmenter is None
    card = model_card(extractor.meta, segmenter.meta if segmenter else None, shipped)
    limits = Limits(max_pixels=int(cfg.max_megapixels * 1e6), max_files=cfg.max_files)
    loaded = f"generator {extractor.meta['path']}, " + (f"segmenter {seg_path}" if segmenter else "no segmenter")
    return Engine(extractor, segmenter, root=root, limits=limits, card=card, max_batch=cfg.concurrency), loaded


def require_gradio() -> None:
    """ClothesExtractorError naming the extra to install when gradio is absent. Does not import
    it: gradio fixes some of its folders at import, from GRADIO_TEMP_DIR, which :func:`serve`
    sets first."""
    try:
        found = importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ClothesExtractorError(INSTALL_HINT)


def serve(cfg: ServeConfig, say: Callable[[str], None] = print) -> bool:
    """Run the page until Ctrl-C or SIGTERM; every temporary file is removed on the way out.
    True when a page was served: the caller should then end the process with :func:`exit_now`
    (gradio's threads are still there)."""
    require_gradio()
    if cfg.public:
        say(f"warning: --host {cfg.host} makes the page reachable from other machines, without any login; "
            "use it only on a network you trust")
    private = Path(tempfile.mkdtemp(prefix="clothes-extractor-serve-")).resolve()
    root, scratch = private / "files", private / "tmp"
    root.mkdir()
    scratch.mkdir()
    old_env = {k: os.environ.get(k) for k in _SERVE_ENV}
    old_tempdir = tempfile.tempdir
    os.environ["GRADIO_TEMP_DIR"] = str(root)  # gradio's uploads and our results
    # Everything else this process (or a subprocess) makes in "the temporary folder" goes to
    # scratch: the libraries' own files, e.g. torch's inductor cache folder torchinductor_<user>,
    # made when torch._dynamo is first imported, which loading the models does (smp -> timm ->
    # torchvision). Kept apart from root, where clients' paths are accepted; removed with it. An
    # explicit TORCHINDUCTOR_CACHE_DIR is left as it is.
    os.environ["TMPDIR"] = tempfile.tempdir = str(scratch)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no network
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        engine, loaded = load_engine(cfg, root)
        say(f"loaded {loaded}")
        from clothes_extractor.serve.page import launch

        return bool(launch(engine, cfg, say))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        tempfile.tempdir = old_tempdir
        for k, v in old_env.items():  # TORCHINDUCTOR_CACHE_DIR too: torch sets it, here to a folder in scratch
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(private, ignore_errors=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def exit_now(code: int = 0) -> None:
    """End the process at once, after flushing its output: no interpreter shutdown while gradio's
    threads (uvicorn, the queue, its thread pool) are still alive, which aborted one stop in six
    with SIGABRT (exit -6) when it came during a request. Call it once every file is removed."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
