"""train-unet / train-gan through the CLI on tiny synthetic data, on the CPU."""

from __future__ import annotations

import json
import os
import signal
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.checkpoint import load_generator, read_meta
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset
from clothes_extractor.train import generator as generator_task
from clothes_extractor.train import steps
from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.loop import lr_factor

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()


def test_train_unet_writes_a_complete_run(train_args, tmp_path, lists):
    result = runner.invoke(app, ["train-unet", *train_args("--epochs", "1", "--perceptual", "0.3", "--vgg-weights", "none")])
    _ok(result)
    run = tmp_path / "run"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["epoch"] == 1 and record["step"] == 3  # 6 train samples, batch 2
    assert set(record["train"]) == {"loss", "l1", "ssim_loss", "perceptual", "alpha"}
    assert {"l1", "ssim", "psnr"} <= set(record["val"])
    assert 0 < record["val"]["ssim"] < 1 and record["val"]["psnr"] > 0
    grid = Image.open(run / "samples" / "epoch_001.png")
    n_val = len(lists[1].read_text().split())
    assert grid.size == (3 * 128, n_val * 128)  # 64-pixel tiles enlarged to 128
    meta = read_meta(run / "best.safetensors")
    assert meta["epoch"] == 1 and meta["preprocess"]["size"] == [64, 64]
    assert meta["preprocess"]["garment_width"] == 0.811  # the margins of VITON-HD's garment images
    assert meta["generator"]["encoder"] == "resnet18" and meta["generator"]["encoder_weights"] is None
    assert meta["metrics"]["val"]["l1"] == pytest.approx(record["val"]["l1"])
    assert json.loads((run / "best.json").read_text())["epoch"] == 1


def test_checkpoint_rebuilds_the_trained_generator(train_args, tmp_path, synthetic_root, lists):
    _ok(runner.invoke(app, ["train-unet", *train_args("--max-steps", "1", "--perceptual", "0")]))
    model, meta = load_generator(tmp_path / "run")  # a run folder resolves to best.safetensors
    ds = VitonDataset(synthetic_root, ids=lists[1], preprocess=PreprocessConfig.from_dict(meta["preprocess"]))
    x = ds[0]["input"][None]
    with torch.no_grad():
        rgb, alpha = model(x)[:2]
    assert rgb.shape == (1, 3, 64, 64) and alpha.shape == (1, 1, 64, 64)
    # The checkpoint's validation L1 is reproduced by the rebuilt model.
    with torch.no_grad():
        l1 = np.mean([(model(ds[i]["input"][None])[0] - ds[i]["target"][None]).abs().mean().item() for i in range(len(ds))])
    assert l1 == pytest.approx(meta["metrics"]["val"]["l1"], rel=1e-4)


def test_train_gan_steps_both_networks(train_args, tmp_path):
    result = runner.invoke(app, ["train-gan", *train_args("--max-steps", "2", "--gan-mode", "lsgan")])
    _ok(result)
    run = tmp_path / "run"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"d", "g_gan", "l1", "alpha", "loss"} <= set(record["train"])
    assert record["step"] == 2
    state = torch.load(run / "last.state.pt", weights_only=True)
    assert set(state["modules"]) == {"discriminator"} and set(state["optimizers"]) == {"g", "d"}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["l1"] == 100.0 and cfg["beta1"] == 0.5 and cfg["lr"] == 2e-4 and cfg["gan_mode"] == "lsgan"


def test_gan_step_freezes_d_for_the_generator_update(synthetic_root, lists):
    from clothes_extractor.models.discriminator import DiscriminatorConfig, build_discriminator
    from clothes_extractor.models.generator import GeneratorConfig, build_generator

    cfg = TrainConfig(mode="gan", data=str(synthetic_root), out="unused", l1=100, perceptual=0, ssim=0)
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(encoder="resnet18"))
    d = build_discriminator(DiscriminatorConfig())
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-4), torch.optim.Adam(d.parameters(), 1e-4)
    calls = []
    forward = g.forward
    g.forward = lambda x: calls.append(1) or forward(x)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    batch = steps.Batch(x, x.flip(-1), torch.rand(2, 1, 64, 64))
    d_before = [p.detach().clone() for p in d.parameters()]
    out = steps.gan_step(g, d, opt_g, opt_d, batch, steps.LossModules(None), cfg, nullcontext)
    assert len(calls) == 1  # one generator forward per step
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d.parameters()))  # D stepped
    assert all(p.requires_grad for p in d.parameters())  # and is trainable again afterwards
    v = {k: float(t) for k, t in out.items()}
    assert v["loss"] == pytest.approx(v["g_gan"] + 100 * v["l1"] + v["alpha"], rel=1e-5)


def test_unet_loss_goes_down_on_a_tiny_fixed_set(synthetic_root, lists):
    from clothes_extractor.models.generator import GeneratorConfig, build_generator

    torch.manual_seed(0)
    ds = VitonDataset(synthetic_root, ids=lists[0], preprocess=PreprocessConfig(size=(64, 64)))
    items = [ds[i] for i in range(2)]
    batch = steps.Batch(*(torch.stack([it[k] for it in items]) for k in ("input", "target", "alpha")))
    cfg = TrainConfig(mode="unet", data=str(synthetic_root), out="unused", perceptual=0)
    g = build_generator(GeneratorConfig(encoder="resnet18"))
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    history = [steps.unet_step(g, opt, batch, steps.LossModules(None), cfg, nullcontext)["l1"].item() for _ in range(30)]
    assert history[-1] < 0.5 * history[0], history


def test_resume_gives_the_same_weights_as_a_straight_run(train_args, tmp_path):
    common = ("--epochs", "2", "--perceptual", "0", "--augment")
    _ok(runner.invoke(app, ["train-unet", *train_args(*common, out=tmp_path / "straight")]))
    # One epoch (3 steps), stop, resume, one more epoch.
    _ok(runner.invoke(app, ["train-unet", *train_args(*common, "--max-steps", "3", out=tmp_path / "split")]))
    assert read_meta(tmp_path / "split" / "last.safetensors")["epoch"] == 1
    result = runner.invoke(app, ["train-unet", "--resume", str(tmp_path / "split"), "--device", "cpu", "--workers", "0"])
    _ok(result)
    assert "resuming" in result.output
    a = load_file(tmp_path / "straight" / "last.safetensors")
    b = load_file(tmp_path / "split" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    ma = [json.loads(l) for l in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(l) for l in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in mb] == [1, 2]
    assert mb[1]["val"]["l1"] == pytest.approx(ma[1]["val"]["l1"], rel=1e-5)


def test_sigint_saves_a_resumable_checkpoint(train_args, tmp_path, monkeypatch):
    real_step = generator_task.unet_step
    count = {"n": 0}

    def step_then_ctrl_c(*args, **kwargs):
        count["n"] += 1
        out = real_step(*args, **kwargs)
        if count["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
        return out

    monkeypatch.setattr(generator_task, "unet_step", step_then_ctrl_c)
    result = runner.invoke(app, ["train-unet", *train_args("--epochs", "2", "--perceptual", "0")])
    out = _user_error(result, 130)
    assert "interrupted" in out and "--resume" in out
    run = tmp_path / "run"
    assert (run / "last.state.pt").is_file() and read_meta(run / "last.safetensors")["step"] == 2
    monkeypatch.setattr(generator_task, "unet_step", real_step)
    _ok(runner.invoke(app, ["train-unet", "--resume", str(run), "--device", "cpu", "--workers", "0"]))
    assert [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(train_args, tmp_path, monkeypatch):
    real_l1 = steps.l1_loss
    count = {"n": 0}

    def l1_nan_in_epoch_two(pred, target):
        count["n"] += 1
        value = real_l1(pred, target)
        return value * float("nan") if count["n"] > 5 else value  # 3 train + 1 val batch in epoch 1

    monkeypatch.setattr(steps, "l1_loss", l1_nan_in_epoch_two)
    result = runner.invoke(app, ["train-unet", *train_args("--epochs", "3", "--perceptual", "0")])
    out = _user_error(result)
    assert "became nan" in out and "last good checkpoint" in out
    run = tmp_path / "run"
    meta = read_meta(run / "last.safetensors")
    assert meta["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in load_file(run / "last.safetensors").values())


def test_losses_read_every_few_steps_log_the_same_means(train_args, tmp_path, monkeypatch):
    """The CUDA rule (losses read on the host every N steps, not every step) run on the CPU: the
    epoch's logged means are those of reading every step, and the last short group is read too."""
    from clothes_extractor.train import config, loop

    records = {}
    for every in (1, 2):  # 3 steps an epoch: a group of 2, then the last one alone
        monkeypatch.setitem(loop.SYNC_EVERY, "cpu", every)
        _ok(runner.invoke(app, ["train-unet", *train_args("--epochs", "2", "--perceptual", "0", out=tmp_path / str(every))]))
        records[every] = [json.loads(l) for l in (tmp_path / str(every) / "metrics.jsonl").read_text().splitlines()]
    assert config.SYNC_EVERY["cuda"] > 1
    for a, b in zip(records[1], records[2]):
        assert a["step"] == b["step"] and set(a["train"]) == set(b["train"])
        for k in a["train"]:
            assert b["train"][k] == pytest.approx(a["train"][k], rel=1e-5)


def test_a_nan_between_two_reads_still_stops_the_run(train_args, tmp_path, monkeypatch):
    from clothes_extractor.train import loop

    monkeypatch.setitem(loop.SYNC_EVERY, "cpu", 2)
    real_l1, count = steps.l1_loss, {"n": 0}

    def nan_at_the_first_step(pred, target):
        count["n"] += 1
        return real_l1(pred, target) * (float("nan") if count["n"] == 1 else 1.0)

    monkeypatch.setattr(steps, "l1_loss", nan_at_the_first_step)
    out = _user_error(runner.invoke(app, ["train-unet", *train_args("--epochs", "1", "--perceptual", "0")]))
    assert "became nan at epoch 1, steps 1-2" in out


def test_lr_schedule_is_constant_then_linear():
    assert [lr_factor(e, 4) for e in range(4)] == [1.0, 1.0, 1.0, 0.5]
    assert lr_factor(100, 200) == 1.0 and lr_factor(150, 200) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--size", "70"), "size 70 is not a multiple of 32; use 64"),
        (("--size", "250x190"), "use 256x192"),
        (("--gan-mode", "wgan"), "--gan-mode 'wgan'"),
        (("--encoder", "resnet1234"), "resnet1234"),
        (("--device", "tpu"), "--device 'tpu'"),
        (("--arch", "flow"), "--arch 'flow' is not one of paint, warp"),
        (("--init", "no-such.safetensors"), "no-such.safetensors"),
    ],
)
def test_bad_options_are_clear_errors(train_args, extra, message):
    result = runner.invoke(app, ["train-gan", *train_args(*extra)])
    assert message in _user_error(result)


def test_a_warp_generator_trains_from_a_paint_checkpoint(train_args, tmp_path):
    """--arch warp --init PAINT: the paint run's weights, the identity flow, the warp terms logged,
    and a checkpoint that rebuilds the warp design; a picture with the warped input."""
    _ok(runner.invoke(app, ["train-unet", *train_args("--max-steps", "1", "--perceptual", "0", out=tmp_path / "paint")]))
    paint = tmp_path / "paint" / "last.safetensors"
    result = runner.invoke(app, ["train-gan", *train_args("--max-steps", "2", "--arch", "warp", "--init", str(paint), out=tmp_path / "warp")])
    _ok(result)
    run = tmp_path / "warp"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"warp_l1", "fill_l1", "generated_share"} <= set(record["train"]) & set(record["val"])
    assert 0 <= record["val"]["alpha_iou"] <= 1
    assert 0 < record["train"]["generated_share"] < 1
    meta = read_meta(run / "last.safetensors")
    assert meta["generator"]["arch"] == "warp" and meta["generator"]["out_channels"] == 5
    assert meta["train"]["init"] == str(paint)
    model, _ = load_generator(run / "last.safetensors")
    assert model.config.arch == "warp"
    grid = Image.open(run / "samples" / "epoch_001.png")
    assert grid.size[0] == 4 * 128  # input | warped | prediction | target


def test_init_from_a_segmenter_is_one_line_before_the_run_folder(train_args, tmp_path):
    from clothes_extractor import pretrained

    seg = pretrained.resolve(None, "segmenter")
    result = runner.invoke(app, ["train-unet", *train_args("--max-steps", "1", "--perceptual", "0", "--init", str(seg), out=tmp_path / "m")])
    assert "holds a 'segmenter' model, not a generator" in _user_error(result)
    assert not (tmp_path / "m").exists()  # refused before the run folder was made


def test_missing_lists_say_to_run_split(synthetic_root, tmp_path):
    result = runner.invoke(app, ["train-unet", "--data", str(synthetic_root), "--size", "64", "--encoder-weights", "none", "--perceptual", "0", "--out", str(tmp_path / "r")])
    assert "clothes-extractor split" in _user_error(result)


def test_pretrained_weights_missing_fail_fast(train_args, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    args = train_args("--perceptual", "0")
    args[args.index("--encoder-weights") + 1] = "imagenet"
    out = _user_error(runner.invoke(app, ["train-unet", *args]))
    assert "--encoder-weights none" in out
    assert not (tmp_path / "run").exists()  # nothing written: the corrected command can reuse --out
    out = _user_error(runner.invoke(app, ["train-unet", *train_args("--perceptual", "0.3")]))
    assert "--perceptual 0" in out and "vgg16" in out
    assert not (tmp_path / "run").exists()


def test_run_folder_is_not_overwritten(train_args, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert "--overwrite" in _user_error(runner.invoke(app, ["train-unet", *train_args("--perceptual", "0")]))
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_resume_of_a_foreign_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    out = _user_error(runner.invoke(app, ["train-unet", "--resume", str(tmp_path / "elsewhere")]))
    assert "not a training run folder" in out


def test_prepared_cache_trains_exactly_like_the_files(synthetic_root, lists, tmp_path):
    import shutil

    from clothes_extractor.data.prepared import prepare_dataset

    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)  # the cache goes into the data set's prepared/ folder
    cfg = PreprocessConfig(size=(64, 64))
    for ids in lists:
        prepare_dataset(data, ids=ids, preprocess=cfg, progress=False)

    def run(name, *extra):
        args = [
            "train-unet", "--data", str(data), "--train-list", str(lists[0]), "--val-list", str(lists[1]),
            "--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--bs", "2", "--workers", "0",
            "--device", "cpu", "--perceptual", "0", "--max-steps", "2", "--out", str(tmp_path / name), *extra,
        ]
        result = runner.invoke(app, args)
        _ok(result)
        return load_file(tmp_path / name / "last.safetensors")

    files, cached = run("files", "--prepared", "off"), run("cached", "--prepared", "on")
    for k in files:
        torch.testing.assert_close(cached[k], files[k], rtol=0, atol=0)
    run("augmented", "--prepared", "on", "--augment")  # batch augmentation on the device runs


def test_prepared_on_without_a_cache_says_how_to_build_it(train_args):
    result = runner.invoke(app, ["train-unet", *train_args("--perceptual", "0", "--prepared", "on")])
    assert "clothes-extractor prepare --data" in _user_error(result)


def test_compile_wraps_the_trained_networks(train_args, tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module, **kwargs):  # torch.compile on CPU needs minutes; check the wiring
        compiled.append(type(module).__name__)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    _ok(runner.invoke(app, ["train-gan", *train_args("--max-steps", "1", "--compile")]))
    assert sorted(compiled) == ["Generator", "PatchDiscriminator"]
    # Checkpoints hold the plain networks' keys (no _orig_mod. prefix).
    assert not any(k.startswith("_orig_mod") for k in load_file(tmp_path / "run" / "last.safetensors"))


def test_compile_covers_the_perceptual_loss_network(train_args, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(type(module).__name__) or module)
    _ok(runner.invoke(app, ["train-unet", *train_args("--max-steps", "1", "--compile", "--perceptual", "0.1", "--vgg-weights", "none")]))
    assert sorted(compiled) == ["Generator", "VGG16Features"]


@pytest.mark.parametrize("flag, threshold, expected", [
    ((), 3, ["Generator", "PatchDiscriminator"]),  # auto, a run as long as the threshold: compiled
    (("--no-compile",), 3, []),  # asked not to
    ((), 4, []),  # auto, a run shorter than the threshold: eager
])
def test_auto_compile_follows_the_planned_steps(flag, threshold, expected, train_args, monkeypatch):
    from clothes_extractor.train import distributed

    import torch._dynamo as dynamo

    # Each network compiled, with dynamo's suppress_errors as the run sees it. torch's config is
    # read, never monkeypatched: pytest 9's undo deletes a ConfigModule key it did not find in
    # __dict__, which broke the next case on a fresh machine.
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append((type(module).__name__, dynamo.config.suppress_errors)) or module)
    monkeypatch.setattr(distributed, "COMPILE_AUTO_MIN_STEPS", threshold)
    monkeypatch.setattr(distributed, "_cxx_compiler", lambda: "g++")
    before = dynamo.config.suppress_errors
    result = runner.invoke(app, ["train-gan", *train_args("--max-steps", "3", *flag)])
    _ok(result)
    assert sorted(compiled) == [(name, True) for name in expected]  # auto: a failed compile trains eager
    assert dynamo.config.suppress_errors is before  # ... for that run only
    assert ("compiling the networks: 3 steps planned on the CPU" in result.output) == bool(expected)


def test_two_auto_compiled_runs_in_one_process_leave_torch_settings_as_they_were(synthetic_root, lists, tmp_path, monkeypatch):
    """The Python API, demo --train or a notebook train twice in one process: the second run
    compiles under the same settings, and neither leaves torch's global configuration changed."""
    import torch._dynamo as dynamo

    from clothes_extractor.train import distributed
    from clothes_extractor.train.loop import train

    seen = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: seen.append(dynamo.config.suppress_errors) or module)
    monkeypatch.setattr(distributed, "COMPILE_AUTO_MIN_STEPS", 1)
    monkeypatch.setattr(distributed, "_cxx_compiler", lambda: "g++")
    before = dynamo.config.suppress_errors
    for run in ("a", "b"):
        cfg = TrainConfig.for_mode("unet", data=str(synthetic_root), train_list=str(lists[0]), val_list=str(lists[1]),
                                   out=str(tmp_path / run), preprocess=PreprocessConfig(size=(64, 64)), encoder="resnet18",
                                   encoder_weights=None, vgg_weights=None, batch_size=2, max_steps=1, workers=0, device="cpu")
        result = train(cfg)
        assert result.steps == 1
        assert dynamo.config.suppress_errors is before
    assert len(seen) >= 2 and all(seen)  # each run compiled, with suppress_errors on while it ran


def test_resolve_compile():
    from clothes_extractor.train import distributed

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    n = distributed.COMPILE_AUTO_MIN_STEPS
    assert distributed.resolve_compile(True, cpu, 1) == (True, "compiling the networks (--compile)")
    assert distributed.resolve_compile(False, cpu, 10 * n) == (False, "")
    assert distributed.resolve_compile(None, cpu, n - 1) == (False, "")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distributed, "_cxx_compiler", lambda: "g++")
        assert distributed.resolve_compile(None, cpu, n)[0] is True
        m = distributed.COMPILE_AUTO_MIN_STEPS_CUDA
        assert distributed.resolve_compile(None, cuda, m - 1) == (False, "")
        compile, why = distributed.resolve_compile(None, cuda, m)
        assert compile is True and "on the GPU" in why
        assert distributed.resolve_compile(None, torch.device("mps"), 10 * m) == (False, "")
        mp.setattr(distributed, "_cxx_compiler", lambda: None)
        compile, why = distributed.resolve_compile(None, cpu, n)
        assert compile is False and "no C++ compiler" in why


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_corrupt_photo_stops_training_with_its_name(synthetic_root, lists, tmp_path, workers):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    victim = lists[0].read_text().split()[0]
    photo = data / "train" / "image" / f"{victim}.jpg"
    photo.write_bytes(photo.read_bytes()[:3000])  # truncated download
    args = [
        "train-unet", "--data", str(data), "--train-list", str(lists[0]), "--val-list", str(lists[1]),
        "--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--perceptual", "0",
        "--bs", "8", "--workers", workers, "--device", "cpu", "--out", str(tmp_path / "run"),
    ]
    out = _user_error(runner.invoke(app, args)).replace("\n", "")
    assert f"cannot read sample {victim}: photo" in out and f"image/{victim}.jpg: image file is truncated" in out
    assert "Traceback" not in out and "Original" not in out


def test_cpu_settings_channels_last_fp32_and_threads():
    from clothes_extractor.train.distributed import CPU_CHANNELS_LAST, device_settings

    cfg = TrainConfig(mode="unet", data="unused", out="unused", threads=1)
    before = torch.get_num_threads()
    try:
        channels_last, autocast, threads = device_settings(torch.device("cpu"), cfg)
        assert (channels_last, autocast, threads) == (CPU_CHANNELS_LAST, nullcontext, 1) and torch.get_num_threads() == 1
        assert device_settings(torch.device("cpu"), cfg.with_changes(threads=None))[2] == 1  # None keeps torch's setting
    finally:
        torch.set_num_threads(before)


def test_threads_must_be_positive():
    from clothes_extractor.errors import ConfigError

    with pytest.raises(ConfigError, match="--threads"):
        TrainConfig(mode="unet", data="unused", out="unused", threads=0)
