"""What every training task shares: its optimisers."""

from __future__ import annotations

import torch

from clothes_extractor.train.task import optimizer


def test_optimizers_are_fused_only_where_every_parameter_is_on_cuda():
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    opt = optimizer(torch.optim.Adam, params, lr=1e-3, betas=(0.5, 0.999))
    assert not opt.defaults["fused"]  # the CPU keeps torch's default (foreach)
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["betas"] == (0.5, 0.999)
    assert opt.param_groups[0]["params"] == params
    w = optimizer(torch.optim.AdamW, iter(params), lr=0.1, weight_decay=0.01)  # any iterable, consumed once
    assert len(w.param_groups[0]["params"]) == 2 and w.defaults["weight_decay"] == 0.01
    if torch.cuda.is_available():
        cuda = [torch.nn.Parameter(torch.zeros(3, device="cuda"))]
        assert optimizer(torch.optim.Adam, cuda, lr=1e-3).defaults["fused"]
