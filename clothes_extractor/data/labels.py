"""Label sets a segmenter can learn from VITON-HD's CIHP parse maps, and how to write its output.

No torch here: the data commands import this module and must start fast.

Two label sets (:data:`LABEL_SETS`):

``cihp20``
    The 20 CIHP labels of ``image-parse-v3`` themselves (:data:`~clothes_extractor.data.viton.LABELS`),
    identity mapping.
``viton13``
    The 13 groups that VITON-HD and HR-VITON feed their segmentation networks, following
    ``labels = {0: ['background', [0, 10]], ...}`` in HR-VITON's ``cp_dataset.py``
    (github.com/sangyun884/HR-VITON, ``CPDataset.__getitem__``; VITON-HD's ``datasets.py`` uses
    the same table): background {background, torso-skin/neck}, hair {hat, hair}, face
    {sunglasses, face}, upper {upper-clothes, dress, coat}, bottom {pants, skirt}, left arm,
    right arm, left leg, right leg, left shoe, right shoe, socks, noise {glove, scarf}.

A prediction is always *written* in the data set's own format: a palette PNG with
:data:`~clothes_extractor.data.viton.VITON_PALETTE` whose values are CIHP label indices, so it
reads exactly like ``image-parse-v3/<id>.png`` (`extract` takes it as a mask, `split` and the
training code read it). A ``viton13`` class is written as the *representative* CIHP label of its
group (:attr:`LabelSet.representative`): background 0, hair 2, face 13, upper 5
(upper-clothes), bottom 9 (pants), arms 14/15, legs 16/17, shoes 18/19, socks 8, noise 3 (glove).
A written ``viton13`` map therefore loses which member of a group a pixel was (a dress is
written as upper-clothes), which is exactly what that model can tell apart.

The garment: a generator is trained on a set of CIHP labels (default {5}); the segmenter's
garment classes are those whose group holds any of them (:meth:`LabelSet.classes_for`): for
``viton13`` and {5} that is the whole ``upper`` group (upper-clothes, dress, coat).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from clothes_extractor.data.viton import LABELS, VITON_PALETTE
from clothes_extractor.errors import ConfigError

N_CIHP = len(LABELS)

# The person's left/right: mirroring a photo swaps them (left-arm 14 <-> right-arm 15, ...).
CIHP_MIRROR_PAIRS: tuple[tuple[int, int], ...] = ((14, 15), (16, 17), (18, 19))


@dataclass(frozen=True)
class LabelSet:
    """A set of classes, each a group of CIHP labels.

    Attributes:
        name: ``cihp20`` or ``viton13``.
        classes: class names, index = class id.
        groups: for each class, the CIHP labels it holds (every CIHP label in exactly one group).
        representative: for each class, the CIHP label written for it in a palette PNG.
    """

    name: str
    classes: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    representative: tuple[int, ...]

    def __post_init__(self) -> None:
        members = sorted(label for group in self.groups for label in group)
        if members != list(range(N_CIHP)):
            raise ValueError(f"label set {self.name}: every CIHP label must be in exactly one group, got {members}")
        if not (len(self.classes) == len(self.groups) == len(self.representative)):
            raise ValueError(f"label set {self.name}: classes, groups and representatives differ in length")
        for r, g in zip(self.representative, self.groups):
            if r not in g:
                raise ValueError(f"label set {self.name}: representative {r} is not in its group {g}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def from_cihp(self) -> np.ndarray:
        """(256,) uint8 lookup table: CIHP label -> class id (values >= 20 map to 0)."""
        lut = np.zeros(256, np.uint8)
        for cls, group in enumerate(self.groups):
            lut[list(group)] = cls
        return lut

    @property
    def to_cihp(self) -> np.ndarray:
        """(num_classes,) uint8: class id -> its representative CIHP label."""
        return np.asarray(self.representative, np.uint8)

    def encode(self, cihp: np.ndarray) -> np.ndarray:
        """(H, W) uint8 CIHP labels -> (H, W) uint8 class ids of this set."""
        return self.from_cihp[np.asarray(cihp, np.uint8)]

    def decode(self, classes: np.ndarray) -> np.ndarray:
        """(H, W) class ids -> (H, W) uint8 CIHP labels (each class's representative)."""
        classes = np.asarray(classes)
        if classes.size and int(classes.max()) >= self.num_classes:
            raise ValueError(f"class id {int(classes.max())} is out of range for {self.name} ({self.num_classes} classes)")
        return self.to_cihp[classes.astype(np.intp)]

    def classes_for(self, cihp_labels: Iterable[int]) -> tuple[int, ...]:
        """Class ids whose group holds any of ``cihp_labels`` (e.g. the garment labels)."""
        wanted = set(int(v) for v in cihp_labels)
        return tuple(c for c, group in enumerate(self.groups) if wanted & set(group))

    def describe(self, class_ids: Iterable[int]) -> str:
        """``3 (upper: upper-clothes, dress, coat)`` for each class, comma-separated."""
        parts = []
        for c in class_ids:
            members = [LABELS[v] for v in self.groups[c]]
            same = members == [self.classes[c]]
            parts.append(f"{c} ({self.classes[c]})" if same else f"{c} ({self.classes[c]}: {', '.join(members)})")
        return ", ".join(parts)

    @property
    def mirror(self) -> np.ndarray:
        """(num_classes,) class id -> class id of the mirrored image (left and right swapped)."""
        cihp = np.arange(N_CIHP)
        for a, b in CIHP_MIRROR_PAIRS:
            cihp[a], cihp[b] = b, a
        enc = self.from_cihp
        out = np.arange(self.num_classes, dtype=np.uint8)
        for cls in range(self.num_classes):
            out[cls] = enc[cihp[self.representative[cls]]]
        return out


CIHP20 = LabelSet(
    name="cihp20",
    classes=LABELS,
    groups=tuple((i,) for i in range(N_CIHP)),
    representative=tuple(range(N_CIHP)),
)

# HR-VITON cp_dataset.py (github.com/sangyun884/HR-VITON), the 13 groups of semantic_nc=13:
#   0 background [0, 10], 1 hair [1, 2], 2 face [4, 13], 3 upper [5, 6, 7], 4 bottom [9, 12],
#   5 left_arm [14], 6 right_arm [15], 7 left_leg [16], 8 right_leg [17], 9 left_shoe [18],
#   10 right_shoe [19], 11 socks [8], 12 noise [3, 11]
VITON13 = LabelSet(
    name="viton13",
    classes=(
        "background", "hair", "face", "upper", "bottom", "left-arm", "right-arm", "left-leg", "right-leg",
        "left-shoe", "right-shoe", "socks", "noise",
    ),
    groups=((0, 10), (1, 2), (4, 13), (5, 6, 7), (9, 12), (14,), (15,), (16,), (17,), (18,), (19,), (8,), (3, 11)),
    representative=(0, 2, 13, 5, 9, 14, 15, 16, 17, 18, 19, 8, 3),
)

LABEL_SETS: dict[str, LabelSet] = {s.name: s for s in (CIHP20, VITON13)}

# The palette a prediction is written with: VITON-HD's own (values are CIHP labels).
PREDICTION_PALETTE: list[int] = VITON_PALETTE


def get_label_set(name: str) -> LabelSet:
    """``cihp20`` or ``viton13`` -> the :class:`LabelSet`; ConfigError listing the valid names."""
    try:
        return LABEL_SETS[name.lower()]
    except (KeyError, AttributeError):
        raise ConfigError(f"label set {name!r} is not one of {', '.join(LABEL_SETS)}") from None


def class_colours(label_set: LabelSet) -> np.ndarray:
    """(num_classes, 3) uint8: the VITON palette colour of each class's representative label
    (for pictures: a class looks like the CIHP label it is written as)."""
    palette = np.asarray(PREDICTION_PALETTE, np.uint8).reshape(-1, 3)
    return palette[list(label_set.representative)]


def colourise(classes: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB in the VITON palette."""
    return class_colours(label_set)[np.asarray(classes).astype(np.intp)]
