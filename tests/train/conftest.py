"""A tiny training set: the synthetic data set's 7 garment-wearing train samples, split 6/1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lists(synthetic_root, tmp_path_factory) -> tuple[Path, Path]:
    """(train_ids.txt, val_ids.txt) for `synthetic_root`, written outside it (it is shared)."""
    from clothes_extractor.data.split import make_split

    out = tmp_path_factory.mktemp("lists")
    make_split(synthetic_root, out=out, val_fraction=0.15, seed=0)
    return out / "train_ids.txt", out / "val_ids.txt"


@pytest.fixture()
def train_args(synthetic_root, lists, tmp_path):
    """CLI arguments for a quick CPU run at 64x64 with random weights."""

    def make(*extra: str, out: Path | None = None) -> list[str]:
        return [
            "--data", str(synthetic_root), "--train-list", str(lists[0]), "--val-list", str(lists[1]),
            "--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--bs", "2",
            "--workers", "0", "--device", "cpu", "--out", str(out or tmp_path / "run"), *extra,
        ]

    return make


def _run_torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (the real launcher), checked to succeed."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    # Own process group: a hang is killed whole (torchrun's workers included), not left behind.
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("torchrun did not finish in 300 s:\n" + err[-3000:])
    assert proc.returncode == 0, out[-3000:] + err[-6000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture()
def torchrun():
    """Run two processes through torchrun; returns the CompletedProcess."""
    return _run_torchrun


@pytest.fixture()
def offline_wandb(tmp_path, monkeypatch):
    """W&B with no account and no network: WANDB_MODE=offline, silent, no key or .netrc, and its
    own folders (config, cache, data) in tmp_path, so nothing is read from or left in $HOME."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "wandb-home"
    for name in ("CONFIG_DIR", "CACHE_DIR", "DATA_DIR", "ARTIFACT_DIR", "DIR"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(f"WANDB_{name}", str(home / name.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NETRC", str(home / "no-netrc"))
    monkeypatch.setenv("HOME", str(home))
    return home
