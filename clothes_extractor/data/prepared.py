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

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from clothes_extractor import __version__
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.dataset import make_item
from clothes_extractor.data.transforms import AugmentConfig, preprocess_sample
from clothes_extractor.data.viton import (
    check_complete,
    read_id_list,
    read_sample,
    resolve_ids,
    resolve_split_dir,
)
from clothes_extractor.data.workers import cpu_count, process_pool
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.progress import progress_bar

FORMAT = 1
MANIFEST, IDS_FILE = "manifest.json", "ids.txt"
ARRAY_FILES: dict[str, str] = {"input": "inputs.npy", "target": "targets.npy", "alpha": "alphas.npy"}
PREPARED_FOLDER = "prepared"  # default parent of the caches, inside the data set root
_TMP_MARK = ".tmp-"

IdsArg = Sequence[str] | str | os.PathLike | None


# --- naming --------------------------------------------------------------------------------------


def _ids_and_list(split_dir: Path, ids: IdsArg) -> tuple[list[str], str | None]:
    """The ids asked for and the list file they came from (None for a list or all ids)."""
    list_file = str(Path(ids).resolve()) if isinstance(ids, (str, os.PathLike)) else None
    return resolve_ids(split_dir, ids), list_file


def cache_key(split: str, ids: Sequence[str], preprocess: PreprocessConfig) -> str:
    """12 hex digits naming (split, preprocessing settings, ids in order)."""
    text = json.dumps({"split": split, "preprocess": preprocess.to_dict(), "ids": list(ids)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(
    data: str | os.PathLike,
    split: str = "train",
    ids: IdsArg = None,
    preprocess: PreprocessConfig = PreprocessConfig(),
    *,
    root: str | os.PathLike | None = None,
) -> Path:
    """Where the cache of (data, split, ids, preprocess) lives: ``<root>/<split>-<H>x<W>-<key>``,
    ``root`` defaulting to ``<data>/prepared``."""
    split_dir = resolve_split_dir(data, split)
    id_list, _ = _ids_and_list(split_dir, ids)
    h, w = preprocess.size
    parent = Path(root) if root is not None else Path(data) / PREPARED_FOLDER
    return parent / f"{split}-{h}x{w}-{cache_key(split, id_list, preprocess)}"


def _rebuild_command(manifest: dict[str, Any]) -> str:
    pre = PreprocessConfig.from_dict(manifest["preprocess"])
    h, w = pre.size
    parts = [
        "clothes-extractor prepare",
        f"--data {manifest['data']}",
        f"--split {manifest['split']}",
        f"--size {h}x{w}",
        f"--labels {','.join(map(str, pre.garment_labels))}",
        f"--background {','.join(map(str, pre.background))}",
    ]
    if manifest.get("list"):
        parts.append(f"--list {manifest['list']}")
    return " ".join(parts) + " --overwrite"


# --- source files --------------------------------------------------------------------------------


def _source_stats(split_dir: Path, ids: Sequence[str]) -> dict[str, list[int]]:
    """``folder/<file>`` -> [size in bytes, mtime_ns] of the four files each sample is read from."""
    stats: dict[str, list[int]] = {}
    for sample_id in ids:
        for path in split_dir.files(sample_id).required():
            st = path.stat()
            stats[path.relative_to(split_dir.dir).as_posix()] = [st.st_size, st.st_mtime_ns]
    return stats


def stale_files(manifest: dict[str, Any], source: Path) -> list[tuple[str, str]]:
    """(file, what happened) for every recorded source file that changed or is gone."""
    out: list[tuple[str, str]] = []
    for rel, (size, mtime_ns) in manifest["files"].items():
        try:
            st = os.stat(source / rel)
        except FileNotFoundError:
            out.append((rel, "is missing"))
            continue
        if st.st_size != size:
            out.append((rel, f"changed (size {size} -> {st.st_size} bytes)"))
        elif st.st_mtime_ns != mtime_ns:
            out.append((rel, "changed (modification time)"))
    return out


# --- building ------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _open_arrays(folder: Path, mode: str) -> dict[str, np.ndarray]:
    return {k: np.load(folder / name, mmap_mode=mode) for k, name in ARRAY_FILES.items()}


def _init_worker(folder: Path, split_dir: Path, ids: list[str], preprocess: PreprocessConfig) -> None:
    _WORKER.update(arrays=_open_arrays(folder, "r+"), split_dir=split_dir, ids=ids, preprocess=preprocess)


def _build_chunk(indices: list[int]) -> tuple[int, list[tuple[str, str]]]:
    """Preprocess samples ``indices`` into the memory-mapped arrays; (count, [(id, error)])."""
    arrays, split_dir, ids, pre = _WORKER["arrays"], _WORKER["split_dir"], _WORKER["ids"], _WORKER["preprocess"]
    failures: list[tuple[str, str]] = []
    for i in indices:
        try:
            x, y, alpha = preprocess_sample(read_sample(split_dir, ids[i]), pre)
        except DataError as exc:
            failures.append((ids[i], str(exc)))
            continue
        arrays["input"][i] = x
        arrays["target"][i] = y
        arrays["alpha"][i] = alpha
    for a in arrays.values():
        a.flush()
    return len(indices), failures


@contextlib.contextmanager
def _chunk_results(
    chunks: list[list[int]], workers: int, init_args: tuple
) -> Iterator[Iterator[tuple[int, list[tuple[str, str]]]]]:
    """Results of `_build_chunk` over ``chunks``, from ``workers`` processes (1: this one).
    The pool starts on entry, before any progress-bar thread exists, so forking is safe."""
    if workers <= 1 or len(chunks) <= 1:
        _init_worker(*init_args)
        try:
            yield map(_build_chunk, chunks)
        finally:
            _WORKER.clear()
        return
    with process_pool(min(workers, len(chunks)), _init_worker, init_args) as pool:
        yield pool.imap_unordered(_build_chunk, chunks)  # exit terminates the workers


def _remove_leftovers(out: Path) -> None:
    """Temporary folders of an earlier build of ``out`` that was killed."""
    if out.parent.is_dir():
        for p in out.parent.glob(f".{out.name}{_TMP_MARK}*"):
            shutil.rmtree(p, ignore_errors=True)


def _failure_message(failures: list[tuple[str, str]], split_dir: Path) -> str:
    shown = "; ".join(msg if msg.startswith(f"sample {i}") else f"sample {i}: {msg}" for i, msg in failures[:5])
    more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
    return (
        f"{len(failures)} sample(s) of {split_dir} cannot be prepared: {shown}{more}. Nothing was written. "
        "Prepare the lists written by `clothes-extractor split` (train_ids.txt, val_ids.txt), "
        "which leave such samples out"
    )


def check_out(
    out: Path, split_dir: Path, ids: Sequence[str] | None, preprocess: PreprocessConfig, *, overwrite: bool
) -> None:
    """Raise DataError if `prepare_dataset` may not write the cache folder ``out``: it holds a
    cache and ``overwrite`` is off (the message says whether that cache is up to date), or it
    holds something else."""
    out = Path(out)
    if not out.exists():
        return
    if not (out / MANIFEST).is_file():
        if out.is_dir() and not any(out.iterdir()):
            return
        raise DataError(f"{out} exists and is not a prepared cache (no {MANIFEST}); choose another --out")
    if overwrite:
        return
    try:
        PreparedDataset(out, source=split_dir, preprocess=preprocess, ids=None if ids is None else list(ids))
        state = "up to date"
    except DataError as exc:
        state = f"not usable: {exc}"
    raise DataError(f"{out} already holds a prepared cache ({state}); pass --overwrite to rebuild it")


def prepare_dataset(
    data: str | os.PathLike,
    *,
    split: str = "train",
    ids: IdsArg = None,
    preprocess: PreprocessConfig = PreprocessConfig(),
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Build the prepared cache of ``ids`` of ``data``'s ``split`` at ``preprocess``; its folder.

    Args:
        data: data set root (holding ``train/``, ``test/``) or a split folder.
        split: ``train`` or ``test``.
        ids: a list of ids, a list file (`split`'s lists, a pair file), or None for every photo.
        preprocess: size, garment labels and background, as for :class:`VitonDataset`.
        out: the cache folder [default: :func:`cache_path`, ``<data>/prepared/<split>-<H>x<W>-<key>``].
        workers: processes decoding in parallel [default: all cores; 1 runs in this process].
        overwrite: replace an existing cache at ``out`` (otherwise that is an error).
        progress: show a rich progress bar on stderr.

    Raises DataError (nothing written) for missing files, samples without garment pixels (all
    of them named), an existing cache without ``overwrite``, or a source file that changed
    during the build.
    """
    split_dir = resolve_split_dir(data, split)
    id_list, list_file = _ids_and_list(split_dir, ids)
    if not id_list:
        raise DataError(f"no samples selected in {split_dir}")
    dups = [i for i, k in Counter(id_list).items() if k > 1]
    if dups:
        raise DataError(f"the id list names sample {dups[0]} more than once; give each id once")
    workers = cpu_count() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    out = Path(out) if out is not None else cache_path(data, split, id_list, preprocess)

    check_out(out, split_dir, id_list, preprocess, overwrite=overwrite)

    check_complete(split_dir, id_list)

    start = time.perf_counter()
    stats = _source_stats(split_dir, id_list)
    n, (h, w) = len(id_list), preprocess.size
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP_MARK}", dir=out.parent))
    try:
        shapes = {"input": (n, h, w, 3), "target": (n, h, w, 3), "alpha": (n, h, w)}
        for key, name in ARRAY_FILES.items():
            created = np.lib.format.open_memmap(tmp / name, mode="w+", dtype=np.uint8, shape=shapes[key])
            del created  # header written; workers fill the data through their own maps
        chunk = max(1, min(16, n // (workers * 8)))
        chunks = [list(range(i, min(i + chunk, n))) for i in range(0, n, chunk)]
        failures: list[tuple[str, str]] = []
        with _chunk_results(chunks, workers, (tmp, split_dir, id_list, preprocess)) as results:
            advance, stop = progress_bar("prepare", n) if progress else (lambda k=1: None, lambda: None)
            try:
                for count, failed in results:
                    failures.extend(failed)
                    advance(count)
            finally:
                stop()
        if failures:
            order = {i: k for k, i in enumerate(id_list)}
            raise DataError(_failure_message(sorted(failures, key=lambda f: order[f[0]]), split_dir))
        changed = [rel for rel, st in _source_stats(split_dir, id_list).items() if st != stats[rel]]
        if changed:
            raise DataError(f"{split_dir.dir / changed[0]} changed while it was being prepared; run prepare again")
        manifest = {
            "format": FORMAT,
            "tool": f"clothes-extractor {__version__} prepare",
            "data": str(Path(data).resolve()),
            "split": split,
            "source": str(split_dir.dir.resolve()),
            "list": list_file,
            "preprocess": preprocess.to_dict(),
            "count": n,
            "shapes": {k: list(s) for k, s in shapes.items()},
            "seconds": round(time.perf_counter() - start, 3),
            "ids": id_list,
            "files": stats,
        }
        (tmp / IDS_FILE).write_text("".join(f"{i}\n" for i in id_list))
        (tmp / MANIFEST).write_text(_manifest_text(manifest))  # last: marks a whole cache
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _manifest_text(manifest: dict[str, Any]) -> str:
    """JSON, one line per top-level key and per source file (readable, diffable, compact)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in manifest.items() if k != "files"]
    files = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["files"].items()]
    return "{\n" + "\n".join(lines) + '\n  "files": {\n' + ",\n".join(files) + "\n  }\n}\n"


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``, replacing an old cache there."""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP_MARK}old-", dir=out.parent))
    os.replace(out, trash / "old")
    os.replace(tmp, out)
    shutil.rmtree(trash, ignore_errors=True)


# --- reading -------------------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise DataError(
            f"{path} is not a prepared data set (no {MANIFEST}); build one with `clothes-extractor prepare`"
        )
    try:
        manifest = json.loads(file.read_text())
        if manifest["format"] != FORMAT:
            raise DataError(
                f"{path} was prepared in format {manifest['format']}, this version reads format {FORMAT}; "
                "rebuild it with `clothes-extractor prepare ... --overwrite`"
            )
        PreprocessConfig.from_dict(manifest["preprocess"])
        for key in ("ids", "files", "split", "source", "data"):
            if key not in manifest:
                raise KeyError(key)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{file} is unreadable ({exc!r}); delete {path} and run `clothes-extractor prepare` again") from None
    return manifest


def _describe(p: PreprocessConfig) -> str:
    extra = (f", framing {p.framing}" if p.framing != "photo" else "") + (f", categories {','.join(p.categories)}" if p.categories else "")
    return f"size {p.size[0]}x{p.size[1]}, labels {list(p.garment_labels)}, background {p.background}{extra}"


class PreparedDataset(Dataset):
    """The samples of a prepared cache (see the module docstring); a drop-in for VitonDataset.

    Args:
        path: the cache folder (what `prepare_dataset` returned).
        source: the split folder its files are checked against [default: the one recorded in
            the manifest; pass it when the data set moved].
        preprocess: if given, must equal the cache's settings (DataError otherwise).
        ids: if given (a list or a list file), must equal the cache's ids, in order.
        augment: per-sample PIL augmentation in ``__getitem__``, exactly as VitonDataset does
            (the batch path leaves augmentation to :class:`BatchAugment` on the device).
        check: stat every source file and refuse a stale cache (DataError naming the file).

    Items (``ds[i]``) are VitonDataset's dicts: ``input`` (3, H, W) float in [-1, 1],
    ``target`` (3, H, W) float in [-1, 1], ``alpha`` (1, H, W) float in [0, 1], ``id``.
    ``uint8_batch(indices)`` gives whole uint8 batches (see there).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        source: str | os.PathLike | None = None,
        preprocess: PreprocessConfig | None = None,
        ids: Sequence[str] | str | os.PathLike | None = None,
        augment: AugmentConfig | None = None,
        check: bool = True,
    ) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.preprocess = PreprocessConfig.from_dict(self.manifest["preprocess"])
        self.ids: list[str] = list(self.manifest["ids"])
        source = source.dir if hasattr(source, "dir") else source  # a Split or its folder
        self.split_dir = Path(source) if source is not None else Path(self.manifest["source"])
        self.augment = augment
        if preprocess is not None and preprocess != self.preprocess:
            raise DataError(
                f"{self.path} was prepared with {_describe(self.preprocess)}, but {_describe(preprocess)} "
                "was asked for; prepare the data set with these settings (`clothes-extractor prepare`)"
            )
        if ids is not None:
            wanted = read_id_list(Path(ids)) if isinstance(ids, (str, os.PathLike)) else list(ids)
            if wanted != self.ids:
                raise DataError(
                    f"{self.path} holds {len(self.ids)} samples of another id list than the {len(wanted)} asked "
                    "for; prepare that list (`clothes-extractor prepare --list FILE`)"
                )
        if check:
            stale = stale_files(self.manifest, self.split_dir)
            if stale:
                listed = "; ".join(f"{self.split_dir / rel} {what}" for rel, what in stale[:3])
                more = f" (and {len(stale) - 3} more)" if len(stale) > 3 else ""
                raise DataError(
                    f"cache {self.path} is stale: {listed}{more}; rebuild it with "
                    f"`{_rebuild_command(self.manifest)}`"
                )
        self._arrays: dict[str, np.ndarray] | None = None
        self._check_arrays()

    # The memory maps are opened lazily and not pickled: a DataLoader worker started with
    # "spawn" reopens them instead of receiving a copy of the data.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    @property
    def arrays_mmap(self) -> dict[str, np.ndarray]:
        """``input`` (N, H, W, 3), ``target`` (N, H, W, 3), ``alpha`` (N, H, W): read-only uint8 maps."""
        if self._arrays is None:
            try:
                self._arrays = _open_arrays(self.path, "r")
            except (OSError, ValueError) as exc:
                raise DataError(
                    f"cannot read the arrays of {self.path} ({exc}); rebuild it with "
                    f"`{_rebuild_command(self.manifest)}`"
                ) from None
        return self._arrays

    def _check_arrays(self) -> None:
        n, (h, w) = len(self.ids), self.preprocess.size
        want = {"input": (n, h, w, 3), "target": (n, h, w, 3), "alpha": (n, h, w)}
        for key, a in self.arrays_mmap.items():
            if a.shape != want[key] or a.dtype != np.uint8:
                raise DataError(
                    f"{self.path / ARRAY_FILES[key]} holds {a.dtype} {a.shape}, expected uint8 {want[key]}; "
                    f"rebuild it with `{_rebuild_command(self.manifest)}`"
                )

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 (input (H, W, 3), target (H, W, 3), alpha (H, W)): VitonDataset.arrays' values."""
        a = self.arrays_mmap
        return np.asarray(a["input"][index]), np.asarray(a["target"][index]), np.asarray(a["alpha"][index])

    def __getitem__(self, index: int) -> dict:
        return make_item(*self.arrays(index), self.ids[index], self.augment, self.preprocess.background)

    def uint8_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> dict:
        """A whole batch as uint8 tensors, in ascending index order (the indices are sorted for
        sequential reads; a batch's order does not matter to training):

        ``input`` (B, H, W, 3), ``target`` (B, H, W, 3), ``alpha`` (B, H, W) uint8 tensors,
        ``index`` (B,) int64, ``id`` list of B ids. `to_model_range` / `batch_to_device` make
        model tensors of them.
        """
        idx = np.sort(np.asarray(indices, dtype=np.int64).reshape(-1))
        a = self.arrays_mmap
        out = {k: torch.from_numpy(np.ascontiguousarray(a[k][idx])) for k in ARRAY_FILES}
        out["index"] = torch.from_numpy(idx)
        out["id"] = [self.ids[i] for i in idx.tolist()]
        return out


def open_prepared(
    data: str | os.PathLike,
    split: str = "train",
    ids: IdsArg = None,
    preprocess: PreprocessConfig = PreprocessConfig(),
    *,
    root: str | os.PathLike | None = None,
    augment: AugmentConfig | None = None,
    stale: str = "raise",
) -> PreparedDataset | None:
    """The prepared cache of (data, split, ids, preprocess), or None when none was built.

    ``root`` is the folder holding the caches (`prepare --out`) [default ``<data>/prepared``].
    A cache that exists but is stale (a source file changed) raises DataError with the rebuild
    command (``stale="raise"``, the default: training silently on old data, or silently slowly,
    are both worse than a clear stop), or gives None (``stale="none"``).
    """
    if stale not in ("raise", "none"):
        raise ConfigError(f"stale={stale!r} is not 'raise' or 'none'")
    split_dir = resolve_split_dir(data, split)
    id_list, _ = _ids_and_list(split_dir, ids)
    path = cache_path(data, split, id_list, preprocess, root=root)
    if not (path / MANIFEST).is_file():
        return None
    try:
        return PreparedDataset(path, source=split_dir, preprocess=preprocess, ids=id_list, augment=augment)
    except DataError:
        if stale == "none":
            return None
        raise


# --- the batch path ------------------------------------------------------------------------------


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]; uint8 (B, H, W) -> float (B, 1, H, W)
    in [0, 1]. The same arithmetic as ``dataset.to_tensor``, so the values are identical; run it
    on the device. The colour result is channels_last in memory (a view of NHWC).

    >>> to_model_range(torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)).flatten().tolist()
    [-1.0, 1.0, -0.6000000238418579]
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"to_model_range expects a uint8 tensor, got {x.dtype}")
    if x.ndim == 3:
        return x.unsqueeze(1).float().div_(255)
    if x.ndim == 4 and x.shape[-1] == 3:
        return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    raise ValueError(f"to_model_range expects (B, H, W, 3) or (B, H, W), got {tuple(x.shape)}")


def batch_to_device(batch: dict, device: torch.device | str, *, channels_last: bool = False) -> dict:
    """A `uint8_batch` (or `batch_loader` item) -> ``input``/``target`` (B, 3, H, W) float in
    [-1, 1], ``alpha`` (B, 1, H, W) float in [0, 1] on ``device`` (uint8 crosses the bus:
    4x less than float), plus ``id``. ``channels_last`` chooses the memory format; otherwise
    the tensors are contiguous."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = {}
    for key in ARRAY_FILES:
        t = to_model_range(batch[key].to(device, non_blocking=True))
        out[key] = t.contiguous(memory_format=fmt)
    out["id"] = batch["id"]
    return out


class _Batches(Dataset):
    """``PreparedDataset`` indexed by a list of indices: one uint8 batch per item."""

    def __init__(self, ds: PreparedDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, indices: list[int]) -> dict:
        return self.ds.uint8_batch(indices)


def batch_loader(
    ds: PreparedDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    sampler: Sampler[int] | None = None,
    workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader of whole uint8 batches (`PreparedDataset.uint8_batch` dicts).

    ``batch_size=None`` + a BatchSampler: each worker reads a batch with one fancy-indexed copy
    per array, no per-sample Python and no collate. ``sampler`` (e.g. a DistributedSampler)
    replaces the shuffle/sequential sampler; ``generator`` seeds the shuffle. ``len()`` is the
    number of batches. Follow with `batch_to_device`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if sampler is None:
        sampler = RandomSampler(ds, generator=generator) if shuffle else SequentialSampler(ds)
    extra = {"prefetch_factor": prefetch_factor} if workers > 0 and prefetch_factor else {}
    return DataLoader(
        _Batches(ds),
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size, drop_last),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers > 0,
        **extra,
    )
