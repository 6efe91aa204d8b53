"""Seconds per photo and peak memory of each inference backend of `extract`, in one run.

The model is the shipped default generator (or ``--checkpoint``), on a real 768x1024 VITON-HD
photo and its parse map. Every backend runs through :class:`clothes_extractor.inference.extractor.Extractor`
(the same preprocessing and compositing; only the model call differs):

  torch          torch eager, NCHW: what `extract` runs with a .safetensors checkpoint
  torch-cl       torch eager, channels_last weights and inputs
  ort            onnxruntime, the fp32 export (`clothes-extractor export`)
  ort-int8       onnxruntime, the static int8 export (`--int8 --calibrate`: 16 VITON train samples)
  ort-int8-dyn   onnxruntime, the dynamic int8 export (`--int8` alone; with --dynamic)

Each (backend, threads) pair lives in its own process, which loads its model once and warms up
at every batch size. The rounds then alternate between those processes (one batch each, in
turn), so load from other programs on the machine falls on every backend alike: compare the
ratios of one run, not absolute numbers across runs. Per batch: ``per_photo_s`` = (prepare +
model + finish of :meth:`Extractor.extract_many`) / batch, ``model_s`` = the model call alone /
batch; medians over the rounds. Peak memory: the process's VmHWM (Python, its imports, the model
and the largest batch's activations) and ``model_peak_mb``, its growth over the process's size
after the imports (torch, smp, onnxruntime for the ort backends), before the model loaded. And
``bare_onnxruntime_peak_rss_mb``: the README's deploy example (onnxruntime, numpy, Pillow; no
torch) run as a process of its own on each ONNX model, one photo.

Run by benchmarks/extract.py (its ``backends`` section), or alone::

    python benchmarks/backends.py --threads 1 2 --batches 1 8 --rounds 5 --markdown
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_ROOT = REPO.parent / "shared" / "data" / "viton-hd-samples"
VITON_2018 = REPO.parent / "shared" / "data" / "viton-2018"
BACKENDS = ("torch", "torch-cl", "ort", "ort-int8")


def _status_mb(key: str) -> float:
    """VmRSS / VmHWM of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load(backend: str, models: dict[str, str], threads: int):
    import torch

    from clothes_extractor.checkpoint import read_meta
    from clothes_extractor.inference.extractor import Extractor, load_extractor

    if backend.startswith("torch"):
        extractor = load_extractor(models["torch"], "cpu")
        if backend == "torch-cl":
            model = extractor.model.to(memory_format=torch.channels_last)
            extractor.model = lambda x: model(x.contiguous(memory_format=torch.channels_last))  # noqa: E731
        return extractor
    from clothes_extractor.models.generator import GeneratorConfig
    from clothes_extractor.onnx_model import OnnxModel

    meta = read_meta(models[backend])
    model = OnnxModel.load(meta, GeneratorConfig.from_dict(meta["generator"]), threads=threads)
    return Extractor(model, meta, "cpu")


def _worker(conn, backend: str, threads: int, models: dict[str, str], photo: str, mask: str, batches: list[int]) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import clothes_extractor.models.generator  # noqa: F401  (imports first: the base excludes them)
    from clothes_extractor.inference.mask import read_pair

    if backend.startswith("ort"):
        import onnxruntime  # noqa: F401
    base = _status_mb("VmRSS")
    extractor = _load(backend, models, threads)
    photo_arr, mask_arr = read_pair(photo, mask, extractor.labels)

    def once(batch: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        inputs = np.stack([extractor.prepare(photo_arr, mask_arr) for _ in range(batch)])
        t1 = time.perf_counter()
        rgb, alpha = extractor.predict(inputs)
        t2 = time.perf_counter()
        for r, a in zip(rgb, alpha):
            extractor.finish(r, a)
        t3 = time.perf_counter()
        return (t3 - t0) / batch, (t2 - t1) / batch

    with torch.inference_mode():
        for b in batches:
            once(b)  # warm-up at each batch size
        conn.send("ready")
        while (message := conn.recv()) != "stop":
            conn.send(once(message))
    conn.send({"peak_rss_mb": _status_mb("VmHWM"), "base_rss_mb": base})


def make_models(tmp: Path, checkpoint: Path | None, dynamic: bool, calibrate: Path, split: str = "train") -> dict[str, str]:
    """The generator checkpoint (default: the shipped default) and its exports: fp32, static
    int8 calibrated on 16 samples of ``calibrate``/``split`` (and dynamic int8)."""
    from clothes_extractor.export import ExportConfig, export_onnx
    from clothes_extractor.pretrained import resolve

    ckpt = resolve(checkpoint, "generator")
    models = {"torch": str(ckpt), "torch-cl": str(ckpt)}
    models["ort"] = str(export_onnx(ExportConfig(ckpt, tmp / "g.onnx")).path)
    int8 = ExportConfig(ckpt, tmp / "g-int8.onnx", int8=True, calibrate=calibrate, split=split)
    models["ort-int8"] = str(export_onnx(int8).path)
    if dynamic:
        models["ort-int8-dyn"] = str(export_onnx(ExportConfig(ckpt, tmp / "g-int8-dyn.onnx", int8=True)).path)
    return models


def calibration_data() -> tuple[Path, str]:
    """VITON (2018) train where ../shared has it (the default generator's own data), else the
    real VITON-HD samples."""
    return (VITON_2018, "train") if (VITON_2018 / "train").is_dir() else (REAL_ROOT, "test")


def run(models: dict[str, str], photo: Path, mask: Path, *, threads=(1, 2), batches=(1, 8), rounds: int = 5) -> dict:
    """Start one process per (backend, threads), alternate the rounds between them, gather."""
    ctx = mp.get_context("spawn")
    workers = {}
    for backend in models:
        for n in threads:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, backend, n, models, str(photo), str(mask), list(batches)))
            proc.start()
            if parent.recv() != "ready":  # one at a time: starting 8 processes at once would thrash
                raise RuntimeError(f"worker {backend} x{n} did not start")
            workers[(backend, n)] = (proc, parent)
    times: dict[tuple[str, int, int], list[tuple[float, float]]] = {k + (b,): [] for k in workers for b in batches}
    for _ in range(rounds):
        for b in batches:
            for key, (_, conn) in workers.items():
                conn.send(b)
                times[key + (b,)].append(conn.recv())
    memory = {}
    for key, (proc, conn) in workers.items():
        conn.send("stop")
        memory[key] = conn.recv()
        proc.join()
    rows = []
    for (backend, n, b), values in times.items():
        mem = memory[(backend, n)]
        rows.append({
            "backend": backend, "threads": n, "batch": b,
            "per_photo_s": round(statistics.median(v[0] for v in values), 4),
            "model_s": round(statistics.median(v[1] for v in values), 4),
            "peak_rss_mb": round(mem["peak_rss_mb"]), "model_peak_mb": round(mem["peak_rss_mb"] - mem["base_rss_mb"]),
        })
    return {"rows": rows, "speedups": speedups(rows), "rounds": rounds, "bare_onnxruntime_peak_rss_mb": bare_peak_mb(models, photo, mask)}


def describe(models: dict[str, str], photo: Path) -> dict:
    """What was measured: the model, its size, the photo, the machine."""
    import platform

    import onnxruntime
    import torch

    from clothes_extractor.checkpoint import read_meta

    meta = read_meta(models["torch"])
    return {"checkpoint": models["torch"], "encoder": meta["generator"]["encoder"],
            "model_size": "x".join(map(str, meta["preprocess"]["size"])), "photo": photo.name,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}


def bare_peak_mb(models: dict[str, str], photo: Path, parse: Path) -> dict[str, int]:
    """Peak RSS of the README's deploy example (onnxruntime, numpy and Pillow; no torch), run as
    its own process on each ONNX model: what a server without a training stack holds."""
    import re
    import shutil
    import subprocess
    import sys

    text = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Deploy without PyTorch"):], re.S).group(1)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of this (large)
    # process would report the parent's size. VmHWM belongs to the new address space alone.
    code += (
        "\nimport resource, pathlib\n"
        "status = pathlib.Path('/proc/self/status')\n"
        "hwm = [l.split()[1] for l in status.read_text().splitlines() if l.startswith('VmHWM:')] if status.exists() else []\n"
        "print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(photo, Path(tmp) / "person.jpg")
        shutil.copy(parse, Path(tmp) / "parse.png")
        for backend, path in models.items():
            if backend.startswith("ort"):
                shutil.copy(path, Path(tmp) / "generator.onnx")
                done = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, check=True)
                out[backend] = round(int(done.stdout.split()[-1]) / 1024)
    return out


def speedups(rows: list[dict]) -> list[dict]:
    """Per (threads, batch): the best torch path's seconds / each onnxruntime backend's."""
    out = []
    for n in sorted({r["threads"] for r in rows}):
        for b in sorted({r["batch"] for r in rows}):
            group = [r for r in rows if r["threads"] == n and r["batch"] == b]
            best = min((r for r in group if r["backend"].startswith("torch")), key=lambda r: r["per_photo_s"])
            for r in group:
                if r["backend"].startswith("ort"):
                    out.append({"threads": n, "batch": b, "backend": r["backend"], "vs": best["backend"],
                                "per_photo_x": round(best["per_photo_s"] / r["per_photo_s"], 2),
                                "model_x": round(best["model_s"] / r["model_s"], 2)})
    return out


def markdown(result: dict) -> str:
    lines = ["| backend | threads | batch | s/photo | model s/photo | peak RSS MB | model peak MB |", "|---|---|---|---|---|---|---|"]
    for r in sorted(result["rows"], key=lambda r: (r["threads"], r["batch"], BACKENDS.index(r["backend"]) if r["backend"] in BACKENDS else 9)):
        lines.append(f"| {r['backend']} | {r['threads']} | {r['batch']} | {r['per_photo_s']:.3f} | {r['model_s']:.3f} | {r['peak_rss_mb']} | {r['model_peak_mb']} |")
    lines += ["", "| threads | batch | backend | x faster than | per photo | model |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['threads']} | {s['batch']} | {s['backend']} | {s['vs']} | {s['per_photo_x']} | {s['model_x']} |" for s in result["speedups"]]
    bare = ", ".join(f"{k} {v} MB" for k, v in result["bare_onnxruntime_peak_rss_mb"].items())
    return "\n".join(lines + ["", f"peak RSS of the README's onnxruntime + numpy + Pillow example (no torch): {bare}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="generator checkpoint [default: the shipped default generator]")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dynamic", action="store_true", help="also the dynamically quantized int8 model")
    parser.add_argument("--sample", default="00006_00")
    parser.add_argument("--markdown", action="store_true", help="print tables instead of JSON")
    args = parser.parse_args()

    photo = REAL_ROOT / "test" / "image" / f"{args.sample}.jpg"
    mask = REAL_ROOT / "test" / "image-parse-v3" / f"{args.sample}.png"
    with tempfile.TemporaryDirectory() as tmp:
        models = make_models(Path(tmp), args.checkpoint, args.dynamic, *calibration_data())
        started = time.perf_counter()
        result = run(models, photo, mask, threads=args.threads, batches=args.batches, rounds=args.rounds)
    result.update(describe(models, photo))
    result.update({"seconds": round(time.perf_counter() - started), "load_average_1min_after": round(os.getloadavg()[0], 2)})
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
