"""The evaluation protocols, defined once: the definitions written into metrics.json are these.

Every sample goes through the generator; the prediction and two baselines (the *subjects*
``model``, ``white``, ``input``; ``predicted_mask`` too with ``--segmenter``) are scored by the
same code (:mod:`clothes_extractor.evaluation.scores`) under the two protocols of
:data:`PROTOCOL_DEFINITIONS`: ``native`` at the model's resolution against the preprocessed
target, ``paper`` TryOffDiff's published protocol (Velioglu et al. 2024, arXiv 2411.18350,
scored with pyiqa's ``ssim`` and ``ms_ssim``) on the image `extract` writes on white
(:func:`clothes_extractor.evaluation.paper.paper_images`). A segmenter is scored by
:data:`SEGMENTER_DEFINITION`, the mask-free pipeline by :data:`PIPELINE_DEFINITION`.

Known differences from pyiqa: its SSIM clamps negative contrast-structure values at 0 per pixel
(ours does not; it only matters where local structure is anti-correlated), and FID here uses
torch-fidelity's Inception features, not clean-fid's resizing. LPIPS (AlexNet), DISTS and FID
are computed when their weights are available locally (never downloaded); otherwise they are
``null`` and listed under ``not_computed`` with what to install and where to put which file.
"""

from __future__ import annotations

PROTOCOLS: tuple[str, ...] = ("native", "paper")
SUBJECTS: tuple[str, ...] = ("model", "white", "input")
IMAGE_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim", "ms_ssim", "haarpsi", "ms_gmsd", "fsim", "lpips", "dists")
METRICS: tuple[str, ...] = (*IMAGE_METRICS, "fid")
HIGHER_IS_BETTER: dict[str, bool] = {
    "l1": False, "psnr": True, "ssim": True, "ms_ssim": True, "haarpsi": True, "ms_gmsd": False, "fsim": True,
    "lpips": False, "dists": False, "fid": False,
}
METRIC_NAMES: dict[str, str] = {
    "l1": "L1", "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "haarpsi": "HaarPSI", "ms_gmsd": "MS-GMSD",
    "fsim": "FSIM", "lpips": "LPIPS", "dists": "DISTS", "fid": "FID",
}
PROTOCOL_DEFINITIONS: dict[str, str] = {
    "native": (
        "At the model's resolution: the generator's RGB output (tanh mapped to [0, 1]) against the "
        "preprocessed target (cloth/<id>.jpg with cloth-mask applied on the checkpoint's background, padded "
        "to the model's aspect ratio and resized, as in training). L1, PSNR, SSIM, MS-SSIM on RGB in [0, 1]; "
        "SSIM: kornia, Gaussian window 11, sigma 1.5, valid region; MS-SSIM: 5 scales, needs >= 176 px per "
        "side; HaarPSI, MS-GMSD (luminance) and FSIM (chromatic): piq, data range 1. Baselines: white = an all-white image; input = the preprocessed model input itself."
    ),
    "paper": (
        "TryOffDiff's published protocol (arXiv 2411.18350; pyiqa ssim/ms_ssim): the prediction rounded to "
        "8 bits, brought back to the garment image's frame (transforms.to_frame: padding cropped, bicubic "
        "upscale to the size of cloth/<id>.jpg, 768x1024 in VITON-HD), composited on white with the predicted "
        "alpha when the checkpoint's background is not white, against the original cloth/<id>.jpg as RGB "
        "(no mask). SSIM and MS-SSIM on luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as pyiqa's "
        "YIQ Y) rounded to 8 bits, x100, Gaussian window 11, sigma 1.5, valid region; L1 and PSNR on RGB in "
        "[0, 1]; HaarPSI, MS-GMSD and FSIM (piq, weight-free) on RGB in [0, 1]; LPIPS (AlexNet) on RGB; DISTS on RGB resized to a short side of 256 (341x256). Baselines: "
        "white = an all-255 image of the frame's size; input = the preprocessed input brought back with "
        "to_frame."
    ),
}

PIPELINE_SUBJECT = "predicted_mask"
PIPELINE_DEFINITION = (
    "The generator fed the input built from the garment mask the segmenter predicts on the full-size photo "
    "(its classes holding the generator's garment labels), instead of the true mask; same preprocessing, same "
    "protocols. A photo where the segmenter finds no garment is scored as an all-white image. mask_iou: IoU of "
    "the predicted and the true garment masks at the photo's resolution, mean over the samples."
)
SEGMENTER_DEFINITION = (
    "At each photo's resolution: the segmenter's prediction (aspect-kept padding cropped, logits upsampled "
    "bilinearly, argmax) against image-parse-v3 mapped to the segmenter's label set. IoU per class from one "
    "confusion matrix summed over the samples; miou: mean over the classes present in truth or prediction; "
    "garment_iou: the garment classes as one region; pixel_accuracy: share of pixels right."
)
