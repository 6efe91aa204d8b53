"""The mask-free pipeline in `evaluate --segmenter SEG`: the generator fed the predicted mask.

SEG predicts the garment mask on the full-size photo (the generator's garment labels -> the
segmenter's classes holding them; :func:`~clothes_extractor.inference.pipeline.predicted_masks`),
the extractor builds the model input from it (:meth:`Extractor.prepare`, the training
preprocessing) and runs the generator (:meth:`Extractor.forward`): the path `extract` takes
without a mask. The output is scored as the subject ``predicted_mask`` under both protocols,
beside ``model`` (the input built from the true mask). A photo where SEG finds no garment gives
no output in `extract`: it is scored as an all-white image (what the white baseline scores) and
counted. The garment mask IoU (predicted vs true, at the photo's resolution) is reported too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clothes_extractor import metrics as M
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.evaluation.paper import paper_garment
from clothes_extractor.evaluation.protocol import METRICS, PIPELINE_DEFINITION, PIPELINE_SUBJECT, PROTOCOLS
from clothes_extractor.inference.composite import WHITE
from clothes_extractor.inference.extractor import Extractor
from clothes_extractor.inference.pipeline import predicted_masks
from clothes_extractor.inference.segmenter import Segmenter, load_segmenter
from clothes_extractor.inference.warp_frame import fields


class MaskFree:
    """The mask-free path over the batches of `evaluate` (items with ``photo`` and ``mask``)."""

    def __init__(self, segmenter: Segmenter, extractor: Extractor) -> None:
        self.segmenter, self.extractor = segmenter, extractor
        self.mask_iou: dict[str, float] = {}
        self.empty: list[str] = []
        self._last: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path, extractor: Extractor) -> MaskFree:
        return cls(load_segmenter(path, extractor.device), extractor)

    def run(self, batch: dict) -> torch.Tensor:
        """The generator's outputs from predicted masks, (B, 3, h, w) in [0, 1] on the device
        (white where no garment was found); keeps what :meth:`paper` needs."""
        masks = predicted_masks(self.segmenter, batch["photo"], self.extractor.labels)
        h, w = self.extractor.preprocess.size
        rgb = torch.ones(len(masks), 3, h, w)  # white in [-1, 1]
        alpha = torch.zeros(len(masks), 1, h, w)
        inputs, sources, keep = [], [], []
        ex = self.extractor
        for k, (sample_id, photo, true_mask, mask, cloth) in enumerate(
            zip(batch["id"], batch["photo"], batch["mask"], masks, batch["cloth"])
        ):
            self.mask_iou[sample_id] = float(M.mask_iou(torch.from_numpy(mask)[None], torch.from_numpy(true_mask)[None])[0])
            if mask.any():
                inputs.append(to_tensor(ex.prepare(photo, mask, name=sample_id)))
                if ex.warp:  # a warp generator samples the photo itself
                    sources.append(ex.prepare_source(photo, mask, frame=cloth.shape[:2], name=sample_id))
                keep.append(k)
            else:
                self.empty.append(sample_id)
        full = {}
        if inputs:
            out = ex.run(torch.stack(inputs))
            out_rgb, out_alpha = ex.render(out)
            rgb[keep], alpha[keep] = out_rgb.cpu(), out_alpha.cpu()
            if sources:  # drawn into the cloth's frame as `extract` does
                full = {k: ex.finish_warped(f, s, batch["cloth"][k].shape[:2]).on_background(WHITE)
                        for k, f, s in zip(keep, fields(out), sources)}
            else:
                full = {k: (r.cpu(), a.cpu()) for k, r, a in zip(keep, out_rgb, out_alpha)}
        self._last = {"full": full}
        return ((rgb + 1) / 2).to(ex.device)

    def paper(self, k: int, cloth: np.ndarray) -> np.ndarray:
        """Sample ``k`` of the last batch under the paper protocol (uint8, the cloth's frame)."""
        full = self._last["full"]
        if k not in full:
            return np.full_like(cloth, 255)
        if isinstance(full[k], np.ndarray):
            return full[k]
        return paper_garment(*full[k], cloth, self.extractor.preprocess.background, self.extractor.scale)

    def summary(self, means: dict[str, dict[str, dict[str, float | None]]]) -> dict[str, Any]:
        seg, labels = self.segmenter, self.extractor.labels
        values = list(self.mask_iou.values())
        return {
            "definition": PIPELINE_DEFINITION,
            "subject": PIPELINE_SUBJECT,
            "segmenter": str(Path(seg.meta["path"])),
            "label_set": seg.label_set.name,
            "garment_classes": seg.describe_garment(labels),
            "mask_iou": math.fsum(values) / len(values) if values else None,
            "empty_predictions": list(self.empty),
            "per_image_mask_iou": dict(self.mask_iou),
            "cost": {
                p: {m: _difference(means[p]["model"].get(m), means[p][PIPELINE_SUBJECT].get(m)) for m in METRICS}
                for p in PROTOCOLS
            },
        }


def _difference(true_mask: float | None, predicted: float | None) -> float | None:
    """predicted - true (the cost of the predicted mask, signed as the metric goes)."""
    if true_mask is None or predicted is None:
        return None
    return predicted - true_mask
