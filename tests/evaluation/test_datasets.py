"""`evaluate` reads a photo as `extract` does: EXIF orientation applied."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data import viton
from clothes_extractor.evaluation.datasets import EvalDataset, PhotoParse, read_sample
from clothes_extractor.inference.photo import read_photo

ORIENTATION = 0x0112


def test_a_photo_stored_sideways_with_its_exif_tag_reads_as_displayed(synthetic_root, tmp_path):
    root = tmp_path / "viton"
    shutil.copytree(synthetic_root / "test", root / "test")
    split = viton.resolve_split_dir(root, "test")
    sample_id = split.list_ids()[0]
    path = split.files(sample_id).photo
    shown = np.asarray(Image.open(path).convert("RGB"))
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 clockwise to display": stored a quarter turn the other way
    Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90).save(path, quality=100, exif=exif.tobytes())
    assert viton.read_rgb_image(path).shape == (shown.shape[1], shown.shape[0], 3)  # the pixels as stored

    photo = read_photo(path)  # what `extract` reads
    assert photo.shape == shown.shape and np.abs(photo.astype(int) - shown).mean() < 2
    np.testing.assert_array_equal(read_sample(split, sample_id).photo, photo)
    np.testing.assert_array_equal(PhotoParse(split, [sample_id])[0]["photo"], photo)
    item = EvalDataset(root, "test", [sample_id], PreprocessConfig(size=(64, 64)), with_photo=True)[0]
    np.testing.assert_array_equal(item["photo"], photo)
