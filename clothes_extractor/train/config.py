"""The training configurations: frozen dataclasses, saved in every run folder and checkpoint.

The defaults live here, not in the command line: ``TrainConfig.for_mode("gan", data=...)``
trains exactly as ``clothes-extractor train-gan --data ...`` does. No torch here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from clothes_extractor.config import GENERATOR_ARCHS, PreprocessConfig, parse_background, parse_size, strict_from_dict
from clothes_extractor.data.layouts import data_root
from clothes_extractor.errors import ConfigError
from clothes_extractor.train.tracking import parse_report_to

DEFAULT_BATCH_SIZE = {"cuda": 32, "cpu": 8}  # LoopConfig.batch_size=None, by device type
# Steps between two reads of the losses on the host, by device type: a CUDA read waits for the
# queued steps; a CPU one costs nothing, so the progress bar moves every step.
SYNC_EVERY = {"cuda": 25, "cpu": 1}
GAN_MODES = ("vanilla", "lsgan")
DEVICES = ("auto", "cpu", "cuda")
PREPARED = ("auto", "on", "off")

# The settings whose default depends on the mode: the UNet's follow the original project,
# the GAN's pix2pix (lambda 100 x L1, Adam betas (0.5, 0.999), lr 2e-4).
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "unet": {"lr": 3e-4, "beta1": 0.9, "l1": 1.0, "perceptual": 0.3, "ssim": 1.0},
    "gan": {"lr": 2e-4, "beta1": 0.5, "l1": 100.0, "perceptual": 0.0, "ssim": 0.0},
}
MODES = tuple(MODE_DEFAULTS)

# Settings of the invocation, not of the run: --resume takes them from the command line.
RUN_SETTINGS = ("device", "workers", "compile", "threads", "max_steps")


def parse_weights(name: str | None, flag: str) -> str | None:
    """``imagenet`` -> "imagenet"; ``none`` or ``random`` (or None) -> None (random initialisation)."""
    if name is None or name.lower() in ("none", "random"):
        return None
    if name.lower() != "imagenet":
        raise ConfigError(f"{flag} {name!r} is not 'imagenet' or 'none'")
    return "imagenet"


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
    compile: bool | None = None  # torch.compile the trained networks; None: auto (train.distributed.resolve_compile)
    threads: int | None = None  # CPU intra-op threads [default: torch's, the machine's cores]
    sample_count: int = 8  # validation samples shown in samples/epoch_NNN.png
    # Trackers beside metrics.jsonl (--report-to): auto (TensorBoard when installed), none, or
    # tensorboard and/or wandb, comma-separated (clothes_extractor.train.tracking).
    report_to: str = "auto"

    task: ClassVar[str] = ""  # which task a config.json belongs to (written beside the fields)

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
        object.__setattr__(self, "report_to", parse_report_to(self.report_to))

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
        return {**asdict(self), "task": self.task}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        """The field values of a to_dict() read back from JSON (lists -> tuples, nested configs)."""
        return dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopConfig:
        """Unknown keys are refused and missing ones take their defaults (see strict_from_dict)."""
        task = d.get("task", cls.task)
        if task != cls.task:
            raise ConfigError(f"this is a {task!r} run configuration, not a {cls.task!r} one")
        return strict_from_dict(cls, cls.from_json_dict(d), f"{cls.task} run", ignore=("task",))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_changes(self, **changes: Any) -> LoopConfig:
        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class TrainConfig(LoopConfig):
    """A generator run (`train-unet`, `train-gan`).

    ``lr``, ``beta1``, ``l1``, ``perceptual`` and ``ssim`` left as None take the defaults of the
    mode (:data:`MODE_DEFAULTS`), and ``out`` ``runs/train-<mode>``: ``TrainConfig(mode="gan", ...)``
    is a pix2pix run, the same as :meth:`for_mode`.
    """

    mode: str  # "unet" (generator alone) or "gan" (pix2pix)
    out: str = ""  # run folder; "": runs/train-<mode>
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    encoder: str = "resnet34"
    encoder_weights: str | None = "imagenet"
    norm_d: str = "batch"
    lr: float | None = None
    lr_d: float = 2e-4
    beta1: float | None = None
    l1: float | None = None
    perceptual: float | None = None
    ssim: float | None = None
    alpha: float = 1.0
    alpha_dice: float = 0.0  # soft Dice of the alpha (the outline as a shape), beside its BCE
    gan_mode: str = "vanilla"
    vgg_weights: str | None = "imagenet"
    augment: bool = False
    prepared: str = "auto"  # read the `prepare` cache: auto (when built), on (required), off
    arch: str = "paint"  # generator design: paint (every pixel generated) or warp (the photo's pixels moved)
    # The warp design's terms, as multiples of the L1 weight, each where the target garment is:
    # L1 of the warped input, L1 of the fill (warped input and generated colour), the share of
    # generated colour.
    warp_l1: float = 1.0
    fill_l1: float = 1.0
    generated_share: float = 0.02
    init: str | None = None  # a generator checkpoint to start from (--init); None: random / ImageNet

    task: ClassVar[str] = "generator"

    @classmethod
    def for_mode(cls, mode: str, **overrides: Any) -> TrainConfig:
        """The run of ``mode`` ("unet" or "gan") with its defaults, changed by ``overrides``."""
        return cls(mode=mode, **overrides)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        for name, value in MODE_DEFAULTS[self.mode].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not self.out:
            object.__setattr__(self, "out", str(Path("runs") / f"train-{self.mode}"))
        if self.prepared not in PREPARED:
            raise ConfigError(f"--prepared {self.prepared!r} is not auto, on or off")
        if self.gan_mode not in GAN_MODES:
            raise ConfigError(f"--gan-mode {self.gan_mode!r} is not one of {', '.join(GAN_MODES)}")
        if self.norm_d not in ("batch", "instance"):
            raise ConfigError(f"--norm-d {self.norm_d!r} is not batch or instance")
        if self.arch not in GENERATOR_ARCHS:
            raise ConfigError(f"--arch {self.arch!r} is not one of {', '.join(GENERATOR_ARCHS)}")
        for name in ("l1", "perceptual", "ssim", "alpha", "alpha_dice", "lr", "lr_d", "warp_l1", "fill_l1", "generated_share"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "preprocess": self.preprocess.to_dict()}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        d = dict(d)
        if "preprocess" in d:
            d["preprocess"] = PreprocessConfig.from_dict(d["preprocess"])
        return d


def preprocess_for(
    data: str | Path, *, layout: str | None = None, category: str | None = None, size: str | None = None,
    labels: str | None = None, background: str | None = None, framing: str | None = None,
) -> PreprocessConfig:
    """The preprocessing of a generator's data from the command line's words (None: the default).

    The garment labels are ``labels``, or on Dress Code the union of its categories' garment
    labels (each sample uses its own category's), recorded with the categories.
    """
    from clothes_extractor.data.layouts import CATEGORY_LABELS, DRESSCODE, detect_layout, parse_categories
    from clothes_extractor.data.viton import parse_garment_labels

    given: dict[str, Any] = {}
    if detect_layout(data, layout) is DRESSCODE:
        categories = parse_categories(category)
        given["garment_labels"] = tuple(sorted({label for c in categories for label in CATEGORY_LABELS[c]}))
        given["categories"] = categories
    elif labels is not None:
        given["garment_labels"] = parse_garment_labels(labels)
    if size is not None:
        given["size"] = parse_size(size)
    if background is not None:
        given["background"] = parse_background(background)
    if framing is not None:
        given["framing"] = framing
    return PreprocessConfig(**given)

