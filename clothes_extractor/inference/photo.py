"""Reading a user's photo: the pixels as displayed (EXIF orientation applied), as RGB.

The one reader of person photos for `extract`, `segment`, `evaluate`, `serve`, `demo`, `export`
and the benchmarks. Phone photos are often stored sideways with an EXIF orientation tag; the
pixels here are those a viewer shows. A dataset photo without the tag reads exactly as the data
layer reads it (:func:`clothes_extractor.data.viton.read_rgb_image`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from clothes_extractor.errors import DataError
from clothes_extractor.fileio import open_image

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def open_oriented(path: str | os.PathLike, what: str = "photo") -> Image.Image:
    """:func:`~clothes_extractor.fileio.open_image`, then the EXIF orientation applied, so the
    pixels are as displayed (a DataError naming the file if it cannot be read)."""
    image = open_image(path, what)
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError):  # a broken EXIF block: use the pixels as stored
        return image


def read_photo(path: str | os.PathLike, what: str = "photo") -> np.ndarray:
    """A person photo as (H, W, 3) uint8, EXIF orientation applied, any mode converted to RGB."""
    return np.asarray(open_oriented(path, what).convert("RGB"))


def check_photo_files(photo: str | os.PathLike, mask: str | os.PathLike | None = None, *, command: str = "extract") -> None:
    """``PHOTO [MASK]`` of `extract` (``command="extract"``) or `segment`: a folder given where a
    file belongs is a DataError that says so and names folder mode (``--images``), before any
    model is loaded. A missing or unreadable file is left to the reader, which names it."""
    masks = f" --masks {mask}" if mask is not None and Path(mask).is_dir() else ""
    if Path(photo).is_dir():
        verb = "segment" if command == "segment" else "extract"
        raise DataError(f"{photo} is a folder; to {verb} every photo in a folder use --images {photo}{masks} -o OUTDIR")
    if masks:
        raise DataError(f"mask {mask} is a folder; to extract a folder of photos with their masks use "
                        f"--images DIR{masks} -o OUTDIR")
