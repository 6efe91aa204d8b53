"""Scoring: per-image metrics of each subject against the target, their means, FID, the verdict.

One function (:func:`score`) scores every subject under both protocols (see
:mod:`clothes_extractor.evaluation.protocol`); :class:`Scores` gathers the rows of
per_image.csv batch by batch and gives the means of metrics.json.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from clothes_extractor import metrics as M
from clothes_extractor.evaluation.protocol import HIGHER_IS_BETTER, IMAGE_METRICS, METRICS, PROTOCOLS, SUBJECTS


def score(protocol: str, x: torch.Tensor, y: torch.Tensor, network: M.NetworkMetrics) -> dict[str, torch.Tensor | None]:
    """Per-image metrics of ``x`` against ``y`` ((B, 3, H, W) in [0, 1]) under ``protocol``.

    MS-SSIM is None where the images are smaller than :func:`metrics.ms_ssim_min_size`.
    """
    out: dict[str, torch.Tensor | None] = {"l1": M.l1(x, y), "psnr": M.psnr(x, y)}
    big_enough = min(x.shape[-2:]) >= M.ms_ssim_min_size()
    if protocol == "paper":
        lx, ly = M.luminance(x, quantize=True), M.luminance(y, quantize=True)
        out["ssim"] = M.ssim(lx, ly) * 100
        out["ms_ssim"] = M.ms_ssim(lx, ly).float() * 100 if big_enough else None
    else:
        out["ssim"] = M.ssim(x, y)
        out["ms_ssim"] = M.ms_ssim(x, y).float() if big_enough else None
    for name, fn in M.weight_free_metrics().items():  # on RGB in [0, 1] in both protocols
        out[name] = fn(x, y)
    for name, fn in network.per_image.items():
        out[name] = fn(x, y)
    return out


class Scores:
    """Per-image rows and FID statistics, filled batch by batch."""

    def __init__(self, network: M.NetworkMetrics) -> None:
        self.network = network
        self.rows: list[dict[str, Any]] = []
        self.real: dict[str, M.FeatureStats] = defaultdict(M.FeatureStats)
        self.fake: dict[tuple[str, str], M.FeatureStats] = defaultdict(M.FeatureStats)
        self.sizes: dict[str, set[tuple[int, int]]] = defaultdict(set)
        self.subjects: list[str] = list(SUBJECTS)  # plus PIPELINE_SUBJECT, after "model", when scored

    @torch.no_grad()
    def add(self, protocol: str, ids: Sequence[str], subjects: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        self.sizes[protocol].add(tuple(target.shape[-2:]))
        features = self.network.fid_features
        if features is not None:
            self.real[protocol].update(features(target))
        for subject, images in subjects.items():
            if subject not in self.subjects:
                self.subjects.insert(1, subject)
            values = score(protocol, images, target, self.network)
            if features is not None:
                self.fake[(protocol, subject)].update(features(images))
            for k, sample_id in enumerate(ids):
                row: dict[str, Any] = {"id": sample_id, "protocol": protocol, "subject": subject}
                for name in IMAGE_METRICS:
                    v = values.get(name)
                    row[name] = None if v is None else float(v[k])
                self.rows.append(row)

    def means(self) -> dict[str, dict[str, dict[str, float | None]]]:
        sums: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for r in self.rows:
            for name in IMAGE_METRICS:
                if r[name] is not None:
                    sums[(r["protocol"], r["subject"], name)].append(r[name])
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for p in PROTOCOLS:
            out[p] = {}
            for s in self.subjects:
                entry: dict[str, float | None] = {}
                for name in IMAGE_METRICS:
                    vals = sums.get((p, s, name))
                    entry[name] = math.fsum(vals) / len(vals) if vals else None
                entry["fid"] = None
                if self.network.fid_features is not None and self.real[p].n >= 2:
                    entry["fid"] = M.frechet_distance(*self.real[p].mean_cov(), *self.fake[(p, s)].mean_cov())
                out[p][s] = entry
        return out


def verdict(means: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """Which metrics the model beats each baseline on, for one protocol."""
    model = means["model"]
    beats: dict[str, list[str]] = {}
    loses: dict[str, list[str]] = {}
    for baseline in ("white", "input"):
        beats[baseline], loses[baseline] = [], []
        for name in METRICS:
            a, b = model.get(name), means[baseline].get(name)
            if a is None or b is None:
                continue
            better = a > b if HIGHER_IS_BETTER[name] else a < b
            (beats if better else loses)[baseline].append(name)
    return {"beats": beats, "does_not_beat": loses, "beats_both": not any(loses.values())}


def not_computed(scores: Scores, network: M.NetworkMetrics, samples: int) -> dict[str, dict[str, dict[str, str]]]:
    """protocol -> metric -> why it is null (and how to get it), for metrics.json."""
    out: dict[str, dict[str, dict[str, str]]] = {p: {} for p in PROTOCOLS}
    for p in PROTOCOLS:
        small = sorted(s for s in scores.sizes[p] if min(s) < M.ms_ssim_min_size())
        if small:
            h, w = small[0]
            out[p]["ms_ssim"] = M.NotComputed(
                f"MS-SSIM needs at least {M.ms_ssim_min_size()} px per side (5 scales, window 11); "
                f"the images are {w}x{h}",
                "train at a larger --size" if p == "native" else "",
            ).to_dict()
        for name, why in network.not_computed.items():
            out[p][name] = why.to_dict()
        if network.fid_features is not None and samples < 2:
            out[p]["fid"] = M.NotComputed("FID needs at least 2 samples").to_dict()
    return out
