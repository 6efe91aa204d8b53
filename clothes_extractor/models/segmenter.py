"""The garment segmenter: an smp model that predicts a parse map from a person photo.

One logit per class of a label set (:mod:`clothes_extractor.data.labels`: the 20 CIHP labels
or the 13 VITON-HD groups); the architecture is an smp decoder by name (``unet`` by default)
around any smp encoder. Pretrained encoder weights are resolved offline first, exactly as for
the generator (:func:`clothes_extractor.weights.resolve_encoder_weights`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from clothes_extractor import weights as weights_lib
from clothes_extractor.config import SIZE_MULTIPLE, strict_from_dict
from clothes_extractor.errors import ConfigError
from clothes_extractor.models.encoders import build_smp
from clothes_extractor.models.generator import check_size

# Architecture name -> smp class (all share the encoder_name / encoder_weights / in_channels /
# classes keywords and need sides divisible by 32 with the default encoder depth 5).
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet": smp.Unet,
    "unetplusplus": smp.UnetPlusPlus,
    "fpn": smp.FPN,
    "deeplabv3plus": smp.DeepLabV3Plus,
    "segformer": smp.Segformer,
}


@dataclass(frozen=True)
class SegmentationModelConfig:
    """Arguments that rebuild a :class:`SegmentationModel`; stored as JSON in every checkpoint."""

    arch: str = "unet"
    encoder: str = "resnet34"
    encoder_weights: str | None = None  # "imagenet" or None
    in_channels: int = 3
    classes: int = 20

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentationModelConfig:
        return strict_from_dict(cls, data, "segmenter")

    def for_checkpoint_load(self) -> SegmentationModelConfig:
        """The same architecture without pretrained weights, to load a checkpoint's own."""
        return SegmentationModelConfig(**{**self.to_dict(), "encoder_weights": None})


class SegmentationModel(nn.Module):
    """smp segmentation model with one logit per class.

    Args:
        arch: one of :data:`ARCHITECTURES` (``unet``, ``unetplusplus``, ``fpn``,
            ``deeplabv3plus``, ``segformer``).
        encoder: smp encoder name (``resnet18``, ``resnet34``, ...) or ``tu-<timm model>``.
        encoder_weights: ``"imagenet"`` (looked up offline first) or None.
        in_channels: channels of the input image.
        classes: number of classes (20 for ``cihp20``, 13 for ``viton13``).

    Raises:
        ConfigError: unknown architecture or encoder, fewer than 2 classes.
        WeightsUnavailableError: pretrained weights are neither cached nor downloadable.

    Example:
        >>> s = SegmentationModel(encoder="resnet18", classes=13)
        >>> s(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 13, 64, 64])
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(
        self,
        *,
        arch: str = "unet",
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        in_channels: int = 3,
        classes: int = 20,
    ) -> None:
        super().__init__()
        self.config = SegmentationModelConfig(
            arch=arch, encoder=encoder, encoder_weights=encoder_weights, in_channels=in_channels, classes=classes
        )
        if arch not in ARCHITECTURES:
            raise ConfigError(f"segmenter architecture {arch!r} is not one of {', '.join(ARCHITECTURES)}")
        weights_lib.check_encoder_name(encoder)
        if in_channels < 1:
            raise ConfigError(f"in_channels must be at least 1, got {in_channels}")
        if classes < 2:
            raise ConfigError(f"a segmenter needs at least 2 classes, got {classes}")
        self.net = build_smp(ARCHITECTURES[arch], encoder=encoder, encoder_weights=encoder_weights,
                             in_channels=in_channels, classes=classes)

    @classmethod
    def from_config(cls, cfg: SegmentationModelConfig) -> SegmentationModel:
        return cls(**cfg.to_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: (B, C_in, H, W) in [-1, 1]; H and W multiples of 32.

        Returns:
            (B, classes, H, W) logits.
        """
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        if C != self.config.in_channels:
            raise ValueError(f"expected {self.config.in_channels} input channels, got {C} (shape {tuple(x.shape)})")
        check_size(H, W, self.size_multiple)
        return self.net(x)


def build_segmentation_model(cfg: SegmentationModelConfig) -> SegmentationModel:
    """Build the segmenter that ``cfg`` describes (pretrained weights resolved offline first)."""
    return SegmentationModel.from_config(cfg)
