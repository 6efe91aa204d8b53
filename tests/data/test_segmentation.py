"""The segmenter's data: photo and parse map in one geometry, aspect kept, padding undone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from clothes_extractor.data import labels as L
from clothes_extractor.data.segmentation import (
    SegmentationDataset,
    SegmentationPreprocess,
    content_mask,
    crop_to_photo,
    fit_labels,
    fit_photo,
)
from clothes_extractor.data.transforms import content_box
from clothes_extractor.data.viton import read_label_map, read_rgb_image
from clothes_extractor.errors import ConfigError, DataError


def _blocks(h: int, w: int) -> np.ndarray:
    """A label map of four quadrants, labels 2, 5, 9, 13."""
    out = np.full((h, w), 2, np.uint8)
    out[: h // 2, w // 2:] = 5
    out[h // 2:, : w // 2] = 9
    out[h // 2:, w // 2:] = 13
    return out


def test_photo_and_labels_share_the_content_box():
    frame, size = (1024, 768), (64, 64)
    left, top, cw, ch = content_box(frame, size)
    assert (left, top, cw, ch) == (8, 0, 48, 64)
    photo = np.zeros((*frame, 3), np.uint8)
    x = fit_photo(photo, size, fill=(255, 0, 0))
    assert x.shape == (64, 64, 3)
    assert (x[:, :left] == (255, 0, 0)).all() and (x[:, left + cw:] == (255, 0, 0)).all()
    assert (x[:, left: left + cw] == 0).all()
    labels = fit_labels(_blocks(*frame), size)
    assert labels.shape == size and (labels[:, :left] == 0).all() and (labels[:, left + cw:] == 0).all()
    assert labels[10, left + 5] == 2 and labels[10, left + cw - 5] == 5 and labels[60, left + 5] == 9
    assert np.array_equal(content_mask(frame, size), labels.astype(bool) | content_mask(frame, size))
    assert content_mask(frame, size).sum() == cw * ch


def test_labels_are_resampled_without_blending():
    rng = np.random.default_rng(0)
    parse = rng.choice(np.array([0, 5, 14], np.uint8), size=(1024, 768))
    out = fit_labels(parse, (256, 192))
    assert set(np.unique(out)) <= {0, 5, 14}


def test_wide_photos_are_padded_top_and_bottom():
    frame, size = (100, 300), (64, 64)
    left, top, cw, ch = content_box(frame, size)
    assert left == 0 and top > 0 and cw == 64
    x = fit_photo(np.zeros((*frame, 3), np.uint8), size)
    assert (x[:top] == 255).all() and (x[top + ch:] == 255).all()


def test_crop_to_photo_undoes_the_padding():
    frame, size = (1024, 768), (64, 64)
    labels = fit_labels(_blocks(*frame), size)
    cropped = crop_to_photo(labels, frame)
    assert cropped.shape == (64, 48)
    assert (cropped > 0).all()  # no padding left
    t = crop_to_photo(torch.zeros(2, 20, 64, 64), frame)
    assert t.shape == (2, 20, 64, 48)


def test_preprocess_settings_round_trip_and_errors():
    p = SegmentationPreprocess(size=(64, 96), label_set="viton13", fill=(0, 0, 0))
    d = p.to_dict()
    assert d == {"size": [64, 96], "label_set": "viton13", "fill": [0, 0, 0], "normalisation": "x / 127.5 - 1"}
    assert SegmentationPreprocess.from_dict(d) == p
    assert p.labels is L.VITON13
    with pytest.raises(ConfigError, match="use 64"):
        SegmentationPreprocess(size=(70, 70))
    with pytest.raises(ConfigError, match="cihp20, viton13"):
        SegmentationPreprocess(label_set="atr")
    with pytest.raises(ConfigError, match="normalisation"):
        SegmentationPreprocess.from_dict({**d, "normalisation": "imagenet"})


def test_items_of_the_synthetic_data_set(synthetic_root):
    ds = SegmentationDataset(synthetic_root, "test", preprocess=SegmentationPreprocess(size=(64, 64)))
    assert len(ds) == 3
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert -1 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert item["labels"].shape == (64, 64) and item["labels"].dtype == torch.int64
    assert item["valid"].shape == (64, 64) and item["valid"].dtype == torch.bool
    assert int(item["valid"].sum()) == 48 * 64
    # The parse map is exact: the labels are those of the file, resized with nearest neighbour.
    photo, parse = ds.read(0)
    assert np.array_equal(item["labels"].numpy(), fit_labels(parse, (64, 64)))
    assert set(item["labels"].unique().tolist()) <= {0, 2, 5, 9, 10, 13, 14, 15}
    assert item["id"] == "00009_00"


def test_viton13_items_carry_group_ids(synthetic_root):
    ds = SegmentationDataset(synthetic_root, "test", preprocess=SegmentationPreprocess(size=(64, 64), label_set="viton13"))
    labels = ds[0]["labels"].numpy()
    _, parse = ds.read(0)
    assert np.array_equal(labels, L.VITON13.encode(fit_labels(parse, (64, 64))))
    assert labels.max() < 13 and 3 in labels  # the upper group


def test_flip_mirrors_image_and_swaps_arms(synthetic_root):
    pre = SegmentationPreprocess(size=(64, 64))
    plain = SegmentationDataset(synthetic_root, "test", preprocess=pre)[0]
    flipped = SegmentationDataset(synthetic_root, "test", preprocess=pre, flip=1.0)[0]
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    expected = torch.from_numpy(L.CIHP20.mirror[plain["labels"].flip(-1).numpy()].astype(np.int64))
    assert torch.equal(flipped["labels"], expected)
    # A frontal person's left arm (14) is on the image right; mirrored, that arm is on the image
    # left, where a frontal person's right arm (15) is.
    assert (plain["labels"][:, 32:] == 14).any() and not (plain["labels"][:, :32] == 14).any()
    assert (flipped["labels"][:, :32] == 15).any() and not (flipped["labels"][:, :32] == 14).any()


def test_ids_from_a_list_and_missing_files(synthetic_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "test", root / "test")
    (root / "ids.txt").write_text("00010_00\n00011_00\n")
    ds = SegmentationDataset(root, "test", root / "ids.txt")
    assert ds.ids == ["00010_00", "00011_00"]
    (root / "test" / "image-parse-v3" / "00011_00.png").unlink()
    with pytest.raises(DataError, match="00011_00"):
        SegmentationDataset(root, "test", root / "ids.txt")
    with pytest.raises(ConfigError, match="flip"):
        SegmentationDataset(root, "test", ["00010_00"], flip=2.0)


def test_real_samples_keep_their_labels(real_root):
    pre = SegmentationPreprocess(size=(256, 192))  # VITON-HD's 3:4: no padding at all
    ds = SegmentationDataset(real_root, "test", preprocess=pre)
    assert len(ds) == 3
    for i in range(len(ds)):
        item = ds[i]
        assert bool(item["valid"].all())
        parse = read_label_map(real_root / "test" / "image-parse-v3" / f"{ds.ids[i]}.png")
        assert set(item["labels"].unique().tolist()) <= set(np.unique(parse).tolist())
        assert (item["labels"] == 5).any()  # every real sample wears upper clothes
        photo = read_rgb_image(real_root / "test" / "image" / f"{ds.ids[i]}.jpg")
        assert photo.shape[:2] == parse.shape
