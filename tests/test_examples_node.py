"""The Node.js example (examples/node/restore.mjs) against Python's ONNX Runtime on the same file.

Both run ONNX Runtime's CPU kernels on the same graph, and the outputs are compared for
equality: restored, mask and predicted pixels are identical, byte for byte (measured: not one
value differs). The app must also refuse files that break the contract (a renamed output, an
unknown format version, no `restore.` metadata) with one line, exit 1 and nothing written.

Skipped when node or the example's npm packages are absent (run examples/setup.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from runtime.metadata import read_metadata

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NODE_APP = EXAMPLES / "node" / "restore.mjs"
NODE = shutil.which("node")

needs_node = pytest.mark.skipif(
    NODE is None or not (EXAMPLES / "node" / "node_modules" / "onnxruntime-node").is_dir(),
    reason="needs examples/node/node_modules: run examples/setup.sh"
    if NODE else "needs Node.js 18+ (e.g. apt-get install nodejs npm), then examples/setup.sh",
)


# ---- helpers shared with test_examples_web.py -----------------------------------------------

def python_outputs(model_path: Path, rgb: np.ndarray):
    """Python ONNX Runtime CPU outputs (restored, mask, predicted) for one (H, W, 3) image."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    restored, mask, predicted = session.run(["restored", "mask", "predicted"], {"image": rgb[None]})
    return restored[0], mask[0], predicted[0]  # (H, W, 3), (H, W, 1), (H, W, 3)


def seeded_rgb(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth seeded picture with noise: masks of a tiny random model fall on parts of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)  # (H, W, 3)


def broken_copy(src: Path, dst: Path, *, rename_output: str | None = None, version: str | None = None,
                strip_metadata: bool = False) -> Path:
    """Write a copy of an exported model that breaks the contract in one way."""
    model = onnx.load(str(src))
    if rename_output:
        new = rename_output + "_renamed"
        for value in model.graph.output:
            if value.name == rename_output:
                value.name = new
        for node in model.graph.node:
            node.output[:] = [new if o == rename_output else o for o in node.output]
            node.input[:] = [new if i == rename_output else i for i in node.input]
    if version is not None:
        for entry in model.metadata_props:
            if entry.key == "restore.format_version":
                entry.value = version
    if strip_metadata:
        del model.metadata_props[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


# ---- the Node.js app -------------------------------------------------------------------------

def run_app(*args) -> subprocess.CompletedProcess:
    return subprocess.run([NODE, str(NODE_APP), *map(str, args)], capture_output=True, text=True, timeout=60)


# (name, H, W, PIL mode): odd sizes, 1x1, and each kind of PNG a user may hand in.
CASES = [
    ("rgb_odd", 37, 53, "RGB"),
    ("rgb_tall", 67, 9, "RGB"),
    ("one_pixel", 1, 1, "RGB"),
    ("rgba", 20, 31, "RGBA"),
    ("grey", 16, 23, "L"),
    ("palette", 13, 11, "P"),
]


def write_case(tmp_path: Path, name: str, h: int, w: int, mode: str, seed: int):
    """Write a PNG of the given mode; returns (path, RGB the app should feed, alpha or None)."""
    rgb = seeded_rgb(h, w, seed)
    alpha = None
    if mode == "RGB":
        img = Image.fromarray(rgb)
    elif mode == "RGBA":
        alpha = np.random.default_rng(seed + 100).integers(0, 256, (h, w), dtype=np.uint8)
        img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    elif mode == "L":
        img = Image.fromarray(rgb[..., 0])
    else:  # palette: PIL quantizes; the app sees the palette's colours
        img = Image.fromarray(rgb).quantize(colors=16)
    path = tmp_path / f"{name}.png"
    img.save(path)
    expected_rgb = np.asarray(Image.open(path).convert("RGB"))  # grey replicated, palette looked up
    return path, expected_rgb, alpha


@needs_node
@pytest.mark.parametrize("name,h,w,mode", CASES)
def test_node_app_matches_python_ort(tiny_onnx, tmp_path, name, h, w, mode):
    src, rgb, alpha = write_case(tmp_path, name, h, w, mode, seed=len(name) + h)
    out, mask_out = tmp_path / "out.png", tmp_path / "mask.png"
    result = run_app(tiny_onnx, src, out, "--mask", mask_out)
    assert result.returncode == 0, result.stderr
    assert "% of pixels replaced" in result.stdout

    restored, mask, predicted = python_outputs(tiny_onnx, rgb)
    written = Image.open(out)
    assert written.mode == ("RGBA" if alpha is not None else "RGB")
    pixels = np.asarray(written)
    np.testing.assert_array_equal(pixels[..., :3], restored)  # identical to Python ORT, byte for byte
    if alpha is not None:
        np.testing.assert_array_equal(pixels[..., 3], alpha)  # alpha kept as it was
    written_mask = Image.open(mask_out)
    assert written_mask.mode == "L"
    np.testing.assert_array_equal(np.asarray(written_mask), mask[..., 0])
    # The contract itself: outside the mask the input comes back unchanged.
    outside = mask[..., 0] == 0
    np.testing.assert_array_equal(pixels[..., :3][outside], rgb[outside])
    if h * w > 1:
        assert 0 < (mask > 0).mean() < 1  # the tiny model masks about half: both branches checked
    np.testing.assert_array_equal(pixels[..., :3][~outside], predicted[~outside])  # and inside, the prediction


@needs_node
def test_metadata_reader_matches_onnx(tiny_onnx):
    """The JS protobuf reader returns exactly the metadata_props that onnx reads."""
    script = (
        "import fs from 'node:fs';"
        f"import {{ readMetadataProps, readRestoreMetadata }} from {json.dumps((EXAMPLES / 'contract.mjs').as_uri())};"
        "const bytes = fs.readFileSync(process.argv[1]);"
        "readRestoreMetadata(bytes, process.argv[1]);"
        "console.log(JSON.stringify(Object.fromEntries(readMetadataProps(bytes))));"
    )
    result = subprocess.run([NODE, "--input-type=module", "-e", script, str(tiny_onnx)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = {p.key: p.value for p in onnx.load(str(tiny_onnx), load_external_data=False).metadata_props}
    assert json.loads(result.stdout) == expected
    assert expected == read_metadata(tiny_onnx).to_props()


@needs_node
@pytest.mark.parametrize("breakage,message", [
    ({"rename_output": "restored"}, "lacks output restored"),
    ({"rename_output": "mask"}, "lacks output mask"),
    ({"version": "2"}, "unknown restore format version \"2\""),
    ({"strip_metadata": True}, "not a restore model"),
])
def test_node_app_refuses_broken_contract(tiny_onnx, tmp_path, breakage, message):
    model = broken_copy(tiny_onnx, tmp_path / "broken.onnx", **breakage)
    src, _, _ = write_case(tmp_path, "in", 8, 8, "RGB", seed=1)
    out = tmp_path / "out.png"
    result = run_app(model, src, out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(model) in lines[0], result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "in.png"]


@needs_node
def test_node_app_bad_input_and_usage(tiny_onnx, tmp_path):
    not_png = tmp_path / "photo.png"
    not_png.write_bytes(b"not a png at all")
    out = tmp_path / "out.png"
    result = run_app(tiny_onnx, not_png, out)
    assert result.returncode == 1 and f"{not_png}: not a readable PNG" in result.stderr
    assert not out.exists()

    result = run_app(tiny_onnx, tmp_path / "missing.png", out)
    assert result.returncode == 1 and "missing.png: cannot read the image" in result.stderr

    assert run_app(tiny_onnx).returncode == 2  # too few arguments
    assert run_app(tiny_onnx, not_png, out, "--bogus").returncode == 2
    assert run_app(tiny_onnx, not_png, not_png).returncode == 2  # would overwrite its input
    assert not_png.read_bytes() == b"not a png at all"
    help_ = run_app("--help")
    assert help_.returncode == 0 and "usage: node restore.mjs" in help_.stdout
