"""`downsample`: a reduced-size copy of the first N samples of a data set, in any of its layouts.

The result is a data set of the same layout (VITON-HD, VITON 2018 or Dress Code: detected from
the folder, or ``layout``), with the same folders, file names and pair files, so every other
command reads it like the original. What it does:

- Where the samples are: VITON-HD and VITON have one folder per split (``train/``, ``test/``;
  a root with only one of them, or a split folder itself, works too). Dress Code has one folder
  per category (``upper_body/``, ``lower_body/``, ``dresses/``; ``categories`` picks some; a
  category folder itself works too) and its pair files say which ids are train or test.
- Which samples: ids come from the photos (sorted); ``first`` keeps the first N of each split,
  and for Dress Code the first N of each split's pair files in each category (the first N
  photos where a category has no pair file). For each chosen id, the file of every folder of
  the layout's :attr:`~clothes_extractor.data.layouts.Layout.folders` that exists in the source
  is written, so all modalities of a sample stay matched. A file absent for an id is counted as
  *missing*, not as a failure. Folders and files the layout does not know are ignored.
- Size: the longest side becomes ``size``, the other ``round(side * size / longest)``; the aspect
  ratio is kept (768x1024 -> 48x64 at ``size=64``). No square canvas. A size larger than the
  source photos is refused (``downsample`` never enlarges: a 192x256 VITON set stays at most 256).
- How each file is resized (photos with LANCZOS, label maps with nearest neighbour and their
  palette, masks, keypoints): :mod:`clothes_extractor.data.resize`.
- Pair files (VITON's ``<split>_pairs.txt``; Dress Code's per category and at the root) are
  copied, filtered to the lines whose first column is a chosen id.

Safety: every file is written atomically (temporary file beside it + ``os.replace``), so a file
that exists in the destination is complete and a rerun skips it (resume). The destination
records its size and layout in ``downsample.json``; a run with another size or layout refuses
to mix them unless ``overwrite`` is set, which first deletes what an earlier run wrote (split
and category folders, pair files, record). A rerun with the same size and another ``first``
adds the missing samples and rewrites the pair files for the ids of that run. A file that
cannot be read is reported by name and the others go on.

No torch and no numpy here: this command must start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from clothes_extractor import __version__
from clothes_extractor.data.layouts import (
    DRESSCODE,
    DRESSCODE_CATEGORIES,
    DRESSCODE_PAIR_FILES,
    LAYOUTS,
    SPLITS,
    Layout,
    detect_layout,
    parse_categories,
)
from clothes_extractor.data.resize import (  # noqa: F401 - target_size, FileResult: public here too
    SKIPPED,
    WRITTEN,
    FileResult,
    FileTask,
    kind_of,
    process_file,
    target_size,
)
from clothes_extractor.data.workers import cpu_count, process_pool
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text, check_writable

RECORD_NAME = "downsample.json"
VITON_PAIR_FILES = tuple(f"{split}_pairs.txt" for split in SPLITS)
DRESSCODE_PAIR_NAMES = tuple(n for names in DRESSCODE_PAIR_FILES.values() for n in names)
PAIR_FILES = tuple(dict.fromkeys(VITON_PAIR_FILES + DRESSCODE_PAIR_NAMES))


@dataclass(frozen=True)
class DownsampleReport:
    """What a `downsample` run did. ``failed`` holds (source file, reason) pairs."""

    src: Path
    dst: Path
    size: int
    ids: dict[str, int]  # split or Dress Code category ("" for a folder given directly) -> ids chosen
    written: int
    skipped: int  # already present in dst (a finished earlier run)
    missing: int  # absent in the source for a chosen id (not an error)
    failed: tuple[tuple[Path, str], ...] = ()
    seconds: float = 0.0
    layout: str = "viton-hd"

    @property
    def files(self) -> int:
        """Files this run wrote or tried to write (skipped ones excluded)."""
        return self.written + len(self.failed)

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


# --- the data set ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A folder of samples (a split, or a Dress Code category) and the ids chosen in it."""

    name: str  # the report's key: "train", "upper_body", "" for a folder given directly
    src: Path
    dst: Path
    ids: tuple[str, ...]


def _photo_ids(layout: Layout, folder: Path) -> list[str]:
    """The ids of the photos in ``folder`` (a split or category folder), sorted; [] if none."""
    photos = folder / layout.photo_folder
    names = os.listdir(photos) if photos.is_dir() else []
    return sorted(i for n in names if (i := layout.id_from_photo(n)))


def _listed_ids(layout: Layout, files: Iterable[Path]) -> list[str]:
    """Ids in the first column of the pair files that exist among ``files``, in file order."""
    out: list[str] = []
    for path in files:
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    name = Path(line.split()[0]).name
                    out.append(layout.id_from_photo(name) or Path(name).stem)
    return out


def _dresscode_ids(folder: Path, root: Path | None, first: int | None) -> tuple[str, ...]:
    """The first ``first`` ids of each split's pair files (in this category folder or at the
    root) that have a photo here; the first ``first`` photos where no pair file lists any."""
    photos = _photo_ids(DRESSCODE, folder)
    have = set(photos)
    chosen: set[str] = set()
    for names in DRESSCODE_PAIR_FILES.values():
        places = [folder] + ([root] if root is not None else [])
        listed = sorted({i for i in _listed_ids(DRESSCODE, (p / n for p in places for n in names)) if i in have})
        chosen.update(listed[:first])
    return tuple(sorted(chosen)) if chosen else tuple(photos[:first])


def _no_layout(src: Path, layout: Layout) -> DataError:
    where = f"{src}/<category>/{layout.photo}" if layout is DRESSCODE else f"{src}/train/{layout.photo}"
    return DataError(
        f"{src} holds no {layout.name} samples: expected {where}, ... "
        "(pass --src with the data set's root folder, or --layout to force another layout)"
    )


def _units(src: Path, dst: Path, layout: Layout, categories: tuple[str, ...] | None, first: int | None) -> list[_Unit]:
    """The folders of samples of ``src`` (splits, or Dress Code categories) with their chosen ids."""
    if layout is not DRESSCODE:
        if categories is not None:
            raise DataError(f"--category applies to Dress Code; {src} is {layout.name}")
        found = [(s, src / s, dst / s) for s in SPLITS if (src / s).is_dir()]
        if not found and all((src / f).is_dir() for f in layout.signature()):
            found = [("", src, dst)]  # a split folder given directly
        if not found:
            raise _no_layout(src, layout)
        return [_Unit(name, s, d, tuple(_photo_ids(layout, s)[:first])) for name, s, d in found]
    if (src / DRESSCODE.photo_folder).is_dir():  # a category folder given directly
        if categories is not None and src.name not in categories:
            raise DataError(f"{src} is the Dress Code category folder {src.name}, not {', '.join(categories)}")
        return [_Unit("", src, dst, _dresscode_ids(src, None, first))]
    present = tuple(c for c in DRESSCODE_CATEGORIES if (src / c / DRESSCODE.photo_folder).is_dir())
    for c in categories or ():
        if c not in present:
            raise DataError(f"Dress Code category folder {src / c / DRESSCODE.photo_folder}/ not found (asked for --category {c})")
    if not present:
        raise _no_layout(src, layout)
    return [_Unit(c, src / c, dst / c, _dresscode_ids(src / c, src, first)) for c in (categories or present)]


def _check_paths(src: Path, dst: Path) -> None:
    s, d = src.resolve(), dst.resolve()
    if s == d or s.is_relative_to(d) or d.is_relative_to(s):
        raise ConfigError(
            f"--dst {dst} and --src {src} overlap; write the downsampled copy to a separate folder"
        )


def _read_record(dst: Path) -> dict | None:
    path = dst / RECORD_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        int(record["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} is unreadable ({exc}); delete it or pass --overwrite to start {dst} afresh"
        ) from None
    return record


def _owned_paths(dst: Path) -> list[Path]:
    """What a downsample run writes in ``dst`` (and --overwrite deletes), in any layout."""
    folders = [f for layout in LAYOUTS.values() for f in layout.folders]
    names = dict.fromkeys([*SPLITS, *DRESSCODE_CATEGORIES, *folders, *PAIR_FILES, RECORD_NAME])
    return [p for n in names if (p := dst / n).exists()]


def _check_record(dst: Path, record: dict | None, size: int, layout: Layout) -> None:
    if record is not None and int(record["size"]) != size:
        raise DataError(
            f"{dst} holds a data set downsampled to size {int(record['size'])}; this run asks for "
            f"size {size}. Sizes are not mixed: pass --overwrite to replace it, or choose another --dst"
        )
    if record is not None and record.get("layout", layout.name) != layout.name:
        raise DataError(
            f"{dst} holds a {record['layout']} data set; this run writes {layout.name}. Layouts are "
            "not mixed: pass --overwrite to replace it, or choose another --dst"
        )
    if record is None and any(p.name != RECORD_NAME for p in _owned_paths(dst)):
        raise DataError(
            f"{dst} already holds data but no {RECORD_NAME} (it was not written by downsample, "
            "so its size is unknown); pass --overwrite to replace it, or choose another --dst"
        )


def _prepare_destination(src: Path, dst: Path, layout: Layout, size: int, first: int | None, overwrite: bool) -> None:
    if overwrite:
        for path in _owned_paths(dst):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    else:
        _check_record(dst, _read_record(dst), size, layout)
    dst.mkdir(parents=True, exist_ok=True)
    record = {
        "size": size,
        "layout": layout.name,
        "source": str(src),
        "first": first,
        "tool": f"clothes-extractor {__version__} downsample",
    }
    atomic_write_text(dst / RECORD_NAME, json.dumps(record, indent=2) + "\n")


def _check_not_enlarging(units: Sequence[_Unit], layout: Layout, size: int) -> None:
    """Refuse a size larger than the source photos (read from the first chosen sample's header)."""
    unit = next((u for u in units if u.ids), None)
    if unit is None:
        return
    photo = layout.files(unit.src, unit.ids[0]).photo
    try:
        with Image.open(photo) as probe:
            width, height = probe.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read the photo {photo} to learn the source size: {exc}") from None
    if size > max(width, height):
        raise ConfigError(
            f"size {size} is larger than the source photos ({width}x{height}, e.g. {photo}); "
            f"downsample never enlarges: use a size of at most {max(width, height)}"
        )


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _remove_stale_temp_files(folder: Path, names: Iterable[str]) -> None:
    """Temporary files of an interrupted run (``.<stem>.<random>.tmp<suffix>``)."""
    for name in names:
        if name.startswith(".") and ".tmp" in name:
            (folder / name).unlink(missing_ok=True)


def _plan(units: Sequence[_Unit], layout: Layout, size: int) -> tuple[list[FileTask], int, int]:
    """The files to write, and counts of those already done (skipped) and absent (missing)."""
    tasks: list[FileTask] = []
    skipped = missing = 0
    for unit in units:
        for folder, patterns in layout.folders.items():
            if not (unit.src / folder).is_dir():
                continue  # a folder this copy of the data set does not have
            present = set(_listdir(unit.src / folder))
            done_names = _listdir(unit.dst / folder)
            _remove_stale_temp_files(unit.dst / folder, done_names)
            done = set(done_names)
            openpose = kind_of(folder) == "openpose"
            for sample_id in unit.ids:
                photo = layout.files(unit.src, sample_id).photo if openpose else None
                for name in (pattern.format(id=sample_id) for pattern in patterns):
                    if name not in present:
                        missing += 1
                    elif name in done:
                        skipped += 1
                    else:
                        tasks.append(FileTask(unit.src / folder / name, unit.dst / folder / name, folder, size, photo))
    return tasks, skipped, missing


def _pair_files(src: Path, dst: Path, layout: Layout, units: Sequence[_Unit]) -> list[tuple[Path, Path, set[str]]]:
    """(source pair file, destination, ids kept) for each pair file of the source."""
    if layout is not DRESSCODE:
        plan = [(src / f"{u.name}_pairs.txt", dst / f"{u.name}_pairs.txt", set(u.ids)) for u in units if u.name]
    else:
        plan = [(u.src / n, u.dst / n, set(u.ids)) for u in units for n in DRESSCODE_PAIR_NAMES]
        if units and units[0].name:  # a root: its own pair files mix the categories
            every = {i for u in units for i in u.ids}
            plan += [(src / n, dst / n, every) for n in DRESSCODE_PAIR_NAMES]
    return [(s, d, keep) for s, d, keep in plan if s.is_file()]


def _copy_pair_files(plan: Sequence[tuple[Path, Path, set[str]]], layout: Layout) -> None:
    for src, dst, keep in plan:
        lines = [
            line
            for line in src.read_text().splitlines()
            if line.strip() and (layout.id_from_photo(Path(line.split()[0]).name) or Path(line.split()[0]).stem) in keep
        ]
        atomic_write_text(dst, "".join(f"{line}\n" for line in lines))


@contextlib.contextmanager
def _results(tasks: list[FileTask], workers: int) -> Iterator[Iterator[FileResult]]:
    """Results of ``tasks`` in completion order, from ``workers`` processes (1: this one).

    The pool is started on entry, before any progress-bar thread exists, so forking is safe.
    """
    if workers <= 1 or len(tasks) <= 1:
        yield map(process_file, tasks)
        return
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    with process_pool(min(workers, len(tasks))) as pool:  # exit terminates the workers
        yield pool.imap_unordered(process_file, tasks, chunksize=chunksize)


def _run(tasks: list[FileTask], workers: int, progress: bool) -> tuple[int, int, list[tuple[Path, str]]]:
    """Write ``tasks``: (written, skipped, failed as (source, reason) sorted)."""
    from clothes_extractor.progress import progress_bar

    written = skipped = 0
    failed: list[tuple[Path, str]] = []
    with _results(tasks, workers) as results:
        advance, stop = progress_bar("downsample", len(tasks)) if progress and tasks else (lambda n=1: None, lambda: None)
        try:
            for result in results:
                if result.status == WRITTEN:
                    written += 1
                elif result.status == SKIPPED:
                    skipped += 1
                else:
                    failed.append((result.path, result.message))
                advance()
        finally:
            stop()
    return written, skipped, sorted(failed)


def _check_arguments(src: Path, size: int, first: int | None, workers: int) -> None:
    if size < 1:
        raise ConfigError(f"size must be at least 1 pixel, got {size}; e.g. -s 64")
    if first is not None and first < 1:
        raise ConfigError(f"the number of samples per split must be at least 1, got {first}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if not src.is_dir():
        raise DataError(f"source data set not found: {src} (download the data set and unzip it there, or pass --src)")


def downsample(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    size: int,
    first: int | None = None,
    layout: str | None = None,
    categories: str | Sequence[str] | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DownsampleReport:
    """Write the first ``first`` samples of each split of ``src`` to ``dst`` at ``size``.

    ``size`` is the longest side of every output image (aspect kept; larger than the source
    photos is refused); ``first=None`` takes all samples; ``layout`` forces the data set layout
    (default: detected); ``categories`` picks Dress Code categories (default: every one
    present); ``workers`` processes decode in parallel (default: all cores; 1 runs in this
    process). Files already in ``dst`` are skipped (resume). A source file that cannot be read
    is listed in the report's ``failed`` and does not stop the others; errors about the data set
    as a whole (missing ``src``, a ``dst`` of another size) raise DataError / ConfigError.
    """
    start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    workers = cpu_count() if workers is None else workers
    _check_arguments(src, size, first, workers)
    found = detect_layout(src, layout)
    units = _units(src, dst, found, parse_categories(categories) if categories is not None else None, first)
    if not any(unit.ids for unit in units):
        raise _no_layout(src, found)
    _check_paths(src, dst)
    check_writable(dst, "output folder", folder=True)
    _check_not_enlarging(units, found, size)
    _prepare_destination(src, dst, found, size, first, overwrite)
    tasks, skipped, missing = _plan(units, found, size)
    _copy_pair_files(_pair_files(src, dst, found, units), found)
    try:
        written, skipped_now, failed = _run(tasks, workers, progress)
    except BaseException:
        # Terminated workers (Ctrl-C) die mid-write and leave their temporary files.
        for folder in {task.dst.parent for task in tasks}:
            _remove_stale_temp_files(folder, _listdir(folder))
        raise
    return DownsampleReport(
        src=src,
        dst=dst,
        size=size,
        ids={unit.name: len(unit.ids) for unit in units},
        written=written,
        skipped=skipped + skipped_now,
        missing=missing,
        failed=tuple(failed),
        seconds=time.perf_counter() - start,
        layout=found.name,
    )
