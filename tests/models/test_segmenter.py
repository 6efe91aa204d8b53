"""The segmentation model: shapes, configuration, errors that say how to fix the input."""

from __future__ import annotations

import pytest
import torch

from clothes_extractor.errors import ConfigError
from clothes_extractor.models.segmenter import (
    ARCHITECTURES,
    SegmentationModel,
    SegmentationModelConfig,
    build_segmentation_model,
)


@pytest.fixture(scope="module")
def model() -> SegmentationModel:
    torch.manual_seed(0)
    return SegmentationModel(encoder="resnet18", classes=13)


def test_forward_backward_shapes(model):
    x = torch.randn(2, 3, 64, 96, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 13, 64, 96)
    logits.mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ["fpn", "deeplabv3plus"])
def test_other_architectures(arch):
    m = SegmentationModel(arch=arch, encoder="resnet18", classes=20).eval()
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 64, 64)).shape == (1, 20, 64, 64)


def test_config_round_trip_rebuilds_the_same_network(model):
    cfg = model.config
    assert cfg == SegmentationModelConfig(arch="unet", encoder="resnet18", encoder_weights=None, classes=13)
    rebuilt = build_segmentation_model(SegmentationModelConfig.from_dict(cfg.to_dict()))
    rebuilt.load_state_dict(model.state_dict())  # strict: same keys and shapes
    model.eval(), rebuilt.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert SegmentationModelConfig(encoder_weights="imagenet").for_checkpoint_load().encoder_weights is None


def test_errors_say_what_to_do(model):
    with pytest.raises(ConfigError, match=", ".join(ARCHITECTURES)):
        SegmentationModel(arch="pspnet-ish", encoder="resnet18")
    with pytest.raises(ConfigError, match="at least 2 classes"):
        SegmentationModel(encoder="resnet18", classes=1)
    with pytest.raises(ConfigError, match="unknown keys"):
        SegmentationModelConfig.from_dict({"arch": "unet", "depth": 5})
    with pytest.raises(ConfigError, match="use 64x64"):
        model(torch.zeros(1, 3, 70, 60))
    with pytest.raises(ValueError, match="3 input channels"):
        model(torch.zeros(1, 4, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.zeros(3, 64, 64))


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError):
        SegmentationModel(encoder="resnet-does-not-exist")
