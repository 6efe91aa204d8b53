"""The generator: an smp ``Unet`` whose output channels are a colour image and an alpha logit,
and, in the ``warp`` design, a flow field and a composition mask.

``paint`` (the original design): three channels go through ``tanh`` (the catalogue image in
[-1, 1]); the fourth stays a logit of the garment's alpha (trained against ``cloth-mask``), so
``extract`` can write a cut-out as well as an image on the catalogue background.

``warp`` (appearance flow run in reverse, :mod:`clothes_extractor.models.warp`): a flow head on
the encoder's deepest map predicts a bounded residual on the identity of the ``fill`` crop at a
few control points (8x6 at 256x192), upsampled bicubically, saying where each catalogue pixel
samples the input; one more decoder channel is the logit of a composition mask choosing, per
pixel, the warped input (the photo's own print) or the generated colour (what the photo hides).
The alpha is the catalogue outline: the garment image is that fill inside it, the background
outside. The network runs at the model size; :func:`~clothes_extractor.models.warp.compose`
applies the same fields to the photo at its own resolution at inference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import segmentation_models_pytorch as smp
import torch
from torch import nn

from clothes_extractor import weights as weights_lib
from clothes_extractor.config import GENERATOR_ARCHS, SIZE_MULTIPLE, nearest_multiple, strict_from_dict
from clothes_extractor.errors import ConfigError
from clothes_extractor.models.encoders import build_smp
from clothes_extractor.models.warp import FLOW_RANGE, compose

DECODER_ATTENTIONS = (None, "scse")
RGB_CHANNELS = 3
# Decoder output channels of each design: colour + alpha; warp adds a composition-mask logit
# (its flow comes from a head of its own on the encoder's deepest map).
ARCH_CHANNELS = dict(zip(GENERATOR_ARCHS, (RGB_CHANNELS + 1, RGB_CHANNELS + 1 + 1)))
# Width of the flow head's hidden layer.
FLOW_HIDDEN = 128
# The composition mask starts at sigmoid(2) = 0.88 of the warped photo: its pixels come first.
MASK_BIAS = 2.0


@dataclass(frozen=True)
class GeneratorConfig:
    """Arguments that rebuild a :class:`Generator`; stored as JSON in every checkpoint.

    A checkpoint rebuilds with ``encoder_weights=None`` and loads its own weights
    (:meth:`for_checkpoint_load`), so loading never touches the network.
    """

    encoder: str = "resnet34"  # any smp encoder name, or tu-<timm model>
    encoder_weights: str | None = None  # "imagenet" or None (random initialisation)
    decoder_attention: str | None = "scse"  # "scse" or None
    in_channels: int = 3
    out_channels: int = 4  # 3 colour channels + 1 alpha logit (+ 1 composition-mask logit for warp)
    arch: str = "paint"  # "paint" (every pixel generated) or "warp" (the input's pixels moved)
    background: tuple[int, int, int] = (255, 255, 255)  # warp: the colour outside the outline (0-255)

    def __post_init__(self) -> None:
        object.__setattr__(self, "background", tuple(int(v) for v in self.background))  # JSON gives a list

    @classmethod
    def for_arch(cls, arch: str, **kwargs: Any) -> GeneratorConfig:
        """The configuration of design ``arch`` with its output channels."""
        if arch not in ARCH_CHANNELS:
            raise ConfigError(f"generator design {arch!r} is not one of {', '.join(GENERATOR_ARCHS)}")
        return cls(arch=arch, out_channels=ARCH_CHANNELS[arch], **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        return strict_from_dict(cls, data, "generator")

    def for_checkpoint_load(self) -> GeneratorConfig:
        """The same architecture without pretrained weights, to load a checkpoint's own."""
        return GeneratorConfig(**{**self.to_dict(), "encoder_weights": None})


class GeneratorOutput(NamedTuple):
    """What :class:`Generator` returns. ``rgb`` is the garment image either way; the warp
    design's fields (None for ``paint``) let the losses and the full-resolution composition see
    its parts."""

    rgb: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    alpha_logit: torch.Tensor  # (B, 1, H, W), unbounded; sigmoid gives the alpha in [0, 1]
    flow: torch.Tensor | None = None  # (B, 2, H/32, W/32) control points' (x, y) offsets, [-1, 1] units
    mask_logit: torch.Tensor | None = None  # (B, 1, H, W) composition: sigmoid -> weight of the warped input
    generated: torch.Tensor | None = None  # (B, 3, H, W) the generated colour, in [-1, 1]
    warped: torch.Tensor | None = None  # (B, 3, H, W) the input sampled through the flow
    fill: torch.Tensor | None = None  # (B, 3, H, W) warped input and generated colour, before the outline


def check_size(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> None:
    """Raise :class:`ConfigError` with the nearest valid size unless both sides divide by ``multiple``."""
    if height % multiple or width % multiple:
        nh, nw = nearest_multiple(height, multiple), nearest_multiple(width, multiple)
        raise ConfigError(f"size {height}x{width} is not a multiple of {multiple}; use {nh}x{nw}")


class Generator(nn.Module):
    """smp ``Unet`` (scSE attention in the decoder) with a colour head and an alpha head.

    Args:
        encoder: smp encoder name (``resnet18``, ``resnet34``, ...) or ``tu-<timm model>``.
        encoder_weights: ``"imagenet"`` (looked up offline first, see
            :func:`clothes_extractor.weights.resolve_encoder_weights`) or None.
        decoder_attention: ``"scse"`` or None.
        in_channels: channels of the input image.
        out_channels: 4 for ``paint`` (3 colours through tanh + 1 alpha logit), 5 for ``warp``
            (+ 1 composition mask logit).
        arch: ``"paint"`` or ``"warp"`` (see the module's docstring).
        background: ``warp``: the 0-255 colour outside the outline (the training background).

    Raises:
        ConfigError: unknown encoder or weights name, invalid attention or channel count.
        WeightsUnavailableError: pretrained weights are neither cached nor downloadable.

    Example:
        >>> g = Generator(encoder="resnet18", encoder_weights=None)
        >>> out = g(torch.zeros(2, 3, 64, 64))
        >>> out.rgb.shape, out.alpha_logit.shape
        (torch.Size([2, 3, 64, 64]), torch.Size([2, 1, 64, 64]))
    """

    size_multiple = SIZE_MULTIPLE  # encoder depth 5: each side must divide by 2**5

    def __init__(
        self,
        *,
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        decoder_attention: str | None = "scse",
        in_channels: int = 3,
        out_channels: int = 4,
        arch: str = "paint",
        background: tuple[int, int, int] = (255, 255, 255),
    ) -> None:
        super().__init__()
        self.config = GeneratorConfig(
            encoder=encoder,
            encoder_weights=encoder_weights,
            decoder_attention=decoder_attention,
            in_channels=in_channels,
            out_channels=out_channels,
            arch=arch,
            background=background,
        )
        weights_lib.check_encoder_name(encoder)
        if decoder_attention not in DECODER_ATTENTIONS:
            raise ConfigError(f"decoder attention {decoder_attention!r} is not one of scse, none")
        if in_channels < 1:
            raise ConfigError(f"in_channels must be at least 1, got {in_channels}")
        if arch not in ARCH_CHANNELS:
            raise ConfigError(f"generator design {arch!r} is not one of {', '.join(GENERATOR_ARCHS)}")
        if out_channels != ARCH_CHANNELS[arch]:
            raise ConfigError(
                f"out_channels must be {ARCH_CHANNELS[arch]} for the {arch} design (3 colour channels + 1 alpha logit"
                f"{' + 1 mask logit' if arch == 'warp' else ''}), got {out_channels}"
            )
        if arch == "warp" and in_channels != RGB_CHANNELS:
            raise ConfigError(f"the warp design samples a colour input: in_channels must be 3, got {in_channels}")
        self.unet = _build_unet(
            encoder=encoder,
            encoder_weights=encoder_weights,
            decoder_attention=decoder_attention,
            in_channels=in_channels,
            out_channels=out_channels,
        )
        _drop_unused_attention(self.unet)
        self.flow_head: nn.Module | None = None
        if arch == "warp":
            self.flow_head = _flow_head(self.unet.encoder.out_channels[-1])
            # The identity warp of the fill crop and mostly the warped photo, from the first step.
            head = _head_conv(self.unet)
            with torch.no_grad():
                head.weight[RGB_CHANNELS + 1:].zero_()
                head.bias[RGB_CHANNELS + 1:].fill_(MASK_BIAS)
        # [-1, 1] units, as the colours; not a buffer, so checkpoints hold only weights.
        self._background = torch.tensor(background, dtype=torch.float32) / 127.5 - 1

    @classmethod
    def from_config(cls, cfg: GeneratorConfig) -> Generator:
        return cls(**cfg.to_dict())

    def forward(self, x: torch.Tensor) -> GeneratorOutput:
        """Args:
            x: (B, C_in, H, W) in [-1, 1]; H and W multiples of 32.

        Returns:
            :class:`GeneratorOutput`: ``rgb`` (B, 3, H, W) in [-1, 1] and
            ``alpha_logit`` (B, 1, H, W); for ``warp`` also its control-point flow
            (B, 2, H/32, W/32), mask logit, generated colour, warped input and fill, ``rgb``
            being the fill inside the alpha on the background, at the model size.
        """
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        if C != self.config.in_channels:
            raise ValueError(f"expected {self.config.in_channels} input channels, got {C} (shape {tuple(x.shape)})")
        check_size(H, W, self.size_multiple)
        if self.flow_head is None:
            out = self.unet(x)
        else:
            features = self.unet.encoder(x)
            out = self.unet.segmentation_head(self.unet.decoder(features))
            flow = FLOW_RANGE * torch.tanh(self.flow_head(features[-1]))
        colour, alpha_logit = torch.tanh(out[:, :RGB_CHANNELS]), out[:, RGB_CHANNELS:RGB_CHANNELS + 1]
        if self.flow_head is None:
            return GeneratorOutput(rgb=colour, alpha_logit=alpha_logit)
        mask_logit = out[:, RGB_CHANNELS + 1:]
        rgb, content, warped, _ = compose(x, flow, mask_logit, colour, alpha_logit, self._background)
        return GeneratorOutput(rgb, alpha_logit, flow, mask_logit, colour, warped, content)


def build_generator(cfg: GeneratorConfig) -> Generator:
    """Build the generator that ``cfg`` describes (pretrained weights resolved offline first)."""
    return Generator.from_config(cfg)


def _build_unet(
    *, encoder: str, encoder_weights: str | None, decoder_attention: str | None, in_channels: int, out_channels: int
) -> smp.Unet:
    return build_smp(
        smp.Unet, encoder=encoder, encoder_weights=encoder_weights, in_channels=in_channels, classes=out_channels,
        decoder_attention_type=decoder_attention,
    )


def _flow_head(channels: int) -> nn.Sequential:
    """Control-point offsets from the encoder's deepest map (one point per stride-32 cell); the
    last layer starts at zero, so the flow starts at the identity."""
    head = nn.Sequential(
        nn.Conv2d(channels, FLOW_HIDDEN, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(FLOW_HIDDEN, 2, 3, padding=1)
    )
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head


def _head_conv(unet: smp.Unet) -> nn.Conv2d:
    """The segmentation head's convolution (the last layer, one output channel per head)."""
    return next(m for m in unet.segmentation_head.modules() if isinstance(m, nn.Conv2d))


def _drop_unused_attention(unet: smp.Unet) -> None:
    """Replace the attention that smp builds but never calls with an Identity.

    smp's last decoder block has no skip connection, and applies ``attention1`` only to a
    concatenated skip: with scSE its parameters would never get a gradient, which makes DDP
    fail ("Expected to have finished reduction...") unless ``find_unused_parameters=True``.
    The outputs are unchanged; the state dict loses those unused keys.
    """
    n_skips = len(unet.encoder.out_channels) - 2  # features minus the input-resolution one minus the head
    for block in list(unet.decoder.blocks)[n_skips:]:
        block.attention1 = nn.Identity()
