"""Scores for `evaluate` and for training's validation: pure functions, one value per image.

- :mod:`~clothes_extractor.metrics.image`: L1, PSNR, SSIM, MS-SSIM and luminance, on
  ``(B, C, H, W)`` batches in ``[0, 1]`` (or ``(S, B, C, H, W)`` against one reference batch).
- :mod:`~clothes_extractor.metrics.perceptual`: the weight-free perceptual metrics (piq's
  HaarPSI, MS-GMSD, FSIM), the same way.
- :mod:`~clothes_extractor.metrics.fid`: the Fréchet distance and its running statistics.
- :mod:`~clothes_extractor.metrics.network`: LPIPS, DISTS and the Inception features of FID,
  only from weight files present locally (never downloaded).
- :mod:`~clothes_extractor.metrics.segmentation`: confusion matrix -> IoU.
- :mod:`~clothes_extractor.metrics.outline`: a predicted garment alpha against the true one
  (IoU, mean edge distance).

Everything is importable from here too (``from clothes_extractor import metrics as M``).
"""

from clothes_extractor.metrics.fid import FeatureStats, FIDAccumulator, frechet_distance
from clothes_extractor.metrics.image import (
    MS_SSIM_BETAS,
    SSIM_SIGMA,
    SSIM_WINDOW,
    l1,
    luminance,
    ms_ssim,
    ms_ssim_min_size,
    psnr,
    ssim,
    ssim_ms_ssim,
    subjects,
)
from clothes_extractor.metrics.network import (
    ALEXNET_FILE,
    ALEXNET_URL,
    DISTS_SHORT_SIDE,
    INCEPTION_FIDELITY_FILE,
    INCEPTION_FIDELITY_URL,
    INCEPTION_PYTORCH_FID_FILE,
    VGG16_FILE,
    VGG16_URL,
    NetworkMetrics,
    NotComputed,
    PerImageFn,
    dists_metric,
    finite_or_str,
    inception_features,
    lpips_metric,
    network_metrics,
)
from clothes_extractor.metrics.outline import alpha_iou, edge_distance
from clothes_extractor.metrics.perceptual import fsim, haarpsi, ms_gmsd, phase_congruency, weight_free_metrics
from clothes_extractor.metrics.segmentation import (
    confusion_matrix,
    finite_or_none,
    group_iou,
    iou_per_class,
    mask_iou,
    mean_iou,
    segmentation_report,
)

__all__ = [
    "ALEXNET_FILE", "ALEXNET_URL", "DISTS_SHORT_SIDE", "FIDAccumulator", "FeatureStats", "INCEPTION_FIDELITY_FILE",
    "INCEPTION_FIDELITY_URL", "INCEPTION_PYTORCH_FID_FILE", "MS_SSIM_BETAS", "NetworkMetrics", "NotComputed",
    "PerImageFn", "SSIM_SIGMA", "SSIM_WINDOW", "VGG16_FILE", "VGG16_URL", "alpha_iou", "confusion_matrix", "dists_metric", "edge_distance",
    "finite_or_none", "finite_or_str", "frechet_distance", "fsim", "group_iou", "haarpsi", "inception_features", "iou_per_class", "l1",
    "lpips_metric", "luminance", "mask_iou", "mean_iou", "ms_gmsd", "ms_ssim", "ms_ssim_min_size", "network_metrics", "phase_congruency",
    "psnr", "segmentation_report", "ssim", "ssim_ms_ssim", "subjects", "weight_free_metrics",
]
