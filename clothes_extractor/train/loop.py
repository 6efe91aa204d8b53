"""One flat training loop for `train-unet` and `train-gan`, read top to bottom.

Per epoch: train steps (a rich progress bar with live losses), validation (losses, SSIM, PSNR),
one line of ``metrics.jsonl``, a picture ``samples/epoch_NNN.png`` (input | prediction | target
for fixed validation samples), checkpoints ``last`` and ``best`` (by validation L1), and
TensorBoard scalars and images when tensorboard is installed.

Run folder::

    config.json               the TrainConfig (what --resume reads)
    last.safetensors/.json    generator weights + metadata after the latest epoch
    best.safetensors/.json    the same for the epoch with the lowest validation L1
    last.state.pt             optimisers, schedulers, discriminator, RNG, epoch (for --resume)
    metrics.jsonl             one JSON line per epoch
    samples/epoch_NNN.png     input | prediction | target

Resume is exact at epoch boundaries: shuffling and augmentation are seeded by (seed, epoch).
An interrupted epoch (Ctrl-C) is saved with the weights of the moment and repeated from its
start on --resume.
"""

from __future__ import annotations

import json
import math
import random
import signal
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from clothes_extractor import __version__
from clothes_extractor.checkpoint import load_into, load_state, load_state_dict, read_meta, save_checkpoint, save_state
from clothes_extractor.data.dataset import VitonDataset, to_uint8
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.errors import ClothesExtractorError, ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text, save_image
from clothes_extractor.losses import PerceptualLoss
from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
from clothes_extractor.models.generator import GeneratorConfig, build_generator
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.steps import Batch, LossModules, gan_step, generator_losses, unet_step


class TrainingDiverged(ClothesExtractorError):
    """A loss became NaN or infinite."""


class TrainingInterrupted(ClothesExtractorError):
    """Ctrl-C: a resumable checkpoint was saved."""


@dataclass
class TrainResult:
    run: Path
    epochs_done: int
    steps: int
    best_val_l1: float
    history: list[dict[str, Any]] = field(default_factory=list)


def lr_factor(epoch: int, epochs: int) -> float:
    """pix2pix's linear policy: constant for the first half of the epochs, then linear to zero."""
    keep = epochs // 2
    if epoch < keep:
        return 1.0
    return max(0.0, 1.0 - (epoch - keep) / max(1, epochs - keep))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def generator_config(cfg: TrainConfig) -> GeneratorConfig:
    return GeneratorConfig(encoder=cfg.encoder, encoder_weights=cfg.encoder_weights)


def build_models(cfg: TrainConfig, device: torch.device, channels_last: bool):
    generator = build_generator(generator_config(cfg))
    discriminator = build_discriminator(DiscriminatorConfig(norm=cfg.norm_d)) if cfg.mode == "gan" else None
    for m in (generator, discriminator):
        if m is not None:
            m.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    return generator, discriminator


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def _sigint_flag():
    """Turn the first Ctrl-C into a flag the loop checks between steps; a second one kills."""
    flag = {"set": False}

    def handler(signum, frame):
        if flag["set"]:
            raise KeyboardInterrupt
        flag["set"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (some test runners): no handler, Ctrl-C as usual
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is an optional extra: silently nothing without it
        return None
    return SummaryWriter(str(run / "tensorboard"))


def _datasets(cfg: TrainConfig) -> tuple[VitonDataset, VitonDataset]:
    for path in (cfg.train_list_path, cfg.val_list_path):
        if not path.is_file():
            raise DataError(
                f"id list {path} not found; run `clothes-extractor split --data {cfg.data}` first "
                "(or pass --train-list/--val-list)"
            )
    augment = AugmentConfig() if cfg.augment else None
    train = VitonDataset(cfg.data, cfg.split, cfg.train_list_path, cfg.preprocess, augment)
    val = VitonDataset(cfg.data, cfg.split, cfg.val_list_path, cfg.preprocess, None)
    overlap = set(train.ids) & set(val.ids)
    if overlap:
        raise DataError(f"{len(overlap)} id(s) are in both the train and the validation list, e.g. {sorted(overlap)[0]}")
    return train, val


def _loader(ds: VitonDataset, cfg: TrainConfig, *, shuffle: bool, seed: int, device: torch.device) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(ds) > cfg.batch_size,  # no ragged last batch in training
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        generator=generator,
        persistent_workers=False,
    )


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> Batch:
    fmt = torch.channels_last if channels_last else torch.preserve_format
    move = lambda t: t.to(device, non_blocking=True, memory_format=fmt)  # noqa: E731
    return Batch(move(batch["input"]), move(batch["target"]), move(batch["alpha"]))


@torch.no_grad()
def validate(generator, loader: DataLoader, losses: LossModules, cfg: TrainConfig, device, autocast, channels_last):
    """Mean validation losses plus SSIM and PSNR (on [0, 1] images) over the whole loader."""
    import kornia

    was_training = generator.training
    generator.eval()
    sums: dict[str, float] = defaultdict(float)
    n = 0
    for raw in loader:
        batch = _to_device(raw, device, channels_last)
        with autocast():
            rgb, alpha_logit = generator(batch.input)
        rgb, alpha_logit = rgb.float(), alpha_logit.float()
        terms = generator_losses(rgb, alpha_logit, batch, losses, cfg)
        pred01, target01 = (rgb + 1) / 2, (batch.target + 1) / 2
        b = batch.input.shape[0]
        for k, v in terms.items():
            sums[k] += float(v) * b
        sums["ssim"] += float(kornia.metrics.ssim(pred01, target01, 11).mean()) * b
        sums["psnr"] += float(kornia.metrics.psnr(pred01.clamp(0, 1), target01, 1.0)) * b
        n += b
    generator.train(was_training)
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def sample_grid(generator, ds: VitonDataset, count: int, device, channels_last: bool) -> np.ndarray:
    """(H', W', 3) uint8: one row per validation sample, input | prediction | target; tiles of
    at least 128 pixels."""
    was_training = generator.training
    generator.eval()
    items = [ds[i] for i in range(min(count, len(ds)))]
    x = torch.stack([it["input"] for it in items]).to(device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    rgb, _ = generator(x)
    generator.train(was_training)
    rows = [
        np.concatenate([to_uint8(it["input"]), to_uint8(p), to_uint8(it["target"])], axis=1)
        for it, p in zip(items, rgb.float().cpu())
    ]
    grid = np.concatenate(rows, axis=0)
    # Small training sizes make tiny pictures: enlarge them (nearest, so pixels stay honest).
    k = math.ceil(128 / items[0]["input"].shape[1])
    return grid.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else grid


def _checkpoint_meta(cfg: TrainConfig, epoch: int, step: int, metrics: dict) -> dict[str, Any]:
    return {
        "kind": "generator",
        "clothes_extractor_version": __version__,
        "generator": {**generator_config(cfg).to_dict(), "encoder_weights": None},
        "preprocess": cfg.preprocess.to_dict(),
        "train": cfg.to_dict(),
        "epoch": epoch,
        "step": step,
        "metrics": metrics,
    }


def _save(run: Path, name: str, generator, discriminator, opts, scheds, cfg, epoch, step, metrics, best, with_state):
    save_checkpoint(run / f"{name}.safetensors", generator.state_dict(), _checkpoint_meta(cfg, epoch, step, metrics))
    if with_state:
        state = {
            "epoch": epoch,
            "step": step,
            "best_val_l1": best,
            "optimizers": {k: o.state_dict() for k, o in opts.items()},
            "schedulers": {k: s.state_dict() for k, s in scheds.items()},
            "rng": _rng_state(),
        }
        if discriminator is not None:
            state["discriminator"] = discriminator.state_dict()
        save_state(run / f"{name}.state.pt", state)


def check_run_folder(cfg: TrainConfig, overwrite: bool) -> None:
    run = Path(cfg.out)
    if run.exists() and any(run.iterdir()) and not overwrite:
        raise ConfigError(f"run folder {run} is not empty; continue it with --resume {run}, or pass --overwrite or another --out")


def prepare_run(cfg: TrainConfig, overwrite: bool) -> Path:
    check_run_folder(cfg, overwrite)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "config.json", cfg.to_json() + "\n")
    if overwrite:
        for stale in ("metrics.jsonl", "last.state.pt", "best.safetensors", "best.json", "last.safetensors", "last.json"):
            (run / stale).unlink(missing_ok=True)
    return run


def load_run_config(run: str | Path) -> TrainConfig:
    path = Path(run) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run} is not a training run folder (no config.json); --resume takes the --out of an earlier run")
    return TrainConfig.from_dict(json.loads(path.read_text()))


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, console=None) -> TrainResult:
    """Train the generator (and discriminator) as ``cfg`` says; see the module docstring."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    channels_last = cuda
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext

    if not resume:
        check_run_folder(cfg, overwrite)
    # Data, models and losses first: a missing file or pretrained weight fails before the run
    # folder exists, so the corrected command can use the same --out.
    train_ds, val_ds = _datasets(cfg)
    _seed_everything(cfg.seed)
    generator, discriminator = build_models(cfg, device, channels_last)
    losses = LossModules.build(cfg).to(device)
    run = Path(cfg.out) if resume else prepare_run(cfg, overwrite)

    betas = (cfg.beta1, 0.999)
    opts = {"g": torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas)}
    if discriminator is not None:
        opts["d"] = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=betas)
    scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda e: lr_factor(e, cfg.epochs)) for k, o in opts.items()}

    start_epoch, step, best = 0, 0, math.inf
    if resume:
        state = load_state(run / "last.state.pt")
        ckpt = run / "last.safetensors"
        read_meta(ckpt)
        load_into(generator, load_state_dict(ckpt, device), ckpt)
        if discriminator is not None:
            load_into(discriminator, state["discriminator"], run / "last.state.pt")
        for k, o in opts.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in scheds.items():
            s.load_state_dict(state["schedulers"][k])
        _set_rng_state(state["rng"])
        start_epoch, step, best = state["epoch"], state["step"], state["best_val_l1"]
        console.print(f"resuming {run} at epoch {start_epoch + 1}/{cfg.epochs}, step {step}")
        if start_epoch >= cfg.epochs:
            console.print(f"nothing to do: {run} already trained {start_epoch} of {cfg.epochs} epochs (raise --epochs)")

    (run / "samples").mkdir(exist_ok=True)
    writer = _tensorboard(run)
    val_loader = _loader(val_ds, cfg, shuffle=False, seed=cfg.seed, device=device)
    history: list[dict[str, Any]] = []
    console.print(
        f"training {cfg.mode} ({cfg.encoder}) on {len(train_ds)} samples, validating on {len(val_ds)}, "
        f"size {cfg.preprocess.size[0]}x{cfg.preprocess.size[1]}, device {device}, run {run}"
    )
    progress = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
        console=console, transient=False,
    )
    epoch = start_epoch
    try:
        with _sigint_flag() as interrupted, progress:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
                # Shuffling and augmentation depend only on (seed, epoch): resume is exact.
                torch.manual_seed(cfg.seed * 100_003 + epoch)
                loader = _loader(train_ds, cfg, shuffle=True, seed=cfg.seed * 100_003 + epoch, device=device)
                generator.train()
                if discriminator is not None:
                    discriminator.train()
                sums: dict[str, float] = defaultdict(float)
                n_steps = 0
                started = time.perf_counter()
                task = progress.add_task("train", total=len(loader), epoch=f"{epoch + 1}/{cfg.epochs}", losses="")
                for raw in loader:
                    batch = _to_device(raw, device, channels_last)
                    if discriminator is None:
                        terms = unet_step(generator, opts["g"], batch, losses, cfg, autocast)
                    else:
                        terms = gan_step(generator, discriminator, opts["g"], opts["d"], batch, losses, cfg, autocast)
                    values = {k: float(v) for k, v in terms.items()}
                    bad = [k for k, v in values.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingDiverged(
                            f"loss {bad[0]} became {values[bad[0]]} at epoch {epoch + 1}, step {step + 1}; "
                            f"stopped. {run} keeps the last good checkpoint (epoch {epoch}); try a lower "
                            "--lr, or check the data"
                        )
                    for k, v in values.items():
                        sums[k] += v
                    n_steps += 1
                    step += 1
                    progress.update(task, advance=1, losses="  ".join(f"{k} {v:.3f}" for k, v in values.items()))
                    if interrupted["set"]:
                        _save(run, "last", generator, discriminator, opts, scheds, cfg, epoch, step, {}, best, True)
                        raise TrainingInterrupted(
                            f"interrupted at epoch {epoch + 1}, step {step}: saved {run}/last.safetensors; "
                            f"continue with --resume {run} (epoch {epoch + 1} restarts)"
                        )
                    if cfg.max_steps is not None and step >= cfg.max_steps:
                        break
                progress.remove_task(task)
                lr = opts["g"].param_groups[0]["lr"]
                for s in scheds.values():
                    s.step()

                val = validate(generator, val_loader, losses, cfg, device, autocast, channels_last)
                record = {
                    "epoch": epoch + 1,
                    "step": step,
                    "lr": lr,
                    "seconds": round(time.perf_counter() - started, 3),
                    "train": {k: v / max(n_steps, 1) for k, v in sums.items()},
                    "val": val,
                }
                history.append(record)
                with open(run / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                grid = sample_grid(generator, val_ds, cfg.sample_count, device, channels_last)
                from PIL import Image

                save_image(Image.fromarray(grid), run / "samples" / f"epoch_{epoch + 1:03d}.png")
                metrics = {"val": val, "train": record["train"]}
                improved = val["l1"] < best
                best = min(best, val["l1"])
                _save(run, "last", generator, discriminator, opts, scheds, cfg, epoch + 1, step, metrics, best, True)
                if improved:
                    _save(run, "best", generator, discriminator, opts, scheds, cfg, epoch + 1, step, metrics, best, False)
                if writer is not None:
                    for part in ("train", "val"):
                        for k, v in record[part].items():
                            writer.add_scalar(f"{part}/{k}", v, epoch + 1)
                    writer.add_image("samples", grid, epoch + 1, dataformats="HWC")
                    writer.flush()
                console.print(
                    f"epoch {epoch + 1}/{cfg.epochs}  step {step}  "
                    + "  ".join(f"train {k} {v:.4f}" for k, v in record["train"].items())
                    + f"  val l1 {val['l1']:.4f}  ssim {val['ssim']:.4f}  psnr {val['psnr']:.2f}"
                    + ("  (best)" if improved else "")
                )
    finally:
        if writer is not None:
            writer.close()
    epochs_done = len(history) + start_epoch
    return TrainResult(run, epochs_done, step, best, history)
