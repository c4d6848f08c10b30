"""The base install restores without torch: `restore-run`, `Restorer`, `restore-demo` and
`restore-export inspect` on an ONNX file (a stand-in and every shipped graph), in a virtualenv
made by `pip install -e .` alone (.ci/run makes it).

The model is a stand-in with the pixels contract, built here with `onnx` (a base dependency):
it replaces every pixel whose red channel is 255 with black and marks it in the mask. No trained
weights are needed to prove that the deployment path runs without PyTorch. The shipped default
model then runs the same way, through `restore-run` with no `--model`, `Restorer()` and the demo.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

from restore_toolkit import __version__
from runtime.metadata import FORMAT_VERSION, ModelMetadata


def stand_in_model(path: Path) -> None:
    dims = ["batch", "height", "width"]
    u8 = TensorProto.UINT8
    nodes = [
        helper.make_node("Slice", ["image", "c0", "c1", "axis"], ["red"]),
        helper.make_node("Cast", ["red"], ["red_f"], to=TensorProto.FLOAT),
        helper.make_node("Greater", ["red_f", "limit"], ["hit"]),
        helper.make_node("Where", ["hit", "u255", "u0"], ["mask"]),
        helper.make_node("Where", ["hit", "u0", "image"], ["restored"]),
        helper.make_node("Identity", ["image"], ["predicted"]),
    ]
    inits = [
        helper.make_tensor("c0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("c1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [3]),
        helper.make_tensor("limit", TensorProto.FLOAT, [], [254.5]),
        helper.make_tensor("u255", u8, [], [255]),
        helper.make_tensor("u0", u8, [], [0]),
    ]
    graph = helper.make_graph(
        nodes, "stand_in", [helper.make_tensor_value_info("image", u8, dims + [3])],
        [helper.make_tensor_value_info("restored", u8, dims + [3]),
         helper.make_tensor_value_info("mask", u8, dims + [1]),
         helper.make_tensor_value_info("predicted", u8, dims + [3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    meta = ModelMetadata(format_version=FORMAT_VERSION, signature="pixels", layout="NHWC", color_order="RGB",
                         threshold=0.1, stride=16, pads_inside=True, precision="fp32",
                         model_config={"base_channels": 4, "blocks_per_stage": 1, "depth": 2, "in_channels": 3,
                                       "max_channels": 256},
                         weights_sha256="0" * 64, exporter={"restore-toolkit": __version__}, parity=None)
    onnx.helper.set_model_props(model, meta.to_props())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def main() -> None:
    assert importlib.util.find_spec("torch") is None, "this check needs a virtualenv without torch"
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "model.onnx"
        stand_in_model(model)
        photos = tmp / "photos"
        photos.mkdir()
        rgb = np.full((20, 30, 3), 100, np.uint8)
        rgb[5:10, 5:10] = (255, 0, 0)  # "corrupted": 25 pixels
        Image.fromarray(rgb).save(photos / "a.png")

        # restore-run, the console script of the base install.
        subprocess.run([bin_dir / "restore-run", "--model", model, photos, tmp / "out", "--save-mask", "--quiet",
                        "--device", "cpu"], check=True)
        out = np.asarray(Image.open(tmp / "out" / "a.png"))
        # The stand-in fills with 0; the fill is evened out (runtime/fill.py): in a PNG every pixel
        # of the 5x5 mark lies within 8 of its edge, so it takes the smooth fill of the 100s around
        # it alone, 100. (The mark is too small to grow over its paint.)
        assert (out[5:10, 5:10] == 100).all() and (out[:5] == 100).all(), "restore-run did not restore"
        assert (np.asarray(Image.open(tmp / "out" / "masks" / "a.png")) == 255).sum() == 25

        # A JPEG keeps the coded blocks the restoration did not touch (jpeglib, a base dependency),
        # and a progressive one comes back progressive (mozjpeg-lossless-optimization, another).
        jpegs = tmp / "jpegs"
        jpegs.mkdir()
        photo = np.random.default_rng(0).integers(40, 200, (64, 96, 3)).astype(np.uint8)
        photo[16:32, 32:48] = 255  # white: red 255 after the save too
        Image.fromarray(photo).save(jpegs / "b.jpg", quality=95, subsampling=0, progressive=True)
        subprocess.run([bin_dir / "restore-run", "--model", model, jpegs, tmp / "jpeg-out", "--quiet",
                        "--device", "cpu"], check=True)
        record = json.loads((tmp / "jpeg-out" / "restore-report.json").read_text())["records"][0]
        assert record["written"] == "changed" and 0.5 < record["kept_blocks"] < 1, record
        assert Image.open(tmp / "jpeg-out" / "b.jpg").info.get("progressive"), "written back sequential"

        # The embedding API.
        from runtime import Restorer

        res = Restorer(model, device="cpu").restore(rgb)
        assert (res.image[5:10, 5:10] == 100).all() and (res.mask == 255).sum() == 25  # an array: exact

        # restore-export inspect on an ONNX file, text and JSON.
        text = subprocess.run([bin_dir / "restore-export", "inspect", model], check=True, capture_output=True,
                              text=True).stdout
        assert "pixels" in text, text
        info = json.loads(subprocess.run([bin_dir / "restore-export", "inspect", model, "--json"], check=True,
                                         capture_output=True, text=True).stdout)
        assert info["metadata"]["signature"] == "pixels", info

        # restore-export inspect on every shipped graph: its contract, metadata and parity table.
        import runtime
        from runtime.metadata import read_metadata

        shipped = sorted((Path(runtime.__file__).parent / "assets").glob("*.onnx"))
        assert shipped, "no shipped graphs installed"
        for graph in shipped:
            text = subprocess.run([bin_dir / "restore-export", "inspect", graph], check=True, capture_output=True,
                                  text=True).stdout
            meta = read_metadata(graph)
            assert f"precision: {meta.precision}" in text and "input  image" in text, text
            assert not meta.parity or "parity of onnxruntime" in text, text
            info = json.loads(subprocess.run([bin_dir / "restore-export", "inspect", graph, "--json"], check=True,
                                             capture_output=True, text=True).stdout)
            assert info["metadata"]["weights_sha256"] == meta.weights_sha256, info

        # A command that needs an extra says which one, in one line.
        needs_extra = [
            (["restore-train", "--max-steps", "1"], "train"),
            (["restore-data", "synth", tmp / "data", "--count", "1", "--size", "16"], "train"),
            (["restore-validate", "--checkpoint", tmp / "x.ckpt", "--data", tmp, "-o", tmp / "v"], "train"),
            (["restore-export", "onnx", "--checkpoint", tmp / "x.ckpt", "-o", tmp / "m.onnx"], "export"),
            (["restore-export", "inspect", tmp / "x.ckpt"], "export"),
            (["restore-bench"], "bench"),
        ]
        for (cmd, *args), extra in needs_extra:
            r = subprocess.run([bin_dir / cmd, *args], capture_output=True, text=True)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") \
                and lines[0].endswith(f"pip install 'restore-toolkit[{extra}]'"), (cmd, r.stderr)
        # The shipped default model: restore-run with no --model, Restorer(), and the demo.
        subprocess.run([bin_dir / "restore-run", photos, tmp / "out-default", "--quiet", "--device", "cpu"],
                       check=True)
        assert (tmp / "out-default" / "a.png").exists()
        assert Restorer(device="cpu").restore(rgb).image.shape == rgb.shape
        demo = subprocess.run([bin_dir / "restore-demo", "-o", tmp / "demo", "--device", "cpu"], check=True,
                              capture_output=True, text=True).stdout
        assert (tmp / "demo" / "contact_sheet.png").exists() and "[3/3]" in demo, demo

        for cmd in ("restore-data", "restore-train", "restore-validate", "restore-export", "restore-run",
                    "restore-bench", "restore-demo"):
            subprocess.run([bin_dir / cmd, "--help"], check=True, capture_output=True)
            subprocess.run([bin_dir / cmd, "--version"], check=True, capture_output=True)
        assert "torch" not in sys.modules
    print(f"torch-free install: restore-run (the default model and another), Restorer, restore-demo and "
          f"restore-export inspect (a stand-in and {len(shipped)} shipped graphs) work without torch")


if __name__ == "__main__":
    main()
