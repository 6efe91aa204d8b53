"""Reading a prepared cache (data/prepared/dataset.py): the same values as VitonDataset, byte for
byte; settings, ids and broken caches refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset
from clothes_extractor.data.prepared import PreparedDataset, prepare_dataset
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.errors import DataError
from tests.data.prepared.cases import CFG, GOOD, viton


def test_arrays_are_byte_identical_on_synthetic_data(synthetic_cache, synthetic_root):
    ds, ref = PreparedDataset(synthetic_cache), viton(synthetic_root)
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
    ds, ref = PreparedDataset(synthetic_cache), viton(synthetic_root)
    for i in range(len(ds)):
        a, b = ds[i], ref[i]
        assert a.keys() == b.keys() and a["id"] == b["id"]
        for key in ("input", "target", "alpha"):
            assert a[key].dtype == b[key].dtype == torch.float32 and torch.equal(a[key], b[key])


def test_items_with_augmentation_match_viton_dataset(synthetic_cache, synthetic_root):
    aug = AugmentConfig(flip=0.5, rotate=10, zoom=0.1)
    ds, ref = PreparedDataset(synthetic_cache, augment=aug), viton(synthetic_root, augment=aug)
    torch.manual_seed(5)
    a = [ds[i] for i in (2, 4)]
    torch.manual_seed(5)
    b = [ref[i] for i in (2, 4)]
    for x, y in zip(a, b):
        for key in ("input", "target", "alpha"):
            assert torch.equal(x[key], y[key])


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
