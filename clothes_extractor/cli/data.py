"""Data commands: make-sample-data, split, dedup, downsample, prepare (split, dedup and
downsample import no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from clothes_extractor.cli.app import _stderr, app, fail, handle_errors

# The options split, downsample and prepare share, declared once.
_LayoutOpt = Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].")]
_CategoryOpt = Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: all three].")]


@app.command("make-sample-data")
@handle_errors
def make_sample_data_command(
    root: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to create (new or empty) for the data set.")],
    samples: Annotated[
        int, typer.Option("-n", "--samples", min=1, help="Number of samples; the last quarter goes to test/.")
    ] = 24,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files (byte for byte).")] = 0,
    without_garment: Annotated[
        int,
        typer.Option(
            "--without-garment", min=0, metavar="K",
            help="Make the last K train samples wear a dress (label 6): no upper-clothes pixel, for testing `split`.",
        ),
    ] = 0,
    layout: Annotated[
        str, typer.Option("--layout", help="viton-hd (768x1024), viton (2018, 192x256) or dresscode (768x1024; dresses go to dresses/).")
    ] = "viton-hd",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty folder, replacing its train/ and test/ samples.")
    ] = False,
) -> None:
    """Write a small synthetic data set in the exact VITON-HD layout and formats (or VITON's, Dress Code's).

    Each sample is a simple drawn person wearing a T-shirt and the flat catalogue image of the
    same T-shirt (same shape, colours and pattern), with its parse map, cloth mask and pair
    files: enough to try every command without downloading VITON-HD.

    Example: `clothes-extractor make-sample-data data/synthetic --samples 48`
    """
    from clothes_extractor.data.synthetic import make_sample_data

    size = (256, 192) if layout == "viton" else (1024, 768)
    made = make_sample_data(
        root, layout=layout, samples=samples, seed=seed, empty=without_garment, overwrite=overwrite, size=size, progress=True
    )
    empty = f", {len(made.empty_ids)} without garment" if made.empty_ids else ""
    typer.echo(
        f"wrote {len(made.train_ids) + len(made.test_ids)} synthetic samples ({len(made.train_ids)} train, "
        f"{len(made.test_ids)} test{empty}; seed {seed}) to {made.root}"
    )


@app.command("split")
@handle_errors
def split_command(
    data: Annotated[Path, typer.Option("-d", "--data", help="Data set root (holds train/, test/) or one split folder.")],
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Where the lists go [default: the --data folder].")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", min=0.0, max=1.0, help="Share of the usable samples for validation (at least 1).")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffle: same seed, same lists.")] = 42,
    split: Annotated[str, typer.Option("--split", help="Which split folder to divide: train or test.")] = "train",
    labels: Annotated[
        str, typer.Option("--labels", help="Garment labels a sample must contain, e.g. 5 or 5,6,7 or upper-clothes,dress.")
    ] = "5",
    exclude: Annotated[
        Optional[Path],
        typer.Option("--exclude", help="Ids to leave out: a list (one id per line) or a JSON file of `<id>.jpg` names."),
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", min=1, help="Processes reading parse maps [default: up to 4].")
    ] = None,
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing id lists.")] = False,
) -> None:
    """Write deterministic train/validation id lists (train_ids.txt, val_ids.txt).

    Ids are sorted, then shuffled with the seed, so the lists do not depend on the file
    system. Samples with missing files, an unreadable parse map or no pixel of the garment
    labels are skipped, reported, and listed with their reason in skipped_ids.txt.

    Example: `clothes-extractor split --data data/zalando-hd-resized --exclude dups.json`
    """
    from clothes_extractor.data.layouts import data_root
    from clothes_extractor.data.split import make_split
    from clothes_extractor.data.viton import parse_garment_labels

    result = make_split(
        data_root(data, layout, category), out=out, val_fraction=val_fraction, seed=seed, split=split,
        garment_labels=parse_garment_labels(labels), exclude=exclude, overwrite=overwrite,
        workers=workers, progress=True,
    )
    if exclude is not None:
        not_found = f" ({result.excluded_not_found} listed ids are not in this split)" if result.excluded_not_found else ""
        typer.echo(f"excluded {result.excluded} ids listed in {exclude}{not_found}")
    if result.n_skipped:
        typer.echo(f"skipped {result.n_skipped} samples (all listed with their reason in {result.paths['skipped']}):")
        shown = 20
        for reason, ids in result.skipped.items():
            if ids:
                more = f" ... and {len(ids) - shown} more" if len(ids) > shown else ""
                typer.echo(f"  {reason}: {len(ids)}: {' '.join(ids[:shown])}{more}")
    typer.echo(
        f"split {split}: {len(result.train_ids)} train + {len(result.val_ids)} validation ids (seed {seed}) "
        f"-> {result.paths['train']}, {result.paths['val']}"
    )


@app.command(
    "dedup",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor dedup --data data/zalando-hd-resized\n\n"
        "  clothes-extractor dedup --data ../shared/data/viton-2018 --out runs/dedup-viton\n\n"
        "  clothes-extractor split --data data/zalando-hd-resized --exclude data/zalando-hd-resized/dedup_exclude.json\n\n"
        "  clothes-extractor evaluate --data data/zalando-hd-resized --split test --exclude data/zalando-hd-resized/dedup_exclude.json"
    ),
)
@handle_errors
def dedup_command(
    data: Annotated[Path, typer.Option("-d", "--data", help="Data set root (VITON-HD, VITON or Dress Code layout) or one split folder.")],
    out: Annotated[
        Optional[Path], typer.Option("--out", metavar="DIR", help="Where duplicates.json and dedup_exclude.json go [default: the --data folder].")
    ] = None,
    layout: Annotated[
        Optional[str], typer.Option("--layout", help="viton-hd, viton or dresscode [default: detected from the folders].")
    ] = None,
    garment_threshold: Annotated[
        float, typer.Option("--garment-threshold", min=0.0, help="Largest structure distance of two duplicate garment images.")
    ] = 0.09,
    photo_threshold: Annotated[
        float, typer.Option("--photo-threshold", min=0.0, help="Largest structure distance of two duplicate photos.")
    ] = 0.15,
    colour_threshold: Annotated[
        float, typer.Option("--colour-threshold", min=0.0, help="Largest local chroma difference (grey levels) of two duplicates.")
    ] = 10.0,
    workers: Annotated[
        Optional[int], typer.Option("--workers", min=1, help="Processes decoding in parallel [default: all cores].")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace earlier results.")] = False,
) -> None:
    """Find near-duplicate garments and photos inside each split and across train and test (leaks).

    Garment images and photos are compared separately, with perceptual signatures robust to
    re-encoding, resizing and shifts of a few pixels; a slightly recoloured garment is not a
    duplicate. Writes `duplicates.json` (every group: kind, train/test/across, members, the
    distances that joined them) and `dedup_exclude.json`, the ids to leave out, in the JSON
    layout `split --exclude` and `evaluate --exclude` read. Excluded: of each group with train
    and test members, every test member (leaked); of the other groups, every member but the
    first (by split, then id; duplicates). An id excluded for its garment or its photo is
    excluded for the sample.
    """
    from rich.table import Table

    from clothes_extractor.data.dedup import dedup

    result = dedup(
        data, out=out, layout=layout, thresholds={"garment": garment_threshold, "photo": photo_threshold},
        colour_threshold=colour_threshold, workers=workers, overwrite=overwrite, progress=True,
    )
    counts = result.counts()
    in_groups = {k: sum(len(g.members) for g in result.groups if g.kind == k) for k in counts}
    table = Table(title=f"near-duplicate groups in {data} ({', '.join(f'{s}: {n}' for s, n in result.samples.items())} samples)")
    for column in ("kind", "within train", "within test", "across (leaks)", "images in groups"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, c in counts.items():
        table.add_row(kind, str(c["train"]), str(c["test"]), str(c["across"]), str(in_groups[kind]))
    from rich.console import Console

    Console().print(table)
    excluded = "; ".join(
        f"{split}: " + ", ".join(f"{len(ids)} {reason}" for reason, ids in reasons.items())
        for split, reasons in result.exclude.items()
    ) or "none"
    typer.echo(f"excluded ids: {excluded} -> {result.paths['exclude']}")
    typer.echo(f"groups -> {result.paths['duplicates']}; {result.images} images in {result.seconds:.1f} s")
    if result.unreadable:
        typer.echo(f"{len(result.unreadable)} image(s) missing or unreadable, left out (listed in {result.paths['duplicates']})")


@app.command(
    "downsample",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor downsample -f 20 -s 64\n\n"
        "  clothes-extractor downsample -s 128 --src data/viton --dst data/viton-128\n\n"
        "  clothes-extractor downsample -f 50 -s 256 --src data/DressCode --dst data/dresscode-256 --category upper_body,dresses"
    ),
)
@handle_errors
def downsample_command(
    files: Annotated[
        Optional[int],
        typer.Option("-f", "--files", min=1, help="Keep the first N sample ids (sorted) of each split (Dress Code: of each split of each category); all when absent."),
    ] = None,
    size: Annotated[
        int, typer.Option("-s", "--size", min=1, help="Longest side of the output images, in pixels (aspect kept; at most the source's).")
    ] = 256,
    src: Annotated[
        Path, typer.Option("--src", help="Data set root: VITON-HD or VITON (holds train/, test/, *_pairs.txt) or Dress Code (holds upper_body/, ...).")
    ] = Path("data/zalando-hd-resized"),
    dst: Annotated[Path, typer.Option("--dst", help="Where the reduced copy goes.")] = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: every category in --src].")] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", min=1, help="Processes decoding in parallel [default: all cores].")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a destination written at another size or layout.")
    ] = False,
) -> None:
    """Copy the first N samples of a data set at a reduced size, in its own layout.

    Works on the three layouts, detected from the folder: VITON-HD, VITON (2018) and Dress
    Code. Every file of a chosen sample (photo, parse map, garment, masks, pose, ...) is
    written, so all modalities stay matched; parse maps keep their palette and exact label
    indices; pair files are copied for the chosen ids. It only reduces: a size larger than the
    source photos is refused. An interrupted run resumes where it stopped.
    """
    from rich.markup import escape

    from clothes_extractor.data.downsample import downsample

    report = downsample(
        src, dst, size=size, first=files, layout=layout, categories=category, workers=workers, overwrite=overwrite
    )
    err = _stderr()
    for path, message in report.failed:
        err.print(f"[bold red]failed:[/] {escape(f'{path}: {message}')}", highlight=False, soft_wrap=True)
    ids = ", ".join(f"{split or 'samples'}: {n}" for split, n in report.ids.items())
    typer.echo(
        f"downsampled {report.layout} to {report.size}px into {report.dst} ({ids}): {report.written} written, "
        f"{report.skipped} skipped (already done), {len(report.failed)} failed, "
        f"{report.missing} missing in the source; {report.seconds:.1f} s, "
        f"{report.files_per_second:.0f} files/s"
    )
    if report.failed:
        raise fail(f"{len(report.failed)} file(s) could not be read; listed above. The others were written.")


@app.command(
    "prepare",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor prepare --data data/vitonhd-256 --size 224\n\n"
        "  clothes-extractor prepare --data data/zalando-hd-resized --split test --size 512x384 --list protocol_ids.txt"
    ),
)
@handle_errors
def prepare_command(
    data: Annotated[Path, typer.Option("-d", "--data", help="Data set root (holds train/, test/) or one split folder.")],
    size: Annotated[str, typer.Option("--size", help="Model size: an int or HxW (e.g. 512x384), multiples of 32.")] = "224",
    split: Annotated[str, typer.Option("--split", help="Which split folder: train or test.")] = "train",
    lists: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--list", metavar="FILE",
            help="Id list to prepare (repeatable) [default: DATA/train_ids.txt and DATA/val_ids.txt when present, else every sample of the split].",
        ),
    ] = None,
    labels: Annotated[str, typer.Option("--labels", help="Garment parse labels, e.g. 5 or 5,6,7.")] = "5",
    background: Annotated[str, typer.Option("--background", help="white, black or R,G,B: the catalogue background.")] = "white",
    framing: Annotated[str, typer.Option("--framing", help="photo or fill: how the garment sits in the model frame (as in training).")] = "photo",
    out: Annotated[
        Optional[Path], typer.Option("--out", metavar="DIR", help="Folder that holds the caches [default: DATA/prepared].")
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", min=1, help="Processes decoding in parallel [default: all cores].")
    ] = None,
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Rebuild caches that already exist.")] = False,
) -> None:
    """Preprocess a data set once into memory-mapped uint8 arrays, so training reads batches at memory speed.

    For each id list, writes `OUT/<split>-<H>x<W>-<key>/` with inputs.npy, targets.npy,
    alphas.npy (exactly the arrays the dataset computes from the files), ids.txt and
    manifest.json (settings, and the size and modification time of every source file: a cache
    whose files changed is refused as stale). The key hashes the settings and the ids, so each
    size, label set, background and list has its own cache. Written atomically.
    """
    from clothes_extractor.data.layouts import data_root
    from clothes_extractor.train.cache_plan import build_caches, plan_caches
    from clothes_extractor.train.config import preprocess_for

    preprocess = preprocess_for(
        data, layout=layout, category=category, size=size, labels=labels, background=background, framing=framing
    )
    root = data_root(data, layout, category)
    plan = plan_caches(root, split=split, lists=lists, preprocess=preprocess, out=out, overwrite=overwrite)
    h, w = preprocess.size
    for built in build_caches(root, plan, split=split, preprocess=preprocess, workers=workers, overwrite=overwrite):
        typer.echo(
            f"prepared {built.samples} samples ({built.job.describe(split)}) at {h}x{w}: "
            f"{built.megabytes:.1f} MB in {built.seconds:.1f} s -> {built.job.path}"
        )


# --- training commands ---------------------------------------------------------------------------
# An option left out is None: the library's default applies (TrainConfig.for_mode, SegmenterConfig),
# and --help shows that default. On --resume the run's settings apply instead.
