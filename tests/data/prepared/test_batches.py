"""The batch path of a prepared cache (data/prepared/batches.py): whole uint8 batches, and the
same floats as the per-item path once on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.data.prepared import PreparedDataset, batch_loader, batch_to_device, to_model_range
from tests.data.prepared.cases import GOOD


def test_uint8_batch_has_the_right_ids_and_values(synthetic_cache):
    ds = PreparedDataset(synthetic_cache)
    batch = ds.uint8_batch([5, 0, 3])
    assert batch["id"] == [GOOD[0], GOOD[3], GOOD[5]] and batch["index"].tolist() == [0, 3, 5]
    assert batch["input"].shape == (3, 64, 96, 3) and batch["alpha"].shape == (3, 64, 96)
    assert batch["input"].dtype == torch.uint8
    for row, i in enumerate((0, 3, 5)):
        x, y, alpha = ds.arrays(i)
        assert np.array_equal(batch["input"][row].numpy(), x)
        assert np.array_equal(batch["target"][row].numpy(), y)
        assert np.array_equal(batch["alpha"][row].numpy(), alpha)
    # On the device: exactly the floats of the per-item path.
    model = batch_to_device(batch, "cpu")
    assert model["input"].shape == (3, 3, 64, 96) and model["alpha"].shape == (3, 1, 64, 96)
    for row, i in enumerate((0, 3, 5)):
        item = ds[i]
        for key in ("input", "target", "alpha"):
            assert torch.equal(model[key][row], item[key])
    assert model["input"].is_contiguous()
    assert batch_to_device(batch, "cpu", channels_last=True)["input"].is_contiguous(memory_format=torch.channels_last)


def test_to_model_range_values_and_errors():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert to_model_range(x).flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])
    assert to_model_range(torch.full((2, 4, 5), 255, dtype=torch.uint8)).shape == (2, 1, 4, 5)
    rgb = torch.randint(0, 256, (2, 4, 5, 3), dtype=torch.uint8)
    assert torch.equal(to_model_range(rgb)[1], to_tensor(rgb[1].numpy()))
    with pytest.raises(TypeError, match="uint8"):
        to_model_range(rgb.float())
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        to_model_range(torch.zeros(2, 3, 4, 5, dtype=torch.uint8))


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_loader_delivers_every_sample_once(synthetic_cache, workers):
    ds = PreparedDataset(synthetic_cache)
    loader = batch_loader(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(0), workers=workers)
    batches = list(loader)
    assert len(loader) == 3 and [len(b["id"]) for b in batches] == [3, 3, 1]
    assert sorted(i for b in batches for i in b["id"]) == GOOD
    for b in batches:
        assert b["input"].dtype == torch.uint8 and b["input"].shape[1:] == (64, 96, 3)
        for row, i in enumerate(b["index"].tolist()):
            assert np.array_equal(b["target"][row].numpy(), ds.arrays(i)[1])
    # Seeded: the same generator seed, the same batches.
    again = list(batch_loader(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(0), workers=workers))
    assert [b["id"] for b in again] == [b["id"] for b in batches]
    dropped = list(batch_loader(ds, 3, shuffle=False, drop_last=True))
    assert [b["id"] for b in dropped] == [GOOD[0:3], GOOD[3:6]]
