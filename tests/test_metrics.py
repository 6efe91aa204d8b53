"""clothes_extractor.metrics against independent references (scikit-image, torchmetrics, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clothes_extractor import metrics as M

skimage_metrics = pytest.importorskip("skimage.metrics")


def _structured(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Images with edges, gradients and flat areas (closer to garments than noise)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    out = torch.empty(b, c, h, w)
    for i in range(b):
        for ch in range(c):
            f = 2 + 6 * torch.rand(1, generator=g).item()
            img = 0.5 + 0.3 * torch.sin(2 * math.pi * f * xx) * torch.cos(2 * math.pi * f * yy)
            r0, c0 = int(h * 0.2), int(w * 0.3)
            img[r0 : r0 + h // 3, c0 : c0 + w // 3] = torch.rand(1, generator=g).item()
            img[:, : w // 8] = 1.0  # a flat white margin
            out[i, ch] = img
    return out.clamp(0, 1)


def _pairs():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 48, 64, generator=g)
    yield "random", x, (0.6 * x + 0.4 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    s = _structured(2, 3, 72, 56)
    yield "structured", s, (s + 0.08 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    lum = _structured(2, 1, 40, 40, seed=3)
    yield "luminance", lum, torch.flip(lum, dims=[-1])
    yield "flat vs structure", torch.ones_like(s), s  # the white baseline's situation


def _np(img: torch.Tensor) -> np.ndarray:
    return img.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("case", list(_pairs()), ids=lambda c: c[0])
def test_ssim_matches_scikit_image(case):
    _, x, y = case
    ours = M.ssim(x, y)
    assert ours.shape == (x.shape[0],)
    for i in range(x.shape[0]):
        ref = skimage_metrics.structural_similarity(
            _np(x[i]), _np(y[i]), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1.0, channel_axis=2,
        )
        assert float(ours[i]) == pytest.approx(ref, abs=1e-3)


@pytest.mark.parametrize("case", list(_pairs()), ids=lambda c: c[0])
def test_psnr_and_l1_match_direct_computations(case):
    _, x, y = case
    ours = M.psnr(x, y)
    for i in range(x.shape[0]):
        ref = skimage_metrics.peak_signal_noise_ratio(_np(y[i]), _np(x[i]), data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-3)
        assert float(M.l1(x, y)[i]) == pytest.approx(np.abs(_np(x[i]) - _np(y[i])).mean(), abs=1e-6)


def _ms_cases():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 256, 256, generator=g)
    yield "random", x, (0.75 * x + 0.2 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    s = _structured(2, 3, 256, 256, seed=5)
    yield "structured", s, (s + 0.05 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    lum = _structured(1, 1, 256, 192, seed=7)
    yield "luminance 256x192", lum, (0.9 * lum + 0.05).clamp(0, 1)


@pytest.mark.parametrize("case", list(_ms_cases()), ids=lambda c: c[0])
def test_ms_ssim_same_padding_matches_torchmetrics(case):
    tm = pytest.importorskip("torchmetrics.functional.image")
    _, x, y = case
    ref = tm.multiscale_structural_similarity_index_measure(x.double(), y.double(), data_range=1.0, reduction="none")
    ours = M.ms_ssim(x, y, padding="same")
    assert torch.allclose(ours.double(), ref.double(), atol=1e-3), (ours, ref)


@pytest.mark.parametrize("case", list(_ms_cases()), ids=lambda c: c[0])
def test_ms_ssim_valid_padding_matches_its_definition(case):
    """Default MS-SSIM (all scales on the valid region): torchmetrics' contrast-structure at the
    four finer scales, scikit-image's SSIM at the coarsest, each clamped at 0, weighted product."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    _, x, y = case
    x, y = x.double(), y.double()
    ref = torch.ones(x.shape[0], dtype=torch.float64)
    for scale, beta in enumerate(M.MS_SSIM_BETAS):
        if scale:
            x, y = torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(y, 2)
        if scale < len(M.MS_SSIM_BETAS) - 1:
            _, cs = tm.structural_similarity_index_measure(
                x, y, data_range=1.0, reduction="none", return_contrast_sensitivity=True
            )
            term = cs
        else:
            term = torch.tensor([
                skimage_metrics.structural_similarity(
                    _np(a), _np(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                    data_range=1.0, channel_axis=2,
                ) for a, b in zip(x, y)
            ])
        ref = ref * term.clamp_min(0) ** beta
    ours = M.ms_ssim(*case[1:])
    assert torch.allclose(ours.double(), ref, atol=1e-3), (ours, ref)


def test_identical_images_score_perfectly():
    x = _structured(2, 3, 192, 192)
    assert torch.allclose(M.ssim(x, x).float(), torch.ones(2), atol=1e-6)
    assert torch.allclose(M.ms_ssim(x, x).float(), torch.ones(2), atol=1e-6)
    assert torch.allclose(M.ms_ssim(x, x, padding="same").float(), torch.ones(2), atol=1e-6)
    assert torch.isinf(M.psnr(x, x)).all()  # documented: not capped
    assert torch.equal(M.l1(x, x), torch.zeros(2))


def test_ms_ssim_refuses_images_too_small_for_five_scales():
    assert M.ms_ssim_min_size() == 176
    x = torch.rand(1, 3, 175, 256)
    with pytest.raises(ValueError, match="at least 176x176"):
        M.ms_ssim(x, x)
    M.ms_ssim(torch.rand(1, 1, 176, 176), torch.rand(1, 1, 176, 176))  # the smallest that works


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        M.ssim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 33))
    with pytest.raises(ValueError, match="same shape"):
        M.ssim(torch.rand(2, 3, 32, 32), torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="padding"):
        M.ms_ssim(torch.rand(1, 1, 176, 176), torch.rand(1, 1, 176, 176), padding="full")


def test_luminance_is_bt601_y():
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[0, 0, 0, 0] = 1  # red
    rgb[0, 1, 0, 1] = 1  # green
    rgb[0, 2, 1, 0] = 1  # blue
    rgb[0, :, 1, 1] = 1  # white
    y = M.luminance(rgb)
    assert y.shape == (1, 1, 2, 2)
    assert torch.allclose(y[0, 0], torch.tensor([[0.299, 0.587], [0.114, 1.0]]), atol=1e-6)
    q = M.luminance(rgb, quantize=True)
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)
    assert torch.allclose(q[0, 0, 0, 0], torch.tensor(round(0.299 * 255) / 255))


# --- the fast paths: float32, several batches against one reference, the reference once --------


def _garments(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    """RGB images like catalogue garments: a structured shape on exact white (1.0)."""
    img = _structured(b, 3, h, w, seed=seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    shape = (xx.abs() < 0.6) & (yy.abs() < 0.8)
    return torch.where(shape, img, torch.ones_like(img))


def _kornia_float64_ssim(x, y):
    """The previous SSIM: kornia's, float64."""
    import kornia

    return kornia.metrics.ssim(x.double(), y.double(), 11, max_val=1.0, eps=0.0, padding="valid").mean(dim=(1, 2, 3))


def test_float32_ssim_and_ms_ssim_stay_within_1e_5_of_float64():
    g = torch.Generator().manual_seed(4)
    y = _garments(1, 192, 176, seed=1)
    model = (0.85 * y + 0.1 * torch.rand(y.shape, generator=g)).clamp(0, 1)
    for x in (model, torch.ones_like(y), torch.flip(y, dims=[-1])):  # a prediction, the white baseline, a mismatch
        for lum in (False, True):
            a, b = (M.luminance(x, quantize=True), M.luminance(y, quantize=True)) if lum else (x, y)
            fast_ssim, fast_ms = M.ssim_ms_ssim(a, b)
            assert fast_ssim.dtype == torch.float32
            assert torch.allclose(fast_ssim.double(), _kornia_float64_ssim(a, b), atol=1e-5, rtol=0)
            assert torch.allclose(fast_ms.double(), M.ms_ssim(a.double(), b.double()), atol=1e-5, rtol=0)
            assert torch.allclose(M.ssim(a.double(), b.double()), _kornia_float64_ssim(a, b), atol=1e-12, rtol=0)


def test_several_batches_against_one_reference_equal_one_at_a_time():
    g = torch.Generator().manual_seed(5)
    y = _garments(2, 176, 176, seed=2)
    a = (y + 0.05 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    b = torch.rand(y.shape, generator=g)
    white = torch.ones(1, *y.shape[1:])  # one image for all: scored against each reference image
    fns = {"l1": M.l1, "psnr": M.psnr, "ssim": M.ssim, "ms_ssim": M.ms_ssim, **M.weight_free_metrics()}
    for name, fn in fns.items():
        together = fn([a, white, b], y)
        assert together.shape == (3, 2), name
        for k, x in enumerate((a, white.expand_as(y), b)):
            assert torch.allclose(together[k], fn(x, y), atol=1e-6, rtol=0), name
        assert torch.allclose(fn(torch.stack([a, b]), y), together[[0, 2]], atol=1e-6, rtol=0), name
    for wrong in (torch.cat([a, a[:1]]), a[..., :-1]):  # 3 images against 2; a narrower image
        with pytest.raises(ValueError, match="same shape"):
            M.l1([a, wrong], y)


@pytest.mark.parametrize("size", [(176, 176), (61, 45), (400, 390)], ids=lambda s: f"{s[1]}x{s[0]}")
def test_weight_free_metrics_equal_piq(size):
    """Also at odd sides (piq pads before halving) and past 384 px (FSIM pools 2x2 first)."""
    piq = pytest.importorskip("piq")
    h, w = size
    y = _garments(1 if min(size) > 256 else 2, h, w, seed=3)
    g = torch.Generator().manual_seed(6)
    xs = [(0.9 * y + 0.1 * torch.rand(y.shape, generator=g)).clamp(0, 1), torch.ones_like(y), torch.rand(y.shape, generator=g)]
    reference = {
        "haarpsi": lambda x: piq.haarpsi(x, y, data_range=1.0, reduction="none"),
        "ms_gmsd": lambda x: piq.multi_scale_gmsd(x, y, data_range=1.0, reduction="none", chromatic=False),
        "fsim": lambda x: piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=True),
    }
    if min(size) < 176:
        del reference["fsim"]  # its phase congruency is meant for larger images (both agree, but it is slow to check)
    for name, ref in reference.items():
        ours = M.weight_free_metrics()[name](xs, y)
        for k, x in enumerate(xs):
            assert torch.allclose(ours[k], ref(x), atol=1e-5, rtol=0), (name, k, ours[k], ref(x))


def test_lower_median_numpy_and_torch_paths_agree():
    from clothes_extractor.metrics.perceptual import lower_median

    t = torch.rand(3, 4, 1001)
    t[0, 0, :500] = 0.5  # ties
    for n in (1001, 1000):
        a, b = lower_median(t[..., :n], use_numpy=True), lower_median(t[..., :n], use_numpy=False)
        assert torch.equal(a, b) and torch.equal(a, t[..., :n].median(dim=-1).values)


def _pyiqa_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """pyiqa 0.1.14.1's ``ssim`` (``SSIM(test_y_channel=True)``), transcribed: Y of YIQ x255
    rounded, float64, MATLAB's fspecial window cast to float32, valid filtering, negative
    contrast-structure clamped at 0 per pixel."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    lx, ly = ((x.float() * weights).sum(1, keepdim=True) * 255).round().double(), ((y.float() * weights).sum(1, keepdim=True) * 255).round().double()
    r = torch.arange(11, dtype=torch.float64) - 5
    win = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    win = (win / win.sum()).float().double().view(1, 1, 11, 11)
    f = lambda t: torch.nn.functional.conv2d(t, win)  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(lx), f(ly)
    cs = torch.relu((2 * (f(lx * ly) - mx * my) + c2) / (f(lx * lx) - mx**2 + f(ly * ly) - my**2 + c2))
    return ((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs).mean(dim=(1, 2, 3))


def test_paper_ssim_equals_pyiqa_where_no_contrast_structure_is_negative():
    """The white baseline (no structure, so its contrast-structure is positive everywhere) and a
    prediction close to the target score as pyiqa 0.1.14.1's code does, to 0.01 on the x100
    scale. Where local structure is anti-correlated pyiqa clamps per pixel and ours does not
    (documented in clothes_extractor.evaluation.protocol)."""
    y = _garments(2, 192, 176, seed=8)
    close = (0.95 * y + 0.02).clamp(0, 1)
    for x in (torch.ones_like(y), close):
        ours = M.ssim(M.luminance(x, quantize=True), M.luminance(y, quantize=True)) * 100
        assert torch.allclose(ours.double(), _pyiqa_ssim(x, y) * 100, atol=0.01, rtol=0), (ours, _pyiqa_ssim(x, y) * 100)


# --- FID ------------------------------------------------------------------------------------------


def test_frechet_distance_one_dimensional_and_diagonal():
    # N(0, 1) vs N(2, 4): (0 - 2)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 5
    assert M.frechet_distance(torch.zeros(1), torch.ones(1, 1), torch.full((1,), 2.0), torch.full((1, 1), 4.0)) == pytest.approx(5.0)
    # diagonal: |mu1 - mu2|^2 = 1; traces 5 + 10; tr sqrt = sqrt(1 * 9) + sqrt(4 * 1) = 5 -> 1 + 15 - 10
    value = M.frechet_distance(
        torch.tensor([0.0, 1.0]), torch.diag(torch.tensor([1.0, 4.0])),
        torch.tensor([1.0, 1.0]), torch.diag(torch.tensor([9.0, 1.0])),
    )
    assert value == pytest.approx(6.0)
    sigma = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    assert M.frechet_distance(torch.ones(2), sigma, torch.ones(2), sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_scipy_on_full_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(40, 6, generator=g, dtype=torch.float64)
    s1, s2 = a.T @ a / 40, b.T @ b / 40 + 0.1 * torch.eye(6, dtype=torch.float64)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    covmean = linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    ref = float(((mu1 - mu2) ** 2).sum()) + float(s1.trace() + s2.trace()) - 2 * float(np.trace(covmean))
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def _tiny_feature_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    return net.eval().requires_grad_(False)


def test_fid_accumulator_with_an_injected_feature_network():
    net = _tiny_feature_net()
    g = torch.Generator().manual_seed(1)
    real = torch.rand(24, 3, 32, 32, generator=g)
    same = M.FIDAccumulator(net)
    for chunk in real.split(5):  # batches of uneven size accumulate like one
        same.update(chunk, real=True)
        same.update(chunk, real=False)
    assert same.compute() == pytest.approx(0.0, abs=1e-6)

    other_sample = M.FIDAccumulator(net)
    other_sample.update(real, real=True)
    other_sample.update(torch.rand(24, 3, 32, 32, generator=g), real=False)
    shifted = M.FIDAccumulator(net)
    shifted.update(real, real=True)
    shifted.update((torch.rand(24, 3, 32, 32, generator=g) * 0.5 + 0.5), real=False)
    assert shifted.compute() > other_sample.compute() > 0

    stats = M.FeatureStats()
    feats = net(real).double()
    stats.update(feats)
    mu, cov = stats.mean_cov()
    assert torch.allclose(mu, feats.mean(0)) and torch.allclose(cov, torch.cov(feats.T), atol=1e-9)


def test_fid_needs_two_images_per_side():
    fid = M.FIDAccumulator(_tiny_feature_net())
    fid.update(torch.rand(1, 3, 16, 16), real=True)
    fid.update(torch.rand(3, 3, 16, 16), real=False)
    with pytest.raises(ValueError, match="at least 2"):
        fid.compute()


def test_network_metrics_without_weights_are_listed_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    net = M.network_metrics("cpu")
    assert net.per_image == {} and net.fid_features is None
    assert set(net.not_computed) == {"lpips", "dists", "fid"}
    for entry in net.not_computed.values():
        d = entry.to_dict()
        assert d["status"] == "not computed" and d["how"]
    assert M.INCEPTION_FIDELITY_FILE in net.not_computed["fid"].how
    assert "torch-fidelity" in net.not_computed["fid"].how
    if "torchmetrics" in net.not_computed["lpips"].how:
        return  # torchmetrics absent: the message says to install it
    assert M.ALEXNET_FILE in net.not_computed["lpips"].how and str(tmp_path) in net.not_computed["lpips"].how
    assert M.VGG16_FILE in net.not_computed["dists"].how
    assert not list((tmp_path / "torch").rglob("*.pth"))  # nothing downloaded
