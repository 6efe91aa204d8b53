"""VitonDataset on the real samples: shapes, ranges, id selection, and errors that name the file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset, to_tensor, to_uint8
from clothes_extractor.data.transforms import AugmentConfig
from clothes_extractor.errors import DataError

CFG = PreprocessConfig(size=(64, 64))


@pytest.fixture()
def real_copy(real_root, tmp_path):
    """A writable copy of the real samples' four training folders."""
    for folder in ("image", "image-parse-v3", "cloth", "cloth-mask"):
        shutil.copytree(real_root / "test" / folder, tmp_path / "test" / folder)
    shutil.copy(real_root / "test_pairs.txt", tmp_path)
    return tmp_path


def test_items_have_documented_shapes_and_ranges(real_root):
    ds = VitonDataset(real_root, "test", preprocess=PreprocessConfig(size=(64, 96)))
    assert ds.ids == ["00006_00", "00017_00", "14274_00"]
    item = ds[0]
    assert item["id"] == "00006_00"
    assert item["input"].shape == (3, 64, 96) and item["input"].dtype == torch.float32
    assert item["target"].shape == (3, 64, 96) and item["alpha"].shape == (1, 64, 96)
    for key, lo in (("input", -1), ("target", -1), ("alpha", 0)):
        assert item[key].min() >= lo and item[key].max() <= 1
    # White background -> +1 in the corners of input and target, alpha 0 there.
    assert item["input"][:, 0, 0].tolist() == [1, 1, 1] and item["alpha"][0, 0, 0] == 0
    # The garment covers a good part of the target: a real shirt, not an empty image.
    assert 0.15 < item["alpha"].mean() < 0.6


def test_tensor_conversion_round_trips():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mask = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(to_tensor(rgb)), rgb)
    np.testing.assert_array_equal(to_uint8(to_tensor(mask)), mask)
    assert to_tensor(np.zeros((2, 2, 3), np.uint8)).min() == -1


def test_ids_from_pair_file_and_list(real_root, tmp_path):
    ds = VitonDataset(real_root, "test", ids=real_root / "test_pairs.txt", preprocess=CFG)
    assert ds.ids == ["00006_00", "00017_00", "14274_00"]
    (tmp_path / "val_ids.txt").write_text("14274_00\n00006_00\n")
    ds = VitonDataset(real_root / "test", ids=tmp_path / "val_ids.txt", preprocess=CFG)
    assert ds.ids == ["14274_00", "00006_00"] and ds[0]["id"] == "14274_00"


def test_augmentation_is_paired_and_seeded(real_root):
    ds = VitonDataset(real_root, "test", preprocess=CFG, augment=AugmentConfig(flip=1.0, rotate=0, zoom=0))
    plain = VitonDataset(real_root, "test", preprocess=CFG)
    a, b = ds[1], plain[1]
    for key in ("input", "target", "alpha"):
        torch.testing.assert_close(a[key], b[key].flip(-1))  # the same flip on every image
    ds = VitonDataset(real_root, "test", preprocess=CFG, augment=AugmentConfig())
    torch.manual_seed(3)
    first = ds[2]["target"]
    torch.manual_seed(3)
    torch.testing.assert_close(ds[2]["target"], first)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="data set folder not found"):
        VitonDataset(tmp_path / "nope")
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="missing .*image"):
        VitonDataset(tmp_path)


def test_missing_file_names_sample_and_file(real_copy):
    (real_copy / "test" / "cloth" / "00017_00.jpg").unlink()
    with pytest.raises(DataError, match=r"sample 00017_00: .*cloth/00017_00\.jpg"):
        VitonDataset(real_copy, "test", preprocess=CFG)


def test_truncated_image_names_sample_and_file(real_copy):
    photo = real_copy / "test" / "image" / "00006_00.jpg"
    photo.write_bytes(photo.read_bytes()[:5000])
    ds = VitonDataset(real_copy, "test", preprocess=CFG)
    with pytest.raises(DataError, match=r"sample 00006_00: photo .*image/00006_00\.jpg"):
        ds[0]
    assert ds[1]["id"] == "00017_00"  # the others still load


def test_parse_map_that_is_not_a_label_map(real_copy):
    parse = real_copy / "test" / "image-parse-v3" / "00017_00.png"
    Image.open(parse).convert("RGB").save(parse)  # colours instead of indices
    with pytest.raises(DataError, match=r"sample 00017_00: .*00017_00\.png is not a label map: mode RGB"):
        VitonDataset(real_copy, "test", preprocess=CFG)[1]


def test_empty_garment_mask(real_copy):
    parse = real_copy / "test" / "image-parse-v3" / "14274_00.png"
    im = Image.open(parse)
    labels = np.asarray(im).copy()
    labels[labels == 5] = 0
    out = Image.fromarray(labels)
    out.putpalette(im.getpalette())
    out.save(parse)
    with pytest.raises(DataError, match="sample 14274_00: no garment pixel"):
        VitonDataset(real_copy, "test", preprocess=CFG)[2]
