"""The requests behind the page, without gradio: same files and same messages as `extract`,
limits, paths, temporary files, batches, the category, the model card, the examples."""

from __future__ import annotations

import io
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor import pretrained
from clothes_extractor import serve as sv
from clothes_extractor.cli import app
from clothes_extractor.errors import ClothesExtractorError, ConfigError, DataError
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.inference.segmenter import load_segmenter
from clothes_extractor.serve.engine import Engine, Limits, MaskChoice, Upload, overlay, safe_stem
from tests.serve.conftest import pixels

runner = CliRunner()


@pytest.fixture(scope="module")
def models(ckpts):
    return {
        "generator": load_extractor(ckpts["generator"]),
        "generator3": load_extractor(ckpts["generator3"]),
        **{k: load_segmenter(ckpts[k]) for k in ("upper", "dress", "background")},
    }


@pytest.fixture()
def engine(models, tmp_path) -> Engine:
    eng = Engine(models["generator"], models["upper"], root=tmp_path / "root")
    yield eng
    eng.models.stop(timeout=5)  # its thread


def upload(engine: Engine, src: Path | bytes, name: str) -> Upload:
    """Put a file where gradio puts uploads (a folder of its own under the engine's root)."""
    folder = engine.root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(src if isinstance(src, bytes) else Path(src).read_bytes())
    return engine.upload(str(path), "photo")


def cli_extract(tmp: Path, ckpts, photo: Path, *args: str) -> Path:
    """What `clothes-extractor extract` writes for ``photo`` (+ ARGS) with the same checkpoints."""
    out = tmp / f"cli-{uuid.uuid4().hex}.png"
    result = runner.invoke(app, ["extract", str(photo), *args, "-o", str(out), "-c", str(ckpts["generator"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def cli_error(folder: Path, args: list[str]) -> str:
    """The one-line message `extract` prints, run from ``folder`` with file names relative to it."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, ["extract", *args, "-o", "out.png", "--device", "cpu"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split()).removeprefix("error: ")


# --- the same images as extract ----------------------------------------------------------------------


def test_extract_writes_the_files_extract_writes(engine, ckpts, photo, tmp_path):
    seg = ["--segmenter", str(ckpts["upper"])]
    out = engine.extract(upload(engine, photo.photo, "person.jpg"))
    assert pixels(out.on_white) == pixels(cli_extract(tmp_path, ckpts, photo.photo, *seg, "--background", "white"))
    assert pixels(out.transparent) == pixels(cli_extract(tmp_path, ckpts, photo.photo, *seg, "--transparent"))
    assert out.on_white.name == "person-garment.png" and out.transparent.name == "person-garment-transparent.png"
    assert out.details["category"] == "upper-clothes" and out.details["mask"] == "predicted by the segmenter"
    assert out.details["size"] == "768x1024" and out.details["seconds"] > 0
    with Image.open(out.transparent) as im:
        assert im.mode == "RGBA" and im.size == (768, 1024)
    assert out.overlay.dtype == np.uint8 and max(out.overlay.shape[:2]) <= 768


def test_an_uploaded_mask_gives_extracts_files(engine, ckpts, photo, tmp_path):
    choice = MaskChoice("upload", upload(engine, photo.parse, "parse.png"))
    out = engine.extract(upload(engine, photo.photo, "person.jpg"), choice)
    cli = cli_extract(tmp_path, ckpts, photo.photo, str(photo.parse), "--transparent")
    assert pixels(out.transparent) == pixels(cli)
    assert out.details["mask"] == "uploaded: parse.png"
    # the mask shown over the photo is the garment of the parse map
    checked = engine.check_mask(upload(engine, photo.photo, "person.jpg"), choice)
    parse = np.asarray(Image.open(photo.parse))
    assert checked.details["mask_share"] == pytest.approx((parse == 5).mean(), abs=1e-4)


def test_a_painted_mask_is_read_as_extract_reads_a_cut_out(engine, photo):
    h, w = np.asarray(Image.open(photo.photo)).shape[:2]
    painted = np.zeros((h, w, 4), np.uint8)
    painted[300:600, 200:500] = (255, 32, 32, 255)
    out = engine.check_mask(upload(engine, photo.photo, "person.jpg"), MaskChoice("brush", painted=painted))
    assert out.details["mask"] == "painted with the brush"
    assert out.details["mask_share"] == pytest.approx(300 * 300 / (h * w), abs=1e-4)
    with pytest.raises(DataError, match="nothing painted"):
        engine.extract(upload(engine, photo.photo, "person.jpg"), MaskChoice("brush", painted=np.zeros((h, w, 4), np.uint8)))
    with pytest.raises(DataError, match=r"mask the painted mask is 10x10 but photo person.jpg is"):
        engine.extract(upload(engine, photo.photo, "person.jpg"), MaskChoice("brush", painted=np.full((10, 10, 4), 255, np.uint8)))


# --- errors: extract's messages, the user's file names ----------------------------------------------


def _files(folder: Path, photo) -> None:
    folder.mkdir()
    shutil.copy(photo.photo, folder / "photo.jpg")
    (folder / "notaphoto.jpg").write_text("this is text, not a JPEG\n")
    Image.new("L", (10, 10), 255).save(folder / "small.png")
    Image.new("L", Image.open(photo.photo).size, 0).save(folder / "empty.png")


@pytest.mark.parametrize("case", ["unreadable photo", "mask of another size", "empty mask", "segmenter finds nothing"])
def test_user_errors_give_extracts_message(case, models, ckpts, photo, tmp_path):
    files = tmp_path / "files"
    _files(files, photo)
    seg = models["background"] if case == "segmenter finds nothing" else models["upper"]
    engine = Engine(models["generator"], seg, root=tmp_path / "root")
    photo_name, mask_name = {"unreadable photo": ("notaphoto.jpg", None), "mask of another size": ("photo.jpg", "small.png"),
                             "empty mask": ("photo.jpg", "empty.png"), "segmenter finds nothing": ("photo.jpg", None)}[case]
    args = [photo_name, *([mask_name] if mask_name else ["--segmenter", str(ckpts["background" if seg is models["background"] else "upper"])]),
            "-c", str(ckpts["generator"])]
    expected = cli_error(files, args)
    choice = MaskChoice("upload", upload(engine, files / mask_name, mask_name)) if mask_name else MaskChoice()
    with pytest.raises(DataError) as exc:
        engine.extract(upload(engine, files / photo_name, photo_name), choice)
    assert " ".join(str(exc.value).split()) == expected
    assert str(engine.root) not in str(exc.value)  # no server path in what the page shows
    assert not list(engine.work.iterdir())  # the request's work folder is gone


def test_too_many_pixels_is_refused_before_decoding(models, tmp_path):
    engine = Engine(models["generator"], models["upper"], root=tmp_path / "root", limits=Limits(max_pixels=100_000))
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, "PNG")
    with pytest.raises(DataError, match=r"photo big.png is 400x300 \(0.1 megapixels\), over this server's limit of 0.1 megapixels \(serve --max-megapixels\)"):
        engine.extract(upload(engine, buf.getvalue(), "big.png"))


def test_only_uploaded_files_are_read(engine, tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    for path in (outside, engine.root / ".." / "secret.jpg", "/etc/hostname"):
        with pytest.raises(DataError, match="not a file uploaded to this server"):
            engine.upload(str(path), "photo")
    link = engine.root / "up" / "link.jpg"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(DataError, match="not a file uploaded"):
        engine.upload(str(link), "photo")
    assert engine.upload(None, "mask") is None and engine.upload("", "mask") is None


@pytest.mark.parametrize(("name", "stem"), [
    ("person.jpg", "person"), ("../../etc/passwd", "passwd"), ("a b&c.JPG", "a_b_c"),
    ("..\\..\\win.png", "win"), (".hidden", "hidden"), ("", "upload"), ("x" * 300 + ".png", "x" * 64),
])
def test_safe_stem(name, stem):
    assert safe_stem(name) == stem


def test_no_segmenter_asks_for_a_mask(models, photo, tmp_path):
    engine = Engine(models["generator"], None, root=tmp_path / "root")
    with pytest.raises(ConfigError, match="no segmenter"):
        engine.extract(upload(engine, photo.photo, "p.jpg"))
    with pytest.raises(DataError, match="no mask uploaded"):
        engine.extract(upload(engine, photo.photo, "p.jpg"), MaskChoice("upload"))
    with pytest.raises(ConfigError, match="mask source 'magic' is not one of segmenter, upload, brush"):
        engine.extract(upload(engine, photo.photo, "p.jpg"), MaskChoice("magic"))
    with pytest.raises(DataError, match="no photo"):
        engine.extract(None)


def test_category_where_the_model_knows_several(models, photo, tmp_path):
    engine = Engine(models["generator3"], models["dress"], root=tmp_path / "root")
    assert engine.extract(upload(engine, photo.photo, "p.jpg")).details["category"] == "dress"
    choice = MaskChoice("upload", upload(engine, photo.parse, "m.png"))
    assert engine.check_mask(upload(engine, photo.photo, "p.jpg"), choice).details["category"] == "one of upper-clothes, dress, coat"


# --- batches, temporary files -----------------------------------------------------------------------


def test_batch_zip_of_cut_outs_and_of_the_viton_layout(engine, photo, tmp_path):
    photos = [upload(engine, photo.photo, "a.jpg"), upload(engine, photo.photo, "b.jpg"),
              upload(engine, b"not an image", "broken.jpg")]
    path, details = engine.extract_batch(photos, [upload(engine, photo.parse, "a_mask.png")])
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["a.png", "b.png", "failed.txt"]
        assert Image.open(io.BytesIO(zf.read("a.png"))).mode == "RGBA"
        assert zf.read("failed.txt").decode().startswith("broken: cannot read photo broken.jpg")
    assert details["written"] == 2 and list(details["failed"]) == ["broken"]
    path, details = engine.extract_batch(photos[:1], [], viton_layout=True)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["cloth-mask/a.jpg", "cloth/a.jpg"]
        assert Image.open(io.BytesIO(zf.read("cloth/a.jpg"))).size == (768, 1024)
    with pytest.raises(DataError, match="no photos"):
        engine.extract_batch([], [])
    small = Engine(engine.extractor, engine.segmenter, root=engine.root, limits=Limits(max_files=2))
    with pytest.raises(DataError, match="3 files at once; this server takes at most 2"):
        small.extract_batch(photos, [])
    assert not list(engine.work.iterdir())


def test_results_are_removed_after_their_time(engine, photo):
    out = engine.extract(upload(engine, photo.photo, "p.jpg"))
    engine.prune(now=time.time() + engine.limits.output_ttl_s / 2)
    assert out.transparent.is_file()
    engine.prune(now=time.time() + engine.limits.output_ttl_s + 1)
    assert not out.transparent.exists() and not list(engine.results.iterdir())
    engine.close()
    assert not engine.root.exists()


def test_a_request_still_running_when_the_server_stops_leaves_nothing(engine, photo, monkeypatch):
    up = upload(engine, photo.photo, "p.jpg")
    run = engine.extractor.extract_many

    def stopped_meanwhile(*args, **kwargs):
        result = list(run(*args, **kwargs))
        engine.close()  # serve's cleanup on SIGTERM, while the model ran
        return result

    monkeypatch.setattr(engine.extractor, "extract_many", stopped_meanwhile)
    with pytest.raises(ClothesExtractorError, match="^this server is stopping; try again once it is back$"):
        engine.extract(up)
    assert not engine.root.exists()  # the results were not written into a root made again


def test_check_then_extract_runs_the_segmenter_once(engine, photo, monkeypatch):
    calls = []
    logits = engine.segmenter.logits
    monkeypatch.setattr(engine.segmenter, "logits", lambda x: calls.append(len(x)) or logits(x))
    up = upload(engine, photo.photo, "p.jpg")
    checked = engine.check_mask(up)
    out = engine.extract(up)
    assert calls == [1] and out.details["category"] == checked.details["category"] == "upper-clothes"
    engine.extract(upload(engine, photo.photo.read_bytes() + b"other bytes", "q.jpg"))  # another photo
    assert calls == [1, 1]


def test_stop_refuses_new_requests_with_a_message(engine, photo):
    up = upload(engine, photo.photo, "p.jpg")
    assert engine.stop(timeout=1) == 0
    for call in (engine.extract, engine.check_mask):
        with pytest.raises(ClothesExtractorError, match="^this server is stopping; try again once it is back$"):
            call(up)
    engine.close()
    assert not engine.root.exists()


def test_overlay_tints_the_mask_and_fits_the_preview():
    photo = np.full((2000, 1000, 3), 200, np.uint8)
    mask = np.zeros((2000, 1000), bool)
    mask[:1000] = True
    out = overlay(photo, mask)
    assert out.shape == (768, 384, 3)
    assert out[100, 100, 0] > out[100, 100, 1] and out[700, 100, 0] == out[700, 100, 1] == 90


# --- settings, the model card, the examples ---------------------------------------------------------


def test_config_checks_and_public_hosts():
    assert not sv.ServeConfig().public and not sv.ServeConfig(host="localhost").public
    assert not sv.ServeConfig(host="::1").public
    assert sv.ServeConfig(host="0.0.0.0").public and sv.ServeConfig(host="192.168.1.5").public
    with pytest.raises(ConfigError, match="--max-upload-mb must be positive"):
        sv.ServeConfig(max_upload_mb=0)
    with pytest.raises(ConfigError, match="--port 70000"):
        sv.ServeConfig(port=70000)


def test_model_card_shipped_or_the_checkpoints_metadata(models, tmp_path, monkeypatch):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# The shipped models\n")
    monkeypatch.setattr(pretrained, "MODEL_CARD", card)
    gen, seg = models["generator"].meta, models["upper"].meta
    assert sv.model_card(gen, seg, shipped=True) == "# The shipped models\n"
    text = sv.model_card(gen, seg, shipped=False)
    assert "## Generator: `generator.safetensors`" in text and '"val_l1": 0.5' in text
    assert "## Segmenter: `upper.safetensors`" in text and '"label_set"' in text
    assert "none: masks are uploaded or painted" in sv.model_card(gen, None, shipped=False)


def test_example_photos_come_from_one_folder(tmp_path):
    assert sv.example_photos(tmp_path / "absent") == []
    for name in ("b.jpg", "a.PNG", "notes.txt", ".hidden"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in sv.example_photos(tmp_path)] == ["a.PNG", "b.jpg"]
    assert sv.example_photos() == sv.example_photos(sv.EXAMPLES_DIR)


def test_load_engine_without_a_shipped_segmenter(ckpts, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "HERE", tmp_path / "no-models")  # nothing shipped
    engine, loaded = sv.load_engine(sv.ServeConfig(checkpoint=ckpts["generator"]), tmp_path / "root")
    assert engine.segmenter is None and loaded.endswith("no segmenter")
    assert "## Generator: `generator.safetensors`" in engine.card
    with pytest.raises(Exception, match="default generator is not installed"):
        sv.load_engine(sv.ServeConfig(), tmp_path / "root")
