"""Training-step throughput, side by side with the original project's steps, in one run.

Each case is one optimiser step on one fixed random batch (compute only: loading is
benchmarks/loader.py's job). Ours are the library's steps (`clothes_extractor.train.steps`)
exactly as the training loop calls them; the original project's two steps are small
re-implementations of its trainers, with the same smp UNet:

  original_unet  the original's UNet step: smp Unet (3 classes, scSE), L1 + 0.3 x VGG16 perceptual
                 (the sum over relu1_2, relu2_2, relu3_3, relu4_3 of the feature L1, prediction and
                 target through VGG one after the other, the target without a graph, torchvision's
                 in-place ReLUs, the bilinear resize to 224) + (1 - SSIM) (torchmetrics' SSIM when
                 installed, else kornia's), on images mapped to [0, 1]
  unet_mix       ours with those terms: L1 + 0.3 x perceptual + SSIM (alpha off: the original has none)
  original_gan   the original's cGAN step: D(real); a generator forward, detached; D(fake); D's step;
                 a second generator forward; D; BCE + 250 x L1 in the generator's loss; VGG
                 perceptual and SSIM of the prediction for its logs (on the graph, not in the
                 backward). Its discriminator: 5 strided 4x4 convolutions (8 to 40 channels) to one
                 sigmoid score per image, on inputs resized to 224. (Its phase-1 UNet, which fed a
                 second input to its generator, is left out: the baseline is the cheaper for it.)
  gan_terms      ours with the original's losses: `gan_step` (one generator forward, the 70x70
                 PatchGAN, lambda x L1 + adversarial; alpha off, no perceptual or SSIM term)
  gan_logged     (not run by default) gan_terms plus the original's log values, VGG perceptual and
                 SSIM of the prediction, computed without a graph
  gan            ours, `train-gan`'s defaults: lambda 100 x L1 + adversarial + alpha
  unet_l1        ours, L1 + alpha
  unet_ssim      ours, the CPU recipe of the default models: L1 + SSIM + alpha

The cases run in rounds; in each round every case runs ``--steps`` timed steps (after
``--warmup`` untimed ones in the first round), one case after the other, the original next to
ours: machine-speed drift hits both alike. Per case: the median and the best round (samples/s,
seconds and CPU seconds per step), the FLOPs of a step (forward and backward, all networks,
counted once with torch.utils.flop_counter) and the fraction of the machine's fp32 matmul rate
that the step reaches (the matmul rate is measured at the start and the end; the higher
counts). Ratios: ours over the original, from the medians and round by round. VGG16 and the
encoders have random weights (nothing is downloaded; speed does not depend on weight values).

On a GPU (``--device cuda``): networks and batches on the GPU; our steps under the training
loop's own CUDA settings (`train.distributed.device_settings`: bf16 autocast for the networks,
losses in fp32, channels_last, cudnn.benchmark, fused Adam as `train-*` builds it), the
original's steps as the original ran them (fp32, contiguous tensors, torch's defaults:
cudnn.benchmark off, switched per case). ``torch.cuda.synchronize()`` only at the
timed boundaries (before a round's first step and after its last), never inside a step. The
matmul rate is the GPU's, in fp32 and bf16; a case's fraction is of the rate of its own
precision (bf16 for ours, fp32 for the original's). The JSON names the GPU.

    python benchmarks/train_step.py                                  # the table of issue 10
    python benchmarks/train_step.py --cases unet_l1 unet_ssim gan --size 256x192 --bs 16
    python benchmarks/train_step.py --device cuda --bs 32            # the same table on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from clothes_extractor.losses import PerceptualLoss, perceptual_loss, ssim_loss
from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
from clothes_extractor.models.generator import GeneratorConfig, build_generator
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.steps import Batch, LossModules, gan_step, unet_step
from clothes_extractor.train.task import optimizer

# (ours, the original's) pairs whose ratio the issue asks for, with the goal.
RATIOS = {
    "unet_mix / original_unet": ("unet_mix", "original_unet", 1.3),
    "gan_terms / original_gan": ("gan_terms", "original_gan", 1.5),
    "gan / original_gan": ("gan", "original_gan", None),
    "gan_logged / original_gan": ("gan_logged", "original_gan", None),
}
CASES = ("original_unet", "unet_mix", "original_gan", "gan_terms", "gan", "unet_l1", "unet_ssim", "gan_logged")
DEFAULT_CASES = ("original_unet", "unet_mix", "original_gan", "gan_terms", "gan", "unet_l1", "unet_ssim")


def matmul_flops_per_s(sizes=(1024, 2048), trials: int = 5, device=None, dtype=torch.float32) -> float:
    """The machine's matmul rate: the best of a few sizes and trials (FLOP/s); fp32 on the CPU
    unless ``device``/``dtype`` say otherwise (on CUDA: synchronised around each product)."""
    sync = torch.cuda.synchronize if device is not None and torch.device(device).type == "cuda" else (lambda: None)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        a @ b  # warm-up
        sync()
        for _ in range(trials):
            start = time.perf_counter()
            a @ b
            sync()
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w or h)


# --- the original project's steps, re-implemented ------------------------------------------------


class OriginalVGGPerceptual(nn.Module):
    """The original's perceptual loss: four VGG16 blocks (in-place ReLUs, as torchvision builds
    them), frozen; inputs in [0, 1] normalised with ImageNet statistics and resized to 224;
    prediction and target through each block in turn; the four L1s summed."""

    def __init__(self) -> None:
        super().__init__()
        from clothes_extractor.weights import vgg16_features

        features = vgg16_features(False)
        self.blocks = nn.ModuleList([features[:4], features[4:9], features[9:16], features[16:23]]).eval()
        self.blocks.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((x - self.mean) / self.std, mode="bilinear", size=(224, 224), align_corners=False)
        y = F.interpolate((y - self.mean) / self.std, mode="bilinear", size=(224, 224), align_corners=False)
        loss = 0.0
        for block in self.blocks:
            x, y = block(x), block(y)
            loss = loss + F.l1_loss(x, y)
        return loss


class OriginalDiscriminator(nn.Module):
    """The original's discriminator: strided 4x4 convolutions (8, 16, 24, 40, 40 channels) down
    to 7x7, a 7x7 convolution to one sigmoid score per image; inputs resized to 224."""

    def __init__(self, in_channels: int = 6, ndf: int = 8) -> None:
        super().__init__()

        def down(cin: int, cout: int, norm: bool) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), *([nn.BatchNorm2d(cout)] if norm else []), nn.LeakyReLU(0.2, True)]

        self.main = nn.Sequential(
            *down(in_channels, ndf, False), *down(ndf, ndf * 2, False), *down(ndf * 2, ndf * 3, True),
            *down(ndf * 3, ndf * 5, True), *down(ndf * 5, ndf * 5, True), nn.Conv2d(ndf * 5, 1, 7, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if condition.shape[-2:] != (224, 224):
            condition = F.interpolate(condition, size=(224, 224), mode="bilinear", align_corners=True)
            image = F.interpolate(image, size=(224, 224), mode="bilinear", align_corners=True)
        return self.main(torch.cat([condition, image], dim=1))


def original_ssim(device=None):
    """1 - SSIM on [0, 1] images: torchmetrics' module as the original used it, else kornia's."""
    try:
        from torchmetrics.image import StructuralSimilarityIndexMeasure
    except ImportError:
        import kornia

        return "kornia", lambda x, y: 1.0 - kornia.metrics.ssim(x, y, 11, max_val=1.0).mean()
    metric = StructuralSimilarityIndexMeasure(data_range=1.0)
    if device is not None:
        metric = metric.to(device)
    return "torchmetrics", lambda x, y: metric.data_range - metric(x, y)


def original_generator(encoder: str) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder_name=encoder, encoder_weights=None, decoder_attention_type="scse", in_channels=3, classes=3)


def make_original_unet(batch: Batch, encoder: str, device=None):
    g = original_generator(encoder).to(device)
    opt = torch.optim.Adam(g.parameters(), lr=3e-4)
    vgg = OriginalVGGPerceptual().to(device)
    _, ssim = original_ssim(device)

    def step():
        opt.zero_grad()
        out = (g(batch.input) + 1) / 2
        target = (batch.target + 1) / 2
        loss = F.l1_loss(out, target) + 0.3 * vgg(out, target) + ssim(out, target)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def make_original_gan(batch: Batch, encoder: str, device=None):
    g, d = original_generator(encoder).to(device), OriginalDiscriminator().to(device)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), lr=2e-4), torch.optim.Adam(d.parameters(), lr=2e-4)
    vgg = OriginalVGGPerceptual().to(device)
    _, ssim = original_ssim(device)
    bce = nn.BCELoss()
    source, target = batch.input, batch.target

    def step():
        d.zero_grad()
        output = d(source, target).squeeze()
        err_d = bce(output, torch.ones_like(output))
        pred = g(source).detach()  # forward 1 (recorded, then detached)
        output = d(source, pred).squeeze()
        err_d = (err_d + bce(output, torch.zeros_like(output))) * 0.5
        err_d.backward()
        opt_d.step()
        g.zero_grad()
        pred = g(source)  # forward 2
        output = d(source, pred).squeeze()
        err_g = bce(output, torch.ones_like(output))
        loss = 250 * F.l1_loss(pred, target) + err_g
        out01, target01 = (pred + 1) / 2, (target + 1) / 2
        perceptual = 0.3 * vgg(out01, target01)  # for the log only
        ssim_value = 1.0 - ssim(out01, target01)  # for the log only (the original's data_range - ssim)
        loss.backward()
        opt_g.step()
        return torch.stack([loss.detach(), err_d.detach(), perceptual.detach(), ssim_value.detach()])

    return step


# --- ours ----------------------------------------------------------------------------------------


def _cfg(mode: str, **weights) -> TrainConfig:
    return TrainConfig(mode=mode, data="-", out="-", vgg_weights=None, encoder_weights=None, **weights)


def make_ours(kind: str, batch: Batch, encoder: str, channels_last: bool = False, compile: bool = False,
              device=None, autocast=nullcontext):
    """Our step ``kind``; ``compile``: the networks through torch.compile, as `--compile` does;
    ``device``, ``autocast``: where and how the training loop runs it (default: the CPU's fp32)."""
    fmt = torch.channels_last if channels_last else torch.preserve_format
    wrap = torch.compile if compile else (lambda m: m)
    raw_g = build_generator(GeneratorConfig(encoder=encoder)).to(device, memory_format=fmt)
    g = wrap(raw_g)
    if kind in ("unet_mix", "unet_l1", "unet_ssim"):
        cfg = {
            "unet_mix": _cfg("unet", l1=1, perceptual=0.3, ssim=1, alpha=0),
            "unet_l1": _cfg("unet", l1=1, perceptual=0, ssim=0, alpha=1),
            "unet_ssim": _cfg("unet", l1=1, perceptual=0, ssim=1, alpha=1),
        }[kind]
        losses = LossModules.build(cfg).to(device)
        if compile:
            losses.compile_networks()
        opt = optimizer(torch.optim.Adam, raw_g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        return lambda: unet_step(g, opt, batch, losses, cfg, autocast)
    if kind in ("gan_terms", "gan_logged"):
        cfg = _cfg("gan", l1=100, perceptual=0, ssim=0, alpha=0, beta1=0.5, lr=2e-4)
    elif kind == "gan":
        cfg = _cfg("gan", l1=100, perceptual=0, ssim=0, alpha=1, beta1=0.5, lr=2e-4)
    else:
        raise SystemExit(f"unknown case {kind!r}; choose from {', '.join(CASES)}")
    raw_d = build_discriminator(DiscriminatorConfig()).to(device, memory_format=fmt)
    d = wrap(raw_d)
    opt_g = optimizer(torch.optim.Adam, raw_g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = optimizer(torch.optim.Adam, raw_d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, 0.999))
    losses = LossModules.build(cfg).to(device)
    if kind in ("gan", "gan_terms"):
        return lambda: gan_step(g, d, opt_g, opt_d, batch, losses, cfg, autocast)

    vgg = PerceptualLoss(pretrained=False).to(device)
    seen = {}
    raw_g.register_forward_hook(lambda m, args, out: seen.__setitem__("rgb", out.rgb))

    def step():
        terms = gan_step(g, d, opt_g, opt_d, batch, losses, cfg, autocast)
        with torch.no_grad():  # what the original logs, without its graph
            terms["perceptual"] = perceptual_loss(seen["rgb"].float(), batch.target, vgg.vgg)
            terms["ssim_loss"] = ssim_loss(seen["rgb"].float(), batch.target)
        return terms

    return step


def make_case(kind: str, batch: Batch, encoder: str, channels_last: bool = False, compile: bool = False,
              device=None, autocast=nullcontext):
    if kind == "original_unet":
        return make_original_unet(batch, encoder, device)
    if kind == "original_gan":
        return make_original_gan(batch, encoder, device)
    return make_ours(kind, batch, encoder, channels_last, compile, device, autocast)


def is_original(kind: str) -> bool:
    return kind.startswith("original_")


def with_cudnn_benchmark(step, on: bool):
    """``step`` with cudnn.benchmark set as its side runs: on for ours (as `train-*` sets it on
    CUDA), off for the original's (torch's default). A flag read by each convolution call."""

    def run():
        torch.backends.cudnn.benchmark = on
        return step()

    return run


def cuda_cases(args, device: torch.device) -> tuple[dict, dict[str, str]]:
    """The cases on CUDA: ours under the training loop's settings, the original's in fp32.
    Returns the steps and, per case, the precision it computes in."""
    from clothes_extractor.train.distributed import device_settings

    channels_last, autocast, _ = device_settings(device, _cfg("gan"))  # what `train-*` uses on CUDA

    def on_device(batch: Batch, fmt) -> Batch:
        return Batch(*(t.to(device, memory_format=fmt) for t in batch))

    ours_fmt = torch.channels_last if channels_last else torch.contiguous_format
    ours_batch = on_device(make_batch(args.bs, args.size), ours_fmt)
    original_batch = on_device(make_batch(args.bs, args.size), torch.contiguous_format)
    steps, precision = {}, {}
    for kind in args.cases:
        if is_original(kind):
            step = make_case(kind, original_batch, args.encoder, device=device)
            steps[kind], precision[kind] = with_cudnn_benchmark(step, False), "fp32"
        else:
            step = make_case(kind, ours_batch, args.encoder, channels_last, args.compile, device, autocast)
            steps[kind], precision[kind] = with_cudnn_benchmark(step, True), "bf16"
    return steps, precision


def make_batch(bs: int, size: tuple[int, int], channels_last: bool = False) -> Batch:
    g = torch.Generator().manual_seed(0)
    h, w = size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = (torch.rand(bs, 3, h, w, generator=g) * 2 - 1).contiguous(memory_format=fmt)
    y = (torch.rand(bs, 3, h, w, generator=g) * 2 - 1).contiguous(memory_format=fmt)
    a = (torch.rand(bs, 1, h, w, generator=g) > 0.5).float().contiguous(memory_format=fmt)
    return Batch(x, y, a)


def count_flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def run_rounds(steps: dict, *, rounds: int, n: int, warmup: int, log=None, sync=None) -> dict[str, dict[str, list[float]]]:
    """Alternate the cases: per round, each case runs ``n`` timed steps. Wall and CPU seconds per step.
    ``sync`` (CUDA: torch.cuda.synchronize): called before a case's first timed step and after its
    last, so the clock sees the queued GPU work; never inside a step."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {k: {"wall": [], "cpu": []} for k in steps}
    for r in range(rounds):
        for name, step in steps.items():
            if sync:
                sync()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                step()
            if sync:
                sync()
            times[name]["wall"].append((time.perf_counter() - wall) / n)
            times[name]["cpu"].append((time.process_time() - cpu) / n)
            if log:
                log(f"round {r + 1}/{rounds} {name}: {times[name]['wall'][-1]:.3f} s/step")
    return times


def summarise(times: dict[str, list[float]], bs: int, flops: int | None, peak: float) -> dict:
    med, best = statistics.median(times["wall"]), min(times["wall"])
    out = {
        "samples_per_s": {"median": round(bs / med, 3), "best": round(bs / best, 3)},
        "seconds_per_step": {"median": round(med, 3), "best": round(best, 3), "rounds": [round(t, 3) for t in times["wall"]]},
        "cpu_seconds_per_step": {"median": round(statistics.median(times["cpu"]), 3)},
    }
    if flops is not None:
        out["gflop_per_step"] = round(flops / 1e9, 2)
        out["fraction_of_matmul_rate"] = {"median": round(flops / med / peak, 3), "best": round(flops / best / peak, 3)}
    return out


def ratios(times: dict, pairs: dict = RATIOS) -> dict:
    out = {}
    for label, (ours, original, goal) in pairs.items():
        if ours not in times or original not in times:
            continue
        a, b = times[ours]["wall"], times[original]["wall"]
        value = statistics.median(b) / statistics.median(a)  # samples/s ratio = inverse time ratio
        out[label] = {
            "ratio": round(value, 2),
            "by_round": [round(y / x, 2) for x, y in zip(a, b)],
            "cpu_ratio": round(statistics.median(times[original]["cpu"]) / statistics.median(times[ours]["cpu"]), 2),
        }
        if goal is not None:
            out[label] |= {"goal": goal, "met": value >= goal}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bs", type=int, default=8)
    parser.add_argument("--size", type=parse_size, default=(224, 224), help="an int or HxW")
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per case, before the first round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), choices=CASES)
    parser.add_argument("--channels-last", action="store_true", help="our networks and batch in channels_last")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (one extra step per case)")
    parser.add_argument("--compile", action="store_true",
                        help="our cases as `--compile` runs them: torch.compile of the networks and of the "
                             "perceptual loss's VGG (the originals stay eager, as the original project runs); "
                             "compilation happens in the warm-up steps; implies --no-flops")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: networks and batches on the GPU, ours under the training loop's CUDA settings "
                             "(bf16 autocast, channels_last, cudnn.benchmark), the original's in fp32; "
                             "--channels-last is then implied for ours")
    args = parser.parse_args()
    if args.device == "cuda":
        return main_cuda(args)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    load_before = os.getloadavg()[0]
    peak = matmul_flops_per_s()
    batch = make_batch(args.bs, args.size, args.channels_last)
    steps = {kind: make_case(kind, batch, args.encoder, args.channels_last, args.compile) for kind in args.cases}
    flops = {kind: None if args.no_flops or args.compile else count_flops(step) for kind, step in steps.items()}
    started = time.perf_counter()
    times = run_rounds(steps, rounds=args.rounds, n=args.steps, warmup=args.warmup, log=log)
    peak = max(peak, matmul_flops_per_s())
    print(json.dumps({
        "settings": {"batch": args.bs, "size": list(args.size), "encoder": args.encoder, "threads": args.threads,
                     "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
                     "channels_last": args.channels_last, "compile": args.compile, "original_ssim": original_ssim()[0],
                     "weights": "random (VGG16 and encoders)",
                     "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}},
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "matmul_gflop_per_s": round(peak / 1e9, 1), "torch": torch.__version__,
                    "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
                    "seconds": round(time.perf_counter() - started, 1)},
        "cases": {k: summarise(times[k], args.bs, flops[k], peak) for k in args.cases},
        "ratios": ratios(times),
        "note": (
            "ratio: ours / the original in samples/s, from the median seconds per step (by_round: each round's "
            "pair; cpu_ratio: from CPU seconds, steadier on a shared machine). fraction_of_matmul_rate counts a "
            "step's FLOPs as direct convolutions and matmuls; oneDNN runs many 3x3 convolutions with fewer "
            "operations (Winograd), so a value above 1 means 'faster than the machine's matmul'."
        ),
    }, indent=2))


def main_cuda(args) -> None:
    """The same cases and rounds on the GPU; see the module docstring."""
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU: --device cuda needs one"}))
        sys.exit(1)
    device = torch.device("cuda")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    sizes = (4096, 8192)
    peaks = {p: matmul_flops_per_s(sizes, device=device, dtype=dt) for p, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    steps, precision = cuda_cases(args, device)
    flops = {kind: None if args.no_flops or args.compile else count_flops(step) for kind, step in steps.items()}
    torch.cuda.synchronize()
    started = time.perf_counter()
    times = run_rounds(steps, rounds=args.rounds, n=args.steps, warmup=args.warmup, log=log, sync=torch.cuda.synchronize)
    for p, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peaks[p] = max(peaks[p], matmul_flops_per_s(sizes, device=device, dtype=dt))
    cases = {}
    for k in args.cases:
        cases[k] = summarise(times[k], args.bs, flops[k], peaks[precision[k]])
        cases[k]["precision"] = precision[k]
    print(json.dumps({
        "settings": {"device": "cuda", "batch": args.bs, "size": list(args.size), "encoder": args.encoder,
                     "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
                     "ours": "the training loop's CUDA settings: bf16 autocast (losses fp32), channels_last, "
                             "cudnn.benchmark on, fused Adam" + (", torch.compile" if args.compile else ""),
                     "original": "fp32, contiguous, cudnn.benchmark off (torch's defaults), torch.optim.Adam",
                     "compile": args.compile, "original_ssim": original_ssim()[0],
                     "weights": "random (VGG16 and encoders)"},
        "machine": {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda, "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "matmul_gflop_per_s": {p: round(v / 1e9, 1) for p, v in peaks.items()},
                    "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
                    "seconds": round(time.perf_counter() - started, 1)},
        "cases": cases,
        "ratios": ratios(times),
        "note": (
            "ratio: ours / the original in samples/s, from the median seconds per step (by_round: each round's "
            "pair), each case timed between torch.cuda.synchronize() calls around its steps. Ours compute in bf16 "
            "(autocast), the original's in fp32 (cuDNN convolutions in TF32, torch's default): "
            "fraction_of_matmul_rate is of the GPU's matmul rate in the case's own precision (the 'precision' key). "
            "cpu_seconds_per_step: the host's time launching the kernels."
        ),
    }, indent=2))


if __name__ == "__main__":
    main()
