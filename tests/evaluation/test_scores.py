"""evaluate's scoring of all subjects at once equals each metric applied to each subject alone,
whatever the chunk size (the CPU's few images at a time, a GPU's whole batch)."""

from __future__ import annotations

import pytest
import torch

from clothes_extractor import metrics as M
from clothes_extractor.evaluation.scores import images_per_chunk, score


def _batch(b: int = 2, h: int = 176, w: int = 176) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(b, 3, h, w, generator=g)
    target[..., : w // 4] = 1.0  # white margins
    subjects = {
        "model": (0.8 * target + 0.2 * torch.rand(target.shape, generator=g)).clamp(0, 1),
        "white": torch.ones_like(target),  # the same image for every sample: scored from one
        "input": torch.rand(target.shape, generator=g),
    }
    return subjects, target


@pytest.mark.parametrize("protocol", ["native", "paper"])
def test_score_equals_each_metric_on_each_subject(protocol):
    subjects, target = _batch()
    network = M.NetworkMetrics(per_image={"lpips": M.l1})  # a stand-in network metric
    results = {chunk: score(protocol, subjects, target, network, chunk=chunk) for chunk in (1, 2)}  # 2: the whole batch, as on a GPU
    for name, x in subjects.items():
        if protocol == "paper":
            lx, ly = M.luminance(x, quantize=True), M.luminance(target, quantize=True)
            expected = {"ssim": M.ssim(lx, ly) * 100, "ms_ssim": M.ms_ssim(lx, ly) * 100}
        else:
            expected = {"ssim": M.ssim(x, target), "ms_ssim": M.ms_ssim(x, target)}
        expected.update(l1=M.l1(x, target), psnr=M.psnr(x, target), lpips=M.l1(x, target))
        expected.update({m: fn(x, target) for m, fn in M.weight_free_metrics().items()})
        for chunk, got in results.items():
            assert set(got[name]) == set(expected)
            for metric, value in expected.items():
                assert got[name][metric].shape == (2,)
                assert torch.allclose(got[name][metric], value.float(), atol=1e-5, rtol=0), (chunk, name, metric)


def test_small_images_have_no_ms_ssim_and_chunks_follow_the_device():
    subjects, target = _batch(h=64, w=48)
    got = score("native", subjects, target, M.NetworkMetrics())
    assert got["model"]["ms_ssim"] is None and got["model"]["ssim"].shape == (2,)
    assert images_per_chunk(torch.zeros(16, 3, 256, 192)) == 4
    assert images_per_chunk(torch.zeros(16, 3, 1024, 768)) == 1
    assert images_per_chunk(torch.zeros(2, 3, 64, 48)) == 2
    assert images_per_chunk(torch.zeros(16, 3, 256, 192, device="meta")) == 16  # off the CPU: the whole batch
