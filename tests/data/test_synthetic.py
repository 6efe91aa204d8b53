"""make-sample-data: VITON-HD formats, determinism, garment consistency, CLI safety."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.data import viton
from clothes_extractor.data.synthetic import make_sample_data, render_sample, sample_id
from clothes_extractor.errors import DataError

# The `synthetic_root` fixture (tests/conftest.py): 12 samples, seed 0, 9 train of which the
# last 2 have no label-5 pixel, 3 test.
TRAIN_IDS = [sample_id(i) for i in range(9)]
TEST_IDS = [sample_id(i) for i in range(9, 12)]
EMPTY_IDS = ["00007_00", "00008_00"]
FOLDERS = (viton.PHOTO, viton.PARSE, "image-parse-agnostic-v3.2", viton.CLOTH, viton.CLOTH_MASK)
SMALL = (128, 96)  # (height, width): for tests that only need many files, fast


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _erode(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(size))) > 0


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(size))) > 0


def test_layout_ids_and_pair_files(synthetic_root: Path) -> None:
    for split, ids in (("train", TRAIN_IDS), ("test", TEST_IDS)):
        split_dir = synthetic_root / split
        assert viton.list_ids(split_dir) == ids
        for folder in FOLDERS:
            names = sorted(p.name for p in (split_dir / folder).iterdir())
            assert names == [viton.FOLDERS[folder].format(id=i) for i in ids]
        pairs = (synthetic_root / f"{split}_pairs.txt").read_text().splitlines()
        assert pairs == [f"{i}.jpg {i}.jpg" for i in ids]
        assert viton.read_id_list(synthetic_root / f"{split}_pairs.txt") == ids
        assert all(not viton.missing_files(split_dir, i) for i in ids)


def test_formats_match_real_viton_hd(synthetic_root: Path, real_root: Path) -> None:
    real_id = "00006_00"
    for folder in FOLDERS:
        real = Image.open(viton.sample_path(real_root / "test", folder, real_id))
        ours = Image.open(viton.sample_path(synthetic_root / "train", folder, "00000_00"))
        assert (ours.format, ours.mode, ours.size) == (real.format, real.mode, real.size) == (
            ours.format, ours.mode, (768, 1024)
        ), folder
        if ours.mode == "P":
            assert ours.getpalette() == real.getpalette() == viton.VITON_PALETTE
    # The library reads a synthetic sample exactly as a real one.
    sample = viton.read_sample(synthetic_root / "train", "00000_00")
    assert sample.photo.shape == (1024, 768, 3) and sample.cloth.shape == (1024, 768, 3)
    assert sample.parse.dtype == np.uint8 and sample.cloth_mask.dtype == bool


def test_parse_labels(synthetic_root: Path) -> None:
    for split, ids in (("train", TRAIN_IDS), ("test", TEST_IDS)):
        for i in ids:
            parse = viton.read_label_map(viton.sample_path(synthetic_root / split, viton.PARSE, i))
            agnostic = viton.read_label_map(viton.sample_path(synthetic_root / split, "image-parse-agnostic-v3.2", i))
            labels = set(np.unique(parse).tolist())
            garment = 6 if i in EMPTY_IDS else 5
            assert {0, 2, 9, 10, 13, 14, 15, garment} <= labels <= {0, 2, 5, 6, 9, 10, 13, 14, 15}, i
            assert (5 in labels) == (i not in EMPTY_IDS)
            # Agnostic: garment and arms removed, every other pixel unchanged.
            removed = np.isin(parse, (5, 6, 14, 15))
            assert not np.isin(agnostic, (5, 6, 14, 15)).any()
            assert (agnostic[removed] == 0).all() and (agnostic[~removed] == parse[~removed]).all()
            # The left arm (14) is the person's left: on the image's right, as in VITON-HD.
            xs14, xs15 = np.nonzero(parse == 14)[1], np.nonzero(parse == 15)[1]
            assert xs14.mean() > xs15.mean()
    assert viton.has_garment(synthetic_root / "train", "00000_00", (5,))
    assert not viton.has_garment(synthetic_root / "train", "00008_00", (5,))


def test_each_label_is_exactly_the_pixels_painted_for_it() -> None:
    sample = render_sample(0, 3)
    photo = sample.photo.astype(int)
    for label in np.unique(sample.parse):
        if label in (5, 6):
            continue
        pixels = photo[sample.parse == label]
        # One flat colour per part plus noise of at most +-3 (+-6 on the background).
        spread = pixels.max(axis=0) - pixels.min(axis=0)
        assert (spread <= (12 if label == 0 else 6)).all(), (label, spread)
    # The garment region takes only the garment's colours (bilinear warp blends pattern edges).
    colours = np.array(sample.garment_colours)
    garment = photo[_erode(sample.parse == 5, 3)]
    nearest = np.abs(garment[:, None, :] - colours[None]).max(axis=2).min(axis=1)
    assert np.mean(nearest <= 3) > 0.7 and np.mean(nearest <= 60) > 0.99


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])
def test_worn_garment_has_the_cloth_colours(synthetic_root: Path, index: int) -> None:
    sample = viton.read_sample(synthetic_root / "train", sample_id(index))
    worn = sample.photo[_erode(viton.garment_mask(sample.parse), 7)].astype(float)
    flat = sample.cloth[_erode(sample.cloth_mask, 7)].astype(float)
    # Same pattern, only scaled: the same mean colour, and each worn pixel near a cloth colour.
    assert np.abs(worn.mean(axis=0) - flat.mean(axis=0)).max() < 12
    palette = np.unique((flat // 16).astype(int), axis=0) * 16 + 8
    rng = np.random.default_rng(0)
    probe = worn[rng.choice(len(worn), size=min(2000, len(worn)), replace=False)]
    distance = np.abs(probe[:, None, :] - palette[None]).max(axis=2).min(axis=1)
    assert np.mean(distance <= 24) > 0.95
    # And it is not the background's colour.
    background = sample.photo[_erode(sample.parse == 0, 7)].astype(float).mean(axis=0)
    assert np.abs(worn.mean(axis=0) - background).max() > 20


def test_cloth_mask_covers_the_garment(synthetic_root: Path) -> None:
    for i in TRAIN_IDS:
        cloth = viton.read_rgb_image(viton.sample_path(synthetic_root / "train", viton.CLOTH, i))
        mask = viton.read_mask(viton.sample_path(synthetic_root / "train", viton.CLOTH_MASK, i))
        grey = np.asarray(Image.open(viton.sample_path(synthetic_root / "train", viton.CLOTH_MASK, i)))
        assert (np.mean(grey[_erode(mask, 5)] > 240) > 0.999) and (np.mean(grey[~_dilate(mask, 5)] < 15) > 0.999)
        not_white = cloth.min(axis=2) < 200
        assert not_white[~_dilate(mask, 5)].sum() == 0, i  # nothing drawn outside the mask
        assert np.mean((255 - cloth[_erode(mask, 5)]).max(axis=1) > 30) > 0.99  # the mask is garment
        background = cloth[~_dilate(mask, 5)]  # white; JPEG ringing leaves it near-white by the edge
        assert background.min() >= 225 and background.mean() > 254.5
        # Centred like a catalogue photo.
        ys, xs = np.nonzero(mask)
        assert abs((xs.min() + xs.max()) / 2 - 384) < 8 and abs((ys.min() + ys.max()) / 2 - 512) < 100
        assert 0.12 < mask.mean() < 0.6


def test_deterministic_and_independent_of_n(tmp_path: Path) -> None:
    a = make_sample_data(tmp_path / "a", samples=3, seed=7)
    make_sample_data(tmp_path / "b", samples=3, seed=7)
    make_sample_data(tmp_path / "c", samples=3, seed=8)
    make_sample_data(tmp_path / "d", samples=5, seed=7)
    files_a = _files(tmp_path / "a")
    assert a.train_ids == ["00000_00", "00001_00"] and a.test_ids == ["00002_00"]
    assert len(files_a) == 3 * 5 + 2
    assert files_a == _files(tmp_path / "b")
    files_c = _files(tmp_path / "c")
    assert files_c.keys() == files_a.keys()
    assert all(files_c[k] != files_a[k] for k in files_a if not k.endswith("pairs.txt"))
    # Sample i depends on (seed, i) only, not on how many samples there are.
    files_d = _files(tmp_path / "d")
    for folder in FOLDERS:
        for i in ("00000_00", "00001_00"):
            name = f"train/{folder}/{viton.FOLDERS[folder].format(id=i)}"
            assert files_d[name] == files_a[name]


def test_empty_samples_and_argument_checks(tmp_path: Path) -> None:
    made = make_sample_data(tmp_path / "e", samples=8, seed=1, empty=3, size=SMALL)
    assert made.train_ids == [sample_id(i) for i in range(6)] and made.test_ids == ["00006_00", "00007_00"]
    assert made.empty_ids == ["00003_00", "00004_00", "00005_00"]
    photo = Image.open(tmp_path / "e" / "train" / "image" / "00000_00.jpg")
    assert photo.size == (96, 128)
    with pytest.raises(DataError, match="--without-garment 7 is out of range: there are 6 train samples"):
        make_sample_data(tmp_path / "f", samples=8, empty=7)
    with pytest.raises(DataError, match="at least 1"):
        make_sample_data(tmp_path / "f", samples=0)
    assert not (tmp_path / "f").exists()


def test_cli_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["make-sample-data", str(target), "--samples", "2"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "is not empty" in result.output and "--overwrite" in result.output
    assert "Traceback" not in result.output
    assert [p.name for p in target.iterdir()] == ["notes.txt"]

    result = runner.invoke(app, ["make-sample-data", str(target), "-n", "4", "--seed", "3", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 synthetic samples (3 train, 1 test; seed 3)" in result.output
    assert (target / "notes.txt").read_text() == "mine"  # only what it writes is replaced
    # A smaller rebuild leaves no stale sample of the larger one behind.
    result = runner.invoke(app, ["make-sample-data", str(target), "-n", "2", "--overwrite", "--without-garment", "1"])
    assert result.exit_code == 0, result.output
    assert "1 without garment" in result.output
    assert sorted(p.name for p in (target / "train" / "image").iterdir()) == ["00000_00.jpg", "00001_00.jpg"]
    assert not any((target / "test" / "image").iterdir())
    assert (target / "test_pairs.txt").read_text() == ""


def test_cli_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["make-sample-data", "--help"])
    assert result.exit_code == 0
    assert "clothes-extractor make-sample-data" in result.output and "--without-garment" in result.output


def test_data_modules_do_not_import_torch() -> None:
    code = (
        "import sys, clothes_extractor.cli, clothes_extractor.data.synthetic, clothes_extractor.data.split; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
