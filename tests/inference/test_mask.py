"""Garment masks of every kind read as the same mask; colours map to labels exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clothes_extractor.errors import DataError
from clothes_extractor.inference.mask import colours_to_labels, decode_garment_mask, detect_mask_kind, read_garment_mask


@pytest.mark.parametrize(
    "kind, detected",
    [("labels", "labels"), ("binary_L", "binary"), ("binary_1", "binary"), ("alpha", "binary"),
     ("colours", "colours"), ("zero_one", "binary")],
)
def test_every_mask_kind_reads_as_the_same_garment_mask(mask_files, sample, kind, detected):
    mask = sample[4]
    assert detect_mask_kind(Image.open(mask_files[kind])) == detected
    got = read_garment_mask(mask_files[kind], (5,))
    assert got.dtype == bool and got.shape == mask.shape
    np.testing.assert_array_equal(got, mask)


def test_forced_mask_kinds(mask_files, sample):
    mask = sample[4]
    np.testing.assert_array_equal(read_garment_mask(mask_files["colours"], (5,), "colours"), mask)
    np.testing.assert_array_equal(read_garment_mask(mask_files["alpha"], (5,), "binary"), mask)
    # A palette label map forced to binary: the grey level of its colours, not the garment.
    assert not np.array_equal(read_garment_mask(mask_files["labels"], (5,), "binary"), mask)
    with pytest.raises(DataError, match="not a label map"):
        read_garment_mask(mask_files["colours"], (5,), "labels")


def test_garment_labels_come_from_the_caller(mask_files, sample):
    labels = sample[3]
    got = read_garment_mask(mask_files["colours"], (5, 9))  # upper clothes + pants
    np.testing.assert_array_equal(got, np.isin(labels, (5, 9)))


def test_colours_map_to_labels_exactly_in_both_palettes():
    viton = np.array([[[254, 85, 0], [0, 0, 0], [51, 169, 220], [1, 2, 3]]], np.uint8)
    lip = np.array([[[255, 85, 0], [0, 0, 0], [51, 170, 221], [253, 85, 0]]], np.uint8)
    np.testing.assert_array_equal(colours_to_labels(viton), [[5, 0, 14, 255]])
    np.testing.assert_array_equal(colours_to_labels(lip), [[5, 0, 14, 255]])


def test_a_black_and_white_rgb_mask_is_binary_not_colours():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[50, 50] = 255  # 99.99% black, a palette colour, but no label colour at all
    image = Image.fromarray(rgb)
    assert detect_mask_kind(image) == "binary"
    mask, how = decode_garment_mask(image, (5,))
    assert mask.sum() == 1 and mask[50, 50] and "grey" in how
