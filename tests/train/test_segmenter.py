"""train-segmenter: its losses and IoU maths, then runs through the CLI on tiny synthetic data."""

from __future__ import annotations

import json
import math

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor import metrics as M
from clothes_extractor.checkpoint import read_meta
from clothes_extractor.cli import app
from clothes_extractor.errors import ConfigError
from clothes_extractor.losses import DiceLoss, SegmentationLoss, dice_loss, segmentation_loss
from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()


# --- IoU maths, against a case computed by hand ----------------------------------------------------

# target          pred            confusion (row = true, column = predicted)
# 0 0 1           0 1 1           [[1, 1, 0],
# 1 1 2           1 2 2            [0, 2, 1],
# 2 2 2           2 2 0            [1, 0, 3]]
TARGET = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 2, 2]])
PRED = torch.tensor([[0, 1, 1], [1, 2, 2], [2, 2, 0]])


def test_confusion_matrix_by_hand():
    cm = M.confusion_matrix(PRED, TARGET, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert M.confusion_matrix(PRED[None], TARGET[None], 3).tolist() == cm.tolist()  # any shape
    # Ignored pixels are left out; batches add up.
    assert int(M.confusion_matrix(PRED, TARGET, 3, ignore_index=2).sum()) == 5
    halves = M.confusion_matrix(PRED[:1], TARGET[:1], 3) + M.confusion_matrix(PRED[1:], TARGET[1:], 3)
    assert torch.equal(halves, cm)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        M.confusion_matrix(PRED + 1, TARGET, 3)


def test_iou_by_hand():
    cm = M.confusion_matrix(PRED, TARGET, 4)  # class 3: in neither truth nor prediction
    iou = M.iou_per_class(cm)
    # class 0: 1 / (2 + 2 - 1); class 1: 2 / (3 + 3 - 2); class 2: 3 / (4 + 4 - 3)
    assert iou[:3].tolist() == pytest.approx([1 / 3, 1 / 2, 3 / 5])
    assert math.isnan(iou[3])
    assert M.mean_iou(cm) == pytest.approx((1 / 3 + 1 / 2 + 3 / 5) / 3)
    # The garment {1, 2} as one region: 7 true pixels, 7 predicted, 6 in both -> 6 / 8.
    assert M.group_iou(cm, [1, 2]) == pytest.approx(0.75)
    assert M.group_iou(cm, [2]) == pytest.approx(3 / 5)
    assert math.isnan(M.group_iou(cm, [3]))
    report = M.segmentation_report(cm, ["a", "b", "c", "d"], [1, 2])
    assert report["pixel_accuracy"] == pytest.approx(6 / 9)
    assert report["garment_iou"] == pytest.approx(0.75) and report["iou/d"] is None
    assert report["iou/a"] == pytest.approx(1 / 3)


def test_mask_iou_by_hand():
    pred, target = (PRED > 0)[None], (TARGET > 0)[None]
    assert M.mask_iou(pred, target).tolist() == pytest.approx([0.75])
    empty = torch.zeros(1, 3, 3, dtype=torch.bool)
    assert M.mask_iou(empty, empty).tolist() == [1.0]


def test_finalize_computes_iou_from_summed_matrices():
    cfg = SegmenterConfig(data="d", out="o", size=(64, 64), label_set="viton13", encoder="resnet18", encoder_weights=None)
    task = SegmenterTask(cfg)
    assert task.garment_classes == (3,)
    cm = torch.zeros(13, 13, dtype=torch.float64)
    cm[0, 0], cm[3, 3], cm[3, 0], cm[0, 3] = 10, 6, 2, 2  # background and upper only
    val = task.finalize({"confusion": cm, "ce": torch.tensor(3.0), "dice": torch.tensor(1.5), "n": torch.tensor(3.0)})
    assert list(val)[:5] == ["miou", "garment_iou", "pixel_accuracy", "ce", "dice"]
    assert val["garment_iou"] == pytest.approx(6 / 10) and val["iou/upper"] == pytest.approx(0.6)
    assert val["iou/background"] == pytest.approx(10 / 14)
    assert val["miou"] == pytest.approx((0.6 + 10 / 14) / 2)  # absent classes left out
    assert val["iou/hair"] is None and val["ce"] == 1.0 and val["dice"] == 0.5


# --- losses -----------------------------------------------------------------------------------------


def _one_hot_logits(labels: torch.Tensor, classes: int, scale: float = 50.0) -> torch.Tensor:
    return scale * F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def test_dice_of_a_perfect_prediction_is_zero():
    labels = torch.randint(0, 5, (2, 16, 16))
    assert float(dice_loss(_one_hot_logits(labels, 5), labels, 5)) < 1e-6


def test_dice_by_hand():
    labels = torch.tensor([[[0, 1], [1, 0]]])
    # Uniform softmax 1/2: Dice of each class = 2 * (1/2 * 2) / (4/2 + 2) = 1/2.
    assert float(dice_loss(torch.zeros(1, 2, 2, 2), labels, 2)) == pytest.approx(0.5)
    # Three classes, the third absent: it contributes 0, the others 1 - 2*(2/3)/(4/3 + 2) = 0.6.
    assert float(dice_loss(torch.zeros(1, 3, 2, 2), labels, 3)) == pytest.approx((0.6 + 0.6 + 0) / 3)


def test_dice_function_module_and_smp_agree():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 8, 8))
    expected = smp.losses.DiceLoss("multiclass")(logits, labels)
    assert torch.allclose(dice_loss(logits, labels, 4), expected)
    assert torch.allclose(DiceLoss(num_classes=4)(logits, labels), expected)


def test_segmentation_loss_is_weighted_ce_plus_dice():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    labels = torch.randint(0, 4, (2, 8, 8))
    terms = segmentation_loss(logits, labels, ce=2.0, dice=0.5)
    assert torch.allclose(terms["ce"], F.cross_entropy(logits, labels))
    assert torch.allclose(terms["loss"], 2.0 * terms["ce"] + 0.5 * terms["dice"])
    assert torch.allclose(SegmentationLoss(ce=2.0, dice=0.5)(logits, labels), terms["loss"])
    terms["loss"].backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_loss_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        dice_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes is 5"):
        dice_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="integer class ids"):
        segmentation_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4))


# --- configuration ------------------------------------------------------------------------------


def test_config_round_trip_and_validation():
    cfg = SegmenterConfig(data="d", out="o", size=(64, 96), label_set="viton13", garment_labels=(5, 6), flip=0.5)
    d = json.loads(cfg.to_json())
    assert d["task"] == "segmenter" and d["size"] == [64, 96]
    assert SegmenterConfig.from_dict(d) == cfg
    assert cfg.preprocess.size == (64, 96) and cfg.model_config().classes == 13
    with pytest.raises(ConfigError, match="use 64"):
        SegmenterConfig(data="d", out="o", size=(60, 60))
    with pytest.raises(ConfigError, match="unet"):
        SegmenterConfig(data="d", out="o", arch="segnet")
    with pytest.raises(ConfigError, match="nothing to train"):
        SegmenterConfig(data="d", out="o", ce=0, dice=0)


# --- runs through the CLI -----------------------------------------------------------------------


def test_train_segmenter_writes_a_complete_resumable_run(train_args, tmp_path, lists):
    run = tmp_path / "run"
    _ok(runner.invoke(app, ["train-segmenter", *train_args("--epochs", "1", "--augment"), "--lr", "1e-3"]))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["epoch"] == 1 and record["step"] == 3  # 6 train samples, batch 2
    assert set(record["train"]) == {"loss", "ce", "dice"}
    val = record["val"]
    assert {"miou", "garment_iou", "pixel_accuracy", "ce", "dice", "iou/upper-clothes", "iou/background"} <= set(val)
    assert 0 <= val["miou"] <= 1 and 0 <= val["pixel_accuracy"] <= 1
    n_val = len(lists[1].read_text().split())
    assert Image.open(run / "samples" / "epoch_001.png").size == (3 * 128, n_val * 128)  # photo | truth | prediction
    meta = read_meta(run / "best.safetensors")
    assert meta["kind"] == "segmenter" and meta["epoch"] == 1
    assert meta["segmenter"] == {"arch": "unet", "encoder": "resnet18", "encoder_weights": None, "in_channels": 3, "classes": 20}
    assert meta["preprocess"] == {"size": [64, 64], "label_set": "cihp20", "fill": [255, 255, 255], "normalisation": "x / 127.5 - 1"}
    assert meta["labels"]["set"] == "cihp20" and meta["labels"]["garment_labels"] == [5]
    assert meta["train"]["flip"] == 0.5 and meta["metrics"]["val"]["miou"] == pytest.approx(val["miou"])
    assert json.loads((run / "config.json").read_text())["task"] == "segmenter"

    # --resume continues the same run: one more epoch, same settings.
    out = _ok(runner.invoke(app, ["train-segmenter", "--resume", str(run), "--epochs", "2", "--device", "cpu", "--workers", "0"]))
    assert "resuming" in out
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert read_meta(run / "last.safetensors")["epoch"] == 2 and read_meta(run / "last.safetensors")["step"] == 6


def test_train_segmenter_viton13(train_args, tmp_path):
    run = tmp_path / "run13"
    out = _ok(runner.invoke(app, ["train-segmenter", *train_args("--max-steps", "1", "--labels", "viton13", out=run)]))
    assert "best val mean IoU" in out
    meta = read_meta(run / "best.safetensors")
    assert meta["segmenter"]["classes"] == 13 and meta["labels"]["set"] == "viton13"
    assert meta["labels"]["representative"][3] == 5
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["val"]
    assert "iou/upper" in val and "iou/upper-clothes" not in val


def test_train_segmenter_user_errors(train_args, tmp_path):
    assert "cihp20, viton13" in _user_error(runner.invoke(app, ["train-segmenter", *train_args("--labels", "lip")]))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    assert "--resume" in _user_error(runner.invoke(app, ["train-segmenter", *train_args(out=tmp_path / "busy")]))
    assert "config.json" in _user_error(runner.invoke(app, ["train-segmenter", "--resume", str(tmp_path / "busy")]))


@pytest.mark.slow
def test_two_process_segmenter_run(synthetic_root, lists, tmp_path, torchrun):
    """The shared loop's DDP path under the real torchrun launcher (gloo, CPU): one set of outputs."""
    run = tmp_path / "run"
    result = torchrun([
        "-m", "clothes_extractor",
        "train-segmenter", "--data", str(synthetic_root), "--train-list", str(lists[0]), "--val-list", str(lists[1]),
        "--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--bs", "1", "--workers", "0",
        "--device", "cpu", "--epochs", "1", "--out", str(run),
    ], tmp_path)
    out = result.stdout
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1] and records[0]["step"] == 3  # 6 samples, 2 processes x batch 1
    assert out.count("done:") == 1
    assert read_meta(run / "best.safetensors")["kind"] == "segmenter"
