"""Self-describing checkpoints: safetensors weights whose header carries the JSON to rebuild them.

A checkpoint ``best.safetensors`` holds the generator's weights, and in its metadata the model
arguments, the preprocessing settings, the training arguments, epoch, step and the last
validation metrics. ``best.json`` beside it is a readable copy of that metadata (not needed to
load). The training state for ``--resume`` (optimisers, schedulers, discriminator, RNG) is
``last.state.pt``, read with ``torch.load(weights_only=True)``: no file a user may have
downloaded is ever unpickled into arbitrary objects, and loading never touches the network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes

from clothes_extractor.errors import CheckpointError, ConfigError
from clothes_extractor.fileio import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temp_files

FORMAT = "clothes-extractor/checkpoint"
FORMAT_VERSION = 1
META_KEY = "clothes_extractor"


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write weights + metadata atomically to ``path`` (``.safetensors``) and a JSON copy beside it.

    Interrupted (Ctrl-C or a kill), the previous checkpoint at ``path`` stays whole; the next
    save clears what a killed one left behind. The file is serialised here and written through
    our own temporary file (safetensors' ``save_file`` would add a temporary file of its own,
    which a kill would leave behind under a random name).
    """
    path = Path(path)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, **meta}
    text = json.dumps(meta, indent=2, sort_keys=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    data = safetensors_bytes(tensors, metadata={META_KEY: text})
    for target in (path, path.with_suffix(".json")):
        remove_stale_temp_files(target)
    atomic_write_bytes(path, data)
    atomic_write_text(path.with_suffix(".json"), text + "\n")
    return path


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (-> its ``best.safetensors``, else ``last.safetensors``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"no best.safetensors or last.safetensors in {path}; is it a training run folder?")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def is_onnx(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an exported ONNX model (by its suffix): read by onnxruntime."""
    return Path(path).suffix.lower() == ".onnx"


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint (``.safetensors``, or an exported ``.onnx`` whose
    ``metadata_props`` carry the same JSON); CheckpointError if the file is not one of ours."""
    path = resolve_checkpoint(path)
    if is_onnx(path):
        from clothes_extractor.onnx_model import read_onnx_header

        return parse_meta(read_onnx_header(path).get(META_KEY), path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({exc})") from None
    return parse_meta(header.get(META_KEY), path)


def parse_meta(text: str | None, path: str | os.PathLike) -> dict[str, Any]:
    """The metadata JSON of a checkpoint file (``text``, None when absent), checked: ours, and a
    format version this clothes-extractor reads. ``meta["path"]`` is set to ``path``."""
    try:
        meta = json.loads(text)
        if meta.get("format") != FORMAT:
            raise KeyError("format")
    except (KeyError, TypeError, json.JSONDecodeError, AttributeError):
        how = "export one with `clothes-extractor export`" if is_onnx(path) else "train one with `clothes-extractor train-unet` or `train-gan`"
        raise CheckpointError(f"{path} was not written by clothes-extractor (no {FORMAT} metadata); {how}") from None
    if meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {meta['version']}; this clothes-extractor reads "
            f"up to {FORMAT_VERSION}: upgrade clothes-extractor"
        )
    meta["path"] = str(path)
    return meta


def load_state_dict(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = resolve_checkpoint(path)
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the weights in {path}: {exc}") from None


def load_into(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """load_state_dict with a CheckpointError naming the file on any key or shape mismatch."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f"{path} does not fit the model it describes: {' '.join(first)}") from None


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Resumable training state (tensors, numbers, strings, lists, dicts only), atomically."""
    remove_stale_temp_files(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state not found: {path} (a run folder from train-unet/train-gan has it)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types; none may reach the user raw
        raise CheckpointError(f"cannot read training state {path}: {str(exc).splitlines()[0]}") from None


def _generator_builder():
    from clothes_extractor.models.generator import GeneratorConfig, build_generator

    return GeneratorConfig, build_generator


def _segmenter_builder():
    from clothes_extractor.models.segmenter import SegmentationModelConfig, build_segmentation_model

    return SegmentationModelConfig, build_segmentation_model


# kind -> (its name in messages, the builder of (config class, model factory)); the model's
# arguments are under meta[kind].
MODEL_KINDS: dict[str, tuple[str, Any]] = {
    "generator": ("garment generator", _generator_builder),
    "segmenter": ("garment segmenter", _segmenter_builder),
}


def load_model(path: str | os.PathLike, kind: str, device: str | torch.device = "cpu"):
    """Rebuild a model of ``kind`` (a key of :data:`MODEL_KINDS`) from a checkpoint alone:
    (model in eval mode, metadata). CheckpointError if the file holds another kind.

    The encoder is built with ``encoder_weights=None`` and then gets the checkpoint's weights,
    so loading never touches the network. An ``.onnx`` file gives an
    :class:`~clothes_extractor.onnx_model.OnnxModel` instead: called the same way, run by
    onnxruntime.
    """
    name, builder = MODEL_KINDS[kind]
    meta = read_meta(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{meta['path']} holds a {meta.get('kind')!r} model, not a {name}")
    config_cls, build = builder()
    try:
        cfg = config_cls.from_dict({**meta[kind], "encoder_weights": None})
        if is_onnx(meta["path"]):
            from clothes_extractor.onnx_model import OnnxModel

            return OnnxModel.load(meta, cfg, device), meta
        model = build(cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{meta['path']} has an unreadable model description: {exc}") from None
    load_into(model, load_state_dict(meta["path"]), meta["path"])
    return model.to(device).eval(), meta


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """:func:`load_model` of a generator: (model in eval mode, metadata)."""
    return load_model(path, "generator", device)


def load_segmenter_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """:func:`load_model` of a garment segmenter: (model in eval mode, metadata)."""
    return load_model(path, "segmenter", device)


def init_generator_from(model: torch.nn.Module, path: str | os.PathLike) -> tuple[int, int]:
    """Start ``model`` (a Generator) from the weights of the generator checkpoint at ``path``
    (``--init``): every tensor of the same name and shape is copied; a head with more output
    channels than the checkpoint's (a ``warp`` generator from a ``paint`` one) takes the
    checkpoint's channels first and keeps its own initialisation for the rest (the flow and
    mask start at zero). Returns (tensors copied whole, tensors copied in part); CheckpointError
    if the file is not a generator checkpoint, is an ``.onnx`` or shares no tensor."""
    meta = read_meta(path)
    if meta.get("kind") != "generator":
        raise CheckpointError(f"--init {meta['path']} holds a {meta.get('kind')!r} model, not a generator")
    if is_onnx(meta["path"]):
        raise CheckpointError(f"--init needs a .safetensors checkpoint, not {meta['path']} (ONNX holds no trainable weights)")
    source = load_state_dict(meta["path"])
    own = model.state_dict()
    whole = part = 0
    with torch.no_grad():
        for key, value in own.items():
            theirs = source.get(key)
            if theirs is None or theirs.ndim != value.ndim:
                continue
            if theirs.shape == value.shape:
                value.copy_(theirs.to(value.dtype))
                whole += 1
            elif theirs.shape[1:] == value.shape[1:] and theirs.shape[0] < value.shape[0]:
                value[: theirs.shape[0]].copy_(theirs.to(value.dtype))
                part += 1
    if whole == 0:
        raise CheckpointError(f"--init {meta['path']} shares no weights with this generator (another encoder?)")
    return whole, part
