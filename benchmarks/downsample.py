"""Benchmark: `clothes-extractor downsample` against the original project's script.

Both run in one go on the same files, each as a whole program in its own process (interpreter
start-up and imports included), and the result is printed as JSON:

- ``original``: the seed's approach, reimplemented in :func:`original_downsample`: one process,
  for each of five folders the first N files of ``sorted(os.listdir)``, full decode, paste on a
  square canvas of the longest side, LANCZOS resize to (size, size), PIL save.
- ``downsample``: ``python -m clothes_extractor downsample -s SIZE`` (all cores, JPEG draft
  decoding, aspect kept, no square canvas).

The source is "a few hundred samples of real-size files": the three real VITON-HD samples of
``shared/data/viton-hd-samples`` copied byte for byte under ``--samples`` new ids, restricted
to the original's five folders so that both write the same files (``--all-folders`` copies
every folder; the comparison is files per second either way). ``--src`` uses a real download
instead (``--samples`` then is the ``-f`` of both). Each is run ``--repeat`` times, alternating,
each time into an empty destination, and the best time of each counts (all are printed, with
the CPU seconds of each). Before each run it waits (``--quiet-wait``) for the machine to be idle,
since a shared machine's other work would be measured too. ``--workdir`` chooses the file
system: both programs create the same number of files, and a slow one (or one watched by other
tools) adds the same seconds to both, which shrinks the ratio. The goal is a ratio of at least 4 at
``-s 64`` on a 2-core machine.

Usage::

    python benchmarks/downsample.py                  # 300 samples, -s 64
    python benchmarks/downsample.py --samples 100 --size 256
    python benchmarks/downsample.py --src data/zalando-hd-resized --samples 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO.parent / "shared" / "data" / "viton-hd-samples"
ORIGINAL_FOLDERS = ("image", "image-parse-v3", "cloth", "cloth-mask", "image-parse-agnostic-v3.2")
SPLITS = ("train", "test")


def original_downsample(src: Path, dst: Path, n: int | None, size: int) -> int:
    """The original script: first ``n`` files of each folder independently, square output.

    Returns the number of files written.
    """
    written = 0
    for split in SPLITS:
        if not (Path(src) / split).is_dir():
            continue
        for folder in ORIGINAL_FOLDERS:
            in_dir = Path(src) / split / folder
            out_dir = Path(dst) / split / folder
            if not in_dir.is_dir():
                continue
            os.makedirs(out_dir, exist_ok=True)
            for name in sorted(os.listdir(in_dir))[:n]:
                image = Image.open(in_dir / name)
                longest = max(image.size)
                canvas = Image.new(image.mode, (longest, longest))
                if image.mode == "P":
                    canvas.putpalette(image.getpalette())
                canvas.paste(image, (0, 0))  # decodes the whole file
                canvas.resize((size, size), Image.LANCZOS).save(out_dir / name)
                written += 1
    return written


def make_source(root: Path, samples: int, all_folders: bool) -> Path:
    """``samples`` ids under ``root/test``, cycling through the real samples' bytes."""
    real = REAL_SAMPLES / "test"
    if not (real / "image").is_dir():
        sys.exit(f"real samples not found at {REAL_SAMPLES}; pass --src with a VITON-HD root")
    sys.path.insert(0, str(REPO))
    from clothes_extractor.data.viton import FOLDERS, PHOTO, id_from_filename

    real_ids = sorted(i for n in os.listdir(real / PHOTO) if (i := id_from_filename(PHOTO, n)))
    folders = [f for f in FOLDERS if (real / f).is_dir() and (all_folders or f in ORIGINAL_FOLDERS)]
    pairs = []
    for k in range(samples):
        new_id = f"{k:05d}_00"
        real_id = real_ids[k % len(real_ids)]
        for folder in folders:
            out = root / "test" / folder / FOLDERS[folder].format(id=new_id)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real / folder / FOLDERS[folder].format(id=real_id), out)
        pairs.append(f"{new_id}.jpg {new_id}.jpg\n")
    (root / "test_pairs.txt").write_text("".join(pairs))
    return root


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root)) if root.is_dir() else 0


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (Linux only)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def wait_until_quiet(limit_s: float, busy_below: float = 0.1) -> bool:
    """Wait (at most ``limit_s``) for a 1-second window in which the machine is < 10 % busy.

    The machine may be shared; a run that starts while others use the cores measures them too.
    """
    deadline = time.monotonic() + limit_s
    while True:
        before = _cpu_ticks()
        if before is None:
            return False
        time.sleep(1.0)
        after = _cpu_ticks()
        busy, total = after[0] - before[0], after[1] - before[1]
        if total and busy / total < busy_below:
            return True
        if time.monotonic() > deadline:
            return False


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds (all processes of the command) of one run."""
    cpu, start = _child_cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, _child_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="samples to make (or -f with --src)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--src", type=Path, help="a VITON-HD root to use instead of copies")
    parser.add_argument("--all-folders", action="store_true", help="copy every folder, not just the five")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; best one counts")
    parser.add_argument("--quiet-wait", type=float, default=10.0,
                        help="before each run, wait up to this many seconds for an idle machine")
    parser.add_argument("--workers", type=int, default=None, help="--workers of downsample (default: all cores)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the copies and outputs go (default: the system temp folder)")
    parser.add_argument("--run-original", nargs=4, metavar=("SRC", "DST", "N", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run_original:  # the baseline, as its own program
        src, dst, n, size = args.run_original
        original_downsample(Path(src), Path(dst), int(n) if n != "all" else None, int(size))
        return

    with tempfile.TemporaryDirectory(prefix="bench-downsample-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        if args.src:
            src, n = args.src, str(args.samples)
        else:
            src, n = make_source(tmp / "src", args.samples, args.all_folders), "all"
        orig_dst, new_dst = tmp / "original", tmp / "downsample"
        cmd_orig = [sys.executable, __file__, "--run-original", str(src), str(orig_dst), n, str(args.size)]
        cmd_new = [sys.executable, "-m", "clothes_extractor", "downsample", "-s", str(args.size),
                   "--src", str(src), "--dst", str(new_dst)]
        if n != "all":
            cmd_new += ["-f", n]
        if args.workers:
            cmd_new += ["--workers", str(args.workers)]

        # Alternate the two, fresh destinations each time, and keep the best of each: the
        # machine may be shared, and the best run is the least disturbed one.
        orig_runs, new_runs, quiet = [], [], []
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            shutil.rmtree(orig_dst, ignore_errors=True)
            shutil.rmtree(new_dst, ignore_errors=True)
            quiet.append(wait_until_quiet(args.quiet_wait))
            orig_runs.append(timed(cmd_orig))
            quiet.append(wait_until_quiet(args.quiet_wait))
            new_runs.append(timed(cmd_new))

        orig_files = count_files(orig_dst)
        extra = 1 + sum((new_dst / p).is_file() for p in ("train_pairs.txt", "test_pairs.txt"))
        new_files = count_files(new_dst) - extra  # record and pair files are not images

        def entry(files: int, runs: list[tuple[float, float]]) -> dict:
            best = min(wall for wall, _ in runs)
            return {"files": files, "seconds": round(best, 3), "files_per_s": round(files / best, 1),
                    "all_seconds": [round(wall, 3) for wall, _ in runs],
                    "cpu_seconds": [round(cpu, 3) for _, cpu in runs]}

        orig, new = entry(orig_files, orig_runs), entry(new_files, new_runs)
        print(json.dumps({
            "size": args.size,
            "samples": args.samples,
            "cpus": os.cpu_count(),
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            "workdir": str(tmp.parent),
            "repeat": args.repeat,
            "runs_started_on_idle_machine": f"{sum(quiet)}/{len(quiet)}",
            "original": orig,
            "downsample": new,
            "ratio_files_per_s": round(new["files_per_s"] / orig["files_per_s"], 2),
        }, indent=2))


if __name__ == "__main__":
    main()
