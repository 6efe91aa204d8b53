"""A shortened `demo` end to end through the CLI."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app

runner = CliRunner()


def test_shortened_demo_runs_the_whole_pipeline(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--samples", "16", "--epochs", "1"])
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
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "--overwrite" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"
