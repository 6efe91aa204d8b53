"""This process's place under ``torchrun``: the process group, its device, and the few
collectives the commands use.

Started by ``torchrun`` (WORLD_SIZE > 1), a process joins the group and takes the GPU of its
LOCAL_RANK (``cuda:LOCAL_RANK``); otherwise it is the one process of a run and nothing is
initialised. Training (:mod:`clothes_extractor.train.distributed`) runs DDP over NCCL (gloo on
CPU); folder mode (:mod:`clothes_extractor.inference.folder`) splits the photos and only
gathers its reports, over gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from clothes_extractor.runtime import resolve_device


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


def init_distributed(device_name: str, *, backend: str | None = None, timeout: timedelta | None = None) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else a single process.

    ``device_name`` as :func:`~clothes_extractor.runtime.resolve_device`; under torchrun a CUDA
    device becomes ``cuda:LOCAL_RANK``. ``backend``: None for NCCL on CUDA, gloo on CPU; ``timeout``:
    how long a collective waits for the slowest process (None: torch's default)."""
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
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, **({} if timeout is None else {"timeout": timeout}))
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def close_distributed(ctx: Dist) -> None:
    if ctx.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, ctx: Dist) -> torch.Tensor:
    if ctx.active:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: Dist) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()


def all_gather_objects(obj: Any, ctx: Dist) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process; ``[obj]`` alone."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world
    dist.all_gather_object(gathered, obj)
    return gathered
