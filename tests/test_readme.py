"""The README's Python API example runs as written and gives what `extract` writes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor import pretrained
from clothes_extractor.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _api_block() -> str:
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_equals_extract(tmp_path, monkeypatch):
    photos = pretrained.example_photos()
    if not photos:
        pytest.skip("the example photos were left out of this install")
    shutil.copy(photos[0], tmp_path / "person.jpg")
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(_api_block(), names)  # noqa: S102  (our own README)
    white = names["white"]
    assert white.shape == (1024, 768, 3) and white.dtype == np.uint8
    result = CliRunner().invoke(app, ["extract", "person.jpg", "-o", "cli.png", "--background", "white"])
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open("cli.png").convert("RGB"))
    assert np.abs(written.astype(int) - white).max() <= 1
