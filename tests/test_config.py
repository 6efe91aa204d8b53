"""Sizes and backgrounds: parsed, validated, and errors that say what to use instead."""

from __future__ import annotations

import pytest

from clothes_extractor.config import PreprocessConfig, parse_background, parse_size
from clothes_extractor.errors import ConfigError


@pytest.mark.parametrize(("text", "size"), [("224", (224, 224)), ("512x384", (512, 384)), (64, (64, 64)), (" 96 X 64 ", (96, 64))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [("250", "not a multiple of 32; use 256"), ("500x380", "use 512x384"), ("7", "use 32"), ("abc", "not an integer or HxW"),
     ("1x2x3", "not an integer or HxW"), ("0", "must be positive")],
)
def test_parse_size_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_size(text)


def test_backgrounds_and_preprocess_round_trip():
    assert parse_background("white") == (255, 255, 255) and parse_background("10,20,30") == (10, 20, 30)
    with pytest.raises(ConfigError, match="R,G,B"):
        parse_background("10,20,300")
    cfg = PreprocessConfig(size=(512, 384), garment_labels=(5, 6, 7), background=(0, 0, 0))
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg


def test_preprocess_written_before_framing_reads_as_photo_and_unknown_keys_are_refused():
    old = {"size": [256, 192], "garment_labels": [5], "background": [255, 255, 255]}
    assert PreprocessConfig.from_dict(old) == PreprocessConfig(size=(256, 192), framing="photo", categories=())
    with pytest.raises(ConfigError, match=r"unknown keys \['blur'\]"):
        PreprocessConfig.from_dict({**old, "blur": 2})


def test_default_garment_is_upper_clothes_and_config_imports_nothing_from_data():
    import subprocess
    import sys

    from clothes_extractor.config import DEFAULT_GARMENT_LABELS
    from clothes_extractor.data import viton

    assert [viton.LABELS[i] for i in DEFAULT_GARMENT_LABELS] == ["upper-clothes"]
    assert DEFAULT_GARMENT_LABELS == viton.DEFAULT_GARMENT_LABELS
    code = "import sys, clothes_extractor.config; print(sorted(m for m in sys.modules if m.startswith('clothes_extractor.data')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
