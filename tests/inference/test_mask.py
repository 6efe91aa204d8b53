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


def test_lossy_colour_parse_agrees_with_the_true_labels(sample):
    """The measurement behind COLOUR_TOLERANCE: JPEG 75 and a bilinear half-size resize of a real
    (or synthetic) parse map, snapped, agree with the true labels on >= 99.5% of the pixels."""
    import io

    from clothes_extractor.inference.mask import FAR_SHARE_LIMIT, snap_colours

    _, parse_path, _, labels, _ = sample
    rgb = Image.open(parse_path).convert("RGB")
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=75)
    snapped, changed, far = snap_colours(np.asarray(Image.open(buf).convert("RGB")))
    assert (snapped == labels).mean() >= 0.995 and 0 < changed and far <= FAR_SHARE_LIMIT
    w, h = rgb.size
    half = np.asarray(rgb.resize((w // 2, h // 2), Image.BILINEAR))
    truth = np.asarray(Image.fromarray(labels).resize((w // 2, h // 2), Image.NEAREST))
    snapped, _, far = snap_colours(half)
    assert (snapped == truth).mean() >= 0.99 and far <= FAR_SHARE_LIMIT


def test_same_aspect_allows_one_pixel_of_rounding():
    from clothes_extractor.inference.mask import same_aspect

    assert same_aspect((384, 512), (768, 1024)) and same_aspect((383, 512), (768, 1024))
    assert same_aspect((385, 513), (768, 1024)) and not same_aspect((512, 512), (768, 1024))


def test_area_warning_bounds():
    from clothes_extractor.inference.mask import area_note

    mask = np.zeros((100, 100), bool)
    mask[:20] = True
    assert area_note(mask) is None
    tiny = np.zeros((100, 100), bool)
    tiny[:5, :10] = True
    assert "0.5%" in area_note(tiny)
    assert "warning" in area_note(np.ones((10, 10), bool))
