"""Inference: a person photo + a mask of the garment -> the flat catalogue image of the garment.

The photo goes through :func:`clothes_extractor.data.transforms.preprocess_input`, the very
function that builds the training input, with the checkpoint's own preprocessing settings (size,
garment labels, background): no drift between training and inference. The generator's output
covers the padded model frame; :func:`clothes_extractor.data.transforms.to_frame` (the inverse
of the target's padding) brings it back to the catalogue frame, 768x1024 (W x H) by default:
VITON-HD's ``cloth/`` frame, which is what the model learned to draw.

Masks come in several kinds (:func:`detect_mask_kind`, in this order):

1. ``labels``: a palette (P) or greyscale (L) image whose values are all label indices (< 20)
   and not all 0/1, e.g. VITON-HD's ``image-parse-v3/<id>.png``. The garment is the set of
   labels the checkpoint was trained on (``preprocess.garment_labels``, upper-clothes = 5).
2. ``colours``: an RGB(A) image (or a palette image of other values) in which at least 99% of
   the pixels are exactly one of the 20 parse colours (VITON-HD's palette, or the standard
   CIHP/LIP one which differs by one step in a few channels) and at least one of them is not the
   background: a colour-coded parse image. Colours map to label indices exactly, then labels.
3. ``binary``: anything else. An image with a non-trivial alpha channel (RGBA, LA, PA, not all
   255): alpha >= 128. Otherwise the grey level: >= 128 (L, 1, RGB masks; JPEG ringing is
   absorbed), or == 1 for a 0/1 mask (all values 0 or 1, as numpy writes them).

``--mask-kind`` forces a kind instead of detecting it.

Without a mask, a garment segmenter (`train-segmenter`, :mod:`clothes_extractor.segment`)
predicts the photo's parse map and the garment mask is its pixels of the generator's garment
labels (:func:`predicted_mask`); a mask given still wins. When the prediction holds no garment
pixel, that is a DataError and nothing is written.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from clothes_extractor.checkpoint import load_generator
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor, to_uint8
from clothes_extractor.data.layouts import CATEGORY_LABELS
from clothes_extractor.data.transforms import preprocess_input, to_frame
from clothes_extractor.data.viton import LABELS, MASK_THRESHOLD, VITON_PALETTE, garment_mask
from clothes_extractor.errors import CheckpointError, ClothesExtractorError, ConfigError, DataError
from clothes_extractor.fileio import atomic_path, open_image
from clothes_extractor.progress import progress_bar

CATALOGUE_FRAME: tuple[int, int] = (1024, 768)  # (H, W) of VITON-HD's cloth/ images
MASK_KINDS: tuple[str, ...] = ("auto", "labels", "binary", "colours")
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
OUTPUT_FORMATS: dict[str, str] = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}
JPEG_QUALITY = 95
WHITE = (255, 255, 255)
COLOUR_CODED_SHARE = 0.99  # share of pixels that must be parse colours for "colours"

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
    labels = colours_to_labels(_as_rgb(image))
    known = labels != _NO_LABEL
    return known.mean() >= COLOUR_CODED_SHARE and bool((known & (labels != 0)).any())


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
        return garment_mask(colours_to_labels(_as_rgb(image)), labels), f"a colour-coded parse image, labels {names}"
    mask, how = _binary_mask(image)
    return mask, f"a binary mask, {how}"


def read_garment_mask(
    path: str | os.PathLike, labels: Sequence[int], kind: str = "auto"
) -> np.ndarray:
    """Read a garment mask of any supported kind (see the module docstring) as (H, W) bool."""
    return decode_garment_mask(_open_oriented(path, "mask"), labels, kind, name=str(path))[0]


def _open_oriented(path: str | os.PathLike, what: str) -> Image.Image:
    """open_image, then the EXIF orientation applied (phone photos), so pixels are as displayed."""
    image = open_image(path, what)
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError):  # a broken EXIF block: use the pixels as stored
        return image


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """A person photo as (H, W, 3) uint8, EXIF orientation applied."""
    return np.asarray(_open_oriented(path, "photo").convert("RGB"))


def read_pair(
    photo_path: str | os.PathLike, mask_path: str | os.PathLike, labels: Sequence[int], kind: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """(photo (H, W, 3) uint8, garment mask (H, W) bool), checked: same size, mask not empty."""
    photo = read_photo(photo_path)
    mask_image = _open_oriented(mask_path, "mask")
    mask, how = decode_garment_mask(mask_image, labels, kind, name=str(mask_path))
    if mask.shape != photo.shape[:2]:
        raise DataError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but photo {photo_path} is "
            f"{photo.shape[1]}x{photo.shape[0]}; the mask must be drawn on the same photo, at the same size"
        )
    if not mask.any():
        hint = ""
        if "label" in how:
            source = np.asarray(mask_image) if "label map" in how else colours_to_labels(_as_rgb(mask_image))
            present = [int(v) for v in np.unique(source) if v < _N_LABELS]
            hint = f"; labels present: {', '.join(f'{v} ({LABELS[v]})' for v in present) or 'none'}"
        raise DataError(
            f"mask {mask_path}: the garment mask is empty (read as {how}{hint}); "
            f"force another reading with --mask-kind ({', '.join(MASK_KINDS[1:])})"
        )
    return photo, mask


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractResult:
    """One extracted garment in its catalogue frame.

    ``rgb`` (Hf, Wf, 3) uint8 on ``background`` (the training background), ``alpha`` (Hf, Wf)
    uint8: the predicted garment alpha (sigmoid of the alpha logit) times 255.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    background: tuple[int, int, int] = WHITE

    def on_background(self, colour: tuple[int, int, int]) -> np.ndarray:
        """(Hf, Wf, 3) uint8 recomposited on ``colour`` with the predicted alpha:
        ``rgb + (1 - alpha) * (colour - background)``, i.e. ``alpha * fg + (1 - alpha) * colour``."""
        colour = tuple(int(c) for c in colour)
        if colour == tuple(self.background):
            return self.rgb
        a = self.alpha.astype(np.float32)[..., None] / 255
        shift = np.asarray(colour, np.float32) - np.asarray(self.background, np.float32)
        return np.clip(self.rgb + (1 - a) * shift, 0, 255).round().astype(np.uint8)

    def rgba(self) -> np.ndarray:
        """(Hf, Wf, 4) uint8 cut-out: the foreground colours (the training background taken out
        of the partly transparent edges) and the predicted alpha."""
        a = self.alpha.astype(np.float32)[..., None] / 255
        bg = np.asarray(self.background, np.float32)
        fg = (self.rgb.astype(np.float32) - (1 - a) * bg) / np.maximum(a, 1 / 255)
        fg = np.where(a > 0, np.clip(fg, 0, 255), self.rgb).round().astype(np.uint8)
        return np.dstack([fg, self.alpha])

    def mask(self, threshold: int = MASK_THRESHOLD) -> np.ndarray:
        """(Hf, Wf) uint8 0/255: the alpha thresholded (a VITON-HD ``cloth-mask``)."""
        return np.where(self.alpha >= threshold, 255, 0).astype(np.uint8)


class Extractor:
    """A generator loaded from a checkpoint, with the preprocessing it was trained with.

    Example:
        >>> ex = load_extractor("runs/train-unet")                      # doctest: +SKIP
        >>> res = ex.extract(photo, mask)                              # doctest: +SKIP
        >>> res.rgb.shape, res.alpha.shape                             # doctest: +SKIP
        ((1024, 768, 3), (1024, 768))
    """

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], device: torch.device) -> None:
        self.model = model.eval()
        self.meta = meta
        self.device = torch.device(device)
        try:
            self.preprocess = PreprocessConfig.from_dict(meta["preprocess"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{meta.get('path', 'checkpoint')} has no readable preprocessing settings ({exc})") from None

    @property
    def labels(self) -> tuple[int, ...]:
        return self.preprocess.garment_labels

    def for_category(self, category: str | None) -> Extractor:
        """This extractor for one Dress Code category's garment (``--category``); ConfigError
        when the checkpoint knows several and none is named, or does not know the one named."""
        known = self.preprocess.categories
        if category is None:
            if len(known) > 1:
                raise ConfigError(f"this model knows several garment categories ({', '.join(known)}); pick one with --category")
            return self
        if not known:
            raise ConfigError(
                f"--category applies to models trained on Dress Code categories; this one extracts garment labels "
                f"{list(self.labels)} whatever the category"
            )
        if category not in known:
            raise ConfigError(f"this model was trained on {', '.join(known)}, not {category}")
        chosen = copy.copy(self)
        chosen.preprocess = replace(self.preprocess, garment_labels=CATEGORY_LABELS[category])
        return chosen

    def prepare(self, photo: np.ndarray, mask: np.ndarray, *, name: str = "photo") -> np.ndarray:
        """(H, W, 3) uint8 photo + (H, W) bool mask -> (h, w, 3) uint8 model input, exactly as
        in training (:func:`~clothes_extractor.data.transforms.preprocess_input`)."""
        return preprocess_input(photo, mask, self.preprocess, name=name)

    @torch.inference_mode()
    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, h, w, 3) uint8 model inputs -> ((B, h, w, 3) uint8 rgb, (B, h, w) uint8 alpha),
        in the padded model frame."""
        x = torch.stack([to_tensor(i) for i in inputs]).to(self.device)
        rgb, alpha_logit = self.model(x)
        alpha = torch.sigmoid(alpha_logit.float())
        return (
            np.stack([to_uint8(r) for r in rgb]),
            np.stack([to_uint8(a) for a in alpha]),
        )

    def finish(self, rgb: np.ndarray, alpha: np.ndarray, frame: tuple[int, int] | None = None) -> ExtractResult:
        """Model-frame (h, w, 3) rgb and (h, w) alpha -> :class:`ExtractResult` in ``frame`` (H, W)."""
        frame = tuple(frame or CATALOGUE_FRAME)
        bg = self.preprocess.background
        return ExtractResult(
            rgb=np.asarray(to_frame(Image.fromarray(rgb), frame, bg)),
            alpha=np.asarray(to_frame(Image.fromarray(alpha), frame, 0)),
            background=tuple(bg),
        )

    def extract(self, photo: np.ndarray, mask: np.ndarray, *, frame: tuple[int, int] | None = None) -> ExtractResult:
        """(H, W, 3) uint8 photo + (H, W) bool garment mask -> the garment in ``frame``
        ((H, W); default :data:`CATALOGUE_FRAME`, 1024x768)."""
        rgb, alpha = self.predict(self.prepare(photo, mask)[None])
        return self.finish(rgb[0], alpha[0], frame)

    def extract_many(
        self, inputs: Sequence[np.ndarray], *, frame: tuple[int, int] | None = None, batch_size: int = 8
    ) -> Iterator[ExtractResult]:
        """Prepared model inputs (from :meth:`prepare`) -> results, ``batch_size`` at a time."""
        for start in range(0, len(inputs), batch_size):
            rgb, alpha = self.predict(np.stack(inputs[start: start + batch_size]))
            for r, a in zip(rgb, alpha):
                yield self.finish(r, a, frame)


def load_extractor(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> Extractor:
    """A checkpoint file or run folder -> :class:`Extractor` (CheckpointError if it is not one of ours).

    An exported ``.onnx`` (`clothes-extractor export`) gives an Extractor whose model is run by
    onnxruntime (:class:`~clothes_extractor.onnx_model.OnnxModel`): same preprocessing, same
    compositing, same results within 1/255."""
    try:
        model, meta = load_generator(checkpoint, device)
    except CheckpointError as exc:
        if "'segmenter' model" in str(exc):  # the two checkpoints given the wrong way round
            raise CheckpointError(f"{exc}; give it as --segmenter, and a generator as --checkpoint") from None
        raise
    return Extractor(model, meta, device)


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractConfig:
    """How `extract` reads masks and writes results (shared by one-photo and folder mode).

    ``frame``: (H, W) of the output, None for :data:`CATALOGUE_FRAME`. ``transparent``: RGBA
    PNG with the predicted alpha. ``background``: recomposite on this colour (None: the
    training background). ``viton_layout``: folder mode writes ``cloth/<id>.jpg`` (on white)
    and ``cloth-mask/<id>.jpg``. ``format``: ``jpg`` or ``png`` in folder mode (None: png when
    transparent, else jpg).
    """

    frame: tuple[int, int] | None = None
    mask_kind: str = "auto"
    transparent: bool = False
    background: tuple[int, int, int] | None = None
    viton_layout: bool = False
    format: str | None = None
    batch_size: int = 8
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.mask_kind not in MASK_KINDS:
            raise ConfigError(f"--mask-kind {self.mask_kind!r} is not one of {', '.join(MASK_KINDS)}")
        if self.transparent and self.background is not None:
            raise ConfigError("--transparent and --background exclude each other: a cut-out has no background")
        if self.viton_layout and (self.transparent or self.background not in (None, WHITE)):
            raise ConfigError("--viton-layout writes VITON-HD's cloth/ on white; drop --transparent / --background")
        if self.format is not None and self.format not in ("jpg", "png"):
            raise ConfigError(f"--format {self.format!r} is not jpg or png")
        if self.transparent and self.format == "jpg":
            raise ConfigError("--transparent needs PNG (JPEG has no alpha); use --format png")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.frame is not None and (self.frame[0] < 1 or self.frame[1] < 1):
            raise ConfigError(f"output size {self.frame} must be positive")

    @property
    def suffix(self) -> str:
        return "." + (self.format or ("png" if self.transparent else "jpg"))


def check_output_path(path: str | os.PathLike, cfg: ExtractConfig) -> Path:
    """Validate ``-o``: a .png/.jpg/.jpeg file, PNG when transparent, not existing unless overwrite."""
    path = Path(path)
    kind = OUTPUT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"output {path}: unknown extension {path.suffix or '(none)'!r}; use .png or .jpg")
    if cfg.transparent and kind != "png":
        raise ConfigError(f"output {path}: --transparent writes RGBA, which needs a .png file (JPEG has no alpha)")
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; -o takes a file name (or use --images/--masks for folders)")
    if path.exists() and not cfg.overwrite:
        raise ConfigError(f"output {path} exists; pass --overwrite to replace it")
    return path


def render(result: ExtractResult, cfg: ExtractConfig) -> Image.Image:
    """The image `extract` writes for ``result``: RGBA cut-out, or RGB on the chosen background."""
    if cfg.transparent:
        return Image.fromarray(result.rgba(), "RGBA")
    return Image.fromarray(result.on_background(cfg.background or result.background), "RGB")


def _save_params(path: Path) -> dict[str, Any]:
    return {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}


def save_all(items: Sequence[tuple[Image.Image, Path]]) -> None:
    """Write every (image, path) to a temporary file first, then move them all into place:
    an error while encoding leaves none of them written."""
    with contextlib.ExitStack() as stack:
        for image, path in items:
            tmp = stack.enter_context(atomic_path(path))
            fmt = Image.registered_extensions().get(path.suffix.lower())
            image.save(tmp, format=fmt, **_save_params(path))


def outputs_for(out_dir: Path, sample_id: str, cfg: ExtractConfig) -> list[Path]:
    if cfg.viton_layout:
        return [out_dir / "cloth" / f"{sample_id}.jpg", out_dir / "cloth-mask" / f"{sample_id}.jpg"]
    return [out_dir / f"{sample_id}{cfg.suffix}"]


def write_result(result: ExtractResult, paths: Sequence[Path], cfg: ExtractConfig) -> None:
    if cfg.viton_layout:
        cloth, cloth_mask = paths
        save_all([
            (Image.fromarray(result.on_background(WHITE), "RGB"), cloth),
            (Image.fromarray(result.mask(), "L"), cloth_mask),
        ])
    else:
        save_all([(render(result, cfg), paths[0])])


def predicted_mask(extractor: Extractor, segmenter, photo: np.ndarray, *, name: str = "photo") -> np.ndarray:
    """The garment mask a segmenter (:class:`clothes_extractor.segment.Segmenter`) predicts on
    ``photo``, for the generator's garment labels; DataError if it found no garment."""
    from clothes_extractor.segment import require_garment

    return require_garment(segmenter, segmenter.predict(photo), extractor.labels, name=name)


def extract_file(
    extractor: Extractor,
    photo: str | os.PathLike,
    mask: str | os.PathLike | None,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    *,
    segmenter=None,
) -> ExtractResult:
    """One photo + mask -> ``out`` (atomic). Validates ``out`` before any work.

    ``mask`` None: the garment mask is predicted by ``segmenter`` (a
    :class:`clothes_extractor.segment.Segmenter`); a mask given wins over the segmenter. A
    predicted mask without any garment pixel is a DataError and nothing is written.
    """
    out = check_output_path(out, cfg)
    if mask is not None:
        photo_arr, mask_arr = read_pair(photo, mask, extractor.labels, cfg.mask_kind)
    elif segmenter is not None:
        photo_arr = read_photo(photo)
        mask_arr = predicted_mask(extractor, segmenter, photo_arr, name=str(photo))
    else:
        raise ConfigError(f"no mask for photo {photo}: give a mask, or a segmenter checkpoint (--segmenter) to predict one")
    result = extractor.extract(photo_arr, mask_arr, frame=cfg.frame)
    save_all([(render(result, cfg), out)])
    return result


# --- folder mode ---------------------------------------------------------------------------------


@dataclass
class FolderReport:
    """What :func:`extract_folder` did, by id."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    skipped: list[str] = field(default_factory=list)  # outputs already there
    masks_without_photo: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _images_by_stem(folder: Path, what: str) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}")
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            found.setdefault(p.stem, []).append(p)
    return found


def _prefer(paths: list[Path]) -> Path:
    """Several files with one stem: PNG first (lossless), then by name."""
    return sorted(paths, key=lambda p: (p.suffix.lower() != ".png", p.name))[0]


def pair_folders(images: str | os.PathLike, masks: str | os.PathLike) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    """Pair photos and masks by file stem (any image extension; a mask may also be named
    ``<id>_mask.<ext>``, which is the only choice when photos and masks share one folder).
    Returns ([(id, photo, mask or None)], ids of masks without a photo)."""
    photos = _images_by_stem(Path(images), "photo")
    masks_found = _images_by_stem(Path(masks), "mask")
    same_folder = Path(images).resolve() == Path(masks).resolve()
    if same_folder:
        photos = {s: p for s, p in photos.items() if not s.endswith("_mask")}
    if not photos:
        raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
    pairs, used = [], set()
    for sample_id in sorted(photos):
        for stem in ((f"{sample_id}_mask",) if same_folder else (sample_id, f"{sample_id}_mask")):
            if stem in masks_found:
                pairs.append((sample_id, _prefer(photos[sample_id]), _prefer(masks_found[stem])))
                used.add(stem)
                break
        else:
            pairs.append((sample_id, _prefer(photos[sample_id]), None))
    orphans = sorted(s for s in masks_found if s not in used and s not in photos)
    return pairs, orphans


def extract_folder(
    extractor: Extractor,
    images: str | os.PathLike,
    masks: str | os.PathLike | None,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    *,
    progress: bool = False,
    segmenter=None,
) -> FolderReport:
    """Every photo of ``images`` with its mask in ``masks`` -> ``out``; ``cfg.batch_size`` at a
    time through the model. A bad pair is recorded in the report with its reason and the others
    go on; existing outputs are skipped unless ``cfg.overwrite``.

    With a ``segmenter`` (:class:`clothes_extractor.segment.Segmenter`), a photo without a mask
    (or every photo, when ``masks`` is None) gets the garment mask the segmenter predicts; a
    mask found in ``masks`` still wins."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; in folder mode -o takes a folder")
    if masks is None and segmenter is None:
        raise ConfigError("folder mode needs --masks DIR, or a segmenter (--segmenter) to predict the masks")
    if masks is None:
        photos = _images_by_stem(Path(images), "photo")
        if not photos:
            raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
        pairs, orphans = [(i, _prefer(photos[i]), None) for i in sorted(photos)], []
    else:
        pairs, orphans = pair_folders(images, masks)
    report = FolderReport(masks_without_photo=orphans)

    def failed(sample_id: str, reason: str) -> None:
        report.failed.append((sample_id, reason))

    advance, stop = progress_bar("extract", len(pairs)) if progress else ((lambda n=1: None), (lambda: None))
    try:
        batch: list[tuple[str, np.ndarray, list[Path]]] = []

        def flush() -> None:
            if not batch:
                return
            results = extractor.extract_many([x for _, x, _ in batch], frame=cfg.frame, batch_size=len(batch))
            for (sample_id, _, paths), result in zip(batch, results):
                try:
                    write_result(result, paths, cfg)
                    report.done.append(sample_id)
                except (OSError, ValueError, ClothesExtractorError) as exc:
                    failed(sample_id, f"cannot write {paths[0].parent}: {exc}")
            advance(len(batch))
            batch.clear()

        for sample_id, photo_path, mask_path in pairs:
            paths = outputs_for(out, sample_id, cfg)
            if not cfg.overwrite and all(p.exists() for p in paths):
                report.skipped.append(sample_id)
                advance(1)
                continue
            if mask_path is None and segmenter is None:
                failed(sample_id, f"no mask for {photo_path.name} in {masks} (looked for {sample_id}.* and {sample_id}_mask.*)")
                advance(1)
                continue
            try:
                if mask_path is None:
                    photo = read_photo(photo_path)
                    mask = predicted_mask(extractor, segmenter, photo, name=str(photo_path))
                else:
                    photo, mask = read_pair(photo_path, mask_path, extractor.labels, cfg.mask_kind)
                batch.append((sample_id, extractor.prepare(photo, mask, name=str(photo_path)), paths))
            except ClothesExtractorError as exc:
                failed(sample_id, str(exc))
                advance(1)
                continue
            if len(batch) >= cfg.batch_size:
                flush()
        flush()
    finally:
        stop()
    report.seconds = time.perf_counter() - started
    return report
