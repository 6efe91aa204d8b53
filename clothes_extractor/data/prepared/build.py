"""Writing a prepared cache: `prepare_dataset` preprocesses every sample once, on every core.

The arrays are built in a hidden temporary folder beside the cache and moved into place with one
``os.replace`` once complete: an interrupted build (Ctrl-C or a kill) leaves the previous cache,
if any, as it was, and the next build removes the leftovers. See
:mod:`clothes_extractor.data.prepared` for the cache's contents.
"""

from __future__ import annotations

import contextlib
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

from clothes_extractor import __version__
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.prepared.dataset import PreparedDataset
from clothes_extractor.data.prepared.files import (
    ARRAY_FILES,
    FORMAT,
    IDS_FILE,
    MANIFEST,
    TMP_MARK,
    IdsArg,
    cache_path,
    ids_and_list,
    open_arrays,
    source_stats,
)
from clothes_extractor.data.transforms import preprocess_sample
from clothes_extractor.data.viton import check_complete, read_sample, resolve_split_dir
from clothes_extractor.data.workers import cpu_count, process_pool
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import check_writable
from clothes_extractor.progress import progress_bar

# --- building ------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(folder: Path, split_dir: Path, ids: list[str], preprocess: PreprocessConfig) -> None:
    _WORKER.update(arrays=open_arrays(folder, "r+"), split_dir=split_dir, ids=ids, preprocess=preprocess)


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
        for p in out.parent.glob(f".{out.name}{TMP_MARK}*"):
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
    id_list, list_file = ids_and_list(split_dir, ids)
    workers = cpu_count() if workers is None else workers
    _check_request(split_dir, id_list, workers)
    out = Path(out) if out is not None else cache_path(data, split, id_list, preprocess)
    check_out(out, split_dir, id_list, preprocess, overwrite=overwrite)
    check_writable(out.parent, "cache folder", folder=True)
    check_complete(split_dir, id_list)

    start = time.perf_counter()
    stats = source_stats(split_dir, id_list)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_MARK}", dir=out.parent))
    try:
        shapes = _fill_arrays(tmp, split_dir, id_list, preprocess, workers, progress)
        changed = [rel for rel, st in source_stats(split_dir, id_list).items() if st != stats[rel]]
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
            "count": len(id_list),
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


def _check_request(split_dir: Path, id_list: list[str], workers: int) -> None:
    if not id_list:
        raise DataError(f"no samples selected in {split_dir}")
    dups = [i for i, k in Counter(id_list).items() if k > 1]
    if dups:
        raise DataError(f"the id list names sample {dups[0]} more than once; give each id once")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")


def _fill_arrays(
    tmp: Path, split_dir: Path, id_list: list[str], preprocess: PreprocessConfig, workers: int, progress: bool
) -> dict[str, tuple[int, ...]]:
    """Create the arrays in ``tmp`` and preprocess every sample into them; their shapes.
    DataError naming every sample that cannot be prepared."""
    n, (h, w) = len(id_list), preprocess.size
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
    return shapes


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
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_MARK}old-", dir=out.parent))
    os.replace(out, trash / "old")
    os.replace(tmp, out)
    shutil.rmtree(trash, ignore_errors=True)


