"""Losses of the generator and the discriminator.

Each loss is a pure function plus a thin ``nn.Module`` with the same defaults, as kornia does.
Images are (B, 3, H, W) in [-1, 1] (the generator's tanh range) unless said otherwise; every
loss returns a scalar tensor, the mean over the batch.

=================  ====================================  =========================
loss               value                                 minimum
=================  ====================================  =========================
``l1_loss``        mean |pred - target|                  0 for identical images
``ssim_loss``      (1 - SSIM) / 2, kornia's definition   0 for identical images
``perceptual``     mean over 4 VGG16 layers of the L1    0 for identical images
``gan_loss``       BCE-with-logits (vanilla) or MSE      --
``alpha_loss``     BCE-with-logits against the mask      entropy of the mask
=================  ====================================  =========================
"""

from __future__ import annotations

from typing import Literal

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from clothes_extractor.errors import ConfigError

GAN_MODES = ("vanilla", "lsgan")
GanMode = Literal["vanilla", "lsgan"]

# torchvision vgg16().features: index of the ReLU after conv1_2, conv2_2, conv3_3, conv4_3
VGG16_LAYERS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor, what: str = "pred and target") -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{what} must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def _check_images(pred: torch.Tensor, target: torch.Tensor) -> None:
    _check_same_shape(pred, target)
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(pred.shape)}")


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1.0) * 0.5


# ------------------------------------------------------------------------------------- L1


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error.

    Args:
        pred: (B, C, H, W), any range.
        target: same shape as ``pred``.

    Returns:
        scalar, ``mean(|pred - target|)``; 0 for identical inputs; symmetric.

    >>> l1_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    tensor(1.)
    """
    _check_same_shape(pred, target)
    return F.l1_loss(pred, target)


class L1Loss(nn.Module):
    """Module form of :func:`l1_loss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l1_loss(pred, target)


# ----------------------------------------------------------------------------------- SSIM


SSIM_SIGMA = 1.5  # kornia's Gaussian window: sigma 1.5 whatever the number of taps
SSIM_C1 = 0.01**2  # (k1 L)^2 with L = 1 (images in [0, 1])
SSIM_C2 = 0.03**2
SSIM_EPS = 1e-12  # kornia's default, added to the denominator


def _gaussian_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel with reflect padding ('same' size), the two
    depthwise convolutions of ``kornia.filters.filter2d_separable``."""
    C, r = x.shape[1], kernel.shape[0] // 2
    out = F.conv2d(F.pad(x, [r, r, 0, 0], mode="reflect"), kernel.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(out, [0, 0, r, r], mode="reflect"), kernel.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Structural dissimilarity, exactly ``kornia.losses.ssim_loss`` on images mapped to [0, 1].

    Args:
        pred: (B, C, H, W) in [-1, 1]; H and W larger than ``window_size // 2``.
        target: (B, C, H, W) in [-1, 1].
        window_size: side of the Gaussian window (odd; sigma 1.5).

    Returns:
        scalar ``(1 - SSIM) / 2`` in [0, 1] (NOT ``1 - SSIM``): 0 for identical images, 0.5
        for uncorrelated ones. Both images are mapped to [0, 1] first (``max_val=1``); the mean
        runs over batch, channels and pixels (``padding="same"``, reflect borders); the
        per-pixel value is clamped to [0, 1] as kornia does. Symmetric.

    Cost: kornia filters the five moments (x, y, x^2, y^2, xy) one call each, with a graph for
    all. Here the moments that depend on ``pred`` are filtered in one call, and those of a
    target that needs no gradient in another, without a graph: the same arithmetic, element
    for element, so the value and the gradients are kornia's (tested to 1e-6).
    """
    _check_images(pred, target)
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd number, got {window_size}")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)  # half -> float32
    x, y = to_unit_range(pred.to(dtype)), to_unit_range(target.to(dtype))
    kernel = kornia.filters.get_gaussian_kernel1d(window_size, SSIM_SIGMA, device=x.device, dtype=dtype).reshape(-1)
    C = x.shape[1]
    with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
        mu_y, e_yy = _gaussian_blur(torch.cat([y, y * y], dim=1), kernel).split(C, dim=1)
    mu_x, e_xx, e_xy = _gaussian_blur(torch.cat([x, x * x, x * y], dim=1), kernel).split(C, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x**2, mu_y**2, mu_x * mu_y
    sigma_xx, sigma_yy, sigma_xy = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    num = (2.0 * mu_xy + SSIM_C1) * (2.0 * sigma_xy + SSIM_C2)
    den = (mu_xx + mu_yy + SSIM_C1) * (sigma_xx + sigma_yy + SSIM_C2)
    ssim_map = num / (den + SSIM_EPS)
    return torch.clamp((1.0 - ssim_map) / 2, min=0, max=1).mean()


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, *, window_size: int = 11) -> None:
        super().__init__()
        self.window_size = window_size

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ssim_loss(pred, target, self.window_size)


# ----------------------------------------------------------------------------- Perceptual


class VGG16Features(nn.Module):
    """Frozen VGG16 up to relu4_3, returning the relu1_2, relu2_2, relu3_3, relu4_3 features.

    Input in [-1, 1] is mapped to [0, 1] and normalised with the ImageNet mean and std (buffers,
    so they follow ``.to()``). The parameters never require gradients and the module stays in
    eval mode whatever ``.train()`` is asked (gradients still flow to the *input*).

    Args:
        pretrained: ImageNet weights from the torch hub cache
            (:func:`clothes_extractor.weights.vgg16_features`, which never downloads) or random.
    """

    def __init__(self, *, pretrained: bool) -> None:
        super().__init__()
        from clothes_extractor.weights import vgg16_features

        last = max(VGG16_LAYERS.values())
        self.features = vgg16_features(pretrained)[: last + 1]  # truncated after relu4_3
        self.layer_indices = tuple(sorted(VGG16_LAYERS.values()))
        for i, module in enumerate(self.features):
            if isinstance(module, nn.ReLU):
                # In place (no new tensor, and autograd allows it: a ReLU's backward reads its
                # output, a convolution's its input), except right after a returned feature,
                # which must not be overwritten. In VGG16 a feature is always followed by a
                # max-pool or is the last layer, so every ReLU is in place.
                module.inplace = (i - 1) not in self.layer_indices
        self.features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        super().train(False)

    def train(self, mode: bool = True) -> VGG16Features:  # noqa: ARG002 - always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args:
            x: (B, 3, H, W) in [-1, 1].

        Returns:
            4 feature maps: (B, 64, H, W), (B, 128, H/2, W/2), (B, 256, H/4, W/4),
            (B, 512, H/8, W/8).
        """
        B, C, H, W = x.shape
        if C != 3:
            raise ValueError(f"VGG16 features need 3-channel images, got shape {tuple(x.shape)}")
        h = (to_unit_range(x) - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layer_indices:
                out.append(h)
        return out


def perceptual_loss(pred: torch.Tensor, target: torch.Tensor, vgg: VGG16Features) -> torch.Tensor:
    """L1 between VGG16 features, averaged over the four layers.

    Args:
        pred: (B, 3, H, W) in [-1, 1].
        target: (B, 3, H, W) in [-1, 1].
        vgg: the (single, frozen) feature extractor.

    Returns:
        scalar ``mean_l(mean |phi_l(pred) - phi_l(target)|)`` over l in relu1_2, relu2_2,
        relu3_3, relu4_3 (each layer's L1 is a mean over its elements, then the four are
        averaged, not summed); 0 for identical images; symmetric.

    Cost: the two images go through ``vgg`` separately, and a target that does not require a
    gradient (the usual case: a data set image) goes through without recording a graph, so the
    backward pass runs through VGG for ``pred`` alone; the value and the gradients are those of
    one batch of both.
    """
    _check_images(pred, target)
    pred_features = vgg(pred)
    with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
        target_features = vgg(target)
    return torch.stack([F.l1_loss(p, t) for p, t in zip(pred_features, target_features)]).mean()


class PerceptualLoss(nn.Module):
    """Module form of :func:`perceptual_loss`, owning one frozen :class:`VGG16Features`.

    Args:
        pretrained: True for ImageNet VGG16 weights from the torch hub cache (raises
            :class:`~clothes_extractor.errors.WeightsUnavailableError` if the file is absent,
            never downloads); False for random weights (tests, demos).
    """

    def __init__(self, *, pretrained: bool) -> None:
        super().__init__()
        self.vgg = VGG16Features(pretrained=pretrained)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return perceptual_loss(pred, target, self.vgg)


# ---------------------------------------------------------------------------- Adversarial


def _check_gan_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ConfigError(f"GAN loss mode {mode!r} is not one of {', '.join(GAN_MODES)}")


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: GanMode = "vanilla") -> torch.Tensor:
    """Adversarial loss of discriminator logits against an all-real or all-fake label.

    Args:
        logits: (B, 1, h, w) PatchGAN logits (any shape works).
        target_is_real: compare with 1 (real) or 0 (fake).
        mode: ``"vanilla"``: binary cross-entropy with logits (``log 2`` at logits 0);
            ``"lsgan"``: mean squared error of the raw logits against 1 or 0.

    Returns:
        scalar, the mean over all patches of the batch.
    """
    _check_gan_mode(mode)
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(logits, target)


class GANLoss(nn.Module):
    """Module form of :func:`gan_loss`; ``forward(logits, target_is_real)``."""

    def __init__(self, *, mode: GanMode = "vanilla") -> None:
        super().__init__()
        _check_gan_mode(mode)
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return gan_loss(logits, target_is_real, self.mode)


# ---------------------------------------------------------------------------------- Alpha


def alpha_loss(alpha_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the generator's alpha logit against the garment mask.

    Args:
        alpha_logit: (B, 1, H, W), unbounded.
        mask: (B, 1, H, W) in [0, 1] (``cloth-mask``; soft values allowed).

    Returns:
        scalar, mean BCE-with-logits; its minimum over logits is the mask's entropy (0 for a
        binary mask, approached as the logits go to +-infinity on the right side).
    """
    _check_same_shape(alpha_logit, mask, "alpha_logit and mask")
    return F.binary_cross_entropy_with_logits(alpha_logit, mask.to(alpha_logit.dtype))


class AlphaLoss(nn.Module):
    """Module form of :func:`alpha_loss`."""

    def forward(self, alpha_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return alpha_loss(alpha_logit, mask)


def alpha_dice_loss(alpha_logit: torch.Tensor, mask: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of the alpha (sigmoid of the logit) against the garment mask, per image.

    BCE weighs every pixel alike, so a garment that fills a small part of the frame, or a
    sleeve, costs little when missed; Dice scores the outline as a shape, like the IoU the
    outline is judged by.

    Args:
        alpha_logit: (B, 1, H, W), unbounded.
        mask: (B, 1, H, W) in [0, 1].
        eps: smoothing, so an empty mask and an empty alpha agree (loss 0).

    Returns:
        scalar in [0, 1]: 1 - mean over images of 2|a m| / (|a| + |m|).
    """
    _check_same_shape(alpha_logit, mask, "alpha_logit and mask")
    a = torch.sigmoid(alpha_logit).flatten(1)
    m = mask.to(a.dtype).flatten(1)
    dice = (2 * (a * m).sum(1) + eps) / (a.sum(1) + m.sum(1) + eps)
    return 1 - dice.mean()


class AlphaDiceLoss(nn.Module):
    """Module form of :func:`alpha_dice_loss`."""

    def forward(self, alpha_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return alpha_dice_loss(alpha_logit, mask)


def masked_l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of (B, C, H, W) ``pred`` against ``target`` where (B, 1, H, W)
    ``mask`` (in [0, 1]) says, averaged over the mask's area (0 for an empty mask)."""
    _check_same_shape(pred, target)
    weight = mask.to(pred.dtype)
    return ((pred - target).abs().mean(dim=1, keepdim=True) * weight).sum() / weight.sum().clamp_min(1.0)


# ---------------------------------------------------------------------------- Segmentation


def _check_segmentation(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None) -> int:
    if logits.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) logits, got shape {tuple(logits.shape)}")
    B, C, H, W = logits.shape
    if num_classes is not None and C != num_classes:
        raise ValueError(f"logits have {C} channels but num_classes is {num_classes}")
    if labels.shape != (B, H, W):
        raise ValueError(f"labels must be (B, H, W) = {(B, H, W)} class ids, got shape {tuple(labels.shape)}")
    if labels.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    return C


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Multi-class soft Dice loss of segmentation logits (smp's ``DiceLoss(mode="multiclass")``).

    Args:
        logits: (B, C, H, W) unbounded, one channel per class.
        labels: (B, H, W) integer class ids in [0, C).
        num_classes: C, checked against the logits (None: taken from them).

    Returns:
        scalar, the mean over the C classes of ``1 - Dice(softmax(logits)_c, labels == c)``,
        the Dice of a class computed over the whole batch; a class with no true pixel in the
        batch contributes 0 (smp's convention: its Dice is undefined; cross-entropy still
        penalises predicting it). Near 0 for confident correct logits.

    >>> labels = torch.tensor([[[0, 1], [1, 0]]])
    >>> logits = 50 * torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    >>> float(dice_loss(logits, labels, 2)) < 1e-6
    True
    """
    import segmentation_models_pytorch as smp

    _check_segmentation(logits, labels, num_classes)
    return smp.losses.DiceLoss(mode="multiclass", from_logits=True)(logits, labels.long())


class DiceLoss(nn.Module):
    """Module form of :func:`dice_loss`."""

    def __init__(self, *, num_classes: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, labels, self.num_classes)


def segmentation_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, ce: float = 1.0, dice: float = 1.0
) -> dict[str, torch.Tensor]:
    """Cross-entropy plus Dice, the segmenter's loss, with its terms.

    Args:
        logits: (B, C, H, W) unbounded; labels: (B, H, W) integer class ids.
        ce, dice: weights of the two terms.

    Returns:
        ``{"loss": ce * CE + dice * Dice, "ce": CE, "dice": Dice}``, scalars; CE is
        :func:`torch.nn.functional.cross_entropy`, the mean over pixels.
    """
    _check_segmentation(logits, labels, None)
    logits = logits.float()
    terms = {"ce": F.cross_entropy(logits, labels.long()), "dice": dice_loss(logits, labels)}
    return {"loss": ce * terms["ce"] + dice * terms["dice"], **terms}


class SegmentationLoss(nn.Module):
    """Module form of :func:`segmentation_loss`; returns the total only."""

    def __init__(self, *, ce: float = 1.0, dice: float = 1.0) -> None:
        super().__init__()
        self.ce, self.dice = ce, dice

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, labels, ce=self.ce, dice=self.dice)["loss"]
