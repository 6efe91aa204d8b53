"""Image quality metrics: pure functions on image batches, one value per image.

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
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2 = 0.01, 0.03


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
