"""Retake docs/images/serve.png: the page with the shipped default models on an example photo.

Starts `clothes-extractor serve` (default models), drives it with Playwright through the system
Chromium, extracts the first example photo with the predicted mask, and saves a small palette PNG.

    python scripts/serve_screenshot.py [-o docs/images/serve.png] [--port 7861]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from clothes_extractor import pretrained


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise SystemExit(f"serve did not listen on {port} within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/images/serve.png"))
    ap.add_argument("--port", type=int, default=7861)
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("no Chromium on this machine (Debian: apt-get install chromium)")
    photo = pretrained.example_photos()[0]
    cmd = [sys.executable, "-m", "clothes_extractor", "serve", "--host", "127.0.0.1", "--port", str(args.port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(args.port, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{args.port}")
            page.locator("#photo input[type=file]").set_input_files(str(photo))
            page.click("#extract")
            expect(page.locator("#details")).to_contain_text("predicted by the segmenter", timeout=120_000)
            expect(page.locator("#garment img")).to_be_visible()
            page.wait_for_timeout(1500)  # let the images finish drawing
            raw = args.out.with_suffix(".raw.png")
            page.screenshot(path=str(raw), full_page=True)
            browser.close()
        with Image.open(raw) as im:
            im = im.convert("RGB")
            im.thumbnail((1100, 1400), Image.Resampling.LANCZOS)
            im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
        raw.unlink()
        print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB) from {photo.name}")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
