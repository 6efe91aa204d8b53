"""Appearance flow in reverse, on a coarse control grid: move the photo's own pixels into the
catalogue frame, inside a predicted outline.

The ``fill`` crop already puts the photo's garment where the catalogue puts it, so the flow is a
bounded residual on the identity grid of that crop. It lives on a few control points (the
generator's stride-32 map: 8x6 at 256x192) and is upsampled bicubically to whatever it samples:
smooth by construction at any resolution. A per-pixel flow (issue 19) went shopping for pixels
of the right shade and bent stripes into whirlpools; the oracle fit of
``benchmarks/oracle_warp.py`` says a coarse grid holds nearly all the headroom.

The garment image is then ``alpha * fill + (1 - alpha) * background``: the alpha is the
catalogue outline, the fill the warped photo where the composition mask says the photo shows
the garment and generated colour where it does not (hair, arms, the back neckline).

Coordinates are ``grid_sample``'s: (x, y) in [-1, 1] over the frame, ``align_corners=False``,
so one flow means the same place at every resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The largest offset the flow head can ask for, in [-1, 1] units (a quarter of the frame).
FLOW_RANGE = 0.5
# The control grid's stride in model pixels: the deepest map of a depth-5 encoder.
CONTROL_STRIDE = 32


def identity_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 2) sampling grid of the identity: each pixel's own centre, (x, y) in [-1, 1]."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    return torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=-1)[None]


def dense_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 2, gh, gw) control-point offsets -> (B, 2, H, W), upsampled bicubically (smooth, and
    exact at the control points' centres)."""
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    return F.interpolate(flow, size=size, mode="bicubic", align_corners=False)


def sampling_grid(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, 2) grid that samples the source at the identity plus ``flow`` (control points)."""
    h, w = size
    return identity_grid(h, w, flow) + dense_flow(flow, (h, w)).permute(0, 2, 3, 1)


def warp(source: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, H, W) ``source`` through (B, 2, gh, gw) control-point ``flow``. Outside the
    frame: the border (the canvas's background), never black."""
    grid = sampling_grid(flow, tuple(source.shape[-2:]))
    return F.grid_sample(source, grid.to(source.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def fill(warped: torch.Tensor, mask_logit: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """The garment's content: the warped photo where the composition mask (sigmoid of
    ``mask_logit``) says the photo shows it, the generated colour elsewhere; all at one size."""
    m = torch.sigmoid(mask_logit)
    return m * warped + (1 - m) * generated


def on_background(content: torch.Tensor, alpha_logit: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``content`` (B, 3, H, W) inside the outline (sigmoid of ``alpha_logit``), ``background``
    ((3,) or broadcastable, in the same range) outside it."""
    a = torch.sigmoid(alpha_logit)
    return a * content + (1 - a) * background.view(1, -1, 1, 1).to(content)


def compose(
    source: torch.Tensor, flow: torch.Tensor, mask_logit: torch.Tensor, generated: torch.Tensor,
    alpha_logit: torch.Tensor, background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(garment on background, fill, warped source, alpha logit): (B, 3, H, W) x 3 and
    (B, 1, H, W), at ``source``'s size. The control-point ``flow`` is upsampled bicubically; the
    model-size fields (mask, generated colour, alpha) bilinearly, in one call."""
    size = tuple(source.shape[-2:])
    if mask_logit.shape[-2:] != size:
        fields = torch.cat([mask_logit, generated, alpha_logit], dim=1)
        fields = F.interpolate(fields, size=size, mode="bilinear", align_corners=False)
        mask_logit, generated, alpha_logit = fields.split([1, generated.shape[1], 1], dim=1)
    warped = warp(source, flow)
    content = fill(warped, mask_logit, generated)
    return on_background(content, alpha_logit, background), content, warped, alpha_logit
