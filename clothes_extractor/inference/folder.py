"""Folders of photos: one runner, one report, for `extract --images` and `segment --images`.

:func:`run_folder` reads each photo's input, runs the model ``batch_size`` at a time and writes
each result atomically. A photo that cannot be read or written is recorded in the report with
its reason and the others go on; outputs that exist are skipped unless ``overwrite``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clothes_extractor.errors import ClothesExtractorError, ConfigError, DataError, OutputError
from clothes_extractor.inference.extractor import Extractor
from clothes_extractor.inference.output import ExtractConfig, check_output_folder, outputs_for, write_parse, write_result
from clothes_extractor.inference.photo import IMAGE_EXTENSIONS, read_photo
from clothes_extractor.inference.pipeline import photo_and_mask
from clothes_extractor.inference.segmenter import Segmenter
from clothes_extractor.progress import progress_bar


@dataclass
class FolderReport:
    """What a folder run did, by id."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    skipped: list[str] = field(default_factory=list)  # outputs already there
    masks_without_photo: list[str] = field(default_factory=list)  # extract with --masks only
    notes: list[tuple[str, str]] = field(default_factory=list)  # (id, note): mask resized, area warnings
    seconds: float = 0.0


@dataclass(frozen=True)
class FolderJob:
    """One photo of a folder: its ``outputs`` (all there: skipped), the ``target`` a write error
    names, and ``read``, which returns the model's input (a ClothesExtractorError fails this
    photo only)."""

    id: str
    outputs: Sequence[Path]
    target: Path
    read: Callable[[], Any]


def run_folder(
    jobs: Sequence[FolderJob],
    predict: Callable[[list[Any]], Iterable[Any]],
    write: Callable[[Any, FolderJob], None],
    *,
    batch_size: int,
    overwrite: bool,
    progress: str | None = None,
) -> FolderReport:
    """Every job: read, ``predict`` (a batch of inputs -> results, in order), ``write``.
    ``progress``: the label of a progress bar (None: none)."""
    report = FolderReport()
    advance, stop = progress_bar(progress or "", len(jobs), enabled=progress is not None)
    batch: list[tuple[FolderJob, Any]] = []

    def flush() -> None:
        for (job, _), result in zip(batch, predict([x for _, x in batch])):
            try:
                write(result, job)
                report.done.append(job.id)
            except OutputError:  # the output place itself fails (full, read-only): stop; written files stay
                raise
            except (OSError, ValueError, ClothesExtractorError) as exc:
                report.failed.append((job.id, f"cannot write {job.target}: {exc}"))
        advance(len(batch))
        batch.clear()

    try:
        for job in jobs:
            if not overwrite and all(p.exists() for p in job.outputs):
                report.skipped.append(job.id)
                advance(1)
                continue
            try:
                batch.append((job, job.read()))
            except ClothesExtractorError as exc:
                report.failed.append((job.id, str(exc)))
                advance(1)
                continue
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        stop()
    return report


# --- finding the photos --------------------------------------------------------------------------


def images_by_stem(folder: Path, what: str) -> dict[str, list[Path]]:
    """The images of ``folder`` (any of :data:`IMAGE_EXTENSIONS`), by file stem."""
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}")
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            found.setdefault(p.stem, []).append(p)
    return found


def prefer(paths: list[Path]) -> Path:
    """Several files with one stem: PNG first (lossless), then by name."""
    return sorted(paths, key=lambda p: (p.suffix.lower() != ".png", p.name))[0]


def _photos(images: str | os.PathLike) -> dict[str, list[Path]]:
    photos = images_by_stem(Path(images), "photo")
    if not photos:
        raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
    return photos


def pair_folders(images: str | os.PathLike, masks: str | os.PathLike) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    """Pair photos and masks by file stem (any image extension; a mask may also be named
    ``<id>_mask.<ext>``, which is the only choice when photos and masks share one folder).
    Returns ([(id, photo, mask or None)], ids of masks without a photo)."""
    photos = images_by_stem(Path(images), "photo")
    masks_found = images_by_stem(Path(masks), "mask")
    same_folder = Path(images).resolve() == Path(masks).resolve()
    if same_folder:
        photos = {s: p for s, p in photos.items() if not s.endswith("_mask")}
    if not photos:
        raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
    pairs, used = [], set()
    for sample_id in sorted(photos):
        for stem in ((f"{sample_id}_mask",) if same_folder else (sample_id, f"{sample_id}_mask")):
            if stem in masks_found:
                pairs.append((sample_id, prefer(photos[sample_id]), prefer(masks_found[stem])))
                used.add(stem)
                break
        else:
            pairs.append((sample_id, prefer(photos[sample_id]), None))
    orphans = sorted(s for s in masks_found if s not in used and s not in photos)
    return pairs, orphans


# --- the two commands' folder modes --------------------------------------------------------------


def extract_folder(
    extractor: Extractor,
    images: str | os.PathLike,
    masks: str | os.PathLike | None,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    *,
    progress: bool = False,
    segmenter: Segmenter | None = None,
) -> FolderReport:
    """Every photo of ``images`` with its mask in ``masks`` -> ``out``, ``cfg.batch_size`` at a
    time through the model. With a ``segmenter``, a photo without a mask (or every photo, when
    ``masks`` is None) gets the garment mask the segmenter predicts; a mask found still wins."""
    started = time.perf_counter()
    out = check_output_folder(out)
    if masks is None and segmenter is None:
        raise ConfigError("folder mode needs --masks DIR, or a segmenter (--segmenter) to predict the masks")
    if masks is None:
        photos = _photos(images)
        pairs, orphans = [(i, prefer(photos[i]), None) for i in sorted(photos)], []
    else:
        pairs, orphans = pair_folders(images, masks)

    found_notes: list[tuple[str, str]] = []

    def read(sample_id: str, photo_path: Path, mask_path: Path | None):
        if mask_path is None and segmenter is None:
            raise DataError(f"no mask for {photo_path.name} in {masks} (looked for {sample_id}.* and {sample_id}_mask.*)")
        notes: list[str] = []
        photo, mask = photo_and_mask(extractor, photo_path, mask_path, segmenter=segmenter, mask_kind=cfg.mask_kind, notes=notes)
        prepared = extractor.prepare(photo, mask, name=str(photo_path)), extractor.prepare_source(photo, mask, name=str(photo_path))
        found_notes.extend((sample_id, n) for n in notes if not n.startswith("mask read as a label map"))
        return prepared

    jobs = []
    for sample_id, photo_path, mask_path in pairs:
        paths = outputs_for(out, sample_id, cfg)
        jobs.append(FolderJob(sample_id, paths, paths[0].parent, functools.partial(read, sample_id, photo_path, mask_path)))
    report = run_folder(
        jobs, lambda xs: extractor.extract_many([x for x, _ in xs], frame=cfg.frame, batch_size=len(xs), sources=[s for _, s in xs]),
        lambda result, job: write_result(result, job.outputs, cfg),
        batch_size=cfg.batch_size, overwrite=cfg.overwrite, progress="extract" if progress else None,
    )
    report.masks_without_photo = orphans
    report.notes = found_notes
    report.seconds = time.perf_counter() - started
    return report


def segment_folder(
    segmenter: Segmenter,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> FolderReport:
    """Every photo of ``images`` -> ``out/<stem>.png`` (palette PNG of the predicted parse)."""
    started = time.perf_counter()
    out = check_output_folder(out)
    photos = images_by_stem(Path(images), "photo")
    if not photos:
        raise DataError(f"no photos in {images}")
    jobs = [
        FolderJob(i, [out / f"{i}.png"], out / f"{i}.png", functools.partial(read_photo, prefer(photos[i])))
        for i in sorted(photos)
    ]
    report = run_folder(
        jobs, lambda xs: segmenter.predict_many(xs, batch_size=len(xs)),
        lambda classes, job: write_parse(segmenter, classes, job.target),
        batch_size=batch_size, overwrite=overwrite, progress="segment" if progress else None,
    )
    report.seconds = time.perf_counter() - started
    return report
