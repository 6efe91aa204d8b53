"""The generator at inference: the training preprocessing, the model, the catalogue frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor, to_uint8
from clothes_extractor.data.transforms import preprocess_input, to_frame
from clothes_extractor.data.viton import garment_mask
from clothes_extractor.inference.extractor import CATALOGUE_FRAME

SIZE = (64, 64)


def _expected(extractor, photo, mask, frame=CATALOGUE_FRAME):
    """The pipeline spelt out: training preprocessing -> model -> uint8 -> to_frame."""
    x = preprocess_input(photo, mask, extractor.preprocess)
    with torch.no_grad():
        rgb, logit = extractor.model(to_tensor(x)[None])
    rgb_img = Image.fromarray(to_uint8(rgb[0]))
    alpha_img = Image.fromarray(to_uint8(torch.sigmoid(logit[0])))
    bg = extractor.preprocess.background
    return np.asarray(to_frame(rgb_img, frame, bg)), np.asarray(to_frame(alpha_img, frame, 0))


def test_model_input_is_the_training_preprocessing(extractor, sample):
    _, _, photo, labels, mask = sample
    x = extractor.prepare(photo, mask)
    np.testing.assert_array_equal(x, preprocess_input(photo, garment_mask(labels, (5,)), PreprocessConfig(size=SIZE)))
    assert x.shape == (*SIZE, 3)


def test_extract_returns_the_model_output_in_the_catalogue_frame(extractor, sample):
    _, _, photo, _, mask = sample
    result = extractor.extract(photo, mask)
    rgb, alpha = _expected(extractor, photo, mask)
    assert result.rgb.shape == (1024, 768, 3) and result.alpha.shape == (1024, 768)
    np.testing.assert_array_equal(result.rgb, rgb)
    np.testing.assert_array_equal(result.alpha, alpha)
    assert len(np.unique(result.alpha)) > 10  # a real prediction, not a constant


# --- catalogue margins ---------------------------------------------------------------------------


def test_catalogue_scale_maps_learned_margins_to_wanted():
    from clothes_extractor.inference.extractor import catalogue_scale

    assert catalogue_scale(0.938, 0.811) == pytest.approx(0.8646, abs=1e-4)
    assert catalogue_scale(None, 0.811) == 1.0 and catalogue_scale(0.9, None) == 1.0


def test_to_catalogue_scales_the_garment_about_the_centre():
    from clothes_extractor.inference.extractor import to_catalogue

    rgb = np.zeros((64, 48, 3), np.uint8)  # a black garment filling the model frame
    alpha = np.full((64, 48), 255, np.uint8)
    same = to_catalogue(rgb, alpha, (255, 255, 255), (128, 96))
    half = to_catalogue(rgb, alpha, (255, 255, 255), (128, 96), scale=0.5)
    assert (same.alpha > 127).mean() == 1.0
    ys, xs = np.nonzero(half.alpha > 127)
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (32, 96, 24, 72)
    assert (half.rgb[0, 0] == 255).all() and (half.rgb[64, 48] == 0).all()  # background outside, garment inside


def test_evaluate_draws_with_the_data_sets_margins():
    from clothes_extractor.data.layouts import VITON, VITON_HD
    from clothes_extractor.inference.extractor import CATALOGUE_GARMENT_WIDTH, Extractor

    class _Model(torch.nn.Module):
        def forward(self, x):
            return x, x[:, :1]

    meta = {"preprocess": {"size": [64, 48], "garment_width": VITON.garment_width}}
    ex = Extractor(_Model(), meta, "cpu")
    assert CATALOGUE_GARMENT_WIDTH == VITON_HD.garment_width
    assert ex.scale == pytest.approx(VITON_HD.garment_width / VITON.garment_width)
    assert ex.with_catalogue(VITON.garment_width).scale == 1.0 and ex.scale != 1.0  # a copy
