"""The garment generator as a training task: `train-unet` (alone) and `train-gan` (pix2pix)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from clothes_extractor import __version__
from clothes_extractor.checkpoint import init_generator_from
from clothes_extractor.data.dataset import VitonDataset, to_uint8
from clothes_extractor.data.gpu_augment import BatchAugment
from clothes_extractor.data.prepared import PreparedDataset, batch_loader, batch_to_device, open_prepared
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.errors import DataError
from clothes_extractor.metrics.outline import alpha_iou
from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
from clothes_extractor.models.generator import GeneratorConfig, build_generator
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.steps import Batch, LossModules, gan_step, generator_losses, unet_step
from clothes_extractor.train.task import TrainTask, optimizer, predict_samples


def check_lists(cfg) -> None:
    """The id lists `split` writes must exist before any slow work."""
    for path in (cfg.train_list_path, cfg.val_list_path):
        if not path.is_file():
            raise DataError(
                f"id list {path} not found; run `clothes-extractor split --data {cfg.data}` first "
                "(or pass --train-list/--val-list)"
            )


def check_disjoint(train_ids, val_ids) -> None:
    overlap = set(train_ids) & set(val_ids)
    if overlap:
        raise DataError(f"{len(overlap)} id(s) are in both the train and the validation list, e.g. {sorted(overlap)[0]}")


def enlarge(grid: np.ndarray, tile: int, at_least: int = 128) -> np.ndarray:
    """Small training sizes make tiny pictures: enlarge them (nearest, so pixels stay honest)."""
    k = math.ceil(at_least / tile)
    return grid.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else grid


class GeneratorTask(TrainTask):
    kind = "generator"
    primary = "generator"
    best_key = "l1"
    higher_is_better = False
    config_class = TrainConfig

    cfg: TrainConfig

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.optimizer_names = ("g", "d") if cfg.mode == "gan" else ("g",)
        self.losses: LossModules | None = None
        self.augmenter: BatchAugment | None = None

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig.for_arch(
            self.cfg.arch, encoder=self.cfg.encoder, encoder_weights=self.cfg.encoder_weights,
            background=tuple(self.cfg.preprocess.background),
        )

    def datasets(self):
        cfg = self.cfg
        check_lists(cfg)
        augment = AugmentConfig() if cfg.augment else None
        train = val = None
        if cfg.prepared != "off":
            # The cache of `clothes-extractor prepare`: the same arrays, without decoding files.
            train = open_prepared(cfg.data_root, cfg.split, cfg.train_list_path, cfg.preprocess)
            val = open_prepared(cfg.data_root, cfg.split, cfg.val_list_path, cfg.preprocess)
            if cfg.prepared == "on" and (train is None or val is None):
                h, w = cfg.preprocess.size
                raise DataError(
                    f"no prepared cache of {cfg.data} at {h}x{w} for these lists; build it with "
                    f"`clothes-extractor prepare --data {cfg.data} --size {h}x{w}` (or drop --prepared on)"
                )
        if train is not None:
            self.augmenter = BatchAugment(augment, cfg.preprocess.background) if augment else None
        else:
            train = VitonDataset(cfg.data_root, cfg.split, cfg.train_list_path, cfg.preprocess, augment)
        val = val or VitonDataset(cfg.data_root, cfg.split, cfg.val_list_path, cfg.preprocess, None)
        check_disjoint(train.ids, val.ids)
        return train, val

    def train_loader(self, ds, sampler, drop_last, pin_memory):
        if not isinstance(ds, PreparedDataset):
            return None
        # Whole uint8 batches in one copy each; workers would only add a hand-over.
        return batch_loader(ds, self.cfg.batch_size, sampler=sampler, drop_last=drop_last, workers=0, pin_memory=pin_memory)

    def build(self, device, channels_last, distributed):
        cfg = self.cfg
        fmt = torch.channels_last if channels_last else torch.preserve_format
        modules: dict[str, nn.Module] = {"generator": build_generator(self.generator_config())}
        if cfg.init is not None:  # before the run folder exists: a wrong file costs nothing
            init_generator_from(modules["generator"], cfg.init)
        if cfg.mode == "gan":
            d = build_discriminator(DiscriminatorConfig(norm=cfg.norm_d))
            if distributed and device.type == "cuda" and cfg.norm_d == "batch":
                # One batch-norm statistic over the global batch, as a single-GPU run would see.
                # (SyncBatchNorm needs CUDA: on CPU/gloo each process keeps its own batch statistics.)
                d = nn.SyncBatchNorm.convert_sync_batchnorm(d)
            modules["discriminator"] = d
        for m in modules.values():
            m.to(device, memory_format=fmt)
        self.losses = LossModules.build(cfg).to(device)
        return modules

    def compile_losses(self) -> None:
        self.losses.compile_networks()

    def optimizers(self, modules):
        cfg = self.cfg
        betas = (cfg.beta1, 0.999)
        opts = {"g": optimizer(torch.optim.Adam, modules["generator"].parameters(), lr=cfg.lr, betas=betas)}
        if "discriminator" in modules:
            opts["d"] = optimizer(torch.optim.Adam, modules["discriminator"].parameters(), lr=cfg.lr_d, betas=betas)
        return opts

    def to_device(self, raw, device, channels_last):
        if raw["input"].dtype == torch.uint8:  # a cached training batch: convert and augment on the device
            b = batch_to_device(raw, device, channels_last=channels_last)
            x, y, a = b["input"], b["target"], b["alpha"]
            if self.augmenter is not None:
                x, y, a = self.augmenter(x, y, a)
            return Batch(x, y, a)
        fmt = torch.channels_last if channels_last else torch.preserve_format
        move = lambda t: t.to(device, non_blocking=True, memory_format=fmt)  # noqa: E731
        return Batch(move(raw["input"]), move(raw["target"]), move(raw["alpha"]))

    def step(self, modules, raw_modules, opts, batch, autocast):
        if self.cfg.mode == "unet":
            return unet_step(modules["generator"], opts["g"], batch, self.losses, self.cfg, autocast)
        return gan_step(
            modules["generator"], modules["discriminator"], opts["g"], opts["d"], batch, self.losses, self.cfg,
            autocast, frozen_discriminator=raw_modules["discriminator"],
        )

    @torch.no_grad()
    def validate(self, raw_modules, loader, device, autocast, channels_last):
        """Sums over this process's validation images: losses, SSIM and PSNR on [0, 1] images."""
        import kornia

        generator = raw_modules["generator"]
        was_training = generator.training
        generator.eval()
        sums: dict[str, torch.Tensor] = {}

        def add(key: str, value: torch.Tensor) -> None:
            sums[key] = sums.get(key, torch.zeros((), dtype=torch.float64, device=device)) + value.double()

        for raw in loader:
            batch = self.to_device(raw, device, channels_last)
            with autocast():
                out = generator(batch.input)
            rgb = out.rgb.float()
            b = batch.input.shape[0]
            for k, v in generator_losses(out, batch, self.losses, self.cfg).items():
                add(k, v * b)
            pred01, target01 = (rgb + 1) / 2, (batch.target + 1) / 2
            add("ssim", kornia.metrics.ssim(pred01, target01, 11).mean(dim=(1, 2, 3)).sum())
            mse = ((pred01.clamp(0, 1) - target01) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
            add("psnr", (10 * torch.log10(1 / mse)).sum())  # per image, as evaluate does
            add("alpha_iou", alpha_iou(out.alpha_logit.float(), batch.alpha).sum())
            add("n", torch.tensor(float(b), device=device))
        generator.train(was_training)
        return sums

    def finalize(self, sums):
        n = max(float(sums.get("n", 0)), 1.0)
        return {k: float(v) / n for k, v in sums.items() if k != "n"}

    @torch.no_grad()
    def picture(self, raw_modules, val_ds, device, channels_last):
        """One row per validation sample: input | prediction | target (a warp generator shows its
        warped input before the prediction); tiles of >= 128 pixels."""
        items, out = predict_samples(raw_modules["generator"], val_ds, "input", self.cfg.sample_count, device, channels_last)
        shown = [out.rgb] if out.warped is None else [out.warped, out.rgb]
        rows = [
            np.concatenate([to_uint8(it["input"]), *(to_uint8(t[k].float().cpu()) for t in shown), to_uint8(it["target"])], axis=1)
            for k, it in enumerate(items)
        ]
        return enlarge(np.concatenate(rows, axis=0), items[0]["input"].shape[1])

    def meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "clothes_extractor_version": __version__,
            # Rebuilt without pretrained weights: the checkpoint brings its own.
            "generator": {**self.generator_config().to_dict(), "encoder_weights": None},
            "preprocess": self._framed_preprocess().to_dict(),
        }

    def _framed_preprocess(self):
        """The preprocessing, with the garment width of the training data's layout when the run
        did not set one: the margins the model learns, which `extract` and `evaluate` rescale."""
        pre = self.cfg.preprocess
        if pre.garment_width is None:
            from dataclasses import replace

            from clothes_extractor.data.layouts import detect_layout

            pre = replace(pre, garment_width=detect_layout(self.cfg.data, self.cfg.layout).garment_width)
        return pre
