"""Interruptions with real signals: Ctrl-C (SIGINT) and a kill (SIGKILL) in the middle of
`downsample`, `prepare` and a checkpoint save, each in its own process group as a terminal runs
it (so pool workers get the Ctrl-C too).

What must hold: the previous state stays usable (every file under a final name is complete; an
earlier cache or checkpoint still loads), Ctrl-C ends with one clear line, exit code 130 and no
traceback, and a rerun finishes the rest with results equal to an uninterrupted run.

The work is made long enough to interrupt by its real size (a few hundred full-size files), and
the tests poll for outputs instead of sleeping fixed amounts, so a loaded machine only makes
them slower, not wrong.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clothes_extractor.data import viton

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120.0  # seconds: generous, for a loaded two-core machine
GOOD_TRAIN_IDS = [f"{i:05d}_00" for i in range(7)]  # the synthetic train samples that wear label 5
COPIES = 60


def start(args: list[str]) -> subprocess.Popen:
    """The CLI (or ``python -c``) from this tree, in a new process group, as a terminal starts it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("FORCE_COLOR", None)
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, start_new_session=True, preexec_fn=_sigint_as_in_a_terminal,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _sigint_as_in_a_terminal() -> None:
    # A test run started in the background (`pytest &`, nohup) inherits SIGINT ignored, and so
    # would the child: give it the default disposition a terminal's foreground job has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (code {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    """Send ``sig`` to the whole process group (as Ctrl-C in a terminal does); (code, out, err)."""
    os.killpg(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the process did not stop after signal {sig}:\n{out}\n{err}")
    return proc.returncode, out, err


def run_to_end(args: list[str]) -> str:
    proc = start(args)
    out, err = proc.communicate(timeout=TIMEOUT * 2)
    assert proc.returncode == 0, f"{out}\n{err}"
    return out


def assert_clean_ctrl_c(code: int, err: str, bar: str) -> None:
    """Exit code 130 and one line on stderr (besides the progress bar, whose label is ``bar``)."""
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(bar)]
    assert lines == ["error: interrupted"], err


def final_files(root: Path) -> list[Path]:
    """Files under their final names (temporary files start with a dot); none while ``root`` is
    absent. The output check before the models load makes the folder, probes it and removes it
    again, so the folder can vanish between an is_dir() and the listing: catch that, not race it."""
    try:
        return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    except FileNotFoundError:
        return []


def hidden(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*"))


@pytest.fixture(scope="module")
def big_source(synthetic_root: Path, tmp_path_factory) -> Path:
    """A VITON-HD-layout train split of COPIES x 7 full-size samples (hard links of the synthetic
    ones under new ids): a few hundred real files to work on."""
    root = tmp_path_factory.mktemp("interrupt") / "src"
    ids = []
    for copy in range(COPIES):
        for k, sid in enumerate(GOOD_TRAIN_IDS):
            new = f"{copy * 10 + k + 10000:05d}_00"
            ids.append(new)
            for folder in ("image", "image-parse-v3", "cloth", "cloth-mask"):
                dst = viton.sample_path(root / "train", folder, new)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.link(viton.sample_path(synthetic_root / "train", folder, sid), dst)
    (root / "train_pairs.txt").write_text("".join(f"{i}.jpg {i}.jpg\n" for i in sorted(ids)))
    return root


# --- downsample ----------------------------------------------------------------------------------


def downsample_args(src: Path, dst: Path) -> list[str]:
    return ["-m", "clothes_extractor", "downsample", "-s", "32", "--src", str(src), "--dst", str(dst), "--workers", "2"]


@pytest.fixture(scope="module")
def downsample_reference(big_source: Path, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("reference") / "low"
    run_to_end(downsample_args(big_source, dst))
    return dst


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_downsample_interrupted_then_resumed(sig: int, big_source: Path, downsample_reference: Path, tmp_path: Path):
    dst = tmp_path / "low"
    proc = start(downsample_args(big_source, dst))
    photos = lambda: [p for p in final_files(dst) if p.parent.name == "image"]  # noqa: E731 (pathlib's * matches temporary .files)
    wait_until(proc, lambda: len(photos()) >= 20, "20 photos were written")
    code, _, err = interrupt(proc, sig)
    if sig == signal.SIGINT:
        assert_clean_ctrl_c(code, err, "downsample")
        assert hidden(dst) == [], "Ctrl-C left temporary files"
    else:
        assert code == -signal.SIGKILL
    done = final_files(dst)
    reference = final_files(downsample_reference)
    assert 20 <= len(photos()) and len(done) < len(reference), "interrupted mid-way"
    for path in done:  # every file under a final name is whole
        if path.suffix in (".jpg", ".png"):
            with Image.open(path) as image:
                image.load()

    out = run_to_end(downsample_args(big_source, dst))
    skipped = int(out.split(" skipped")[0].rsplit(" ", 1)[1])
    assert skipped >= 20, out  # it resumed rather than redoing everything
    assert [p.relative_to(dst) for p in final_files(dst)] == [p.relative_to(downsample_reference) for p in reference]
    for path in reference:
        assert (dst / path.relative_to(downsample_reference)).read_bytes() == path.read_bytes(), path
    assert hidden(dst) == []


# --- prepare -------------------------------------------------------------------------------------


PREPARED_SAMPLES = 40


def prepare_ids(src: Path) -> Path:
    """A list of the first PREPARED_SAMPLES ids: a build of a few seconds."""
    path = src / "prepare_ids.txt"
    if not path.is_file():
        ids = viton.list_ids(src / "train")[:PREPARED_SAMPLES]
        path.write_text("".join(f"{i}\n" for i in ids))
    return path


def prepare_args(src: Path, out: Path) -> list[str]:
    return ["-m", "clothes_extractor", "prepare", "--data", str(src), "--size", "64", "--out", str(out),
            "--list", str(prepare_ids(src)), "--workers", "2", "--overwrite"]


@pytest.fixture(scope="module")
def prepared_reference(big_source: Path, tmp_path_factory) -> Path:
    """The cache an uninterrupted `prepare` writes (built here, in this process)."""
    from clothes_extractor.config import PreprocessConfig
    from clothes_extractor.data.prepared import prepare_dataset

    out = tmp_path_factory.mktemp("prepared") / "ref"
    return prepare_dataset(
        big_source, ids=prepare_ids(big_source), preprocess=PreprocessConfig(size=(64, 64)), out=out, workers=2, progress=False
    )


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    from clothes_extractor.data.prepared import PreparedDataset

    ds = PreparedDataset(path)  # checks the manifest, the arrays and the source files
    return {"ids": np.array(ds.ids), **{k: np.array(v) for k, v in ds.arrays_mmap.items()}}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_prepare_interrupted_keeps_the_old_cache_then_rebuilds(sig: int, big_source: Path, prepared_reference: Path, tmp_path: Path):
    import shutil

    from clothes_extractor.config import PreprocessConfig
    from clothes_extractor.data.prepared import cache_path

    caches = tmp_path / "caches"
    path = cache_path(big_source, "train", prepare_ids(big_source), PreprocessConfig(size=(64, 64)), root=caches)
    shutil.copytree(prepared_reference, path)  # the previous state: an earlier, complete cache
    old = (path / "manifest.json").stat().st_ino
    proc = start(prepare_args(big_source, caches))

    def building() -> bool:  # a temporary build folder whose arrays hold data already
        return any(f.stat().st_blocks * 512 > 64 * 1024 for f in caches.glob(".*/inputs.npy"))

    wait_until(proc, building, "the build had written some samples")
    code, _, err = interrupt(proc, sig)
    if sig == signal.SIGINT:
        assert_clean_ctrl_c(code, err, "prepare")
        assert hidden(caches) == [], "Ctrl-C left a temporary build folder"
    else:
        assert code == -signal.SIGKILL
    assert (path / "manifest.json").stat().st_ino == old  # the old cache, untouched
    expected = arrays_of(prepared_reference)
    for key, value in arrays_of(path).items():
        np.testing.assert_array_equal(value, expected[key])

    run_to_end(prepare_args(big_source, caches))
    assert (path / "manifest.json").stat().st_ino != old  # rebuilt
    for key, value in arrays_of(path).items():
        np.testing.assert_array_equal(value, expected[key])
    assert hidden(caches) == [], "the rebuild left leftovers of the killed one"


# --- checkpoint save -----------------------------------------------------------------------------

SAVE_LOOP = """
import sys, torch
from clothes_extractor.checkpoint import save_checkpoint
path = sys.argv[1]
weights = torch.zeros(4, 1024, 1024)  # 16 MB: long enough a write to be caught in the middle
for step in range(1, 100000):
    weights.fill_(step)
    save_checkpoint(path, {"w": weights}, {"kind": "generator", "step": step})
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_checkpoint_save_interrupted_leaves_a_loadable_checkpoint(sig: int, tmp_path: Path):
    from clothes_extractor.checkpoint import load_state_dict, read_meta, save_checkpoint
    import torch

    path = tmp_path / "run" / "best.safetensors"
    save_checkpoint(path, {"w": torch.zeros(4, 1024, 1024)}, {"kind": "generator", "step": 0})  # the previous one
    proc = start(["-c", SAVE_LOOP, str(path)])
    wait_until(proc, lambda: read_meta(path)["step"] >= 2 and bool(hidden(path.parent)), "a save was in progress")
    interrupt(proc, sig)  # the loop is a plain script: its exit code and message are its own

    meta = read_meta(path)
    weights = load_state_dict(path)["w"]
    assert meta["step"] >= 2
    assert torch.equal(weights, torch.full_like(weights, meta["step"])), "weights and metadata of different saves"
    if sig == signal.SIGINT:
        assert hidden(path.parent) == [], "Ctrl-C left a temporary file"
    # The next save (a resumed run) clears what a kill left and writes a whole checkpoint.
    save_checkpoint(path, {"w": torch.ones(2)}, {"kind": "generator", "step": meta["step"] + 1})
    assert read_meta(path)["step"] == meta["step"] + 1 and torch.equal(load_state_dict(path)["w"], torch.ones(2))
    assert hidden(path.parent) == [], "temporary files of the killed save are left behind"


# --- extract and segment folder mode -------------------------------------------------------------

FOLDER_PHOTOS = 60


@pytest.fixture(scope="module")
def folder_inputs(big_source: Path, tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """(photos, masks, generator checkpoint, segmenter checkpoint): FOLDER_PHOTOS full-size
    photos with their parse maps (hard links) and two random-weight 64x64 checkpoints."""
    from tests.inference.conftest import write_generator
    from tests.inference.test_segmenter import write_segmenter

    root = tmp_path_factory.mktemp("folder-inputs")
    photos, masks = root / "photos", root / "masks"
    photos.mkdir()
    masks.mkdir()
    for path in sorted((big_source / "train" / "image").glob("*.jpg"))[:FOLDER_PHOTOS]:
        os.link(path, photos / path.name)
        os.link(big_source / "train" / "image-parse-v3" / f"{path.stem}.png", masks / f"{path.stem}.png")
    return photos, masks, write_generator(root / "g.safetensors"), write_segmenter(root / "s.safetensors")


def folder_args(command: str, inputs: tuple[Path, Path, Path, Path], out: Path) -> list[str]:
    photos, masks, generator, segmenter = inputs
    common = ["--images", str(photos), "-o", str(out), "--batch-size", "1", "--device", "cpu"]
    if command == "extract":
        return ["-m", "clothes_extractor", "extract", *common, "--masks", str(masks), "-c", str(generator), "--size", "128x96"]
    return ["-m", "clothes_extractor", "segment", *common, "-s", str(segmenter)]


@pytest.fixture(scope="module")
def folder_references(folder_inputs, tmp_path_factory) -> dict[str, Path]:
    refs = {}
    for command in ("extract", "segment"):
        out = tmp_path_factory.mktemp(f"{command}-reference") / "out"
        run_to_end(folder_args(command, folder_inputs, out))
        refs[command] = out
    return refs


@pytest.mark.parametrize("command", ["extract", "segment"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_folder_mode_interrupted_then_resumed(command: str, sig: int, folder_inputs, folder_references, tmp_path: Path):
    """A real signal mid-way through `extract`/`segment --images`: the outputs written open, Ctrl-C
    exits 130 with one line and no temporary file, and the rerun (no --overwrite) skips the
    finished outputs and writes the rest, equal to an uninterrupted run."""
    out = tmp_path / "out"
    proc = start(folder_args(command, folder_inputs, out))
    wait_until(proc, lambda: len(final_files(out)) >= 3, "3 outputs were written")
    code, _, err = interrupt(proc, sig)
    if sig == signal.SIGINT:
        assert_clean_ctrl_c(code, err, command)
        assert hidden(out) == [], "Ctrl-C left temporary files"
    else:
        assert code == -signal.SIGKILL
    done = final_files(out)
    reference = final_files(folder_references[command])
    assert 3 <= len(done) < len(reference), "interrupted mid-way"
    for path in done:  # every file under a final name is whole
        with Image.open(path) as image:
            image.load()

    text = run_to_end(folder_args(command, folder_inputs, out))
    assert f"{len(done)} skipped" in text, text  # it resumed rather than redoing everything
    assert [p.relative_to(out) for p in final_files(out)] == [p.relative_to(folder_references[command]) for p in reference]
    for path in reference:
        got = np.asarray(Image.open(out / path.relative_to(folder_references[command])))
        np.testing.assert_array_equal(got, np.asarray(Image.open(path)), err_msg=str(path))
