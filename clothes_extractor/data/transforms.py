"""The preprocessing shared by training, evaluation and `extract`, plus paired augmentation.

Model input: the photo's garment pixels (label in the garment set), cropped to their bounding
box, centred on a background canvas padded to the model's aspect ratio (square for square
sizes), resized to the model size. With framing "photo" the garment keeps its scale relative to
the photo frame; with "fill" its bounding box fills the model frame, as the target's does.
Target: the cloth image with its mask applied on the background, padded and resized the same
way; alpha is the cloth mask padded and resized.

Everything here works on uint8 numpy arrays (H, W, 3) / (H, W) and PIL; no torch, so the
prepared arrays are cheap to cache and the data commands stay light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.viton import RawSample, garment_mask
from clothes_extractor.errors import DataError

_RESAMPLE = Image.Resampling.BILINEAR  # PIL's bilinear is antialiased when downscaling


def content_box(frame: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where an image of ``frame`` (H, W) lands inside the model's ``size`` (H, W) after padding
    to the model's aspect ratio and resizing: (left, top, width, height) in model pixels."""
    fh, fw = frame
    h, w = size
    scale = min(w / fw, h / fh)
    cw, ch = max(1, round(fw * scale)), max(1, round(fh * scale))
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def _paste_centred(image: Image.Image, box: tuple[int, int], size: tuple[int, int], fill) -> Image.Image:
    """Resize ``image`` to ``box`` (w, h) and paste it centred on a (H, W) = ``size`` canvas.

    Equivalent to padding the full-size canvas and resizing it, without resampling the padding.
    """
    h, w = size
    canvas = Image.new(image.mode, (w, h), fill)
    resized = image if box == image.size else image.resize(box, _RESAMPLE)
    canvas.paste(resized, ((w - box[0]) // 2, (h - box[1]) // 2))
    return canvas


def preprocess_input(
    photo: np.ndarray, mask: np.ndarray, cfg: PreprocessConfig, *, name: str = "photo"
) -> np.ndarray:
    """(H, W, 3) uint8 photo + (H, W) bool garment mask -> (h, w, 3) uint8 model input.

    ``cfg.size`` = (h, w). Raises DataError if the mask is empty or does not match the photo.
    """
    crop, found = garment_crop(photo, mask, cfg, name=name)
    box = resized_crop_size(found, photo.shape[:2], cfg)
    return np.asarray(_paste_centred(Image.fromarray(crop), box, cfg.size, cfg.background))


def garment_crop(
    photo: np.ndarray, mask: np.ndarray, cfg: PreprocessConfig, *, name: str = "photo"
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The garment's box of the photo with the rest on the background, and the box
    (:func:`mask_box`): what :func:`preprocess_input` resizes into the model frame and a warp
    generator samples. Raises DataError if the mask is empty or does not match the photo."""
    if mask.shape != photo.shape[:2]:
        raise DataError(
            f"{name}: mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
            f"{photo.shape[1]}x{photo.shape[0]}; they must be the same size"
        )
    found = mask_box(mask)
    if found is None:
        raise DataError(f"{name}: the garment mask is empty (no pixel of the garment)")
    y0, y1, x0, x1 = found
    crop = photo[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = cfg.background
    return crop, found


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the bounding box of a (H, W) bool garment mask; None if it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def resized_crop_size(box: tuple[int, int, int, int], photo_size: tuple[int, int], cfg: PreprocessConfig) -> tuple[int, int]:
    """(w, h) the garment's crop ``box`` (:func:`mask_box`) of a photo of ``photo_size`` (H, W)
    is resized to in the model frame, before it is pasted centred (:func:`preprocess_input`)."""
    y0, y1, x0, x1 = box
    h, w = cfg.size
    if cfg.framing == "fill":
        # The crop fills the model frame (aspect kept), as the garment fills its catalogue image.
        scale = min(w / (x1 - x0), h / (y1 - y0))
    else:
        # "photo": the crop sits centred on a canvas of the photo's size, padded to the model's
        # aspect ratio, so the garment keeps its size relative to the photo frame.
        scale = min(w / photo_size[1], h / photo_size[0])
    return max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))


def preprocess_target(cloth: np.ndarray, cloth_mask: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 cloth + (H, W) bool mask -> ((h, w, 3) uint8 target, (h, w) uint8 alpha 0-255)."""
    composed = np.where(cloth_mask[..., None], cloth, np.asarray(cfg.background, dtype=np.uint8))
    _, _, cw, ch = content_box(cloth.shape[:2], cfg.size)
    target = _paste_centred(Image.fromarray(composed), (cw, ch), cfg.size, cfg.background)
    alpha = _paste_centred(Image.fromarray(cloth_mask.astype(np.uint8) * 255), (cw, ch), cfg.size, 0)
    return np.asarray(target), np.asarray(alpha)


def preprocess_sample(raw: RawSample, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One VITON-HD sample -> (input (h, w, 3), target (h, w, 3), alpha (h, w)), all uint8."""
    labels = raw.labels or cfg.garment_labels  # a Dress Code sample's category names its garment
    mask = garment_mask(raw.parse, labels)
    if not mask.any():
        raise DataError(
            f"sample {raw.id}: no garment pixel (labels {list(labels)}) in its parse map; "
            "run `clothes-extractor split`, which leaves such samples out"
        )
    x = preprocess_input(raw.photo, mask, cfg, name=f"sample {raw.id}")
    y, alpha = preprocess_target(raw.cloth, raw.cloth_mask, cfg)
    return x, y, alpha


def to_frame(image: Image.Image, frame: tuple[int, int], background) -> Image.Image:
    """Inverse of the target's padding: a model-size image back to the (H, W) ``frame`` of the
    garment image it stands for (768x1024 for VITON-HD), cropping the padding and upscaling."""
    left, top, cw, ch = content_box(frame, (image.height, image.width))
    return image.crop((left, top, left + cw, top + ch)).resize((frame[1], frame[0]), Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class AugmentConfig:
    """Paired geometric augmentation; one draw per sample, applied to input, target and alpha."""

    flip: float = 0.5  # probability of a horizontal flip
    rotate: float = 5.0  # max absolute rotation, degrees
    zoom: float = 0.05  # scale drawn in [1 - zoom, 1 + zoom]


@dataclass(frozen=True)
class AugmentParams:
    flip: bool
    angle: float
    scale: float

    @classmethod
    def draw(cls, cfg: AugmentConfig, u: tuple[float, float, float]) -> AugmentParams:
        """Parameters from three uniform [0, 1) numbers (the caller owns the RNG)."""
        return cls(u[0] < cfg.flip, (2 * u[1] - 1) * cfg.rotate, 1 + (2 * u[2] - 1) * cfg.zoom)


def augment(image: np.ndarray, p: AugmentParams, fill) -> np.ndarray:
    """Apply flip, then rotation and zoom about the centre, to a uint8 (H, W[, C]) image."""
    img = Image.fromarray(image)
    if p.flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if p.angle or p.scale != 1:
        # PIL's affine maps output to input coordinates: the inverse of rotate-and-scale.
        cx, cy = img.width / 2, img.height / 2
        a = -math.radians(p.angle)  # positive angles turn counter-clockwise, as Image.rotate
        cos, sin = math.cos(a) / p.scale, math.sin(a) / p.scale
        coeffs = (cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy)
        img = img.transform(img.size, Image.Transform.AFFINE, coeffs, _RESAMPLE, fillcolor=fill)
    return np.asarray(img)
