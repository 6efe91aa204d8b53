"""Settings shared by the commands: sizes, preprocessing, and their validation.

No torch here: the data commands import this module and must start fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from clothes_extractor.errors import ConfigError

SIZE_MULTIPLE = 32  # a UNet with 5 downsamplings needs sides divisible by 2**5
# Generator designs: "paint" generates every pixel; "warp" moves the photo's own pixels into the
# catalogue frame and generates only what the photo hides (models.generator, models.warp).
GENERATOR_ARCHS = ("paint", "warp")

FRAMINGS = ("photo", "fill")

BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}

# The CIHP parse label of upper-clothes (data/viton.py's LABELS[5]): the garment by default.
DEFAULT_GARMENT_LABELS: tuple[int, ...] = (5,)


def nearest_multiple(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def parse_size(text: str | int | tuple[int, int], multiple: int | None = SIZE_MULTIPLE) -> tuple[int, int]:
    """``224`` -> (224, 224); ``"512x384"`` -> (512, 384) as (height, width).

    With ``multiple`` set, each side must be a multiple of it; the error suggests the nearest
    valid size.
    """
    if isinstance(text, tuple):
        h, w = text
    else:
        parts = str(text).lower().replace(" ", "").split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"size {text!r} is not an integer or HxW (e.g. 224 or 512x384)") from None
        if len(nums) == 1:
            h = w = nums[0]
        elif len(nums) == 2:
            h, w = nums
        else:
            raise ConfigError(f"size {text!r} is not an integer or HxW (e.g. 224 or 512x384)")
    if h <= 0 or w <= 0:
        raise ConfigError(f"size {text!r} must be positive")
    if multiple and (h % multiple or w % multiple):
        nh, nw = nearest_multiple(h, multiple), nearest_multiple(w, multiple)
        suggestion = str(nh) if (h == w and nh == nw) else f"{nh}x{nw}"
        raise ConfigError(f"size {text} is not a multiple of {multiple}; use {suggestion}")
    return int(h), int(w)


def parse_background(text: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """``white``, ``black`` or ``R,G,B`` -> an RGB triple."""
    if isinstance(text, tuple):
        return text
    if text in BACKGROUNDS:
        return BACKGROUNDS[text]
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ConfigError(f"background {text!r} is not one of {', '.join(BACKGROUNDS)} or R,G,B (0-255)")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class PreprocessConfig:
    """How a (photo, garment mask) and a (cloth, cloth mask) become model input and target.

    Recorded in every checkpoint so that `extract` and `evaluate` apply exactly what training did.
    """

    size: tuple[int, int] = (224, 224)  # (height, width) of model input and output
    garment_labels: tuple[int, ...] = DEFAULT_GARMENT_LABELS
    background: tuple[int, int, int] = (255, 255, 255)
    # "photo": the garment keeps its scale inside the photo's frame (the original project's);
    # "fill": its bounding box fills the model frame, as the catalogue target does.
    framing: str = "photo"
    # Dress Code categories a model was trained on (empty: the garment labels above say it all).
    categories: tuple[str, ...] = ()
    # The garment's width over the catalogue image's width, median over the training data's
    # garment images (its layout's convention, :attr:`data.layouts.Layout.garment_width`): the
    # margins the model learned to draw. None: unknown (no rescaling to another convention).
    garment_width: float | None = None

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ConfigError(f"framing {self.framing!r} is not one of {', '.join(FRAMINGS)}")

    def pixels(self) -> PreprocessConfig:
        """The settings that decide the model's input and target arrays (what a prepared cache
        holds): all but ``garment_width``, which only says how results are framed."""
        return replace(self, garment_width=None)

    def to_dict(self) -> dict:
        d = {k: list(v) for k, v in asdict(self).items() if k not in ("framing", "categories", "garment_width")}
        d["framing"] = self.framing
        if self.categories:
            d["categories"] = list(self.categories)
        if self.garment_width is not None:
            d["garment_width"] = self.garment_width
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessConfig:
        # Checkpoints written before framing and categories existed used "photo" framing.
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return strict_from_dict(cls, d, "preprocess")


def strict_from_dict(cls, data: dict[str, Any], what: str, ignore: tuple[str, ...] = ()):
    """Build dataclass ``cls`` from a file's JSON: the policy of every config's ``from_dict``.

    Keys the file lacks take their defaults (files written before a setting existed load);
    keys ``cls`` does not know are refused, since dropping them could silently change what the
    file describes; ``ignore`` names bookkeeping keys the writer adds (e.g. a run's ``task``).
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - set(ignore))
    if unknown:
        raise ConfigError(
            f"{what} config has unknown keys {unknown}; expected some of {sorted(known)} "
            "(was the checkpoint written by a newer clothes-extractor?)"
        )
    return cls(**{k: v for k, v in data.items() if k in known})
