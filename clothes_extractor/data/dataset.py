"""The torch Dataset over a VITON-HD-layout folder (full size or a downsampled copy)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.transforms import AugmentConfig, AugmentParams, augment, preprocess_sample
from clothes_extractor.data.viton import check_complete, read_sample, resolve_ids, resolve_split_dir


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [-1, 1]; uint8 (H, W) -> float (1, H, W) in [0, 1]."""
    t = torch.from_numpy(np.array(image, copy=True))  # PIL-backed arrays are read-only
    if t.ndim == 2:
        return t.unsqueeze(0).float().div_(255)
    return t.permute(2, 0, 1).float().div_(127.5).sub_(1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float (3, H, W) in [-1, 1] -> uint8 (H, W, 3); float (1, H, W) in [0, 1] -> uint8 (H, W)."""
    image = image.detach().float().cpu()
    if image.shape[0] == 1:
        return (image[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def make_item(x: np.ndarray, y: np.ndarray, alpha: np.ndarray, sample_id: str, augment_cfg: AugmentConfig | None, background) -> dict:
    """The item dict of a sample's uint8 arrays, augmented (one draw from torch's global RNG)."""
    if augment_cfg is not None:
        p = AugmentParams.draw(augment_cfg, tuple(torch.rand(3).tolist()))
        x, y, alpha = augment(x, p, background), augment(y, p, background), augment(alpha, p, 0)
    return {"input": to_tensor(x), "target": to_tensor(y), "alpha": to_tensor(alpha), "id": sample_id}


class VitonDataset(Dataset):
    """Model-ready samples of a VITON-HD split folder.

    Args:
        root: data set root (holding ``train/``, ``test/``) or a split folder itself.
        split: ``train`` or ``test``.
        ids: which samples: a list of ids, a list file (``split``'s lists, a pair file: first
            column), or None for every photo in ``image/``.
        preprocess: size, garment labels, background.
        augment: paired geometric augmentation, or None.

    Each item is a dict:
        ``input``  (3, H, W) float in [-1, 1]: the photo's garment pixels, centred and padded;
        ``target`` (3, H, W) float in [-1, 1]: the cloth on the background;
        ``alpha``  (1, H, W) float in [0, 1]: the cloth mask;
        ``id``     the sample id.
    Augmentation draws from torch's global RNG (seeded per DataLoader worker), once per sample.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        ids: Sequence[str] | str | os.PathLike | None = None,
        preprocess: PreprocessConfig = PreprocessConfig(),
        augment: AugmentConfig | None = None,
    ) -> None:
        self.split_dir = resolve_split_dir(root, split)
        self.ids = resolve_ids(self.split_dir, ids)
        check_complete(self.split_dir, self.ids)
        self.preprocess = preprocess
        self.augment = augment

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Preprocessed uint8 (input (H, W, 3), target (H, W, 3), alpha (H, W)), no augmentation."""
        return preprocess_sample(read_sample(self.split_dir, self.ids[index]), self.preprocess)

    def __getitem__(self, index: int) -> dict:
        return make_item(*self.arrays(index), self.ids[index], self.augment, self.preprocess.background)
