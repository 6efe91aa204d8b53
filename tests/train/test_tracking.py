"""--report-to: TensorBoard and W&B (offline: no account, no network), read back from their own
files after tiny CPU runs, against the run's metrics.jsonl and sample pictures."""

from __future__ import annotations

import io
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.errors import ConfigError
from clothes_extractor.train import tracking
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.runs import resume_config
from clothes_extractor.train.tracking import Trackers, epoch_scalars, parse_report_to, resolve_reporters

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()
QUICK = ("--perceptual", "0")


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _pixels(data) -> np.ndarray:
    return np.asarray(Image.open(data).convert("RGB"))


# --- reading an offline W&B run back -------------------------------------------------------------

def wandb_records(path: Path):
    """The records of a ``run-<id>.wandb`` file: W&B's log format (a LevelDB-style log: a 7-byte
    header, then 32 KiB blocks of chunks, each ``<crc32 u32><length u16><type u8>`` + data; types
    1 full, 2 first, 3 middle, 4 last), each record a ``wandb_internal_pb2.Record``. wandb ships
    no reader of its own any more (``wandb.sdk.internal.datastore`` went with the Go core)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B log (header {data[:7]!r})"
    pos, parts = 7, []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # the block's zero padding
            pos += left
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        pos += 7
        if kind == 0:  # padding to the block's end
            pos += length
            continue
        parts.append(data[pos:pos + length])
        pos += length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def finished_records(run_dir: Path, timeout: float = 60.0) -> list:
    """The records of the offline run in ``run_dir`` once its ``exit`` record is on disk: W&B's
    core process writes the file after ``finish()`` returns, a moment later on a busy machine."""
    from google.protobuf.message import DecodeError

    (log,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(wandb_records(log))
        except DecodeError:  # a record half written
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _key(item) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def wandb_history(run_dir: Path) -> list[dict]:
    """The logged rows of an offline run folder, their values JSON-decoded; nested keys joined
    with dots (``samples.path``)."""
    return [
        {_key(i): json.loads(i.value_json) for i in r.history.item}
        for r in finished_records(run_dir) if r.WhichOneof("record_type") == "history"
    ]


def wandb_config(run_dir: Path) -> dict:
    config: dict = {}
    for r in finished_records(run_dir):
        if r.WhichOneof("record_type") == "config":
            config.update({_key(u): json.loads(u.value_json) for u in r.config.update})
    return config


def offline_runs(run: Path) -> list[Path]:
    return sorted((run / "wandb").glob("offline-run-*"))


# --- W&B ---------------------------------------------------------------------------------------

def test_wandb_offline_records_metrics_pictures_and_config_and_resume_continues_the_run(train_args, tmp_path, offline_wandb):
    pytest.importorskip("wandb")
    run = tmp_path / "run"
    # One of two epochs, then --resume: the W&B run must go on under the same id.
    _ok(runner.invoke(app, ["train-unet", *train_args(*QUICK, "--epochs", "2", "--max-steps", "3", "--report-to", "wandb")]))
    saved = json.loads((run / "wandb.json").read_text())
    assert saved["project"] == "clothes-extractor" and len(offline_runs(run)) == 1
    _ok(runner.invoke(app, ["train-unet", "--resume", str(run), "--device", "cpu", "--workers", "0"]))
    assert json.loads((run / "wandb.json").read_text()) == saved  # report_to came from config.json
    runs = offline_runs(run)
    assert len(runs) == 2 and all(r.name.endswith("-" + saved["id"]) for r in runs)

    records = _metrics(run)
    assert [r["epoch"] for r in records] == [1, 2]
    rows = [row for r in runs for row in wandb_history(r)]
    assert [row["_step"] for row in rows] == [1, 2]  # the epoch, continued after the resume
    for row, record, folder in zip(rows, records, runs):
        expected = epoch_scalars(record)
        assert {"step", "lr", "seconds", "train/l1", "val/l1", "val/ssim", "val/psnr"} <= set(expected)
        assert {k: row[k] for k in expected} == expected  # the same numbers as metrics.jsonl
        assert not {k for k in row if "/" in k or k in ("step", "lr", "seconds")} - set(expected)
        assert row["samples._type"] == "image-file"
        logged = folder / "files" / row["samples.path"]
        picture = run / "samples" / f"epoch_{record['epoch']:03d}.png"
        np.testing.assert_array_equal(_pixels(logged), _pixels(picture))

    for folder in runs:
        config = wandb_config(folder)
        assert config["mode"] == "unet" and config["report_to"] == "wandb" and config["preprocess"]["size"] == [64, 64]
    (second,) = [r.run for r in finished_records(runs[1]) if r.WhichOneof("record_type") == "run"]
    assert second.run_id == saved["id"] and second.resume


def test_without_a_wandb_login_it_logs_offline_and_says_so(tmp_path, offline_wandb, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE")  # no mode, no key, no .netrc: offline by default, not a prompt
    assert tracking.wandb_mode() == "offline"
    said = []
    run = tmp_path / "run"
    run.mkdir()
    trackers = Trackers.open(run, "wandb", {"mode": "unet"}, 0, said.append)
    trackers.log_epoch({"epoch": 1, "step": 3, "lr": 0.1, "seconds": 1.5, "train": {"l1": 0.5}, "val": {"l1": 0.25, "iou/bag": None}}, None)
    trackers.close()
    assert len(said) == 1 and "offline" in said[0] and "wandb sync" in said[0]
    (folder,) = offline_runs(run)
    (row,) = wandb_history(folder)
    assert row["_step"] == 1
    assert {k: v for k, v in row.items() if not k.startswith("_")} == {"step": 3, "lr": 0.1, "seconds": 1.5, "train/l1": 0.5, "val/l1": 0.25}
    assert wandb_config(folder)["mode"] == "unet"


def test_wandb_mode_follows_the_login_and_the_users_choice(tmp_path, offline_wandb, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    assert tracking.wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.wandb_mode() is None  # W&B's own reading of it
    monkeypatch.delenv("WANDB_MODE")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert tracking.wandb_mode() is None  # `wandb login` wrote a key: online
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert tracking.wandb_mode() is None


# --- TensorBoard ----------------------------------------------------------------------------------

def test_tensorboard_by_default_when_installed_read_back_with_its_own_reader(train_args, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    _ok(runner.invoke(app, ["train-unet", *train_args(*QUICK, "--max-steps", "1")]))  # no --report-to: auto
    assert json.loads((run / "config.json").read_text())["report_to"] == "auto"
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    (record,) = _metrics(run)
    expected = epoch_scalars(record)
    assert set(events.Tags()["scalars"]) == set(expected)
    for tag, value in expected.items():
        (event,) = events.Scalars(tag)
        assert event.step == 1 and event.value == pytest.approx(value, rel=1e-6)
    (image,) = events.Images("samples")
    np.testing.assert_array_equal(_pixels(io.BytesIO(image.encoded_image_string)), _pixels(run / "samples" / "epoch_001.png"))
    (text,) = events.Tensors("config/text_summary")
    config = json.loads(text.tensor_proto.string_val[0].decode().strip("`\n").removeprefix("json\n"))
    assert config == json.loads((run / "config.json").read_text())


def test_report_to_none_opens_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    trackers = Trackers.open(run, "none", {}, 0, print)
    trackers.log_epoch({"epoch": 1, "step": 1, "train": {}, "val": {}}, None)
    trackers.close()
    assert trackers.trackers == [] and list(run.iterdir()) == []


# --- the option -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wandb", "tensorboard"])
def test_a_missing_tracker_package_is_one_line_naming_the_extra_before_the_data(name, train_args, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    out = _user_error(runner.invoke(app, ["train-unet", *train_args(*QUICK, "--report-to", f"{name},tensorboard")]))
    assert f'pip install -e ".[{name}]"' in out and f"--report-to {name} needs the {name} package" in out
    assert not (tmp_path / "run").exists()  # before the run folder (and the data)


def test_auto_without_tensorboard_is_silently_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert resolve_reporters("auto") == ()
    assert resolve_reporters("none") == ()


def test_report_to_spellings():
    assert parse_report_to(None) == "auto"
    assert parse_report_to("wandb, TensorBoard") == "tensorboard,wandb"
    assert parse_report_to("all") == "tensorboard,wandb"
    assert parse_report_to("NONE") == "none"
    for bad in ("mlflow", "none,wandb", "", "auto,wandb"):
        with pytest.raises(ConfigError, match="--report-to"):
            parse_report_to(bad)
    assert TrainConfig(mode="unet", data="d", out="o", report_to="wandb,tensorboard").report_to == "tensorboard,wandb"


def test_a_bad_report_to_is_a_clear_error(train_args):
    out = _user_error(runner.invoke(app, ["train-unet", *train_args("--report-to", "mlflow")]))
    assert "--report-to 'mlflow'" in out and "tensorboard, wandb" in out


def test_resume_reports_where_the_run_did_unless_told(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(TrainConfig(mode="unet", data="d", out=str(run), report_to="wandb").to_json())
    assert resume_config(run, "generator").report_to == "wandb"
    assert resume_config(run, "generator", report_to="none").report_to == "none"
    old = json.loads((run / "config.json").read_text())
    del old["report_to"]  # a run from before the setting: auto, as it trained then
    (run / "config.json").write_text(json.dumps(old))
    assert resume_config(run, "generator").report_to == "auto"


def test_epoch_scalars_are_the_numbers_of_a_metrics_line():
    record = {"epoch": 2, "step": 6, "lr": 1e-3, "seconds": 2.0, "train": {"loss": 1.0}, "val": {"miou": 0.5, "iou/bag": None, "n": True}}
    assert epoch_scalars(record) == {"step": 6, "lr": 1e-3, "seconds": 2.0, "train/loss": 1.0, "val/miou": 0.5}
