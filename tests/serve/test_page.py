"""The gradio page as built (not launched): its parts, the examples, the API names, the brush."""

from __future__ import annotations

import numpy as np
import pytest

from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.inference.segmenter import load_segmenter
from clothes_extractor.serve import ServeConfig
from clothes_extractor.serve.engine import Engine

pytest.importorskip("gradio", reason='serve needs gradio: pip install "clothes-extractor[app]"')
from clothes_extractor.serve.page import build, painted_layers


def _config(engine, cfg, tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))  # where gradio copies the examples
    return build(engine, cfg, say=lambda line: None).get_config_file()


def _props(config: dict, kind: str) -> list[dict]:
    return [c.get("props", {}) for c in config["components"] if c.get("type") == kind]


def test_the_page_offers_the_examples_the_api_and_the_card(ckpts, photo, tmp_path, monkeypatch):
    engine = Engine(load_extractor(ckpts["generator"]), load_segmenter(ckpts["upper"]), root=tmp_path / "root",
                    card="# A card")
    config = _config(engine, ServeConfig(examples=(photo.photo, photo.parse)), tmp_path, monkeypatch)
    apis = {d.get("api_name") for d in config["dependencies"] if d.get("api_visibility", "public") == "public"}
    assert {"extract", "check_mask", "extract_batch"} <= apis
    datasets = _props(config, "dataset")
    assert len(datasets) == 1 and datasets[0]["label"] == "Example photos" and len(datasets[0]["samples"]) == 2
    assert any(p.get("value") == "# A card" for p in _props(config, "markdown"))
    radio, = _props(config, "radio")
    assert radio["value"] == "segmenter" and [c[1] for c in radio["choices"]] == ["segmenter", "upload", "brush"]


def test_without_a_segmenter_the_page_asks_for_a_mask(ckpts, tmp_path, monkeypatch):
    engine = Engine(load_extractor(ckpts["generator"]), None, root=tmp_path / "root")
    config = _config(engine, ServeConfig(examples=()), tmp_path, monkeypatch)
    radio, = _props(config, "radio")
    assert radio["value"] == "upload" and [c[1] for c in radio["choices"]] == ["upload", "brush"]
    assert not _props(config, "dataset")  # no examples, no examples block


def test_painted_layers_are_one_alpha():
    a = np.zeros((4, 6, 4), np.uint8)
    b = np.zeros((4, 6, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)
    b[3, 5] = (0, 0, 255, 128)
    out = painted_layers({"background": None, "layers": [a, b], "composite": None})
    assert out.shape == (4, 6, 4) and out[0, 0, 3] == 255 and out[3, 5, 3] == 128 and out[..., 3].sum() == 383
    assert painted_layers(None) is None and painted_layers({"layers": []}) is None
    assert painted_layers({"layers": [a, np.zeros((2, 2, 4), np.uint8)]}) is None  # layers of different sizes
