"""Weight-free perceptual metrics (piq's HaarPSI, MS-GMSD and FSIM), per image, with the
reference's share computed once for several batches scored against it.

Every function takes ``x``, one batch ``(B, 3, H, W)`` or several scored against the same
reference (:func:`clothes_extractor.metrics.image.subjects`), and ``y`` ``(B, 3, H, W)``, RGB
in ``[0, 1]``, and returns ``(B,)`` or ``(S, B)``, like :mod:`clothes_extractor.metrics.image`.

They compute what piq computes (``piq.fsim(chromatic=True)``, ``piq.haarpsi``,
``piq.multi_scale_gmsd(chromatic=False)``, all with ``data_range=1`` and their defaults), from
piq's own filters and similarity maps, equal to piq's values up to float32 rounding (tested to
1e-5), but without what piq repeats: its functions compute both images' features at every call,
so the target's would be computed once per subject, FSIM rebuilds its log-Gabor filter bank,
its inverse FFT and the noise sums derived from it (all independent of the images) at every
call, and HaarPSI and MS-GMSD convert and pool every YIQ channel where they use one or two.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from clothes_extractor.metrics.image import Batches, _per_subject, subjects

FSIM_SCALES, FSIM_ORIENTATIONS = 4, 4
_FSIM_K = 2.0  # noise threshold, standard deviations (piq's k)
_T1, _T2, _T3, _T4, _LAMBDA = 0.85, 160, 200, 200, 0.03  # FSIM's constants (piq, from the paper)
_HAAR_SCALES, _HAAR_C, _HAAR_ALPHA = 3, 30.0, 4.2  # piq.haarpsi's defaults
_GMSD_WEIGHTS, _GMSD_T, _GMSD_ALPHA = (0.096, 0.596, 0.289, 0.019), 170.0, 0.5  # piq.multi_scale_gmsd's


def _yiq(rgb: Tensor, channels: int = 3) -> Tensor:
    """The first ``channels`` of piq's YIQ (``rgb2yiq``) of ``(N, 3, H, W)``, same scale."""
    from piq.functional import rgb2yiq

    weights = rgb2yiq(torch.eye(3, dtype=rgb.dtype, device=rgb.device).view(3, 3, 1, 1)).transpose(0, 1)
    return F.conv2d(rgb, weights[:channels].contiguous())


def _half(t: Tensor) -> Tensor:
    """piq's 2x downsampling: zero padding below and right when a side is odd, 2x2 average."""
    pad = max(t.shape[-2] % 2, t.shape[-1] % 2)
    return F.avg_pool2d(F.pad(t, [0, pad, 0, pad]) if pad else t, kernel_size=2, stride=2)


def _haarpsi_features(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """HaarPSI's Haar responses ``(N, 6, h, w)`` (3 scales x 2 orientations, of the subsampled
    luminance) and the absolute 2x2 mean of I and Q ``(N, 2, h, w)``, of ``(N, 3, H, W)`` in [0, 1]."""
    from piq.functional import haar_filter

    yiq = _half(_yiq(rgb.float() * 255))
    coefficients = []
    for scale in range(_HAAR_SCALES):
        size = 2 ** (scale + 1)
        h = haar_filter(size, dtype=yiq.dtype, device=yiq.device)
        pad = [size // 2 - 1, size // 2, size // 2 - 1, size // 2]  # MATLAB's conv2(.., 'same')
        coefficients.append(F.conv2d(F.pad(yiq[:, :1], pad), torch.stack([h, h.transpose(-1, -2)])))
    iq = F.avg_pool2d(F.pad(yiq[:, 1:], [0, 1, 0, 1]), kernel_size=2, stride=1).abs()
    return torch.cat(coefficients, dim=1), iq


def haarpsi(x: Batches, y: Tensor) -> Tensor:
    """piq's HaarPSI per image (higher is better): ``haarpsi(data_range=1)``, 3 scales, subsampled."""
    from piq.functional import similarity_map

    xs, single = subjects(x, y)
    coeff_y, iq_y = _haarpsi_features(y)
    out = []
    for batch in xs:
        coeff_x, iq_x = _haarpsi_features(batch)
        weights = torch.max(coeff_x[:, 4:].abs(), coeff_y[:, 4:].abs())
        sim = [
            similarity_map(coeff_x[:, (o, o + 2)].abs(), coeff_y[:, (o, o + 2)].abs(), constant=_HAAR_C).sum(dim=1, keepdim=True) / 2
            for o in range(2)
        ]
        sim.append(similarity_map(iq_x, iq_y, constant=_HAAR_C).sum(dim=1, keepdim=True) / 2)
        weights = torch.cat([weights, weights.mean(dim=1, keepdim=True)], dim=1)
        sim_map = torch.cat(sim, dim=1)
        eps = torch.finfo(sim_map.dtype).eps
        value = (((sim_map * _HAAR_ALPHA).sigmoid() * weights).sum(dim=[1, 2, 3]) + eps) / (weights.sum(dim=[1, 2, 3]) + eps)
        out.append((torch.log(value / (1 - value)) / _HAAR_ALPHA) ** 2)
    return _per_subject(out, single)


def _gmsd_pyramid(rgb: Tensor) -> list[Tensor]:
    """MS-GMSD's luminance (x255) at its 4 scales, as gradient magnitudes (Prewitt)."""
    from piq.functional import gradient_map, prewitt_filter

    lum = _yiq(rgb.float() * 255, channels=1)
    prewitt = prewitt_filter(dtype=lum.dtype, device=lum.device)
    kernels = torch.stack([prewitt, prewitt.transpose(-1, -2)])
    out = []
    for scale in range(len(_GMSD_WEIGHTS)):
        if scale:
            lum = _half(lum)
        out.append(gradient_map(lum, kernels))
    return out


def ms_gmsd(x: Batches, y: Tensor) -> Tensor:
    """piq's multi-scale GMSD on luminance per image (lower is better):
    ``multi_scale_gmsd(data_range=1, chromatic=False)``."""
    from piq.functional import similarity_map

    xs, single = subjects(x, y)
    grad_y = _gmsd_pyramid(y)
    weights = torch.tensor(_GMSD_WEIGHTS, dtype=grad_y[0].dtype, device=grad_y[0].device)
    out = []
    for batch in xs:
        per_scale = []
        for gx, gy in zip(_gmsd_pyramid(batch), grad_y):
            gms = similarity_map(gx, gy, constant=_GMSD_T, alpha=_GMSD_ALPHA)
            per_scale.append((gms - gms.mean(dim=[1, 2, 3], keepdim=True)).pow(2).mean(dim=[1, 2, 3]).sqrt())
        out.append(torch.sqrt((weights.view(1, -1) * torch.stack(per_scale, dim=1) ** 2).sum(dim=1)))
    return _per_subject(out, single)


@functools.lru_cache(maxsize=8)
def _fsim_bank(h: int, w: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The log-Gabor bank of piq's FSIM at ``h`` x ``w`` ``(O * S, H, W)`` (orientation-major),
    and per orientation ``(O, 1)`` the two noise terms piq's phase congruency derives from it:
    the mean squared filter value at the finest scale, and the factor turning the noise power
    into the expected noise energy squared (``2 sum An^2 + 4 sum Ai Aj`` of the spatial filters)."""
    from piq.fsim import _construct_filters

    probe = torch.empty(1, 1, h, w, dtype=dtype, device=device)
    filters = _construct_filters(probe, FSIM_SCALES, FSIM_ORIENTATIONS, 6, 2, 0.55, 1.2)[0]
    spatial = (torch.fft.ifft2(filters).real * math.sqrt(h * w)).view(FSIM_ORIENTATIONS, FSIM_SCALES, h, w)
    sum_an2 = spatial.square().sum(dim=(1, 2, 3))
    sum_ai_aj = torch.zeros_like(sum_an2)
    for s in range(FSIM_SCALES - 1):
        sum_ai_aj = sum_ai_aj + (spatial[:, s : s + 1] * spatial[:, s + 1 :]).sum(dim=(1, 2, 3))
    em_n = filters.view(FSIM_ORIENTATIONS, FSIM_SCALES, h, w)[:, 0].square().sum(dim=(-2, -1))
    return filters, em_n.view(-1, 1), (2 * sum_an2 + 4 * sum_ai_aj).view(-1, 1)


def lower_median(t: Tensor, use_numpy: bool | None = None) -> Tensor:
    """``t.median(dim=-1).values`` (the lower median): by numpy's introselect on the CPU (twice
    as fast as torch's), by torch elsewhere (``use_numpy`` forces either; both are tested)."""
    if use_numpy is None:
        use_numpy = t.device.type == "cpu"
    if not use_numpy:
        return t.median(dim=-1).values
    k = (t.shape[-1] - 1) // 2
    values = t.detach().contiguous().numpy()
    return torch.from_numpy(np.partition(values, k, axis=-1)[..., k].copy())


def phase_congruency(lum: Tensor) -> Tensor:
    """piq's phase congruency (``fsim._phase_congruency`` with its defaults) of ``(N, 1, H, W)``
    luminance in ``[0, 255]`` -> ``(N, 1, H, W)``, the filter bank built once per size.

    The same arithmetic on the complex responses instead of their (re, im) pairs: amplitudes
    ``sqrt(re^2 + im^2)``; the energy's sum over scales of ``re . mean`` taken from the sum of
    the responses (one plane per orientation instead of one per scale and orientation).
    """
    eps = torch.finfo(lum.dtype).eps
    n, _, h, w = lum.shape
    filters, em_n, noise_factor = _fsim_bank(h, w, lum.dtype, lum.device)
    eo = torch.fft.ifft2(torch.fft.fft2(lum) * filters).view(n, FSIM_ORIENTATIONS, FSIM_SCALES, h, w)
    an = (eo.real.square() + eo.imag.square()).sqrt()  # amplitude of the even and odd responses
    sum_eo = eo.sum(dim=2, keepdim=True)
    norm = (sum_eo.real.square() + sum_eo.imag.square()).sqrt() + eps
    mean_phase = sum_eo / norm  # weighted mean phase angle (unit vector)
    # sum over scales of An (cos(phase deviation) - |sin(phase deviation)|): the cosine part is
    # the sum of the responses projected on the mean phase
    energy = ((sum_eo * mean_phase.conj()).real - (eo * mean_phase.conj()).imag.abs().sum(dim=2, keepdim=True))[:, :, 0]
    # Noise: the median squared response at the finest scale gives the noise power (Rayleigh);
    # the median of the amplitudes, squared, is that element's square
    median_e2n = lower_median(an[:, :, 0].flatten(2)).square()  # (N, O)
    noise_power = -median_e2n / math.log(0.5) / em_n.view(1, -1)
    tau = torch.sqrt(noise_power * noise_factor.view(1, -1) / 2)
    threshold = (tau * math.sqrt(math.pi / 2) + _FSIM_K * torch.sqrt((2 - math.pi / 2) * tau**2)) / 1.7
    energy = (energy - threshold[..., None, None]).clamp_min(0)
    return ((energy.sum(dim=1) + eps) / (an.sum(dim=(1, 2)) + eps)).unsqueeze(1)


class _FsimFeatures:
    """What FSIM compares of a batch ``(N, 3, H, W)`` in ``[0, 1]``: YIQ, phase congruency and
    gradient magnitude of the luminance, after piq's rescaling and average pooling."""

    def __init__(self, rgb: Tensor) -> None:
        from piq.functional import gradient_map, scharr_filter

        img = rgb.float() * 255
        kernel_size = max(1, round(min(img.shape[-2:]) / 256))
        if kernel_size > 1:
            img = F.avg_pool2d(img, kernel_size)
        self.yiq = _yiq(img)
        lum = self.yiq[:, :1]
        self.pc = phase_congruency(lum)
        scharr = scharr_filter(device=img.device, dtype=img.dtype)
        self.gradient = gradient_map(lum, torch.stack([scharr, scharr.transpose(-1, -2)]))


def _fsim_score(a: _FsimFeatures, b: _FsimFeatures) -> Tensor:
    """piq's FSIMc from the features of ``x`` and ``y`` (broadcastable batches)."""
    from piq.functional import similarity_map

    pc = similarity_map(a.pc, b.pc, _T1)
    gm = similarity_map(a.gradient, b.gradient, _T2)
    pc_max = torch.where(a.pc > b.pc, a.pc, b.pc)
    score = gm * pc * pc_max
    s_i = similarity_map(a.yiq[:, 1:2], b.yiq[:, 1:2], _T3)
    s_q = similarity_map(a.yiq[:, 2:], b.yiq[:, 2:], _T4)
    score = score * torch.abs(s_i * s_q) ** _LAMBDA
    return score.sum(dim=[1, 2, 3]) / pc_max.sum(dim=[1, 2, 3])


def fsim(x: Batches, y: Tensor) -> Tensor:
    """piq's FSIMc per image (higher is better); see the module doc."""
    xs, single = subjects(x, y)
    ref = _FsimFeatures(y)
    out = [_fsim_score(_FsimFeatures(batch), ref) for batch in xs]
    return _per_subject(out, single)


def weight_free_metrics() -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """piq's weight-free perceptual metrics, per image, for (B, 3, H, W) (or (S, B, 3, H, W)
    against (B, 3, H, W)) in [0, 1]: HaarPSI and FSIM (higher is better) and MS-GMSD (lower is
    better).

    Unlike SSIM, which a blurred average already scores well on, these compare edges and
    local structure (Haar wavelet, phase congruency and gradient-magnitude similarity), so they
    see what blur loses; they need no network weights, so they run where LPIPS cannot.
    """
    return {"haarpsi": haarpsi, "ms_gmsd": ms_gmsd, "fsim": fsim}
