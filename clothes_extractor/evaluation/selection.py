"""Which samples `evaluate` scores, and why the others are left out.

``--split``: ``val`` (default) the ids of ``DATA/val_ids.txt`` over ``DATA/train/``; ``test``
every sample of ``DATA/test/``; a FILE: its ids (a list or a pair file, first column) over
``--folder``, by default the first of ``test/``, ``train/`` that holds a photo of every id.
``--exclude`` drops the ids of a list or of the protocol JSON
(``vitonhd_duplicate_filenames.json``: TryOffDiff's 1,990 test samples = test minus these).
Samples that cannot be scored (missing files, unreadable parse map, no garment pixel) are
skipped and reported, as `split` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clothes_extractor.data import split as split_lib
from clothes_extractor.data import viton
from clothes_extractor.errors import ConfigError, DataError


@dataclass(frozen=True)
class Selection:
    """The samples to score and how they were chosen."""

    split_dir: Path
    folder: str
    ids: list[str]
    source: str  # "val", "test" or the list file
    listed: int  # ids before exclusion and checks
    excluded: int = 0
    excluded_not_found: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids
    details: dict[str, str] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def summary(self) -> dict[str, Any]:
        """How the samples were chosen, for metrics.json."""
        return {
            "source": self.source, "folder": self.folder, "split_dir": str(self.split_dir),
            "listed": self.listed, "excluded": self.excluded,
            "excluded_not_in_list": self.excluded_not_found, "skipped": self.n_skipped,
        }


def _guess_folder(root, ids: Sequence[str], list_path: Path) -> str:
    """The first split (test, then train) holding every listed id's photo."""
    data = Path(root)
    if _is_split_folder(data):
        return "train"
    missing: dict[str, list[str]] = {}
    for folder in ("test", "train"):
        try:
            split = viton.resolve_split_dir(root, folder)
        except DataError:
            continue
        missing[folder] = [i for i in ids if not split.files(i).photo.is_file()]
        if not missing[folder]:
            return folder
    if not missing:
        viton.resolve_split_dir(root, "train")  # raises the layout error
    detail = "; ".join(f"{f}/ lacks {len(m)} (e.g. {m[0]})" for f, m in missing.items())
    raise DataError(
        f"no split folder of {data} holds every id of {list_path}: {detail}; "
        "pass --folder train or --folder test (samples without their files are then skipped)"
    )


def _is_split_folder(data: Path) -> bool:
    """Whether ``data`` is a VITON-style split folder itself (it holds the photos' folder)."""
    return not any((data / s).is_dir() for s in viton.SPLITS) and (data / viton.PHOTO).is_dir()


def _listed(root, split: str, folder: str | None) -> tuple[Any, str, list[str], str]:
    """(split folder, its name, the listed ids, their source) of ``--split``."""
    data = Path(root)
    if split == "val":
        list_path = data / split_lib.VAL_LIST
        if not list_path.is_file():
            raise DataError(
                f"validation list {list_path} not found; run `clothes-extractor split --data {data}` first, "
                "or pass --split test or --split FILE"
            )
        folder = folder or "train"
        return viton.resolve_split_dir(root, folder), folder, viton.read_id_list(list_path), "val"
    if split == "test":
        if folder not in (None, "test"):
            raise ConfigError("--split test scores DATA/test; --folder applies to --split FILE only")
        split_dir = viton.resolve_split_dir(root, "test")
        return split_dir, "test", viton.list_ids(split_dir), "test"
    list_path = Path(split)
    if not list_path.is_file():
        raise DataError(f"--split {split}: no such id list (use val, test, or the path of a list or pair file)")
    ids = viton.read_id_list(list_path)
    if not ids:
        raise DataError(f"id list {list_path} is empty")
    folder = folder or _guess_folder(root, ids, list_path)
    return viton.resolve_split_dir(root, folder), folder, ids, str(list_path)


def _checked(split_dir, ids: Sequence[str], garment_labels: tuple[int, ...], progress: bool):
    """(usable ids, reason -> skipped ids, id -> detail), by :func:`split.check_sample`."""
    skipped: dict[str, list[str]] = {r: [] for r in split_lib.REASONS}
    details: dict[str, str] = {}
    usable: list[str] = []
    checks = ids
    if progress:
        from rich.console import Console
        from rich.progress import track

        checks = track(ids, description="checking samples", console=Console(stderr=True), transient=True)
    for sample_id in checks:
        reason, detail = split_lib.check_sample(split_dir, sample_id, garment_labels)
        if reason is None:
            usable.append(sample_id)
        else:
            skipped[reason].append(sample_id)
            details[sample_id] = detail
    return usable, skipped, details


def select_samples(
    data: str | os.PathLike,
    split: str = "val",
    *,
    folder: str | None = None,
    exclude: str | os.PathLike | None = None,
    garment_labels: tuple[int, ...] = viton.DEFAULT_GARMENT_LABELS,
    progress: bool = False,
) -> Selection:
    """The ids to score (see the module doc); skips and reports samples that cannot be scored.
    ``data`` may be a :class:`~clothes_extractor.data.layouts.DataRoot` (keeps --layout, --category)."""
    if not Path(data).is_dir():
        raise DataError(f"data set folder not found: {Path(data)}")
    if folder is not None and folder not in viton.SPLITS:
        raise ConfigError(f"--folder {folder!r} is not one of {', '.join(viton.SPLITS)}")
    split_dir, folder, ids, source = _listed(data, split, folder)
    ids = list(dict.fromkeys(ids))  # drop duplicates, keep the order
    listed = len(ids)
    excluded = excluded_not_found = 0
    if exclude is not None:
        drop = split_lib.read_exclude_list(Path(exclude))
        kept = [i for i in ids if i not in drop]
        excluded, excluded_not_found = len(ids) - len(kept), len(drop - set(ids))
        ids = kept
    usable, skipped, details = _checked(split_dir, ids, garment_labels, progress)
    if not usable:
        counts = ", ".join(f"{len(v)} {r}" for r, v in skipped.items() if v) or "none listed"
        raise DataError(f"no sample to score in {split_dir} ({listed} listed, {excluded} excluded; skipped: {counts})")
    return Selection(split_dir, folder, usable, source, listed, excluded, excluded_not_found,
                     {r: v for r, v in skipped.items() if v}, details)
