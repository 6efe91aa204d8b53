"""`demo` through the CLI: the default models on the shipped example photos, and a shortened
`demo --train` end to end."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app

runner = CliRunner()


def test_shortened_demo_runs_the_whole_pipeline(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--train", "--out", str(out), "--samples", "16", "--epochs", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    # Every stage left its files.
    assert (out / "synthetic" / "train" / "image").is_dir()
    assert json.loads((out / "synthetic-64" / "downsample.json").read_text())["size"] == 64
    assert (out / "synthetic-64" / "train_ids.txt").read_text().split()
    assert len((out / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert set(metrics["native"]) == {"model", "white", "input"} and "paper" in metrics
    assert metrics["samples"] == 4  # the test quarter of 16
    extracted = list(out.glob("extracted_*.png"))
    assert len(extracted) == 1 and Image.open(extracted[0]).size == (768, 1024)
    # The report names the pictures it wrote.
    for name in ("training pictures", "evaluation grid", "extracted garment"):
        assert name in result.output
    assert str(out / "eval" / "grid.png") in result.output.replace("\n", "")


def test_demo_does_not_overwrite_without_asking(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--train", "--out", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "--overwrite" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_demo_extracts_the_example_photos_with_the_default_models(tmp_path):
    from clothes_extractor import pretrained

    photos = pretrained.example_photos()
    assert [p.stem for p in photos] == ["00006_00", "00017_00", "14274_00"]
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for photo in photos:
        garment = Image.open(out / f"{photo.stem}.png")
        assert garment.size == (768, 1024) and garment.mode == "RGB"
        # Not a blank image: the garment covers a good part of the catalogue frame.
        dark = (np.asarray(garment.convert("L")) < 200).mean()
        assert 0.15 < dark < 0.9
    sheet = Image.open(out / "demo.png")
    assert sheet.size == (4 * 240, 3 * 336)  # photo | mask | extracted | true garment, one row each
    assert str(out / "demo.png") in result.output.replace("\n", "")
    # A second run refuses to overwrite.
    again = runner.invoke(app, ["demo", "--out", str(out), "--device", "cpu"])
    assert again.exit_code == 1 and "--overwrite" in again.output
