"""The garment on another background, with its predicted alpha: one function for everyone.

The generator draws the garment on the training background ``bg`` (recorded in the checkpoint)
and predicts its alpha ``a``: ``rgb = a * fg + (1 - a) * bg``. Putting it on ``colour`` is then
``rgb + (1 - a) * (colour - bg)`` (= ``a * fg + (1 - a) * colour``). `extract` writes this,
and `evaluate`'s paper protocol scores this on white: the published numbers are those of the
images users get.

Example:
    >>> import numpy as np
    >>> rgb = np.full((1, 1, 3), 100, np.uint8)  # garment 200 at alpha 0.5 on black
    >>> composite(rgb, np.full((1, 1), 128, np.uint8), (0, 0, 0), (255, 255, 255))[0, 0]
    array([227, 227, 227], dtype=uint8)
"""

from __future__ import annotations

import numpy as np

WHITE: tuple[int, int, int] = (255, 255, 255)


def composite(
    rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int], colour: tuple[int, int, int]
) -> np.ndarray:
    """(H, W, 3) uint8 ``rgb`` drawn on ``background`` with (H, W) uint8 ``alpha`` -> (H, W, 3)
    uint8 on ``colour``: ``rgb + (1 - alpha) * (colour - background)``, rounded. ``rgb`` itself
    (not a copy) when the two colours are the same."""
    colour = tuple(int(c) for c in colour)
    if colour == tuple(int(c) for c in background):
        return rgb
    a = alpha.astype(np.float32)[..., None] / 255
    shift = np.asarray(colour, np.float32) - np.asarray(background, np.float32)
    return np.clip(rgb + (1 - a) * shift, 0, 255).round().astype(np.uint8)


def cut_out(rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: the foreground colours (``background`` taken out of the partly
    transparent edges) and ``alpha``; where alpha is 0 the colours are ``rgb``'s."""
    a = alpha.astype(np.float32)[..., None] / 255
    bg = np.asarray(background, np.float32)
    fg = (rgb.astype(np.float32) - (1 - a) * bg) / np.maximum(a, 1 / 255)
    fg = np.where(a > 0, np.clip(fg, 0, 255), rgb).round().astype(np.uint8)
    return np.dstack([fg, alpha])
