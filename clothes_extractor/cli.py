"""The `clothes-extractor` command line: thin Typer commands over the library.

Each command parses its options, builds a config, calls one library function and reports.
torch is imported inside the commands that need it, so `--help` and the data commands start
fast. User mistakes (ClothesExtractorError) print one clear message to stderr and exit 1.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from clothes_extractor import __version__
from clothes_extractor.train.config import MODE_DEFAULTS  # the training defaults; imports no torch
from clothes_extractor.demo import DemoConfig  # for its defaults; imports no torch
from clothes_extractor.serve import ServeConfig  # for its defaults; imports neither torch nor gradio

if TYPE_CHECKING:
    from clothes_extractor.train.config import TrainConfig
    from clothes_extractor.train.segmenter import SegmenterConfig

app = typer.Typer(
    name="clothes-extractor",
    help=(
        "Virtual try-off on VITON-HD: from a photo of a person and a mask of the garment, "
        "generate the flat catalogue image of the garment.\n\n"
        "Typical flow: make-sample-data (or download VITON-HD) -> downsample -> split -> "
        "train-unet / train-gan -> evaluate -> extract."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error (no traceback) and return the Exit to raise."""
    from rich.markup import escape

    # escaped: a message may hold brackets, e.g. pip install "clothes-extractor[app]"
    _stderr().print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _user_message(exc: Exception) -> str:
    """The message of a user error; one raised in a DataLoader worker comes back wrapped with the
    worker's traceback as text: keep only its last line, the original message."""
    message = str(exc)
    if "Original Traceback" in message:
        last = [line for line in message.splitlines() if line.strip()][-1]
        message = last.split(": ", 1)[1] if last.startswith("clothes_extractor.errors.") else last
    return message


def handle_errors(fn):
    """Turn the library's user errors into a message and exit code 1, Ctrl-C into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from clothes_extractor.errors import ClothesExtractorError

        try:
            return fn(*args, **kwargs)
        except ClothesExtractorError as exc:
            raise fail(_user_message(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clothes-extractor {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


# --- data commands -------------------------------------------------------------------------------
# (make-sample-data, downsample, split: no torch import)


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
    layout: Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].")] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: all three].")] = None,
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
    layout: Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].")] = None,
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
    layout: Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].")] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: all three].")] = None,
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

_TRAIN_PANEL = "Data"
_MODEL_PANEL = "Model"
_LOSS_PANEL = "Losses"
_RUN_PANEL = "Run"

# Options shared by the training commands: one definition, one help text.
_AlphaOpt = Annotated[Optional[float], typer.Option("--alpha", min=0, help="Weight of the alpha (cloth mask) loss [default: 1.0].", rich_help_panel=_LOSS_PANEL)]
_AugmentOpt = Annotated[bool, typer.Option("--augment/--no-augment", help="Paired flip, small rotation and zoom.", rich_help_panel=_TRAIN_PANEL)]
_BackgroundOpt = Annotated[Optional[str], typer.Option("--background", help="white, black or R,G,B: the catalogue background [default: white].", rich_help_panel=_TRAIN_PANEL)]
_BsOpt = Annotated[Optional[int], typer.Option("--bs", min=1, help="Batch size per process (under torchrun: x processes) [default: 32 on CUDA, 8 on a CPU].", rich_help_panel=_RUN_PANEL)]
_CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the networks (worth it on CUDA; on a CPU it compiles for minutes: off by default).", rich_help_panel=_RUN_PANEL)]
_ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads [default: the machine's cores; OMP_WAIT_POLICY=PASSIVE unless set].", rich_help_panel=_RUN_PANEL)]
_DataOpt = Annotated[Path, typer.Option("--data", help="Data set root with train/ and the lists from `split`.", rich_help_panel=_TRAIN_PANEL)]
_DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda [default: auto].", rich_help_panel=_RUN_PANEL)]
_EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="Any smp encoder name [default: resnet34].", rich_help_panel=_MODEL_PANEL)]
_EncoderWeightsOpt = Annotated[Optional[str], typer.Option("--encoder-weights", help="imagenet or none [default: imagenet].", rich_help_panel=_MODEL_PANEL)]
_EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs [default: 200; on --resume: the run's].", rich_help_panel=_RUN_PANEL)]
_LayoutOpt = Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected from the folder].", rich_help_panel=_TRAIN_PANEL)]
_CategoryOpt = Annotated[Optional[str], typer.Option("--category", help="Dress Code categories, e.g. upper_body,dresses [default: all three].", rich_help_panel=_TRAIN_PANEL)]
_FramingOpt = Annotated[Optional[str], typer.Option("--framing", help="photo: the garment keeps its scale in the photo frame; fill: it fills the model frame, like the target [default: photo].", rich_help_panel=_TRAIN_PANEL)]
_LabelsOpt = Annotated[Optional[str], typer.Option("--labels", help="Garment parse labels, e.g. 5 or 5,6,7 [default: 5].", rich_help_panel=_TRAIN_PANEL)]
_MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after this many steps in all (quick runs).", rich_help_panel=_RUN_PANEL)]
_OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Reuse a non-empty --out folder, replacing its checkpoints.", rich_help_panel=_RUN_PANEL)]
_PreparedOpt = Annotated[Optional[str], typer.Option("--prepared", help="Read the cache of `prepare`: auto (when built), on (required) or off [default: auto].", rich_help_panel=_TRAIN_PANEL)]
_ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", metavar="RUN", help="Continue the run in RUN (its settings; --epochs may extend it).", rich_help_panel=_RUN_PANEL)]
_SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 42].", rich_help_panel=_RUN_PANEL)]
_SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Model size: an int or HxW (e.g. 512x384), multiples of 32 [default: 224].", rich_help_panel=_TRAIN_PANEL)]
_TrainListOpt = Annotated[Optional[Path], typer.Option("--train-list", help="Train ids (default DATA/train_ids.txt).", rich_help_panel=_TRAIN_PANEL)]
_ValListOpt = Annotated[Optional[Path], typer.Option("--val-list", help="Validation ids (default DATA/val_ids.txt).", rich_help_panel=_TRAIN_PANEL)]
_VggWeightsOpt = Annotated[Optional[str], typer.Option("--vgg-weights", help="imagenet, or none (random VGG: for tests only) [default: imagenet].", rich_help_panel=_LOSS_PANEL)]
_WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=0, help="DataLoader worker processes [default: 2].", rich_help_panel=_TRAIN_PANEL)]

# Command-line names of config fields, where they differ.
_FIELD_NAMES = {"bs": "batch_size", "category": "categories", "lambda_l1": "l1"}
_PREPROCESS_OPTIONS = ("size", "labels", "background", "framing")


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user set (not None), by config field name, paths as text."""
    return {_FIELD_NAMES.get(k, k): str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}


def generator_config(mode: str, options: dict[str, Any]) -> TrainConfig:
    """The TrainConfig that `train-unet` (mode "unet") or `train-gan` ("gan") builds from its
    options (None: not set, the library's default)."""
    from clothes_extractor.train.config import TrainConfig, parse_weights, preprocess_for

    given = _given(options)
    words = {k: given.pop(k) for k in _PREPROCESS_OPTIONS if k in given}
    given["preprocess"] = preprocess_for(given["data"], layout=given.get("layout"), category=given.get("categories"), **words)
    for name in ("encoder_weights", "vgg_weights"):
        if name in given:
            given[name] = parse_weights(given[name], "--" + name.replace("_", "-"))
    return TrainConfig.for_mode(mode, **given)


def segmenter_config(options: dict[str, Any]) -> SegmenterConfig:
    """The SegmenterConfig that `train-segmenter` builds from its options (None: not set)."""
    from clothes_extractor.config import parse_size
    from clothes_extractor.data.viton import parse_garment_labels
    from clothes_extractor.train.config import parse_weights
    from clothes_extractor.train.segmenter import SegmenterConfig

    given = _given(options)
    augment = given.pop("augment", False)
    if augment:
        given["flip"] = 0.5  # half the samples
    parsers = {
        "size": parse_size, "label_set": str.lower, "arch": str.lower, "garment_labels": parse_garment_labels,
        "encoder_weights": lambda name: parse_weights(name, "--encoder-weights"),
    }
    given = {k: parsers[k](v) if k in parsers else v for k, v in given.items()}
    return SegmenterConfig(**given)


def _run_training(build, task: str, options: dict[str, Any]):
    """Build the config (or read the run's on --resume), train, and return the TrainResult; None
    on a rank other than 0 under torchrun (one report)."""
    from clothes_extractor.train.loop import TrainingInterrupted, train
    from clothes_extractor.train.runs import resume_config

    resume, overwrite = options.pop("resume"), options.pop("overwrite")
    cfg = resume_config(resume, task, **options) if resume is not None else build(options)
    try:
        result = train(cfg, resume=resume is not None, overwrite=overwrite)
    except TrainingInterrupted as exc:
        _stderr().print(f"[yellow]{exc}[/]")
        raise typer.Exit(130) from None
    return result if os.environ.get("RANK", "0") == "0" else None


def _report_files(result) -> None:
    typer.echo(f"checkpoints: {result.run / 'best.safetensors'}  {result.run / 'last.safetensors'}")
    typer.echo(f"metrics: {result.run / 'metrics.jsonl'}  pictures: {result.run / 'samples'}")


def _train_generator(mode: str, options: dict[str, Any]) -> None:
    result = _run_training(functools.partial(generator_config, mode), "generator", options)
    if result is None:
        return
    typer.echo(f"done: {result.epochs_done} epoch(s), {result.steps} steps, best val {result.best_key} {result.best:.4f}")
    _report_files(result)


_HELP_TRAIN_COMMON = """
Reads the lists written by `split` (`train_ids.txt`, `val_ids.txt` in the data set root). Each
epoch validates (L1, SSIM, PSNR), appends to `RUN/metrics.jsonl`, draws
`RUN/samples/epoch_NNN.png` (input | prediction | target) and saves `RUN/last.safetensors` and
`RUN/best.safetensors` (lowest validation L1). Ctrl-C saves a resumable checkpoint;
`--resume RUN` continues exactly where it stopped. Uses CUDA when available (bf16 autocast,
channels_last); on a CPU: fp32, `--threads` threads with sleeping idle threads
(OMP_WAIT_POLICY=PASSIVE unless set), batch 8 unless `--bs`, no compilation unless `--compile`.

Several GPUs: `torchrun --nproc_per_node=N --no-python clothes-extractor train-gan ...` trains with DDP
(NCCL; gloo on CPU); `--bs` is per process; only rank 0 writes. The discriminator's batch norm
becomes SyncBatchNorm on multi-GPU runs (use `--norm-d instance` to avoid batch statistics).

Pretrained weights: `--encoder-weights imagenet` (smp, Hugging Face cache) and the VGG16 of the
perceptual loss (torch hub cache) are used when present; without them the command stops at
once and names the file, or train with `--encoder-weights none` / `--perceptual 0`.
"""


def _mode_default(mode: str, name: str) -> str:
    return f"{MODE_DEFAULTS[mode][name]:g}"


@app.command(
    "train-unet",
    help="Train the UNet generator alone with L1 + perceptual + SSIM (+ alpha) losses.\n" + _HELP_TRAIN_COMMON,
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-unet --data data/zalando-low-res --size 224 --epochs 200 --bs 32\n\n"
        "  clothes-extractor train-unet --data data/zalando-low-res --encoder resnet18 --encoder-weights none --perceptual 0\n\n"
        "  clothes-extractor train-unet --resume runs/train-unet"
    ),
)
@handle_errors
def train_unet_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: _SizeOpt = None,
    labels: _LabelsOpt = None,
    background: _BackgroundOpt = None,
    framing: _FramingOpt = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: _AugmentOpt = False,
    prepared: _PreparedOpt = None,
    workers: _WorkersOpt = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    epochs: _EpochsOpt = None,
    bs: _BsOpt = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help=f"Generator learning rate [default: {_mode_default('unet', 'lr')}].", rich_help_panel=_RUN_PANEL)] = None,
    l1: Annotated[Optional[float], typer.Option("--l1", min=0, help=f"Weight of L1 [default: {_mode_default('unet', 'l1')}].", rich_help_panel=_LOSS_PANEL)] = None,
    perceptual: Annotated[Optional[float], typer.Option("--perceptual", min=0, help=f"Weight of the VGG16 perceptual loss (0: off, no VGG needed) [default: {_mode_default('unet', 'perceptual')}].", rich_help_panel=_LOSS_PANEL)] = None,
    ssim: Annotated[Optional[float], typer.Option("--ssim", min=0, help=f"Weight of the SSIM loss [default: {_mode_default('unet', 'ssim')}].", rich_help_panel=_LOSS_PANEL)] = None,
    alpha: _AlphaOpt = None,
    vgg_weights: _VggWeightsOpt = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-unet].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = False,
    threads: _ThreadsOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    _train_generator("unet", dict(locals()))


@app.command(
    "train-gan",
    help="Train pix2pix: the UNet generator against a conditional PatchGAN, with lambda x L1 (+ optional perceptual, SSIM).\n" + _HELP_TRAIN_COMMON,
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-gan --data data/zalando-low-res --epochs 200 --bs 32\n\n"
        "  clothes-extractor train-gan --data data/zalando-low-res --size 512x384 --gan-mode lsgan --encoder-weights none\n\n"
        "  clothes-extractor train-gan --resume runs/train-gan --epochs 300"
    ),
)
@handle_errors
def train_gan_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: _SizeOpt = None,
    labels: _LabelsOpt = None,
    background: _BackgroundOpt = None,
    framing: _FramingOpt = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: _AugmentOpt = False,
    prepared: _PreparedOpt = None,
    workers: _WorkersOpt = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    norm_d: Annotated[Optional[str], typer.Option("--norm-d", help="Discriminator norm: batch or instance [default: batch].", rich_help_panel=_MODEL_PANEL)] = None,
    epochs: _EpochsOpt = None,
    bs: _BsOpt = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help=f"Generator learning rate [default: {_mode_default('gan', 'lr')}]; Adam betas (0.5, 0.999).", rich_help_panel=_RUN_PANEL)] = None,
    lr_d: Annotated[Optional[float], typer.Option("--lr-d", help="Discriminator learning rate [default: 0.0002].", rich_help_panel=_RUN_PANEL)] = None,
    lambda_l1: Annotated[Optional[float], typer.Option("--lambda-l1", "--l1", min=0, help=f"Weight of L1 (pix2pix lambda) [default: {_mode_default('gan', 'l1')}].", rich_help_panel=_LOSS_PANEL)] = None,
    perceptual: Annotated[Optional[float], typer.Option("--perceptual", min=0, help=f"Weight of the VGG16 perceptual loss (0: off) [default: {_mode_default('gan', 'perceptual')}].", rich_help_panel=_LOSS_PANEL)] = None,
    ssim: Annotated[Optional[float], typer.Option("--ssim", min=0, help=f"Weight of the SSIM loss [default: {_mode_default('gan', 'ssim')}].", rich_help_panel=_LOSS_PANEL)] = None,
    alpha: _AlphaOpt = None,
    gan_mode: Annotated[Optional[str], typer.Option("--gan-mode", help="vanilla (BCE) or lsgan [default: vanilla].", rich_help_panel=_LOSS_PANEL)] = None,
    vgg_weights: _VggWeightsOpt = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-gan].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = False,
    threads: _ThreadsOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    _train_generator("gan", dict(locals()))


@app.command(
    "train-segmenter",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor train-segmenter --data data/vitonhd-256 --size 256x192 --epochs 50\n\n"
        "  clothes-extractor train-segmenter --data data/vitonhd-256 --labels viton13 --arch fpn --encoder resnet50\n\n"
        "  clothes-extractor train-segmenter --resume runs/train-segmenter --epochs 80"
    ),
)
@handle_errors
def train_segmenter_command(
    data: _DataOpt = Path("data/zalando-low-res"),
    layout: _LayoutOpt = None,
    category: _CategoryOpt = None,
    size: Annotated[Optional[str], typer.Option("--size", help="Model size: an int or HxW, multiples of 32 (VITON-HD's 3:4 by default) [default: 256x192].", rich_help_panel=_TRAIN_PANEL)] = None,
    label_set: Annotated[Optional[str], typer.Option("--labels", help="Label set: cihp20 (the 20 parse labels) or viton13 (VITON-HD's 13 groups) [default: cihp20].", rich_help_panel=_TRAIN_PANEL)] = None,
    garment_labels: Annotated[Optional[str], typer.Option("--garment", help="Garment parse labels whose IoU validation reports, e.g. 5 or 5,6,7 [default: 5].", rich_help_panel=_TRAIN_PANEL)] = None,
    train_list: _TrainListOpt = None,
    val_list: _ValListOpt = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Horizontal flips (half the samples), left and right labels swapped.", rich_help_panel=_TRAIN_PANEL)] = False,
    workers: _WorkersOpt = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="smp architecture: unet, unetplusplus, fpn, deeplabv3plus or segformer [default: unet].", rich_help_panel=_MODEL_PANEL)] = None,
    encoder: _EncoderOpt = None,
    encoder_weights: _EncoderWeightsOpt = None,
    ce: Annotated[Optional[float], typer.Option("--ce", min=0, help="Weight of cross-entropy [default: 1.0].", rich_help_panel=_LOSS_PANEL)] = None,
    dice: Annotated[Optional[float], typer.Option("--dice", min=0, help="Weight of the Dice loss [default: 1.0].", rich_help_panel=_LOSS_PANEL)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs [default: 50; on --resume: the run's].", rich_help_panel=_RUN_PANEL)] = None,
    bs: Annotated[Optional[int], typer.Option("--bs", min=1, help="Batch size (per process under torchrun) [default: 16].", rich_help_panel=_RUN_PANEL)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0, help="AdamW learning rate (weight decay 1e-4); constant for half the epochs, then linear to 0 [default: 0.0003].", rich_help_panel=_RUN_PANEL)] = None,
    seed: _SeedOpt = None,
    device: _DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder [default: runs/train-segmenter].", rich_help_panel=_RUN_PANEL)] = None,
    resume: _ResumeOpt = None,
    max_steps: _MaxStepsOpt = None,
    compile: _CompileOpt = False,
    threads: _ThreadsOpt = None,
    overwrite: _OverwriteOpt = False,
) -> None:
    """Train a garment segmenter on the photos and their `image-parse-v3` parse maps.

    An smp model (`--arch`, `--encoder`) learns the 20 parse labels (`--labels cihp20`) or
    VITON-HD's 13 groups (`--labels viton13`: upper = upper-clothes + dress + coat, ...) with
    cross-entropy plus Dice. The photo keeps its aspect ratio (padded to the model size). Each
    epoch validates (per-class IoU, mean IoU, IoU of the garment labels, pixel accuracy),
    appends to `RUN/metrics.jsonl`, draws `RUN/samples/epoch_NNN.png` (photo | true parse |
    predicted parse) and saves `RUN/last.safetensors` and `RUN/best.safetensors` (highest mean
    IoU): give it to `segment`, `extract --segmenter` and `evaluate`. Ctrl-C saves a resumable
    checkpoint; `--resume RUN` continues exactly; `torchrun` runs it on several GPUs.
    """
    result = _run_training(segmenter_config, "segmenter", dict(locals()))
    if result is None:
        return
    last = result.history[-1]["val"] if result.history else {}
    garment_iou = last.get("garment_iou")
    garment_text = f" (last epoch: garment IoU {garment_iou:.4f})" if isinstance(garment_iou, float) else ""
    typer.echo(f"done: {result.epochs_done} epoch(s), {result.steps} steps, best val mean IoU {result.best:.4f}{garment_text}")
    _report_files(result)


# --- evaluation and inference --------------------------------------------------------------------

_EVAL_PANEL = "Checkpoint and samples"
_EVAL_RUN_PANEL = "Run"


@app.command(
    "evaluate",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor evaluate --checkpoint runs/train-unet --data data/zalando-low-res\n\n"
        "  clothes-extractor evaluate -c runs/train-gan/best.safetensors -d data/zalando-hd-resized --split test "
        "--exclude vitonhd_duplicate_filenames.json"
    ),
)
@handle_errors
def evaluate_command(
    data: Annotated[Path, typer.Option("--data", "-d", help="Data set root (holds train/, test/, val_ids.txt).", rich_help_panel=_EVAL_PANEL)],
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="A checkpoint (.safetensors, or an exported .onnx run by onnxruntime) or a training run folder (its best.safetensors) [default: the built-in generator].", rich_help_panel=_EVAL_PANEL)] = None,
    layout: Annotated[Optional[str], typer.Option("--layout", help="Force the data set layout: viton-hd, viton or dresscode [default: detected].", rich_help_panel=_EVAL_PANEL)] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Dress Code categories to score, e.g. dresses [default: all three].", rich_help_panel=_EVAL_PANEL)] = None,
    split: Annotated[str, typer.Option("--split", help="val (DATA/val_ids.txt over train/), test (all of DATA/test/) or FILE (an id list or pair file).", rich_help_panel=_EVAL_PANEL)] = "val",
    folder: Annotated[Optional[str], typer.Option("--folder", help="train or test: where the ids of --split FILE live [default: the first of test/, train/ holding them all].", rich_help_panel=_EVAL_PANEL)] = None,
    exclude: Annotated[Optional[Path], typer.Option("--exclude", help="Ids to leave out: a list, or the protocol JSON vitonhd_duplicate_filenames.json (TryOffDiff's 1,990 test samples).", rich_help_panel=_EVAL_PANEL)] = None,
    segmenter: Annotated[Optional[Path], typer.Option("--segmenter", metavar="SEG", help="With a generator checkpoint: also score the mask-free pipeline, the generator fed the garment mask SEG predicts, beside the true mask (`default`: the built-in segmenter).", rich_help_panel=_EVAL_PANEL)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder [default: runs/eval-RUN, RUN the checkpoint's run folder name].", rich_help_panel=_EVAL_RUN_PANEL)] = None,
    bs: Annotated[int, typer.Option("--bs", min=1, help="Batch size.", rich_help_panel=_EVAL_RUN_PANEL)] = 16,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_EVAL_RUN_PANEL)] = "auto",
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader worker processes.", rich_help_panel=_EVAL_RUN_PANEL)] = 2,
    grid_rows: Annotated[int, typer.Option("--grid-rows", min=1, help="Rows of each group (best, worst, random) in grid.png.", rich_help_panel=_EVAL_RUN_PANEL)] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random rows of grid.png.", rich_help_panel=_EVAL_RUN_PANEL)] = 0,
    network_metrics: Annotated[bool, typer.Option("--network-metrics/--no-network-metrics", help="LPIPS, DISTS and FID, where their weights are present locally (never downloaded).", rich_help_panel=_EVAL_RUN_PANEL)] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing metrics.json in the output folder.", rich_help_panel=_EVAL_RUN_PANEL)] = False,
) -> None:
    """Score a checkpoint on a split, beside a white and an input baseline, in two protocols.

    `native`: at the model's size, against the preprocessed target (RGB). `paper`: TryOffDiff's
    published protocol: the prediction brought back to the 768x1024 garment frame on white
    against the original `cloth/<id>.jpg`, SSIM and MS-SSIM x100 on luminance. Metrics: L1, PSNR,
    SSIM, MS-SSIM; LPIPS, DISTS, FID when their weights are available locally. Writes
    `metrics.json`, `per_image.csv` and `grid.png` (best / worst / random rows: input |
    prediction | target) and prints a table, then whether the model beats both baselines.

    `--segmenter SEG` adds the mask-free pipeline as the subject `predicted_mask`: the same
    generator fed the input built from the garment mask SEG predicts, beside `model` (the true
    mask), with the garment mask IoU: the cost of a predicted mask as a number. A segmenter
    checkpoint given as `--checkpoint` is scored itself: per-class IoU, mean IoU, garment IoU
    and pixel accuracy at the photos' resolution; `grid.png` rows are photo | true parse |
    predicted parse.
    """
    from rich.console import Console

    from clothes_extractor import pretrained
    from clothes_extractor.data.layouts import data_root
    from clothes_extractor.evaluation.config import EvalConfig
    from clothes_extractor.evaluation.report import report_lines, results_table
    from clothes_extractor.evaluation.run import evaluate

    cfg = EvalConfig(
        checkpoint=pretrained.resolve(checkpoint, "generator"), data=data_root(data, layout, category), split=split, folder=folder, exclude=exclude,
        out=out, batch_size=bs, device=device, workers=workers, grid_rows=grid_rows, seed=seed,
        network_metrics=network_metrics, overwrite=overwrite,
        segmenter=pretrained.resolve(segmenter, "segmenter") if segmenter is not None else None,
    )
    result = evaluate(cfg)
    _print_selection(result.selection, exclude)
    Console(soft_wrap=True).print(results_table(result.summary))
    for line in report_lines(result.summary):
        typer.echo(line)
    order = result.summary["grid"]["order_by"]
    if result.summary.get("kind") != "segmenter":
        order = "by native model SSIM; input | prediction | target"
    typer.echo(f"grid rows ({order}): {', '.join(result.grid_rows)}")
    paths = result.paths
    typer.echo(f"wrote {paths['metrics']}, {paths['per_image']}, {paths['grid']}")


def _print_selection(sel, exclude: Optional[Path]) -> None:
    """Which samples `evaluate` scored, and those it skipped by reason."""
    excluded = f", {sel.excluded} excluded (listed in {exclude})" if exclude is not None else ""
    typer.echo(f"scored {len(sel.ids)} samples of {sel.split_dir} (from {sel.source}: {sel.listed} listed{excluded})")
    if sel.n_skipped:
        typer.echo(f"skipped {sel.n_skipped} samples that cannot be scored:")
        for reason, ids in sel.skipped.items():
            more = f" ... and {len(ids) - 20} more" if len(ids) > 20 else ""
            typer.echo(f"  {reason}: {len(ids)}: {' '.join(ids[:20])}{more}")


def _print_folder_report(command: str, report, output: Path) -> None:
    """A folder run's failures (stderr), ignored masks and counts; exit 1 if any photo failed."""
    err = _stderr()
    for sample_id, reason in report.failed:
        err.print(f"[bold red]failed:[/] {sample_id}: {reason}", highlight=False, soft_wrap=True)
    for sample_id, note in getattr(report, "notes", ()):
        typer.echo(f"{sample_id}: {note}")
    if report.masks_without_photo:
        ids = report.masks_without_photo
        typer.echo(f"{len(ids)} mask(s) without a photo, ignored: {' '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    skipped = f", {len(report.skipped)} skipped (output exists; --overwrite replaces)" if report.skipped else ""
    typer.echo(
        f"{command}: {len(report.done)} written to {output}, {len(report.failed)} failed{skipped}; "
        f"{report.seconds:.1f} s"
    )
    if report.failed:
        raise fail(f"{len(report.failed)} photo(s) failed; listed above. The others were written.")


_EXTRACT_IO_PANEL = "Input and output"
_EXTRACT_LOOK_PANEL = "Output image"
_EXTRACT_RUN_PANEL = "Run"


@app.command(
    "extract",
    help=(
        "Generate the flat catalogue image of a garment from a person photo and a mask of the garment.\n\n"
        "The photo (any size) goes through the same preprocessing as training, with the checkpoint's "
        "settings. MASK is detected, in this order: a **label map** (palette or greyscale PNG whose values "
        "are parse labels < 20, e.g. VITON-HD `image-parse-v3/<id>.png`; the garment is the checkpoint's "
        "label set), a **colour-coded parse image** (RGB, at least 99% VITON-HD/CIHP parse colours), "
        "else a **binary mask**: alpha >= 128 for an image with transparency, else grey >= 128 "
        "(or == 1 for a 0/1 mask). `--mask-kind` forces one.\n\n"
        "The result is brought back to the catalogue frame, 768 wide x 1024 high (VITON-HD `cloth/`) whatever the "
        "photo's shape: the model draws the garment as in its training targets, not in the photo's frame; "
        "`--size HxW` picks another frame. It lies on the training background (recorded in the checkpoint); "
        "`--background` recomposites it with the predicted alpha, `--transparent` writes an RGBA PNG cut-out.\n\n"
        "Folder mode (`--images DIR --masks DIR -o OUTDIR`) pairs photos and masks by file name stem "
        "(`<id>.*` or `<id>_mask.*`), runs them in batches, skips outputs that exist, reports each bad "
        "pair and goes on, and exits with 1 if any failed. `--viton-layout` writes `OUTDIR/cloth/<id>.jpg` "
        "(on white) and `OUTDIR/cloth-mask/<id>.jpg` for a VITON-HD try-on model.\n\n"
        "**Without a mask**: a segmenter predicts the photo's parse map and the garment is its pixels of the "
        "generator's garment labels: the built-in default segmenter, or `--segmenter SEG` (a `train-segmenter` "
        "checkpoint). A MASK given (or found in `--masks`) still wins; folder mode without `--masks` predicts "
        "every mask. When the segmenter finds no garment, the command says so and writes nothing.\n\n"
        "**Models**: without `--checkpoint` the built-in default generator is used (trained on VITON, "
        "upper-body garments on studio photos; see its model card: `clothes-extractor models`)."
    ),
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor extract person.jpg mask.png -o shirt.png\n\n"
        "  clothes-extractor extract person.jpg -o shirt.png\n\n"
        "  clothes-extractor extract person.jpg mask.png -o shirt.png --checkpoint runs/train-unet\n\n"
        "  clothes-extractor extract person.jpg parse.png -o shirt.png -c best.safetensors --transparent\n\n"
        "  clothes-extractor extract --images photos/ --masks masks/ -o out/ -c runs/train-gan --viton-layout\n\n"
        "  clothes-extractor extract person.jpg -o shirt.png -c runs/train-gan --segmenter runs/train-segmenter\n\n"
        "  clothes-extractor extract person.jpg mask.png -o shirt.png -c generator.onnx\n\n"
        "  clothes-extractor extract --images photos/ -o out/ -c runs/train-gan --segmenter runs/train-segmenter"
    ),
)
@handle_errors
def extract_command(
    photo: Annotated[Optional[Path], typer.Argument(metavar="PHOTO", help="Person photo (JPEG, PNG, ...), any size.", show_default=False)] = None,
    mask: Annotated[Optional[Path], typer.Argument(metavar="MASK", help="Garment mask of the same size: parse map, binary mask or colour-coded parse image; optional with --segmenter.", show_default=False)] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (.png or .jpg); in folder mode the output folder.", rich_help_panel=_EXTRACT_IO_PANEL)] = ...,
    checkpoint: Annotated[Optional[Path], typer.Option("-c", "--checkpoint", metavar="CKPT", help="A .safetensors checkpoint, an exported .onnx (run by onnxruntime) or a training run folder (its best.safetensors) [default: the built-in generator].", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    images: Annotated[Optional[Path], typer.Option("--images", metavar="DIR", help="Folder mode: folder of person photos.", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", metavar="DIR", help="Folder mode: folder of masks, same file stems as the photos.", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    segmenter: Annotated[Optional[Path], typer.Option("--segmenter", metavar="SEG", help="A segmenter checkpoint (.safetensors or .onnx) or run folder (train-segmenter): predicts the garment mask where none is given [default: the built-in segmenter when there is no mask].", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    mask_kind: Annotated[str, typer.Option("--mask-kind", help="auto, labels, binary or colours.", rich_help_panel=_EXTRACT_IO_PANEL)] = "auto",
    category: Annotated[Optional[str], typer.Option("--category", help="The garment to extract, for a model trained on several Dress Code categories: upper_body, lower_body or dresses.", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    viton_layout: Annotated[bool, typer.Option("--viton-layout", help="Folder mode: write `cloth/<id>.jpg` (on white) and `cloth-mask/<id>.jpg`.", rich_help_panel=_EXTRACT_IO_PANEL)] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Folder mode: jpg or png [default: png with --transparent, else jpg].", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (folder mode: instead of skipping them).", rich_help_panel=_EXTRACT_IO_PANEL)] = False,
    size: Annotated[Optional[str], typer.Option("--size", metavar="HxW", help="Output frame, height x width (as train --size), e.g. 512x384 [default: 1024x768, VITON-HD's cloth frame].", rich_help_panel=_EXTRACT_LOOK_PANEL)] = None,
    transparent: Annotated[bool, typer.Option("--transparent", help="Write an RGBA PNG whose alpha is the predicted garment alpha.", rich_help_panel=_EXTRACT_LOOK_PANEL)] = False,
    background: Annotated[Optional[str], typer.Option("--background", help="white, black or R,G,B: recomposite on this colour [default: the training background].", rich_help_panel=_EXTRACT_LOOK_PANEL)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Folder mode: photos per model call.", rich_help_panel=_EXTRACT_RUN_PANEL)] = 8,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_EXTRACT_RUN_PANEL)] = "auto",
) -> None:
    from clothes_extractor.config import parse_background, parse_size
    from clothes_extractor.inference.output import ExtractConfig, check_output_folder, check_output_path

    folder = images is not None or masks is not None
    _check_extract_mode(folder, photo, mask, images, viton_layout or bool(fmt))
    cfg = ExtractConfig(
        frame=parse_size(size, multiple=None) if size else None,
        mask_kind=mask_kind.lower(),
        transparent=transparent,
        background=parse_background(background) if background else None,
        viton_layout=viton_layout,
        format={"jpeg": "jpg"}.get(fmt.lower(), fmt.lower()) if fmt else None,
        batch_size=batch_size,
        overwrite=overwrite,
    )
    check_output_folder(output) if folder else check_output_path(output, cfg)  # before the slow part
    needs_masks = (masks is None) if folder else (mask is None)
    extractor, seg, segmenter = _load_models(checkpoint, segmenter, device, category, segmenter is not None or needs_masks)
    if not folder:
        from clothes_extractor.inference.pipeline import extract_file

        result = extract_file(extractor, photo, mask, output, cfg, segmenter=seg)
        h, w = result.alpha.shape
        how = f" from the garment mask predicted by {segmenter}" if mask is None else ""
        typer.echo(f"wrote {output} ({w}x{h}, {'RGBA' if transparent else 'RGB'}){how}")
        for note in result.notes:
            typer.echo(note)
        return
    from clothes_extractor.inference.folder import extract_folder

    report = extract_folder(extractor, images, masks, output, cfg, progress=True, segmenter=seg)
    _print_folder_report("extract", report, output)


def _check_extract_mode(folder: bool, photo, mask, images, folder_options: bool) -> None:
    """One photo (PHOTO [MASK]) or folder mode (--images [--masks]), not both (exit 2)."""
    if folder and (photo is not None or mask is not None):
        raise fail("give PHOTO MASK for one photo, or --images DIR --masks DIR for folders, not both", 2)
    if folder and images is None:
        raise fail("folder mode needs --images DIR (and --masks DIR, or --segmenter SEG)", 2)
    if not folder and photo is None:
        raise fail("give a PHOTO (and optionally its MASK), or --images DIR for folders", 2)
    if not folder and folder_options:
        raise fail("--viton-layout and --format are for folder mode (--images/--masks); for one photo, -o's extension decides", 2)


def _load_models(checkpoint, segmenter, device: str, category, with_segmenter: bool):
    """(extractor, segmenter or None, the segmenter's path or None): the built-in models where
    none is given."""
    from clothes_extractor import pretrained
    from clothes_extractor.inference.extractor import load_extractor
    from clothes_extractor.runtime import resolve_device

    extractor = load_extractor(pretrained.resolve(checkpoint, "generator"), resolve_device(device)).for_category(category)
    if not with_segmenter:
        return extractor, None, segmenter
    from clothes_extractor.inference.segmenter import load_segmenter

    segmenter = pretrained.resolve(segmenter, "segmenter")
    return extractor, load_segmenter(segmenter, resolve_device(device)), segmenter


@app.command(
    "segment",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor segment person.jpg -o parse.png\n\n"
        "  clothes-extractor segment person.jpg -o parse.png --segmenter runs/train-segmenter\n\n"
        "  clothes-extractor segment --images photos/ -o parses/ -s runs/train-segmenter/best.safetensors"
    ),
)
@handle_errors
def segment_command(
    photo: Annotated[Optional[Path], typer.Argument(metavar="PHOTO", help="Person photo (JPEG, PNG, ...), any size.", show_default=False)] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output .png; in folder mode the output folder.", rich_help_panel=_EXTRACT_IO_PANEL)] = ...,
    segmenter: Annotated[Optional[Path], typer.Option("-s", "--segmenter", metavar="SEG", help="A segmenter checkpoint (.safetensors, or an exported .onnx) or run folder from train-segmenter [default: the built-in segmenter].", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    images: Annotated[Optional[Path], typer.Option("--images", metavar="DIR", help="Folder mode: folder of person photos; writes OUTDIR/`<stem>`.png.", rich_help_panel=_EXTRACT_IO_PANEL)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (folder mode: instead of skipping them).", rich_help_panel=_EXTRACT_IO_PANEL)] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Folder mode: photos per model call.", rich_help_panel=_EXTRACT_RUN_PANEL)] = 8,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_EXTRACT_RUN_PANEL)] = "auto",
) -> None:
    """Predict the parse map of a person photo with a garment segmenter (`train-segmenter`).

    Writes a palette PNG with VITON-HD's palette whose pixel values are the CIHP label indices,
    at the photo's size: the same format as the data set's `image-parse-v3/<id>.png`, so it
    serves as `extract`'s MASK. A `viton13` segmenter writes each group as its representative
    label (upper -> 5 upper-clothes, bottom -> 9 pants, hair -> 2, face -> 13, ...). Folder mode
    (`--images DIR -o OUTDIR`) skips outputs that exist, reports each photo it cannot read and
    goes on, and exits with 1 if any failed.
    """
    import numpy as np

    from clothes_extractor import pretrained
    from clothes_extractor.inference.output import check_output_folder, check_parse_output
    from clothes_extractor.inference.segmenter import load_segmenter
    from clothes_extractor.runtime import resolve_device

    if images is not None and photo is not None:
        raise fail("give a PHOTO for one photo, or --images DIR for a folder, not both", 2)
    if images is None and photo is None:
        raise fail("give a PHOTO (or --images DIR for a folder)", 2)
    check_parse_output(output, overwrite) if images is None else check_output_folder(output)  # before the slow part
    seg = load_segmenter(pretrained.resolve(segmenter, "segmenter"), resolve_device(device))
    if images is None:
        from clothes_extractor.inference.pipeline import segment_file

        classes = segment_file(seg, photo, output, overwrite=overwrite)
        h, w = classes.shape
        present = ", ".join(seg.label_set.classes[c] for c in np.unique(classes))
        typer.echo(f"wrote {output} ({w}x{h} palette PNG, {seg.label_set.name}; found: {present})")
        return
    from clothes_extractor.inference.folder import segment_folder

    report = segment_folder(seg, images, output, overwrite=overwrite, batch_size=batch_size, progress=True)
    _print_folder_report("segment", report, output)


# --- serve ---------------------------------------------------------------------------------------

_SERVE_MODEL_PANEL = "Models"
_SERVE_NET_PANEL = "Server and limits"


@app.command(
    "serve",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor serve\n\n"
        "  clothes-extractor serve -c runs/train-gan -s runs/train-segmenter --port 8080\n\n"
        "  clothes-extractor serve --host 0.0.0.0 --max-upload-mb 10 --concurrency 2 --device cuda"
    ),
)
@handle_errors
def serve_command(
    checkpoint: Annotated[Optional[Path], typer.Option("-c", "--checkpoint", metavar="CKPT", help="Generator checkpoint or run folder [default: the model shipped with the package].", rich_help_panel=_SERVE_MODEL_PANEL)] = None,
    segmenter: Annotated[Optional[Path], typer.Option("-s", "--segmenter", metavar="SEG", help="Segmenter checkpoint or run folder [default: the shipped one; without any, masks are uploaded or painted].", rich_help_panel=_SERVE_MODEL_PANEL)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 opens the page to the network (a warning is printed).", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.host,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.port,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.001, help="Largest file a browser may upload, in MB (the brush sends the photo back as a PNG of up to ~3 MB).", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.max_upload_mb,
    max_megapixels: Annotated[float, typer.Option("--max-megapixels", min=0.001, help="Largest image (photo or mask) it decodes, in megapixels.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.max_megapixels,
    max_files: Annotated[int, typer.Option("--max-files", min=1, help="Most files (photos + masks) in one batch.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.max_files,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests the model runs at once; the others wait in the queue.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.concurrency,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1, help="Requests that may wait; more are refused with a message.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.queue_size,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_SERVE_NET_PANEL)] = "auto",
) -> None:
    """Open a web page that turns a photo into a garment (gradio; `pip install "clothes-extractor[app]"`).

    Drop or pick a photo; the garment mask is predicted by the segmenter, uploaded, or painted with
    a brush, and shown over the photo. The result: the garment in the catalogue frame on white and a
    transparent PNG (the files `extract` writes), its category and the seconds it took. Several
    photos at once give a zip (optionally in the VITON-HD layout). The model card is one tab away,
    and the page's footer links gradio's API (`gradio_client`, curl). Listens on 127.0.0.1 unless
    `--host` says otherwise; one model instance serves a queue of requests. Ctrl-C stops it and
    removes every temporary file.
    """
    from clothes_extractor.serve import require_gradio, serve

    require_gradio()  # before loading torch and the models
    from clothes_extractor.runtime import resolve_device

    cfg = ServeConfig(
        checkpoint=checkpoint, segmenter=segmenter, host=host, port=port, max_upload_mb=max_upload_mb,
        max_megapixels=max_megapixels, max_files=max_files, concurrency=concurrency, queue_size=queue_size,
        device=str(resolve_device(device)),
    )
    from rich.markup import escape

    err = _stderr()

    def say(line: str) -> None:
        if line.startswith("warning:"):
            err.print(f"[bold yellow]{escape(line)}[/]", highlight=False, soft_wrap=True)
        else:
            typer.echo(line)

    serve(cfg, say=say)
    typer.echo("stopped; temporary files removed")
# --- export --------------------------------------------------------------------------------------


@app.command(
    "export",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor export runs/train-gan -o generator.onnx\n\n"
        "  clothes-extractor export runs/train-segmenter/best.safetensors -o segmenter.onnx\n\n"
        "  clothes-extractor export runs/train-gan -o generator-int8.onnx --int8 --calibrate data/vitonhd-256\n\n"
        "  clothes-extractor extract person.jpg parse.png -o shirt.png -c generator.onnx"
    ),
)
@handle_errors
def export_command(
    checkpoint: Annotated[Optional[Path], typer.Argument(metavar="CKPT", help="A generator or segmenter checkpoint (.safetensors) or run folder.", show_default=False)] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="The .onnx file to write.")] = ...,
    default: Annotated[Optional[str], typer.Option("--default", metavar="KIND", help="Export the shipped default model instead of CKPT: generator or segmenter.")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Quantize to int8: static with --calibrate, else dynamic.")] = False,
    calibrate: Annotated[Optional[Path], typer.Option("--calibrate", metavar="DATA", help="With --int8: a data set (VITON-HD, VITON or Dress Code layout) whose first --samples usable samples of --split calibrate a static quantization.")] = None,
    split: Annotated[str, typer.Option("--split", help="Split folder of --calibrate: train or test.")] = "train",
    samples: Annotated[int, typer.Option("--samples", min=1, help="Calibration samples.")] = 16,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
) -> None:
    """Export a checkpoint to ONNX, to run it with onnxruntime alone (no PyTorch).

    The graph takes `image`, float32 (batch, 3, H, W) in [-1, 1] (uint8 RGB / 127.5 - 1) with a
    dynamic batch axis, and returns `rgb` and `alpha_logit` (a generator) or `logits` (a
    segmenter). The checkpoint's metadata (model, preprocessing, label set, training, metrics,
    model card) goes into the ONNX metadata, so the file is as self-describing as the
    checkpoint: `extract`, `segment` and `evaluate` take the .onnx wherever they take a
    checkpoint (`pip install "clothes-extractor[onnx]"`). The written file is checked against
    the checkpoint through onnxruntime before the command ends. Written atomically.
    """
    from clothes_extractor.export import ExportConfig, export_onnx
    from clothes_extractor.pretrained import KINDS, resolve

    if (checkpoint is None) == (default is None):
        raise fail("give a checkpoint CKPT, or --default generator|segmenter for a shipped model (not both)", 2)
    if default is not None and default not in KINDS:
        raise fail(f"--default {default!r} is not one of {', '.join(KINDS)}", 2)
    cfg = ExportConfig(
        checkpoint=resolve(checkpoint, default), out=output, int8=int8, calibrate=calibrate, split=split,
        samples=samples, overwrite=overwrite,
    )
    result = export_onnx(cfg)
    what = {None: "fp32", "dynamic": "int8, dynamic", "static": "int8, static"}[result.quantization]
    check = result.check
    if "max_level_difference" in check:
        agree = f"max {check['max_level_difference']}/255, mean {check['mean_level_difference']:.3f}/255 from the checkpoint"
    else:
        agree = f"argmax differs from the checkpoint's on {100 * check['argmax_disagreement']:.3f}% of the pixels"
    typer.echo(
        f"wrote {result.path} ({result.kind}, {what}, {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f} s; "
        f"checked with onnxruntime on {check['samples']} inputs: {agree}"
    )


# --- demo ----------------------------------------------------------------------------------------



@app.command(
    "demo",
    epilog=(
        "Examples:\n\n"
        "  clothes-extractor demo\n\n"
        "  clothes-extractor demo --photo me.jpg --out /tmp/demo\n\n"
        "  clothes-extractor demo --train --out /tmp/demo --epochs 30 --overwrite"
    ),
)
@handle_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path("demo-out"),
    photo: Annotated[Optional[list[Path]], typer.Option("--photo", help="Your own photo(s) instead of the examples (repeatable).")] = None,
    train: Annotated[bool, typer.Option("--train", help="Instead: the whole training pipeline on synthetic data (about two minutes).")] = False,
    samples: Annotated[int, typer.Option("--samples", min=8, help="--train: synthetic samples (a quarter go to test/).")] = DemoConfig.samples,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="--train: GAN training epochs (the segmenter trains a third as many, at least 1).")] = DemoConfig.epochs,
    size: Annotated[int, typer.Option("--size", help="--train: downsampled size and training size (a multiple of 32).")] = DemoConfig.size,
    seed: Annotated[int, typer.Option("--seed", help="--train: seed of the data and the training.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier demo in --out.")] = False,
) -> None:
    """Show the default models on real photos, in seconds, without training.

    The built-in segmenter finds the garment on each example photo (three held-out VITON-HD test
    photos shipped with the package, or yours with --photo), the built-in generator extracts it
    to the 768x1024 catalogue frame: OUT/<id>.png each, and OUT/demo.png side by side (photo |
    predicted garment mask | extracted garment | true garment).

    `--train` runs the whole pipeline on a small synthetic data set instead: make-sample-data ->
    downsample -> split -> train-gan at 64 px -> train-segmenter -> evaluate with the white and
    input baselines -> extract with and without a mask. No network, no downloads.
    """
    from clothes_extractor.demo import ExamplesConfig, run_demo, run_examples
    from clothes_extractor.runtime import resolve_device

    if train:
        result = run_demo(DemoConfig(out=out, samples=samples, size=size, epochs=epochs, seed=seed, overwrite=overwrite))
    else:
        result = run_examples(ExamplesConfig(out=out, photos=tuple(photo or ()), device=str(resolve_device(device)), overwrite=overwrite))
    typer.echo("")
    typer.echo("pictures and files:")
    for name, path in result.paths.items():
        typer.echo(f"  {name + ':':20s} {path}")
    typer.echo("seconds: " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()))


def main() -> None:
    from clothes_extractor.runtime import prefer_passive_openmp

    prefer_passive_openmp()  # before any command imports torch (see clothes_extractor.runtime)
    app()


if __name__ == "__main__":
    sys.exit(main())
