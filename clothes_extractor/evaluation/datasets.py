"""What `evaluate` reads of each sample: the photo as `extract` reads it, the rest as training does.

The photo goes through :func:`clothes_extractor.inference.photo.read_photo` (EXIF orientation
applied), the one reader of person photos; the parse map, the cloth image and its mask through
the data layer. For a data set photo without an orientation tag the arrays are exactly those of
:func:`clothes_extractor.data.viton.read_sample`, which training reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from clothes_extractor.data import viton
from clothes_extractor.data.dataset import VitonDataset, make_item
from clothes_extractor.data.transforms import preprocess_sample
from clothes_extractor.errors import DataError
from clothes_extractor.inference.photo import read_photo


def read_photo_and_parse(split_dir, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A sample's photo (H, W, 3) uint8, EXIF orientation applied, and its parse map (H, W)
    uint8 CIHP labels; DataError naming the sample if their sizes differ."""
    split = viton.as_split(split_dir)
    photo = read_photo(split.files(sample_id).photo, f"sample {sample_id}: photo")
    parse = viton.read_parse(split, sample_id)
    if parse.shape != photo.shape[:2]:
        raise DataError(
            f"sample {sample_id}: parse map is {parse.shape[1]}x{parse.shape[0]} but the photo is "
            f"{photo.shape[1]}x{photo.shape[0]}; they must match"
        )
    return photo, parse


def read_sample(split_dir, sample_id: str) -> viton.RawSample:
    """:func:`~clothes_extractor.data.viton.read_sample` with the photo read as `extract` reads it."""
    split = viton.as_split(split_dir)
    photo, parse = read_photo_and_parse(split, sample_id)
    files = split.files(sample_id)
    cloth = viton.read_rgb_image(files.garment, sample_id, "cloth image")
    if files.garment_mask is None:
        from clothes_extractor.data.garment_alpha import garment_alpha

        cloth_mask = garment_alpha(cloth)
    else:
        cloth_mask = viton.read_mask(files.garment_mask, sample_id, "cloth mask")
    if cloth_mask.shape != cloth.shape[:2]:
        raise DataError(
            f"sample {sample_id}: cloth mask is {cloth_mask.shape[1]}x{cloth_mask.shape[0]} but the "
            f"cloth image is {cloth.shape[1]}x{cloth.shape[0]}; they must match"
        )
    labels = split.garment_labels(sample_id, viton.DEFAULT_GARMENT_LABELS) if split.categories else None
    return viton.RawSample(sample_id, photo, parse, cloth, cloth_mask, labels)


class EvalDataset(VitonDataset):
    """VitonDataset items (no augmentation) plus ``cloth``, the original cloth image (H, W, 3)
    uint8; with ``with_photo`` also ``photo`` (H, W, 3) uint8 and ``mask`` (H, W) bool, the true
    garment mask (for the mask-free pipeline); with ``warp_source`` (a warp generator's
    :meth:`~clothes_extractor.inference.extractor.Extractor.prepare_source`) also ``warp_source``,
    what it samples of the photo to draw the garment in the cloth image's frame."""

    def __init__(self, *args, with_photo: bool = False, warp_source: Callable | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_photo, self.warp_source = with_photo, warp_source

    def __getitem__(self, index: int) -> dict:
        raw = read_sample(self.split_dir, self.ids[index])
        x, y, alpha = preprocess_sample(raw, self.preprocess)
        item = {**make_item(x, y, alpha, raw.id, None, self.preprocess.background), "cloth": raw.cloth}
        if self.with_photo or self.warp_source is not None:
            mask = viton.garment_mask(raw.parse, raw.labels or self.preprocess.garment_labels)
        if self.with_photo:
            item.update(photo=raw.photo, mask=mask)
        if self.warp_source is not None:
            item["warp_source"] = self.warp_source(raw.photo, mask, frame=raw.cloth.shape[:2], name=raw.id)
        return item


def collate(items: list[dict]) -> dict:
    """Tensors stacked (input, target, alpha); the rest (cloth, id, photo, mask, warp_source) as lists."""
    out = {k: torch.stack([it[k] for it in items]) for k in ("input", "target", "alpha") if k in items[0]}
    for k in items[0]:
        if k not in out:
            out[k] = [it[k] for it in items]
    return out


class PhotoParse(torch.utils.data.Dataset):
    """Photos and parse maps, full size, as numpy arrays (the segmenter's evaluation)."""

    def __init__(self, split_dir: Path, ids: Sequence[str]) -> None:
        self.split_dir, self.ids = split_dir, list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        sample_id = self.ids[index]
        photo, parse = read_photo_and_parse(self.split_dir, sample_id)
        return {"id": sample_id, "photo": photo, "parse": parse}


def as_list(items: list[dict]) -> list[dict]:
    """The collate function of :class:`PhotoParse`: items as they are."""
    return items
