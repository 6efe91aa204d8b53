"""`downsample`: sizes, label maps, matched modalities, resume, size mixing, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.data import layouts, viton
from clothes_extractor.data.downsample import RECORD_NAME, downsample, target_size
from clothes_extractor.errors import ConfigError, DataError

runner = CliRunner()

# A palette that is not VITON's, to prove the source's own palette is kept.
ODD_PALETTE = [v for i in range(256) for v in ((i * 7) % 256, (i * 13) % 256, 255 - i)]


def run_cli(*args: str | Path):
    return runner.invoke(app, ["downsample", *map(str, args)])


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


def make_dataset(root: Path, ids_per_split: dict[str, list[str]], width: int = 60, height: int = 80) -> Path:
    """A tiny VITON-HD-layout data set: photo, parse (odd palette), cloth, cloth mask, keypoints."""
    rng = np.random.default_rng(0)
    for split, ids in ids_per_split.items():
        d = root / split
        for sample_id in ids:
            photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

            def save(img: Image.Image, folder: str) -> None:
                path = viton.sample_path(d, folder, sample_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                img.save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))

            save(Image.fromarray(photo), viton.PHOTO)
            labels = rng.choice(np.array([0, 2, 5, 9, 13, 14, 15], np.uint8), (height, width))
            save(viton.to_palette_image(labels, ODD_PALETTE), viton.PARSE)
            save(Image.fromarray(photo[::-1].copy()), viton.CLOTH)
            mask = np.where(rng.random((height, width)) > 0.5, 255, 0).astype(np.uint8)
            save(Image.fromarray(mask, "L"), viton.CLOTH_MASK)
            save(Image.fromarray(mask, "L"), "agnostic-mask")
            kp = viton.sample_path(d, "openpose_json", sample_id)
            kp.parent.mkdir(parents=True, exist_ok=True)
            kp.write_text(json.dumps({"version": 1.3, "people": [
                {"pose_keypoints_2d": [width, height, 0.9, 0, 0, 0], "pose_keypoints_3d": [1.0, 2.0, 3.0, 0.5]}
            ]}))
        (root / f"{split}_pairs.txt").write_text("".join(f"{i}.jpg {ids[-1]}.jpg\n" for i in ids))
    return root


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "src", {"train": ["00003_00", "00001_00", "00002_00"], "test": ["00009_00"]})


# --- geometry ----------------------------------------------------------------------------------


def test_target_size_keeps_aspect_and_longest_side():
    assert target_size(768, 1024, 64) == (48, 64)
    assert target_size(1024, 768, 64) == (64, 48)
    assert target_size(500, 500, 32) == (32, 32)
    assert target_size(1, 1000, 10) == (1, 10)  # never 0


# --- real samples ------------------------------------------------------------------------------


def test_real_samples_sizes_modes_and_labels(real_root: Path, tmp_path: Path):
    dst = tmp_path / "low"
    result = run_cli("-s", "64", "--src", real_root, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0, result.output
    src_dir, dst_dir = real_root / "test", dst / "test"
    folders = [f for f in viton.FOLDERS if (src_dir / f).is_dir()]
    for sample_id in viton.list_ids(src_dir):
        for folder in folders:
            src, out = viton.sample_path(src_dir, folder, sample_id), viton.sample_path(dst_dir, folder, sample_id)
            assert out.is_file(), out
            if folder == "openpose_json":
                continue
            with Image.open(src) as a, Image.open(out) as b:
                assert a.size == (768, 1024)
                assert b.size == (48, 64), (out, b.size)
                assert b.mode == a.mode, (out, a.mode, b.mode)
                if folder in viton.MASK_FOLDERS:
                    assert b.mode == "L"
                if folder in viton.LABEL_MAP_FOLDERS:
                    assert b.mode == "P"
                    assert b.getpalette() == a.getpalette()
                    got = np.asarray(b)
                    assert set(np.unique(got)) <= set(np.unique(np.asarray(a)))
                    np.testing.assert_array_equal(got, np.asarray(a.resize((48, 64), Image.NEAREST)))
    assert json.loads((dst / RECORD_NAME).read_text())["size"] == 64
    assert (dst / "test_pairs.txt").read_text() == (real_root / "test_pairs.txt").read_text()
    assert "written" in result.output and "failed" in result.output
    assert temp_files(dst) == []


def test_real_photos_close_to_full_decode_lanczos(real_root: Path, tmp_path: Path):
    """Draft decoding + LANCZOS stays close to a full-resolution LANCZOS resize."""
    downsample(real_root, tmp_path / "low", size=64, workers=1, progress=False)
    for folder in (viton.PHOTO, viton.CLOTH):
        src = viton.sample_path(real_root / "test", folder, "00006_00")
        ref = np.asarray(Image.open(src).convert("RGB").resize((48, 64), Image.LANCZOS), np.float64)
        got = np.asarray(Image.open(viton.sample_path(tmp_path / "low" / "test", folder, "00006_00")), np.float64)
        psnr = 10 * np.log10(255**2 / np.mean((ref - got) ** 2))
        assert psnr > 35, (folder, psnr)


def test_real_keypoints_scaled_with_the_photo(real_root: Path, tmp_path: Path):
    downsample(real_root, tmp_path / "low", size=64, workers=1, progress=False)
    name = "openpose_json/00006_00_keypoints.json"
    a = json.loads((real_root / "test" / name).read_text())["people"][0]
    b = json.loads((tmp_path / "low" / "test" / name).read_text())["people"][0]
    for key in ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d"):
        src, got = np.array(a[key]).reshape(-1, 3), np.array(b[key]).reshape(-1, 3)
        np.testing.assert_allclose(got[:, 0], src[:, 0] * 48 / 768, atol=1e-3)
        np.testing.assert_allclose(got[:, 1], src[:, 1] * 64 / 1024, atol=1e-3)
        np.testing.assert_array_equal(got[:, 2], src[:, 2])  # confidences unchanged


def test_first_n_keeps_modalities_matched(real_root: Path, tmp_path: Path):
    dst = tmp_path / "low"
    result = run_cli("-f", "2", "-s", "32", "--src", real_root, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0, result.output
    chosen = sorted(viton.list_ids(real_root / "test"))[:2]
    assert chosen == ["00006_00", "00017_00"]
    for folder in viton.FOLDERS:
        if (real_root / "test" / folder).is_dir():
            ids = sorted(viton.id_from_filename(folder, n) for n in os.listdir(dst / "test" / folder))
            assert ids == chosen, folder
    assert viton.read_id_list(dst / "test_pairs.txt") == chosen


# --- self-made data ----------------------------------------------------------------------------


def test_small_dataset_all_folders_and_splits(small: Path, tmp_path: Path):
    dst = tmp_path / "low"
    report = downsample(small, dst, size=40, first=2, workers=1, progress=False)
    assert report.ids == {"train": 2, "test": 1}
    assert report.written == 3 * 6 and report.skipped == 0 and report.failed == () and report.missing == 0
    for split, ids in (("train", ["00001_00", "00002_00"]), ("test", ["00009_00"])):
        for folder in (viton.PHOTO, viton.PARSE, viton.CLOTH, viton.CLOTH_MASK, "agnostic-mask", "openpose_json"):
            names = sorted(os.listdir(dst / split / folder))
            assert names == sorted(viton.FOLDERS[folder].format(id=i) for i in ids), (split, folder)
        parse_src = Image.open(viton.sample_path(small / split, viton.PARSE, ids[0]))
        parse = Image.open(viton.sample_path(dst / split, viton.PARSE, ids[0]))
        assert parse.size == (30, 40) and parse.mode == "P"
        assert parse.getpalette() == ODD_PALETTE
        np.testing.assert_array_equal(np.asarray(parse), np.asarray(parse_src.resize((30, 40), Image.NEAREST)))
        mask = Image.open(viton.sample_path(dst / split, "agnostic-mask", ids[0]))
        assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}  # PNG mask stays binary
        cloth_mask = Image.open(viton.sample_path(dst / split, viton.CLOTH_MASK, ids[0]))
        assert cloth_mask.mode == "L" and cloth_mask.size == (30, 40)
        kp = json.loads(viton.sample_path(dst / split, "openpose_json", ids[0]).read_text())["people"][0]
        assert kp["pose_keypoints_2d"] == [30, 40, 0.9, 0, 0, 0]
        assert kp["pose_keypoints_3d"] == [1.0, 2.0, 3.0, 0.5]
    assert (dst / "train_pairs.txt").read_text() == "00001_00.jpg 00002_00.jpg\n00002_00.jpg 00002_00.jpg\n"
    assert temp_files(dst) == []


def test_missing_files_are_counted_not_failed(small: Path, tmp_path: Path):
    viton.sample_path(small / "train", viton.CLOTH, "00001_00").unlink()
    report = downsample(small, tmp_path / "low", size=20, workers=1, progress=False)
    assert report.missing == 1 and report.failed == ()
    assert report.written == 4 * 6 - 1


def test_split_folder_as_source(small: Path, tmp_path: Path):
    report = downsample(small / "test", tmp_path / "low", size=20, workers=1, progress=False)
    assert report.ids == {"": 1} and report.written == 6
    assert Image.open(tmp_path / "low" / "image" / "00009_00.jpg").size == (15, 20)


def test_resume_skips_finished_files_and_redoes_missing_ones(small: Path, tmp_path: Path):
    dst = tmp_path / "low"
    first = downsample(small, dst, size=32, workers=1, progress=False)
    assert first.written == 24
    again = downsample(small, dst, size=32, workers=1, progress=False)
    assert (again.written, again.skipped, again.failed) == (0, 24, ())
    removed = viton.sample_path(dst / "train", viton.PARSE, "00002_00")
    stamp = viton.sample_path(dst / "train", viton.PHOTO, "00002_00").stat().st_mtime_ns
    removed.unlink()
    (removed.parent / ".00002_00.abc123.tmp.png").write_bytes(b"half a file")  # an interrupted write
    third = downsample(small, dst, size=32, workers=1, progress=False)
    assert (third.written, third.skipped) == (1, 23)
    assert removed.is_file()
    assert viton.sample_path(dst / "train", viton.PHOTO, "00002_00").stat().st_mtime_ns == stamp
    assert temp_files(dst) == []
    # Through the CLI too: a rerun says it skipped everything.
    result = run_cli("-s", "32", "--src", small, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0 and "0 written, 24 skipped" in result.output, result.output


def test_two_workers_write_the_same_files(small: Path, tmp_path: Path):
    one = downsample(small, tmp_path / "one", size=24, workers=1, progress=False)
    result = run_cli("-s", "24", "--src", small, "--dst", tmp_path / "two", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "24 written" in result.output
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert one.written == 24 and len(files) == 24 + 3  # + record + two pair files
    for rel in files:
        if rel.name != RECORD_NAME:
            assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    assert temp_files(tmp_path / "two") == []


# --- bad inputs --------------------------------------------------------------------------------


def test_mixing_sizes_is_refused_unless_overwrite(small: Path, tmp_path: Path):
    dst = tmp_path / "low"
    assert run_cli("-s", "32", "--src", small, "--dst", dst, "--workers", "1").exit_code == 0
    result = run_cli("-s", "16", "--src", small, "--dst", dst, "--workers", "1")
    assert_clean_failure(result, "size 32", "size 16", "--overwrite")
    assert Image.open(dst / "train" / "image" / "00001_00.jpg").size == (24, 32)  # untouched

    result = run_cli("-f", "1", "-s", "16", "--src", small, "--dst", dst, "--workers", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((dst / RECORD_NAME).read_text())["size"] == 16
    assert sorted(os.listdir(dst / "train" / "image")) == ["00001_00.jpg"]  # the old files are gone
    assert Image.open(dst / "train" / "image" / "00001_00.jpg").size == (12, 16)


def test_corrupt_source_file_is_reported_and_the_rest_written(small: Path, tmp_path: Path):
    bad_jpeg = viton.sample_path(small / "train", viton.CLOTH, "00002_00")
    bad_jpeg.write_bytes(bad_jpeg.read_bytes()[:400])  # truncated
    bad_png = viton.sample_path(small / "test", viton.PARSE, "00009_00")
    bad_png.write_text("not an image")
    dst = tmp_path / "low"
    result = run_cli("-s", "32", "--src", small, "--dst", dst, "--workers", "1")
    assert_clean_failure(result, str(bad_jpeg), str(bad_png), "2 failed", "22 written")
    assert not viton.sample_path(dst / "train", viton.CLOTH, "00002_00").exists()
    assert not viton.sample_path(dst / "test", viton.PARSE, "00009_00").exists()
    assert viton.sample_path(dst / "train", viton.PARSE, "00002_00").is_file()
    assert temp_files(dst) == []


def test_missing_src_is_a_clear_error(tmp_path: Path):
    result = run_cli("-s", "32", "--src", tmp_path / "nowhere", "--dst", tmp_path / "low")
    assert_clean_failure(result, "source data set not found", "nowhere", "--src")
    assert not (tmp_path / "low").exists()


def test_src_without_the_layout_is_a_clear_error(tmp_path: Path):
    (tmp_path / "src" / "photos").mkdir(parents=True)
    result = run_cli("--src", tmp_path / "src", "--dst", tmp_path / "low")
    assert_clean_failure(result, "matches no known data set layout", "viton-hd", "dresscode", "--layout")


def test_dst_inside_src_is_refused(small: Path):
    with pytest.raises(ConfigError, match="overlap"):
        downsample(small, small / "low", size=16, workers=1, progress=False)


def test_foreign_dst_is_not_mixed_into(small: Path, tmp_path: Path):
    (tmp_path / "low" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no downsample.json"):
        downsample(small, tmp_path / "low", size=16, workers=1, progress=False)


def test_invalid_size_is_a_usage_error(small: Path, tmp_path: Path):
    result = run_cli("-s", "0", "--src", small, "--dst", tmp_path / "low")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_module_does_not_import_torch():
    code = "import sys, clothes_extractor.data.downsample; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_command_starts_without_numpy():
    """numpy is a tenth of a second of start-up that downsample does not need."""
    code = "import sys, clothes_extractor.cli, clothes_extractor.data.downsample; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the other layouts: VITON (2018) and Dress Code --------------------------------------------

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def copy_subset(src: Path, dst: Path, layout: layouts.Layout, folders: dict[str, list[str]]) -> Path:
    """Copy the files of a few ids of each (split or category) folder, and its pair files."""
    for sub, ids in folders.items():
        for folder, patterns in layout.folders.items():
            for sample_id in ids:
                for pattern in patterns:
                    if (file := src / sub / folder / pattern.format(id=sample_id)).is_file():
                        (dst / sub / folder).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(file, dst / sub / folder / file.name)
        for pairs in (src / f"{sub}_pairs.txt", src / sub / "train_pairs.txt"):
            if pairs.is_file():
                out = dst / pairs.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pairs, out)
    return dst


def assert_label_map_nearest(src: Path, out: Path, size: tuple[int, int]) -> None:
    with Image.open(src) as a, Image.open(out) as b:
        assert b.size == size and b.mode == a.mode == "P", (out, b.size, b.mode)
        assert b.getpalette() == a.getpalette()
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a.resize(size, Image.NEAREST)))


@pytest.fixture(scope="module")
def synthetic_viton(tmp_path_factory) -> Path:
    from clothes_extractor.data.synthetic import make_sample_data

    root = tmp_path_factory.mktemp("viton2018") / "viton"
    make_sample_data(root, layout="viton", samples=6, size=(256, 192))
    return root


@pytest.fixture(scope="module")
def synthetic_dresscode(tmp_path_factory) -> Path:
    from clothes_extractor.data.synthetic import make_sample_data

    root = tmp_path_factory.mktemp("dresscode") / "dresscode"
    make_sample_data(root, layout="dresscode", samples=8, empty=2, size=(256, 192))
    return root


def test_viton_2018_keeps_its_own_folders_names_and_pairs(synthetic_viton: Path, tmp_path: Path):
    src = tmp_path / "src"
    shutil.copytree(synthetic_viton, src)
    (src / "train" / "pose").mkdir()  # CP-VTON's pose files: the older OpenPose keys (no _2d)
    (src / "train" / "pose" / "000000_0_keypoints.json").write_text(json.dumps(
        {"people": [{"pose_keypoints": [192, 256, 0.5, 96, 128, 1.0], "face_keypoints": []}]}
    ))
    dst = tmp_path / "low"
    result = run_cli("-f", "2", "-s", "64", "--src", src, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "downsampled viton to 64px" in result.output and "train: 2, test: 2" in result.output
    for split, ids in (("train", ["000000", "000001"]), ("test", ["000004", "000005"])):
        for folder, pattern in (("image", "{}_0.jpg"), ("image-parse", "{}_0.png"), ("cloth", "{}_1.jpg"), ("cloth-mask", "{}_1.jpg")):
            assert sorted(os.listdir(dst / split / folder)) == [pattern.format(i) for i in ids], (split, folder)
        for i in ids:
            assert Image.open(dst / split / "image" / f"{i}_0.jpg").size == (48, 64)
            assert Image.open(dst / split / "cloth-mask" / f"{i}_1.jpg").mode == "L"
            assert_label_map_nearest(src / split / "image-parse" / f"{i}_0.png", dst / split / "image-parse" / f"{i}_0.png", (48, 64))
        assert (dst / f"{split}_pairs.txt").read_text() == "".join(f"{i}_0.jpg {i}_1.jpg\n" for i in ids)
    pose = json.loads((dst / "train" / "pose" / "000000_0_keypoints.json").read_text())["people"][0]
    assert pose["pose_keypoints"] == [48, 64, 0.5, 24, 32, 1.0]
    assert layouts.open_split(dst, "test").list_ids() == ["000004", "000005"]
    assert json.loads((dst / RECORD_NAME).read_text())["layout"] == "viton"
    assert temp_files(dst) == []


def synthetic_viton_hd(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "hd", {"train": ["00001_00"]})


def test_dresscode_keeps_categories_both_images_and_pair_files(synthetic_dresscode: Path, tmp_path: Path):
    src = synthetic_dresscode  # upper_body: 000000-000003 train, 000006-000007 test; dresses: 000004-000005 train
    dst = tmp_path / "low"
    report = downsample(src, dst, size=64, first=1, workers=1, progress=False)
    assert report.layout == "dresscode" and report.ids == {"upper_body": 2, "dresses": 1}
    assert report.missing == 0 and report.failed == ()
    for category, ids in (("upper_body", ["000000", "000006"]), ("dresses", ["000004"])):
        images = sorted(os.listdir(dst / category / "images"))
        assert images == sorted(f"{i}_{k}.jpg" for i in ids for k in (0, 1)), category
        for i in ids:
            assert Image.open(dst / category / "images" / f"{i}_1.jpg").size == (48, 64)
            assert_label_map_nearest(src / category / "label_maps" / f"{i}_4.png", dst / category / "label_maps" / f"{i}_4.png", (48, 64))
    assert (dst / "upper_body" / "train_pairs.txt").read_text() == "000000_0.jpg\t000000_1.jpg\n"
    assert (dst / "upper_body" / "test_pairs_paired.txt").read_text() == "000006_0.jpg\t000006_1.jpg\n"
    assert layouts.open_split(dst, "train").list_ids() == ["000000", "000004"]
    # --category picks categories; on another layout it is an error naming the layout.
    only = downsample(src, tmp_path / "dresses", size=64, categories="dresses", workers=1, progress=False)
    assert only.ids == {"dresses": 2} and not (tmp_path / "dresses" / "upper_body").exists()
    result = run_cli("-s", "64", "--src", src, "--dst", tmp_path / "x", "--category", "lower_body")
    assert_clean_failure(result, "lower_body", "not found")
    result = run_cli("-s", "64", "--src", src, "--dst", tmp_path / "x", "--layout", "viton")
    assert_clean_failure(result, "holds no viton samples", "--layout")
    result = run_cli("-s", "64", "--src", synthetic_viton_hd(tmp_path), "--dst", tmp_path / "y", "--layout", "viton")
    assert_clean_failure(result, "holds no viton samples", "image/{id}_0.jpg")  # its photos are not <n>_0.jpg
    assert not (tmp_path / "y").exists()


def test_enlarging_is_refused_with_one_line(synthetic_viton: Path, tmp_path: Path):
    dst = tmp_path / "big"
    result = run_cli("-s", "512", "--src", synthetic_viton, "--dst", dst)
    assert_clean_failure(result, "size 512 is larger than the source photos (192x256", "at most 256")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not dst.exists()
    assert downsample(synthetic_viton, dst, size=256, first=1, workers=1, progress=False).failed == ()  # the same size is fine


def test_a_file_smaller_than_the_size_fails_alone(small: Path, tmp_path: Path):
    Image.new("L", (10, 12)).save(viton.sample_path(small / "train", "agnostic-mask", "00001_00"))
    report = downsample(small, tmp_path / "low", size=40, workers=1, progress=False)
    assert [(p.name, "never enlarges" in m) for p, m in report.failed] == [("00001_00_mask.png", True)]


@pytest.fixture
def real_viton_2018(tmp_path: Path) -> Path:
    root = SHARED / "viton-2018"
    if not (root / "train" / "image").is_dir():
        pytest.skip(f"real VITON (2018) samples not found at {root} (they live in the shared/ folder beside the repo)")
    train = layouts.VITON.list_ids(root / "train")[:3]
    test = layouts.VITON.list_ids(root / "test")[:2]
    out = copy_subset(root, tmp_path / "viton", layouts.VITON, {"train": train, "test": test})
    for split, ids in (("train", train), ("test", test)):  # the pair files of the subset
        (out / f"{split}_pairs.txt").write_text("".join(f"{i}_0.jpg {i}_1.jpg\n" for i in ids))
    return out


def test_real_viton_2018(real_viton_2018: Path, tmp_path: Path):
    src, dst = real_viton_2018, tmp_path / "low"
    result = run_cli("-f", "2", "-s", "64", "--src", src, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "downsampled viton" in result.output and "0 failed, 0 missing" in result.output
    for split in ("train", "test"):
        ids = layouts.VITON.list_ids(src / split)[:2]
        assert layouts.VITON.list_ids(dst / split) == ids
        for i in ids:
            with Image.open(src / split / "image" / f"{i}_0.jpg") as a:
                assert a.size == (192, 256)
            assert Image.open(dst / split / "cloth" / f"{i}_1.jpg").size == (48, 64)
            assert Image.open(dst / split / "cloth-mask" / f"{i}_1.jpg").mode == "L"
            assert_label_map_nearest(src / split / "image-parse" / f"{i}_0.png", dst / split / "image-parse" / f"{i}_0.png", (48, 64))
        assert viton.read_id_list(dst / f"{split}_pairs.txt") == [f"{i}_0" for i in ids]
    result = run_cli("-s", "768", "--src", src, "--dst", tmp_path / "big")
    assert_clean_failure(result, "larger than the source photos (192x256", "at most 256")


@pytest.fixture
def real_dresscode(tmp_path: Path) -> Path:
    root = SHARED / "dresscode-samples"
    if not (root / "upper_body" / "images").is_dir():
        pytest.skip(f"real Dress Code samples not found at {root} (they live in the shared/ folder beside the repo)")
    chosen = {c: layouts.DRESSCODE.list_ids(root / c)[:2] for c in layouts.DRESSCODE_CATEGORIES}
    out = copy_subset(root, tmp_path / "dresscode", layouts.DRESSCODE, chosen)
    for c, ids in chosen.items():  # the pair files of the subset
        (out / c / "train_pairs.txt").write_text("".join(f"{i}_0.jpg\t{i}_1.jpg\n" for i in ids))
    return out


def test_real_dresscode(real_dresscode: Path, tmp_path: Path):
    src, dst = real_dresscode, tmp_path / "low"
    result = run_cli("-f", "1", "-s", "128", "--src", src, "--dst", dst, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "upper_body: 1, lower_body: 1, dresses: 1" in result.output and "0 missing" in result.output
    for category in layouts.DRESSCODE_CATEGORIES:
        (i,) = layouts.DRESSCODE.list_ids(dst / category)
        for k in (0, 1):
            assert Image.open(dst / category / "images" / f"{i}_{k}.jpg").size == (96, 128)
        assert_label_map_nearest(src / category / "label_maps" / f"{i}_4.png", dst / category / "label_maps" / f"{i}_4.png", (96, 128))
        # Dress Code's keypoints live in a fixed 384x512 frame: copied as they are.
        name = f"keypoints/{i}_2.json"
        assert (dst / category / name).read_bytes() == (src / category / name).read_bytes()
        assert (dst / category / "train_pairs.txt").read_text() == f"{i}_0.jpg\t{i}_1.jpg\n"
    split = layouts.open_split(dst, "train")
    assert len(split.list_ids()) == 3
