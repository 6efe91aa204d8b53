"""The pix2pix PatchGAN discriminator, conditioned on the generator's input.

``D(condition, image)`` concatenates the two along the channels and returns a map of logits,
one per overlapping input patch (70x70 pixels for the default 3 layers), not a single score:
each logit judges whether its patch of ``image`` is a real catalogue image for that
``condition``. The algorithm follows pix2pix's ``NLayerDiscriminator`` (Isola et al. 2017):

- conv 1: ``in_channels -> ndf``, stride 2, LeakyReLU(0.2), no norm;
- convs 2..n_layers: channels doubled each time (at most ``8 * ndf``), stride 2, norm, LeakyReLU;
- conv n_layers + 1: ``ndf * min(2**n_layers, 8)`` channels, stride 1, norm, LeakyReLU;
- conv n_layers + 2: one channel of logits, stride 1.

All convolutions are 4x4 with padding 1. Biases only where no affine norm follows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from clothes_extractor.config import strict_from_dict
from clothes_extractor.errors import ConfigError

KERNEL_SIZE = 4
PADDING = 1
NORMS = ("batch", "instance", "none")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Arguments that rebuild a :class:`PatchDiscriminator`; JSON-able for checkpoints."""

    in_channels: int = 6  # condition (3) + image (3)
    ndf: int = 64  # filters of the first convolution
    n_layers: int = 3  # stride-2 convolutions; 3 gives the 70x70 PatchGAN
    norm: str = "batch"  # "batch", "instance" or "none" ("none": tests of the receptive field)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        return strict_from_dict(cls, data, "discriminator")


def conv_strides(n_layers: int) -> list[int]:
    """Strides of the ``n_layers + 2`` convolutions: ``n_layers`` times 2, then 1, 1."""
    return [2] * n_layers + [1, 1]


def receptive_field(n_layers: int = 3) -> int:
    """Side in input pixels of the patch one output logit sees (70 for ``n_layers=3``).

    Walking back from one output pixel, a convolution of kernel k and stride s turns a field of
    r pixels into ``(r - 1) * s + k``.

    >>> [receptive_field(n) for n in (1, 2, 3, 4)]
    [16, 34, 70, 142]
    """
    r = 1
    for s in reversed(conv_strides(n_layers)):
        r = (r - 1) * s + KERNEL_SIZE
    return r


def output_size(size: int, n_layers: int = 3) -> int:
    """Side of the logit map for an input side ``size`` (30 for 256, 6 for 64 at 3 layers)."""
    for s in conv_strides(n_layers):
        size = (size + 2 * PADDING - KERNEL_SIZE) // s + 1
    return size


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":  # as pix2pix: no affine, no running statistics
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: ``(condition, image) -> (B, 1, h, w)`` logits.

    Args:
        in_channels: channels of ``cat(condition, image)`` (6 for two RGB images).
        ndf: filters of the first convolution (doubled per layer, at most ``8 * ndf``).
        n_layers: stride-2 convolutions (3: 70x70 patches).
        norm: ``"batch"``, ``"instance"`` or ``"none"`` after every convolution but the first
            and the last.

    Weights are initialised as pix2pix does: convolutions N(0, 0.02), batch-norm scales
    N(1, 0.02), biases 0.

    Example:
        >>> d = PatchDiscriminator()
        >>> d(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(self, *, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ConfigError(f"discriminator norm {norm!r} is not one of {', '.join(NORMS)}")
        if n_layers < 1:
            raise ConfigError(f"discriminator n_layers must be at least 1, got {n_layers}")
        if ndf < 1 or in_channels < 1:
            raise ConfigError(f"discriminator ndf and in_channels must be positive, got {ndf} and {in_channels}")
        self.config = DiscriminatorConfig(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm)
        bias = norm != "batch"  # an affine batch norm has its own shift

        strides = conv_strides(n_layers)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, KERNEL_SIZE, stride=strides[0], padding=PADDING),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = ndf
        for k, stride in enumerate(strides[1:-1], start=1):  # n_layers - 1 at stride 2, one at stride 1
            out = ndf * min(2**k, 8)
            layers += [
                nn.Conv2d(channels, out, KERNEL_SIZE, stride=stride, padding=PADDING, bias=bias),
                _norm(norm, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, KERNEL_SIZE, stride=strides[-1], padding=PADDING))
        self.model = nn.Sequential(*layers)
        self.apply(_init_weights)

    @classmethod
    def from_config(cls, cfg: DiscriminatorConfig) -> PatchDiscriminator:
        return cls(**cfg.to_dict())

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.config.n_layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Args:
            condition: (B, Cc, H, W) in [-1, 1], the generator's input.
            image: (B, Ci, H, W) in [-1, 1], a real target or a generated image;
                ``Cc + Ci == in_channels``.

        Returns:
            (B, 1, h, w) logits, ``h = output_size(H, n_layers)`` (30 for 256 at 3 layers).
        """
        if condition.ndim != 4 or image.ndim != 4 or condition.shape[0] != image.shape[0] or condition.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"condition and image must be (B, C, H, W) with the same B, H, W; got {tuple(condition.shape)} and {tuple(image.shape)}"
            )
        if condition.shape[1] + image.shape[1] != self.config.in_channels:
            raise ValueError(
                f"condition and image have {condition.shape[1]} + {image.shape[1]} channels; "
                f"this discriminator expects {self.config.in_channels} in all"
            )
        return self.model(torch.cat([condition, image], dim=1))


def build_discriminator(cfg: DiscriminatorConfig) -> PatchDiscriminator:
    return PatchDiscriminator.from_config(cfg)


def _init_weights(module: nn.Module, gain: float = 0.02) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, gain)
        nn.init.zeros_(module.bias)
