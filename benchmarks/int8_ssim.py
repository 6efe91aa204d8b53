"""What int8 costs: SSIM on VITON (2018) test of a generator, its fp32 ONNX export and its int8 one.

Reads the CP-VTON layout of ``../shared/data/viton-2018`` directly (``test/image/<n>_0.jpg``,
``test/image-parse/<n>_0.png``, ``test/cloth/<n>_1.jpg``; the person ``<n>_0`` wears the
garment ``<n>_1``). The checkpoint (default: the shipped default generator) is exported twice
with :func:`clothes_extractor.export.export_onnx`: fp32, and int8 quantized statically on the
first ``--samples`` usable samples of ``train/`` (through a temporary VITON-HD-layout view of
them: calibration never sees the test split). Every test sample (or the first ``--limit``) then
goes through the three :class:`~clothes_extractor.extract.Extractor` s (same preprocessing, same
compositing), brought to the cloth's own frame (192x256) on white, and is scored against
``cloth/<n>_1.jpg`` with the paper protocol's SSIM (x100, 8-bit BT.601 luminance;
:func:`clothes_extractor.evaluate.score`).

Prints one JSON object: mean SSIM per backend, ``int8 - fp32`` (mean and the largest per-photo
difference), ``fp32 - torch``, and the SSIM of the int8 extraction against the fp32 one. Exits
with 1 when ``|int8 - fp32|`` of the mean exceeds ``--bound`` (SSIM points x100)::

    python benchmarks/int8_ssim.py --checkpoint runs/train-unet --limit 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clothes_extractor.data.viton import garment_mask, read_label_map
from clothes_extractor.evaluate import score
from clothes_extractor.export import ExportConfig, export_onnx
from clothes_extractor.extract import WHITE, load_extractor
from clothes_extractor.metrics import NetworkMetrics
from clothes_extractor.pretrained import resolve

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "viton-2018"
CHUNK = 32


def numbers(split_dir: Path) -> list[str]:
    """The sample numbers ``<n>`` of a CP-VTON split folder, from its photos ``image/<n>_0.jpg``."""
    return sorted(p.name[: -len("_0.jpg")] for p in (split_dir / "image").glob("*_0.jpg"))


def read(split_dir: Path, n: str, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, garment mask, cloth) of sample ``n``."""
    photo = np.asarray(Image.open(split_dir / "image" / f"{n}_0.jpg").convert("RGB"))
    mask = garment_mask(read_label_map(split_dir / "image-parse" / f"{n}_0.png"), tuple(labels))
    cloth = np.asarray(Image.open(split_dir / "cloth" / f"{n}_1.jpg").convert("RGB"))
    return photo, mask, cloth


def calibration_view(data: Path, out: Path, samples: int, labels) -> Path:
    """A VITON-HD-layout view (symbolic links) of the first ``samples`` train samples with a
    garment: the layout `export --calibrate` reads."""
    split = data / "train"
    for folder in ("image", "image-parse-v3"):
        (out / "train" / folder).mkdir(parents=True, exist_ok=True)
    taken = 0
    for n in numbers(split):
        if not garment_mask(read_label_map(split / "image-parse" / f"{n}_0.png"), tuple(labels)).any():
            continue
        os.symlink(split / "image" / f"{n}_0.jpg", out / "train" / "image" / f"{n}.jpg")
        os.symlink(split / "image-parse" / f"{n}_0.png", out / "train" / "image-parse-v3" / f"{n}.png")
        taken += 1
        if taken == samples:
            break
    return out


def ssim_x100(pred: list[np.ndarray], target: list[np.ndarray]) -> np.ndarray:
    """Paper-protocol SSIM (x100) of each uint8 (H, W, 3) prediction against its target."""
    to = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return score("paper", to(pred), to(target), NetworkMetrics.disabled("not needed"))["ssim"].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="generator checkpoint or run folder [default: the shipped default]")
    parser.add_argument("--data", type=Path, default=DATA, help="VITON (2018) root in the CP-VTON layout")
    parser.add_argument("--limit", type=int, help="score only the first N test samples")
    parser.add_argument("--samples", type=int, default=16, help="calibration samples from train/")
    parser.add_argument("--bound", type=float, default=1.0, help="largest accepted |int8 - fp32| of the mean SSIM x100")
    args = parser.parse_args()

    started = time.perf_counter()
    ckpt = resolve(args.checkpoint, "generator")
    torch_ex = load_extractor(ckpt)
    test = args.data / "test"
    ids = numbers(test)[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        view = calibration_view(args.data, Path(tmp) / "calibration", args.samples, torch_ex.labels)
        fp32 = export_onnx(ExportConfig(ckpt, Path(tmp) / "fp32.onnx"))
        int8 = export_onnx(ExportConfig(ckpt, Path(tmp) / "int8.onnx", int8=True, calibrate=view, samples=args.samples))
        extractors = {"torch": torch_ex, "onnx_fp32": load_extractor(fp32.path), "onnx_int8": load_extractor(int8.path)}
        sizes = {"onnx_fp32": fp32.size_bytes, "onnx_int8": int8.size_bytes}
        ssim: dict[str, list[float]] = {k: [] for k in (*extractors, "int8_vs_fp32")}
        skipped = []
        for start in range(0, len(ids), CHUNK):
            inputs, clothes = [], []
            for n in ids[start: start + CHUNK]:
                photo, mask, cloth = read(test, n, torch_ex.labels)
                if not mask.any():
                    skipped.append(n)
                    continue
                inputs.append(torch_ex.prepare(photo, mask, name=n))
                clothes.append(cloth)
            if not inputs:
                continue
            frame = clothes[0].shape[:2]  # all 256x192 in this data set
            preds = {k: [r.on_background(WHITE) for r in ex.extract_many(inputs, frame=frame)] for k, ex in extractors.items()}
            for k, p in preds.items():
                ssim[k] += ssim_x100(p, clothes).tolist()
            ssim["int8_vs_fp32"] += ssim_x100(preds["onnx_int8"], preds["onnx_fp32"]).tolist()
    s = {k: np.asarray(v) for k, v in ssim.items()}
    diff = s["onnx_int8"] - s["onnx_fp32"]
    result = {
        "benchmark": "int8_ssim",
        "data": f"{test} (CP-VTON layout), {len(s['torch'])} samples scored, {len(skipped)} without garment skipped",
        "checkpoint": str(ckpt),
        "calibration": f"static int8, first {args.samples} train samples with a garment",
        "ssim_x100_mean": {k: round(float(s[k].mean()), 3) for k in extractors},
        "int8_minus_fp32": {"mean": round(float(diff.mean()), 3), "largest_per_photo": round(float(np.abs(diff).max()), 3)},
        "fp32_minus_torch_mean": round(float((s["onnx_fp32"] - s["torch"]).mean()), 4),
        "int8_vs_fp32_ssim_x100_mean": round(float(s["int8_vs_fp32"].mean()), 3),
        "file_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
        "bound": args.bound,
        "within_bound": bool(abs(diff.mean()) <= args.bound),
        "seconds": round(time.perf_counter() - started),
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["within_bound"] else 1)


if __name__ == "__main__":
    main()
