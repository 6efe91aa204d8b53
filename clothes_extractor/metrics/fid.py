"""Set-level metric: FID. :func:`frechet_distance` computes the Fréchet distance of two Gaussians in
float64 (the square root of the covariance product through symmetric eigendecompositions, no
scipy). :class:`FeatureStats` keeps running sums of features, :class:`FIDAccumulator` pairs the
statistics of real and generated images for any feature function.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor


def _sqrtm_psd(m: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    values, vectors = torch.linalg.eigh((m + m.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``. The trace of the
    square root is the sum of the square roots of the eigenvalues of
    ``sigma1^(1/2) sigma2 sigma1^(1/2)`` (similar to ``sigma1 sigma2``, but symmetric).

    >>> frechet_distance(torch.zeros(1), torch.ones(1, 1), torch.full((1,), 2.0), torch.full((1, 1), 4.0))
    5.0
    """
    mu1, mu2 = mu1.double().flatten(), mu2.double().flatten()
    sigma1, sigma2 = sigma1.double(), sigma2.double()
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(
            f"mean and covariance shapes do not match: {tuple(mu1.shape)}, {tuple(sigma1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(sigma2.shape)}"
        )
    root1 = _sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    tr_covmean = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_covmean
    return float(value.clamp_min(0))


@dataclass
class FeatureStats:
    """Running count, sum and sum of outer products of feature vectors (float64)."""

    n: int = 0
    total: Tensor | None = None
    outer: Tensor | None = None

    def update(self, features: Tensor) -> None:
        """Add ``(B, D)`` features."""
        f = features.detach().double().flatten(1).cpu()
        if self.total is None:
            self.total = torch.zeros(f.shape[1], dtype=torch.float64)
            self.outer = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64)
        self.n += f.shape[0]
        self.total += f.sum(0)
        self.outer += f.T @ f

    def mean_cov(self) -> tuple[Tensor, Tensor]:
        """Mean ``(D,)`` and unbiased covariance ``(D, D)``; needs at least 2 vectors."""
        if self.n < 2 or self.total is None or self.outer is None:
            raise ValueError(f"FID needs the features of at least 2 images on each side, got {self.n}")
        mu = self.total / self.n
        cov = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu, cov


@dataclass
class FIDAccumulator:
    """Collects features of real and generated images and gives their Fréchet distance.

    Args:
        feature_fn: ``(B, 3, H, W)`` float images in ``[0, 1]`` -> ``(B, D)`` features (the
            Inception pool features for FID proper; any fixed network in tests).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> fid = FIDAccumulator(net)
        >>> x = torch.rand(8, 3, 16, 16)
        >>> fid.update(x, real=True); fid.update(x, real=False)
        >>> fid.compute() < 1e-6
        True
    """

    feature_fn: Callable[[Tensor], Tensor]
    real: FeatureStats = field(default_factory=FeatureStats)
    fake: FeatureStats = field(default_factory=FeatureStats)

    @torch.no_grad()
    def update(self, images: Tensor, *, real: bool) -> None:
        (self.real if real else self.fake).update(self.feature_fn(images))

    def compute(self) -> float:
        return frechet_distance(*self.real.mean_cov(), *self.fake.mean_cov())
