"""Perceptual signatures of images, and the near-duplicate pairs among them (for `dedup`).

A thumbnail (64x64 YCbCr, decoded in libjpeg's draft mode) and its orthonormal 2-D DFT kept in
bands: a shift-invariant coarse descriptor finds candidates with chunked matrix products, and a
fitted shift plus the structure and colour distances left after it verify them. The method and
how its thresholds were measured: :mod:`clothes_extractor.data.dedup`.

No torch here: numpy and Pillow only, so `dedup` starts fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from clothes_extractor.data.workers import process_pool

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
