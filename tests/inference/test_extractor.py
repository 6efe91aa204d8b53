"""The generator at inference: the training preprocessing, the model, the catalogue frame."""

from __future__ import annotations

import numpy as np
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
