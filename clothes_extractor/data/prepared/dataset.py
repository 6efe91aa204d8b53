"""Reading a prepared cache: `PreparedDataset` (a drop-in for VitonDataset) and `open_prepared`.

See :mod:`clothes_extractor.data.prepared` for the cache's contents.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import make_item
from clothes_extractor.data.prepared.files import (
    ARRAY_FILES,
    MANIFEST,
    IdsArg,
    cache_path,
    describe,
    ids_and_list,
    open_arrays,
    read_manifest,
    rebuild_command,
    stale_files,
)
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.data.viton import read_id_list, resolve_split_dir
from clothes_extractor.errors import ConfigError, DataError


class PreparedDataset(Dataset):
    """The samples of a prepared cache (see the module docstring); a drop-in for VitonDataset.

    Args:
        path: the cache folder (what `prepare_dataset` returned).
        source: the split folder its files are checked against [default: the one recorded in
            the manifest; pass it when the data set moved].
        preprocess: if given, must equal the cache's settings (DataError otherwise).
        ids: if given (a list or a list file), must equal the cache's ids, in order.
        augment: per-sample PIL augmentation in ``__getitem__``, exactly as VitonDataset does
            (the batch path leaves augmentation to :class:`BatchAugment` on the device).
        check: stat every source file and refuse a stale cache (DataError naming the file).

    Items (``ds[i]``) are VitonDataset's dicts: ``input`` (3, H, W) float in [-1, 1],
    ``target`` (3, H, W) float in [-1, 1], ``alpha`` (1, H, W) float in [0, 1], ``id``.
    ``uint8_batch(indices)`` gives whole uint8 batches (see there).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        source: str | os.PathLike | None = None,
        preprocess: PreprocessConfig | None = None,
        ids: Sequence[str] | str | os.PathLike | None = None,
        augment: AugmentConfig | None = None,
        check: bool = True,
    ) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.preprocess = PreprocessConfig.from_dict(self.manifest["preprocess"])
        self.ids: list[str] = list(self.manifest["ids"])
        source = source.dir if hasattr(source, "dir") else source  # a Split or its folder
        self.split_dir = Path(source) if source is not None else Path(self.manifest["source"])
        self.augment = augment
        if preprocess is not None and preprocess.pixels() != self.preprocess.pixels():
            raise DataError(
                f"{self.path} was prepared with {describe(self.preprocess)}, but {describe(preprocess)} "
                "was asked for; prepare the data set with these settings (`clothes-extractor prepare`)"
            )
        if ids is not None:
            wanted = read_id_list(Path(ids)) if isinstance(ids, (str, os.PathLike)) else list(ids)
            if wanted != self.ids:
                raise DataError(
                    f"{self.path} holds {len(self.ids)} samples of another id list than the {len(wanted)} asked "
                    "for; prepare that list (`clothes-extractor prepare --list FILE`)"
                )
        if check:
            stale = stale_files(self.manifest, self.split_dir)
            if stale:
                listed = "; ".join(f"{self.split_dir / rel} {what}" for rel, what in stale[:3])
                more = f" (and {len(stale) - 3} more)" if len(stale) > 3 else ""
                raise DataError(
                    f"cache {self.path} is stale: {listed}{more}; rebuild it with "
                    f"`{rebuild_command(self.manifest)}`"
                )
        self._arrays: dict[str, np.ndarray] | None = None
        self._check_arrays()

    # The memory maps are opened lazily and not pickled: a DataLoader worker started with
    # "spawn" reopens them instead of receiving a copy of the data.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    @property
    def arrays_mmap(self) -> dict[str, np.ndarray]:
        """``input`` (N, H, W, 3), ``target`` (N, H, W, 3), ``alpha`` (N, H, W): read-only uint8 maps."""
        if self._arrays is None:
            try:
                self._arrays = open_arrays(self.path, "r")
            except (OSError, ValueError) as exc:
                raise DataError(
                    f"cannot read the arrays of {self.path} ({exc}); rebuild it with "
                    f"`{rebuild_command(self.manifest)}`"
                ) from None
        return self._arrays

    def _check_arrays(self) -> None:
        n, (h, w) = len(self.ids), self.preprocess.size
        want = {"input": (n, h, w, 3), "target": (n, h, w, 3), "alpha": (n, h, w)}
        for key, a in self.arrays_mmap.items():
            if a.shape != want[key] or a.dtype != np.uint8:
                raise DataError(
                    f"{self.path / ARRAY_FILES[key]} holds {a.dtype} {a.shape}, expected uint8 {want[key]}; "
                    f"rebuild it with `{rebuild_command(self.manifest)}`"
                )

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 (input (H, W, 3), target (H, W, 3), alpha (H, W)): VitonDataset.arrays' values."""
        a = self.arrays_mmap
        return np.asarray(a["input"][index]), np.asarray(a["target"][index]), np.asarray(a["alpha"][index])

    def __getitem__(self, index: int) -> dict:
        return make_item(*self.arrays(index), self.ids[index], self.augment, self.preprocess.background)

    def uint8_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> dict:
        """A whole batch as uint8 tensors, in ascending index order (the indices are sorted for
        sequential reads; a batch's order does not matter to training):

        ``input`` (B, H, W, 3), ``target`` (B, H, W, 3), ``alpha`` (B, H, W) uint8 tensors,
        ``index`` (B,) int64, ``id`` list of B ids. `to_model_range` / `batch_to_device` make
        model tensors of them.
        """
        idx = np.sort(np.asarray(indices, dtype=np.int64).reshape(-1))
        a = self.arrays_mmap
        out = {k: torch.from_numpy(np.ascontiguousarray(a[k][idx])) for k in ARRAY_FILES}
        out["index"] = torch.from_numpy(idx)
        out["id"] = [self.ids[i] for i in idx.tolist()]
        return out


def open_prepared(
    data: str | os.PathLike,
    split: str = "train",
    ids: IdsArg = None,
    preprocess: PreprocessConfig = PreprocessConfig(),
    *,
    root: str | os.PathLike | None = None,
    augment: AugmentConfig | None = None,
    stale: str = "raise",
) -> PreparedDataset | None:
    """The prepared cache of (data, split, ids, preprocess), or None when none was built.

    ``root`` is the folder holding the caches (`prepare --out`) [default ``<data>/prepared``].
    A cache that exists but is stale (a source file changed) raises DataError with the rebuild
    command (``stale="raise"``, the default: training silently on old data, or silently slowly,
    are both worse than a clear stop), or gives None (``stale="none"``).
    """
    if stale not in ("raise", "none"):
        raise ConfigError(f"stale={stale!r} is not 'raise' or 'none'")
    split_dir = resolve_split_dir(data, split)
    id_list, _ = ids_and_list(split_dir, ids)
    path = cache_path(data, split, id_list, preprocess, root=root)
    if not (path / MANIFEST).is_file():
        return None
    try:
        return PreparedDataset(path, source=split_dir, preprocess=preprocess, ids=id_list, augment=augment)
    except DataError:
        if stale == "none":
            return None
        raise


