"""serve, export and demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from clothes_extractor.cli.app import _stderr, app, fail, handle_errors
from clothes_extractor.demo import DemoConfig  # for its defaults; imports no torch
from clothes_extractor.serve import ServeConfig  # for its defaults; imports neither torch nor gradio

if TYPE_CHECKING:
    pass


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
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests handled at once; their photos share batches through the one model instance, the others wait in the queue.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.concurrency,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1, help="Requests that may wait; more are refused with a message.", rich_help_panel=_SERVE_NET_PANEL)] = ServeConfig.queue_size,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.", rich_help_panel=_SERVE_NET_PANEL)] = "auto",
) -> None:
    """Open a web page that turns a photo into a garment (gradio; `pip install "clothes-extractor[app]"`).

    Drop or pick a photo; the garment mask is predicted by the segmenter, uploaded, or painted with
    a brush, and shown over the photo. The result: the garment in the catalogue frame on white and a
    transparent PNG (the pixels `extract` writes), its category and the seconds it took. Several
    photos at once give a zip (optionally in the VITON-HD layout). The model card is one tab away,
    and the page's footer links gradio's API (`gradio_client`, curl). Listens on 127.0.0.1 unless
    `--host` says otherwise; one model instance serves a queue of requests (those handled at once
    share batches through it). Ctrl-C or SIGTERM stops it: requests in progress finish (new ones
    are refused with a message), every temporary file is removed, exit code 0.
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

    served = serve(cfg, say=say)
    typer.echo("stopped; temporary files removed")
    if served:
        from clothes_extractor.serve import exit_now

        exit_now(0)  # not the interpreter's shutdown: gradio's threads are still alive
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
    train: Annotated[bool, typer.Option("--train", help="Instead: the whole training pipeline on synthetic data (about three minutes on two cores).")] = False,
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
