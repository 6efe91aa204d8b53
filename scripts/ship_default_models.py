"""Copy training runs' best checkpoints (or named checkpoint files) into the package as the
default models, in half precision (float tensors only; the metadata unchanged).

    python3 scripts/ship_default_models.py RUNS/default-generator RUNS/default-segmenter
    python3 scripts/ship_default_models.py --generator RUNS/warp/best.safetensors   # one of them
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from clothes_extractor.checkpoint import resolve_checkpoint
from clothes_extractor.pretrained import HERE, KINDS


def to_half(src: Path, dst: Path) -> None:
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(src)).items()}
    save_file(tensors, str(dst), metadata=meta)
    print(f"{src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="the generator's run, then the segmenter's")
    parser.add_argument("--generator", type=Path)
    parser.add_argument("--segmenter", type=Path)
    args = parser.parse_args()
    chosen = dict(zip(("generator", "segmenter"), args.runs))
    chosen.update({k: v for k, v in (("generator", args.generator), ("segmenter", args.segmenter)) if v is not None})
    if not chosen:
        parser.error("name a generator and/or a segmenter run")
    for kind, run in chosen.items():
        to_half(resolve_checkpoint(run), HERE / KINDS[kind])
