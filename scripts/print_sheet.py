"""Generators side by side on the held-out garments with the most print: logos, text, stripes,
checks. Picked by a rule, not by hand: the edge density of the true garment (mean gradient
magnitude of its grey levels inside its mask, the silhouette's own edge eroded away), highest
first, among the samples `evaluate` would score (leaks left out with --exclude). Each model gets
the true garment mask and draws with the data set's catalogue margins, as `evaluate` does.

    python3 scripts/print_sheet.py DATA OUT.png --models A.safetensors B.safetensors \
        --names "paint (today)" "warp" [--split test] [--exclude DATA/dedup_exclude.json] [--count 8] \
        [--oracle 8x6] [--show-generated]

``--oracle GxW``: also the oracle of ``benchmarks/oracle_warp.py`` (the best warp on a GxW
control grid, fitted against the true garment at the first model's size, inside the true alpha),
drawn from the photo at the cloth's resolution as a warp generator draws: what a learned warp
could reach. ``--show-generated``: also the last model (a warp generator) with the colour it
generates, where it judges the photo hides the garment, painted magenta.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import torch

from clothes_extractor.data import viton
from clothes_extractor.data.dataset import to_tensor
from clothes_extractor.data.transforms import preprocess_sample
from clothes_extractor.evaluation.oracle import fit_flow
from clothes_extractor.inference.warp_frame import dense_flow, fields, warp_source
from clothes_extractor.demo import _tile
from clothes_extractor.evaluation.datasets import read_sample
from clothes_extractor.evaluation.selection import select_samples
from clothes_extractor.fileio import save_image
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.progress import progress_bar

ERODE = 3  # pixels of the silhouette's edge left out of the density


def edge_density(cloth: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude (grey levels per pixel) inside ``mask`` eroded by :data:`ERODE`."""
    grey = cloth.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gy, gx = np.gradient(grey)
    inner = mask.copy()
    for _ in range(ERODE):  # 4-neighbour erosion, numpy only
        inner[1:] &= inner[:-1].copy()
        inner[:-1] &= inner[1:].copy()
        inner[:, 1:] &= inner[:, :-1].copy()
        inner[:, :-1] &= inner[:, 1:].copy()
    return float(np.hypot(gx, gy)[inner].mean()) if inner.any() else 0.0


MAGENTA = torch.tensor([1.0, -1.0, 1.0])


@torch.no_grad()
def generated_in_magenta(ex, raw, mask) -> np.ndarray:
    """A warp generator's garment with its generated colour replaced by magenta: where it judges
    the photo hides the garment (hair, arms, the back neckline)."""
    source = ex.prepare_source(raw.photo, mask, frame=raw.cloth.shape[:2])
    field = fields(ex.run(to_tensor(ex.prepare(raw.photo, mask))[None]))[0]
    field[3:6] = MAGENTA.view(3, 1, 1)
    return ex.finish_warped(field, source, raw.cloth.shape[:2]).on_background((255, 255, 255))


def oracle_garment(ex, raw, mask, grid: str) -> np.ndarray:
    """The best ``grid`` warp of the fill crop onto the true garment, fitted at the model size
    inside the true alpha, drawn from the photo at the cloth's size through ``ex``'s fold."""
    x, y, alpha = (to_tensor(a)[None] for a in preprocess_sample(raw, ex.preprocess))
    gh, gw = (int(v) for v in grid.lower().split("x"))
    flow = fit_flow(x, y, alpha, (gh, gw))
    h, w = ex.preprocess.size
    logit = torch.logit(alpha.clamp(1e-4, 1 - 1e-4))
    field = torch.cat([dense_flow(flow, (h, w)), torch.full_like(logit, 30.0), y, logit], dim=1)[0]
    reach = raw.cloth.shape[0] / h * ex.scale  # cloth pixels per model pixel
    source = warp_source(raw.photo, mask, ex.preprocess, reach=reach)
    return ex.finish_warped(field, source, raw.cloth.shape[:2]).on_background((255, 255, 255))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--models", nargs="+", required=True, type=Path)
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--exclude", type=Path)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--oracle", default=None, metavar="GxW", help="also the oracle warp on this control grid, e.g. 8x6")
    parser.add_argument("--show-generated", action="store_true", help="also the last model's generated colour, in magenta")
    args = parser.parse_args()
    names = args.names or [m.stem for m in args.models]
    selection = select_samples(args.data, args.split, exclude=args.exclude)
    split = viton.as_split(selection.split_dir)
    extractors = [load_extractor(m).with_catalogue(split.layout.garment_width) for m in args.models]
    densities = []
    advance, stop = progress_bar("[bold]edge density", len(selection.ids))
    for sample_id in selection.ids:
        raw = read_sample(split, sample_id)
        densities.append((edge_density(raw.cloth, raw.cloth_mask.astype(bool)), sample_id))
        advance(1)
    stop()
    chosen = sorted(densities, reverse=True)[: args.count]
    tiles = []
    for density, sample_id in chosen:
        raw = read_sample(split, sample_id)
        mask = viton.garment_mask(raw.parse, extractors[0].labels)
        w, h = raw.cloth.shape[1] * 3 // 2, raw.cloth.shape[0] * 3 // 2 + 16
        row = [_tile(Image.fromarray(raw.photo), (w, h), f"{sample_id} edges {density:.1f}")]
        for name, ex in zip(names, extractors):
            garment = ex.extract(raw.photo, mask, frame=raw.cloth.shape[:2]).on_background((255, 255, 255))
            row.append(_tile(Image.fromarray(garment), (w, h), name))
        if args.show_generated:
            row.append(_tile(Image.fromarray(generated_in_magenta(extractors[-1], raw, mask)), (w, h), f"{names[-1]}: generated"))
        if args.oracle:
            row.append(_tile(Image.fromarray(oracle_garment(extractors[0], raw, mask, args.oracle)), (w, h), f"oracle {args.oracle}"))
        row.append(_tile(Image.fromarray(raw.cloth), (w, h), "true garment"))
        tiles.append(row)
    w, h = tiles[0][0].size
    per_row = 2
    rows = [tiles[i: i + per_row] for i in range(0, len(tiles), per_row)]
    cols = len(tiles[0])
    sheet = Image.new("RGB", (w * cols * per_row, h * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, case in enumerate(row):
            for k, tile in enumerate(case):
                sheet.paste(tile, ((x * cols + k) * w, y * h))
    save_image(sheet, args.out)
    print(f"wrote {args.out}: {[(s, round(d, 1)) for d, s in chosen]}")


if __name__ == "__main__":
    main()
