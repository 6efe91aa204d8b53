"""A picture of held-out cases picked by score, not by hand: for the best, median and worst
samples of an `evaluate` run (paper-protocol SSIM of the model), the photo, the garment the
default models extract from it (mask predicted by the default segmenter; the true parse map
where the segmenter finds no garment) and the true garment.

    python3 scripts/case_sheet.py EVAL_DIR DATA OUT.png [--split test] [--per-group 2]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

from clothes_extractor import pretrained
from clothes_extractor.data import viton
from clothes_extractor.demo import _tile
from clothes_extractor.errors import DataError
from clothes_extractor.evaluation.datasets import read_sample
from clothes_extractor.fileio import save_image
from clothes_extractor.inference.extractor import load_extractor
from clothes_extractor.inference.pipeline import predicted_mask
from clothes_extractor.inference.segmenter import load_segmenter


def pick(eval_dir: Path, per_group: int) -> list[tuple[str, str, float]]:
    rows = [r for r in csv.DictReader(open(eval_dir / "per_image.csv")) if r["protocol"] == "paper" and r["subject"] == "model"]
    rows.sort(key=lambda r: float(r["ssim"]), reverse=True)
    mid = len(rows) // 2 - per_group // 2
    groups = [("best", rows[:per_group]), ("median", rows[mid: mid + per_group]), ("worst", rows[-per_group:])]
    return [(name, r["id"], float(r["ssim"])) for name, chosen in groups for r in chosen]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--per-group", type=int, default=2)
    args = parser.parse_args()
    split = viton.resolve_split_dir(args.data, args.split)
    extractor = load_extractor(pretrained.default_path("generator"))
    segmenter = load_segmenter(pretrained.default_path("segmenter"))
    tiles = []
    for group, sample_id, ssim in pick(args.eval_dir, args.per_group):
        raw = read_sample(split, sample_id)
        try:
            mask = predicted_mask(extractor, segmenter, raw.photo)
        except DataError:
            mask = viton.garment_mask(raw.parse, extractor.labels)
        garment = extractor.extract(raw.photo, mask, frame=raw.cloth.shape[:2])
        size = (raw.cloth.shape[1] * 3 // 2, raw.cloth.shape[0] * 3 // 2 + 16)
        caption = f"{group} {sample_id} SSIM {ssim:.1f}"
        tiles.append([_tile(Image.fromarray(raw.photo), size, caption),
                      _tile(Image.fromarray(garment.on_background((255, 255, 255))), size, "extracted"),
                      _tile(Image.fromarray(raw.cloth), size, "true garment")])
    w, h = tiles[0][0].size
    per_row = 2  # two cases side by side
    rows = [tiles[i: i + per_row] for i in range(0, len(tiles), per_row)]
    sheet = Image.new("RGB", (w * 3 * per_row, h * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, case in enumerate(row):
            for k, tile in enumerate(case):
                sheet.paste(tile, ((x * 3 + k) * w, y * h))
    save_image(sheet, args.out)
    print(f"wrote {args.out}: {[c for c in pick(args.eval_dir, args.per_group)]}")


if __name__ == "__main__":
    main()
