"""The two training steps. Each returns its losses as a dict of detached tensors."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from clothes_extractor.losses import (
    PerceptualLoss, alpha_dice_loss, alpha_loss, gan_loss, l1_loss, masked_l1_loss, ssim_loss,
)
from clothes_extractor.models.generator import GeneratorOutput
from clothes_extractor.train.config import TrainConfig


class Batch(NamedTuple):
    input: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    target: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    alpha: torch.Tensor  # (B, 1, H, W) in [0, 1]


class LossModules(nn.Module):
    """The loss networks a run needs (only the VGG of the perceptual loss has weights)."""

    def __init__(self, perceptual: PerceptualLoss | None) -> None:
        super().__init__()
        self.perceptual = perceptual

    @classmethod
    def build(cls, cfg: TrainConfig) -> LossModules:
        # Built only when used: the pretrained VGG may be absent, and it dominates the step's cost.
        perceptual = PerceptualLoss(pretrained=cfg.vgg_weights == "imagenet") if cfg.perceptual > 0 else None
        return cls(perceptual)

    def compile_networks(self) -> None:
        """torch.compile the loss networks (with ``--compile``: VGG is most of a perceptual step)."""
        if self.perceptual is not None:
            self.perceptual.vgg = torch.compile(self.perceptual.vgg)


def generator_losses(out: GeneratorOutput, batch: Batch, losses: LossModules, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Unweighted reconstruction terms (fp32): l1 always, the others when their weight is > 0.

    The warp design adds three, each where the target garment is, so the texture learns apart
    from the outline: L1 of the warped input alone (teaches the flow directly), L1 of the fill
    (warped input and generated colour through the composition mask), and the share of
    generated colour (the photo's own pixels come first)."""
    rgb, alpha_logit = out.rgb.float(), out.alpha_logit.float()
    terms = {"l1": l1_loss(rgb, batch.target)}
    if cfg.ssim > 0:
        terms["ssim_loss"] = ssim_loss(rgb, batch.target)
    if cfg.perceptual > 0 and losses.perceptual is not None:
        terms["perceptual"] = losses.perceptual(rgb, batch.target)
    if cfg.alpha > 0:
        terms["alpha"] = alpha_loss(alpha_logit, batch.alpha)
    if cfg.alpha_dice > 0:
        terms["alpha_dice"] = alpha_dice_loss(alpha_logit, batch.alpha)
    if out.flow is not None:
        garment = batch.alpha.float()
        terms["warp_l1"] = masked_l1_loss(out.warped.float(), batch.target, garment)
        terms["fill_l1"] = masked_l1_loss(out.fill.float(), batch.target, garment)
        generated = 1 - torch.sigmoid(out.mask_logit.float())
        terms["generated_share"] = (generated * garment).sum() / garment.sum().clamp_min(1.0)
    return terms


def weighted_sum(terms: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    weights = {
        "l1": cfg.l1, "ssim_loss": cfg.ssim, "perceptual": cfg.perceptual, "alpha": cfg.alpha,
        "alpha_dice": cfg.alpha_dice,
        # The warp terms scale with the L1 weight, so one setting suits unet (1) and gan (100).
        "warp_l1": cfg.l1 * cfg.warp_l1, "fill_l1": cfg.l1 * cfg.fill_l1,
        "generated_share": cfg.l1 * cfg.generated_share,
    }
    return sum(weights[k] * v for k, v in terms.items())


def _detached(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in d.items()}


def unet_step(generator, opt_g, batch: Batch, losses: LossModules, cfg: TrainConfig, autocast) -> dict[str, torch.Tensor]:
    """One optimiser step of the generator alone: L1 + perceptual + SSIM (+ alpha)."""
    with autocast():
        out = generator(batch.input)
    terms = generator_losses(out, batch, losses, cfg)
    total = weighted_sum(terms, cfg)
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    return _detached({"loss": total, **terms})


def gan_step(
    generator, discriminator, opt_g, opt_d, batch: Batch, losses: LossModules, cfg: TrainConfig, autocast,
    frozen_discriminator=None,
) -> dict[str, torch.Tensor]:
    """One pix2pix step: a single generator forward, D on the detached output, then G with D frozen.

    ``frozen_discriminator``: the same network as ``discriminator`` without its DDP wrapper, for
    the generator's update (a DDP module whose parameters take no gradient would wait forever
    for their reduction). Defaults to ``discriminator``.
    """
    frozen = frozen_discriminator if frozen_discriminator is not None else discriminator
    with autocast():
        out = generator(batch.input)
    rgb = out.rgb

    discriminator.requires_grad_(True)
    with autocast():
        fake_logits = discriminator(batch.input, rgb.detach())
        real_logits = discriminator(batch.input, batch.target)
    loss_d = 0.5 * (gan_loss(fake_logits.float(), False, cfg.gan_mode) + gan_loss(real_logits.float(), True, cfg.gan_mode))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    frozen.requires_grad_(False)  # G's step must not accumulate gradients in D
    with autocast():
        fooled_logits = frozen(batch.input, rgb)
    loss_g_gan = gan_loss(fooled_logits.float(), True, cfg.gan_mode)
    terms = generator_losses(out, batch, losses, cfg)
    total = loss_g_gan + weighted_sum(terms, cfg)
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    frozen.requires_grad_(True)
    return _detached({"loss": total, "d": loss_d, "g_gan": loss_g_gan, **terms})
