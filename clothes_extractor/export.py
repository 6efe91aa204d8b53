"""`clothes-extractor export`: a checkpoint -> a self-describing ONNX model, in fp32 or int8.

The graph is the torch module's forward, traced (``torch.onnx.export``, TorchScript exporter,
opset :data:`OPSET`): input ``image`` (batch, 3, h, w) float32 RGB in [-1, 1] (``x / 127.5 -
1`` of the uint8 model input); outputs ``rgb`` (batch, 3, h, w) in [-1, 1] and ``alpha_logit``
(batch, 1, h, w) for a generator, ``logits`` (batch, C, h, w) for a segmenter. The batch axis is
dynamic; h, w are the checkpoint's model size. Preprocessing and compositing stay outside the
graph, in the project's own code (:mod:`clothes_extractor.data.transforms`,
:class:`~clothes_extractor.inference.extractor.ExtractResult`), shared by both backends
(:mod:`clothes_extractor.onnx_model`).

``metadata_props`` carry the checkpoint's JSON metadata under ``clothes_extractor`` (the
safetensors header's key), plus an ``onnx`` section (source file, opset, input and outputs,
quantization), so the file alone rebuilds the preprocessing; and readable copies: ``kind``,
``preprocess``, ``input``, ``outputs`` and the model card's ``name``, ``licence``, ``data``
when the checkpoint carries a ``card`` (:func:`model_card`; the shipped default models also get
their ``MODEL_CARD.md`` text as ``model_card``).

int8 (``--int8``): with calibration data (``--calibrate DATA``, a few samples of a data set in
any layout the readers know, prepared by the model's own preprocessing) the model is quantized statically
(QDQ, per-channel int8 weights, uint8 activations from MinMax calibration; the output head stays
fp32); without, dynamically (uint8 weights, activations quantized at run time). The weights use
7 of their 8 bits (``reduce_range``): x86 CPUs without VNNI (AVX2) multiply uint8 by int8 in
16-bit sums that saturate with full-range weights; on the default generator full range left
int8 outputs 22/255 from fp32 on average, 7 bits 1.2/255. Every export ends with a check: the written
file through onnxruntime against the torch module, through the same :meth:`predict` as
`extract` / `segment`, on the calibration samples or on synthetic inputs.
"""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clothes_extractor import __version__
from clothes_extractor.checkpoint import META_KEY, is_onnx, load_generator, load_segmenter_model, read_meta
from clothes_extractor.errors import CheckpointError, ConfigError, DataError, MissingDependencyError
from clothes_extractor.fileio import atomic_path, check_writable
from clothes_extractor.onnx_model import INPUT_NAME, INSTALL_HINT, OnnxModel, output_names

OPSET = 17
CARD_KEYS: tuple[str, ...] = ("name", "licence", "data")
INPUT_DESCRIPTION = "image: float32 (batch, 3, H, W), RGB, uint8 / 127.5 - 1"
CHECK_SAMPLES = 2  # synthetic inputs of the final check when there is no calibration data


@dataclass(frozen=True)
class ExportConfig:
    """What `export` writes. ``calibrate``: a data set root or split folder (VITON-HD, VITON, Dress Code)
    whose first ``samples`` usable samples of ``split`` calibrate a static int8 model; None with
    ``int8`` quantizes dynamically."""

    checkpoint: Path
    out: Path
    int8: bool = False
    calibrate: Path | None = None
    split: str = "train"
    samples: int = 16
    opset: int = OPSET
    overwrite: bool = False

    def __post_init__(self) -> None:
        if Path(self.out).suffix.lower() != ".onnx":
            raise ConfigError(f"output {self.out}: an exported model is a .onnx file; use -o model.onnx")
        if self.calibrate is not None and not self.int8:
            raise ConfigError("--calibrate goes with --int8 (it calibrates the static quantization)")
        if self.samples < 1:
            raise ConfigError(f"--samples must be at least 1, got {self.samples}")


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote, and how close it is to the torch module."""

    path: Path
    kind: str
    quantization: str | None  # None, "dynamic" or "static"
    size_bytes: int
    check: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(f"export needs the onnx package, which is not installed: {INSTALL_HINT}") from None
    return onnx


def _wrappers() -> dict[str, tuple[Any, Any]]:
    """kind -> (loader of the torch model, inference class with prepare/predict)."""
    from clothes_extractor.inference.extractor import Extractor
    from clothes_extractor.inference.segmenter import Segmenter

    return {"generator": (load_generator, Extractor), "segmenter": (load_segmenter_model, Segmenter)}


def check_output(cfg: ExportConfig) -> Path:
    out = Path(cfg.out)
    if out.is_dir():
        raise ConfigError(f"output {out} is a folder; -o takes a file name such as model.onnx")
    if out.exists() and not cfg.overwrite:
        raise ConfigError(f"output {out} exists; pass --overwrite to replace it")
    return check_writable(out)  # before the slow part


def export_onnx(cfg: ExportConfig) -> ExportResult:
    """Export ``cfg.checkpoint`` (a generator or a segmenter) to ``cfg.out``, atomically."""
    started = time.perf_counter()
    out = check_output(cfg)
    import_onnx()
    if cfg.int8:
        import_onnxruntime_quantization()
    meta = read_meta(cfg.checkpoint)
    if is_onnx(meta["path"]):
        raise ConfigError(f"{meta['path']} is already an ONNX model; export takes a .safetensors checkpoint or a run folder")
    kinds = _wrappers()
    if meta.get("kind") not in kinds:
        raise CheckpointError(f"{meta['path']} holds a {meta.get('kind')!r} model; export takes a generator or a segmenter")
    load, wrapper = kinds[meta["kind"]]
    model, meta = load(meta["path"], "cpu")
    torch_side = wrapper(model, meta, "cpu")
    calibration = calibration_inputs(torch_side, meta["kind"], cfg.calibrate, cfg.split, cfg.samples) if cfg.calibrate else None
    mode = None if not cfg.int8 else ("static" if calibration is not None else "dynamic")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.", dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        trace(model, fp32, meta, cfg.opset)
        written = fp32
        if mode is not None:
            written = Path(tmp) / "int8.onnx"
            quantize(fp32, written, None if calibration is None else _to_model(calibration["inputs"]), Path(tmp))
        info = {"source": Path(meta["path"]).name, "opset": cfg.opset, "exported_by": f"clothes-extractor {__version__}",
                "quantization": quantization_info(mode, cfg, calibration)}
        with atomic_path(out) as target:
            stamp(written, target, meta, info)
    exported = read_meta(out)
    onnx_side = wrapper(OnnxModel.load(exported, model.config), exported, "cpu")
    inputs = calibration["inputs"] if calibration is not None else synthetic_inputs(torch_side.preprocess.size)
    check = compare(torch_side, onnx_side, meta["kind"], inputs)
    return ExportResult(out, meta["kind"], mode, out.stat().st_size, check, time.perf_counter() - started)


def import_onnxruntime_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError(f"--int8 needs onnxruntime, which is not installed: {INSTALL_HINT}") from None
    return quantization


# --- the graph -----------------------------------------------------------------------------------


def trace(model, path: Path, meta: dict[str, Any], opset: int = OPSET) -> None:
    """The torch module -> an fp32 ONNX file at ``path``, batch axis dynamic."""
    import torch

    h, w = meta["preprocess"]["size"]
    example = torch.zeros(2, model.config.in_channels, h, w)  # batch 2: nothing specialised to 1
    names = list(output_names(meta["kind"], model.config))
    if meta["kind"] == "generator":
        model = _named_outputs(model, names)
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)}
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarning on the shape checks; the exporter's DeprecationWarning
            torch.onnx.export(
                model, (example,), str(path), input_names=[INPUT_NAME], output_names=names,
                dynamic_axes=axes, opset_version=opset, do_constant_folding=True, **legacy,
            )
    except Exception as exc:  # an operator the exporter does not know, an unsupported encoder, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot export {meta['path']} to ONNX (opset {opset}): {first}") from None


def _named_outputs(model, names: list[str]):
    """``model`` returning exactly the fields ``names`` of its GeneratorOutput, in order."""
    import torch

    class NamedOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.config = model, model.config

        def forward(self, x):
            out = self.model(x)
            return tuple(getattr(out, n) for n in names)

    # In eval mode as ``model`` is: the exporter restores the wrapper's mode after tracing, and a
    # wrapper left in training mode would switch the caller's model to it too.
    return NamedOutputs().train(model.training)


def _channels(meta: dict[str, Any], model_config) -> dict[str, int]:
    if meta["kind"] == "generator":
        return {INPUT_NAME: model_config.in_channels, "rgb": 3, "alpha_logit": 1, "flow": 2, "mask_logit": 1, "generated": 3}
    return {INPUT_NAME: model_config.in_channels, "logits": model_config.classes}


def stamp(src: Path, dst: Path, meta: dict[str, Any], info: dict[str, Any]) -> None:
    """Copy the model ``src`` to ``dst`` with named shapes and the metadata (module docstring)."""
    onnx = import_onnx()
    proto = onnx.load(str(src))
    h, w = meta["preprocess"]["size"]
    channels = _channels(meta, _config(meta))
    for value in [*proto.graph.input, *proto.graph.output]:
        if value.name in channels:
            dims = value.type.tensor_type.shape.dim
            dims[0].dim_param = "batch"
            for dim, size in zip(dims[1:], (channels[value.name], *_spatial(value.name, h, w))):
                dim.dim_value = size
    onnx.helper.set_model_props(proto, metadata_props(meta, {**info, "input": INPUT_DESCRIPTION, "outputs": _outputs(meta, channels)}))
    proto.producer_name, proto.producer_version = "clothes-extractor", __version__
    card = model_card(meta)
    proto.doc_string = f"clothes-extractor {meta['kind']}" + "".join(f"; {k}: {card[k]}" for k in CARD_KEYS if k in card)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(dst))


def _spatial(name: str, h: int, w: int) -> tuple[int, int]:
    """An output's (H, W): the warp flow lives on its control grid, the rest at the model size."""
    from clothes_extractor.models.warp import CONTROL_STRIDE

    return (h // CONTROL_STRIDE, w // CONTROL_STRIDE) if name == "flow" else (h, w)


def _config(meta: dict[str, Any]):
    """The model config dataclass of ``meta`` (as the loaders build it)."""
    if meta["kind"] == "generator":
        from clothes_extractor.models.generator import GeneratorConfig

        return GeneratorConfig.from_dict(meta["generator"])
    from clothes_extractor.models.segmenter import SegmentationModelConfig

    return SegmentationModelConfig.from_dict(meta["segmenter"])


def _outputs(meta: dict[str, Any], channels: dict[str, int]) -> str:
    what = {
        "rgb": "in [-1, 1]", "alpha_logit": "garment alpha logit (sigmoid -> [0, 1])", "logits": "class logits",
        "flow": "(x, y) offsets from the identity grid at control points (H/32, W/32: upsample bicubically), grid_sample units (align_corners=False)",
        "mask_logit": "composition logit (sigmoid -> weight of the warped photo)", "generated": "generated colour in [-1, 1]",
    }
    return "; ".join(
        f"{n}: float32 (batch, {channels[n]}, {'H/32, W/32' if n == 'flow' else 'H, W'}), {what[n]}"
        for n in output_names(meta["kind"], _config(meta))
    )


def metadata_props(meta: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """The ONNX ``metadata_props``: the checkpoint's metadata (plus ``onnx``: ``info``) as JSON
    under :data:`~clothes_extractor.checkpoint.META_KEY`, and readable copies of its main facts."""
    stored = {k: v for k, v in meta.items() if k != "path"}
    stored["onnx"] = info
    props = {
        META_KEY: json.dumps(stored, sort_keys=True),
        "kind": str(meta["kind"]),
        "preprocess": json.dumps(meta.get("preprocess"), sort_keys=True),
        "input": info["input"],
        "outputs": info["outputs"],
    }
    props.update(model_card(meta))
    return props


def model_card(meta: dict[str, Any]) -> dict[str, str]:
    """The model card's facts: the checkpoint's ``card`` (name, licence, data), and for the
    shipped default models their name and the text of ``pretrained/MODEL_CARD.md`` (``model_card``)
    where it exists. Empty when there is none of these."""
    from clothes_extractor import pretrained

    card = meta.get("card") if isinstance(meta.get("card"), dict) else {}
    out = {k: str(card[k]) for k in CARD_KEYS if card.get(k) is not None}
    if Path(meta["path"]).resolve().parent == pretrained.HERE:
        out.setdefault("name", f"clothes-extractor default {meta['kind']}")
        if pretrained.MODEL_CARD.is_file():
            out["model_card"] = pretrained.MODEL_CARD.read_text()
    return out


# --- int8 ----------------------------------------------------------------------------------------


def quantization_info(mode: str | None, cfg: ExportConfig, calibration: dict[str, Any] | None) -> dict[str, Any] | None:
    if mode is None:
        return None
    if mode == "dynamic":
        return {"mode": "dynamic", "weights": "uint8", "activations": "uint8, quantized at run time"}
    return {"mode": "static", "format": "QDQ", "weights": "int8 per channel, 7-bit range", "activations": "uint8, MinMax calibration",
            "fp32": "the output head (last convolution)",
            "data": str(cfg.calibrate), "split": cfg.split, "samples": calibration["ids"]}


def quantize(src: Path, dst: Path, inputs: np.ndarray | None, tmp: Path) -> None:
    """fp32 ``src`` -> int8 ``dst``: static on ``inputs`` ((N, 3, h, w) float32), else dynamic.
    Both after onnxruntime's pre-processing (shape inference, graph optimisation)."""
    q = import_onnxruntime_quantization()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = tmp / "preprocessed.onnx"
            q.shape_inference.quant_pre_process(str(src), str(prepared))
            if inputs is None:
                q.quantize_dynamic(str(prepared), str(dst), weight_type=q.QuantType.QUInt8)
                return
            batches = iter([{INPUT_NAME: x[None]} for x in inputs])

            class Reader(q.CalibrationDataReader):
                def get_next(self):
                    return next(batches, None)

            q.quantize_static(
                str(prepared), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, reduce_range=True,
                calibrate_method=q.CalibrationMethod.MinMax, nodes_to_exclude=_head(prepared),
            )
    finally:
        root.setLevel(level)


def _head(path: Path) -> list[str]:
    """The model's last convolution (the output head), kept in fp32: the outputs' precision
    costs little time there."""
    convs = [n.name for n in import_onnx().load(str(path)).graph.node if n.op_type == "Conv"]
    return convs[-1:]


def calibration_inputs(side, kind: str, data: Path, split: str, samples: int) -> dict[str, Any]:
    """The first ``samples`` usable samples of ``data`` (any layout the data readers know),
    through ``side``'s own preprocessing (:meth:`Extractor.prepare` / :meth:`Segmenter.prepare`):
    ``{"ids": [...], "inputs": (N, h, w, 3) uint8 model inputs}``."""
    from clothes_extractor.data import viton
    from clothes_extractor.inference.photo import read_photo

    found = viton.resolve_split_dir(data, split)
    ids, prepared = [], []
    for sample_id in found.list_ids():
        files = found.files(sample_id)
        if not files.photo.is_file():
            continue
        photo = read_photo(files.photo, f"sample {sample_id}: photo")
        if kind == "generator":  # its input needs the garment mask of the parse map
            if not files.parse.is_file():
                continue
            labels = found.garment_labels(sample_id, side.labels)
            mask = viton.garment_mask(viton.read_parse(found, sample_id), labels)
            if not mask.any() or mask.shape != photo.shape[:2]:
                continue
            prepared.append(side.prepare(photo, mask, name=sample_id))
        else:
            prepared.append(side.prepare(photo))
        ids.append(sample_id)
        if len(ids) == samples:
            break
    if not ids:
        raise DataError(f"no usable calibration sample in {found} (photos with a parse map holding the garment)")
    return {"ids": ids, "inputs": np.stack(prepared)}


def _to_model(inputs: np.ndarray) -> np.ndarray:
    """(N, h, w, 3) uint8 -> (N, 3, h, w) float32 in [-1, 1], as :func:`~clothes_extractor.data.dataset.to_tensor`."""
    from clothes_extractor.data.dataset import to_tensor

    return np.stack([to_tensor(x).numpy() for x in inputs])


def synthetic_inputs(size: tuple[int, int], n: int = CHECK_SAMPLES) -> np.ndarray:
    """(n, h, w, 3) uint8 deterministic model inputs for the check when there is no data:
    colour ramps plus noise."""
    h, w = size
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, None, :, None] * rng.uniform(60, 215, (n, 1, 1, 3))
    noise = rng.normal(0, 20, (n, h, w, 3))
    return np.clip(ramp + noise + 40, 0, 255).astype(np.uint8)


# --- the check -----------------------------------------------------------------------------------


def compare(torch_side, onnx_side, kind: str, inputs: np.ndarray) -> dict[str, Any]:
    """The exported model against the torch one on ``inputs`` ((N, h, w, 3) uint8 model
    inputs), through the predict of `extract` / `segment`: uint8 levels of rgb and alpha for a
    generator, the share of pixels whose argmax differs for a segmenter."""
    if kind == "generator":
        diff = [np.abs(p.astype(np.int16) - q.astype(np.int16))
                for p, q in zip(torch_side.predict(inputs), onnx_side.predict(inputs))]
        return {"samples": len(inputs), "max_level_difference": int(max(d.max() for d in diff)),
                "mean_level_difference": float(np.mean([d.mean() for d in diff]))}
    a, b = torch_side.logits(inputs).argmax(1), onnx_side.logits(inputs).argmax(1)
    return {"samples": len(inputs), "argmax_disagreement": float((a != b).float().mean())}
