"""split: deterministic lists, 90/10 sizes, skipped and excluded samples, CLI errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.data import split as split_module
from clothes_extractor.data.split import make_split, read_exclude_list
from clothes_extractor.data.synthetic import make_sample_data, sample_id
from clothes_extractor.data.viton import read_id_list
from clothes_extractor.errors import ConfigError, DataError

# `synthetic_root` (tests/conftest.py): train/ 00000_00..00008_00, the last 2 without label 5.
EMPTY_IDS = ["00007_00", "00008_00"]
USABLE = [sample_id(i) for i in range(7)]
SMALL = (128, 96)  # (height, width)


@pytest.fixture()
def synthetic_copy(synthetic_root: Path, tmp_path: Path) -> Path:
    """A private copy of the shared synthetic data set, free to modify."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "viton"))


@pytest.fixture(scope="module")
def forty(tmp_path_factory) -> Path:
    """40 small train samples, all with a garment (for the 90/10 proportions)."""
    root = tmp_path_factory.mktemp("forty") / "viton"
    make_sample_data(root, samples=40, seed=5, test_fraction=0, size=SMALL)
    return root


def test_lists_sizes_and_skipped_empty_garments(synthetic_copy: Path) -> None:
    result = make_split(synthetic_copy)
    assert sorted(result.train_ids + result.val_ids) == USABLE
    assert len(result.val_ids) == 1 and len(result.train_ids) == 6  # round(7 * 0.1) = 1
    assert result.skipped == {"missing-files": [], "unreadable": [], "no-garment": EMPTY_IDS}
    assert result.n_skipped == 2 and result.excluded == 0
    # Files: sorted, one id per line, in the data set's root.
    assert result.paths["train"] == synthetic_copy / "train_ids.txt"
    assert (synthetic_copy / "train_ids.txt").read_text() == "".join(f"{i}\n" for i in result.train_ids)
    assert (synthetic_copy / "val_ids.txt").read_text() == "".join(f"{i}\n" for i in result.val_ids)
    assert result.train_ids == sorted(result.train_ids)
    skipped = (synthetic_copy / "skipped_ids.txt").read_text().splitlines()
    assert skipped[1:] == [f"{i} no-garment no pixel with label 5" for i in EMPTY_IDS]
    assert read_id_list(synthetic_copy / "skipped_ids.txt") == EMPTY_IDS


def test_ninety_ten(forty: Path, tmp_path: Path) -> None:
    result = make_split(forty, out=tmp_path)
    assert (len(result.train_ids), len(result.val_ids)) == (36, 4)
    assert not set(result.train_ids) & set(result.val_ids)
    result = make_split(forty, out=tmp_path / "q", val_fraction=0.25)
    assert (len(result.train_ids), len(result.val_ids)) == (30, 10)


def test_deterministic_and_seed_dependent(forty: Path, tmp_path: Path) -> None:
    a = make_split(forty, out=tmp_path / "a")
    b = make_split(forty, out=tmp_path / "b")
    c = make_split(forty, out=tmp_path / "c", seed=43)
    assert (a.train_ids, a.val_ids) == (b.train_ids, b.val_ids)
    assert (tmp_path / "a" / "val_ids.txt").read_bytes() == (tmp_path / "b" / "val_ids.txt").read_bytes()
    assert a.val_ids != c.val_ids
    # The rule, spelled out: sorted usable ids, permuted by default_rng(seed), first n_val to val.
    ids = [sample_id(i) for i in range(40)]
    order = np.random.default_rng(42).permutation(40)
    assert a.val_ids == sorted(ids[k] for k in order[:4])


def test_independent_of_file_system_order(forty: Path, tmp_path: Path, monkeypatch) -> None:
    reference = make_split(forty, out=tmp_path / "ref")
    # A copy whose files were created in the reverse order ...
    copy = tmp_path / "reversed"
    for src in sorted(forty.rglob("*"), reverse=True):
        if src.is_file() and src.parent.name != "viton":
            dst = copy / src.relative_to(forty)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    # ... and listed in a scrambled order.
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p=".": list(reversed(real_listdir(p))))
    other = make_split(copy)
    assert (other.train_ids, other.val_ids) == (reference.train_ids, reference.val_ids)


def test_missing_and_unreadable_files_are_skipped(synthetic_copy: Path) -> None:
    train = synthetic_copy / "train"
    (train / "cloth" / "00002_00.jpg").unlink()
    (train / "cloth-mask" / "00003_00.jpg").unlink()
    (train / "image-parse-v3" / "00003_00.png").unlink()
    (train / "image-parse-v3" / "00004_00.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    result = make_split(synthetic_copy)
    assert result.skipped == {
        "missing-files": ["00002_00", "00003_00"],
        "unreadable": ["00004_00"],
        "no-garment": EMPTY_IDS,
    }
    assert sorted(result.train_ids + result.val_ids) == ["00000_00", "00001_00", "00005_00", "00006_00"]
    lines = (synthetic_copy / "skipped_ids.txt").read_text().splitlines()
    assert "00002_00 missing-files cloth/00002_00.jpg" in lines
    assert "00003_00 missing-files image-parse-v3/00003_00.png,cloth-mask/00003_00.jpg" in lines
    assert any(line.startswith("00004_00 unreadable cannot read") for line in lines)


def test_garment_label_set_and_test_split(synthetic_copy: Path, tmp_path: Path) -> None:
    result = make_split(synthetic_copy, garment_labels=(5, 6))  # the dresses count now
    assert len(result.train_ids + result.val_ids) == 9 and result.n_skipped == 0
    result = make_split(synthetic_copy, split="test", out=tmp_path)
    assert sorted(result.train_ids + result.val_ids) == ["00009_00", "00010_00", "00011_00"]
    # A split folder given directly works too.
    result = make_split(synthetic_copy / "test", out=tmp_path / "direct")
    assert sorted(result.train_ids + result.val_ids) == ["00009_00", "00010_00", "00011_00"]


def test_exclude_plain_list(synthetic_copy: Path) -> None:
    listed = synthetic_copy / "drop.txt"
    listed.write_text("# duplicates\n00001_00\n00005_00.jpg 00005_00.jpg\n99999_00\n00007_00\n")
    result = make_split(synthetic_copy, exclude=listed)
    assert result.excluded == 3 and result.excluded_not_found == 1
    assert sorted(result.train_ids + result.val_ids) == ["00000_00", "00002_00", "00003_00", "00004_00", "00006_00"]
    assert result.skipped["no-garment"] == ["00008_00"]  # 00007_00 was excluded first


def test_exclude_json(synthetic_copy: Path) -> None:
    listed = synthetic_copy / "dups.json"
    listed.write_text(json.dumps({"test": {"leaked": ["00010_00.jpg"]}, "train": {"duplicates": ["00000_00.jpg", "00006_00.jpg"]}}))
    assert read_exclude_list(listed) == {"00010_00", "00000_00", "00006_00"}
    result = make_split(synthetic_copy, exclude=listed)
    assert result.excluded == 2 and result.excluded_not_found == 1
    assert sorted(result.train_ids + result.val_ids) == [sample_id(i) for i in range(1, 6)]


def test_exclude_the_published_protocol_file() -> None:
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "viton-hd-protocol" / "vitonhd_duplicate_filenames.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    ids = read_exclude_list(path)
    assert len(ids) == 6 + 36 + 95 and {"02015_00", "07309_00", "09158_00"} <= ids


def test_errors(synthetic_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        make_split(synthetic_copy, val_fraction=1.0)
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        make_split(synthetic_copy, split="val")
    with pytest.raises(DataError, match="exclude list not found"):
        make_split(synthetic_copy, exclude=tmp_path / "nope.txt")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot be parsed"):
        make_split(synthetic_copy, exclude=bad)
    # Fewer than 2 usable samples.
    only = tmp_path / "only.txt"
    only.write_text("".join(f"{sample_id(i)}\n" for i in range(1, 7)))
    with pytest.raises(DataError, match="1 usable sample.* at least 2"):
        make_split(synthetic_copy, exclude=only)
    assert not (synthetic_copy / "train_ids.txt").exists()


def test_process_pool_gives_the_same_lists(forty: Path, tmp_path: Path, monkeypatch) -> None:
    serial = make_split(forty, out=tmp_path / "serial", workers=1)
    monkeypatch.setattr(split_module, "_POOL_MIN_SAMPLES", 0)
    pooled = make_split(forty, out=tmp_path / "pooled", workers=2)
    assert (pooled.train_ids, pooled.val_ids, pooled.skipped) == (serial.train_ids, serial.val_ids, serial.skipped)


def test_cli_reports_and_refuses_to_overwrite(synthetic_copy: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["split", "--data", str(synthetic_copy)])
    assert result.exit_code == 0, result.output
    assert "skipped 2 samples" in result.output
    assert "no-garment: 2: 00007_00 00008_00" in result.output
    assert "split train: 6 train + 1 validation ids (seed 42)" in result.output
    before = (synthetic_copy / "val_ids.txt").read_text()

    result = runner.invoke(app, ["split", "--data", str(synthetic_copy), "--seed", "1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "already exist" in result.output and "--overwrite" in result.output
    assert (synthetic_copy / "val_ids.txt").read_text() == before

    listed = synthetic_copy / "drop.txt"
    listed.write_text("00001_00\n12345_00\n")
    result = runner.invoke(
        app, ["split", "-d", str(synthetic_copy), "--overwrite", "--labels", "5,dress", "--exclude", str(listed)]
    )
    assert result.exit_code == 0, result.output
    assert "excluded 1 ids" in result.output and "1 listed ids are not in this split" in result.output
    assert "split train: 7 train + 1 validation ids" in result.output


def test_cli_errors_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "no-such-data"
    result = runner.invoke(app, ["split", "--data", str(missing)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "data set folder not found" in result.output and "no-such-data" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["split", "--data", str(tmp_path), "--labels", "shirt"])
    assert result.exit_code == 1 and "unknown garment label 'shirt'" in result.output
    result = runner.invoke(app, ["split", "--help"])
    assert result.exit_code == 0 and "clothes-extractor split --data" in result.output


def test_split_module_does_not_import_torch() -> None:
    code = "import sys, clothes_extractor.cli, clothes_extractor.data.split; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
