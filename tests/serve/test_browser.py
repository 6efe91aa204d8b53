"""The page in a real browser, as a person uses it: Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (it cannot work offline): the system's
``chromium`` is the executable. The test skips, saying why, where Playwright or Chromium is
missing (`.ci/run` installs Chromium with apt-get where it can).

``SERVE_SCREENSHOT=FILE pytest tests/serve/test_browser.py`` also writes the page's screenshot
(random-weight models, so the garment is noise; the README's comes from
scripts/serve_screenshot.py with the shipped models).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from tests.serve.conftest import pixels

pytestmark = pytest.mark.slow
runner = CliRunner()
TIMEOUT_MS = 90_000  # an extraction on a busy 2-core machine
REAL_PHOTO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "viton-hd-samples" / "test" / "image" / "00006_00.jpg"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run does it where it can)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        yield browser
        browser.close()


def cli_png(ckpts, photo: Path, tmp: Path, *args: str) -> bytes:
    out = tmp / f"cli-{uuid.uuid4().hex}.png"
    result = runner.invoke(app, ["extract", str(photo), *args, "-o", str(out), "-c", str(ckpts["generator"]),
                                 "--transparent", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def download_cutout(page, tmp: Path) -> Path:
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        page.locator("#cutout a[download]").click()
    path = tmp / f"download-{uuid.uuid4().hex}.png"
    info.value.save_as(path)
    return path


def save_screenshot(page, path: Path) -> None:
    """The page as the README shows it: small (a palette PNG, well under 300 KB)."""
    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw), full_page=True)
    with Image.open(raw) as im:
        im = im.convert("RGB")
        im.thumbnail((1100, 1400), Image.Resampling.LANCZOS)
        im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    raw.unlink()


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_a_person_turns_a_photo_into_a_garment(kind, request, browser, server, ckpts, tmp_path):
    from playwright.sync_api import expect

    if kind == "synthetic" and REAL_PHOTO.is_file():
        pytest.skip("the real photo is here and was used; its synthetic twin runs where ../shared is absent")
    photo = request.getfixturevalue(f"{kind}_photo")  # conftest.py: the real photo (skips without ../shared) or its twin
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    details = page.locator("#details")

    # 1. a photo, the mask the segmenter predicts, the transparent PNG downloaded
    page.locator("#photo input[type=file]").set_input_files(str(photo.photo))
    page.click("#extract")
    expect(details).to_contain_text("predicted by the segmenter", timeout=TIMEOUT_MS)
    expect(details).to_contain_text("upper-clothes")
    expect(page.locator("#preview img")).to_be_visible()
    expect(page.locator("#garment img")).to_be_visible()
    png = download_cutout(page, tmp_path)
    with Image.open(png) as im:
        assert im.size == (768, 1024) and im.mode == "RGBA"
        alpha = np.asarray(im.getchannel("A"))
    assert pixels(png) == pixels(cli_png(ckpts, photo.photo, tmp_path, "--segmenter", str(ckpts["upper"])))
    assert alpha.dtype == np.uint8 and alpha.shape == (1024, 768)

    # 2. the same photo with an uploaded mask (its parse map)
    page.get_by_label("an uploaded mask").check()
    page.locator("#mask input[type=file]").set_input_files(str(photo.parse))
    page.click("#extract")
    expect(details).to_contain_text(f"uploaded: {photo.parse.name}", timeout=TIMEOUT_MS)
    png = download_cutout(page, tmp_path)
    assert pixels(png) == pixels(cli_png(ckpts, photo.photo, tmp_path, str(photo.parse)))
    shot = tmp_path / "serve.png"
    save_screenshot(page, shot)
    assert 10_000 < shot.stat().st_size < 300_000
    if kind == "real" and os.environ.get("SERVE_SCREENSHOT"):
        shutil.copy(shot, os.environ["SERVE_SCREENSHOT"])

    # 3. a mask painted with the brush, checked over the photo
    page.get_by_label("painted with the brush").check()
    page.locator("#brush").get_by_label("Brush", exact=True).click()
    box = page.locator("#brush canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 20, y - 30)
    page.mouse.down()
    for i in range(12):
        page.mouse.move(x - 20 + 4 * i, y - 30 + 5 * i, steps=2)
    page.mouse.up()
    page.click("#check")
    expect(details).to_contain_text("painted with the brush", timeout=TIMEOUT_MS)

    # 4. the model card, one click away
    page.get_by_role("tab", name="Model card").click()
    expect(page.locator("#model-card")).to_contain_text("Generator: generator.safetensors")

    # 5. a text file renamed .jpg: extract's message on the page, and the server goes on
    bad = tmp_path / "notaphoto.jpg"
    bad.write_text("this is text, not a JPEG\n")
    page.goto(server.url)
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    page.click("#extract")
    expect(page.get_by_text("cannot read photo notaphoto.jpg: cannot identify image file 'notaphoto.jpg'")).to_be_visible(
        timeout=TIMEOUT_MS)
    assert server.proc.poll() is None
    page.close()
