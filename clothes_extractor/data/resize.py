"""One file of a data set at a reduced size: the per-file work of `downsample`.

How a file is resized depends on what its folder holds (:data:`FOLDER_KINDS`, one table for the
three layouts):

- ``photo`` (person photos, garments, renderings): JPEGs are decoded in libjpeg's draft mode
  (DCT scaling by 1/2, 1/4 or 1/8, never below the target size), then resized with LANCZOS and
  saved at quality 95. PNGs keep their mode.
- ``labels`` (parse maps, Dress Code's ``label_maps`` and ``dense``): nearest neighbour only,
  mode and palette kept, so every output pixel is one of the source's label indices.
- ``mask``: greyscale stays greyscale. JPEG masks (``cloth-mask``, near-binary with ringing
  already) are filtered like photos and stay mode ``L``; lossless PNG masks (``agnostic-mask``)
  use nearest neighbour, so a binary mask stays binary.
- ``openpose`` (VITON-HD's ``openpose_json``, VITON's ``pose``): the 2-D keypoints (x, y,
  confidence triples under ``*_keypoints_2d`` or, in the older OpenPose format, ``*_keypoints``)
  are scaled by the photo's resize factor; confidences and everything else are copied unchanged.
- ``copy`` (Dress Code's ``keypoints``): copied unchanged. Dress Code stores its keypoints in a
  fixed 384x512 frame whatever the photo size (its loader scales them by ``width / 384``), so
  they stay valid on a smaller photo as they are.

A file is never enlarged: a target larger than the file is a failure of that file.
Every file is written atomically (temporary file beside it + ``os.replace``).

No torch and no numpy here: `downsample` must start fast.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from clothes_extractor.errors import DataError
from clothes_extractor.fileio import atomic_path, atomic_write_text

JPEG_QUALITY = 95
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}

# What each folder of the three layouts holds; a folder not listed holds photos.
FOLDER_KINDS: dict[str, str] = {
    "image-parse-v3": "labels", "image-parse-agnostic-v3.2": "labels", "image-parse": "labels",
    "label_maps": "labels", "dense": "labels",
    "cloth-mask": "mask", "agnostic-mask": "mask",
    "openpose_json": "openpose", "pose": "openpose",
    "keypoints": "copy",
}

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"

# Errors that mean "this file is not a readable image" (PIL raises all of these).
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class FileResult:
    status: str  # WRITTEN, SKIPPED or FAILED
    path: Path  # the source file
    message: str = ""


@dataclass(frozen=True)
class FileTask:
    """One file to write: ``src`` resized into ``dst`` (``photo``: the sample's photo, for keypoints)."""

    src: Path
    dst: Path
    folder: str
    size: int
    photo: Path | None = None


def target_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the longest side ``size`` and the aspect ratio kept.

    >>> target_size(768, 1024, 64)
    (48, 64)
    """
    longest = max(width, height)
    return (
        max(1, round(width * size / longest)),
        max(1, round(height * size / longest)),
    )


def kind_of(folder: str) -> str:
    return FOLDER_KINDS.get(folder, "photo")


def _resize_image(src: Path, dst: Path, kind: str, size: int) -> None:
    with Image.open(src) as image:  # reads the header only
        out, info = _resized(image, kind, size)
    fmt = _FORMATS.get(dst.suffix.lower(), "PNG")
    params: dict = {}
    if fmt == "JPEG":
        if out.mode not in ("RGB", "L"):
            out = out.convert("RGB")
        params["quality"] = JPEG_QUALITY
    elif "transparency" in info:
        params["transparency"] = info["transparency"]
    with atomic_path(dst) as tmp:
        out.save(tmp, format=fmt, **params)


def _resized(image: Image.Image, kind: str, size: int) -> tuple[Image.Image, dict]:
    """The resized image and the source's info (decoded here; JPEGs in draft mode)."""
    box = target_size(*image.size, size)
    if box[0] > image.size[0] or box[1] > image.size[1]:
        raise DataError(f"it is {image.size[0]}x{image.size[1]}, smaller than size {size}: downsample never enlarges")
    jpeg = image.format == "JPEG"
    nearest = kind == "labels" or (kind == "mask" and not jpeg)
    want = "L" if kind == "mask" and jpeg else ("RGB" if kind == "photo" and jpeg else None)
    if jpeg and not nearest:
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the requested size.
        image.draft(want, box)
    image.load()
    if want and image.mode != want:
        image = image.convert(want)
    if nearest or image.mode in ("P", "1"):
        # Label indices (and binary masks) are never interpolated; the mode is kept.
        out = image.resize(box, Image.NEAREST)
        if image.mode == "P":
            palette = image.palette
            out.putpalette(image.getpalette(palette.mode), palette.mode)
    else:
        out = image.resize(box, Image.LANCZOS, reducing_gap=3.0)
    return out, image.info


def _scale_keypoints(src: Path, dst: Path, photo: Path | None, size: int) -> None:
    """OpenPose JSON: 2-D keypoints scaled with the sample's photo."""
    try:
        with Image.open(photo) as probe:
            width, height = probe.size
    except (FileNotFoundError, TypeError):
        raise DataError(f"cannot scale keypoints: photo {photo} not found") from None
    new_w, new_h = target_size(width, height, size)
    sx, sy = new_w / width, new_h / height
    try:
        data = json.loads(src.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not an OpenPose JSON file: {exc}") from None

    def scale(points: list) -> list:
        out = list(points)
        for i in range(0, len(out) - 2, 3):
            out[i] = round(out[i] * sx, 3)
            out[i + 1] = round(out[i + 1] * sy, 3)
        return out

    for person in data.get("people", []) if isinstance(data, dict) else []:
        for key, value in person.items():
            if key.endswith(("_keypoints_2d", "_keypoints")) and isinstance(value, list):
                person[key] = scale(value)
    atomic_write_text(dst, json.dumps(data, separators=(",", ":")))


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def process_file(task: FileTask) -> FileResult:
    """Write one downsampled file. Never raises for a bad source: returns FAILED with why."""
    if task.dst.exists():  # written atomically by an earlier run: complete
        return FileResult(SKIPPED, task.src)
    try:
        kind = kind_of(task.folder)
        if kind == "openpose":
            _scale_keypoints(task.src, task.dst, task.photo, task.size)
        elif kind == "copy":
            _copy(task.src, task.dst)
        else:
            _resize_image(task.src, task.dst, kind, task.size)
    except DataError as exc:
        return FileResult(FAILED, task.src, str(exc))
    except _READ_ERRORS as exc:
        return FileResult(FAILED, task.src, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others
        return FileResult(FAILED, task.src, f"{type(exc).__name__}: {exc}")
    return FileResult(WRITTEN, task.src)
