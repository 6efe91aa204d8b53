"""Checkpoints: self-describing round trip, and files from elsewhere refused without running code."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from clothes_extractor.checkpoint import (
    FORMAT_VERSION,
    load_generator,
    load_state,
    read_meta,
    resolve_checkpoint,
    save_checkpoint,
    save_state,
)
from clothes_extractor.errors import CheckpointError
from clothes_extractor.models.generator import GeneratorConfig, build_generator


def _generator_meta(cfg: GeneratorConfig) -> dict:
    return {"kind": "generator", "generator": cfg.to_dict(), "preprocess": {"size": [64, 64]}, "epoch": 3}


def test_round_trip_rebuilds_the_same_generator(tmp_path):
    torch.manual_seed(0)
    cfg = GeneratorConfig(encoder="resnet18")
    g = build_generator(cfg).eval()
    path = save_checkpoint(tmp_path / "best.safetensors", g.state_dict(), _generator_meta(cfg))
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 3  # readable copy beside it
    model, meta = load_generator(tmp_path)  # a run folder resolves to best.safetensors
    assert meta["epoch"] == 3 and meta["version"] == FORMAT_VERSION and meta["path"] == str(path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x).rgb, g(x).rgb, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))  # someone else's safetensors
    with pytest.raises(CheckpointError, match="not written by clothes-extractor"):
        read_meta(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        read_meta(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no best.safetensors or last.safetensors"):
        resolve_checkpoint(tmp_path)


def test_newer_format_and_wrong_kind(tmp_path):
    save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(1)}, {"kind": "generator", "version": FORMAT_VERSION + 1})
    with pytest.raises(CheckpointError, match="upgrade clothes-extractor"):
        read_meta(tmp_path / "a.safetensors")
    save_checkpoint(tmp_path / "b.safetensors", {"w": torch.zeros(1)}, {"kind": "segmenter"})
    with pytest.raises(CheckpointError, match="not a garment generator"):
        load_generator(tmp_path / "b.safetensors")


def test_weights_that_do_not_fit_the_description(tmp_path):
    cfg = GeneratorConfig(encoder="resnet18")
    save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(1)}, _generator_meta(cfg))
    with pytest.raises(CheckpointError, match="does not fit the model it describes"):
        load_generator(tmp_path / "c.safetensors")


class _Payload:
    def __reduce__(self):  # what a malicious pickle does: run code while loading
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_resume_state_never_unpickles_arbitrary_objects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_state(tmp_path / "good.state.pt", {"epoch": 2, "t": torch.ones(3)})
    assert load_state(tmp_path / "good.state.pt")["epoch"] == 2
    with open(tmp_path / "evil.state.pt", "wb") as f:
        pickle.dump({"epoch": _Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="cannot read training state"):
        load_state(tmp_path / "evil.state.pt")
    assert not (tmp_path / "PWNED").exists()


def test_init_starts_a_warp_generator_from_a_paint_checkpoint(tmp_path):
    from clothes_extractor.checkpoint import init_generator_from
    from clothes_extractor.models.generator import MASK_BIAS

    torch.manual_seed(0)
    paint = build_generator(GeneratorConfig(encoder="resnet18"))
    path = save_checkpoint(tmp_path / "paint.safetensors", paint.state_dict(), _generator_meta(paint.config))
    torch.manual_seed(1)
    warp = build_generator(GeneratorConfig.for_arch("warp", encoder="resnet18"))
    whole, part = init_generator_from(warp, path)
    assert part == 2 and whole == len(paint.state_dict()) - 2  # the head's weight and bias in part
    ours, theirs = warp.state_dict(), paint.state_dict()
    head = "unet.segmentation_head.0"
    assert torch.equal(ours[f"{head}.weight"][:4], theirs[f"{head}.weight"])
    assert ours[f"{head}.weight"][4:].abs().max() == 0 and torch.all(ours[f"{head}.bias"][4:] == MASK_BIAS)  # mostly photo
    assert ours["flow_head.2.weight"].abs().max() == 0 and ours["flow_head.2.bias"].abs().max() == 0  # identity flow
    assert torch.equal(ours["unet.encoder.conv1.weight"], theirs["unet.encoder.conv1.weight"])


def test_init_refuses_what_is_not_a_generator_checkpoint(tmp_path):
    from clothes_extractor.checkpoint import init_generator_from

    g = build_generator(GeneratorConfig(encoder="resnet18"))
    seg = save_checkpoint(tmp_path / "s.safetensors", {"w": torch.zeros(1)}, {"kind": "segmenter", "epoch": 0})
    with pytest.raises(CheckpointError, match="holds a 'segmenter' model, not a generator"):
        init_generator_from(g, seg)
    other = save_checkpoint(tmp_path / "o.safetensors", {"w": torch.zeros(1)}, _generator_meta(g.config))
    with pytest.raises(CheckpointError, match="shares no weights with this generator"):
        init_generator_from(g, other)
