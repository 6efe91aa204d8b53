"""A warp generator's garment written straight into the catalogue frame, from the photo itself.

The model runs at its size (256x192); its fields (the control-point flow, the composition mask,
the generated colour, the alpha) say where each catalogue pixel samples the photo and how it is
drawn. The margins and the catalogue frame are folded into the sampling grid, so one
``grid_sample`` reads the photo's own pixels for every pixel of the final image: no photo
prepared at a high resolution first, no resize of the result after (the photo's print keeps
the detail it has in the photo, at the cost of one sampling).

Geometry, in continuous pixel coordinates (pixel centres at i + 0.5, as PIL's resize and
``grid_sample(align_corners=False)`` both have them):

- catalogue -> model: the model frame's content box (the padding cropped) is resized to the
  garment's region of the frame (the frame scaled by the margins' ``scale``, centred), as
  :func:`~clothes_extractor.inference.extractor.to_catalogue` does;
- model -> model input: the flow (offsets in [-1, 1] units of the model frame);
- model input -> photo: the inverse of :func:`~clothes_extractor.data.transforms.preprocess_input`:
  the garment's box of the photo was resized to ``box`` (left, top, width, height in model pixels).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.transforms import content_box, garment_crop, resized_crop_size
from clothes_extractor.models.warp import dense_flow

# Fields of a warp generator's output, as :func:`fields` stacks them.
FIELDS = ("flow_x", "flow_y", "mask_logit", "r", "g", "b", "alpha_logit")
# A garment box sampled at less than 1/1.5 of its pixels is reduced first (PIL, antialiased):
# bilinear sampling alone would alias a large photo's print.
MAX_REDUCTION = 1.5


class WarpSource(NamedTuple):
    """What a warp generator samples for one photo."""

    # The garment's box of the photo, the rest on the background: (hc, wc, 3) uint8 on the host,
    # or (3, hc, wc) float in [-1, 1] on the model's device (folder mode's device path).
    pixels: np.ndarray | torch.Tensor
    box: tuple[float, float, float, float]  # (left, top, width, height): where it lands in the model frame


def warp_source(
    photo: np.ndarray, mask: np.ndarray, cfg: PreprocessConfig, *, reach: float = 4.0, name: str = "photo"
) -> WarpSource:
    """(H, W, 3) uint8 photo + (H, W) bool mask -> the :class:`WarpSource` of
    :func:`~clothes_extractor.data.transforms.preprocess_input`'s crop. ``reach``: catalogue
    pixels per model pixel where it will be drawn; a box larger than that needs is reduced."""
    crop, found = garment_crop(photo, mask, cfg, name=name)
    y0, y1, x0, x1 = found
    bw, bh = resized_crop_size(found, photo.shape[:2], cfg)
    h, w = cfg.size
    wanted = (round(bw * reach), round(bh * reach))
    if (x1 - x0) > MAX_REDUCTION * wanted[0] and (y1 - y0) > MAX_REDUCTION * wanted[1]:
        crop = np.asarray(Image.fromarray(crop).resize(wanted, Image.Resampling.BILINEAR))
    return WarpSource(crop, ((w - bw) // 2, (h - bh) // 2, bw, bh))


def warp_source_on_device(
    photo: torch.Tensor, mask: np.ndarray, cfg: PreprocessConfig, box: tuple[int, int, int, int]
) -> WarpSource:
    """:func:`warp_source`'s twin for a (3, H, W) uint8 photo already on the model's device, the
    garment ``mask`` (H, W) bool and its ``box`` (:func:`~clothes_extractor.data.transforms.mask_box`):
    the box cropped there, in [-1, 1] (no reduction: a GPU samples the photo as it is)."""
    y0, y1, x0, x1 = box
    crop = photo[:, y0:y1, x0:x1].float().div(127.5).sub(1)
    inside = torch.from_numpy(np.ascontiguousarray(mask[y0:y1, x0:x1])).to(crop.device)
    bg = torch.tensor(cfg.background, dtype=crop.dtype, device=crop.device).div(127.5).sub(1).view(3, 1, 1)
    bw, bh = resized_crop_size(box, tuple(photo.shape[-2:]), cfg)
    h, w = cfg.size
    return WarpSource(torch.where(inside, crop, bg), ((w - bw) // 2, (h - bh) // 2, bw, bh))


def fields(out) -> torch.Tensor:
    """(B, 7, h, w) float32 of a warp generator's output: the flow upsampled (bicubic) to the
    model size, the mask logit, the generated colour and the alpha logit (:data:`FIELDS`)."""
    h, w = out.mask_logit.shape[-2:]
    return torch.cat([dense_flow(out.flow, (h, w)), out.mask_logit, out.generated, out.alpha_logit], dim=1).float()


def _centres(start: float, step: float, n: int, like: torch.Tensor) -> torch.Tensor:
    return start + (torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) * step


def draw(
    field: torch.Tensor, source: torch.Tensor, box: tuple[float, float, float, float], frame: tuple[int, int],
    scale: float, background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One garment in the catalogue ``frame`` (H, W).

    Args:
        field: (7, h, w) of :func:`fields`.
        source: (3, hc, wc) the :class:`WarpSource`'s pixels in [-1, 1], on ``field``'s device.
        box: the source's box in the model frame.
        scale: the margins' scale (:meth:`Extractor.scale`).
        background: (3,) in [-1, 1].

    Returns:
        (rgb (3, H, W) in [-1, 1] on the background, alpha (1, H, W) in [0, 1]).
    """
    _, h, w = field.shape
    hf, wf = frame
    left, top, cw, ch = content_box(frame, (h, w))
    sw, sh = max(1, round(wf * scale)), max(1, round(hf * scale))
    px, py = (wf - sw) // 2, (hf - sh) // 2
    # The part of the scaled region the frame shows (margins wider than the frame crop it).
    cx0, cy0 = max(0, -px), max(0, -py)
    cx1, cy1 = min(sw, wf - px), min(sh, hf - py)
    region = F.interpolate(field[None, :, top:top + ch, left:left + cw], size=(sh, sw), mode="bilinear", align_corners=False)
    region = region[0, :, cy0:cy1, cx0:cx1]
    # Model-frame coordinates of each shown pixel's centre, then the flow, then the source's.
    xm = _centres(left + cx0 * cw / sw, cw / sw, cx1 - cx0, region)
    ym = _centres(top + cy0 * ch / sh, ch / sh, cy1 - cy0, region)
    ox, oy, bw, bh = box
    xs = (xm[None, :] + region[0] * (w / 2) - ox) * (2 / bw) - 1
    ys = (ym[:, None] + region[1] * (h / 2) - oy) * (2 / bh) - 1
    bg = background.to(region).view(3, 1, 1)
    # Outside the box the input is background: sample the difference from it, zeros outside.
    sampled = F.grid_sample((source.to(region) - bg)[None], torch.stack([xs, ys], dim=-1)[None],
                            mode="bilinear", padding_mode="zeros", align_corners=False)[0] + bg
    m, a = torch.sigmoid(region[2:3]), torch.sigmoid(region[6:7])
    content = m * sampled + (1 - m) * region[3:6]
    rgb = bg.expand(3, hf, wf).clone()
    alpha = torch.zeros(1, hf, wf, dtype=region.dtype, device=region.device)
    y0, x0 = py + cy0, px + cx0
    rgb[:, y0:y0 + region.shape[1], x0:x0 + region.shape[2]] = a * content + (1 - a) * bg
    alpha[:, y0:y0 + region.shape[1], x0:x0 + region.shape[2]] = a
    return rgb, alpha
