"""The `extract` command on one photo: outputs, backgrounds, sizes, and errors without a traceback.

A generator with random weights (resnet18, 64x64) saved the way training saves it stands in for
a trained checkpoint: deterministic and built in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.data.viton import read_label_map, to_palette_image
from clothes_extractor.inference.extractor import load_extractor

from tests.cli_results import ok as _ok, user_error as _user_error

runner = CliRunner()


def _cli(*args):
    return runner.invoke(app, ["extract", *map(str, args)])


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


def test_a_checkpoint_run_folder_and_its_background(tmp_path, sample, make_generator):
    photo_path, parse_path, photo, _, mask = sample
    run = tmp_path / "run"
    make_generator(run / "best.safetensors", background=(0, 0, 0))
    extractor = load_extractor(run)
    assert extractor.preprocess.background == (0, 0, 0)
    x = extractor.prepare(photo, mask)
    assert (x[0, 0] == 0).all()  # the padding is the checkpoint's background
    _ok(_cli(photo_path, parse_path, "-o", tmp_path / "o.png", "-c", run))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), extractor.extract(photo, mask).rgb)


def test_photo_and_mask_of_another_aspect_ratio_is_refused(ckpt, sample, tmp_path):
    photo_path, _, _, _, mask = sample
    Image.fromarray(mask[:512, :512]).save(tmp_path / "square.png")
    text = _user_error(_cli(photo_path, tmp_path / "square.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "512x512" in text and "768x1024" in text and "aspect ratio" in text
    assert not (tmp_path / "o.png").exists()


def test_half_size_mask_is_resized_nearest_with_a_note(ckpt, extractor, sample, tmp_path):
    photo_path, _, photo, _, mask = sample
    half = Image.fromarray(mask.astype(np.uint8) * 255).resize((mask.shape[1] // 2, mask.shape[0] // 2), Image.NEAREST)
    half.save(tmp_path / "half.png")
    out = _ok(_cli(photo_path, tmp_path / "half.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert f"resized to the photo's {mask.shape[1]}x{mask.shape[0]} (nearest neighbour)" in out
    assert "mask read as a binary mask" in out
    upsized = np.asarray(half.resize((mask.shape[1], mask.shape[0]), Image.NEAREST)) >= 128
    want = extractor.extract(photo, upsized)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), want.on_background(want.background))


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



def test_a_folder_given_as_photo_or_mask_names_folder_mode(ckpt, sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as typed: `extract ro -o out.png`
    Path("ro").mkdir()
    Path("masks").mkdir()
    text = _user_error(_cli("ro", "-o", "out.png", "-c", ckpt))
    assert text == "error: ro is a folder; to extract every photo in a folder use --images ro -o OUTDIR"
    text = _user_error(_cli("ro", "masks", "-o", "out.png", "-c", ckpt))
    assert text == "error: ro is a folder; to extract every photo in a folder use --images ro --masks masks -o OUTDIR"
    text = _user_error(_cli(sample[0], "masks", "-o", "out.png", "-c", ckpt))
    assert text == ("error: mask masks is a folder; to extract a folder of photos with their masks use "
                    "--images DIR --masks masks -o OUTDIR")
    assert not Path("out.png").exists()

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


def test_dress_outside_the_checkpoints_labels_says_what_to_do(ckpt, sample, mask_files, tmp_path):
    photo_path, *_ = sample
    labels = read_label_map(mask_files["labels"]).copy()
    labels[labels == 5] = 6  # the garment is a dress: outside this checkpoint's upper clothes
    to_palette_image(labels).save(tmp_path / "dress.png")
    text = _user_error(_cli(photo_path, tmp_path / "dress.png", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "this checkpoint knows 5 (upper-clothes)" in text
    assert "6 (dress," in text and "% of the photo)" in text
    assert "--category" in text and "train-gan --data DRESSCODE --category dresses" in text
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("quality", [75, 95])
def test_colour_parse_saved_as_jpeg_is_snapped_with_a_note(ckpt, extractor, sample, quality, tmp_path):
    photo_path, parse_path, photo, _, mask = sample
    Image.open(parse_path).convert("RGB").save(tmp_path / "parse.jpg", quality=quality)
    out = _ok(_cli(photo_path, tmp_path / "parse.jpg", "-o", tmp_path / "o.png", "-c", ckpt))
    assert "colour-coded parse image (" in out and "snapped to the nearest parse colour" in out


def test_photo_given_as_colour_mask_is_refused(ckpt, sample, tmp_path):
    photo_path, *_ = sample
    text = _user_error(_cli(photo_path, photo_path, "-o", tmp_path / "o.png", "-c", ckpt, "--mask-kind", "colours"))
    assert "not a colour-coded parse image" in text and "far from every parse colour" in text


def test_margins_reproduce_each_data_sets_catalogue(sample, tmp_path):
    """A generator trained on VITON (garments span 0.938): --margins viton (or none) draws it as it
    learned, as evaluate does on VITON; the default, VITON-HD's margins, draws it smaller."""
    from tests.inference.conftest import write_generator

    ckpt = write_generator(tmp_path / "viton.safetensors", garment_width=0.938)
    photo_path, parse_path, photo, _, mask = sample
    outs = {}
    for margins in ("viton-hd", "viton", "none"):
        outs[margins] = tmp_path / f"{margins}.png"
        _ok(_cli(photo_path, parse_path, "-o", outs[margins], "-c", ckpt, "--margins", margins))
    read = {k: np.asarray(Image.open(v)) for k, v in outs.items()}
    learned = load_extractor(ckpt).with_catalogue(None).extract(photo, mask).rgb
    np.testing.assert_array_equal(read["viton"], learned)
    np.testing.assert_array_equal(read["none"], learned)
    assert not np.array_equal(read["viton-hd"], learned)
    message = _user_error(_cli(photo_path, parse_path, "-o", tmp_path / "x.png", "-c", ckpt, "--margins", "zalando"))
    assert "--margins 'zalando' is not one of viton-hd, viton, dresscode, none" in message
    assert not (tmp_path / "x.png").exists()
