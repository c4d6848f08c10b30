"""The browser example served cross-origin isolated (examples/web/serve.py): threaded SIMD
WebAssembly with the same bytes as Python ONNX Runtime, and the WebGPU provider where the
browser has one (otherwise the page says why and runs on WASM). Skips like test_examples_web."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.test_examples_node import python_outputs, seeded_rgb
from tests.test_examples_web import EXAMPLES, _missing, drive, serving


def _serve_module():
    """examples/web/serve.py, loaded from its file (examples/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("restore_example_serve", EXAMPLES / "web" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serve = _serve_module()
ISOLATION_HEADERS, make_server = serve.ISOLATION_HEADERS, serve.make_server

pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture(scope="module")
def isolated_url():
    with serving(make_server(0, quiet=True)) as url:
        yield url


def _check_bytes(tiny_onnx, rgb, out, i=0):
    h, w = rgb.shape[:2]
    for name, ref, channels in zip(("restored", "mask", "predicted"), python_outputs(tiny_onnx, rgb), (3, 1, 3)):
        got = np.fromfile(out / f"{i}.{name}.bin", dtype=np.uint8).reshape(h, w, channels)
        np.testing.assert_array_equal(got, ref, err_msg=name)


def test_serve_sends_the_isolation_headers(isolated_url):
    import urllib.request

    with urllib.request.urlopen(isolated_url) as r:
        for key, value in ISOLATION_HEADERS.items():
            assert r.headers[key] == value


def test_threaded_page_matches_python(tiny_onnx, tmp_path, isolated_url):
    rgb = seeded_rgb(45, 61, seed=3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    code, report = drive(isolated_url + "?threads=2", tiny_onnx, [tmp_path / "a.png"], tmp_path / "out")
    assert code == 0, report
    assert report["isolated"] is True and report["threads"] == 2 and report["external"] == []
    _check_bytes(tiny_onnx, rgb, tmp_path / "out")


def test_webgpu_where_the_browser_has_it(tiny_onnx, tmp_path, isolated_url):
    rgb = seeded_rgb(32, 40, seed=4)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    code, report = drive(isolated_url + "?ep=webgpu", tiny_onnx, [tmp_path / "a.png"], tmp_path / "out")
    assert code == 0, report
    if report["provider"] == "wasm":  # no WebGPU here: skipped with its reason, on the page too
        assert "WebGPU" in report["providerNote"]
        _check_bytes(tiny_onnx, rgb, tmp_path / "out")
    else:
        assert report["provider"] == "webgpu" and report["providerNote"] is None
