"""The garment segmenter at inference: a person photo -> its parse map, and the garment mask.

A segmenter checkpoint (kind ``segmenter``, written by `train-segmenter`) rebuilds the model
and its preprocessing (:class:`~clothes_extractor.data.segmentation.SegmentationPreprocess`:
size, label set, fill). :meth:`Segmenter.predict` applies exactly the training geometry
(:func:`~clothes_extractor.data.segmentation.fit_photo`), crops the padding off the logits,
upsamples them bilinearly to the photo's size and takes the argmax there: the parse map has
the photo's resolution, whatever the model's.

The garment mask of a prediction (:meth:`Segmenter.garment_mask`): the pixels of the classes
that hold any of the generator's garment labels. An empty one is a
:class:`~clothes_extractor.errors.DataError`
(:func:`~clothes_extractor.inference.mask.require_garment`), never a blank output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clothes_extractor.checkpoint import load_segmenter_model
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.data.labels import LabelSet
from clothes_extractor.data.segmentation import SegmentationPreprocess, crop_to_photo, fit_photo
from clothes_extractor.data.viton import LABELS
from clothes_extractor.errors import CheckpointError, ConfigError, DataError

KIND = "segmenter"



class Segmenter:
    """A segmentation model loaded from a checkpoint, with the preprocessing it was trained with.

    Example:
        >>> seg = load_segmenter("runs/train-segmenter")                # doctest: +SKIP
        >>> classes = seg.predict(photo)          # (H, W) uint8 class ids, the photo's size
        >>> parse = seg.to_cihp(classes)          # (H, W) uint8 CIHP labels, as image-parse-v3
        >>> mask = seg.garment_mask(classes, (5,))  # (H, W) bool
    """

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.model = model.eval()
        self.meta = meta
        self.device = torch.device(device)
        try:
            self.preprocess = SegmentationPreprocess.from_dict(meta["preprocess"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"{meta.get('path', 'checkpoint')} has no readable preprocessing settings ({exc})") from None

    @property
    def label_set(self) -> LabelSet:
        return self.preprocess.labels

    @property
    def num_classes(self) -> int:
        return self.label_set.num_classes

    def prepare(self, photo: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 photo -> (h, w, 3) uint8 model input (aspect kept, padded with ``fill``)."""
        return fit_photo(photo, tuple(self.preprocess.size), self.preprocess.fill)

    @torch.inference_mode()
    def logits(self, inputs: np.ndarray) -> torch.Tensor:
        """(B, h, w, 3) uint8 prepared inputs -> (B, C, h, w) float logits (on the CPU)."""
        x = torch.stack([to_tensor(i) for i in inputs]).to(self.device)
        return self.model(x).float().cpu()

    @staticmethod
    def finish_on_device(logits: torch.Tensor, frame: tuple[int, int]) -> torch.Tensor:
        """(C, h, w) model-frame logits -> (H, W) uint8 class ids for a photo of ``frame``, on
        the logits' device: padding cropped, logits upsampled bilinearly, argmax."""
        box = crop_to_photo(logits, tuple(frame))[None]
        up = F.interpolate(box, size=tuple(frame), mode="bilinear", align_corners=False)
        # Classes last before the argmax: over a contiguous innermost axis it runs 2.2x faster
        # at 768x1024 than over the strided first one (same values, same first-max ties).
        return up[0].permute(1, 2, 0).contiguous().argmax(-1).to(torch.uint8)

    @staticmethod
    def finish(logits: torch.Tensor, frame: tuple[int, int]) -> np.ndarray:
        """:meth:`finish_on_device` of CPU logits, as a numpy array."""
        return Segmenter.finish_on_device(logits, frame).numpy()

    def predict(self, photo: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 photo -> (H, W) uint8 class ids of :attr:`label_set`, the photo's size."""
        if photo.ndim != 3 or photo.shape[2] != 3:
            raise DataError(f"expected an (H, W, 3) RGB photo, got shape {photo.shape}")
        return self.finish(self.logits(self.prepare(photo)[None])[0], photo.shape[:2])

    def predict_many(self, photos: Sequence[np.ndarray], *, batch_size: int = 8) -> Iterator[np.ndarray]:
        """Photos (any sizes) -> class maps, ``batch_size`` photos per model call."""
        for start in range(0, len(photos), batch_size):
            chunk = photos[start: start + batch_size]
            logits = self.logits(np.stack([self.prepare(p) for p in chunk]))
            for p, lg in zip(chunk, logits):
                yield self.finish(lg, p.shape[:2])

    def to_cihp(self, classes: np.ndarray) -> np.ndarray:
        """Class ids -> CIHP labels (each class's representative): the data set's label format."""
        return self.label_set.decode(classes)

    def garment_classes(self, garment_labels: Sequence[int]) -> tuple[int, ...]:
        """The classes that hold any of the CIHP ``garment_labels`` (the generator's set)."""
        return self.label_set.classes_for(garment_labels)

    def garment_mask(self, classes: np.ndarray, garment_labels: Sequence[int]) -> np.ndarray:
        """(H, W) class ids -> (H, W) bool: pixels of :meth:`garment_classes`."""
        return np.isin(classes, self.garment_classes(garment_labels))

    def describe_garment(self, garment_labels: Sequence[int]) -> str:
        """In words, for messages: ``labels 5 (upper-clothes)`` or the viton13 group."""
        classes = self.garment_classes(garment_labels)
        if self.label_set.name == "cihp20":
            return "labels " + ", ".join(f"{c} ({LABELS[c]})" for c in classes)
        return f"{self.label_set.name} classes " + self.label_set.describe(classes)


def load_segmenter(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> Segmenter:
    """A segmenter checkpoint file, run folder or exported ``.onnx`` -> :class:`Segmenter`."""
    try:
        model, meta = load_segmenter_model(checkpoint, device)
    except CheckpointError as exc:
        if "'generator' model" in str(exc):  # the two checkpoints given the wrong way round
            raise CheckpointError(f"{exc}; give it as --checkpoint, and the segmenter as --segmenter") from None
        raise
    seg = Segmenter(model, meta, device)
    if seg.num_classes != model.config.classes:
        raise CheckpointError(
            f"{meta['path']}: the model has {model.config.classes} classes but its label set "
            f"{seg.label_set.name} has {seg.num_classes}"
        )
    return seg
