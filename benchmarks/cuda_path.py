"""The CUDA path, measured: training images/s with and without each speed feature.

For a resnet34 generator at 224 and 512x384, times the UNet step (L1 + SSIM + alpha) and the
pix2pix GAN step exactly as the training loop runs them, in these configurations:

  fp32              plain fp32, contiguous tensors, cudnn.benchmark off
  bf16              + bf16 autocast for generator and discriminator (losses stay fp32)
  bf16+cl           + channels_last
  bf16+cl+bench     + cudnn.benchmark (what `train-*` uses on CUDA)
  bf16+cl+bench+compile   + torch.compile (`--compile`)

Then the extraction time of one 768x1024 photo at both sizes. Batch from random tensors
already on the GPU: this measures compute, not loading (benchmarks/loader.py does that).
Needs a CUDA GPU; prints one JSON object.

    python benchmarks/cuda_path.py [--bs 32] [--steps 20] [--no-compile]
    python benchmarks/cuda_path.py --device cpu --bs 1 --steps 1 --warmup 0 --extract-repeat 1 \
        --sizes 64x64 --encoder resnet18 --no-compile     # a smoke test of the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext

import torch


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time_steps(step, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):  # warm-up: cudnn autotuning, compilation
        step()
    _sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--sizes", nargs="+", default=["224x224", "512x384"])
    parser.add_argument("--device", default="cuda", help="cpu only to check the script itself")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (cudnn autotuning, compilation)")
    parser.add_argument("--extract-repeat", type=int, default=10, help="timed extractions per model size")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU: this benchmark measures the CUDA path"}))
        sys.exit(1)

    from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
    from clothes_extractor.models.generator import GeneratorConfig, build_generator
    from clothes_extractor.train.config import TrainConfig
    from clothes_extractor.train.steps import Batch, LossModules, gan_step, unet_step

    device = torch.device(args.device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    variants = [
        ("fp32", False, False, False, False),
        ("bf16", True, False, False, False),
        ("bf16+cl", True, True, False, False),
        ("bf16+cl+bench", True, True, True, False),
    ]
    if not args.no_compile:
        variants.append(("bf16+cl+bench+compile", True, True, True, True))
    results = []
    for size in sizes:
        for kind in ("unet", "gan"):
            for name, bf16, cl, bench, compile_ in variants:
                torch.backends.cudnn.benchmark = bench
                torch.manual_seed(0)
                fmt = torch.channels_last if cl else torch.contiguous_format
                h, w = size
                x = (torch.rand(args.bs, 3, h, w, device=device) * 2 - 1).contiguous(memory_format=fmt)
                batch = Batch(x, x.flip(-1).contiguous(memory_format=fmt), torch.rand(args.bs, 1, h, w, device=device))
                g = build_generator(GeneratorConfig(encoder=args.encoder)).to(device, memory_format=fmt)
                autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
                g_run = torch.compile(g) if compile_ else g
                opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
                if kind == "unet":
                    cfg = TrainConfig(mode="unet", data="-", out="-", perceptual=0)
                    step = lambda: unet_step(g_run, opt_g, batch, LossModules(None), cfg, autocast)  # noqa: E731
                else:
                    cfg = TrainConfig(mode="gan", data="-", out="-", l1=100, perceptual=0, ssim=0)
                    d = build_discriminator(DiscriminatorConfig()).to(device, memory_format=fmt)
                    d_run = torch.compile(d) if compile_ else d
                    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
                    step = lambda: gan_step(g_run, d_run, opt_g, opt_d, batch, LossModules(None), cfg, autocast)  # noqa: E731
                try:
                    seconds = _time_steps(step, args.steps, args.warmup)
                    results.append({"size": f"{h}x{w}", "step": kind, "variant": name, "batch": args.bs,
                                    "images_per_s": round(args.bs / seconds, 1), "ms_per_step": round(seconds * 1000, 2)})
                except Exception as exc:  # report, go on with the other variants
                    results.append({"size": f"{h}x{w}", "step": kind, "variant": name, "error": str(exc).splitlines()[0]})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                step = g = g_run = opt_g = None  # free the GPU memory before the next variant
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    # extract: one 768x1024 photo through the model, load time apart.
    import numpy as np

    from clothes_extractor.checkpoint import save_checkpoint
    from clothes_extractor.config import PreprocessConfig
    from clothes_extractor.inference.extractor import load_extractor

    extract = []
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (1024, 768, 3), dtype=np.uint8)
    mask = np.zeros((1024, 768), bool)
    mask[300:700, 200:560] = True
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            g = build_generator(GeneratorConfig(encoder=args.encoder))
            path = Path(tmp) / f"g{size[0]}.safetensors"
            save_checkpoint(path, g.state_dict(), {
                "kind": "generator", "generator": g.config.to_dict() if hasattr(g, "config") else GeneratorConfig(encoder=args.encoder).to_dict(),
                "preprocess": PreprocessConfig(size=size).to_dict(), "epoch": 0, "step": 0, "metrics": {},
            })
            start = time.perf_counter()
            ex = load_extractor(path, device)
            load_s = time.perf_counter() - start
            ex.extract(photo, mask)
            _sync()
            start = time.perf_counter()
            for _ in range(args.extract_repeat):
                ex.extract(photo, mask)
            _sync()
            extract.append({"model_size": f"{size[0]}x{size[1]}", "load_s": round(load_s, 3),
                            "per_photo_s": round((time.perf_counter() - start) / args.extract_repeat, 4)})
    print(json.dumps({
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "none (cpu check run)", "torch": torch.__version__, "encoder": args.encoder,
        "train": results, "extract": extract,
    }, indent=1))


if __name__ == "__main__":
    main()
