"""Fixtures of the prepared-cache tests: one cache of the synthetic train ids, and a writable copy
of their source files."""

from __future__ import annotations

import os
import shutil

import pytest

from clothes_extractor.data.prepared import prepare_dataset
from tests.data.prepared.cases import CFG, EMPTY, GOOD


@pytest.fixture(scope="module")
def synthetic_cache(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "cache"
    return prepare_dataset(synthetic_root, ids=GOOD, preprocess=CFG, out=out, workers=2, progress=False)


@pytest.fixture()
def data_copy(synthetic_root, tmp_path):
    """A writable copy of the synthetic train split (four training folders, the GOOD ids)."""
    for folder in ("image", "image-parse-v3", "cloth", "cloth-mask"):
        (tmp_path / "data" / "train" / folder).mkdir(parents=True)
        for name in os.listdir(synthetic_root / "train" / folder):
            if name.split(".")[0] in GOOD + EMPTY:
                shutil.copy2(synthetic_root / "train" / folder / name, tmp_path / "data" / "train" / folder / name)
    return tmp_path / "data"
