"""Generator: shapes, ranges, gradients, config round trip, errors that say how to fix."""

from __future__ import annotations

import json
import time

import pytest
import torch

from clothes_extractor.errors import ConfigError, WeightsUnavailableError
from clothes_extractor.models.generator import Generator, GeneratorConfig, GeneratorOutput, build_generator, check_size

TINY = GeneratorConfig(encoder="resnet18", encoder_weights=None)


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return build_generator(TINY)


def test_output_shapes_and_ranges(generator):
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = generator(x)
    assert isinstance(out, GeneratorOutput)
    rgb, alpha_logit = out[:2]  # a tuple: the colour and the alpha first
    assert rgb.shape == (2, 3, 64, 64)
    assert alpha_logit.shape == (2, 1, 64, 64)
    assert rgb.min() >= -1 and rgb.max() <= 1
    assert torch.isfinite(alpha_logit).all()


def test_rgb_is_tanh_of_the_unet_and_alpha_the_raw_fourth_channel(generator):
    generator.eval()
    try:
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            raw = generator.unet(x)
            rgb, alpha_logit = generator(x)[:2]
        assert torch.allclose(rgb, torch.tanh(raw[:, :3]))
        assert torch.equal(alpha_logit, raw[:, 3:])
    finally:
        generator.train()


def test_non_square_sizes_work(generator):
    rgb, alpha_logit = generator(torch.zeros(2, 3, 96, 64))[:2]
    assert rgb.shape == (2, 3, 96, 64) and alpha_logit.shape == (2, 1, 96, 64)


def test_gradients_reach_every_parameter(generator):
    generator.zero_grad()
    rgb, alpha_logit = generator(torch.rand(2, 3, 64, 64) * 2 - 1)[:2]
    (rgb.mean() + alpha_logit.mean()).backward()
    for name, p in generator.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert generator.unet.encoder.conv1.weight.grad.abs().sum() > 0
    assert generator.unet.segmentation_head[0].weight.grad.abs().sum() > 0


def test_config_round_trip_rebuilds_the_same_architecture(generator):
    data = json.loads(json.dumps(generator.config.to_dict()))
    cfg = GeneratorConfig.from_dict(data)
    assert cfg == TINY
    rebuilt = build_generator(cfg)
    shapes = {k: v.shape for k, v in generator.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    rebuilt.load_state_dict(generator.state_dict())
    generator.eval(), rebuilt.eval()
    try:
        x = torch.rand(1, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            assert torch.equal(generator(x).rgb, rebuilt(x).rgb)
    finally:
        generator.train()


def test_checkpoint_config_never_asks_for_pretrained_weights():
    cfg = GeneratorConfig(encoder="resnet18", encoder_weights="imagenet")
    assert cfg.for_checkpoint_load() == GeneratorConfig(encoder="resnet18", encoder_weights=None)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys.*'depth'"):
        GeneratorConfig.from_dict({**TINY.to_dict(), "depth": 4})


@pytest.mark.parametrize(("h", "w", "suggestion"), [(250, 224, "256x224"), (64, 70, "64x64"), (100, 100, "96x96")])
def test_size_not_multiple_of_32_suggests_the_nearest(generator, h, w, suggestion):
    with pytest.raises(ConfigError, match=f"size {h}x{w} is not a multiple of 32; use {suggestion}"):
        generator(torch.zeros(1, 3, h, w))
    with pytest.raises(ConfigError, match=f"use {suggestion}"):
        check_size(h, w)


def test_wrong_channel_count_is_a_clear_error(generator):
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        generator(torch.zeros(1, 1, 64, 64))


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        Generator(encoder="resnet343")
    msg = str(info.value)
    assert "resnet343" in msg and "resnet18" in msg and "resnet34" in msg and "tu-" in msg


def test_unknown_timm_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="not a timm model"):
        Generator(encoder="tu-resnet1800")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decoder_attention": "cbam"}, "scse, none"),
        ({"out_channels": 3}, "out_channels must be 4"),
        ({"encoder_weights": "instagram"}, "imagenet"),
    ],
)
def test_invalid_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Generator(encoder="resnet18", **kwargs)


def test_imagenet_weights_offline_fail_fast_with_the_fix(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        build_generator(GeneratorConfig(encoder="resnet18", encoder_weights="imagenet"))
    assert time.monotonic() - start < 3
    msg = str(info.value)
    assert "--encoder-weights none" in msg
    assert "model.safetensors" in msg and "smp-hub/resnet18.imagenet" in msg
    assert str(tmp_path / "empty-hf-home" / "hub") in msg


def test_unused_attention_is_dropped_without_changing_the_output(generator):
    """smp never calls the last decoder block's attention1 (no skip there); we drop it so that
    every parameter gets a gradient (DDP without find_unused_parameters)."""
    import segmentation_models_pytorch as smp

    plain = smp.Unet("resnet18", encoder_weights=None, decoder_attention_type="scse", in_channels=3, classes=4)
    missing, unexpected = plain.load_state_dict(generator.unet.state_dict(), strict=False)
    assert unexpected == []
    assert missing and all(k.startswith("decoder.blocks.4.attention1.") for k in missing)
    plain.eval(), generator.eval()
    try:
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            assert torch.equal(generator.unet(x), plain(x))
    finally:
        generator.train()
