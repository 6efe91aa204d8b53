"""`evaluate`: scores of a checkpoint on a list of samples, against baselines, in two protocols.

The rooms: :mod:`~clothes_extractor.evaluation.selection` (which samples),
:mod:`~clothes_extractor.evaluation.datasets` (what is read of each),
:mod:`~clothes_extractor.evaluation.protocol` (the protocols, defined once),
:mod:`~clothes_extractor.evaluation.paper` (the images the paper protocol scores: those
`extract` writes), :mod:`~clothes_extractor.evaluation.scores`,
:mod:`~clothes_extractor.evaluation.report` (files, table, verdict), and the evaluations of a
generator (:mod:`~clothes_extractor.evaluation.generator`, with
:mod:`~clothes_extractor.evaluation.mask_free`) and of a segmenter
(:mod:`~clothes_extractor.evaluation.segmenter`); :func:`clothes_extractor.evaluation.run.evaluate`
picks one by the checkpoint's kind. Predictions come from :mod:`clothes_extractor.inference`.
"""
