"""The default models shipped inside the package (package data), found when a command is given
no ``--checkpoint`` / ``--segmenter``.

``generator.safetensors`` and ``segmenter.safetensors`` are ordinary self-describing checkpoints
(see :mod:`clothes_extractor.checkpoint`); ``MODEL_CARD.md`` beside them says how they were
trained, on what, how they score and what they cannot do. No torch here: `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from clothes_extractor.errors import CheckpointError

HERE = Path(__file__).resolve().parent
KINDS = {"generator": "generator.safetensors", "segmenter": "segmenter.safetensors"}
MODEL_CARD = HERE / "MODEL_CARD.md"
EXAMPLES = HERE / "examples"  # a few real photos (image/<id>.jpg) and their garments (cloth/<id>.jpg)


def default_path(kind: str) -> Path:
    """The shipped checkpoint of ``kind`` (``generator`` or ``segmenter``).

    Raises CheckpointError when the package was installed without its weights.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown default model {kind!r}; expected one of {', '.join(KINDS)}")
    path = HERE / KINDS[kind]
    if not path.is_file():
        flag = "--checkpoint" if kind == "generator" else "--segmenter"
        raise CheckpointError(
            f"the default {kind} is not installed ({path} is missing); reinstall clothes-extractor "
            f"or give a checkpoint with {flag}"
        )
    return path


def resolve(path, kind: str) -> Path:
    """``path`` when given (a user's checkpoint always wins), else the default of ``kind``.

    The word ``default`` (where no such file exists) also names the built-in model.
    """
    if path is None or (str(path) == "default" and not Path(path).exists()):
        return default_path(kind)
    return Path(path)


def example_photos() -> list[Path]:
    """The example photos shipped with the package, sorted; [] where they were left out."""
    folder = EXAMPLES / "image"
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def example_garment(photo: Path) -> Path | None:
    """The true garment of an example photo, where it ships."""
    path = EXAMPLES / "cloth" / photo.name
    return path if path.is_file() else None
