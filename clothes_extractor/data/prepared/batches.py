"""The batch path of a prepared cache: whole uint8 batches, turned into model tensors on the device.

`batch_loader` delivers `PreparedDataset.uint8_batch` dicts (one fancy-indexed copy out of the
memory map per array and batch, no per-sample Python); `batch_to_device` / `to_model_range` make
model tensors of them.
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from clothes_extractor.data.prepared.dataset import PreparedDataset
from clothes_extractor.data.prepared.files import ARRAY_FILES
from clothes_extractor.errors import ConfigError


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]; uint8 (B, H, W) -> float (B, 1, H, W)
    in [0, 1]. The same arithmetic as ``dataset.to_tensor``, so the values are identical; run it
    on the device. The colour result is channels_last in memory (a view of NHWC).

    >>> to_model_range(torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)).flatten().tolist()
    [-1.0, 1.0, -0.6000000238418579]
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"to_model_range expects a uint8 tensor, got {x.dtype}")
    if x.ndim == 3:
        return x.unsqueeze(1).float().div_(255)
    if x.ndim == 4 and x.shape[-1] == 3:
        return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    raise ValueError(f"to_model_range expects (B, H, W, 3) or (B, H, W), got {tuple(x.shape)}")


def batch_to_device(batch: dict, device: torch.device | str, *, channels_last: bool = False) -> dict:
    """A `uint8_batch` (or `batch_loader` item) -> ``input``/``target`` (B, 3, H, W) float in
    [-1, 1], ``alpha`` (B, 1, H, W) float in [0, 1] on ``device`` (uint8 crosses the bus:
    4x less than float), plus ``id``. ``channels_last`` chooses the memory format; otherwise
    the tensors are contiguous."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = {}
    for key in ARRAY_FILES:
        t = to_model_range(batch[key].to(device, non_blocking=True))
        out[key] = t.contiguous(memory_format=fmt)
    out["id"] = batch["id"]
    return out


class _Batches(Dataset):
    """``PreparedDataset`` indexed by a list of indices: one uint8 batch per item."""

    def __init__(self, ds: PreparedDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, indices: list[int]) -> dict:
        return self.ds.uint8_batch(indices)


def batch_loader(
    ds: PreparedDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    sampler: Sampler[int] | None = None,
    workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader of whole uint8 batches (`PreparedDataset.uint8_batch` dicts).

    ``batch_size=None`` + a BatchSampler: each worker reads a batch with one fancy-indexed copy
    per array, no per-sample Python and no collate. ``sampler`` (e.g. a DistributedSampler)
    replaces the shuffle/sequential sampler; ``generator`` seeds the shuffle. ``len()`` is the
    number of batches. Follow with `batch_to_device`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if sampler is None:
        sampler = RandomSampler(ds, generator=generator) if shuffle else SequentialSampler(ds)
    extra = {"prefetch_factor": prefetch_factor} if workers > 0 and prefetch_factor else {}
    return DataLoader(
        _Batches(ds),
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size, drop_last),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers > 0,
        **extra,
    )
