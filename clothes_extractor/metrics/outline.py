"""How well a predicted garment outline (the generator's alpha) matches the true one: IoU and
the mean distance between their edges, one value per image.

A misplaced outline misplaces the texture inside it too, and the edge-sensitive image metrics
punish both; these two say how far off the outline itself is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Alpha logits above 0 (alpha 0.5) and masks above 0.5 count as garment.
THRESHOLD = 0.5


def _binary(mask: torch.Tensor, logits: bool) -> torch.Tensor:
    return mask > 0 if logits else mask > THRESHOLD


def alpha_iou(alpha_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) IoU of the alpha (logit > 0) with ``mask`` (> 0.5), both (B, 1, H, W); 1 where both
    are empty.

    Example:
        >>> m = torch.zeros(1, 1, 4, 4); m[..., :2, :] = 1
        >>> alpha_iou(m * 20 - 10, m).tolist()
        [1.0]
    """
    a, m = _binary(alpha_logit, True).flatten(1), _binary(mask, False).flatten(1)
    inter, union = (a & m).sum(1).float(), (a | m).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _edge(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) bool -> the mask's pixels with a 4-neighbour outside it (the frame's border counts
    as outside)."""
    m = mask[None, None].float()
    eroded = -F.max_pool2d(-F.pad(m, (1, 1, 1, 1), value=0.0), 3, stride=1)
    return (m > 0) & (eroded <= 0)


def edge_distance(alpha_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean symmetric distance in pixels between the edges of the alpha (logit > 0) and of
    ``mask`` (> 0.5): the average over both edges' pixels of the distance to the nearest pixel of
    the other edge. 0 for identical outlines; NaN where one outline is empty and the other not
    (0 where both are).
    """
    out = []
    for a, m in zip(_binary(alpha_logit, True)[:, 0], _binary(mask, False)[:, 0]):
        pa = _edge(a)[0, 0].nonzero().float()
        pm = _edge(m)[0, 0].nonzero().float()
        if len(pa) == 0 or len(pm) == 0:
            out.append(0.0 if len(pa) == len(pm) else float("nan"))
            continue
        d = torch.cdist(pa, pm)
        out.append(float((d.min(1).values.sum() + d.min(0).values.sum()) / (len(pa) + len(pm))))
    return torch.tensor(out, dtype=torch.float32)
