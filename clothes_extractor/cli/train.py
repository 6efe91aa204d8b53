"""Training commands: train-unet, train-gan, train-segmenter. Their defaults come from the
library's configs (`TrainConfig.for_mode`, `SegmenterConfig`); a command passes only the options given."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from clothes_extractor.cli.app import _stderr, app, handle_errors
from clothes_extractor.train.config import MODE_DEFAULTS  # the training defaults; imports no torch

if TYPE_CHECKING:
    from clothes_extractor.train.config import TrainConfig
    from clothes_extractor.train.segmenter import SegmenterConfig


_TRAIN_PANEL = "Data"
_MODEL_PANEL = "Model"
_LOSS_PANEL = "Losses"
_RUN_PANEL = "Run"

# Options shared by the training commands: one definition, one help text.
_AlphaOpt = Annotated[Optional[float], typer.Option("--alpha", min=0, help="Weight of the alpha (cloth mask) loss [default: 1.0].", rich_help_panel=_LOSS_PANEL)]
_AlphaDiceOpt = Annotated[Optional[float], typer.Option("--alpha-dice", min=0, help="Weight of the alpha's soft Dice loss: the outline judged as a shape, as its IoU is [default: 0].", rich_help_panel=_LOSS_PANEL)]
_AugmentOpt = Annotated[bool, typer.Option("--augment/--no-augment", help="Paired flip, small rotation and zoom.", rich_help_panel=_TRAIN_PANEL)]
_BackgroundOpt = Annotated[Optional[str], typer.Option("--background", help="white, black or R,G,B: the catalogue background [default: white].", rich_help_panel=_TRAIN_PANEL)]
_BsOpt = Annotated[Optional[int], typer.Option("--bs", min=1, help="Batch size per process (under torchrun: x processes) [default: 32 on CUDA, 8 on a CPU].", rich_help_panel=_RUN_PANEL)]
_CompileOpt = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the networks [default: on a CPU for runs of 2,000 steps or more, where g++ exists: 1.2-1.6x faster steps after about a minute of compiling; on CUDA for runs of 5,000 steps or more].", rich_help_panel=_RUN_PANEL)]
_ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads [default: the machine's cores; idle threads spin briefly, then sleep: GOMP_SPINCOUNT=10000 unless a wait policy is set].", rich_help_panel=_RUN_PANEL)]
_DataOpt = Annotated[Path, typer.Option("--data", help="Data set root with train/ and the lists from `split`.", rich_help_panel=_TRAIN_PANEL)]
_DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda [default: auto].", rich_help_panel=_RUN_PANEL)]
_EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="Any smp encoder name [default: resnet34].", rich_help_panel=_MODEL_PANEL)]
_EncoderWeightsOpt = Annotated[Optional[str], typer.Option("--encoder-weights", help="imagenet or none [default: imagenet].", rich_help_panel=_MODEL_PANEL)]
_EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs [default: 200; on --resume: the run's].", rich_help_panel=_RUN_PANEL)]
_LayoutOpt = Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].", rich_help_panel=_TRAIN_PANEL)]
_CategoryOpt = Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: all three].", rich_help_panel=_TRAIN_PANEL)]
_ArchOpt = Annotated[Optional[str], typer.Option("--arch", help="Generator design: paint (every pixel generated) or warp (a smooth flow on a coarse control grid moves the photo's own pixels into the catalogue frame, inside the predicted outline; a mask fills what the photo hides with generated colour; keeps prints and logos) [default: paint].", rich_help_panel=_MODEL_PANEL)]
_InitOpt = Annotated[Optional[Path], typer.Option("--init", metavar="CHECKPOINT", help="Start the generator from this checkpoint's weights (e.g. clothes_extractor/pretrained/generator.safetensors; a warp generator takes a paint one's, its flow starting at the identity).", rich_help_panel=_MODEL_PANEL)]
_FramingOpt = Annotated[Optional[str], typer.Option("--framing", help="photo: the garment keeps its scale in the photo frame; fill: it fills the model frame, like the target [default: photo].", rich_help_panel=_TRAIN_PANEL)]
_LabelsOpt = Annotated[Optional[str], typer.Option("--labels", help="Garment parse labels, e.g. 5 or 5,6,7 [default: 5].", rich_help_panel=_TRAIN_PANEL)]
_MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after this many steps in all (quick runs).", rich_help_panel=_RUN_PANEL)]
_OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Reuse a non-empty --out folder, replacing its checkpoints.", rich_help_panel=_RUN_PANEL)]
_PreparedOpt = Annotated[Optional[str], typer.Option("--prepared", help="Read the cache of `prepare`: auto (when built), on (required) or off [default: auto].", rich_help_panel=_TRAIN_PANEL)]
_ReportToOpt = Annotated[Optional[str], typer.Option("--report-to", metavar="TRACKERS", help="Also log each epoch's metrics.jsonl scalars, sample picture and the run's configuration to: tensorboard (RUN/tensorboard), wandb (Weights & Biases; offline without a login; --resume continues its run), tensorboard,wandb, none, or auto: tensorboard when it is installed [default: auto; on --resume: the run's].", rich_help_panel=_RUN_PANEL)]
_ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", metavar="RUN", help="Continue the run in RUN (its settings; --epochs may extend it).", rich_help_panel=_RUN_PANEL)]
_SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 42].", rich_help_panel=_RUN_PANEL)]
_SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Model size: an int or HxW (e.g. 512x384), multiples of 32 [default: 224].", rich_help_panel=_TRAIN_PANEL)]
_TrainListOpt = Annotated[Optional[Path], typer.Option("--train-list", help="Train ids (default DATA/train_ids.txt).", rich_help_panel=_TRAIN_PANEL)]
_ValListOpt = Annotated[Optional[Path], typer.Option("--val-list", help="Validation ids (default DATA/val_ids.txt).", rich_help_panel=_TRAIN_PANEL)]
_VggWeightsOpt = Annotated[Optional[str], typer.Option("--vgg-weights", help="imagenet, or none (random VGG: for tests only) [default: imagenet].", rich_help_panel=_LOSS_PANEL)]
_WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=0, help="DataLoader worker processes [default: 2].", rich_help_panel=_TRAIN_PANEL)]

# Command-line names of config fields, where they differ.
_FIELD_NAMES = {"bs": "batch_size", "category": "categories", "lambda_l1": "l1"}
_PREPROCESS_OPTIONS = ("size", "labels", "background", "framing")


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user set (not None), by config field name, paths as text."""
    return {_FIELD_NAMES.get(k, k): str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}


def generator_config(mode: str, options: dict[str, Any]) -> TrainConfig:
    """The TrainConfig that `train-unet` (mode "unet") or `train-gan` ("gan") builds from its
    options (None: not set, the library's default)."""
    from clothes_extractor.train.config import TrainConfig, parse_weights, preprocess_for

    given = _given(options)
    words = {k: given.pop(k) for k in _PREPROCESS_OPTIONS if k in given}
    given["preprocess"] = preprocess_for(given["data"], layout=given.get("layout"), category=given.get("categories"), **words)
    for name in ("encoder_weights", "vgg_weights"):
        if name in given:
            given[name] = parse_weights(given[name], "--" + name.replace("_", "-"))
    return TrainConfig.for_mode(mode, **given)


def segmenter_config(options: dict[str, Any]) -> SegmenterConfig:
    """The SegmenterConfig that `train-segmenter` builds from its options (None: not set)."""
    from clothes_extractor.config import parse_size
    from clothes_extractor.data.viton import parse_garment_labels
    from clothes_extractor.train.config import parse_weights
    from clothes_extractor.train.segmenter import SegmenterConfig

    given = _given(options)
    augment = given.pop("augment", False)
    if augment:
        given["flip"] = 0.5  # half the samples
    parsers = {
        "size": parse_size, "label_set": str.lower, "arch": str.lower, "garment_labels": parse_garment_labels,
        "encoder_weights": lambda name: parse_weights(name, "--encoder-weights"),
    }
    given = {k: parsers[k](v) if k in parsers else v for k, v in given.items()}
    return SegmenterConfig(**given)


def _run_training(build, task: str, options: dict[str, Any]):
    """Build the config (or read the run's on --resume), train, and return the TrainResult; None
    on a rank other than 0 under torchrun (one report)."""
    from clothes_extractor.train.loop import TrainingInterrupted, train
    from clothes_extractor.train.runs import resume_config

    resume, overwrite = options.pop("resume"), options.pop("overwrite")
    cfg = resume_config(resume, task, **options) if resume is not None else build(options)
    try:
        result = train(cfg, resume=resume is not None, overwrite=overwrite)
    except TrainingInterrupted as exc:
        _stderr().print(f"[yellow]{exc}[/]")
        raise typer.Exit(130) from None
    return result if os.environ.get("RANK", "0") == "0" else None


def _report_files(result) -> None:
    typer.echo(f"checkpoints: {result.run / 'best.safetensors'}  {result.run / 'last.safetensors'}")
    typer.echo(f"metrics: {result.run / 'metrics.jsonl'}  pictures: {result.run / 'samples'}")


def _train_generator(mode: str, options: dict[str, Any]) -> None:
    result = _run_training(functools.partial(generator_config, mode), "generator", options)
    if result is None:
        return
    typer.echo(f"done: {result.epochs_done} epoch(s), {result.steps} steps, best val {result.best_key} {result.best:.4f}")
    _report_files(result)


_HELP_TRAIN_COMMON = """
Reads the lists written by `split` (`train_ids.txt`, `val_ids.txt` in the data set root). Each
epoch validates (L1, SSIM, PSNR), appends to `RUN/metrics.jsonl`, draws
`RUN/samples/epoch_NNN.png` (input | prediction | target) and saves `RUN/last.safetensors` and
`RUN/best.safetensors` (lowest validation L1). Ctrl-C saves a resumable checkpoint;
`--resume RUN` continues exactly where it stopped. Uses CUDA when available (bf16 autocast,
channels_last, batch 32, torch.compile for runs of 5,000 steps or more); on a CPU: fp32,
`--threads` threads (idle threads spin briefly, then sleep: GOMP_SPINCOUNT=10000 unless set),
batch 8 unless `--bs`, torch.compile for runs of 2,000 steps or more (`--no-compile` to skip).

Tracking: `--report-to tensorboard,wandb` logs the same scalars, pictures and configuration to
TensorBoard and/or Weights & Biases (extras `.[tensorboard]`, `.[wandb]`); W&B logs offline
without a login (`wandb sync` uploads later), its run id kept in `RUN/wandb.json` for `--resume`.

Several GPUs: `torchrun --nproc_per_node=N --no-python clothes-extractor train-gan ...` trains with DDP
(NCCL; gloo on CPU); `--bs` is per process; only rank 0 writes. The discriminator's batch norm
becomes SyncBatchNorm on multi-GPU runs (use `--norm-d instance` to avoid batch statistics).

Pretrained weights: `--encoder-weights imagenet` (smp, Hugging Face cache) and the VGG16 of the
perceptual loss (torch hub cache) are used when present; without them the command stops at
once and names the file, or train with `--encoder-weights none` / `--perceptual 0`.
"""


def _mode_default(mode: str, name: str) -> str:
    return f"{MODE_DEFAULTS[mode][name]:g}"


@app.command(
    "train-unet",
    help="Train the UNet generator alone with L1 + perceptual + SSIM (+ alpha) losses.\n" + _HELP_TRAIN_COMMON,
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-unet --data data/zalando-low-res --size 224 --epochs 200 --bs 32\n\n"
        "  clothes-extractor train-unet --data data/zalando-low-res --encoder resnet18 --encoder-weights none --perceptual 0\n\n"
        "  clothes-extractor train-unet --resume runs/train-unet"
    ),
)
@handle_errors
def train_unet_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: _SizeOpt = None,
    labels: _LabelsOpt = None,
    background: _BackgroundOpt = None,
    framing: _FramingOpt = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: _AugmentOpt = False,
    prepared: _PreparedOpt = None,
    workers: _WorkersOpt = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    arch: _ArchOpt = None,
    init: _InitOpt = None,
    epochs: _EpochsOpt = None,
    bs: _BsOpt = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help=f"Generator learning rate [default: {_mode_default('unet', 'lr')}].", rich_help_panel=_RUN_PANEL)] = None,
    l1: Annotated[Optional[float], typer.Option("--l1", min=0, help=f"Weight of L1 [default: {_mode_default('unet', 'l1')}].", rich_help_panel=_LOSS_PANEL)] = None,
    perceptual: Annotated[Optional[float], typer.Option("--perceptual", min=0, help=f"Weight of the VGG16 perceptual loss (0: off, no VGG needed) [default: {_mode_default('unet', 'perceptual')}].", rich_help_panel=_LOSS_PANEL)] = None,
    ssim: Annotated[Optional[float], typer.Option("--ssim", min=0, help=f"Weight of the SSIM loss [default: {_mode_default('unet', 'ssim')}].", rich_help_panel=_LOSS_PANEL)] = None,
    alpha: _AlphaOpt = None,
    alpha_dice: _AlphaDiceOpt = None,
    vgg_weights: _VggWeightsOpt = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-unet].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = None,
    threads: _ThreadsOpt = None,
    report_to: _ReportToOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    _train_generator("unet", dict(locals()))


@app.command(
    "train-gan",
    help="Train pix2pix: the UNet generator against a conditional PatchGAN, with lambda x L1 (+ optional perceptual, SSIM).\n" + _HELP_TRAIN_COMMON,
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-gan --data data/zalando-low-res --epochs 200 --bs 32\n\n"
        "  clothes-extractor train-gan --data data/zalando-low-res --size 512x384 --gan-mode lsgan --encoder-weights none\n\n"
        "  clothes-extractor train-gan --data data/viton --size 256x192 --framing fill --arch warp --init clothes_extractor/pretrained/generator.safetensors\n\n"
        "  clothes-extractor train-gan --data data/zalando-low-res --report-to tensorboard,wandb\n\n"
        "  clothes-extractor train-gan --resume runs/train-gan --epochs 300"
    ),
)
@handle_errors
def train_gan_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: _SizeOpt = None,
    labels: _LabelsOpt = None,
    background: _BackgroundOpt = None,
    framing: _FramingOpt = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: _AugmentOpt = False,
    prepared: _PreparedOpt = None,
    workers: _WorkersOpt = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    arch: _ArchOpt = None,
    init: _InitOpt = None,
    norm_d: Annotated[Optional[str], typer.Option("--norm-d", help="Discriminator norm: batch or instance [default: batch].", rich_help_panel=_MODEL_PANEL)] = None,
    epochs: _EpochsOpt = None,
    bs: _BsOpt = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help=f"Generator learning rate [default: {_mode_default('gan', 'lr')}]; Adam betas (0.5, 0.999).", rich_help_panel=_RUN_PANEL)] = None,
    lr_d: Annotated[Optional[float], typer.Option("--lr-d", help="Discriminator learning rate [default: 0.0002].", rich_help_panel=_RUN_PANEL)] = None,
    lambda_l1: Annotated[Optional[float], typer.Option("--lambda-l1", "--l1", min=0, help=f"Weight of L1 (pix2pix lambda) [default: {_mode_default('gan', 'l1')}].", rich_help_panel=_LOSS_PANEL)] = None,
    perceptual: Annotated[Optional[float], typer.Option("--perceptual", min=0, help=f"Weight of the VGG16 perceptual loss (0: off) [default: {_mode_default('gan', 'perceptual')}].", rich_help_panel=_LOSS_PANEL)] = None,
    ssim: Annotated[Optional[float], typer.Option("--ssim", min=0, help=f"Weight of the SSIM loss [default: {_mode_default('gan', 'ssim')}].", rich_help_panel=_LOSS_PANEL)] = None,
    alpha: _AlphaOpt = None,
    alpha_dice: _AlphaDiceOpt = None,
    gan_mode: Annotated[Optional[str], typer.Option("--gan-mode", help="vanilla (BCE) or lsgan [default: vanilla].", rich_help_panel=_LOSS_PANEL)] = None,
    vgg_weights: _VggWeightsOpt = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-gan].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = None,
    threads: _ThreadsOpt = None,
    report_to: _ReportToOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    _train_generator("gan", dict(locals()))


@app.command(
    "train-segmenter",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-segmenter --data data/vitonhd-256 --size 256x192 --epochs 50\n\n"
        "  clothes-extractor train-segmenter --data data/vitonhd-256 --labels viton13 --arch fpn --encoder resnet50\n\n"
        "  clothes-extractor train-segmenter --resume runs/train-segmenter --epochs 80"
    ),
)
@handle_errors
def train_segmenter_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: Annotated[Optional[str], typer.Option("--size", help="Model size: an int or HxW, multiples of 32 (VITON-HD's 3:4 by default) [default: 256x192].", rich_help_panel=_TRAIN_PANEL)] = None,
    label_set: Annotated[Optional[str], typer.Option("--labels", help="Label set: cihp20 (the 20 parse labels) or viton13 (VITON-HD's 13 groups) [default: cihp20].", rich_help_panel=_TRAIN_PANEL)] = None,
    garment_labels: Annotated[Optional[str], typer.Option("--garment", help="Garment parse labels whose IoU validation reports, e.g. 5 or 5,6,7 [default: 5].", rich_help_panel=_TRAIN_PANEL)] = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Horizontal flips (half the samples), left and right labels swapped.", rich_help_panel=_TRAIN_PANEL)] = False,
    workers: _WorkersOpt = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="smp architecture: unet, unetplusplus, fpn, deeplabv3plus or segformer [default: unet].", rich_help_panel=_MODEL_PANEL)] = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    ce: Annotated[Optional[float], typer.Option("--ce", min=0, help="Weight of cross-entropy [default: 1.0].", rich_help_panel=_LOSS_PANEL)] = None,
    dice: Annotated[Optional[float], typer.Option("--dice", min=0, help="Weight of the Dice loss [default: 1.0].", rich_help_panel=_LOSS_PANEL)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs [default: 50; on --resume: the run's].", rich_help_panel=_RUN_PANEL)] = None,
    bs: Annotated[Optional[int], typer.Option("--bs", min=1, help="Batch size (per process under torchrun) [default: 16].", rich_help_panel=_RUN_PANEL)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0, help="AdamW learning rate (weight decay 1e-4); constant for half the epochs, then linear to 0 [default: 0.0003].", rich_help_panel=_RUN_PANEL)] = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-segmenter].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = None,
    threads: _ThreadsOpt = None,
    report_to: _ReportToOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    """Train a garment segmenter on the photos and their `image-parse-v3` parse maps.

    An smp model (`--arch`, `--encoder`) learns the 20 parse labels (`--labels cihp20`) or
    VITON-HD's 13 groups (`--labels viton13`: upper = upper-clothes + dress + coat, ...) with
    cross-entropy plus Dice. The photo keeps its aspect ratio (padded to the model size). Each
    epoch validates (per-class IoU, mean IoU, IoU of the garment labels, pixel accuracy),
    appends to `RUN/metrics.jsonl`, draws `RUN/samples/epoch_NNN.png` (photo | true parse |
    predicted parse) and saves `RUN/last.safetensors` and `RUN/best.safetensors` (highest mean
    IoU): give it to `segment`, `extract --segmenter` and `evaluate`. Ctrl-C saves a resumable
    checkpoint; `--resume RUN` continues exactly; `torchrun` runs it on several GPUs.
    """
    result = _run_training(segmenter_config, "segmenter", dict(locals()))
    if result is None:
        return
    last = result.history[-1]["val"] if result.history else {}
    garment_iou = last.get("garment_iou")
    garment_text = f" (last epoch: garment IoU {garment_iou:.4f})" if isinstance(garment_iou, float) else ""
    typer.echo(f"done: {result.epochs_done} epoch(s), {result.steps} steps, best val mean IoU {result.best:.4f}{garment_text}")
    _report_files(result)


# --- evaluation and inference --------------------------------------------------------------------
