"""The garment segmenter as a training task (`train-segmenter`), run by :func:`loop.fit`.

An smp model (:mod:`clothes_extractor.models.segmenter`) learns VITON-HD's parse maps from the
photos: the 20 CIHP labels (``cihp20``) or the 13 VITON-HD groups (``viton13``), with
cross-entropy plus Dice. Everything generic (epochs, DDP, progress, ``metrics.jsonl``,
pictures, ``last``/``best`` checkpoints, resume, Ctrl-C, NaN) is the shared loop's.

Validation (in the model frame, the padding left out) sums one confusion matrix over the
validation set (summed across processes too), then reports ``miou`` (mean IoU over the classes
present), ``garment_iou`` (the IoU of the garment classes taken as one region: the classes
holding ``garment_labels``, upper-clothes by default), ``pixel_accuracy``, the mean ``ce`` and
``dice``, and ``iou/<class>`` for every class (null where a class is nowhere). ``best`` is the
epoch with the highest ``miou``. The picture shows photo | true parse | predicted parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from clothes_extractor import __version__
from clothes_extractor import metrics as M
from clothes_extractor.config import DEFAULT_GARMENT_LABELS, parse_size
from clothes_extractor.data.dataset import to_uint8
from clothes_extractor.data.labels import LabelSet, colourise, get_label_set
from clothes_extractor.data.segmentation import SegmentationDataset, SegmentationPreprocess
from clothes_extractor.data.viton import LABELS
from clothes_extractor.errors import ConfigError
from clothes_extractor.losses import segmentation_loss
from clothes_extractor.models.segmenter import ARCHITECTURES, SegmentationModelConfig, build_segmentation_model
from clothes_extractor.train.config import LoopConfig
from clothes_extractor.train.generator import check_disjoint, check_lists, enlarge
from clothes_extractor.train.task import TrainTask, optimizer, predict_samples

KIND = "segmenter"


@dataclass(frozen=True, kw_only=True)
class SegmenterConfig(LoopConfig):
    """A `train-segmenter` run: the loop's settings plus the model, data and loss settings.

    Its own defaults for the loop's ``out``, ``epochs`` and ``batch_size`` (16 on every device).
    """

    out: str = "runs/train-segmenter"
    epochs: int = 50
    batch_size: int | None = 16
    size: tuple[int, int] = (256, 192)  # (height, width), multiples of 32
    label_set: str = "cihp20"  # or "viton13"
    fill: tuple[int, int, int] = (255, 255, 255)  # colour of the padding around the photo
    garment_labels: tuple[int, ...] = DEFAULT_GARMENT_LABELS  # CIHP labels of the garment (its IoU)
    arch: str = "unet"
    encoder: str = "resnet34"
    encoder_weights: str | None = "imagenet"
    lr: float = 3e-4
    weight_decay: float = 1e-4
    ce: float = 1.0  # weight of cross-entropy
    dice: float = 1.0  # weight of the Dice loss
    flip: float = 0.0  # probability of a horizontal flip (left/right labels swapped)

    task: ClassVar[str] = KIND

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_size(tuple(self.size))
        get_label_set(self.label_set)
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"--arch {self.arch!r} is not one of {', '.join(ARCHITECTURES)}")
        bad = [v for v in self.garment_labels if not 0 <= v < len(LABELS)]
        if not self.garment_labels or bad:
            raise ConfigError(f"garment labels {list(self.garment_labels)} must be CIHP labels 0-{len(LABELS) - 1}")
        for name in ("lr", "weight_decay", "ce", "dice"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
        if self.ce == 0 and self.dice == 0:
            raise ConfigError("--ce and --dice are both 0: nothing to train on")
        if not 0 <= self.flip <= 1:
            raise ConfigError(f"--flip must be a probability in [0, 1], got {self.flip}")

    @property
    def preprocess(self) -> SegmentationPreprocess:  # type: ignore[override]
        return SegmentationPreprocess(size=tuple(self.size), label_set=self.label_set, fill=tuple(self.fill))

    @property
    def labels(self) -> LabelSet:
        return get_label_set(self.label_set)

    def model_config(self) -> SegmentationModelConfig:
        return SegmentationModelConfig(
            arch=self.arch, encoder=self.encoder, encoder_weights=self.encoder_weights, classes=self.labels.num_classes
        )

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        return {k: tuple(v) if k in ("size", "fill", "garment_labels") else v for k, v in d.items()}


class SegmenterTask(TrainTask):
    kind = KIND
    primary = "segmenter"
    best_key = "miou"
    higher_is_better = True
    optimizer_names = ("segmenter",)
    config_class = SegmenterConfig

    cfg: SegmenterConfig

    def __init__(self, cfg: SegmenterConfig) -> None:
        super().__init__(cfg)
        self.label_set = cfg.labels
        self.garment_classes = self.label_set.classes_for(cfg.garment_labels)

    def datasets(self):
        cfg = self.cfg
        check_lists(cfg)
        train = SegmentationDataset(cfg.data_root, cfg.split, cfg.train_list_path, cfg.preprocess, flip=cfg.flip)
        val = SegmentationDataset(cfg.data_root, cfg.split, cfg.val_list_path, cfg.preprocess)
        check_disjoint(train.ids, val.ids)
        return train, val

    def build(self, device, channels_last, distributed):
        model: nn.Module = build_segmentation_model(self.cfg.model_config())
        if distributed and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # one statistic over the global batch
        model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        return {"segmenter": model}

    def optimizers(self, modules):
        params = modules["segmenter"].parameters()
        return {"segmenter": optimizer(torch.optim.AdamW, params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)}

    def to_device(self, raw, device, channels_last):
        fmt = torch.channels_last if channels_last else torch.preserve_format
        image = raw["image"].to(device, non_blocking=True, memory_format=fmt)
        return image, raw["labels"].to(device, non_blocking=True), raw["valid"].to(device, non_blocking=True)

    def step(self, modules, raw_modules, opts, batch, autocast):
        image, labels, _ = batch
        with autocast():
            logits = modules["segmenter"](image)
        terms = segmentation_loss(logits.float(), labels, ce=self.cfg.ce, dice=self.cfg.dice)
        opt = opts["segmenter"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def validate(self, raw_modules, loader, device, autocast, channels_last):
        """Sums over this process's validation images: the confusion matrix of the photo's
        pixels (padding left out), CE and Dice times the batch size, the image count."""
        model = raw_modules["segmenter"]
        was_training = model.training
        model.eval()
        n = self.label_set.num_classes
        sums = {
            "confusion": torch.zeros(n, n, dtype=torch.float64, device=device),
            "ce": torch.zeros((), dtype=torch.float64, device=device),
            "dice": torch.zeros((), dtype=torch.float64, device=device),
            "n": torch.zeros((), dtype=torch.float64, device=device),
        }
        for raw in loader:
            image, labels, valid = self.to_device(raw, device, channels_last)
            with autocast():
                logits = model(image)
            logits = logits.float()
            terms = segmentation_loss(logits, labels)
            b = image.shape[0]
            sums["ce"] += terms["ce"].double() * b
            sums["dice"] += terms["dice"].double() * b
            sums["n"] += b
            pred = logits.argmax(1)
            sums["confusion"] += M.confusion_matrix(pred[valid], labels[valid], n).double()
        model.train(was_training)
        return sums

    def finalize(self, sums):
        count = max(float(sums["n"]), 1.0)
        report = M.segmentation_report(sums["confusion"].round().long(), self.label_set.classes, self.garment_classes)
        head = {k: report.pop(k) for k in ("miou", "garment_iou", "pixel_accuracy")}
        return {**head, "ce": float(sums["ce"]) / count, "dice": float(sums["dice"]) / count, **report}

    @torch.no_grad()
    def picture(self, raw_modules, val_ds, device, channels_last):
        """One row per validation sample: photo | true parse | predicted parse (VITON palette)."""
        items, logits = predict_samples(raw_modules["segmenter"], val_ds, "image", self.cfg.sample_count, device, channels_last)
        pred = logits.float().argmax(1).cpu().numpy()
        rows = [
            np.concatenate(
                [to_uint8(it["image"]), colourise(it["labels"].numpy(), self.label_set), colourise(p, self.label_set)],
                axis=1,
            )
            for it, p in zip(items, pred)
        ]
        return enlarge(np.concatenate(rows, axis=0), items[0]["image"].shape[1])

    def meta(self) -> dict[str, Any]:
        ls = self.label_set
        return {
            "kind": KIND,
            "clothes_extractor_version": __version__,
            # Rebuilt without pretrained weights: the checkpoint brings its own.
            "segmenter": {**self.cfg.model_config().to_dict(), "encoder_weights": None},
            "preprocess": self.cfg.preprocess.to_dict(),
            "labels": {
                "set": ls.name,
                "classes": list(ls.classes),
                "groups": [list(g) for g in ls.groups],
                "representative": list(ls.representative),
                "garment_labels": list(self.cfg.garment_labels),
            },
        }
