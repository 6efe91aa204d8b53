"""The files of a prepared cache: names, the cache key, the manifest and staleness.

See :mod:`clothes_extractor.data.prepared` for what a cache is; its ``build`` module writes one
and its ``dataset`` module reads one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.viton import resolve_ids, resolve_split_dir
from clothes_extractor.errors import DataError

FORMAT = 1
MANIFEST, IDS_FILE = "manifest.json", "ids.txt"
ARRAY_FILES: dict[str, str] = {"input": "inputs.npy", "target": "targets.npy", "alpha": "alphas.npy"}
PREPARED_FOLDER = "prepared"  # default parent of the caches, inside the data set root
TMP_MARK = ".tmp-"

IdsArg = Sequence[str] | str | os.PathLike | None


# --- naming --------------------------------------------------------------------------------------


def ids_and_list(split_dir: Path, ids: IdsArg) -> tuple[list[str], str | None]:
    """The ids asked for and the list file they came from (None for a list or all ids)."""
    list_file = str(Path(ids).resolve()) if isinstance(ids, (str, os.PathLike)) else None
    return resolve_ids(split_dir, ids), list_file


def cache_key(split: str, ids: Sequence[str], preprocess: PreprocessConfig) -> str:
    """12 hex digits naming (split, preprocessing settings, ids in order)."""
    text = json.dumps({"split": split, "preprocess": preprocess.pixels().to_dict(), "ids": list(ids)}, sort_keys=True)
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
    id_list, _ = ids_and_list(split_dir, ids)
    h, w = preprocess.size
    parent = Path(root) if root is not None else Path(data) / PREPARED_FOLDER
    return parent / f"{split}-{h}x{w}-{cache_key(split, id_list, preprocess)}"


def rebuild_command(manifest: dict[str, Any]) -> str:
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


def source_stats(split_dir: Path, ids: Sequence[str]) -> dict[str, list[int]]:
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


def describe(p: PreprocessConfig) -> str:
    extra = (f", framing {p.framing}" if p.framing != "photo" else "") + (f", categories {','.join(p.categories)}" if p.categories else "")
    return f"size {p.size[0]}x{p.size[1]}, labels {list(p.garment_labels)}, background {p.background}{extra}"



def open_arrays(folder: Path, mode: str) -> dict[str, np.ndarray]:
    return {k: np.load(folder / name, mmap_mode=mode) for k, name in ARRAY_FILES.items()}


