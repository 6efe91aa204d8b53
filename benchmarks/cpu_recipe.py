"""The CPU training recipe of the default models, measured setting by setting on this machine.

The default models: a resnet18 UNet at 256x192 (H x W), trained with L1 + SSIM + alpha
(``unet_ssim``) or as the pix2pix GAN (``gan``); no VGG term. Sections (``--sections``):

  threads   whole processes, alternating: 1 thread; 2 threads as libgomp starts by default
            (idle threads spin-wait); 2 threads with OMP_WAIT_POLICY=PASSIVE (idle threads sleep);
            2 threads spinning briefly, then sleeping (GOMP_SPINCOUNT=10000).
            The wait policy is read when torch loads, so each variant is its own process.
  layout    contiguous (NCHW) against channels_last networks and batches, in one process, alternating
  batch     samples/s at batch 8, 16 and 32, alternating
  compile   ``torch.compile`` of the networks: the extra seconds of the first steps (compilation),
            the compiled step against the eager one, and the break-even: the training time after
            which compiling has paid for itself
  data      the prepared cache of a synthetic data set (`make-sample-data`, `downsample`,
            `prepare` at 256x192): a uint8 batch out of the memory map, to float, the paired
            augmentation on the CPU (`BatchAugment`): seconds per batch, against the step

Each figure is the median over rounds in which the variants alternate, with the best round;
the JSON also gives the load average before and after (the machine may be shared: compare
within a section, not across runs). Uses benchmarks/train_step.py's cases.

    python benchmarks/cpu_recipe.py                          # all sections, about 30 min on 2 busy cores
    python benchmarks/cpu_recipe.py --sections layout batch --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step as ts  # noqa: E402

SIZE = (256, 192)
KINDS = ("unet_ssim", "gan")
SECTIONS = ("threads", "layout", "batch", "compile", "data")


def _with_threads(step, threads: int):
    def run():
        torch.set_num_threads(threads)
        return step()

    return run


def _summary(times: dict, bs: dict[str, int]) -> dict:
    return {k: ts.summarise(v, bs[k], None, 1.0) for k, v in times.items()}


def section_threads(args) -> dict:
    """Each variant in its own process (the wait policy is fixed when torch loads)."""
    variants = {
        "threads_1": ({}, 1),
        "threads_2_spin": ({"OMP_WAIT_POLICY": "ACTIVE"}, 2),
        "threads_2_passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),
        # libgomp's default policy with a short spin (GOMP_SPINCOUNT) before sleeping
        "threads_2_short_spin": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"}, 2),
    }
    out = {}
    for kind in args.kinds:
        runs = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (env, threads) in variants.items():
                cmd = [sys.executable, __file__, "--one-process", kind, str(threads), str(args.bs), str(args.steps)]
                done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(done.stderr[-3000:])
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"threads {kind} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
        out[kind] = {
            name: {
                "samples_per_s": {"median": round(statistics.median(r["samples_per_s"] for r in rs), 3),
                                  "best": round(max(r["samples_per_s"] for r in rs), 3)},
                "cpu_seconds_per_step": round(statistics.median(r["cpu_seconds_per_step"] for r in rs), 3),
            }
            for name, rs in runs.items()
        }
    return out


def one_process(kind: str, threads: int, bs: int, steps: int) -> None:
    """``--one-process``: warm-up + ``steps`` steps of ``kind``, one JSON line."""
    torch.set_num_threads(threads)
    step = ts.make_case(kind, ts.make_batch(bs, SIZE), "resnet18")
    step()
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(json.dumps({"samples_per_s": bs / statistics.median(walls), "cpu_seconds_per_step": statistics.median(cpus)}))


def section_layout(args) -> dict:
    out = {}
    for kind in args.kinds:
        steps = {
            "contiguous": ts.make_case(kind, ts.make_batch(args.bs, SIZE), "resnet18"),
            "channels_last": ts.make_case(kind, ts.make_batch(args.bs, SIZE, True), "resnet18", True),
        }
        times = ts.run_rounds(steps, rounds=args.rounds, n=args.steps, warmup=1, log=_log)
        out[kind] = _summary(times, dict.fromkeys(steps, args.bs)) | {
            "channels_last_over_contiguous": round(statistics.median(times["contiguous"]["wall"]) / statistics.median(times["channels_last"]["wall"]), 3)
        }
    return out


def section_batch(args) -> dict:
    out = {}
    cl = args.channels_last
    for kind in args.kinds:
        sizes = {f"bs_{b}": b for b in args.batches}
        steps = {name: ts.make_case(kind, ts.make_batch(b, SIZE, cl), "resnet18", cl) for name, b in sizes.items()}
        times = ts.run_rounds(steps, rounds=args.rounds, n=max(1, args.steps // 2), warmup=1, log=_log)
        out[kind] = _summary(times, sizes)
    return out


def section_compile(args) -> dict:
    """Eager and compiled steps of the same case, alternating after compilation."""
    out = {}
    cl = args.channels_last
    for kind in args.kinds:
        eager = ts.make_case(kind, ts.make_batch(args.bs, SIZE, cl), "resnet18", cl)
        compiled_step = ts.make_case(kind, ts.make_batch(args.bs, SIZE, cl), "resnet18", cl, compile=True)
        eager()  # warm
        t = time.perf_counter()
        eager()
        eager_first = time.perf_counter() - t
        t = time.perf_counter()
        compiled_step()  # compiles
        compiled_step()  # recompiles (D's requires_grad toggle, the second shape of a graph), if any
        first_two = time.perf_counter() - t
        times = ts.run_rounds({"eager": eager, "compiled": compiled_step}, rounds=args.rounds, n=args.steps, warmup=0, log=_log)
        e, c = statistics.median(times["eager"]["wall"]), statistics.median(times["compiled"]["wall"])
        compile_s = first_two - 2 * c
        gain = e - c
        out[kind] = _summary(times, {"eager": args.bs, "compiled": args.bs}) | {
            "compile_seconds": round(compile_s, 1),
            "eager_step_before_compiling": round(eager_first, 3),
            "speedup": round(e / c, 3),
            "break_even_steps": round(compile_s / gain) if gain > 0 else None,
            "break_even_minutes_of_eager_training": round(compile_s / gain * e / 60, 1) if gain > 0 else None,
        }
    return out


def section_data(args) -> dict:
    from clothes_extractor.config import PreprocessConfig
    from clothes_extractor.data.downsample import downsample
    from clothes_extractor.data.gpu_augment import BatchAugment
    from clothes_extractor.data.prepared import batch_loader, batch_to_device, open_prepared, prepare_dataset
    from clothes_extractor.data.synthetic import make_sample_data
    from clothes_extractor.data.transforms import AugmentConfig

    with tempfile.TemporaryDirectory(prefix="bench-cpu-recipe-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        make_sample_data(tmp / "full", samples=args.samples, seed=0, test_fraction=0)
        downsample(tmp / "full" / "train", tmp / "ds" / "train", size=256, progress=False)
        pre = PreprocessConfig(size=SIZE)
        prepare_dataset(tmp / "ds", split="train", preprocess=pre, progress=False)
        ds = open_prepared(tmp / "ds", "train", None, pre)
        aug = BatchAugment(AugmentConfig(), pre.background)
        out = {}
        for bs in args.batches:
            def one_epoch(augment: bool) -> tuple[int, float]:
                n, start = 0, time.perf_counter()
                for raw in batch_loader(ds, bs, shuffle=True, generator=torch.Generator().manual_seed(0)):
                    b = batch_to_device(raw, "cpu", channels_last=args.channels_last)
                    if augment:
                        aug(b["input"], b["target"], b["alpha"])
                    n += b["input"].shape[0]
                return n, time.perf_counter() - start

            one_epoch(True)  # page cache
            plain = [one_epoch(False) for _ in range(args.rounds)]
            augmented = [one_epoch(True) for _ in range(args.rounds)]
            per_batch = lambda runs: statistics.median(s / n * bs for n, s in runs)  # noqa: E731
            out[f"bs_{bs}"] = {"seconds_per_batch_cache_to_float": round(per_batch(plain), 4),
                               "seconds_per_batch_with_cpu_augment": round(per_batch(augmented), 4)}
        return {"samples": len(ds), "size": list(SIZE), "per_batch": out}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one-process":
        kind, threads, bs, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        return one_process(kind, threads, bs, steps)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=ts.CASES)
    parser.add_argument("--bs", type=int, default=8, help="batch of the threads, layout and compile sections")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true", help="batch, compile and data sections in channels_last")
    parser.add_argument("--samples", type=int, default=64, help="synthetic samples of the data section")
    parser.add_argument("--workdir", type=Path, default=None, help="where the data section's files go (not /tmp on slow machines)")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    started = time.perf_counter()
    peak = ts.matmul_flops_per_s()
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()} | {
        "size": list(SIZE), "encoder": "resnet18", "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}}}
    sections = {"threads": section_threads, "layout": section_layout, "batch": section_batch,
                 "compile": section_compile, "data": section_data}
    for name in args.sections:
        result[name] = sections[name](args)
        _log(f"{name}: {json.dumps(result[name])}")
    result["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__,
                         "matmul_gflop_per_s": round(max(peak, ts.matmul_flops_per_s()) / 1e9, 1),
                         "load_average_1min": {"before": round(load, 2), "after": round(os.getloadavg()[0], 2)},
                         "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
