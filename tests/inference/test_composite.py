"""One compositing for every caller: values at soft alpha, and the cut-out round trip."""

from __future__ import annotations

import numpy as np

from clothes_extractor.inference.composite import WHITE, composite, cut_out


def test_soft_alpha_moves_by_the_background_difference():
    rgb = np.array([[[100, 100, 100], [0, 0, 0], [200, 10, 30]]], np.uint8)  # drawn on black
    alpha = np.array([[128, 0, 255]], np.uint8)
    got = composite(rgb, alpha, (0, 0, 0), WHITE)
    np.testing.assert_array_equal(got, [[[227, 227, 227], [255, 255, 255], [200, 10, 30]]])


def test_the_same_background_returns_the_image_itself():
    rgb = np.zeros((2, 2, 3), np.uint8)
    assert composite(rgb, np.zeros((2, 2), np.uint8), (9, 9, 9), (9, 9, 9)) is rgb


def test_a_cut_out_put_back_on_its_background_gives_the_image():
    rng = np.random.default_rng(0)
    alpha = rng.integers(1, 256, (8, 8), dtype=np.uint8)
    fg = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
    a = alpha.astype(np.float32)[..., None] / 255
    rgb = np.clip(a * fg + (1 - a) * 40, 0, 255).round().astype(np.uint8)  # drawn on grey 40
    rgba = cut_out(rgb, alpha, (40, 40, 40))
    np.testing.assert_array_equal(rgba[..., 3], alpha)
    back = a * rgba[..., :3].astype(np.float32) + (1 - a) * 40
    assert np.abs(back - rgb).max() <= 1.0
