"""Segmentation scores: confusion matrix -> IoU (per class, mean, a group of classes, masks)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# A confusion matrix is a sum over pixels, so matrices of batches (and of DDP ranks) add up and
# every IoU is computed once, from the total: no mean of per-batch IoUs.


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Pixel counts ``(C, C)`` int64: row = true class, column = predicted class.

    Args:
        pred, target: integer class ids of the same shape (any, e.g. ``(B, H, W)``), in
            ``[0, num_classes)``; pixels whose target is ``ignore_index`` are left out.

    >>> confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    tensor([[1, 0, 0],
            [0, 1, 0],
            [0, 1, 1]])
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes
                         or int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"class ids must be in [0, {num_classes})")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: Tensor) -> Tensor:
    """IoU of each class ``(C,)`` float64: ``TP / (TP + FP + FN)``; NaN where the class is neither
    in the target nor in the prediction (its IoU is undefined)."""
    cm = confusion.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: Tensor) -> float:
    """Mean of :func:`iou_per_class` over the classes present (target or prediction); NaN if none."""
    iou = iou_per_class(confusion)
    present = ~torch.isnan(iou)
    return float(iou[present].mean()) if bool(present.any()) else float("nan")


def group_iou(confusion: Tensor, classes: Sequence[int]) -> float:
    """IoU of the union of ``classes`` taken as one region (e.g. the garment label set):
    intersection = pixels whose true and predicted class are both in the set. NaN if the
    region is in neither the target nor the prediction.

    >>> cm = confusion_matrix(torch.tensor([1, 2, 0, 1]), torch.tensor([2, 1, 1, 0]), 3)
    >>> group_iou(cm, [1, 2])
    0.5
    """
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    cm = confusion.double()
    inter = cm[idx][:, idx].sum()
    union = cm[idx].sum() + cm[:, idx].sum() - inter
    return float(inter / union) if union > 0 else float("nan")


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU per image of two boolean mask batches ``(B, H, W)`` -> ``(B,)`` float64; 1 where both
    masks are empty."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"expected two (B, H, W) masks of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, t = pred.bool().flatten(1), target.bool().flatten(1)
    inter = (p & t).sum(1).double()
    union = (p | t).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def segmentation_report(confusion: Tensor, class_names: Sequence[str], garment: Sequence[int]) -> dict[str, float | None]:
    """Flat metrics from a summed confusion matrix: ``miou``, ``garment_iou``, ``pixel_accuracy``
    and ``iou/<class name>`` per class (None where undefined), JSON-ready."""
    cm = confusion.double()
    total = float(cm.sum())
    out: dict[str, float | None] = {
        "miou": finite_or_none(mean_iou(confusion)),
        "garment_iou": finite_or_none(group_iou(confusion, garment)),
        "pixel_accuracy": float(cm.diagonal().sum() / total) if total > 0 else None,
    }
    for name, v in zip(class_names, iou_per_class(confusion).tolist()):
        out[f"iou/{name}"] = finite_or_none(v)
    return out


def finite_or_none(value: float) -> float | None:
    """``value``, or None for NaN (an undefined IoU)."""
    return None if math.isnan(value) else float(value)
