"""BatchAugment: paired flip/rotation/zoom of whole batches with kornia, one draw per sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import VitonDataset, to_tensor, to_uint8
from clothes_extractor.data.gpu_augment import BatchAugment, augment_batch, draw_params, params_tensor
from clothes_extractor.data.transforms import AugmentConfig, AugmentParams, augment

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def _batch(b=4, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    y = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    a = torch.rand(b, 1, h, w, generator=g)
    return x, y, a


def test_identity_config_returns_the_inputs_unchanged():
    x, y, a = _batch()
    out = BatchAugment(AugmentConfig(flip=0, rotate=0, zoom=0))(x, y, a)
    for got, want in zip(out, (x, y, a)):
        assert torch.equal(got, want)
    # Explicit parameters that do nothing: exact too (no resampling).
    out = augment_batch(x, y, a, params_tensor([AugmentParams(False, 0.0, 1.0)] * 4))
    for got, want in zip(out, (x, y, a)):
        assert torch.equal(got, want)


def test_flip_p1_equals_torch_flip_on_all_three():
    x, y, a = _batch()
    out = BatchAugment(AugmentConfig(flip=1.0, rotate=0, zoom=0))(x, y, a)
    for got, want in zip(out, (x, y, a)):
        assert torch.equal(got, torch.flip(want, dims=[-1]))


def test_flip_is_chosen_per_sample():
    x, y, a = _batch(b=3)
    params = torch.tensor([[1.0, 0, 1], [0.0, 0, 1], [1.0, 0, 1]])
    ox, oy, oa = augment_batch(x, y, a, params)
    assert torch.equal(ox[0], x[0].flip(-1)) and torch.equal(ox[1], x[1]) and torch.equal(oa[2], a[2].flip(-1))
    assert torch.equal(oy[1], y[1])


def test_one_draw_per_sample_shared_by_input_target_and_alpha():
    x, _, _ = _batch(b=8)
    x[4:] = x[0]  # identical samples: their draws differ, so their outputs do
    alpha = (x[:, :1] + 1) / 2  # alpha = the input's red channel, in [0, 1]
    aug = BatchAugment(AugmentConfig(flip=0.5, rotate=30, zoom=0.2), BLACK, generator=torch.Generator().manual_seed(1))
    ox, oy, oa = aug(x, x.clone(), alpha)
    assert torch.equal(ox, oy)  # the target moved exactly as the input
    # With a black background (-1) the input's red channel is warped as 2 * alpha - 1.
    torch.testing.assert_close((ox[:, :1] + 1) / 2, oa, atol=1e-6, rtol=0)
    assert not torch.allclose(ox[4], ox[5]) and not torch.allclose(ox[0], ox[4])


def test_fill_is_the_background_outside_the_image():
    b, h, w = 2, 40, 40
    x = torch.full((b, 3, h, w), 0.2)
    a = torch.ones(b, 1, h, w)
    params = torch.tensor([[0.0, 45.0, 0.5], [1.0, -30.0, 0.6]])  # zoom out and turn: corners come from outside
    for bg in (WHITE, BLACK, (10, 200, 30)):
        ox, oy, oa = augment_batch(x, x.clone(), a, params, bg)
        want = torch.tensor(bg, dtype=torch.float32) / 127.5 - 1
        for out in (ox, oy):
            torch.testing.assert_close(out[:, :, 0, 0], want.expand(b, 3), atol=1e-6, rtol=0)
            torch.testing.assert_close(out[:, :, -1, -1], want.expand(b, 3), atol=1e-6, rtol=0)
            torch.testing.assert_close(out[:, :, h // 2, w // 2], torch.full((b, 3), 0.2), atol=1e-6, rtol=0)
        assert oa[:, 0, 0, 0].tolist() == [0.0, 0.0] and torch.allclose(oa[:, 0, h // 2, w // 2], torch.ones(b))


def test_seeded_reproducibility():
    x, y, a = _batch(b=6)
    cfg = AugmentConfig(flip=0.5, rotate=10, zoom=0.1)
    run = lambda seed: BatchAugment(cfg, generator=torch.Generator().manual_seed(seed))(x, y, a)  # noqa: E731
    first, second, other = run(7), run(7), run(8)
    for p, q in zip(first, second):
        assert torch.equal(p, q)
    assert not torch.equal(first[0], other[0])
    aug = BatchAugment(cfg)  # the global RNG
    torch.manual_seed(3)
    g1 = aug(x, y, a)
    torch.manual_seed(3)
    g2 = aug(x, y, a)
    assert all(torch.equal(p, q) for p, q in zip(g1, g2))


def test_draw_params_follow_augment_params_draw():
    cfg = AugmentConfig(flip=0.3, rotate=5, zoom=0.05)
    params = draw_params(cfg, 5, torch.Generator().manual_seed(0))
    u = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    for row, uu in zip(params, u.tolist()):
        p = AugmentParams.draw(cfg, tuple(uu))
        assert row.tolist() == pytest.approx([float(p.flip), p.angle, p.scale], abs=1e-6)
    assert params[:, 1].abs().max() <= 5 and (params[:, 2] - 1).abs().max() <= 0.05


@pytest.mark.parametrize("p", [AugmentParams(False, 10.0, 1.0), AugmentParams(True, -7.0, 0.9), AugmentParams(False, 0.0, 1.1)])
def test_same_geometry_as_the_per_sample_pil_augmentation(synthetic_root, p):
    """Direction of rotation, centre, zoom and fill agree with transforms.augment (PIL)."""
    ds = VitonDataset(synthetic_root, "train", ["00001_00"], PreprocessConfig(size=(64, 96)))
    x, y, alpha = ds.arrays(0)
    out = augment_batch(to_tensor(x)[None], to_tensor(y)[None], to_tensor(alpha)[None], params_tensor([p]), WHITE)
    for got, ref in zip(out, (augment(x, p, WHITE), augment(y, p, WHITE), augment(alpha, p, 0))):
        diff = np.abs(to_uint8(got[0]).astype(int) - ref.astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.5


def test_errors_say_what_was_expected():
    x, y, a = _batch()
    with pytest.raises(ValueError, match=r"alpha \(B, 1, H, W\)"):
        augment_batch(x, y, a.expand(4, 3, 32, 48), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"params must be \(B, 3\)"):
        augment_batch(x, y, a, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="0 <= zoom < 1"):
        BatchAugment(AugmentConfig(zoom=1.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    x, y, a = _batch(b=4, h=64, w=64)
    params = draw_params(AugmentConfig(flip=0.5, rotate=10, zoom=0.1), 4, torch.Generator().manual_seed(0))
    cpu = augment_batch(x, y, a, params)
    gpu = augment_batch(x.cuda(), y.cuda(), a.cuda(), params)
    for p, q in zip(cpu, gpu):
        assert q.is_cuda
        torch.testing.assert_close(q.cpu(), p, atol=1e-4, rtol=0)
