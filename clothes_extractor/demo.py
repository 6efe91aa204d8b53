"""`demo`: the default models on real photos in seconds (:func:`run_examples`), or with
``--train`` the whole pipeline on a synthetic data set in about three minutes on two CPU cores (:func:`run_demo`).

make-sample-data -> downsample -> split -> train-gan (64 px) -> train-segmenter (64 px) ->
evaluate (test split, white and input baselines; then the mask-free pipeline, the generator fed
the segmenter's garment mask) -> extract (one full-size synthetic photo with its parse map, then
the same photo without a mask: segment, extract from the predicted mask). No network: random
initial weights.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from clothes_extractor.errors import ConfigError, DataError


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo-out")
    samples: int = 96
    size: int = 64  # downsampled longest side, and the training size
    epochs: int = 30
    seg_epochs: int | None = None  # segmenter epochs; None: a third of ``epochs``, at least 1
    batch_size: int = 8
    encoder: str = "resnet18"
    seed: int = 0
    overwrite: bool = False


@dataclass
class DemoResult:
    paths: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)  # evaluate's metrics.json
    seconds: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Seconds per stage, into ``result.seconds``."""

    def __init__(self, result: DemoResult) -> None:
        self.result, self.clock = result, time.perf_counter()

    def stage(self, name: str) -> None:
        now = time.perf_counter()
        self.result.seconds[name] = round(now - self.clock, 1)
        self.clock = now


def _make_data(cfg: DemoConfig, console, clock: _Clock):
    """Stages 1-3: (the full-size synthetic data, its downsampled copy, the split)."""
    from clothes_extractor.data.downsample import downsample
    from clothes_extractor.data.split import make_split
    from clothes_extractor.data.synthetic import make_sample_data

    console.rule("[bold]1/7 make-sample-data")
    full = cfg.out / "synthetic"
    made = make_sample_data(full, samples=cfg.samples, seed=cfg.seed, progress=True)
    console.print(f"{cfg.samples} synthetic samples (768x1024) in {full}")
    clock.stage("make-sample-data")

    console.rule(f"[bold]2/7 downsample -s {cfg.size}")
    low = cfg.out / f"synthetic-{cfg.size}"
    report = downsample(full, low, size=cfg.size, workers=None, progress=True)
    console.print(f"{report.written} files written to {low}")
    clock.stage("downsample")

    console.rule("[bold]3/7 split")
    split = make_split(low, seed=cfg.seed)
    console.print(f"{len(split.train_ids)} train + {len(split.val_ids)} validation ids")
    clock.stage("split")
    return full, made, low


def _train_models(cfg: DemoConfig, low: Path, console, clock: _Clock):
    """Stages 4-5: (the GAN run's result, the segmenter run's result)."""
    from clothes_extractor.config import PreprocessConfig
    from clothes_extractor.train.config import TrainConfig
    from clothes_extractor.train.loop import fit, train
    from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

    console.rule("[bold]4/7 train-gan")
    train_cfg = TrainConfig(
        mode="gan", data=str(low), out=str(cfg.out / "run"), preprocess=PreprocessConfig(size=(cfg.size, cfg.size)),
        encoder=cfg.encoder, encoder_weights=None, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=5e-4, lr_d=2e-4, beta1=0.5, l1=100.0, perceptual=0.0, ssim=0.0, alpha=1.0, vgg_weights=None,
        workers=0, seed=cfg.seed, device="auto", sample_count=6,
    )
    trained = train(train_cfg, console=console)
    clock.stage("train-gan")

    console.rule("[bold]5/7 train-segmenter")
    # The parse maps of the same photos teach a segmenter the garment mask: extract without one.
    seg_cfg = SegmenterConfig(
        data=str(low), out=str(cfg.out / "run-segmenter"), size=(cfg.size, cfg.size), encoder=cfg.encoder,
        encoder_weights=None, epochs=cfg.seg_epochs or max(1, cfg.epochs // 3), batch_size=cfg.batch_size, lr=2e-3,
        workers=0, seed=cfg.seed, device="auto", sample_count=4,
    )
    seg_trained = fit(SegmenterTask(seg_cfg), console=console)
    clock.stage("train-segmenter")
    return trained, seg_trained


def _evaluate(cfg: DemoConfig, low: Path, console, clock: _Clock):
    """Stage 6: (the evaluation with the true masks, the one with the predicted masks too)."""
    from clothes_extractor.evaluation.config import EvalConfig
    from clothes_extractor.evaluation.run import evaluate

    console.rule("[bold]6/7 evaluate (test split)")
    ckpt, out = cfg.out / "run" / "best.safetensors", cfg.out
    ev = evaluate(
        EvalConfig(checkpoint=ckpt, data=low, split="test", out=out / "eval", network_metrics=False, grid_rows=2),
        console=console,
    )
    # The same generator fed the garment mask the segmenter predicts, beside the true mask.
    ev_free = evaluate(
        EvalConfig(checkpoint=ckpt, data=low, split="test", out=out / "eval-mask-free", network_metrics=False,
                   grid_rows=1, segmenter=out / "run-segmenter" / "best.safetensors"),
        console=console,
    )
    clock.stage("evaluate")
    return ev, ev_free


def _extract(cfg: DemoConfig, full: Path, sample_id: str, console, clock: _Clock) -> dict[str, Path]:
    """Stage 7: a full-size photo with its parse map, as a user would bring them (the model is
    64 px, the output goes back to the 768x1024 catalogue frame), then without: the segmenter
    predicts the parse map, then the garment mask. The paths written, by name."""
    from clothes_extractor.data.viton import PARSE, PHOTO, sample_path
    from clothes_extractor.inference.extractor import load_extractor
    from clothes_extractor.inference.output import ExtractConfig
    from clothes_extractor.inference.pipeline import extract_file, segment_file
    from clothes_extractor.inference.segmenter import load_segmenter

    console.rule("[bold]7/7 extract")
    out, seg_run = cfg.out, cfg.out / "run-segmenter"
    photo = sample_path(full / "test", PHOTO, sample_id)
    mask = sample_path(full / "test", PARSE, sample_id)
    extracted = out / f"extracted_{sample_id}.png"
    extractor = load_extractor(out / "run" / "best.safetensors")
    extract_file(extractor, photo, mask, extracted, ExtractConfig())
    console.print(f"clothes-extractor extract {photo} {mask} -o {extracted}")
    segmenter = load_segmenter(seg_run / "best.safetensors")
    parse = out / f"parse_{sample_id}.png"
    segment_file(segmenter, photo, parse)
    console.print(f"clothes-extractor segment {photo} -o {parse} --segmenter {seg_run}")
    mask_free = out / f"extracted-no-mask_{sample_id}.png"
    try:
        extract_file(extractor, photo, None, mask_free, ExtractConfig(), segmenter=segmenter)
        console.print(f"clothes-extractor extract {photo} -o {mask_free} --segmenter {seg_run}")
    except DataError as exc:  # a segmenter trained too briefly may find no garment: say so, as extract does
        console.print(f"clothes-extractor extract {photo} -o {mask_free} --segmenter {seg_run}: {exc}")
    clock.stage("extract")
    return {"extracted garment": extracted, "extracted from": photo, "predicted parse": parse, "mask-free": mask_free}


def _print_results(ev, ev_free, seg_trained, console) -> None:
    from clothes_extractor.evaluation.report import pipeline_line, report_lines, results_table

    console.rule("[bold]results")
    console.print(results_table(ev.summary))
    for line in report_lines(ev.summary):
        console.print(line)
    seg_val = seg_trained.history[-1]["val"] if seg_trained.history else {}
    if seg_val:
        console.print(
            f"segmenter (validation, last epoch): mean IoU {seg_val['miou']:.3f}, "
            f"garment IoU {seg_val['garment_iou'] or 0:.3f}"
        )
    console.print(pipeline_line(ev_free.summary))


def run_demo(cfg: DemoConfig, console=None) -> DemoResult:
    from rich.console import Console

    from clothes_extractor.config import parse_size

    console = console or Console(stderr=True)
    parse_size(cfg.size)  # a clear error before any work
    out = cfg.out
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise ConfigError(f"{out} is not empty; pass --overwrite to replace the demo there, or --out DIR")
        shutil.rmtree(out)
    result = DemoResult()
    clock = _Clock(result)
    full, made, low = _make_data(cfg, console, clock)
    trained, seg_trained = _train_models(cfg, low, console, clock)
    ev, ev_free = _evaluate(cfg, low, console, clock)
    written = _extract(cfg, full, made.test_ids[0], console, clock)
    result.summary = ev.summary
    _print_results(ev, ev_free, seg_trained, console)
    run, seg_run, mask_free = out / "run", out / "run-segmenter", written.pop("mask-free")
    result.paths = {
        "training pictures": run / "samples" / f"epoch_{trained.epochs_done:03d}.png",
        "evaluation grid": ev.paths["grid"],
        "metrics": ev.paths["metrics"],
        "per-image metrics": ev.paths["per_image"],
        "extracted garment": written["extracted garment"],
        "extracted from": written["extracted from"],
        "checkpoint": run / "best.safetensors",
        "predicted parse": written["predicted parse"],
        **({"extracted, no mask": mask_free} if mask_free.exists() else {}),
        "segmenter pictures": seg_run / "samples" / f"epoch_{seg_trained.epochs_done:03d}.png",
        "mask-free metrics": ev_free.paths["metrics"],
        "segmenter": seg_run / "best.safetensors",
    }
    return result


# --- the default models on real photos ---------------------------------------------------------


@dataclass(frozen=True)
class ExamplesConfig:
    out: Path = Path("demo-out")
    photos: tuple[Path, ...] = ()  # () : the example photos shipped with the package
    device: str = "cpu"
    overwrite: bool = False


def _tile(image, size: tuple[int, int], caption: str):
    """``image`` (PIL) fitted (aspect kept) on a white (w, h) tile with a caption on top."""
    from PIL import Image, ImageDraw, ImageOps

    tile = Image.new("RGB", size, "white")
    fitted = ImageOps.contain(image.convert("RGB"), (size[0], size[1] - 16))
    tile.paste(fitted, ((size[0] - fitted.width) // 2, 16))
    ImageDraw.Draw(tile).text((4, 2), caption, fill=(0, 0, 0))
    return tile


def mask_overlay(photo, mask):
    """(H, W, 3) uint8 photo, (H, W) bool mask -> PIL image, the garment tinted orange (the parse
    colour of upper clothes). numpy and Pillow load here: the CLI imports this module at start."""
    import numpy as np
    from PIL import Image

    tinted = photo.astype(np.float32)
    tinted[mask] = 0.45 * tinted[mask] + 0.55 * np.array([254, 85, 0], np.float32)
    return Image.fromarray(tinted.astype(np.uint8))


def run_examples(cfg: ExamplesConfig) -> DemoResult:
    """The default segmenter and generator on real photos: one garment each and one picture
    (photo | predicted garment mask | extracted garment | true garment, where it ships)."""
    from PIL import Image

    from clothes_extractor import pretrained
    from clothes_extractor.fileio import save_image
    from clothes_extractor.inference.extractor import load_extractor
    from clothes_extractor.inference.output import ExtractConfig, check_output_path, render
    from clothes_extractor.inference.photo import read_photo
    from clothes_extractor.inference.pipeline import predicted_mask
    from clothes_extractor.inference.segmenter import load_segmenter

    photos = list(cfg.photos) or pretrained.example_photos()
    if not photos:
        raise DataError("no example photos shipped with this installation; give photos with --photo")
    extract_cfg = ExtractConfig(overwrite=cfg.overwrite)
    cfg.out.mkdir(parents=True, exist_ok=True)
    outputs = [check_output_path(cfg.out / f"{p.stem}.png", extract_cfg) for p in photos]  # before any work
    picture = cfg.out / "demo.png"
    if picture.exists() and not cfg.overwrite:
        raise ConfigError(f"{picture} exists; pass --overwrite to replace the demo there, or --out DIR")
    result = DemoResult()
    start = time.perf_counter()
    extractor = load_extractor(pretrained.default_path("generator"), cfg.device)
    segmenter = load_segmenter(pretrained.default_path("segmenter"), cfg.device)
    result.seconds["load"] = round(time.perf_counter() - start, 2)
    rows = []
    for photo_path, out in zip(photos, outputs):
        start = time.perf_counter()
        photo = read_photo(photo_path)
        mask = predicted_mask(extractor, segmenter, photo, name=str(photo_path))
        garment = extractor.extract(photo, mask)
        image = render(garment, extract_cfg)
        save_image(image, out)
        result.seconds[photo_path.stem] = round(time.perf_counter() - start, 2)
        result.paths[photo_path.stem] = out
        truth = pretrained.example_garment(photo_path) if not cfg.photos else None
        tiles = [(Image.fromarray(photo), "photo"), (mask_overlay(photo, mask), "predicted garment mask"),
                 (image, "extracted (default models)")]
        if truth is not None:
            tiles.append((Image.open(truth), "true garment"))
        rows.append([_tile(im, (240, 336), caption) for im, caption in tiles])
    width = max(len(r) for r in rows) * 240
    sheet = Image.new("RGB", (width, 336 * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, tile in enumerate(row):
            sheet.paste(tile, (x * 240, y * 336))
    save_image(sheet, picture)
    result.paths["picture"] = picture
    return result
