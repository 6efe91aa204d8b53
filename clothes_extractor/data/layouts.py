"""The three data set layouts, and the one place that tells them apart.

Each layout is a small adapter: it maps a sample id to its four files (photo, parse map, garment,
garment mask or None) and says how its parse labels map to CIHP's, so everything above it
(preprocessing, data sets, caches, training, evaluation) is one code path on CIHP label indices.

| layout | split folder | photo | parse map | garment | garment mask |
|---|---|---|---|---|---|
| ``viton-hd`` | ``<root>/<split>/`` | ``image/<id>.jpg`` | ``image-parse-v3/<id>.png`` | ``cloth/<id>.jpg`` | ``cloth-mask/<id>.jpg`` |
| ``viton`` (2018, CP-VTON) | ``<root>/<split>/`` | ``image/<n>_0.jpg`` | ``image-parse/<n>_0.png`` | ``cloth/<n>_1.jpg`` | ``cloth-mask/<n>_1.jpg`` |
| ``dresscode`` | ``<root>/<category>/`` | ``images/<id>_0.jpg`` | ``label_maps/<id>_4.png`` | ``images/<id>_1.jpg`` | none: derived |

No torch here: the data commands use this module and must start fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clothes_extractor.errors import DataError

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample. ``garment_mask`` is None where the data set has none (Dress
    Code): the alpha is then derived from the garment image on white."""

    photo: Path
    parse: Path
    garment: Path
    garment_mask: Path | None

    def required(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.photo, self.parse, self.garment, self.garment_mask) if p is not None)


# --- Dress Code ----------------------------------------------------------------------------------

DRESSCODE_CATEGORIES = ("upper_body", "lower_body", "dresses")
DRESSCODE_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress", "belt",
    "left_shoe", "right_shoe", "head", "left_leg", "right_leg", "left_arm", "right_arm", "bag", "scarf",
)
# Dress Code label index -> CIHP label index (the labels the rest of the project speaks). Belt
# and bag have no CIHP label and become background, so they never count as the garment.
DRESSCODE_TO_CIHP: tuple[int, ...] = (0, 1, 2, 4, 5, 12, 9, 6, 0, 18, 19, 13, 16, 17, 14, 15, 0, 11)
# The garment of each category, in CIHP labels: upper clothes; skirt and pants; dress.
CATEGORY_LABELS: dict[str, tuple[int, ...]] = {"upper_body": (5,), "lower_body": (9, 12), "dresses": (6,)}
# Dress Code's own pair files, per category folder and at the root (first column: the person).
DRESSCODE_PAIR_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train_pairs.txt",),
    "test": ("test_pairs_paired.txt", "test_pairs_unpaired.txt", "test_pairs.txt"),
}


def parse_categories(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"upper_body,dresses"`` (or None: all three) -> the Dress Code categories, in canonical order."""
    if text is None:
        return DRESSCODE_CATEGORIES
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    unknown = [p for p in parts if p not in DRESSCODE_CATEGORIES]
    if unknown or not parts:
        raise DataError(f"unknown category {', '.join(unknown) or '(none)'}; use one or more of {', '.join(DRESSCODE_CATEGORIES)}")
    return tuple(c for c in DRESSCODE_CATEGORIES if c in parts)


def _first_column_ids(path: Path, suffix: str) -> list[str]:
    """Ids of a pair file's first column: ``000123_0.jpg<TAB>000123_1.jpg`` -> ``000123``."""
    ids = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            stem = Path(line.split()[0]).stem
            ids.append(stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem)
    return ids


# --- the layouts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A data set layout: where a sample's files live, relative to its split folder."""

    name: str
    photo: str  # "folder/pattern" with {id}
    parse: str
    garment: str
    garment_mask: str | None
    label_map: tuple[int, ...] | None = None  # own label index -> CIHP index; None: already CIHP
    # Every folder of a sample that `downsample` copies: folder -> its file name patterns.
    folders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Median width of the garment's box over the garment image's width (from the cloth masks):
    # the data set's catalogue margins. None: not measured.
    garment_width: float | None = None

    def files(self, split_dir: Path, sample_id: str) -> SampleFiles:
        mask = split_dir / self.garment_mask.format(id=sample_id) if self.garment_mask else None
        return SampleFiles(
            split_dir / self.photo.format(id=sample_id),
            split_dir / self.parse.format(id=sample_id),
            split_dir / self.garment.format(id=sample_id),
            mask,
        )

    @property
    def photo_folder(self) -> str:
        return self.photo.split("/")[0]

    def id_from_photo(self, name: str) -> str | None:
        prefix, suffix = self.photo.split("/", 1)[1].split("{id}")
        if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
            return name[len(prefix): len(name) - len(suffix)]
        return None

    def list_ids(self, split_dir: Path) -> list[str]:
        photo_dir = split_dir / self.photo_folder
        if not photo_dir.is_dir():
            raise DataError(f"missing folder {photo_dir} (the person photos of the data set)")
        ids = sorted(i for n in os.listdir(photo_dir) if (i := self.id_from_photo(n)))
        if not ids:
            raise DataError(f"no photos ({self.photo.split('/', 1)[1].format(id='<id>')}) in {photo_dir}")
        return ids

    def signature(self) -> tuple[str, ...]:
        """The folders whose presence identifies this layout in a split folder."""
        return tuple(dict.fromkeys(p.split("/")[0] for p in (self.photo, self.parse, self.garment)))

    def to_cihp(self, labels: np.ndarray) -> np.ndarray:
        import numpy as np  # only here: the data commands start without numpy

        if self.label_map is None:
            return labels
        if labels.size and labels.max() >= len(self.label_map):
            raise DataError(f"label {int(labels.max())} is outside the {self.name} label set (0-{len(self.label_map) - 1})")
        return np.asarray(self.label_map, dtype=np.uint8)[labels]


VITON_HD = Layout(
    "viton-hd", "image/{id}.jpg", "image-parse-v3/{id}.png", "cloth/{id}.jpg", "cloth-mask/{id}.jpg",
    folders={
        "image": ("{id}.jpg",), "image-parse-v3": ("{id}.png",), "cloth": ("{id}.jpg",), "cloth-mask": ("{id}.jpg",),
        "image-parse-agnostic-v3.2": ("{id}.png",), "agnostic-v3.2": ("{id}.jpg",), "image-densepose": ("{id}.jpg",),
        "agnostic-mask": ("{id}_mask.png",), "openpose_img": ("{id}_rendered.png",),
        "openpose_json": ("{id}_keypoints.json",),
    },
    garment_width=0.811,  # 10 real VITON-HD train samples (spread 0.017)
)
VITON = Layout(
    "viton", "image/{id}_0.jpg", "image-parse/{id}_0.png", "cloth/{id}_1.jpg", "cloth-mask/{id}_1.jpg",
    folders={"image": ("{id}_0.jpg",), "image-parse": ("{id}_0.png",), "cloth": ("{id}_1.jpg",),
             "cloth-mask": ("{id}_1.jpg",), "pose": ("{id}_0_keypoints.json",)},
    garment_width=0.938,  # the first 500 VITON train samples (spread 0.071)
)
DRESSCODE = Layout(
    "dresscode", "images/{id}_0.jpg", "label_maps/{id}_4.png", "images/{id}_1.jpg", None,
    label_map=DRESSCODE_TO_CIHP,
    folders={"images": ("{id}_0.jpg", "{id}_1.jpg"), "label_maps": ("{id}_4.png",), "keypoints": ("{id}_2.json",),
             "skeletons": ("{id}_5.jpg",), "dense": ("{id}_5.png",)},
)
LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (VITON_HD, VITON, DRESSCODE)}


def _split_folder_layout(folder: Path) -> Layout | None:
    """The VITON-style layout whose folders ``folder`` holds, if any."""
    for layout in (VITON_HD, VITON):
        if all((folder / f).is_dir() for f in layout.signature()):
            return layout
    return None


def detect_layout(root: str | os.PathLike, forced: str | None = None) -> Layout:
    """The layout of a data set root (or a split/category folder). ``forced`` (``--layout``)
    skips detection; DataError says which layouts were tried and what each lacked."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data set folder not found: {root}")
    if forced is not None:
        if forced not in LAYOUTS:
            raise DataError(f"unknown layout {forced!r}; use one of {', '.join(LAYOUTS)}")
        return LAYOUTS[forced]
    candidates = [root, *(root / s for s in SPLITS)]
    for folder in candidates:
        if layout := _split_folder_layout(folder):
            return layout
    if any((root / c / "images").is_dir() for c in DRESSCODE_CATEGORIES) or (root / "images").is_dir():
        return DRESSCODE
    base = next((f for f in candidates[1:] if f.is_dir()), root)
    tried = "; ".join(
        f"{layout.name} (missing {', '.join(str(base / f) + '/' for f in layout.signature() if not (base / f).is_dir())})"
        for layout in (VITON_HD, VITON)
    )
    raise DataError(
        f"{root} matches no known data set layout. Tried {tried}; "
        f"dresscode (missing {root}/<category>/images/ for any of {', '.join(DRESSCODE_CATEGORIES)}). "
        "Use --layout to force one"
    )


@dataclass(frozen=True)
class DataRoot:
    """A data set root with the reading options of `--layout` and `--category`.

    Path-like, so code that only needs the folder (``Path(root)``, ``root / "train_ids.txt"``)
    treats it as one; :func:`open_split` reads the options.
    """

    path: Path
    layout: str | None = None
    categories: tuple[str, ...] | None = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other) -> Path:
        return self.path / other

    def __str__(self) -> str:
        return str(self.path)


def data_root(path: str | os.PathLike, layout: str | None = None, categories: str | Sequence[str] | None = None):
    """``path`` itself, or a :class:`DataRoot` when a layout or categories are asked for."""
    if layout is None and categories is None:
        return Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return DataRoot(Path(path), layout, parse_categories(categories) if categories is not None else None)


@dataclass(frozen=True)
class Split:
    """One split of a data set: where its samples are and how to find each one's files.

    For VITON-HD and VITON, ``dir`` is the split folder. For Dress Code (no split folders: the
    pair files say which ids are train or test), ``dir`` is the root and ``categories`` the
    category folders used; each id belongs to one of them (Dress Code ids are unique).
    """

    layout: Layout
    dir: Path
    name: str = "train"
    categories: tuple[str, ...] = ()
    category_of: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __fspath__(self) -> str:
        return os.fspath(self.dir)

    def __str__(self) -> str:
        return str(self.dir) if not self.categories else f"{self.dir} ({self.name}: {','.join(self.categories)})"

    def folder(self, sample_id: str) -> Path:
        """The folder that holds this sample's files (its category folder for Dress Code)."""
        if not self.categories:
            return self.dir
        category = self.category_of.get(sample_id) or self._find_category(sample_id)
        return self.dir / category

    def _find_category(self, sample_id: str) -> str:
        for c in self.categories:
            if (self.dir / c / DRESSCODE.photo.format(id=sample_id)).is_file():
                return c
        return self.categories[0]  # its files are then reported missing in that folder

    def category(self, sample_id: str) -> str | None:
        return (self.category_of.get(sample_id) or self._find_category(sample_id)) if self.categories else None

    def garment_labels(self, sample_id: str, default: tuple[int, ...]) -> tuple[int, ...]:
        """The sample's garment labels: its category's for Dress Code, else ``default``."""
        category = self.category(sample_id)
        return CATEGORY_LABELS[category] if category else tuple(default)

    def files(self, sample_id: str) -> SampleFiles:
        return self.layout.files(self.folder(sample_id), sample_id)

    def list_ids(self) -> list[str]:
        """Every sample of the split, sorted: its photos, or for Dress Code its pair files."""
        if not self.categories:
            return self.layout.list_ids(self.dir)
        return sorted(self.category_of)


def _dresscode_ids(root: Path, split: str, categories: tuple[str, ...]) -> dict[str, str]:
    """id -> category from Dress Code's pair files (per category folder, else at the root)."""
    out: dict[str, str] = {}
    for category in categories:
        folder = root / category
        if not (folder / "images").is_dir():
            raise DataError(f"Dress Code category folder {folder}/images/ not found (categories asked for: {', '.join(categories)})")
        names = [n for n in DRESSCODE_PAIR_FILES[split] if (folder / n).is_file()]
        found = [i for n in names for i in _first_column_ids(folder / n, "_0")]
        if not names and (root / DRESSCODE_PAIR_FILES[split][0]).is_file():
            # Root-level lists mix the categories: keep the ids whose photo is in this folder.
            found = [i for n in DRESSCODE_PAIR_FILES[split] if (root / n).is_file()
                     for i in _first_column_ids(root / n, "_0") if (folder / DRESSCODE.photo.format(id=i)).is_file()]
        for sample_id in found:
            if out.setdefault(sample_id, category) != category:
                raise DataError(f"Dress Code id {sample_id} is listed in both {out[sample_id]} and {category}")
    if not out:
        wanted = " or ".join(DRESSCODE_PAIR_FILES[split])
        raise DataError(f"no {split} pair file ({wanted}) in {root} or its category folders {', '.join(categories)}")
    return out


def open_split(
    root: str | os.PathLike, split: str = "train", *, layout: str | None = None, categories: str | Sequence[str] | None = None
) -> Split:
    """A data set root (or a split folder itself) -> its :class:`Split` ``split``."""
    if isinstance(root, DataRoot):
        layout, categories = layout or root.layout, categories or root.categories
        root = root.path
    root = Path(root)
    found = detect_layout(root, layout)
    if found is DRESSCODE:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
        if (root / "images").is_dir() and root.name in DRESSCODE_CATEGORIES:  # a category folder given
            root, categories = root.parent, categories or (root.name,)
        # Default: every category folder the root has (a subset of Dress Code holds fewer).
        cats = parse_categories(categories) if categories is not None else tuple(
            c for c in DRESSCODE_CATEGORIES if (root / c / "images").is_dir()
        )
        return Split(DRESSCODE, root, split, cats, _dresscode_ids(root, split, cats))
    if categories is not None:
        raise DataError(f"--category applies to Dress Code; {root} is {found.name}")
    if (root / split).is_dir():
        return Split(found, root / split, split)
    if all((root / f).is_dir() for f in found.signature()):
        return Split(found, root, split)
    present = [s for s in SPLITS if (root / s).is_dir()]
    hint = f" (it has {', '.join(present)})" if present else ""
    raise DataError(
        f"{root} has no {split}/ folder and is not a split folder itself{hint}; "
        f"expected the {found.name} layout: {root}/{split}/{found.photo}"
    )
