"""dedup: planted near-duplicates (re-encoded, resized, shifted) are grouped, a slightly
recoloured garment and distinct garments are not; the exclusion list reads back in `split`;
a slice of real VITON (2018) gives exactly its byte-identical copies."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app, dedup_command
from clothes_extractor.data import dedup as D
from clothes_extractor.data import image_signatures as S
from clothes_extractor.data.split import read_exclude_list
from clothes_extractor.data.synthetic import make_sample_data
from clothes_extractor.data.viton import read_id_list

REPO = Path(__file__).resolve().parents[2]
VITON_2018 = REPO.parent / "shared" / "data" / "viton-2018"
runner = CliRunner()

# What the `planted` data set holds (ids 00000_00.. of make_sample_data: train 0-14, test 15-19).
EXPECTED_GROUPS = {
    ("garment", (("train", "00000_00"), ("train", "00001_00"))),  # re-encoded at quality 60
    ("garment", (("train", "00002_00"), ("test", "00015_00"))),  # resized x0.75
    ("garment", (("train", "00003_00"), ("test", "00016_00"))),  # shifted by 3 px
    ("garment", (("test", "00018_00"), ("test", "00019_00"))),  # re-encoded, within test
    ("photo", (("train", "00006_00"), ("test", "00017_00"))),  # resized x0.75 and quality 60
}
EXPECTED_EXCLUDE = {
    "train": {"duplicates": ["00001_00"]},
    "test": {"duplicates": ["00019_00"], "leaked": ["00015_00", "00016_00", "00017_00"]},
}


def _id(i: int) -> str:
    return f"{i:05d}_00"


def _file(root: Path, folder: str, i: int) -> Path:
    return root / ("train" if i < 15 else "test") / folder / f"{_id(i)}.jpg"


def _rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def _shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    out = Image.new("RGB", image.size, "white")
    out.paste(image, (dx, dy))
    return out


def _recoloured(image: Image.Image, degrees: float = 20) -> Image.Image:
    """The hue turned by ``degrees``: the same garment in a slightly different colour."""
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda x: (x + round(degrees * 256 / 360)) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """20 synthetic samples at 192x256 (VITON's size) with the near-duplicates of EXPECTED_GROUPS
    planted, and a negative: train 00005_00's garment is 00004_00's with its hue turned 20
    degrees. Every other garment and photo is distinct."""
    root = tmp_path_factory.mktemp("dedup") / "viton"
    make_sample_data(root, samples=20, seed=1, size=(256, 192))
    _rgb(_file(root, "cloth", 0)).save(_file(root, "cloth", 1), quality=60)
    _rgb(_file(root, "cloth", 2)).resize((144, 192), Image.LANCZOS).save(_file(root, "cloth", 15), quality=90)
    _shifted(_rgb(_file(root, "cloth", 3)), 3, 3).save(_file(root, "cloth", 16), quality=90)
    _recoloured(_rgb(_file(root, "cloth", 4))).save(_file(root, "cloth", 5), quality=90)
    _rgb(_file(root, "image", 6)).resize((144, 192), Image.LANCZOS).save(_file(root, "image", 17), quality=60)
    _rgb(_file(root, "cloth", 18)).save(_file(root, "cloth", 19), quality=60)
    return root


def _signature(path: Path, kind: str) -> S.Signatures:
    return S.signatures(S.thumbnail(path)[None], S.BANDS[kind])


def _distances(a: Path, b: Path, kind: str = "garment") -> tuple[float, float, np.ndarray]:
    structure, colour, shift = S.compare(_signature(a, kind), _signature(b, kind))
    return float(structure[0]), float(colour[0]), shift[0]


def test_planted_copies_are_close_and_the_shift_is_measured(planted: Path) -> None:
    for a, b in ((0, 1), (2, 15), (3, 16), (18, 19)):
        structure, colour, _ = _distances(_file(planted, "cloth", a), _file(planted, "cloth", b))
        assert structure < 0.03 and colour < 3, (a, b, structure, colour)
    structure, colour, _ = _distances(_file(planted, "image", 6), _file(planted, "image", 17), "photo")
    assert structure < 0.03 and colour < 3
    # 3 px of 192 x 256 is (0.75, 1.0) thumbnail pixels (dy, dx)
    _, _, shift = _distances(_file(planted, "cloth", 3), _file(planted, "cloth", 16))
    np.testing.assert_allclose(shift, [0.75, 1.0], atol=0.1)


def test_recoloured_and_distinct_garments_are_not_duplicates(planted: Path) -> None:
    structure, colour, _ = _distances(_file(planted, "cloth", 4), _file(planted, "cloth", 5))
    assert structure < 0.03  # the same shape and pattern ...
    assert colour > 2 * D.DEFAULT_COLOUR_THRESHOLD  # ... but not the same colour
    for a, b in ((7, 8), (0, 2), (10, 11)):
        structure, _, _ = _distances(_file(planted, "cloth", a), _file(planted, "cloth", b))
        assert structure > 2 * D.DEFAULT_THRESHOLDS["garment"], (a, b, structure)


def test_find_duplicates_groups_and_exclusion(planted: Path) -> None:
    layout, records = D.records_of(planted)
    assert layout == "viton-hd" and len(records) == 20
    result = D.find_duplicates(records)
    assert {(g.kind, g.members) for g in result.groups} == EXPECTED_GROUPS
    assert result.counts() == {"garment": {"train": 1, "test": 1, "across": 2}, "photo": {"train": 0, "test": 0, "across": 1}}
    assert result.exclude == EXPECTED_EXCLUDE
    assert result.samples == {"train": 15, "test": 5} and result.images == 40 and not result.unreadable
    for g in result.groups:
        (a, b, structure, colour), = g.pairs
        assert (a, b) == (0, 1) and structure < 0.03 and colour < 3


def test_two_workers_find_the_same(planted: Path) -> None:
    _, records = D.records_of(planted)
    one, two = D.find_duplicates(records, workers=1), D.find_duplicates(records, workers=2)
    assert one.groups == two.groups


def test_exclusion_policy() -> None:
    groups = [
        D.Group("garment", (("train", "b"), ("train", "c"), ("test", "x"), ("test", "y")), ()),
        D.Group("photo", (("test", "p"), ("test", "q"), ("test", "r")), ()),
        D.Group("photo", (("train", "d"), ("train", "e")), ()),
        D.Group("photo", (("train", "b"), ("test", "x")), ()),  # the same leak seen in the photos
    ]
    assert [g.scope for g in groups] == ["across", "test", "train", "across"]
    assert D.exclusion(groups) == {
        "train": {"duplicates": ["c", "e"]},
        "test": {"duplicates": ["q", "r"], "leaked": ["x", "y"]},
    }


def test_exact_copies_of_many_join_one_group(tmp_path: Path) -> None:
    """Byte-identical images (like VITON 2018's copies) join one group however many they are."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 192, 3), np.uint8))
    records = []
    for i in range(12):
        path = tmp_path / f"{i}.jpg"
        image.save(path, quality=90)
        records.append(D.Record("train" if i < 9 else "test", f"{i:02d}", None, path))
    result = D.find_duplicates(records)
    (group,) = result.groups
    assert group.kind == "garment" and len(group.members) == 12 and group.scope == "across"
    assert result.exclude == {"train": {"duplicates": [f"{i:02d}" for i in range(1, 9)]}, "test": {"leaked": ["09", "10", "11"]}}


def test_missing_and_unreadable_images_are_listed_not_fatal(planted: Path, tmp_path: Path) -> None:
    _, records = D.records_of(planted)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(_file(planted, "cloth", 0).read_bytes()[:300])
    records = [*records, D.Record("train", "broken", tmp_path / "missing.jpg", broken)]
    result = D.find_duplicates(records)
    assert {(g.kind, g.members) for g in result.groups} == EXPECTED_GROUPS
    assert sorted(Path(p).name for p, _ in result.unreadable) == ["broken.jpg", "missing.jpg"]
    assert result.images == 40


def test_cli_writes_groups_and_an_exclusion_list_that_split_reads(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "dedup"
    result = runner.invoke(app, ["dedup", "--data", str(planted), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "within train" in result.output and "excluded ids: train: 1 duplicates" in result.output
    report = json.loads((out / D.DUPLICATES_FILE).read_text())
    assert report["layout"] == "viton-hd" and report["counts"]["garment"]["across"] == 2
    assert {(g["kind"], tuple((m["split"], m["id"]) for m in g["members"])) for g in report["groups"]} == EXPECTED_GROUPS
    exclude = out / D.EXCLUDE_FILE
    assert json.loads(exclude.read_text()) == EXPECTED_EXCLUDE
    assert read_exclude_list(exclude) == {"00001_00", "00015_00", "00016_00", "00017_00", "00019_00"}  # evaluate's reader

    lists = tmp_path / "lists"
    result = runner.invoke(app, ["split", "--data", str(planted), "--exclude", str(exclude), "--out", str(lists)])
    assert result.exit_code == 0, result.output
    assert "excluded 1 ids" in result.output
    kept = read_id_list(lists / "train_ids.txt") + read_id_list(lists / "val_ids.txt")
    assert "00001_00" not in kept and "00000_00" in kept

    again = runner.invoke(app, ["dedup", "--data", str(planted), "--out", str(out)])
    assert again.exit_code == 1 and "already exist" in again.output and "--overwrite" in again.output
    assert runner.invoke(app, ["dedup", "--data", str(planted), "--out", str(out), "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent", "not found"),
    (lambda p: p, "matches no known data set layout"),
])
def test_cli_bad_data_is_one_line_and_exit_1(tmp_path: Path, make, message: str) -> None:
    result = runner.invoke(app, ["dedup", "--data", str(make(tmp_path)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_defaults_are_the_measured_thresholds() -> None:
    defaults = {n: p.default for n, p in inspect.signature(dedup_command).parameters.items()}
    assert defaults["garment_threshold"] == D.DEFAULT_THRESHOLDS["garment"]
    assert defaults["photo_threshold"] == D.DEFAULT_THRESHOLDS["photo"]
    assert defaults["colour_threshold"] == D.DEFAULT_COLOUR_THRESHOLD


def test_real_viton_slice_finds_exactly_its_identical_copies() -> None:
    """VITON (2018) as copied here holds many byte-identical samples (the same photo and garment
    under several ids, in train and in test): on a slice, dedup's groups are exactly those."""
    if not (VITON_2018 / "train" / "image").is_dir():
        pytest.skip(f"VITON (2018) not found at {VITON_2018} (it lives in the shared/ folder beside the repo)")
    _, records = D.records_of(VITON_2018)
    train = [r for r in records if r.split == "train"][:300]
    records = train + [r for r in records if r.split == "test"][:100]
    result = D.find_duplicates(records)
    for kind in D.KINDS:
        by_bytes: dict[str, set] = {}
        for r in records:
            by_bytes.setdefault(hashlib.md5(getattr(r, kind).read_bytes()).hexdigest(), set()).add((r.split, r.id))
        identical = {frozenset(g) for g in by_bytes.values() if len(g) > 1}
        assert identical, "the slice should hold some copies"
        assert {frozenset(g.members) for g in result.groups if g.kind == kind} == identical


def test_real_recoloured_photo_pair_is_not_a_duplicate() -> None:
    """VITON's 011426 and 011428: one photo, the shirt navy in one and black in the other."""
    a, b = (VITON_2018 / "train" / "image" / f"{n}_0.jpg" for n in ("011426", "011428"))
    if not (a.is_file() and b.is_file()):
        pytest.skip(f"VITON (2018) not found at {VITON_2018} (it lives in the shared/ folder beside the repo)")
    structure, colour, _ = _distances(a, b, "photo")
    assert structure < 0.01 and colour > 2 * D.DEFAULT_COLOUR_THRESHOLD


@pytest.mark.parametrize("layout", ["viton", "dresscode"])
def test_other_layouts(tmp_path: Path, layout: str) -> None:
    """VITON (2018) ids are `<n>` (files `<n>_0.jpg`, `<n>_1.jpg`); Dress Code's splits come from
    its pair files. A test garment re-encoded from a train one is a leak in both."""
    root = tmp_path / layout
    make_sample_data(root, layout=layout, samples=12, seed=2, size=(256, 192))
    name, records = D.records_of(root)
    assert name == layout and [r.id for r in records] == [f"{i:06d}" for i in range(12)]
    assert [r.split for r in records] == ["train"] * 9 + ["test"] * 3
    _rgb(records[0].garment).save(records[10].garment, quality=60)
    result = D.find_duplicates(records)
    assert [(g.kind, g.members) for g in result.groups] == [("garment", (("train", "000000"), ("test", "000010")))]
    assert result.exclude == {"test": {"leaked": ["000010"]}}
