"""What the training loop needs from a task (the garment generator, the segmenter, ...).

`loop.fit` owns everything generic: epochs, the distributed setup, progress bars, validation
reduction across processes, ``metrics.jsonl``, pictures, checkpoints, resume, Ctrl-C and NaN
handling. A task owns its data, networks, optimisers, step and metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from clothes_extractor.train.config import LoopConfig


def optimizer(cls: type[torch.optim.Optimizer], params, **kwargs: Any) -> torch.optim.Optimizer:
    """``cls`` (Adam, AdamW) over ``params``: fused on CUDA (one kernel for every tensor instead
    of a chain of small ones), torch's default (foreach) elsewhere."""
    params = list(params)
    fused = bool(params) and all(p.is_cuda for p in params)
    return cls(params, fused=fused or None, **kwargs)


@torch.no_grad()
def predict_samples(model: nn.Module, ds: Dataset, key: str, count: int, device: torch.device, channels_last: bool):
    """(the first ``count`` items of ``ds``, the model's output on their ``key`` tensors), run in
    eval mode; the model's mode is restored. For the per-epoch pictures."""
    was_training = model.training
    model.eval()
    items = [ds[i] for i in range(min(count, len(ds)))]
    x = torch.stack([it[key] for it in items]).to(device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    out = model(x)
    model.train(was_training)
    return items, out


class TrainTask:
    """Base class of a trainable task. Subclasses set the class attributes and implement the methods."""

    kind: str = ""  # checkpoint kind ("generator", "segmenter"), read back by the loaders
    primary: str = ""  # the module saved as <run>/{last,best}.safetensors; the others go to the state file
    best_key: str = ""  # the validation metric that picks best.safetensors
    higher_is_better: bool = False
    optimizer_names: tuple[str, ...] = ("g",)  # keys of optimizers(); the first one's lr is logged
    config_class: type[LoopConfig] = LoopConfig  # what its run configuration is read back as

    def __init__(self, cfg: LoopConfig) -> None:
        self.cfg = cfg

    def datasets(self) -> tuple[Dataset, Dataset]:
        """(train, validation) data sets; items are dicts of tensors plus an "id"."""
        raise NotImplementedError

    def train_loader(self, ds: Dataset, sampler, drop_last: bool, pin_memory: bool):
        """A DataLoader of its own for the training set (e.g. whole cached batches), or None for
        the loop's default per-sample DataLoader over ``sampler``."""
        return None

    def build(self, device: torch.device, channels_last: bool, distributed: bool) -> dict[str, nn.Module]:
        """The trained networks by name, on ``device``. Called after the global seed is set."""
        raise NotImplementedError

    def optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def compile_losses(self) -> None:
        """torch.compile the networks inside the losses, if any (a compiled run)."""

    def to_device(self, raw: dict, device: torch.device, channels_last: bool) -> Any:
        """A collated batch from the DataLoader -> what step() takes."""
        raise NotImplementedError

    def step(
        self, modules: dict[str, nn.Module], raw_modules: dict[str, nn.Module],
        opts: dict[str, torch.optim.Optimizer], batch: Any, autocast,
    ) -> dict[str, torch.Tensor]:
        """One optimisation step. ``modules`` may be DDP-wrapped or compiled; ``raw_modules`` are
        the plain networks (for calls that must not go through DDP). Returns detached losses."""
        raise NotImplementedError

    def validate(self, raw_modules: dict[str, nn.Module], loader, device: torch.device, autocast, channels_last: bool) -> dict[str, torch.Tensor]:
        """Summable accumulators over this process's share of the validation set (the loop sums
        them across processes), e.g. {"l1": sum over images, "n": image count}."""
        raise NotImplementedError

    def finalize(self, sums: dict[str, torch.Tensor]) -> dict[str, float]:
        """Validation metrics from the summed accumulators; must include ``best_key``."""
        raise NotImplementedError

    def picture(self, raw_modules: dict[str, nn.Module], val_ds: Dataset, device: torch.device, channels_last: bool) -> np.ndarray:
        """(H, W, 3) uint8: what an epoch's predictions look like on fixed validation samples."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """Checkpoint metadata besides epoch, step and metrics: kind, model and data settings."""
        raise NotImplementedError
