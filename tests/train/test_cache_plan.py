"""`prepare`'s plan: which caches, and every refusal named before anything is built."""

from __future__ import annotations

import os
import shutil

import pytest

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.errors import DataError
from clothes_extractor.train.cache_plan import plan_caches

PRE = PreprocessConfig(size=(64, 64))


@pytest.fixture()
def data(synthetic_root, lists, tmp_path):
    """A copy of the synthetic root's folder structure (links), with split's lists in it."""
    root = tmp_path / "viton"
    shutil.copytree(synthetic_root, root, copy_function=os.symlink)
    for path in lists:
        shutil.copy(path, root / path.name)
    return root


def test_default_plan_is_one_cache_per_list_of_split(data):
    plan = plan_caches(data, split="train", lists=None, preprocess=PRE)
    assert [job.source.name for job in plan] == ["train_ids.txt", "val_ids.txt"]
    assert all(job.path.parent == data / "prepared" and job.path.name.startswith("train-64x64-") for job in plan)
    assert plan[0].path != plan[1].path  # one cache per list
    test_plan = plan_caches(data, split="test", lists=None, preprocess=PRE)
    assert [(job.source, job.describe("test")) for job in test_plan] == [(None, "all of test")]


def test_every_refusal_is_named_at_once(data):
    plan = plan_caches(data, split="train", lists=None, preprocess=PRE)
    for job in plan:  # folders that are not caches
        job.path.mkdir(parents=True)
        (job.path / "notes.txt").write_text("mine")
    with pytest.raises(DataError) as info:
        plan_caches(data, split="train", lists=None, preprocess=PRE)
    assert all(str(job.path) in str(info.value) for job in plan) and "not a prepared cache" in str(info.value)
