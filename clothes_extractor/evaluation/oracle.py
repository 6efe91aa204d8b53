"""The warp design's ceiling: the best coarse warp of the input, fitted against the true garment.

For each photo, a flow on a control grid of ``gh x gw`` points (upsampled bicubically, as the
``warp`` generator's is: :func:`~clothes_extractor.models.warp.warp`) is fitted by gradient
descent so that the warped ``fill`` crop matches the true garment inside the true alpha. It
is an oracle, not a model: it sees the answer. Composed on the background with the true alpha,
it says how far a warp of that smoothness could go (``benchmarks/oracle_warp.py`` scores it),
and its pictures show what a learned warp should look like (``scripts/print_sheet.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clothes_extractor.losses import masked_l1_loss
from clothes_extractor.models.warp import on_background, warp

# Coarse to fine, in the grid and in the images: each level starts from the coarser level's
# flow and first fits blurred images, so a stripe finds its own stripe rather than the nearest
# one of the same shade (a free fit at 8x6 bends stripes into whirlpools).
LEVEL_SIGMAS = (6.0, 3.0, 1.0, 0.0)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    import kornia

    k = 2 * int(3 * sigma) + 1
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def levels(grid: tuple[int, int]) -> list[tuple[int, int]]:
    """The grids fitted in turn for ``grid``: halved (rounding up) down to 2 points a side."""
    out = [tuple(grid)]
    while max(out[0]) > 2:
        gh, gw = out[0]
        out.insert(0, (max(2, -(-gh // 2)), max(2, -(-gw // 2))))
    return out


def fit_flow(
    source: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor, grid: tuple[int, int], *,
    steps: int = 240, lr: float = 0.004,
) -> torch.Tensor:
    """(B, 2, gh, gw) control-point flow that best warps ``source`` onto ``target`` (both
    (B, 3, H, W) in [-1, 1]) where ``alpha`` ((B, 1, H, W) in [0, 1]) is: L1 inside the true
    alpha, Adam, ``steps`` split over the :func:`levels` of the grid, each blurred less."""
    b = source.shape[0]
    grids = levels(grid)
    # The finest levels take the last sigmas; more levels than sigmas repeat the first.
    sigmas = (LEVEL_SIGMAS[0],) * max(0, len(grids) - len(LEVEL_SIGMAS)) + LEVEL_SIGMAS[-len(grids):]
    per_level = max(1, steps // len(grids))
    flow = torch.zeros(b, 2, *grids[0], dtype=source.dtype, device=source.device)
    with torch.enable_grad():
        for level, sigma in zip(grids, sigmas):
            if tuple(flow.shape[-2:]) != level:
                flow = F.interpolate(flow, size=level, mode="bicubic", align_corners=False)
            flow = flow.detach().requires_grad_(True)
            opt = torch.optim.Adam([flow], lr=lr)
            src, tgt = _blur(source, sigma), _blur(target, sigma)
            for _ in range(per_level):
                # Summed over images: each photo's flow gets its own gradient, unscaled by B.
                loss = masked_l1_loss(warp(src, flow), tgt, alpha) * b
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return flow.detach()


def oracle_image(
    source: torch.Tensor, flow: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """The oracle's garment: ``source`` warped through ``flow``, inside the true ``alpha`` on
    ``background`` ((3,) in [-1, 1]); (B, 3, H, W) in [-1, 1]. ``source`` may be larger than
    the size the flow was fitted at (the flow is in frame units)."""
    if alpha.shape[-2:] != source.shape[-2:]:
        alpha = F.interpolate(alpha, size=source.shape[-2:], mode="bilinear", align_corners=False)
    logit = torch.logit(alpha.clamp(1e-4, 1 - 1e-4))
    return on_background(warp(source, flow), logit, background)
