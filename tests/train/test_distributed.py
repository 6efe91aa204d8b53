"""Two gloo processes through the real torchrun launcher: identical replicas, one set of outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(spec: dict, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), json.dumps(spec)]
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


def _ranks_identical(dump: Path) -> None:
    a, b = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert a.keys() == b.keys() and len(a) > 100
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_two_process_gan_run_and_resume(synthetic_root, lists, tmp_path):
    run, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    spec = {
        "mode": "gan", "data": str(synthetic_root), "out": str(run), "train_list": str(lists[0]),
        "val_list": str(lists[1]), "encoder": "resnet18", "encoder_weights": None, "perceptual": 0.0,
        "ssim": 0.0, "l1": 100.0, "epochs": 1, "batch_size": 1, "workers": 0, "device": "cpu",
        "augment": True, "dump": str(dump), "preprocess": {"size": [64, 64], "garment_labels": [5], "background": [255, 255, 255]},
    }
    _torchrun(spec, tmp_path)
    _ranks_identical(dump)
    # Exactly one set of outputs: one metrics line per epoch, one picture, one config.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1]
    assert records[0]["step"] == 3  # 6 train samples, 2 processes x batch 1
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png"]
    assert not list(run.glob("*.tmp*")) and not list(run.glob(".*"))

    # --resume under torchrun continues the same run.
    (dump / "rank0.safetensors").unlink()
    (dump / "rank1.safetensors").unlink()
    _torchrun({"resume": True, "out": str(run), "epochs": 2, "dump": str(dump)}, tmp_path)
    _ranks_identical(dump)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["step"] == 6
    saved = load_file(run / "last.safetensors")
    for k, v in load_file(dump / "rank0.safetensors").items():
        torch.testing.assert_close(saved[k], v, rtol=0, atol=0)
