"""Folder mode's device path (inference/device_pixels.py), run on the CPU: each torch twin
against its host (PIL) function, and whole folders, device path against host path.

The twins run the same code on a GPU; here the tensors are on the CPU. Tolerance: none. The
resampling is Pillow's own fixed-point arithmetic in integers, so each twin gives PIL's bytes,
on real photos and on the synthetic ones with their sharp edges alike; a whole folder's outputs
are then the host path's, byte for byte."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.segmentation import fit_photo
from clothes_extractor.data.transforms import preprocess_input
from clothes_extractor.data.viton import garment_mask, read_label_map
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.inference import device_pixels as dp
from clothes_extractor.inference.extractor import load_extractor, to_catalogue
from clothes_extractor.inference.folder import extract_folder, segment_folder
from clothes_extractor.inference.output import ExtractConfig
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.inference.segmenter import load_segmenter
from clothes_extractor.pretrained import default_path

TOLERANCE = 0  # /255: the twins are exact (the module docstring)


def _diff(a, b) -> tuple[int, float]:
    d = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    return int(d.max()), float(d.mean())


def _chw(photo: np.ndarray) -> torch.Tensor:
    return torch.tensor(photo).permute(2, 0, 1)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def samples(photo_root):
    """[(id, photo path, parse path, photo, garment mask)] of the 3 test samples."""
    split = photo_root / "test"
    out = []
    for sample_id in sorted(p.stem for p in (split / "image").glob("*.jpg")):
        photo_path, parse_path = split / "image" / f"{sample_id}.jpg", split / "image-parse-v3" / f"{sample_id}.png"
        out.append((sample_id, photo_path, parse_path, read_photo(photo_path), garment_mask(read_label_map(parse_path), (5,))))
    return out


@pytest.fixture(scope="module")
def generator():
    return load_extractor(default_path("generator"), "cpu")


@pytest.fixture(scope="module")
def segmenter():
    return load_segmenter(default_path("segmenter"), "cpu")


# --- the twins -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_pil_resize_is_pils_resize(mode):
    """Byte for byte: noise, hard black-and-white edges and flat colour; shrinking (by up to 23x),
    enlarging, one axis only; RGB and L."""
    rng = np.random.default_rng(3)
    resample = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[mode]
    noise = rng.integers(0, 256, (217, 163, 3), dtype=np.uint8)
    edges = np.where(rng.random((217, 163, 1)) < 0.5, 255, 0).astype(np.uint8).repeat(3, axis=2)
    flat = np.full((217, 163, 3), (250, 7, 128), np.uint8)
    sizes = [(64, 48), (217, 50), (91, 163), (500, 333), (300, 97), (1, 1), (9, 7)]
    for image in (noise, edges, flat):
        for h, w in sizes:
            want = np.asarray(Image.fromarray(image).resize((w, h), resample))
            assert np.array_equal(_hwc(dp.pil_resize(_chw(image), (h, w), mode)), want), (h, w)
            grey = np.asarray(Image.fromarray(image[:, :, 0]).resize((w, h), resample))
            assert np.array_equal(dp.pil_resize(torch.from_numpy(image[None, :, :, 0]), (h, w), mode)[0].numpy(), grey)
    batch = torch.from_numpy(np.stack([noise, edges])).permute(0, 3, 1, 2)
    assert torch.equal(dp.pil_resize(batch, (50, 40), mode)[1], dp.pil_resize(batch[1], (50, 40), mode))
    with pytest.raises(ValueError, match="nearest"):
        dp.pil_resize(batch, (50, 40), "nearest")


@pytest.mark.parametrize("framing", ["fill", "photo"])
@pytest.mark.parametrize("size", [(256, 192), (224, 224), (1024, 768)])  # (1024, 768): a warp source size
def test_prepare_input_matches_preprocess_input(samples, framing, size):
    cfg = PreprocessConfig(size=size, framing=framing, background=(255, 255, 255) if size[0] != 224 else (0, 0, 0))
    for _, _, _, photo, mask in samples:
        host = preprocess_input(photo, mask, cfg)
        device = dp.prepare_input(_chw(photo), mask, cfg)
        worst, mean = _diff(host, _hwc(device))
        print(f"prepare_input {framing} {size}: max {worst} mean {mean:.4f}")
        assert device.dtype == torch.uint8 and device.shape == (3, *size)
        assert worst <= TOLERANCE, (framing, size, worst, mean)


def test_prepare_input_odd_sizes_and_a_given_box():
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (333, 251, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(photo).resize((251, 333), Image.Resampling.BOX).filter(_blur()))
    mask = np.zeros((333, 251), bool)
    mask[41:297, 17:203] = True
    mask[100:120, 50:60] = False
    for framing in ("fill", "photo"):
        cfg = PreprocessConfig(size=(96, 64), framing=framing, background=(10, 200, 30))
        box = dp.mask_box(mask)
        device = dp.prepare_input(_chw(photo), torch.from_numpy(mask), cfg, box)
        worst, mean = _diff(preprocess_input(photo, mask, cfg), _hwc(device))
        print(f"prepare_input odd {framing}: max {worst} mean {mean:.4f}")
        assert worst <= TOLERANCE, (framing, worst, mean)
    with pytest.raises(DataError, match="empty"):
        dp.prepare_input(_chw(photo), np.zeros((333, 251), bool), cfg)


def _blur():
    from PIL import ImageFilter

    return ImageFilter.GaussianBlur(2)


def _smooth(rng, shape) -> torch.Tensor:
    """A smooth random float image in [-1.2, 1.2] (a model output has structure, not noise)."""
    small = torch.from_numpy(rng.uniform(-1.2, 1.2, (shape[0], shape[1], shape[2] // 8, shape[3] // 8)).astype(np.float32))
    return torch.nn.functional.interpolate(small, size=shape[-2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("frame, scale", [(None, 1.0), (None, 0.8646055437100214), ((301, 227), 1.0), ((300, 200), 1.12)])
def test_to_catalogue_batch_matches_to_catalogue(frame, scale):
    rng = np.random.default_rng(0)
    rgb, logit = _smooth(rng, (3, 3, 256, 192)).clamp(-1, 1), _smooth(rng, (3, 1, 256, 192)) * 8
    background = (250, 240, 10)
    got = dp.to_catalogue_batch(rgb, logit, background, frame, scale)
    from clothes_extractor.inference.extractor import Extractor

    rgb_u8, alpha_u8 = Extractor.quantize(rgb, logit)
    for i, result in enumerate(got):
        want = to_catalogue(rgb_u8[i], alpha_u8[i], background, frame, scale)
        assert result.rgb.shape == want.rgb.shape and result.alpha.shape == want.alpha.shape
        assert result.rgb.flags.c_contiguous and result.background == background
        for a, b in ((result.rgb, want.rgb), (result.alpha, want.alpha)):
            worst, mean = _diff(a, b)
            print(f"to_catalogue {frame} {scale:.3f}: max {worst} mean {mean:.4f}")
            assert worst <= TOLERANCE, (frame, scale, worst, mean)
    # uint8 inputs are taken as they are
    again = dp.to_catalogue_batch(torch.from_numpy(rgb_u8).permute(0, 3, 1, 2), torch.from_numpy(alpha_u8)[:, None],
                                  background, frame, scale)
    assert all(np.array_equal(a.rgb, b.rgb) and np.array_equal(a.alpha, b.alpha) for a, b in zip(again, got))


def test_segmenter_twins_match(samples, segmenter):
    photos = [s[3] for s in samples]
    size, fill = tuple(segmenter.preprocess.size), tuple(segmenter.preprocess.fill)
    for photo in photos:
        worst, mean = _diff(fit_photo(photo, size, fill), _hwc(dp.fit_photo(_chw(photo), size, fill)))
        assert worst <= TOLERANCE, (photo.shape, worst, mean)
    odd = photos[0][:517, :389]
    assert _diff(fit_photo(odd, size, (0, 0, 255)), _hwc(dp.fit_photo(_chw(odd), size, (0, 0, 255))))[0] <= TOLERANCE
    host = list(segmenter.predict_many([*photos, odd], batch_size=4))
    device = dp.class_maps(segmenter, [_chw(p) for p in (*photos, odd)])
    for h, d in zip(host, device):
        assert d.dtype == np.uint8 and d.shape == h.shape
        print(f"class maps equal on {(h == d).mean():.5f}")
        assert np.array_equal(h, d)
    # the argmax and upsampling alone: the same logits give the same classes
    logits = torch.randn(4, 20, 64, 48)
    assert np.array_equal(segmenter.finish(logits[1], (301, 222)), dp.finish_classes(logits[1], (301, 222)).numpy())


# --- decoding ------------------------------------------------------------------------------------


def test_decode_photos_matches_read_photo(samples, tmp_path):
    jpeg = samples[0][1]
    photo = read_photo(jpeg)
    sideways = tmp_path / "sideways.jpg"
    image = Image.open(jpeg)
    exif = image.getexif()
    exif[dp.EXIF_ORIENTATION] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    image.save(sideways, exif=exif, quality=90)
    png = tmp_path / "photo.png"
    Image.fromarray(photo[:301, :203]).save(png)
    grey = tmp_path / "grey.jpg"
    Image.fromarray(photo[:, :, 1]).save(grey, quality=90)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(cmyk, quality=90)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(jpeg.read_bytes()[:20000])  # a JPEG header, then nothing
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff garbage")
    paths = [jpeg, sideways, png, grey, broken, cmyk, garbage, samples[1][1]]

    sources = [dp.read_source(p) for p in (jpeg, sideways, png, grey, cmyk)]
    assert [s.data is not None for s in sources] == [True, False, False, True, False]  # only plain JPEGs to the decoder

    got = dp.decode_photos(paths, "cpu")
    for path, result in zip(paths, got):
        if path in (broken, garbage):
            assert isinstance(result, DataError) and "cannot read photo" in str(result) and str(path) in str(result)
            with pytest.raises(DataError) as host_error:
                read_photo(path)
            assert str(result) == str(host_error.value)
            continue
        assert isinstance(result, torch.Tensor) and result.dtype == torch.uint8, path
        assert np.array_equal(_hwc(result), read_photo(path)), path  # libjpeg on the CPU: exact
    assert got[1].shape == (3, photo.shape[1], photo.shape[0])  # turned as displayed


# --- folders -------------------------------------------------------------------------------------


def test_auto_is_host_on_the_cpu(generator, samples, tmp_path, monkeypatch):
    assert dp.choose_pixels("auto", "cpu") == "host"
    assert dp.choose_pixels("device", "cpu") == "device"
    with pytest.raises(ConfigError):
        dp.choose_pixels("gpu", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dp.choose_pixels("auto", "cuda") == "device" and dp.choose_pixels("auto", "cuda:1") == "device"
    assert dp.choose_pixels("auto", "cpu") == "host" and dp.choose_pixels("host", "cuda") == "host"
    monkeypatch.undo()
    # a CPU model's folder run never touches the device path
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    shutil.copy(samples[0][1], images / "a.jpg")
    shutil.copy(samples[0][2], masks / "a.png")

    def refuse(*args, **kwargs):
        raise AssertionError("the device path ran on a CPU model")

    monkeypatch.setattr(dp, "read_source", refuse)
    monkeypatch.setattr(dp, "decode_sources", refuse)
    report = extract_folder(generator, images, masks, tmp_path / "out", ExtractConfig())
    assert report.done == ["a"]


@pytest.fixture()
def folder(samples, tmp_path):
    """images/ with the 3 test photos + a corrupt one + a truncated one + one without a mask;
    masks/ with their parse maps."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for sample_id, photo_path, parse_path, _, _ in samples:
        shutil.copy(photo_path, images / photo_path.name)
        shutil.copy(parse_path, masks / f"{sample_id}.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (images / "cut.jpg").write_bytes(samples[0][1].read_bytes()[:30000])
    shutil.copy(samples[0][2], masks / "broken.png")
    shutil.copy(samples[0][2], masks / "cut.png")
    shutil.copy(samples[0][1], images / "lonely.jpg")
    return images, masks


def _run_both(run, tmp_path):
    reports, outs = {}, {}
    for pixels in ("host", "device"):
        outs[pixels] = tmp_path / f"out-{pixels}"
        reports[pixels] = run(outs[pixels], pixels)
    return reports, outs


def _same_reports(a, b):
    assert a.done == b.done and a.failed == b.failed and a.skipped == b.skipped
    assert a.masks_without_photo == b.masks_without_photo
    assert sorted(a.notes) == sorted(b.notes)


def _compare_images(outs, names, limit=TOLERANCE):
    measured = []
    for name in names:
        host, device = (np.asarray(Image.open(outs[k] / name)) for k in ("host", "device"))
        measured.append(_diff(host, device))
        print(f"{name}: max {measured[-1][0]} mean {measured[-1][1]:.4f}")
        assert measured[-1][0] <= limit, (name, measured[-1])
    return measured


def test_extract_folder_device_path_matches_host(generator, folder, tmp_path):
    images, masks = folder
    cfg = ExtractConfig(format="png", batch_size=2)
    reports, outs = _run_both(lambda out, pixels: extract_folder(generator, images, masks, out, cfg, pixels=pixels), tmp_path)
    _same_reports(reports["host"], reports["device"])
    assert len(reports["host"].done) == 3
    assert {i for i, _ in reports["host"].failed} == {"broken", "cut", "lonely"}
    measured = _compare_images(outs, [f"{i}.png" for i in reports["host"].done])
    assert max(m for _, m in measured) < 0.1


def test_extract_folder_device_path_warp_generator(make_generator, folder, tmp_path):
    warp = load_extractor(make_generator(tmp_path / "warp.safetensors", arch="warp", size=(96, 64), framing="fill"), "cpu")
    assert warp.warp  # the photo sampled straight into the catalogue frame, on either path
    images, masks = folder
    cfg = ExtractConfig(format="png", batch_size=3)
    reports, outs = _run_both(lambda out, pixels: extract_folder(warp, images, masks, out, cfg, pixels=pixels), tmp_path)
    _same_reports(reports["host"], reports["device"])
    measured = _compare_images(outs, [f"{i}.png" for i in reports["host"].done])
    assert len(measured) == 3 and max(m for _, m in measured) < 0.1


def test_extract_folder_device_path_without_masks(generator, segmenter, samples, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for _, photo_path, _, _, _ in samples:
        shutil.copy(photo_path, images / photo_path.name)
    cfg = ExtractConfig(format="png", batch_size=2)
    reports, outs = _run_both(
        lambda out, pixels: extract_folder(generator, images, None, out, cfg, segmenter=segmenter, pixels=pixels), tmp_path
    )
    _same_reports(reports["host"], reports["device"])
    assert len(reports["device"].done) == 3
    for name in (f"{i}.png" for i in reports["host"].done):
        host, device = (np.asarray(Image.open(outs[k] / name)).astype(int) for k in ("host", "device"))
        # The segmenter's input is the host path's byte for byte, so are the masks it predicts.
        print(f"{name}: max {_diff(host, device)[0]}")
        assert np.array_equal(host, device), name


def test_segment_folder_device_path_matches_host(segmenter, samples, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for _, photo_path, _, photo, _ in samples:
        shutil.copy(photo_path, images / photo_path.name)
    Image.fromarray(samples[0][3][:401, :333]).save(images / "odd.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    reports, outs = _run_both(
        lambda out, pixels: segment_folder(segmenter, images, out, batch_size=3, pixels=pixels), tmp_path
    )
    _same_reports(reports["host"], reports["device"])
    assert len(reports["host"].done) == 4 and [i for i, _ in reports["host"].failed] == ["broken"]
    for name in (f"{i}.png" for i in reports["host"].done):
        host, device = (np.asarray(Image.open(outs[k] / name)) for k in ("host", "device"))
        print(f"segment {name}: equal on {(host == device).mean():.5f}")
        assert np.array_equal(host, device), name
