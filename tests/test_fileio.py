"""Atomic writes: a failure leaves the old file and no temporary file behind."""

from __future__ import annotations

import pytest
from PIL import Image

from clothes_extractor.errors import DataError
from clothes_extractor.fileio import atomic_path, atomic_write_text, open_image, save_image


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_save_image_picks_the_format_from_the_extension(tmp_path):
    save_image(Image.new("RGB", (4, 3), (1, 2, 3)), tmp_path / "a.jpg")
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    assert open_image(tmp_path / "a.jpg").size == (4, 3)


def test_open_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="photo not found: .*nope.jpg"):
        open_image(tmp_path / "nope.jpg", "photo")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read mask .*bad.png"):
        open_image(tmp_path / "bad.png", "mask")
