"""`segment`, mask-free `extract` and `evaluate` with segmenters.

Segmenters with random weights (resnet18, 64x64) saved the way training saves them stand in for
trained ones; a *constant* segmenter (head weights 0, one bias up) predicts one class everywhere,
so that its masks, hence the outputs, are known exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.segmentation import SegmentationPreprocess
from clothes_extractor.data.viton import VITON_PALETTE, read_label_map
from clothes_extractor.errors import CheckpointError, DataError
from clothes_extractor.evaluation.config import EvalConfig
from clothes_extractor.evaluation.run import evaluate
from clothes_extractor.inference import segmenter as sg
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.inference.mask import detect_mask_kind, read_garment_mask, require_garment
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.models.generator import Generator
from clothes_extractor.models.segmenter import SegmentationModel
from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

from tests.cli_results import flat, ok, user_error as _user_error

runner = CliRunner()
SAMPLE = "00006_00"


def _ok(result) -> str:
    return flat(ok(result))


def write_segmenter(path: Path, *, label_set: str = "cihp20", constant: int | None = None) -> Path:
    """A segmenter checkpoint with the metadata training writes; ``constant``: always that class."""
    cfg = SegmenterConfig(data="d", out="o", size=(64, 64), label_set=label_set, encoder="resnet18", encoder_weights=None)
    torch.manual_seed(0)
    model = SegmentationModel(encoder="resnet18", classes=cfg.labels.num_classes)
    if constant is not None:
        head = model.net.segmentation_head[0]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.bias[constant] = 10.0
    meta = {**SegmenterTask(cfg).meta(), "train": cfg.to_dict(), "epoch": 0, "step": 0, "metrics": {}}
    return save_checkpoint(path, model.state_dict(), meta)


def write_generator(path: Path) -> Path:
    torch.manual_seed(0)
    g = Generator(encoder="resnet18", encoder_weights=None)
    meta = {
        "kind": "generator", "clothes_extractor_version": "test",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=(64, 64)).to_dict(), "train": {}, "epoch": 0, "step": 0, "metrics": {},
    }
    return save_checkpoint(path, g.state_dict(), meta)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ckpts")
    return {
        "generator": write_generator(d / "gen.safetensors"),
        "random": write_segmenter(d / "random.safetensors"),
        "upper": write_segmenter(d / "upper.safetensors", constant=5),  # upper-clothes everywhere
        "upper13": write_segmenter(d / "upper13.safetensors", label_set="viton13", constant=3),
        "background": write_segmenter(d / "background.safetensors", constant=0),  # finds no garment
    }


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """A synthetic data set at 192x256 (evaluation at full VITON-HD size is slow): 3 test samples."""
    from clothes_extractor.data.synthetic import make_sample_data

    root = tmp_path_factory.mktemp("small") / "viton"
    make_sample_data(root, samples=4, seed=1, size=(256, 192), test_fraction=0.75)
    return root


@pytest.fixture(scope="module")
def real_photo(real_root) -> Path:
    return real_root / "test" / "image" / f"{SAMPLE}.jpg"


class RedIsClassOne(torch.nn.Module):
    """Logits of 2 classes: class 1 where the red channel is above mid-grey, else class 0."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), 10 * x[:, :1]], dim=1)


def _red_segmenter(size=(64, 64)) -> sg.Segmenter:
    pre = SegmentationPreprocess(size=size, fill=(255, 255, 255))  # white padding: class 1 if it leaked
    return sg.Segmenter(RedIsClassOne(), {"preprocess": pre.to_dict()})


# --- the library -------------------------------------------------------------------------------------


def test_padding_is_undone_for_any_photo_shape():
    seg = _red_segmenter()
    for shape in ((100, 300), (300, 100), (1024, 768)):
        black = np.zeros((*shape, 3), np.uint8)
        pred = seg.predict(black)
        assert pred.shape == shape and pred.dtype == np.uint8
        assert not pred.any(), f"the white padding leaked into the prediction of a {shape} photo"


def test_prediction_follows_the_photo_geometry():
    seg = _red_segmenter()
    photo = np.zeros((90, 150, 3), np.uint8)
    photo[:, :60, 0] = 255  # the left 60 columns are red
    pred = seg.predict(photo)
    truth = np.zeros((90, 150), np.uint8)
    truth[:, :60] = 1
    wrong = np.argwhere(pred != truth)
    assert wrong.size == 0 or np.abs(wrong[:, 1] - 60).max() <= 3  # only at the edge, from resampling


def test_predict_many_equals_predict(ckpts, real_photo):
    seg = sg.load_segmenter(ckpts["random"])
    photo = read_photo(real_photo)
    small = np.asarray(Image.fromarray(photo).resize((150, 200)))
    many = list(seg.predict_many([photo, small], batch_size=2))
    # A batch of two may take other convolution kernels than a batch of one (oneDNN chooses by
    # shape): logits then differ in the last bits, which flips the argmax where a random
    # network's classes tie. Agreement, not bit equality.
    for got, alone in ((many[0], seg.predict(photo)), (many[1], seg.predict(small))):
        assert got.shape == alone.shape and (got != alone).mean() <= 0.001
    assert many[0].shape == photo.shape[:2] and many[0].max() < 20


def test_garment_masks_of_both_label_sets(ckpts):
    photo = np.full((128, 96, 3), 128, np.uint8)
    seg20, seg13 = sg.load_segmenter(ckpts["upper"]), sg.load_segmenter(ckpts["upper13"])
    c20, c13 = seg20.predict(photo), seg13.predict(photo)
    assert (c20 == 5).all() and (c13 == 3).all()
    assert seg20.garment_mask(c20, (5,)).all() and seg13.garment_mask(c13, (5,)).all()
    assert not seg20.garment_mask(c20, (6,)).any()
    assert (seg13.to_cihp(c13) == 5).all()  # upper is written as upper-clothes
    assert seg13.describe_garment((5,)).startswith("viton13 classes 3 (upper")
    with pytest.raises(DataError, match=r"found no garment \(labels 6 \(dress\)\) in photo p.jpg .*give a mask"):
        require_garment(seg20, c20, (6,), name="p.jpg")


def test_checkpoint_kinds_are_not_confused(ckpts):
    with pytest.raises(CheckpointError, match="'generator' model, not a garment segmenter.*--segmenter"):
        sg.load_segmenter(ckpts["generator"])
    with pytest.raises(CheckpointError, match="'segmenter' model.*give it as --segmenter"):
        load_extractor(ckpts["random"])


# --- segment -----------------------------------------------------------------------------------------


def test_segment_writes_the_data_sets_parse_format(ckpts, real_photo, tmp_path):
    out = tmp_path / "parse.png"
    text = _ok(runner.invoke(app, ["segment", str(real_photo), "-o", str(out), "-s", str(ckpts["random"]), "--device", "cpu"]))
    assert f"wrote {out}" in text and "768x1024" in text
    image = Image.open(out)
    assert image.mode == "P" and image.size == (768, 1024) and image.getpalette()[:60] == VITON_PALETTE[:60]
    seg = sg.load_segmenter(ckpts["random"])
    assert np.array_equal(read_label_map(out), seg.predict(read_photo(real_photo)))
    # A viton13 prediction is written with CIHP labels: it reads as a label map whose garment is 5.
    out13 = tmp_path / "parse13.png"
    _ok(runner.invoke(app, ["segment", str(real_photo), "-o", str(out13), "-s", str(ckpts["upper13"]), "--device", "cpu"]))
    assert (read_label_map(out13) == 5).all()
    assert detect_mask_kind(Image.open(out13)) == "labels"
    # Refusals: an existing output, a lossy format.
    assert "--overwrite" in _user_error(runner.invoke(app, ["segment", str(real_photo), "-o", str(out), "-s", str(ckpts["random"])]))
    assert ".png" in _user_error(runner.invoke(app, ["segment", str(real_photo), "-o", str(tmp_path / "p.jpg"), "-s", str(ckpts["random"])]))
    assert "not both" in _user_error(
        runner.invoke(app, ["segment", str(real_photo), "--images", str(tmp_path), "-o", str(tmp_path), "-s", str(ckpts["random"])]), 2
    )



def test_segment_a_folder_as_photo_names_folder_mode(ckpts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("ro").mkdir()
    text = _user_error(runner.invoke(app, ["segment", "ro", "-o", "parse.png", "-s", str(ckpts["random"])]))
    assert text == "error: ro is a folder; to segment every photo in a folder use --images ro -o OUTDIR"
    assert not Path("parse.png").exists()

def test_segment_folder_mode(ckpts, real_root, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(real_root / "test" / "image", images)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "parses"
    args = ["segment", "--images", str(images), "-o", str(out), "-s", str(ckpts["random"]), "--device", "cpu"]
    text = _user_error(runner.invoke(app, args))
    assert "3 written" in text and "1 failed" in text and "broken" in text
    assert sorted(p.name for p in out.iterdir()) == ["00006_00.png", "00017_00.png", "14274_00.png"]
    text = _user_error(runner.invoke(app, args))
    assert "3 skipped" in text


# --- mask-free extract -------------------------------------------------------------------------------


def test_extract_without_a_mask(ckpts, real_photo, tmp_path):
    out = tmp_path / "shirt.png"
    text = _ok(runner.invoke(app, [
        "extract", str(real_photo), "-o", str(out), "-c", str(ckpts["generator"]), "--segmenter", str(ckpts["upper"]),
        "--device", "cpu",
    ]))
    assert "predicted by" in text and Image.open(out).size == (768, 1024)
    # The constant segmenter's garment is the whole photo: the output is the extraction from an all-on mask.
    extractor = load_extractor(ckpts["generator"])
    photo = read_photo(real_photo)
    expected = extractor.extract(photo, np.ones(photo.shape[:2], bool)).rgb
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expected)


def test_an_explicit_mask_wins_over_the_segmenter(ckpts, real_root, real_photo, tmp_path):
    mask = real_root / "test" / "image-parse-v3" / f"{SAMPLE}.png"
    with_seg, without = tmp_path / "a.png", tmp_path / "b.png"
    common = ["-c", str(ckpts["generator"]), "--device", "cpu"]
    _ok(runner.invoke(app, ["extract", str(real_photo), str(mask), "-o", str(with_seg), *common, "--segmenter", str(ckpts["background"])]))
    _ok(runner.invoke(app, ["extract", str(real_photo), str(mask), "-o", str(without), *common]))
    assert np.array_equal(np.asarray(Image.open(with_seg)), np.asarray(Image.open(without)))


def test_an_empty_prediction_is_an_error_and_writes_nothing(ckpts, real_photo, tmp_path):
    out = tmp_path / "shirt.png"
    text = _user_error(runner.invoke(app, [
        "extract", str(real_photo), "-o", str(out), "-c", str(ckpts["generator"]), "--segmenter", str(ckpts["background"]),
        "--device", "cpu",
    ]))
    assert "the segmenter found no garment (labels 5 (upper-clothes))" in text and "give a mask" in text
    assert str(real_photo) in text.replace(" ", "") or real_photo.name in text
    assert not out.exists() and not list(tmp_path.iterdir())
    # Without a mask and without --segmenter: the built-in segmenter finds the garment.
    text = _ok(runner.invoke(app, ["extract", str(real_photo), "-o", str(out), "-c", str(ckpts["generator"]), "--device", "cpu"]))
    assert "predicted by" in text and "pretrained" in text and "segmenter.safetensors" in text
    assert Image.open(out).size == (768, 1024)


def test_folder_mode_without_masks(ckpts, real_root, tmp_path):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    shutil.copytree(real_root / "test" / "image", images)
    masks.mkdir()
    shutil.copy(real_root / "test" / "image-parse-v3" / f"{SAMPLE}.png", masks / f"{SAMPLE}.png")
    common = ["-c", str(ckpts["generator"]), "--device", "cpu", "--format", "png"]
    # No --masks: every mask is predicted (here: none found -> every photo fails, clearly).
    text = _user_error(runner.invoke(app, ["extract", "--images", str(images), "-o", str(out), *common, "--segmenter", str(ckpts["background"])]))
    assert "0 written" in text and "3 failed" in text and "found no garment" in text
    # With --masks for one photo: its mask wins, the two others get the predicted one.
    text = _ok(runner.invoke(app, [
        "extract", "--images", str(images), "--masks", str(masks), "-o", str(out), *common, "--segmenter", str(ckpts["upper"]),
    ]))
    assert "3 written" in text
    extractor = load_extractor(ckpts["generator"])
    photo = read_photo(images / f"{SAMPLE}.jpg")
    from_mask = extractor.extract(photo, read_garment_mask(masks / f"{SAMPLE}.png", (5,))).rgb
    written = np.asarray(Image.open(out / f"{SAMPLE}.png").convert("RGB")).astype(int)
    # Folder mode predicts in batches; oneDNN's convolutions round differently by batch size, so a
    # few pixels may differ by one level (measured: 0.014% of them).
    assert np.abs(written - from_mask).max() <= 1 and (written != from_mask).mean() < 1e-3
    # Neither --masks nor --segmenter: the built-in segmenter predicts every mask.
    fresh = tmp_path / "fresh"
    assert "3 written" in _ok(runner.invoke(app, ["extract", "--images", str(images), "-o", str(fresh), *common]))


# --- evaluate ---------------------------------------------------------------------------------------


def test_evaluate_a_segmenter_checkpoint(ckpts, small_root, tmp_path):
    out = tmp_path / "eval"
    text = _ok(runner.invoke(app, [
        "evaluate", "-c", str(ckpts["background"]), "-d", str(small_root), "--split", "test", "--out", str(out),
        "--device", "cpu", "--workers", "0", "--grid-rows", "1",
    ]))
    assert "mean IoU" in text and "garment IoU" in text
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["kind"] == "segmenter" and summary["samples"] == 3 and len(summary["per_class_iou"]) == 20
    # Background everywhere, by hand: IoU(background) = accuracy = share of background pixels;
    # every other class present in the truth scores 0; the garment 0.
    parses = [read_label_map(small_root / "test" / "image-parse-v3" / f"{i}.png") for i in ("00001_00", "00002_00", "00003_00")]
    share = sum(int((p == 0).sum()) for p in parses) / sum(p.size for p in parses)
    present = set(np.unique(np.concatenate([p.ravel() for p in parses])).tolist())
    assert summary["per_class_iou"]["background"] == pytest.approx(share)
    assert summary["pixel_accuracy"] == pytest.approx(share)
    assert summary["garment_iou"] == 0
    assert summary["miou"] == pytest.approx(share / len(present))
    assert summary["per_class_iou"]["hat"] is None  # in neither truth nor prediction
    assert (out / "per_image.csv").read_text().splitlines()[0] == "id,miou,garment_iou,pixel_accuracy"
    assert Image.open(out / "grid.png").height == 3 * 256
    with pytest.raises(Exception, match="--segmenter goes with a generator"):
        evaluate(EvalConfig(checkpoint=ckpts["background"], data=small_root, split="test", out=tmp_path / "e2",
                            segmenter=ckpts["upper"], workers=0, device="cpu"), progress=False)


def test_evaluate_the_mask_free_pipeline(ckpts, small_root, tmp_path):
    common = dict(checkpoint=ckpts["generator"], data=small_root, split="test", workers=0, device="cpu",
                  network_metrics=False, grid_rows=1)
    # The whole photo as the garment: the mask IoU is the garment's share of the photo.
    res = evaluate(EvalConfig(**common, out=tmp_path / "a", segmenter=ckpts["upper"]), progress=False)
    s = res.summary
    assert list(s["native"]) == ["model", "predicted_mask", "white", "input"]
    parses = {i: read_label_map(small_root / "test" / "image-parse-v3" / f"{i}.png") for i in res.selection.ids}
    expected = {i: float((p == 5).mean()) for i, p in parses.items()}
    assert s["pipeline"]["per_image_mask_iou"] == pytest.approx(expected)
    assert s["pipeline"]["mask_iou"] == pytest.approx(np.mean(list(expected.values())))
    assert s["pipeline"]["empty_predictions"] == []
    cost = s["pipeline"]["cost"]["native"]["l1"]
    assert cost == pytest.approx(s["native"]["predicted_mask"]["l1"] - s["native"]["model"]["l1"])
    rows = (tmp_path / "a" / "per_image.csv").read_text()
    assert rows.count(",predicted_mask,") == 2 * 3  # two protocols x three samples
    # No garment found anywhere: scored as white, and said so.
    text = _ok(runner.invoke(app, [
        "evaluate", "-c", str(ckpts["generator"]), "-d", str(small_root), "--split", "test", "--out", str(tmp_path / "b"),
        "--segmenter", str(ckpts["background"]), "--device", "cpu", "--workers", "0", "--no-network-metrics",
    ]))
    assert "mask-free pipeline" in text and "no garment found in 3" in text and "predicted_mask" in text
    s = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert s["pipeline"]["empty_predictions"] == res.selection.ids and s["pipeline"]["mask_iou"] == 0
    for p in ("native", "paper"):
        assert s[p]["predicted_mask"]["l1"] == pytest.approx(s[p]["white"]["l1"])


def test_predicted_dress_outside_the_generators_labels_says_what_to_do(tmp_path):
    seg = sg.load_segmenter(write_segmenter(tmp_path / "dress.safetensors", constant=6), "cpu")
    classes = seg.predict(np.zeros((40, 30, 3), np.uint8))
    with pytest.raises(DataError) as info:
        require_garment(seg, classes, (5,), name="p.jpg")
    text = str(info.value)
    assert "6 (dress, 100.0% of the photo)" in text and "this checkpoint knows" in text
    assert "--category" in text and "train-gan --data DRESSCODE --category dresses" in text
