"""Fixtures for `serve`: tiny checkpoints, photos, and one live server on a free localhost port.

The checkpoints stand in for the shipped models (not in the tree while they train): a resnet18
generator with random weights at 64x64 and a *constant* segmenter (upper-clothes everywhere,
or background everywhere: it finds no garment), saved the way training saves them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.config import PreprocessConfig

REPO = Path(__file__).resolve().parents[2]
REAL_SPLIT = REPO.parent / "shared" / "data" / "viton-hd-samples" / "test"
REAL_ID = "00006_00"
SYNTHETIC_ID = "00009_00"  # in the test split of the session's synthetic data set
STARTUP_S = 180  # importing gradio and torch on a busy 2-core machine


def write_generator(path: Path, labels: tuple[int, ...] = (5,)) -> Path:
    from clothes_extractor.models.generator import Generator

    torch.manual_seed(0)
    g = Generator(encoder="resnet18", encoder_weights=None)
    meta = {  # the layout of train/loop.py's _checkpoint_meta
        "kind": "generator", "clothes_extractor_version": "test",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=(64, 64), garment_labels=labels).to_dict(),
        "train": {}, "epoch": 0, "step": 0, "metrics": {"val_l1": 0.5},
    }
    return save_checkpoint(path, g.state_dict(), meta)


def write_segmenter(path: Path, constant: int) -> Path:
    """A cihp20 segmenter that predicts class ``constant`` everywhere."""
    from clothes_extractor.models.segmenter import SegmentationModel
    from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

    cfg = SegmenterConfig(data="d", out="o", size=(64, 64), label_set="cihp20", encoder="resnet18", encoder_weights=None)
    torch.manual_seed(0)
    model = SegmentationModel(encoder="resnet18", classes=cfg.labels.num_classes)
    head = model.net.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[constant] = 10.0
    meta = {**SegmenterTask(cfg).meta(), "train": cfg.to_dict(), "epoch": 0, "step": 0, "metrics": {}}
    return save_checkpoint(path, model.state_dict(), meta)


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("serve-ckpts")
    return {
        "generator": write_generator(d / "generator.safetensors"),
        "generator3": write_generator(d / "generator3.safetensors", labels=(5, 6, 7)),
        "upper": write_segmenter(d / "upper.safetensors", constant=5),
        "dress": write_segmenter(d / "dress.safetensors", constant=6),
        "background": write_segmenter(d / "background.safetensors", constant=0),
    }


@dataclass(frozen=True)
class Photo:
    """A person photo and its parse map (a label-map mask), as files."""

    photo: Path
    parse: Path
    kind: str  # "real" or "synthetic"


@pytest.fixture(scope="session")
def real_photo() -> Photo:
    """A real VITON-HD photo and its parse map; skipped where ../shared is absent."""
    photo = REAL_SPLIT / "image" / f"{REAL_ID}.jpg"
    if not photo.is_file():
        pytest.skip(f"real VITON-HD samples not found at {REAL_SPLIT} (they live in the shared/ folder beside the repo)")
    return Photo(photo, REAL_SPLIT / "image-parse-v3" / f"{REAL_ID}.png", "real")


@pytest.fixture(scope="session")
def synthetic_photo(synthetic_root) -> Photo:
    """The real photo's synthetic twin: same size (768x1024), same formats, everywhere."""
    split = synthetic_root / "test"
    return Photo(split / "image" / f"{SYNTHETIC_ID}.jpg", split / "image-parse-v3" / f"{SYNTHETIC_ID}.png", "synthetic")


@pytest.fixture(scope="session")
def photo(request) -> Photo:
    """The real photo where ../shared has it, else its synthetic twin."""
    if (REAL_SPLIT / "image" / f"{REAL_ID}.jpg").is_file():
        return request.getfixturevalue("real_photo")
    return request.getfixturevalue("synthetic_photo")


def pixels(png: Path | bytes) -> tuple[str, tuple[int, int], bytes]:
    """A PNG's mode, size and pixels: what the page must agree on with `extract` (the page's
    PNGs are compressed faster, so their bytes differ)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as im:
        return im.mode, im.size, im.tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    tmp: Path  # the server's TMPDIR: empty again once it stopped
    log: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(args: list[str], tmp: Path) -> Server:
    """``clothes-extractor serve ARGS`` on a free 127.0.0.1 port, in a fresh TMPDIR; waits until it answers."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp.parent / f"serve-{port}.log"
    env = {**os.environ, "TMPDIR": str(tmp), "NO_PROXY": "127.0.0.1,localhost", "GRADIO_ANALYTICS_ENABLED": "False"}
    # torch sets this in the test process (to <its temp dir>/torchinductor_<user>) once torch._dynamo
    # is imported; passed on, the server would make its cache folder there, not in its TMPDIR.
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    cmd = [sys.executable, "-m", "clothes_extractor", "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp.parent, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/", proc, tmp, log)
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}:\n{server.output()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url, timeout=5) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    pytest.fail(f"serve did not answer within {STARTUP_S} s:\n{server.output()[-4000:]}")


def stop_server(server: Server, timeout: float = 60) -> int:
    """SIGTERM (as a service manager stops it), then SIGKILL if it hangs; returns the exit code."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
            pytest.fail(f"serve did not stop within {timeout} s of SIGTERM:\n{server.output()[-3000:]}")
    return server.proc.returncode


@pytest.fixture(scope="session")
def server(ckpts, tmp_path_factory) -> Server:
    """One live server for the API and browser tests: the tiny generator, the upper-clothes
    segmenter, a 5 MB upload limit (the brush's canvas, a PNG of the photo, goes back and forth)
    and a 1 megapixel limit (768x1024 photos pass). On teardown
    it is stopped with SIGTERM and must leave its TMPDIR empty."""
    pytest.importorskip("gradio", reason='serve needs gradio: pip install "clothes-extractor[app]"')
    tmp = tmp_path_factory.mktemp("serve") / "tmp"
    srv = start_server(["-c", str(ckpts["generator"]), "-s", str(ckpts["upper"]),
                        "--max-upload-mb", "5", "--max-megapixels", "1"], tmp)
    yield srv
    code = stop_server(srv)
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert code == 0, srv.output()[-3000:]
    assert "stopped; temporary files removed" in srv.output()
    assert not left, f"temporary files left behind: {left[:20]}"
