"""Preprocessing: the input holds exactly the photo's garment pixels, the target the masked cloth."""

from __future__ import annotations

import numpy as np
import pytest

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data import viton
from clothes_extractor.data.transforms import (
    AugmentConfig,
    AugmentParams,
    augment,
    content_box,
    preprocess_input,
    preprocess_sample,
    preprocess_target,
    to_frame,
)
from clothes_extractor.errors import DataError
from PIL import Image

WHITE = (255, 255, 255)


def _bbox(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


@pytest.mark.parametrize("sample_id", ["00006_00", "14274_00"])
def test_input_holds_exactly_the_garment_pixels_of_a_real_photo(real_root, sample_id):
    raw = viton.read_sample(real_root / "test", sample_id)
    mask = viton.garment_mask(raw.parse)
    # 1024x1024 from a 768x1024 photo: scale 1, so pixels are copied, not resampled.
    x = preprocess_input(raw.photo, mask, PreprocessConfig(size=(1024, 1024)))
    y0, y1, x0, x1 = _bbox(mask)
    h, w = y1 - y0, x1 - x0
    top, left = (1024 - h) // 2, (1024 - w) // 2
    placed = x[top : top + h, left : left + w]
    m = mask[y0:y1, x0:x1]
    np.testing.assert_array_equal(placed[m], raw.photo[y0:y1, x0:x1][m])
    assert (placed[~m] == 255).all()
    outside = np.ones((1024, 1024), bool)
    outside[top : top + h, left : left + w] = False
    assert (x[outside] == 255).all()
    # The garment is centred.
    assert abs((top + h / 2) - 512) <= 1 and abs((left + w / 2) - 512) <= 1


def test_input_keeps_the_garment_scale_of_the_photo_frame():
    photo = np.zeros((128, 96, 3), np.uint8)
    photo[40:80, 30:50] = (10, 20, 30)
    mask = photo.sum(-1) > 0
    x = preprocess_input(photo, mask, PreprocessConfig(size=(64, 64), background=(0, 0, 0)))
    # The 128x96 frame becomes 64x48: the 40x20 garment becomes 20x10, centred.
    ys, xs = np.nonzero(x.sum(-1))
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (20, 10)
    assert (ys.min(), xs.min()) == (22, 27)
    np.testing.assert_array_equal(x[22:42, 27:37], np.broadcast_to((10, 20, 30), (20, 10, 3)))


def test_background_setting_is_used_for_input_and_target():
    photo = np.full((64, 48, 3), 90, np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[10:20, 10:20] = True
    cfg = PreprocessConfig(size=(64, 64), background=(0, 0, 0))
    x = preprocess_input(photo, mask, cfg)
    y, alpha = preprocess_target(photo, mask, cfg)
    assert x[0, 0].tolist() == [0, 0, 0] and y[0, 0].tolist() == [0, 0, 0]
    assert alpha.max() == 255 and alpha[0, 0] == 0


def test_target_is_the_masked_cloth_padded_square(real_root):
    raw = viton.read_sample(real_root / "test", "00017_00")
    cfg = PreprocessConfig(size=(1024, 1024))
    y, alpha = preprocess_target(raw.cloth, raw.cloth_mask, cfg)
    assert y.shape == (1024, 1024, 3) and alpha.shape == (1024, 1024)
    assert content_box((1024, 768), (1024, 1024)) == (128, 0, 768, 1024)
    expected = np.where(raw.cloth_mask[..., None], raw.cloth, 255)
    np.testing.assert_array_equal(y[:, 128:896], expected)
    assert (y[:, :128] == 255).all() and (y[:, 896:] == 255).all()
    np.testing.assert_array_equal(alpha[:, 128:896] > 0, raw.cloth_mask)
    # Going back to the garment frame is the inverse at scale 1.
    back = to_frame(Image.fromarray(y), (1024, 768), WHITE)
    np.testing.assert_array_equal(np.asarray(back), expected)


def test_non_square_size_pads_to_its_aspect(real_root):
    raw = viton.read_sample(real_root / "test", "00006_00")
    x, y, alpha = preprocess_sample(raw, PreprocessConfig(size=(512, 384)))
    assert x.shape == (512, 384, 3) and y.shape == (512, 384, 3) and alpha.shape == (512, 384)
    # 768x1024 has the 3:4 aspect of 384x512: no padding, the mask fills the frame's extent.
    cols = np.flatnonzero((alpha > 127).any(0))
    assert cols[0] > 0 and cols[-1] < 383


def test_garment_label_set_is_configurable(real_root):
    raw = viton.read_sample(real_root / "test", "00006_00")
    cfg5 = PreprocessConfig(size=(1024, 1024))
    cfg_pants = PreprocessConfig(size=(1024, 1024), garment_labels=(9,))
    assert (preprocess_sample(raw, cfg5)[0] != preprocess_sample(raw, cfg_pants)[0]).any()
    n_pants = (raw.parse == 9).sum()
    assert (preprocess_sample(raw, cfg_pants)[0] != 255).any(-1).sum() <= n_pants


def test_empty_mask_and_size_mismatch_are_clear_errors():
    photo = np.zeros((64, 48, 3), np.uint8)
    with pytest.raises(DataError, match="garment mask is empty"):
        preprocess_input(photo, np.zeros((64, 48), bool), PreprocessConfig(size=(64, 64)))
    with pytest.raises(DataError, match="mask is 40x64 but the photo is 48x64"):
        preprocess_input(photo, np.ones((64, 40), bool), PreprocessConfig(size=(64, 64)))


def test_sample_without_garment_names_the_sample():
    raw = viton.RawSample(
        "00042_00", np.zeros((64, 48, 3), np.uint8), np.zeros((64, 48), np.uint8),
        np.zeros((64, 48, 3), np.uint8), np.ones((64, 48), bool),
    )
    with pytest.raises(DataError, match="sample 00042_00: no garment pixel"):
        preprocess_sample(raw, PreprocessConfig(size=(64, 64)))


def test_augment_params_and_geometry():
    cfg = AugmentConfig(flip=0.5, rotate=10, zoom=0.1)
    assert AugmentParams.draw(cfg, (0.2, 0.5, 0.5)) == AugmentParams(True, 0.0, 1.0)
    p = AugmentParams.draw(cfg, (0.9, 1.0, 0.0))
    assert not p.flip and p.angle == pytest.approx(10) and p.scale == pytest.approx(0.9)
    img = np.zeros((32, 32), np.uint8)
    img[:, :8] = 255
    flipped = augment(img, AugmentParams(True, 0.0, 1.0), 0)
    np.testing.assert_array_equal(flipped, img[:, ::-1])
    assert (augment(img, AugmentParams(False, 0.0, 1.0), 0) == img).all()
    # Zooming out by 0.5 about the centre leaves a 16x16 image in the middle, fill outside.
    full = np.full((32, 32), 200, np.uint8)
    zoomed = augment(full, AugmentParams(False, 0.0, 0.5), 0)
    assert zoomed[0, 0] == 0 and zoomed[16, 16] == 200
    assert 14 <= (zoomed[16] > 100).sum() <= 18
    # A 90 degree rotation turns a left bar into a horizontal one (PIL: counter-clockwise).
    rotated = augment(img, AugmentParams(False, 90.0, 1.0), 0)
    assert rotated[28:, 16].mean() > 200 and rotated[:4, 16].mean() < 50
