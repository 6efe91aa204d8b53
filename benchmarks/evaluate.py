"""Benchmark: `clothes-extractor evaluate` on the first N VITON test photos, every metric, both protocols.

Runs the command itself (a fresh process, as a user runs it: start-up, sample checks, the
DataLoader workers, the default generator, the grid and the files included) on an id list of
the first ``--samples`` ids of ``DATA/test`` (sorted), ``--repeat`` times, and prints one JSON
object: ``seconds`` (the best wall time) and ``photos_per_s``, every run's wall and CPU seconds
(the command and its workers), the 1-minute load average before and after (the machine may be
shared), and ``metrics``: protocol -> subject -> metric mean from metrics.json. With
``--reference metrics.json`` (an earlier run's) it adds each mean's difference from it and
``max_abs_diff_x100``: the largest, with L1, SSIM, MS-SSIM (native), HaarPSI, MS-GMSD and FSIM
x100 (the paper protocol's SSIM and MS-SSIM are already x100; PSNR in dB).

Usage::

    python benchmarks/evaluate.py                                    # 300 photos of ../shared/data/viton-2018
    python benchmarks/evaluate.py --samples 300 --reference runs/eval-before/metrics.json > out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "viton-2018"
PROTOCOLS = ("native", "paper")


def _x100(protocol: str, metric: str) -> float:
    """The factor that puts a mean's difference on the x100 scale of the issue's bar."""
    if metric == "psnr" or (protocol == "paper" and metric in ("ssim", "ms_ssim")):
        return 1.0
    return 100.0


def _means(summary: dict) -> dict:
    return {p: {s: {m: v for m, v in summary[p][s].items() if v is not None} for s in summary[p]} for p in PROTOCOLS}


def _differences(means: dict, reference: dict) -> tuple[dict, float]:
    diffs, worst = {}, 0.0
    for p in PROTOCOLS:
        for s, values in means[p].items():
            for m, v in values.items():
                r = reference.get(p, {}).get(s, {}).get(m)
                if r is None or isinstance(r, str) or isinstance(v, str):
                    continue
                d = abs(v - r) * _x100(p, m)
                diffs[f"{p}/{s}/{m}"] = d
                worst = max(worst, d)
    return diffs, worst


def run_once(data: Path, ids: Path, out: Path, args) -> tuple[float, float, dict]:
    cmd = [
        sys.executable, "-m", "clothes_extractor", "evaluate", "--data", str(data), "--split", str(ids),
        "--folder", "test", "--out", str(out), "--device", args.device, "--bs", str(args.bs),
        "--workers", str(args.workers), "--overwrite",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, json.loads((out / "metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="VITON data set root (test/ inside)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reference", type=Path, help="an earlier run's metrics.json to compare the means with")
    ap.add_argument("--keep", type=Path, help="write the last run's outputs here instead of a temporary folder")
    args = ap.parse_args()

    from clothes_extractor.data import viton

    split = viton.resolve_split_dir(args.data, "test")
    ids = viton.list_ids(split)[: args.samples]
    with tempfile.TemporaryDirectory() as tmp:
        id_list = Path(tmp) / "ids.txt"
        id_list.write_text("".join(f"{i}\n" for i in ids))
        out = args.keep or Path(tmp) / "eval"
        load_before = os.getloadavg()[0]
        runs = [run_once(args.data, id_list, out, args) for _ in range(args.repeat)]
        load_after = os.getloadavg()[0]
    seconds = min(r[0] for r in runs)
    summary = runs[-1][2]
    result = {
        "command": f"clothes-extractor evaluate --data {args.data} --split <first {len(ids)} ids of test/> --folder test "
                   f"--device {args.device} --bs {args.bs} --workers {args.workers}",
        "samples": summary["samples"],
        "seconds": round(seconds, 2),
        "photos_per_s": round(summary["samples"] / seconds, 2),
        "all_seconds": [round(r[0], 2) for r in runs],
        "cpu_seconds": [round(r[1], 2) for r in runs],
        "cpus": os.cpu_count(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "not_computed": sorted({m for p in PROTOCOLS for m in summary["not_computed"][p]}),
        "metrics": _means(summary),
    }
    if args.reference is not None:
        diffs, worst = _differences(result["metrics"], json.loads(args.reference.read_text()))
        result["reference"] = str(args.reference)
        result["max_abs_diff_x100"] = worst
        result["abs_diff_x100"] = {k: float(f"{v:.3g}") for k, v in diffs.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
