"""Pretrained weights, offline first: find them in the usual caches, or fail fast and say why.

Two kinds of pretrained weights are used:

- the generator's encoder (``encoder_weights="imagenet"``), which segmentation_models_pytorch
  (smp) downloads from the Hugging Face Hub: for smp's own encoders the file
  ``model.safetensors`` of the repository ``smp-hub/<encoder>.<weights>`` at a pinned revision;
  for timm encoders (``tu-<name>``) the ``model.safetensors`` of timm's ``hf_hub_id``;
- the VGG16 of the perceptual loss (torchvision ``VGG16_Weights.IMAGENET1K_V1``), the file
  ``vgg16-397923af.pth`` in ``$TORCH_HOME/hub/checkpoints``.

Everything here reads the environment (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``,
``TORCH_HOME``, ...) when it is called, not when it is imported. Nothing waits on a dead network:
the Hub is only contacted after a TCP probe of a few seconds has succeeded, and torchvision's
download is never used (the VGG16 file must already be in place).

Every failure is a :class:`~clothes_extractor.errors.WeightsUnavailableError` naming the missing
file, where it goes, and the flag that trains without it (``--encoder-weights none``,
``--perceptual 0``).
"""

from __future__ import annotations

import difflib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from clothes_extractor.errors import ConfigError, WeightsUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # the longest we wait to learn that the Hub cannot be reached
_TRUE = {"1", "ON", "YES", "TRUE"}

ENCODER_FLAG = "--encoder-weights none"
PERCEPTUAL_FLAG = "--perceptual 0"


# --------------------------------------------------------------------------------------------
# Hugging Face Hub: where the cache is, whether we may and can go online
# --------------------------------------------------------------------------------------------


def hf_cache_dir() -> Path:
    """The Hugging Face Hub cache folder, resolved from the environment now.

    Same order as huggingface_hub: ``HF_HUB_CACHE``, then the legacy ``HUGGINGFACE_HUB_CACHE``,
    then ``$HF_HOME/hub``, where ``HF_HOME`` defaults to ``$XDG_CACHE_HOME/huggingface`` and
    that to ``~/.cache/huggingface``.
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hf_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to 1/ON/YES/TRUE."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT


def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub (or to the HTTPS proxy, if one is set) opens in time.

    Runs in a daemon thread joined with ``timeout`` so that neither a slow DNS lookup nor a
    silently dropped SYN can block the caller for longer than ``timeout`` seconds.
    """
    proxy = next((os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if os.environ.get(v)), None)
    target = urlsplit(proxy or endpoint or hf_endpoint())
    if not target.hostname:
        return False
    port = target.port or (443 if target.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((target.hostname, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result) and result[0]


# --------------------------------------------------------------------------------------------
# The generator's encoder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face Hub model repository."""

    repo_id: str
    filename: str
    revision: str | None = None  # None: the branch "main"

    @property
    def folder_name(self) -> str:
        """The repository's folder inside the Hub cache (``models--owner--name``)."""
        return "models--" + self.repo_id.replace("/", "--")

    def download_hint(self) -> str:
        rev = f" --revision {self.revision}" if self.revision else ""
        return f"hf download {self.repo_id} {self.filename}{rev}"


def encoder_names() -> list[str]:
    """smp's own encoder names (any timm model also works as ``tu-<timm name>``)."""
    import segmentation_models_pytorch as smp

    return list(smp.encoders.get_encoder_names())


def check_encoder_name(encoder: str) -> None:
    """Raise :class:`ConfigError` (listing close and common names) if smp cannot build ``encoder``."""
    names = encoder_names()
    if encoder in names:
        return
    if encoder.startswith("tu-"):
        import timm

        if timm.is_model(encoder[3:]):
            return
        close = difflib.get_close_matches(encoder[3:], timm.list_models(), n=5)
        hint = f"; close timm names: {', '.join('tu-' + c for c in close)}" if close else ""
        raise ConfigError(f"encoder {encoder!r}: {encoder[3:]!r} is not a timm model{hint}")
    close = difflib.get_close_matches(encoder, names, n=5)
    common = ["resnet18", "resnet34", "resnet50", "efficientnet-b0", "mobilenet_v2", "mit_b0"]
    listed = list(dict.fromkeys(close + [c for c in common if c in names]))
    raise ConfigError(
        f"unknown encoder {encoder!r}; valid names include {', '.join(listed)} "
        f"({len(names)} in all: segmentation_models_pytorch.encoders.get_encoder_names()), "
        "or any timm model as tu-<name> (e.g. tu-convnext_tiny)"
    )


def encoder_weights_options(encoder: str) -> list[str]:
    """The pretrained weight names smp knows for ``encoder`` (``["imagenet"]`` for ``tu-`` ones)."""
    if encoder.startswith("tu-"):
        return ["imagenet"]
    import segmentation_models_pytorch as smp

    return list(smp.encoders.encoders[encoder]["pretrained_settings"])


def encoder_weights_files(encoder: str, weights: str) -> list[HubFile]:
    """Where smp (or timm) would download ``encoder``'s ``weights`` from, in order of preference.

    Raises :class:`ConfigError` for an unknown encoder or weights name, or a timm model without
    weights on the Hub.
    """
    check_encoder_name(encoder)
    options = encoder_weights_options(encoder)
    if weights not in options:
        raise ConfigError(
            f"encoder {encoder!r} has no pretrained weights {weights!r}; "
            f"choose one of {', '.join(options)} or none ({ENCODER_FLAG})"
        )
    if encoder.startswith("tu-"):
        import timm

        cfg = timm.models.get_pretrained_cfg(encoder[3:])
        if cfg is None or not cfg.hf_hub_id:
            raise ConfigError(
                f"timm model {encoder[3:]!r} has no pretrained weights on the Hugging Face Hub; "
                f"train it from scratch with {ENCODER_FLAG}"
            )
        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        if cfg.hf_hub_filename:
            return [HubFile(repo_id, cfg.hf_hub_filename, revision or None)]
        return [HubFile(repo_id, name, revision or None) for name in ("model.safetensors", "pytorch_model.bin")]
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[encoder]["pretrained_settings"][weights]
    return [HubFile(settings["repo_id"], "model.safetensors", settings.get("revision"))]


def _cached(file: HubFile, cache_dir: Path) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(file.repo_id, file.filename, cache_dir=cache_dir, revision=file.revision)
    return Path(found) if isinstance(found, str) else None


def resolve_encoder_weights(encoder: str, weights: str, *, timeout: float = PROBE_TIMEOUT_S) -> Path:
    """The local path of ``encoder``'s pretrained ``weights``, downloading them only if possible.

    1. If the file is in the Hub cache (:func:`hf_cache_dir`), return it: no network at all.
    2. Else, if ``HF_HUB_OFFLINE`` is set or the Hub does not answer a TCP probe within
       ``timeout`` seconds, raise :class:`WeightsUnavailableError` at once.
    3. Else download it into that cache with huggingface_hub and return it; any failure becomes
       a :class:`WeightsUnavailableError`.

    The message names the repository and file, the cache folder, how to fetch the file on a
    machine with internet access, and ``--encoder-weights none``.
    """
    files = encoder_weights_files(encoder, weights)
    cache_dir = hf_cache_dir()
    for file in files:
        path = _cached(file, cache_dir)
        if path is not None:
            return path

    if hf_offline():
        reason = "HF_HUB_OFFLINE is set"
    elif not hub_reachable(timeout=timeout):
        reason = f"{hf_endpoint()} cannot be reached (no answer within {timeout:g} s)"
    else:
        from huggingface_hub import hf_hub_download

        errors = []
        for file in files:
            try:
                return Path(
                    hf_hub_download(
                        file.repo_id,
                        file.filename,
                        revision=file.revision,
                        cache_dir=cache_dir,
                        etag_timeout=timeout,
                    )
                )
            except Exception as err:  # noqa: BLE001 - network, HTTP, disk: all mean "not available"
                errors.append(f"{file.repo_id}/{file.filename}: {type(err).__name__}: {err}")
        reason = "the download failed (" + "; ".join(errors) + ")"
    raise WeightsUnavailableError(_missing_encoder_message(encoder, weights, files[0], cache_dir, reason))


def _missing_encoder_message(encoder: str, weights: str, file: HubFile, cache_dir: Path, reason: str) -> str:
    rev = f" (revision {file.revision})" if file.revision else ""
    return (
        f"pretrained weights {weights!r} for encoder {encoder!r} are not available: the file "
        f"{file.filename} of the Hugging Face repository {file.repo_id}{rev} is not in the Hub "
        f"cache {cache_dir} (set by HF_HUB_CACHE or HF_HOME) and {reason}. Either fetch it on a "
        f"machine with internet access (`{file.download_hint()}`) and copy the folder "
        f"{file.folder_name} into {cache_dir}, or train the encoder from scratch with {ENCODER_FLAG}."
    )


# --------------------------------------------------------------------------------------------
# VGG16 of the perceptual loss
# --------------------------------------------------------------------------------------------


def torch_hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torchvision keeps downloaded weights
    (``$TORCH_HOME/hub/checkpoints``, ``TORCH_HOME`` defaulting to ``~/.cache/torch``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def vgg16_weights_url() -> str:
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.url


def vgg16_weights_path() -> Path:
    """Where torchvision's ImageNet VGG16 weights (``vgg16-397923af.pth``) must be."""
    url = vgg16_weights_url()
    return torch_hub_checkpoints_dir() / os.path.basename(urlsplit(url).path)


# torchvision's VGG16 ("D"): channels of the 3x3 convolutions, "M" for a 2x2 max pool
_VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg16_feature_layers() -> nn.Sequential:
    """The layers of torchvision's ``vgg16().features`` (same indices, names and init), built
    without the 120M-parameter classifier that we never use."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = nn.Conv2d(channels, int(v), kernel_size=3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            channels = int(v)
    return nn.Sequential(*layers)


def vgg16_features(pretrained: bool) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (31 layers), ImageNet weights or random.

    Args:
        pretrained: True loads ``VGG16_Weights.IMAGENET1K_V1`` from the torch hub cache
            (:func:`vgg16_weights_path`) and never downloads; False initialises randomly (tests,
            demos).

    Raises:
        WeightsUnavailableError: pretrained and the file is missing or unreadable; the message
            names the file, its folder, its URL and ``--perceptual 0``.
    """
    import torch

    features = _vgg16_feature_layers()
    if not pretrained:
        return features
    path = vgg16_weights_path()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"the VGG16 weights of the perceptual loss are not available: {path.name} is not in "
            f"{path.parent} (the torch hub cache, $TORCH_HOME/hub/checkpoints) and nothing is "
            f"downloaded while training. Download {vgg16_weights_url()} into that folder, or "
            f"train without the perceptual loss with {PERCEPTUAL_FLAG}."
        )
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "features."
        features.load_state_dict({k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)})
    except Exception as err:  # noqa: BLE001 - corrupt, truncated or foreign file
        raise WeightsUnavailableError(
            f"the VGG16 weights file {path} could not be loaded ({type(err).__name__}: {err}); "
            f"delete it and download {vgg16_weights_url()} again, or train without the "
            f"perceptual loss with {PERCEPTUAL_FLAG}."
        ) from err
    return features
