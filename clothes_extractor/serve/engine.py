"""What the web page does, without the web page: one model instance, the limits, the requests.

Every request goes through the inference functions `extract` uses (:func:`read_photo`,
:func:`read_pair`, :func:`require_garment`, the :class:`Extractor`'s prepare / predict / finish,
:func:`render`, :func:`extract_folder`; :mod:`clothes_extractor.inference`): the page writes the
pixels `extract` writes, and fails with exactly its messages. No gradio here, so this module is
tested without a browser.

Under load (docs/speed.md, "serve"): the model calls of all requests go through one
:class:`~clothes_extractor.serve.batcher.ModelQueue` (one thread; requests waiting at the same
time share a batch), while each request decodes its photo, draws the preview and encodes its
PNGs (zlib level :data:`PNG_LEVEL`: the same pixels, 3x faster than PIL's default) on its own
thread. The mask a request used is kept for the next request on the same photo and mask choice
(*Check the mask*, then *Extract*): the segmenter does not run twice.

Paths: the page hands over the paths of files gradio stored on upload (inside its cache folder,
which :func:`serve` points at a private temporary folder). :meth:`Engine.upload` refuses any path
outside that folder, so nothing a client sends names a file of the server's choosing. Messages
show the uploaded file's name, never the server-side path.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clothes_extractor.data.viton import LABELS
from clothes_extractor.errors import ClothesExtractorError, ConfigError, DataError
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import Extractor
from clothes_extractor.inference.folder import extract_folder
from clothes_extractor.inference.mask import read_pair, require_garment
from clothes_extractor.inference.output import ExtractConfig, render
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.serve.batcher import ModelQueue, ServerStopping

MASK_SOURCES: dict[str, str] = {  # value -> label on the page
    "segmenter": "predicted by the segmenter",
    "upload": "an uploaded mask",
    "brush": "painted with the brush",
}
OVERLAY_SIDE = 768  # longest side of the mask preview, in pixels
OVERLAY_TINT = (255, 32, 32)
CANVAS_SIDE = 1024  # longest side of the brush's canvas
# zlib level of the PNGs the page writes: the same pixels as `extract`'s (PIL's default, 6), a
# third of the encoding time, 1.2x the bytes (768x1024, docs/speed.md "serve")
PNG_LEVEL = 1
MASK_CACHE = 4  # masks kept for the next request on the same photo (check, then extract)
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. ``max_pixels``: of any decoded image (photo or mask)."""

    max_pixels: int = 40_000_000
    max_files: int = 64
    output_ttl_s: float = 900.0  # results are removed this long after they were written

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_files < 1:
            raise ConfigError(f"limits must be positive, got {self.max_pixels} pixels and {self.max_files} files")


@dataclass(frozen=True)
class Upload:
    """A file gradio stored: its server-side ``path`` and the ``name`` the user gave it."""

    path: Path
    name: str


@dataclass(frozen=True)
class MaskChoice:
    """Where the garment mask comes from: ``source`` (a key of :data:`MASK_SOURCES`), the
    uploaded ``mask`` (read as ``kind``, one of extract's mask kinds) or the ``painted`` (H, W, 4)
    layer of the brush (its alpha is the mask)."""

    source: str = "segmenter"
    mask: Upload | None = None
    painted: np.ndarray | None = None
    kind: str = "auto"


@dataclass(frozen=True)
class _Masked:
    photo: np.ndarray
    mask: np.ndarray
    how: str
    category: str


@dataclass
class Outcome:
    """What one photo gives: the mask preview, the written files, details for people and scripts."""

    overlay: np.ndarray
    details: dict[str, Any]
    on_white: Path | None = None
    transparent: Path | None = None


@dataclass
class _Paths:
    """Server paths -> the names the user knows, for messages."""

    names: dict[str, str] = field(default_factory=dict)

    def add(self, path: Path, name: str) -> Path:
        self.names[str(path)] = name
        return path

    def clean(self, message: str) -> str:
        for path in sorted(self.names, key=len, reverse=True):
            message = message.replace(path, self.names[path])
        return message


def safe_stem(name: str, default: str = "upload") -> str:
    """A file name the user sent -> a stem of [A-Za-z0-9_-] only (at most 64), never a path."""
    stem = _SAFE.sub("_", Path(str(name).replace("\\", "/")).stem).strip("_")[:64]
    return stem or default


def overlay(photo: np.ndarray, mask: np.ndarray, side: int = OVERLAY_SIDE) -> np.ndarray:
    """The photo with the garment mask tinted and the rest dimmed, longest side at most ``side``:
    both made small first, then blended in integers (a preview: a few times cheaper than
    blending every pixel of the photo)."""
    image, layer = Image.fromarray(photo), Image.fromarray(mask.astype(np.uint8) * 255)
    image.thumbnail((side, side), Image.Resampling.BILINEAR)
    layer = layer.resize(image.size, Image.Resampling.BILINEAR)
    small = np.asarray(image, np.uint16)
    m = np.asarray(layer, np.uint16)[..., None]  # 0..255: the share of the mask in each pixel
    tint = np.asarray(OVERLAY_TINT, np.uint16)
    tinted = (55 * small + 45 * tint + 50) // 100
    dimmed = (45 * small + 50) // 100
    return ((tinted * m + dimmed * (255 - m) + 127) // 255).astype(np.uint8)


def write_png(image: Image.Image, path: Path) -> None:
    """``image`` to ``path`` (PNG, :data:`PNG_LEVEL`) through a temporary file beside it. Never
    makes a folder: when the server removed its folders meanwhile, :class:`ServerStopping`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            image.save(tmp, format="PNG", compress_level=PNG_LEVEL)
            os.replace(tmp, path)
        except FileNotFoundError:
            raise ServerStopping() from None
    finally:
        tmp.unlink(missing_ok=True)


def check_pixels(upload: Upload, limit: int, what: str) -> None:
    """DataError if the image's header says it has more than ``limit`` pixels (read before
    decoding, so a huge image costs nothing). Unreadable files pass: reading them says why."""
    try:
        with Image.open(upload.path) as image:
            w, h = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return
    if w * h > limit:
        raise DataError(
            f"{what} {upload.name} is {w}x{h} ({w * h / 1e6:.1f} megapixels), over this server's limit of "
            f"{limit / 1e6:.1f} megapixels (serve --max-megapixels); make it smaller first"
        )


class Engine:
    """One generator (and optionally one segmenter) shared by every request of a server.

    ``root``: the folder gradio keeps uploads and results in; results go to ``root/results/<id>/``
    and are removed ``limits.output_ttl_s`` after they were written (and all at exit).
    """

    def __init__(self, extractor: Extractor, segmenter=None, *, root: Path, limits: Limits = Limits(), card: str = "",
                 max_batch: int = 8) -> None:
        self.extractor = extractor
        self.segmenter = segmenter
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)  # here, never by a request: see _folder
        self.results = self.root / "results"
        self.work = self.root / "work"
        self.limits = limits
        self.card = card
        self.models = ModelQueue(max_batch)
        self._masks: OrderedDict[tuple, _Masked] = OrderedDict()
        self._lock = threading.Condition()
        self._running = 0  # requests in progress
        self._stopping = False

    # --- inputs ----------------------------------------------------------------------------------

    def upload(self, path: str | Path | None, what: str) -> Upload | None:
        """A path gradio gave for an upload -> :class:`Upload`; refuses anything outside ``root``."""
        if path is None or str(path) == "":
            return None
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root) or not resolved.is_file():
            raise DataError(f"{what}: not a file uploaded to this server")
        return Upload(resolved, Path(path).name)

    def _photo_and_mask(self, photo: Upload, choice: MaskChoice, work: Path, paths: _Paths) -> _Masked:
        """The photo and its garment mask from the chosen source, with `extract`'s checks."""
        readers = {"segmenter": self._from_segmenter, "upload": self._from_upload, "brush": self._from_brush}
        if choice.source not in readers:
            raise ConfigError(f"mask source {choice.source!r} is not one of {', '.join(readers)}")
        check_pixels(photo, self.limits.max_pixels, "photo")
        paths.add(photo.path, photo.name)
        key = _mask_key(photo, choice)
        with self._lock:
            cached = self._masks.get(key) if key else None
        if cached is not None:
            return cached
        masked = readers[choice.source](photo, choice, work, paths)
        if key is not None:
            with self._lock:
                self._masks[key] = masked
                while len(self._masks) > MASK_CACHE:
                    self._masks.popitem(last=False)
        return masked

    def _from_upload(self, photo: Upload, choice: MaskChoice, work: Path, paths: _Paths) -> _Masked:
        if choice.mask is None:
            raise DataError("no mask uploaded: upload the garment mask, or pick another mask source")
        check_pixels(choice.mask, self.limits.max_pixels, "mask")
        paths.add(choice.mask.path, choice.mask.name)
        arr, garment = read_pair(photo.path, choice.mask.path, self.extractor.labels, choice.kind)
        return _Masked(arr, garment, f"uploaded: {choice.mask.name}", self.category())

    def _from_brush(self, photo: Upload, choice: MaskChoice, work: Path, paths: _Paths) -> _Masked:
        painted = choice.painted
        if painted is None or painted.ndim != 3 or painted.shape[2] != 4 or not painted[..., 3].any():
            raise DataError("nothing painted: paint over the garment with the brush, or pick another mask source")
        layer = Image.fromarray(painted.astype(np.uint8), "RGBA")
        w, h = read_photo(photo.path).shape[1::-1]
        if layer.size != (w, h) and abs(layer.width / layer.height - w / h) < 0.01:  # painted on the canvas copy
            layer = layer.resize((w, h), Image.Resampling.NEAREST)
        path = paths.add(work / "painted.png", "the painted mask")
        layer.save(path)  # read back as extract reads a cut-out: alpha >= 128
        arr, garment = read_pair(photo.path, path, self.extractor.labels, "binary")
        return _Masked(arr, garment, "painted with the brush", self.category())

    def canvas(self, photo: Upload | None) -> Path | None:
        """A copy of the photo to paint on (PNG, longest side at most ``CANVAS_SIDE``); None when
        there is no readable photo (extracting says why)."""
        if photo is None:
            return None
        try:
            check_pixels(photo, self.limits.max_pixels, "photo")
            image = Image.fromarray(read_photo(photo.path))
        except ClothesExtractorError:
            return None
        image.thumbnail((CANVAS_SIDE, CANVAS_SIDE), Image.Resampling.BILINEAR)
        path = self._result_dir() / "canvas.png"
        image.save(path)
        return path

    def _from_segmenter(self, photo: Upload, choice: MaskChoice, work: Path, paths: _Paths) -> _Masked:
        if self.segmenter is None:
            raise ConfigError("this server has no segmenter (serve --segmenter); upload a mask or paint one")
        arr = read_photo(photo.path)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise DataError(f"expected an (H, W, 3) RGB photo, got shape {arr.shape}")
        # extract's predicted_mask (Segmenter.predict), in a batch; the classes kept for the category
        classes = self.models.submit(self._segment, (self.segmenter.prepare(arr), arr.shape[:2]))
        garment = require_garment(self.segmenter, classes, self.extractor.labels, name=photo.name)
        category = self.category(self.segmenter.to_cihp(classes)[garment])
        return _Masked(arr, garment, "predicted by the segmenter", category)

    def _segment(self, items: Sequence[tuple[np.ndarray, tuple[int, int]]]) -> list[np.ndarray]:
        """The model queue's segmenter batch: prepared inputs and photo sizes -> class maps."""
        logits = self.segmenter.logits(np.stack([x for x, _ in items]))
        return [self.segmenter.finish(lg, frame) for lg, (_, frame) in zip(logits, items)]

    def _generate(self, items: Sequence[tuple[np.ndarray, Any]]) -> list:
        """The model queue's generator batch: prepared inputs (and a warp model's sources) ->
        results in the catalogue frame (:meth:`Extractor.extract_many`, one batch)."""
        sources = [src for _, src in items]
        return list(self.extractor.extract_many([x for x, _ in items], batch_size=len(items),
                                                sources=None if sources[0] is None else sources))

    def garment(self, photo: np.ndarray, mask: np.ndarray):
        """:meth:`Extractor.extract`, its model call batched with other requests'."""
        ex = self.extractor
        return self.models.submit(self._generate, (ex.prepare(photo, mask), ex.prepare_source(photo, mask)))

    def category(self, garment_labels: np.ndarray | None = None) -> str:
        """The garment category: the one label the generator knows; where it knows several, the
        one holding most of the mask (``garment_labels``: the CIHP labels of the mask's pixels,
        from the segmenter), else all of them, as the mask alone does not tell."""
        labels = self.extractor.labels
        if len(labels) == 1:
            return LABELS[labels[0]]
        if garment_labels is not None:
            counts = {label: int((garment_labels == label).sum()) for label in labels}
            if max(counts.values()) > 0:
                return LABELS[max(counts, key=counts.get)]
        return "one of " + ", ".join(LABELS[i] for i in labels)

    def _request(self, fn, *args):
        """Run ``fn(work, paths, *args)`` in a fresh work folder removed afterwards; user errors
        come back as ClothesExtractorError with the users' file names in place of server paths."""
        with self._lock:
            if self._stopping:
                raise ServerStopping()
            self._running += 1
        paths = _Paths()
        try:
            work = self._folder(self._folder(self.work) / uuid.uuid4().hex)
            try:
                return fn(work, paths, *args)
            except ClothesExtractorError as exc:
                raise type(exc)(paths.clean(str(exc))) from None
            finally:
                shutil.rmtree(work, ignore_errors=True)
        finally:
            with self._lock:
                self._running -= 1
                self._lock.notify_all()

    def _result_dir(self) -> Path:
        self.prune()
        return self._folder(self._folder(self.results) / uuid.uuid4().hex)

    def _folder(self, path: Path) -> Path:
        """The folder ``path`` inside ``root``, made if missing, but never ``root`` itself (no
        parents): a request still running when the server stopped and removed ``root`` fails here
        instead of making it again and leaving its files behind."""
        try:
            path.mkdir(exist_ok=True)
        except FileNotFoundError:
            raise ServerStopping() from None
        return path

    def prune(self, now: float | None = None) -> None:
        """Remove result folders older than ``limits.output_ttl_s``."""
        now = time.time() if now is None else now
        if not self.results.is_dir():
            return
        for d in self.results.iterdir():
            try:
                if now - d.stat().st_mtime > self.limits.output_ttl_s:
                    shutil.rmtree(d, ignore_errors=True)
            except FileNotFoundError:
                continue

    # --- requests --------------------------------------------------------------------------------

    def check_mask(self, photo: Upload | None, choice: MaskChoice = MaskChoice()) -> Outcome:
        """The mask a photo would be extracted with, shown over the photo; nothing extracted."""

        def run(work: Path, paths: _Paths) -> Outcome:
            started = time.perf_counter()
            m = self._photo_and_mask(_required(photo), choice, work, paths)
            details = {"category": m.category, "mask": m.how, "mask_share": round(float(m.mask.mean()), 4),
                       "photo": f"{m.photo.shape[1]}x{m.photo.shape[0]}", "seconds": round(time.perf_counter() - started, 3)}
            return Outcome(overlay(m.photo, m.mask), details)

        return self._request(run)

    def extract(self, photo: Upload | None, choice: MaskChoice = MaskChoice()) -> Outcome:
        """One photo -> the garment on white (PNG) and the transparent cut-out (RGBA PNG): the
        files `extract -o x.png --background white` and `extract -o x.png --transparent` write."""

        def run(work: Path, paths: _Paths) -> Outcome:
            started = time.perf_counter()
            upload = _required(photo)
            m = self._photo_and_mask(upload, choice, work, paths)
            result = self.garment(m.photo, m.mask)
            out = self._result_dir()
            stem = safe_stem(upload.name)
            on_white, transparent = out / f"{stem}-garment.png", out / f"{stem}-garment-transparent.png"
            write_png(render(result, ExtractConfig(background=WHITE)), on_white)
            write_png(render(result, ExtractConfig(transparent=True)), transparent)
            h, w = result.alpha.shape
            details = {"category": m.category, "mask": m.how, "size": f"{w}x{h}",
                       "seconds": round(time.perf_counter() - started, 3)}
            return Outcome(overlay(m.photo, m.mask), details, on_white, transparent)

        return self._request(run)

    def extract_batch(self, photos: list[Upload], masks: list[Upload], viton_layout: bool = False) -> tuple[Path, dict[str, Any]]:
        """Several photos (masks paired by file stem, else predicted) -> a zip of garments:
        ``<id>.png`` cut-outs, or ``cloth/<id>.jpg`` + ``cloth-mask/<id>.jpg`` (VITON-HD layout),
        plus ``failed.txt`` listing each photo that failed and why."""
        return self._request(self._batch, photos, masks, viton_layout)

    def _batch(self, work: Path, paths: _Paths, photos: list[Upload], masks: list[Upload], viton_layout: bool):
        started = time.perf_counter()
        if not photos:
            raise DataError("no photos given: add one or more photos")
        if len(photos) + len(masks) > self.limits.max_files:
            raise DataError(f"{len(photos) + len(masks)} files at once; this server takes at most {self.limits.max_files} (serve --max-files)")
        if not masks and self.segmenter is None:
            raise ConfigError("this server has no segmenter (serve --segmenter); add a mask for each photo")
        failed: dict[str, str] = {}
        images_dir, masks_dir = work / "images", work / "masks"
        for uploads, folder, what in ((photos, images_dir, "photo"), (masks, masks_dir, "mask")):
            folder.mkdir()
            for up in uploads:
                name = _unique(folder, safe_stem(up.name), Path(up.name).suffix.lower())
                try:
                    check_pixels(up, self.limits.max_pixels, what)
                except DataError as exc:
                    failed[Path(name).stem] = str(exc)
                    continue
                shutil.copyfile(up.path, paths.add(folder / name, up.name))
        cfg = ExtractConfig(viton_layout=viton_layout, transparent=not viton_layout, format=None if viton_layout else "png")
        # on the model queue's thread, alone: torch is never run by two threads at once
        report = self.models.submit(lambda _: [extract_folder(self.extractor, images_dir, masks_dir if masks else None,
                                                              work / "garments", cfg, segmenter=self.segmenter)], None)
        failed.update({i: paths.clean(reason) for i, reason in report.failed})
        out = self._result_dir() / "garments.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for f in sorted((work / "garments").rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(work / "garments").as_posix())
            if failed:
                zf.writestr("failed.txt", "".join(f"{i}: {r}\n" for i, r in sorted(failed.items())))
        details = {"written": len(report.done), "failed": failed, "masks_without_photo": report.masks_without_photo,
                   "layout": "viton-hd" if viton_layout else "png cut-outs", "seconds": round(time.perf_counter() - started, 3)}
        return out, details

    def stop(self, timeout: float = 5.0) -> int:
        """Refuse new requests (:class:`ServerStopping`: "this server is stopping; try again once
        it is back"), let those in progress finish for up to ``timeout`` s, then refuse the model
        calls still waiting. Returns how many requests were still running after that (0 when
        every request finished or was refused)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping = True
            self._lock.wait_for(lambda: self._running == 0, timeout=max(0.0, deadline - time.monotonic()))
        self.models.stop(timeout=max(0.5, deadline - time.monotonic()))
        with self._lock:  # the refused ones come back at once; the running batch's, when it is done
            self._lock.wait_for(lambda: self._running == 0, timeout=2.0)
            return self._running

    def close(self) -> None:
        """Remove every file (call :meth:`stop` first when requests may be running)."""
        self.models.stop(timeout=0)
        shutil.rmtree(self.root, ignore_errors=True)


def _mask_key(photo: Upload, choice: MaskChoice) -> tuple | None:
    """What identifies the mask a request gets (the files as they are now, the source, the kind);
    None where it is not kept (the brush: its layer changes with every stroke)."""
    if choice.source not in ("segmenter", "upload"):
        return None
    try:
        files = [photo.path] + ([choice.mask.path] if choice.source == "upload" and choice.mask else [])
        stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return None
    return choice.source, choice.kind, stats


def _required(photo: Upload | None) -> Upload:
    if photo is None:
        raise DataError("no photo: drop or pick a photo first")
    return photo


def _unique(folder: Path, stem: str, suffix: str) -> str:
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    name, n = f"{stem}{suffix}", 1
    while (folder / name).exists():
        n += 1
        name = f"{stem}_{n}{suffix}"
    return name
