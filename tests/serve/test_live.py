"""The live server through its API (gradio_client, raw HTTP): extract's files and messages,
limits, paths, batches, and memory over many requests. The server: conftest.py's `server`."""

from __future__ import annotations

import io
import json
import os
import urllib.request
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothes_extractor.cli import app
from tests.serve.conftest import pixels

gradio_client = pytest.importorskip("gradio_client", reason='serve needs gradio: pip install "clothes-extractor[app]"')
runner = CliRunner()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def cli_extract(tmp: Path, ckpts, photo: Path, *args: str) -> bytes:
    out = tmp / f"cli-{uuid.uuid4().hex}.png"
    result = runner.invoke(app, ["extract", str(photo), *args, "-o", str(out), "-c", str(ckpts["generator"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_api_extract_returns_the_files_extract_writes(client, server, ckpts, photo, tmp_path):
    preview, on_white, transparent, details = client.predict(photo=gradio_client.handle_file(str(photo.photo)), api_name="/extract")
    seg = ["--segmenter", str(ckpts["upper"])]
    assert pixels(Path(on_white)) == pixels(cli_extract(tmp_path, ckpts, photo.photo, *seg, "--background", "white"))
    assert pixels(Path(transparent)) == pixels(cli_extract(tmp_path, ckpts, photo.photo, *seg, "--transparent"))
    assert details["category"] == "upper-clothes" and details["mask"] == "predicted by the segmenter"
    assert Image.open(preview).size[1] == 768  # the mask preview: the photo, longest side 768
    _, _, transparent, details = client.predict(
        photo=gradio_client.handle_file(str(photo.photo)), mask_source="upload",
        mask=gradio_client.handle_file(str(photo.parse)), api_name="/extract")
    assert pixels(Path(transparent)) == pixels(cli_extract(tmp_path, ckpts, photo.photo, str(photo.parse), "--transparent"))
    assert details["mask"] == f"uploaded: {photo.parse.name}"
    _, details = client.predict(photo=gradio_client.handle_file(str(photo.photo)), api_name="/check_mask")
    assert details["mask_share"] == 1.0  # the constant segmenter: upper-clothes everywhere


def _refused(client, **kwargs) -> str:
    with pytest.raises(gradio_client.exceptions.AppError) as exc:
        client.predict(**kwargs, api_name="/extract")
    return " ".join(str(exc.value).split())


def test_api_user_errors_are_extracts_messages_and_the_server_stays_up(client, server, photo, tmp_path):
    bad = tmp_path / "notaphoto.jpg"
    bad.write_text("this is text, not a JPEG\n")
    small = tmp_path / "small.png"
    Image.new("L", (10, 10), 255).save(small)
    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), "white").save(big)  # 1.2 megapixels; the server takes 1
    f = gradio_client.handle_file
    assert _refused(client, photo=f(str(bad))) == "cannot read photo notaphoto.jpg: cannot identify image file 'notaphoto.jpg'"
    assert _refused(client, photo=f(str(photo.photo)), mask_source="upload", mask=f(str(small))).startswith(
        f"mask small.png is 10x10 but photo {photo.photo.name} is 768x1024; the mask must be drawn on the same photo")
    assert _refused(client, photo=f(str(big))) == (
        "photo big.png is 1200x1000 (1.2 megapixels), over this server's limit of 1.0 megapixels "
        "(serve --max-megapixels); make it smaller first")
    assert server.proc.poll() is None
    assert client.predict(photo=f(str(photo.photo)), api_name="/extract")[3]["size"] == "768x1024"


def test_uploads_over_the_size_limit_are_refused(client, server, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), np.uint8)).save(noise, compress_level=1)
    assert noise.stat().st_size > 5 * 2**20  # the server takes 5 MB
    with pytest.raises(Exception, match="(?i)too large|exceeds|413"):
        client.predict(photo=gradio_client.handle_file(str(noise)), api_name="/extract")
    assert server.proc.poll() is None


def _call(server, endpoint: str, data: list) -> str:
    """gradio's HTTP API as curl uses it: POST the inputs, then read the event stream."""
    req = urllib.request.Request(f"{server.url}gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    with urllib.request.urlopen(f"{server.url}gradio_api/call/{endpoint}/{event_id}", timeout=120) as r:
        return r.read().decode()


def test_a_path_the_client_names_is_never_read(server):
    secret = Path(os.environ.get("HOME", "/root")) / f"serve-test-{uuid.uuid4().hex}.jpg"
    for path in ("/etc/hostname", str(secret), "../../../../etc/hostname"):
        stream = _call(server, "extract", [{"path": path, "meta": {"_type": "gradio.FileData"}}, "segmenter", None, None, "auto"])
        assert "event: error" in stream and "event: complete" not in stream, stream
    assert server.proc.poll() is None


def test_api_batch_gives_a_zip(client, photo, tmp_path):
    f = gradio_client.handle_file
    bad = tmp_path / "broken.jpg"
    bad.write_text("not a photo")
    archive, details = client.predict(photos=[f(str(photo.photo)), f(str(bad))], masks=[], viton_layout=True,
                                      api_name="/extract_batch")
    stem = photo.photo.stem
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == [f"cloth-mask/{stem}.jpg", f"cloth/{stem}.jpg", "failed.txt"]
        assert Image.open(io.BytesIO(zf.read(f"cloth/{stem}.jpg"))).size == (768, 1024)
    assert details["written"] == 1 and details["failed"]["broken"].startswith("cannot read photo broken.jpg")


@pytest.mark.slow
def test_memory_stays_flat_over_many_requests(client, server, photo):
    f = gradio_client.handle_file(str(photo.photo))
    for _ in range(3):  # warm up: first-call allocations, caches
        client.predict(photo=f, api_name="/extract")
    before = server.rss_mb()
    for _ in range(12):
        client.predict(photo=f, api_name="/extract")
    grown = server.rss_mb() - before
    assert grown < 40, f"the server's memory grew by {grown:.0f} MB over 12 requests (from {before:.0f} MB)"


@pytest.mark.slow  # a server of its own: about 15 s, most of it importing gradio and torch
def test_sigterm_after_requests_leaves_nothing_in_the_temp_folder(ckpts, photo, tmp_path):
    """Everything the server makes (uploads, results, gradio's cache, the libraries' own files:
    torch's inductor cache folder, made while loading the models) is in its private folder, and
    that folder goes on SIGTERM: its TMPDIR is empty again."""
    from tests.serve.conftest import start_server, stop_server

    tmp = tmp_path / "tmp"
    srv = start_server(["-c", str(ckpts["generator"]), "-s", str(ckpts["upper"])], tmp)
    try:
        client = gradio_client.Client(srv.url, verbose=False, download_files=str(tmp_path / "downloads"))
        f = gradio_client.handle_file(str(photo.photo))
        assert client.predict(photo=f, api_name="/extract")[3]["size"] == "768x1024"
        assert client.predict(photo=f, api_name="/check_mask")[1]["mask_share"] == 1.0
        assert list(tmp.iterdir())  # the private folder, while it runs
    finally:
        code = stop_server(srv)
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert code == 0, srv.output()[-3000:]
    assert not left, f"temporary files left behind after SIGTERM: {left[:20]}"
