"""`restore-run --precision` / `Restorer(precision=...)`: the shipped int8 graph on the CPU when it
is there and kept quality at export, fp32 otherwise or when asked; the run says which."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

import runtime.default_model as dm
from runtime.metadata import ModelFileError, read_metadata


def _stamp(src, dst, deltas):
    """Write `src` (a graph without metadata) to `dst` as an int8 graph with `deltas` recorded."""
    from export.onnx_export import save_onnx

    meta = dataclasses.replace(read_metadata(dst.parent / "default.onnx"), precision="int8",
                               extra={"int8": json.dumps({"deltas": deltas})})
    save_onnx(onnx.load(str(src)), dst, meta)


@pytest.fixture(scope="module")
def int8_raw(tiny_onnx, tmp_path_factory):
    from export.int8 import Bounds, quantize_verified

    raw = tmp_path_factory.mktemp("raw") / "raw.int8.onnx"
    quantize_verified(tiny_onnx, raw, calibration=2, heldout_per_photo=1, bounds=Bounds(1.0, 100.0, 1.0, 100.0),
                      max_excluded=0, whole_paintings=1)
    return raw


@pytest.fixture
def shipped(tiny_onnx, int8_raw, tmp_path, monkeypatch):
    """A package whose shipped model is the tiny one, with an int8 graph that kept quality."""
    import shutil

    fp32, int8 = tmp_path / "default.onnx", tmp_path / "default.int8.onnx"
    shutil.copy(tiny_onnx, fp32)
    _stamp(int8_raw, int8, {"mask_iou_drop": 0.001, "psnr_inside_drop": 0.05, "changed_outside_mask": 0})
    monkeypatch.setattr(dm, "SHIPPED_ONNX", fp32)
    monkeypatch.setattr(dm, "SHIPPED_INT8", int8)
    return fp32, int8


def test_auto_takes_int8_on_the_cpu_and_fp32_when_forced(shipped):
    from runtime import Restorer

    fp32, int8 = shipped
    r = Restorer(device="cpu")
    assert r.model_path == int8 and r.precision == "int8" and "int8" in r.model_choice
    f = Restorer(device="cpu", precision="fp32")
    assert f.model_path == fp32 and f.precision == "fp32"
    assert dm.choose_model(None, "auto", cpu=False)[0] == fp32  # int8 QDQ is the CPU path
    # Outside the mask both are the input's bytes.
    x = np.random.default_rng(1).integers(0, 256, (33, 41, 3), dtype=np.uint8)
    out, mask, _, _ = r.restore_rgb(x)
    assert np.array_equal(out[mask == 0], x[mask == 0])


def test_int8_that_missed_the_bounds_is_not_used(shipped, int8_raw):
    fp32, int8 = shipped
    _stamp(int8_raw, int8, {"mask_iou_drop": 0.02, "psnr_inside_drop": 0.05, "changed_outside_mask": 0})
    path, why = dm.choose_model("default", "auto")
    assert path == fp32 and "misses the quality bounds" in why
    with pytest.raises(ModelFileError, match="misses the quality bounds"):
        dm.choose_model("default", "int8")
    int8.unlink()
    assert dm.choose_model(None, "auto") == (fp32, "fp32, one view (no int8 graph is shipped)")


def test_named_file_runs_as_it_is(shipped):
    fp32, int8 = shipped
    assert dm.choose_model(str(int8), "auto")[0] == int8
    with pytest.raises(ModelFileError, match="int8 graph; --precision fp32"):
        dm.choose_model(str(int8), "fp32")


def test_restore_run_says_which_graph_ran(shipped, tmp_path):
    from runtime.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(src / "a.png")
    for precision, want in (("auto", "int8"), ("fp32", "fp32")):
        out = tmp_path / f"out-{precision}"
        r = CliRunner().invoke(main, [str(src), str(out), "--device", "cpu", "--quiet", "--precision", precision])
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "restore-report.json").read_text())["summary"]
        assert summary["precision"] == want and want in summary["model_choice"]
        assert ("default.int8.onnx" if want == "int8" else "default.onnx") in r.output
        assert any(line.startswith("model: ") and want in line for line in r.output.splitlines())


@pytest.mark.skipif(not dm.SHIPPED_INT8.is_file(), reason="no int8 graph shipped (restore-export onnx --model "
                                                           "default --precision int8 --no-flip-ensemble --output runtime/assets/default.int8.onnx)")
def test_shipped_int8_graph_meets_the_bounds_and_fits():
    from restore_core.checkpoint import SHIPPED_WEIGHTS

    assert dm.int8_problem(dm.SHIPPED_INT8, dm.SHIPPED_ONNX) is None
    total = sum(p.stat().st_size for p in (dm.SHIPPED_ONNX, dm.SHIPPED_INT8, SHIPPED_WEIGHTS))
    assert total <= 30e6
    assert dm.choose_model(None, "auto", cpu=True)[0] == dm.SHIPPED_INT8
