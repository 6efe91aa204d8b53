"""PatchGAN discriminator: architecture, output map size, receptive field (analytic and measured)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from clothes_extractor.errors import ConfigError
from clothes_extractor.models.discriminator import (
    DiscriminatorConfig,
    PatchDiscriminator,
    build_discriminator,
    output_size,
    receptive_field,
)


def conv_out(size: int, kernel: int = 4, stride: int = 1, padding: int = 1) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def expected_map_side(size: int) -> int:
    """By hand: three stride-2 4x4 convs, then two stride-1 4x4 convs, all padding 1."""
    for stride in (2, 2, 2, 1, 1):
        size = conv_out(size, stride=stride)
    return size


@pytest.mark.parametrize(("size", "side"), [(256, 30), (64, 6)])
def test_output_is_a_patch_map_of_logits(size, side):
    assert expected_map_side(size) == side == output_size(size)
    if size == 256:
        d = PatchDiscriminator(ndf=8)  # the map size does not depend on the width; keep it cheap
    else:
        d = PatchDiscriminator()
    cond, img = torch.rand(2, 3, size, size) * 2 - 1, torch.rand(2, 3, size, size) * 2 - 1
    assert d(cond, img).shape == (2, 1, side, side)


def test_architecture_follows_pix2pix():
    d = PatchDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 5
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(6, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    norms = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [n.num_features for n in norms] == [128, 256, 512]  # none after the first conv, none at the end
    assert isinstance(d.model[1], nn.LeakyReLU) and d.model[1].negative_slope == 0.2
    assert convs[0].bias is not None and convs[1].bias is None  # batch norm brings its own shift
    assert isinstance(d.model[-1], nn.Conv2d)  # logits, no sigmoid


def test_instance_norm_variant():
    d = PatchDiscriminator(norm="instance", ndf=8)
    norms = [m for m in d.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not norms[0].affine
    assert d(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_receptive_field_is_70_at_3_layers():
    assert receptive_field(3) == 70
    assert [receptive_field(n) for n in (1, 2, 4)] == [16, 34, 142]
    assert PatchDiscriminator(ndf=8).receptive_field == 70


@pytest.mark.parametrize(("norm", "n_layers"), [("none", 3), ("batch", 3), ("none", 2)])
def test_receptive_field_measured_by_gradient(norm, n_layers):
    """One output logit depends on exactly a receptive_field x receptive_field input window."""
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=8, n_layers=n_layers, norm=norm).double().eval()  # eval: batch norm is per-pixel
    size = 128
    cond = torch.randn(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    img = torch.randn(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    logits = d(cond, img)
    i = logits.shape[-1] // 2
    logits[0, 0, i, i].backward()
    touched = (cond.grad.abs() + img.grad.abs()).sum(dim=(0, 1)) != 0  # (H, W)
    rows = touched.any(dim=1).nonzero().flatten()
    cols = touched.any(dim=0).nonzero().flatten()
    rf = receptive_field(n_layers)
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
    assert 0 < rows.min() and rows.max() < size - 1  # the window lies inside the image: not clipped
    assert touched[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a full square
    assert touched.sum() == rf * rf


def test_gradients_reach_both_inputs_and_every_parameter():
    d = PatchDiscriminator(ndf=8)
    cond = torch.rand(2, 3, 64, 64, requires_grad=True)
    img = torch.rand(2, 3, 64, 64, requires_grad=True)
    d(cond, img).mean().backward()
    assert cond.grad.abs().sum() > 0 and img.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_pix2pix_initialisation():
    torch.manual_seed(0)
    d = PatchDiscriminator()
    w = d.model[2].weight  # second conv: 128*64*16 weights
    assert abs(w.mean().item()) < 2e-3 and abs(w.std().item() - 0.02) < 2e-3
    bn = d.model[3]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_config_round_trip():
    cfg = DiscriminatorConfig(ndf=8, n_layers=2, norm="instance")
    back = DiscriminatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    a, b = build_discriminator(cfg), build_discriminator(back)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert a.config == cfg


@pytest.mark.parametrize(("kwargs", "match"), [({"norm": "group"}, "batch, instance, none"), ({"n_layers": 0}, "at least 1")])
def test_invalid_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PatchDiscriminator(**kwargs)


def test_mismatched_inputs_are_clear_errors():
    d = PatchDiscriminator(ndf=8)
    with pytest.raises(ValueError, match="same B, H, W"):
        d(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="expects 6"):
        d(torch.zeros(1, 3, 64, 64), torch.zeros(1, 4, 64, 64))
