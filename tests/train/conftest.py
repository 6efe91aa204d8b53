"""A tiny training set: the synthetic data set's 7 garment-wearing train samples, split 6/1."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lists(synthetic_root, tmp_path_factory) -> tuple[Path, Path]:
    """(train_ids.txt, val_ids.txt) for `synthetic_root`, written outside it (it is shared)."""
    from clothes_extractor.data.split import make_split

    out = tmp_path_factory.mktemp("lists")
    make_split(synthetic_root, out=out, val_fraction=0.15, seed=0)
    return out / "train_ids.txt", out / "val_ids.txt"


@pytest.fixture()
def train_args(synthetic_root, lists, tmp_path):
    """CLI arguments for a quick CPU run at 64x64 with random weights."""

    def make(*extra: str, out: Path | None = None) -> list[str]:
        return [
            "--data", str(synthetic_root), "--train-list", str(lists[0]), "--val-list", str(lists[1]),
            "--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--bs", "2",
            "--workers", "0", "--device", "cpu", "--out", str(out or tmp_path / "run"), *extra,
        ]

    return make
