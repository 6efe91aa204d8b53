"""What `evaluate` writes and prints: metrics.json, per_image.csv, grid.png, the table, the verdict.

Output folder (default ``runs/eval-<run name of the checkpoint>``), each file written atomically,
metrics.json last (it marks completion)::

    metrics.json    {protocol: {subject: {metric: mean}}} for "native" and "paper", beside
                    "samples" (the count), "exclude", "protocols" (definitions), "split",
                    "checkpoint", "skipped", "not_computed" and "verdict"; inf is written "inf"
    per_image.csv   id, protocol, subject, l1, psnr, ssim, ms_ssim, haarpsi, ms_gmsd, fsim, lpips, dists
    grid.png        rows: the best, the worst and random samples by the model's native SSIM;
                    columns: input | prediction | target, at the model's size, labelled

A segmenter's metrics.json holds ``"kind": "segmenter"``, its per_image.csv id, miou,
garment_iou, pixel_accuracy, its grid photo | true parse | predicted parse.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from clothes_extractor import metrics as M
from clothes_extractor.evaluation.protocol import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    METRICS,
    PIPELINE_SUBJECT,
    PROTOCOLS,
)
from clothes_extractor.errors import ConfigError
from clothes_extractor.fileio import atomic_write_text, check_writable, save_image

METRICS_FILE, PER_IMAGE_FILE, GRID_FILE = "metrics.json", "per_image.csv", "grid.png"
SEGMENTER_GRID_HEIGHT = 256  # rows of the segmenter's grid.png, in pixels


def default_out(checkpoint: Path) -> Path:
    """``runs/eval-<run folder>`` for ``RUN/best.safetensors``, else ``runs/eval-<file stem>``."""
    name = checkpoint.parent.name if checkpoint.stem in ("best", "last") and checkpoint.parent.name else checkpoint.stem
    return Path("runs") / f"eval-{name}"


def output_folder(out: Path | None, checkpoint: Path, overwrite: bool) -> Path:
    """The output folder (``out`` or :func:`default_out`); ConfigError if it holds a
    metrics.json and ``overwrite`` is not set."""
    out = Path(out) if out is not None else default_out(checkpoint)
    if (out / METRICS_FILE).exists() and not overwrite:
        raise ConfigError(f"{out / METRICS_FILE} already exists; pass --overwrite to replace it, or --out to write elsewhere")
    return check_writable(out, "output folder", folder=True)  # before the slow part


def _json_safe(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _json_safe(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_json_safe(v) for v in node]
    if isinstance(node, float):
        return M.finite_or_str(node)
    return node


def write_outputs(out: Path, summary: dict[str, Any], per_image: str, grid: np.ndarray) -> None:
    """grid.png, per_image.csv, then metrics.json (last: it marks completion)."""
    check_writable(out, "output folder", folder=True)
    save_image(Image.fromarray(grid), out / GRID_FILE)
    atomic_write_text(out / PER_IMAGE_FILE, per_image)
    atomic_write_text(out / METRICS_FILE, json.dumps(_json_safe(summary), indent=2) + "\n")


def per_image_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """The rows as CSV: ``columns`` (the first ones verbatim, numbers as %.6g, None empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns))
    for r in rows:
        writer.writerow([v if isinstance(v, str) else ("" if v is None else f"{v:.6g}") for v in (r[c] for c in columns)])
    return buf.getvalue()


def labelled(row: np.ndarray, text: str) -> np.ndarray:
    """``row`` (H, W, 3) uint8 with ``text`` in white on black at its top left."""
    image = Image.fromarray(np.ascontiguousarray(row))
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((2, 1), text)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


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


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def generator_table(summary: dict[str, Any]):
    """A rich Table: one row per protocol x subject, one column per computed metric."""
    from rich.table import Table

    shown = [m for m in METRICS if any(summary[p][s].get(m) is not None for p in PROTOCOLS for s in summary[p])]
    table = Table(title=f"{summary['samples']} samples (paper: SSIM, MS-SSIM x100 on luminance)")
    # The names stay whole however narrow the terminal; the numbers wrap instead.
    table.add_column("protocol", no_wrap=True, min_width=len("native"))
    table.add_column("subject", no_wrap=True, min_width=len(PIPELINE_SUBJECT))
    for m in shown:
        table.add_column(f"{METRIC_NAMES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}", justify="right")
    for p in PROTOCOLS:
        subjects = list(summary[p])
        for s in subjects:
            table.add_row(p, s, *(_fmt(summary[p][s].get(m)) for m in shown), end_section=s == subjects[-1])
    return table


def generator_report_lines(summary: dict[str, Any]) -> list[str]:
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
            lines.append(f"not computed: {METRIC_NAMES[name]} ({where}): {text}")
    if "pipeline" in summary:
        lines.insert(len(PROTOCOLS), pipeline_line(summary))
    if summary.get("outline", {}).get("alpha_iou") is not None:
        lines.insert(len(PROTOCOLS), outline_line(summary["outline"]))
    return lines


def outline_line(outline: dict[str, Any]) -> str:
    """``outline: alpha IoU 0.912 (median 0.93), edges 3.1 px apart (median 2.4) at the model size``."""
    edge = outline.get("edge_distance_px")
    text = f"outline: alpha IoU {outline['alpha_iou']:.3f} (median {outline['alpha_iou_median']:.3f})"
    if edge is not None:
        text += f", edges {edge:.2f} px apart (median {outline['edge_distance_px_median']:.2f}) at the model size"
    return text


def verdict_line(protocol: str, v: dict[str, Any]) -> str:
    """``native: model beats white and input on L1, SSIM`` or what it does NOT beat."""
    names = lambda ms: ", ".join(METRIC_NAMES[m] for m in ms)  # noqa: E731
    if v["beats_both"]:
        return f"{protocol}: model beats white and input on {names(v['beats']['white'])}"
    parts = [
        f"does NOT beat the {b} baseline on {names(v['does_not_beat'][b])}" for b in ("white", "input") if v["does_not_beat"][b]
    ]
    return f"{protocol}: model " + "; ".join(parts)


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


# What metrics.json's "kind" (absent for a generator) is printed with: (table, lines).
_REPORTS = {
    "generator": (generator_table, generator_report_lines),
    "segmenter": (segmenter_table, segmenter_report_lines),
}


def results_table(summary: dict[str, Any]):
    """The rich Table of a metrics.json (a generator's or a segmenter's)."""
    return _REPORTS[summary.get("kind", "generator")][0](summary)


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The lines printed under the table: verdicts, the metrics not computed and why."""
    return _REPORTS[summary.get("kind", "generator")][1](summary)
