"""Folders of photos: one runner, one report, for `extract --images` and `segment --images`.

:func:`run_folder` reads each photo's input, runs the model ``batch_size`` at a time and writes
each result atomically. A photo that cannot be read or written is recorded in the report with
its reason and the others go on; outputs that exist are skipped unless ``overwrite``.

With the model on CUDA, :func:`extract_folder` and :func:`segment_folder` do their pixel work
there (``pixels="auto"``): the reading threads read each photo's bytes and its mask, the batch's
JPEGs are decoded, preprocessed and brought to the catalogue frame on the GPU
(:mod:`~clothes_extractor.inference.device_pixels`), and the writing threads encode. Elsewhere
the host path (PIL in the threads) runs as before.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clothes_extractor.errors import ClothesExtractorError, ConfigError, DataError, OutputError
from clothes_extractor.inference import device_pixels as dp
from clothes_extractor.inference.extractor import Extractor
from clothes_extractor.inference.mask import area_note, read_mask_for, require_garment
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


# Threads that read (decode, mask, preprocess) the next photos and write (encode) the last
# results while the model runs: PIL and numpy release the GIL for the heavy part.
IO_THREADS = min(4, os.cpu_count() or 1)


def _prefetched(pool: ThreadPoolExecutor, jobs: Sequence[FolderJob], window: int) -> Iterator[tuple[FolderJob, Future]]:
    """(job, the future of its read) in order, at most ``window`` reads ahead of the consumer."""
    ahead: deque[tuple[FolderJob, Future]] = deque()
    rest = iter(jobs)
    for job in itertools.islice(rest, window):
        ahead.append((job, pool.submit(job.read)))
    while ahead:
        job, future = ahead.popleft()
        following = next(rest, None)
        if following is not None:
            ahead.append((following, pool.submit(following.read)))
        yield job, future


def run_folder(
    jobs: Sequence[FolderJob],
    predict: Callable[[list[Any]], Iterable[Any]],
    write: Callable[[Any, FolderJob], None],
    *,
    batch_size: int,
    overwrite: bool,
    progress: str | None = None,
) -> FolderReport:
    """Every job: read, ``predict`` (a batch of inputs -> results, in order; a result that is a
    ClothesExtractorError fails its photo only), ``write``.
    ``progress``: the label of a progress bar (None: none). Reading the next photos and writing
    the last results run in :data:`IO_THREADS` threads beside the model; each list of the
    report keeps the order of ``jobs``, as a sequential run would."""
    report = FolderReport()
    advance, stop = progress_bar(progress or "", len(jobs), enabled=progress is not None)
    todo = []
    for job in jobs:
        if not overwrite and all(p.exists() for p in job.outputs):
            report.skipped.append(job.id)
            advance(1)
        else:
            todo.append(job)
    batch: list[tuple[FolderJob, Any]] = []
    writes: deque[tuple[FolderJob, Future]] = deque()

    def settle(everything: bool) -> None:
        """Record the finished writes, oldest first (all of them when ``everything``)."""
        while writes and (everything or writes[0][1].done()):
            job, future = writes.popleft()
            try:
                future.result()
                report.done.append(job.id)
            except OutputError:  # the output place itself fails (full, read-only): stop; written files stay
                raise
            except (OSError, ValueError, ClothesExtractorError) as exc:
                report.failed.append((job.id, f"cannot write {job.target}: {exc}"))
            advance(1)

    def flush() -> None:
        for (job, _), result in zip(batch, predict([x for _, x in batch])):
            if isinstance(result, ClothesExtractorError):  # this photo failed in the batch (device decode)
                report.failed.append((job.id, str(result)))
                advance(1)
                continue
            writes.append((job, pool.submit(write, result, job)))
        batch.clear()
        settle(False)

    pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="folder-io")
    try:
        for job, read in _prefetched(pool, todo, 2 * batch_size):
            try:
                batch.append((job, read.result()))
            except ClothesExtractorError as exc:
                report.failed.append((job.id, str(exc)))
                advance(1)
                continue
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        settle(True)
        # Failures come from reading, the model's batch (a photo the device cannot decode) and
        # writing: listed in the order of the jobs, as a sequential run lists them.
        order = {job.id: k for k, job in enumerate(jobs)}
        report.failed.sort(key=lambda failure: order.get(failure[0], -1))
    finally:
        # Ctrl-C or a stop: reads not started are dropped; writes under way finish (atomically).
        pool.shutdown(wait=True, cancel_futures=True)
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


@dataclass(frozen=True)
class _DeviceItem:
    """What a reading thread hands the device path: the photo's bytes (or PIL's pixels), its
    garment mask and the mask's box on the host (None: the segmenter predicts it)."""

    id: str
    source: dp.PhotoSource
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None


def extract_folder(
    extractor: Extractor,
    images: str | os.PathLike,
    masks: str | os.PathLike | None,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    *,
    progress: bool = False,
    segmenter: Segmenter | None = None,
    pixels: str = "auto",
) -> FolderReport:
    """Every photo of ``images`` with its mask in ``masks`` -> ``out``, ``cfg.batch_size`` at a
    time through the model. With a ``segmenter``, a photo without a mask (or every photo, when
    ``masks`` is None) gets the garment mask the segmenter predicts; a mask found still wins.

    ``pixels`` (:func:`~clothes_extractor.inference.device_pixels.choose_pixels`): ``host``
    decodes, preprocesses and resizes with PIL in the reading and writing threads; ``device``
    decodes the JPEGs and does that pixel work on the model's device, a batch at a time
    (:mod:`~clothes_extractor.inference.device_pixels`); ``auto``: device on CUDA, else host."""
    started = time.perf_counter()
    on_device = dp.choose_pixels(pixels, extractor.device) == "device"
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

    def read_for_device(sample_id: str, photo_path: Path, mask_path: Path | None) -> _DeviceItem:
        if mask_path is None and segmenter is None:
            raise DataError(f"no mask for {photo_path.name} in {masks} (looked for {sample_id}.* and {sample_id}_mask.*)")
        source = dp.read_source(photo_path)
        if mask_path is None:  # the segmenter predicts it, a batch at a time on the device
            return _DeviceItem(sample_id, source)
        notes: list[str] = []
        mask = read_mask_for(source.shape, photo_path, mask_path, extractor.labels, cfg.mask_kind, notes=notes)
        found_notes.extend((sample_id, n) for n in notes if not n.startswith("mask read as a label map"))
        return _DeviceItem(sample_id, source, mask, dp.mask_box(mask))

    def predict_on_device(items: list[_DeviceItem]) -> list[Any]:
        photos = dp.decode_sources([it.source for it in items], extractor.device)
        results: list[Any] = [p if isinstance(p, DataError) else None for p in photos]
        masks_of: list[tuple[np.ndarray, tuple[int, int, int, int]] | None] = [
            None if it.mask is None else (it.mask, it.box) for it in items
        ]
        unmasked = [i for i, it in enumerate(items) if it.mask is None and results[i] is None]
        for i, classes in zip(unmasked, dp.class_maps(segmenter, [photos[i] for i in unmasked])):
            name = str(items[i].source.path)
            try:
                garment = require_garment(segmenter, classes, extractor.labels, name=name)
            except DataError as exc:
                results[i] = exc
                continue
            found_notes.append((items[i].id, "mask predicted by the segmenter"))
            if (warning := area_note(garment)) is not None:
                found_notes.append((items[i].id, warning))
            masks_of[i] = (garment, dp.mask_box(garment))
        todo = [i for i in range(len(items)) if results[i] is None]
        if todo:
            with torch.inference_mode():
                pre, size = extractor.preprocess, extractor.source_size
                x = torch.stack([dp.prepare_input(photos[i], masks_of[i][0], pre, masks_of[i][1]) for i in todo])
                source = None if size is None else torch.stack(
                    [dp.prepare_source(photos[i], masks_of[i][0], pre, size, masks_of[i][1]) for i in todo]
                )
                rgb, alpha = extractor.forward(dp.to_unit(x), None if source is None else dp.to_unit(source))
                done = dp.to_catalogue_batch(rgb, alpha, pre.background, cfg.frame, extractor.scale)
            for i, result in zip(todo, done):
                results[i] = result
        return results

    jobs = []
    for sample_id, photo_path, mask_path in pairs:
        paths = outputs_for(out, sample_id, cfg)
        reader = read_for_device if on_device else read
        jobs.append(FolderJob(sample_id, paths, paths[0].parent, functools.partial(reader, sample_id, photo_path, mask_path)))
    predict = predict_on_device if on_device else (
        lambda xs: extractor.extract_many([x for x, _ in xs], frame=cfg.frame, batch_size=len(xs), sources=[s for _, s in xs])
    )
    report = run_folder(
        jobs, predict,
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
    pixels: str = "auto",
) -> FolderReport:
    """Every photo of ``images`` -> ``out/<stem>.png`` (palette PNG of the predicted parse).
    ``pixels``: as :func:`extract_folder`'s (``device``: JPEGs decoded, fitted, and the logits
    upsampled and argmaxed on the segmenter's device; the class maps copied back once a batch)."""
    started = time.perf_counter()
    on_device = dp.choose_pixels(pixels, segmenter.device) == "device"
    out = check_output_folder(out)
    photos = images_by_stem(Path(images), "photo")
    if not photos:
        raise DataError(f"no photos in {images}")
    reader = dp.read_source if on_device else read_photo
    jobs = [
        FolderJob(i, [out / f"{i}.png"], out / f"{i}.png", functools.partial(reader, prefer(photos[i])))
        for i in sorted(photos)
    ]

    def predict_on_device(sources: list[dp.PhotoSource]) -> list[Any]:
        results: list[Any] = dp.decode_sources(sources, segmenter.device)
        good = [i for i, r in enumerate(results) if not isinstance(r, DataError)]
        for i, classes in zip(good, dp.class_maps(segmenter, [results[i] for i in good])):
            results[i] = classes
        return results

    report = run_folder(
        jobs, predict_on_device if on_device else (lambda xs: segmenter.predict_many(xs, batch_size=len(xs))),
        lambda classes, job: write_parse(segmenter, classes, job.target),
        batch_size=batch_size, overwrite=overwrite, progress="segment" if progress else None,
    )
    report.seconds = time.perf_counter() - started
    return report
