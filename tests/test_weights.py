"""Offline pretrained weights: cache lookup, fast failures with useful messages, never a download."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from clothes_extractor import weights
from clothes_extractor.errors import ConfigError, WeightsUnavailableError
from clothes_extractor.models.generator import Generator

SMP_RESNET18 = weights.HubFile(
    "smp-hub/resnet18.imagenet", "model.safetensors", "3f2325ff978283d47aa6a1d6878ca20565622683"
)


@pytest.fixture
def caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Empty HF and torch caches under tmp_path; offline; no proxy; downloads forbidden."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return {"hf_hub": tmp_path / "hf" / "hub", "torch_checkpoints": tmp_path / "torch" / "hub" / "checkpoints"}


def put_in_hf_cache(hub: Path, file: weights.HubFile, tensors: dict[str, torch.Tensor], ref: str | None = None) -> Path:
    """Lay a file out as huggingface_hub does: models--o--n/snapshots/<sha>/<file> (+ refs/<ref>)."""
    sha = file.revision or "0123456789abcdef0123456789abcdef01234567"
    repo = hub / file.folder_name
    path = repo / "snapshots" / sha / file.filename
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / ref).write_text(sha)
    return path


# ------------------------------------------------------------------------ environment


def test_hf_cache_dir_follows_the_environment_now(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert weights.hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert weights.hf_cache_dir() == tmp_path / "cache"


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_hf_offline_reads_the_flag(monkeypatch, value, offline):
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert weights.hf_offline() is offline


def test_hub_reachable_probes_a_real_socket(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert weights.hub_reachable(f"http://127.0.0.1:{port}", timeout=2)
    finally:
        server.close()
    start = time.monotonic()
    assert not weights.hub_reachable(f"http://127.0.0.1:{port}", timeout=2)  # refused now
    assert not weights.hub_reachable("https://host.invalid", timeout=2)  # no such name
    assert time.monotonic() - start < 5


# ------------------------------------------------------------------------ encoder weights


def test_encoder_weights_files_point_where_smp_downloads_from():
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders["resnet34"]["pretrained_settings"]["imagenet"]
    (file,) = weights.encoder_weights_files("resnet34", "imagenet")
    assert (file.repo_id, file.filename, file.revision) == (settings["repo_id"], "model.safetensors", settings["revision"])


def test_unknown_weights_name_lists_the_options():
    with pytest.raises(ConfigError, match="imagenet.*--encoder-weights none"):
        weights.encoder_weights_files("resnet18", "instagram")


def test_missing_encoder_weights_offline_fail_at_once(caches):
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        weights.resolve_encoder_weights("resnet18", "imagenet")
    assert time.monotonic() - start < 2
    msg = str(info.value)
    for part in ("smp-hub/resnet18.imagenet", "model.safetensors", SMP_RESNET18.revision, str(caches["hf_hub"]),
                 "HF_HOME", "HF_HUB_OFFLINE", "--encoder-weights none", "hf download"):
        assert part in msg


def test_unreachable_hub_fails_fast_without_trying_to_download(caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    probes = []
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=3.0: probes.append(timeout) or False)
    with pytest.raises(WeightsUnavailableError, match="cannot be reached.*--encoder-weights none"):
        weights.resolve_encoder_weights("resnet18", "imagenet")
    assert probes == [weights.PROBE_TIMEOUT_S]


def test_failed_download_becomes_weights_unavailable(caches, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=3.0: True)

    def refused(*args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refused)
    with pytest.raises(WeightsUnavailableError, match="download failed.*connection refused.*--encoder-weights none"):
        weights.resolve_encoder_weights("resnet18", "imagenet")


def test_cached_encoder_weights_are_found_and_loaded_offline(caches):
    import segmentation_models_pytorch as smp

    saved = smp.encoders.get_encoder("resnet18", weights=None).state_dict()
    path = put_in_hf_cache(caches["hf_hub"], SMP_RESNET18, saved)
    assert weights.resolve_encoder_weights("resnet18", "imagenet") == path

    gen = Generator(encoder="resnet18", encoder_weights="imagenet", decoder_attention="scse")
    loaded = gen.unet.encoder.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_cached_weights_with_more_input_channels_adapt_the_first_conv(caches):
    import segmentation_models_pytorch as smp

    saved = smp.encoders.get_encoder("resnet18", weights=None).state_dict()
    put_in_hf_cache(caches["hf_hub"], SMP_RESNET18, saved)
    gen = Generator(encoder="resnet18", encoder_weights="imagenet", in_channels=4)
    reference = Generator(encoder="resnet18", encoder_weights=None, in_channels=4).unet
    assert {k: v.shape for k, v in gen.unet.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    # what smp.encoders.get_encoder does with pretrained weights and in_channels=4
    expected = smp.encoders.get_encoder("resnet18", weights=None)
    expected.load_state_dict(dict(saved))
    expected.set_in_channels(4, pretrained=True)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in gen.unet.encoder.state_dict().items())
    assert not torch.equal(gen.unet.encoder.conv1.weight, reference.encoder.conv1.weight)
    rgb = gen(torch.zeros(1, 4, 64, 64)).rgb
    assert rgb.shape == (1, 3, 64, 64)


def test_cached_timm_encoder_weights_are_loaded_offline(caches):
    import timm

    cfg = timm.models.get_pretrained_cfg("resnet18")
    saved = timm.create_model("resnet18", pretrained=False).state_dict()
    put_in_hf_cache(caches["hf_hub"], weights.HubFile(cfg.hf_hub_id, "model.safetensors"), saved, ref="main")
    gen = Generator(encoder="tu-resnet18", encoder_weights="imagenet")
    assert torch.equal(gen.unet.encoder.model.conv1.weight, saved["conv1.weight"])
    assert torch.equal(gen.unet.encoder.model.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])


# ------------------------------------------------------------------------ VGG16


def test_vgg16_path_is_torchvisions_file_in_the_torch_hub_cache(caches):
    assert weights.vgg16_weights_path() == caches["torch_checkpoints"] / "vgg16-397923af.pth"


def test_vgg16_features_match_torchvision_layout():
    from torchvision.models.vgg import cfgs, make_layers

    ours = weights.vgg16_features(pretrained=False)
    theirs = make_layers(cfgs["D"], batch_norm=False)  # what torchvision.models.vgg16().features is
    assert len(ours) == 31
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_missing_vgg16_weights_name_file_folder_and_flag(caches):
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        weights.vgg16_features(pretrained=True)
    assert time.monotonic() - start < 2
    msg = str(info.value)
    for part in ("vgg16-397923af.pth", str(caches["torch_checkpoints"]), "--perceptual 0", "download.pytorch.org"):
        assert part in msg


def test_cached_vgg16_weights_are_loaded(caches):
    features = weights.vgg16_features(pretrained=False)
    saved = {f"features.{k}": torch.randn_like(v) for k, v in features.state_dict().items()}
    saved["classifier.0.weight"] = torch.zeros(2, 2)  # a real file has the classifier: ignored
    caches["torch_checkpoints"].mkdir(parents=True)
    torch.save(saved, caches["torch_checkpoints"] / "vgg16-397923af.pth")

    loaded = weights.vgg16_features(pretrained=True).state_dict()
    assert loaded.keys() == {k.removeprefix("features.") for k in saved if k.startswith("features.")}
    assert all(torch.equal(v, saved[f"features.{k}"]) for k, v in loaded.items())


def test_corrupt_vgg16_file_is_reported(caches):
    caches["torch_checkpoints"].mkdir(parents=True)
    (caches["torch_checkpoints"] / "vgg16-397923af.pth").write_bytes(b"truncated")
    with pytest.raises(WeightsUnavailableError, match="could not be loaded.*--perceptual 0"):
        weights.vgg16_features(pretrained=True)
