"""`clothes-extractor serve` as a command: help, without gradio, the host warning, clean exit.

gradio and the page are replaced by stand-ins here (fast); the real server is tested in
test_live.py and test_browser.py.
"""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clothes_extractor.cli import app

runner = CliRunner()


def _one_line(result) -> str:
    return " ".join(result.output.split())


def test_help_shows_the_options_and_examples():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    text = _one_line(result)
    for option in ("--checkpoint", "--segmenter", "--host", "--port", "--max-upload-mb", "--max-megapixels",
                   "--concurrency", "--queue-size", "[default: 127.0.0.1]", "[default: 20]"):
        assert option in text
    assert "clothes-extractor serve -c runs/train-gan -s runs/train-segmenter --port 8080" in text


def test_without_gradio_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert _one_line(result) == 'error: the web page needs gradio, which is not installed: pip install "clothes-extractor[app]"'


def test_other_commands_never_import_gradio():
    code = ("import sys; from typer.testing import CliRunner; from clothes_extractor.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; "
            "r = CliRunner().invoke(app, ['serve', '--help']); assert r.exit_code == 0; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture()
def fake_page(monkeypatch):
    """gradio and the page replaced: `serve` loads the models, 'launches' and returns at once."""
    launched = []
    page = types.ModuleType("clothes_extractor.serve.page")

    def launch(engine, cfg, say):
        launched.append((engine, cfg, Path(engine.root)))
        assert engine.root.is_dir()

    page.launch = launch
    gradio = types.ModuleType("gradio")
    gradio.__spec__ = importlib.machinery.ModuleSpec("gradio", None)
    monkeypatch.setitem(sys.modules, "gradio", gradio)
    monkeypatch.setitem(sys.modules, "clothes_extractor.serve.page", page)
    return launched


def test_serve_loads_once_launches_and_removes_its_folder(fake_page, ckpts):
    result = runner.invoke(app, ["serve", "-c", str(ckpts["generator"]), "-s", str(ckpts["upper"]),
                                 "--port", "8123", "--device", "cpu", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    (engine, cfg, root), = fake_page
    assert cfg.port == 8123 and cfg.host == "127.0.0.1" and cfg.concurrency == 2 and cfg.max_upload_mb == 20
    assert engine.segmenter is not None and not root.exists()
    text = _one_line(result)
    assert f"loaded generator {ckpts['generator']}, segmenter {ckpts['upper']}" in text
    assert "warning" not in text and text.endswith("stopped; temporary files removed")


def test_any_host_but_loopback_is_warned_about(fake_page, ckpts):
    result = runner.invoke(app, ["serve", "-c", str(ckpts["generator"]), "--host", "0.0.0.0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "warning: --host 0.0.0.0 makes the page reachable from other machines, without any login" in _one_line(result)
    assert fake_page[0][1].host == "0.0.0.0"


def test_a_missing_checkpoint_is_a_one_line_error(fake_page, tmp_path):
    result = runner.invoke(app, ["serve", "-c", str(tmp_path / "nope.safetensors"), "--device", "cpu"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert _one_line(result) == f"error: checkpoint not found: {tmp_path / 'nope.safetensors'}"
    assert not fake_page


def test_while_serving_every_temporary_file_goes_to_the_private_folder(fake_page, ckpts, monkeypatch):
    """The libraries' own temporary files (torch's inductor cache folder, request bodies) go to a
    folder beside gradio's, inside the private one that is removed; all is restored after."""
    import os
    import tempfile

    seen = {}

    def launch(engine, cfg, say):
        seen.update(root=Path(engine.root), tempdir=Path(tempfile.gettempdir()), env=os.environ["TMPDIR"],
                    gradio=os.environ["GRADIO_TEMP_DIR"])
        (seen["tempdir"] / "left-by-a-library").mkdir()  # what torch does on importing torch._dynamo

    monkeypatch.setattr(sys.modules["clothes_extractor.serve.page"], "launch", launch)
    monkeypatch.setenv("TMPDIR", "/nowhere")  # restored, and tempfile's cached folder too
    before = tempfile.gettempdir()
    result = runner.invoke(app, ["serve", "-c", str(ckpts["generator"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    root, tempdir = seen["root"], seen["tempdir"]
    assert seen["env"] == str(tempdir) and seen["gradio"] == str(root)
    assert tempdir.parent == root.parent and tempdir != root  # one private folder; clients' paths only in root
    assert not root.parent.exists()
    assert tempfile.gettempdir() == before and os.environ["TMPDIR"] == "/nowhere"
