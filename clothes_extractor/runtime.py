"""Process-wide CPU settings, some of which only count if made before torch is imported.

torch's CPU kernels run on OpenMP (libgomp), which reads its environment once, when torch
loads. By default its idle threads spin-wait a long time between parallel regions: on a shared
machine (other processes wanting the same cores) a spinning thread holds a core while its
partner waits to be scheduled, and every parallel region waits for the slower of the two; a
thread that sleeps at once (``OMP_WAIT_POLICY=PASSIVE``) pays a kernel wake-up at every region
instead, which costs on a free machine. A short spin, then sleep (``GOMP_SPINCOUNT=10000``)
keeps both (``benchmarks/cpu_recipe.py --sections threads``, a resnet18 UNet step at 256x192,
2 threads, samples/s): idle 5.58 against PASSIVE's 4.42 and the long spin's 5.04; beside one
CPU-bound process 2.51 / 2.72 / 2.23; beside two 2.45 / 2.49 / 1.37. `evaluate` on 300 VITON
photos: 49.8 s against 65 s with PASSIVE.

:func:`prefer_short_spin` sets that default unless the user chose a wait policy or spin count;
the ``clothes-extractor`` command calls it first thing. A Python program using the library sets
``GOMP_SPINCOUNT`` itself, or calls this before its first ``import torch``.
No torch import here.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OPENMP_DEFAULTS: dict[str, str] = {"GOMP_SPINCOUNT": "10000"}
# Either of these set by the user is their choice of wait policy: then nothing is set.
_USER_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def prefer_short_spin(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set :data:`OPENMP_DEFAULTS` in ``environ`` unless the user set ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT``.

    Returns the variables it set (empty when the user's choices stand). Effective only when
    torch has not been imported yet in this process (and in processes started from it).
    """
    if any(k in environ for k in _USER_CHOICES):
        return {}
    environ.update(OPENMP_DEFAULTS)
    return dict(OPENMP_DEFAULTS)


def openmp_wait() -> str:
    """The OpenMP wait setting in words, for logs: ``OMP_WAIT_POLICY X``, ``GOMP_SPINCOUNT N``."""
    chosen = [f"{k} {os.environ[k]}" for k in _USER_CHOICES if os.environ.get(k)]
    return ", ".join(chosen) or "libgomp's default wait"


# glibc malloc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (mallopt parameters).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
RETAIN_BLOCKS_MB = 256


def retain_freed_memory(block_mb: int = RETAIN_BLOCKS_MB) -> bool:
    """Have glibc's malloc keep freed blocks of up to ``block_mb`` MB for reuse.

    By default glibc maps every block above 32 MB (less, before its threshold has adapted) afresh
    from the kernel and unmaps it when freed, so each such tensor of a CPU forward pass costs
    page faults to zero its memory again: measured on the default generator, batch 16 at
    256x192, one thread: 1.7 s user + 0.84 s system per forward by default, system time 0 with
    this (``benchmarks/evaluate.py``; `evaluate` calls it). The price is that the process keeps
    up to its peak memory instead of returning it between batches. Returns whether it was set
    (False off glibc).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    size = block_mb << 20
    return bool(mallopt(_M_MMAP_THRESHOLD, size)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * size))


def cpu_threads(requested: int | None) -> int:
    """Set and return torch's intra-op thread count: ``requested``, or torch's own default
    (the machine's physical cores) when None."""
    import torch

    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be at least 1, got {requested}")
        torch.set_num_threads(requested)
    return torch.get_num_threads()


def resolve_device(name: str):
    """``auto``, ``cpu``, ``cuda`` (or ``cuda:N``) -> a torch.device; ``auto`` takes a CUDA GPU
    when there is one. ConfigError when CUDA is asked for and absent."""
    import torch

    from clothes_extractor.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)
