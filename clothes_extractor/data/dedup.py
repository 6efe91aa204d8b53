"""`dedup`: near-duplicate garments and photos inside a split and across train and test.

No torch here: numpy and Pillow only, so `dedup` starts fast.

Garment images and person photos are compared each with their own kind:

1. **Thumbnail**: decoded in libjpeg's draft mode (DCT scaling, never below 64 px a side),
   resized (bilinear, antialiased) to 64x64 YCbCr. Its orthonormal 2-D DFT is kept in bands.
2. **Exact copies** (identical thumbnails) are paired first, at distance 0.
3. **Candidates** (recall): the magnitudes of the luma spectrum up to 8 cycles per image do not
   change when the image shifts; pairs within ``RADIUS`` x the threshold by this descriptor are
   found with chunked matrix products (16k images: seconds).
4. **Verification** (precision): the shift between the two images is fitted (Gauss-Newton on
   the Fourier phases, up to 4 thumbnail pixels, 6 % of the side); the *structure distance* is
   what it leaves of the luma band (16 cycles for garments, 8 for photos, whose frame cuts the
   person so a shift also changes the edges), relative to the images' contrast (with a floor of
   6 grey levels, so flat images are not judged on JPEG noise). The *colour distance* is the
   largest difference of the shifted, low-passed chroma (Cb, Cr; 4 cycles) over the thumbnail
   less its border, in grey levels: a slightly recoloured garment has the same structure but
   not the same colour, and is not a duplicate. Duplicates pass both thresholds.
5. **Groups** are the connected components of the duplicate pairs.

Thresholds, measured on 200 real VITON (2018) garments and photos re-encoded at quality 60,
resized (x0.5, x0.75, x2), shifted by 3 px, or all at once, against the nearest pairs of its
5,733 distinct images: garments stayed under 0.082 and the nearest different garments (two
black turtlenecks, two black polos) are at 0.101 and 0.116, so 0.09; photos stayed under 0.115
(the 3-px shifts) and different photos start at 0.225, so 0.15. The colour distance of those
copies stayed under 5.0 (garments) and 7.9 (photos); a 10 % tint gives 11 or more, a 30-degree
hue turn of a photo 11 or more, VITON's recoloured photo pairs (a navy and a black version of
one shirt) 23: so 10.

The exclusion list (TryOffDiff's JSON layout, which `split --exclude` and `evaluate --exclude`
read): of every group with train and test members, the test members (*leaked*: the test set
must not hold what training saw); of the other groups, all members but the first by split,
then id (*duplicates*). What is excluded for one kind is excluded for the sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from clothes_extractor import __version__
from clothes_extractor.data.workers import cpu_count, process_pool
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text

KINDS: tuple[str, ...] = ("garment", "photo")
SPLIT_ORDER: tuple[str, ...] = ("train", "test")
SIZE = 64  # thumbnail side
# Structure band of each kind, in cycles per image. Garments lie on white, so a shift of the
# image is a shift of the thumbnail and finer detail can be compared; a photo's frame cuts the
# person, so a shift also changes its edges and only the coarser band is reliable.
BANDS: dict[str, int] = {"garment": 16, "photo": 8}
COARSE_BAND = 8  # the candidate descriptor's band
COLOUR_BAND = 4  # colour: chroma (Cb, Cr) up to this many cycles per image
COLOUR_GRID = 16  # colour differences are looked at on this grid, less its outer ring
FLOOR = 6.0  # grey levels: the contrast below which structure is not trusted
RADIUS = 1.25  # candidates: coarse distance within RADIUS x the structure threshold
MAX_SHIFT = 4.0  # thumbnail pixels (6 % of the side)
DEFAULT_THRESHOLDS: dict[str, float] = {"garment": 0.09, "photo": 0.15}
DEFAULT_COLOUR_THRESHOLD = 10.0
DUPLICATES_FILE, EXCLUDE_FILE = "duplicates.json", "dedup_exclude.json"
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_CHUNK = 64  # images per task of the worker pool

# Frequencies of the half-plane spectrum (rfft2) and their weights: the mirrored half counts
# twice, so sums over the half-plane equal sums over the full spectrum (Parseval).
_KY, _KX = np.meshgrid(np.fft.fftfreq(SIZE, 1 / SIZE), np.fft.rfftfreq(SIZE, 1 / SIZE), indexing="ij")
_WEIGHT = np.where((_KX > 0) & (_KX < SIZE / 2), 2.0, 1.0).astype(np.float32)


def _band(k: int, dc: bool = False) -> np.ndarray:
    """Mask of the frequencies up to ``k`` cycles per image (without the mean unless ``dc``)."""
    return (np.abs(_KY) <= k) & (_KX <= k) & (dc | (_KY != 0) | (_KX != 0))


def _angular(mask: np.ndarray) -> np.ndarray:
    """(m, 2) float32 angular frequencies (radians per thumbnail pixel) of a mask."""
    return (np.stack([_KY[mask], _KX[mask]], 1) * (2 * np.pi / SIZE)).astype(np.float32)


_COARSE, _COLOUR = _band(COARSE_BAND), _band(COLOUR_BAND, dc=True)


def _synthesis() -> np.ndarray:
    """(c, g) complex64: colour-band coefficients -> values at the inner grid points (the real
    part of ``coefficients @ matrix``), so a colour difference can be looked at where it is."""
    centres = (np.arange(COLOUR_GRID) + 0.5) * SIZE / COLOUR_GRID
    yy, xx = np.meshgrid(centres[1:-1], centres[1:-1], indexing="ij")
    points = np.stack([yy.ravel(), xx.ravel()])
    return (np.exp(1j * (_angular(_COLOUR) @ points)) * _WEIGHT[_COLOUR][:, None] / SIZE).astype(np.complex64)


_SYNTHESIS = _synthesis()


@dataclass(frozen=True)
class Record:
    """One sample: where it is and its two images (None: the data set has no such file)."""

    split: str
    id: str
    photo: Path | None
    garment: Path | None


@dataclass(frozen=True)
class Group:
    """Near-duplicate images of one kind. ``members`` are (split, id), sorted train first;
    ``pairs`` the matches that joined them: (member, member, structure distance, colour)."""

    kind: str
    members: tuple[tuple[str, str], ...]
    pairs: tuple[tuple[int, int, float, float], ...]

    @property
    def scope(self) -> str:
        """``train`` or ``test`` (all members in that split) or ``across`` (a leak)."""
        splits = {s for s, _ in self.members}
        return splits.pop() if len(splits) == 1 else "across"


@dataclass(frozen=True)
class DedupResult:
    groups: list[Group]
    exclude: dict[str, dict[str, list[str]]]  # split -> reason (duplicates, leaked) -> ids
    samples: dict[str, int]  # split -> samples
    images: int  # images compared (both kinds)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # "duplicates", "exclude" -> file

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> scope (train, test, across) -> number of groups."""
        out = {k: {"train": 0, "test": 0, "across": 0} for k in KINDS}
        for g in self.groups:
            out[g.kind][g.scope] = out[g.kind].get(g.scope, 0) + 1
        return out


# --- signatures ----------------------------------------------------------------------------------


def thumbnail(path: str | os.PathLike | IO[bytes]) -> np.ndarray:
    """(64, 64, 3) uint8 YCbCr of an image (JPEGs decoded in draft mode), resized bilinearly
    (Pillow's resize filters antialias: no aliasing in the bands compared)."""
    with Image.open(path) as image:
        image.draft("YCbCr", (SIZE, SIZE))  # JPEG: DCT-scaled decoding, no colour conversion
        ycbcr = image.copy() if image.mode == "YCbCr" else image.convert("RGB").convert("YCbCr")
    return np.asarray(ycbcr.resize((SIZE, SIZE), Image.BILINEAR, reducing_gap=None))


@dataclass(frozen=True)
class Signatures:
    """What is kept of each image: spectra bands of its thumbnail (orthonormal 2-D DFT)."""

    luma: np.ndarray  # (n, m) complex64: the structure band of Y
    colour: np.ndarray  # (n, 2, c) complex64: the colour band of Cb and Cr
    coarse: np.ndarray  # (n, d) float32: shift-invariant candidate descriptor
    band: int

    def __len__(self) -> int:
        return len(self.luma)

    def take(self, index: np.ndarray) -> Signatures:
        return Signatures(self.luma[index], self.colour[index], self.coarse[index], self.band)


def signatures(thumbs: np.ndarray, band: int) -> Signatures:
    """Signatures of (n, 64, 64, 3) uint8 YCbCr thumbnails with a structure band of ``band``."""
    spectra = np.fft.rfft2(np.moveaxis(thumbs, -1, 1).astype(np.float32), norm="ortho")
    # |F| of the coarse band, weighted and scaled like the structure distance (with its floor):
    # a shift changes only the phases, so shifted copies have the same descriptor.
    magnitude = np.abs(spectra[:, 0][:, _COARSE]) * np.sqrt(_WEIGHT[_COARSE])
    coarse = magnitude / np.sqrt((magnitude**2).sum(1, keepdims=True) + (FLOOR * SIZE) ** 2)
    return Signatures(
        spectra[:, 0][:, _band(band)].astype(np.complex64),
        spectra[:, 1:, _COLOUR].astype(np.complex64),
        coarse.astype(np.float32),
        band,
    )


def _signatures_of(job: tuple[Sequence[str], int]) -> tuple[Signatures, list[bytes], list[tuple[int, str]]]:
    """A pool task: the signatures and thumbnail digests of the readable images of ``paths``,
    and (position, why) of the others."""
    paths, band = job
    thumbs, digests, failed = [], [], []
    for k, path in enumerate(paths):
        try:
            thumbs.append(thumbnail(path))
        except _READ_ERRORS as exc:
            failed.append((k, f"{type(exc).__name__}: {exc}"))
            continue
        digests.append(hashlib.blake2b(thumbs[-1].tobytes(), digest_size=16).digest())
    empty = np.zeros((0, SIZE, SIZE, 3), np.uint8)
    return signatures(np.stack(thumbs) if thumbs else empty, band), digests, failed


@contextlib.contextmanager
def _mapper(workers: int, jobs: int) -> Iterator[Callable]:
    """``imap`` over a fork pool of ``workers`` processes (plain ``map`` for 1 or few jobs)."""
    if workers <= 1 or jobs <= 1:
        yield map
        return
    with process_pool(min(workers, jobs)) as pool:
        yield pool.imap


def read_signatures(
    paths: Sequence[Path], band: int, workers: int = 1, progress: Callable[[int], None] | None = None
) -> tuple[Signatures, list[bytes], list[int], list[tuple[int, str]]]:
    """(signatures, thumbnail digests, indices into ``paths``) of the readable images, and
    (index, why) of the others. ``workers`` processes decode in parallel."""
    starts = range(0, len(paths), _CHUNK)
    jobs = [([str(p) for p in paths[s: s + _CHUNK]], band) for s in starts]
    parts, digests, readable, failed = [], [], [], []
    with _mapper(workers, len(jobs)) as imap:
        for start, (sig, chunk_digests, chunk_failed) in zip(starts, imap(_signatures_of, jobs)):
            bad = {k for k, _ in chunk_failed}
            n = min(_CHUNK, len(paths) - start)
            parts.append(sig)
            digests += chunk_digests
            readable += [start + k for k in range(n) if k not in bad]
            failed += [(start + k, why) for k, why in chunk_failed]
            if progress:
                progress(n)
    if not parts:
        parts = [signatures(np.zeros((0, SIZE, SIZE, 3), np.uint8), band)]
    joined = Signatures(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("luma", "colour", "coarse")), band)
    return joined, digests, readable, failed


# --- candidates and verification ----------------------------------------------------------------


def candidate_pairs(coarse: np.ndarray, radius: float, chunk: int = 1024) -> np.ndarray:
    """(p, 2) index pairs i < j whose coarse descriptors are within ``radius`` (Euclidean):
    chunked matrix products over the upper triangle, so 16k images take seconds."""
    n = len(coarse)
    norms = (coarse**2).sum(1)
    found = [np.zeros((0, 2), np.int64)]
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        # |a - b|^2 <= r^2  <=>  a.b >= (|a|^2 + |b|^2 - r^2) / 2
        close = coarse[s:e] @ coarse[s:].T >= (norms[s:e, None] + norms[None, s:] - radius**2) / 2
        i, j = np.nonzero(np.triu(close, 1))
        found.append(np.stack([i + s, j + s], 1))
    return np.concatenate(found)


def _rotate(z: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """z * exp(-i phase), in single precision."""
    return z * (np.cos(phase) - 1j * np.sin(phase)).astype(np.complex64)


def compare(a: Signatures, b: Signatures, iterations: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise: (structure distance, colour distance, fitted shift (dy, dx) in thumbnail px).

    The shift ``s`` minimises || b - a exp(-i k.s) || over the structure band (Gauss-Newton from
    0; the normal matrix does not depend on ``s``); k are the band's angular frequencies.
    """
    mask = _band(a.band)
    k, w = _angular(mask), _WEIGHT[mask]
    power_a = w * np.abs(a.luma) ** 2
    normal = (power_a @ (k[:, :, None] * k[:, None, :]).reshape(-1, 4)).reshape(-1, 2, 2)
    normal += 1e-6 * (normal[:, 0, 0] + normal[:, 1, 1] + 1)[:, None, None] * np.eye(2, dtype=np.float32)
    shift = np.zeros((len(a), 2), np.float32)
    for _ in range(iterations):
        predicted = _rotate(a.luma, shift @ k.T)
        gradient = -(w * np.imag(np.conj(predicted) * (b.luma - predicted))) @ k
        step = np.linalg.solve(normal, gradient[..., None])[..., 0]
        shift = np.clip(shift + step, -MAX_SHIFT, MAX_SHIFT).astype(np.float32)
    residual = b.luma - _rotate(a.luma, shift @ k.T)
    energy = (power_a.sum(1) + (w * np.abs(b.luma) ** 2).sum(1)) / 2
    structure = np.sqrt((w * np.abs(residual) ** 2).sum(1) / (energy + (FLOOR * SIZE) ** 2))

    diff = b.colour - _rotate(a.colour, (shift @ _angular(_COLOUR).T)[:, None, :])
    colour = np.abs(np.real(diff @ _SYNTHESIS)).max(axis=(1, 2))
    return structure, colour, shift


def find_pairs(
    sig: Signatures, digests: Sequence[bytes], threshold: float, colour_threshold: float, chunk: int = 4096
) -> list[tuple[int, int, float, float]]:
    """Duplicate pairs (i, j, structure, colour) among signatures; exact copies (same thumbnail
    digest) at distance 0, the others verified among the candidates."""
    first: dict[bytes, int] = {}
    pairs: list[tuple[int, int, float, float]] = []
    for i, digest in enumerate(digests):
        j = first.setdefault(digest, i)
        if j != i:
            pairs.append((j, i, 0.0, 0.0))
    index = np.array(sorted(first.values()), np.int64)
    unique = sig.take(index)
    candidates = candidate_pairs(unique.coarse, RADIUS * threshold)
    for s in range(0, len(candidates), chunk):
        c = candidates[s: s + chunk]
        structure, colour, _ = compare(unique.take(c[:, 0]), unique.take(c[:, 1]))
        keep = (structure <= threshold) & (colour <= colour_threshold)
        pairs += [
            (int(index[i]), int(index[j]), round(float(d), 4), round(float(q), 2))
            for i, j, d, q in zip(c[keep, 0], c[keep, 1], structure[keep], colour[keep])
        ]
    return pairs


# --- groups and the exclusion list --------------------------------------------------------------


def connected_groups(n: int, pairs: Sequence[tuple[int, int, float, float]]) -> list[tuple[list[int], list]]:
    """Connected components (of two or more) of the pairs: (sorted members, their pairs)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, *_ in pairs:
        parent[root(i)] = root(j)
    components: dict[int, tuple[list[int], list]] = {}
    for i, j, *rest in pairs:
        components.setdefault(root(i), ([], []))[1].append((i, j, *rest))
    for i in range(n):
        if (r := root(i)) in components:
            components[r][0].append(i)
    return list(components.values())


def _split_key(member: tuple[str, str]) -> tuple[int, str]:
    split, sample_id = member
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), sample_id)


def make_groups(kind: str, records: Sequence[Record], pairs: Sequence[tuple[int, int, float, float]]) -> list[Group]:
    """Groups of ``kind`` from pairs of indices into ``records``."""
    groups = []
    for members, edges in connected_groups(len(records), pairs):
        members = sorted(members, key=lambda i: _split_key((records[i].split, records[i].id)))
        position = {m: p for p, m in enumerate(members)}
        groups.append(Group(
            kind,
            tuple((records[m].split, records[m].id) for m in members),
            tuple(sorted((min(position[i], position[j]), max(position[i], position[j]), d, c) for i, j, d, c in edges)),
        ))
    return sorted(groups, key=lambda g: (KINDS.index(g.kind), _split_key(g.members[0])))


def exclusion(groups: Sequence[Group]) -> dict[str, dict[str, list[str]]]:
    """split -> {"duplicates": ids, "leaked": ids}: the test members of groups with a train
    member (leaked), and all but the first member of the other groups (duplicates)."""
    leaked: set[tuple[str, str]] = set()
    duplicates: set[tuple[str, str]] = set()
    for g in groups:
        train = [m for m in g.members if m[0] == "train"]
        if train and len(train) < len(g.members):
            leaked.update(m for m in g.members if m[0] != "train")
            duplicates.update(train[1:])
        else:
            duplicates.update(g.members[1:])
    duplicates -= leaked
    out: dict[str, dict[str, list[str]]] = {}
    for reason, members in (("duplicates", duplicates), ("leaked", leaked)):
        for split, sample_id in sorted(members, key=_split_key):
            out.setdefault(split, {}).setdefault(reason, []).append(sample_id)
    return out


# --- the data set -------------------------------------------------------------------------------


def records_of(root: str | os.PathLike, layout: str | None = None) -> tuple[str, list[Record]]:
    """(layout name, records of every split found) of a data set root or one split folder."""
    from clothes_extractor.data import layouts

    root = Path(root)
    found = layouts.detect_layout(root, layout)  # DataError: no folder, no known layout
    records: list[Record] = []
    errors: list[str] = []
    seen: set[Path] = set()
    for split in SPLIT_ORDER:
        try:
            opened = layouts.open_split(root, split, layout=found.name)
        except DataError as exc:  # no such split here (Dress Code has no test pair file)
            errors.append(str(exc))
            continue
        if opened.dir in seen and not opened.categories:
            continue  # a split folder given directly: read once
        seen.add(opened.dir)
        name = split if opened.categories or opened.dir != root else (root.name if root.name in SPLIT_ORDER else split)
        for sample_id in opened.list_ids():
            files = opened.files(sample_id)
            records.append(Record(name, sample_id, files.photo, files.garment))
    if not records:
        raise DataError(errors[0] if errors else f"no samples found in {root}")
    return found.name, records


def find_duplicates(
    records: Sequence[Record],
    *,
    thresholds: dict[str, float] | None = None,
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> DedupResult:
    """Near-duplicate groups of ``records`` (any splits, any layout) and their exclusion list.

    The pure core of `dedup`: reads the images and writes nothing. A missing or unreadable image
    is listed in ``unreadable`` and left out of the comparisons.
    """
    start = time.perf_counter()
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    groups: list[Group] = []
    unreadable: list[tuple[str, str]] = []
    images = 0
    for kind in KINDS:
        having = [r for r in records if getattr(r, kind) is not None]
        paths = [getattr(r, kind) for r in having]
        sig, digests, readable, failed = read_signatures(paths, BANDS[kind], workers, progress)
        unreadable += [(str(paths[i]), why) for i, why in failed]
        images += len(readable)
        pairs = find_pairs(sig, digests, thresholds[kind], colour_threshold)
        groups += make_groups(kind, [having[i] for i in readable], pairs)
    samples: dict[str, int] = {}
    for r in records:
        samples[r.split] = samples.get(r.split, 0) + 1
    return DedupResult(
        groups=groups,
        exclude=exclusion(groups),
        samples=samples,
        images=images,
        unreadable=unreadable,
        seconds=time.perf_counter() - start,
        thresholds={**thresholds, "colour": colour_threshold},
    )


def _report(result: DedupResult, root: Path, layout: str) -> dict:
    def member(m: tuple[str, str]) -> dict[str, str]:
        return {"split": m[0], "id": m[1]}

    return {
        "tool": f"clothes-extractor {__version__} dedup",
        "data": str(root),
        "layout": layout,
        "samples": result.samples,
        "images": result.images,
        "thresholds": result.thresholds,
        "counts": result.counts(),
        "excluded": result.exclude,
        "groups": [
            {
                "kind": g.kind,
                "scope": g.scope,
                "members": [member(m) for m in g.members],
                "pairs": [
                    {"a": member(g.members[a]), "b": member(g.members[b]), "distance": d, "colour": c}
                    for a, b, d, c in g.pairs
                ],
            }
            for g in result.groups
        ],
        "unreadable": [{"path": p, "error": why} for p, why in result.unreadable],
    }


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("dedup: reading images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("images", total=total)
        yield lambda n: bar.advance(task, n)


def dedup(
    data: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    layout: str | None = None,
    thresholds: dict[str, float] | None = None,
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> DedupResult:
    """Find the near-duplicates of the data set ``data`` and write ``duplicates.json`` and
    ``dedup_exclude.json`` to ``out`` (default: ``data``). Refuses to replace them unless
    ``overwrite``; ``workers`` processes decode (default: all cores)."""
    for name, value in {**(thresholds or {}), "colour": colour_threshold}.items():
        if not value > 0:
            raise ConfigError(f"the {name} threshold must be positive, got {value}")
    workers = cpu_count() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(data)
    layout_name, records = records_of(root, layout)
    out = Path(out) if out is not None else root
    paths = {"duplicates": out / DUPLICATES_FILE, "exclude": out / EXCLUDE_FILE}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise DataError(f"{', '.join(existing)} already exist; pass --overwrite to replace them, or --out to write elsewhere")
    total = sum(getattr(r, k) is not None for r in records for k in KINDS)
    with _progress_bar(total, progress) as advance:
        result = find_duplicates(records, thresholds=thresholds, colour_threshold=colour_threshold,
                                 workers=workers, progress=advance)
    try:
        atomic_write_text(paths["duplicates"], json.dumps(_report(result, root, layout_name), indent=1) + "\n")
        atomic_write_text(paths["exclude"], json.dumps(result.exclude, indent=1) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write the results to {out}: {exc.strerror or exc}; choose a writable folder with --out") from None
    return DedupResult(**{**result.__dict__, "paths": paths})
