"""Copy two training runs' best checkpoints into the package as the default models, in half
precision (float tensors only; the metadata unchanged).

    python3 scripts/ship_default_models.py RUNS/default-generator RUNS/default-segmenter
"""

from __future__ import annotations

import sys
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
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for kind, run in zip(("generator", "segmenter"), sys.argv[1:]):
        to_half(resolve_checkpoint(run), HERE / KINDS[kind])
