"""Benchmark: `clothes-extractor serve` under N concurrent clients on localhost.

Starts the real server (``python -m clothes_extractor serve``, a subprocess on a free
127.0.0.1 port, its own TMPDIR), then ``--clients`` threads, each with its own
``gradio_client.Client``, send ``/extract`` requests (a 768x1024 photo, the mask predicted by the
segmenter) until ``--requests`` have been sent in all; two warm-up requests come first and are
not counted. Every request sends other bytes (the photo's JPEG with a trailer of its own after
the image data: the same pixels), as a shop's photos would be: nothing the server keeps from
one request to the next (the mask of the last photos) spares it any work. Reports one JSON object:

- ``latency_s``: p50 / p95 / max of the whole round trip a client sees (upload, queue, model,
  download of both PNGs); ``server_s_p50``: the seconds the server itself reports per request;
- ``requests_per_s``: completed requests / wall time; ``errors``: failed requests (with the
  first message);
- ``rss_mb``: the server's resident memory before the timed requests, after them, and its peak
  (``VmHWM``, Linux); ``temp_left``: files the server left in its TMPDIR after SIGTERM (0 expected);
  ``exit_code``: the server's, after SIGTERM (0 expected).

``--profile STACKS``: py-spy (``pip install py-spy``) samples every thread of the server during
the timed requests (50 Hz) and writes the collapsed stacks to STACKS; ``profile_s_per_request``
then gives the busy thread-seconds per request by stage (:data:`STAGES`: the deepest matching
frame of each sample wins; samples waiting in a select, a lock or a sleep are left out). Threads
that run at the same time add up, so the total can exceed the wall time per request.

Without ``--checkpoint`` / ``--segmenter`` it makes random-weight stand-ins the size of real ones
(generator: ``--encoder`` at ``--size``; segmenter: resnet34, 256x192, its head set to predict
upper-clothes everywhere, so that every request succeeds). Speed does not depend on the weights.

    python benchmarks/serve.py                                   # 4 clients, 40 requests, CPU
    python benchmarks/serve.py --clients 8 --requests 200 --concurrency 16 --device cuda
    python benchmarks/serve.py --checkpoint runs/train-gan --segmenter runs/train-segmenter
    python benchmarks/serve.py --clients 8 --requests 48 --profile /tmp/serve.stacks  # where the time goes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_PHOTO = REPO.parent / "shared" / "data" / "viton-hd-samples" / "test" / "image" / "00006_00.jpg"
# --profile: a sample's stage is that of its deepest frame matching one of these (file part, function)
STAGES: tuple[tuple[str, str, str], ...] = (
    ("decode photo", "inference/photo.py", "read_photo"),
    ("decode photo", "serve/engine.py", "check_pixels"),
    ("segmenter model", "inference/segmenter.py", "logits"),
    ("segmenter finish (upsample, argmax)", "inference/segmenter.py", "finish"),
    ("segmenter prepare", "inference/segmenter.py", "prepare"),
    ("garment mask, category", "inference/mask.py", "require_garment"),
    ("garment mask, category", "serve/engine.py", "category"),
    ("generator prepare", "inference/extractor.py", "prepare"),
    ("generator model", "inference/extractor.py", "forward"),
    ("generator model", "inference/extractor.py", "run"),
    ("generator finish (frame)", "inference/extractor.py", "finish"),
    ("render (composite, cut-out)", "inference/output.py", "render"),
    ("encode + write PNGs", "inference/output.py", "save_all"),
    ("encode + write PNGs", "PIL/Image.py", "save"),
    ("preview (overlay)", "serve/engine.py", "overlay"),
    ("batching queue", "serve/batcher.py", ""),
    ("gradio: postprocess outputs (encode preview, copy/hash files)", "gradio/blocks.py", "postprocess_data"),
    ("gradio: preprocess inputs (upload move/hash)", "gradio/blocks.py", "preprocess_data"),
    ("gradio: file uploads", "gradio/route_utils.py", ""),
    ("gradio: file uploads", "multipart", ""),
    ("gradio: other", "gradio/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "uvicorn/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "starlette/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "anyio/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "h11/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "httpx/", ""),
    ("web server (uvicorn, starlette, anyio, httpx)", "asyncio/", ""),
)


def make_checkpoints(folder: Path, encoder: str, size: str) -> tuple[Path, Path]:
    import torch

    from clothes_extractor.checkpoint import save_checkpoint
    from clothes_extractor.config import PreprocessConfig, parse_size
    from clothes_extractor.models.generator import Generator
    from clothes_extractor.models.segmenter import SegmentationModel
    from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

    g = Generator(encoder=encoder, encoder_weights=None)
    gen = save_checkpoint(folder / "generator.safetensors", g.state_dict(), {
        "kind": "generator", "clothes_extractor_version": "benchmark",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=parse_size(size)).to_dict(), "train": {}, "epoch": 0, "step": 0, "metrics": {},
    })
    cfg = SegmenterConfig(data="d", out="o", size=(256, 192), label_set="cihp20", encoder="resnet34", encoder_weights=None)
    model = SegmentationModel(encoder="resnet34", classes=cfg.labels.num_classes)
    head = model.net.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[5] = 10.0  # upper-clothes everywhere: every request has a garment
    seg = save_checkpoint(folder / "segmenter.safetensors", model.state_dict(),
                          {**SegmenterTask(cfg).meta(), "train": cfg.to_dict(), "epoch": 0, "step": 0, "metrics": {}})
    return gen, seg


def a_photo(folder: Path) -> Path:
    if REAL_PHOTO.is_file():
        return REAL_PHOTO
    from clothes_extractor.data.synthetic import make_sample_data

    make_sample_data(folder / "synthetic", samples=4, seed=0)
    return folder / "synthetic" / "test" / "image" / "00003_00.jpg"


def variants(photo: Path, folder: Path, n: int) -> list[Path]:
    """``n`` copies of ``photo`` with different bytes and the same pixels (a trailer after the
    JPEG's end of image, which decoders ignore)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = photo.read_bytes()
    out = []
    for i in range(n):
        path = folder / f"{photo.stem}-{i:04d}{photo.suffix}"
        path.write_bytes(data + f"request {i}".encode())
        out.append(path)
    return out


def proc_status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# a sample whose innermost frame is one of these waits (py-spy counts some waits as busy)
IDLE_LEAVES = ("select (selectors.py", "wait (threading.py", "block_thread (gradio/blocks.py", "sleep (")


def stage_of(stack: str) -> str:
    """A collapsed py-spy stack (frames ``func (file:line)`` joined by ``;``, outermost first) ->
    its stage: ``idle`` when it waits, else the first :data:`STAGES` entry matching its deepest
    frame that matches any."""
    frames = stack.split(";")
    if any(leaf in frames[-1] for leaf in IDLE_LEAVES):
        return "idle"
    for frame in reversed(frames):
        func, _, where = frame.partition(" (")
        for stage, file_part, name in STAGES:
            if file_part in where and (not name or func.rsplit(".", 1)[-1] == name):
                return stage
    return "other"


def summarize_profile(stacks: Path, requests: int, rate: int = 50) -> dict[str, float]:
    """py-spy's raw (collapsed) output -> the busy thread-seconds per request in each stage,
    largest first (``idle`` samples left out), and their ``total``."""
    counts: dict[str, int] = {}
    for line in stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        stage = stage_of(stack)
        if stage != "idle":
            counts[stage] = counts.get(stage, 0) + int(n)
    per = {k: round(v / rate / requests, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    return {**per, "total": round(sum(counts.values()) / rate / requests, 3)}


def start_profiler(pid: int, out: Path) -> subprocess.Popen:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start(args, gen: Path, seg: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "clothes_extractor", "serve", "-c", str(gen), "-s", str(seg), "--port", str(port),
           "--device", args.device, "--queue-size", str(max(16, 2 * args.clients)),
           *(["--concurrency", str(args.concurrency)] if args.concurrency else [])]
    env = {**os.environ, "TMPDIR": str(tmp), "NO_PROXY": "127.0.0.1,localhost"}
    # torch set this here if it was imported (making the stand-ins); passed on, the server would put
    # its inductor cache folder in this process's temp folder, out of temp_left's sight
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 900  # a busy machine: importing gradio and torch can take minutes
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"serve did not start (exit code {proc.poll()})")


def hammer(url: str, photos: list[Path], clients: int, total: int) -> tuple[list[float], list[float], list[str], float]:
    """``clients`` threads send ``total`` /extract requests in all: (latencies, server seconds, errors, wall s)."""
    from gradio_client import Client, handle_file

    lock, sent = threading.Lock(), [0]
    latencies, server_s, errors = [], [], []
    downloads = Path(tempfile.mkdtemp(prefix="serve-bench-client-"))
    conns = [Client(url, verbose=False, download_files=str(downloads)) for _ in range(clients)]

    def client(c) -> None:
        while True:
            with lock:
                if sent[0] >= total:
                    return
                photo = photos[sent[0] % len(photos)]
                sent[0] += 1
            t = time.perf_counter()
            try:
                details = c.predict(photo=handle_file(str(photo)), api_name="/extract")[3]
                with lock:
                    latencies.append(time.perf_counter() - t)
                    server_s.append(details["seconds"])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    shutil.rmtree(downloads, ignore_errors=True)
    return latencies, server_s, errors, wall


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3) if len(values) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40, help="timed requests in all (bounded)")
    ap.add_argument("--concurrency", type=int, help="serve --concurrency [default: serve's own]")
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--segmenter", type=Path)
    ap.add_argument("--encoder", default="resnet34")
    ap.add_argument("--size", default="224")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", type=Path, metavar="STACKS", help="py-spy the server's threads during the timed requests")
    args = ap.parse_args()
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        tmp = Path(tmp)
        gen, seg = (args.checkpoint, args.segmenter) if args.checkpoint and args.segmenter else make_checkpoints(tmp, args.encoder, args.size)
        photo = a_photo(tmp)
        server_tmp = tmp / "server-tmp"
        server_tmp.mkdir()
        proc, url = start(args, gen, seg, server_tmp)
        try:
            sent = variants(photo, tmp / "photos", args.requests + 2)
            warm = Client(url, verbose=False, download_files=str(tmp / "warm"))
            for p in sent[-2:]:
                warm.predict(photo=handle_file(str(p)), api_name="/extract")
            rss_before = proc_status(proc.pid, "VmRSS")
            spy = start_profiler(proc.pid, args.profile) if args.profile else None
            latencies, server_s, errors, wall = hammer(url, sent[:-2], args.clients, args.requests)
            rss_after, peak = proc_status(proc.pid, "VmRSS"), proc_status(proc.pid, "VmHWM")
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=120)
        finally:
            proc.send_signal(signal.SIGTERM)
            exit_code = proc.wait(timeout=60)
        temp_left = sum(1 for _ in server_tmp.rglob("*"))
    import gradio
    import torch

    print(json.dumps({
        "clients": args.clients, "requests": args.requests, "server_concurrency": args.concurrency or "serve's default",
        "completed": len(latencies), "errors": len(errors), "first_error": errors[0] if errors else None,
        "latency_s": {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "max": round(max(latencies, default=float("nan")), 3)},
        "server_s_p50": pct(server_s, 50), "requests_per_s": round(len(latencies) / wall, 3), "wall_s": round(wall, 2),
        "rss_mb": {"before": round(rss_before), "after": round(rss_after), "peak": round(peak)}, "temp_left": temp_left,
        "exit_code": exit_code, **({"profile_s_per_request": summarize_profile(args.profile, args.requests)} if args.profile else {}),
        "model": "given checkpoints" if args.checkpoint and args.segmenter else f"random {args.encoder} at {args.size} + resnet34 segmenter at 256x192",
        "photo": f"{photo.name} (768x1024)", "device": args.device, "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__, "gradio": gradio.__version__,
    }, indent=2))


if __name__ == "__main__":
    main()
