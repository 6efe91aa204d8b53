"""Scoring: per-image metrics of each subject against the target, their means, FID, the verdict.

One function (:func:`score`) scores every subject under both protocols (see
:mod:`clothes_extractor.evaluation.protocol`), all subjects of a batch at once so that the
target's share of each metric is computed once (and the white baseline's once per chunk), on
the device the images are on; :class:`Scores` gathers the rows of per_image.csv batch by batch
and gives the means of metrics.json.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from clothes_extractor import metrics as M
from clothes_extractor.evaluation.protocol import HIGHER_IS_BETTER, IMAGE_METRICS, METRICS, PROTOCOLS, SUBJECTS


# On the CPU the metrics run on a few images at a time: FSIM's phase congruency holds 16
# complex planes per image, and tensors past a few MB leave the caches (past 32 MB glibc maps
# them afresh, zeroed, each time). Measured on 16 VITON photos at 256x192, all metrics of both
# protocols, one thread: 134 ms of CPU a photo in chunks of 4, 163 in chunks of 2, 199 in
# chunks of 8, 298 all at once. A GPU takes the whole batch.
CPU_CHUNK_PIXELS = 4 * 256 * 192


def images_per_chunk(target: torch.Tensor) -> int:
    """How many images of ``target`` ``(B, C, H, W)`` :func:`score` scores at a time: the whole
    batch off the CPU, else as many as fit :data:`CPU_CHUNK_PIXELS` (at least one)."""
    b, _, h, w = target.shape
    if target.device.type != "cpu":
        return b
    return max(1, min(b, CPU_CHUNK_PIXELS // (h * w)))


def _score_chunk(protocol: str, x: list[torch.Tensor], y: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """The image metrics of the batches ``x`` (each ``(b or 1, 3, H, W)``) against ``y``
    ``(b, 3, H, W)``: name -> ``(S, b)``."""
    out: dict[str, torch.Tensor | None] = {"l1": M.l1(x, y), "psnr": M.psnr(x, y)}
    multiscale = min(y.shape[-2:]) >= M.ms_ssim_min_size()
    if protocol == "paper":
        lum = [M.luminance(b, quantize=True) for b in x]
        ssim, ms_ssim = M.ssim_ms_ssim(lum, M.luminance(y, quantize=True), multiscale=multiscale)
        out["ssim"], out["ms_ssim"] = ssim * 100, None if ms_ssim is None else ms_ssim * 100
    else:
        out["ssim"], out["ms_ssim"] = M.ssim_ms_ssim(x, y, multiscale=multiscale)
    for name, fn in M.weight_free_metrics().items():  # on RGB in [0, 1] in both protocols
        out[name] = fn(x, y)
    return out


def _same_for_all(images: torch.Tensor) -> bool:
    """Whether every image of the batch equals the first (the white baseline)."""
    return images.shape[0] == 1 or bool((images == images[:1]).all())


def score(
    protocol: str, subjects: dict[str, torch.Tensor], target: torch.Tensor, network: M.NetworkMetrics,
    chunk: int | None = None,
) -> dict[str, dict[str, torch.Tensor | None]]:
    """Per-image metrics of each subject against ``target`` ((B, 3, H, W) in [0, 1]) under
    ``protocol``: subject -> metric -> ``(B,)``.

    The subjects are scored together, so what depends on the target alone is computed once,
    and a subject whose images are all the same (the white baseline) has its own share
    computed for one image; ``chunk`` images at a time (default :func:`images_per_chunk`).
    MS-SSIM is None where the images are smaller than :func:`metrics.ms_ssim_min_size`.
    """
    names = list(subjects)
    # contiguous: the paper protocol's images come channels-last from HWC arrays, which
    # convolutions and pooling are slower on
    batches = [(subjects[n][:1] if _same_for_all(subjects[n]) else subjects[n]).contiguous() for n in names]
    target = target.contiguous()
    step = chunk or images_per_chunk(target)
    parts = [
        _score_chunk(protocol, [b if b.shape[0] == 1 else b[i : i + step] for b in batches], target[i : i + step])
        for i in range(0, target.shape[0], step)
    ]
    out: dict[str, dict[str, torch.Tensor | None]] = {n: {} for n in names}
    for metric, first in parts[0].items():
        value = None if first is None else torch.cat([p[metric] for p in parts], dim=1)  # (S, B)
        for k, n in enumerate(names):
            out[n][metric] = None if value is None else value[k]
    for n in names:
        for metric, fn in network.per_image.items():
            out[n][metric] = fn(subjects[n], target)
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
        scored = score(protocol, subjects, target, self.network)
        for subject, images in subjects.items():
            if subject not in self.subjects:
                self.subjects.insert(1, subject)
            if features is not None:
                self.fake[(protocol, subject)].update(features(images))
            values = {name: v.float().cpu().tolist() for name, v in scored[subject].items() if v is not None}
            for k, sample_id in enumerate(ids):
                row: dict[str, Any] = {"id": sample_id, "protocol": protocol, "subject": subject}
                for name in IMAGE_METRICS:
                    row[name] = values[name][k] if name in values else None
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
