"""Image quality metrics: pure functions on image batches, one value per image.

Every image function takes ``x``, a batch ``(B, C, H, W)`` of float images in ``[0, 1]`` (``C``
is 3 for RGB or 1 for luminance), and a reference ``y`` of the same shape, and returns a
``(B,)`` tensor: the value of each image pair. ``x`` may also be several batches scored against
the same reference (:func:`subjects`), a ``(S, B, C, H, W)`` tensor or a sequence of batches,
each ``(B, C, H, W)`` or ``(1, C, H, W)`` (one image against every reference image) -> ``(S, B)``:
`evaluate` scores its subjects (the model and the baselines) that way, so what depends on the
reference alone (its filtered moments, its phase congruency) is computed once for all of them,
and the white baseline's share once for the batch.

- :func:`l1`: mean absolute difference over channels and pixels.
- :func:`psnr`: ``10 log10(1 / MSE)`` per image, as :func:`kornia.metrics.psnr` computes it for
  one image (``max_val=1``). Identical images give ``inf`` (not capped); `evaluate` writes it as
  ``"inf"`` in JSON and CSV.
- :func:`ssim`: the SSIM of :func:`kornia.metrics.ssim` with the Gaussian window of Wang et al.
  (11 taps, sigma 1.5), ``padding="valid"`` and ``eps=0``, averaged over the channels and the
  valid pixels. This is exactly scikit-image's ``structural_similarity(gaussian_weights=True,
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
- :func:`ssim_ms_ssim`: both at once (the SSIM is MS-SSIM's finest scale, filtered once).
- :func:`luminance`: Y of ITU-R BT.601, ``0.299 R + 0.587 G + 0.114 B``
  (:func:`kornia.color.rgb_to_grayscale`; the same weights as the Y of YIQ that pyiqa, hence
  TryOffDiff, uses), optionally quantised to 8 bits as pyiqa does.

Precision: SSIM and MS-SSIM run in float32 (float64 inputs stay float64), on images with each
image's mean subtracted per channel (variances and covariances do not change; the means are
added back for the luminance term), so the variance ``E[x^2] - E[x]^2`` cancels on values near
0 rather than near the image's level, and an all-white image's moments are exact. Against the
float64 computation, on the 300 VITON test photos of ``benchmarks/evaluate.py``: every image's
SSIM and MS-SSIM within 6e-5 (0.006 on the x100 scale), their means within 5e-6 (0.0005).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2 = 0.01, 0.03


Batches = Union[Tensor, Sequence[Tensor]]


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 4 or y.ndim != 4 or x.shape[1:] != y.shape[1:] or x.shape[0] not in (1, y.shape[0]):
        raise ValueError(
            f"expected two (B, C, H, W) batches of the same shape (or one image against a batch), "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def subjects(x: Batches, y: Tensor) -> tuple[list[Tensor], bool]:
    """``x`` as a list of ``(B or 1, C, H, W)`` batches to score against ``y`` ``(B, C, H, W)``,
    and whether it was one batch (whose values then come back ``(B,)``, not ``(1, B)``).

    ``x`` is one batch the shape of ``y``, or several: a ``(S, B, C, H, W)`` tensor or a sequence
    of batches, each ``(B, C, H, W)`` or ``(1, C, H, W)`` (one image, scored against every image
    of ``y``). ValueError for anything else.
    """
    single = isinstance(x, Tensor) and x.ndim == 4
    batches = [x] if single else list(x)
    if not batches:
        raise ValueError("no images to score")
    for batch in batches:
        _check_pair(batch, y)
    return batches, single


def _per_subject(values: list[Tensor], single: bool) -> Tensor:
    return values[0] if single else torch.stack(values)


def _compute_dtype(t: Tensor) -> torch.dtype:
    """float32, or float64 for float64 input."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def l1(x: Batches, y: Tensor) -> Tensor:
    """Mean absolute difference per image: ``(B, C, H, W)`` x2 -> ``(B,)``.

    >>> l1(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.25))
    tensor([0.2500, 0.2500])
    """
    batches, single = subjects(x, y)
    return _per_subject([(b.float() - y.float()).abs().mean(dim=(1, 2, 3)) for b in batches], single)


def psnr(x: Batches, y: Tensor, max_val: float = 1.0) -> Tensor:
    """PSNR in dB per image (kornia's formula, per image): ``(B, C, H, W)`` x2 -> ``(B,)``.

    Identical images give ``inf``.

    >>> psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)).round()
    tensor([20.])
    """
    batches, single = subjects(x, y)
    mse = [(b.float() - y.float()).square().mean(dim=(1, 2, 3)) for b in batches]
    return _per_subject([10.0 * torch.log10(float(max_val) ** 2 / m) for m in mse], single)


def ms_ssim_min_size(window: int = SSIM_WINDOW, scales: int = len(MS_SSIM_BETAS)) -> int:
    """Smallest side MS-SSIM accepts: the coarsest scale must still hold one window (176 px)."""
    return window * 2 ** (scales - 1)


@functools.lru_cache(maxsize=16)
def _gaussian(window: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    from kornia.filters import get_gaussian_kernel1d

    return get_gaussian_kernel1d(window, SSIM_SIGMA, device=device, dtype=dtype)


def _blur(t: Tensor, kernel: Tensor, padding: str) -> Tensor:
    """kornia's separable Gaussian filtering of every channel of ``(N, C, H, W)``.

    In channels-last memory (same values): oneDNN's depthwise convolution is several times
    faster there on the CPU (measured: 9 channels of 4 images at 256x192, one thread, 18.3 ms
    from the usual layout, 2.2 ms from channels-last, 0.6 ms of it the copy).
    """
    from kornia.filters import filter2d_separable

    t = t.contiguous(memory_format=torch.channels_last)
    return filter2d_separable(t, kernel, kernel, border_type="reflect", padding=padding)


def _scale_terms(
    u: Tensor, mean_x: Tensor, v: Tensor, mean_y: Tensor, ref: Tensor, kernel: Tensor, padding: str
) -> tuple[Tensor, Tensor]:
    """Per-image mean SSIM and mean contrast-structure of one batch at one scale: ``(B,)`` x2.

    ``u`` ``(B or 1, C, H, W)`` and ``v`` ``(B, C, H, W)``: the images less their means
    ``mean_x`` and ``mean_y`` ``(., C, 1, 1)``; ``ref``: ``v``'s filtered moments ``(B, 2C, h, w)``
    (computed once for all the batches scored against it). ``padding="valid"``: both over the
    valid region; ``"same"`` (torchmetrics): the SSIM over the reflect-padded map, the
    contrast-structure over the valid region.
    """
    c = u.shape[1]
    c1, c2 = _K1**2, _K2**2
    mu_v, vv = ref[:, :c], ref[:, c:]
    if u.shape[0] == v.shape[0]:  # x's three moments in one filtering
        moments = _blur(torch.cat([u, u * u, u * v], dim=1), kernel, padding)
        mu_u, uu, uv = moments[:, :c], moments[:, c : 2 * c], moments[:, 2 * c :]
    else:  # one image against each reference image: its own moments once
        own = _blur(torch.cat([u, u * u], dim=1), kernel, padding)
        mu_u, uu = own[:, :c], own[:, c:]
        uv = _blur(u * v, kernel, padding)
    var_x = (uu - mu_u * mu_u).clamp_min(0)
    var_y = (vv - mu_v * mu_v).clamp_min(0)
    cov = uv - mu_u * mu_v
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    mu_x, mu_y = mu_u + mean_x, mu_v + mean_y
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    if padding == "same":
        p = kernel.shape[-1] // 2
        cs_map = cs_map[..., p:-p, p:-p]
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ssim_ms_ssim(
    x: Batches,
    y: Tensor,
    window: int = SSIM_WINDOW,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
    padding: str = "valid",
    multiscale: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Mean SSIM and MS-SSIM per image, from one filtering of the finest scale.

    ``x``: one batch or several (see :func:`subjects`), ``y`` ``(B, C, H, W)``, in ``[0, 1]``.
    Returns ``(ssim, ms_ssim)``, each ``(B,)`` for one batch, ``(S, B)`` for several; the SSIM
    is that of ``padding`` (see :func:`ssim`, :func:`ms_ssim`); ``y``'s moments are filtered
    once for all the batches. ``ms_ssim`` is None without ``multiscale``; with it, a side below
    :func:`ms_ssim_min_size` raises ``ValueError``.
    """
    batches, single = subjects(x, y)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    need = ms_ssim_min_size(window, len(betas)) if multiscale else window
    if min(y.shape[-2:]) < need:
        if multiscale:
            raise ValueError(
                f"MS-SSIM with {len(betas)} scales and an {window}-pixel window needs images of at least "
                f"{need}x{need} pixels, got {y.shape[-1]}x{y.shape[-2]}"
            )
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {y.shape[-1]}x{y.shape[-2]}")
    dtype = _compute_dtype(y)
    y = y.to(dtype)
    mean_y = y.mean(dim=(-2, -1), keepdim=True)
    channels_last = torch.channels_last  # what the filtering is fastest on (see _blur); kept down the pyramid
    v = (y - mean_y).contiguous(memory_format=channels_last)
    means = [b.to(dtype).mean(dim=(-2, -1), keepdim=True) for b in batches]
    us = [(b.to(dtype) - m).contiguous(memory_format=channels_last) for b, m in zip(batches, means)]
    kernel = _gaussian(window, dtype, y.device)
    ssim_value: list[Tensor] = []
    values: list[list[Tensor]] = []  # per scale, per batch
    for scale in range(len(betas) if multiscale else 1):
        if scale:
            v = torch.nn.functional.avg_pool2d(v, 2)
            us = [torch.nn.functional.avg_pool2d(u, 2) for u in us]
        ref = _blur(torch.cat([v, v * v], dim=1), kernel, padding)
        terms = [_scale_terms(u, m, v, mean_y, ref, kernel, padding) for u, m in zip(us, means)]
        if scale == 0:
            ssim_value = [t[0] for t in terms]
        values.append([t[1] if scale < len(betas) - 1 else t[0] for t in terms])
    ms_value = None
    if multiscale:
        stack = torch.stack([torch.stack(v) for v in values]).clamp_min(0)  # (scales, S, B)
        weights = torch.tensor(betas, dtype=stack.dtype, device=stack.device).view(-1, 1, 1)
        ms_value = _per_subject(list(stack.pow(weights).prod(dim=0)), single)
    return _per_subject(ssim_value, single), ms_value


def ssim(x: Batches, y: Tensor, window: int = SSIM_WINDOW) -> Tensor:
    """Mean SSIM per image (Gaussian window, valid region): ``(B, C, H, W)`` x2 -> ``(B,)``.

    Images in ``[0, 1]`` (data range 1); ``H`` and ``W`` at least ``window``. Float32 (float64
    for float64 input); see the module doc for the precision.

    >>> ssim(torch.ones(1, 1, 16, 16) * 0.5, torch.ones(1, 1, 16, 16) * 0.5)
    tensor([1.])
    """
    return ssim_ms_ssim(x, y, window, multiscale=False)[0]


def ms_ssim(
    x: Batches,
    y: Tensor,
    window: int = SSIM_WINDOW,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
    padding: str = "valid",
) -> Tensor:
    """Multi-scale SSIM per image: ``(B, C, H, W)`` x2 in ``[0, 1]`` -> ``(B,)`` (see the module doc).

    Raises ``ValueError`` if a side is below :func:`ms_ssim_min_size` (176 px for 5 scales).
    Float32 (float64 for float64 input).
    """
    return ssim_ms_ssim(x, y, window, betas, padding)[1]


def luminance(x: Tensor, quantize: bool = False) -> Tensor:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``: ``(..., 3, H, W)`` -> ``(..., 1, H, W)``.

    ``quantize``: round to 8 bits (``round(255 Y) / 255``), as pyiqa does before its SSIM.
    """
    import kornia

    y = kornia.color.rgb_to_grayscale(x.float())
    return (y * 255).round() / 255 if quantize else y
