"""`extract`: masks of every kind, the training preprocessing, the catalogue frame, errors, folders.

A generator with random weights (resnet18, 64x64) saved the way training saves it stands in for
a trained checkpoint: deterministic and built in a fraction of a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from clothes_extractor import extract as ex
from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import to_tensor, to_uint8
from clothes_extractor.data.transforms import preprocess_input, to_frame
from clothes_extractor.data.viton import garment_mask, read_label_map, to_palette_image
from clothes_extractor.errors import DataError
from clothes_extractor.models.generator import Generator

runner = CliRunner()
SAMPLE = "00006_00"
SIZE = (64, 64)


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _user_error(result, code=1):
    assert result.exit_code == code, result.output + repr(result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


def _write_checkpoint(path: Path, *, background=(255, 255, 255), size=SIZE) -> Path:
    torch.manual_seed(0)
    g = Generator(encoder="resnet18", encoder_weights=None)
    meta = {  # the layout of train/loop.py's _checkpoint_meta
        "kind": "generator",
        "clothes_extractor_version": "test",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=size, background=background).to_dict(),
        "train": {},
        "epoch": 0,
        "step": 0,
        "metrics": {},
    }
    return save_checkpoint(path, g.state_dict(), meta)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _write_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.safetensors")


@pytest.fixture(scope="module")
def extractor(ckpt) -> ex.Extractor:
    return ex.load_extractor(ckpt, "cpu")


@pytest.fixture(scope="module")
def sample(real_root):
    """(photo path, parse path, photo array, label array, garment mask) of a real sample."""
    split = real_root / "test"
    photo_path, parse_path = split / "image" / f"{SAMPLE}.jpg", split / "image-parse-v3" / f"{SAMPLE}.png"
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    labels = read_label_map(parse_path)
    return photo_path, parse_path, photo, labels, garment_mask(labels, (5,))


@pytest.fixture(scope="module")
def mask_files(sample, tmp_path_factory) -> dict[str, Path]:
    """The same garment mask of the real sample in every supported kind."""
    _, parse_path, photo, labels, mask = sample
    d = tmp_path_factory.mktemp("masks")
    files = {"labels": d / "labels.png"}
    shutil.copy(parse_path, files["labels"])
    grey = (mask * 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(files.setdefault("binary_L", d / "binary_L.png"))
    Image.fromarray(grey, "L").convert("1").save(files.setdefault("binary_1", d / "binary_1.png"))
    Image.fromarray(np.dstack([photo, grey]), "RGBA").save(files.setdefault("alpha", d / "alpha.png"))
    Image.open(parse_path).convert("RGB").save(files.setdefault("colours", d / "colours.png"))
    Image.fromarray(mask.astype(np.uint8), "L").save(files.setdefault("zero_one", d / "zero_one.png"))
    return files


def _cli(*args):
    return runner.invoke(app, ["extract", *map(str, args)])


def _expected(extractor, photo, mask, frame=ex.CATALOGUE_FRAME):
    """The pipeline spelt out: training preprocessing -> model -> uint8 -> to_frame."""
    x = preprocess_input(photo, mask, extractor.preprocess)
    with torch.no_grad():
        rgb, logit = extractor.model(to_tensor(x)[None])
    rgb_img = Image.fromarray(to_uint8(rgb[0]))
    alpha_img = Image.fromarray(to_uint8(torch.sigmoid(logit[0])))
    bg = extractor.preprocess.background
    return np.asarray(to_frame(rgb_img, frame, bg)), np.asarray(to_frame(alpha_img, frame, 0))


# --- masks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, detected",
    [("labels", "labels"), ("binary_L", "binary"), ("binary_1", "binary"), ("alpha", "binary"),
     ("colours", "colours"), ("zero_one", "binary")],
)
def test_every_mask_kind_reads_as_the_same_garment_mask(mask_files, sample, kind, detected):
    mask = sample[4]
    assert ex.detect_mask_kind(Image.open(mask_files[kind])) == detected
    got = ex.read_garment_mask(mask_files[kind], (5,))
    assert got.dtype == bool and got.shape == mask.shape
    np.testing.assert_array_equal(got, mask)


def test_forced_mask_kinds(mask_files, sample):
    mask = sample[4]
    np.testing.assert_array_equal(ex.read_garment_mask(mask_files["colours"], (5,), "colours"), mask)
    np.testing.assert_array_equal(ex.read_garment_mask(mask_files["alpha"], (5,), "binary"), mask)
    # A palette label map forced to binary: the grey level of its colours, not the garment.
    assert not np.array_equal(ex.read_garment_mask(mask_files["labels"], (5,), "binary"), mask)
    with pytest.raises(DataError, match="not a label map"):
        ex.read_garment_mask(mask_files["colours"], (5,), "labels")


def test_garment_labels_come_from_the_caller(mask_files, sample):
    labels = sample[3]
    got = ex.read_garment_mask(mask_files["colours"], (5, 9))  # upper clothes + pants
    np.testing.assert_array_equal(got, np.isin(labels, (5, 9)))


def test_colours_map_to_labels_exactly_in_both_palettes():
    viton = np.array([[[254, 85, 0], [0, 0, 0], [51, 169, 220], [1, 2, 3]]], np.uint8)
    lip = np.array([[[255, 85, 0], [0, 0, 0], [51, 170, 221], [253, 85, 0]]], np.uint8)
    np.testing.assert_array_equal(ex.colours_to_labels(viton), [[5, 0, 14, 255]])
    np.testing.assert_array_equal(ex.colours_to_labels(lip), [[5, 0, 14, 255]])


def test_a_black_and_white_rgb_mask_is_binary_not_colours():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[50, 50] = 255  # 99.99% black, a palette colour, but no label colour at all
    image = Image.fromarray(rgb)
    assert ex.detect_mask_kind(image) == "binary"
    mask, how = ex.decode_garment_mask(image, (5,))
    assert mask.sum() == 1 and mask[50, 50] and "grey" in how


# --- the model path --------------------------------------------------------------------------------


def test_model_input_is_the_training_preprocessing(extractor, sample):
    _, _, photo, labels, mask = sample
    x = extractor.prepare(photo, mask)
    np.testing.assert_array_equal(x, preprocess_input(photo, garment_mask(labels, (5,)), PreprocessConfig(size=SIZE)))
    assert x.shape == (*SIZE, 3)


def test_extract_returns_the_model_output_in_the_catalogue_frame(extractor, sample):
    _, _, photo, _, mask = sample
    result = extractor.extract(photo, mask)
    rgb, alpha = _expected(extractor, photo, mask)
    assert result.rgb.shape == (1024, 768, 3) and result.alpha.shape == (1024, 768)
    np.testing.assert_array_equal(result.rgb, rgb)
    np.testing.assert_array_equal(result.alpha, alpha)
    assert len(np.unique(result.alpha)) > 10  # a real prediction, not a constant


def test_cli_writes_the_catalogue_image_of_a_real_sample(ckpt, extractor, sample, tmp_path):
    photo_path, parse_path, photo, _, mask = sample
    out = tmp_path / "shirt.png"
    text = _ok(_cli(photo_path, parse_path, "-o", out, "--checkpoint", ckpt, "--device", "cpu"))
    assert "768x1024" in text
    image = Image.open(out)
    assert image.mode == "RGB" and image.size == (768, 1024)
    np.testing.assert_array_equal(np.asarray(image), extractor.extract(photo, mask).rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shirt.png"]  # no temporary file left


@pytest.mark.parametrize("kind", ["binary_L", "binary_1", "alpha", "colours", "zero_one"])
def test_cli_output_is_identical_for_every_mask_kind(ckpt, sample, mask_files, tmp_path, kind):
    photo_path = sample[0]
    ref, out = tmp_path / "ref.png", tmp_path / f"{kind}.png"
    _ok(_cli(photo_path, mask_files["labels"], "-o", ref, "-c", ckpt))
    _ok(_cli(photo_path, mask_files[kind], "-o", out, "-c", ckpt))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(ref)))


def test_transparent_writes_the_predicted_alpha(ckpt, extractor, sample, tmp_path):
    photo_path, parse_path, photo, _, mask = sample
    out = tmp_path / "cut.png"
    _ok(_cli(photo_path, parse_path, "-o", out, "-c", ckpt, "--transparent"))
    image = Image.open(out)
    assert image.mode == "RGBA" and image.size == (768, 1024)
    result = extractor.extract(photo, mask)
    rgba = np.asarray(image)
    np.testing.assert_array_equal(rgba[..., 3], result.alpha)
    opaque = result.alpha == 255
    np.testing.assert_array_equal(rgba[..., :3][opaque], result.rgb[opaque])


def test_background_recomposites_with_the_alpha(ckpt, extractor, sample, tmp_path):
    photo_path, parse_path, photo, _, mask = sample
    out = tmp_path / "black.png"
    _ok(_cli(photo_path, parse_path, "-o", out, "-c", ckpt, "--background", "black"))
    got = np.asarray(Image.open(out)).astype(int)
    result = extractor.extract(photo, mask)
    a = result.alpha.astype(float)[..., None] / 255
    expected = np.clip(result.rgb - (1 - a) * 255, 0, 255)  # white training background -> black
    assert np.abs(got - expected).max() <= 0.5 + 1e-6
    np.testing.assert_array_equal(got[result.alpha == 255], result.rgb[result.alpha == 255])


def test_a_photo_of_another_shape_and_size(ckpt, extractor, sample, tmp_path):
    _, _, photo, _, mask = sample
    square_photo, square_mask = photo[100:868], mask[100:868]  # 768x768
    Image.fromarray(square_photo).save(tmp_path / "p.png")
    Image.fromarray(square_mask).save(tmp_path / "m.png")
    _ok(_cli(tmp_path / "p.png", tmp_path / "m.png", "-o", tmp_path / "default.png", "-c", ckpt))
    assert Image.open(tmp_path / "default.png").size == (768, 1024)
    _ok(_cli(tmp_path / "p.png", tmp_path / "m.png", "-o", tmp_path / "small.jpg", "-c", ckpt, "--size", "320x240"))
    small = Image.open(tmp_path / "small.jpg")
    assert small.size == (240, 320) and small.format == "JPEG"
    expected = extractor.extract(square_photo, square_mask, frame=(320, 240)).rgb
    assert np.abs(np.asarray(small).astype(int) - expected).mean() < 3  # JPEG


def test_a_checkpoint_run_folder_and_its_background(tmp_path, sample):
    photo_path, parse_path, photo, _, mask = sample
    run = tmp_path / "run"
    _write_checkpoint(run / "best.safetensors", background=(0, 0, 0))
    extractor = ex.load_extractor(run)
    assert extractor.preprocess.background == (0, 0, 0)
    x = extractor.prepare(photo, mask)
    assert (x[0, 0] == 0).all()  # the padding is the checkpoint's background
    _ok(_cli(photo_path, parse_path, "-o", tmp_path / "o.png", "-c", run))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), extractor.extract(photo, mask).rgb)


# --- errors ----------------------------------------------------------------------------------------


def test_photo_and_mask_of_different_sizes(ckpt, sample, tmp_path):
    photo_path, _, _, _, mask = sample
    Image.fromarray(mask[:512, :384]).save(tmp_path / "small.png")
    text = _user_error(_cli(photo_path, tmp_path / "small.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "384x512" in text and "768x1024" in text and "same size" in text
    assert not (tmp_path / "o.png").exists()


def test_empty_garment_mask(ckpt, sample, mask_files, tmp_path):
    photo_path, _, _, _, mask = sample
    Image.fromarray(np.zeros(mask.shape, np.uint8)).save(tmp_path / "empty.png")
    text = _user_error(_cli(photo_path, tmp_path / "empty.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "empty" in text and "--mask-kind" in text
    # A parse map without the garment label says which labels it holds.
    labels = read_label_map(mask_files["labels"]).copy()
    labels[labels == 5] = 10
    to_palette_image(labels).save(tmp_path / "no_shirt.png")
    text = _user_error(_cli(photo_path, tmp_path / "no_shirt.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "5 (upper-clothes)" in text and "10 (torso-skin)" in text
    assert not (tmp_path / "o.png").exists()


def test_unreadable_photo_and_missing_mask(ckpt, sample, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    text = _user_error(_cli(bad, sample[1], "-o", tmp_path / "o.png", "-c", ckpt))
    assert "cannot read photo" in text and "bad.jpg" in text
    text = _user_error(_cli(sample[0], tmp_path / "nope.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "mask not found" in text
    assert not (tmp_path / "o.png").exists()


def test_missing_and_foreign_checkpoints(sample, tmp_path):
    photo_path, parse_path = sample[0], sample[1]
    out = tmp_path / "o.png"
    text = _user_error(_cli(photo_path, parse_path, "-o", out, "-c", tmp_path / "missing.safetensors"))
    assert "checkpoint not found" in text
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))  # no metadata
    text = _user_error(_cli(photo_path, parse_path, "-o", out, "-c", foreign))
    assert "not written by clothes-extractor" in text
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    assert "not a safetensors checkpoint" in _user_error(_cli(photo_path, parse_path, "-o", out, "-c", junk))
    assert not out.exists()


def test_existing_output_needs_overwrite(ckpt, sample, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    text = _user_error(_cli(sample[0], sample[1], "-o", out, "-c", ckpt))
    assert "exists" in text and "--overwrite" in text
    assert out.read_bytes() == b"keep me"
    _ok(_cli(sample[0], sample[1], "-o", out, "-c", ckpt, "--overwrite"))
    assert Image.open(out).size == (768, 1024)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "{tmp}/o.jpg", "--transparent"], "needs a .png"),
        (["-o", "{tmp}/o.gif"], "use .png or .jpg"),
        (["-o", "{tmp}/o.png", "--mask-kind", "guess"], "auto, labels, binary, colours"),
        (["-o", "{tmp}/o.png", "--transparent", "--background", "black"], "exclude each other"),
        (["-o", "{tmp}/o.png", "--size", "1024x"], "HxW"),
    ],
)
def test_bad_options(ckpt, sample, tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    text = _user_error(_cli(sample[0], sample[1], "-c", ckpt, *args))
    assert message in text
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_with_2(ckpt, sample, tmp_path):
    assert "not both" in _user_error(_cli(sample[0], sample[1], "--images", tmp_path, "--masks", tmp_path, "-o", tmp_path / "o", "-c", ckpt), 2)
    assert "PHOTO" in _user_error(_cli("-o", tmp_path / "o.png", "-c", ckpt), 2)
    # Without masks, the built-in segmenter predicts them: an empty folder is then the error.
    assert "no photos" in _user_error(_cli("--images", tmp_path, "-o", tmp_path / "o", "-c", ckpt))
    assert "predicted by" in " ".join(_ok(_cli(sample[0], "-o", tmp_path / "o.png", "-c", ckpt, "--device", "cpu")).split())
    assert "folder mode" in _user_error(_cli(sample[0], sample[1], "-o", tmp_path / "o.png", "-c", ckpt, "--viton-layout"), 2)


# --- folder mode -----------------------------------------------------------------------------------


@pytest.fixture()
def folders(real_root, tmp_path):
    """images/ with the 3 real photos + a corrupt one + one without a mask; masks/ with their
    parse maps (one named <id>_mask.png) + a mask without a photo."""
    split = real_root / "test"
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


def test_folder_mode_all_good_exits_0(ckpt, real_root, tmp_path):
    split = real_root / "test"
    text = _ok(_cli("--images", split / "image", "--masks", split / "image-parse-v3", "-o", tmp_path / "out", "-c", ckpt))
    assert "3 written" in text and "0 failed" in text
    assert all(Image.open(p).format == "JPEG" for p in (tmp_path / "out").iterdir())


def test_viton_layout(ckpt, extractor, real_root, tmp_path):
    split = real_root / "test"
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
    pairs, orphans = ex.pair_folders(images, masks)
    assert [(i, p.name, m and m.name) for i, p, m in pairs] == [
        ("a", "a.jpg", "a.png"), ("b", "b.png", "b_mask.jpg"), ("c", "c.jpg", None)
    ]
    assert orphans == ["z"]
    # Photos and masks in one folder: only <id>_mask.* are masks.
    (images / "a_mask.png").touch()
    pairs, orphans = ex.pair_folders(images, images)
    assert [(i, m and m.name) for i, _, m in pairs] == [("a", "a_mask.png"), ("b", None), ("c", None)]
    assert orphans == []
    with pytest.raises(DataError, match="folder not found"):
        ex.pair_folders(tmp_path / "nope", masks)
