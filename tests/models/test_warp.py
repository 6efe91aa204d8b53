"""The warp design: sampling through a flow, composition at any resolution, the warp generator's heads."""

from __future__ import annotations

import pytest
import torch

from clothes_extractor.errors import ConfigError
from clothes_extractor.models.generator import Generator, GeneratorConfig
from clothes_extractor.models.warp import compose, flow_smoothness, identity_grid, warp


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g) * 2 - 1


def test_a_zero_flow_samples_every_pixel_at_its_own_centre():
    src = _image(12, 20)
    assert torch.allclose(warp(src, torch.zeros(1, 2, 12, 20)), src, atol=1e-6)
    grid = identity_grid(2, 4, src)
    assert grid.shape == (1, 2, 4, 2)
    assert grid[0, 0, :, 0].tolist() == pytest.approx([-0.75, -0.25, 0.25, 0.75])  # x of the pixel centres
    assert grid[0, :, 0, 1].tolist() == pytest.approx([-0.5, 0.5])  # y


def test_a_constant_flow_shifts_by_whole_pixels():
    src = _image(16, 16)
    flow = torch.zeros(1, 2, 16, 16)
    flow[:, 0] = 3 * 2 / 16  # three pixels to the right in x: out[x] = src[x + 3]
    flow[:, 1] = -2 * 2 / 16  # two up in y: out[y] = src[y - 2]
    out = warp(src, flow)
    assert torch.allclose(out[..., 2:, :13], src[..., :14, 3:], atol=1e-5)


def test_one_flow_means_the_same_place_at_every_resolution():
    """A field predicted at the model size samples a 4x source where it samples the model-size one."""
    small, big = _image(8, 8), None
    big = torch.nn.functional.interpolate(small, scale_factor=4, mode="nearest")
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2 * 2 / 8  # two model pixels = eight source pixels
    out_small, out_big = warp(small, flow), warp(big, flow)
    assert torch.allclose(out_big[..., :, :16], big[..., :, 8:24], atol=1e-5)
    assert torch.allclose(out_small[..., :, :4], small[..., :, 2:6], atol=1e-5)


def test_compose_picks_the_warped_source_or_the_generated_colour():
    src, gen = _image(32, 24, 1), _image(8, 6, 2)
    flow = torch.zeros(1, 2, 8, 6)
    warped_only, warped = compose(src, flow, torch.full((1, 1, 8, 6), 30.0), gen)
    assert warped_only.shape == (1, 3, 32, 24)
    assert torch.allclose(warped_only, src, atol=1e-5) and torch.allclose(warped, src, atol=1e-5)
    generated_only, _ = compose(src, flow, torch.full((1, 1, 8, 6), -30.0), gen)
    up = torch.nn.functional.interpolate(gen, size=(32, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(generated_only, up, atol=1e-5)


def test_flow_smoothness_is_zero_for_an_affine_warp_and_grows_with_tearing():
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    affine = torch.stack([0.1 * xs + 0.05 * ys + 0.02, -0.08 * xs + 0.03])[None]
    assert flow_smoothness(affine).item() == pytest.approx(0.0, abs=1e-6)
    torn = affine.clone()
    torn[..., 8:] += 0.2
    assert flow_smoothness(torn).item() > 0.01


def test_a_new_warp_generator_starts_at_the_identity_half_warped():
    torch.manual_seed(0)
    g = Generator.from_config(GeneratorConfig.for_arch("warp", encoder="resnet18")).eval()
    assert g.config.out_channels == 7
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = g(x)
    assert out.flow.shape == (2, 2, 64, 64) and out.mask_logit.shape == (2, 1, 64, 64)
    assert out.flow.abs().max() == 0 and out.mask_logit.abs().max() == 0
    assert torch.allclose(out.warped, x, atol=1e-5)
    assert torch.allclose(out.rgb, 0.5 * x + 0.5 * out.generated, atol=1e-5)


def test_the_warp_heads_get_gradients():
    torch.manual_seed(0)
    g = Generator.from_config(GeneratorConfig.for_arch("warp", encoder="resnet18"))
    out = g(torch.rand(2, 3, 64, 64) * 2 - 1)
    (out.rgb.mean() + out.warped.mean()).backward()
    head = g.unet.segmentation_head[0]
    assert head.weight.grad[4:].abs().sum() > 0  # the flow and mask channels learn


def test_a_paint_generator_has_no_warp_fields_and_old_configs_read_as_paint():
    cfg = GeneratorConfig.from_dict({"encoder": "resnet18", "encoder_weights": None, "decoder_attention": "scse",
                                     "in_channels": 3, "out_channels": 4})
    assert cfg.arch == "paint"
    out = Generator.from_config(cfg)(torch.zeros(1, 3, 64, 64))
    assert out.flow is None and out.mask_logit is None and out.warped is None


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "warp", "out_channels": 4}, "out_channels must be 7 for the warp design"),
    ({"arch": "paint", "out_channels": 7}, "out_channels must be 4 for the paint design"),
    ({"arch": "flow"}, "generator design 'flow' is not one of paint, warp"),
    ({"arch": "warp", "out_channels": 7, "in_channels": 4}, "in_channels must be 3"),
])
def test_bad_designs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Generator(encoder="resnet18", **kwargs)
