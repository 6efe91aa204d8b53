"""clothes-extractor: virtual try-off on VITON-HD.

From a photo of a person wearing a garment and a mask of that garment, generate the flat,
frontal catalogue image of the garment.
"""

__version__ = "0.1.0"
