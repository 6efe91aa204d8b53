"""Run configurations: each mode's defaults live in the library and the commands build the same
configs; files written before (shipped checkpoints, run folders) read back; unknown keys refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clothes_extractor import cli, pretrained
from clothes_extractor.cli import train as train_cli
from clothes_extractor.checkpoint import read_meta
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.viton import parse_garment_labels
from clothes_extractor.errors import ConfigError
from clothes_extractor.train.config import TrainConfig, parse_weights, preprocess_for
from clothes_extractor.train.registry import config_from_dict
from clothes_extractor.train.runs import prepare_run, resume_config
from clothes_extractor.train.segmenter import SegmenterConfig

PRETRAINED = Path(pretrained.__file__).parent
runner = CliRunner()


@pytest.fixture()
def built(monkeypatch):
    """The config a training command hands to the library (training itself is skipped)."""
    from clothes_extractor.train import loop

    seen = []

    def fake_train(cfg, **kwargs):
        seen.append(cfg)
        raise typer.Exit(0)

    monkeypatch.setattr(loop, "train", fake_train)

    def invoke(*args: str):
        result = runner.invoke(cli.app, list(map(str, args)))
        assert result.exit_code == 0, result.output
        return seen[-1]

    return invoke


def test_gan_mode_has_the_pix2pix_defaults():
    cfg = TrainConfig.for_mode("gan", data="d")
    assert (cfg.lr, cfg.beta1, cfg.l1, cfg.perceptual, cfg.ssim) == (2e-4, 0.5, 100.0, 0.0, 0.0)
    assert (cfg.lr_d, cfg.alpha, cfg.epochs, cfg.out) == (2e-4, 1.0, 200, str(Path("runs/train-gan")))
    unet = TrainConfig.for_mode("unet", data="d")
    assert (unet.lr, unet.beta1, unet.l1, unet.perceptual, unet.ssim) == (3e-4, 0.9, 1.0, 0.3, 1.0)
    # The plain constructor is the same run: no mode gets the other's weights.
    assert TrainConfig(mode="gan", data="d") == cfg
    assert TrainConfig.for_mode("gan", data="d", l1=10.0, out="o").l1 == 10.0


@pytest.mark.parametrize("mode", ["unet", "gan"])
def test_train_command_without_options_builds_the_library_default(built, synthetic_root, mode):
    cfg = built(f"train-{mode}", "--data", synthetic_root)
    assert cfg == TrainConfig.for_mode(mode, data=str(synthetic_root))


def test_options_given_change_only_themselves(built, synthetic_root, tmp_path):
    cfg = built("train-gan", "--data", synthetic_root, "--l1", "5", "--size", "64", "--encoder-weights", "none", "--out", tmp_path)
    assert cfg == TrainConfig.for_mode(
        "gan", data=str(synthetic_root), l1=5.0, preprocess=PreprocessConfig(size=(64, 64)), encoder_weights=None, out=str(tmp_path)
    )
    assert cfg.lr == 2e-4 and cfg.ssim == 0.0


def test_segmenter_command_builds_the_library_default(built, synthetic_root):
    cfg = built("train-segmenter", "--data", synthetic_root)
    assert cfg == SegmenterConfig(data=str(synthetic_root))
    assert (cfg.epochs, cfg.batch_size, cfg.size, cfg.out) == (50, 16, (256, 192), "runs/train-segmenter")
    flipped = built("train-segmenter", "--data", synthetic_root, "--augment", "--labels", "VITON13", "--garment", "5,6")
    assert (flipped.flip, flipped.label_set, flipped.garment_labels) == (0.5, "viton13", (5, 6))


def _shown_defaults(command: str) -> dict[str, str]:
    """The '[default: X]' of each option's help text, by parameter name."""
    click_command = typer.main.get_command(cli.app).commands[command]
    shown = {}
    for param in click_command.params:
        match = re.search(r"\[default: ([^\];]+)", getattr(param, "help", None) or "")
        if match:
            shown[param.name] = match.group(1)
    return shown


def _default_agrees(cfg, root: str, name: str, text: str) -> bool | None:
    """Whether the default ``text`` shown for option ``name`` is ``cfg``'s value (None: no field)."""
    from clothes_extractor.config import parse_size

    field = train_cli._FIELD_NAMES.get(name, name)
    if isinstance(cfg, TrainConfig) and name in train_cli._PREPROCESS_OPTIONS:
        return preprocess_for(root, **{name: text}) == cfg.preprocess
    parsers = {"encoder_weights": lambda t: parse_weights(t, ""), "vgg_weights": lambda t: parse_weights(t, ""),
               "garment_labels": parse_garment_labels, "size": parse_size}
    value = getattr(cfg, field, None)
    if field in parsers:
        return parsers[field](text) == value
    if value is None:
        return None
    return type(value)(text) == value


@pytest.mark.parametrize("command", ["train-unet", "train-gan", "train-segmenter"])
def test_help_shows_the_library_defaults(command, synthetic_root):
    root = str(synthetic_root)
    cfg = SegmenterConfig(data=root) if command == "train-segmenter" else TrainConfig.for_mode(command[6:], data=root)
    checked = {}
    for name, text in _shown_defaults(command).items():
        checked[name] = _default_agrees(cfg, root, name, text)
    assert all(ok in (True, None) for ok in checked.values()), checked
    agreed = {name for name, ok in checked.items() if ok}
    assert {"seed", "workers", "device", "encoder", "encoder_weights", "epochs", "lr", "size", "out"} <= agreed
    if command != "train-segmenter":
        assert {"l1" if command == "train-unet" else "lambda_l1", "perceptual", "ssim", "labels", "background", "alpha", "vgg_weights"} <= agreed


def test_shipped_checkpoints_training_settings_read_back():
    """Written before layout, categories and threads existed: those take their defaults, and the
    rest reads back to what the file holds."""
    for name, cls in (("generator", TrainConfig), ("segmenter", SegmenterConfig)):
        saved = read_meta(PRETRAINED / f"{name}.safetensors")["train"]
        cfg = config_from_dict(saved)
        assert type(cfg) is cls and cfg.layout is None and cfg.threads is None
        again = json.loads(cfg.to_json())
        assert {k: again[k] for k in saved} == saved
    gan = config_from_dict(read_meta(PRETRAINED / "generator.safetensors")["train"])
    assert (gan.mode, gan.l1, gan.preprocess.framing, gan.preprocess.size) == ("gan", 100.0, "fill", (256, 192))


def test_unknown_keys_are_refused_by_name():
    d = TrainConfig.for_mode("unet", data="d").to_dict()
    with pytest.raises(ConfigError, match=r"unknown keys \['warmup'\]"):
        config_from_dict({**d, "warmup": 5})
    with pytest.raises(ConfigError, match=r"unknown keys \['blur'\]"):
        config_from_dict({**d, "preprocess": {**d["preprocess"], "blur": 1}})
    with pytest.raises(ConfigError, match="unknown training task 'detector'"):
        config_from_dict({**d, "task": "detector"})
    with pytest.raises(ConfigError, match="'segmenter' run configuration"):
        TrainConfig.from_dict({**SegmenterConfig(data="d").to_dict()})
    no_task = {k: v for k, v in d.items() if k != "task"}  # run folders from before the segmenter
    assert config_from_dict(no_task) == TrainConfig.for_mode("unet", data="d")


def test_resume_takes_the_runs_settings_and_this_commands_run_settings(tmp_path):
    run = tmp_path / "run"
    prepare_run(TrainConfig.for_mode("gan", data="d", out=str(run), workers=4, device="cpu", threads=2, l1=7.0), overwrite=False)
    cfg = resume_config(run, "generator", epochs=None, workers=None, device=None, lr=1.0)
    assert (cfg.l1, cfg.lr, cfg.epochs, cfg.out) == (7.0, 2e-4, 200, str(run))  # the run's; --lr ignored
    assert (cfg.workers, cfg.device, cfg.threads) == (2, "auto", None)  # this command's (defaults)
    assert resume_config(run, "generator", epochs=300, workers=0).epochs == 300
    with pytest.raises(ConfigError, match="is a generator run; resume it with train-unet or train-gan"):
        resume_config(run, "segmenter")
