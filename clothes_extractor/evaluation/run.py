"""`evaluate`: the checkpoint's kind picks the evaluation, a generator's or a segmenter's."""

from __future__ import annotations

import functools

from clothes_extractor.checkpoint import read_meta
from clothes_extractor.errors import CheckpointError
from clothes_extractor.evaluation.config import EvalConfig, EvalResult
from clothes_extractor.evaluation.generator import evaluate_generator
from clothes_extractor.evaluation.segmenter import evaluate_segmenter
from clothes_extractor.runtime import retain_freed_memory


def evaluate(cfg: EvalConfig, *, network=None, console=None, progress: bool = True) -> EvalResult:
    """Score ``cfg.checkpoint`` (a generator or a segmenter) on the selected samples and write
    metrics.json, per_image.csv and grid.png. ``network``: the LPIPS/DISTS/FID networks of a
    generator's evaluation (tests inject small ones)."""
    cfg.check()
    retain_freed_memory()  # large CPU tensors reused instead of mapped afresh (faster evaluation)
    meta = read_meta(cfg.checkpoint)
    evaluators = {"generator": functools.partial(evaluate_generator, network=network), "segmenter": evaluate_segmenter}
    if meta.get("kind") not in evaluators:
        raise CheckpointError(f"{meta['path']} holds a {meta.get('kind')!r} model, not a garment generator or segmenter")
    return evaluators[meta["kind"]](cfg, meta, console=console, progress=progress)
