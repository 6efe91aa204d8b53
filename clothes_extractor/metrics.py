"""Image quality metrics for `evaluate`: pure functions on image batches, one value per image.

Every image function takes two batches ``(B, C, H, W)`` of float images in ``[0, 1]`` (``C`` is
3 for RGB or 1 for luminance) and returns a ``(B,)`` tensor: the value of each image pair.

- :func:`l1`: mean absolute difference over channels and pixels.
- :func:`psnr`: :func:`kornia.metrics.psnr` per image, ``max_val=1``. Identical images give
  ``inf`` (not capped); `evaluate` writes it as ``"inf"`` in JSON and CSV.
- :func:`ssim`: :func:`kornia.metrics.ssim` with the Gaussian window of Wang et al. (11 taps,
  sigma 1.5), ``padding="valid"`` and ``eps=0``, averaged over the channels and the valid
  pixels. This is exactly scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1)`` (both average the map after dropping
  the 5 pixels on each side that the window would take from the padding), and pyiqa's ``ssim``
  that TryOffDiff reports, except that pyiqa clamps negative contrast-structure values at 0 per
  pixel (it only matters where local structure is anti-correlated).
- :func:`ms_ssim`: the multi-scale SSIM of Wang, Simoncelli and Bovik (2003): 5 scales (2x2
  average pooling between them), weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), the
  contrast-structure term at the four finer scales and the full SSIM at the coarsest, each
  averaged per image and clamped at 0 (torchmetrics' ``normalize="relu"``), moments from kornia's
  Gaussian filtering. kornia has no plain MS-SSIM (``kornia.losses.MS_SSIMLoss`` is the
  NVIDIA MS-SSIM + L1 loss, with several Gaussian widths at full resolution, not Wang's
  pyramid). ``padding="valid"`` (the default, Wang's MATLAB code and pyiqa) uses the valid region
  at every scale; ``padding="same"`` reproduces torchmetrics'
  ``multiscale_structural_similarity_index_measure`` (its coarsest SSIM is averaged over the
  reflect-padded map). Both need ``min(H, W) >= 11 * 2**4 = 176``
  (:func:`ms_ssim_min_size`); smaller images raise ``ValueError``.
- :func:`luminance`: Y of ITU-R BT.601, ``0.299 R + 0.587 G + 0.114 B``
  (:func:`kornia.color.rgb_to_grayscale`; the same weights as the Y of YIQ that pyiqa, hence
  TryOffDiff, uses), optionally quantised to 8 bits as pyiqa does.

Set-level metric: FID. :func:`frechet_distance` computes the Fréchet distance of two Gaussians in
float64 (the square root of the covariance product through symmetric eigendecompositions, no
scipy). :class:`FeatureStats` keeps running sums of features, :class:`FIDAccumulator` pairs the
statistics of real and generated images for any feature function.

Network metrics (LPIPS, DISTS, the Inception features of FID) need pretrained weights;
:func:`network_metrics` builds those whose code and weight files are present locally and lists
the others as :class:`NotComputed` with what to install and where to put which file. Nothing is
ever downloaded: every file is checked before anything is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2 = 0.01, 0.03

# Names of the weight files the network metrics need, and where they come from.
INCEPTION_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity / torchmetrics FID
INCEPTION_FIDELITY_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FIDELITY_FILE
)
INCEPTION_PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision AlexNet_Weights.IMAGENET1K_V1 (LPIPS)
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE
VGG16_FILE = "vgg16-397923af.pth"  # torchvision VGG16_Weights.IMAGENET1K_V1 (DISTS)
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE
DISTS_SHORT_SIDE = 256  # TryOffDiff scores DISTS on images resized to 341x256


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"expected two (B, C, H, W) batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute difference per image: ``(B, C, H, W)`` x2 -> ``(B,)``.

    >>> l1(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.25))
    tensor([0.2500, 0.2500])
    """
    _check_pair(x, y)
    return (x.float() - y.float()).abs().mean(dim=(1, 2, 3))


def psnr(x: Tensor, y: Tensor, max_val: float = 1.0) -> Tensor:
    """PSNR in dB per image (kornia's, one image at a time): ``(B, C, H, W)`` x2 -> ``(B,)``.

    Identical images give ``inf``.

    >>> psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)).round()
    tensor([20.])
    """
    import kornia

    _check_pair(x, y)
    return torch.stack([kornia.metrics.psnr(a.float(), b.float(), float(max_val)) for a, b in zip(x, y)])


def ssim(x: Tensor, y: Tensor, window: int = SSIM_WINDOW) -> Tensor:
    """Mean SSIM per image (kornia, Gaussian window, valid region): ``(B, C, H, W)`` x2 -> ``(B,)``.

    Images in ``[0, 1]`` (data range 1); ``H`` and ``W`` at least ``window``. Computed in float64.

    >>> ssim(torch.ones(1, 1, 16, 16) * 0.5, torch.ones(1, 1, 16, 16) * 0.5)
    tensor([1.], dtype=torch.float64)
    """
    import kornia

    _check_pair(x, y)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {x.shape[-1]}x{x.shape[-2]}")
    # float64: in float32 the variance of a flat area (mean of squares minus square of the mean) is
    # off by ~1e-7, which C2 = 9e-4 turns into ~1e-4 of SSIM where an image is flat (the white baseline)
    value = kornia.metrics.ssim(x.double(), y.double(), window, max_val=1.0, eps=0.0, padding="valid")
    return value.mean(dim=(1, 2, 3))


def ms_ssim_min_size(window: int = SSIM_WINDOW, scales: int = len(MS_SSIM_BETAS)) -> int:
    """Smallest side MS-SSIM accepts: the coarsest scale must still hold one window (176 px)."""
    return window * 2 ** (scales - 1)


def _ssim_and_cs(x: Tensor, y: Tensor, kernel: Tensor, padding: str) -> tuple[Tensor, Tensor]:
    """Per-image mean SSIM and mean contrast-structure at one scale, from kornia's filtering.

    ``padding="valid"``: both over the valid region. ``"same"`` (torchmetrics): the SSIM over
    the reflect-padded map, the contrast-structure over the valid region.
    """
    from kornia.filters import filter2d_separable

    c1, c2 = _K1**2, _K2**2

    def blur(t: Tensor) -> Tensor:
        return filter2d_separable(t, kernel, kernel, border_type="reflect", padding=padding)

    mu_x, mu_y = blur(x), blur(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = (blur(x * x) - mu_xx).clamp_min(0)
    var_y = (blur(y * y) - mu_yy).clamp_min(0)
    cov = blur(x * y) - mu_xy
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    if padding == "same":
        p = kernel.shape[-1] // 2
        cs_map = cs_map[..., p:-p, p:-p]
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ms_ssim(
    x: Tensor,
    y: Tensor,
    window: int = SSIM_WINDOW,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
    padding: str = "valid",
) -> Tensor:
    """Multi-scale SSIM per image: ``(B, C, H, W)`` x2 in ``[0, 1]`` -> ``(B,)`` (see the module doc).

    Raises ``ValueError`` if a side is below :func:`ms_ssim_min_size` (176 px for 5 scales).
    Computed in float64.
    """
    from kornia.filters import get_gaussian_kernel1d

    _check_pair(x, y)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    need = ms_ssim_min_size(window, len(betas))
    if min(x.shape[-2:]) < need:
        raise ValueError(
            f"MS-SSIM with {len(betas)} scales and an {window}-pixel window needs images of at least "
            f"{need}x{need} pixels, got {x.shape[-1]}x{x.shape[-2]}"
        )
    x, y = x.double(), y.double()
    kernel = get_gaussian_kernel1d(window, SSIM_SIGMA, device=x.device, dtype=x.dtype)
    values = []
    for scale in range(len(betas)):
        if scale:
            x, y = torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(y, 2)
        sim, cs = _ssim_and_cs(x, y, kernel, padding)
        values.append(cs if scale < len(betas) - 1 else sim)
    stack = torch.stack(values).clamp_min(0)  # (scales, B)
    weights = torch.tensor(betas, dtype=stack.dtype, device=stack.device).view(-1, 1)
    return stack.pow(weights).prod(dim=0)


def weight_free_metrics() -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """piq's weight-free perceptual metrics, per image, for (B, 3, H, W) in [0, 1]:
    HaarPSI and FSIM (higher is better) and MS-GMSD (lower is better).

    Unlike SSIM, which a blurred average already scores well on, these compare edges and
    local structure (Haar wavelet, phase congruency and gradient-magnitude similarity), so they
    see what blur loses; they need no network weights, so they run where LPIPS cannot.
    """
    import piq  # only evaluate needs it

    return {
        "haarpsi": lambda x, y: piq.haarpsi(x, y, data_range=1.0, reduction="none"),
        "ms_gmsd": lambda x, y: piq.multi_scale_gmsd(x, y, data_range=1.0, reduction="none", chromatic=False),
        "fsim": lambda x, y: piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=True),
    }


def luminance(x: Tensor, quantize: bool = False) -> Tensor:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``: ``(B, 3, H, W)`` -> ``(B, 1, H, W)``.

    ``quantize``: round to 8 bits (``round(255 Y) / 255``), as pyiqa does before its SSIM.
    """
    import kornia

    y = kornia.color.rgb_to_grayscale(x.float())
    return (y * 255).round() / 255 if quantize else y


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Network metrics: LPIPS, DISTS, Inception features, only from local files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotComputed:
    """Why a metric was not computed and what makes it computable."""

    reason: str
    how: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"status": "not computed", "reason": self.reason}
        if self.how:
            out["how"] = self.how
        return out


PerImageFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class NetworkMetrics:
    """Metrics that need a pretrained network: per-image ones (name -> ``fn(x, y) -> (B,)`` on
    ``[0, 1]`` RGB batches, lower is better) and the feature function of FID (None if absent),
    plus the reasons for those that are not available."""

    per_image: dict[str, PerImageFn] = field(default_factory=dict)
    fid_features: Callable[[Tensor], Tensor] | None = None
    not_computed: dict[str, NotComputed] = field(default_factory=dict)

    @classmethod
    def disabled(cls, reason: str) -> NetworkMetrics:
        return cls(not_computed={name: NotComputed(reason) for name in ("lpips", "dists", "fid")})


def _hub_dir() -> Path:
    from clothes_extractor.weights import torch_hub_checkpoints_dir

    return torch_hub_checkpoints_dir()


def _missing_file(path: Path, url: str, what: str) -> NotComputed:
    return NotComputed(
        f"{path.name} is not in {path.parent}",
        f"download {url} into {path.parent} (the torch hub cache, $TORCH_HOME/hub/checkpoints) for {what}",
    )


def lpips_metric(device: torch.device | str = "cpu") -> PerImageFn | NotComputed:
    """LPIPS (AlexNet, v0.1, as pyiqa's ``lpips``) from torchmetrics, which ships the linear
    layers; the AlexNet ImageNet weights must be in the torch hub cache."""
    try:
        from torchmetrics.functional.image.lpips import _LPIPS
    except Exception:  # noqa: BLE001 - absent or an incompatible version
        return NotComputed("torchmetrics (with its LPIPS) is not installed", "pip install torchmetrics torchvision")
    path = _hub_dir() / ALEXNET_FILE
    if not path.is_file():
        return _missing_file(path, ALEXNET_URL, "LPIPS")
    try:
        net = _LPIPS(pretrained=True, net="alex").to(device).eval()
    except Exception as exc:  # noqa: BLE001
        return NotComputed(f"LPIPS could not be built: {type(exc).__name__}: {exc}", f"check {path}")

    @torch.no_grad()
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return net(x.float(), y.float(), normalize=True).flatten()

    return fn


def dists_metric(device: torch.device | str = "cpu") -> PerImageFn | NotComputed:
    """DISTS (Ding et al. 2020) from torchmetrics (it ships the alpha/beta weights of
    DISTS_pytorch); the VGG16 ImageNet weights must be in the torch hub cache. Images whose
    short side exceeds 256 are first resized to a short side of 256 (TryOffDiff: 341x256)."""
    try:
        from torchmetrics.functional.image.dists import DISTSNetwork
    except Exception:  # noqa: BLE001
        return NotComputed("torchmetrics (with its DISTS) is not installed", "pip install torchmetrics torchvision")
    path = _hub_dir() / VGG16_FILE
    if not path.is_file():
        return _missing_file(path, VGG16_URL, "DISTS")
    try:
        net = DISTSNetwork().to(device).eval()
    except Exception as exc:  # noqa: BLE001
        return NotComputed(f"DISTS could not be built: {type(exc).__name__}: {exc}", f"check {path}")

    @torch.no_grad()
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if min(h, w) > DISTS_SHORT_SIDE:
            scale = DISTS_SHORT_SIDE / min(h, w)
            size = (int(h * scale), int(w * scale))
            resize = lambda t: torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True)  # noqa: E731
            x, y = resize(x.float()), resize(y.float())
        return net(x.float(), y.float()).reshape(-1)

    return fn


def inception_features(device: torch.device | str = "cpu") -> Callable[[Tensor], Tensor] | NotComputed:
    """The 2048-d pool features of the FID Inception network: torch-fidelity's (what torchmetrics'
    FrechetInceptionDistance uses) or pytorch-fid's, whichever is installed with its weights."""
    hub = _hub_dir()
    fidelity_path = hub / INCEPTION_FIDELITY_FILE
    pytorch_fid_path = hub / INCEPTION_PYTORCH_FID_FILE
    how = (
        f"pip install torch-fidelity and put {INCEPTION_FIDELITY_FILE} ({INCEPTION_FIDELITY_URL}) in {hub}"
    )
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception:  # noqa: BLE001
        FeatureExtractorInceptionV3 = None  # noqa: N806
    if FeatureExtractorInceptionV3 is not None and fidelity_path.is_file():
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(fidelity_path))
            net = net.to(device).eval()
        except Exception as exc:  # noqa: BLE001
            return NotComputed(f"the Inception network could not be built: {type(exc).__name__}: {exc}", how)

        @torch.no_grad()
        def fidelity_fn(x: Tensor) -> Tensor:
            return net((x.clamp(0, 1) * 255).round().to(torch.uint8))[0]

        return fidelity_fn
    try:
        from pytorch_fid.inception import InceptionV3
    except Exception:  # noqa: BLE001
        InceptionV3 = None  # noqa: N806
    if InceptionV3 is not None and pytorch_fid_path.is_file():
        try:
            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        except Exception as exc:  # noqa: BLE001
            return NotComputed(f"the Inception network could not be built: {type(exc).__name__}: {exc}", how)

        @torch.no_grad()
        def pytorch_fid_fn(x: Tensor) -> Tensor:
            return net(x.float())[0].flatten(1)

        return pytorch_fid_fn
    if FeatureExtractorInceptionV3 is None and InceptionV3 is None:
        return NotComputed("neither torch-fidelity nor pytorch-fid is installed", how)
    return NotComputed(f"{INCEPTION_FIDELITY_FILE} is not in {hub}", how)


def network_metrics(device: torch.device | str = "cpu") -> NetworkMetrics:
    """LPIPS, DISTS and FID's features where their code and weights are present locally."""
    out = NetworkMetrics()
    for name, build in (("lpips", lpips_metric), ("dists", dists_metric)):
        got = build(device)
        if isinstance(got, NotComputed):
            out.not_computed[name] = got
        else:
            out.per_image[name] = got
    features = inception_features(device)
    if isinstance(features, NotComputed):
        out.not_computed["fid"] = features
    else:
        out.fid_features = features
    return out


def finite_or_str(value: float | None) -> float | str | None:
    """JSON-safe number: ``inf``/``nan`` become the strings ``"inf"``/``"nan"``."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


__all__ = [
    "FIDAccumulator", "FeatureStats", "MS_SSIM_BETAS", "NetworkMetrics", "NotComputed", "SSIM_SIGMA",
    "SSIM_WINDOW", "dists_metric", "finite_or_str", "frechet_distance", "inception_features", "l1",
    "lpips_metric", "luminance", "ms_ssim", "ms_ssim_min_size", "network_metrics", "psnr", "ssim",
]


# ---------------------------------------------------------------------------------------------
# Segmentation: confusion matrix -> IoU
# ---------------------------------------------------------------------------------------------
# A confusion matrix is a sum over pixels, so matrices of batches (and of DDP ranks) add up and
# every IoU is computed once, from the total: no mean of per-batch IoUs.

from collections.abc import Sequence  # noqa: E402 - this section was added after the others


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Pixel counts ``(C, C)`` int64: row = true class, column = predicted class.

    Args:
        pred, target: integer class ids of the same shape (any, e.g. ``(B, H, W)``), in
            ``[0, num_classes)``; pixels whose target is ``ignore_index`` are left out.

    >>> confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    tensor([[1, 0, 0],
            [0, 1, 0],
            [0, 1, 1]])
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes
                         or int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"class ids must be in [0, {num_classes})")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: Tensor) -> Tensor:
    """IoU of each class ``(C,)`` float64: ``TP / (TP + FP + FN)``; NaN where the class is neither
    in the target nor in the prediction (its IoU is undefined)."""
    cm = confusion.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: Tensor) -> float:
    """Mean of :func:`iou_per_class` over the classes present (target or prediction); NaN if none."""
    iou = iou_per_class(confusion)
    present = ~torch.isnan(iou)
    return float(iou[present].mean()) if bool(present.any()) else float("nan")


def group_iou(confusion: Tensor, classes: Sequence[int]) -> float:
    """IoU of the union of ``classes`` taken as one region (e.g. the garment label set):
    intersection = pixels whose true and predicted class are both in the set. NaN if the
    region is in neither the target nor the prediction.

    >>> cm = confusion_matrix(torch.tensor([1, 2, 0, 1]), torch.tensor([2, 1, 1, 0]), 3)
    >>> group_iou(cm, [1, 2])
    0.5
    """
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    cm = confusion.double()
    inter = cm[idx][:, idx].sum()
    union = cm[idx].sum() + cm[:, idx].sum() - inter
    return float(inter / union) if union > 0 else float("nan")


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU per image of two boolean mask batches ``(B, H, W)`` -> ``(B,)`` float64; 1 where both
    masks are empty."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"expected two (B, H, W) masks of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, t = pred.bool().flatten(1), target.bool().flatten(1)
    inter = (p & t).sum(1).double()
    union = (p | t).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def segmentation_report(confusion: Tensor, class_names: Sequence[str], garment: Sequence[int]) -> dict[str, float | None]:
    """Flat metrics from a summed confusion matrix: ``miou``, ``garment_iou``, ``pixel_accuracy``
    and ``iou/<class name>`` per class (None where undefined), JSON-ready."""
    cm = confusion.double()
    total = float(cm.sum())
    out: dict[str, float | None] = {
        "miou": finite_or_none(mean_iou(confusion)),
        "garment_iou": finite_or_none(group_iou(confusion, garment)),
        "pixel_accuracy": float(cm.diagonal().sum() / total) if total > 0 else None,
    }
    for name, v in zip(class_names, iou_per_class(confusion).tolist()):
        out[f"iou/{name}"] = finite_or_none(v)
    return out


def finite_or_none(value: float) -> float | None:
    """``value``, or None for NaN (an undefined IoU)."""
    return None if math.isnan(value) else float(value)


__all__ += [
    "confusion_matrix", "finite_or_none", "group_iou", "iou_per_class", "mask_iou", "mean_iou", "segmentation_report",
]
