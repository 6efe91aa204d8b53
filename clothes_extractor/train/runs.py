"""A run folder: its configuration, its checkpoints, and continuing it (``--resume``).

Run folder::

    config.json               the run's configuration (what --resume reads)
    last.safetensors/.json    weights + metadata after the latest epoch
    best.safetensors/.json    the same for the best validation epoch
    last.state.pt             optimisers, schedulers, other networks, RNG, epoch (for --resume)
    metrics.jsonl             one JSON line per epoch
    samples/epoch_NNN.png     the task's picture of fixed validation samples
    tensorboard/              TensorBoard's event files (--report-to tensorboard; auto: when installed)
    wandb/                    W&B's files of the run (--report-to wandb; offline runs: wandb sync uploads them)
    wandb.json                the W&B run's id and project: --resume continues that W&B run
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clothes_extractor.checkpoint import load_into, load_state, load_state_dict, read_meta, save_checkpoint, save_state
from clothes_extractor.errors import ConfigError
from clothes_extractor.fileio import atomic_write_text, check_folder_creatable
from clothes_extractor.train.config import RUN_SETTINGS, LoopConfig
from clothes_extractor.train.registry import config_from_dict
from clothes_extractor.train.task import TrainTask

_RESUME_HINT = {"generator": "train-unet or train-gan", "segmenter": "train-segmenter"}


@dataclass
class RunState:
    """What a checkpoint saves and --resume restores: the networks, their optimisers and
    schedulers, and how far the run got."""

    task: TrainTask
    modules: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    scheds: dict[str, Any]
    epoch: int = 0  # epochs completed
    step: int = 0
    best: float = math.nan  # the best value of the task's best_key so far

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = -math.inf if self.task.higher_is_better else math.inf

    def improves(self, value: float) -> bool:
        return value > self.best if self.task.higher_is_better else value < self.best


def check_run_folder(cfg: LoopConfig, overwrite: bool) -> None:
    # Before the data loads: one line, not a traceback. No probe file: every rank checks at once.
    run = check_folder_creatable(cfg.out, "run folder")
    if run.exists() and any(run.iterdir()) and not overwrite:
        raise ConfigError(f"run folder {run} is not empty; continue it with --resume {run}, or pass --overwrite or another --out")


def prepare_run(cfg: LoopConfig, overwrite: bool) -> Path:
    check_run_folder(cfg, overwrite)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    if overwrite:
        # wandb.json too: an overwritten run is a new W&B run.
        for stale in ("metrics.jsonl", "last.state.pt", "best.safetensors", "best.json", "last.safetensors", "last.json", "wandb.json"):
            (run / stale).unlink(missing_ok=True)
        for events in (run / "tensorboard").glob("events.out.tfevents.*"):  # not mixed with the new run's
            events.unlink()
    atomic_write_text(run / "config.json", cfg.to_json() + "\n")
    return run


def load_run_config(run: str | Path) -> LoopConfig:
    """The configuration saved in a run folder, as the class of its task."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run} is not a training run folder (no config.json); --resume takes the --out of an earlier run")
    try:
        return config_from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable run configuration ({exc})") from None


def resume_config(run: str | Path, task: str, **given: Any) -> LoopConfig:
    """The configuration to continue ``run`` with: the run's own, except the settings of this
    invocation (:data:`RUN_SETTINGS`: ``given`` or their defaults) and ``epochs`` and
    ``report_to`` when given (so a resumed run reports where it did unless told otherwise).
    ``task`` is the task the command trains; a run of another task is refused."""
    cfg = load_run_config(run)
    if cfg.task != task:
        raise ConfigError(f"{run} is a {cfg.task} run; resume it with {_RESUME_HINT.get(cfg.task, cfg.task)}")
    fields = type(cfg).__dataclass_fields__
    changes: dict[str, Any] = {name: given.get(name) for name in RUN_SETTINGS}
    for name, value in changes.items():
        if value is None:
            changes[name] = fields[name].default
    for name in ("epochs", "report_to"):
        if given.get(name) is not None:
            changes[name] = given[name]
    return cfg.with_changes(out=str(run), **changes)


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


def save(state: RunState, run: Path, name: str, metrics: dict[str, Any], *, with_state: bool) -> None:
    """``<run>/<name>.safetensors`` (the primary network, self-describing) and, ``with_state``,
    ``<run>/<name>.state.pt`` (everything else --resume needs)."""
    task = state.task
    meta = {**task.meta(), "train": task.cfg.to_dict(), "epoch": state.epoch, "step": state.step, "metrics": metrics}
    save_checkpoint(run / f"{name}.safetensors", state.modules[task.primary].state_dict(), meta)
    if with_state:
        save_state(run / f"{name}.state.pt", {
            "epoch": state.epoch,
            "step": state.step,
            "best": state.best,
            "optimizers": {k: o.state_dict() for k, o in state.opts.items()},
            "schedulers": {k: s.state_dict() for k, s in state.scheds.items()},
            "modules": {k: m.state_dict() for k, m in state.modules.items() if k != task.primary},
            "rng": _rng_state(),
        })


def restore(state: RunState, run: Path, device: torch.device) -> None:
    """Load ``<run>/last.*`` into ``state``: weights, optimisers, schedulers, RNG and progress."""
    task = state.task
    saved = load_state(run / "last.state.pt")
    ckpt = run / "last.safetensors"
    meta = read_meta(ckpt)
    if meta.get("kind") != task.kind:
        raise ConfigError(f"{ckpt} holds a {meta.get('kind')!r} model but the run trains a {task.kind!r}")
    load_into(state.modules[task.primary], load_state_dict(ckpt, device), ckpt)
    for name, sd in saved.get("modules", {}).items():
        load_into(state.modules[name], sd, run / "last.state.pt")
    for k, o in state.opts.items():
        o.load_state_dict(saved["optimizers"][k])
    for k, s in state.scheds.items():
        s.load_state_dict(saved["schedulers"][k])
    _set_rng_state(saved["rng"])
    state.epoch, state.step, state.best = saved["epoch"], saved["step"], saved["best"]
