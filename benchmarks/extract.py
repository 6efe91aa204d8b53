"""Benchmark: seconds per 768x1024 photo through `extract`, with the model at 224 and 512x384.

For each model size a generator (``--encoder``, random weights: speed does not depend on the
values) is saved as a checkpoint with :func:`clothes_extractor.checkpoint.save_checkpoint`,
exactly as training saves one, then:

- ``load_s``: :func:`clothes_extractor.inference.extractor.load_extractor` (read the file, rebuild the
  model, load the weights), timed apart and not part of the per-photo numbers;
- one warm-up extraction, then ``--repeat`` timed ones of a real VITON-HD photo (768x1024)
  and its parse map, each split into ``read`` (decode photo + mask), ``prepare`` (the training
  preprocessing), ``model`` (forward), ``finish`` (back to the 768x1024 catalogue frame) and
  ``write`` (JPEG); ``per_photo_s`` is the median of their sum, ``in_memory_s`` of
  prepare + model + finish (what :meth:`Extractor.extract` costs);
- ``batch_per_photo_s``: folder mode's batched forward (``--batch-size`` photos at a time,
  prepare + model + finish), divided by the batch size.
- ``default_models``: seconds per photo of the shipped default generator through
  ``inference.pipeline.extract_file`` (what `extract` runs: read, mask, model, finish, write),
  with the photo's mask and without one (the default segmenter predicts it first), alternated
  for ``--repeat`` rounds after a warm-up of each; models loaded once, load time apart. Each
  ``--compare CHECKPOINT`` generator is timed the same way, alternating with the default, with
  its ``<stem>_with_mask_over_default`` ratios.
- ``backends`` (unless ``--no-backends``): seconds per photo and peak memory of the shipped
  default generator under torch eager, torch channels_last, onnxruntime fp32 and static int8,
  at ``--batches`` and ``--threads``,
  alternated within this run (benchmarks/backends.py says how), with each onnxruntime
  backend's speed-up over the best torch path.

Prints one JSON object. Usage::

    python benchmarks/extract.py                     # resnet34, 224 and 512x384, CPU
    python benchmarks/extract.py --repeat 10 --device cuda --sizes 224 512x384 1024x768
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.config import PreprocessConfig, parse_size
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.inference.mask import read_pair
from clothes_extractor.inference.output import ExtractConfig, write_result
from clothes_extractor.models.generator import Generator
from clothes_extractor.runtime import resolve_device

REPO = Path(__file__).resolve().parents[1]
REAL_SPLIT = REPO.parent / "shared" / "data" / "viton-hd-samples" / "test"


def make_checkpoint(path: Path, encoder: str, size: tuple[int, int]) -> Path:
    g = Generator(encoder=encoder, encoder_weights=None)
    meta = {
        "kind": "generator",
        "clothes_extractor_version": "benchmark",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=size).to_dict(),
        "train": {},
        "epoch": 0,
        "step": 0,
        "metrics": {},
    }
    return save_checkpoint(path, g.state_dict(), meta)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_size(size, args, photo_path: Path, mask_path: Path, tmp: Path) -> dict:
    device = resolve_device(args.device)
    ckpt = make_checkpoint(tmp / f"g{size[0]}x{size[1]}.safetensors", args.encoder, size)
    t = time.perf_counter()
    extractor = load_extractor(ckpt, device)
    _sync(device)
    load_s = time.perf_counter() - t
    cfg = ExtractConfig(overwrite=True)
    out = [tmp / "out.jpg"]

    def once() -> dict[str, float]:
        times = {}
        t0 = time.perf_counter()
        photo, mask = read_pair(photo_path, mask_path, extractor.labels)
        t1 = time.perf_counter()
        x = extractor.prepare(photo, mask)
        t2 = time.perf_counter()
        rgb, alpha = extractor.predict(x[None])
        _sync(device)
        t3 = time.perf_counter()
        result = extractor.finish(rgb[0], alpha[0])
        t4 = time.perf_counter()
        write_result(result, out, cfg)
        t5 = time.perf_counter()
        times.update(read=t1 - t0, prepare=t2 - t1, model=t3 - t2, finish=t4 - t3, write=t5 - t4)
        return times

    once()  # warm-up
    runs = [once() for _ in range(args.repeat)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    totals = [sum(r.values()) for r in runs]
    in_memory = [r["prepare"] + r["model"] + r["finish"] for r in runs]

    batch = None
    if args.batch_size > 1:
        photo, mask = read_pair(photo_path, mask_path, extractor.labels)
        inputs = [extractor.prepare(photo, mask)] * args.batch_size
        list(extractor.extract_many(inputs, batch_size=args.batch_size))  # warm-up at this batch size
        _sync(device)
        t = time.perf_counter()
        xs = [extractor.prepare(photo, mask) for _ in range(args.batch_size)]
        list(extractor.extract_many(xs, batch_size=args.batch_size))
        _sync(device)
        batch = (time.perf_counter() - t) / args.batch_size

    return {
        "model_size": f"{size[0]}x{size[1]}",
        "load_s": round(load_s, 4),
        "per_photo_s": round(statistics.median(totals), 4),
        "per_photo_min_s": round(min(totals), 4),
        "in_memory_s": round(statistics.median(in_memory), 4),
        "breakdown_median_s": {k: round(v, 4) for k, v in median.items()},
        "batch_size": args.batch_size,
        "batch_per_photo_s": round(batch, 4) if batch is not None else None,
    }


def bench_default_models(args, photo_path: Path, mask_path: Path, tmp: Path) -> dict:
    """The shipped models (and each ``--compare`` generator, e.g. a warp run) through
    ``extract_file``, with and without a mask, every case alternating within each round."""
    from clothes_extractor import pretrained
    from clothes_extractor.inference.pipeline import extract_file
    from clothes_extractor.inference.segmenter import load_segmenter

    device = resolve_device(args.device)
    t = time.perf_counter()
    extractor = load_extractor(pretrained.resolve(None, "generator"), device)
    segmenter = load_segmenter(pretrained.resolve(None, "segmenter"), device)
    load_s = time.perf_counter() - t
    generators = {"": extractor} | {f"{Path(c).name if Path(c).is_dir() else Path(c).stem}_": load_extractor(c, device) for c in args.compare}
    cfg = ExtractConfig(overwrite=True)
    cases = {}
    for prefix, ex in generators.items():
        cases[f"{prefix}with_mask"] = lambda ex=ex: extract_file(ex, photo_path, mask_path, tmp / "a.jpg", cfg)
        cases[f"{prefix}without_mask"] = lambda ex=ex: extract_file(ex, photo_path, None, tmp / "b.jpg", cfg, segmenter=segmenter)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for run in cases.values():
        run()  # warm-up
    for _ in range(args.repeat):
        for name, run in cases.items():
            t = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    out = {f"{k}_per_photo_s": round(statistics.median(v), 4) for k, v in times.items()}
    out["segmenter_share_s"] = round(out["without_mask_per_photo_s"] - out["with_mask_per_photo_s"], 4)
    for prefix in list(generators)[1:]:
        for case in ("with_mask", "without_mask"):
            out[f"{prefix}{case}_over_default"] = round(out[f"{prefix}{case}_per_photo_s"] / out[f"{case}_per_photo_s"], 3)
    return {"load_both_s": round(load_s, 4), **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["224", "512x384"], help="model sizes, HxW")
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4, help="folder-mode batch measured too (0: skip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sample", default="00006_00", help="id of a real VITON-HD sample (768x1024)")
    parser.add_argument("--photo", type=Path, help="another photo (with --mask) instead of the real sample")
    parser.add_argument("--mask", type=Path)
    parser.add_argument("--backends", action=argparse.BooleanOptionalAction, default=True,
                        help="also compare torch eager, channels_last, onnxruntime fp32 and int8 (benchmarks/backends.py)")
    parser.add_argument("--backend-checkpoint", type=Path, help="generator of the backend comparison [default: the shipped default]")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts of the backend comparison")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes of the backend comparison")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the backend comparison")
    parser.add_argument("--compare", nargs="*", default=[], metavar="CHECKPOINT",
                        help="generators timed beside the shipped default through extract (e.g. a warp run), with *_over_default ratios")
    args = parser.parse_args()

    photo = args.photo or REAL_SPLIT / "image" / f"{args.sample}.jpg"
    mask = args.mask or REAL_SPLIT / "image-parse-v3" / f"{args.sample}.png"
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        results = [bench_size(parse_size(s), args, photo, mask, Path(tmp)) for s in args.sizes]
        defaults = bench_default_models(args, photo, mask, Path(tmp))
    compared = None
    if args.backends:  # in processes of their own, one per backend and thread count
        import backends

        with tempfile.TemporaryDirectory() as tmp:
            models = backends.make_models(Path(tmp), args.backend_checkpoint, False, *backends.calibration_data())
            compared = backends.run(models, photo, mask, threads=args.threads, batches=args.batches, rounds=args.rounds)
        compared.update(backends.describe(models, photo))
    from PIL import Image

    w, h = Image.open(photo).size
    print(json.dumps({
        "benchmark": "extract",
        "photo": f"{photo.name} ({w}x{h})",
        "output_frame": "768x1024",
        "encoder": args.encoder,
        "weights": "random (speed does not depend on them)",
        "device": str(resolve_device(args.device)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min_after": round(os.getloadavg()[0], 2),  # > 0 means other processes competed
        "repeat": args.repeat,
        "results": results,
        "default_models": defaults,
        "backends": compared,
    }, indent=2))


if __name__ == "__main__":
    main()
