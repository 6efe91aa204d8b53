#!/usr/bin/env bash
# Retrain the two default models shipped in clothes_extractor/pretrained/ from VITON (2018),
# with the project's own commands, seeded. This is what produced the shipped weights (commit
# 5b7c943, one NVIDIA H200, bf16; see clothes_extractor/pretrained/MODEL_CARD.md).
#
#   scripts/train_default_models.sh DATA [RUNS]
#
# DATA: VITON in CP-VTON's layout (train/image/<n>_0.jpg, ...; the 9,000 training pairs used
# here, or the full 14,221). RUNS: where the run folders go (default runs/). On a CPU the same
# commands run, about 150x slower than on the H200 (4 img/s against ~1,300 img/s for the GAN).
set -euo pipefail
data=${1:?usage: scripts/train_default_models.sh DATA [RUNS]}
runs=${2:-runs}

# 90/10 train/validation lists (seed 42): 8,100 + 900 of the 9,000 pairs, none skipped.
clothes-extractor split --data "$data" --overwrite
# The model-ready arrays once, at VITON's own 256x192, garment filling the frame.
clothes-extractor prepare --data "$data" --size 256x192 --framing fill

# Generator: pix2pix (lambda 100 x L1 + PatchGAN) + 10 x SSIM + 10 x alpha BCE, from scratch
# (no ImageNet or VGG weights offline), paired flip/rotation/zoom augmentation on the GPU.
# The shipped run had --epochs 40 and was stopped by its time budget after epoch 16 (4,048
# steps, still at the constant learning rate); --max-steps 4048 stops at the same point. The
# shipped weights are its best.safetensors: the lowest validation L1, epoch 13.
clothes-extractor train-gan --data "$data" --size 256x192 --framing fill --encoder resnet18 \
  --encoder-weights none --perceptual 0 --ssim 10 --alpha 10 --epochs 40 --max-steps 4048 --bs 32 \
  --augment --workers 4 --seed 42 --out "$runs/default-generator"

# Segmenter: the 20 CIHP labels, CE + Dice, 30 epochs.
clothes-extractor train-segmenter --data "$data" --size 256x192 --encoder resnet18 --encoder-weights none \
  --epochs 30 --bs 32 --workers 6 --seed 42 --out "$runs/default-segmenter"

# The default generator since issue 24: the warp design (a coarse flow moves the photo's own
# pixels inside the predicted outline), fine-tuned from that paint generator on two CPU cores:
# L1 + SSIM + alpha BCE + alpha soft Dice, the warp terms inside the true garment, no GAN.
# Seeded subsets: 4,860 of the training ids and 200 of the validation ids. 3 epochs, 1,821
# steps of batch 8, about 97 minutes at 2.5-3 images/s (the shipped run planned 5 epochs and was
# resumed with --epochs 3 --compile after its second: the same learning-rate factors, 1, 1, 0.5).
python3 -c '
import random, sys
from pathlib import Path
root, rng = Path(sys.argv[1]), random.Random(24)
ids = (root / "train_ids.txt").read_text().split()
rng.shuffle(ids)
(root / "train_ids_4860.txt").write_text("\n".join(sorted(ids[:4860])) + "\n")
val = (root / "val_ids.txt").read_text().split()
rng.shuffle(val)
(root / "val_ids_200.txt").write_text("\n".join(sorted(val[:200])) + "\n")
' "$data"
clothes-extractor prepare --data "$data" --size 256x192 --framing fill \
  --list "$data/train_ids_4860.txt" --list "$data/val_ids_200.txt"
clothes-extractor train-unet --data "$data" --init "$runs/default-generator/best.safetensors" --arch warp \
  --size 256x192 --framing fill --encoder resnet18 --encoder-weights none --perceptual 0 --l1 100 --ssim 10 \
  --alpha 10 --alpha-dice 50 --lr 2e-4 --bs 8 --augment --workers 0 --prepared on --seed 42 --epochs 3 --compile \
  --train-list "$data/train_ids_4860.txt" --val-list "$data/val_ids_200.txt" --out "$runs/default-warp"

# Half precision for the package (each under 30 MB; the models still compute in float32).
python3 scripts/ship_default_models.py "$runs/default-warp" "$runs/default-segmenter"
