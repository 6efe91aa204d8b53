"""Fixtures of the inference tests: a random-weight generator checkpoint and one person photo
with its parse map (a real VITON-HD sample, or a synthetic one where ../shared is absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clothes_extractor.checkpoint import save_checkpoint
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.viton import garment_mask, read_label_map
from clothes_extractor.inference.extractor import Extractor, load_extractor
from clothes_extractor.models.generator import Generator, GeneratorConfig

SIZE = (64, 64)
REAL_SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "viton-hd-samples"


def write_generator(
    path: Path, *, background=(255, 255, 255), size=SIZE, arch: str = "paint", framing: str = "photo", garment_width=None
) -> Path:
    """A resnet18 generator with random weights (seed 0), saved the way training saves one. A
    warp one gets random flow and mask heads too (a new one starts at the identity)."""
    torch.manual_seed(0)
    g = Generator.from_config(GeneratorConfig.for_arch(arch, encoder="resnet18"))
    if arch == "warp":
        head = g.unet.segmentation_head[0]
        with torch.no_grad():
            head.weight[4:].normal_(0, 0.05)
    meta = {  # the layout of train/loop.py's _checkpoint_meta
        "kind": "generator",
        "clothes_extractor_version": "test",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=size, background=background, framing=framing, garment_width=garment_width).to_dict(),
        "train": {},
        "epoch": 0,
        "step": 0,
        "metrics": {},
    }
    return save_checkpoint(path, g.state_dict(), meta)


@pytest.fixture(scope="session")
def photo_root(request) -> Path:
    """A data set root whose test/ holds 3 photos (768x1024 JPEG) with their parse maps: the
    real VITON-HD samples where ../shared has them, else synthetic ones (make_sample_data)."""
    if (REAL_SAMPLES / "test" / "image").is_dir():
        return REAL_SAMPLES
    return request.getfixturevalue("synthetic_root")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_generator(tmp_path_factory.mktemp("ckpt") / "best.safetensors")


@pytest.fixture(scope="module")
def extractor(ckpt) -> Extractor:
    return load_extractor(ckpt, "cpu")


@pytest.fixture(scope="module")
def sample(photo_root):
    """(photo path, parse path, photo array, label array, garment mask) of the first test sample."""
    split = photo_root / "test"
    sample_id = sorted(p.stem for p in (split / "image").glob("*.jpg"))[0]
    photo_path, parse_path = split / "image" / f"{sample_id}.jpg", split / "image-parse-v3" / f"{sample_id}.png"
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    labels = read_label_map(parse_path)
    return photo_path, parse_path, photo, labels, garment_mask(labels, (5,))


@pytest.fixture(scope="module")
def mask_files(sample, tmp_path_factory) -> dict[str, Path]:
    """The same garment mask of the sample in every supported kind."""
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


@pytest.fixture(scope="session")
def make_generator():
    """:func:`write_generator`, for tests that need another background or size."""
    return write_generator
