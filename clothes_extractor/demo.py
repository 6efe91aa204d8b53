"""`demo`: the whole pipeline on a synthetic data set, in about two minutes on a laptop CPU.

make-sample-data -> downsample -> split -> train-gan (64 px) -> evaluate (test split, white and
input baselines) -> extract (one full-size synthetic photo). No network: random initial weights.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from clothes_extractor.errors import ConfigError


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo-out")
    samples: int = 96
    size: int = 64  # downsampled longest side, and the training size
    epochs: int = 30
    batch_size: int = 8
    encoder: str = "resnet18"
    seed: int = 0
    overwrite: bool = False


@dataclass
class DemoResult:
    paths: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)  # evaluate's metrics.json
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(cfg: DemoConfig, console=None) -> DemoResult:
    from rich.console import Console

    from clothes_extractor.config import PreprocessConfig, parse_size
    from clothes_extractor.data.downsample import downsample
    from clothes_extractor.data.split import make_split
    from clothes_extractor.data.synthetic import make_sample_data
    from clothes_extractor.data.viton import PARSE, PHOTO, sample_path
    from clothes_extractor.evaluate import EvalConfig, evaluate, report_lines, results_table
    from clothes_extractor.extract import ExtractConfig, extract_file, load_extractor
    from clothes_extractor.train.config import TrainConfig
    from clothes_extractor.train.loop import train

    console = console or Console(stderr=True)
    parse_size(cfg.size)  # a clear error before any work
    out = cfg.out
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise ConfigError(f"{out} is not empty; pass --overwrite to replace the demo there, or --out DIR")
        shutil.rmtree(out)
    result = DemoResult()
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 1)
        clock = now

    console.rule("[bold]1/6 make-sample-data")
    full = out / "synthetic"
    made = make_sample_data(full, samples=cfg.samples, seed=cfg.seed, progress=True)
    console.print(f"{cfg.samples} synthetic samples (768x1024) in {full}")
    stage("make-sample-data")

    console.rule(f"[bold]2/6 downsample -s {cfg.size}")
    low = out / f"synthetic-{cfg.size}"
    report = downsample(full, low, size=cfg.size, workers=None, progress=True)
    console.print(f"{report.written} files written to {low}")
    stage("downsample")

    console.rule("[bold]3/6 split")
    split = make_split(low, seed=cfg.seed)
    console.print(f"{len(split.train_ids)} train + {len(split.val_ids)} validation ids")
    stage("split")

    console.rule("[bold]4/6 train-gan")
    run = out / "run"
    train_cfg = TrainConfig(
        mode="gan", data=str(low), out=str(run), preprocess=PreprocessConfig(size=(cfg.size, cfg.size)),
        encoder=cfg.encoder, encoder_weights=None, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=5e-4, lr_d=2e-4, beta1=0.5, l1=100.0, perceptual=0.0, ssim=0.0, alpha=1.0, vgg_weights=None,
        workers=0, seed=cfg.seed, device="auto", sample_count=6,
    )
    trained = train(train_cfg, console=console)
    stage("train-gan")

    console.rule("[bold]5/6 evaluate (test split)")
    ev = evaluate(
        EvalConfig(checkpoint=run / "best.safetensors", data=low, split="test", out=out / "eval", network_metrics=False,
                   grid_rows=2),
        console=console,
    )
    result.summary = ev.summary
    stage("evaluate")

    console.rule("[bold]6/6 extract")
    # A full-size photo and its parse map, as a user would bring them: the model is 64 px, the
    # output goes back to the 768x1024 catalogue frame.
    sample_id = made.test_ids[0]
    photo = sample_path(full / "test", PHOTO, sample_id)
    mask = sample_path(full / "test", PARSE, sample_id)
    extracted = out / f"extracted_{sample_id}.png"
    extract_file(load_extractor(run / "best.safetensors"), photo, mask, extracted, ExtractConfig())
    console.print(f"clothes-extractor extract {photo} {mask} -o {extracted}")
    stage("extract")

    console.rule("[bold]results")
    console.print(results_table(ev.summary))
    for line in report_lines(ev.summary):
        console.print(line)
    last_epoch = trained.epochs_done
    result.paths = {
        "training pictures": run / "samples" / f"epoch_{last_epoch:03d}.png",
        "evaluation grid": ev.paths["grid"],
        "metrics": ev.paths["metrics"],
        "per-image metrics": ev.paths["per_image"],
        "extracted garment": extracted,
        "extracted from": photo,
        "checkpoint": run / "best.safetensors",
    }
    return result
