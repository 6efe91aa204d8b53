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
    per_image.csv   id, protocol, subject, l1, psnr, ssim, ms_ssim, lpips, dists
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
IMAGE_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim", "ms_ssim", "lpips", "dists")
METRICS: tuple[str, ...] = (*IMAGE_METRICS, "fid")
HIGHER_IS_BETTER: dict[str, bool] = {
    "l1": False, "psnr": True, "ssim": True, "ms_ssim": True, "lpips": False, "dists": False, "fid": False,
}
LABELS: dict[str, str] = {
    "l1": "L1", "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "lpips": "LPIPS", "dists": "DISTS", "fid": "FID",
}
WHITE = (255, 255, 255)
METRICS_FILE, PER_IMAGE_FILE, GRID_FILE = "metrics.json", "per_image.csv", "grid.png"

PROTOCOL_DEFINITIONS: dict[str, str] = {
    "native": (
        "At the model's resolution: the generator's RGB output (tanh mapped to [0, 1]) against the "
        "preprocessed target (cloth/<id>.jpg with cloth-mask applied on the checkpoint's background, padded "
        "to the model's aspect ratio and resized, as in training). L1, PSNR, SSIM, MS-SSIM on RGB in [0, 1]; "
        "SSIM: kornia, Gaussian window 11, sigma 1.5, valid region; MS-SSIM: 5 scales, needs >= 176 px per "
        "side. Baselines: white = an all-white image; input = the preprocessed model input itself."
    ),
    "paper": (
        "TryOffDiff's published protocol (arXiv 2411.18350; pyiqa ssim/ms_ssim): the prediction rounded to "
        "8 bits, brought back to the garment image's frame (transforms.to_frame: padding cropped, bicubic "
        "upscale to the size of cloth/<id>.jpg, 768x1024 in VITON-HD), composited on white with the predicted "
        "alpha when the checkpoint's background is not white, against the original cloth/<id>.jpg as RGB "
        "(no mask). SSIM and MS-SSIM on luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as pyiqa's "
        "YIQ Y) rounded to 8 bits, x100, Gaussian window 11, sigma 1.5, valid region; L1 and PSNR on RGB in "
        "[0, 1]; LPIPS (AlexNet) on RGB; DISTS on RGB resized to a short side of 256 (341x256). Baselines: "
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


def _guess_folder(data: Path, ids: Sequence[str], list_path: Path) -> str:
    if (data / viton.PHOTO).is_dir():  # a split folder itself
        return "train"
    missing: dict[str, list[str]] = {}
    for folder in ("test", "train"):
        if not (data / folder).is_dir():
            continue
        missing[folder] = [i for i in ids if not viton.sample_path(data / folder, viton.PHOTO, i).is_file()]
        if not missing[folder]:
            return folder
    if not missing:
        viton.resolve_split_dir(data, "train")  # raises the layout error
    detail = "; ".join(f"{f}/ lacks {len(m)} (e.g. {m[0]})" for f, m in missing.items())
    raise DataError(
        f"no split folder of {data} holds every id of {list_path}: {detail}; "
        "pass --folder train or --folder test (samples without their files are then skipped)"
    )


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
    data = Path(data)
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
        split_dir = viton.resolve_split_dir(data, folder)
        ids = viton.read_id_list(list_path)
        source = "val"
    elif split == "test":
        if folder not in (None, "test"):
            raise ConfigError("--split test scores DATA/test; --folder applies to --split FILE only")
        folder = "test"
        split_dir = viton.resolve_split_dir(data, folder)
        ids = viton.list_ids(split_dir)
        source = "test"
    else:
        list_path = Path(split)
        if not list_path.is_file():
            raise DataError(f"--split {split}: no such id list (use val, test, or the path of a list or pair file)")
        ids = viton.read_id_list(list_path)
        if not ids:
            raise DataError(f"id list {list_path} is empty")
        folder = folder or _guess_folder(data, ids, list_path)
        split_dir = viton.resolve_split_dir(data, folder)
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
    out["cloth"] = [it["cloth"] for it in items]
    out["id"] = [it["id"] for it in items]
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

    @torch.no_grad()
    def add(self, protocol: str, ids: Sequence[str], subjects: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        self.sizes[protocol].add(tuple(target.shape[-2:]))
        features = self.network.fid_features
        if features is not None:
            self.real[protocol].update(features(target))
        for subject, images in subjects.items():
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
            for s in SUBJECTS:
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
    if meta.get("kind") != "generator":
        raise CheckpointError(f"{ckpt} holds a {meta.get('kind')!r} model, not a garment generator")
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

    ds = EvalDataset(selection.split_dir, selection.folder, selection.ids, preprocess)
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
            scores.add(
                "native", batch["id"],
                {"model": (rgb + 1) / 2, "white": torch.ones_like(target01), "input": input01}, target01,
            )
            rgb_cpu, alpha_cpu, x_cpu = rgb.cpu(), alpha_logit.float().cpu(), batch["input"]
            groups: dict[tuple[int, ...], list[tuple[str, dict[str, np.ndarray]]]] = defaultdict(list)
            for k, sample_id in enumerate(batch["id"]):
                images = paper_images(rgb_cpu[k], alpha_cpu[k], x_cpu[k], batch["cloth"][k], preprocess.background)
                groups[images["target"].shape].append((sample_id, images))
            for members in groups.values():
                ids = [m[0] for m in members]
                subjects = {s: _hwc_to_tensor([m[1][s] for m in members], device) for s in SUBJECTS}
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
            "split": {
                "source": selection.source, "folder": selection.folder, "split_dir": str(selection.split_dir),
                "listed": selection.listed, "excluded": selection.excluded,
                "excluded_not_in_list": selection.excluded_not_found, "skipped": selection.n_skipped,
            },
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

    shown = [m for m in METRICS if any(summary[p][s].get(m) is not None for p in PROTOCOLS for s in SUBJECTS)]
    table = Table(title=f"{summary['samples']} samples (paper: SSIM, MS-SSIM x100 on luminance)")
    table.add_column("protocol")
    table.add_column("subject")
    for m in shown:
        table.add_column(f"{LABELS[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}", justify="right")
    for p in PROTOCOLS:
        for s in SUBJECTS:
            table.add_row(p, s, *(_fmt(summary[p][s].get(m)) for m in shown), end_section=s == SUBJECTS[-1])
    return table


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The verdict per protocol, then the metrics not computed and why."""
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
    return lines
