"""Paired geometric augmentation of whole batches, on the device (kornia), not per sample in PIL.

The same semantics as :func:`clothes_extractor.data.transforms.augment` with an
:class:`~clothes_extractor.data.transforms.AugmentConfig`: per sample, one draw of three
uniform numbers ``u`` gives a horizontal flip (``u0 < flip``), a rotation of
``(2 u1 - 1) * rotate`` degrees (positive: counter-clockwise) and a zoom of
``1 + (2 u2 - 1) * zoom`` about the image centre; the flip comes first, then rotation and zoom,
bilinear, and what comes in from outside the image is the background colour (0 for alpha).
The draw is shared by the sample's input, target and alpha: they stay aligned.

How: flips are exact (``torch.flip``, selected per sample); rotation and zoom are one
``kornia.geometry.transform.warp_affine`` call over the input, target and alpha stacked as 7
channels, so one matrix per sample moves all three. kornia pads with zeros, so the colour
images are warped as ``x - background`` and the background is added back: the padding comes
out as exactly the background colour.

Parameters are drawn on the CPU (from a ``torch.Generator`` when given, else torch's global
RNG) whatever the device of the images, so a seed gives the same augmentation on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from clothes_extractor.data.transforms import AugmentConfig, AugmentParams


def draw_params(
    cfg: AugmentConfig, batch: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, 3) float32 on the CPU: per sample [flip (0. or 1.), angle in degrees, scale], from
    ``torch.rand(B, 3)`` exactly as :meth:`AugmentParams.draw` maps its three numbers."""
    u = torch.rand(batch, 3, generator=generator)
    return torch.stack(
        [(u[:, 0] < cfg.flip).float(), (2 * u[:, 1] - 1) * cfg.rotate, 1 + (2 * u[:, 2] - 1) * cfg.zoom], dim=1
    )


def params_tensor(params: Sequence[AugmentParams]) -> torch.Tensor:
    """CPU-style :class:`AugmentParams` (one per sample) -> the (B, 3) tensor `augment_batch` takes."""
    return torch.tensor([[float(p.flip), p.angle, p.scale] for p in params], dtype=torch.float32)


def background_tensor(background: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """An RGB background (0-255) as (1, 3, 1, 1) in the model's [-1, 1] range, on ``like``'s device."""
    bg = torch.tensor([float(c) for c in background], dtype=like.dtype, device=like.device)
    return bg.div(127.5).sub(1).view(1, 3, 1, 1)


def augment_batch(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: torch.Tensor,
    params: torch.Tensor,
    background: Sequence[int] = (255, 255, 255),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply per-sample flip, rotation and zoom to a batch; one parameter row per sample.

    Args:
        input: (B, 3, H, W) float in [-1, 1].
        target: (B, 3, H, W) float in [-1, 1].
        alpha: (B, 1, H, W) float in [0, 1].
        params: (B, 3): flip (nonzero flips), angle in degrees, scale (see `draw_params`).
        background: RGB 0-255, the fill of input and target; alpha is filled with 0.

    Returns:
        (input, target, alpha), same shapes, dtypes and devices.
    """
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    B, C, H, W = input.shape
    if C != 3 or target.shape != input.shape or alpha.shape != (B, 1, H, W):
        raise ValueError(
            f"expected input and target (B, 3, H, W) and alpha (B, 1, H, W), got {tuple(input.shape)}, "
            f"{tuple(target.shape)}, {tuple(alpha.shape)}"
        )
    if params.shape != (B, 3):
        raise ValueError(f"params must be (B, 3) = ({B}, 3), got {tuple(params.shape)}")
    params = params.to(torch.float32)
    flip = params[:, 0] != 0
    if bool(flip.any()):
        sel = flip.to(input.device).view(B, 1, 1, 1)
        input, target, alpha = (torch.where(sel, t.flip(-1), t) for t in (input, target, alpha))
    angle, scale = params[:, 1], params[:, 2]
    if bool((angle != 0).any() or (scale != 1).any()):
        bg = background_tensor(background, input)
        stack = torch.cat([input - bg, target - bg, alpha], dim=1)
        center = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=torch.float32).expand(B, 2)
        matrix = get_rotation_matrix2d(center, angle, scale.unsqueeze(1).expand(B, 2).contiguous())
        out = warp_affine(
            stack, matrix.to(device=stack.device, dtype=stack.dtype), (H, W),
            mode="bilinear", padding_mode="zeros", align_corners=True,
        )
        input, target, alpha = out[:, :3] + bg, out[:, 3:6] + bg, out[:, 6:]
    return input, target, alpha


class BatchAugment(nn.Module):
    """Paired flip, rotation and zoom of a batch on its device; one draw per sample.

    Args:
        cfg: flip probability, max rotation (degrees), zoom (see AugmentConfig).
        background: RGB 0-255 fill of input and target (the preprocessing background).
        generator: a CPU ``torch.Generator`` for the draws [default: torch's global RNG].

    ``forward(input (B, 3, H, W) in [-1, 1], target (B, 3, H, W) in [-1, 1], alpha (B, 1, H, W)
    in [0, 1], params=None)`` returns the three, same shapes; ``params`` ((B, 3), see
    `draw_params`) replaces the draw. A config that does nothing (flip 0, rotate 0, zoom 0)
    returns its inputs unchanged without drawing.

    >>> aug = BatchAugment(AugmentConfig(flip=1.0, rotate=0, zoom=0))
    >>> x = torch.arange(4.).view(1, 1, 1, 4).expand(1, 3, 1, 4) / 4
    >>> aug(x, x, x[:, :1])[0][0, 0].tolist()
    [[0.75, 0.5, 0.25, 0.0]]
    """

    def __init__(
        self,
        cfg: AugmentConfig = AugmentConfig(),
        background: Sequence[int] = (255, 255, 255),
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= cfg.flip <= 1 or cfg.rotate < 0 or not 0 <= cfg.zoom < 1:
            raise ValueError(f"augmentation needs 0 <= flip <= 1, rotate >= 0 and 0 <= zoom < 1; got {cfg}")
        self.cfg = cfg
        self.background = tuple(int(c) for c in background)
        self.generator = generator

    @property
    def is_identity(self) -> bool:
        return self.cfg.flip == 0 and self.cfg.rotate == 0 and self.cfg.zoom == 0

    def draw(self, batch: int) -> torch.Tensor:
        return draw_params(self.cfg, batch, self.generator)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        alpha: torch.Tensor,
        params: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if params is None:
            if self.is_identity:
                return input, target, alpha
            params = self.draw(input.shape[0])
        return augment_batch(input, target, alpha, params, self.background)

    def extra_repr(self) -> str:
        c = self.cfg
        return f"flip={c.flip}, rotate={c.rotate}, zoom={c.zoom}, background={self.background}"
