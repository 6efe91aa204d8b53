"""Every GPU measurement of issue 20 in one command, within a time budget; prints ONE JSON object.

Parts, in this order (the issue's four targets first), each a subprocess of the real CLI or of
a benchmark script:

  train_gan_224           `train-gan --size 224 --encoder resnet18 --encoder-weights none`, the
                          device's default batch size (32 on CUDA)            target >= 3,000 images/s
  default_recipe_256x192  the default generator's recipe (scripts/train_default_models.sh):
                          `train-gan --size 256x192 --framing fill --encoder resnet18
                          --encoder-weights none --perceptual 0 --ssim 10 --alpha 10 --augment`
                          (lambda-L1 100, the default)                         target >= 2,500 images/s
  extract_with_masks      `extract --images DIR --masks DIR -o OUT`, N 768x1024 JPEGs (default
                          model: the built-in generator)                      target >= 300 photos/s
  extract_without_masks   `extract --images DIR -o OUT` (the built-in segmenter first)
                                                                              target >= 150 photos/s
  train_step              `benchmarks/train_step.py --device DEV --bs 32`: the original's steps
                          beside ours (embedded JSON)
  cuda_path               `benchmarks/cuda_path.py --no-compile` (compute only; embedded JSON)
  train_gan_224_bs128     train_gan_224 at `--bs 128`, last: only if time is left (not with --quick)

Data (never written into the folders given; everything goes to a scratch folder, removed at
the end unless --keep):
  training   --data DIR (VITON or VITON-HD layout, e.g. a copy of ../shared/data/viton-2018):
             its train/ entries symlinked into the scratch folder; else `make-sample-data
             --layout viton` (192x256) samples replicated by symlinks to --train-samples. Then
             `split` (seed 42), a validation list of the first --val-samples validation ids
             (small: the epoch's seconds include validation), and `prepare` at each size and
             framing; training reads that cache (`--prepared on`, augmentation on the device).
  photos     --photos DIR (a folder of photos, or a VITON-HD split folder: image/ and
             image-parse-v3/; masks from --masks or image-parse-v3/), else `make-sample-data`
             (VITON-HD, 768x1024 JPEGs and their parse maps); cycled by symlinks to N photos.

How the figures are computed:
  images/s   from the run's own metrics.jsonl (one line per epoch: "step", "seconds" from the
             epoch's start to the end of its validation): (steps in epochs 2..E x batch) / (their
             seconds); the first epoch (cuDNN autotuning, allocator warm-up) is left out. Also
             given: per epoch, and for the whole command (all images / its wall time, start-up
             and data checks included).
  photos/s   folder mode timed twice: a run on the first k photos (k = one batch, 8) and the run
             on all N. photos_per_s = (N - k) / (wall_N - wall_k): start-up, model loads and the
             first batch's warm-up cancel out. Also given: N / the seconds `extract` itself
             reports (its folder run, model load excluded; 0.1 s resolution) and N / the whole
             command's wall time. Should the difference not be positive (a noisy machine, tiny N),
             photos_per_s falls back to the reported seconds ("method" says which).

Budget: --budget-s (default 450, under the issue's 8 minutes). A part starts only when the
budget left covers its usual length, and every subprocess is stopped when the budget runs out;
a part skipped or stopped is named in "skipped" with the reason. `--device cpu --quick` runs
everything tiny (a few steps at 64 px, a handful of photos) as a smoke test on a CPU.

    python benchmarks/gpu_all.py                                   # on a GPU box, synthetic data
    python benchmarks/gpu_all.py --data ../shared/data/viton-2018 --photos ../shared/data/viton-hd-samples/test
    python benchmarks/gpu_all.py --device cpu --quick              # smoke test, about a minute
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "clothes_extractor"]
PHOTO_EXTS = (".jpg", ".jpeg", ".png")

TARGETS = {  # issue 20, on one NVIDIA H200
    "train_gan_224": ("images_per_s", 3000),
    "default_recipe_256x192": ("images_per_s", 2500),
    "extract_with_masks": ("photos_per_s", 300),
    "extract_without_masks": ("photos_per_s", 150),
}
# Seconds a part usually needs on an H200 (start-up included): it starts only if the budget left covers it.
NEEDS = {"train_data": 40, "photos": 10, "train": 40, "extract": 25, "train_step": 60, "cuda_path": 60}
NEEDS_QUICK = {k: 1 for k in NEEDS}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.started = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()


class OutOfBudget(Exception):
    pass


def run(cmd: list, budget: Budget, *, log) -> dict:
    """Run ``cmd`` (its own process group), stopped when the budget runs out. Wall time, output."""
    cmd = [str(c) for c in cmd]
    log("$ " + shlex.join(cmd))
    timeout = budget.left()
    if timeout <= 1:
        raise OutOfBudget(f"no budget left for: {shlex.join(cmd[:6])}")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers: the group started here
        proc.communicate()
        raise OutOfBudget(f"stopped at the budget after {time.perf_counter() - start:.0f} s: {shlex.join(cmd[:6])}") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-5:]
        raise RuntimeError(f"exit {proc.returncode}: {shlex.join(cmd)}: " + " | ".join(tail))
    return {"wall_s": wall, "stdout": out, "stderr": err, "command": shlex.join(cmd)}


# --- data ----------------------------------------------------------------------------------------


def replicate(files: list[Path], dst: Path, n: int, rename) -> list[Path]:
    """Symlinks ``dst/<rename(copy, file)>`` to ``files`` cycled to ``n`` links."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = files[i % len(files)]
        link = dst / rename(i // len(files), src)
        link.symlink_to(src.resolve())
        out.append(link)
    return out


def synthetic_train_split(work: Path, n_train: int, base: int, budget: Budget, log) -> Path:
    """VITON (2018) layout, ``base`` generated samples replicated to ``n_train`` by symlinks."""
    src = work / "base-viton"
    run([*CLI, "make-sample-data", src, "--layout", "viton", "--samples", base, "--seed", "0"], budget, log=log)
    split = work / "data" / "train"
    photos = sorted((src / "train" / "image").glob("*_0.jpg"))
    numbers = [p.name[: -len("_0.jpg")] for p in photos]
    copies = math.ceil(n_train / len(numbers))
    files = {"image": "{}_0.jpg", "image-parse": "{}_0.png", "cloth": "{}_1.jpg", "cloth-mask": "{}_1.jpg"}
    for folder, pattern in files.items():
        (split / folder).mkdir(parents=True)
    made = 0
    for c in range(copies):
        for number in numbers:
            if made == n_train:
                break
            for folder, pattern in files.items():
                (split / folder / pattern.format(f"{c:03d}{number}")).symlink_to((src / "train" / folder / pattern.format(number)).resolve())
            made += 1
    return work / "data"


def linked_train_split(data: Path, work: Path) -> Path:
    """The given data set's train/ entries, symlinked one by one: nothing is written into ``data``."""
    split = work / "data" / "train"
    split.mkdir(parents=True)
    source = data / "train"
    if not source.is_dir():
        raise SystemExit(f"--data {data}: no train/ folder (VITON or VITON-HD layout expected)")
    for entry in sorted(source.iterdir()):
        (split / entry.name).symlink_to(entry.resolve())
    return work / "data"


def prepare_train_data(args, work: Path, budget: Budget, log) -> dict:
    t = time.perf_counter()
    if args.data:
        root = linked_train_split(args.data, work)
        source = f"{args.data} (train/, symlinked)"
    else:
        root = synthetic_train_split(work, args.train_samples, args.base_samples, budget, log)
        source = (f"synthetic: make-sample-data --layout viton (192x256), {args.base_samples} samples, "
                  f"the train ones replicated by symlinks to {args.train_samples}")
    made_s = time.perf_counter() - t
    t = time.perf_counter()
    run([*CLI, "split", "--data", root, "--seed", "42"], budget, log=log)
    split_s = time.perf_counter() - t
    val_ids = (root / "val_ids.txt").read_text().split()
    val_small = root / "val_small.txt"
    val_small.write_text("\n".join(val_ids[: args.val_samples]) + "\n")
    n_train = len((root / "train_ids.txt").read_text().split())
    prepare_s = {}
    for size, framing in sorted({(s, f) for s, f, _ in train_runs(args)}):
        t = time.perf_counter()
        run([*CLI, "prepare", "--data", root, "--size", size, "--framing", framing,
             "--list", root / "train_ids.txt", "--list", val_small], budget, log=log)
        prepare_s[f"{size} {framing}"] = round(time.perf_counter() - t, 2)
    return {"root": root, "val_list": val_small, "info": {
        "source": source, "train_samples": n_train, "val_samples": min(len(val_ids), args.val_samples),
        "seconds": {"make": round(made_s, 2), "split": round(split_s, 2), "prepare": prepare_s},
    }}


def photo_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_EXTS and not p.stem.endswith("_mask"))


def mask_for(photo: Path, masks: Path) -> Path | None:
    for stem in (photo.stem, f"{photo.stem}_mask"):
        for ext in (".png", ".jpg", ".jpeg", ".bmp"):
            if (masks / f"{stem}{ext}").is_file():
                return masks / f"{stem}{ext}"
    return None


def prepare_photos(args, work: Path, budget: Budget, log) -> dict:
    """Folders of N and of k photos (with masks where known), symlinked."""
    t = time.perf_counter()
    if args.photos:
        images, masks = args.photos, args.masks
        if (args.photos / "image").is_dir():  # a VITON-HD split folder
            images = args.photos / "image"
            if masks is None and (args.photos / "image-parse-v3").is_dir():
                masks = args.photos / "image-parse-v3"
        photos = photo_files(images)
        source = str(images)
    else:
        src = work / "base-hd"
        run([*CLI, "make-sample-data", src, "--samples", min(args.photos_n, args.base_photos), "--seed", "1"], budget, log=log)
        photos = photo_files(src / "train" / "image") + photo_files(src / "test" / "image")
        masks = None
        source = "synthetic: make-sample-data (VITON-HD, 768x1024 JPEG, parse maps as masks)"
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")

    def mask_of(p: Path) -> Path | None:
        if args.photos:
            return mask_for(p, masks) if masks else None
        return p.parent.parent / "image-parse-v3" / f"{p.stem}.png"

    pairs = [(p, mask_of(p)) for p in photos]
    with_masks = all(m is not None for _, m in pairs)
    folders = {}
    for name, n in (("all", args.photos_n), ("first", args.k_photos)):
        base = work / f"photos-{name}"
        names = lambda c, p: f"{c:03d}_{p.stem}{p.suffix}"  # noqa: E731
        replicate([p for p, _ in pairs], base / "image", n, names)
        if with_masks:
            replicate([m for _, m in pairs], base / "mask", n, lambda c, m: f"{c:03d}_{Path(m).stem.removesuffix('_mask')}{m.suffix}")
        folders[name] = base
    from PIL import Image

    with Image.open(photos[0]) as im:
        w, h = im.size
    return {"folders": folders, "with_masks": with_masks, "info": {
        "source": source, "distinct_photos": len(photos), "n": args.photos_n, "k": args.k_photos,
        "first_photo_size": f"{w}x{h}", "masks": "yes" if with_masks else "no (the with-masks part is skipped)",
        "seconds": round(time.perf_counter() - t, 2),
    }}


# --- the parts -----------------------------------------------------------------------------------


def train_runs(args) -> list[tuple[str, str, str]]:
    """(size, framing, part) of the training parts."""
    small = "64" if args.quick else None
    return [(small or "224", "photo", "train_gan_224"), (small or "256x192", "fill", "default_recipe_256x192"),
            (small or "224", "photo", "train_gan_224_bs128")]


def train_part(name: str, args, data: dict, work: Path, budget: Budget, log) -> dict:
    size, framing = {part: (s, f) for s, f, part in train_runs(args)}[name]
    out = work / f"run-{name}"
    cmd = [*CLI, "train-gan", "--data", data["root"], "--val-list", data["val_list"], "--size", size,
           "--framing", framing, "--encoder", "resnet18", "--encoder-weights", "none", "--epochs", args.epochs,
           "--device", args.device, "--prepared", "on", "--workers", "0", "--seed", "42", "--out", out]
    if name == "default_recipe_256x192":
        cmd += ["--perceptual", "0", "--ssim", "10", "--alpha", "10", "--lambda-l1", "100", "--augment"]
    if name == "train_gan_224_bs128":
        cmd += ["--bs", 128]
    elif args.quick:
        cmd += ["--bs", args.quick_bs]
    result = run(cmd, budget, log=log)
    batch = json.loads((out / "config.json").read_text())["batch_size"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = rate_from_metrics(records, batch)
    return {
        "command": result["command"], "size": size, "framing": framing, "batch": batch, **rates,
        "images_per_s_whole_command": round(rates["steps"] * batch / result["wall_s"], 1),
        "wall_s": round(result["wall_s"], 2),
    }


def rate_from_metrics(records: list[dict], batch: int) -> dict:
    """Training images/s from metrics.jsonl's records ("step": steps so far, "seconds": the
    epoch's), the first epoch left out when there are more."""
    steps = [r["step"] for r in records]
    per_epoch = [(s - p) * batch for s, p in zip(steps, [0, *steps[:-1]])]
    seconds = [r["seconds"] for r in records]
    timed = slice(1, None) if len(records) > 1 else slice(0, None)
    return {
        "epochs": len(records), "steps": steps[-1],
        "images_per_s": round(sum(per_epoch[timed]) / sum(seconds[timed]), 1),
        "epochs_timed": f"2..{len(records)}" if len(records) > 1 else "1 (only one epoch: warm-up included)",
        "images_per_s_by_epoch": [round(i / s, 1) for i, s in zip(per_epoch, seconds)],
        "epoch_seconds": seconds,
    }


REPORTED = re.compile(r"extract: (\d+) written to .*?, (\d+) failed.*?; ([0-9.]+) s")


def extract_part(with_masks: bool, args, photos: dict, work: Path, budget: Budget, log) -> dict:
    walls, reported = {}, {}
    for name in ("first", "all"):
        folder = photos["folders"][name]
        out = work / f"out-{'masks' if with_masks else 'segmenter'}-{name}"
        cmd = [*CLI, "extract", "--images", folder / "image", "-o", out, "--device", args.device]
        if with_masks:
            cmd += ["--masks", folder / "mask"]
        result = run(cmd, budget, log=log)
        match = REPORTED.search(result["stdout"])
        n = args.photos_n if name == "all" else args.k_photos
        if not match or int(match.group(1)) != n:
            raise RuntimeError(f"extract wrote {match.group(1) if match else '?'} of {n} photos: {result['stdout'][-300:]}")
        walls[name], reported[name] = result["wall_s"], float(match.group(3))
        if name == "all":
            command = result["command"]
    n, k = args.photos_n, args.k_photos
    diff = walls["all"] - walls["first"]
    by_reported = n / max(reported["all"], 0.05)  # 0.1 s resolution: a 0.0 is under 0.05 s
    differential = (n - k) / diff if diff > 0 and n > k else None
    return {
        "command": command, "photos": n,
        "photos_per_s": round(differential if differential else by_reported, 1),
        "method": f"(N - k) / (wall_N - wall_k), k = {k}" if differential else "N / the seconds extract reports",
        "photos_per_s_differential": round(differential, 1) if differential else None,
        "photos_per_s_reported": round(by_reported, 1),
        "photos_per_s_whole_command": round(n / walls["all"], 1),
        "reported_s": reported["all"], "wall_s": round(walls["all"], 2),
        "wall_first_k_s": round(walls["first"], 2),
        "fixed_s": round(walls["first"] - k * diff / (n - k), 2) if differential else None,
    }


def script_part(script: str, extra: list, args, budget: Budget, log) -> dict:
    result = run([sys.executable, BENCH / script, "--device", args.device, *extra], budget, log=log)
    out = json.loads(result["stdout"])
    out["command"], out["wall_s"] = result["command"], round(result["wall_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--budget-s", type=float, default=450, help="total seconds; parts that do not fit are skipped")
    parser.add_argument("--quick", action="store_true", help="tiny settings (64 px, a few steps and photos): a smoke test")
    parser.add_argument("--data", type=Path, help="VITON or VITON-HD data set root (its train/); read only")
    parser.add_argument("--photos", type=Path, help="photos for extract: a folder, or a VITON-HD split folder")
    parser.add_argument("--masks", type=Path, help="their masks (same stems) [default: DIR/image-parse-v3 of a split folder]")
    parser.add_argument("--photos-n", type=int, help="photos per extract run [default 300; --quick 4]")
    parser.add_argument("--epochs", type=int, help="epochs per training run; the first is warm-up [default 3; --quick 2]")
    parser.add_argument("--train-samples", type=int, help="synthetic training samples [default 8192; --quick 16]")
    parser.add_argument("--val-samples", type=int, help="validation samples per epoch [default 64; --quick 2]")
    parser.add_argument("--cuda-path-compile", action="store_true", help="cuda_path with its torch.compile variants (minutes more)")
    parser.add_argument("--workdir", type=Path, help="scratch folder's parent [default: the system's temporary folder]")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (data, runs, outputs)")
    args = parser.parse_args()
    quick = args.quick
    args.photos_n = args.photos_n or (4 if quick else 300)
    args.k_photos = min(1 if quick else 8, max(args.photos_n - 1, 1))
    args.epochs = args.epochs or (2 if quick else 3)
    args.train_samples = args.train_samples or (16 if quick else 8192)
    args.val_samples = args.val_samples or (2 if quick else 64)
    args.base_samples = 8 if quick else 256
    args.base_photos = 4 if quick else 32
    args.quick_bs = 4
    needs = NEEDS_QUICK if quick else NEEDS
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    budget = Budget(args.budget_s)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU: run with --device cpu --quick for a smoke test"}))
        sys.exit(1)
    report = {
        "benchmark": "gpu_all (issue 20)", "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "quick": quick, "budget_s": args.budget_s,
        "summary": {}, "results": {}, "skipped": {}, "data": None, "photos": None,
    }
    work = Path(tempfile.mkdtemp(prefix="gpu_all-", dir=args.workdir))
    results, skipped = report["results"], report["skipped"]

    def attempt(name: str, need: float, fn):
        if budget.left() < need:
            skipped[name] = f"not started: {budget.left():.0f} s of the budget left, it needs about {need:.0f} s"
            return None
        try:
            return fn()
        except OutOfBudget as exc:
            skipped[name] = str(exc)
        except (RuntimeError, ValueError, OSError, json.JSONDecodeError) as exc:
            skipped[name] = f"failed: {exc}"
        return None

    try:
        data = attempt("train_data", needs["train_data"], lambda: prepare_train_data(args, work, budget, log))
        if data:
            report["data"] = data["info"]
        photos = None
        for name in ("train_gan_224", "default_recipe_256x192", "extract_with_masks", "extract_without_masks",
                     "train_step", "cuda_path", "train_gan_224_bs128"):
            if name == "train_gan_224_bs128" and quick:
                skipped[name] = "--quick: the same code path as train_gan_224, another --bs"
                continue
            if name.startswith("train_gan") or name.startswith("default_recipe"):
                if data is None:
                    skipped[name] = "no training data (see skipped.train_data)"
                    continue
                res = attempt(name, needs["train"], lambda: train_part(name, args, data, work, budget, log))
            elif name.startswith("extract"):
                if photos is None and "photos" not in skipped:
                    photos = attempt("photos", needs["photos"], lambda: prepare_photos(args, work, budget, log))
                    if photos:
                        report["photos"] = photos["info"]
                if photos is None:
                    skipped[name] = "no photos (see skipped.photos)"
                    continue
                with_masks = name == "extract_with_masks"
                if with_masks and not photos["with_masks"]:
                    skipped[name] = "no masks for the photos given (--masks)"
                    continue
                res = attempt(name, needs["extract"], lambda: extract_part(with_masks, args, photos, work, budget, log))
            elif name == "train_step":
                extra = (["--bs", "1", "--size", "64", "--steps", "1", "--warmup", "0", "--rounds", "1", "--no-flops",
                          "--cases", "original_gan", "gan_terms"] if quick else ["--bs", "32"])
                res = attempt(name, needs["train_step"], lambda: script_part("train_step.py", extra, args, budget, log))
            else:
                extra = (["--bs", "1", "--steps", "1", "--warmup", "0", "--extract-repeat", "1", "--sizes", "64x64",
                          "--encoder", "resnet18"] if quick else [])
                extra += [] if args.cuda_path_compile else ["--no-compile"]
                res = attempt(name, needs["cuda_path"], lambda: script_part("cuda_path.py", extra, args, budget, log))
            if res is not None:
                results[name] = res
                log(f"{name}: done at {budget.elapsed():.0f} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for name, (key, target) in TARGETS.items():
        value = results.get(name, {}).get(key)
        comparable = args.device == "cuda" and not quick
        report["summary"][f"{name}_{key}"] = {
            "value": value, "target": target,
            "met": (value >= target) if value is not None and comparable else None,
        }
    report["elapsed_s"] = round(budget.elapsed(), 1)
    report["scratch"] = str(work) if args.keep else None
    report["method"] = (
        "images/s: (steps x batch) / seconds over epochs 2..E of the run's metrics.jsonl (an epoch's seconds "
        "run from its start to the end of its validation, on the small validation list); photos/s: "
        "(N - k) / (wall_N - wall_k) of two folder-mode runs, start-up and model loads cancelling; 'met' only "
        "on CUDA at full settings. See the docstring of benchmarks/gpu_all.py."
    )
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
