"""Writing a prepared cache (data/prepared/build.py): atomic builds, named failures, overwrite;
and the `prepare` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.prepared import PreparedDataset, build, cache_path, open_prepared, prepare_dataset
from clothes_extractor.errors import DataError
from tests.data.prepared.cases import CFG, GOOD, viton

runner = CliRunner()


def test_a_failing_worker_leaves_no_cache(synthetic_root, tmp_path, monkeypatch):
    real = build.preprocess_sample

    def flaky(raw, cfg):
        if raw.id == "00004_00":
            raise RuntimeError("simulated crash in a worker")
        return real(raw, cfg)

    monkeypatch.setattr(build, "preprocess_sample", flaky)  # forked workers inherit it
    out = tmp_path / "caches" / "c"
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, progress=False)
    assert not out.exists() and list((tmp_path / "caches").iterdir()) == []


def test_interrupt_during_build_keeps_the_old_cache(synthetic_root, tmp_path, monkeypatch):
    out = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    before = (out / "manifest.json").read_text()

    def interrupted(raw, cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "preprocess_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=1, overwrite=True, progress=False)
    assert (out / "manifest.json").read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_samples_without_garment_are_named_and_nothing_is_written(synthetic_root, tmp_path):
    with pytest.raises(DataError) as exc:
        prepare_dataset(synthetic_root, preprocess=CFG, out=tmp_path / "c", workers=2, progress=False)
    message = str(exc.value)
    assert "2 sample(s)" in message and "00007_00" in message and "00008_00" in message
    assert "clothes-extractor split" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_files_are_named(data_copy, tmp_path):
    (data_copy / "train" / "cloth" / "00003_00.jpg").unlink()
    with pytest.raises(DataError, match=r"1 file\(s\) missing .*sample 00003_00: .*cloth/00003_00\.jpg.*split"):
        prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", progress=False)


def test_existing_cache_needs_overwrite(synthetic_root, tmp_path):
    out = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    with pytest.raises(DataError, match=r"already holds a prepared cache \(up to date\); pass --overwrite"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, progress=False)
    (out / "inputs.npy").write_bytes(b"")  # wreck it, then rebuild in place
    again = prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, overwrite=True, progress=False)
    assert again == out and np.array_equal(PreparedDataset(out).arrays(6)[0], viton(synthetic_root).arrays(6)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a prepared cache"):
        prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=tmp_path / "other", overwrite=True, progress=False)


# --- the command ---------------------------------------------------------------------------------


def _run(*args, code=0):
    result = runner.invoke(app, ["prepare", *map(str, args)])
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_cli_prepares_a_list_and_refuses_to_overwrite(synthetic_root, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(GOOD) + "\n")
    out = _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", "--workers", "1")
    path = cache_path(synthetic_root, "train", GOOD, CFG, root=tmp_path / "caches")
    assert "prepared 7 samples (ids.txt) at 64x96:" in out and str(path) in out and " MB in " in out
    assert PreparedDataset(path).ids == GOOD
    assert json.loads((path / "manifest.json").read_text())["list"] == str(ids.resolve())
    again = _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", code=1)
    assert "already holds a prepared cache (up to date); pass --overwrite" in again
    _run("--data", synthetic_root, "--size", "64x96", "--list", ids, "--out", tmp_path / "caches", "--overwrite")


def test_cli_prepares_train_and_val_lists_by_default(data_copy):
    (data_copy / "train_ids.txt").write_text("\n".join(GOOD[:5]) + "\n")
    (data_copy / "val_ids.txt").write_text("\n".join(GOOD[5:]) + "\n")
    out = _run("--data", data_copy, "--size", "64", "--background", "black")
    assert "prepared 5 samples (train_ids.txt) at 64x64" in out and "prepared 2 samples (val_ids.txt)" in out
    cfg = PreprocessConfig(size=(64, 64), background=(0, 0, 0))
    assert open_prepared(data_copy, "train", data_copy / "train_ids.txt", cfg).ids == GOOD[:5]
    assert open_prepared(data_copy, "train", data_copy / "val_ids.txt", cfg).ids == GOOD[5:]
    assert len(list((data_copy / "prepared").iterdir())) == 2


def test_cli_errors(tmp_path, data_copy):
    out = _run("--data", tmp_path / "nope", code=1)
    assert "data set folder not found" in out
    out = _run("--data", data_copy, "--size", "250", code=1)
    assert "not a multiple of 32; use 256" in out
    out = _run("--data", data_copy, "--size", "64", code=1)  # no lists: every sample, 2 have no garment
    assert "00007_00" in out and "clothes-extractor split" in out
    assert not (data_copy / "prepared").exists() or not any((data_copy / "prepared").iterdir())
