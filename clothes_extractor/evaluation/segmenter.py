"""Scoring a segmenter checkpoint, at each photo's own resolution.

The prediction of :meth:`clothes_extractor.inference.segmenter.Segmenter.predict` (padding
cropped, logits upsampled, argmax) against the data set's parse map mapped to the segmenter's
label set. One confusion matrix summed over the samples gives the per-class IoU, the mean IoU
(over the classes present in the truth or the prediction), the IoU of the garment classes taken
as one region and the pixel accuracy; per_image.csv holds the same per photo. Samples: those a
generator would be scored on (:func:`~clothes_extractor.evaluation.selection.select_samples`,
with the checkpoint's garment labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from clothes_extractor import __version__
from clothes_extractor import metrics as M
from clothes_extractor.data import viton
from clothes_extractor.errors import ConfigError
from clothes_extractor.evaluation.config import EvalConfig, EvalResult
from clothes_extractor.evaluation.datasets import PhotoParse, as_list
from clothes_extractor.evaluation.protocol import SEGMENTER_DEFINITION
from clothes_extractor.evaluation.report import (
    SEGMENTER_GRID_HEIGHT,
    _fmt,
    grid_choice,
    labelled,
    output_folder,
    per_image_csv,
    write_outputs,
)
from clothes_extractor.evaluation.selection import select_samples
from clothes_extractor.inference.segmenter import Segmenter, load_segmenter
from clothes_extractor.progress import progress_bar
from clothes_extractor.runtime import resolve_device

SEGMENTER_COLUMNS = ("id", "miou", "garment_iou", "pixel_accuracy")


def _segmenter_row(seg: Segmenter, sample: dict, label: str, value: float | None) -> np.ndarray:
    """photo | true parse | predicted parse, at SEGMENTER_GRID_HEIGHT, labelled."""
    from clothes_extractor.data.labels import colourise

    ls = seg.label_set
    pred = seg.predict(sample["photo"])
    tiles = [sample["photo"], colourise(ls.encode(sample["parse"]), ls), colourise(pred, ls)]
    h, w = sample["photo"].shape[:2]
    size = (max(1, round(w * SEGMENTER_GRID_HEIGHT / h)), SEGMENTER_GRID_HEIGHT)
    resized = [Image.fromarray(np.ascontiguousarray(t)).resize(size, Image.Resampling.NEAREST if i else Image.Resampling.BILINEAR)
               for i, t in enumerate(tiles)]
    row = np.concatenate([np.asarray(r) for r in resized], axis=1)
    return labelled(row, f"{label} {sample['id']} garment IoU {_fmt(value)}")


def _score(seg: Segmenter, loader: DataLoader, garment: tuple[int, ...], advance) -> tuple[torch.Tensor, list[dict]]:
    """(the confusion matrix summed over the samples, one row per sample)."""
    ls = seg.label_set
    confusion = torch.zeros(ls.num_classes, ls.num_classes, dtype=torch.long)
    rows: list[dict[str, Any]] = []
    for items in loader:
        preds = seg.predict_many([it["photo"] for it in items], batch_size=len(items))
        for it, pred in zip(items, preds):
            cm = M.confusion_matrix(torch.from_numpy(pred), torch.from_numpy(ls.encode(it["parse"])), ls.num_classes)
            confusion += cm
            one = M.segmentation_report(cm, ls.classes, garment)
            rows.append({"id": it["id"], **{k: one[k] for k in SEGMENTER_COLUMNS[1:]}})
        advance(len(items))
    return confusion, rows


def evaluate_segmenter(cfg: EvalConfig, meta: dict[str, Any], *, console=None, progress: bool = True) -> EvalResult:
    """Score the segmenter of ``meta``; same outputs as a generator's: metrics.json,
    per_image.csv (id, miou, garment_iou, pixel_accuracy), grid.png (photo | true parse |
    predicted parse for the best, worst and random samples by garment IoU)."""
    ckpt = Path(meta["path"])
    if cfg.segmenter is not None:
        raise ConfigError(
            f"{ckpt} is a segmenter: --segmenter goes with a generator --checkpoint (to score the mask-free "
            "pipeline); to score the segmenter itself give it as --checkpoint alone"
        )
    out = output_folder(cfg.out, ckpt, cfg.overwrite)
    seg = load_segmenter(ckpt, resolve_device(cfg.device))
    garment_labels = tuple(meta.get("labels", {}).get("garment_labels", viton.DEFAULT_GARMENT_LABELS))
    selection = select_samples(
        cfg.data, cfg.split, folder=cfg.folder, exclude=cfg.exclude, garment_labels=garment_labels, progress=progress,
    )
    ls, garment = seg.label_set, seg.garment_classes(garment_labels)
    ds = PhotoParse(selection.split_dir, selection.ids)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=as_list)
    advance, stop = progress_bar("[bold]evaluating", len(ds), console=console, transient=True, enabled=progress)
    try:
        confusion, rows = _score(seg, loader, garment, advance)
    finally:
        stop()
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
    write_outputs(out, summary, per_image_csv(rows, SEGMENTER_COLUMNS), grid)
    return EvalResult(out, summary, rows, selection, grid_rows)
