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
