"""Benchmark: samples per second delivered by the training data loader, by data form.

Builds its own data under ``--workdir`` (not /tmp, whose file creation is slow on some machines):
``--samples`` synthetic full-size samples (768x1024, VITON-HD formats, `make_sample_data`), their
`downsample` copy at 256, and the prepared form (`prepare_dataset`) at each size. Then, at 64
and 224, with 0 and 2 DataLoader workers, batch size 32, shuffled:

- ``original``: what the original project's loader did per sample: decode photo, parse map,
  cloth and cloth mask at full size, crop to the garment's bounding box, pad to a square,
  resize, to tensor (:class:`OriginalStyleDataset`, a minimal reimplementation).
- ``viton_full``: :class:`VitonDataset` on the full-size files.
- ``viton_downsampled``: :class:`VitonDataset` on the 256 copy.
- ``prepared_items``: :class:`PreparedDataset` through a plain DataLoader (per-sample items,
  the drop-in path).
- ``prepared_batches``: `batch_loader` (whole uint8 batches out of the memory map; conversion
  to float happens on the device, not here).

Each case: one batch of warm-up (worker start, page cache), then whole epochs are timed until
at least ``--epochs`` epochs and ``--min-seconds`` have passed, or ``--max-seconds`` (a cap for
the slow cases). Workers persist across epochs, so the figure is the steady state of a long
epoch. Also printed: ``prepared_batches_to_model`` (the batch path plus `to_model_range` on
this CPU, for reference: on a GPU that runs on the device) and build times. The JSON ends with
the ratios prepared_batches / original at 224 and whether the goals are met: at least 1,000
samples/s at 224 and at least 20x the original-style loader.

Usage::

    python benchmarks/loader.py                      # 200 samples, about 3 minutes on 2 cores
    python benchmarks/loader.py --samples 100 --max-seconds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset
from clothes_extractor.data.downsample import downsample
from clothes_extractor.data.prepared import PreparedDataset, batch_loader, prepare_dataset, to_model_range
from clothes_extractor.data.synthetic import make_sample_data
from clothes_extractor.data.viton import list_ids

REPO = Path(__file__).resolve().parents[1]
SIZES = (64, 224)
WORKERS = (0, 2)
BATCH = 32


class OriginalStyleDataset(Dataset):
    """The original project's per-sample work: four full-size decodes, crop, pad, resize."""

    def __init__(self, split_dir: Path, ids: list[str], size: int) -> None:
        self.split_dir, self.ids, self.size = split_dir, ids, size

    def __len__(self) -> int:
        return len(self.ids)

    def _square(self, image: Image.Image) -> Image.Image:
        side = max(image.size)
        canvas = Image.new(image.mode, (side, side))
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        return canvas.resize((self.size, self.size), Image.BILINEAR)

    @staticmethod
    def _tensor(image: Image.Image) -> torch.Tensor:
        t = torch.from_numpy(np.array(image)).float() / 255
        return (t.permute(2, 0, 1) - 0.5) / 0.5 if t.ndim == 3 else t[None]

    def __getitem__(self, index: int) -> dict:
        i, d = self.ids[index], self.split_dir
        photo = np.asarray(Image.open(d / "image" / f"{i}.jpg").convert("RGB"))
        parse = np.asarray(Image.open(d / "image-parse-v3" / f"{i}.png"))
        cloth = np.asarray(Image.open(d / "cloth" / f"{i}.jpg").convert("RGB"))
        cloth_mask = np.asarray(Image.open(d / "cloth-mask" / f"{i}.jpg").convert("L")) >= 128
        mask = parse == 5
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        crop = (photo * mask[..., None])[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        x = self._square(Image.fromarray(np.ascontiguousarray(crop)))
        y = self._square(Image.fromarray(cloth * cloth_mask[..., None]))
        alpha = self._square(Image.fromarray(cloth_mask.astype(np.uint8) * 255))
        return {"input": self._tensor(x), "target": self._tensor(y), "alpha": self._tensor(alpha)}


def measure(make_loader, epochs: int, min_seconds: float, max_seconds: float) -> dict:
    """Samples/s of whole epochs after one warm-up batch."""
    loader = make_loader()
    it = iter(loader)
    next(it)  # warm-up: worker start, first decodes, page cache
    for _ in it:  # finish the warm-up epoch untimed
        pass
    n = done = 0
    start = time.perf_counter()
    while True:
        for batch in loader:
            n += batch["input"].shape[0]
            if time.perf_counter() - start > max_seconds:
                break
        else:
            done += 1
        elapsed = time.perf_counter() - start
        if elapsed > max_seconds or (done >= epochs and elapsed >= min_seconds):
            break
    return {"samples_per_s": round(n / elapsed, 1), "samples": n, "epochs": done, "seconds": round(elapsed, 2)}


def plain_loader(ds: Dataset, workers: int) -> DataLoader:
    return DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=workers,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0),
    )


class _ToModel:
    """The batch path followed by the float conversion (on this CPU)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self):
        for raw in self.loader:
            yield {k: to_model_range(raw[k]) for k in ("input", "target", "alpha")}


def build(work: Path, samples: int) -> dict:
    times = {}
    t = time.perf_counter()
    make_sample_data(work / "full", samples=samples, seed=0, test_fraction=0)
    times["make_sample_data_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    downsample(work / "full" / "train", work / "ds256" / "train", size=256, progress=False)
    times["downsample_256_s"] = round(time.perf_counter() - t, 2)
    for size in SIZES:
        t = time.perf_counter()
        prepare_dataset(
            work / "full", preprocess=PreprocessConfig(size=(size, size)), out=work / f"prepared-{size}", progress=False
        )
        times[f"prepare_{size}_s"] = round(time.perf_counter() - t, 2)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=REPO.parent, help="where the temporary data goes")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.5)
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--keep", action="store_true", help="keep the data (printed path)")
    args = parser.parse_args()

    # One intra-op thread: the loaders' tensor work is small and memory-bound, and on a shared
    # 2-core machine OpenMP's barriers collapse under CPU steal (to_tensor at 224 measured from
    # 70 to 24,000 per second with 2 threads, a steady 22,000 with 1). DataLoader workers use 1.
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-loader-", dir=args.workdir))
    try:
        result: dict = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
            "samples": args.samples,
            "batch_size": BATCH,
            "build": build(work, args.samples),
            "loaders": {},
        }
        split_full, split_ds = work / "full" / "train", work / "ds256" / "train"
        ids = list_ids(split_full)
        for size in SIZES:
            pre = PreprocessConfig(size=(size, size))
            prepared = PreparedDataset(work / f"prepared-{size}")
            cases = {
                "original": lambda w: plain_loader(OriginalStyleDataset(split_full, ids, size), w),
                "viton_full": lambda w: plain_loader(VitonDataset(split_full.parent, "train", ids, pre), w),
                "viton_downsampled": lambda w: plain_loader(VitonDataset(split_ds.parent, "train", ids, pre), w),
                "prepared_items": lambda w: plain_loader(prepared, w),
                "prepared_batches": lambda w: batch_loader(
                    prepared, BATCH, shuffle=True, workers=w, generator=torch.Generator().manual_seed(0),
                    persistent_workers=w > 0,
                ),
                "prepared_batches_to_model": lambda w: _ToModel(batch_loader(
                    prepared, BATCH, shuffle=True, workers=w, generator=torch.Generator().manual_seed(0),
                    persistent_workers=w > 0,
                )),
            }
            for name, make in cases.items():
                for w in WORKERS:
                    r = measure(lambda: make(w), args.epochs, args.min_seconds, args.max_seconds)
                    result["loaders"].setdefault(f"{size}", {}).setdefault(name, {})[f"workers_{w}"] = r
        at224 = result["loaders"]["224"]
        best = lambda name: max(v["samples_per_s"] for v in at224[name].values())  # noqa: E731
        ratios = {
            f"workers_{w}": round(at224["prepared_batches"][f"workers_{w}"]["samples_per_s"]
                                  / at224["original"][f"workers_{w}"]["samples_per_s"], 1)
            for w in WORKERS
        }
        result["prepared_batches_over_original_224"] = ratios
        result["goals"] = {
            "prepared_batches_224_best_samples_per_s": best("prepared_batches"),
            "original_224_best_samples_per_s": best("original"),
            "at_least_1000_per_s_at_224": all(
                v["samples_per_s"] >= 1000 for v in at224["prepared_batches"].values()
            ),
            "at_least_20x_original_at_224": all(r >= 20 for r in ratios.values()),
        }
        print(json.dumps(result, indent=1))
    finally:
        if args.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
