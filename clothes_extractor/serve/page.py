"""The gradio page and its API: a thin layer over :class:`~clothes_extractor.serve.engine.Engine`.

Tabs: *One photo* (photo, mask source: segmenter / uploaded mask / brush, the mask shown over the
photo, the garment on white, the transparent PNG, details), *Several photos* (a zip), *Model
card*. The API endpoints (gradio's own, listed under "Use via API" at the page's foot):

- ``/extract`` (photo, mask_source, mask, painted, mask_kind) -> (mask preview, garment on white
  PNG, transparent PNG, details JSON);
- ``/check_mask`` (same inputs) -> (mask preview, details JSON);
- ``/extract_batch`` (photos, masks, viton_layout) -> (zip, details JSON).

A user error raises :class:`gradio.Error` with the message `extract` would print: the page shows
it, an API client gets it as the exception's message, and the server goes on.

SIGTERM or Ctrl-C (:func:`launch`): new requests are refused ("this server is stopping; try
again once it is back"), those in progress finish (at most :data:`STOP_S` s), then the server
closes; :func:`~clothes_extractor.serve.serve` removes the files.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable

import gradio as gr
import numpy as np

from clothes_extractor.errors import ClothesExtractorError
from clothes_extractor.inference.mask import MASK_KINDS
from clothes_extractor.serve import ServeConfig, example_photos
from clothes_extractor.serve.engine import MASK_SOURCES, Engine, MaskChoice

TITLE = "clothes-extractor: virtual try-off"
INTRO = (
    "# clothes-extractor: virtual try-off\n"
    "Drop a photo of a person wearing a garment (or pick an example): the garment comes back flat, "
    "in the catalogue frame, on white and as a transparent PNG. Check the mask shown over the photo "
    "before trusting the result: a wrong mask gives a wrong garment."
)
CONCURRENCY_ID = "model"  # every event that runs a model shares one concurrency limit
STOP_S = 5.0  # on SIGTERM, how long requests in progress may take to finish
_SYSTEM_FONTS = (["ui-sans-serif", "system-ui", "sans-serif"], ["ui-monospace", "monospace"])


def painted_layers(value: dict | None) -> np.ndarray | None:
    """An ImageEditor value -> one (H, W, 4) uint8 image whose alpha is everything painted."""
    layers = [np.asarray(layer) for layer in (value or {}).get("layers") or [] if layer is not None]
    layers = [layer for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not layers or len({layer.shape for layer in layers}) != 1:
        return None
    out = np.zeros(layers[0].shape, np.uint8)
    out[..., 3] = np.max(np.stack([layer[..., 3] for layer in layers]), axis=0)
    return out


def _choice(engine: Engine, source, mask, painted, kind) -> MaskChoice:
    return MaskChoice(source or "segmenter", engine.upload(mask, "mask"), painted_layers(painted), kind or "auto")


def _guard(fn: Callable, say: Callable[[str], None]) -> Callable:
    """User errors -> gr.Error with extract's message (shown on the page, server stays up)."""

    @functools.wraps(fn)  # keeps the signature: the API's parameter names and defaults
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ClothesExtractorError as exc:
            say(f"request refused: {exc}")
            raise gr.Error(str(exc), title="Cannot extract", print_exception=False) from None

    return wrapper


def _handlers(engine: Engine, say: Callable[[str], None]) -> dict[str, Callable]:
    def extract(photo, mask_source="segmenter", mask=None, painted=None, mask_kind="auto"):
        """One photo -> (mask over the photo, garment on white PNG, transparent PNG, details)."""
        out = engine.extract(engine.upload(photo, "photo"), _choice(engine, mask_source, mask, painted, mask_kind))
        return out.overlay, str(out.on_white), str(out.transparent), out.details

    def check_mask(photo, mask_source="segmenter", mask=None, painted=None, mask_kind="auto"):
        """One photo -> (the garment mask over the photo, details): what extract would use."""
        out = engine.check_mask(engine.upload(photo, "photo"), _choice(engine, mask_source, mask, painted, mask_kind))
        return out.overlay, out.details

    def extract_batch(photos, masks=None, viton_layout=False):
        """Several photos (masks paired by file name, else predicted) -> (zip of garments, details)."""
        ups = [engine.upload(p, "photo") for p in photos or []]
        mks = [engine.upload(m, "mask") for m in masks or []]
        zip_path, details = engine.extract_batch(ups, mks, bool(viton_layout))
        return str(zip_path), details

    def canvas(photo):
        """The photo (a decoded copy, at most 1024 px) becomes the brush's canvas; nothing when unreadable."""
        path = engine.canvas(engine.upload(photo, "photo"))
        return {"background": str(path), "layers": [], "composite": None} if path else None

    return {name: _guard(fn, say) for name, fn in
            (("extract", extract), ("check_mask", check_mask), ("extract_batch", extract_batch), ("canvas", canvas))}


def _one_photo_tab(engine: Engine, cfg: ServeConfig, handlers: dict[str, Callable], examples: list) -> None:
    sources = [(label, value) for value, label in MASK_SOURCES.items()
               if value != "segmenter" or engine.segmenter is not None]
    default = "segmenter" if engine.segmenter is not None else "upload"
    with gr.Row():
        with gr.Column():
            photo = gr.File(label="Photo (JPEG, PNG, WebP)", file_types=["image"], type="filepath", elem_id="photo")
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Example photos")
            source = gr.Radio(sources, value=default, label="Garment mask", elem_id="mask-source")
            mask = gr.File(label="Mask: a parse map, a binary mask or a cut-out, same size as the photo",
                           file_types=["image"], type="filepath", visible=default == "upload", elem_id="mask")
            kind = gr.Dropdown(list(MASK_KINDS), value="auto", label="Read the mask as", visible=default == "upload")
            brush = gr.ImageEditor(label="Paint over the garment", type="numpy", image_mode="RGBA", format="png",
                                   transforms=(), layers=False, sources=(), visible=False, elem_id="brush",
                                   brush=gr.Brush(colors=["#ff2020"], default_size=40, color_mode="fixed"))
            with gr.Row():
                check = gr.Button("Check the mask", elem_id="check")
                run = gr.Button("Extract the garment", variant="primary", elem_id="extract")
            preview = gr.Image(label="The garment mask over the photo", type="numpy", format="jpeg", height=440,
                               interactive=False, elem_id="preview")
        with gr.Column():
            garment = gr.Image(label="The garment, catalogue frame on white", type="filepath", format="png",
                               height=440, interactive=False, elem_id="garment")
            cutout = gr.File(label="Transparent PNG", interactive=False, elem_id="cutout")
            details = gr.JSON(label="Details (category, mask, seconds)", elem_id="details")

    def show(choice):
        return gr.File(visible=choice == "upload"), gr.Dropdown(visible=choice == "upload"), gr.ImageEditor(visible=choice == "brush")

    source.change(show, source, [mask, kind, brush], api_visibility="private", queue=False)
    photo.change(handlers["canvas"], photo, brush, api_visibility="private")
    inputs = [photo, source, mask, brush, kind]
    limit = {"concurrency_limit": cfg.concurrency, "concurrency_id": CONCURRENCY_ID}
    run.click(handlers["extract"], inputs, [preview, garment, cutout, details], api_name="extract", **limit)
    check.click(handlers["check_mask"], inputs, [preview, details], api_name="check_mask", **limit)


def _batch_tab(engine: Engine, cfg: ServeConfig, handlers: dict[str, Callable]) -> None:
    masks_note = "optional: the segmenter predicts the missing ones" if engine.segmenter else "one per photo"
    with gr.Row():
        with gr.Column():
            photos = gr.File(label="Photos", file_count="multiple", file_types=["image"], type="filepath", elem_id="photos")
            masks = gr.File(label=f"Masks, named like their photo (<id>.png or <id>_mask.png; {masks_note})",
                            file_count="multiple", file_types=["image"], type="filepath", elem_id="masks")
            layout = gr.Checkbox(label="VITON-HD layout: cloth/<id>.jpg on white and cloth-mask/<id>.jpg",
                                 value=False, elem_id="viton-layout")
            run = gr.Button("Extract all", variant="primary", elem_id="extract-batch")
        with gr.Column():
            archive = gr.File(label="Garments (zip)", interactive=False, elem_id="zip")
            details = gr.JSON(label="Details", elem_id="batch-details")
    run.click(handlers["extract_batch"], [photos, masks, layout], [archive, details], api_name="extract_batch",
              concurrency_limit=cfg.concurrency, concurrency_id=CONCURRENCY_ID)


def build(engine: Engine, cfg: ServeConfig, say: Callable[[str], None] = print) -> gr.Blocks:
    """The page, not yet launched (call :func:`launch`, or ``.queue().launch()`` yourself)."""
    handlers = _handlers(engine, say)
    examples = example_photos() if cfg.examples is None else list(cfg.examples)
    ttl = int(engine.limits.output_ttl_s)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(max(60, ttl // 4), ttl)) as page:
        gr.Markdown(INTRO)
        with gr.Tab("One photo", id="one"):
            _one_photo_tab(engine, cfg, handlers, examples)
        with gr.Tab("Several photos", id="batch"):
            _batch_tab(engine, cfg, handlers)
        with gr.Tab("Model card", id="card"):
            gr.Markdown(engine.card, elem_id="model-card")
    return page


def launch(engine: Engine, cfg: ServeConfig, say: Callable[[str], None] = print) -> bool:
    """Build the page and serve it until SIGTERM or Ctrl-C, then stop it: requests in progress
    finish (or are refused with a message), the server closes. True once it has served."""
    page = build(engine, cfg, say)
    page.queue(default_concurrency_limit=cfg.concurrency, max_size=cfg.queue_size)
    theme = gr.themes.Default(font=_SYSTEM_FONTS[0], font_mono=_SYSTEM_FONTS[1])  # no web fonts: works offline
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        page.launch(server_name=cfg.host, server_port=cfg.port, max_file_size=int(cfg.max_upload_mb * 2**20),
                    show_error=False, quiet=False, footer_links=["api"], theme=theme, ssr_mode=False, mcp_server=False,
                    prevent_thread_lock=True)
        while not stop.wait(0.2):
            pass
        say("stopping: new requests are refused, those in progress finish")
        left = engine.stop(STOP_S)
        _wait_for_gradio(page, 2.0)  # the last results handed over (gradio writes the preview)
        page.close(verbose=False)
        if left:
            say(f"{left} request(s) cut short")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return True


def _wait_for_gradio(page: gr.Blocks, timeout: float) -> None:
    """Until gradio's queue runs no event (refusals come back at once), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    queue = getattr(page, "_queue", None)
    while queue is not None and time.monotonic() < deadline:
        if not any(job is not None for job in getattr(queue, "active_jobs", [])):
            return
        time.sleep(0.05)
