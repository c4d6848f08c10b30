"""The browser example (examples/web/) in headless Chromium against Python's ONNX Runtime.

examples/web/drive.mjs opens the page from a local static server (127.0.0.1, an ephemeral
port), picks the model and the images through the page's file inputs, and saves the pixels the
page computed with ONNX Runtime Web (WebAssembly). Those equal Python ONNX Runtime CPU's
outputs byte for byte (measured: not one value differs). The page must fetch nothing from any
other origin, and must refuse a model that breaks the contract with its message on the page.

Skipped when node, the example's npm packages or Chromium are absent (run examples/setup.sh;
Debian's `chromium` package).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_examples_node import broken_copy, python_outputs, seeded_rgb

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DRIVER = EXAMPLES / "web" / "drive.mjs"
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WEB_MODULES = EXAMPLES / "web" / "node_modules"


def _missing() -> str | None:
    if NODE is None:
        return "needs Node.js 18+ (e.g. apt-get install nodejs npm), then examples/setup.sh"
    if not (WEB_MODULES / "onnxruntime-web").is_dir() or not (WEB_MODULES / "playwright-core").is_dir():
        return "needs examples/web/node_modules: run examples/setup.sh"
    if CHROMIUM is None:
        return "needs headless Chromium: apt-get install chromium"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass


@contextlib.contextmanager
def serving(server):
    """Run an HTTP server on a daemon thread; yield the page's URL; shut it down afterwards."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/web/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def page_url():
    """Serve examples/ on 127.0.0.1 (ephemeral port) for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(EXAMPLES))
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


def drive(url: str, model: Path, images: list[Path], out: Path) -> tuple[int, dict]:
    args = [NODE, str(DRIVER), "--url", url, "--model", str(model), "--out", str(out), "--chromium", CHROMIUM]
    for image in images:
        args += ["--image", str(image)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), f"driver printed nothing: {result.stderr}"
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def test_page_matches_python_ort(tiny_onnx, tmp_path, page_url):
    sizes = [(37, 53), (64, 48), (5, 130)]  # odd sizes and a multiple of the stride
    images, pictures = [], []
    for i, (h, w) in enumerate(sizes):
        rgb = seeded_rgb(h, w, seed=10 + i)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rgb).save(path)
        images.append(path)
        pictures.append(rgb)

    code, report = drive(page_url, tiny_onnx, images, tmp_path / "out")
    assert code == 0, report
    assert report["external"] == []  # nothing fetched from outside the page's own origin
    assert report["status"].startswith("Restored img2.png (130x5) in ")

    for i, ((h, w), rgb, page) in enumerate(zip(sizes, pictures, report["images"])):
        assert (page["width"], page["height"]) == (w, h)
        restored, mask, predicted = python_outputs(tiny_onnx, rgb)
        for name, ref, channels in (("restored", restored, 3), ("mask", mask, 1), ("predicted", predicted, 3)):
            got = np.fromfile(tmp_path / "out" / f"{i}.{name}.bin", dtype=np.uint8).reshape(h, w, channels)
            np.testing.assert_array_equal(got, ref, err_msg=f"{name} of image {i}")  # identical, byte for byte
        assert 0 < (mask > 0).mean() < 1  # both sides of the composite are exercised


@pytest.mark.parametrize("breakage,message", [
    ({"rename_output": "restored"}, "lacks output restored"),
    ({"version": "2"}, "unknown restore format version \"2\""),
])
def test_page_refuses_broken_contract(tiny_onnx, tmp_path, page_url, breakage, message):
    model = broken_copy(tiny_onnx, tmp_path / "broken.onnx", **breakage)
    image = tmp_path / "img.png"
    Image.fromarray(seeded_rgb(8, 8, seed=0)).save(image)
    code, report = drive(page_url, model, [image], tmp_path / "out")
    assert code == 1
    assert report["state"] == "error" and message in report["error"] and "broken.onnx" in report["error"]
    assert report["images"] == []
    assert not (tmp_path / "out" / "0.restored.bin").exists()
