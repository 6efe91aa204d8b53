"""A data set sample's own files through the inference API give the data set's arrays."""

from __future__ import annotations

import re

import numpy as np
import pytest

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data import viton
from clothes_extractor.data.dataset import VitonDataset
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.evaluation.datasets import EvalDataset
from clothes_extractor.inference.output import ExtractConfig
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.inference.pipeline import extract_file, photo_and_mask

SIZE = (64, 64)


@pytest.mark.parametrize("root", ["synthetic_root", "real_root"])  # real_root skips where ../shared is absent
def test_a_samples_own_files_give_the_datasets_arrays(request, root, extractor):
    root = request.getfixturevalue(root)
    split = viton.resolve_split_dir(root, "test")
    sample_id = split.list_ids()[0]
    files = split.files(sample_id)
    photo, mask = photo_and_mask(extractor, files.photo, files.parse)  # what `extract PHOTO PARSE` reads
    raw = viton.read_sample(split, sample_id)  # what training reads
    np.testing.assert_array_equal(photo, raw.photo)
    np.testing.assert_array_equal(mask, viton.garment_mask(raw.parse, extractor.labels))
    x = extractor.prepare(photo, mask)
    train_x = VitonDataset(root, "test", [sample_id], PreprocessConfig(size=SIZE)).arrays(0)[0]
    np.testing.assert_array_equal(x, train_x)
    item = EvalDataset(root, "test", [sample_id], PreprocessConfig(size=SIZE), with_photo=True)[0]
    np.testing.assert_array_equal(item["photo"], photo)
    np.testing.assert_array_equal(item["mask"], mask)
    np.testing.assert_array_equal(((item["input"].permute(1, 2, 0) + 1) * 127.5).round().numpy(), x)


def test_no_mask_and_no_segmenter_says_what_to_give(extractor, sample):
    with pytest.raises(ConfigError, match="give a mask, or a segmenter"):
        photo_and_mask(extractor, sample[0], None)


def test_a_folder_where_a_photo_belongs_is_named_a_folder(extractor, sample, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with pytest.raises(DataError, match=re.escape(f"{folder} is a folder; to extract every photo in a folder use --images {folder} -o OUTDIR")):
        extract_file(extractor, folder, None, tmp_path / "out.png", ExtractConfig())
    with pytest.raises(DataError, match=re.escape(f"mask {folder} is a folder; to extract a folder of photos with their masks use --images DIR --masks {folder} -o OUTDIR")):
        extract_file(extractor, sample[0], folder, tmp_path / "out.png", ExtractConfig())
    with pytest.raises(DataError, match=re.escape(f"photo {folder} is a folder, not an image file")):  # any other reader
        read_photo(folder)
    assert list(tmp_path.iterdir()) == [folder]
