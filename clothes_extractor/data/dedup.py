"""`dedup`: near-duplicate garments and photos inside a split and across train and test.

No torch here: numpy and Pillow only, so `dedup` starts fast.

Garment images and person photos are compared each with their own kind:

1. **Thumbnail**: decoded in libjpeg's draft mode (DCT scaling, never below 64 px a side),
   resized (bilinear, antialiased) to 64x64 YCbCr. Its orthonormal 2-D DFT is kept in bands.
2. **Exact copies** (identical thumbnails) are paired first, at distance 0.
3. **Candidates** (recall): the magnitudes of the luma spectrum up to 8 cycles per image do not
   change when the image shifts; pairs within ``RADIUS`` x the threshold by this descriptor are
   found with chunked matrix products (16k images: seconds).
4. **Verification** (precision): the shift between the two images is fitted (Gauss-Newton on
   the Fourier phases, up to 4 thumbnail pixels, 6 % of the side); the *structure distance* is
   what it leaves of the luma band (16 cycles for garments, 8 for photos, whose frame cuts the
   person so a shift also changes the edges), relative to the images' contrast (with a floor of
   6 grey levels, so flat images are not judged on JPEG noise). The *colour distance* is the
   largest difference of the shifted, low-passed chroma (Cb, Cr; 4 cycles) over the thumbnail
   less its border, in grey levels: a slightly recoloured garment has the same structure but
   not the same colour, and is not a duplicate. Duplicates pass both thresholds.
5. **Groups** are the connected components of the duplicate pairs.

Thresholds, measured on 200 real VITON (2018) garments and photos re-encoded at quality 60,
resized (x0.5, x0.75, x2), shifted by 3 px, or all at once, against the nearest pairs of its
5,733 distinct images: garments stayed under 0.082 and the nearest different garments (two
black turtlenecks, two black polos) are at 0.101 and 0.116, so 0.09; photos stayed under 0.115
(the 3-px shifts) and different photos start at 0.225, so 0.15. The colour distance of those
copies stayed under 5.0 (garments) and 7.9 (photos); a 10 % tint gives 11 or more, a 30-degree
hue turn of a photo 11 or more, VITON's recoloured photo pairs (a navy and a black version of
one shirt) 23: so 10.

The exclusion list (TryOffDiff's JSON layout, which `split --exclude` and `evaluate --exclude`
read): of every group with train and test members, the test members (*leaked*: the test set
must not hold what training saw); of the other groups, all members but the first by split,
then id (*duplicates*). What is excluded for one kind is excluded for the sample.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clothes_extractor import __version__
from clothes_extractor.data.image_signatures import BANDS, find_pairs, read_signatures
from clothes_extractor.data.workers import cpu_count
from clothes_extractor.errors import ConfigError, DataError
from clothes_extractor.fileio import atomic_write_text, check_writable

KINDS: tuple[str, ...] = ("garment", "photo")
SPLIT_ORDER: tuple[str, ...] = ("train", "test")
DEFAULT_THRESHOLDS: dict[str, float] = {"garment": 0.09, "photo": 0.15}
DEFAULT_COLOUR_THRESHOLD = 10.0
DUPLICATES_FILE, EXCLUDE_FILE = "duplicates.json", "dedup_exclude.json"



@dataclass(frozen=True)
class Record:
    """One sample: where it is and its two images (None: the data set has no such file)."""

    split: str
    id: str
    photo: Path | None
    garment: Path | None


@dataclass(frozen=True)
class Group:
    """Near-duplicate images of one kind. ``members`` are (split, id), sorted train first;
    ``pairs`` the matches that joined them: (member, member, structure distance, colour)."""

    kind: str
    members: tuple[tuple[str, str], ...]
    pairs: tuple[tuple[int, int, float, float], ...]

    @property
    def scope(self) -> str:
        """``train`` or ``test`` (all members in that split) or ``across`` (a leak)."""
        splits = {s for s, _ in self.members}
        return splits.pop() if len(splits) == 1 else "across"


@dataclass(frozen=True)
class DedupResult:
    groups: list[Group]
    exclude: dict[str, dict[str, list[str]]]  # split -> reason (duplicates, leaked) -> ids
    samples: dict[str, int]  # split -> samples
    images: int  # images compared (both kinds)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # "duplicates", "exclude" -> file

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> scope (train, test, across) -> number of groups."""
        out = {k: {"train": 0, "test": 0, "across": 0} for k in KINDS}
        for g in self.groups:
            out[g.kind][g.scope] = out[g.kind].get(g.scope, 0) + 1
        return out


# --- groups and the exclusion list --------------------------------------------------------------


def connected_groups(n: int, pairs: Sequence[tuple[int, int, float, float]]) -> list[tuple[list[int], list]]:
    """Connected components (of two or more) of the pairs: (sorted members, their pairs)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, *_ in pairs:
        parent[root(i)] = root(j)
    components: dict[int, tuple[list[int], list]] = {}
    for i, j, *rest in pairs:
        components.setdefault(root(i), ([], []))[1].append((i, j, *rest))
    for i in range(n):
        if (r := root(i)) in components:
            components[r][0].append(i)
    return list(components.values())


def _split_key(member: tuple[str, str]) -> tuple[int, str]:
    split, sample_id = member
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), sample_id)


def make_groups(kind: str, records: Sequence[Record], pairs: Sequence[tuple[int, int, float, float]]) -> list[Group]:
    """Groups of ``kind`` from pairs of indices into ``records``."""
    groups = []
    for members, edges in connected_groups(len(records), pairs):
        members = sorted(members, key=lambda i: _split_key((records[i].split, records[i].id)))
        position = {m: p for p, m in enumerate(members)}
        groups.append(Group(
            kind,
            tuple((records[m].split, records[m].id) for m in members),
            tuple(sorted((min(position[i], position[j]), max(position[i], position[j]), d, c) for i, j, d, c in edges)),
        ))
    return sorted(groups, key=lambda g: (KINDS.index(g.kind), _split_key(g.members[0])))


def exclusion(groups: Sequence[Group]) -> dict[str, dict[str, list[str]]]:
    """split -> {"duplicates": ids, "leaked": ids}: the test members of groups with a train
    member (leaked), and all but the first member of the other groups (duplicates)."""
    leaked: set[tuple[str, str]] = set()
    duplicates: set[tuple[str, str]] = set()
    for g in groups:
        train = [m for m in g.members if m[0] == "train"]
        if train and len(train) < len(g.members):
            leaked.update(m for m in g.members if m[0] != "train")
            duplicates.update(train[1:])
        else:
            duplicates.update(g.members[1:])
    duplicates -= leaked
    out: dict[str, dict[str, list[str]]] = {}
    for reason, members in (("duplicates", duplicates), ("leaked", leaked)):
        for split, sample_id in sorted(members, key=_split_key):
            out.setdefault(split, {}).setdefault(reason, []).append(sample_id)
    return out


# --- the data set -------------------------------------------------------------------------------


def records_of(root: str | os.PathLike, layout: str | None = None) -> tuple[str, list[Record]]:
    """(layout name, records of every split found) of a data set root or one split folder."""
    from clothes_extractor.data import layouts

    root = Path(root)
    found = layouts.detect_layout(root, layout)  # DataError: no folder, no known layout
    records: list[Record] = []
    errors: list[str] = []
    seen: set[Path] = set()
    for split in SPLIT_ORDER:
        try:
            opened = layouts.open_split(root, split, layout=found.name)
        except DataError as exc:  # no such split here (Dress Code has no test pair file)
            errors.append(str(exc))
            continue
        if opened.dir in seen and not opened.categories:
            continue  # a split folder given directly: read once
        seen.add(opened.dir)
        name = split if opened.categories or opened.dir != root else (root.name if root.name in SPLIT_ORDER else split)
        for sample_id in opened.list_ids():
            files = opened.files(sample_id)
            records.append(Record(name, sample_id, files.photo, files.garment))
    if not records:
        raise DataError(errors[0] if errors else f"no samples found in {root}")
    return found.name, records


def find_duplicates(
    records: Sequence[Record],
    *,
    thresholds: dict[str, float] | None = None,
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> DedupResult:
    """Near-duplicate groups of ``records`` (any splits, any layout) and their exclusion list.

    The pure core of `dedup`: reads the images and writes nothing. A missing or unreadable image
    is listed in ``unreadable`` and left out of the comparisons.
    """
    start = time.perf_counter()
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    groups: list[Group] = []
    unreadable: list[tuple[str, str]] = []
    images = 0
    for kind in KINDS:
        having = [r for r in records if getattr(r, kind) is not None]
        paths = [getattr(r, kind) for r in having]
        sig, digests, readable, failed = read_signatures(paths, BANDS[kind], workers, progress)
        unreadable += [(str(paths[i]), why) for i, why in failed]
        images += len(readable)
        pairs = find_pairs(sig, digests, thresholds[kind], colour_threshold)
        groups += make_groups(kind, [having[i] for i in readable], pairs)
    samples: dict[str, int] = {}
    for r in records:
        samples[r.split] = samples.get(r.split, 0) + 1
    return DedupResult(
        groups=groups,
        exclude=exclusion(groups),
        samples=samples,
        images=images,
        unreadable=unreadable,
        seconds=time.perf_counter() - start,
        thresholds={**thresholds, "colour": colour_threshold},
    )


def _report(result: DedupResult, root: Path, layout: str) -> dict:
    def member(m: tuple[str, str]) -> dict[str, str]:
        return {"split": m[0], "id": m[1]}

    return {
        "tool": f"clothes-extractor {__version__} dedup",
        "data": str(root),
        "layout": layout,
        "samples": result.samples,
        "images": result.images,
        "thresholds": result.thresholds,
        "counts": result.counts(),
        "excluded": result.exclude,
        "groups": [
            {
                "kind": g.kind,
                "scope": g.scope,
                "members": [member(m) for m in g.members],
                "pairs": [
                    {"a": member(g.members[a]), "b": member(g.members[b]), "distance": d, "colour": c}
                    for a, b, d, c in g.pairs
                ],
            }
            for g in result.groups
        ],
        "unreadable": [{"path": p, "error": why} for p, why in result.unreadable],
    }


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("dedup: reading images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("images", total=total)
        yield lambda n: bar.advance(task, n)


def dedup(
    data: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    layout: str | None = None,
    thresholds: dict[str, float] | None = None,
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> DedupResult:
    """Find the near-duplicates of the data set ``data`` and write ``duplicates.json`` and
    ``dedup_exclude.json`` to ``out`` (default: ``data``). Refuses to replace them unless
    ``overwrite``; ``workers`` processes decode (default: all cores)."""
    for name, value in {**(thresholds or {}), "colour": colour_threshold}.items():
        if not value > 0:
            raise ConfigError(f"the {name} threshold must be positive, got {value}")
    workers = cpu_count() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(data)
    layout_name, records = records_of(root, layout)
    out = Path(out) if out is not None else root
    paths = {"duplicates": out / DUPLICATES_FILE, "exclude": out / EXCLUDE_FILE}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise DataError(f"{', '.join(existing)} already exist; pass --overwrite to replace them, or --out to write elsewhere")
    check_writable(paths["duplicates"], "dedup report")  # before the slow part
    total = sum(getattr(r, k) is not None for r in records for k in KINDS)
    with _progress_bar(total, progress) as advance:
        result = find_duplicates(records, thresholds=thresholds, colour_threshold=colour_threshold,
                                 workers=workers, progress=advance)
    try:
        atomic_write_text(paths["duplicates"], json.dumps(_report(result, root, layout_name), indent=1) + "\n")
        atomic_write_text(paths["exclude"], json.dumps(result.exclude, indent=1) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write the results to {out}: {exc.strerror or exc}; choose a writable folder with --out") from None
    return DedupResult(**{**result.__dict__, "paths": paths})
