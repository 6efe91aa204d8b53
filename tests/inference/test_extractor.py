"""The generator at inference: the training preprocessing, the model, the catalogue frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor, to_uint8
from clothes_extractor.data.transforms import mask_box, preprocess_input, to_frame
from clothes_extractor.data.viton import garment_mask
from clothes_extractor.inference.extractor import CATALOGUE_FRAME
from clothes_extractor.models.generator import GeneratorOutput

SIZE = (64, 64)


def _expected(extractor, photo, mask, frame=CATALOGUE_FRAME):
    """The pipeline spelt out: training preprocessing -> model -> uint8 -> to_frame."""
    x = preprocess_input(photo, mask, extractor.preprocess)
    with torch.no_grad():
        rgb, logit = extractor.model(to_tensor(x)[None])[:2]
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
            return GeneratorOutput(x, x[:, :1])

    meta = {"preprocess": {"size": [64, 48], "garment_width": VITON.garment_width}}
    ex = Extractor(_Model(), meta, "cpu")
    assert CATALOGUE_GARMENT_WIDTH == VITON_HD.garment_width
    assert ex.scale == pytest.approx(VITON_HD.garment_width / VITON.garment_width)
    assert ex.with_catalogue(VITON.garment_width).scale == 1.0 and ex.scale != 1.0  # a copy


# --- the warp design at full resolution ----------------------------------------------------------


@pytest.fixture(scope="module")
def warp_extractor(tmp_path_factory):
    from tests.inference.conftest import write_generator

    from clothes_extractor.inference.extractor import load_extractor

    return load_extractor(write_generator(tmp_path_factory.mktemp("warp") / "w.safetensors", arch="warp", framing="fill"))


def test_a_warp_generator_draws_the_photo_straight_into_the_catalogue_frame(warp_extractor, sample):
    """One sampling of the photo writes the final frame; it agrees with the long way round (the
    fill crop prepared at 16x the 64x64 model, composed there, brought to the frame by PIL)."""
    from dataclasses import replace

    from clothes_extractor.inference.extractor import to_catalogue
    from clothes_extractor.models.warp import compose

    _, _, photo, _, mask = sample
    ex = warp_extractor
    source = ex.prepare_source(photo, mask)
    y0, y1, x0, x1 = mask_box(mask)
    assert source.pixels.shape == (y1 - y0, x1 - x0, 3)  # the garment's box of the photo, as it is
    fast = ex.extract(photo, mask)
    assert fast.rgb.shape == (1024, 768, 3) and fast.alpha.shape == (1024, 768)
    x = to_tensor(ex.prepare(photo, mask))[None]
    out = ex.run(x)
    big = to_tensor(preprocess_input(photo, mask, replace(ex.preprocess, size=(1024, 1024))))[None]
    rgb, _, _, alpha_logit = compose(big, out.flow, out.mask_logit, out.generated, out.alpha_logit, ex.background_tensor)
    slow = to_catalogue(*[a[0] for a in ex.quantize(rgb.clamp(-1, 1), alpha_logit)], ex.preprocess.background, None, ex.scale)
    # Two resamplings against one: mean 0.5-1.3 levels measured on the real VITON-HD samples,
    # 3.2 on the synthetic photo's sharp edges; a misplaced grid is tens of levels off.
    assert np.abs(fast.rgb.astype(int) - slow.rgb.astype(int)).mean() < 4.0
    assert np.abs(fast.alpha.astype(int) - slow.alpha.astype(int)).mean() < 2.0
    small, _ = ex.render(out)  # the model-size composition (native), as the generator returns it
    assert torch.allclose(small, out.rgb.clamp(-1, 1))


def test_the_warped_photo_keeps_detail_the_model_size_cannot_hold(tmp_path):
    """One-pixel stripes on the photo: a warp generator whose mask picks the photo at the identity
    gives them back in the catalogue frame; the model-size path can only average them."""
    from tests.inference.conftest import write_generator

    from clothes_extractor.inference.extractor import load_extractor

    path = write_generator(tmp_path / "w.safetensors", arch="warp", framing="fill")
    ex = load_extractor(path)
    head = ex.model.unet.segmentation_head[0]
    with torch.no_grad():  # flow 0, the whole frame inside the outline, mask all photo
        head.weight[3:].zero_()
        head.bias[3:] = 30.0
        ex.model.flow_head[-1].weight.zero_()
        ex.model.flow_head[-1].bias.zero_()
    photo = np.full((1024, 768, 3), 255, np.uint8)
    photo[128:896, 96:672] = 0
    photo[128:896:2, 96:672] = 200  # stripes one pixel high, on the garment
    mask = np.zeros((1024, 768), bool)
    mask[128:896, 96:672] = True
    full = ex.with_catalogue(None).extract(photo, mask, frame=(768, 576))  # the garment at its own pixel size
    garment = full.rgb[100:660, 100:476, 0].astype(float)
    assert np.abs(np.diff(garment, axis=0)).mean() > 50  # stripes: neighbouring rows far apart (200 on the photo)
    x = to_tensor(ex.prepare(photo, mask))[None]
    coarse = ex.finish(*[a[0] for a in ex.quantize(*ex.render(ex.run(x)))], frame=(768, 576))
    assert np.abs(np.diff(coarse.rgb[100:660, 100:476, 0].astype(float), axis=0)).mean() < 20


def test_extract_many_with_sources_equals_extract(warp_extractor, sample):
    _, _, photo, _, mask = sample
    one = warp_extractor.extract(photo, mask)
    x, s = warp_extractor.prepare(photo, mask), warp_extractor.prepare_source(photo, mask)
    (many,) = list(warp_extractor.extract_many([x], sources=[s]))
    np.testing.assert_array_equal(one.rgb, many.rgb)
    np.testing.assert_array_equal(one.alpha, many.alpha)


def test_margins_name_the_data_sets_conventions():
    from clothes_extractor.errors import ConfigError
    from clothes_extractor.inference.extractor import MARGINS, margins_width

    assert MARGINS == ("viton-hd", "viton", "dresscode", "none")
    assert margins_width("viton-hd") == 0.811 and margins_width("viton") == 0.938
    assert margins_width("none") is None and margins_width("dresscode") is None  # as the model learned
    with pytest.raises(ConfigError, match="--margins 'zalando' is not one of viton-hd, viton, dresscode, none"):
        margins_width("zalando")


def test_batched_on_cpu_puts_a_multithreaded_cpu_model_in_channels_last_with_the_same_outputs(tmp_path):
    from tests.inference.conftest import write_generator

    from clothes_extractor.inference.extractor import load_extractor

    path = write_generator(tmp_path / "g.safetensors", framing="fill")
    plain, fast = load_extractor(path), load_extractor(path)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert fast.batched_on_cpu().model.unet.encoder.conv1.weight.is_contiguous()  # one thread: unchanged
        torch.set_num_threads(2)
        assert fast.batched_on_cpu() is fast
        assert fast.model.unet.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    finally:
        torch.set_num_threads(before)
    x = torch.rand(3, 3, *plain.preprocess.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    (rgb0, a0), (rgb1, a1) = plain.forward(x), fast.forward(x)
    assert torch.allclose(rgb0, rgb1, atol=1e-4) and torch.allclose(a0, a1, atol=1e-4)
