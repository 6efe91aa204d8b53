"""A synthetic data set in the exact VITON-HD layout (or VITON's, or Dress Code's: ``layout``),
for tests, demos and smoke runs.

No torch here: `make-sample-data` must start fast.

Every sample is a simple "person" (noisy light background, hair, face, neck, arms, pants)
wearing a T-shirt-like garment, and the flat catalogue image of that same garment: the same
shape, colours and pattern (plain, stripes, checks or dots, drawn in the cloth's coordinates
and carried onto the person by one affine map: scale 0.55-0.75, small shift). A model can
therefore learn the photo -> cloth mapping and its metrics mean something.

Files written under ``root`` (formats as in VITON-HD; 768x1024 = width x height by default)::

    train_pairs.txt  test_pairs.txt               "<id>.jpg <id>.jpg" per line, sorted
    train/ test/
        image/<id>.jpg                            person photo, RGB JPEG
        image-parse-v3/<id>.png                   palette PNG (VITON_PALETTE), CIHP label indices:
                                                  0 background, 2 hair, 5 upper-clothes, 9 pants,
                                                  10 neck, 13 face, 14 left arm, 15 right arm
        image-parse-agnostic-v3.2/<id>.png        the parse map with the garment and arms set to 0
        cloth/<id>.jpg                            the garment centred on white, RGB JPEG
        cloth-mask/<id>.jpg                       greyscale JPEG, 255 on the garment, 0 elsewhere

The parse map labels exactly the pixels painted for each part: the photo is painted from the
label map (one colour per part, the garment's texture on the garment label), then noise is added.
Ids are ``00000_00, 00001_00, ...``; train takes the first ids, test the last ``test_fraction``.
Sample ``i`` depends only on ``(seed, i)``; with ``empty=K`` the last K train samples wear their
garment as a dress (label 6) instead, so they hold no label-5 pixel (for `split`'s skip logic).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clothes_extractor.data import layouts, viton
from clothes_extractor.errors import DataError
from clothes_extractor.fileio import atomic_write_text, save_image

DEFAULT_SIZE: tuple[int, int] = (1024, 768)  # (height, width), as VITON-HD
JPEG_QUALITY = 90
PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "dots")

# Labels painted (CIHP indices, see viton.LABELS).
BACKGROUND, HAIR, DRESS, PANTS, NECK, FACE, LEFT_ARM, RIGHT_ARM = 0, 2, 6, 9, 10, 13, 14, 15
AGNOSTIC_FOLDER = "image-parse-agnostic-v3.2"
WRITTEN_FOLDERS: tuple[str, ...] = (viton.PHOTO, viton.PARSE, AGNOSTIC_FOLDER, viton.CLOTH, viton.CLOTH_MASK)

_SKIN_TONES = np.array(
    [(255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 103), (161, 102, 74), (110, 70, 50)],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array([(20, 16, 14), (60, 40, 25), (110, 75, 40), (170, 130, 80), (90, 90, 90)], dtype=np.float64)
_PANTS_COLOURS = np.array([(40, 60, 110), (25, 25, 30), (150, 130, 95), (70, 70, 75), (90, 110, 140)], dtype=np.float64)

Point = tuple[float, float]


def sample_id(index: int) -> str:
    """``3`` -> ``"00003_00"`` (VITON-HD's id format)."""
    return f"{index:05d}_00"


@dataclass(frozen=True)
class SyntheticSample:
    """One rendered sample. Arrays are (H, W[, 3]) uint8."""

    photo: np.ndarray  # (H, W, 3) RGB
    parse: np.ndarray  # (H, W) CIHP label indices
    cloth: np.ndarray  # (H, W, 3) RGB, garment on white
    cloth_mask: np.ndarray  # (H, W) 255 on the garment, 0 elsewhere
    garment_colours: tuple[tuple[int, int, int], ...]  # the one or two colours of the garment
    pattern: str


@dataclass(frozen=True)
class SyntheticDataset:
    """What `make_sample_data` wrote."""

    root: Path
    train_ids: list[str]
    test_ids: list[str]
    empty_ids: list[str]  # train ids whose garment is labelled dress (6): no label-5 pixel


def _rng(seed: int, index: int) -> np.random.Generator:
    # Child ``index`` of ``seed``'s SeedSequence: the same whatever the number of samples.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _colour(rng: np.random.Generator, low: int = 0, high: int = 215) -> np.ndarray:
    # Capped below white so that the garment never merges with the catalogue background.
    return rng.integers(low, high + 1, size=3).astype(np.uint8)


def _jitter(rng: np.random.Generator, palette: np.ndarray, amount: float) -> tuple[int, int, int]:
    c = palette[rng.integers(len(palette))] + rng.uniform(-amount, amount, size=3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _garment_polygons(rng: np.random.Generator, h: int, w: int) -> tuple[list[list[Point]], dict]:
    """A T-shirt centred in an (h, w) canvas: body, two sleeves, fillers at the armpits.

    Returns the polygons (their union is the garment) and the geometry the person needs:
    top/bottom of the body, half widths, the two sleeve axes and the neckline.
    """
    cx, cy = w / 2, h / 2
    hw = w * rng.uniform(0.19, 0.25)  # body half width at the chest
    hw_bottom = hw * rng.uniform(0.95, 1.08)
    bh = h * rng.uniform(0.50, 0.60)
    top, bottom = cy - bh / 2, cy + bh / 2
    sw = hw * rng.uniform(1.0, 1.08)  # shoulder half width
    drop = h * rng.uniform(0.015, 0.035)
    nw = hw * rng.uniform(0.28, 0.42)  # neck opening half width
    nd = h * rng.uniform(0.02, 0.09)  # neckline depth
    v_neck = bool(rng.random() < 0.4)
    angle = math.radians(rng.uniform(28, 55))  # sleeve direction from the vertical, outwards
    sleeve_w = w * rng.uniform(0.085, 0.115)
    margin = 0.03 * w
    shoulder_x = cx - sw
    longest = (shoulder_x - margin) / math.sin(angle)  # keeps the sleeve end inside the canvas
    sleeve_len = min(h * rng.uniform(0.06, 0.34), longest)

    polygons: list[list[Point]] = []
    neck_curve: list[Point] = (
        [(cx, top + nd)]
        if v_neck
        else [(cx + nw * math.cos(t), top + nd * math.sin(t)) for t in np.linspace(0, math.pi, 9)[1:-1]]
    )
    sleeves = []
    body_left: list[Point] = []
    body_right: list[Point] = []
    for side in (-1, 1):  # -1: image left (the person's right arm), +1: image right
        s = (cx + side * sw, top + drop)
        d = (side * math.sin(angle), math.cos(angle))  # down and outwards
        n = (-side * math.cos(angle), math.sin(angle))  # perpendicular, towards the body
        a = (s[0] + sleeve_w * n[0], s[1] + sleeve_w * n[1])  # armpit end of the sleeve root
        armpit = (cx + side * hw, max(a[1], top + drop + 0.5 * sleeve_w))
        s_end = (s[0] + sleeve_len * d[0], s[1] + sleeve_len * d[1])
        a_end = (a[0] + sleeve_len * d[0], a[1] + sleeve_len * d[1])
        polygons.append([s, s_end, a_end, a])
        polygons.append([s, a, armpit])  # closes the gap between sleeve root and body side
        root = ((s[0] + a[0]) / 2, (s[1] + a[1]) / 2)
        sleeves.append({"side": side, "root": root, "dir": d, "len": sleeve_len, "width": sleeve_w})
        edge = [(cx + side * nw, top), s, armpit, (cx + side * hw_bottom, bottom)]
        if side < 0:
            body_left = edge
        else:
            body_right = edge
    body = body_left + body_right[::-1] + neck_curve  # neckL..bottomL, bottomR..neckR, curve
    polygons.insert(0, body)
    geometry = {
        "top": top, "bottom": bottom, "hw": hw, "hw_bottom": hw_bottom, "nw": nw, "nd": nd,
        "sleeves": sleeves, "centre": (cx, cy),
    }
    return polygons, geometry


def _pattern(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, str, tuple]:
    """The garment's texture over the whole (h, w) canvas, in cloth coordinates: (h, w, 3) uint8."""
    c1 = _colour(rng)
    c2 = _colour(rng)
    while int(np.abs(c1.astype(int) - c2.astype(int)).sum()) < 120:  # keep the pattern visible
        c2 = _colour(rng)
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    scale = w / 768
    period = max(4, int(rng.uniform(18, 64) * scale))
    phase = int(rng.integers(period))
    ys = np.arange(h)[:, None] + phase
    xs = np.arange(w)[None, :] + phase
    if pattern == "plain":
        return np.broadcast_to(c1, (h, w, 3)).copy(), pattern, (tuple(int(v) for v in c1),)
    if pattern == "stripes":
        line = (ys if rng.random() < 0.6 else xs) % period < period * rng.uniform(0.3, 0.6)
        on = np.broadcast_to(line, (h, w))
    elif pattern == "checks":
        on = (ys // period + xs // period) % 2 == 1
    else:  # dots
        r = period * rng.uniform(0.2, 0.35)
        on = ((ys % period) - period / 2) ** 2 + ((xs % period) - period / 2) ** 2 < r * r
    texture = np.where(on[..., None], c2, c1).astype(np.uint8)
    return texture, pattern, (tuple(int(v) for v in c1), tuple(int(v) for v in c2))


def render_sample(seed: int, index: int, *, size: tuple[int, int] = DEFAULT_SIZE, garment_label: int = 5) -> SyntheticSample:
    """Render sample ``index`` of the data set of ``seed``; deterministic in (seed, index, size).

    ``size`` is (height, width). ``garment_label`` is the parse label of the worn garment
    (5 upper-clothes; 6 dress makes a sample without any label-5 pixel).
    """
    h, w = size
    rng = _rng(seed, index)  # every draw below happens in this order: same seed, same sample
    polygons, g = _garment_polygons(rng, h, w)
    texture, pattern, colours = _pattern(rng, h, w)
    cloth, cloth_mask = _catalogue_image(polygons, texture, h, w)
    place = _placement(rng, g, h, w)
    skin = _jitter(rng, _SKIN_TONES, 8)
    hair = _jitter(rng, _HAIR_COLOURS, 10)
    pants = _jitter(rng, _PANTS_COLOURS, 15)
    background = rng.uniform(200, 250) + rng.uniform(-12, 12, size=3)

    labels_img = Image.new("L", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(labels_img)
    _draw_head_and_neck(draw, rng, g, place, h, w)
    _draw_pants(draw, rng, g, place, h)
    _draw_arms(draw, rng, g, place, h)
    # The garment last: it occludes arms, neck and pants, as on a real person.
    for poly in polygons:
        draw.polygon([place.to_person(p) for p in poly], fill=garment_label)
    parse = np.asarray(labels_img)

    # Paint the photo from the label map, so the labels are exactly the painted pixels.
    lut = np.zeros((256, 3), np.uint8)
    lut[BACKGROUND] = np.clip(background, 0, 255)
    lut[HAIR], lut[NECK], lut[FACE], lut[LEFT_ARM], lut[RIGHT_ARM], lut[PANTS] = hair, skin, skin, skin, skin, pants
    photo = lut[parse]
    on_garment = parse == garment_label
    photo[on_garment] = place.warp(texture)[on_garment]
    # Light sensor noise, stronger on the background (a "light, noisy" backdrop).
    noise = rng.integers(-3, 4, size=(h, w, 3), dtype=np.int16)
    noise[parse == BACKGROUND] *= 2
    photo = np.clip(photo.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return SyntheticSample(photo, parse, cloth, cloth_mask, colours, pattern)


def _catalogue_image(polygons: list[list[Point]], texture: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The flat catalogue image (the garment on white) and its mask."""
    mask_img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask_img)
    for poly in polygons:
        draw.polygon(poly, fill=255)
    cloth_mask = np.asarray(mask_img)
    cloth = np.where(cloth_mask[..., None] > 0, texture, np.uint8(255)).astype(np.uint8)
    return cloth, cloth_mask


@dataclass(frozen=True)
class _Placement:
    """Where the garment sits on the person: scaled by ``s`` about the cloth centre (cx, cy),
    then moved to (px, py); ``top`` and ``bottom`` are its neckline and hem on the person."""

    s: float
    cx: float
    cy: float
    px: float
    py: float
    top: float
    bottom: float
    size: tuple[int, int]  # (height, width)

    def to_person(self, p: Point) -> Point:
        return (self.s * (p[0] - self.cx) + self.px, self.s * (p[1] - self.cy) + self.py)

    def warp(self, texture: np.ndarray) -> np.ndarray:
        """The garment's texture carried by the same affine map (output -> input for PIL)."""
        h, w = self.size
        s, cx, cy, px, py = self.s, self.cx, self.cy, self.px, self.py
        warped = Image.fromarray(texture).transform(
            (w, h), Image.Transform.AFFINE, (1 / s, 0, cx - px / s, 0, 1 / s, cy - py / s), Image.Resampling.BILINEAR
        )
        return np.asarray(warped)


def _placement(rng: np.random.Generator, g: dict, h: int, w: int) -> _Placement:
    s = rng.uniform(0.55, 0.75)
    bh = g["bottom"] - g["top"]
    top = h * rng.uniform(0.30, 0.36)
    px = w / 2 + w * rng.uniform(-0.04, 0.04)
    py = top + s * bh / 2
    cx, cy = g["centre"]
    return _Placement(s, cx, cy, px, py, top, py + s * bh / 2, (h, w))


def _draw_head_and_neck(draw: ImageDraw.ImageDraw, rng: np.random.Generator, g: dict, place: _Placement, h: int, w: int) -> None:
    """Hair behind the face (optionally long, down to the shoulders), the face, the neck and the
    skin under the neckline (wide enough to fill the opening)."""
    s, px, top = place.s, place.px, place.top
    rx = w * rng.uniform(0.085, 0.105) * s / 0.65
    ry = rx * rng.uniform(1.25, 1.4)
    neck_len = h * rng.uniform(0.025, 0.045) * s / 0.65
    face_cy = top - neck_len - 0.8 * ry
    if rng.random() < 0.5:
        draw.rectangle([px - rx * 1.15, face_cy - 0.2 * ry, px + rx * 1.15, top + h * 0.05], fill=HAIR)
    draw.ellipse([px - 1.12 * rx, face_cy - 1.25 * ry, px + 1.12 * rx, face_cy + 0.8 * ry], fill=HAIR)
    nw, nd = g["nw"] * s, g["nd"] * s
    neck_w = rx * 0.55
    draw.polygon(
        [(px - neck_w, face_cy), (px + neck_w, face_cy), (px + neck_w, top), (px + nw * 1.05, top),
         (px + nw * 1.05, top + nd + 4), (px - nw * 1.05, top + nd + 4), (px - nw * 1.05, top), (px - neck_w, top)],
        fill=NECK,
    )
    draw.ellipse([px - rx, face_cy - ry, px + rx, face_cy + ry], fill=FACE)


def _draw_pants(draw: ImageDraw.ImageDraw, rng: np.random.Generator, g: dict, place: _Placement, h: int) -> None:
    """Pants from under the hem to the bottom edge, two legs."""
    px, bottom = place.px, place.bottom
    hp = g["hw_bottom"] * place.s * rng.uniform(0.92, 1.0)
    crotch = bottom + h * rng.uniform(0.10, 0.16)
    gap = hp * 0.08
    draw.polygon(
        [(px - hp, bottom - 0.03 * h), (px + hp, bottom - 0.03 * h), (px + hp * 1.05, h), (px + gap, h),
         (px, crotch), (px - gap, h), (px - hp * 1.05, h)],
        fill=PANTS,
    )


def _draw_arms(draw: ImageDraw.ImageDraw, rng: np.random.Generator, g: dict, place: _Placement, h: int) -> None:
    """Arms along the sleeve axes, from inside the sleeve (hidden by it) out to the hand."""
    s = place.s
    arm_len = h * rng.uniform(0.30, 0.38) * s / 0.65
    for sleeve in g["sleeves"]:
        label = RIGHT_ARM if sleeve["side"] < 0 else LEFT_ARM  # the person's right is the image left
        dx, dy = sleeve["dir"]
        r0 = place.to_person(sleeve["root"])
        length = max(arm_len, s * sleeve["len"] + h * 0.06)
        half = 0.4 * s * sleeve["width"]
        nx, ny = -dy, dx
        end = (r0[0] + length * dx, r0[1] + length * dy)
        draw.polygon(
            [(r0[0] + half * nx, r0[1] + half * ny), (end[0] + half * nx, end[1] + half * ny),
             (end[0] - half * nx, end[1] - half * ny), (r0[0] - half * nx, r0[1] - half * ny)],
            fill=label,
        )


def _check_target(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} exists and is not a folder; give a new or empty folder for the data set")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise DataError(
                f"{root} is not empty; give a new or empty folder, or pass --overwrite to write the "
                "synthetic data set into it (replaces its train/ and test/ sample folders and pair files)"
            )
        # Drop the folders we write so no sample of an earlier, larger build stays behind.
        for split in viton.SPLITS:
            for folder in WRITTEN_FOLDERS:
                shutil.rmtree(root / split / folder, ignore_errors=True)


def write_sample(split_dir: Path, sid: str, sample: SyntheticSample) -> None:
    """Write one sample's five files in the VITON-HD formats, each atomically."""
    parse = viton.to_palette_image(sample.parse)
    agnostic = sample.parse.copy()
    agnostic[np.isin(agnostic, (viton.UPPER_CLOTHES, DRESS, LEFT_ARM, RIGHT_ARM))] = BACKGROUND
    save_image(Image.fromarray(sample.photo), viton.sample_path(split_dir, viton.PHOTO, sid), quality=JPEG_QUALITY)
    save_image(parse, viton.sample_path(split_dir, viton.PARSE, sid))
    save_image(viton.to_palette_image(agnostic), viton.sample_path(split_dir, AGNOSTIC_FOLDER, sid))
    save_image(Image.fromarray(sample.cloth), viton.sample_path(split_dir, viton.CLOTH, sid), quality=JPEG_QUALITY)
    save_image(
        Image.fromarray(sample.cloth_mask, mode="L"),
        viton.sample_path(split_dir, viton.CLOTH_MASK, sid),
        quality=JPEG_QUALITY,
    )


# CIHP label -> Dress Code label, for the parts the synthetic person has (neck and face -> head).
_CIHP_TO_DRESSCODE = {BACKGROUND: 0, HAIR: 2, viton.UPPER_CLOTHES: 4, DRESS: 7, PANTS: 6, NECK: 11, FACE: 11,
                      LEFT_ARM: 14, RIGHT_ARM: 15}


def write_viton_sample(split_dir: Path, sid: str, sample: SyntheticSample) -> None:
    """One sample in VITON (2018)'s layout: ``<n>_0`` the person, ``<n>_1`` the garment."""
    files = layouts.VITON.files(split_dir, sid)
    save_image(Image.fromarray(sample.photo), files.photo, quality=JPEG_QUALITY)
    save_image(viton.to_palette_image(sample.parse), files.parse)
    save_image(Image.fromarray(sample.cloth), files.garment, quality=JPEG_QUALITY)
    save_image(Image.fromarray(sample.cloth_mask, mode="L"), files.garment_mask, quality=JPEG_QUALITY)


def write_dresscode_sample(category_dir: Path, sid: str, sample: SyntheticSample) -> None:
    """One sample in Dress Code's layout (its own labels; no garment mask)."""
    files = layouts.DRESSCODE.files(category_dir, sid)
    lut = np.zeros(256, np.uint8)
    for cihp, dc in _CIHP_TO_DRESSCODE.items():
        lut[cihp] = dc
    save_image(Image.fromarray(sample.photo), files.photo, quality=JPEG_QUALITY)
    save_image(viton.to_palette_image(lut[sample.parse]), files.parse)
    save_image(Image.fromarray(sample.cloth), files.garment, quality=JPEG_QUALITY)


def _write_other_layout(root: Path, layout: str, jobs, ids, empty_ids, seed, size, n_train) -> None:
    """VITON (2018) or Dress Code: the same synthetic people, in that data set's files. In Dress
    Code the samples wearing a dress go to ``dresses/``, the others to ``upper_body/``."""
    pairs: dict[Path, list[str]] = {}
    for split, i in jobs:
        dress = ids[i] in empty_ids
        sample = render_sample(seed, i, size=size, garment_label=DRESS if dress else viton.UPPER_CLOTHES)
        if layout == "viton":
            write_viton_sample(root / split, ids[i], sample)
            pairs.setdefault(root / f"{split}_pairs.txt", []).append(f"{ids[i]}_0.jpg {ids[i]}_1.jpg")
        else:
            category = root / ("dresses" if dress else "upper_body")
            write_dresscode_sample(category, ids[i], sample)
            name = "train_pairs.txt" if split == "train" else "test_pairs_paired.txt"
            pairs.setdefault(category / name, []).append(f"{ids[i]}_0.jpg\t{ids[i]}_1.jpg")
    for path, lines in pairs.items():
        atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def make_sample_data(
    root: Path,
    *,
    layout: str = "viton-hd",
    samples: int = 24,
    seed: int = 0,
    test_fraction: float = 0.25,
    empty: int = 0,
    overwrite: bool = False,
    size: tuple[int, int] = DEFAULT_SIZE,
    progress: bool = False,
) -> SyntheticDataset:
    """Write a synthetic VITON-HD-layout data set of ``samples`` samples under ``root``.

    The last ``round(samples * test_fraction)`` ids go to ``test/``, the others to ``train/``;
    the last ``empty`` train samples have no label-5 pixel. ``size`` is (height, width).
    Same arguments -> byte-identical files. Refuses a non-empty ``root`` unless ``overwrite``.
    """
    root = Path(root)
    if samples < 1:
        raise DataError(f"--samples must be at least 1, got {samples}")
    if not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    h, w = size
    if h < 64 or w < 48:
        raise DataError(f"size {w}x{h} (width x height) is too small; use at least 48x64")
    n_test = min(samples - 1, round(samples * test_fraction))
    n_train = samples - n_test
    if not 0 <= empty <= n_train:
        raise DataError(
            f"--without-garment {empty} is out of range: there are {n_train} train samples; "
            f"give 0 to {n_train}"
        )
    _check_target(root, overwrite)

    if layout not in layouts.LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; use one of {', '.join(layouts.LAYOUTS)}")
    ids = [sample_id(i) if layout == "viton-hd" else f"{i:06d}" for i in range(samples)]
    train_ids, test_ids = ids[:n_train], ids[n_train:]
    empty_ids = train_ids[n_train - empty:] if empty else []
    jobs = [("train", i) for i in range(n_train)] + [("test", i) for i in range(n_train, samples)]

    steps: Iterable[tuple[str, int]] = jobs
    if progress:
        from rich.console import Console
        from rich.progress import track

        steps = track(jobs, description="making samples", console=Console(stderr=True), transient=True)
    if layout != "viton-hd":
        _write_other_layout(root, layout, steps, ids, empty_ids, seed, size, n_train)
        return SyntheticDataset(root, train_ids, test_ids, empty_ids)
    for split, i in steps:
        label = DRESS if ids[i] in empty_ids else viton.UPPER_CLOTHES
        write_sample(root / split, ids[i], render_sample(seed, i, size=size, garment_label=label))
    for split, split_ids in (("train", train_ids), ("test", test_ids)):
        for folder in WRITTEN_FOLDERS:  # even with no sample in a split, the layout stays whole
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / f"{split}_pairs.txt", "".join(f"{i}.jpg {i}.jpg\n" for i in split_ids))
    return SyntheticDataset(root, train_ids, test_ids, empty_ids)
