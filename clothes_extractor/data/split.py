"""Deterministic train/validation id lists, skipping samples that cannot be trained on.

No torch here: `split` must start fast.

`make_split` lists the ids of one split folder of a VITON-HD-layout data set (sorted, so the
result does not depend on the file system's order), drops the ids of an ``exclude`` list, skips
samples with missing files, an unreadable parse map or no garment pixel, shuffles the rest with
``numpy.random.default_rng(seed)`` and writes, one id per line, sorted::

    train_ids.txt     the training ids
    val_ids.txt       the validation ids (at least one)
    skipped_ids.txt   "<id> <reason> <detail>" per line; reasons: missing-files, unreadable,
                      no-garment. The first column reads back as an id list.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clothes_extractor.data import viton
from clothes_extractor.data.workers import process_pool
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text, check_writable

TRAIN_LIST, VAL_LIST, SKIPPED_LIST = "train_ids.txt", "val_ids.txt", "skipped_ids.txt"
MISSING, UNREADABLE, NO_GARMENT = "missing-files", "unreadable", "no-garment"
REASONS: tuple[str, ...] = (MISSING, UNREADABLE, NO_GARMENT)
# Below this many parse maps a process pool costs more to start than it saves.
_POOL_MIN_SAMPLES = 256


@dataclass(frozen=True)
class SplitResult:
    """What `make_split` decided and wrote. Id lists are sorted."""

    train_ids: list[str]
    val_ids: list[str]
    skipped: dict[str, list[str]]  # reason -> ids, for every reason in REASONS (maybe empty)
    excluded: int  # ids of the split dropped because the exclude list names them
    excluded_not_found: int = 0  # ids in the exclude list that are not in the split
    paths: dict[str, Path] = field(default_factory=dict)  # "train", "val", "skipped" -> file
    details: dict[str, str] = field(default_factory=dict)  # skipped id -> what is wrong

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def read_exclude_list(path: Path) -> set[str]:
    """Ids to exclude: a plain list (one id or file name per line, first column) or a JSON file
    of any nesting whose strings are ids or file names (TryOffDiff's
    ``vitonhd_duplicate_filenames.json``: ``{"test": {"duplicates": ["02015_00.jpg", ...]}}``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"exclude list not found: {path}")
    text = path.read_text()
    if not text.lstrip().startswith(("{", "[")):
        return set(viton.read_id_list(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"exclude list {path} looks like JSON but cannot be parsed: {exc}") from None

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)

    return {Path(s.strip()).stem for s in strings(data) if s.strip()}


def check_sample(split_dir: Path, sample_id: str, labels: tuple[int, ...]) -> tuple[str | None, str]:
    """Why a sample cannot be trained on: (reason or None, detail). Reads only its parse map."""
    missing = viton.missing_files(split_dir, sample_id)
    if missing:
        return MISSING, ",".join(str(p.relative_to(viton.as_split(split_dir).dir)) for p in missing)
    try:
        if not viton.has_garment(split_dir, sample_id, labels):
            return NO_GARMENT, f"no pixel with label {','.join(map(str, labels))}"
    except DataError as exc:
        return UNREADABLE, str(exc).replace("\n", " ")
    return None, ""


def _check(args: tuple[Path, str, tuple[int, ...]]) -> tuple[str, str | None, str]:
    split_dir, sample_id, labels = args
    return (sample_id, *check_sample(split_dir, sample_id, labels))


def _check_all(
    split_dir: Path, ids: list[str], labels: tuple[int, ...], workers: int, progress: bool
) -> list[tuple[str, str | None, str]]:
    """check_sample over ``ids``, in order. Decoding the parse maps dominates and is CPU-bound,
    so many samples go through a process pool."""
    jobs = [(split_dir, i, labels) for i in ids]
    use_pool = workers > 1 and len(jobs) >= _POOL_MIN_SAMPLES
    with process_pool(workers) if use_pool else contextlib.nullcontext() as pool:
        results: Iterable = pool.imap(_check, jobs, chunksize=32) if pool else map(_check, jobs)
        if progress:
            from rich.console import Console
            from rich.progress import track

            results = track(
                results, total=len(jobs), description="reading parse maps",
                console=Console(stderr=True), transient=True,
            )
        return list(results)


def make_split(
    data: Path,
    *,
    out: Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 42,
    split: str = "train",
    garment_labels: tuple[int, ...] = viton.DEFAULT_GARMENT_LABELS,
    exclude: Path | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> SplitResult:
    """Write ``train_ids.txt``, ``val_ids.txt`` and ``skipped_ids.txt`` for one split of ``data``.

    ``data`` is a data set root (with ``train/``, ``test/``) or a split folder itself; the lists
    go to ``out`` (default ``data``). Validation gets ``round(n * val_fraction)`` of the ``n``
    usable ids, at least 1 and at most ``n - 1``. ``workers`` processes read the parse maps
    (default: up to 4, by CPU count). Refuses to replace existing lists unless ``overwrite``.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if split not in viton.SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of: {', '.join(viton.SPLITS)}")
    if not garment_labels:
        raise ConfigError("the garment label set is empty; give at least one label, e.g. 5")
    split_dir = viton.resolve_split_dir(data, split)
    out = Path(out) if out is not None else Path(data)
    paths = {"train": out / TRAIN_LIST, "val": out / VAL_LIST, "skipped": out / SKIPPED_LIST}
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise DataError(
            f"{', '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}; "
            "pass --overwrite to replace them, or --out to write elsewhere"
        )
    check_writable(paths["train"], "split lists")

    ids = viton.list_ids(split_dir)  # sorted: independent of the file system's order
    excluded = excluded_not_found = 0
    if exclude is not None:
        drop = read_exclude_list(exclude)
        kept = [i for i in ids if i not in drop]
        excluded = len(ids) - len(kept)
        excluded_not_found = len(drop - set(ids))
        ids = kept

    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    skipped: dict[str, list[str]] = {r: [] for r in REASONS}
    details: dict[str, str] = {}
    usable: list[str] = []
    for sample_id, reason, detail in _check_all(split_dir, ids, tuple(garment_labels), workers, progress):
        if reason is None:
            usable.append(sample_id)
        else:
            skipped[reason].append(sample_id)
            details[sample_id] = detail
    if len(usable) < 2:
        counts = ", ".join(f"{len(v)} {r}" for r, v in skipped.items() if v) or "none"
        raise DataError(
            f"{split_dir} has {len(usable)} usable sample(s) out of {len(ids)} (skipped: {counts}); "
            "a split needs at least 2 (one to train on, one to validate)"
        )

    order = np.random.default_rng(seed).permutation(len(usable))
    n_val = min(len(usable) - 1, max(1, round(len(usable) * val_fraction)))
    val_ids = sorted(usable[k] for k in order[:n_val])
    train_ids = sorted(usable[k] for k in order[n_val:])

    skipped_lines = ["# id reason detail\n"] + [
        f"{i} {reason} {details[i]}\n" for reason in REASONS for i in skipped[reason]
    ]
    atomic_write_text(paths["train"], "".join(f"{i}\n" for i in train_ids))
    atomic_write_text(paths["val"], "".join(f"{i}\n" for i in val_ids))
    atomic_write_text(paths["skipped"], "".join(skipped_lines))
    return SplitResult(train_ids, val_ids, skipped, excluded, excluded_not_found, paths, details)
