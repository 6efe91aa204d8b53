"""One flat training loop for every task (`train-unet`, `train-gan`, `train-segmenter`).

Per epoch: train steps (a rich progress bar with live losses), validation, one line of
``metrics.jsonl``, a picture ``samples/epoch_NNN.png``, checkpoints ``last`` and ``best`` (by
the task's validation metric), and the same scalars and picture to the trackers of
``report_to`` (TensorBoard, W&B: :mod:`clothes_extractor.train.tracking`).
The run folder is described in :mod:`clothes_extractor.train.runs`.

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
import random
import signal
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from clothes_extractor.errors import ClothesExtractorError
from clothes_extractor.fileio import save_image
from clothes_extractor.runtime import openmp_wait
from clothes_extractor.train.config import DEFAULT_BATCH_SIZE, SYNC_EVERY, LoopConfig
from clothes_extractor.train.distributed import (
    Dist,
    all_reduce,
    average_buffers,
    barrier,
    close_distributed,
    device_settings,
    init_distributed,
    reduce_sums,
    resolve_compile,
    wrap,
)
from clothes_extractor.train.registry import task_for
from clothes_extractor.train.runs import RunState, check_run_folder, prepare_run, restore, save
from clothes_extractor.train.task import TrainTask
from clothes_extractor.train.tracking import Trackers, resolve_reporters


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def train(cfg: LoopConfig, *, resume: bool = False, overwrite: bool = False, console=None) -> TrainResult:
    """Train the task that ``cfg`` describes (see :func:`fit`)."""
    return fit(task_for(cfg), resume=resume, overwrite=overwrite, console=console)


def fit(task: TrainTask, *, resume: bool = False, overwrite: bool = False, console=None) -> TrainResult:
    """Run the epochs of ``task``; see the module docstring."""
    ctx = init_distributed(task.cfg.device)
    if task.cfg.batch_size is None:  # the device's default, saved in config.json as a number
        task.cfg = task.cfg.with_changes(batch_size=DEFAULT_BATCH_SIZE.get(ctx.device.type, DEFAULT_BATCH_SIZE["cpu"]))
    try:
        return _Run(task, ctx, console).fit(resume, overwrite)
    finally:
        close_distributed(ctx)


class _Run:
    """One process's run of a task: the settings that stay fixed while it trains, and its steps
    (``setup``, ``restore``, ``train_epoch``, ``end_epoch``) in the order :meth:`fit` calls them."""

    def __init__(self, task: TrainTask, ctx: Dist, console) -> None:
        from rich.console import Console

        self.task, self.cfg, self.ctx = task, task.cfg, ctx
        self.console = console or Console(stderr=True)
        self.say: Callable[..., None] = self.console.print if ctx.main else (lambda *a, **k: None)
        self.channels_last, self.autocast, self.threads = device_settings(ctx.device, self.cfg)
        self.run = Path(self.cfg.out)
        self.trackers = Trackers()

    def fit(self, resume: bool, overwrite: bool) -> TrainResult:
        task, cfg, ctx = self.task, self.cfg, self.ctx
        state, train_ds, val_ds = self.setup(resume, overwrite)
        compile, why = resolve_compile(cfg.compile, ctx.device, self.planned_steps(state, train_ds))
        with ExitStack() as scope:
            if compile and cfg.compile is None:
                # auto: where compiling fails (no Python headers, ...), train eager. Patched for
                # this run only: the caller's torch settings (a second run, a notebook) stay theirs.
                import torch._dynamo as dynamo

                scope.enter_context(dynamo.config.patch(suppress_errors=True))
            return self._fit(state, train_ds, val_ds, compile, why)

    def _fit(self, state: RunState, train_ds, val_ds, compile: bool, why: str) -> TrainResult:
        task, cfg, ctx = self.task, self.cfg, self.ctx
        start_epoch = state.epoch
        wrapped = wrap(state.modules, ctx, compile)
        if compile:
            task.compile_losses()
        if ctx.main:
            (self.run / "samples").mkdir(exist_ok=True)
        val_loader = _loader(val_ds, cfg, ctx, train=False)
        self.announce(len(train_ds), len(val_ds))
        if why:
            self.say(why)
        history: list[dict[str, Any]] = []
        progress = self.progress()
        ok = False
        try:
            if ctx.main:  # only rank 0 tracks
                self.trackers = Trackers.open(self.run, cfg.report_to, cfg.to_dict(), start_epoch, self.say)
            with _sigint_flag() as interrupted, progress:
                for epoch in range(start_epoch, cfg.epochs):
                    if cfg.max_steps is not None and state.step >= cfg.max_steps:
                        break
                    started = time.perf_counter()
                    train_means = self.train_epoch(state, wrapped, train_ds, epoch, progress, interrupted)
                    history.append(self.end_epoch(state, val_loader, val_ds, train_means, started))
            ok = True
        finally:
            self.trackers.close(ok)
        weights = {k: v.detach().cpu() for k, v in state.modules[task.primary].state_dict().items()}
        return TrainResult(self.run, len(history) + start_epoch, state.step, state.best, task.best_key, history, weights)

    def setup(self, resume: bool, overwrite: bool):
        """(state, train set, validation set): networks built, the run folder made or restored."""
        task, cfg, ctx = self.task, self.cfg, self.ctx
        resolve_reporters(cfg.report_to)  # a missing tracker package: one line, before the data
        if not resume:
            check_run_folder(cfg, overwrite)  # every rank: an error must stop them all, not hang one
        # Data, networks and losses first: a missing file or pretrained weight fails before the
        # run folder exists, so the corrected command can use the same --out.
        train_ds, val_ds = task.datasets()
        _seed_everything(cfg.seed)
        modules = task.build(ctx.device, self.channels_last, ctx.active)
        opts = task.optimizers(modules)
        scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda e: lr_factor(e, cfg.epochs)) for k, o in opts.items()}
        if not resume and ctx.main:
            prepare_run(cfg, overwrite)
        barrier(ctx)
        state = RunState(task, modules, opts, scheds)
        if resume:
            restore(state, self.run, ctx.device)
            self.say(f"resuming {self.run} at epoch {state.epoch + 1}/{cfg.epochs}, step {state.step}")
            if state.epoch >= cfg.epochs:
                self.say(f"nothing to do: {self.run} already trained {state.epoch} of {cfg.epochs} epochs (raise --epochs)")
        return state, train_ds, val_ds

    def planned_steps(self, state: RunState, train_ds) -> int:
        """Optimiser steps this process will run from here (epochs left x batches, --max-steps)."""
        cfg = self.cfg
        per_epoch = len(_loader(train_ds, cfg, self.ctx, train=True, epoch=state.epoch, task=self.task))
        steps = max(cfg.epochs - state.epoch, 0) * per_epoch
        return steps if cfg.max_steps is None else min(steps, max(cfg.max_steps - state.step, 0))

    def announce(self, n_train: int, n_val: int) -> None:
        ctx, cfg = self.ctx, self.cfg
        procs = f", {ctx.world} processes x batch {cfg.batch_size}" if ctx.active else ""
        cpu = "" if ctx.device.type == "cuda" else f" ({self.threads} threads, {openmp_wait()})"
        self.say(
            f"training {self.task.kind} on {n_train} samples, validating on {n_val}, "
            f"device {ctx.device}{cpu}{procs}, run {self.run}"
        )

    def progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=self.console, transient=False, disable=not self.ctx.main,
        )

    def train_epoch(self, state: RunState, wrapped, train_ds, epoch: int, progress, interrupted) -> dict[str, float]:
        """The optimisation steps of one epoch; the mean of each loss over them. Raises
        TrainingDiverged on a NaN loss, TrainingInterrupted (after saving) on Ctrl-C."""
        task, cfg, ctx = self.task, self.cfg, self.ctx
        # Shuffling and augmentation depend only on (seed, epoch, rank): resume is exact.
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + ctx.rank)
        loader = _loader(train_ds, cfg, ctx, train=True, epoch=epoch, task=task)
        for m in state.modules.values():
            m.train()
        sums: dict[str, float] = defaultdict(float)
        n_steps = 0
        bar = progress.add_task("train", total=len(loader), epoch=f"{epoch + 1}/{cfg.epochs}", losses="")
        # The losses stay on the device between reads: on CUDA a read every step would wait for
        # the GPU to finish each step before queueing the next (the same count on every rank).
        every = SYNC_EVERY.get(ctx.device.type, 1)
        pending: list[torch.Tensor] = []
        for raw in loader:
            batch = task.to_device(raw, ctx.device, self.channels_last)
            terms = task.step(wrapped, state.modules, state.opts, batch, self.autocast)
            pending.append(torch.stack([t.float().reshape(()) for t in terms.values()]))
            n_steps += 1
            state.step += 1
            last = n_steps == len(loader) or (cfg.max_steps is not None and state.step >= cfg.max_steps)
            if len(pending) < every and not last:
                continue
            values, stop = self.reduce_steps(list(terms), pending, interrupted["set"], epoch, state.step)
            for k, v in values.items():
                sums[k] += v * len(pending)
            progress.update(bar, advance=len(pending), losses="  ".join(f"{k} {v:.3f}" for k, v in values.items()))
            pending = []
            if stop:
                self.interrupt(state, epoch)
            if cfg.max_steps is not None and state.step >= cfg.max_steps:
                break
        progress.remove_task(bar)
        average_buffers(state.modules, ctx)
        return {k: v / max(n_steps, 1) for k, v in sums.items()}

    def reduce_steps(
        self, keys: list[str], pending: list[torch.Tensor], stop: bool, epoch: int, step: int
    ) -> tuple[dict[str, float], bool]:
        """One small reduction for the steps since the last: their mean losses for the log (a NaN
        in any of them shows), and whether any rank stops."""
        ctx = self.ctx
        flag = torch.tensor([float(stop)], device=ctx.device)
        vec = all_reduce(torch.cat([torch.stack(pending).sum(0), flag]), ctx).cpu()
        values = {k: float(v) / (ctx.world * len(pending)) for k, v in zip(keys, vec[:-1])}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            first = step - len(pending) + 1
            where = f"step {step}" if first == step else f"steps {first}-{step}"
            raise TrainingDiverged(
                f"loss {bad[0]} became {values[bad[0]]} at epoch {epoch + 1}, {where}; "
                f"stopped. {self.run} keeps the last good checkpoint (epoch {epoch}); try a lower "
                "--lr, or check the data"
            )
        return values, float(vec[-1]) > 0

    def interrupt(self, state: RunState, epoch: int) -> None:
        """Ctrl-C on any rank: save the weights of the moment as ``last`` (the epoch restarts)."""
        average_buffers(state.modules, self.ctx)
        state.epoch = epoch
        if self.ctx.main:
            save(state, self.run, "last", {}, with_state=True)
        barrier(self.ctx)
        raise TrainingInterrupted(
            f"interrupted at epoch {epoch + 1}, step {state.step}: saved {self.run}/last.safetensors; "
            f"continue with --resume {self.run} (epoch {epoch + 1} restarts)"
        )

    def end_epoch(self, state: RunState, val_loader, val_ds, train_means: dict[str, float], started: float) -> dict[str, Any]:
        """Step the schedules, validate, and write the epoch's record, picture and checkpoints."""
        from PIL import Image

        task, ctx = self.task, self.ctx
        lr = state.opts[task.optimizer_names[0]].param_groups[0]["lr"]
        for s in state.scheds.values():
            s.step()
        val = task.finalize(reduce_sums(task.validate(state.modules, val_loader, ctx.device, self.autocast, self.channels_last), ctx))
        improved = state.improves(val[task.best_key])
        if improved:
            state.best = val[task.best_key]
        state.epoch += 1
        record = {
            "epoch": state.epoch, "step": state.step, "lr": lr, "seconds": round(time.perf_counter() - started, 3),
            "train": train_means, "val": val,
        }
        if ctx.main:
            with open(self.run / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            grid = task.picture(state.modules, val_ds, ctx.device, self.channels_last)
            save_image(Image.fromarray(grid), self.run / "samples" / f"epoch_{state.epoch:03d}.png")
            metrics = {"val": val, "train": train_means}
            save(state, self.run, "last", metrics, with_state=True)
            if improved:
                save(state, self.run, "best", metrics, with_state=False)
            self.trackers.log_epoch(record, grid)
        shown = {k: v for k, v in val.items() if isinstance(v, (int, float))}
        self.say(
            f"epoch {state.epoch}/{self.cfg.epochs}  step {state.step}  "
            + "  ".join(f"train {k} {v:.4f}" for k, v in train_means.items())
            + "  " + "  ".join(f"val {k} {v:.4f}" for k, v in list(shown.items())[:6])
            + ("  (best)" if improved else "")
        )
        return record
