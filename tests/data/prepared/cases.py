"""The settings and ids the prepared-cache tests build with (the conftest's fixtures use them too)."""

from __future__ import annotations

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset

CFG = PreprocessConfig(size=(64, 96))  # not square: height and width must not be swapped
GOOD = [f"{i:05d}_00" for i in range(7)]  # synthetic train ids with a garment (00007, 00008 have none)
EMPTY = ["00007_00", "00008_00"]


def viton(root, ids=GOOD, cfg=CFG, split="train", augment=None) -> VitonDataset:
    """The reference: the same samples read by VitonDataset."""
    return VitonDataset(root, split, ids, cfg, augment)
