"""`evaluate` scores the very image `extract` writes, also where the alpha is soft."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.evaluation.paper import paper_images
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import Extractor
from clothes_extractor.inference.output import ExtractConfig
from clothes_extractor.inference.pipeline import extract_file
from clothes_extractor.models.generator import GeneratorOutput

BLACK = (0, 0, 0)
CLOTH = np.zeros((40, 30, 3), np.uint8)  # the reference's frame: 30 wide, 40 high


class _Constant(nn.Module):
    """A generator that draws ``level`` (uint8) everywhere with alpha logit 0 (alpha 0.5)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.value = level / 127.5 - 1

    def forward(self, x: torch.Tensor):
        B, _, H, W = x.shape
        return GeneratorOutput(torch.full((B, 3, H, W), self.value), torch.zeros(B, 1, H, W))


def _extractor(level: int, background) -> Extractor:
    meta = {"path": "constant", "preprocess": PreprocessConfig(size=(32, 32), background=background).to_dict()}
    return Extractor(_Constant(level), meta, "cpu")


def _photo_files(tmp_path):
    photo = np.full((64, 48, 3), 90, np.uint8)
    mask = np.zeros((64, 48), np.uint8)
    mask[16:48, 12:36] = 255
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "photo.png", tmp_path / "mask.png"


def _scored(extractor: Extractor, photo_path, mask_path) -> np.ndarray:
    """The paper protocol's "model" image, computed as `evaluate` computes it."""
    from clothes_extractor.inference.mask import read_pair

    photo, mask = read_pair(photo_path, mask_path, extractor.labels)
    x = to_tensor(extractor.prepare(photo, mask))[None]
    rgb, alpha_logit = extractor.forward(x)
    return paper_images(rgb[0], alpha_logit[0], x[0], CLOTH, extractor.preprocess.background, extractor.scale)["model"]


def test_soft_alpha_on_a_black_background_scores_what_extract_writes(tmp_path):
    # Garment 200 at alpha 0.5 on black is drawn as 100; on white it is 100 + (1 - a) * 255 =
    # 227 (alpha 128/255), where a * 100 + (1 - a) * 255 would give 177.
    extractor = _extractor(100, BLACK)
    photo_path, mask_path = _photo_files(tmp_path)
    out = tmp_path / "garment.png"
    extract_file(extractor, photo_path, mask_path, out, ExtractConfig(background=WHITE, frame=CLOTH.shape[:2]))
    written = np.asarray(Image.open(out))
    scored = _scored(extractor, photo_path, mask_path)
    np.testing.assert_array_equal(scored, written)
    assert written.shape == CLOTH.shape and (written == 227).all()


def test_on_a_white_background_the_image_is_the_prediction_itself(tmp_path):
    extractor = _extractor(100, WHITE)
    photo_path, mask_path = _photo_files(tmp_path)
    out = tmp_path / "garment.png"
    extract_file(extractor, photo_path, mask_path, out, ExtractConfig(frame=CLOTH.shape[:2]))
    written = np.asarray(Image.open(out))
    np.testing.assert_array_equal(_scored(extractor, photo_path, mask_path), written)
    assert (written == 100).all()
