"""Folder mode's pixel work on the model's device: torch twins of the host (PIL) steps.

On a GPU, `extract --images` and `segment --images` decode the JPEG photos there (torchvision's
nvjpeg decoder, one call per batch), crop, resize and composite there, and copy each batch's
results back once; the reading threads only read the files' bytes and the masks, and the
writing threads encode. Each function runs on whatever device its tensors are on, so the CPU
runs the very same logic in the tests (:mod:`tests.inference.test_device_pixels`); folder mode
takes this path only when the model is on CUDA (:func:`choose_pixels`): on the CPU the host
path (PIL) stays, its speed and its results unchanged.

The twins and their host functions:

- :func:`decode_photos` / :func:`read_source` + :func:`decode_sources`: :func:`read_photo`.
  Only a plain JPEG goes to the device decoder (RGB or grey, EXIF orientation 1: nvjpeg ignores
  the tag); any other file is read by PIL as today and uploaded. A file the decoder refuses is
  retried alone, then read by PIL, so a broken one fails alone with PIL's DataError.
- :func:`prepare_input`: :func:`~clothes_extractor.data.transforms.preprocess_input` (same box,
  offsets and rounding; PIL's bilinear resampling by :func:`pil_resize`).
- :func:`to_catalogue_batch`: :func:`~clothes_extractor.inference.extractor.to_catalogue`
  (PIL's bicubic, the same way).
- :func:`fit_photo` + :func:`class_maps`: :meth:`Segmenter.prepare` / ``logits`` / ``finish``.

The twins are exact: :func:`pil_resize` is Pillow's own fixed-point resampling done in integers,
so each twin gives the host function's bytes, whatever the photo (soft real ones, synthetic ones
with hard edges), and a folder's outputs equal the host path's. (Torch's antialiased float
interpolation, used before, rounded about 3% of the values differently, by 1/255; a step off by
1/255 fed the models, and the differences added up to 3-4/255 in the results and to 0.2-0.4% of
the pixels in the class maps of the synthetic photos.)
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.transforms import content_box, mask_box, resized_crop_size
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.inference.extractor import CATALOGUE_FRAME, ExtractResult
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.inference.segmenter import Segmenter

PIXELS: tuple[str, ...] = ("auto", "host", "device")
EXIF_ORIENTATION = 0x0112


def choose_pixels(pixels: str, device: torch.device | str) -> str:
    """``host`` or ``device`` for ``pixels`` (:data:`PIXELS`): ``auto`` is ``device`` for a model
    on CUDA, ``host`` otherwise (the CPU keeps PIL: its speed and results as they were)."""
    if pixels not in PIXELS:
        raise ConfigError(f"pixels {pixels!r} is not one of {', '.join(PIXELS)}")
    if pixels != "auto":
        return pixels
    return "device" if torch.device(device).type == "cuda" and torch.cuda.is_available() else "host"


# --- decoding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSource:
    """A photo read from disk but not decoded yet: a plain JPEG's bytes (``data``, 1-D uint8) for
    the device decoder, or the pixels PIL decoded (``photo``, (H, W, 3) uint8) for any other file.
    ``shape``: (H, W) as displayed."""

    path: Path
    shape: tuple[int, int]
    data: torch.Tensor | None = None
    photo: np.ndarray | None = None


def _plain_jpeg(path: Path) -> tuple[int, int] | None:
    """(H, W) of a JPEG the device decoder reads as PIL does (RGB or grey, no rotation by
    EXIF), from its header only; None for any other file (or one PIL cannot even open)."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
                return None
            return image.height, image.width
    except Exception:  # noqa: BLE001 - any failure: PIL's own reading reports it
        return None


def read_source(path: str | os.PathLike) -> PhotoSource:
    """The reading thread's part of a photo: a plain JPEG's bytes, else :func:`read_photo`'s
    pixels (a DataError naming the file when it cannot be read, as today)."""
    path = Path(path)
    shape = _plain_jpeg(path)
    if shape is not None:
        try:
            data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
            return PhotoSource(path, shape, data=data)
        except OSError:
            pass  # read_photo names the file in its error
    photo = read_photo(path)
    return PhotoSource(path, photo.shape[:2], photo=photo)


def _decode_jpegs(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    if device.type == "cuda":
        # nvJPEG decodes on a stream of its own into blocks the caching allocator gives out on
        # ours: a block freed while our queued kernels still read it could be overwritten
        # (pytorch/vision#9606, meta-pytorch/torchcodec#1634). Drain our stream first; folder
        # mode's previous batch ended in a copy to the host, so this waits for nothing there.
        torch.cuda.current_stream(device).synchronize()
    # torchvision 0.29 marks its image decoders deprecated (in favour of TorchCodec, not
    # installed here); they are still the one nvjpeg binding: silence that warning only here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))


def _upload(photo: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.tensor(photo, dtype=torch.uint8).to(device).permute(2, 0, 1)


def _pil_fallback(source: PhotoSource, device: torch.device) -> torch.Tensor | DataError:
    try:
        return _upload(read_photo(source.path), device)
    except DataError as exc:
        return exc


def decode_sources(sources: Sequence[PhotoSource], device: torch.device | str) -> list[torch.Tensor | DataError]:
    """Photos -> (3, H, W) uint8 tensors on ``device``, or the DataError of a photo that cannot
    be read: the JPEGs in one decoder call (nvjpeg on CUDA, libjpeg on the CPU); if that call
    fails, each alone, and one that still fails is read by PIL (and fails alone if PIL cannot)."""
    device = torch.device(device)
    out: list[torch.Tensor | DataError | None] = [None] * len(sources)
    jpegs = [i for i, s in enumerate(sources) if s.data is not None]
    for i, s in enumerate(sources):
        if s.data is None:
            out[i] = _upload(s.photo, device)
    if jpegs:
        try:
            decoded: list[torch.Tensor | None] = _decode_jpegs([sources[i].data for i in jpegs], device)
        except (RuntimeError, ValueError):
            decoded = []
            for i in jpegs:
                try:
                    decoded.append(_decode_jpegs([sources[i].data], device)[0])
                except (RuntimeError, ValueError):
                    decoded.append(None)
        for i, image in zip(jpegs, decoded):
            ok = image is not None and tuple(image.shape) == (3, *sources[i].shape)
            out[i] = image if ok else _pil_fallback(sources[i], device)
    return out  # type: ignore[return-value]


def decode_photos(paths: Sequence[str | os.PathLike], device: torch.device | str) -> list[torch.Tensor | DataError]:
    """Photo files -> (3, H, W) uint8 tensors on ``device`` (or each unreadable one's DataError):
    :func:`read_source` then :func:`decode_sources`; the pixels of :func:`read_photo`."""
    sources: list[PhotoSource | DataError] = []
    for p in paths:
        try:
            sources.append(read_source(p))
        except DataError as exc:
            sources.append(exc)
    good = [s for s in sources if isinstance(s, PhotoSource)]
    decoded = iter(decode_sources(good, device))
    return [s if isinstance(s, DataError) else next(decoded) for s in sources]


# --- resampling as PIL does ----------------------------------------------------------------------


# Pillow's libImaging/Resample.c for 8-bit images, step for step: each output sample's filter
# taps are computed in double (the same expressions, in the same order), normalised to sum 1,
# quantised to 22-bit fixed point (round half away from zero); a pass sums the integer products
# from a half, shifts back and clips to 0-255. Width first, then height, an 8-bit image between.
# The same integers give the same bytes on any device: the device path equals the host path.
PIL_PRECISION_BITS = 32 - 8 - 2


def _pil_bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _pil_bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


_PIL_FILTERS = {"bilinear": (1.0, _pil_bilinear), "bicubic": (2.0, _pil_bicubic)}


@functools.lru_cache(maxsize=256)
def pil_taps(in_size: int, out_size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """PIL's taps for resizing one axis from ``in_size`` to ``out_size`` samples with ``mode``
    (``bilinear`` or ``bicubic``): ((out_size, k) int64 source indices, (out_size, k) int32
    weights in 22-bit fixed point), as Resample.c's ``precompute_coeffs`` and
    ``normalize_coeffs_8bpc`` compute them (unused taps: weight 0, index clamped)."""
    if mode not in _PIL_FILTERS:
        raise ValueError(f"resampling {mode!r} is not one of {', '.join(_PIL_FILTERS)}")
    support, kernel = _PIL_FILTERS[mode]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)  # C's (int): toward zero
    count = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    used = taps < count[:, None]
    w = np.where(used, kernel((taps + xmin[:, None] - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    total = np.zeros(out_size)
    for j in range(ksize):  # summed in the C loop's order: the same rounding
        total += w[:, j]
    w = np.where(total[:, None] != 0.0, w / np.where(total != 0.0, total, 1.0)[:, None], w)
    one = float(1 << PIL_PRECISION_BITS)
    fixed = np.where(w < 0, np.trunc(-0.5 + w * one), np.trunc(0.5 + w * one)).astype(np.int32)
    used_taps = int(count.max())  # the rest weigh 0 everywhere
    index = np.minimum(xmin[:, None] + taps[:used_taps], in_size - 1)
    return index, fixed[:, :used_taps]


@functools.lru_cache(maxsize=256)
def _taps_on(in_size: int, out_size: int, mode: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    index, fixed = pil_taps(in_size, out_size, mode)
    return (torch.from_numpy(index).to(device, non_blocking=True),
            torch.from_numpy(fixed).to(device, non_blocking=True))


def _pil_pass(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """One of Resample.c's 8-bit passes along the first axis of ``x`` (uint8, that axis first so
    that each tap gathers whole contiguous rows): integer sums from a half, shifted back,
    clipped to 0-255."""
    index, fixed = _taps_on(x.shape[0], size, mode, x.device)
    x = x.to(torch.int32)
    weight_shape = (-1,) + (1,) * (x.dim() - 1)
    acc = torch.full((size, *x.shape[1:]), 1 << (PIL_PRECISION_BITS - 1), dtype=torch.int32, device=x.device)
    for j in range(index.shape[1]):
        acc.addcmul_(x.index_select(0, index[:, j]), fixed[:, j].view(weight_shape))
    return acc.bitwise_right_shift_(PIL_PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def pil_resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(..., C, H, W) uint8 -> (..., C, h, w) uint8, byte for byte PIL's ``resize`` of each
    channel with ``mode`` (``bilinear`` or ``bicubic``; an ``L`` or ``RGB`` image, no box, no
    reducing gap): Resample.c's fixed-point arithmetic (:func:`pil_taps`), width first, then
    height, each pass rounded and clipped to 8 bits; an axis whose size stays is not resampled.

    One gather and one multiply-add of int32 rows per tap (4-9 taps an axis at the sizes folder
    mode uses): on one CPU thread 2-3x the time of torch's float antialiased interpolation (a
    photo to 256x192: 23 ms against 11-17 ms; four 256x192 RGBA results to 1024x768 bicubic:
    0.6 s against 0.18 s), its price for being exact; unmeasured on a GPU."""
    h, w = size
    lead = image.shape[:-3]
    x = image.reshape(-1, *image.shape[-3:])  # (N, C, H, W)
    if x.shape[-1] != w:
        x = _pil_pass(x.permute(3, 0, 1, 2).contiguous(), w, mode).permute(1, 2, 3, 0)
    if x.shape[-2] != h:
        x = _pil_pass(x.permute(2, 0, 1, 3).contiguous(), h, mode).permute(1, 2, 0, 3)
    return x.contiguous().reshape(*lead, *x.shape[-3:])


def paste(canvas: torch.Tensor, image: torch.Tensor, left: int, top: int) -> torch.Tensor:
    """``image`` (..., C, h, w) into ``canvas`` (..., C, H, W) at (``left``, ``top``), clipped
    at the edges as PIL's ``paste``; returns ``canvas``."""
    H, W = canvas.shape[-2:]
    h, w = image.shape[-2:]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
    if x1 > x0 and y1 > y0:
        canvas[..., y0:y1, x0:x1] = image[..., y0 - top: y1 - top, x0 - left: x1 - left]
    return canvas


def _colour(colour, channels: int, device: torch.device) -> torch.Tensor:
    values = [int(c) for c in colour] if isinstance(colour, (tuple, list)) else [int(colour)] * channels
    return torch.tensor(values, dtype=torch.uint8, device=device).view(channels, 1, 1)


def _canvas(channels: int, size: tuple[int, int], fill, device: torch.device, batch: int | None = None) -> torch.Tensor:
    c = _colour(fill, channels, device).expand(channels, *size)
    return (c if batch is None else c.expand(batch, channels, *size)).clone()


# --- the generator's input -----------------------------------------------------------------------


def prepare_input(
    photo: torch.Tensor, mask: np.ndarray | torch.Tensor, cfg: PreprocessConfig,
    box: tuple[int, int, int, int] | None = None, *, name: str = "photo",
) -> torch.Tensor:
    """(3, H, W) uint8 photo on a device + (H, W) bool garment mask -> (3, h, w) uint8 model
    input there: :func:`~clothes_extractor.data.transforms.preprocess_input`'s geometry.

    ``box`` (y0, y1, x0, x1): the mask's bounding box (:func:`mask_box`), computed from a host
    mask when not given; only the box's part of a host mask is uploaded."""
    H, W = photo.shape[-2:]
    if tuple(mask.shape) != (H, W):
        raise DataError(f"{name}: mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {W}x{H}; they must be the same size")
    if box is None:
        box = mask_box(np.asarray(mask))
        if box is None:
            raise DataError(f"{name}: the garment mask is empty (no pixel of the garment)")
    y0, y1, x0, x1 = box
    device = photo.device
    inside = mask[y0:y1, x0:x1]
    inside = torch.from_numpy(np.ascontiguousarray(inside)) if isinstance(inside, np.ndarray) else inside
    background = _colour(cfg.background, 3, device)
    crop = torch.where(inside.to(device, non_blocking=True), photo[:, y0:y1, x0:x1], background)
    h, w = cfg.size
    bw, bh = resized_crop_size(box, (H, W), cfg)
    resized = crop if (bw, bh) == (x1 - x0, y1 - y0) else pil_resize(crop, (bh, bw), "bilinear")
    return paste(_canvas(3, (h, w), cfg.background, device), resized, (w - bw) // 2, (h - bh) // 2)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float in [-1, 1], as :func:`~clothes_extractor.data.dataset.to_tensor`."""
    return images.float().div_(127.5).sub_(1)


# --- back to the catalogue frame -----------------------------------------------------------------


def _host(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """uint8 tensors on a device -> numpy arrays of the same shapes, in one copy."""
    if not tensors:
        return []
    flat = torch.cat([t.reshape(-1) for t in tensors]).cpu().numpy()
    out, start = [], 0
    for t in tensors:
        out.append(flat[start: start + t.numel()].reshape(tuple(t.shape)))
        start += t.numel()
    return out


def to_catalogue_batch(
    rgb: torch.Tensor, alpha: torch.Tensor, background: tuple[int, int, int],
    frame: tuple[int, int] | None = None, scale: float = 1.0,
) -> list[ExtractResult]:
    """:func:`~clothes_extractor.inference.extractor.to_catalogue` for a batch on a device.

    ``rgb`` (B, 3, h, w): float in [-1, 1] (:meth:`Extractor.forward`) or uint8; ``alpha``
    (B, 1, h, w): float alpha logits or uint8 alpha. Quantized as :meth:`Extractor.quantize`,
    cropped, resized bicubic and scaled about the centre on ``background`` (alpha on 0) there;
    one copy of the batch to the host."""
    if rgb.is_floating_point():
        rgb = ((rgb.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if alpha.is_floating_point():
        alpha = (torch.sigmoid(alpha.float()).clamp(0, 1) * 255).round().to(torch.uint8)
    frame = tuple(frame or CATALOGUE_FRAME)
    H, W = frame
    device, batch = rgb.device, rgb.shape[0]
    x = torch.cat([rgb, alpha.reshape(batch, 1, *alpha.shape[-2:])], dim=1)
    left, top, cw, ch = content_box(frame, tuple(x.shape[-2:]))
    x = x[..., top: top + ch, left: left + cw]
    if abs(scale - 1.0) <= 1e-6:
        out = pil_resize(x, (H, W), "bicubic")
    else:
        sw, sh = max(1, round(W * scale)), max(1, round(H * scale))
        fill = torch.cat([_colour(background, 3, device), _colour(0, 1, device)])
        out = paste(fill.expand(batch, 4, H, W).clone(), pil_resize(x, (sh, sw), "bicubic"), (W - sw) // 2, (H - sh) // 2)
    host = _host([out[:, :3].permute(0, 2, 3, 1), out[:, 3]])
    bg = tuple(int(c) for c in background)
    return [ExtractResult(rgb=host[0][i], alpha=host[1][i], background=bg) for i in range(batch)]


# --- the segmenter -------------------------------------------------------------------------------


def fit_photo(photo: torch.Tensor, size: tuple[int, int], fill=(255, 255, 255)) -> torch.Tensor:
    """:func:`~clothes_extractor.data.segmentation.fit_photo` on a (3, H, W) uint8 tensor."""
    left, top, cw, ch = content_box(tuple(photo.shape[-2:]), size)
    resized = photo if (ch, cw) == tuple(photo.shape[-2:]) else pil_resize(photo, (ch, cw), "bilinear")
    return paste(_canvas(3, tuple(size), tuple(fill), photo.device), resized, left, top)


# :meth:`Segmenter.finish`'s crop, upsample and argmax on the logits' device: (C, h, w) -> (H, W) uint8.
finish_classes = Segmenter.finish_on_device


@torch.inference_mode()
def class_maps(segmenter, photos: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """(3, H, W) uint8 photos on the segmenter's device -> (H, W) uint8 class maps on the host:
    :meth:`Segmenter.predict_many`'s, one model call, one copy to the host."""
    if not photos:
        return []
    pre = segmenter.preprocess
    x = to_unit(torch.stack([fit_photo(p, tuple(pre.size), tuple(pre.fill)) for p in photos]))
    logits = segmenter.model(x.to(segmenter.device)).float()
    return _host([finish_classes(lg, tuple(p.shape[-2:])) for p, lg in zip(photos, logits)])
