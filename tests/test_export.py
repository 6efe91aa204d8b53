"""`export` and the onnxruntime backend: the exported file describes itself, runs with a
dynamic batch, and gives what the torch module gives through the same Extractor / Segmenter.

Models with random weights (resnet18, 64x64) saved the way training saves them stand in for
trained ones, exported once per session. Equality is asserted where users see it: the final
uint8 images of `extract` (within 1/255 per pixel) and the label maps of `segment` (the argmax
differs on at most :data:`ARGMAX_BOUND` of the pixels), on the real VITON-HD samples of
../shared and on the synthetic data set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.checkpoint import read_meta, save_checkpoint
from clothes_extractor.cli import app
from clothes_extractor.config import PreprocessConfig
from clothes_extractor.data.viton import read_label_map
from clothes_extractor.errors import ConfigError, MissingDependencyError
from clothes_extractor.export import ExportConfig, export_onnx
from clothes_extractor.inference import extractor as ex
from clothes_extractor.inference import segmenter as sg
from clothes_extractor.inference.mask import read_pair, require_garment
from clothes_extractor.inference.photo import read_photo
from clothes_extractor.models.generator import Generator
from clothes_extractor.models.segmenter import SegmentationModel
from clothes_extractor.onnx_model import INSTALL_HINT, OnnxModel, open_session

pytest.importorskip("onnxruntime", reason='the [onnx] extra is not installed: pip install "clothes-extractor[onnx]"')
pytest.importorskip("onnx", reason='the [onnx] extra is not installed: pip install "clothes-extractor[onnx]"')

from tests.cli_results import flat, ok, user_error as _user_error

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 64)
CARD = {"name": "test generator", "licence": "CC BY-NC 4.0", "data": "random weights"}
INT8_SSIM_BOUND = {"dynamic": 99.0, "static": 98.0}  # SSIM x100 of the int8 extraction vs fp32
INT8_MEAN_LEVEL_BOUND = 3.0  # mean |int8 - fp32| of the default generator's uint8 outputs
ARGMAX_BOUND = 1e-3  # share of pixels whose argmax may differ (logits that tie within float error)
REAL_IDS = ("00006_00", "00017_00", "14274_00")
SYNTHETIC_TEST_IDS = ("00009_00", "00010_00", "00011_00")


def _ok(result) -> str:
    return flat(ok(result))


def write_generator(path: Path) -> Path:
    torch.manual_seed(0)
    g = Generator(encoder="resnet18", encoder_weights=None)
    meta = {
        "kind": "generator", "clothes_extractor_version": "test",
        "generator": {**g.config.to_dict(), "encoder_weights": None},
        "preprocess": PreprocessConfig(size=SIZE).to_dict(), "train": {"epochs": 1}, "epoch": 3, "step": 7,
        "metrics": {"val_l1": 0.25}, "card": CARD,
    }
    return save_checkpoint(path, g.state_dict(), meta)


def write_segmenter(path: Path) -> Path:
    from clothes_extractor.train.segmenter import SegmenterConfig, SegmenterTask

    cfg = SegmenterConfig(data="d", out="o", size=SIZE, label_set="cihp20", encoder="resnet18", encoder_weights=None)
    torch.manual_seed(0)
    model = SegmentationModel(encoder="resnet18", classes=cfg.labels.num_classes)
    meta = {**SegmenterTask(cfg).meta(), "train": cfg.to_dict(), "epoch": 0, "step": 0, "metrics": {}}
    return save_checkpoint(path, model.state_dict(), meta)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints and their fp32 exports: generator(.onnx), segmenter(.onnx)."""
    d = tmp_path_factory.mktemp("onnx")
    paths = {"generator": write_generator(d / "generator.safetensors"), "segmenter": write_segmenter(d / "segmenter.safetensors")}
    for kind in ("generator", "segmenter"):
        result = export_onnx(ExportConfig(paths[kind], d / f"{kind}.onnx"))
        assert result.quantization is None
        paths[f"{kind}.onnx"] = result.path
    return paths


@pytest.fixture(scope="session")
def extractors(models) -> tuple[ex.Extractor, ex.Extractor]:
    return ex.load_extractor(models["generator"]), ex.load_extractor(models["generator.onnx"])


@pytest.fixture(scope="session")
def segmenters(models) -> tuple[sg.Segmenter, sg.Segmenter]:
    return sg.load_segmenter(models["segmenter"]), sg.load_segmenter(models["segmenter.onnx"])


def _pairs(root: Path, ids) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(photo, parse labels, upper-clothes mask) of each id in root/test."""
    out = []
    for sample_id in ids:
        photo = np.asarray(Image.open(root / "test" / "image" / f"{sample_id}.jpg").convert("RGB"))
        labels = read_label_map(root / "test" / "image-parse-v3" / f"{sample_id}.png")
        out.append((photo, labels, labels == 5))
    return out


@pytest.fixture(scope="session")
def real_pairs(real_root):
    return _pairs(real_root, REAL_IDS)


@pytest.fixture(scope="session")
def synthetic_pairs(synthetic_root):
    return _pairs(synthetic_root, SYNTHETIC_TEST_IDS)


# --- the file ------------------------------------------------------------------------------------


def test_onnx_metadata_is_the_checkpoints_and_rebuilds_the_preprocessing(models, extractors):
    meta, onnx_meta = read_meta(models["generator"]), read_meta(models["generator.onnx"])
    info = onnx_meta.pop("onnx")
    assert onnx_meta.pop("path") == str(models["generator.onnx"])
    meta.pop("path")
    assert onnx_meta == meta  # model, preprocess, train, epoch, step, metrics, card: all of it
    assert info["source"] == "generator.safetensors" and info["quantization"] is None and info["opset"] == 17
    torch_ex, onnx_ex = extractors
    assert isinstance(onnx_ex.model, OnnxModel) and onnx_ex.preprocess == torch_ex.preprocess

    props = open_session(models["generator.onnx"]).get_modelmeta().custom_metadata_map
    assert props["kind"] == "generator"
    assert json.loads(props["preprocess"]) == PreprocessConfig(size=SIZE).to_dict()
    assert {k: props[k] for k in ("name", "licence", "data")} == CARD
    assert "uint8 / 127.5 - 1" in props["input"]


def test_a_checkpoint_without_card_exports_without_one(models):
    props = open_session(models["segmenter.onnx"]).get_modelmeta().custom_metadata_map
    assert props["kind"] == "segmenter" and not {"name", "licence", "data"} & set(props)
    assert json.loads(props["preprocess"])["label_set"] == "cihp20"


@pytest.mark.parametrize("kind, outputs", [("generator", {"rgb": 3, "alpha_logit": 1}), ("segmenter", {"logits": 20})])
def test_batch_axis_is_dynamic_and_outputs_match_torch(models, kind, outputs):
    session = open_session(models[f"{kind}.onnx"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.shape == ["batch", 3, 64, 64]
    assert {o.name: o.shape for o in session.get_outputs()} == {n: ["batch", c, 64, 64] for n, c in outputs.items()}
    load = ex.load_extractor if kind == "generator" else sg.load_segmenter
    torch_model, onnx_model = load(models[kind]).model, load(models[f"{kind}.onnx"]).model
    for batch in (1, 3):
        x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        with torch.no_grad():
            want, got = torch_model(x), onnx_model(x)
        # A paint generator's warp fields are None on both sides.
        want, got = ([t for t in want if t is not None], [t for t in got if t is not None]) if kind == "generator" else ((want,), (got,))
        for w, g in zip(want, got):
            assert g.shape == w.shape and torch.allclose(g, w, atol=1e-4), (batch, float((g - w).abs().max()))


# --- the same results ----------------------------------------------------------------------------


def _assert_same_extractions(extractors, pairs):
    """`extract`'s images (on the training background, and the alpha) within 1/255 per pixel.
    The cut-out's colours divide by alpha (:meth:`ExtractResult.rgba`), so there a level of
    difference may grow to 1/alpha: at most 2 where the garment is (alpha >= 128)."""
    torch_ex, onnx_ex = extractors
    for photo, _, mask in pairs:
        a, b = torch_ex.extract(photo, mask), onnx_ex.extract(photo, mask)
        assert a.rgb.shape == b.rgb.shape == (1024, 768, 3)
        for x, y in ((a.rgb, b.rgb), (a.alpha, b.alpha)):
            assert np.abs(x.astype(np.int16) - y).max() <= 1
        cut_a, cut_b = a.rgba().astype(np.int16), b.rgba().astype(np.int16)
        assert np.abs(cut_a - cut_b)[a.alpha >= 128].max(initial=0) <= 2


def test_extract_with_onnx_equals_torch_within_one_level_on_real_photos(extractors, real_pairs):
    _assert_same_extractions(extractors, real_pairs)


def test_extract_with_onnx_equals_torch_within_one_level_on_synthetic_photos(extractors, synthetic_pairs):
    _assert_same_extractions(extractors, synthetic_pairs)


def _assert_same_label_maps(segmenters, pairs):
    torch_seg, onnx_seg = segmenters
    photos = [p for p, _, _ in pairs]
    for a, b, photo in zip(torch_seg.predict_many(photos), onnx_seg.predict_many(photos, batch_size=2), photos):
        assert a.shape == b.shape == photo.shape[:2]
        assert (a != b).mean() <= ARGMAX_BOUND


def test_segment_with_onnx_equals_torch_on_real_photos(segmenters, real_pairs):
    _assert_same_label_maps(segmenters, real_pairs)


def test_segment_with_onnx_equals_torch_on_synthetic_photos(segmenters, synthetic_pairs):
    _assert_same_label_maps(segmenters, synthetic_pairs)


# --- the commands --------------------------------------------------------------------------------


def test_export_command_writes_once_then_needs_overwrite(models, tmp_path):
    out = tmp_path / "g.onnx"
    text = _ok(runner.invoke(app, ["export", str(models["generator"]), "-o", str(out)]))
    assert f"wrote {out} (generator, fp32" in text and "max 0/255" in text
    assert read_meta(out)["preprocess"]["size"] == [64, 64]
    again = _user_error(runner.invoke(app, ["export", str(models["generator"]), "-o", str(out)]))
    assert "exists; pass --overwrite" in again
    _ok(runner.invoke(app, ["export", str(models["segmenter"]), "-o", str(out), "--overwrite"]))
    assert read_meta(out)["kind"] == "segmenter"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # no temporary file left


@pytest.mark.parametrize(
    "args, message",
    [
        (["{ckpt}", "-o", "{tmp}/m.txt"], "a .onnx file"),
        (["{ckpt}", "-o", "{tmp}/m.onnx", "--calibrate", "{tmp}"], "--calibrate goes with --int8"),
        (["{onnx}", "-o", "{tmp}/m.onnx"], "already an ONNX model"),
        (["{tmp}/missing.safetensors", "-o", "{tmp}/m.onnx"], "checkpoint not found"),
        (["{bad}", "-o", "{tmp}/m.onnx"], "is not a safetensors checkpoint"),
    ],
)
def test_export_user_errors_are_one_line(models, tmp_path, args, message):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    names = {"ckpt": models["generator"], "onnx": models["generator.onnx"], "tmp": tmp_path, "bad": bad}
    text = _user_error(runner.invoke(app, ["export", *(a.format(**names) for a in args)]))
    assert message in text and "Traceback" not in text
    assert not (tmp_path / "m.onnx").exists()


def test_export_needs_exactly_one_of_checkpoint_and_default(models, tmp_path):
    assert "not both" in _user_error(runner.invoke(app, ["export", "-o", str(tmp_path / "m.onnx")]), 2)
    both = ["export", str(models["generator"]), "--default", "generator", "-o", str(tmp_path / "m.onnx")]
    assert "not both" in _user_error(runner.invoke(app, both), 2)
    assert "not one of" in _user_error(runner.invoke(app, ["export", "--default", "gan", "-o", str(tmp_path / "m.onnx")]), 2)


def test_extract_and_segment_commands_take_onnx(models, real_root, tmp_path):
    split = real_root / "test"
    photo, parse = split / "image" / "00006_00.jpg", split / "image-parse-v3" / "00006_00.png"
    images = {}
    for name, ckpt in (("torch", models["generator"]), ("onnx", models["generator.onnx"])):
        _ok(runner.invoke(app, ["extract", str(photo), str(parse), "-o", str(tmp_path / f"{name}.png"), "-c", str(ckpt)]))
        images[name] = np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.int16)
    assert images["torch"].shape == (1024, 768, 3) and np.abs(images["torch"] - images["onnx"]).max() <= 1
    text = _ok(runner.invoke(app, ["segment", str(photo), "-o", str(tmp_path / "parse.png"), "-s", str(models["segmenter.onnx"])]))
    assert "palette PNG" in text and read_label_map(tmp_path / "parse.png").shape == (1024, 768)


@pytest.fixture(scope="module")
def small_data(synthetic_root, tmp_path_factory) -> Path:
    """The first two samples of each split of the synthetic data set at 128 px: scoring at the
    cloth's full 768x1024 frame would cost more than the comparison needs."""
    from clothes_extractor.data.downsample import downsample

    dst = tmp_path_factory.mktemp("small") / "viton"
    downsample(synthetic_root, dst, size=128, first=2, workers=1, progress=False)
    return dst


def _eval_config(checkpoint: Path, data: Path, tmp_path: Path):
    from clothes_extractor.evaluation.config import EvalConfig

    return EvalConfig(checkpoint=checkpoint, data=data, split="test", out=tmp_path / checkpoint.name,
                      batch_size=2, device="cpu", workers=0, network_metrics=False, grid_rows=1)


def test_evaluate_scores_an_onnx_generator_as_its_checkpoint(models, small_data, tmp_path):
    from clothes_extractor.evaluation.run import evaluate

    summaries = {}
    for name in ("generator", "generator.onnx"):
        cfg = _eval_config(models[name], small_data, tmp_path)
        summaries[name] = evaluate(cfg, progress=False).summary
    for protocol in ("native", "paper"):
        a, b = summaries["generator"][protocol]["model"], summaries["generator.onnx"][protocol]["model"]
        for metric in ("l1", "ssim", "psnr"):
            assert b[metric] == pytest.approx(a[metric], rel=1e-3, abs=1e-3), (protocol, metric)


def test_evaluate_scores_an_onnx_segmenter_as_its_checkpoint(models, small_data, tmp_path):
    from clothes_extractor.evaluation.run import evaluate

    scores = []
    for name in ("segmenter", "segmenter.onnx"):
        cfg = _eval_config(models[name], small_data, tmp_path)
        scores.append(evaluate(cfg, progress=False).summary)
    assert scores[1]["miou"] == pytest.approx(scores[0]["miou"], abs=ARGMAX_BOUND)
    assert scores[1]["pixel_accuracy"] == pytest.approx(scores[0]["pixel_accuracy"], abs=ARGMAX_BOUND)


# --- without onnxruntime -------------------------------------------------------------------------


def test_without_onnxruntime_an_onnx_file_asks_for_the_extra(models, real_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingDependencyError, match=re.escape(INSTALL_HINT)):
        ex.load_extractor(models["generator.onnx"])
    photo = real_root / "test" / "image" / "00006_00.jpg"
    text = _user_error(runner.invoke(app, ["segment", str(photo), "-o", str(tmp_path / "p.png"), "-s", str(models["segmenter.onnx"])]))
    assert text.endswith(INSTALL_HINT) and text.count("error:") == 1
    assert ex.load_extractor(models["generator"]).model.__class__ is Generator  # checkpoints need no onnxruntime


def test_help_imports_neither_onnx_nor_onnxruntime():
    code = (
        "import sys; from typer.testing import CliRunner; from clothes_extractor.cli import app; "
        "r = CliRunner().invoke(app, ['export', '--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'clothes_extractor.export') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- int8 ----------------------------------------------------------------------------------------


def test_config_refuses_calibration_without_int8(models, tmp_path):
    with pytest.raises(ConfigError, match="--int8"):
        ExportConfig(models["generator"], tmp_path / "m.onnx", calibrate=tmp_path)


@pytest.fixture(scope="session")
def int8_generators(models, synthetic_root, tmp_path_factory) -> dict[str, Path]:
    """The generator quantized dynamically, and statically on 4 synthetic train samples."""
    d = tmp_path_factory.mktemp("int8")
    dynamic = export_onnx(ExportConfig(models["generator"], d / "dynamic.onnx", int8=True))
    static = export_onnx(ExportConfig(models["generator"], d / "static.onnx", int8=True, calibrate=synthetic_root, samples=4))
    assert (dynamic.quantization, static.quantization) == ("dynamic", "static")
    assert static.check["samples"] == 4 and dynamic.check["samples"] == 2  # the export's own check ran
    return {"dynamic": dynamic.path, "static": static.path}


def test_int8_models_describe_their_quantization_and_are_smaller(models, int8_generators):
    fp32 = models["generator.onnx"].stat().st_size
    for mode, path in int8_generators.items():
        info = read_meta(path)["onnx"]["quantization"]
        assert info["mode"] == mode
        assert path.stat().st_size < fp32 / 3
    assert read_meta(int8_generators["static"])["onnx"]["quantization"]["samples"] == ["00000_00", "00001_00", "00002_00", "00003_00"]


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_extraction_stays_close_to_fp32(int8_generators, extractors, real_pairs, mode):
    """Random weights are a hard case for int8 (no trained, narrow activation ranges); the
    bound is on the SSIM of the int8 extraction against the fp32 one, x100, per photo."""
    from clothes_extractor.metrics import luminance, ssim

    fp32 = extractors[1]
    int8 = ex.load_extractor(int8_generators[mode])
    for photo, _, mask in real_pairs:
        a, b = fp32.extract(photo, mask).rgb, int8.extract(photo, mask).rgb
        x, y = (torch.from_numpy(np.array(i)).permute(2, 0, 1)[None].float() / 255 for i in (a, b))
        value = float(ssim(luminance(x), luminance(y))[0]) * 100
        print(f"int8 {mode}: SSIM x100 against fp32 {value:.2f}")
        assert value >= INT8_SSIM_BOUND[mode]


# --- the README's example ------------------------------------------------------------------------


def readme_example() -> str:
    """The first python block of the README's deploy section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Deploy without PyTorch"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("which", ["tiny", "default"])
def test_readme_example_extracts_with_onnxruntime_numpy_and_pillow_only(request, models, real_root, tmp_path, which):
    """Once with the tiny model ("photo" framing), once with the default one ("fill" framing)."""
    split = real_root / "test"
    model = models["generator.onnx"] if which == "tiny" else request.getfixturevalue("default_exports")["generator"]
    shutil.copy(model, tmp_path / "generator.onnx")
    shutil.copy(split / "image" / "00006_00.jpg", tmp_path / "person.jpg")
    shutil.copy(split / "image-parse-v3" / "00006_00.png", tmp_path / "parse.png")
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 14
    check = "\nimport sys; print(sorted(m for m in ('torch', 'clothes_extractor') if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # neither PyTorch nor this package was imported
    got = np.asarray(Image.open(tmp_path / "garment.png"), dtype=np.int16)
    onnx_ex = ex.load_extractor(model)
    photo, mask = read_pair(tmp_path / "person.jpg", tmp_path / "parse.png", onnx_ex.labels)
    want = onnx_ex.predict(onnx_ex.prepare(photo, mask)[None])[0][0]
    assert got.shape == want.shape and np.array_equal(got, want)  # the same preprocessing, bit for bit


def test_an_onnx_file_that_is_not_ours_is_a_one_line_error(models, real_root, tmp_path):
    import onnx

    split = real_root / "test"
    photo, parse = split / "image" / "00006_00.jpg", split / "image-parse-v3" / "00006_00.png"
    garbage, foreign = tmp_path / "garbage.onnx", tmp_path / "foreign.onnx"
    garbage.write_bytes(b"not a model")
    proto = onnx.load(str(models["generator.onnx"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(foreign))
    for path, message in ((garbage, "is not a readable ONNX model"), (foreign, "export one with `clothes-extractor export`")):
        text = _user_error(runner.invoke(app, ["extract", str(photo), str(parse), "-o", str(tmp_path / "x.png"), "-c", str(path)]))
        assert message in text and text.count("error:") == 1
    assert not (tmp_path / "x.png").exists()


# --- the default models --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def default_exports(tmp_path_factory) -> dict[str, Path]:
    """The shipped generator and segmenter, exported with `export --default KIND`."""
    d = tmp_path_factory.mktemp("defaults")
    for kind in ("generator", "segmenter"):
        _ok(runner.invoke(app, ["export", "--default", kind, "-o", str(d / f"{kind}.onnx")]))
    return {kind: d / f"{kind}.onnx" for kind in ("generator", "segmenter")}


def test_default_models_export_and_give_the_same_garments_mask_free(default_exports):
    """On the shipped example photos: the segmenter's label maps agree, and the garment the
    generator extracts from the (torch) predicted mask is the same within 1/255."""
    from clothes_extractor.pretrained import default_path, example_photos

    photos = [read_photo(p) for p in example_photos()]
    if not photos:
        pytest.skip("the example photos were left out of this installation")
    props = open_session(default_exports["generator"]).get_modelmeta().custom_metadata_map
    assert props["name"] == "clothes-extractor default generator"
    assert json.loads(props["preprocess"]) == read_meta(default_path("generator"))["preprocess"]
    torch_seg, onnx_seg = sg.load_segmenter(default_path("segmenter")), sg.load_segmenter(default_exports["segmenter"])
    torch_ex, onnx_ex = ex.load_extractor(default_path("generator")), ex.load_extractor(default_exports["generator"])
    for photo in photos:
        classes = torch_seg.predict(photo)
        assert (classes != onnx_seg.predict(photo)).mean() <= ARGMAX_BOUND
        mask = require_garment(torch_seg, classes, torch_ex.labels)
        a, b = torch_ex.extract(photo, mask), onnx_ex.extract(photo, mask)
        assert np.abs(a.rgb.astype(np.int16) - b.rgb).max() <= 1 and np.abs(a.alpha.astype(np.int16) - b.alpha).max() <= 1


def test_default_generator_in_int8_stays_close_to_fp32(real_root, tmp_path):
    """Static int8 of the trained default generator, calibrated on the three real samples: its
    uint8 outputs stay within a few levels of the checkpoint's on average. (With full-range
    int8 weights, AVX2's saturating uint8 x int8 products put them 22 levels away.)"""
    from clothes_extractor.pretrained import default_path

    result = export_onnx(ExportConfig(default_path("generator"), tmp_path / "g8.onnx", int8=True, calibrate=real_root, split="test"))
    assert result.quantization == "static" and result.check["samples"] == 3
    assert result.check["mean_level_difference"] <= INT8_MEAN_LEVEL_BOUND


# --- a warp generator ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def warp_extractors(tmp_path_factory):
    """(torch, onnx) extractors of a random-weight warp generator (its flow and mask heads random too)."""
    from tests.inference.conftest import write_generator as write_any_generator

    d = tmp_path_factory.mktemp("onnx-warp")
    ckpt = write_any_generator(d / "warp.safetensors", arch="warp", framing="fill")
    onnx_path = export_onnx(ExportConfig(ckpt, d / "warp.onnx")).path
    return ex.load_extractor(ckpt), ex.load_extractor(onnx_path)


def test_a_warp_generator_exports_its_flow_and_mask_and_extracts_as_torch_does(warp_extractors, synthetic_pairs):
    """The graph gives the fields `extract` applies to the photo at full size; the garments
    written from them stay within 2/255 of torch's."""
    torch_ex, onnx_ex = warp_extractors
    assert onnx_ex.model.outputs == ("rgb", "alpha_logit", "flow", "mask_logit", "generated")
    assert onnx_ex.warp and torch_ex.warp
    for photo, _, mask in synthetic_pairs:
        a, b = torch_ex.extract(photo, mask), onnx_ex.extract(photo, mask)
        assert a.rgb.shape == b.rgb.shape == (1024, 768, 3)
        for x, y in ((a.rgb, b.rgb), (a.alpha, b.alpha)):
            assert np.abs(x.astype(np.int16) - y).max() <= 2
