"""`evaluate`: metrics of a checkpoint on a list of samples, against baselines, in two protocols.

Every sample of the list goes through the generator; the prediction and two baselines (the
*subjects* ``model``, ``white``, ``input``) are scored by the same code under two protocols:

``native``
    At the model's resolution (the checkpoint's ``preprocess.size``): the generator's RGB output
    (tanh, mapped to ``[0, 1]``; alpha unused) against the preprocessed target, exactly what
    :class:`~clothes_extractor.data.dataset.VitonDataset` gives (``cloth/<id>.jpg`` with its
    ``cloth-mask`` on the checkpoint's background, padded to the model's aspect ratio and
    resized). L1, PSNR, SSIM and MS-SSIM on RGB in ``[0, 1]``. MS-SSIM needs at least 176 px
    per side (5 scales of an 11-pixel window): smaller models get ``null`` with the reason.
    Baselines: ``white`` an all-white image; ``input`` the preprocessed model input itself.

``paper``
    TryOffDiff's published protocol (Velioglu et al. 2024, arXiv 2411.18350, scored with pyiqa's
    ``ssim`` and ``ms_ssim``), so numbers can sit beside theirs: the prediction, rounded to
    8 bits as a saved PNG would be, is brought back to the garment image's frame with
    :func:`~clothes_extractor.data.transforms.to_frame` (the padding cropped, a bicubic upscale
    to the size of ``cloth/<id>.jpg``: 768x1024 in VITON-HD); if the checkpoint's background is
    not white it is composited on white with the predicted alpha (brought back the same way);
    the reference is the original ``cloth/<id>.jpg`` as RGB, no mask applied (the published
    ground truth). SSIM and MS-SSIM on the luminance ``Y = 0.299 R + 0.587 G + 0.114 B``
    (ITU-R BT.601, the Y of YIQ that pyiqa uses) rounded to 8 bits, **x100**; L1 and PSNR on RGB
    in ``[0, 1]``. Baselines: ``white`` an all-255 image of the frame's size (it already scores
    an SSIM around 73 on VITON-HD); ``input`` the preprocessed input brought back with
    ``to_frame`` as well (on the checkpoint's background).
    Known differences from pyiqa: its SSIM clamps negative contrast-structure values at 0 per
    pixel (ours does not; it only matters where local structure is anti-correlated), and FID
    here uses torch-fidelity's Inception features, not clean-fid's resizing.

Both protocols: SSIM is kornia's (Gaussian window 11, sigma 1.5, valid region; equal to
scikit-image's ``gaussian_weights=True`` SSIM), see :mod:`clothes_extractor.metrics`. LPIPS
(AlexNet), DISTS and FID are computed when their weights are available locally (never
downloaded); otherwise they are ``null`` and listed under ``not_computed`` with what to install
and where to put which file. FID compares each subject's images with the protocol's targets.

Samples (``--split``): ``val`` (default) the ids of ``DATA/val_ids.txt`` over ``DATA/train/``;
``test`` every sample of ``DATA/test/``; a FILE: its ids (a list or a pair file, first column)
over ``--folder``, by default the first of ``test/``, ``train/`` that holds a photo of every id.
``--exclude`` drops the ids of a list or of the protocol JSON
(``vitonhd_duplicate_filenames.json``: TryOffDiff's 1,990 test samples = test minus these).
Samples that cannot be scored (missing files, unreadable parse map, no garment pixel) are
skipped and reported, as `split` does.

Output folder (default ``runs/eval-<run name of the checkpoint>``), each file written atomically::

    metrics.json    {protocol: {subject: {metric: mean}}} for "native" and "paper", beside
                    "samples" (the count), "exclude", "protocols" (definitions), "split",
                    "checkpoint", "skipped", "not_computed" and "verdict"; inf is written "inf"
    per_image.csv   id, protocol, subject, l1, psnr, ssim, ms_ssim, haarpsi, ms_gmsd, fsim, lpips, dists
    grid.png        rows: the best, the worst and random samples by the model's native SSIM;
                    columns: input | prediction | target, at the model's size, labelled
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader

from clothes_extractor import __version__
from clothes_extractor import metrics as M
from clothes_extractor.checkpoint import load_generator, read_meta
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data import split as split_lib
from clothes_extractor.data import viton
from clothes_extractor.data.dataset import VitonDataset, to_tensor, to_uint8
from clothes_extractor.data.transforms import preprocess_sample, to_frame
from clothes_extractor.errors import CheckpointError, ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text, save_image

PROTOCOLS: tuple[str, ...] = ("native", "paper")
SUBJECTS: tuple[str, ...] = ("model", "white", "input")
IMAGE_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim", "ms_ssim", "haarpsi", "ms_gmsd", "fsim", "lpips", "dists")
METRICS: tuple[str, ...] = (*IMAGE_METRICS, "fid")
HIGHER_IS_BETTER: dict[str, bool] = {
    "l1": False, "psnr": True, "ssim": True, "ms_ssim": True, "haarpsi": True, "ms_gmsd": False, "fsim": True,
    "lpips": False, "dists": False, "fid": False,
}
LABELS: dict[str, str] = {
    "l1": "L1", "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "haarpsi": "HaarPSI", "ms_gmsd": "MS-GMSD",
    "fsim": "FSIM", "lpips": "LPIPS", "dists": "DISTS", "fid": "FID",
}
WHITE = (255, 255, 255)
METRICS_FILE, PER_IMAGE_FILE, GRID_FILE = "metrics.json", "per_image.csv", "grid.png"

PROTOCOL_DEFINITIONS: dict[str, str] = {
    "native": (
        "At the model's resolution: the generator's RGB output (tanh mapped to [0, 1]) against the "
        "preprocessed target (cloth/<id>.jpg with cloth-mask applied on the checkpoint's background, padded "
        "to the model's aspect ratio and resized, as in training). L1, PSNR, SSIM, MS-SSIM on RGB in [0, 1]; "
        "SSIM: kornia, Gaussian window 11, sigma 1.5, valid region; MS-SSIM: 5 scales, needs >= 176 px per "
        "side; HaarPSI, MS-GMSD (luminance) and FSIM (chromatic): piq, data range 1. Baselines: white = an all-white image; input = the preprocessed model input itself."
    ),
    "paper": (
        "TryOffDiff's published protocol (arXiv 2411.18350; pyiqa ssim/ms_ssim): the prediction rounded to "
        "8 bits, brought back to the garment image's frame (transforms.to_frame: padding cropped, bicubic "
        "upscale to the size of cloth/<id>.jpg, 768x1024 in VITON-HD), composited on white with the predicted "
        "alpha when the checkpoint's background is not white, against the original cloth/<id>.jpg as RGB "
        "(no mask). SSIM and MS-SSIM on luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as pyiqa's "
        "YIQ Y) rounded to 8 bits, x100, Gaussian window 11, sigma 1.5, valid region; L1 and PSNR on RGB in "
        "[0, 1]; HaarPSI, MS-GMSD and FSIM (piq, weight-free) on RGB in [0, 1]; LPIPS (AlexNet) on RGB; DISTS on RGB resized to a short side of 256 (341x256). Baselines: "
        "white = an all-255 image of the frame's size; input = the preprocessed input brought back with "
        "to_frame."
    ),
}


@dataclass(frozen=True)
class EvalConfig:
    """What `evaluate` scores and where it writes."""

    checkpoint: Path
    data: Path
    split: str = "val"  # "val", "test" or the path of an id list
    folder: str | None = None  # train or test, for a list file (default: guessed)
    exclude: Path | None = None
    out: Path | None = None  # default runs/eval-<run name>
    batch_size: int = 16
    device: str = "auto"
    workers: int = 0
    grid_rows: int = 4  # per group (best, worst, random)
    seed: int = 0  # of the random grid rows
    network_metrics: bool = True  # LPIPS, DISTS, FID when their weights are present
    overwrite: bool = False
    segmenter: Path | None = None  # also score the mask-free pipeline: the generator fed the predicted mask


@dataclass(frozen=True)
class Selection:
    """The samples to score and how they were chosen."""

    split_dir: Path
    folder: str
    ids: list[str]
    source: str  # "val", "test" or the list file
    listed: int  # ids before exclusion and checks
    excluded: int = 0
    excluded_not_found: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids
    details: dict[str, str] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def summary(self) -> dict[str, Any]:
        """How the samples were chosen, for metrics.json."""
        return {
            "source": self.source, "folder": self.folder, "split_dir": str(self.split_dir),
            "listed": self.listed, "excluded": self.excluded,
            "excluded_not_in_list": self.excluded_not_found, "skipped": self.n_skipped,
        }


@dataclass
class EvalResult:
    out: Path
    summary: dict[str, Any]  # the content of metrics.json
    rows: list[dict[str, Any]]  # per_image.csv
    selection: Selection
    grid_rows: list[str]  # label of each grid row, top to bottom

    @property
    def paths(self) -> dict[str, Path]:
        return {"metrics": self.out / METRICS_FILE, "per_image": self.out / PER_IMAGE_FILE, "grid": self.out / GRID_FILE}


# ---------------------------------------------------------------------------------------------
# Which samples
# ---------------------------------------------------------------------------------------------


def _guess_folder(root, ids: Sequence[str], list_path: Path) -> str:
    """The first split (test, then train) holding every listed id's photo."""
    data = Path(root)
    if _is_split_folder(data):
        return "train"
    missing: dict[str, list[str]] = {}
    for folder in ("test", "train"):
        try:
            split = viton.resolve_split_dir(root, folder)
        except DataError:
            continue
        missing[folder] = [i for i in ids if not split.files(i).photo.is_file()]
        if not missing[folder]:
            return folder
    if not missing:
        viton.resolve_split_dir(root, "train")  # raises the layout error
    detail = "; ".join(f"{f}/ lacks {len(m)} (e.g. {m[0]})" for f, m in missing.items())
    raise DataError(
        f"no split folder of {data} holds every id of {list_path}: {detail}; "
        "pass --folder train or --folder test (samples without their files are then skipped)"
    )


def _is_split_folder(data: Path) -> bool:
    """Whether ``data`` is a VITON-style split folder itself (it holds the photos' folder)."""
    return not any((data / s).is_dir() for s in viton.SPLITS) and (data / viton.PHOTO).is_dir()


def select_samples(
    data: str | os.PathLike,
    split: str = "val",
    *,
    folder: str | None = None,
    exclude: str | os.PathLike | None = None,
    garment_labels: tuple[int, ...] = viton.DEFAULT_GARMENT_LABELS,
    progress: bool = False,
) -> Selection:
    """The ids to score (see the module doc); skips and reports samples that cannot be scored."""
    root, data = data, Path(data)  # root keeps --layout and --category (layouts.DataRoot)
    if not data.is_dir():
        raise DataError(f"data set folder not found: {data}")
    if folder is not None and folder not in viton.SPLITS:
        raise ConfigError(f"--folder {folder!r} is not one of {', '.join(viton.SPLITS)}")
    if split == "val":
        list_path = data / split_lib.VAL_LIST
        if not list_path.is_file():
            raise DataError(
                f"validation list {list_path} not found; run `clothes-extractor split --data {data}` first, "
                "or pass --split test or --split FILE"
            )
        folder = folder or "train"
        split_dir = viton.resolve_split_dir(root, folder)
        ids = viton.read_id_list(list_path)
        source = "val"
    elif split == "test":
        if folder not in (None, "test"):
            raise ConfigError("--split test scores DATA/test; --folder applies to --split FILE only")
        folder = "test"
        split_dir = viton.resolve_split_dir(root, folder)
        ids = viton.list_ids(split_dir)
        source = "test"
    else:
        list_path = Path(split)
        if not list_path.is_file():
            raise DataError(f"--split {split}: no such id list (use val, test, or the path of a list or pair file)")
        ids = viton.read_id_list(list_path)
        if not ids:
            raise DataError(f"id list {list_path} is empty")
        folder = folder or _guess_folder(root, ids, list_path)
        split_dir = viton.resolve_split_dir(root, folder)
        source = str(list_path)
    ids = list(dict.fromkeys(ids))  # drop duplicates, keep the order
    listed = len(ids)

    excluded = excluded_not_found = 0
    if exclude is not None:
        drop = split_lib.read_exclude_list(Path(exclude))
        kept = [i for i in ids if i not in drop]
        excluded, excluded_not_found = len(ids) - len(kept), len(drop - set(ids))
        ids = kept

    skipped: dict[str, list[str]] = {r: [] for r in split_lib.REASONS}
    details: dict[str, str] = {}
    usable: list[str] = []
    checks = ids
    if progress:
        from rich.console import Console
        from rich.progress import track

        checks = track(ids, description="checking samples", console=Console(stderr=True), transient=True)
    for sample_id in checks:
        reason, detail = split_lib.check_sample(split_dir, sample_id, garment_labels)
        if reason is None:
            usable.append(sample_id)
        else:
            skipped[reason].append(sample_id)
            details[sample_id] = detail
    if not usable:
        counts = ", ".join(f"{len(v)} {r}" for r, v in skipped.items() if v) or "none listed"
        raise DataError(f"no sample to score in {split_dir} ({listed} listed, {excluded} excluded; skipped: {counts})")
    return Selection(split_dir, folder, usable, source, listed, excluded, excluded_not_found,
                     {r: v for r, v in skipped.items() if v}, details)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


class EvalDataset(VitonDataset):
    """VitonDataset items plus ``cloth``: the original cloth image, (H, W, 3) uint8 numpy."""

    def __getitem__(self, index: int) -> dict:
        raw = viton.read_sample(self.split_dir, self.ids[index])
        x, y, alpha = preprocess_sample(raw, self.preprocess)
        return {"input": to_tensor(x), "target": to_tensor(y), "alpha": to_tensor(alpha), "cloth": raw.cloth, "id": raw.id}


def _collate(items: list[dict]) -> dict:
    out = {k: torch.stack([it[k] for it in items]) for k in ("input", "target", "alpha")}
    for k in items[0]:  # cloth, id (and photo, mask for the pipeline): lists
        if k not in out:
            out[k] = [it[k] for it in items]
    return out


def _hwc_to_tensor(arrays: Sequence[np.ndarray], device) -> torch.Tensor:
    """uint8 (H, W, 3) arrays of one size -> float (B, 3, H, W) in [0, 1] on ``device``."""
    stacked = torch.from_numpy(np.stack(arrays)).to(device)
    return stacked.permute(0, 3, 1, 2).float().div_(255)


def paper_images(
    rgb: torch.Tensor, alpha_logit: torch.Tensor, x: torch.Tensor, cloth: np.ndarray, background: tuple[int, int, int]
) -> dict[str, np.ndarray]:
    """One sample's images under the paper protocol, uint8 (H, W, 3) at the cloth image's size.

    Args:
        rgb: (3, h, w) model output in [-1, 1]; alpha_logit: (1, h, w); x: (3, h, w) model input
            in [-1, 1]; cloth: the original cloth image (H, W, 3) uint8 (the reference).
    Returns ``{"model", "white", "input", "target"}``.
    """
    frame = cloth.shape[:2]
    pred = np.asarray(to_frame(Image.fromarray(to_uint8(rgb)), frame, background))
    if tuple(background) != WHITE:
        a = np.asarray(to_frame(Image.fromarray(to_uint8(torch.sigmoid(alpha_logit.float()))), frame, 0))
        a = a.astype(np.float32)[..., None] / 255
        pred = np.clip(np.rint(a * pred + (1 - a) * 255), 0, 255).astype(np.uint8)
    return {
        "model": pred,
        "white": np.full_like(cloth, 255),
        "input": np.asarray(to_frame(Image.fromarray(to_uint8(x)), frame, background)),
        "target": cloth,
    }


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def score(protocol: str, x: torch.Tensor, y: torch.Tensor, network: M.NetworkMetrics) -> dict[str, torch.Tensor | None]:
    """Per-image metrics of ``x`` against ``y`` ((B, 3, H, W) in [0, 1]) under ``protocol``.

    MS-SSIM is None where the images are smaller than :func:`metrics.ms_ssim_min_size`.
    """
    out: dict[str, torch.Tensor | None] = {"l1": M.l1(x, y), "psnr": M.psnr(x, y)}
    big_enough = min(x.shape[-2:]) >= M.ms_ssim_min_size()
    if protocol == "paper":
        lx, ly = M.luminance(x, quantize=True), M.luminance(y, quantize=True)
        out["ssim"] = M.ssim(lx, ly) * 100
        out["ms_ssim"] = M.ms_ssim(lx, ly).float() * 100 if big_enough else None
    else:
        out["ssim"] = M.ssim(x, y)
        out["ms_ssim"] = M.ms_ssim(x, y).float() if big_enough else None
    for name, fn in M.weight_free_metrics().items():  # on RGB in [0, 1] in both protocols
        out[name] = fn(x, y)
    for name, fn in network.per_image.items():
        out[name] = fn(x, y)
    return out


class _Scores:
    """Per-image rows and FID statistics, filled batch by batch."""

    def __init__(self, network: M.NetworkMetrics) -> None:
        self.network = network
        self.rows: list[dict[str, Any]] = []
        self.real: dict[str, M.FeatureStats] = defaultdict(M.FeatureStats)
        self.fake: dict[tuple[str, str], M.FeatureStats] = defaultdict(M.FeatureStats)
        self.sizes: dict[str, set[tuple[int, int]]] = defaultdict(set)
        self.subjects: list[str] = list(SUBJECTS)  # plus PIPELINE_SUBJECT, after "model", when scored

    @torch.no_grad()
    def add(self, protocol: str, ids: Sequence[str], subjects: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        self.sizes[protocol].add(tuple(target.shape[-2:]))
        features = self.network.fid_features
        if features is not None:
            self.real[protocol].update(features(target))
        for subject, images in subjects.items():
            if subject not in self.subjects:
                self.subjects.insert(1, subject)
            values = score(protocol, images, target, self.network)
            if features is not None:
                self.fake[(protocol, subject)].update(features(images))
            for k, sample_id in enumerate(ids):
                row: dict[str, Any] = {"id": sample_id, "protocol": protocol, "subject": subject}
                for name in IMAGE_METRICS:
                    v = values.get(name)
                    row[name] = None if v is None else float(v[k])
                self.rows.append(row)

    def means(self) -> dict[str, dict[str, dict[str, float | None]]]:
        sums: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for r in self.rows:
            for name in IMAGE_METRICS:
                if r[name] is not None:
                    sums[(r["protocol"], r["subject"], name)].append(r[name])
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for p in PROTOCOLS:
            out[p] = {}
            for s in self.subjects:
                entry: dict[str, float | None] = {}
                for name in IMAGE_METRICS:
                    vals = sums.get((p, s, name))
                    entry[name] = math.fsum(vals) / len(vals) if vals else None
                entry["fid"] = None
                if self.network.fid_features is not None and self.real[p].n >= 2:
                    entry["fid"] = M.frechet_distance(*self.real[p].mean_cov(), *self.fake[(p, s)].mean_cov())
                out[p][s] = entry
        return out


def verdict(means: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """Which metrics the model beats each baseline on, for one protocol."""
    model = means["model"]
    beats: dict[str, list[str]] = {}
    loses: dict[str, list[str]] = {}
    for baseline in ("white", "input"):
        beats[baseline], loses[baseline] = [], []
        for name in METRICS:
            a, b = model.get(name), means[baseline].get(name)
            if a is None or b is None:
                continue
            better = a > b if HIGHER_IS_BETTER[name] else a < b
            (beats if better else loses)[baseline].append(name)
    return {"beats": beats, "does_not_beat": loses, "beats_both": not any(loses.values())}


def verdict_line(protocol: str, v: dict[str, Any]) -> str:
    """``native: model beats white and input on L1, SSIM`` or what it does NOT beat."""
    names = lambda ms: ", ".join(LABELS[m] for m in ms)  # noqa: E731
    if v["beats_both"]:
        return f"{protocol}: model beats white and input on {names(v['beats']['white'])}"
    parts = [
        f"does NOT beat the {b} baseline on {names(v['does_not_beat'][b])}" for b in ("white", "input") if v["does_not_beat"][b]
    ]
    return f"{protocol}: model " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Grid and output files
# ---------------------------------------------------------------------------------------------


def grid_choice(values: Sequence[float], rows: int, seed: int) -> list[tuple[str, int]]:
    """(label, index) of the best ``rows``, the worst ``rows`` and ``rows`` random indices by
    ``values`` (higher is better); fewer when there are fewer values."""
    n = len(values)
    k = min(rows, n)
    order = sorted(range(n), key=lambda i: (-values[i], i))
    rng = np.random.default_rng(seed)
    random = sorted(rng.choice(n, size=k, replace=False).tolist()) if k else []
    return (
        [(f"best {j + 1}", order[j]) for j in range(k)]
        + [(f"worst {j + 1}", order[n - 1 - j]) for j in range(k)]
        + [(f"random {j + 1}", i) for j, i in enumerate(random)]
    )


@torch.no_grad()
def _grid(model, ds: EvalDataset, choice: list[tuple[str, int]], native_ssim: Sequence[float], device) -> np.ndarray:
    rows = []
    for label, index in choice:
        item = ds[index]
        rgb, _ = model(item["input"][None].to(device))
        row = np.concatenate([to_uint8(item["input"]), to_uint8(rgb[0].float()), to_uint8(item["target"])], axis=1)
        image = Image.fromarray(np.ascontiguousarray(row))
        draw = ImageDraw.Draw(image)
        text = f"{label} {item['id']} SSIM {native_ssim[index]:.3f}"
        box = draw.textbbox((2, 1), text)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.text((2, 1), text, fill=(255, 255, 255))
        rows.append(np.asarray(image))
    return np.concatenate(rows, axis=0)


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "protocol", "subject", *IMAGE_METRICS])
    for r in rows:
        writer.writerow([r["id"], r["protocol"], r["subject"], *("" if r[m] is None else f"{r[m]:.6g}" for m in IMAGE_METRICS)])
    return buf.getvalue()


def _json_safe(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _json_safe(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_json_safe(v) for v in node]
    if isinstance(node, float):
        return M.finite_or_str(node)
    return node


def default_out(checkpoint: Path) -> Path:
    """``runs/eval-<run folder>`` for ``RUN/best.safetensors``, else ``runs/eval-<file stem>``."""
    name = checkpoint.parent.name if checkpoint.stem in ("best", "last") and checkpoint.parent.name else checkpoint.stem
    return Path("runs") / f"eval-{name}"


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def evaluate(
    cfg: EvalConfig, *, network: M.NetworkMetrics | None = None, console=None, progress: bool = True
) -> EvalResult:
    """Score ``cfg.checkpoint`` on the selected samples and write the three output files.

    ``network``: the LPIPS/DISTS/FID networks to use (tests inject small ones); by default
    those available locally (:func:`metrics.network_metrics`), or none with
    ``cfg.network_metrics=False``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from clothes_extractor.train.loop import resolve_device

    console = console or Console(stderr=True)
    if cfg.batch_size < 1:
        raise ConfigError(f"--bs must be at least 1, got {cfg.batch_size}")
    if cfg.grid_rows < 1:
        raise ConfigError(f"--grid-rows must be at least 1, got {cfg.grid_rows}")
    meta = read_meta(cfg.checkpoint)
    ckpt = Path(meta["path"])
    if meta.get("kind") == "segmenter":
        return evaluate_segmenter(cfg, meta, console=console, progress=progress)
    if meta.get("kind") != "generator":
        raise CheckpointError(f"{ckpt} holds a {meta.get('kind')!r} model, not a garment generator or segmenter")
    try:
        preprocess = PreprocessConfig.from_dict(meta["preprocess"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt} has no readable preprocessing settings ({exc})") from None
    out = Path(cfg.out) if cfg.out is not None else default_out(ckpt)
    if (out / METRICS_FILE).exists() and not cfg.overwrite:
        raise ConfigError(f"{out / METRICS_FILE} already exists; pass --overwrite to replace it, or --out to write elsewhere")

    selection = select_samples(
        cfg.data, cfg.split, folder=cfg.folder, exclude=cfg.exclude,
        garment_labels=preprocess.garment_labels, progress=progress,
    )
    device = resolve_device(cfg.device)
    model, _ = load_generator(ckpt, device)
    if network is None:
        network = M.network_metrics(device) if cfg.network_metrics else M.NetworkMetrics.disabled("--no-network-metrics")

    pipeline = _Pipeline.load(cfg.segmenter, model, preprocess, device) if cfg.segmenter is not None else None
    ds = (PipelineEvalDataset if pipeline else EvalDataset)(selection.split_dir, selection.folder, selection.ids, preprocess)
    loader = DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    scores = _Scores(network)
    bar = Progress(
        TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not progress,
    )
    with bar, torch.no_grad():
        task = bar.add_task("eval", total=len(ds))
        for batch in loader:
            x = batch["input"].to(device)
            rgb, alpha_logit = model(x)
            rgb = rgb.float().clamp(-1, 1)
            target01 = (batch["target"].to(device) + 1) / 2
            input01 = (x + 1) / 2
            native = {"model": (rgb + 1) / 2, "white": torch.ones_like(target01), "input": input01}
            if pipeline is not None:
                native[PIPELINE_SUBJECT] = pipeline.run(batch)
            scores.add("native", batch["id"], native, target01)
            rgb_cpu, alpha_cpu, x_cpu = rgb.cpu(), alpha_logit.float().cpu(), batch["input"]
            groups: dict[tuple[int, ...], list[tuple[str, dict[str, np.ndarray]]]] = defaultdict(list)
            for k, sample_id in enumerate(batch["id"]):
                images = paper_images(rgb_cpu[k], alpha_cpu[k], x_cpu[k], batch["cloth"][k], preprocess.background)
                if pipeline is not None:
                    images[PIPELINE_SUBJECT] = pipeline.paper(k, batch["cloth"][k])
                groups[images["target"].shape].append((sample_id, images))
            for members in groups.values():
                ids = [m[0] for m in members]
                subjects = {s: _hwc_to_tensor([m[1][s] for m in members], device) for s in members[0][1] if s != "target"}
                scores.add("paper", ids, subjects, _hwc_to_tensor([m[1]["target"] for m in members], device))
            bar.advance(task, len(batch["id"]))

    means = scores.means()
    not_computed: dict[str, dict[str, dict[str, str]]] = {p: {} for p in PROTOCOLS}
    for p in PROTOCOLS:
        small = sorted(s for s in scores.sizes[p] if min(s) < M.ms_ssim_min_size())
        if small:
            h, w = small[0]
            not_computed[p]["ms_ssim"] = M.NotComputed(
                f"MS-SSIM needs at least {M.ms_ssim_min_size()} px per side (5 scales, window 11); "
                f"the images are {w}x{h}",
                "train at a larger --size" if p == "native" else "",
            ).to_dict()
        for name, why in network.not_computed.items():
            not_computed[p][name] = why.to_dict()
        if network.fid_features is not None and len(selection.ids) < 2:
            not_computed[p]["fid"] = M.NotComputed("FID needs at least 2 samples").to_dict()

    native_ssim = [r["ssim"] for r in scores.rows if r["protocol"] == "native" and r["subject"] == "model"]
    choice = grid_choice(native_ssim, cfg.grid_rows, cfg.seed)
    grid = _grid(model, ds, choice, native_ssim, device)

    h, w = preprocess.size
    summary: dict[str, Any] = {p: means[p] for p in PROTOCOLS}
    summary.update(
        {
            "samples": len(selection.ids),
            "exclude": str(cfg.exclude) if cfg.exclude is not None else None,
            "protocols": {
                "native": {"definition": PROTOCOL_DEFINITIONS["native"], "sizes": [[h, w]], "ssim_scale": 1},
                "paper": {
                    "definition": PROTOCOL_DEFINITIONS["paper"],
                    "sizes": [list(s) for s in sorted(scores.sizes["paper"])],  # (H, W) of the cloth images
                    "ssim_scale": 100,
                },
            },
            "split": selection.summary(),
            "skipped": selection.skipped,
            "checkpoint": {
                "path": str(ckpt), "epoch": meta.get("epoch"), "step": meta.get("step"),
                "generator": meta.get("generator"), "preprocess": meta.get("preprocess"),
            },
            "not_computed": not_computed,
            "verdict": {p: verdict(means[p]) for p in PROTOCOLS},
            "grid": {"order_by": "native model SSIM (higher is better)", "rows": [f"{lab}: {ds.ids[i]}" for lab, i in choice]},
            "clothes_extractor_version": __version__,
        }
    )
    if pipeline is not None:
        summary["pipeline"] = pipeline.summary(means)

    out.mkdir(parents=True, exist_ok=True)
    save_image(Image.fromarray(grid), out / GRID_FILE)
    atomic_write_text(out / PER_IMAGE_FILE, _csv(scores.rows))
    atomic_write_text(out / METRICS_FILE, json.dumps(_json_safe(summary), indent=2) + "\n")  # last: marks completion
    return EvalResult(out, summary, scores.rows, selection, [f"{lab}: {ds.ids[i]}" for lab, i in choice])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def results_table(summary: dict[str, Any]):
    """A rich Table: one row per protocol x subject, one column per computed metric."""
    from rich.table import Table

    if summary.get("kind") == "segmenter":
        return segmenter_table(summary)
    shown = [m for m in METRICS if any(summary[p][s].get(m) is not None for p in PROTOCOLS for s in summary[p])]
    table = Table(title=f"{summary['samples']} samples (paper: SSIM, MS-SSIM x100 on luminance)")
    # The names stay whole however narrow the terminal; the numbers wrap instead.
    table.add_column("protocol", no_wrap=True, min_width=len("native"))
    table.add_column("subject", no_wrap=True, min_width=len(PIPELINE_SUBJECT))
    for m in shown:
        table.add_column(f"{LABELS[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}", justify="right")
    for p in PROTOCOLS:
        subjects = list(summary[p])
        for s in subjects:
            table.add_row(p, s, *(_fmt(summary[p][s].get(m)) for m in shown), end_section=s == subjects[-1])
    return table


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The verdict per protocol, then the metrics not computed and why."""
    if summary.get("kind") == "segmenter":
        return segmenter_report_lines(summary)
    lines = [verdict_line(p, summary["verdict"][p]) for p in PROTOCOLS]
    seen: set[tuple[str, str]] = set()
    for p in PROTOCOLS:
        for name, entry in summary["not_computed"][p].items():
            text = entry["reason"] + (f"; {entry['how']}" if entry.get("how") else "")
            if (name, text) in seen:
                continue
            seen.add((name, text))
            where = p if name == "ms_ssim" else "all protocols"
            lines.append(f"not computed: {LABELS[name]} ({where}): {text}")
    if "pipeline" in summary:
        lines.insert(len(PROTOCOLS), pipeline_line(summary))
    return lines


# ---------------------------------------------------------------------------------------------
# Segmenter checkpoints, and the mask-free pipeline (generator fed the predicted garment mask)
# ---------------------------------------------------------------------------------------------
#
# A segmenter checkpoint (kind "segmenter") is scored at each photo's own resolution: the
# prediction of :meth:`clothes_extractor.segment.Segmenter.predict` (padding cropped, logits
# upsampled, argmax) against the data set's parse map mapped to the segmenter's label set. One
# confusion matrix summed over the samples gives the per-class IoU, the mean IoU (over the
# classes present in the truth or the prediction), the IoU of the garment classes taken as one
# region and the pixel accuracy; per_image.csv holds the same per photo. Samples: those a
# generator would be scored on (select_samples, with the checkpoint's garment labels).
#
# With ``--segmenter SEG`` beside a generator checkpoint, every sample is also run through the
# mask-free pipeline: SEG predicts the garment mask on the full-size photo (the generator's
# garment labels -> the segmenter's classes holding them), the very preprocessing builds the
# model input from it, and the generator's output is scored as the subject "predicted_mask",
# under both protocols, beside "model" (the input built from the true mask). A photo where SEG
# finds no garment gives no output in `extract`: it is scored as an all-white image (what the
# white baseline scores) and counted. The garment mask IoU (predicted vs true, at the photo's
# resolution) is reported too.

PIPELINE_SUBJECT = "predicted_mask"
SEGMENTER_GRID_HEIGHT = 256
PIPELINE_DEFINITION = (
    "The generator fed the input built from the garment mask the segmenter predicts on the full-size photo "
    "(its classes holding the generator's garment labels), instead of the true mask; same preprocessing, same "
    "protocols. A photo where the segmenter finds no garment is scored as an all-white image. mask_iou: IoU of "
    "the predicted and the true garment masks at the photo's resolution, mean over the samples."
)
SEGMENTER_DEFINITION = (
    "At each photo's resolution: the segmenter's prediction (aspect-kept padding cropped, logits upsampled "
    "bilinearly, argmax) against image-parse-v3 mapped to the segmenter's label set. IoU per class from one "
    "confusion matrix summed over the samples; miou: mean over the classes present in truth or prediction; "
    "garment_iou: the garment classes as one region; pixel_accuracy: share of pixels right."
)


class PipelineEvalDataset(EvalDataset):
    """EvalDataset items plus ``photo`` (H, W, 3) uint8 and ``mask`` (H, W) bool, the true garment mask."""

    def __getitem__(self, index: int) -> dict:
        raw = viton.read_sample(self.split_dir, self.ids[index])
        x, y, alpha = preprocess_sample(raw, self.preprocess)
        return {
            "input": to_tensor(x), "target": to_tensor(y), "alpha": to_tensor(alpha), "cloth": raw.cloth, "id": raw.id,
            "photo": raw.photo, "mask": viton.garment_mask(raw.parse, self.preprocess.garment_labels),
        }


class _Pipeline:
    """The mask-free path over the batches of `evaluate`: predicted mask -> input -> generator."""

    def __init__(self, segmenter, path: Path, model, preprocess: PreprocessConfig, device) -> None:
        self.segmenter, self.path, self.model, self.preprocess, self.device = segmenter, path, model, preprocess, device
        self.mask_iou: dict[str, float] = {}
        self.empty: list[str] = []
        self._batch: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path, model, preprocess: PreprocessConfig, device) -> _Pipeline:
        from clothes_extractor.segment import load_segmenter

        segmenter = load_segmenter(path, device)
        return cls(segmenter, Path(segmenter.meta["path"]), model, preprocess, device)

    @torch.no_grad()
    def run(self, batch: dict) -> torch.Tensor:
        """The generator's outputs from predicted masks, (B, 3, h, w) in [0, 1] on the device
        (white where no garment was found); keeps what :meth:`paper` needs."""
        from clothes_extractor.data.transforms import preprocess_input

        seg = self.segmenter
        inputs, empty = [], []
        preds = seg.predict_many(batch["photo"], batch_size=len(batch["photo"]))
        for sample_id, photo, true_mask, classes in zip(batch["id"], batch["photo"], batch["mask"], preds):
            mask = seg.garment_mask(classes, self.preprocess.garment_labels)
            self.mask_iou[sample_id] = float(M.mask_iou(torch.from_numpy(mask)[None], torch.from_numpy(true_mask)[None])[0])
            if mask.any():
                inputs.append(preprocess_input(photo, mask, self.preprocess, name=sample_id))
                empty.append(False)
            else:
                self.empty.append(sample_id)
                empty.append(True)
        h, w = self.preprocess.size
        rgb = torch.ones(len(empty), 3, h, w)  # white in [-1, 1]
        alpha = torch.zeros(len(empty), 1, h, w)
        x = torch.ones(len(empty), 3, h, w)
        if inputs:
            xs = torch.stack([to_tensor(i) for i in inputs])
            out_rgb, out_alpha = self.model(xs.to(self.device))
            keep = [k for k, e in enumerate(empty) if not e]
            rgb[keep], alpha[keep], x[keep] = out_rgb.float().clamp(-1, 1).cpu(), out_alpha.float().cpu(), xs
        self._batch = {"rgb": rgb, "alpha": alpha, "x": x, "empty": empty}
        return ((rgb + 1) / 2).to(self.device)

    def paper(self, k: int, cloth: np.ndarray) -> np.ndarray:
        """Sample ``k`` of the last batch under the paper protocol (uint8, the cloth's frame)."""
        b = self._batch
        if b["empty"][k]:
            return np.full_like(cloth, 255)
        return paper_images(b["rgb"][k], b["alpha"][k], b["x"][k], cloth, self.preprocess.background)["model"]

    def summary(self, means: dict[str, dict[str, dict[str, float | None]]]) -> dict[str, Any]:
        seg = self.segmenter
        values = list(self.mask_iou.values())
        return {
            "definition": PIPELINE_DEFINITION,
            "subject": PIPELINE_SUBJECT,
            "segmenter": str(self.path),
            "label_set": seg.label_set.name,
            "garment_classes": seg.describe_garment(self.preprocess.garment_labels),
            "mask_iou": math.fsum(values) / len(values) if values else None,
            "empty_predictions": list(self.empty),
            "per_image_mask_iou": dict(self.mask_iou),
            "cost": {
                p: {m: _difference(means[p]["model"].get(m), means[p][PIPELINE_SUBJECT].get(m)) for m in METRICS}
                for p in PROTOCOLS
            },
        }


def _difference(true_mask: float | None, predicted: float | None) -> float | None:
    """predicted - true (the cost of the predicted mask, signed as the metric goes)."""
    if true_mask is None or predicted is None:
        return None
    return predicted - true_mask


def pipeline_line(summary: dict[str, Any]) -> str:
    """``mask-free pipeline (SEG): garment mask IoU ...; SSIM ... with the predicted mask vs ...``."""
    pipe = summary["pipeline"]
    n, empty = summary["samples"], len(pipe["empty_predictions"])
    parts = []
    for p in PROTOCOLS:
        a, b = summary[p][PIPELINE_SUBJECT].get("ssim"), summary[p]["model"].get("ssim")
        if a is not None and b is not None:
            parts.append(f"{p} SSIM {_fmt(a)} with the predicted mask vs {_fmt(b)} with the true one")
    none = f"; no garment found in {empty} of them (scored as white)" if empty else ""
    return (
        f"mask-free pipeline ({pipe['segmenter']}): garment mask IoU {_fmt(pipe['mask_iou'])} over {n} photos{none}; "
        + "; ".join(parts)
    )


class _PhotoParse(torch.utils.data.Dataset):
    """Photos and parse maps, full size, as numpy arrays (the segmenter's evaluation)."""

    def __init__(self, split_dir: Path, ids: Sequence[str]) -> None:
        self.split_dir, self.ids = split_dir, list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        sample_id = self.ids[index]
        photo = viton.read_rgb_image(self.split_dir.files(sample_id).photo, sample_id, "photo")
        parse = viton.read_parse(self.split_dir, sample_id)
        if parse.shape != photo.shape[:2]:
            raise DataError(f"sample {sample_id}: parse map and photo differ in size")
        return {"id": sample_id, "photo": photo, "parse": parse}


def _as_list(items: list[dict]) -> list[dict]:
    return items


def _segmenter_row(seg, sample: dict, label: str, value: float | None) -> np.ndarray:
    """photo | true parse | predicted parse, at SEGMENTER_GRID_HEIGHT, labelled."""
    from clothes_extractor.data.labels import colourise

    ls = seg.label_set
    pred = seg.predict(sample["photo"])
    tiles = [sample["photo"], colourise(ls.encode(sample["parse"]), ls), colourise(pred, ls)]
    h, w = sample["photo"].shape[:2]
    size = (max(1, round(w * SEGMENTER_GRID_HEIGHT / h)), SEGMENTER_GRID_HEIGHT)
    resized = [Image.fromarray(np.ascontiguousarray(t)).resize(size, Image.Resampling.NEAREST if i else Image.Resampling.BILINEAR)
               for i, t in enumerate(tiles)]
    image = Image.fromarray(np.concatenate([np.asarray(r) for r in resized], axis=1))
    draw = ImageDraw.Draw(image)
    text = f"{label} {sample['id']} garment IoU {_fmt(value)}"
    box = draw.textbbox((2, 1), text)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def evaluate_segmenter(cfg: EvalConfig, meta: dict[str, Any], *, console=None, progress: bool = True) -> EvalResult:
    """Score a segmenter checkpoint (see the section comment above); same outputs as `evaluate`:
    metrics.json, per_image.csv (id, miou, garment_iou, pixel_accuracy), grid.png (photo | true
    parse | predicted parse for the best, worst and random samples by garment IoU)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from clothes_extractor.segment import load_segmenter
    from clothes_extractor.train.loop import resolve_device

    console = console or Console(stderr=True)
    ckpt = Path(meta["path"])
    if cfg.segmenter is not None:
        raise ConfigError(
            f"{ckpt} is a segmenter: --segmenter goes with a generator --checkpoint (to score the mask-free "
            "pipeline); to score the segmenter itself give it as --checkpoint alone"
        )
    out = Path(cfg.out) if cfg.out is not None else default_out(ckpt)
    if (out / METRICS_FILE).exists() and not cfg.overwrite:
        raise ConfigError(f"{out / METRICS_FILE} already exists; pass --overwrite to replace it, or --out to write elsewhere")
    device = resolve_device(cfg.device)
    seg = load_segmenter(ckpt, device)
    garment_labels = tuple(meta.get("labels", {}).get("garment_labels", viton.DEFAULT_GARMENT_LABELS))
    selection = select_samples(
        cfg.data, cfg.split, folder=cfg.folder, exclude=cfg.exclude, garment_labels=garment_labels, progress=progress,
    )
    ls = seg.label_set
    garment = seg.garment_classes(garment_labels)
    n = ls.num_classes
    confusion = torch.zeros(n, n, dtype=torch.long)
    rows: list[dict[str, Any]] = []
    ds = _PhotoParse(selection.split_dir, selection.ids)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=_as_list)
    bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=not progress)
    with bar:
        task = bar.add_task("eval", total=len(ds))
        for items in loader:
            preds = seg.predict_many([it["photo"] for it in items], batch_size=len(items))
            for it, pred in zip(items, preds):
                cm = M.confusion_matrix(torch.from_numpy(pred), torch.from_numpy(ls.encode(it["parse"])), n)
                confusion += cm
                one = M.segmentation_report(cm, ls.classes, garment)
                rows.append({"id": it["id"], "miou": one["miou"], "garment_iou": one["garment_iou"],
                             "pixel_accuracy": one["pixel_accuracy"]})
            bar.advance(task, len(items))

    report = M.segmentation_report(confusion, ls.classes, garment)
    per_class = {name: report.pop(f"iou/{name}") for name in ls.classes}
    values = [r["garment_iou"] if r["garment_iou"] is not None else -1.0 for r in rows]
    choice = grid_choice(values, cfg.grid_rows, cfg.seed)
    grid = np.concatenate([_segmenter_row(seg, ds[i], lab, rows[i]["garment_iou"]) for lab, i in choice], axis=0)
    grid_rows = [f"{lab}: {ds.ids[i]}" for lab, i in choice]
    summary: dict[str, Any] = {
        "kind": "segmenter",
        "samples": len(selection.ids),
        "exclude": str(cfg.exclude) if cfg.exclude is not None else None,
        "definition": SEGMENTER_DEFINITION,
        "label_set": ls.name,
        "garment": {"labels": list(garment_labels), "classes": ls.describe(garment)},
        **report,
        "per_class_iou": per_class,
        "split": selection.summary(),
        "skipped": selection.skipped,
        "checkpoint": {
            "path": str(ckpt), "epoch": meta.get("epoch"), "step": meta.get("step"),
            "segmenter": meta.get("segmenter"), "preprocess": meta.get("preprocess"),
        },
        "grid": {"order_by": "by garment IoU; photo | true parse | predicted parse", "rows": grid_rows},
        "clothes_extractor_version": __version__,
    }
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "miou", "garment_iou", "pixel_accuracy"])
    for r in rows:
        writer.writerow([r["id"], *("" if r[k] is None else f"{r[k]:.6g}" for k in ("miou", "garment_iou", "pixel_accuracy"))])
    out.mkdir(parents=True, exist_ok=True)
    save_image(Image.fromarray(grid), out / GRID_FILE)
    atomic_write_text(out / PER_IMAGE_FILE, buf.getvalue())
    atomic_write_text(out / METRICS_FILE, json.dumps(_json_safe(summary), indent=2) + "\n")
    return EvalResult(out, summary, rows, selection, grid_rows)


def segmenter_table(summary: dict[str, Any]):
    """A rich Table of a segmenter's scores: the summary metrics, then the IoU of each class."""
    from rich.table import Table

    table = Table(title=f"{summary['samples']} samples, label set {summary['label_set']} (IoU at the photos' resolution)")
    table.add_column("metric")
    table.add_column("value ↑", justify="right")
    table.add_row("mean IoU", _fmt(summary["miou"]))
    table.add_row(f"garment IoU ({summary['garment']['classes']})", _fmt(summary["garment_iou"]))
    table.add_row("pixel accuracy", _fmt(summary["pixel_accuracy"]), end_section=True)
    for name, value in summary["per_class_iou"].items():
        table.add_row(f"IoU {name}", _fmt(value) if value is not None else "- (absent)")
    return table


def segmenter_report_lines(summary: dict[str, Any]) -> list[str]:
    absent = [name for name, v in summary["per_class_iou"].items() if v is None]
    lines = [
        f"segmenter: mean IoU {_fmt(summary['miou'])}, garment IoU {_fmt(summary['garment_iou'])}, "
        f"pixel accuracy {_fmt(summary['pixel_accuracy'])}"
    ]
    if absent:
        lines.append(f"classes in neither the truth nor the prediction (left out of the mean): {', '.join(absent)}")
    return lines
