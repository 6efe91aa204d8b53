"""benchmarks/gpu_all.py and train_step.py's --device option, checked on the CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_rate_from_metrics_leaves_the_first_epoch_out():
    gpu_all = _module("gpu_all")
    records = [{"step": 10, "seconds": 5.0}, {"step": 20, "seconds": 1.0}, {"step": 30, "seconds": 3.0}]
    rates = gpu_all.rate_from_metrics(records, batch=4)
    assert rates["images_per_s"] == pytest.approx(80 / 4.0, abs=0.05)
    assert rates["images_per_s_by_epoch"] == [8.0, 40.0, 13.3]
    assert rates["steps"] == 30 and rates["epochs_timed"] == "2..3"
    only = gpu_all.rate_from_metrics(records[:1], batch=4)
    assert only["images_per_s"] == 8.0 and only["epochs_timed"].startswith("1 ")


def test_reported_seconds_pattern_matches_the_folder_report():
    gpu_all = _module("gpu_all")
    line = "extract: 300 written to /tmp/x/out, 0 failed; 1.3 s"
    match = gpu_all.REPORTED.search("00001_00: mask predicted by the segmenter\n" + line + "\n")
    assert match and match.group(1) == "300" and float(match.group(3)) == 1.3
    skipped = "extract: 3 written to out, 0 failed, 2 skipped (output exists; --overwrite replaces); 0.4 s"
    assert float(gpu_all.REPORTED.search(skipped).group(3)) == 0.4


@pytest.mark.slow
def test_train_step_cuda_cases_build_and_step_on_any_device():
    """The --device cuda plumbing (ours with the loop's settings, the original's in fp32, the
    per-case cudnn.benchmark switch), run on the CPU where no GPU is."""
    import argparse

    import torch

    train_step = _module("train_step")
    args = argparse.Namespace(bs=1, size=(64, 64), encoder="resnet18", cases=["original_gan", "gan_terms"], compile=False)
    steps, precision = train_step.cuda_cases(args, torch.device("cpu"))
    assert precision == {"original_gan": "fp32", "gan_terms": "bf16"}
    times = train_step.run_rounds(steps, rounds=1, n=1, warmup=0, sync=lambda: None)
    assert all(_positive(t["wall"][0]) for t in times.values())


@pytest.mark.slow
def test_gpu_all_quick_on_cpu(tmp_path):
    """The whole GPU command at tiny settings: every part runs (bs 128 is skipped by --quick),
    one JSON object, every figure a positive number, the scratch folder removed."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_all.py"), "--device", "cpu", "--quick", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert {"benchmark", "device", "gpu", "quick", "budget_s", "summary", "results", "skipped", "data", "photos",
            "elapsed_s", "method"} <= set(report)
    assert report["device"] == "cpu" and report["quick"] is True and report["gpu"] is None
    results = report["results"]
    assert set(results) == {"train_gan_224", "default_recipe_256x192", "extract_with_masks", "extract_without_masks",
                            "train_step", "cuda_path"}
    assert set(report["skipped"]) == {"train_gan_224_bs128"}
    assert set(report["summary"]) == {"train_gan_224_images_per_s", "default_recipe_256x192_images_per_s",
                                      "extract_with_masks_photos_per_s", "extract_without_masks_photos_per_s"}
    for entry in report["summary"].values():
        assert _positive(entry["value"]) and _positive(entry["target"]) and entry["met"] is None  # not comparable on a CPU
    for name in ("train_gan_224", "default_recipe_256x192"):
        r = results[name]
        assert _positive(r["images_per_s"]) and _positive(r["images_per_s_whole_command"]) and _positive(r["wall_s"])
        assert r["epochs"] == 2 and r["steps"] > 0 and all(_positive(v) for v in r["images_per_s_by_epoch"])
    assert "--framing fill" in results["default_recipe_256x192"]["command"]
    assert "--augment" in results["default_recipe_256x192"]["command"]
    for name in ("extract_with_masks", "extract_without_masks"):
        r = results[name]
        assert r["photos"] == 4
        for key in ("photos_per_s", "photos_per_s_reported", "photos_per_s_whole_command", "wall_s", "wall_first_k_s"):
            assert _positive(r[key]), (name, key, r[key])
        assert r["photos_per_s_differential"] is None or _positive(r["photos_per_s_differential"])
    assert "--masks" in results["extract_with_masks"]["command"]
    assert "--masks" not in results["extract_without_masks"]["command"]
    assert report["photos"]["first_photo_size"] == "768x1024"
    step = results["train_step"]
    assert set(step["cases"]) == {"original_gan", "gan_terms"}
    for case in step["cases"].values():
        assert _positive(case["samples_per_s"]["median"]) and _positive(case["seconds_per_step"]["median"])
    assert "device" not in step["settings"] and "gpu" not in step["machine"]  # the CPU JSON as before
    assert _positive(step["ratios"]["gan_terms / original_gan"]["ratio"])
    path = results["cuda_path"]
    assert path["train"] and all(_positive(r["images_per_s"]) and _positive(r["ms_per_step"]) for r in path["train"])
    assert all(_positive(r["load_s"]) and _positive(r["per_photo_s"]) for r in path["extract"])
    assert _positive(report["elapsed_s"]) and report["elapsed_s"] < report["budget_s"]
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone


def test_gpu_all_without_a_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_all.py")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "no CUDA GPU" in json.loads(proc.stdout)["error"]
