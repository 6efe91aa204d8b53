"""One builder of smp models with an encoder whose pretrained weights are resolved offline.

The generator (an smp Unet) and the segmenter (any smp architecture) are both built here:
the weight file is resolved by :func:`clothes_extractor.weights.resolve_encoder_weights`
(cache first, fail fast offline) and handed to smp/timm as a local file, since smp's own
download path would retry a dead network for tens of seconds.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from clothes_extractor import weights as weights_lib


def build_smp(
    model_cls, *, encoder: str, encoder_weights: str | None, in_channels: int, classes: int, **kwargs: Any
) -> nn.Module:
    """``model_cls`` (an smp architecture) with ``encoder``, ``classes`` outputs, no activation,
    and the encoder's ``encoder_weights`` (None: random); ``kwargs`` go to ``model_cls``."""
    common = dict(encoder_name=encoder, classes=classes, activation=None, **kwargs)
    if encoder_weights is None:
        return model_cls(encoder_weights=None, in_channels=in_channels, **common)
    path = weights_lib.resolve_encoder_weights(encoder, encoder_weights)
    if encoder.startswith("tu-"):
        # timm loads a local file given as pretrained_cfg_overlay; smp passes the kwarg through.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # smp: "encoder_weights should be True" for tu-
            return model_cls(
                encoder_weights=encoder_weights, in_channels=in_channels,
                pretrained_cfg_overlay={"file": str(path)}, **common,
            )
    from safetensors.torch import load_file

    # Same steps as smp.encoders.get_encoder with weights: build for 3 channels, load, then
    # adapt the first convolution to in_channels the way smp does for pretrained encoders.
    model = model_cls(encoder_weights=None, in_channels=3, **common)
    model.encoder.load_state_dict(load_file(str(path), device="cpu"))
    model.encoder.set_in_channels(in_channels, pretrained=True)
    return model
