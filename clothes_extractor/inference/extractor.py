"""The generator at inference: a person photo + a garment mask -> the flat catalogue image.

The photo goes through :func:`clothes_extractor.data.transforms.preprocess_input`, the very
function that builds the training input, with the checkpoint's own preprocessing settings (size,
garment labels, background): no drift between training and inference. The generator's output
covers the padded model frame; :func:`clothes_extractor.data.transforms.to_frame` (the inverse
of the target's padding) brings it back to the catalogue frame, 768x1024 (W x H) by default:
VITON-HD's ``cloth/`` frame, which is what the model learned to draw.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from clothes_extractor.checkpoint import load_generator
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor, to_uint8
from clothes_extractor.data.layouts import CATEGORY_LABELS, LAYOUTS, VITON_HD
from clothes_extractor.data.transforms import content_box, preprocess_input, to_frame
from clothes_extractor.data.viton import MASK_THRESHOLD
from clothes_extractor.errors import CheckpointError, ConfigError
from clothes_extractor.inference.composite import WHITE, composite, cut_out
from clothes_extractor.inference.warp_frame import WarpSource, draw, fields, warp_source

CATALOGUE_FRAME: tuple[int, int] = (1024, 768)  # (H, W) of VITON-HD's cloth/ images
# The margins `extract` draws the garment with: VITON-HD's catalogue convention (the garment
# spans 0.81 of the image's width, :data:`~clothes_extractor.data.layouts.VITON_HD`).
CATALOGUE_GARMENT_WIDTH: float = VITON_HD.garment_width


# `extract --margins`: a data set's catalogue margins, or none (the margins the model learned).
MARGINS = (*LAYOUTS, "none")


def margins_width(margins: str) -> float | None:
    """The garment width of the catalogue margins named ``margins`` (:data:`MARGINS`): a data
    set's, as `evaluate` draws for it; None for ``none`` and for a data set without a convention
    (Dress Code): the model's own."""
    if margins not in MARGINS:
        raise ConfigError(f"--margins {margins!r} is not one of {', '.join(MARGINS)}")
    return None if margins == "none" else LAYOUTS[margins].garment_width


def catalogue_scale(learned: float | None, wanted: float | None) -> float:
    """How much to scale a garment drawn with the margins a model ``learned`` (its training
    data's garment width) to show it with the ``wanted`` ones; 1 where either is unknown."""
    return 1.0 if learned is None or wanted is None else wanted / learned


def _to_frame_scaled(image: Image.Image, frame: tuple[int, int], fill, scale: float) -> Image.Image:
    """:func:`~clothes_extractor.data.transforms.to_frame` with the content scaled by ``scale``
    about the centre, on ``fill``: one resampling, so torch and ONNX outputs stay within 1/255."""
    if abs(scale - 1.0) <= 1e-6:
        return to_frame(image, frame, fill)
    left, top, cw, ch = content_box(frame, (image.height, image.width))
    h, w = frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = image.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.BICUBIC)
    canvas = Image.new(image.mode, (w, h), fill)
    canvas.paste(small, ((w - size[0]) // 2, (h - size[1]) // 2))
    return canvas


@dataclass(frozen=True)
class ExtractResult:
    """One extracted garment in its catalogue frame.

    ``rgb`` (Hf, Wf, 3) uint8 on ``background`` (the training background), ``alpha`` (Hf, Wf)
    uint8: the predicted garment alpha (sigmoid of the alpha logit) times 255.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    background: tuple[int, int, int] = WHITE
    notes: tuple[str, ...] = ()  # how the mask was read, resizes, warnings: for the command to print

    def on_background(self, colour: tuple[int, int, int]) -> np.ndarray:
        """(Hf, Wf, 3) uint8 recomposited on ``colour`` with the predicted alpha
        (:func:`~clothes_extractor.inference.composite.composite`)."""
        return composite(self.rgb, self.alpha, self.background, colour)

    def rgba(self) -> np.ndarray:
        """(Hf, Wf, 4) uint8 cut-out (:func:`~clothes_extractor.inference.composite.cut_out`)."""
        return cut_out(self.rgb, self.alpha, self.background)

    def mask(self, threshold: int = MASK_THRESHOLD) -> np.ndarray:
        """(Hf, Wf) uint8 0/255: the alpha thresholded (a VITON-HD ``cloth-mask``)."""
        return np.where(self.alpha >= threshold, 255, 0).astype(np.uint8)


def to_catalogue(
    rgb: np.ndarray,
    alpha: np.ndarray,
    background: tuple[int, int, int],
    frame: tuple[int, int] | None = None,
    scale: float = 1.0,
) -> ExtractResult:
    """Model-frame (h, w, 3) uint8 rgb on ``background`` and (h, w) uint8 alpha ->
    :class:`ExtractResult` in ``frame`` ((H, W), default :data:`CATALOGUE_FRAME`): the padding
    cropped and the rest resized by :func:`~clothes_extractor.data.transforms.to_frame`, then
    the garment scaled by ``scale`` about the centre (:func:`catalogue_scale`)."""
    frame = tuple(frame or CATALOGUE_FRAME)
    rgb_img = _to_frame_scaled(Image.fromarray(rgb), frame, tuple(background), scale)
    alpha_img = _to_frame_scaled(Image.fromarray(alpha), frame, 0, scale)
    return ExtractResult(rgb=np.asarray(rgb_img), alpha=np.asarray(alpha_img), background=tuple(background))


class Extractor:
    """A generator loaded from a checkpoint, with the preprocessing it was trained with.

    Example:
        >>> ex = load_extractor("runs/train-unet")                      # doctest: +SKIP
        >>> res = ex.extract(photo, mask)                              # doctest: +SKIP
        >>> res.rgb.shape, res.alpha.shape                             # doctest: +SKIP
        ((1024, 768, 3), (1024, 768))
    """

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], device: torch.device) -> None:
        self.model = model.eval()
        self.meta = meta
        self.device = torch.device(device)
        try:
            self.preprocess = PreprocessConfig.from_dict(meta["preprocess"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{meta.get('path', 'checkpoint')} has no readable preprocessing settings ({exc})") from None
        # The margins results are drawn with; `evaluate` sets its data set's (`with_catalogue`).
        self.catalogue_width: float | None = CATALOGUE_GARMENT_WIDTH
        # A warp generator samples the photo itself, straight into the catalogue frame
        # (inference.warp_frame): the photo's own detail, one sampling.
        self.warp = meta.get("generator", {}).get("arch", "paint") == "warp"

    def batched_on_cpu(self) -> Extractor:
        """This extractor with its torch model in channels_last where that is measured faster:
        batches on a CPU with several threads (the default generator, batch 16 at 256x192, 2
        threads: 1.02 s contiguous, 0.76 s channels_last; one thread or one photo gains little or
        loses, README's backend table). Values change only by float rounding. For `evaluate`."""
        if self.device.type == "cpu" and torch.get_num_threads() > 1 and isinstance(self.model, torch.nn.Module):
            self.model.to(memory_format=torch.channels_last)
        return self

    @property
    def labels(self) -> tuple[int, ...]:
        return self.preprocess.garment_labels

    def for_category(self, category: str | None) -> Extractor:
        """This extractor for one Dress Code category's garment (``--category``); ConfigError
        when the checkpoint knows several and none is named, or does not know the one named."""
        known = self.preprocess.categories
        if category is None:
            if len(known) > 1:
                raise ConfigError(f"this model knows several garment categories ({', '.join(known)}); pick one with --category")
            return self
        if not known:
            raise ConfigError(
                f"--category applies to models trained on Dress Code categories; this one extracts garment labels "
                f"{list(self.labels)} whatever the category"
            )
        if category not in known:
            raise ConfigError(f"this model was trained on {', '.join(known)}, not {category}")
        chosen = copy.copy(self)
        chosen.preprocess = replace(self.preprocess, garment_labels=CATEGORY_LABELS[category])
        return chosen

    def prepare(self, photo: np.ndarray, mask: np.ndarray, *, name: str = "photo") -> np.ndarray:
        """(H, W, 3) uint8 photo + (H, W) bool mask -> (h, w, 3) uint8 model input, exactly as
        in training (:func:`~clothes_extractor.data.transforms.preprocess_input`)."""
        return preprocess_input(photo, mask, self.preprocess, name=name)

    def prepare_source(
        self, photo: np.ndarray, mask: np.ndarray, *, frame: tuple[int, int] | None = None, name: str = "photo"
    ) -> WarpSource | None:
        """What a warp generator samples (:class:`~clothes_extractor.inference.warp_frame.WarpSource`:
        the garment's box of the photo, reduced only where ``frame`` needs fewer pixels); None for
        a paint one."""
        if not self.warp:
            return None
        reach = (frame or CATALOGUE_FRAME)[0] / self.preprocess.size[0] * self.scale
        return warp_source(photo, mask, self.preprocess, reach=reach, name=name)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, h, w) float model inputs in [-1, 1] -> (rgb (B, 3, h, w) float32 clamped to
        [-1, 1], alpha logit (B, 1, h, w) float32), on :attr:`device`, in the padded model frame
        (a warp generator's fill inside its outline, at the model size)."""
        return self.render(self.run(x))

    @torch.no_grad()
    def run(self, x: torch.Tensor):
        """The model's raw :class:`~clothes_extractor.models.generator.GeneratorOutput` on
        (B, 3, h, w) inputs in [-1, 1] (moved to :attr:`device`)."""
        return self.model(x.to(self.device))

    @staticmethod
    def render(out) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`run`'s output -> (rgb clamped to [-1, 1], alpha logit), float32, at the model size."""
        return out.rgb.float().clamp(-1, 1), out.alpha_logit.float()

    @property
    def background_tensor(self) -> torch.Tensor:
        """(3,) the training background in [-1, 1]: a warp generator's colour outside its outline."""
        return torch.tensor(self.preprocess.background, dtype=torch.float32) / 127.5 - 1

    @staticmethod
    def quantize(rgb: torch.Tensor, alpha_logit: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forward`'s outputs -> ((B, h, w, 3) uint8 rgb, (B, h, w) uint8 alpha), the
        alpha being the sigmoid of the logit times 255: the 8 bits a saved image holds."""
        alpha = torch.sigmoid(alpha_logit.float())
        return np.stack([to_uint8(r) for r in rgb]), np.stack([to_uint8(a) for a in alpha])

    @torch.inference_mode()
    def predict(self, inputs: np.ndarray, sources: Sequence[WarpSource | None] | None = None):
        """(B, h, w, 3) uint8 model inputs -> what :meth:`finish_all` brings to the catalogue frame:
        ((B, h, w, 3) uint8 rgb, (B, h, w) uint8 alpha) in the padded model frame, or for a warp
        generator given its sources (:meth:`prepare_source`) a :class:`WarpBatch` of its fields."""
        out = self.predict_tensors(torch.stack([to_tensor(i) for i in inputs]), sources)
        return out if isinstance(out, WarpBatch) else self.quantize(*out)

    @torch.inference_mode()
    def predict_tensors(self, x: torch.Tensor, sources: Sequence[WarpSource | None] | None = None):
        """(B, 3, h, w) inputs in [-1, 1] -> a warp generator's :class:`WarpBatch` (given its
        sources), else :meth:`forward`'s float tensors (folder mode's device path finishes them there)."""
        if sources is not None and len(sources) and sources[0] is not None:
            return WarpBatch(fields(self.run(x)), list(sources))
        return self.forward(x)

    def finish(self, rgb: np.ndarray, alpha: np.ndarray, frame: tuple[int, int] | None = None) -> ExtractResult:
        """Model-frame (h, w, 3) rgb and (h, w) alpha -> :class:`ExtractResult` in ``frame`` (H, W)."""
        return to_catalogue(rgb, alpha, self.preprocess.background, frame, self.scale)

    @torch.inference_mode()
    def finish_warped(self, field: torch.Tensor, source: WarpSource, frame: tuple[int, int] | None = None) -> ExtractResult:
        """A warp generator's (7, h, w) fields and its source -> :class:`ExtractResult` in ``frame``:
        the photo sampled once, straight into the frame (:func:`~clothes_extractor.inference.warp_frame.draw`)."""
        pixels = source.pixels if isinstance(source.pixels, torch.Tensor) else to_tensor(source.pixels)
        pixels = pixels.to(field.device)
        rgb, alpha = draw(field, pixels, source.box, tuple(frame or CATALOGUE_FRAME), self.scale, self.background_tensor)
        return ExtractResult(rgb=to_uint8(rgb), alpha=to_uint8(alpha), background=tuple(self.preprocess.background))

    def finish_all(self, outputs, frame: tuple[int, int] | None = None) -> list[ExtractResult]:
        """:meth:`predict`'s outputs -> one :class:`ExtractResult` each, in ``frame``."""
        if isinstance(outputs, WarpBatch):
            return [self.finish_warped(f, s, frame) for f, s in zip(outputs.fields, outputs.sources)]
        rgb, alpha = outputs
        return [self.finish(r, a, frame) for r, a in zip(rgb, alpha)]

    @property
    def scale(self) -> float:
        """The scale from the margins this model learned to :attr:`catalogue_width`'s."""
        return catalogue_scale(self.preprocess.garment_width, self.catalogue_width)

    def with_catalogue(self, garment_width: float | None) -> Extractor:
        """A copy drawing garments with ``garment_width`` margins (None: as the model learned)."""
        chosen = copy.copy(self)
        chosen.catalogue_width = garment_width
        return chosen

    def extract(self, photo: np.ndarray, mask: np.ndarray, *, frame: tuple[int, int] | None = None) -> ExtractResult:
        """(H, W, 3) uint8 photo + (H, W) bool garment mask -> the garment in ``frame``
        ((H, W); default :data:`CATALOGUE_FRAME`, 1024x768)."""
        source = self.prepare_source(photo, mask, frame=frame)
        return self.finish_all(self.predict(self.prepare(photo, mask)[None], [source]), frame)[0]

    def extract_many(
        self, inputs: Sequence[np.ndarray], *, frame: tuple[int, int] | None = None, batch_size: int = 8,
        sources: Sequence[WarpSource | None] | None = None,
    ) -> Iterator[ExtractResult]:
        """Prepared model inputs (from :meth:`prepare`, with :meth:`prepare_source`'s ``sources``
        for a warp generator) -> results, ``batch_size`` at a time."""
        for start in range(0, len(inputs), batch_size):
            chunk = None if sources is None else sources[start: start + batch_size]
            yield from self.finish_all(self.predict(np.stack(inputs[start: start + batch_size]), chunk), frame)


class WarpBatch(NamedTuple):
    """A warp generator's batch between the model and the catalogue frame."""

    fields: torch.Tensor  # (B, 7, h, w) (inference.warp_frame.fields)
    sources: list[WarpSource]


def load_extractor(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> Extractor:
    """A checkpoint file or run folder -> :class:`Extractor` (CheckpointError if it is not one of ours).

    An exported ``.onnx`` (`clothes-extractor export`) gives an Extractor whose model is run by
    onnxruntime (:class:`~clothes_extractor.onnx_model.OnnxModel`): same preprocessing, same
    compositing, same results within 1/255."""
    try:
        model, meta = load_generator(checkpoint, device)
    except CheckpointError as exc:
        if "'segmenter' model" in str(exc):  # the two checkpoints given the wrong way round
            raise CheckpointError(f"{exc}; give it as --segmenter, and a generator as --checkpoint") from None
        raise
    return Extractor(model, meta, device)
