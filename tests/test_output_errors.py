"""Output errors: every command that writes checks where it writes before the slow part, and an
OS error on output is one line naming the path, exit code 1, no traceback, no partial file.

A file where a folder should be (ENOTDIR) is produced for real; so is a full disk, with
/dev/full where a plain write fits. Permission, read-only and full disk at the atomic writer
cannot be produced for real as root on a writable disk: they are a monkeypatched OSError at the
single write seam (``os.replace`` / the temporary file's write), named so in each test.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor import fileio
from clothes_extractor.cli import app
from clothes_extractor.errors import OutputError
from clothes_extractor.fileio import atomic_write_text, check_writable, save_image

runner = CliRunner()


def _one_line_error(result, path_part: str) -> str:
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and "Error:" not in text.replace("error:", ""), text
    assert text.startswith("error: ") and path_part in text, text
    return text


@pytest.fixture()
def blocker(tmp_path) -> Path:
    """A plain file where the tests ask for a folder (ENOTDIR, for real)."""
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def test_check_writable_file_where_a_folder_should_be_enotdir(blocker):
    with pytest.raises(OutputError, match="a file stands where a folder should be") as info:
        check_writable(blocker / "out.png")
    assert str(blocker / "out.png") in str(info.value)
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        check_writable(blocker, folder=True)


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.png")
    check_writable(tmp_path / "folder", folder=True)
    assert list(tmp_path.iterdir()) == []  # the folders it made to probe are gone again


@pytest.mark.parametrize("code, words", [
    (errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left"),
])
def test_atomic_writer_os_error_at_replace_monkeypatched(code, words, tmp_path, monkeypatch):
    """EACCES/EROFS/ENOSPC cannot be produced for real as root: a monkeypatched os.replace."""
    target = tmp_path / "out.txt"
    target.write_text("earlier")

    def refuse(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(OutputError, match=words) as info:
        atomic_write_text(target, "new")
    assert str(target) in str(info.value)
    assert target.read_text() == "earlier"  # earlier output intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file


def test_atomic_image_write_full_disk_monkeypatched(tmp_path, monkeypatch):
    """ENOSPC while encoding into the temporary file (monkeypatched: the disk is not full)."""
    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(OutputError, match="no space left"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_dev_full_is_a_real_enospc():
    with pytest.raises(OSError) as info, open("/dev/full", "wb") as f:
        f.write(b"x" * 65536)
        f.flush()
    assert fileio.output_error("/dev/full", info.value).args[0].endswith("choose another place or free it")
    assert "no space left" in str(fileio.output_error("/dev/full", info.value))


# --- every command: a file where its output folder should be, checked before the slow part ------
# The checkpoints given do not exist: the output error coming first proves the check runs before
# the model is loaded.


def _photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


def test_extract_one_photo_enotdir_before_the_model(blocker, tmp_path):
    photo = _photo(tmp_path)
    result = runner.invoke(app, ["extract", str(photo), str(photo), "-o", str(blocker / "out.png"), "-c", str(tmp_path / "missing.safetensors")])
    _one_line_error(result, str(blocker / "out.png"))


def test_extract_folder_enotdir_before_the_model(blocker, tmp_path):
    result = runner.invoke(app, ["extract", "--images", str(tmp_path), "--masks", str(tmp_path), "-o", str(blocker / "out"), "-c", str(tmp_path / "missing.safetensors")])
    _one_line_error(result, str(blocker / "out"))


def test_segment_one_photo_and_folder_enotdir_before_the_model(blocker, tmp_path):
    photo = _photo(tmp_path)
    seg = str(tmp_path / "missing.safetensors")
    _one_line_error(runner.invoke(app, ["segment", str(photo), "-o", str(blocker / "p.png"), "-s", seg]), str(blocker / "p.png"))
    _one_line_error(runner.invoke(app, ["segment", "--images", str(tmp_path), "-o", str(blocker / "d"), "-s", seg]), str(blocker / "d"))


def test_split_dedup_downsample_prepare_enotdir(blocker, synthetic_root, tmp_path):
    data = str(synthetic_root)
    _one_line_error(runner.invoke(app, ["split", "--data", data, "--out", str(blocker / "lists")]), str(blocker / "lists"))
    _one_line_error(runner.invoke(app, ["dedup", "--data", data, "--out", str(blocker / "rep")]), str(blocker / "rep"))
    _one_line_error(runner.invoke(app, ["downsample", "--src", data, "--dst", str(blocker / "small"), "--size", "64"]), str(blocker / "small"))
    _one_line_error(runner.invoke(app, ["prepare", "--data", data, "--out", str(blocker / "cache" / "c")]), str(blocker / "cache"))


def test_evaluate_output_folder_enotdir(blocker, synthetic_root, tmp_path):
    from tests.inference.conftest import write_generator

    ckpt = write_generator(tmp_path / "g.safetensors")
    result = runner.invoke(app, ["evaluate", "-c", str(ckpt), "-d", str(synthetic_root), "--out", str(blocker / "ev"), "--no-network-metrics", "--workers", "0"])
    _one_line_error(result, str(blocker / "ev"))


def test_export_enotdir_before_the_model(blocker, tmp_path):
    from tests.inference.conftest import write_generator

    ckpt = write_generator(tmp_path / "g.safetensors")
    result = runner.invoke(app, ["export", str(ckpt), "-o", str(blocker / "m.onnx")])
    if "onnx" in result.output and "install" in result.output:
        pytest.skip("the [onnx] extra is not installed")
    _one_line_error(result, str(blocker / "m.onnx"))


@pytest.mark.parametrize("command", ["train-unet", "train-gan", "train-segmenter"])
def test_training_run_folder_enotdir_before_the_data(command, blocker, synthetic_root):
    args = [command, "--data", str(synthetic_root), "--out", str(blocker / "run"), "--epochs", "1", "--encoder-weights", "none"]
    if command != "train-segmenter":
        args += ["--perceptual", "0"]
    _one_line_error(runner.invoke(app, args), str(blocker / "run"))


def test_check_folder_creatable_writes_nothing(blocker, tmp_path):
    from clothes_extractor.fileio import check_folder_creatable

    assert check_folder_creatable(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing made, no probe file
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        check_folder_creatable(blocker / "run")
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        check_folder_creatable(blocker)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: permission cannot be tested for real
        return
    with pytest.raises(OutputError, match="permission denied"):
        check_folder_creatable(locked / "run")
