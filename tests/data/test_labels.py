"""Label sets (cihp20, viton13) and the palette PNG format predictions are written in."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clothes_extractor.data import labels as L
from clothes_extractor.data.viton import LABELS, VITON_PALETTE, read_label_map, to_palette_image
from clothes_extractor.errors import ConfigError

# HR-VITON cp_dataset.py, written out again by hand: group name -> CIHP labels.
HR_VITON_GROUPS = {
    "background": [0, 10], "hair": [1, 2], "face": [4, 13], "upper": [5, 6, 7], "bottom": [9, 12],
    "left-arm": [14], "right-arm": [15], "left-leg": [16], "right-leg": [17], "left-shoe": [18],
    "right-shoe": [19], "socks": [8], "noise": [3, 11],
}


def test_viton13_is_hr_vitons_grouping():
    ls = L.VITON13
    assert ls.num_classes == 13
    assert {name: list(g) for name, g in zip(ls.classes, ls.groups)} == HR_VITON_GROUPS
    # Every CIHP label goes to the group that lists it.
    lut = ls.from_cihp
    for cls, group in enumerate(HR_VITON_GROUPS.values()):
        assert all(lut[v] == cls for v in group)


def test_cihp20_is_the_identity():
    ls = L.CIHP20
    assert ls.classes == LABELS and ls.num_classes == 20
    parse = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert np.array_equal(ls.encode(parse), parse)
    assert np.array_equal(ls.decode(parse), parse)


def test_representatives_and_decoding():
    ls = L.VITON13
    # Written as: background 0, hair 2, face 13, upper 5, bottom 9, ..., socks 8, noise 3.
    assert ls.representative == (0, 2, 13, 5, 9, 14, 15, 16, 17, 18, 19, 8, 3)
    cihp = np.arange(20, dtype=np.uint8)
    decoded = ls.decode(ls.encode(cihp))
    assert decoded[6] == decoded[7] == decoded[5] == 5  # dress and coat are written as upper-clothes
    assert decoded[10] == 0 and decoded[12] == 9
    # A decoded map encodes back to the same classes: the written format loses nothing the model knows.
    classes = np.arange(13, dtype=np.uint8)
    assert np.array_equal(ls.encode(ls.decode(classes)), classes)
    with pytest.raises(ValueError, match="out of range"):
        ls.decode(np.array([13]))


def test_garment_classes_of_each_set():
    assert L.CIHP20.classes_for([5]) == (5,)
    assert L.CIHP20.classes_for([5, 6, 7]) == (5, 6, 7)
    assert L.VITON13.classes_for([5]) == (3,)  # the whole upper group
    assert L.VITON13.classes_for([9, 12]) == (4,)
    assert "upper: upper-clothes, dress, coat" in L.VITON13.describe([3])
    assert L.CIHP20.describe([5]) == "5 (upper-clothes)"


def test_mirror_swaps_left_and_right_only():
    m20 = L.CIHP20.mirror
    assert (m20[14], m20[15], m20[16], m20[17], m20[18], m20[19]) == (15, 14, 17, 16, 19, 18)
    assert all(m20[i] == i for i in range(14))
    m13 = L.VITON13.mirror
    assert list(m13) == [0, 1, 2, 3, 4, 6, 5, 8, 7, 10, 9, 11, 12]


def test_unknown_label_set_lists_the_valid_names():
    with pytest.raises(ConfigError, match="cihp20, viton13"):
        L.get_label_set("lip")
    assert L.get_label_set("VITON13") is L.VITON13


def test_a_bad_grouping_is_refused():
    with pytest.raises(ValueError, match="exactly one group"):
        L.LabelSet("bad", ("a", "b"), ((0,), tuple(range(2, 20))), (0, 2))


def test_colourise_uses_the_viton_palette_of_the_representative():
    colours = L.class_colours(L.VITON13)
    assert tuple(colours[3]) == (254, 85, 0)  # upper -> upper-clothes' colour
    rgb = L.colourise(np.array([[0, 3]]), L.VITON13)
    assert rgb.shape == (1, 2, 3) and tuple(rgb[0, 0]) == (0, 0, 0)
    assert L.PREDICTION_PALETTE == VITON_PALETTE


def test_palette_png_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    parse = rng.integers(0, 20, size=(33, 17)).astype(np.uint8)
    path = tmp_path / "parse.png"
    to_palette_image(parse).save(path)
    image = Image.open(path)
    assert image.mode == "P" and image.getpalette()[:60] == VITON_PALETTE[:60]
    assert np.array_equal(read_label_map(path), parse)
    # viton13 classes written through their representatives come back as the same classes.
    classes = rng.integers(0, 13, size=(9, 11)).astype(np.uint8)
    to_palette_image(L.VITON13.decode(classes)).save(path)
    assert np.array_equal(L.VITON13.encode(read_label_map(path)), classes)


def test_real_parse_maps_round_trip(real_root, tmp_path):
    for path in sorted((real_root / "test" / "image-parse-v3").glob("*.png")):
        parse = read_label_map(path)
        out = tmp_path / path.name
        to_palette_image(L.CIHP20.decode(L.CIHP20.encode(parse))).save(out)
        assert np.array_equal(read_label_map(out), parse)
        assert Image.open(out).getpalette()[:60] == Image.open(path).getpalette()[:60]
        # viton13 keeps every pixel's group.
        grouped = L.VITON13.decode(L.VITON13.encode(parse))
        assert np.array_equal(L.VITON13.encode(grouped), L.VITON13.encode(parse))
