"""What `evaluate` is asked (:class:`EvalConfig`) and what it gives back (:class:`EvalResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothes_extractor.errors import ConfigError
from clothes_extractor.evaluation.report import GRID_FILE, METRICS_FILE, PER_IMAGE_FILE
from clothes_extractor.evaluation.selection import Selection


@dataclass(frozen=True)
class EvalConfig:
    """What `evaluate` scores and where it writes."""

    checkpoint: Path
    data: Path
    split: str = "val"  # "val", "test" or the path of an id list
    folder: str | None = None  # train or test, for a list file (default: guessed)
    exclude: Path | None = None
    out: Path | None = None  # default runs/eval-<run name>
    batch_size: int = 16
    device: str = "auto"
    workers: int = 0
    grid_rows: int = 4  # per group (best, worst, random)
    seed: int = 0  # of the random grid rows
    network_metrics: bool = True  # LPIPS, DISTS, FID when their weights are present
    overwrite: bool = False
    segmenter: Path | None = None  # also score the mask-free pipeline: the generator fed the predicted mask

    def check(self) -> None:
        """ConfigError for a batch size or grid rows below 1 (before any work)."""
        if self.batch_size < 1:
            raise ConfigError(f"--bs must be at least 1, got {self.batch_size}")
        if self.grid_rows < 1:
            raise ConfigError(f"--grid-rows must be at least 1, got {self.grid_rows}")


@dataclass
class EvalResult:
    out: Path
    summary: dict[str, Any]  # the content of metrics.json
    rows: list[dict[str, Any]]  # per_image.csv
    selection: Selection
    grid_rows: list[str]  # label of each grid row, top to bottom

    @property
    def paths(self) -> dict[str, Path]:
        return {"metrics": self.out / METRICS_FILE, "per_image": self.out / PER_IMAGE_FILE, "grid": self.out / GRID_FILE}
