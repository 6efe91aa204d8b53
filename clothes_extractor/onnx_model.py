"""An exported model run by onnxruntime, in place of the torch module it was exported from.

`clothes-extractor export` (:mod:`clothes_extractor.export`) writes a ``.onnx`` file whose
``metadata_props`` hold, under the key of the safetensors header (``clothes_extractor``), the
checkpoint's own JSON metadata: model arguments, preprocessing, label set, training arguments,
metrics, model card. So a ``.onnx`` goes wherever a checkpoint goes:
:func:`clothes_extractor.checkpoint.read_meta` reads its metadata, and
:func:`~clothes_extractor.checkpoint.load_generator` /
:func:`~clothes_extractor.checkpoint.load_segmenter_model` return an :class:`OnnxModel`, called
like the torch module: a (B, 3, h, w) float tensor in [-1, 1] in, the same outputs out (a
:class:`~clothes_extractor.models.generator.GeneratorOutput`, or the (B, C, h, w) logits).
The :class:`~clothes_extractor.inference.extractor.Extractor`, the
:class:`~clothes_extractor.inference.segmenter.Segmenter` and `evaluate` keep their own preprocessing and
compositing: one inference path, two backends.

Loading executes no code from the file: onnxruntime runs the graph's standard operators only.
onnxruntime is the optional extra ``[onnx]``, imported only when a ``.onnx`` is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from clothes_extractor.errors import CheckpointError, MissingDependencyError

INPUT_NAME = "image"
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {"generator": ("rgb", "alpha_logit"), "segmenter": ("logits",)}
# A warp generator's graph also gives the fields `extract` applies to the photo at full size.
WARP_OUTPUT_NAMES = ("flow", "mask_logit", "generated")


def output_names(kind: str, config: Any) -> tuple[str, ...]:
    """The graph outputs of a ``kind`` model whose config is ``config``."""
    names = OUTPUT_NAMES[kind]
    return names + WARP_OUTPUT_NAMES if getattr(config, "arch", "paint") == "warp" else names
INSTALL_HINT = 'pip install "clothes-extractor[onnx]"'


def import_onnxruntime():
    """The onnxruntime module; MissingDependencyError with the install command when absent."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(f"running a .onnx model needs onnxruntime, which is not installed: {INSTALL_HINT}") from None
    return onnxruntime


def open_session(
    path: str | os.PathLike, *, threads: int | None = None, device: str | torch.device = "cpu", optimize: bool = True
):
    """An ``onnxruntime.InferenceSession`` on ``path``.

    ``threads``: intra-op threads (None: onnxruntime's default, one per physical core).
    ``device`` cuda uses the CUDA execution provider when this onnxruntime has one, else the CPU.
    ``optimize`` False skips the graph optimisations (enough to read the metadata).
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path} is not a readable ONNX model ({first})") from None


def read_onnx_header(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (key -> string)."""
    return dict(open_session(path, optimize=False).get_modelmeta().custom_metadata_map)


class OnnxModel:
    """Callable like the exported torch module; runs the graph with onnxruntime.

    Args:
        session: an ``onnxruntime.InferenceSession`` of a model exported by clothes-extractor.
        kind: ``generator`` or ``segmenter``.
        config: the model's config dataclass (``GeneratorConfig`` / ``SegmentationModelConfig``),
            as the torch module has it in ``.config``.

    Example:
        >>> model, meta = load_generator("generator.onnx")               # doctest: +SKIP
        >>> out = model(torch.zeros(2, 3, 224, 224))                    # doctest: +SKIP
    """

    def __init__(self, session, kind: str, config: Any, path: str | os.PathLike = "model.onnx") -> None:
        if kind not in OUTPUT_NAMES:
            raise CheckpointError(f"{path}: unknown model kind {kind!r}; expected one of {', '.join(OUTPUT_NAMES)}")
        names = {o.name for o in session.get_outputs()}
        self.outputs = output_names(kind, config)
        if INPUT_NAME not in {i.name for i in session.get_inputs()} or not set(self.outputs) <= names:
            raise CheckpointError(
                f"{path} has not the inputs/outputs of an exported {kind} ({INPUT_NAME} -> "
                f"{', '.join(self.outputs)}); export it again with `clothes-extractor export`"
            )
        self.session, self.kind, self.config, self.path = session, kind, config, Path(path)

    @classmethod
    def load(
        cls, meta: dict[str, Any], config: Any, device: str | torch.device = "cpu", *, threads: int | None = None
    ) -> OnnxModel:
        """The model of a ``.onnx`` file whose metadata (:func:`~clothes_extractor.checkpoint.read_meta`) is ``meta``."""
        return cls(open_session(meta["path"], threads=threads, device=device), meta["kind"], config, meta["path"])

    def eval(self) -> OnnxModel:
        return self  # always in inference mode

    def to(self, *args, **kwargs) -> OnnxModel:
        return self  # the session's provider decides; outputs come back on the input's device

    def __call__(self, x: torch.Tensor):
        """(B, 3, h, w) float in [-1, 1] -> what the torch module returns, on ``x``'s device."""
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outputs = self.session.run(list(self.outputs), {INPUT_NAME: array})
        tensors = [torch.from_numpy(o).to(x.device) for o in outputs]
        if self.kind == "generator":
            from clothes_extractor.models.generator import GeneratorOutput

            return GeneratorOutput(**dict(zip(self.outputs, tensors)))
        return tensors[0]
