"""Which prepared caches `clothes-extractor prepare` builds, and building them.

A plan names one cache per id list: by default the lists `split` wrote (``train_ids.txt``,
``val_ids.txt``) when preparing the train split and they exist, else every sample of the split.
Every cache is checked before any is built, so a refusal (an existing cache without
``overwrite``, a folder that is not a cache) stops the command with nothing written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.errors import DataError


@dataclass(frozen=True)
class CacheJob:
    source: Path | None  # the id list; None: every sample of the split
    path: Path  # the cache folder

    def describe(self, split: str) -> str:
        return self.source.name if self.source is not None else f"all of {split}"


@dataclass(frozen=True)
class CacheBuilt:
    job: CacheJob
    samples: int
    megabytes: float
    seconds: float


def plan_caches(
    data, *, split: str, lists: Sequence[Path] | None, preprocess: PreprocessConfig,
    out: str | os.PathLike | None = None, overwrite: bool = False,
) -> list[CacheJob]:
    """The caches to build; DataError naming every refusal at once when any cache may not be
    written. ``data``: a data set root, a Path or a layouts.DataRoot (:func:`data_root`)."""
    from clothes_extractor.data.prepared import cache_path, check_out
    from clothes_extractor.data.viton import read_id_list, resolve_split_dir

    split_dir = resolve_split_dir(data, split)
    if lists:
        sources: list[Path | None] = list(lists)
    else:
        found = [p for p in (data / "train_ids.txt", data / "val_ids.txt") if split == "train" and p.is_file()]
        sources = list(found) or [None]
    plan, refused = [], []
    for source in sources:
        ids = read_id_list(source) if source is not None else None
        path = cache_path(data, split, ids, preprocess, root=out)
        try:
            check_out(path, split_dir, ids, preprocess, overwrite=overwrite)
        except DataError as exc:
            refused.append(str(exc))
        plan.append(CacheJob(source, path))
    if refused:
        raise DataError("; ".join(refused))
    return plan


def build_caches(
    data: str | os.PathLike, plan: Sequence[CacheJob], *, split: str, preprocess: PreprocessConfig,
    workers: int | None = None, overwrite: bool = False,
) -> Iterator[CacheBuilt]:
    """Build the caches of ``plan`` one by one, yielding each as it is done."""
    from clothes_extractor.data.prepared import prepare_dataset

    for job in plan:
        start = time.perf_counter()
        prepare_dataset(data, split=split, ids=job.source, preprocess=preprocess, out=job.path, workers=workers, overwrite=overwrite)
        seconds = time.perf_counter() - start
        n = len((job.path / "ids.txt").read_text().split())
        mb = sum(f.stat().st_size for f in job.path.iterdir()) / 1e6
        yield CacheBuilt(job, n, mb, seconds)
