"""Where a run trains: the device, its settings, and this process's place under ``torchrun``.

Under ``torchrun`` (WORLD_SIZE > 1) each process trains a DDP replica on its share of the data
(NCCL on GPUs, gloo on CPU). Validation sums are reduced across processes; only rank 0 writes
files and draws progress bars.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch
from torch import nn

# The process group's helpers live a floor down, shared with folder mode; imported from here too.
from clothes_extractor.distributed import Dist, all_reduce, barrier, close_distributed, init_distributed
from clothes_extractor.train.config import LoopConfig

__all__ = [
    "Dist", "all_reduce", "average_buffers", "barrier", "close_distributed", "device_settings", "init_distributed",
    "reduce_sums", "resolve_compile", "wrap",
]


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
    (:mod:`clothes_extractor.runtime`: the command line makes idle threads sleep). Compilation:
    :func:`resolve_compile`.
    """
    from clothes_extractor.runtime import cpu_threads

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return True, (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), torch.get_num_threads()
    return CPU_CHANNELS_LAST, nullcontext, cpu_threads(cfg.threads)


def average_buffers(modules: dict[str, nn.Module], ctx: Dist) -> None:
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
                all_reduce(buf.data, ctx).div_(ctx.world)


def reduce_sums(sums: dict[str, torch.Tensor], ctx: Dist) -> dict[str, torch.Tensor]:
    """Sum each accumulator (any shape) across processes, in one reduction."""
    keys = sorted(sums)
    flat = all_reduce(torch.cat([sums[k].double().reshape(-1) for k in keys]).to(ctx.device), ctx).cpu()
    out, offset = {}, 0
    for k in keys:
        n = sums[k].numel()
        out[k] = flat[offset: offset + n].reshape(sums[k].shape)
        offset += n
    return out


# Measured on a 2-core CPU (benchmarks/cpu_recipe.py --sections compile; docs/speed.md): after
# compiling, the GAN recipe's step ran 1.23x faster (11 s of compilation, inductor cache warm) and
# L1 + SSIM 1.63x (80 s, cold): paid back after 1 to 4 minutes of training. Compiling took over 13
# minutes on a heavily loaded machine, so auto waits for runs of hours, not minutes.
COMPILE_AUTO_MIN_STEPS = 2000
# CUDA (issue 20, one H200): `train-gan` at 224, batch 128, 1,184 images/s eager and 1,750
# compiled, 35 ms saved a step. The compile time there is not measured: 5,000 steps (175 s saved)
# cover a compilation of up to about 3 minutes. `train-gan --epochs 200` on VITON-HD is 70,000+.
COMPILE_AUTO_MIN_STEPS_CUDA = 5000


def _cxx_compiler() -> str | None:
    """The C++ compiler inductor will call on the CPU (its CXX, else the usual names), or None."""
    import shutil

    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    return next((n for n in names if shutil.which(n)), None)


def resolve_compile(setting: bool | None, device: torch.device, planned_steps: int) -> tuple[bool, str]:
    """Whether to torch.compile, and why in words ('' when not compiling and not asked).

    ``setting``: True/False from --compile/--no-compile; None (auto) compiles runs of at least
    :data:`COMPILE_AUTO_MIN_STEPS` planned steps on the CPU, :data:`COMPILE_AUTO_MIN_STEPS_CUDA`
    on CUDA, where a C/C++ compiler exists (inductor's CPU code and triton's launchers need one)."""
    if setting is not None:
        return setting, "compiling the networks (--compile)" if setting else ""
    least = {"cpu": COMPILE_AUTO_MIN_STEPS, "cuda": COMPILE_AUTO_MIN_STEPS_CUDA}.get(device.type)
    if least is None or planned_steps < least:
        return False, ""
    if _cxx_compiler() is None:
        return False, f"not compiling: {planned_steps} steps planned would pay for it, but no C++ compiler (g++) is installed"
    where = "on the CPU" if device.type == "cpu" else "on the GPU"
    return True, f"compiling the networks: {planned_steps} steps planned {where} (--no-compile to skip; about a minute)"


def wrap(modules: dict[str, nn.Module], ctx: Dist, compile: bool) -> dict[str, nn.Module]:
    """DDP across processes and/or torch.compile; the raw modules stay what is saved and drawn."""
    wrapped = {}
    for name, m in modules.items():
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            m = DDP(m, device_ids=ids)
        if compile:
            m = torch.compile(m)
        wrapped[name] = m
    return wrapped
