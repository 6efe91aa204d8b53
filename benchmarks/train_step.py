"""Training-step throughput on this machine, and how much of its matmul FLOP rate a step reaches.

For resnet18/resnet34 generators at 64 and 224 pixels, times three steps exactly as the
training loop runs them (`clothes_extractor.train.steps`):

  unet_l1   the UNet step with L1 (+ alpha) only
  unet_mix  the original project's mix: L1 + 0.3 x perceptual (VGG16) + SSIM (+ alpha)
  gan       the pix2pix step: D on the detached output, then G (lambda 100 x L1) against D

The FLOPs of one step (forward and backward, all networks) are counted once with
torch.utils.flop_counter; the machine's rate is a timed fp32 matmul of 2048x2048 matrices.
VGG16 and the encoders have random weights (nothing is downloaded). Prints one JSON object.

    python benchmarks/train_step.py [--bs 8] [--steps 3] [--sizes 64 224] [--encoders resnet18 resnet34]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import nullcontext

import torch
from torch.utils.flop_counter import FlopCounterMode

from clothes_extractor.losses import PerceptualLoss
from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
from clothes_extractor.models.generator import GeneratorConfig, build_generator
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.steps import Batch, LossModules, gan_step, unet_step


def matmul_flops_per_s(sizes=(1024, 2048, 4096), trials: int = 5) -> float:
    """The machine's fp32 matmul rate: the best of a few sizes and trials (FLOP/s)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        for _ in range(trials):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def make_step(kind: str, encoder: str, size: int, bs: int):
    torch.manual_seed(0)
    x = torch.rand(bs, 3, size, size) * 2 - 1
    batch = Batch(x, torch.rand(bs, 3, size, size) * 2 - 1, torch.rand(bs, 1, size, size))
    g = build_generator(GeneratorConfig(encoder=encoder))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4)
    if kind == "gan":
        cfg = TrainConfig(mode="gan", data="-", out="-", l1=100, perceptual=0, ssim=0)
        d = build_discriminator(DiscriminatorConfig())
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4)
        return lambda: gan_step(g, d, opt_g, opt_d, batch, LossModules(None), cfg, nullcontext)
    mix = kind == "unet_mix"
    cfg = TrainConfig(mode="unet", data="-", out="-", l1=1, perceptual=0.3 if mix else 0, ssim=1 if mix else 0)
    losses = LossModules(PerceptualLoss(pretrained=False) if mix else None)
    return lambda: unet_step(g, opt_g, batch, losses, cfg, nullcontext)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "resnet34"])
    parser.add_argument("--kinds", nargs="+", default=["unet_l1", "unet_mix", "gan"])
    args = parser.parse_args()

    peak = matmul_flops_per_s()
    results = []
    for encoder in args.encoders:
        for size in args.sizes:
            for kind in args.kinds:
                step = make_step(kind, encoder, size, args.bs)
                step()  # warm-up: allocator, first-call overheads
                with FlopCounterMode(display=False) as counter:
                    step()
                flops = counter.get_total_flops()
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                seconds = (time.perf_counter() - start) / args.steps
                results.append({
                    "step": kind, "encoder": encoder, "size": size, "batch": args.bs,
                    "seconds_per_step": round(seconds, 4),
                    "samples_per_s": round(args.bs / seconds, 2),
                    "gflop_per_step": round(flops / 1e9, 2),
                    "fraction_of_matmul_peak": round(flops / seconds / peak, 3),
                })
                print(json.dumps(results[-1]), flush=True, file=__import__("sys").stderr)
    print(json.dumps({
        "note": (
            "fraction_of_matmul_peak counts a step's FLOPs as direct convolutions and matmuls; oneDNN "
            "runs many 3x3 convolutions with fewer arithmetic operations (Winograd) and above the sgemm "
            "rate, so values above 1 mean 'faster than the machine's matmul', not a measurement error"
        ),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "matmul_gflop_per_s": round(peak / 1e9, 1), "torch": torch.__version__},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
