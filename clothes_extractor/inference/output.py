"""The files `extract` and `segment` write, and their checks before any work.

`extract` writes the garment on the training background (or ``--background``, recomposited with
the predicted alpha by :func:`~clothes_extractor.inference.composite.composite`), an RGBA cut-out
(``--transparent``), or VITON-HD's ``cloth/<id>.jpg`` on white + ``cloth-mask/<id>.jpg``
(``--viton-layout``). `segment` writes palette PNGs in VITON-HD's own format
(:func:`~clothes_extractor.data.viton.to_palette_image`: VITON palette, CIHP label indices, like
``image-parse-v3/<id>.png``); a ``viton13`` model writes each group as its representative CIHP
label (:mod:`clothes_extractor.data.labels`). Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clothes_extractor.data.viton import to_palette_image
from clothes_extractor.errors import ConfigError
from clothes_extractor.fileio import atomic_path, check_writable, save_image
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import MARGINS, ExtractResult
from clothes_extractor.inference.mask import MASK_KINDS

OUTPUT_FORMATS: dict[str, str] = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}
JPEG_QUALITY = 95


@dataclass(frozen=True)
class ExtractConfig:
    """How `extract` reads masks and writes results (shared by one-photo and folder mode).

    ``frame``: (H, W) of the output, None for :data:`CATALOGUE_FRAME`. ``transparent``: RGBA
    PNG with the predicted alpha. ``background``: recomposite on this colour (None: the
    training background). ``margins``: the catalogue margins the garment is drawn with, a data
    set's name or ``none`` (:func:`~clothes_extractor.inference.extractor.margins_width`).
    ``viton_layout``: folder mode writes ``cloth/<id>.jpg`` (on white)
    and ``cloth-mask/<id>.jpg``. ``format``: ``jpg`` or ``png`` in folder mode (None: png when
    transparent, else jpg).
    """

    frame: tuple[int, int] | None = None
    mask_kind: str = "auto"
    transparent: bool = False
    background: tuple[int, int, int] | None = None
    viton_layout: bool = False
    format: str | None = None
    batch_size: int = 8
    overwrite: bool = False
    margins: str = "viton-hd"

    def __post_init__(self) -> None:
        if self.mask_kind not in MASK_KINDS:
            raise ConfigError(f"--mask-kind {self.mask_kind!r} is not one of {', '.join(MASK_KINDS)}")
        if self.transparent and self.background is not None:
            raise ConfigError("--transparent and --background exclude each other: a cut-out has no background")
        if self.viton_layout and (self.transparent or self.background not in (None, WHITE)):
            raise ConfigError("--viton-layout writes VITON-HD's cloth/ on white; drop --transparent / --background")
        if self.format is not None and self.format not in ("jpg", "png"):
            raise ConfigError(f"--format {self.format!r} is not jpg or png")
        if self.transparent and self.format == "jpg":
            raise ConfigError("--transparent needs PNG (JPEG has no alpha); use --format png")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.frame is not None and (self.frame[0] < 1 or self.frame[1] < 1):
            raise ConfigError(f"output size {self.frame} must be positive")
        if self.margins not in MARGINS:
            raise ConfigError(f"--margins {self.margins!r} is not one of {', '.join(MARGINS)}")

    @property
    def suffix(self) -> str:
        return "." + (self.format or ("png" if self.transparent else "jpg"))


def check_output_path(path: str | os.PathLike, cfg: ExtractConfig) -> Path:
    """Validate ``-o``: a .png/.jpg/.jpeg file, PNG when transparent, not existing unless overwrite."""
    path = Path(path)
    kind = OUTPUT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"output {path}: unknown extension {path.suffix or '(none)'!r}; use .png or .jpg")
    if cfg.transparent and kind != "png":
        raise ConfigError(f"output {path}: --transparent writes RGBA, which needs a .png file (JPEG has no alpha)")
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; -o takes a file name (or use --images/--masks for folders)")
    if path.exists() and not cfg.overwrite:
        raise ConfigError(f"output {path} exists; pass --overwrite to replace it")
    return check_writable(path)


def check_output_folder(path: str | os.PathLike) -> Path:
    """``-o`` in folder mode: a folder (created if missing) that can be written; before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output {path} is a file; in folder mode -o takes a folder")
    return check_writable(path, "output folder", folder=True)


def render(result: ExtractResult, cfg: ExtractConfig) -> Image.Image:
    """The image `extract` writes for ``result``: RGBA cut-out, or RGB on the chosen background."""
    if cfg.transparent:
        return Image.fromarray(result.rgba(), "RGBA")
    return Image.fromarray(result.on_background(cfg.background or result.background), "RGB")


def _save_params(path: Path) -> dict[str, Any]:
    return {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}


def save_all(items: Sequence[tuple[Image.Image, Path]]) -> None:
    """Write every (image, path) to a temporary file first, then move them all into place:
    an error while encoding leaves none of them written."""
    with contextlib.ExitStack() as stack:
        for image, path in items:
            tmp = stack.enter_context(atomic_path(path))
            fmt = Image.registered_extensions().get(path.suffix.lower())
            image.save(tmp, format=fmt, **_save_params(path))


def outputs_for(out_dir: Path, sample_id: str, cfg: ExtractConfig) -> list[Path]:
    if cfg.viton_layout:
        return [out_dir / "cloth" / f"{sample_id}.jpg", out_dir / "cloth-mask" / f"{sample_id}.jpg"]
    return [out_dir / f"{sample_id}{cfg.suffix}"]


def write_result(result: ExtractResult, paths: Sequence[Path], cfg: ExtractConfig) -> None:
    if cfg.viton_layout:
        cloth, cloth_mask = paths
        save_all([
            (Image.fromarray(result.on_background(WHITE), "RGB"), cloth),
            (Image.fromarray(result.mask(), "L"), cloth_mask),
        ])
    else:
        save_all([(render(result, cfg), paths[0])])



def check_parse_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """``-o`` of `segment`: a .png file (a label map must be lossless), new unless ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"output {path}: a parse map is written as a palette PNG; use a .png file name")
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; -o takes a file name (or use --images for folders)")
    if path.exists() and not overwrite:
        raise ConfigError(f"output {path} exists; pass --overwrite to replace it")
    return check_writable(path)


def write_parse(segmenter, classes: np.ndarray, path: str | os.PathLike) -> None:
    """Write a prediction of ``segmenter`` as VITON-HD writes ``image-parse-v3``: palette PNG of
    CIHP labels, atomically."""
    save_image(to_palette_image(segmenter.to_cihp(classes)), path)
