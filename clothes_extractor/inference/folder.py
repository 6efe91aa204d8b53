"""Folders of photos: one runner, one report, for `extract --images` and `segment --images`.

:func:`run_folder` reads each photo's input, runs the model ``batch_size`` at a time and writes
each result atomically. A photo that cannot be read or written is recorded in the report with
its reason and the others go on; outputs that exist are skipped unless ``overwrite``.

One pipeline, :class:`FolderSteps` (read a photo, load a batch, infer, write), has two
implementations for each command. With the model on CUDA, :func:`extract_folder` and
:func:`segment_folder` do their pixel work there (``pixels="auto"``): the reading threads read
each photo's bytes and its mask, the batch's JPEGs are decoded, preprocessed and brought to the
catalogue frame on the GPU (:mod:`~clothes_extractor.inference.device_pixels`), and the writing
threads encode. Elsewhere the host path (PIL in the threads) runs as before.

Under ``torchrun`` each process takes its ``share`` of the photos (every N-th, from its rank),
and :func:`merge_reports` makes their reports one (:mod:`clothes_extractor.inference.processes`).
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
from clothes_extractor.inference.extractor import Extractor, WarpBatch
from clothes_extractor.inference.mask import area_note, read_mask_for, require_garment
from clothes_extractor.inference.output import ExtractConfig, check_output_folder, outputs_for, write_parse, write_result
from clothes_extractor.inference.photo import IMAGE_EXTENSIONS, read_photo
from clothes_extractor.inference.pipeline import photo_and_mask
from clothes_extractor.inference.segmenter import Segmenter
from clothes_extractor.inference.warp_frame import WarpSource, warp_source_on_device
from clothes_extractor.progress import progress_bar


@dataclass
class FolderReport:
    """What a folder run did, by id; each list in the order of the jobs (the ids, sorted)."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    skipped: list[str] = field(default_factory=list)  # outputs already there
    masks_without_photo: list[str] = field(default_factory=list)  # extract with --masks only
    notes: list[tuple[str, str]] = field(default_factory=list)  # (id, note): mask resized, area warnings
    seconds: float = 0.0


def merge_reports(reports: Sequence[FolderReport]) -> FolderReport:
    """The reports of the processes that shared one folder run (:func:`run_folder`'s ``share``)
    as one: each list in job order, which is the order of the ids; the masks without a photo,
    which every process found alike, once; the slowest process's seconds."""
    def by_id(items):  # a stable sort: an id's notes keep their order
        return sorted(items, key=lambda item: item if isinstance(item, str) else item[0])

    return FolderReport(
        done=by_id(i for r in reports for i in r.done),
        failed=by_id(f for r in reports for f in r.failed),
        skipped=by_id(i for r in reports for i in r.skipped),
        masks_without_photo=list(reports[0].masks_without_photo) if reports else [],
        notes=by_id(n for r in reports for n in r.notes),
        seconds=max((r.seconds for r in reports), default=0.0),
    )


@dataclass(frozen=True)
class FolderJob:
    """One photo of a folder: its ``outputs`` (all there: skipped), the ``target`` a write error
    names, and ``read``, which returns the model's input (a ClothesExtractorError fails this
    photo only)."""

    id: str
    outputs: Sequence[Path]
    target: Path
    read: Callable[[], Any]


class FolderSteps:
    """The steps of folder mode's one pipeline, which the host and the device paths each
    implement their way. A photo meets them in this order: :meth:`read` in a reading thread
    (what its batch needs of it), :meth:`load` with its batch (its pixels ready, or the
    ClothesExtractorError that fails it alone), :meth:`infer` (the loaded photos through the
    model: their results, in order) and :meth:`write` in a writing thread. :attr:`notes` collects
    (id, note) on the way."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def read(self, sample_id: str, photo: Path, mask: Path | None = None) -> Any:
        raise NotImplementedError

    def load(self, items: list[Any]) -> list[Any]:
        return items

    def infer(self, loaded: list[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def write(self, result: Any, job: FolderJob) -> None:
        raise NotImplementedError

    def predict(self, items: list[Any]) -> Iterable[Any]:
        """A batch of read items -> its results, in order: a photo that did not load keeps its
        error. When all loaded, :meth:`infer`'s results as they come."""
        loaded = list(self.load(items))
        good = [i for i, x in enumerate(loaded) if not isinstance(x, ClothesExtractorError)]
        if len(good) == len(loaded):
            return self.infer(loaded)
        for i, result in zip(good, self.infer([loaded[i] for i in good]) if good else ()):
            loaded[i] = result
        return loaded


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


class _Run:
    """One :func:`run_folder`: its report, its bar, and the writes under way in ``pool``."""

    def __init__(self, steps: FolderSteps, pool: ThreadPoolExecutor, advance: Callable[..., None]) -> None:
        self.steps, self.pool, self.advance = steps, pool, advance
        self.report = FolderReport()
        self.writes: deque[tuple[FolderJob, Future]] = deque()

    def fail(self, job: FolderJob, reason: str) -> None:
        self.report.failed.append((job.id, reason))
        self.advance(1)

    def flush(self, batch: list[tuple[FolderJob, Any]]) -> None:
        """The batch through the model; each result to a writing thread."""
        for (job, _), result in zip(batch, self.steps.predict([x for _, x in batch])):
            if isinstance(result, ClothesExtractorError):  # this photo failed in the batch (device decode)
                self.fail(job, str(result))
            else:
                self.writes.append((job, self.pool.submit(self.steps.write, result, job)))
        batch.clear()
        self.settle(everything=False)

    def settle(self, everything: bool) -> None:
        """Record the finished writes, oldest first (all of them when ``everything``)."""
        while self.writes and (everything or self.writes[0][1].done()):
            job, future = self.writes.popleft()
            try:
                future.result()
            except OutputError:  # the output place itself fails (full, read-only): stop; written files stay
                raise
            except (OSError, ValueError, ClothesExtractorError) as exc:
                self.fail(job, f"cannot write {job.target}: {exc}")
                continue
            self.report.done.append(job.id)
            self.advance(1)

    def run(self, todo: Sequence[FolderJob], chunk_of: dict[str, int], batch_size: int) -> None:
        batch: list[tuple[FolderJob, Any]] = []
        for job, read in _prefetched(self.pool, todo, 2 * batch_size):
            if batch and chunk_of[job.id] != chunk_of[batch[0][0].id]:
                self.flush(batch)  # a batch never spans two chunks
            try:
                batch.append((job, read.result()))
            except ClothesExtractorError as exc:
                self.fail(job, str(exc))
                continue
            if len(batch) >= batch_size:
                self.flush(batch)
        if batch:
            self.flush(batch)
        self.settle(everything=True)


def run_folder(
    jobs: Sequence[FolderJob],
    steps: FolderSteps,
    *,
    batch_size: int,
    overwrite: bool,
    progress: str | None = None,
    share: tuple[int, int] = (0, 1),
) -> FolderReport:
    """Every job: read, predict (a batch at a time), write, by ``steps``; a photo that fails is
    in the report with its reason and the others go on.

    ``progress``: the label of a progress bar (None: none). Reading the next photos and writing
    the last results run in :data:`IO_THREADS` threads beside the model; each list of the
    report keeps the order of ``jobs``, as a sequential run would.

    A batch holds the photos of one chunk of ``batch_size`` consecutive jobs (one that exists or
    fails to read leaves its place empty, not filled from the next chunk), so each photo meets the
    same others in the model however the run is split: a batched model's float sums, and so its
    last bits, may depend on the batch. ``share``: (rank, processes) of a run split between
    processes: this one takes every ``processes``-th chunk from its rank, whatever exists
    already, so that a rerun splits the photos the same way."""
    rank, processes = share
    chunks = [list(jobs[k:k + batch_size]) for k in range(0, len(jobs), batch_size)]
    chunk_of = {job.id: c for c in range(rank, len(chunks), processes) for job in chunks[c]}
    jobs = [job for c in range(rank, len(chunks), processes) for job in chunks[c]]
    advance, stop = progress_bar(progress or "", len(jobs), enabled=progress is not None)
    pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="folder-io")
    run = _Run(steps, pool, advance)
    try:
        todo = []
        for job in jobs:
            if not overwrite and all(p.exists() for p in job.outputs):
                run.report.skipped.append(job.id)
                advance(1)
            else:
                todo.append(job)
        run.run(todo, chunk_of, batch_size)
        # Failures come from reading, the model's batch (a photo the device cannot decode) and
        # writing: listed in the order of the jobs, as a sequential run lists them.
        order = {job.id: k for k, job in enumerate(jobs)}
        run.report.failed.sort(key=lambda failure: order.get(failure[0], -1))
    finally:
        # Ctrl-C or a stop: reads not started are dropped; writes under way finish (atomically).
        pool.shutdown(wait=True, cancel_futures=True)
        stop()
    return run.report


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


# --- the two commands' steps, on the host and on the device --------------------------------------


class _ExtractSteps(FolderSteps):
    """`extract`'s steps, what the two paths share: the check that a photo has a mask (or a
    segmenter), the notes kept, :meth:`infer` as prepare, the model, finish, and the write."""

    def __init__(self, extractor: Extractor, cfg: ExtractConfig, segmenter: Segmenter | None, masks) -> None:
        super().__init__()
        self.extractor, self.cfg, self.segmenter, self.masks = extractor, cfg, segmenter, masks

    def check_mask(self, sample_id: str, photo: Path, mask: Path | None) -> None:
        if mask is None and self.segmenter is None:
            raise DataError(f"no mask for {photo.name} in {self.masks} (looked for {sample_id}.* and {sample_id}_mask.*)")

    def keep_notes(self, sample_id: str, notes: list[str]) -> None:
        self.notes.extend((sample_id, n) for n in notes if not n.startswith("mask read as a label map"))

    def infer(self, loaded: list[Any]) -> Iterable[Any]:
        with torch.inference_mode():
            return self.finish(self.model(self.prepare(loaded)))

    def write(self, result: Any, job: FolderJob) -> None:
        write_result(result, job.outputs, self.cfg)


class _HostExtract(_ExtractSteps):
    """PIL in the reading threads: each photo decoded, its mask read (or predicted by the
    segmenter) and prepared there; a batch stacked through the model, each result brought to
    the catalogue frame as the writers take it."""

    def read(self, sample_id: str, photo: Path, mask: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        self.check_mask(sample_id, photo, mask)
        notes: list[str] = []
        pixels, garment = photo_and_mask(
            self.extractor, photo, mask, segmenter=self.segmenter, mask_kind=self.cfg.mask_kind, notes=notes
        )
        name = str(photo)
        x = self.extractor.prepare(pixels, garment, name=name)
        source = self.extractor.prepare_source(pixels, garment, frame=self.cfg.frame, name=name)  # warp generators
        self.keep_notes(sample_id, notes)
        return x, source

    def prepare(self, loaded: list[tuple[np.ndarray, WarpSource | None]]):
        return np.stack([x for x, _ in loaded]), [source for _, source in loaded]

    def model(self, prepared):
        return self.extractor.predict(*prepared)

    def finish(self, outputs) -> list[Any]:
        return self.extractor.finish_all(outputs, self.cfg.frame)


@dataclass(frozen=True)
class _DeviceItem:
    """What a reading thread hands the device path: the photo's bytes (or PIL's pixels), its
    garment mask and the mask's box on the host (None: the segmenter predicts it)."""

    id: str
    source: dp.PhotoSource
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None


class _DeviceExtract(_ExtractSteps):
    """The torch twins on the model's device (:mod:`~clothes_extractor.inference.device_pixels`):
    the reading threads read each photo's bytes and its mask; a batch is decoded, its missing
    masks predicted, prepared and brought to the catalogue frame there."""

    def read(self, sample_id: str, photo: Path, mask: Path | None = None) -> _DeviceItem:
        self.check_mask(sample_id, photo, mask)
        source = dp.read_source(photo)
        if mask is None:  # the segmenter predicts it, a batch at a time on the device
            return _DeviceItem(sample_id, source)
        notes: list[str] = []
        garment = read_mask_for(source.shape, photo, mask, self.extractor.labels, self.cfg.mask_kind, notes=notes)
        self.keep_notes(sample_id, notes)
        return _DeviceItem(sample_id, source, garment, dp.mask_box(garment))

    def load(self, items: list[_DeviceItem]) -> list[Any]:
        """Each photo decoded on the device with its mask and box: (photo, mask, box), or a DataError."""
        photos = dp.decode_sources([it.source for it in items], self.extractor.device)
        loaded: list[Any] = [p if isinstance(p, DataError) else (p, it.mask, it.box) for it, p in zip(items, photos)]
        unmasked = [i for i, it in enumerate(items) if it.mask is None and not isinstance(photos[i], DataError)]
        if unmasked:
            for i, classes in zip(unmasked, dp.class_maps(self.segmenter, [photos[i] for i in unmasked])):
                loaded[i] = self.with_predicted_mask(items[i], photos[i], classes)
        return loaded

    def with_predicted_mask(self, item: _DeviceItem, photo: torch.Tensor, classes: np.ndarray):
        """(photo, the garment the segmenter found in ``classes``, its box), or the DataError of none."""
        try:
            garment = require_garment(self.segmenter, classes, self.extractor.labels, name=str(item.source.path))
        except DataError as exc:
            return exc
        self.notes.append((item.id, "mask predicted by the segmenter"))
        if (warning := area_note(garment)) is not None:
            self.notes.append((item.id, warning))
        return photo, garment, dp.mask_box(garment)

    def prepare(self, loaded: list[tuple[torch.Tensor, np.ndarray, tuple[int, int, int, int]]]):
        pre = self.extractor.preprocess
        x = dp.to_unit(torch.stack([dp.prepare_input(photo, mask, pre, box) for photo, mask, box in loaded]))
        sources = [warp_source_on_device(photo, mask, pre, box) for photo, mask, box in loaded] if self.extractor.warp else None
        return x, sources

    def model(self, prepared):
        return self.extractor.predict_tensors(*prepared)

    def finish(self, outputs) -> list[Any]:
        if isinstance(outputs, WarpBatch):  # the photos sampled straight into the frame, on the device
            return self.extractor.finish_all(outputs, self.cfg.frame)
        rgb, alpha = outputs
        return dp.to_catalogue_batch(rgb, alpha, self.extractor.preprocess.background, self.cfg.frame, self.extractor.scale)


class _SegmentSteps(FolderSteps):
    """`segment`'s steps: the two paths write alike."""

    def __init__(self, segmenter: Segmenter) -> None:
        super().__init__()
        self.segmenter = segmenter

    def write(self, classes: np.ndarray, job: FolderJob) -> None:
        write_parse(self.segmenter, classes, job.target)


class _HostSegment(_SegmentSteps):
    """PIL decodes in the reading threads; the segmenter fits, predicts and upsamples a batch."""

    def read(self, sample_id: str, photo: Path, mask: Path | None = None) -> np.ndarray:
        return read_photo(photo)

    def infer(self, loaded: list[np.ndarray]) -> Iterable[np.ndarray]:
        return self.segmenter.predict_many(loaded, batch_size=len(loaded))


class _DeviceSegment(_SegmentSteps):
    """The reading threads read the bytes; a batch is decoded, fitted, and its logits upsampled
    and argmaxed on the segmenter's device, the class maps copied back once."""

    def read(self, sample_id: str, photo: Path, mask: Path | None = None) -> dp.PhotoSource:
        return dp.read_source(photo)

    def load(self, items: list[dp.PhotoSource]) -> list[Any]:
        return dp.decode_sources(items, self.segmenter.device)

    def infer(self, loaded: list[torch.Tensor]) -> list[np.ndarray]:
        return dp.class_maps(self.segmenter, loaded)


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
    pixels: str = "auto",
    share: tuple[int, int] = (0, 1),
) -> FolderReport:
    """Every photo of ``images`` with its mask in ``masks`` -> ``out``, ``cfg.batch_size`` at a
    time through the model. With a ``segmenter``, a photo without a mask (or every photo, when
    ``masks`` is None) gets the garment mask the segmenter predicts; a mask found still wins.

    ``pixels`` (:func:`~clothes_extractor.inference.device_pixels.choose_pixels`): ``host``
    decodes, preprocesses and resizes with PIL in the reading and writing threads; ``device``
    decodes the JPEGs and does that pixel work on the model's device, a batch at a time
    (:mod:`~clothes_extractor.inference.device_pixels`); ``auto``: device on CUDA, else host.
    ``share``: this process's part of a run split between processes (:func:`run_folder`)."""
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
    steps = (_DeviceExtract if on_device else _HostExtract)(extractor, cfg, segmenter, masks)
    jobs = []
    for sample_id, photo_path, mask_path in pairs:
        paths = outputs_for(out, sample_id, cfg)
        jobs.append(FolderJob(sample_id, paths, paths[0].parent, functools.partial(steps.read, sample_id, photo_path, mask_path)))
    report = run_folder(
        jobs, steps, batch_size=cfg.batch_size, overwrite=cfg.overwrite, progress="extract" if progress else None, share=share
    )
    report.masks_without_photo = orphans
    return _finished(report, jobs, steps, started)


def segment_folder(
    segmenter: Segmenter,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = False,
    pixels: str = "auto",
    share: tuple[int, int] = (0, 1),
) -> FolderReport:
    """Every photo of ``images`` -> ``out/<stem>.png`` (palette PNG of the predicted parse).
    ``pixels``, ``share``: as :func:`extract_folder`'s (``device``: JPEGs decoded, fitted, and the
    logits upsampled and argmaxed on the segmenter's device; the class maps copied back once a batch)."""
    started = time.perf_counter()
    on_device = dp.choose_pixels(pixels, segmenter.device) == "device"
    out = check_output_folder(out)
    photos = images_by_stem(Path(images), "photo")
    if not photos:
        raise DataError(f"no photos in {images}")
    steps = (_DeviceSegment if on_device else _HostSegment)(segmenter)
    jobs = [
        FolderJob(i, [out / f"{i}.png"], out / f"{i}.png", functools.partial(steps.read, i, prefer(photos[i])))
        for i in sorted(photos)
    ]
    report = run_folder(
        jobs, steps, batch_size=batch_size, overwrite=overwrite, progress="segment" if progress else None, share=share
    )
    return _finished(report, jobs, steps, started)


def _finished(report: FolderReport, jobs: Sequence[FolderJob], steps: FolderSteps, started: float) -> FolderReport:
    """The report with the notes found on the way, in job order (the reading threads found them
    in any order), and the run's seconds."""
    order = {job.id: k for k, job in enumerate(jobs)}
    report.notes = sorted(steps.notes, key=lambda note: order.get(note[0], -1))
    report.seconds = time.perf_counter() - started
    return report
