"""The warp design: a control-grid flow upsampled bicubically, composition inside the outline at
any resolution, the warp generator's heads."""

from __future__ import annotations

import pytest
import torch

from clothes_extractor.errors import ConfigError
from clothes_extractor.models.generator import MASK_BIAS, Generator, GeneratorConfig
from clothes_extractor.models.warp import compose, dense_flow, fill, identity_grid, on_background, warp

WHITE = torch.ones(3)


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g) * 2 - 1


def test_a_zero_flow_samples_every_pixel_at_its_own_centre():
    src = _image(12, 20)
    assert torch.allclose(warp(src, torch.zeros(1, 2, 3, 5)), src, atol=1e-6)
    grid = identity_grid(2, 4, src)
    assert grid.shape == (1, 2, 4, 2)
    assert grid[0, 0, :, 0].tolist() == pytest.approx([-0.75, -0.25, 0.25, 0.75])  # x of the pixel centres
    assert grid[0, :, 0, 1].tolist() == pytest.approx([-0.5, 0.5])  # y


def test_a_constant_control_flow_shifts_by_whole_pixels():
    src = _image(16, 16)
    flow = torch.zeros(1, 2, 4, 4)  # four control points a side
    flow[:, 0] = 3 * 2 / 16  # three pixels to the right in x: out[x] = src[x + 3]
    flow[:, 1] = -2 * 2 / 16  # two up in y: out[y] = src[y - 2]
    out = warp(src, flow)
    assert torch.allclose(out[..., 2:, :13], src[..., :14, 3:], atol=1e-5)


def test_the_dense_flow_is_smooth_and_exact_at_the_control_points():
    """Bicubic upsampling: each control point's value at its cell's centre, no steps between cells
    (the whirlpools of a per-pixel flow cannot form)."""
    g = torch.Generator().manual_seed(3)
    control = torch.rand(1, 2, 8, 6, generator=g) * 0.2 - 0.1
    dense = dense_flow(control, (256, 192))
    assert dense.shape == (1, 2, 256, 192)
    # A 32x32 cell's centre lies between pixels 15 and 16: their mean is the control value.
    centre = (dense[..., 15::32, 15::32] + dense[..., 16::32, 16::32] + dense[..., 15::32, 16::32] + dense[..., 16::32, 15::32]) / 4
    assert torch.allclose(centre, control, atol=2e-3)
    step = (dense[..., 1:, :] - dense[..., :-1, :]).abs().max()
    assert step < 0.2 / 32 * 2  # no jump larger than the steepest slope between two points allows


def test_one_flow_means_the_same_place_at_every_resolution():
    """A flow predicted for the model size samples a 4x source where it samples the model-size one."""
    small = _image(8, 8)
    big = torch.nn.functional.interpolate(small, scale_factor=4, mode="nearest")
    flow = torch.zeros(1, 2, 2, 2)
    flow[:, 0] = 2 * 2 / 8  # two model pixels = eight source pixels
    out_small, out_big = warp(small, flow), warp(big, flow)
    assert torch.allclose(out_big[..., :, :16], big[..., :, 8:24], atol=1e-5)
    assert torch.allclose(out_small[..., :, :4], small[..., :, 2:6], atol=1e-5)


def test_fill_picks_the_warped_source_or_the_generated_colour():
    warped, generated = _image(8, 6, 1), _image(8, 6, 2)
    assert torch.allclose(fill(warped, torch.full((1, 1, 8, 6), 30.0), generated), warped, atol=1e-5)
    assert torch.allclose(fill(warped, torch.full((1, 1, 8, 6), -30.0), generated), generated, atol=1e-5)


def test_the_outline_puts_the_content_on_the_background():
    content = _image(4, 4)
    alpha_logit = torch.full((1, 1, 4, 4), -30.0)
    alpha_logit[..., :2, :] = 30.0
    out = on_background(content, alpha_logit, WHITE)
    assert torch.allclose(out[..., :2, :], content[..., :2, :], atol=1e-5)
    assert torch.allclose(out[..., 2:, :], torch.ones(1, 3, 2, 4), atol=1e-5)


def test_compose_at_the_source_resolution():
    src, gen = _image(32, 24, 1), _image(8, 6, 2)
    flow = torch.zeros(1, 2, 2, 2)
    inside = torch.full((1, 1, 8, 6), 30.0)
    rgb, content, warped, alpha_logit = compose(src, flow, inside, gen, inside, WHITE)
    assert rgb.shape == content.shape == warped.shape == (1, 3, 32, 24) and alpha_logit.shape == (1, 1, 32, 24)
    assert torch.allclose(rgb, src, atol=1e-5) and torch.allclose(warped, src, atol=1e-5)
    generated_only, _, _, _ = compose(src, flow, -inside, gen, inside, WHITE)
    up = torch.nn.functional.interpolate(gen, size=(32, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(generated_only, up, atol=1e-5)
    outside, _, _, _ = compose(src, flow, inside, gen, -inside, WHITE)
    assert torch.allclose(outside, torch.ones_like(outside), atol=1e-5)


def test_a_new_warp_generator_starts_at_the_identity_mostly_warped():
    torch.manual_seed(0)
    g = Generator.from_config(GeneratorConfig.for_arch("warp", encoder="resnet18")).eval()
    assert g.config.out_channels == 5
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        out = g(x)
    assert out.flow.shape == (2, 2, 2, 3) and out.mask_logit.shape == (2, 1, 64, 96)  # one point per 32x32 cell
    assert out.flow.abs().max() == 0 and torch.allclose(out.mask_logit, torch.full_like(out.mask_logit, MASK_BIAS))
    assert torch.allclose(out.warped, x, atol=1e-5)
    m = torch.sigmoid(torch.tensor(MASK_BIAS))
    assert torch.allclose(out.fill, m * x + (1 - m) * out.generated, atol=1e-5)
    a = torch.sigmoid(out.alpha_logit)
    assert torch.allclose(out.rgb, a * out.fill + (1 - a), atol=1e-5)  # on white outside the outline


def test_the_background_is_the_configured_colour_and_survives_json():
    cfg = GeneratorConfig.from_dict({**GeneratorConfig.for_arch("warp", encoder="resnet18").to_dict(), "background": [0, 0, 0]})
    assert cfg.background == (0, 0, 0)
    g = Generator.from_config(cfg).eval()
    with torch.no_grad():
        out = g(torch.rand(1, 3, 64, 64) * 2 - 1)
    a = torch.sigmoid(out.alpha_logit)
    assert torch.allclose(out.rgb, a * out.fill - (1 - a), atol=1e-5)  # black is -1


def test_the_warp_heads_get_gradients():
    torch.manual_seed(0)
    g = Generator.from_config(GeneratorConfig.for_arch("warp", encoder="resnet18"))
    out = g(torch.rand(2, 3, 64, 64) * 2 - 1)
    (out.rgb.mean() + out.warped.mean()).backward()
    head = g.unet.segmentation_head[0]
    assert head.weight.grad[4:].abs().sum() > 0  # the mask channel learns
    assert g.flow_head[-1].weight.grad.abs().sum() > 0  # and the flow head


def test_a_paint_generator_has_no_warp_fields_and_old_configs_read_as_paint():
    cfg = GeneratorConfig.from_dict({"encoder": "resnet18", "encoder_weights": None, "decoder_attention": "scse",
                                     "in_channels": 3, "out_channels": 4})
    assert cfg.arch == "paint"
    g = Generator.from_config(cfg)
    assert g.flow_head is None
    out = g(torch.zeros(1, 3, 64, 64))
    assert out.flow is None and out.mask_logit is None and out.warped is None and out.fill is None


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "warp", "out_channels": 4}, "out_channels must be 5 for the warp design"),
    ({"arch": "paint", "out_channels": 5}, "out_channels must be 4 for the paint design"),
    ({"arch": "flow"}, "generator design 'flow' is not one of paint, warp"),
    ({"arch": "warp", "out_channels": 5, "in_channels": 4}, "in_channels must be 3"),
])
def test_bad_designs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Generator(encoder="resnet18", **kwargs)
