"""Fuzz: a generated corpus of odd photos and masks through `extract` (one photo and folder
mode), `segment` (one photo and folder mode) and `split` on a small data set.

Each case either works or is refused with one clear line (a ClothesExtractorError in the
library; exit 1 and one ``error:``/``failed:`` line at the command line): no traceback, no Python
exception class name, none hangs (an alarm per case), none leaves a partial or temporary file.
The one-photo cases call the library function the command calls, with the models loaded once
(speed); the folder and split cases go through the command itself. Run with -s to see the counts.
"""

from __future__ import annotations

import io
import re
import shutil
import signal
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from clothes_extractor.errors import ClothesExtractorError
from clothes_extractor.inference.output import ExtractConfig
from clothes_extractor.inference.pipeline import extract_file, segment_file
from clothes_extractor.inference.segmenter import load_segmenter
from clothes_extractor.data.viton import to_palette_image

runner = CliRunner()
CASE_TIMEOUT = 20  # seconds, per case: generous for a loaded machine
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Interrupt)\b|Traceback")
H, W = 48, 36


def _photo_array(h=H, w=W) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _labels(h=H, w=W) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 5
    labels[3 * h // 4:, w // 4: 3 * w // 4] = 9
    return labels


def _bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` (past Pillow's bomb limit), its data not there."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def photo_corpus() -> dict[str, bytes]:
    """name (with the extension the file gets) -> bytes."""
    rgb = Image.fromarray(_photo_array())
    jpeg, png = _bytes(rgb, "JPEG"), _bytes(rgb, "PNG")
    corpus: dict[str, bytes] = {"good.jpg": jpeg, "good.png": png, "zero.jpg": b"", "zero.png": b""}
    for n in (2, 10, 50, 100, 200, 400, len(jpeg) // 2, len(jpeg) - 10):
        corpus[f"trunc{n}.jpg"] = jpeg[:n]
    for n in (4, 8, 20, 33, 60, 120, len(png) // 2, len(png) - 12):
        corpus[f"trunc{n}.png"] = png[:n]
    corpus["png_named.jpg"] = png
    corpus["jpeg_named.png"] = jpeg
    corpus["text.jpg"] = b"this is not an image\n" * 10
    corpus["random.png"] = np.random.default_rng(1).integers(0, 255, 500, dtype=np.uint8).tobytes()
    corpus["wrong_magic.png"] = b"\x89PNX" + png[4:]
    corpus["bomb.png"] = _bomb_png(200_000, 200_000)
    corpus["bomb_wide.png"] = _bomb_png(2_000_000_000, 2)
    corpus["one.png"] = _bytes(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")
    corpus["one.jpg"] = _bytes(Image.new("RGB", (1, 1)), "JPEG")
    corpus["thin.png"] = _bytes(Image.new("RGB", (1, 300)), "PNG")
    corpus["flat.png"] = _bytes(Image.new("RGB", (300, 1)), "PNG")
    corpus["i16.png"] = _bytes(Image.fromarray((_photo_array()[..., 0].astype(np.uint16) * 257)), "PNG")
    corpus["la.png"] = _bytes(rgb.convert("LA"), "PNG")
    corpus["l.png"] = _bytes(rgb.convert("L"), "PNG")
    corpus["one_bit.png"] = _bytes(rgb.convert("1"), "PNG")
    corpus["p.png"] = _bytes(rgb.convert("P"), "PNG")
    corpus["rgba.png"] = _bytes(rgb.convert("RGBA"), "PNG")
    corpus["cmyk.jpg"] = _bytes(rgb.convert("CMYK"), "JPEG")
    corpus["i32.tif"] = _bytes(rgb.convert("I"), "TIFF")
    corpus["float.tif"] = _bytes(rgb.convert("F"), "TIFF")
    corpus["rgb.bmp"] = _bytes(rgb, "BMP")
    frames = [Image.fromarray(_photo_array()[::-1] if i % 2 else _photo_array()) for i in range(3)]
    corpus["anim.gif"] = _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    try:
        corpus["anim.webp"] = _bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:])
        corpus["still.webp"] = _bytes(rgb, "WEBP")
    except (OSError, KeyError):  # no WebP support in this Pillow
        pass
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        corpus[f"exif{orientation}.jpg"] = _bytes(rgb, "JPEG", exif=exif.tobytes())
    bad_exif = Image.Exif()
    bad_exif[0x0112] = 99
    corpus["exif99.jpg"] = _bytes(rgb, "JPEG", exif=bad_exif.tobytes())
    return corpus


def mask_corpus() -> dict[str, bytes]:
    labels = _labels()
    garment = (labels == 5).astype(np.uint8) * 255
    parse = to_palette_image(labels)
    colour = parse.convert("RGB")
    corpus = {
        "labels.png": _bytes(parse, "PNG"),
        "binary.png": _bytes(Image.fromarray(garment), "PNG"),
        "binary.jpg": _bytes(Image.fromarray(garment), "JPEG"),
        "zero_one.png": _bytes(Image.fromarray(garment // 255), "PNG"),
        "colour.png": _bytes(colour, "PNG"),
        "colour_q75.jpg": _bytes(colour, "JPEG", quality=75),
        "colour_q95.jpg": _bytes(colour, "JPEG", quality=95),
        "colour_bilinear_half.png": _bytes(colour.resize((W // 2, H // 2), Image.BILINEAR), "PNG"),
        "half.png": _bytes(Image.fromarray(garment).resize((W // 2, H // 2), Image.NEAREST), "PNG"),
        "double.png": _bytes(Image.fromarray(garment).resize((W * 2, H * 2), Image.NEAREST), "PNG"),
        "off_by_one.png": _bytes(Image.fromarray(garment).resize((W // 2 + 1, H // 2), Image.NEAREST), "PNG"),
        "other_aspect.png": _bytes(Image.fromarray(garment).resize((W, W), Image.NEAREST), "PNG"),
        "transposed.png": _bytes(Image.fromarray(garment.T.copy()), "PNG"),
        "empty.png": _bytes(Image.new("L", (W, H)), "PNG"),
        "all.png": _bytes(Image.new("L", (W, H), 255), "PNG"),
        "tiny_garment.png": _bytes(Image.fromarray(np.pad(np.full((2, 2), 255, np.uint8), ((0, H - 2), (0, W - 2)))), "PNG"),
        "no_garment_labels.png": _bytes(to_palette_image(np.where(labels == 5, 2, labels).astype(np.uint8)), "PNG"),
        "dress_labels.png": _bytes(to_palette_image(np.where(labels == 5, 6, labels).astype(np.uint8)), "PNG"),
        "p_without_garment_colours.png": _bytes(Image.new("P", (W, H), 3), "PNG"),
        "i16.png": _bytes(Image.fromarray(garment.astype(np.uint16) * 257), "PNG"),
        "alpha.png": _bytes(Image.fromarray(np.dstack([_photo_array(), garment])), "PNG"),
        "la.png": _bytes(Image.fromarray(garment).convert("LA"), "PNG"),
        "one.png": _bytes(Image.new("L", (1, 1), 255), "PNG"),
        "zero.png": b"",
        "trunc.png": _bytes(parse, "PNG")[:40],
        "text.png": b"mask\n",
        "bomb.png": _bomb_png(100_000, 120_000),
        "anim.gif": _bytes(Image.fromarray(garment), "GIF", save_all=True, append_images=[Image.fromarray(255 - garment)]),
        "photo_as_mask.jpg": _bytes(Image.fromarray(_photo_array()), "JPEG"),
    }
    return corpus


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _check_outputs(folder: Path) -> None:
    """Every file under ``folder`` opens as a complete image; no hidden temporary file."""
    for path in folder.rglob("*"):
        assert not path.name.startswith("."), f"temporary file left: {path}"
        if path.is_file():
            with Image.open(path) as image:
                image.load()


def _run_case(fn, tally: Counter, kind: str, out_dir: Path) -> str:
    """Run one case; 'worked' or 'refused'. Fails the test on a crash, a hang or a bad message."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT)
    try:
        fn()
        outcome = "worked"
    except ClothesExtractorError as exc:
        message = str(exc)
        assert "\n" not in message.strip(), f"{kind}: a message of several lines: {message!r}"
        assert not CLASS_NAME.search(message), f"{kind}: a Python class name in the message: {message!r}"
        outcome = "refused"
    except _Hang:
        pytest.fail(f"{kind}: took longer than {CASE_TIMEOUT} s")
    except Exception as exc:  # noqa: BLE001 - a crash is what this test looks for
        pytest.fail(f"{kind}: crashed with {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    _check_outputs(out_dir)
    tally[f"{kind} {outcome}"] += 1
    return outcome


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, dict[str, Path], dict[str, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    photos_dir, masks_dir = root / "photos", root / "masks"
    photos_dir.mkdir()
    masks_dir.mkdir()
    photos = {}
    for name, data in photo_corpus().items():
        (photos_dir / name).write_bytes(data)
        photos[name] = photos_dir / name
    masks = {}
    for name, data in mask_corpus().items():
        (masks_dir / name).write_bytes(data)
        masks[name] = masks_dir / name
    return photos_dir, masks_dir, photos, masks


@pytest.fixture(scope="module")
def seg_ckpt(tmp_path_factory) -> Path:
    from tests.inference.test_segmenter import write_segmenter

    return write_segmenter(tmp_path_factory.mktemp("seg") / "seg.safetensors")


def test_fuzz_corpus(corpus, extractor, ckpt, seg_ckpt, tmp_path):
    photos_dir, masks_dir, photos, masks = corpus
    segmenter = load_segmenter(seg_ckpt, "cpu")
    tally: Counter = Counter()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cfg = ExtractConfig(frame=(64, 48), overwrite=True)
    binary = masks["binary.png"]
    n = 0

    def case(kind, fn):
        nonlocal n
        n += 1
        _run_case(fn, tally, kind, out_dir)

    # Every photo with a fitting binary mask, and alone through the segmenter (extract and segment).
    for name, photo in photos.items():
        case("extract photo", lambda p=photo: extract_file(extractor, p, binary, out_dir / f"e{n}.png", cfg))
        case("extract photo, predicted mask", lambda p=photo: extract_file(extractor, p, None, out_dir / f"s{n}.jpg", cfg, segmenter=segmenter))
        case("segment photo", lambda p=photo: segment_file(segmenter, p, out_dir / f"p{n}.png", overwrite=True))
    # Every mask with a plain photo and one turned by its EXIF tag (180 degrees), in every reading.
    for name, mask in masks.items():
        for photo in ("good.png", "exif3.jpg"):
            for kind in ("auto", "labels", "binary", "colours"):
                kcfg = ExtractConfig(frame=(64, 48), overwrite=True, mask_kind=kind)
                case(f"extract mask ({kind})", lambda m=mask, p=photos[photo], c=kcfg: extract_file(extractor, p, m, out_dir / f"m{n}.png", c))
    # An output place that cannot be written (a file where the folder should be).
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    case("extract to a blocked path", lambda: extract_file(extractor, photos["good.png"], binary, blocker / "o.png", cfg))

    # Folder mode through the command: every photo paired with a mask by stem.
    pair_masks = tmp_path / "pair_masks"
    pair_masks.mkdir()
    for i, name in enumerate(photos):
        mask_name = list(masks)[i % len(masks)]
        shutil.copy(masks[mask_name], pair_masks / (Path(name).stem + Path(mask_name).suffix))
    for args, kind in (
        (["extract", "--images", str(photos_dir), "--masks", str(pair_masks), "-o", str(tmp_path / "folder_out"), "-c", str(ckpt), "--size", "64x48", "--device", "cpu"], "extract folder"),
        (["extract", "--images", str(photos_dir), "-o", str(tmp_path / "folder_seg_out"), "-c", str(ckpt), "--segmenter", str(seg_ckpt), "--size", "64x48", "--device", "cpu"], "extract folder, predicted masks"),
        (["segment", "--images", str(photos_dir), "-o", str(tmp_path / "parse_out"), "-s", str(seg_ckpt), "--device", "cpu"], "segment folder"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1), f"{kind}: exit {result.exit_code}: {result.output} {result.exception!r}"
        assert isinstance(result.exception, (SystemExit, type(None))), f"{kind}: {result.exception!r}"
        assert not CLASS_NAME.search(result.output), f"{kind}: {result.output}"
        failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
        _check_outputs(Path(args[args.index("-o") + 1]))
        tally[f"{kind}: photos failed (one line each)"] += len(failed)
        n += 1

    print(f"\nfuzz: {n} cases")
    for key, count in sorted(tally.items()):
        print(f"  {key}: {count}")
    assert n >= 200
    assert sum(v for k, v in tally.items() if k.endswith("worked")) > 0


def test_fuzz_split_and_evaluate_on_a_damaged_small_data_set(synthetic_root, ckpt, tmp_path):
    """`split` and `evaluate` on a copy of the synthetic data set with damaged files: each works
    (the damaged samples skipped, by reason) or says what is wrong in one line; never a traceback,
    never a partial report."""
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    parses = sorted((root / "train" / "image-parse-v3").glob("*.png"))
    photos_ = sorted((root / "train" / "image").glob("*.jpg"))
    parses[0].write_bytes(b"")
    parses[1].write_bytes(parses[2].read_bytes()[:50])
    parses[3].write_bytes(b"not a png")
    photos_[4].write_bytes(b"")
    result = runner.invoke(app, ["split", "--data", str(root), "--workers", "1"])
    assert result.exit_code in (0, 1), result.output + repr(result.exception)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert not CLASS_NAME.search(result.output), result.output
    for name in ("train_ids.txt", "val_ids.txt"):
        assert not list(root.glob(f".{Path(name).stem}*")), "temporary list left"

    # evaluate: a test photo truncated, a test parse map of wrong magic bytes, a garment emptied.
    test = root / "test"
    test_photos = sorted((test / "image").glob("*.jpg"))
    test_photos[0].write_bytes(test_photos[0].read_bytes()[:200])
    sorted((test / "image-parse-v3").glob("*.png"))[1].write_bytes(b"GIF89a not a png")
    sorted((test / "cloth").glob("*.jpg"))[2].write_bytes(b"")
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", "-c", str(ckpt), "-d", str(root), "--split", "test", "--out", str(out),
                                 "--workers", "0", "--device", "cpu", "--no-network-metrics"])
    assert result.exit_code in (0, 1), result.output + repr(result.exception)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert not CLASS_NAME.search(result.output), result.output
    if result.exit_code == 1:
        assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists() or not any(out.iterdir()), "a refused evaluate left files"
    else:
        assert (out / "metrics.json").is_file()
    assert not [p for p in tmp_path.rglob(".*tmp*")], "temporary file left"
