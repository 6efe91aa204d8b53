"""Appearance flow in reverse: move the photo's own pixels into the catalogue frame.

The ``fill`` crop already puts the photo's garment where the catalogue puts it, so the flow is a
bounded residual on the identity grid of that crop. The fields are smooth, so the network can
predict them at the model size (256x192) while :func:`compose` samples a source of any
resolution: the photo's print keeps its own detail wherever the garment is visible, and only what
the photo hides (the back neckline, garment behind arms or hair) comes from the generated colour.

Coordinates are ``grid_sample``'s: (x, y) in [-1, 1] over the frame, ``align_corners=False``,
so one flow field means the same place at every resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The largest offset the flow head can ask for, in [-1, 1] units (a quarter of the frame).
FLOW_RANGE = 0.5


def identity_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 2) sampling grid of the identity: each pixel's own centre, (x, y) in [-1, 1]."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    return torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=-1)[None]


def warp(source: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, H, W) ``source`` through (B, 2, h, w) ``flow`` (identity + offsets); a flow of
    another size is resized (bilinear) to the source's first. Outside the frame: the border
    (the canvas's background), never black."""
    h, w = source.shape[-2:]
    if flow.shape[-2:] != (h, w):
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    grid = identity_grid(h, w, flow) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(source, grid.to(source.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def compose(
    source: torch.Tensor, flow: torch.Tensor, mask_logit: torch.Tensor, generated: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(garment, warped source), both (B, 3, H, W) at ``source``'s size: the warped source where
    the composition mask (sigmoid of ``mask_logit``) says so, the generated colour elsewhere.
    Fields of the model's size are resized (bilinear) to the source's."""
    size = tuple(source.shape[-2:])
    if mask_logit.shape[-2:] != size:
        mask_logit = F.interpolate(mask_logit, size=size, mode="bilinear", align_corners=False)
        generated = F.interpolate(generated, size=size, mode="bilinear", align_corners=False)
    warped = warp(source, flow)
    m = torch.sigmoid(mask_logit)
    return m * warped + (1 - m) * generated, warped


def flow_smoothness(flow: torch.Tensor) -> torch.Tensor:
    """Mean absolute second difference of the flow along x and y: zero for any affine warp, so
    it keeps prints from tearing without holding the garment to the identity."""
    dxx = flow[..., :, 2:] - 2 * flow[..., :, 1:-1] + flow[..., :, :-2]
    dyy = flow[..., 2:, :] - 2 * flow[..., 1:-1, :] + flow[..., :-2, :]
    return dxx.abs().mean() + dyy.abs().mean()
