"""Atomic writes: a failure leaves the old file and no temporary file behind."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from clothes_extractor.errors import DataError
from clothes_extractor.fileio import atomic_path, atomic_write_text, open_image, remove_stale_temp_files, save_image


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


def test_atomic_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # not the 0o600 of a temp file
    finally:
        os.umask(old)


def test_remove_stale_temp_files_clears_only_those_of_the_path(tmp_path):
    atomic_write_text(tmp_path / "best.safetensors", "whole")
    stale = [tmp_path / ".best.k2j3h4.tmp.safetensors", tmp_path / ".best.zz9.tmp.safetensors"]
    others = [tmp_path / ".last.k2j3h4.tmp.safetensors", tmp_path / ".best.k2j3h4.tmp.json"]
    for p in stale + others:
        p.write_bytes(b"half")
    assert sorted(remove_stale_temp_files(tmp_path / "best.safetensors")) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["best.safetensors", *(p.name for p in others)])
