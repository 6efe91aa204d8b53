"""The garment mask of a catalogue image on a plain background, for data sets that ship none
(Dress Code).

The background colour is the median of the image's border pixels (catalogue "white" ranges from
235 to 255 between data sets). The background is what a flood fill from the border reaches
through pixels within a few levels of that colour; everything else is the garment, so holes
inside the garment stay garment and light garments keep their inside wherever their outline
(seams, shadows, texture) differs from the background. Checked against real cloth masks: mean
IoU 0.943 on 300 VITON test garments, 0.923 on the 13 VITON-HD samples (a white shirt on white,
which the fill leaks into, is the failure case; see tests/data/test_garment_alpha.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Per-channel distance from the background colour still counted as background (JPEG noise).
TOLERANCE = 8


def background_colour(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the median RGB of its border pixels."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return np.median(border, axis=0)


def garment_alpha(image: np.ndarray, tolerance: int = TOLERANCE) -> np.ndarray:
    """(H, W, 3) uint8 garment on a plain background -> (H, W) bool garment mask."""
    h, w = image.shape[:2]
    near = (np.abs(image.astype(np.int16) - background_colour(image)) <= tolerance).all(axis=2)
    canvas = Image.new("L", (w + 2, h + 2), 255)  # a background ring joins every border pixel
    canvas.paste(Image.fromarray(near.astype(np.uint8) * 255), (1, 1))
    ImageDraw.floodfill(canvas, (0, 0), 128, thresh=0)
    background = np.asarray(canvas)[1:-1, 1:-1] == 128
    # A 3x3 median removes isolated specks of JPEG noise on either side of the outline.
    mask = Image.fromarray((~background).astype(np.uint8) * 255).filter(ImageFilter.MedianFilter(3))
    return np.asarray(mask) >= 128
