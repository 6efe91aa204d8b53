"""The training configuration: one frozen dataclass, saved in every run folder and checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.layouts import data_root
from clothes_extractor.errors import ConfigError

MODES = ("unet", "gan")
DEFAULT_BATCH_SIZE = {"cuda": 32, "cpu": 8}  # LoopConfig.batch_size=None, by device type
GAN_MODES = ("vanilla", "lsgan")
DEVICES = ("auto", "cpu", "cuda")


TASKS = ("generator", "segmenter")


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Run settings the training loop itself needs, shared by every task."""

    data: str  # data set root (holding train/, train_ids.txt, val_ids.txt)
    out: str  # run folder
    layout: str | None = None  # force a data set layout (--layout); None: detected from the folder
    categories: str | None = None  # Dress Code categories, comma-separated (--category); None: all
    split: str = "train"
    train_list: str | None = None  # default: <data>/train_ids.txt (written by `split`)
    val_list: str | None = None  # default: <data>/val_ids.txt
    epochs: int = 200
    # Per process (under torchrun the global batch is batch_size x processes). None: the device's
    # default, set when training starts (DEFAULT_BATCH_SIZE: 32 on CUDA, 8 on a CPU, where
    # larger batches gave fewer samples/s: benchmarks/cpu_recipe.py, section batch).
    batch_size: int | None = None
    workers: int = 2
    seed: int = 42
    device: str = "auto"
    max_steps: int | None = None
    compile: bool = False  # torch.compile the trained networks (CUDA runs; slow to start)
    threads: int | None = None  # CPU intra-op threads [default: torch's, the machine's cores]
    sample_count: int = 8  # validation samples shown in samples/epoch_NNN.png

    task = "generator"  # class attribute, not a field: which task config.json belongs to

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"--device {self.device!r} is not one of {', '.join(DEVICES)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be at least 1")

    @property
    def data_root(self):
        """The data set root with its reading options, for the data sets' constructors."""
        return data_root(self.data, self.layout, self.categories)

    @property
    def train_list_path(self) -> Path:
        return Path(self.train_list) if self.train_list else Path(self.data) / "train_ids.txt"

    @property
    def val_list_path(self) -> Path:
        return Path(self.val_list) if self.val_list else Path(self.data) / "val_ids.txt"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if "preprocess" in d:
            d["preprocess"] = self.preprocess.to_dict()  # type: ignore[attr-defined]
        d["task"] = self.task
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopConfig:
        d = dict(d)
        if "preprocess" in d:
            d["preprocess"] = PreprocessConfig.from_dict(d["preprocess"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_changes(self, **changes: Any) -> LoopConfig:
        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class TrainConfig(LoopConfig):
    """A generator run (`train-unet`, `train-gan`). Defaults follow the original project."""

    mode: str  # "unet" (generator alone) or "gan" (pix2pix)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    encoder: str = "resnet34"
    encoder_weights: str | None = "imagenet"
    norm_d: str = "batch"
    lr: float = 3e-4
    lr_d: float = 2e-4
    beta1: float = 0.9
    l1: float = 1.0
    perceptual: float = 0.3
    ssim: float = 1.0
    alpha: float = 1.0
    gan_mode: str = "vanilla"
    vgg_weights: str | None = "imagenet"
    augment: bool = False
    prepared: str = "auto"  # read the `prepare` cache: auto (when built), on (required), off

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prepared not in ("auto", "on", "off"):
            raise ConfigError(f"--prepared {self.prepared!r} is not auto, on or off")
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.gan_mode not in GAN_MODES:
            raise ConfigError(f"--gan-mode {self.gan_mode!r} is not one of {', '.join(GAN_MODES)}")
        if self.norm_d not in ("batch", "instance"):
            raise ConfigError(f"--norm-d {self.norm_d!r} is not batch or instance")
        for name in ("l1", "perceptual", "ssim", "alpha", "lr", "lr_d"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
