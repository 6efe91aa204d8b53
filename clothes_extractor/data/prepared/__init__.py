"""A prepared data set: model-ready uint8 arrays of one split, list and size, built once.

Decoding a sample's four files (photo, parse map, cloth, cloth mask) and cropping, padding and
resizing them costs tens of milliseconds per sample; a GPU trains on hundreds of samples in that
time. `prepare_dataset` runs that preprocessing once, on every core, and stores the result as
three memory-mappable ``.npy`` arrays; `PreparedDataset` reads them back. The arrays are exactly
what :meth:`VitonDataset.arrays <clothes_extractor.data.dataset.VitonDataset.arrays>` returns for
the same sample and :class:`PreprocessConfig`, byte for byte: the prepared path changes speed,
never results.

A cache folder (default ``<data>/prepared/<split>-<H>x<W>-<key>/``, ``key`` a hash of the split,
the preprocessing settings and the id list, in order)::

    inputs.npy      (N, H, W, 3) uint8   the model input (garment pixels, centred, padded)
    targets.npy     (N, H, W, 3) uint8   the cloth on the background
    alphas.npy      (N, H, W)    uint8   the cloth mask, 0-255
    ids.txt         the N ids, one per line, in array order
    manifest.json   format, preprocessing settings, split, source folder, ids, and for every
                    source file read its size in bytes and mtime_ns

It is built in a hidden temporary folder beside it and moved into place with one ``os.replace``
once complete: an interrupted build leaves no cache (and the next build removes its leftovers).

Staleness: opening a cache stats every source file it was built from; one whose size or mtime
changed, or that is gone, makes the cache stale, and opening it raises a DataError that names
the file and gives the `prepare ... --overwrite` command that rebuilds it. It never rebuilds by
itself: a rebuild of VITON-HD takes minutes of every core, which is the user's call. Other
preprocessing settings or another id list are not staleness: they hash to another folder, so
`open_prepared` finds no cache for them (and `PreparedDataset` refuses a cache whose settings
differ from the ones asked for).

Two ways to read it:

- ``PreparedDataset[i]``: the same dict as ``VitonDataset[i]`` (``input``/``target`` float in
  [-1, 1], ``alpha`` float in [0, 1], ``id``), optionally with the same per-sample PIL
  augmentation: a drop-in replacement, limited by per-sample Python overhead.
- the batch path: `batch_loader` delivers whole uint8 batches (one fancy-indexed copy out of
  the memory map per array and batch, no per-sample Python), and `batch_to_device` /
  `to_model_range` turn them into model tensors on the device, where
  :class:`~clothes_extractor.data.gpu_augment.BatchAugment` augments them.

Example::

    path = prepare_dataset("data/vitonhd-256", ids="data/vitonhd-256/train_ids.txt",
                           preprocess=PreprocessConfig(size=(224, 224)))
    ds = PreparedDataset(path)
    for raw in batch_loader(ds, 32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        batch = batch_to_device(raw, device)   # input (B, 3, 224, 224) float in [-1, 1], ...
"""

from clothes_extractor.data.prepared.batches import batch_loader, batch_to_device, to_model_range
from clothes_extractor.data.prepared.build import check_out, prepare_dataset
from clothes_extractor.data.prepared.dataset import PreparedDataset, open_prepared
from clothes_extractor.data.prepared.files import (
    ARRAY_FILES,
    FORMAT,
    IDS_FILE,
    MANIFEST,
    PREPARED_FOLDER,
    IdsArg,
    cache_key,
    cache_path,
    read_manifest,
    stale_files,
)

__all__ = [
    "ARRAY_FILES", "FORMAT", "IDS_FILE", "MANIFEST", "PREPARED_FOLDER", "IdsArg", "PreparedDataset",
    "batch_loader", "batch_to_device", "cache_key", "cache_path", "check_out", "open_prepared",
    "prepare_dataset", "read_manifest", "stale_files", "to_model_range",
]
