"""Photo -> garment mask (given, or predicted by a segmenter) -> garment: the path every caller
takes (`extract`, `segment`, `evaluate`'s mask-free pipeline, `serve`, `demo`).

A mask given always wins over the segmenter. A predicted mask without any garment pixel is a
DataError and nothing is written (:func:`~clothes_extractor.inference.mask.require_garment`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from clothes_extractor.errors import ConfigError
from clothes_extractor.inference.extractor import Extractor, ExtractResult
from clothes_extractor.inference.mask import area_note, read_pair, require_garment
from clothes_extractor.inference.output import ExtractConfig, check_output_path, check_parse_output, render, save_all, write_parse
from clothes_extractor.inference.photo import check_photo_files, read_photo
from clothes_extractor.inference.segmenter import Segmenter


def predicted_mask(extractor: Extractor, segmenter: Segmenter, photo: np.ndarray, *, name: str = "photo") -> np.ndarray:
    """The garment mask ``segmenter`` predicts on ``photo`` (H, W, 3) uint8, for the generator's
    garment labels: (H, W) bool; DataError if it found no garment."""
    return require_garment(segmenter, segmenter.predict(photo), extractor.labels, name=name)


def predicted_masks(
    segmenter: Segmenter, photos: Sequence[np.ndarray], garment_labels: Sequence[int]
) -> list[np.ndarray]:
    """The garment masks of several photos, one model call: (H, W) bool each, possibly empty
    (the caller decides what an empty one means)."""
    classes = segmenter.predict_many(photos, batch_size=max(1, len(photos)))
    return [segmenter.garment_mask(c, garment_labels) for c in classes]


def photo_and_mask(
    extractor: Extractor,
    photo: str | os.PathLike,
    mask: str | os.PathLike | None,
    *,
    segmenter: Segmenter | None = None,
    mask_kind: str = "auto",
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A photo file and its garment mask: (H, W, 3) uint8, (H, W) bool. Read from ``mask`` when
    given (any kind, checked against the photo), else predicted by ``segmenter``. ``notes`` gets
    how the mask was read and any warning, in words."""
    notes = [] if notes is None else notes
    if mask is not None:
        return read_pair(photo, mask, extractor.labels, mask_kind, notes=notes)
    if segmenter is None:
        raise ConfigError(f"no mask for photo {photo}: give a mask, or a segmenter checkpoint (--segmenter) to predict one")
    photo_arr = read_photo(photo)
    garment = predicted_mask(extractor, segmenter, photo_arr, name=str(photo))
    notes.append("mask predicted by the segmenter")
    if (warning := area_note(garment)) is not None:
        notes.append(warning)
    return photo_arr, garment


def extract_file(
    extractor: Extractor,
    photo: str | os.PathLike,
    mask: str | os.PathLike | None,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    *,
    segmenter: Segmenter | None = None,
) -> ExtractResult:
    """One photo + mask (or the mask ``segmenter`` predicts) -> ``out`` (atomic). Validates
    ``out`` before any work. The result's ``notes`` say how the mask was read (for the command
    to print)."""
    check_photo_files(photo, mask)
    out = check_output_path(out, cfg)
    notes: list[str] = []
    photo_arr, mask_arr = photo_and_mask(extractor, photo, mask, segmenter=segmenter, mask_kind=cfg.mask_kind, notes=notes)
    result = replace(extractor.extract(photo_arr, mask_arr, frame=cfg.frame), notes=tuple(notes))
    save_all([(render(result, cfg), out)])
    return result


def segment_file(
    segmenter: Segmenter, photo: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> np.ndarray:
    """One photo -> ``out`` (palette PNG). Returns the class map. Validates ``out`` first."""
    check_photo_files(photo, command="segment")
    out = check_parse_output(out, overwrite)
    classes = segmenter.predict(read_photo(photo))
    write_parse(segmenter, classes, out)
    return classes
