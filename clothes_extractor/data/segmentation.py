"""The segmenter's data: a person photo and its parse map, in the model's frame.

Geometry (one function for training, evaluation and `segment`): the photo keeps its aspect
ratio; it is resized into the model size's content box
(:func:`~clothes_extractor.data.transforms.content_box`, the same box the generator's
preprocessing uses) and centred on a canvas of ``fill`` colour; the label map goes through the
same box with nearest-neighbour resampling (labels are never blended) and its padding is
background (class 0). :func:`crop_to_photo` undoes the padding of a model-frame array.

Items of :class:`SegmentationDataset` are dicts:
    ``image``  (3, H, W) float in [-1, 1] (``x / 127.5 - 1``, as the generator's input);
    ``labels`` (H, W) int64 class ids of the label set (:mod:`clothes_extractor.data.labels`),
               the padding labelled background;
    ``valid``  (H, W) bool: the photo's pixels, False on the padding (metrics leave it out);
    ``id``     the sample id.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from clothes_extractor.config import parse_size, strict_from_dict
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.data.labels import LabelSet, get_label_set
from clothes_extractor.data.transforms import content_box
from clothes_extractor.data.viton import check_complete, read_parse, read_rgb_image, resolve_ids, resolve_split_dir
from clothes_extractor.errors import ConfigError, DataError

NORMALISATION = "x / 127.5 - 1"  # uint8 RGB -> [-1, 1], recorded in checkpoints


@dataclass(frozen=True)
class SegmentationPreprocess:
    """How a photo (and its parse map) becomes model input (and target); in every checkpoint.

    ``size`` (height, width), multiples of 32; ``label_set`` ``cihp20`` or ``viton13``;
    ``fill`` the RGB colour of the padding around the photo.
    """

    size: tuple[int, int] = (256, 192)
    label_set: str = "cihp20"
    fill: tuple[int, int, int] = (255, 255, 255)

    def __post_init__(self) -> None:
        parse_size(tuple(self.size))  # multiples of 32, with the nearest valid size in the error
        get_label_set(self.label_set)
        if len(self.fill) != 3 or not all(0 <= int(c) <= 255 for c in self.fill):
            raise ConfigError(f"fill colour {self.fill} is not an RGB triple in 0-255")

    @property
    def labels(self) -> LabelSet:
        return get_label_set(self.label_set)

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "label_set": self.label_set, "fill": list(self.fill), "normalisation": NORMALISATION}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentationPreprocess:
        if d.get("normalisation", NORMALISATION) != NORMALISATION:
            raise ConfigError(f"unknown input normalisation {d['normalisation']!r}; this version uses {NORMALISATION}")
        cfg = strict_from_dict(cls, d, "segmenter preprocessing", ignore=("normalisation",))
        return replace(cfg, size=tuple(cfg.size), fill=tuple(cfg.fill))


def fit_photo(photo: np.ndarray, size: tuple[int, int], fill: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """(H, W, 3) uint8 photo -> (h, w, 3) uint8: aspect kept, centred on ``fill``, ``size`` = (h, w)."""
    left, top, cw, ch = content_box(photo.shape[:2], size)
    h, w = size
    canvas = Image.new("RGB", (w, h), tuple(int(c) for c in fill))
    image = Image.fromarray(photo)
    if image.size != (cw, ch):
        image = image.resize((cw, ch), Image.Resampling.BILINEAR)  # antialiased when shrinking
    canvas.paste(image, (left, top))
    return np.asarray(canvas)


def fit_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map -> (h, w) uint8 in the same geometry as :func:`fit_photo`;
    nearest neighbour, padding 0 (background)."""
    left, top, cw, ch = content_box(labels.shape[:2], size)
    h, w = size
    out = np.zeros((h, w), np.uint8)
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))
    if image.size != (cw, ch):
        image = image.resize((cw, ch), Image.Resampling.NEAREST)
    out[top: top + ch, left: left + cw] = np.asarray(image)
    return out


def content_mask(frame: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: where a photo of ``frame`` (H, W) lies in the model frame ``size``."""
    left, top, cw, ch = content_box(frame, size)
    mask = np.zeros(size, bool)
    mask[top: top + ch, left: left + cw] = True
    return mask


def crop_to_photo(x, frame: tuple[int, int]):
    """Undo the padding: a model-frame array ``(..., h, w)`` (numpy or torch) -> its content box
    ``(..., ch, cw)`` for a photo of ``frame`` (H, W); resize it to ``frame`` afterwards."""
    h, w = x.shape[-2:]
    left, top, cw, ch = content_box(frame, (h, w))
    return x[..., top: top + ch, left: left + cw]


class SegmentationDataset(Dataset):
    """Photos and their parse maps of a VITON-HD split folder, in the model's frame.

    Args:
        root: data set root (holding ``train/``, ``test/``) or a split folder itself.
        split: ``train`` or ``test``.
        ids: a list of ids, a list file (``split``'s lists, a pair file: first column), or None
            for every photo in ``image/``.
        preprocess: size, label set, fill of the padding.
        flip: probability of a horizontal flip (left and right labels swapped with it); drawn
            from torch's global RNG, once per item.

    Reads only ``image/<id>.jpg`` and ``image-parse-v3/<id>.png``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        ids: Sequence[str] | str | os.PathLike | None = None,
        preprocess: SegmentationPreprocess = SegmentationPreprocess(),
        *,
        flip: float = 0.0,
    ) -> None:
        self.split_dir = resolve_split_dir(root, split)
        self.ids = resolve_ids(self.split_dir, ids)
        check_complete(self.split_dir, self.ids)
        if not 0 <= flip <= 1:
            raise ConfigError(f"flip probability must be in [0, 1], got {flip}")
        self.preprocess = preprocess
        self.label_set = preprocess.labels
        self.flip = flip
        self._lut = self.label_set.from_cihp
        self._mirror = self.label_set.mirror

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The sample's photo (H, W, 3) uint8 and CIHP label map (H, W) uint8, at full size."""
        sample_id = self.ids[index]
        photo = read_rgb_image(self.split_dir.files(sample_id).photo, sample_id, "photo")
        parse = read_parse(self.split_dir, sample_id)
        if parse.shape != photo.shape[:2]:
            raise DataError(
                f"sample {sample_id}: parse map is {parse.shape[1]}x{parse.shape[0]} but the photo is "
                f"{photo.shape[1]}x{photo.shape[0]}; they must match"
            )
        return photo, parse

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image (h, w, 3) uint8, classes (h, w) uint8, valid (h, w) bool) in the model frame,
        no augmentation."""
        photo, parse = self.read(index)
        size = tuple(self.preprocess.size)
        classes = self._lut[fit_labels(parse, size)]
        return fit_photo(photo, size, self.preprocess.fill), classes, content_mask(parse.shape, size)

    def __getitem__(self, index: int) -> dict:
        image, classes, valid = self.arrays(index)
        if self.flip > 0 and float(torch.rand(())) < self.flip:
            image, classes, valid = image[:, ::-1], self._mirror[classes[:, ::-1]], valid[:, ::-1]
        return {
            "image": to_tensor(image),
            "labels": torch.from_numpy(np.ascontiguousarray(classes, dtype=np.int64)),
            "valid": torch.from_numpy(np.ascontiguousarray(valid)),
            "id": self.ids[index],
        }
