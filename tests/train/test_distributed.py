"""Two gloo processes through the real torchrun launcher: identical replicas, one set of outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def _ranks_identical(dump: Path) -> None:
    a, b = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert a.keys() == b.keys() and len(a) > 100
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_two_process_gan_run_and_resume(synthetic_root, lists, tmp_path, torchrun):
    run, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    spec = {
        "mode": "gan", "data": str(synthetic_root), "out": str(run), "train_list": str(lists[0]),
        "val_list": str(lists[1]), "encoder": "resnet18", "encoder_weights": None, "perceptual": 0.0,
        "ssim": 0.0, "l1": 100.0, "epochs": 1, "batch_size": 1, "workers": 0, "device": "cpu",
        "augment": True, "dump": str(dump), "report_to": "tensorboard", "preprocess": {"size": [64, 64], "garment_labels": [5], "background": [255, 255, 255]},
    }
    torchrun([str(WORKER), json.dumps(spec)], tmp_path)
    _ranks_identical(dump)
    # Exactly one set of outputs: one metrics line per epoch, one picture, one config.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1]
    assert records[0]["step"] == 3  # 6 train samples, 2 processes x batch 1
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png"]
    assert not list(run.glob("*.tmp*")) and not list(run.glob(".*"))
    # Only rank 0 tracks (TensorBoard here; W&B opens at the same place): one event file.
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1

    # --resume under torchrun continues the same run.
    (dump / "rank0.safetensors").unlink()
    (dump / "rank1.safetensors").unlink()
    torchrun([str(WORKER), json.dumps({"resume": True, "out": str(run), "epochs": 2, "dump": str(dump)})], tmp_path)
    _ranks_identical(dump)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["step"] == 6
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    saved = load_file(run / "last.safetensors")
    for k, v in load_file(dump / "rank0.safetensors").items():
        torch.testing.assert_close(saved[k], v, rtol=0, atol=0)
