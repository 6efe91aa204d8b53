"""The files of a prepared cache (data/prepared/files.py): layout and manifest, where a cache
lives (cache_path, open_prepared) and staleness."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.prepared import PreparedDataset, cache_path, open_prepared, prepare_dataset
from clothes_extractor.errors import DataError
from tests.data.prepared.cases import CFG, GOOD


def test_layout_and_manifest(synthetic_cache, synthetic_root):
    names = sorted(p.name for p in synthetic_cache.iterdir())
    assert names == ["alphas.npy", "ids.txt", "inputs.npy", "manifest.json", "targets.npy"]
    assert (synthetic_cache / "ids.txt").read_text().split() == GOOD
    for name, shape in (("inputs.npy", (7, 64, 96, 3)), ("targets.npy", (7, 64, 96, 3)), ("alphas.npy", (7, 64, 96))):
        a = np.load(synthetic_cache / name, mmap_mode="r")
        assert a.shape == shape and a.dtype == np.uint8
    m = json.loads((synthetic_cache / "manifest.json").read_text())
    assert m["ids"] == GOOD and m["split"] == "train" and m["count"] == 7
    assert PreprocessConfig.from_dict(m["preprocess"]) == CFG
    assert len(m["files"]) == 7 * 4
    st = (synthetic_root / "train" / "cloth" / "00003_00.jpg").stat()
    assert m["files"]["cloth/00003_00.jpg"] == [st.st_size, st.st_mtime_ns]


def test_touched_source_file_makes_the_cache_stale(data_copy, tmp_path):
    path = prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    PreparedDataset(path)  # fresh: opens
    photo = data_copy / "train" / "image" / "00002_00.jpg"
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(DataError, match=r"stale: .*image/00002_00\.jpg changed \(modification time\)") as exc:
        PreparedDataset(path)
    message = str(exc.value)
    assert "clothes-extractor prepare" in message and "--overwrite" in message and "--size 64x96" in message
    assert len(PreparedDataset(path, check=False)) == 7  # check=False trusts the cache


def test_changed_or_missing_source_file_is_detected(data_copy, tmp_path):
    path = prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=tmp_path / "c", workers=1, progress=False)
    mask = data_copy / "train" / "cloth-mask" / "00001_00.jpg"
    mask.write_bytes(mask.read_bytes() + b"\0")
    with pytest.raises(DataError, match=r"cloth-mask/00001_00\.jpg changed \(size"):
        PreparedDataset(path)
    (data_copy / "train" / "cloth" / "00004_00.jpg").unlink()
    with pytest.raises(DataError, match=r"cloth-mask/00001_00\.jpg changed .*; .*cloth/00004_00\.jpg is missing;"):
        PreparedDataset(path)


def test_open_prepared_finds_builds_and_refuses_stale(data_copy, tmp_path):
    root = tmp_path / "caches"
    assert open_prepared(data_copy, "train", GOOD, CFG, root=root) is None  # nothing built yet
    out = cache_path(data_copy, "train", GOOD, CFG, root=root)
    assert out.parent == root and out.name.startswith("train-64x96-")
    prepare_dataset(data_copy, ids=GOOD, preprocess=CFG, out=out, workers=1, progress=False)
    ds = open_prepared(data_copy, "train", GOOD, CFG, root=root)
    assert isinstance(ds, PreparedDataset) and ds.path == out and ds.ids == GOOD
    # Other settings or another list: another cache, which does not exist.
    assert open_prepared(data_copy, "train", GOOD, PreprocessConfig(size=(64, 64)), root=root) is None
    assert open_prepared(data_copy, "train", GOOD[:3], CFG, root=root) is None
    # The default root is <data>/prepared.
    assert cache_path(data_copy, "train", GOOD, CFG).parent == data_copy / "prepared"
    photo = data_copy / "train" / "image" / "00000_00.jpg"
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="stale"):
        open_prepared(data_copy, "train", GOOD, CFG, root=root)
    assert open_prepared(data_copy, "train", GOOD, CFG, root=root, stale="none") is None
