"""Scoring a generator checkpoint: every selected sample through the :class:`Extractor`, the
prediction and the baselines under both protocols (:mod:`clothes_extractor.evaluation.protocol`),
optionally beside the mask-free pipeline (:mod:`clothes_extractor.evaluation.mask_free`)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from clothes_extractor import __version__
from clothes_extractor import metrics as M
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_uint8
from clothes_extractor.data.viton import as_split
from clothes_extractor.errors import CheckpointError
from clothes_extractor.evaluation.config import EvalConfig, EvalResult
from clothes_extractor.evaluation.datasets import EvalDataset, collate
from clothes_extractor.evaluation.mask_free import MaskFree
from clothes_extractor.evaluation.paper import hwc_to_tensor, paper_images
from clothes_extractor.evaluation.protocol import IMAGE_METRICS, PIPELINE_SUBJECT, PROTOCOL_DEFINITIONS, PROTOCOLS
from clothes_extractor.evaluation.report import grid_choice, labelled, output_folder, per_image_csv, write_outputs
from clothes_extractor.evaluation.scores import Scores, not_computed, verdict
from clothes_extractor.evaluation.selection import Selection, select_samples
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import Extractor, load_extractor
from clothes_extractor.inference.warp_frame import fields
from clothes_extractor.progress import progress_bar
from clothes_extractor.runtime import resolve_device


def _score_outline(out, batch: dict, outline: dict[str, list[float]]) -> None:
    """The predicted alpha against the true garment alpha at the model size: IoU and the mean
    distance between their edges in model pixels, per image."""
    alpha_logit, truth = out.alpha_logit.float().cpu(), batch["alpha"].float()
    outline["alpha_iou"] += M.alpha_iou(alpha_logit, truth).tolist()
    outline["edge_distance_px"] += M.edge_distance(alpha_logit, truth).tolist()


def _score_batch(
    extractor: Extractor, batch: dict, scores: Scores, mask_free: MaskFree | None, outline: dict[str, list[float]]
) -> None:
    """One batch: native at the model's size, paper at each cloth image's size."""
    device = extractor.device
    x = batch["input"].to(device)
    out = extractor.run(x)
    _score_outline(out, batch, outline)
    rgb, alpha_logit = extractor.render(out)  # the model size (native)
    # The paper image is the one `extract` writes: a warp generator draws the photo itself
    # straight into the cloth image's frame.
    drawn = None
    if "warp_source" in batch:
        drawn = [
            extractor.finish_warped(f, s, cloth.shape[:2]).on_background(WHITE)
            for f, s, cloth in zip(fields(out), batch["warp_source"], batch["cloth"])
        ]
    target01 = (batch["target"].to(device) + 1) / 2
    native = {"model": (rgb + 1) / 2, "white": torch.ones_like(target01), "input": (x + 1) / 2}
    if mask_free is not None:
        native[PIPELINE_SUBJECT] = mask_free.run(batch)
    scores.add("native", batch["id"], native, target01)
    rgb_cpu, alpha_cpu, background = rgb.cpu(), alpha_logit.cpu(), extractor.preprocess.background
    groups: dict[tuple[int, ...], list[tuple[str, dict[str, np.ndarray]]]] = defaultdict(list)
    for k, sample_id in enumerate(batch["id"]):
        images = paper_images(rgb_cpu[k], alpha_cpu[k], batch["input"][k], batch["cloth"][k], background, extractor.scale,
                              model=None if drawn is None else drawn[k])
        if mask_free is not None:
            images[PIPELINE_SUBJECT] = mask_free.paper(k, batch["cloth"][k])
        groups[images["target"].shape].append((sample_id, images))
    for members in groups.values():  # one stack per cloth size
        ids = [m[0] for m in members]
        subjects = {s: hwc_to_tensor([m[1][s] for m in members], device) for s in members[0][1] if s != "target"}
        scores.add("paper", ids, subjects, hwc_to_tensor([m[1]["target"] for m in members], device))


def _grid(extractor: Extractor, ds: EvalDataset, choice: list[tuple[str, int]], native_ssim) -> np.ndarray:
    """Rows input | prediction | target at the model's size, labelled with the native SSIM."""
    rows = []
    for label, index in choice:
        item = ds[index]
        rgb, _ = extractor.forward(item["input"][None])
        row = np.concatenate([to_uint8(item["input"]), to_uint8(rgb[0]), to_uint8(item["target"])], axis=1)
        rows.append(labelled(row, f"{label} {item['id']} SSIM {native_ssim[index]:.3f}"))
    return np.concatenate(rows, axis=0)


def outline_summary(outline: dict[str, list[float]], size: tuple[int, int]) -> dict[str, Any]:
    """metrics.json's ``outline``: the means of :func:`_score_outline`'s figures, NaNs (an empty
    outline beside a non-empty one) left out and counted."""
    out: dict[str, Any] = {"definition": (
        f"the predicted alpha (> 0.5) against the true garment alpha (cloth-mask > 0.5) at the model size "
        f"{size[0]}x{size[1]}: IoU, and the mean symmetric distance between their edges in model pixels"
    )}
    for name, values in outline.items():
        finite = [v for v in values if math.isfinite(v)]
        out[name] = math.fsum(finite) / len(finite) if finite else None
        out[f"{name}_median"] = float(np.median(finite)) if finite else None
    out["empty_outlines"] = sum(not math.isfinite(v) for v in outline.get("edge_distance_px", []))
    return out


def _summary(
    cfg: EvalConfig, meta: dict[str, Any], selection: Selection, scores: Scores, network: M.NetworkMetrics,
    grid_rows: list[str], preprocess: PreprocessConfig, outline: dict[str, list[float]],
) -> dict[str, Any]:
    """The content of a generator's metrics.json."""
    means = scores.means()
    summary: dict[str, Any] = {p: means[p] for p in PROTOCOLS}
    summary.update({
        "outline": outline_summary(outline, preprocess.size),
        "samples": len(selection.ids),
        "exclude": str(cfg.exclude) if cfg.exclude is not None else None,
        "protocols": {
            "native": {"definition": PROTOCOL_DEFINITIONS["native"], "sizes": [list(preprocess.size)], "ssim_scale": 1},
            "paper": {
                "definition": PROTOCOL_DEFINITIONS["paper"],
                "sizes": [list(s) for s in sorted(scores.sizes["paper"])],  # (H, W) of the cloth images
                "ssim_scale": 100,
            },
        },
        "split": selection.summary(),
        "skipped": selection.skipped,
        "checkpoint": {
            "path": str(Path(meta["path"])), "epoch": meta.get("epoch"), "step": meta.get("step"),
            "generator": meta.get("generator"), "preprocess": meta.get("preprocess"),
        },
        "not_computed": not_computed(scores, network, len(selection.ids)),
        "verdict": {p: verdict(means[p]) for p in PROTOCOLS},
        "grid": {"order_by": "native model SSIM (higher is better)", "rows": grid_rows},
        "clothes_extractor_version": __version__,
    })
    return summary


def evaluate_generator(
    cfg: EvalConfig, meta: dict[str, Any], *, network: M.NetworkMetrics | None = None, console=None, progress: bool = True
) -> EvalResult:
    """Score the generator of ``meta`` (:func:`~clothes_extractor.checkpoint.read_meta` of
    ``cfg.checkpoint``) and write metrics.json, per_image.csv and grid.png.

    ``network``: the LPIPS/DISTS/FID networks to use (tests inject small ones); by default
    those available locally (:func:`metrics.network_metrics`), or none with
    ``cfg.network_metrics=False``.
    """
    ckpt = Path(meta["path"])
    try:
        preprocess = PreprocessConfig.from_dict(meta["preprocess"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt} has no readable preprocessing settings ({exc})") from None
    out = output_folder(cfg.out, ckpt, cfg.overwrite)
    selection = select_samples(
        cfg.data, cfg.split, folder=cfg.folder, exclude=cfg.exclude,
        garment_labels=preprocess.garment_labels, progress=progress,
    )
    device = resolve_device(cfg.device)
    # Scored with the margins of the data set's own garment images (what `extract` would draw
    # for that catalogue).
    extractor = load_extractor(ckpt, device).batched_on_cpu().with_catalogue(as_split(selection.split_dir).layout.garment_width)
    if network is None:
        network = M.network_metrics(device) if cfg.network_metrics else M.NetworkMetrics.disabled("--no-network-metrics")
    mask_free = MaskFree.load(cfg.segmenter, extractor) if cfg.segmenter is not None else None
    ds = EvalDataset(selection.split_dir, selection.folder, selection.ids, preprocess, with_photo=mask_free is not None,
                     warp_source=extractor.prepare_source if extractor.warp else None)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=collate,
                        pin_memory=device.type == "cuda")
    scores = Scores(network)
    outline: dict[str, list[float]] = {"alpha_iou": [], "edge_distance_px": []}
    advance, stop = progress_bar("[bold]evaluating", len(ds), console=console, transient=True, enabled=progress)
    try:
        with torch.no_grad():
            for batch in loader:
                _score_batch(extractor, batch, scores, mask_free, outline)
                advance(len(batch["id"]))
    finally:
        stop()
    native_ssim = [r["ssim"] for r in scores.rows if r["protocol"] == "native" and r["subject"] == "model"]
    choice = grid_choice(native_ssim, cfg.grid_rows, cfg.seed)
    grid_rows = [f"{lab}: {ds.ids[i]}" for lab, i in choice]
    summary = _summary(cfg, meta, selection, scores, network, grid_rows, preprocess, outline)
    if mask_free is not None:
        summary["pipeline"] = mask_free.summary({p: summary[p] for p in PROTOCOLS})
    per_image = per_image_csv(scores.rows, ["id", "protocol", "subject", *IMAGE_METRICS])
    write_outputs(out, summary, per_image, _grid(extractor, ds, choice, native_ssim))
    return EvalResult(out, summary, scores.rows, selection, grid_rows)
