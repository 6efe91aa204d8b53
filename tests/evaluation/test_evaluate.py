"""`evaluate` through the CLI and the library, on small synthetic data and the real samples, CPU."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from clothes_extractor import metrics as M
from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset, to_uint8
from clothes_extractor.data.synthetic import make_sample_data
from clothes_extractor.data.transforms import to_frame
from clothes_extractor.evaluation.config import EvalConfig
from clothes_extractor.evaluation.paper import paper_images
from clothes_extractor.evaluation.protocol import IMAGE_METRICS, METRICS, SUBJECTS
from clothes_extractor.evaluation.report import grid_choice
from clothes_extractor.evaluation.run import evaluate
from clothes_extractor.evaluation.selection import select_samples
from clothes_extractor.models.generator import GeneratorConfig, build_generator

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()
SIZE = 64
PROTOCOL_JSON = Path(__file__).resolve().parents[3] / "shared" / "data" / "viton-hd-protocol" / "vitonhd_duplicate_filenames.json"


def _make_checkpoint(path: Path, background=(255, 255, 255)) -> Path:
    torch.manual_seed(0)
    gcfg = GeneratorConfig(encoder="resnet18")
    meta = {
        "kind": "generator",
        "generator": {**gcfg.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=(SIZE, SIZE), background=background).to_dict(),
        "train": {}, "epoch": 1, "step": 1, "metrics": {},
    }
    return save_checkpoint(path, build_generator(gcfg).state_dict(), meta)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _make_checkpoint(tmp_path_factory.mktemp("ckpt") / "run" / "best.safetensors")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """Synthetic VITON-HD layout at 192x256 (so the paper frame is cheap and MS-SSIM still fits):
    train 00000_00 .. 00005_00 (00005_00 without garment), test 00006_00, 00007_00."""
    root = tmp_path_factory.mktemp("small") / "viton"
    make_sample_data(root, samples=8, seed=3, empty=1, size=(256, 192))
    return root


@pytest.fixture(scope="module")
def scored(small_root, ckpt, tmp_path_factory):
    """One CLI run over a train id list with an exclusion and a sample without garment."""
    tmp = tmp_path_factory.mktemp("scored")
    ids = tmp / "ids.txt"
    ids.write_text("".join(f"0000{i}_00.jpg 0000{i}_00.jpg\n" for i in range(6)))  # a pair file
    exclude = tmp / "exclude.txt"
    exclude.write_text("00000_00\n")
    out = tmp / "eval"
    result = runner.invoke(app, [
        "evaluate", "--checkpoint", str(ckpt.parent), "--data", str(small_root), "--split", str(ids),
        "--exclude", str(exclude), "--out", str(out), "--bs", "3", "--workers", "0", "--device", "cpu",
        "--no-network-metrics",
    ])
    return _ok(result), out, exclude


def test_metrics_json_structure(scored):
    output, out, exclude = scored
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["samples"] == 4 and summary["exclude"] == str(exclude)
    assert summary["split"]["folder"] == "train" and summary["split"]["excluded"] == 1
    assert summary["skipped"] == {"no-garment": ["00005_00"]}
    assert set(summary["protocols"]) == {"native", "paper"}
    for protocol in ("native", "paper"):
        assert set(summary[protocol]) == set(SUBJECTS)
        assert "definition" in summary["protocols"][protocol]
        for subject in SUBJECTS:
            means = summary[protocol][subject]
            assert set(means) == set(METRICS)
            assert all(isinstance(means[m], float) for m in ("l1", "psnr", "ssim"))
    assert summary["native"]["model"]["ms_ssim"] is None  # 64 px < 176 px
    assert "176" in summary["not_computed"]["native"]["ms_ssim"]["reason"]
    assert isinstance(summary["paper"]["model"]["ms_ssim"], float)  # the 192x256 frame is big enough
    assert summary["protocols"]["paper"]["sizes"] == [[256, 192]]
    assert 1 < summary["paper"]["white"]["ssim"] <= 100  # x100
    assert summary["not_computed"]["paper"]["fid"]["status"] == "not computed"
    assert "excluded 1" in " ".join(output.split()) or "1 excluded" in output
    assert "no-garment: 1: 00005_00" in output
    assert "native: model" in output and "paper: model" in output


def test_per_image_csv_and_grid(scored):
    _, out, _ = scored
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "protocol", "subject", *IMAGE_METRICS]
    assert len(rows) == 4 * 2 * 3  # samples x protocols x subjects
    assert {r["id"] for r in rows} == {"00001_00", "00002_00", "00003_00", "00004_00"}
    assert all(r["lpips"] == "" and r["ssim"] != "" for r in rows)
    grid = Image.open(out / "grid.png")
    assert grid.size == (3 * SIZE, 3 * 4 * SIZE)  # input | prediction | target; best, worst, random x 4


def test_white_baseline_equals_an_independent_computation(scored, small_root):
    _, out, _ = scored
    summary = json.loads((out / "metrics.json").read_text())
    ids = ["00001_00", "00002_00", "00003_00", "00004_00"]
    ds = VitonDataset(small_root, "train", ids, PreprocessConfig(size=(SIZE, SIZE)))
    targets = [((ds[i]["target"] + 1) / 2).numpy() for i in range(len(ds))]
    assert summary["native"]["white"]["l1"] == pytest.approx(np.mean([np.abs(1 - t).mean() for t in targets]), abs=1e-6)
    psnr = [10 * np.log10(1 / np.mean((1 - t.astype(np.float64)) ** 2)) for t in targets]
    assert summary["native"]["white"]["psnr"] == pytest.approx(np.mean(psnr), abs=1e-3)
    inputs = [((ds[i]["input"] + 1) / 2).numpy() for i in range(len(ds))]
    assert summary["native"]["input"]["l1"] == pytest.approx(np.mean([np.abs(x - t).mean() for x, t in zip(inputs, targets)]), abs=1e-6)


def test_paper_protocol_on_the_real_samples(real_root, ckpt, tmp_path):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    out = tmp_path / "eval"
    args = ["evaluate", "-c", str(ckpt), "-d", str(real_root), "--split", "test", "--out", str(out),
            "--workers", "0", "--device", "cpu", "--no-network-metrics"]
    if PROTOCOL_JSON.is_file():
        args += ["--exclude", str(PROTOCOL_JSON)]
    output = _ok(runner.invoke(app, args))
    assert "scored 3 samples" in output
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["samples"] == 3 and summary["protocols"]["paper"]["sizes"] == [[1024, 768]]
    rows = {(r["id"], r["protocol"], r["subject"]): r for r in csv.DictReader(open(out / "per_image.csv", newline=""))}

    # The white baseline against the original cloth image: SSIM x100 on 8-bit BT.601 luminance.
    cloth = np.asarray(Image.open(real_root / "test" / "cloth" / "00006_00.jpg").convert("RGB")).astype(np.float64)
    assert cloth.shape == (1024, 768, 3)
    y = np.round(cloth @ np.array([0.299, 0.587, 0.114])) / 255
    ref = 100 * skimage_metrics.structural_similarity(
        np.ones_like(y), y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert float(rows[("00006_00", "paper", "white")]["ssim"]) == pytest.approx(ref, abs=1e-3)

    # The model's prediction brought back to the 768x1024 frame, L1 against cloth/<id>.jpg.
    from clothes_extractor.checkpoint import load_generator

    model, _ = load_generator(ckpt)
    ds = VitonDataset(real_root, "test", ["00017_00"], PreprocessConfig(size=(SIZE, SIZE)))
    with torch.no_grad():
        rgb = model(ds[0]["input"][None]).rgb
    pred = np.asarray(to_frame(Image.fromarray(to_uint8(rgb[0])), (1024, 768), (255, 255, 255))).astype(np.float64)
    cloth = np.asarray(Image.open(real_root / "test" / "cloth" / "00017_00.jpg").convert("RGB")).astype(np.float64)
    assert float(rows[("00017_00", "paper", "model")]["l1"]) == pytest.approx(np.abs(pred - cloth).mean() / 255, abs=1e-5)


def test_network_metrics_are_plumbed_through(small_root, ckpt, tmp_path):
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    network = M.NetworkMetrics(
        per_image={"lpips": M.l1},  # a stand-in network metric: must come out equal to L1
        fid_features=features.eval().requires_grad_(False),
        not_computed={"dists": M.NotComputed("no weights", "put the file there")},
    )
    cfg = EvalConfig(checkpoint=ckpt, data=small_root, split="test", out=tmp_path / "eval", device="cpu", batch_size=1)
    result = evaluate(cfg, network=network, progress=False)
    s = result.summary
    for p in ("native", "paper"):
        for subject in SUBJECTS:
            assert s[p][subject]["lpips"] == pytest.approx(s[p][subject]["l1"])
            assert isinstance(s[p][subject]["fid"], float) and s[p][subject]["fid"] >= 0
            assert s[p][subject]["dists"] is None
        assert s["not_computed"][p]["dists"] == {"status": "not computed", "reason": "no weights", "how": "put the file there"}
        assert "fid" not in s["not_computed"][p] and "lpips" not in s["not_computed"][p]
    assert all(r["lpips"] is not None for r in result.rows)


def test_select_samples_with_the_protocol_json(small_root, tmp_path):
    protocol = tmp_path / "dups.json"
    protocol.write_text(json.dumps({"test": {"duplicates": ["00006_00.jpg"], "leaked": []}, "train": {"duplicates": ["x.jpg"]}}))
    sel = select_samples(small_root, "test", exclude=protocol)
    assert sel.ids == ["00007_00"] and sel.excluded == 1 and sel.excluded_not_found == 1
    listed = tmp_path / "test_ids.txt"
    listed.write_text("00007_00\n00006_00\n")
    sel = select_samples(small_root, str(listed))
    assert sel.folder == "test" and sel.ids == ["00007_00", "00006_00"]


def test_paper_images_composite_on_white_for_other_backgrounds():
    cloth = np.zeros((40, 30, 3), np.uint8)
    black = -torch.ones(3, 32, 32)
    for logit, expected in ((-30.0, 255), (30.0, 0)):
        images = paper_images(black, torch.full((1, 32, 32), logit), black, cloth, (0, 0, 0))
        assert images["model"].shape == (40, 30, 3) and int(np.median(images["model"])) == expected
        assert (images["white"] == 255).all() and images["target"] is cloth
    images = paper_images(black, torch.full((1, 32, 32), -30.0), black, cloth, (255, 255, 255))
    assert int(np.median(images["model"])) == 0  # white background: the RGB is used as it is


def test_grid_choice_best_worst_random():
    choice = grid_choice([0.1, 0.5, 0.3], rows=2, seed=0)
    labels = [c[0] for c in choice]
    assert labels == ["best 1", "best 2", "worst 1", "worst 2", "random 1", "random 2"]
    assert [c[1] for c in choice[:4]] == [1, 2, 0, 2]
    assert len({c[1] for c in choice[4:]}) == 2


def test_errors_are_clear(small_root, ckpt, scored, tmp_path):
    base = ["evaluate", "--workers", "0", "--device", "cpu", "--no-network-metrics"]
    out = ["--out", str(tmp_path / "e")]
    msg = _user_error(runner.invoke(app, [*base, "-c", str(ckpt), "-d", str(tmp_path / "nope"), *out]))
    assert "data set folder not found" in msg
    msg = _user_error(runner.invoke(app, [*base, "-c", str(ckpt), "-d", str(small_root), *out]))
    assert "val_ids.txt" in msg and "clothes-extractor split" in msg
    msg = _user_error(runner.invoke(app, [*base, "-c", str(ckpt), "-d", str(small_root), "--split", str(tmp_path / "x.txt"), *out]))
    assert "no such id list" in msg
    msg = _user_error(runner.invoke(app, [*base, "-c", str(tmp_path / "missing.safetensors"), "-d", str(small_root), *out]))
    assert "checkpoint not found" in msg
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    msg = _user_error(runner.invoke(app, [*base, "-c", str(foreign), "-d", str(small_root), *out]))
    assert "not written by clothes-extractor" in msg
    existing = scored[1]
    msg = _user_error(runner.invoke(app, [*base, "-c", str(ckpt), "-d", str(small_root), "--split", "test", "--out", str(existing)]))
    assert "already exists" in msg and "--overwrite" in msg
    msg = _user_error(runner.invoke(app, [*base, "-c", str(ckpt), "-d", str(small_root), "--split", "test", "--folder", "val", *out]))
    assert "--folder" in msg


def test_a_warp_generators_paper_images_are_the_ones_extract_writes(small_root, tmp_path):
    """evaluate scores what `extract --margins <data set> --size <cloth frame>` writes: for a warp
    generator, its fields applied to the photo at the source resolution, not the model size."""
    from tests.inference.conftest import write_generator

    ckpt = write_generator(tmp_path / "warp.safetensors", size=(SIZE, SIZE), arch="warp", framing="fill", garment_width=0.938)
    out = tmp_path / "eval"
    _ok(runner.invoke(app, ["evaluate", "-c", str(ckpt), "-d", str(small_root), "--split", "test", "--out", str(out),
                            "--workers", "0", "--device", "cpu", "--no-network-metrics"]))
    rows = {(r["id"], r["protocol"], r["subject"]): r for r in csv.DictReader(open(out / "per_image.csv", newline=""))}
    split = small_root / "test"
    for sample_id in ("00006_00", "00007_00"):
        written = tmp_path / f"{sample_id}.png"
        _ok(runner.invoke(app, ["extract", str(split / "image" / f"{sample_id}.jpg"), str(split / "image-parse-v3" / f"{sample_id}.png"),
                                "-o", str(written), "-c", str(ckpt), "--margins", "viton-hd", "--size", "256x192",
                                "--background", "white", "--device", "cpu"]))
        pred = np.asarray(Image.open(written).convert("RGB")).astype(np.float64)
        cloth = np.asarray(Image.open(split / "cloth" / f"{sample_id}.jpg").convert("RGB")).astype(np.float64)
        assert float(rows[(sample_id, "paper", "model")]["l1"]) == pytest.approx(np.abs(pred - cloth).mean() / 255, abs=1e-5)
