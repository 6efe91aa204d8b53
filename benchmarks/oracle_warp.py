"""Benchmark: the warp design's ceiling beside the models, on the same held-out photos.

For each photo of ``--split`` (leaks left out with ``--exclude``, as `evaluate` does), the best
warp of the ``fill`` crop on a control grid of each ``--grids`` size is fitted against the true
garment (:func:`clothes_extractor.evaluation.oracle.fit_flow`: an oracle, it sees the answer)
and composed on white with the true alpha. Scored with `evaluate`'s own metrics
(:func:`clothes_extractor.evaluation.scores.score`) in both protocols at the model frame
(256x192 for the shipped models, which is VITON's own cloth frame; paper: 8-bit images, SSIM
and MS-SSIM on luminance x100), beside:

- ``white``: the white image;
- ``fill_in_true_alpha``: no warp at all, the fill crop inside the true alpha;
- for each ``--model NAME=CHECKPOINT`` (default: the shipped generator as ``today``):
  ``NAME`` (its own image, with its own alpha) and ``NAME_in_true_alpha`` (its content inside the
  true alpha: a paint model's image, a warp model's fill). Its outline figures (alpha IoU with
  the cloth mask, mean edge distance in pixels) go under ``outline``.

``gap_closed``: for each model, the share of the gap between the first model inside the true
alpha and the 8x6 oracle that the model inside the true alpha closes, on HaarPSI and MS-GMSD
(native protocol).

Prints one JSON object (also written to ``--json``). Usage::

    python benchmarks/oracle_warp.py --data VITON --exclude dedup/dedup_exclude.json \
        --model today=clothes_extractor/pretrained/generator.safetensors --model new=runs/warp/best.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from clothes_extractor import metrics as M
from clothes_extractor import pretrained
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.evaluation.datasets import EvalDataset, collate
from clothes_extractor.evaluation.oracle import fit_flow, oracle_image
from clothes_extractor.evaluation.scores import Scores
from clothes_extractor.evaluation.selection import select_samples
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.models.warp import on_background

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "viton-2018"
SHOWN = ("l1", "ssim", "ms_ssim", "haarpsi", "ms_gmsd", "fsim")


def parse_grid(text: str) -> tuple[int, int]:
    """``8x6`` -> (8, 6): control points down and across."""
    gh, gw = (int(v) for v in text.lower().split("x"))
    return gh, gw


def model_subjects(extractors: dict, x: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor, outline: dict) -> dict:
    """Each model's own image and its content inside the true alpha, (B, 3, H, W) in [-1, 1]."""
    out = {}
    logit = torch.logit(alpha.clamp(1e-4, 1 - 1e-4))
    for name, ex in extractors.items():
        raw = ex.run(x)
        rgb, _ = ex.render(raw)
        content = raw.fill if raw.fill is not None else rgb
        out[name] = rgb
        out[f"{name}_in_true_alpha"] = on_background(content.float(), logit, bg)
        outline.setdefault(name, {"alpha_iou": [], "edge_distance_px": []})
        outline[name]["alpha_iou"] += M.alpha_iou(raw.alpha_logit.float(), alpha).tolist()
        outline[name]["edge_distance_px"] += M.edge_distance(raw.alpha_logit.float(), alpha).tolist()
    return out


def to_unit(images: dict, quantize: bool) -> dict:
    """[-1, 1] -> [0, 1]; the paper protocol's images as an 8-bit file would hold them."""
    out = {}
    for k, v in images.items():
        u = ((v.float() + 1) / 2).clamp(0, 1)
        out[k] = torch.round(u * 255) / 255 if quantize else u
    return out


def mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else None


def gap_closed(native: dict, models: list[str], reference_grid: str) -> dict:
    """How much of the gap between the first model inside the true alpha and the oracle each
    model inside the true alpha closes (1: all of it), on HaarPSI and MS-GMSD."""
    oracle = native.get(f"oracle_{reference_grid}")
    if oracle is None or not models:
        return {}
    base = native[f"{models[0]}_in_true_alpha"]
    out = {}
    for name in models:
        mine = native[f"{name}_in_true_alpha"]
        out[name] = {m: (mine[m] - base[m]) / (oracle[m] - base[m]) if oracle[m] != base[m] else None for m in ("haarpsi", "ms_gmsd")}
    return {"against": f"{models[0]}_in_true_alpha -> oracle_{reference_grid}", **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", default="test")
    parser.add_argument("--exclude", type=Path, default=None, help="ids to leave out (dedup's dedup_exclude.json)")
    parser.add_argument("--samples", type=int, default=None, help="the first N usable ids (default: all)")
    parser.add_argument("--grids", default="4x3,8x6,16x12,32x24", help="control grids, rows x columns")
    parser.add_argument("--steps", type=int, default=240, help="Adam steps per fit")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT")
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--flows", type=Path, default=None,
                        help="cache of the fitted flows (torch tensors, read with weights_only): reused for the same "
                             "ids, grids and steps, so other models are scored beside the same oracle without refitting")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = dict(m.split("=", 1) for m in args.model) or {"today": str(pretrained.resolve(None, "generator"))}
    extractors = {name: load_extractor(path) for name, path in models.items()}
    pre = PreprocessConfig.from_dict(next(iter(extractors.values())).meta["preprocess"])
    grids = [parse_grid(g) for g in args.grids.split(",")]
    selection = select_samples(args.data, args.split, exclude=args.exclude, garment_labels=pre.garment_labels)
    ids = selection.ids[: args.samples] if args.samples else selection.ids
    loader = DataLoader(EvalDataset(selection.split_dir, selection.folder, ids, pre), batch_size=args.bs, collate_fn=collate)
    bg = torch.tensor(pre.background, dtype=torch.float32) / 127.5 - 1
    scores = Scores(M.NetworkMetrics.disabled("not part of this benchmark"))
    outline: dict = {}
    cache = torch.load(args.flows, weights_only=True) if args.flows and args.flows.is_file() else {}
    fit_seconds = {f"{gh}x{gw}": 0.0 for gh, gw in grids}
    t0 = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            x, y, a = batch["input"], batch["target"], batch["alpha"]
            images = {"white": bg.view(1, 3, 1, 1).expand_as(y).contiguous()}
            images["fill_in_true_alpha"] = on_background(x, torch.logit(a.clamp(1e-4, 1 - 1e-4)), bg)
            images.update(model_subjects(extractors, x, a, bg, outline))
            for gh, gw in grids:
                key = f"{gh}x{gw}/{args.steps}"
                known = cache.setdefault(key, {})
                if all(i in known for i in batch["id"]):
                    flow = torch.stack([known[i] for i in batch["id"]])
                else:
                    t = time.perf_counter()
                    flow = fit_flow(x, y, a, (gh, gw), steps=args.steps)
                    fit_seconds[f"{gh}x{gw}"] += time.perf_counter() - t
                    known.update(zip(batch["id"], flow))
                images[f"oracle_{gh}x{gw}"] = oracle_image(x, flow, a, bg)
            for protocol in ("native", "paper"):
                scores.add(protocol, batch["id"], to_unit(images, protocol == "paper"), to_unit({"t": y}, protocol == "paper")["t"])
    if args.flows:
        torch.save(cache, args.flows)
    means = scores.means()
    result = {
        "samples": len(ids),
        "split": selection.summary(),
        "grids": [f"{gh}x{gw}" for gh, gw in grids],
        "steps": args.steps,
        "models": models,
        "protocols": {
            p: {s: {m: means[p][s].get(m) for m in SHOWN} for s in means[p] if means[p][s].get("l1") is not None}
            for p in ("native", "paper")
        },
        "outline": {n: {k: mean(v) for k, v in d.items()} for n, d in outline.items()},
        "gap_closed": gap_closed({s: means["native"][s] for s in means["native"]}, list(models), "8x6"),
        "fit_seconds": {k: round(v, 1) for k, v in fit_seconds.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
