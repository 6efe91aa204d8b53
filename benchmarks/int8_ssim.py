"""What int8 costs: SSIM on VITON (2018) test of a generator, its fp32 ONNX export and its int8 one.

Reads ``../shared/data/viton-2018`` (the CP-VTON layout; any layout the data readers know works)
through :func:`clothes_extractor.evaluation.datasets.read_sample`. The checkpoint (default: the shipped
default generator) is exported twice with :func:`clothes_extractor.export.export_onnx`: fp32,
and int8 quantized statically on the first ``--samples`` usable samples of ``train/``
(calibration never sees the test split). Every test sample (or the first ``--limit``) then goes
through the three :class:`~clothes_extractor.inference.extractor.Extractor` s (same preprocessing, same
compositing), brought to the garment image's own frame on white, and is scored against that
garment image with the paper protocol's SSIM (x100, 8-bit BT.601 luminance;
:func:`clothes_extractor.evaluation.scores.score`).

Prints one JSON object: mean SSIM per backend, ``int8 - fp32`` (mean and the largest per-photo
difference), ``fp32 - torch``, and the SSIM of the int8 extraction against the fp32 one. Exits
with 1 when ``|int8 - fp32|`` of the mean exceeds ``--bound`` (SSIM points x100)::

    python benchmarks/int8_ssim.py                      # the default generator, all 1,000 test samples
    python benchmarks/int8_ssim.py --checkpoint runs/train-unet --limit 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clothes_extractor.data import viton
from clothes_extractor.evaluation.datasets import read_sample
from clothes_extractor.evaluation.scores import score
from clothes_extractor.export import ExportConfig, export_onnx
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.metrics import NetworkMetrics
from clothes_extractor.pretrained import resolve

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "viton-2018"
CHUNK = 32


def ssim_x100(pred: list[np.ndarray], target: list[np.ndarray]) -> np.ndarray:
    """Paper-protocol SSIM (x100) of each uint8 (H, W, 3) prediction against its target."""
    to = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return score("paper", to(pred), to(target), NetworkMetrics.disabled("not needed"))["ssim"].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="generator checkpoint or run folder [default: the shipped default]")
    parser.add_argument("--data", type=Path, default=DATA, help="data set root with train/ and test/")
    parser.add_argument("--limit", type=int, help="score only the first N test samples")
    parser.add_argument("--samples", type=int, default=16, help="calibration samples from train/")
    parser.add_argument("--bound", type=float, default=1.0, help="largest accepted |int8 - fp32| of the mean SSIM x100")
    args = parser.parse_args()

    started = time.perf_counter()
    ckpt = resolve(args.checkpoint, "generator")
    torch_ex = load_extractor(ckpt)
    test = viton.resolve_split_dir(args.data, "test")
    ids = test.list_ids()[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(ExportConfig(ckpt, Path(tmp) / "fp32.onnx"))
        int8 = export_onnx(ExportConfig(ckpt, Path(tmp) / "int8.onnx", int8=True, calibrate=args.data, split="train",
                                        samples=args.samples))
        extractors = {"torch": torch_ex, "onnx_fp32": load_extractor(fp32.path), "onnx_int8": load_extractor(int8.path)}
    ssim: dict[str, list[float]] = {k: [] for k in (*extractors, "int8_vs_fp32")}
    skipped = []
    for start in range(0, len(ids), CHUNK):
        inputs, clothes = [], []
        for sample_id in ids[start: start + CHUNK]:
            raw = read_sample(test, sample_id)
            mask = viton.garment_mask(raw.parse, raw.labels or torch_ex.labels)
            if not mask.any():
                skipped.append(sample_id)
                continue
            inputs.append(torch_ex.prepare(raw.photo, mask, name=sample_id))
            clothes.append(raw.cloth)
        for frame in {c.shape[:2] for c in clothes}:  # one frame per call (all 256x192 in VITON)
            keep = [k for k, c in enumerate(clothes) if c.shape[:2] == frame]
            xs, ys = [inputs[k] for k in keep], [clothes[k] for k in keep]
            preds = {k: [r.on_background(WHITE) for r in ex.extract_many(xs, frame=frame)] for k, ex in extractors.items()}
            for k, p in preds.items():
                ssim[k] += ssim_x100(p, ys).tolist()
            ssim["int8_vs_fp32"] += ssim_x100(preds["onnx_int8"], preds["onnx_fp32"]).tolist()
    s = {k: np.asarray(v) for k, v in ssim.items()}
    diff = s["onnx_int8"] - s["onnx_fp32"]
    result = {
        "benchmark": "int8_ssim",
        "data": f"{test}: {len(s['torch'])} samples scored, {len(skipped)} without garment skipped",
        "checkpoint": str(ckpt),
        "calibration": f"static int8, the first {args.samples} train samples with a garment: {int8.check}",
        "ssim_x100_mean": {k: round(float(s[k].mean()), 3) for k in extractors},
        "int8_minus_fp32": {"mean": round(float(diff.mean()), 3), "largest_per_photo": round(float(np.abs(diff).max()), 3)},
        "fp32_minus_torch_mean": round(float((s["onnx_fp32"] - s["torch"]).mean()), 4),
        "int8_vs_fp32_ssim_x100_mean": round(float(s["int8_vs_fp32"].mean()), 3),
        "file_mb": {"onnx_fp32": round(fp32.size_bytes / 1e6, 1), "onnx_int8": round(int8.size_bytes / 1e6, 1)},
        "bound": args.bound,
        "within_bound": bool(abs(diff.mean()) <= args.bound),
        "seconds": round(time.perf_counter() - started),
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["within_bound"] else 1)


if __name__ == "__main__":
    main()
