"""The prepared form: byte-identical to VitonDataset, batch path, staleness, atomic build, CLI."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data import prepared_build
from clothes_extractor.data.dataset import VitonDataset, to_tensor
from clothes_extractor.data.prepared import (
    PreparedDataset,
    batch_loader,
    batch_to_device,
    cache_path,
    open_prepared,
    prepare_dataset,
    to_model_range,
)
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.errors import DataError

CFG = PreprocessConfig(size=(64, 96))  # not square: height and width must not be swapped
GOOD = [f"{i:05d}_00" for i in range(7)]  # synthetic train ids with a garment (00007, 00008 have none)
EMPTY = ["00007_00", "00008_00"]
runner = CliRunner()


def _viton(root, ids=GOOD, cfg=CFG, split="train", augment=None):
    return VitonDataset(root, split, ids, cfg, augment)


@pytest.fixture(scope="module")
def synthetic_cache(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "cache"
    return prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, progress=False)


@pytest.fixture()
def data_copy(synthetic_root, tmp_path):
    """A writable copy of the synthetic train split (four training folders, the GOOD ids)."""
    for folder in ("image", "image-parse-v3", "cloth", "cloth-mask"):
        (tmp_path / "data" / "train" / folder).mkdir(parents=True)
        for name in os.listdir(synthetic_root / "train" / folder):
            if name.split(".")[0] in GOOD + EMPTY:
                shutil.copy2(synthetic_root / "train" / folder / name, tmp_path / "data" / "train" / folder / name)
    return tmp_path / "data"


# --- same values as VitonDataset -----------------------------------------------------------------


def test_layout_and_manifest(synthetic_cache, synthetic_root):
    names = sorted(p.name for p in synthetic_cache.iterdir())
    assert names == ["alphas.npy", "ids.txt", "inputs.npy", "manifest.json", "targets.npy"]
    assert (synthetic_cache / "ids.txt").read_text().split() == GOOD
    for name, shape in (("inputs.npy", (7, 64, 96, 3)), ("targets.npy", (7, 64, 96, 3)), ("alphas.npy", (7, 64, 96))):
        a = np.load(synthetic_cache / name, mmap_mode="r")
        assert a.shape == shape and a.dtype == np.uint8
    m = json.loads((synthetic_cache / "manifest.json").read_text())
    assert m["ids"] == GOOD and m["split"] == "train" and m["count"] == 7
    assert PreprocessConfig.from_dict(m["preprocess"]) == CFG
    assert len(m["files"]) == 7 * 4
    st = (synthetic_root / "train" / "cloth" / "00003_00.jpg").stat()
    assert m["files"]["cloth/00003_00.jpg"] == [st.st_size, st.st_mtime_ns]


def test_arrays_are_byte_identical_on_synthetic_data(synthetic_cache, synthetic_root):
    ds, ref = PreparedDataset(synthetic_cache), _viton(synthetic_root)
    assert ds.ids == ref.ids == GOOD and len(ds) == 7
    for i in range(len(ds)):
        for got, want in zip(ds.arrays(i), ref.arrays(i)):
            assert got.dtype == want.dtype == np.uint8 and got.shape == want.shape
            assert np.array_equal(got, want)


@pytest.mark.parametrize("size", [(64, 96), (224, 224)])
def test_arrays_are_byte_identical_on_real_samples(real_root, tmp_path, size):
    cfg = PreprocessConfig(size=size, background=(0, 0, 0))
    path = prepare_dataset(real_root, split="test", preprocess=cfg, out=tmp_path / "c", workers=1, progress=False)
    ds, ref = PreparedDataset(path), VitonDataset(real_root, "test", None, cfg)
    assert ds.ids == ref.ids == ["00006_00", "00017_00", "14274_00"]
    for i in range(3):
        for got, want in zip(ds.arrays(i), ref.arrays(i)):
            assert np.array_equal(got, want)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary leftovers


def test_items_match_viton_dataset_exactly(synthetic_cache, synthetic_root):
    ds, ref = PreparedDataset(synthetic_cache), _viton(synthetic_root)
    for i in range(len(ds)):
        a, b = ds[i], ref[i]
        assert a.keys() == b.keys() and a["id"] == b["id"]
        for key in ("input", "target", "alpha"):
            assert a[key].dtype == b[key].dtype == torch.float32 and torch.equal(a[key], b[key])


def test_items_with_augmentation_match_viton_dataset(synthetic_cache, synthetic_root):
    aug = AugmentConfig(flip=0.5, rotate=10, zoom=0.1)
    ds, ref = PreparedDataset(synthetic_cache, augment=aug), _viton(synthetic_root, augment=aug)
    torch.manual_seed(5)
    a = [ds[i] for i in (2, 4)]
    torch.manual_seed(5)
    b = [ref[i] for i in (2, 4)]
    for x, y in zip(a, b):
        for key in ("input", "target", "alpha"):
            assert torch.equal(x[key], y[key])


# --- the batch path ------------------------------------------------------------------------------


def test_uint8_batch_has_the_right_ids_and_values(synthetic_cache):
    ds = PreparedDataset(synthetic_cache)
    batch = ds.uint8_batch([5, 0, 3])
    assert batch["id"] == [GOOD[0], GOOD[3], GOOD[5]] and batch["index"].tolist() == [0, 3, 5]
    assert batch["input"].shape == (3, 64, 96, 3) and batch["alpha"].shape == (3, 64, 96)
    assert batch["input"].dtype == torch.uint8
    for row, i in enumerate((0, 3, 5)):
        x, y, alpha = ds.arrays(i)
        assert np.array_equal(batch["input"][row].numpy(), x)
        assert np.array_equal(batch["target"][row].numpy(), y)
        assert np.array_equal(batch["alpha"][row].numpy(), alpha)
    # On the device: exactly the floats of the per-item path.
    model = batch_to_device(batch, "cpu")
    assert model["input"].shape == (3, 3, 64, 96) and model["alpha"].shape == (3, 1, 64, 96)
    for row, i in enumerate((0, 3, 5)):
        item = ds[i]
        for key in ("input", "target", "alpha"):
            assert torch.equal(model[key][row], item[key])
    assert model["input"].is_contiguous()
    assert batch_to_device(batch, "cpu", channels_last=True)["input"].is_contiguous(memory_format=torch.channels_last)


def test_to_model_range_values_and_errors():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert to_model_range(x).flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])
    assert to_model_range(torch.full((2, 4, 5), 255, dtype=torch.uint8)).shape == (2, 1, 4, 5)
    rgb = torch.randint(0, 256, (2, 4, 5, 3), dtype=torch.uint8)
    assert torch.equal(to_model_range(rgb)[1], to_tensor(rgb[1].numpy()))
    with pytest.raises(TypeError, match="uint8"):
        to_model_range(rgb.float())
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        to_model_range(torch.zeros(2, 3, 4, 5, dtype=torch.uint8))


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_loader_delivers_every_sample_once(synthetic_cache, workers):
    ds = PreparedDataset(synthetic_cache)
    loader = batch_loader(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(0), workers=workers)
    batches = list(loader)
    assert len(loader) == 3 and [len(b["id"]) for b in batches] == [3, 3, 1]
    assert sorted(i for b in batches for i in b["id"]) == GOOD
    for b in batches:
        assert b["input"].dtype == torch.uint8 and b["input"].shape[1:] == (64, 96, 3)
        for row, i in enumerate(b["index"].tolist()):
            assert np.array_equal(b["target"][row].numpy(), ds.arrays(i)[1])
    # Seeded: the same generator seed, the same batches.
    again = list(batch_loader(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(0), workers=workers))
    assert [b["id"] for b in again] == [b["id"] for b in batches]
    dropped = list(batch_loader(ds, 3, shuffle=False, drop_last=True))
    assert [b["id"] for b in dropped] == [GOOD[0:3], GOOD[3:6]]


# --- staleness and settings ----------------------------------------------------------------------


def test_touched_source_file_makes_the_cache_stale(data_copy, tmp_path):
    path = prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    PreparedDataset(path)  # fresh: opens
    photo = data_copy / "train" / "image" / "00002_00.jpg"
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(DataError, match=r"stale: .*image/00002_00\.jpg changed \(modification time\)") as exc:
        PreparedDataset(path)
    message = str(exc.value)
    assert "clothes-extractor prepare" in message and "--overwrite" in message and "--size 64x96" in message
    assert len(PreparedDataset(path, check=False)) == 7  # check=False trusts the cache


def test_changed_or_missing_source_file_is_detected(data_copy, tmp_path):
    path = prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    mask = data_copy / "train" / "cloth-mask" / "00001_00.jpg"
    mask.write_bytes(mask.read_bytes() + b"\0")
    with pytest.raises(DataError, match=r"cloth-mask/00001_00\.jpg changed \(size"):
        PreparedDataset(path)
    (data_copy / "train" / "cloth" / "00004_00.jpg").unlink()
    with pytest.raises(DataError, match=r"cloth-mask/00001_00\.jpg changed .*; .*cloth/00004_00\.jpg is missing;"):
        PreparedDataset(path)


def test_open_prepared_finds_builds_and_refuses_stale(data_copy, tmp_path):
    root = tmp_path / "caches"
    assert open_prepared(data_copy, "train", GOOD, CFG, root=root) is None  # nothing built yet
    out = cache_path(data_copy, "train", GOOD, CFG, root=root)
    assert out.parent == root and out.name.startswith("train-64x96-")
    prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=out, workers=1, progress=False)
    ds = open_prepared(data_copy, "train", GOOD, CFG, root=root)
    assert isinstance(ds, PreparedDataset) and ds.path == out and ds.ids == GOOD
    # Other settings or another list: another cache, which does not exist.
    assert open_prepared(data_copy, "train", GOOD, PreprocessConfig(size=(64, 64)), root=root) is None
    assert open_prepared(data_copy, "train", GOOD[:3], CFG, root=root) is None
    # The default root is <data>/prepared.
    assert cache_path(data_copy, "train", GOOD, CFG).parent == data_copy / "prepared"
    photo = data_copy / "train" / "image" / "00000_00.jpg"
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="stale"):
        open_prepared(data_copy, "train", GOOD, CFG, root=root)
    assert open_prepared(data_copy, "train", GOOD, CFG, root=root, stale="none") is None


def test_preprocess_settings_or_ids_mismatch_is_refused(synthetic_cache):
    with pytest.raises(DataError, match=r"prepared with size 64x96, .* but size 64x64"):
        PreparedDataset(synthetic_cache, preprocess=PreprocessConfig(size=(64, 64)))
    with pytest.raises(DataError, match=r"background \(0, 0, 0\) was asked for"):
        PreparedDataset(synthetic_cache, preprocess=PreprocessConfig(size=(64, 96), background=(0, 0, 0)))
    with pytest.raises(DataError, match="another id list"):
        PreparedDataset(synthetic_cache, ids=GOOD[::-1])
    assert PreparedDataset(synthetic_cache, preprocess=CFG, ids=GOOD).ids == GOOD


def test_not_a_cache_and_corrupt_arrays(tmp_path, synthetic_cache):
    with pytest.raises(DataError, match="not a prepared data set"):
        PreparedDataset(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_cache, copy)
    with open(copy / "inputs.npy", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DataError, match="cannot read the arrays.*--overwrite"):
        PreparedDataset(copy)


# --- building ------------------------------------------------------------------------------------


def test_a_failing_worker_leaves_no_cache(synthetic_root, tmp_path, monkeypatch):
    real = prepared_build.preprocess_sample

    def flaky(raw, cfg):
        if raw.id == "00004_00":
            raise RuntimeError("simulated crash in a worker")
        return real(raw, cfg)

    monkeypatch.setattr(prepared_build, "preprocess_sample", flaky)  # forked workers inherit it
    out = tmp_path / "caches" / "c"
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, progress=False)
    assert not out.exists() and list((tmp_path / "caches").iterdir()) == []


def test_interrupt_during_build_keeps_the_old_cache(synthetic_root, tmp_path, monkeypatch):
    out = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    before = (out / "manifest.json").read_text()

    def interrupted(raw, cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepared_build, "preprocess_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=1, overwrite=True, progress=False)
    assert (out / "manifest.json").read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_samples_without_garment_are_named_and_nothing_is_written(synthetic_root, tmp_path):
    with pytest.raises(DataError) as exc:
        prepare_dataset(synthetic_root, preprocess=CFG, out=tmp_path / "c", workers=2, progress=False)
    message = str(exc.value)
    assert "2 sample(s)" in message and "00007_00" in message and "00008_00" in message
    assert "clothes-extractor split" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_files_are_named(data_copy, tmp_path):
    (data_copy / "train" / "cloth" / "00003_00.jpg").unlink()
    with pytest.raises(DataError, match=r"1 file\(s\) missing .*sample 00003_00: .*cloth/00003_00\.jpg.*split"):
        prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", progress=False)


def test_existing_cache_needs_overwrite(synthetic_root, tmp_path):
    out = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    with pytest.raises(DataError, match=r"already holds a prepared cache \(up to date\); pass --overwrite"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, progress=False)
    (out / "inputs.npy").write_bytes(b"")  # wreck it, then rebuild in place
    again = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, overwrite=True, progress=False)
    assert again == out and np.array_equal(PreparedDataset(out).arrays(6)[0], _viton(synthetic_root).arrays(6)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a prepared cache"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "other", overwrite=True, progress=False)


# --- the command ---------------------------------------------------------------------------------


def _run(*args, code=0):
    result = runner.invoke(app, ["prepare", *map(str, args)])
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_cli_prepares_a_list_and_refuses_to_overwrite(synthetic_root, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(GOOD) + "\n")
    out = _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", "--workers", "1")
    path = cache_path(synthetic_root, "train", GOOD, CFG, root=tmp_path / "caches")
    assert "prepared 7 samples (ids.txt) at 64x96:" in out and str(path) in out and " MB in " in out
    assert PreparedDataset(path).ids == GOOD
    assert json.loads((path / "manifest.json").read_text())["list"] == str(ids.resolve())
    again = _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", code=1)
    assert "already holds a prepared cache (up to date); pass --overwrite" in again
    _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", "--overwrite")


def test_cli_prepares_train_and_val_lists_by_default(data_copy):
    (data_copy / "train_ids.txt").write_text("\n".join(GOOD[:5]) + "\n")
    (data_copy / "val_ids.txt").write_text("\n".join(GOOD[5:]) + "\n")
    out = _run("--data", data_copy, "--size", "64", "--background", "black")
    assert "prepared 5 samples (train_ids.txt) at 64x64" in out and "prepared 2 samples (val_ids.txt)" in out
    cfg = PreprocessConfig(size=(64, 64), background=(0, 0, 0))
    assert open_prepared(data_copy, "train", data_copy / "train_ids.txt", cfg).ids == GOOD[:5]
    assert open_prepared(data_copy, "train", data_copy / "val_ids.txt", cfg).ids == GOOD[5:]
    assert len(list((data_copy / "prepared").iterdir())) == 2


def test_cli_errors(tmp_path, data_copy):
    out = _run("--data", tmp_path / "nope", code=1)
    assert "data set folder not found" in out
    out = _run("--data", data_copy, "--size", "250", code=1)
    assert "not a multiple of 32; use 256" in out
    out = _run("--data", data_copy, "--size", "64", code=1)  # no lists: every sample, 2 have no garment
    assert "00007_00" in out and "clothes-extractor split" in out
    assert not (data_copy / "prepared").exists() or not any((data_copy / "prepared").iterdir())
