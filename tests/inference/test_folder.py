"""Folder mode: pairing by stem, batches, a bad pair reported while the others go on, layouts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.data.viton import garment_mask, read_label_map
from clothes_extractor.errors import DataError
from clothes_extractor.inference.folder import pair_folders

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()


def _cli(*args):
    return runner.invoke(app, ["extract", *map(str, args)])


@pytest.fixture()
def folders(photo_root, tmp_path):
    """images/ with the 3 test photos + a corrupt one + one without a mask; masks/ with their
    parse maps (one named <id>_mask.png) + a mask without a photo."""
    split = photo_root / "test"
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    ids = sorted(p.stem for p in (split / "image").glob("*.jpg"))
    for i, sample_id in enumerate(ids):
        shutil.copy(split / "image" / f"{sample_id}.jpg", images / f"{sample_id}.jpg")
        name = f"{sample_id}_mask.png" if i == 1 else f"{sample_id}.png"
        shutil.copy(split / "image-parse-v3" / f"{sample_id}.png", masks / name)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    shutil.copy(split / "image-parse-v3" / f"{ids[0]}.png", masks / "broken.png")
    shutil.copy(split / "image" / f"{ids[0]}.jpg", images / "lonely.jpg")
    shutil.copy(split / "image-parse-v3" / f"{ids[0]}.png", masks / "orphan.png")
    return images, masks, ids


def test_folder_mode_goes_on_past_a_bad_pair(ckpt, extractor, folders, tmp_path):
    images, masks, ids = folders
    out = tmp_path / "out"
    result = _cli("--images", images, "--masks", masks, "-o", out, "-c", ckpt, "--batch-size", "2", "--format", "png")
    text = _user_error(result)
    assert "broken" in text and "cannot read photo" in text
    assert "lonely" in text and "no mask" in text
    assert "orphan" in text  # a mask without a photo is reported, not an error
    assert "3 written" in text and "2 failed" in text
    assert sorted(p.name for p in out.iterdir()) == [f"{i}.png" for i in ids]
    # Batched inference gives the one-photo result (up to float reassociation in a batch).
    photo = np.asarray(Image.open(images / f"{ids[2]}.jpg").convert("RGB"))
    mask = garment_mask(read_label_map(masks / f"{ids[2]}.png"), (5,))
    got = np.asarray(Image.open(out / f"{ids[2]}.png")).astype(int)
    assert np.abs(got - extractor.extract(photo, mask).rgb).max() <= 2

    # A second run skips what exists and fails the same two.
    text = _user_error(_cli("--images", images, "--masks", masks, "-o", out, "-c", ckpt, "--format", "png"))
    assert "0 written" in text and "3 skipped" in text


def test_folder_mode_all_good_exits_0(ckpt, photo_root, tmp_path):
    split = photo_root / "test"
    text = _ok(_cli("--images", split / "image", "--masks", split / "image-parse-v3", "-o", tmp_path / "out", "-c", ckpt))
    assert "3 written" in text and "0 failed" in text
    assert all(Image.open(p).format == "JPEG" for p in (tmp_path / "out").iterdir())


def test_viton_layout(ckpt, extractor, photo_root, tmp_path):
    split = photo_root / "test"
    out = tmp_path / "viton"
    _ok(_cli("--images", split / "image", "--masks", split / "image-parse-v3", "-o", out, "-c", ckpt, "--viton-layout"))
    ids = sorted(p.stem for p in (split / "image").glob("*.jpg"))
    assert sorted(p.name for p in out.iterdir()) == ["cloth", "cloth-mask"]
    for folder, mode in (("cloth", "RGB"), ("cloth-mask", "L")):
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"{i}.jpg" for i in ids]
        for sample_id in ids:
            image = Image.open(out / folder / f"{sample_id}.jpg")
            assert (image.format, image.mode, image.size) == ("JPEG", mode, (768, 1024))
    photo = np.asarray(Image.open(split / "image" / f"{ids[0]}.jpg").convert("RGB"))
    mask = garment_mask(read_label_map(split / "image-parse-v3" / f"{ids[0]}.png"), (5,))
    expected = extractor.extract(photo, mask).mask()
    got = np.asarray(Image.open(out / "cloth-mask" / f"{ids[0]}.jpg")) >= 128
    assert set(np.unique(expected)) <= {0, 255}
    assert (got == (expected == 255)).mean() > 0.99  # JPEG rings at the edges only


def test_pairing_by_stem(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for d in (images, masks):
        d.mkdir()
    for name in ("a.jpg", "b.png", "c.jpg", ".hidden.jpg", "notes.txt"):
        (images / name).touch()
    for name in ("a.png", "a.jpg", "b_mask.jpg", "z.png"):
        (masks / name).touch()
    pairs, orphans = pair_folders(images, masks)
    assert [(i, p.name, m and m.name) for i, p, m in pairs] == [
        ("a", "a.jpg", "a.png"), ("b", "b.png", "b_mask.jpg"), ("c", "c.jpg", None)
    ]
    assert orphans == ["z"]
    # Photos and masks in one folder: only <id>_mask.* are masks.
    (images / "a_mask.png").touch()
    pairs, orphans = pair_folders(images, images)
    assert [(i, m and m.name) for i, _, m in pairs] == [("a", "a_mask.png"), ("b", None), ("c", None)]
    assert orphans == []
    with pytest.raises(DataError, match="folder not found"):
        pair_folders(tmp_path / "nope", masks)


def test_the_runner_reads_and_writes_beside_the_model_and_reports_in_order(tmp_path):
    """Reads and writes run in the I/O threads; the report keeps the jobs' order within each
    outcome; a photo that fails to read or write is recorded and the rest go on."""
    import threading
    import time

    from clothes_extractor.errors import ClothesExtractorError
    from clothes_extractor.inference.folder import FolderJob, FolderSteps, run_folder

    threads = {"read": set(), "write": set(), "predict": set()}
    written = []

    def read(i):
        threads["read"].add(threading.current_thread().name)
        time.sleep(0.01 * (i % 3))  # reads finishing out of order
        if i == 4:
            raise ClothesExtractorError("photo 4 is corrupt")
        return i

    class Steps(FolderSteps):
        def infer(self, xs):
            threads["predict"].add(threading.current_thread().name)
            return [x * 10 for x in xs]

        def write(self, result, job):
            threads["write"].add(threading.current_thread().name)
            time.sleep(0.02 if result == 10 else 0)  # the first write finishes last
            if result == 70:
                raise OSError("disk says no")
            written.append(result)

    jobs = [FolderJob(str(i), [tmp_path / f"{i}.png"], tmp_path / f"{i}.png", lambda i=i: read(i)) for i in range(1, 10)]
    (tmp_path / "9.png").write_bytes(b"x")  # there already: skipped
    report = run_folder(jobs, Steps(), batch_size=3, overwrite=False)
    assert report.skipped == ["9"]
    assert report.done == ["1", "2", "3", "5", "6", "8"]
    assert report.failed == [("4", "photo 4 is corrupt"), ("7", f"cannot write {tmp_path / '7.png'}: disk says no")]
    assert sorted(written) == [10, 20, 30, 50, 60, 80]
    main = threading.current_thread().name
    assert threads["predict"] == {main}
    assert main not in threads["read"] and main not in threads["write"]


def test_shares_of_a_run_split_the_jobs_by_rank_and_merge_into_the_whole_report(tmp_path):
    """A run split between processes (torchrun): each takes every N-th chunk of batch-size jobs
    from its rank, what exists included (a rerun splits alike), a batch never spans two chunks
    (a photo meets the same others in the model however the run is split), and their reports
    merge into one run's, in job order."""
    from clothes_extractor.errors import ClothesExtractorError
    from clothes_extractor.inference.folder import FolderJob, FolderSteps, merge_reports, run_folder

    class Steps(FolderSteps):
        def __init__(self):
            super().__init__()
            self.batches = []

        def infer(self, xs):
            self.batches.append(list(xs))
            return [ClothesExtractorError(f"{x} failed in the batch") if x == 5 else x for x in xs]

        def write(self, result, job):
            job.target.write_text(str(result))

    def read(i):
        if i == 2:
            raise ClothesExtractorError("2 is corrupt")
        return i

    def jobs(folder):
        folder.mkdir()
        return [FolderJob(f"{i:02d}", [folder / f"{i}.txt"], folder / f"{i}.txt", lambda i=i: read(i)) for i in range(10)]

    whole = Steps()
    one = run_folder(jobs(tmp_path / "one"), whole, batch_size=2, overwrite=False)
    assert whole.batches == [[0, 1], [3], [4, 5], [6, 7], [8, 9]]  # 3 is not batched with 4

    parts = jobs(tmp_path / "parts")
    (tmp_path / "parts" / "3.txt").write_text("there")  # skipped by the share that holds it
    steps = [Steps() for _ in range(3)]
    shares = [run_folder(parts, steps[rank], batch_size=2, overwrite=False, share=(rank, 3)) for rank in range(3)]
    assert [sorted(r.done + r.skipped + [i for i, _ in r.failed]) for r in shares] == [
        ["00", "01", "06", "07"], ["02", "03", "08", "09"], ["04", "05"]
    ]
    assert [s.batches for s in steps] == [[[0, 1], [6, 7]], [[8, 9]], [[4, 5]]]  # the whole run's batches
    for r in shares:
        r.notes = [(i, f"note {k} of {i}") for i in r.done for k in range(2)]
    merged = merge_reports(shares)
    assert merged.done == ["00", "01", "04", "06", "07", "08", "09"] == [i for i in one.done if i != "03"]
    assert merged.skipped == ["03"]
    assert merged.failed == one.failed == [("02", "2 is corrupt"), ("05", "5 failed in the batch")]
    assert merged.notes == [(i, f"note {k} of {i}") for i in merged.done for k in range(2)]
    assert (tmp_path / "parts" / "3.txt").read_text() == "there"
