"""Network metrics (LPIPS, DISTS, the Inception features of FID) need pretrained weights;
:func:`network_metrics` builds those whose code and weight files are present locally and lists
the others as :class:`NotComputed` with what to install and where to put which file. Nothing is
ever downloaded: every file is checked before anything is built.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

# Names of the weight files the network metrics need, and where they come from.
INCEPTION_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity / torchmetrics FID
INCEPTION_FIDELITY_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FIDELITY_FILE
)
INCEPTION_PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision AlexNet_Weights.IMAGENET1K_V1 (LPIPS)
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE
VGG16_FILE = "vgg16-397923af.pth"  # torchvision VGG16_Weights.IMAGENET1K_V1 (DISTS)
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE
DISTS_SHORT_SIDE = 256  # TryOffDiff scores DISTS on images resized to 341x256


@dataclass(frozen=True)
class NotComputed:
    """Why a metric was not computed and what makes it computable."""

    reason: str
    how: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"status": "not computed", "reason": self.reason}
        if self.how:
            out["how"] = self.how
        return out


PerImageFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class NetworkMetrics:
    """Metrics that need a pretrained network: per-image ones (name -> ``fn(x, y) -> (B,)`` on
    ``[0, 1]`` RGB batches, lower is better) and the feature function of FID (None if absent),
    plus the reasons for those that are not available."""

    per_image: dict[str, PerImageFn] = field(default_factory=dict)
    fid_features: Callable[[Tensor], Tensor] | None = None
    not_computed: dict[str, NotComputed] = field(default_factory=dict)

    @classmethod
    def disabled(cls, reason: str) -> NetworkMetrics:
        return cls(not_computed={name: NotComputed(reason) for name in ("lpips", "dists", "fid")})


def _hub_dir() -> Path:
    from clothes_extractor.weights import torch_hub_checkpoints_dir

    return torch_hub_checkpoints_dir()


def _missing_file(path: Path, url: str, what: str) -> NotComputed:
    return NotComputed(
        f"{path.name} is not in {path.parent}",
        f"download {url} into {path.parent} (the torch hub cache, $TORCH_HOME/hub/checkpoints) for {what}",
    )


def lpips_metric(device: torch.device | str = "cpu") -> PerImageFn | NotComputed:
    """LPIPS (AlexNet, v0.1, as pyiqa's ``lpips``) from torchmetrics, which ships the linear
    layers; the AlexNet ImageNet weights must be in the torch hub cache."""
    # The weights first: without them importing torchmetrics (0.7 s) would be for nothing.
    path = _hub_dir() / ALEXNET_FILE
    if not path.is_file():
        return _missing_file(path, ALEXNET_URL, "LPIPS")
    try:
        from torchmetrics.functional.image.lpips import _LPIPS
    except Exception:  # noqa: BLE001 - absent or an incompatible version
        return NotComputed("torchmetrics (with its LPIPS) is not installed", "pip install torchmetrics torchvision")
    try:
        net = _LPIPS(pretrained=True, net="alex").to(device).eval()
    except Exception as exc:  # noqa: BLE001
        return NotComputed(f"LPIPS could not be built: {type(exc).__name__}: {exc}", f"check {path}")

    @torch.no_grad()
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return net(x.float(), y.float(), normalize=True).flatten()

    return fn


def dists_metric(device: torch.device | str = "cpu") -> PerImageFn | NotComputed:
    """DISTS (Ding et al. 2020) from torchmetrics (it ships the alpha/beta weights of
    DISTS_pytorch); the VGG16 ImageNet weights must be in the torch hub cache. Images whose
    short side exceeds 256 are first resized to a short side of 256 (TryOffDiff: 341x256)."""
    try:
        from torchmetrics.functional.image.dists import DISTSNetwork
    except Exception:  # noqa: BLE001
        return NotComputed("torchmetrics (with its DISTS) is not installed", "pip install torchmetrics torchvision")
    path = _hub_dir() / VGG16_FILE
    if not path.is_file():
        return _missing_file(path, VGG16_URL, "DISTS")
    try:
        net = DISTSNetwork().to(device).eval()
    except Exception as exc:  # noqa: BLE001
        return NotComputed(f"DISTS could not be built: {type(exc).__name__}: {exc}", f"check {path}")

    @torch.no_grad()
    def fn(x: Tensor, y: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if min(h, w) > DISTS_SHORT_SIDE:
            scale = DISTS_SHORT_SIDE / min(h, w)
            size = (int(h * scale), int(w * scale))
            resize = lambda t: torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True)  # noqa: E731
            x, y = resize(x.float()), resize(y.float())
        return net(x.float(), y.float()).reshape(-1)

    return fn


def inception_features(device: torch.device | str = "cpu") -> Callable[[Tensor], Tensor] | NotComputed:
    """The 2048-d pool features of the FID Inception network: torch-fidelity's (what torchmetrics'
    FrechetInceptionDistance uses) or pytorch-fid's, whichever is installed with its weights."""
    hub = _hub_dir()
    fidelity_path = hub / INCEPTION_FIDELITY_FILE
    pytorch_fid_path = hub / INCEPTION_PYTORCH_FID_FILE
    how = (
        f"pip install torch-fidelity and put {INCEPTION_FIDELITY_FILE} ({INCEPTION_FIDELITY_URL}) in {hub}"
    )
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception:  # noqa: BLE001
        FeatureExtractorInceptionV3 = None  # noqa: N806
    if FeatureExtractorInceptionV3 is not None and fidelity_path.is_file():
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(fidelity_path))
            net = net.to(device).eval()
        except Exception as exc:  # noqa: BLE001
            return NotComputed(f"the Inception network could not be built: {type(exc).__name__}: {exc}", how)

        @torch.no_grad()
        def fidelity_fn(x: Tensor) -> Tensor:
            return net((x.clamp(0, 1) * 255).round().to(torch.uint8))[0]

        return fidelity_fn
    try:
        from pytorch_fid.inception import InceptionV3
    except Exception:  # noqa: BLE001
        InceptionV3 = None  # noqa: N806
    if InceptionV3 is not None and pytorch_fid_path.is_file():
        try:
            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        except Exception as exc:  # noqa: BLE001
            return NotComputed(f"the Inception network could not be built: {type(exc).__name__}: {exc}", how)

        @torch.no_grad()
        def pytorch_fid_fn(x: Tensor) -> Tensor:
            return net(x.float())[0].flatten(1)

        return pytorch_fid_fn
    if FeatureExtractorInceptionV3 is None and InceptionV3 is None:
        return NotComputed("neither torch-fidelity nor pytorch-fid is installed", how)
    return NotComputed(f"{INCEPTION_FIDELITY_FILE} is not in {hub}", how)


def network_metrics(device: torch.device | str = "cpu") -> NetworkMetrics:
    """LPIPS, DISTS and FID's features where their code and weights are present locally."""
    out = NetworkMetrics()
    for name, build in (("lpips", lpips_metric), ("dists", dists_metric)):
        got = build(device)
        if isinstance(got, NotComputed):
            out.not_computed[name] = got
        else:
            out.per_image[name] = got
    features = inception_features(device)
    if isinstance(features, NotComputed):
        out.not_computed["fid"] = features
    else:
        out.fid_features = features
    return out


def finite_or_str(value: float | None) -> float | str | None:
    """JSON-safe number: ``inf``/``nan`` become the strings ``"inf"``/``"nan"``."""
    if value is None or math.isfinite(value):
        return value
    return str(value)
