"""Inference: a person photo in, the garment out.

The rooms, in the order a photo goes through them:

- :mod:`~clothes_extractor.inference.photo`: read a user's photo (EXIF orientation, any mode -> RGB).
- :mod:`~clothes_extractor.inference.mask`: read a garment mask (label map, colour-coded parse,
  binary mask or cut-out), or take the garment from a predicted parse (:func:`require_garment`).
- :mod:`~clothes_extractor.inference.segmenter`: the garment segmenter (photo -> parse map).
- :mod:`~clothes_extractor.inference.extractor`: the generator (photo + mask -> garment).
- :mod:`~clothes_extractor.inference.composite`: the garment on a background, with its alpha.
- :mod:`~clothes_extractor.inference.pipeline`: photo -> given or predicted mask -> garment.
- :mod:`~clothes_extractor.inference.output`: the files `extract` and `segment` write.
- :mod:`~clothes_extractor.inference.folder`: one runner for folders of photos.

`extract`, `segment`, `evaluate`, `serve`, `demo`, `export` and the benchmarks all go through
these; nothing here imports the training loop or the evaluation. Import the submodules: this
package itself loads nothing (the CLI starts without numpy).
"""
