"""Benchmark: `clothes-extractor dedup` on all of VITON (2018) as stored beside the repository.

Runs ``python -m clothes_extractor dedup --data DATA --out TMP --overwrite`` as a whole program
(interpreter start-up and imports included) ``--repeat`` times, each after waiting (up to
``--quiet-wait`` s) for an idle machine, and prints JSON: wall-clock and CPU seconds of each run,
samples and images per second of the best, and the extrapolation to VITON's full 16,253 samples
(14,221 train + 2,032 test; 32,506 images), the issue's bar being under a minute. Decoding is
linear in the images and the candidate search quadratic in the distinct ones, so the estimate is
an upper bound: the measured time scaled linearly, plus the candidate search timed on 16,253
descriptors for each of the two kinds.

Usage::

    python benchmarks/dedup.py                         # ../shared/data/viton-2018, 10,000 samples
    python benchmarks/dedup.py --data data/zalando-hd-resized --repeat 1
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
from downsample import timed, wait_until_quiet  # benchmarks/downsample.py: the same helpers

REPO = Path(__file__).resolve().parents[1]
VITON_2018 = REPO.parent / "shared" / "data" / "viton-2018"
VITON_FULL_SAMPLES = 14_221 + 2_032


def candidate_search_seconds(n: int, repeat: int = 2) -> float:
    """Seconds of the quadratic part (the candidate search) over ``n`` random descriptors."""
    from clothes_extractor.data.image_signatures import COARSE_BAND, candidate_pairs

    dims = (2 * COARSE_BAND + 1) * (COARSE_BAND + 1) - 1
    coarse = np.random.default_rng(0).random((n, dims), dtype=np.float32) / np.sqrt(dims)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        candidate_pairs(coarse, 0.01)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=VITON_2018, help="data set root (default: shared VITON 2018)")
    parser.add_argument("--repeat", type=int, default=2, help="runs; the best counts")
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="wait up to this long for an idle machine before each run")
    parser.add_argument("--workers", type=int, default=None, help="--workers of dedup (default: all cores)")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"data set not found: {args.data}")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(REPO))

    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        cmd = [sys.executable, "-m", "clothes_extractor", "dedup", "--data", str(args.data), "--out", tmp, "--overwrite"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        load_before = os.getloadavg()[0]
        runs, quiet = [], []
        for _ in range(args.repeat):
            quiet.append(wait_until_quiet(args.quiet_wait))
            runs.append(timed(cmd))
        report = json.loads((Path(tmp) / "duplicates.json").read_text())

    samples = sum(report["samples"].values())
    wall = min(w for w, _ in runs)
    cpu = min(c for _, c in runs)
    quadratic = {n: candidate_search_seconds(n) for n in (samples, VITON_FULL_SAMPLES)}
    full = wall * VITON_FULL_SAMPLES / samples + 2 * quadratic[VITON_FULL_SAMPLES]  # an upper bound
    print(json.dumps({
        "data": str(args.data),
        "samples": report["samples"],
        "images": report["images"],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "runs_started_on_idle_machine": f"{sum(quiet)}/{len(quiet)}",
        "runs": [{"wall_s": round(w, 2), "cpu_s": round(c, 2)} for w, c in runs],
        "best_wall_s": round(wall, 2),
        "samples_per_s": round(samples / wall, 1),
        "images_per_s": round(report["images"] / wall, 1),
        "cpu_ms_per_image": round(1000 * cpu / report["images"], 3),
        "candidate_search_s_per_kind": {str(n): round(s, 2) for n, s in quadratic.items()},
        "viton_full_16253_samples_wall_s_at_most": round(full, 1),
        "groups": report["counts"],
    }, indent=2))


if __name__ == "__main__":
    main()
