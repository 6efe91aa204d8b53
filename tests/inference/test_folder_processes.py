"""Folder mode under the real torchrun launcher: two CPU processes (gloo) split the photos and
write, file by file, the bytes one process writes, with one merged report; a killed job resumes.

Each launch starts two Python processes that import torch (a few seconds on a busy machine), so
the launches are few: on the synthetic photos (always) a killed `extract --masks` run resumed to
the end, `extract` without masks and `segment`; on the real photos beside the checkout
(../shared, skipped where absent) `extract` with masks for some photos (the segmenter predicts
the others') and `segment`. The single-process references run in this process (CliRunner).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from tests.inference.conftest import write_generator
from tests.inference.test_segmenter import write_segmenter

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
TIMEOUT = 900.0  # seconds: generous, for a loaded two-core machine (torch starts slowly there)
COPIES = 2  # the synthetic photos, each under this many names: enough work to kill a run mid-way

runner = CliRunner()


# --- running ---------------------------------------------------------------------------------------


def _launcher() -> list[str]:
    """The README's launch: ``torchrun --nproc_per_node=2 --no-python clothes-extractor``
    (``python -m torch.distributed.run``; the module where the console script is not installed)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    script = Path(sys.executable).parent / "clothes-extractor"
    return [*torchrun, "--no-python", str(script)] if script.exists() else [*torchrun, "-m", "clothes_extractor"]


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("FORCE_COLOR", None)
    return subprocess.Popen(
        [*_launcher(), *map(str, args)], cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (torchrun starts each worker in a session of its own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_job(proc: subprocess.Popen) -> None:
    """SIGKILL the whole job, as a cluster's scheduler ends one: the workers, then the launcher."""
    for worker in _children(proc.pid):
        try:
            os.killpg(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def torchrun(*args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``args`` run by two processes under torchrun."""
    proc = _start(list(args))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_job(proc)
        pytest.fail(f"torchrun {' '.join(map(str, args[:2]))} did not finish in {TIMEOUT:.0f} s")
    return proc.returncode, out, err


def one_process(*args) -> tuple[int, str]:
    """The same command in this process, with one thread as torchrun gives each of its processes
    (OMP_NUM_THREADS=1): a CPU convolution's float sums follow the thread count, and one level
    of a pixel may move with it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = runner.invoke(app, [str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


# --- what a run says and writes ----------------------------------------------------------------------


def failures(text: str) -> list[str]:
    """The report's failure lines, in their order."""
    return [line for line in text.splitlines() if line.startswith("failed: ")]


def summary(text: str, command: str) -> list[tuple[int, int, int]]:
    """(written, failed, skipped) of each summary line (``extract: 3 written to ...``)."""
    pattern = rf"^{command}: (\d+) written to .*?, (\d+) failed(?:, (\d+) skipped)?"
    return [tuple(int(n or 0) for n in m.groups()) for m in re.finditer(pattern, text, re.MULTILINE)]


def notes(text: str, ids: list[str]) -> list[str]:
    return [line for line in text.splitlines() if line.split(":")[0] in ids]


def final_files(folder: Path) -> list[Path]:
    """The outputs under their final names (a kill may leave hidden temporary files)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def assert_same_files(got: Path, want: Path) -> None:
    files = final_files(want)
    assert files and final_files(got) == files
    for name in files:
        assert (got / name).read_bytes() == (want / name).read_bytes(), f"{name} differs from one process's"


def assert_one_report(two: tuple[int, str, str], one: tuple[int, str], command: str, ids: list[str]) -> None:
    """The two processes' run reports as one process does: the same failures in the same order,
    notes and counts, printed once (by rank 0), and a failing exit code where one failed."""
    code, out, err = two
    single_code, single = one
    assert failures(err) == failures(single), err
    assert notes(out, ids) == notes(single, ids)
    assert len(summary(out, command)) == 1 and summary(out, command) == summary(single, command), out
    assert "(2 processes)" in out
    assert (code != 0) == (single_code != 0), (code, out, err)


# --- the photos ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """A random-weight generator and a segmenter that always finds an upper garment (label 5)."""
    root = tmp_path_factory.mktemp("models")
    return write_generator(root / "g.safetensors"), write_segmenter(root / "s.safetensors", constant=5)


def _add_trouble(images: Path, masks: Path, first: str) -> None:
    """A broken JPEG (with a mask), a photo without a mask and a mask without a photo."""
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    shutil.copy(masks / f"{first}.png", masks / "broken.png")
    shutil.copy(images / f"{first}.jpg", images / "lonely.jpg")
    shutil.copy(masks / f"{first}.png", masks / "orphan.png")


@pytest.fixture(scope="module")
def synthetic(synthetic_root, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(images, masks, ids): the 12 synthetic photos under COPIES names each (two of them wear a
    dress: an empty garment mask, a failure), with their parse maps, plus the troubles."""
    root = tmp_path_factory.mktemp("synthetic-folder")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for split in ("train", "test"):
        for photo in sorted((synthetic_root / split / "image").glob("*.jpg")):
            for copy in range(COPIES):
                os.link(photo, images / f"{copy}_{photo.name}")
                os.link(synthetic_root / split / "image-parse-v3" / f"{photo.stem}.png", masks / f"{copy}_{photo.stem}.png")
    _add_trouble(images, masks, "0_00000_00")
    return images, masks, sorted(p.stem for p in images.iterdir())


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(images, masks, ids): the 3 VITON-HD samples and 4 VITON photos, masks for every other
    one (the segmenter predicts the rest), plus the troubles."""
    sources = [(SHARED / "viton-hd-samples" / "test", "image-parse-v3"), (SHARED / "viton-2018" / "test", "image-parse")]
    if not all((split / "image").is_dir() for split, _ in sources):
        pytest.skip(f"real photos not found under {SHARED} (the shared/ folder beside the repo)")
    root = tmp_path_factory.mktemp("real-folder")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    photos = [(split, parse, p) for split, parse in sources for p in sorted((split / "image").glob("*.jpg"))[:4]]
    for k, (split, parse, photo) in enumerate(photos[:7]):
        shutil.copy(photo, images / photo.name)
        if k % 2 == 0 or k == 1:
            shutil.copy(split / parse / f"{photo.stem}.png", masks / f"{photo.stem}.png")
    _add_trouble(images, masks, photos[0][2].stem)
    return images, masks, sorted(p.stem for p in images.iterdir())


def _extract_args(images: Path, masks: Path | None, out: Path, models, *extra) -> list:
    generator, segmenter = models
    with_masks = ["--masks", masks] if masks is not None else []
    return ["extract", "--images", images, *with_masks, "-o", out, "-c", generator, "--segmenter", segmenter,
            "--device", "cpu", *extra]


def _segment_args(images: Path, out: Path, models) -> list:
    return ["segment", "--images", images, "-o", out, "-s", models[1], "--device", "cpu", "--batch-size", "3"]


# --- the tests -------------------------------------------------------------------------------------


def test_a_killed_two_process_extract_resumes_to_one_process_bytes(synthetic, models, tmp_path):
    """Killed mid-way (every process SIGKILLed), the job's rerun skips what was written and
    finishes: the folder then holds one process's files, byte for byte, and the report of the
    rerun is one process's (every failure, merged in job order, once)."""
    images, masks, ids = synthetic
    reference, out = tmp_path / "one", tmp_path / "two"
    args = _extract_args(images, masks, reference, models, "--batch-size", "1")
    one = one_process(*args)
    assert one[0] == 1 and len(failures(one[1])) == 2 * COPIES + 1  # the dresses and the broken photo
    total = len(final_files(reference))

    proc = _start(_extract_args(images, masks, out, models, "--batch-size", "1"))
    deadline = time.monotonic() + TIMEOUT
    while len(final_files(out) if out.is_dir() else []) < 3:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (code {proc.returncode}) before it could be killed: {proc.communicate()}")
        if time.monotonic() > deadline:
            _kill_job(proc)
            pytest.fail("no outputs were written")
        time.sleep(0.01)
    _kill_job(proc)
    done = final_files(out)
    assert 3 <= len(done) < total, "killed mid-way"
    for name in done:  # every file under a final name is whole
        with Image.open(out / name) as image:
            image.load()

    code, text, err = torchrun(*_extract_args(images, masks, out, models, "--batch-size", "1"))
    assert_same_files(out, reference)
    (written, failed, _), = summary(one[1], "extract")
    assert summary(text, "extract") == [(written - len(done), failed, len(done))], text  # resumed, not redone
    assert failures(err) == failures(one[1]), err  # every failure, in job order, once
    assert notes(text, ids) == notes(one[1], ids)
    assert code != 0  # as one process: 1 when a photo failed


def test_two_process_extract_without_masks_and_segment_write_one_process_bytes(synthetic, models, tmp_path):
    images, _, ids = synthetic
    for command, args in (
        ("extract", lambda out: _extract_args(images, None, out, models, "--batch-size", "3", "--viton-layout")),
        ("segment", lambda out: _segment_args(images, out, models)),
    ):
        one = one_process(*args(tmp_path / command / "one"))
        two = torchrun(*args(tmp_path / command / "two"))
        assert_same_files(tmp_path / command / "two", tmp_path / command / "one")
        assert_one_report(two, one, command, ids)
        assert len(failures(one[1])) == 1  # the broken photo


def test_two_process_runs_on_real_photos_write_one_process_bytes(real, models, tmp_path):
    images, masks, ids = real
    for command, args in (
        ("extract", lambda out: _extract_args(images, masks, out, models, "--batch-size", "2", "--format", "png")),
        ("segment", lambda out: _segment_args(images, out, models)),
    ):
        one = one_process(*args(tmp_path / command / "one"))
        two = torchrun(*args(tmp_path / command / "two"))
        assert_same_files(tmp_path / command / "two", tmp_path / command / "one")
        assert_one_report(two, one, command, ids)
        assert [line.split(":")[1].strip() for line in failures(one[1])] == ["broken"]


def test_readme_help_and_these_tests_launch_alike():
    """The README (one box, SLURM), each command's --help and the launches above agree."""
    readme = (REPO / "README.md").read_text()
    for command in ("extract", "segment"):
        assert f"torchrun --nproc_per_node=8 --no-python clothes-extractor {command} --images" in readme
        text = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.split())
        assert f"torchrun --nproc_per_node=N --no-python clothes-extractor {command}" in text, text
        assert "cuda:LOCAL_RANK" in text and "a killed job resumes" in text and "--rdzv-endpoint" in text
    for flag in ("srun torchrun --nnodes", "--rdzv-endpoint=", "tests/inference/test_folder_processes.py"):
        assert flag in readme
    assert {"--nproc_per_node=2", "--no-python"} <= set(_launcher()) or "-m" in _launcher()
