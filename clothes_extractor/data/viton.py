"""The VITON-HD layout: folders, labels, palette, sample ids, and reading one sample's files.

No torch here, and numpy only inside the functions that return arrays: `split`, `downsample`
and `make-sample-data` use this module and must start fast.

Layout of a data set root (``zalando-hd-resized/`` or a downsampled copy)::

    train_pairs.txt  test_pairs.txt            "<person>.jpg <cloth>.jpg" per line
    train/ test/                               one folder per split, each with:
        image/<id>.jpg                         person photo, RGB JPEG (768x1024 at full size)
        image-parse-v3/<id>.png                palette PNG, pixel values = CIHP label indices 0-19
        cloth/<id>.jpg                         the garment on a near-white background, RGB JPEG
        cloth-mask/<id>.jpg                    greyscale JPEG, near-binary: threshold at 128
        image-parse-agnostic-v3.2/<id>.png     (unused by training; kept by `downsample`)
        agnostic-v3.2/<id>.jpg, image-densepose/<id>.jpg, agnostic-mask/<id>_mask.png,
        openpose_img/<id>_rendered.png, openpose_json/<id>_keypoints.json
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from clothes_extractor.config import DEFAULT_GARMENT_LABELS  # noqa: F401  (callers read it here too)
from clothes_extractor.data.layouts import SPLITS, Split, open_split
from clothes_extractor.errors import DataError
from clothes_extractor.fileio import open_image

if TYPE_CHECKING:
    import numpy as np


# CIHP labels, the index of each is its value in image-parse-v3.
LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat",
    "socks", "pants", "torso-skin", "scarf", "skirt", "face", "left-arm", "right-arm",
    "left-leg", "right-leg", "left-shoe", "right-shoe",
)
UPPER_CLOTHES = 5

# The palette of VITON-HD's parse maps (read off the real files): 20 label colours, then a
# grey ramp (i, i, i) for the unused indices 20-255.
_LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (128, 0, 0), (254, 0, 0), (0, 85, 0), (169, 0, 51), (254, 85, 0), (0, 0, 85),
    (0, 119, 220), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0),
    (0, 0, 254), (51, 169, 220), (0, 254, 254), (85, 254, 169), (169, 254, 85), (254, 254, 0),
    (254, 169, 0),
)
VITON_PALETTE: list[int] = [c for rgb in _LABEL_COLOURS for c in rgb] + [
    v for i in range(len(_LABEL_COLOURS), 256) for v in (i, i, i)
]

MASK_THRESHOLD = 128

# Folder -> file name pattern of one sample. The first four are what training reads.
PHOTO, PARSE, CLOTH, CLOTH_MASK = "image", "image-parse-v3", "cloth", "cloth-mask"
FOLDERS: dict[str, str] = {
    PHOTO: "{id}.jpg",
    PARSE: "{id}.png",
    CLOTH: "{id}.jpg",
    CLOTH_MASK: "{id}.jpg",
    "image-parse-agnostic-v3.2": "{id}.png",
    "agnostic-v3.2": "{id}.jpg",
    "image-densepose": "{id}.jpg",
    "agnostic-mask": "{id}_mask.png",
    "openpose_img": "{id}_rendered.png",
    "openpose_json": "{id}_keypoints.json",
}
REQUIRED_FOLDERS: tuple[str, ...] = (PHOTO, PARSE, CLOTH, CLOTH_MASK)
# Folders whose files are label maps (palette PNGs): resized with nearest neighbour only.
LABEL_MAP_FOLDERS = frozenset({PARSE, "image-parse-agnostic-v3.2"})
# Folders whose files are greyscale masks.
MASK_FOLDERS = frozenset({CLOTH_MASK, "agnostic-mask"})


def parse_garment_labels(text: str) -> tuple[int, ...]:
    """``"5"`` or ``"5,6,7"`` or label names (``"upper-clothes,dress"``) -> sorted label ids."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if part.isdigit() and 0 <= int(part) < len(LABELS):
            out.add(int(part))
        elif part in LABELS:
            out.add(LABELS.index(part))
        else:
            valid = ", ".join(f"{i}={n}" for i, n in enumerate(LABELS))
            raise DataError(f"unknown garment label {part!r}; valid labels: {valid}")
    if not out:
        raise DataError("the garment label set is empty; give at least one label, e.g. 5")
    return tuple(sorted(out))


def sample_path(split_dir: Path, folder: str, sample_id: str) -> Path:
    return split_dir / folder / FOLDERS[folder].format(id=sample_id)


def id_from_filename(folder: str, name: str) -> str | None:
    """Inverse of FOLDERS[folder]: ``openpose_img/00006_00_rendered.png`` -> ``00006_00``."""
    prefix, suffix = FOLDERS[folder].split("{id}")
    if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
        return name[len(prefix): len(name) - len(suffix)]
    return None


def resolve_split_dir(
    root: str | os.PathLike | Split, split: str = "train", *, layout: str | None = None, categories=None
) -> Split:  # root may be a layouts.DataRoot (--layout, --category)
    """The :class:`~clothes_extractor.data.layouts.Split` ``split`` of a data set root of any
    layout (``root/split``, or ``root`` itself if it already is a split folder)."""
    if isinstance(root, Split):
        return root
    return open_split(root, split, layout=layout, categories=categories)


def as_split(split_dir: str | os.PathLike | Split) -> Split:
    """A :class:`Split` as it is, or a split folder of any VITON-style layout."""
    if isinstance(split_dir, Split):
        return split_dir
    return open_split(split_dir, Path(split_dir).name if Path(split_dir).name in SPLITS else "train")


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids from a list file: one per line, first column, ``.jpg``/``.png`` suffix dropped.

    Reads `split`'s lists, VITON-HD's pair files (first column = the person) and plain id lists.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"id list not found: {path}")
    ids: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ids.append(Path(line.split()[0]).stem)
    return ids


def list_ids(split_dir: Split | Path) -> list[str]:
    """All sample ids of a split, sorted (its photos; Dress Code: its pair files)."""
    return as_split(split_dir).list_ids()


def missing_files(split_dir: Split | Path, sample_id: str) -> list[Path]:
    return [p for p in as_split(split_dir).files(sample_id).required() if not p.is_file()]


def resolve_ids(split_dir: Split | Path, ids: Sequence[str] | str | os.PathLike | None) -> list[str]:
    """The ids asked for: every photo of the split (None), a list file, or a sequence of ids."""
    if ids is None:
        return list_ids(split_dir)
    if isinstance(ids, (str, os.PathLike)):
        return read_id_list(Path(ids))
    return list(ids)


def check_complete(split_dir: Split | Path, ids: Sequence[str]) -> None:
    """DataError naming (up to five of) the missing files of these samples, if any."""
    split = as_split(split_dir)
    if not ids:
        raise DataError(f"no samples selected in {split}")
    missing = [(i, p) for i in ids for p in missing_files(split, i)]
    if missing:
        listed = "; ".join(f"sample {i}: {p}" for i, p in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise DataError(
            f"{len(missing)} file(s) missing in {split}: {listed}{more}. "
            "Use the lists written by `clothes-extractor split`, which name only complete samples"
        )


def read_label_map(path: Path, sample_id: str | None = None) -> np.ndarray:
    """A parse map as (H, W) uint8 label indices. Rejects images that are not label maps."""
    import numpy as np

    who = f"sample {sample_id}: " if sample_id else ""
    image = open_image(path, f"{who}parse map")
    if image.mode not in ("P", "L"):
        raise DataError(
            f"{who}{path} is not a label map: mode {image.mode}, expected a palette (P) or "
            "greyscale (L) PNG whose pixel values are label indices"
        )
    labels = np.asarray(image)
    if labels.size and labels.max() >= len(LABELS):
        raise DataError(
            f"{who}{path} is not a VITON-HD label map: it holds value {int(labels.max())}, "
            f"labels go from 0 to {len(LABELS) - 1}"
        )
    return labels


def read_mask(path: Path, sample_id: str | None = None, what: str = "mask") -> np.ndarray:
    """A greyscale mask as (H, W) bool (threshold 128, which absorbs JPEG ringing)."""
    import numpy as np

    who = f"sample {sample_id}: " if sample_id else ""
    image = open_image(path, f"{who}{what}")
    return np.asarray(image.convert("L")) >= MASK_THRESHOLD


def read_rgb_image(path: Path, sample_id: str | None = None, what: str = "image") -> np.ndarray:
    import numpy as np

    who = f"sample {sample_id}: " if sample_id else ""
    return np.asarray(open_image(path, f"{who}{what}").convert("RGB"))


@dataclass(frozen=True)
class RawSample:
    """One sample's four training files, decoded. Arrays are (H, W[, 3]); sizes may differ
    between photo and cloth (they do not in VITON-HD)."""

    id: str
    photo: np.ndarray  # (H, W, 3) uint8
    parse: np.ndarray  # (H, W) uint8 label indices
    cloth: np.ndarray  # (h, w, 3) uint8
    cloth_mask: np.ndarray  # (h, w) bool
    labels: tuple[int, ...] | None = None  # the sample's own garment labels (Dress Code category)


def read_parse(split: Split, sample_id: str) -> np.ndarray:
    """A sample's parse map as (H, W) CIHP label indices, whatever the data set's own labels."""
    import numpy as np

    layout = split.layout
    path = split.files(sample_id).parse
    if layout.label_map is None:
        return read_label_map(path, sample_id)
    image = open_image(path, f"sample {sample_id}: label map")
    if image.mode not in ("P", "L"):
        raise DataError(f"sample {sample_id}: {path} is not a label map: mode {image.mode}, expected a palette (P) PNG")
    try:
        return layout.to_cihp(np.asarray(image))
    except DataError as exc:
        raise DataError(f"sample {sample_id}: {path}: {exc}") from None


def read_sample(split_dir: Split | Path, sample_id: str) -> RawSample:
    """Read the photo, parse map, garment and garment mask of one sample; errors name id and file.

    The parse map comes back in CIHP labels; a garment without a mask file (Dress Code) gets its
    mask from :func:`~clothes_extractor.data.garment_alpha.garment_alpha`.
    """
    split = as_split(split_dir)
    files = split.files(sample_id)
    photo = read_rgb_image(files.photo, sample_id, "photo")
    parse = read_parse(split, sample_id)
    if parse.shape != photo.shape[:2]:
        raise DataError(
            f"sample {sample_id}: parse map is {parse.shape[1]}x{parse.shape[0]} but the photo is "
            f"{photo.shape[1]}x{photo.shape[0]}; they must match"
        )
    cloth = read_rgb_image(files.garment, sample_id, "cloth image")
    if files.garment_mask is None:
        from clothes_extractor.data.garment_alpha import garment_alpha

        cloth_mask = garment_alpha(cloth)
    else:
        cloth_mask = read_mask(files.garment_mask, sample_id, "cloth mask")
    if cloth_mask.shape != cloth.shape[:2]:
        raise DataError(
            f"sample {sample_id}: cloth mask is {cloth_mask.shape[1]}x{cloth_mask.shape[0]} but the "
            f"cloth image is {cloth.shape[1]}x{cloth.shape[0]}; they must match"
        )
    labels = split.garment_labels(sample_id, DEFAULT_GARMENT_LABELS) if split.categories else None
    return RawSample(sample_id, photo, parse, cloth, cloth_mask, labels)


def garment_mask(parse: np.ndarray, labels: tuple[int, ...] = DEFAULT_GARMENT_LABELS) -> np.ndarray:
    """(H, W) bool: pixels whose label is in the garment set."""
    import numpy as np

    return np.isin(parse, labels)


def has_garment(split_dir: Split | Path, sample_id: str, labels: tuple[int, ...]) -> bool:
    """Whether the sample's parse map holds any pixel of its garment (reads only the parse map)."""
    split = as_split(split_dir)
    return bool(garment_mask(read_parse(split, sample_id), split.garment_labels(sample_id, labels)).any())


def to_palette_image(labels: np.ndarray, palette: list[int] | None = None) -> Image.Image:
    """(H, W) uint8 label indices -> palette PNG image with the VITON palette."""
    import numpy as np

    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))
    image.putpalette(palette or VITON_PALETTE)  # turns the L image into P, indices unchanged
    return image
