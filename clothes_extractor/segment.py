"""Inference of the garment segmenter: a person photo -> its parse map, and the garment mask.

A segmenter checkpoint (kind ``segmenter``, written by `train-segmenter`) rebuilds the model
and its preprocessing (:class:`~clothes_extractor.data.segmentation.SegmentationPreprocess`:
size, label set, fill). :meth:`Segmenter.predict` applies exactly the training geometry
(:func:`~clothes_extractor.data.segmentation.fit_photo`), crops the padding off the logits,
upsamples them bilinearly to the photo's size and takes the argmax there: the parse map has
the photo's resolution, whatever the model's.

Output files (`segment`) are palette PNGs in VITON-HD's own format
(:func:`~clothes_extractor.data.viton.to_palette_image`: VITON palette, CIHP label indices, like
``image-parse-v3/<id>.png``); a ``viton13`` model writes each group as its representative CIHP
label (:mod:`clothes_extractor.data.labels`).

The garment mask of a prediction (:meth:`Segmenter.garment_mask`): the pixels of the classes
that hold any of the generator's garment labels. An empty one is a
:class:`~clothes_extractor.errors.DataError` (:func:`require_garment`), never a blank output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clothes_extractor.checkpoint import is_onnx, load_into, load_state_dict, read_meta
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.data.labels import LabelSet
from clothes_extractor.data.segmentation import SegmentationPreprocess, crop_to_photo, fit_photo
from clothes_extractor.data.viton import LABELS, to_palette_image
from clothes_extractor.errors import CheckpointError, ClothesExtractorError, ConfigError, DataError
from clothes_extractor.fileio import save_image
from clothes_extractor.progress import progress_bar

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
    def finish(logits: torch.Tensor, frame: tuple[int, int]) -> np.ndarray:
        """(C, h, w) model-frame logits -> (H, W) uint8 class ids for a photo of ``frame``:
        padding cropped, logits upsampled bilinearly, argmax."""
        box = crop_to_photo(logits, frame)[None]
        up = F.interpolate(box, size=tuple(frame), mode="bilinear", align_corners=False)
        return up[0].argmax(0).to(torch.uint8).numpy()

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


def load_segmenter_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild a segmentation model from a checkpoint alone: (model in eval mode, metadata).

    Built with ``encoder_weights=None``, then given the checkpoint's weights: never touches the
    network. CheckpointError if the file holds another kind of model. An ``.onnx`` file gives an
    :class:`~clothes_extractor.onnx_model.OnnxModel`, called the same way.
    """
    from clothes_extractor.models.segmenter import SegmentationModelConfig, build_segmentation_model

    meta = read_meta(path)
    if meta.get("kind") != KIND:
        hint = "; give it as --checkpoint, and the segmenter as --segmenter" if meta.get("kind") == "generator" else ""
        raise CheckpointError(f"{meta['path']} holds a {meta.get('kind')!r} model, not a garment segmenter{hint}")
    try:
        cfg = SegmentationModelConfig.from_dict({**meta["segmenter"], "encoder_weights": None})
        if is_onnx(meta["path"]):
            from clothes_extractor.onnx_model import OnnxModel

            return OnnxModel.load(meta, cfg, device), meta
        model = build_segmentation_model(cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{meta['path']} has an unreadable model description: {exc}") from None
    load_into(model, load_state_dict(meta["path"]), meta["path"])
    return model.to(device).eval(), meta


def load_segmenter(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> Segmenter:
    """A segmenter checkpoint file, run folder or exported ``.onnx`` -> :class:`Segmenter`."""
    model, meta = load_segmenter_model(checkpoint, device)
    seg = Segmenter(model, meta, device)
    if seg.num_classes != model.config.classes:
        raise CheckpointError(
            f"{meta['path']}: the model has {model.config.classes} classes but its label set "
            f"{seg.label_set.name} has {seg.num_classes}"
        )
    return seg


def require_garment(
    segmenter: Segmenter, classes: np.ndarray, garment_labels: Sequence[int], *, name: str = "photo"
) -> np.ndarray:
    """The garment mask of a prediction; DataError if it is empty (no output is better than a
    blank one)."""
    mask = segmenter.garment_mask(classes, garment_labels)
    if not mask.any():
        found = [int(v) for v in np.unique(classes)]
        seen = ", ".join(f"{v} ({segmenter.label_set.classes[v]})" for v in found) or "none"
        raise DataError(
            f"the segmenter found no garment ({segmenter.describe_garment(garment_labels)}) in photo {name} "
            f"(it found: {seen}); give a mask"
        )
    return mask


# --- files ---------------------------------------------------------------------------------------


def check_parse_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """``-o`` of `segment`: a .png file (a label map must be lossless), new unless ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"output {path}: a parse map is written as a palette PNG; use a .png file name")
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; -o takes a file name (or use --images for folders)")
    if path.exists() and not overwrite:
        raise ConfigError(f"output {path} exists; pass --overwrite to replace it")
    return path


def write_parse(segmenter: Segmenter, classes: np.ndarray, path: str | os.PathLike) -> None:
    """Write a prediction as VITON-HD writes ``image-parse-v3``: palette PNG of CIHP labels, atomically."""
    save_image(to_palette_image(segmenter.to_cihp(classes)), path)


def segment_file(
    segmenter: Segmenter, photo: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> np.ndarray:
    """One photo -> ``out`` (palette PNG). Returns the class map. Validates ``out`` first."""
    from clothes_extractor.extract import read_photo

    out = check_parse_output(out, overwrite)
    classes = segmenter.predict(read_photo(photo))
    write_parse(segmenter, classes, out)
    return classes


@dataclass
class SegmentReport:
    """What :func:`segment_folder` did, by id."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def segment_folder(
    segmenter: Segmenter,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> SegmentReport:
    """Every photo of ``images`` -> ``out/<stem>.png``; existing outputs skipped unless
    ``overwrite``; a photo that cannot be read is reported and the others go on."""
    from clothes_extractor.extract import _images_by_stem, _prefer, read_photo

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; in folder mode -o takes a folder")
    photos = _images_by_stem(Path(images), "photo")
    if not photos:
        raise DataError(f"no photos in {images}")
    report = SegmentReport()
    advance, stop = progress_bar("segment", len(photos)) if progress else ((lambda n=1: None), (lambda: None))
    try:
        batch: list[tuple[str, np.ndarray, Path]] = []

        def flush() -> None:
            if not batch:
                return
            for (sample_id, _, path), classes in zip(batch, segmenter.predict_many([b[1] for b in batch], batch_size=len(batch))):
                try:
                    write_parse(segmenter, classes, path)
                    report.done.append(sample_id)
                except (OSError, ValueError, ClothesExtractorError) as exc:
                    report.failed.append((sample_id, f"cannot write {path}: {exc}"))
            advance(len(batch))
            batch.clear()

        for sample_id in sorted(photos):
            path = out / f"{sample_id}.png"
            if path.exists() and not overwrite:
                report.skipped.append(sample_id)
                advance(1)
                continue
            try:
                batch.append((sample_id, read_photo(_prefer(photos[sample_id])), path))
            except ClothesExtractorError as exc:
                report.failed.append((sample_id, str(exc)))
                advance(1)
                continue
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        stop()
    report.seconds = time.perf_counter() - started
    return report
