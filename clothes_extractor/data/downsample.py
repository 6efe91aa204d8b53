"""`downsample`: a reduced-size copy of the first N samples of a VITON-HD data set.

The result is itself a VITON-HD-layout data set (same folders, same file names, pair files),
so every other command reads it like the original. What it does, file by file:

- Sample ids come from ``image/`` of each split (``train/``, ``test/``; a root with only one of
  them, or a split folder itself, works too), sorted; ``first`` keeps the first N of each split.
  For each chosen id, the file of every folder of :data:`viton.FOLDERS` that exists in the
  source is written, so all modalities of a sample stay matched. A file absent for an id is
  counted as *missing*, not as a failure. Folders the layout does not know are ignored.
- Size: the longest side becomes ``size``, the other ``round(side * size / longest)``; the aspect
  ratio is kept (768x1024 -> 48x64 at ``size=64``). No square canvas.
- Photos (``image``, ``cloth``, ``agnostic-v3.2``, ``image-densepose``, ``openpose_img``):
  JPEGs are decoded in libjpeg's draft mode (DCT scaling by 1/2, 1/4 or 1/8, never below the
  target size), then resized with LANCZOS; JPEGs are saved at quality 95. PNGs keep their mode.
- Label maps (:data:`viton.LABEL_MAP_FOLDERS`): nearest neighbour only, mode and palette kept,
  so every output pixel is one of the source's label indices (never interpolated).
- Masks (:data:`viton.MASK_FOLDERS`): greyscale stays greyscale. JPEG masks (``cloth-mask``,
  near-binary with ringing already) are filtered like photos and stay mode ``L``; lossless PNG
  masks (``agnostic-mask``) use nearest neighbour, so a binary mask stays binary.
- ``openpose_json``: the 2-D keypoints (``*_keypoints_2d``: x, y, confidence triples) are scaled
  by the photo's resize factor so they stay valid on the smaller photo; confidences and
  everything else are copied unchanged (3-D keypoints too).
- Pair files (``train_pairs.txt``, ``test_pairs.txt``) are copied, filtered to the lines whose
  first column is a chosen id.

Safety: every file is written atomically (temporary file beside it + ``os.replace``), so a file
that exists in the destination is complete and a rerun skips it (resume). The destination
records its size in ``downsample.json``; a run with another size refuses to mix them unless
``overwrite`` is set, which first deletes what an earlier run wrote (split folders, pair files,
record). A rerun with the same size and another ``first`` adds the missing samples and rewrites
the pair files for the ids of that run. A file that cannot be read is reported by name and the
others go on.

No torch here: this command must start fast.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from clothes_extractor import __version__
from clothes_extractor.data import viton
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import atomic_path, atomic_write_text

RECORD_NAME = "downsample.json"
PAIR_FILES = tuple(f"{split}_pairs.txt" for split in viton.SPLITS)
JPEG_QUALITY = 95
KEYPOINTS_FOLDER = "openpose_json"
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"

# Errors that mean "this file is not a readable image" (PIL raises all of these).
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class FileResult:
    status: str  # WRITTEN, SKIPPED or FAILED
    path: Path  # the source file
    message: str = ""


@dataclass(frozen=True)
class DownsampleReport:
    """What a `downsample` run did. ``failed`` holds (source file, reason) pairs."""

    src: Path
    dst: Path
    size: int
    ids: dict[str, int]  # split name ("" for a split folder given directly) -> ids chosen
    written: int
    skipped: int  # already present in dst (a finished earlier run)
    missing: int  # absent in the source for a chosen id (not an error)
    failed: tuple[tuple[Path, str], ...] = ()
    seconds: float = 0.0

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


# --- geometry ----------------------------------------------------------------------------------


def target_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the longest side ``size`` and the aspect ratio kept.

    >>> target_size(768, 1024, 64)
    (48, 64)
    """
    longest = max(width, height)
    return (
        max(1, round(width * size / longest)),
        max(1, round(height * size / longest)),
    )


# --- one file ----------------------------------------------------------------------------------


def _kind(folder: str) -> str:
    if folder == KEYPOINTS_FOLDER:
        return "keypoints"
    if folder in viton.LABEL_MAP_FOLDERS:
        return "labels"
    if folder in viton.MASK_FOLDERS:
        return "mask"
    return "photo"


def _resize_image(src: Path, dst: Path, kind: str, size: int) -> None:
    with Image.open(src) as image:  # reads the header only
        out, info = _resized(image, kind, size)
    fmt = _FORMATS.get(dst.suffix.lower(), "PNG")
    params: dict = {}
    if fmt == "JPEG":
        if out.mode not in ("RGB", "L"):
            out = out.convert("RGB")
        params["quality"] = JPEG_QUALITY
    elif "transparency" in info:
        params["transparency"] = info["transparency"]
    with atomic_path(dst) as tmp:
        out.save(tmp, format=fmt, **params)


def _resized(image: Image.Image, kind: str, size: int) -> tuple[Image.Image, dict]:
    """The resized image and the source's info (decoded here; JPEGs in draft mode)."""
    box = target_size(*image.size, size)
    jpeg = image.format == "JPEG"
    nearest = kind == "labels" or (kind == "mask" and not jpeg)
    want = "L" if kind == "mask" and jpeg else ("RGB" if kind == "photo" and jpeg else None)
    if jpeg and not nearest:
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the requested size.
        image.draft(want, box)
    image.load()
    if want and image.mode != want:
        image = image.convert(want)
    if nearest or image.mode in ("P", "1"):
        # Label indices (and binary masks) are never interpolated; the mode is kept.
        out = image.resize(box, Image.NEAREST)
        if image.mode == "P":
            palette = image.palette
            out.putpalette(image.getpalette(palette.mode), palette.mode)
    else:
        out = image.resize(box, Image.LANCZOS, reducing_gap=3.0)
    return out, image.info


def _scale_keypoints(src: Path, dst: Path, photo: Path, size: int) -> None:
    try:
        with Image.open(photo) as probe:
            width, height = probe.size
    except FileNotFoundError:
        raise DataError(f"cannot scale keypoints: photo {photo} not found") from None
    new_w, new_h = target_size(width, height, size)
    sx, sy = new_w / width, new_h / height
    try:
        data = json.loads(src.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not an OpenPose JSON file: {exc}") from None

    def scale(points: list) -> list:
        out = list(points)
        for i in range(0, len(out) - 2, 3):
            out[i] = round(out[i] * sx, 3)
            out[i + 1] = round(out[i + 1] * sy, 3)
        return out

    for person in data.get("people", []) if isinstance(data, dict) else []:
        for key, value in person.items():
            if key.endswith("_keypoints_2d") and isinstance(value, list):
                person[key] = scale(value)
    atomic_write_text(dst, json.dumps(data, separators=(",", ":")))


@dataclass(frozen=True)
class _Task:
    src: Path
    dst: Path
    folder: str
    size: int
    photo: Path | None = None  # the sample's photo, for keypoints


def process_file(task: _Task) -> FileResult:
    """Write one downsampled file. Never raises for a bad source: returns FAILED with why."""
    if task.dst.exists():  # written atomically by an earlier run: complete
        return FileResult(SKIPPED, task.src)
    try:
        kind = _kind(task.folder)
        if kind == "keypoints":
            _scale_keypoints(task.src, task.dst, task.photo, task.size)
        else:
            _resize_image(task.src, task.dst, kind, task.size)
    except DataError as exc:
        return FileResult(FAILED, task.src, str(exc))
    except _READ_ERRORS as exc:
        return FileResult(FAILED, task.src, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others
        return FileResult(FAILED, task.src, f"{type(exc).__name__}: {exc}")
    return FileResult(WRITTEN, task.src)


# --- the data set ------------------------------------------------------------------------------


def _split_dirs(src: Path, dst: Path) -> list[tuple[str, Path, Path]]:
    """(split name, source split folder, destination split folder) for each split present."""
    if not src.is_dir():
        raise DataError(
            f"source data set not found: {src} (download VITON-HD and unzip it there, or pass --src)"
        )
    found = [(s, src / s, dst / s) for s in viton.SPLITS if (src / s).is_dir()]
    if found:
        return found
    if (src / viton.PHOTO).is_dir():  # a split folder given directly
        return [("", src, dst)]
    raise DataError(
        f"{src} is not a VITON-HD data set: it has no {' or '.join(s + '/' for s in viton.SPLITS)} "
        f"folder and no {viton.PHOTO}/ folder; expected {src}/train/{viton.PHOTO}/<id>.jpg, ... "
        "(pass --src with the folder that holds train/ and test/)"
    )


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
    """What a downsample run writes in ``dst`` (and --overwrite deletes)."""
    names = [*viton.SPLITS, *viton.FOLDERS, *PAIR_FILES, RECORD_NAME]
    return [p for n in names if (p := dst / n).exists()]


def _prepare_destination(src: Path, dst: Path, size: int, first: int | None, overwrite: bool) -> None:
    record = None if overwrite else _read_record(dst)
    if overwrite:
        for path in _owned_paths(dst):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    elif record is not None and int(record["size"]) != size:
        raise DataError(
            f"{dst} holds a data set downsampled to size {int(record['size'])}; this run asks for "
            f"size {size}. Sizes are not mixed: pass --overwrite to replace it, or choose another --dst"
        )
    elif record is None and any(p.name != RECORD_NAME for p in _owned_paths(dst)):
        raise DataError(
            f"{dst} already holds data but no {RECORD_NAME} (it was not written by downsample, "
            "so its size is unknown); pass --overwrite to replace it, or choose another --dst"
        )
    dst.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        dst / RECORD_NAME,
        json.dumps(
            {
                "size": size,
                "source": str(src),
                "first": first,
                "tool": f"clothes-extractor {__version__} downsample",
            },
            indent=2,
        )
        + "\n",
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


def _choose_ids(splits: list[tuple[str, Path, Path]], first: int | None) -> dict[str, list[str]]:
    """The first ``first`` ids (sorted, from the photos) of each split."""
    return {split: viton.list_ids(src_dir)[:first] for split, src_dir, _ in splits}


def _plan(
    splits: list[tuple[str, Path, Path]], chosen: dict[str, list[str]], size: int
) -> tuple[list[_Task], int, int]:
    """The files to write, and counts of those already done (skipped) and absent (missing)."""
    tasks: list[_Task] = []
    skipped = missing = 0
    for split, src_dir, dst_dir in splits:
        for folder, pattern in viton.FOLDERS.items():
            if not (src_dir / folder).is_dir():
                continue  # a folder this copy of the data set does not have
            present = set(_listdir(src_dir / folder))
            done_names = _listdir(dst_dir / folder)
            _remove_stale_temp_files(dst_dir / folder, done_names)
            done = set(done_names)
            for sample_id in chosen[split]:
                name = pattern.format(id=sample_id)
                if name not in present:
                    missing += 1
                elif name in done:
                    skipped += 1
                else:
                    photo = viton.sample_path(src_dir, viton.PHOTO, sample_id) if folder == KEYPOINTS_FOLDER else None
                    tasks.append(_Task(src_dir / folder / name, dst_dir / folder / name, folder, size, photo))
    return tasks, skipped, missing


def _copy_pair_files(src: Path, dst: Path, chosen: dict[str, list[str]]) -> None:
    for split, ids in chosen.items():
        if not split:
            continue
        pairs = src / f"{split}_pairs.txt"
        if not pairs.is_file():
            continue
        keep = set(ids)
        lines = [
            line
            for line in pairs.read_text().splitlines()
            if line.strip() and Path(line.split()[0]).stem in keep
        ]
        atomic_write_text(dst / pairs.name, "".join(f"{line}\n" for line in lines))


@contextlib.contextmanager
def _results(tasks: list[_Task], workers: int) -> Iterator[Iterator[FileResult]]:
    """Results of ``tasks`` in completion order, from ``workers`` processes (1: this one).

    The pool is started on entry, before any progress-bar thread exists, so forking is safe.
    """
    if workers <= 1 or len(tasks) <= 1:
        yield map(process_file, tasks)
        return
    # fork starts workers instantly on Linux; elsewhere the platform default.
    method = "fork" if sys.platform.startswith("linux") else None
    context = multiprocessing.get_context(method)
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    with context.Pool(min(workers, len(tasks))) as pool:  # exit terminates the workers
        yield pool.imap_unordered(process_file, tasks, chunksize=chunksize)


def _progress_bar(total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("downsample"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("files", total=total)
    progress.start()
    return (lambda: progress.advance(task)), progress.stop


def _cpu_count() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def downsample(
    src: Path,
    dst: Path,
    *,
    size: int,
    first: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DownsampleReport:
    """Write the first ``first`` samples of each split of ``src`` to ``dst`` at ``size``.

    ``size`` is the longest side of every output image (aspect kept); ``first=None`` takes all
    samples; ``workers`` processes decode in parallel (default: all cores; 1 runs in this
    process). Files already in ``dst`` are skipped (resume). A source file that cannot be read
    is listed in the report's ``failed`` and does not stop the others; errors about the data set
    as a whole (missing ``src``, a ``dst`` of another size) raise DataError / ConfigError.
    """
    start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if size < 1:
        raise ConfigError(f"size must be at least 1 pixel, got {size}; e.g. -s 64")
    if first is not None and first < 1:
        raise ConfigError(f"the number of samples per split must be at least 1, got {first}")
    workers = _cpu_count() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    splits = _split_dirs(src, dst)
    _check_paths(src, dst)
    chosen = _choose_ids(splits, first)
    _prepare_destination(src, dst, size, first, overwrite)
    tasks, skipped, missing = _plan(splits, chosen, size)
    _copy_pair_files(src, dst, chosen)

    written = 0
    failed: list[tuple[Path, str]] = []
    with _results(tasks, workers) as results:
        advance, stop = _progress_bar(len(tasks)) if progress and tasks else (lambda: None, lambda: None)
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
    failed.sort()
    return DownsampleReport(
        src=src,
        dst=dst,
        size=size,
        ids={split: len(ids) for split, ids in chosen.items()},
        written=written,
        skipped=skipped,
        missing=missing,
        failed=tuple(failed),
        seconds=time.perf_counter() - start,
    )
