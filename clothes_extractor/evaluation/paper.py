"""The images of the paper protocol: the garment `extract` writes on white, at the cloth's size.

The prediction is rounded to 8 bits (:meth:`Extractor.quantize`, as a saved image is), brought
back to the cloth image's frame (:func:`~clothes_extractor.inference.extractor.to_catalogue`)
and put on white with its alpha (:func:`~clothes_extractor.inference.composite.composite`): the
very steps and functions of `extract --background white`, so the published numbers are those of
the images users get.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from clothes_extractor.data.dataset import to_uint8
from clothes_extractor.data.transforms import to_frame
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import Extractor, to_catalogue


def paper_garment(
    rgb: torch.Tensor, alpha_logit: torch.Tensor, cloth: np.ndarray, background: tuple[int, int, int], scale: float = 1.0
) -> np.ndarray:
    """(3, h, w) model output in [-1, 1] and its (1, h, w) alpha logit -> (H, W, 3) uint8 on
    white at the size of ``cloth`` (H, W, 3): what `extract --background white` writes."""
    rgb8, alpha8 = Extractor.quantize(rgb[None], alpha_logit[None])
    return to_catalogue(rgb8[0], alpha8[0], background, cloth.shape[:2], scale).on_background(WHITE)


def paper_images(
    rgb: torch.Tensor, alpha_logit: torch.Tensor, x: torch.Tensor, cloth: np.ndarray, background: tuple[int, int, int],
    scale: float = 1.0, model: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One sample's images under the paper protocol, uint8 (H, W, 3) at the cloth image's size.

    Args:
        rgb: (3, h, w) model output in [-1, 1]; alpha_logit: (1, h, w); x: (3, h, w) model input
            in [-1, 1]; cloth: the original cloth image (H, W, 3) uint8 (the reference).
        model: the garment already drawn in the cloth's frame on white (a warp generator's,
            :meth:`~clothes_extractor.inference.extractor.Extractor.finish_warped`), instead of
            ``rgb`` brought there.
    Returns ``{"model", "white", "input", "target"}``.
    """
    return {
        "model": paper_garment(rgb, alpha_logit, cloth, background, scale) if model is None else model,
        "white": np.full_like(cloth, 255),
        "input": np.asarray(to_frame(Image.fromarray(to_uint8(x)), cloth.shape[:2], background)),
        "target": cloth,
    }


def hwc_to_tensor(arrays: Sequence[np.ndarray], device) -> torch.Tensor:
    """uint8 (H, W, 3) arrays of one size -> float (B, 3, H, W) in [0, 1] on ``device``."""
    stacked = torch.from_numpy(np.stack(arrays)).to(device)
    return stacked.permute(0, 3, 1, 2).float().div_(255)
