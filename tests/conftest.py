"""Shared fixtures: the three real VITON-HD samples (skipped where ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO.parent / "shared" / "data" / "viton-hd-samples"
REAL_IDS = ("00006_00", "00017_00", "14274_00")


@pytest.fixture(scope="session")
def real_root() -> Path:
    """Root of the three real VITON-HD test samples (layout: test/<folder>/<id>.<ext>)."""
    if not (REAL_SAMPLES / "test" / "image").is_dir():
        pytest.skip(f"real VITON-HD samples not found at {REAL_SAMPLES} (they live in the shared/ folder beside the repo)")
    return REAL_SAMPLES


SYNTHETIC_SAMPLES, SYNTHETIC_EMPTY, SYNTHETIC_SEED = 12, 2, 0


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A synthetic data set in the VITON-HD layout (`make_sample_data`, seed 0), built once.

    12 samples at 768x1024: train/ holds 00000_00 .. 00008_00 (9), of which the last 2
    (00007_00, 00008_00) wear a dress (label 6) and have no label-5 pixel; test/ holds
    00009_00 .. 00011_00 (3). Folders: image, image-parse-v3, image-parse-agnostic-v3.2, cloth,
    cloth-mask; plus train_pairs.txt and test_pairs.txt. Shared by tests: do not write into it
    (copy it first).
    """
    from clothes_extractor.data.synthetic import make_sample_data

    root = tmp_path_factory.mktemp("synthetic") / "viton"
    make_sample_data(root, samples=SYNTHETIC_SAMPLES, seed=SYNTHETIC_SEED, empty=SYNTHETIC_EMPTY)
    return root
