"""Losses: minimum at identity, symmetry, gradients, function == module, hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from clothes_extractor import losses
from clothes_extractor.errors import ConfigError, WeightsUnavailableError
from clothes_extractor.losses import (
    AlphaLoss,
    GANLoss,
    L1Loss,
    PerceptualLoss,
    SSIMLoss,
    VGG16Features,
    alpha_loss,
    gan_loss,
    l1_loss,
    perceptual_loss,
    ssim_loss,
)


def images(seed: int, shape=(2, 3, 32, 32)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def perceptual() -> PerceptualLoss:
    torch.manual_seed(0)
    return PerceptualLoss(pretrained=False)


# The three image losses, as (function, module) pairs with their default arguments.
@pytest.fixture(params=["l1", "ssim", "perceptual"])
def image_loss(request, perceptual):
    if request.param == "l1":
        return l1_loss, L1Loss()
    if request.param == "ssim":
        return ssim_loss, SSIMLoss()
    return (lambda p, t: perceptual_loss(p, t, perceptual.vgg)), perceptual


# ---------------------------------------------------------------------- common properties


def test_zero_for_identical_images(image_loss):
    fn, module = image_loss
    x = images(0)
    assert fn(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert module(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_positive_and_symmetric(image_loss):
    fn, _ = image_loss
    a, b = images(1), images(2)
    ab, ba = fn(a, b), fn(b, a)
    assert ab.item() > 0
    assert ab.item() == pytest.approx(ba.item(), rel=1e-5)


def test_function_and_module_agree(image_loss):
    fn, module = image_loss
    a, b = images(3), images(4)
    assert torch.allclose(fn(a, b), module(a, b))


def test_gradients_flow_to_pred(image_loss):
    fn, _ = image_loss
    pred = images(5).requires_grad_(True)
    loss = fn(pred, images(6))
    assert loss.ndim == 0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_shape_mismatch_is_a_clear_error(image_loss):
    fn, _ = image_loss
    with pytest.raises(ValueError, match="same shape"):
        fn(images(0), images(0, shape=(2, 3, 32, 64)))


# ---------------------------------------------------------------------- L1


def test_l1_by_hand():
    pred = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])
    target = torch.tensor([[[[1.0, 1.0], [1.0, -0.5]]]])
    assert l1_loss(pred, target).item() == pytest.approx((1 + 0 + 2 + 1) / 4)


# ---------------------------------------------------------------------- SSIM


def test_ssim_is_kornias_half_dissimilarity_on_unit_range():
    import kornia

    a, b = images(7), images(8)
    expected = kornia.losses.ssim_loss((a + 1) / 2, (b + 1) / 2, 11, max_val=1.0)
    assert torch.allclose(ssim_loss(a, b), expected)
    ssim = kornia.metrics.ssim((a + 1) / 2, (b + 1) / 2, 11, max_val=1.0).mean()
    assert ssim_loss(a, b).item() == pytest.approx(((1 - ssim) / 2).item(), rel=1e-5)  # (1 - SSIM) / 2


@pytest.mark.parametrize(
    ("shape", "window", "dtype", "target_requires_grad"),
    [((2, 3, 32, 32), 11, torch.float32, False), ((3, 3, 40, 24), 5, torch.float32, True), ((1, 1, 17, 23), 11, torch.float64, False)],
)
def test_ssim_equals_kornia_with_its_gradients(shape, window, dtype, target_requires_grad):
    """The fast path (pred's moments in one filter call, the target's without a graph) against
    the straightforward definition: kornia.losses.ssim_loss on [0, 1] images."""
    import kornia

    pred0, target0 = images(30, shape).to(dtype), images(31, shape).to(dtype)
    pred_a, target_a = pred0.clone().requires_grad_(True), target0.clone().requires_grad_(target_requires_grad)
    pred_b, target_b = pred0.clone().requires_grad_(True), target0.clone().requires_grad_(target_requires_grad)
    fast = ssim_loss(pred_a, target_a, window)
    reference = kornia.losses.ssim_loss((pred_b + 1) / 2, (target_b + 1) / 2, window, max_val=1.0)
    assert fast.dtype == reference.dtype == dtype
    assert fast.item() == pytest.approx(reference.item(), rel=1e-6, abs=1e-7)
    fast.backward()
    reference.backward()
    assert torch.allclose(pred_a.grad, pred_b.grad, rtol=1e-5, atol=1e-10)
    if target_requires_grad:
        assert torch.allclose(target_a.grad, target_b.grad, rtol=1e-5, atol=1e-10)
    with torch.no_grad():  # validation calls it without a graph
        assert ssim_loss(pred0, target0, window).item() == pytest.approx(reference.item(), rel=1e-6, abs=1e-7)


def test_ssim_of_a_different_image_is_positive_and_bounded():
    a = images(9)
    value = ssim_loss(a, -a).item()  # negatively correlated: SSIM < 0
    assert 0.5 < value <= 1.0
    assert 0 < ssim_loss(a, images(10)).item() < 1


def test_ssim_window_size_must_be_odd():
    with pytest.raises(ValueError, match="odd"):
        ssim_loss(images(0), images(1), window_size=4)


# ---------------------------------------------------------------------- perceptual


def test_perceptual_vgg_is_frozen_and_truncated(perceptual):
    assert all(not p.requires_grad for p in perceptual.parameters())
    assert len(perceptual.vgg.features) == 23  # up to and including relu4_3
    feats = perceptual.vgg(images(0))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4)]
    assert all((f >= 0).all() for f in feats)  # taken after the ReLUs


def test_perceptual_stays_in_eval_mode(perceptual):
    perceptual.train()
    assert not perceptual.vgg.training and not any(m.training for m in perceptual.vgg.modules())
    container = torch.nn.ModuleDict({"loss": perceptual}).train(True)
    assert not perceptual.vgg.training
    container.eval()


def test_perceptual_normalises_with_imagenet_statistics(perceptual):
    x = images(11)
    h = ((x + 1) / 2 - torch.tensor(losses.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(losses.IMAGENET_STD).view(1, 3, 1, 1)
    expected = perceptual.vgg.features[:4](h)
    assert torch.allclose(perceptual.vgg(x)[0], expected, atol=1e-6)


def test_perceptual_is_the_mean_over_layers_of_feature_l1(perceptual):
    a, b = images(12), images(13)
    fa, fb = perceptual.vgg(a), perceptual.vgg(b)
    expected = sum(F.l1_loss(x, y) for x, y in zip(fa, fb)) / 4
    assert perceptual(a, b).item() == pytest.approx(expected.item(), rel=1e-5)


def _perceptual_reference(pred: torch.Tensor, target: torch.Tensor, vgg: VGG16Features) -> torch.Tensor:
    """The definition the fast path must equal: both images in one batch, with a graph for
    both, through a copy of the VGG whose ReLUs are not in place."""
    import copy

    features = copy.deepcopy(vgg.features)
    for m in features:
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    B = pred.shape[0]
    h = ((torch.cat([pred, target]) + 1) / 2 - vgg.mean) / vgg.std
    out = []
    for i, layer in enumerate(features):
        h = layer(h)
        if i in vgg.layer_indices:
            out.append(h)
    return torch.stack([F.l1_loss(f[:B], f[B:]) for f in out]).mean()


@pytest.mark.parametrize("target_requires_grad", [False, True])
def test_perceptual_equals_the_one_batch_definition_with_its_gradients(perceptual, target_requires_grad):
    pred0, target0 = images(20, shape=(3, 3, 48, 40)), images(21, shape=(3, 3, 48, 40))
    pred_a, target_a = pred0.clone().requires_grad_(True), target0.clone().requires_grad_(target_requires_grad)
    pred_b, target_b = pred0.clone().requires_grad_(True), target0.clone().requires_grad_(target_requires_grad)
    fast = perceptual(pred_a, target_a)
    reference = _perceptual_reference(pred_b, target_b, perceptual.vgg)
    assert fast.item() == pytest.approx(reference.item(), rel=1e-6, abs=1e-7)
    fast.backward()
    reference.backward()
    assert torch.allclose(pred_a.grad, pred_b.grad, rtol=1e-5, atol=1e-9)
    if target_requires_grad:  # a target with a graph keeps it (the loss is symmetric)
        assert torch.allclose(target_a.grad, target_b.grad, rtol=1e-5, atol=1e-9)
    assert pred0.equal(pred_a.detach()) and target0.equal(target_a.detach())  # inputs never overwritten


def test_perceptual_records_no_graph_for_the_target(perceptual):
    """The point of the fast path: VGG sees the target without a graph, so the backward pass
    runs through it for pred only."""
    calls = []
    hook = perceptual.vgg.register_forward_hook(lambda m, args, out: calls.append((args[0].shape[0], [f.requires_grad for f in out])))
    try:
        perceptual(images(22).requires_grad_(True), images(23))
    finally:
        hook.remove()
    assert calls == [(2, [True] * 4), (2, [False] * 4)]


def test_perceptual_relus_are_in_place_but_features_survive(perceptual):
    assert all(m.inplace for m in perceptual.vgg.features if isinstance(m, torch.nn.ReLU))
    x = images(24)
    feats = perceptual.vgg(x)
    h = ((x + 1) / 2 - perceptual.vgg.mean) / perceptual.vgg.std
    for i, layer in enumerate(perceptual.vgg.features):
        h = layer(h.clone())
        if i in perceptual.vgg.layer_indices:
            assert torch.equal(feats[perceptual.vgg.layer_indices.index(i)], h)


def test_perceptual_buffers_move_with_to():
    loss = PerceptualLoss(pretrained=False).to(torch.float64)
    assert loss.vgg.mean.dtype == torch.float64 and loss.vgg.std.dtype == torch.float64
    assert loss(images(0).double(), images(1).double()).dtype == torch.float64
    assert "vgg.mean" not in loss.state_dict()  # constants, not weights


def test_perceptual_pretrained_without_the_file_says_how_to_fix(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(WeightsUnavailableError, match="vgg16-397923af.pth.*--perceptual 0"):
        PerceptualLoss(pretrained=True)


def test_vgg16_features_take_rgb_only():
    with pytest.raises(ValueError, match="3-channel"):
        VGG16Features(pretrained=False)(torch.zeros(1, 1, 32, 32))


# ---------------------------------------------------------------------- GAN


@pytest.mark.parametrize("real", [True, False])
def test_vanilla_gan_at_logit_zero_is_log2(real):
    assert gan_loss(torch.zeros(2, 1, 6, 6), real, "vanilla").item() == pytest.approx(math.log(2))


def test_vanilla_gan_by_hand():
    logits = torch.tensor([2.0, -1.0])
    real = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2  # -log sigmoid(x)
    fake = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(-1.0))) / 2  # -log(1 - sigmoid(x))
    assert gan_loss(logits, True).item() == pytest.approx(real, rel=1e-6)
    assert gan_loss(logits, False).item() == pytest.approx(fake, rel=1e-6)


def test_lsgan_values():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    assert gan_loss(logits, True, "lsgan").item() == pytest.approx((1 + 0 + 1 + 4) / 4)
    assert gan_loss(logits, False, "lsgan").item() == pytest.approx((0 + 1 + 4 + 1) / 4)
    assert gan_loss(torch.ones(3), True, "lsgan").item() == 0
    assert gan_loss(torch.zeros(3), False, "lsgan").item() == 0


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_gan_function_and_module_agree_and_gradients_flow(mode):
    logits = torch.randn(2, 1, 6, 6, requires_grad=True)
    for real in (True, False):
        assert torch.equal(GANLoss(mode=mode)(logits, real), gan_loss(logits, real, mode))
    gan_loss(logits, True, mode).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_gan_default_mode_is_vanilla():
    logits = torch.randn(4)
    assert torch.equal(GANLoss()(logits, True), gan_loss(logits, True))
    assert GANLoss().mode == "vanilla"


def test_unknown_gan_mode_lists_modes():
    with pytest.raises(ConfigError, match="vanilla, lsgan"):
        gan_loss(torch.zeros(1), True, "wgan")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="vanilla, lsgan"):
        GANLoss(mode="hinge")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- alpha


def test_alpha_bce_by_hand():
    logit = torch.tensor([[[[0.0, 2.0]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    expected = (math.log(2) + math.log1p(math.exp(2.0))) / 2
    assert alpha_loss(logit, mask).item() == pytest.approx(expected, rel=1e-6)


def test_alpha_minimum_on_a_binary_mask():
    mask = (images(14, shape=(2, 1, 16, 16)) > 0).float()
    confident = (mask * 2 - 1) * 30  # logits of +-30 on the right side
    assert alpha_loss(confident, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert alpha_loss(-confident, mask).item() > 10


def test_alpha_function_module_and_gradients():
    logit = torch.randn(2, 1, 16, 16, requires_grad=True)
    mask = torch.rand(2, 1, 16, 16)
    assert torch.equal(AlphaLoss()(logit, mask), alpha_loss(logit, mask))
    alpha_loss(logit, mask).backward()
    assert torch.isfinite(logit.grad).all() and logit.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="alpha_logit and mask"):
        alpha_loss(logit, mask[:, :, :8])
