"""Inference commands: evaluate, extract, segment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from clothes_extractor.cli.app import _stderr, app, fail, handle_errors

if TYPE_CHECKING:
    pass


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


def _print_folder_report(command: str, report, output: Path, ctx=None) -> None:
    """A folder run's failures (stderr), ignored masks and counts; exit 1 if any photo failed.
    Under torchrun (``ctx``: :class:`~clothes_extractor.distributed.Dist`) rank 0 prints the job's
    report and exits with its code (torchrun's then); the others end quietly with 0, so that none
    ends the job (torchrun stops the rest when one fails) before rank 0 has printed."""
    if ctx is not None and not ctx.main:
        return
    err = _stderr()
    for sample_id, reason in report.failed:
        err.print(f"[bold red]failed:[/] {sample_id}: {reason}", highlight=False, soft_wrap=True)
    for sample_id, note in report.notes:
        typer.echo(f"{sample_id}: {note}")
    if report.masks_without_photo:
        ids = report.masks_without_photo
        typer.echo(f"{len(ids)} mask(s) without a photo, ignored: {' '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    skipped = f", {len(report.skipped)} skipped (output exists; --overwrite replaces)" if report.skipped else ""
    processes = f" ({ctx.world} processes)" if ctx is not None and ctx.active else ""
    typer.echo(
        f"{command}: {len(report.done)} written to {output}, {len(report.failed)} failed{skipped}; "
        f"{report.seconds:.1f} s{processes}"
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
        "**Several GPUs or machines**: `torchrun --nproc_per_node=N --no-python clothes-extractor extract "
        "--images DIR ...` splits the photos between N processes, each on its own GPU (`cuda:LOCAL_RANK`; "
        "gloo on CPU), writes the files one process writes and skips those that exist (a killed job resumes "
        "where it stopped); rank 0 prints one report of every failure, and the exit code is one process's. "
        "Across machines add `--nnodes` and `--rdzv-endpoint` (the README has a SLURM example).\n\n"
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
        "  clothes-extractor extract --images test/image --masks test/image-parse -o out/ --margins viton --size 256x192   # evaluate's VITON images\n\n"
        "  clothes-extractor extract --images photos/ -o out/ -c runs/train-gan --segmenter runs/train-segmenter\n\n"
        "  torchrun --nproc_per_node=8 --no-python clothes-extractor extract --images photos/ --masks masks/ -o out/   # 8 GPUs"
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
    margins: Annotated[str, typer.Option("--margins", help="Catalogue margins to draw the garment with: viton-hd (its garment spans 0.81 of the width), viton (0.94), dresscode or none (as the model learned them). `evaluate` draws with the scored data set's: the same name reproduces its images.", rich_help_panel=_EXTRACT_LOOK_PANEL)] = "viton-hd",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Folder mode: photos per model call.", rich_help_panel=_EXTRACT_RUN_PANEL)] = 8,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_EXTRACT_RUN_PANEL)] = "auto",
) -> None:
    from clothes_extractor.config import parse_background, parse_size
    from clothes_extractor.inference.output import ExtractConfig, check_output_path
    from clothes_extractor.inference.photo import check_photo_files

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
        margins=margins.lower(),
    )
    if folder:
        _extract_folder(images, masks, output, cfg, checkpoint=checkpoint, segmenter=segmenter, device=device, category=category)
        return
    check_photo_files(photo, mask)  # before the slow part
    check_output_path(output, cfg)
    extractor, seg, segmenter = _load_models(checkpoint, segmenter, device, category, segmenter is not None or mask is None, cfg.margins)
    from clothes_extractor.inference.pipeline import extract_file

    result = extract_file(extractor, photo, mask, output, cfg, segmenter=seg)
    h, w = result.alpha.shape
    how = f" from the garment mask predicted by {segmenter}" if mask is None else ""
    typer.echo(f"wrote {output} ({w}x{h}, {'RGBA' if transparent else 'RGB'}){how}")
    for note in result.notes:
        typer.echo(note)


def _extract_folder(images: Path, masks: Optional[Path], output: Path, cfg, *, checkpoint, segmenter, device: str, category) -> None:
    """Folder mode: one process, or this one's share under torchrun (one report, from rank 0)."""
    from clothes_extractor.inference.folder import extract_folder
    from clothes_extractor.inference.processes import check_shared_output, folder_processes, gather_report, share

    with folder_processes(device) as ctx:
        check_shared_output(output, ctx)  # before the slow part
        with_segmenter = segmenter is not None or masks is None
        extractor, seg, _ = _load_models(checkpoint, segmenter, str(ctx.device), category, with_segmenter, cfg.margins)
        report = extract_folder(extractor, images, masks, output, cfg, progress=ctx.main, segmenter=seg, share=share(ctx))
        report = gather_report(report, ctx)
    _print_folder_report("extract", report, output, ctx)


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


def _load_models(checkpoint, segmenter, device: str, category, with_segmenter: bool, margins: str = "viton-hd"):
    """(extractor, segmenter or None, the segmenter's path or None): the built-in models where
    none is given; the extractor draws with the ``margins`` named."""
    from clothes_extractor import pretrained
    from clothes_extractor.inference.extractor import load_extractor, margins_width
    from clothes_extractor.runtime import resolve_device

    extractor = load_extractor(pretrained.resolve(checkpoint, "generator"), resolve_device(device)).for_category(category)
    extractor = extractor.with_catalogue(margins_width(margins))
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
        "  clothes-extractor segment --images photos/ -o parses/ -s runs/train-segmenter/best.safetensors\n\n"
        "  torchrun --nproc_per_node=8 --no-python clothes-extractor segment --images photos/ -o parses/   # 8 GPUs"
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

    Several GPUs or machines: `torchrun --nproc_per_node=N --no-python clothes-extractor segment
    --images DIR ...` splits the photos between N processes, each on its own GPU
    (`cuda:LOCAL_RANK`; gloo on CPU), writes the files one process writes and skips those that
    exist (a killed job resumes); rank 0 prints one report of every failure. Across machines
    add `--nnodes` and `--rdzv-endpoint` (the README has a SLURM example).
    """
    import numpy as np

    from clothes_extractor import pretrained
    from clothes_extractor.inference.output import check_parse_output
    from clothes_extractor.inference.photo import check_photo_files
    from clothes_extractor.inference.segmenter import load_segmenter
    from clothes_extractor.runtime import resolve_device

    if images is not None and photo is not None:
        raise fail("give a PHOTO for one photo, or --images DIR for a folder, not both", 2)
    if images is None and photo is None:
        raise fail("give a PHOTO (or --images DIR for a folder)", 2)
    if images is not None:
        _segment_folder(images, output, segmenter, device, overwrite=overwrite, batch_size=batch_size)
        return
    check_photo_files(photo, command="segment")  # before the slow part
    check_parse_output(output, overwrite)
    seg = load_segmenter(pretrained.resolve(segmenter, "segmenter"), resolve_device(device))
    from clothes_extractor.inference.pipeline import segment_file

    classes = segment_file(seg, photo, output, overwrite=overwrite)
    h, w = classes.shape
    present = ", ".join(seg.label_set.classes[c] for c in np.unique(classes))
    typer.echo(f"wrote {output} ({w}x{h} palette PNG, {seg.label_set.name}; found: {present})")


def _segment_folder(images: Path, output: Path, segmenter, device: str, *, overwrite: bool, batch_size: int) -> None:
    """Folder mode: one process, or this one's share under torchrun (one report, from rank 0)."""
    from clothes_extractor import pretrained
    from clothes_extractor.inference.folder import segment_folder
    from clothes_extractor.inference.processes import check_shared_output, folder_processes, gather_report, share
    from clothes_extractor.inference.segmenter import load_segmenter

    with folder_processes(device) as ctx:
        check_shared_output(output, ctx)  # before the slow part
        seg = load_segmenter(pretrained.resolve(segmenter, "segmenter"), ctx.device)
        report = segment_folder(
            seg, images, output, overwrite=overwrite, batch_size=batch_size, progress=ctx.main, share=share(ctx)
        )
        report = gather_report(report, ctx)
    _print_folder_report("segment", report, output, ctx)


# --- serve ---------------------------------------------------------------------------------------
