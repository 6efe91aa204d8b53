"""Garment masks: read one a user gives (any of four kinds), or take one from a predicted parse.

Masks come in several kinds (:func:`detect_mask_kind`, in this order):

1. ``labels``: a palette (P) or greyscale (L) image whose values are all label indices (< 20)
   and not all 0/1, e.g. VITON-HD's ``image-parse-v3/<id>.png``. The garment is the set of
   labels the checkpoint was trained on (``preprocess.garment_labels``, upper-clothes = 5).
2. ``colours``: an RGB(A) image (or a palette image of other values) whose colours snap to the
   20 parse colours (VITON-HD's palette; the CIHP/LIP one differs by one step): at most 5% of
   the pixels farther than 40 (RGB distance) from every parse colour, so a parse image saved as
   JPEG or resized with smoothing still counts (:func:`snap_colours`, measurements at
   :data:`COLOUR_TOLERANCE`), and some non-background label present. Each pixel takes the label
   of its nearest parse colour; the share snapped is part of the reading reported.
3. ``binary``: anything else. An image with a non-trivial alpha channel (RGBA, LA, PA, not all
   255): alpha >= 128. Otherwise the grey level: >= 128 (L, 1, RGB masks; JPEG ringing is
   absorbed), or == 1 for a 0/1 mask (all values 0 or 1, as numpy writes them).

A mask with the photo's aspect ratio at another size (within a pixel of rounding) is resized to
the photo with nearest neighbour, with a note; another aspect ratio is an error. A garment
covering less than 1% or more than 70% of the photo gets a warning (:data:`GARMENT_AREA_BOUNDS`).
How the mask was read, any resize and any warning go to the caller as notes.

``--mask-kind`` forces a kind instead of detecting it. A mask image is read with its EXIF
orientation applied, as the photo is (:mod:`clothes_extractor.inference.photo`).

Without a mask, a garment segmenter predicts the photo's parse map and the garment mask is its
pixels of the generator's garment labels (:func:`require_garment`); an empty one is a DataError.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from clothes_extractor.data.viton import LABELS, MASK_THRESHOLD, VITON_PALETTE, garment_mask
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.inference.photo import open_oriented, read_photo

MASK_KINDS: tuple[str, ...] = ("auto", "labels", "binary", "colours")
# A colour-coded parse image saved as JPEG or resized with smoothing: each colour is snapped to
# the nearest parse colour. Measured on the 13 real VITON-HD parse maps saved as JPEG at quality
# 75/85/95 and resized to half with bilinear: 0.36-1.0% of the pixels lie farther than 40 (RGB
# distance) from every parse colour, and the nearest colour gives the true label on >= 99.82% of
# the pixels within 40 (the garment itself agrees on >= 99.87% of all pixels). Beyond
# FAR_SHARE_LIMIT (5x the worst measured) the image is not a parse image: refused, or binary.
COLOUR_TOLERANCE = 40.0
FAR_SHARE_LIMIT = 0.05
GARMENT_SHARE_MIN_SEEN = 0.001  # a colour parse image shows some non-background label
# Garment share of the photo: 8.9-27.5% on the 13 real VITON-HD samples (upper clothes); outside
# these generous bounds the mask is likely not the garment (a warning, not an error).
GARMENT_AREA_BOUNDS = (0.01, 0.70)
CLOTHING_LABELS: tuple[int, ...] = (5, 6, 7, 9, 12)  # upper-clothes, dress, coat, pants, skirt

_N_LABELS = len(LABELS)
_VITON_COLOURS = [tuple(VITON_PALETTE[3 * i: 3 * i + 3]) for i in range(_N_LABELS)]
# The standard CIHP/LIP palette: VITON-HD's with 255/170/221 where VITON-HD has 254/169/220.
_LIP_COLOURS = [tuple({254: 255, 169: 170, 220: 221}.get(c, c) for c in rgb) for rgb in _VITON_COLOURS]
_NO_LABEL = 255


def _colour_codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_CODE_TO_LABEL: dict[int, int] = {
    int(_colour_codes(np.array(c))): i for colours in (_LIP_COLOURS, _VITON_COLOURS) for i, c in enumerate(colours)
}
_CODES = np.array(sorted(_CODE_TO_LABEL), dtype=np.int32)
_CODE_LABELS = np.array([_CODE_TO_LABEL[int(c)] for c in _CODES], dtype=np.uint8)


# --- masks ---------------------------------------------------------------------------------------


def colours_to_labels(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colour-coded parse image -> (H, W) uint8 label indices; 255 where a pixel
    is not exactly one of the 20 parse colours (VITON-HD or CIHP/LIP palette)."""
    codes = _colour_codes(rgb)
    idx = np.clip(np.searchsorted(_CODES, codes), 0, len(_CODES) - 1)
    return np.where(_CODES[idx] == codes, _CODE_LABELS[idx], _NO_LABEL).astype(np.uint8)


def snap_colours(rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(H, W, 3) uint8 colour parse image, possibly lossy -> ((H, W) uint8 labels of the nearest
    parse colour, share of pixels that were not exactly a parse colour, share farther than
    :data:`COLOUR_TOLERANCE` from every parse colour)."""
    codes = _colour_codes(rgb).ravel()
    if codes.size == 0:
        return np.zeros(rgb.shape[:2], np.uint8), 0.0, 0.0
    unique, inverse = np.unique(codes, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], -1).astype(np.float32)
    palette = np.array(_VITON_COLOURS, np.float32)
    dist = np.sqrt(((colours[:, None, :] - palette[None]) ** 2).sum(-1))
    nearest, far = dist.argmin(-1).astype(np.uint8), dist.min(-1) > COLOUR_TOLERANCE
    exact = np.isin(unique, _CODES)
    labels = nearest[inverse].reshape(rgb.shape[:2])
    return labels, float((~exact)[inverse].mean()), float(far[inverse].mean())


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _alpha(image: Image.Image) -> np.ndarray | None:
    """The alpha channel as (H, W) uint8 if the image has a non-trivial one (not all 255)."""
    if not _has_alpha(image):
        return None
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    return alpha if alpha.min() < 255 else None


def _as_rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def _is_label_map(image: Image.Image) -> bool:
    if image.mode not in ("P", "L"):
        return False
    values = np.asarray(image)
    return values.size > 0 and int(values.max()) < _N_LABELS and int(values.max()) >= 2


def _is_colour_coded(image: Image.Image) -> bool:
    if image.mode not in ("RGB", "RGBA", "P", "PA"):
        return False
    labels, _, far = snap_colours(_as_rgb(image))
    return far <= FAR_SHARE_LIMIT and float((labels != 0).mean()) >= GARMENT_SHARE_MIN_SEEN


def detect_mask_kind(image: Image.Image) -> str:
    """``labels``, ``colours`` or ``binary``, in the order documented in the module docstring."""
    if _is_label_map(image):
        return "labels"
    if _is_colour_coded(image):
        return "colours"
    return "binary"


def _binary_mask(image: Image.Image) -> tuple[np.ndarray, str]:
    alpha = _alpha(image)
    if alpha is not None:
        return alpha >= MASK_THRESHOLD, "alpha >= 128"
    grey = np.asarray(image.convert("L"))
    if grey.size and int(grey.max()) == 1:
        return grey == 1, "a 0/1 mask, value 1"
    return grey >= MASK_THRESHOLD, "grey level >= 128"


def decode_garment_mask(
    image: Image.Image, labels: Sequence[int], kind: str = "auto", *, name: str = "mask"
) -> tuple[np.ndarray, str]:
    """A decoded mask image -> ((H, W) bool garment mask, how it was read, in words).

    ``labels`` are the garment's label indices (used by label maps and colour-coded parse
    images); ``kind`` is one of :data:`MASK_KINDS`.
    """
    if kind not in MASK_KINDS:
        raise ConfigError(f"mask kind {kind!r} is not one of {', '.join(MASK_KINDS)}")
    labels = tuple(labels)
    names = ", ".join(f"{i} ({LABELS[i]})" for i in labels if 0 <= i < _N_LABELS)
    if kind == "auto":
        kind = detect_mask_kind(image)
    if kind == "labels":
        if image.mode not in ("P", "L", "I", "I;16"):
            raise DataError(
                f"{name} is not a label map: mode {image.mode}, expected a palette (P) or greyscale (L) "
                "image whose values are label indices; try --mask-kind colours or binary"
            )
        values = np.asarray(image)
        if values.size and values.max() >= _N_LABELS:
            raise DataError(
                f"{name} is not a label map: it holds value {int(values.max())}, labels go from 0 to "
                f"{_N_LABELS - 1}; try --mask-kind binary"
            )
        return garment_mask(values, labels), f"a label map, labels {names}"
    if kind == "colours":
        parse, snapped, far = snap_colours(_as_rgb(image))
        if far > FAR_SHARE_LIMIT:
            raise DataError(
                f"{name} is not a colour-coded parse image: {far:.1%} of its pixels are far from every parse "
                f"colour (at most {FAR_SHARE_LIMIT:.0%} allowed, for JPEG or smoothing noise); "
                "save the parse map as PNG, or try --mask-kind binary"
            )
        how = f"{snapped:.1%} of pixels snapped to the nearest parse colour" if snapped else "exact colours"
        return garment_mask(parse, labels), f"a colour-coded parse image ({how}), labels {names}"
    mask, how = _binary_mask(image)
    return mask, f"a binary mask, {how}"


def read_garment_mask(
    path: str | os.PathLike, labels: Sequence[int], kind: str = "auto"
) -> np.ndarray:
    """Read a garment mask of any supported kind (see the module docstring) as (H, W) bool."""
    return decode_garment_mask(open_oriented(path, "mask"), labels, kind, name=str(path))[0]


def same_aspect(mask_size: tuple[int, int], photo_size: tuple[int, int]) -> bool:
    """Whether a mask of (W, H) ``mask_size`` is the photo's (W, H) at another scale, within one
    pixel of rounding on either side."""
    (mw, mh), (pw, ph) = mask_size, photo_size
    return abs(mh * pw / mw - ph) <= pw / mw + 1e-9 or abs(mw * ph / mh - pw) <= ph / mh + 1e-9


def _fit_to_photo(mask: np.ndarray, photo_shape: tuple[int, ...], mask_path, photo_path, notes: list[str]) -> np.ndarray:
    (mh, mw), (ph, pw) = mask.shape, photo_shape[:2]
    if (mh, mw) == (ph, pw):
        return mask
    if mh == 0 or mw == 0 or not same_aspect((mw, mh), (pw, ph)):
        raise DataError(
            f"mask {mask_path} is {mw}x{mh} but photo {photo_path} is {pw}x{ph}; the mask must be drawn on the same "
            "photo, at the same size or the same aspect ratio"
        )
    notes.append(f"mask {mw}x{mh} resized to the photo's {pw}x{ph} (nearest neighbour)")
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255, "L").resize((pw, ph), Image.NEAREST)) >= 128


def _parse_of(mask_image: Image.Image, how: str) -> np.ndarray | None:
    if "label map" in how:
        return np.asarray(mask_image)
    if "colour-coded" in how:
        return snap_colours(_as_rgb(mask_image))[0]
    return None


def outside_labels_hint(known: str, parse: np.ndarray, names: Sequence[str]) -> str:
    """The part of an empty-garment message that says which clothing labels ``parse`` holds
    instead (with their share of the photo) and what to do; '' when it holds none."""
    total = max(parse.size, 1)
    present = [(v, float((parse == v).sum()) / total) for v in CLOTHING_LABELS if v < len(names) and (parse == v).any()]
    if not present:
        return ""
    found = ", ".join(f"{v} ({names[v]}, {share:.1%} of the photo)" for v, share in present)
    return (
        f"; this checkpoint knows {known}, but the parse holds other clothing: {found}. Use a checkpoint trained "
        "on those garments: one trained on Dress Code categories with --category (upper_body, lower_body, "
        "dresses), or train one with --labels, e.g. `train-gan --data DRESSCODE --category dresses`"
    )


def area_note(mask: np.ndarray) -> str | None:
    """A warning when the garment covers implausibly little or much of the photo
    (:data:`GARMENT_AREA_BOUNDS`), else None."""
    share, (low, high) = float(mask.mean()) if mask.size else 0.0, GARMENT_AREA_BOUNDS
    if low <= share <= high:
        return None
    return (
        f"warning: the garment covers {share:.1%} of the photo (real samples: 9-28%, expected {low:.0%}-{high:.0%}); "
        "check that the mask is the garment's"
    )


def read_pair(
    photo_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    labels: Sequence[int],
    kind: str = "auto",
    *,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(photo (H, W, 3) uint8, garment mask (H, W) bool), checked: same size (a mask of the
    photo's aspect ratio at another size is resized, nearest), mask not empty. ``notes`` gets
    how the mask was read, any resize and an area warning, in words."""
    photo = read_photo(photo_path)
    return photo, read_mask_for(photo.shape[:2], photo_path, mask_path, labels, kind, notes=notes)


def read_mask_for(
    photo_shape: tuple[int, int],
    photo_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    labels: Sequence[int],
    kind: str = "auto",
    *,
    notes: list[str] | None = None,
) -> np.ndarray:
    """The garment mask of :func:`read_pair` for a photo of ``photo_shape`` (H, W) not decoded
    here (folder mode on a GPU decodes the photos there): the same reading, fit and checks."""
    notes = [] if notes is None else notes
    mask_image = open_oriented(mask_path, "mask")
    mask, how = decode_garment_mask(mask_image, labels, kind, name=str(mask_path))
    notes.append(f"mask read as {how}")
    mask = _fit_to_photo(mask, photo_shape, mask_path, photo_path, notes)
    if not mask.any():
        hint = ""
        parse = _parse_of(mask_image, how)
        if parse is not None:
            present = [int(v) for v in np.unique(parse) if v < _N_LABELS]
            known = ", ".join(f"{i} ({LABELS[i]})" for i in labels if 0 <= i < _N_LABELS)
            hint = f"; labels present: {', '.join(f'{v} ({LABELS[v]})' for v in present) or 'none'}"
            hint += outside_labels_hint(known, parse, LABELS)
        raise DataError(
            f"mask {mask_path}: the garment mask is empty (read as {how}{hint}); "
            f"force another reading with --mask-kind ({', '.join(MASK_KINDS[1:])})"
        )
    warning = area_note(mask)
    if warning:
        notes.append(warning)
    return mask


def require_garment(segmenter, classes: np.ndarray, garment_labels: Sequence[int], *, name: str = "photo") -> np.ndarray:
    """The garment mask of a prediction of ``segmenter``
    (:class:`~clothes_extractor.inference.segmenter.Segmenter`); DataError if it is empty (no
    output is better than a blank one)."""
    mask = segmenter.garment_mask(classes, garment_labels)
    if not mask.any():
        found = [int(v) for v in np.unique(classes)]
        seen = ", ".join(f"{v} ({segmenter.label_set.classes[v]})" for v in found) or "none"
        hint = outside_labels_hint(segmenter.describe_garment(garment_labels), segmenter.to_cihp(classes), LABELS)
        raise DataError(
            f"the segmenter found no garment ({segmenter.describe_garment(garment_labels)}) in photo {name} "
            f"(it found: {seen}){hint}; give a mask"
        )
    return mask
