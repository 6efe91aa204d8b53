"""One flat training loop for every task (`train-unet`, `train-gan`, `train-segmenter`).

Per epoch: train steps (a rich progress bar with live losses), validation, one line of
``metrics.jsonl``, a picture ``samples/epoch_NNN.png``, checkpoints ``last`` and ``best`` (by
the task's validation metric), and TensorBoard scalars and images when tensorboard is installed.

Run folder::

    config.json               the run's configuration (what --resume reads)
    last.safetensors/.json    weights + metadata after the latest epoch
    best.safetensors/.json    the same for the best validation epoch
    last.state.pt             optimisers, schedulers, other networks, RNG, epoch (for --resume)
    metrics.jsonl             one JSON line per epoch
    samples/epoch_NNN.png     the task's picture of fixed validation samples

Resume is exact at epoch boundaries: shuffling and augmentation are seeded by (seed, epoch).
An interrupted epoch (Ctrl-C) is saved with the weights of the moment and repeated from its
start on --resume.

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each process trains a DDP replica on its
share of the data (DistributedSampler; NCCL on GPUs, gloo on CPU); ``batch_size`` is per
process. Validation sums are reduced across processes; only rank 0 writes files and draws
progress bars. A stop (Ctrl-C, NaN) on any rank stops every rank at the same step.
"""

from __future__ import annotations

import json
import math
import os
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
from torch import nn
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from clothes_extractor.checkpoint import load_into, load_state, load_state_dict, read_meta, save_checkpoint, save_state
from clothes_extractor.errors import ClothesExtractorError, ConfigError
from clothes_extractor.fileio import atomic_write_text, save_image
from clothes_extractor.runtime import resolve_device
from clothes_extractor.train.config import DEFAULT_BATCH_SIZE, LoopConfig, TrainConfig
from clothes_extractor.train.task import TrainTask


class TrainingDiverged(ClothesExtractorError):
    """A loss became NaN or infinite."""


class TrainingInterrupted(ClothesExtractorError):
    """Ctrl-C: a resumable checkpoint was saved."""


@dataclass
class TrainResult:
    run: Path
    epochs_done: int
    steps: int
    best: float  # the best value of the task's best_key
    best_key: str
    history: list[dict[str, Any]] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)  # the primary network's final weights


def lr_factor(epoch: int, epochs: int) -> float:
    """pix2pix's linear policy: constant for the first half of the epochs, then linear to zero."""
    keep = epochs // 2
    if epoch < keep:
        return 1.0
    return max(0.0, 1.0 - (epoch - keep) / max(1, epochs - keep))


# channels_last on the CPU: measured on the default models' recipe (resnet18 UNet, 256x192,
# benchmarks/cpu_recipe.py, section layout), it used the same CPU seconds per step as the
# contiguous layout, so the CPU keeps contiguous tensors (and its exact results). On CUDA it feeds
# the tensor cores (with bf16 autocast).
CPU_CHANNELS_LAST = False


def device_settings(device: torch.device, cfg: LoopConfig):
    """What a run uses on ``device``: (channels_last, autocast factory, intra-op threads).

    CUDA: channels_last, bf16 autocast for the networks (losses in fp32), cudnn.benchmark.
    CPU: contiguous tensors (:data:`CPU_CHANNELS_LAST`), fp32, ``cfg.threads`` threads (default:
    torch's, the machine's cores); OpenMP's wait policy is the process's
    (:mod:`clothes_extractor.runtime`: the command line makes idle threads sleep). ``--compile``
    stays off unless asked: on the CPU its compilation takes minutes (break-even measured by
    benchmarks/cpu_recipe.py, section compile).
    """
    from clothes_extractor.runtime import cpu_threads

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return True, (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), torch.get_num_threads()
    return CPU_CHANNELS_LAST, nullcontext, cpu_threads(cfg.threads)


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_name: str) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, resolve_device(device_name))
    import torch.distributed as dist

    device = resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def _all_reduce(tensor: torch.Tensor, ctx: Dist) -> torch.Tensor:
    if ctx.active:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _average_buffers(modules: dict[str, nn.Module], ctx: Dist) -> None:
    """Average floating buffers (batch-norm running statistics) across processes.

    DDP copies rank 0's buffers into every replica at each forward, but the last forward of an
    epoch updates each replica's statistics from its own batch: averaging them at the epoch's end
    makes the replicas identical again and the statistics those of the global batch.
    """
    if not ctx.active:
        return
    for m in modules.values():
        for buf in m.buffers():
            if buf.is_floating_point():
                _all_reduce(buf.data, ctx).div_(ctx.world)


def _barrier(ctx: Dist) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()


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


def _loader(ds, cfg: LoopConfig, ctx: Dist, *, train: bool, epoch: int = 0, task: TrainTask | None = None) -> DataLoader:
    """Train: every process gets its shuffled share, seeded by (seed, epoch); the same number of
    batches on every rank. Validation: a contiguous unpadded share (exact sums)."""
    pin = ctx.device.type == "cuda"
    if not train:
        # Every rank needs a non-empty share (the reduction expects the same accumulators from
        # all); with fewer samples than ranks each validates everything: means are unchanged.
        if ctx.active and len(ds) >= ctx.world:
            ds = Subset(ds, list(range(ctx.rank, len(ds), ctx.world)))
        return DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, pin_memory=pin)
    sampler = DistributedSampler(ds, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.seed, drop_last=ctx.active)
    sampler.set_epoch(epoch)
    drop_last = len(sampler) > cfg.batch_size  # no ragged last batch in training
    own = task.train_loader(ds, sampler, drop_last, pin)
    if own is not None:
        return own
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # worker seeds
    return DataLoader(
        ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, pin_memory=pin,
        drop_last=drop_last, generator=generator,
    )


def _reduce_sums(sums: dict[str, torch.Tensor], ctx: Dist) -> dict[str, torch.Tensor]:
    """Sum each accumulator (any shape) across processes, in one reduction."""
    keys = sorted(sums)
    flat = _all_reduce(torch.cat([sums[k].double().reshape(-1) for k in keys]).to(ctx.device), ctx).cpu()
    out, offset = {}, 0
    for k in keys:
        n = sums[k].numel()
        out[k] = flat[offset: offset + n].reshape(sums[k].shape)
        offset += n
    return out


def check_run_folder(cfg: LoopConfig, overwrite: bool) -> None:
    run = Path(cfg.out)
    if run.exists() and any(run.iterdir()) and not overwrite:
        raise ConfigError(f"run folder {run} is not empty; continue it with --resume {run}, or pass --overwrite or another --out")


def prepare_run(cfg: LoopConfig, overwrite: bool) -> Path:
    check_run_folder(cfg, overwrite)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for stale in ("metrics.jsonl", "last.state.pt", "best.safetensors", "best.json", "last.safetensors", "last.json"):
            (run / stale).unlink(missing_ok=True)
    atomic_write_text(run / "config.json", cfg.to_json() + "\n")
    return run


def load_run_config(run: str | Path) -> LoopConfig:
    """The configuration saved in a run folder, as the class of its task."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run} is not a training run folder (no config.json); --resume takes the --out of an earlier run")
    try:
        data = json.loads(path.read_text())
        task = data.get("task", "generator")
        if task == "segmenter":
            from clothes_extractor.train.segmenter import SegmenterConfig

            return SegmenterConfig.from_dict(data)
        return TrainConfig.from_dict(data)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable run configuration ({exc})") from None


def task_for(cfg: LoopConfig) -> TrainTask:
    if cfg.task == "segmenter":
        from clothes_extractor.train.segmenter import SegmenterTask

        return SegmenterTask(cfg)
    from clothes_extractor.train.generator import GeneratorTask

    return GeneratorTask(cfg)  # type: ignore[arg-type]


def _wrap(modules: dict[str, nn.Module], cfg: LoopConfig, ctx: Dist) -> dict[str, nn.Module]:
    """DDP across processes and/or torch.compile; the raw modules stay what is saved and drawn."""
    wrapped = {}
    for name, m in modules.items():
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            m = DDP(m, device_ids=ids)
        if cfg.compile:
            m = torch.compile(m)
        wrapped[name] = m
    return wrapped


def _save(run: Path, name: str, task: TrainTask, modules, opts, scheds, epoch, step, metrics, best, with_state) -> None:
    meta = {**task.meta(), "train": task.cfg.to_dict(), "epoch": epoch, "step": step, "metrics": metrics}
    save_checkpoint(run / f"{name}.safetensors", modules[task.primary].state_dict(), meta)
    if with_state:
        save_state(run / f"{name}.state.pt", {
            "epoch": epoch,
            "step": step,
            "best": best,
            "optimizers": {k: o.state_dict() for k, o in opts.items()},
            "schedulers": {k: s.state_dict() for k, s in scheds.items()},
            "modules": {k: m.state_dict() for k, m in modules.items() if k != task.primary},
            "rng": _rng_state(),
        })


def train(cfg: LoopConfig, *, resume: bool = False, overwrite: bool = False, console=None) -> TrainResult:
    """Train the task that ``cfg`` describes (see :func:`fit`)."""
    return fit(task_for(cfg), resume=resume, overwrite=overwrite, console=console)


def fit(task: TrainTask, *, resume: bool = False, overwrite: bool = False, console=None) -> TrainResult:
    """Run the epochs of ``task``; see the module docstring."""
    ctx = init_distributed(task.cfg.device)
    if task.cfg.batch_size is None:  # the device's default, saved in config.json as a number
        task.cfg = task.cfg.with_changes(batch_size=DEFAULT_BATCH_SIZE.get(ctx.device.type, DEFAULT_BATCH_SIZE["cpu"]))
    try:
        return _fit(task, ctx, resume, overwrite, console)
    finally:
        if ctx.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _fit(task: TrainTask, ctx: Dist, resume: bool, overwrite: bool, console) -> TrainResult:
    from PIL import Image
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cfg = task.cfg
    console = console or Console(stderr=True)
    device = ctx.device
    cuda = device.type == "cuda"
    channels_last, autocast, threads = device_settings(device, cfg)
    say = console.print if ctx.main else (lambda *a, **k: None)

    if not resume:
        check_run_folder(cfg, overwrite)  # every rank: an error must stop them all, not hang one
    # Data, networks and losses first: a missing file or pretrained weight fails before the run
    # folder exists, so the corrected command can use the same --out.
    train_ds, val_ds = task.datasets()
    _seed_everything(cfg.seed)
    modules = task.build(device, channels_last, ctx.active)
    opts = task.optimizers(modules)
    scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda e: lr_factor(e, cfg.epochs)) for k, o in opts.items()}
    run = Path(cfg.out)
    if not resume and ctx.main:
        prepare_run(cfg, overwrite)
    _barrier(ctx)

    start_epoch, step = 0, 0
    best = -math.inf if task.higher_is_better else math.inf
    if resume:
        state = load_state(run / "last.state.pt")
        ckpt = run / "last.safetensors"
        meta = read_meta(ckpt)
        if meta.get("kind") != task.kind:
            raise ConfigError(f"{ckpt} holds a {meta.get('kind')!r} model but the run trains a {task.kind!r}")
        load_into(modules[task.primary], load_state_dict(ckpt, device), ckpt)
        for name, sd in state.get("modules", {}).items():
            load_into(modules[name], sd, run / "last.state.pt")
        for k, o in opts.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in scheds.items():
            s.load_state_dict(state["schedulers"][k])
        _set_rng_state(state["rng"])
        start_epoch, step, best = state["epoch"], state["step"], state["best"]
        say(f"resuming {run} at epoch {start_epoch + 1}/{cfg.epochs}, step {step}")
        if start_epoch >= cfg.epochs:
            say(f"nothing to do: {run} already trained {start_epoch} of {cfg.epochs} epochs (raise --epochs)")

    wrapped = _wrap(modules, cfg, ctx)
    writer = _tensorboard(run) if ctx.main else None
    if ctx.main:
        (run / "samples").mkdir(exist_ok=True)
    val_loader = _loader(val_ds, cfg, ctx, train=False)
    history: list[dict[str, Any]] = []
    procs = f", {ctx.world} processes x batch {cfg.batch_size}" if ctx.active else ""
    cpu = "" if cuda else f" ({threads} threads, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')})"
    say(f"training {task.kind} on {len(train_ds)} samples, validating on {len(val_ds)}, device {device}{cpu}{procs}, run {run}")
    progress = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
        console=console, transient=False, disable=not ctx.main,
    )
    try:
        with _sigint_flag() as interrupted, progress:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
                # Shuffling and augmentation depend only on (seed, epoch, rank): resume is exact.
                torch.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + ctx.rank)
                loader = _loader(train_ds, cfg, ctx, train=True, epoch=epoch, task=task)
                for m in modules.values():
                    m.train()
                sums: dict[str, float] = defaultdict(float)
                n_steps = 0
                started = time.perf_counter()
                bar = progress.add_task("train", total=len(loader), epoch=f"{epoch + 1}/{cfg.epochs}", losses="")
                for raw in loader:
                    batch = task.to_device(raw, device, channels_last)
                    terms = task.step(wrapped, modules, opts, batch, autocast)
                    names = list(terms)
                    # One small reduction per step: mean losses for the log, and any rank's stop.
                    stop = torch.tensor(float(interrupted["set"]), device=device)
                    vec = torch.stack([t.float().reshape(()) for t in terms.values()] + [stop])
                    vec = _all_reduce(vec, ctx).cpu()
                    values = {k: float(v) / ctx.world for k, v in zip(names, vec[:-1])}
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
                    progress.update(bar, advance=1, losses="  ".join(f"{k} {v:.3f}" for k, v in values.items()))
                    if float(vec[-1]) > 0:
                        _average_buffers(modules, ctx)
                        if ctx.main:
                            _save(run, "last", task, modules, opts, scheds, epoch, step, {}, best, True)
                        _barrier(ctx)
                        raise TrainingInterrupted(
                            f"interrupted at epoch {epoch + 1}, step {step}: saved {run}/last.safetensors; "
                            f"continue with --resume {run} (epoch {epoch + 1} restarts)"
                        )
                    if cfg.max_steps is not None and step >= cfg.max_steps:
                        break
                progress.remove_task(bar)
                _average_buffers(modules, ctx)
                lr = opts[task.optimizer_names[0]].param_groups[0]["lr"]
                for s in scheds.values():
                    s.step()

                sums_val = _reduce_sums(task.validate(modules, val_loader, device, autocast, channels_last), ctx)
                val = task.finalize(sums_val)
                improved = val[task.best_key] > best if task.higher_is_better else val[task.best_key] < best
                if improved:
                    best = val[task.best_key]
                record = {
                    "epoch": epoch + 1,
                    "step": step,
                    "lr": lr,
                    "seconds": round(time.perf_counter() - started, 3),
                    "train": {k: v / max(n_steps, 1) for k, v in sums.items()},
                    "val": val,
                }
                history.append(record)
                if ctx.main:
                    with open(run / "metrics.jsonl", "a") as f:
                        f.write(json.dumps(record) + "\n")
                    grid = task.picture(modules, val_ds, device, channels_last)
                    save_image(Image.fromarray(grid), run / "samples" / f"epoch_{epoch + 1:03d}.png")
                    metrics = {"val": val, "train": record["train"]}
                    _save(run, "last", task, modules, opts, scheds, epoch + 1, step, metrics, best, True)
                    if improved:
                        _save(run, "best", task, modules, opts, scheds, epoch + 1, step, metrics, best, False)
                    if writer is not None:
                        for part in ("train", "val"):
                            for k, v in record[part].items():
                                if isinstance(v, (int, float)):
                                    writer.add_scalar(f"{part}/{k}", v, epoch + 1)
                        writer.add_image("samples", grid, epoch + 1, dataformats="HWC")
                        writer.flush()
                shown = {k: v for k, v in val.items() if isinstance(v, (int, float))}
                say(
                    f"epoch {epoch + 1}/{cfg.epochs}  step {step}  "
                    + "  ".join(f"train {k} {v:.4f}" for k, v in record["train"].items())
                    + "  " + "  ".join(f"val {k} {v:.4f}" for k, v in list(shown.items())[:6])
                    + ("  (best)" if improved else "")
                )
    finally:
        if writer is not None:
            writer.close()
    return TrainResult(run, len(history) + start_epoch, step, best, task.best_key, history,
                       {k: v.detach().cpu() for k, v in modules[task.primary].state_dict().items()})
