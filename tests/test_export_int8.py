"""`restore-export onnx --precision int8`: static int8 graphs, kept only when the held-out quality holds.

The tiny model of conftest keeps these fast: a few calibration images, one held-out crop per
photo. Its mask is empty on photos, so exactness outside the mask is checked on random pixels,
where about half the pixels are masked.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from export.int8 import Bounds, QuantizationRefused, quantize_verified
from export.quantize import CALIBRATION_PERCENTILE, body_nodes, calibration_images, first_stage_nodes

FAST = {"calibration": 3, "heldout_per_photo": 1, "whole_paintings": 1}
LOOSE = Bounds(1.0, 100.0, 1.0, 100.0)  # any int8 graph passes: these tests check the machinery


def test_calibration_images_are_seeded_training_crops():
    a, b = calibration_images(3), calibration_images(3)
    assert len(a) == 3 and all(x.dtype == np.uint8 and x.ndim == 4 and x.shape[0] == 1 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_body_leaves_the_interface_in_float(tiny_onnx):
    proto = onnx.load(str(tiny_onnx))
    body = set(body_nodes(proto))
    ops = {n.name: n.op_type for n in proto.graph.node}
    assert {ops[n] for n in body} >= {"Conv"}
    # The composite, threshold, heads' activations and uint8 casts are never quantized.
    for n in proto.graph.node:
        if n.op_type in ("Where", "GreaterOrEqual", "Tanh", "Cast", "Round", "Clip"):
            assert n.name not in body, n.op_type


def test_first_stage_is_the_body_before_the_first_pool(tiny_onnx):
    proto = onnx.load(str(tiny_onnx))
    nodes = {n.name: n for n in proto.graph.node}
    first = first_stage_nodes(proto)
    assert first and set(first) <= set(body_nodes(proto))
    # The stem conv and the first stage's ResNet block (two convs, the sum), nothing pooled.
    assert [nodes[n].op_type for n in first].count("Conv") == 2 and "Add" in {nodes[n].op_type for n in first}
    assert "MaxPool" not in {nodes[n].op_type for n in first}
    # No node of it lies downstream of any MaxPool.
    after_pool, todo = set(), [n.name for n in proto.graph.node if n.op_type == "MaxPool"]
    consumers = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.name)
    while todo:
        for o in nodes[todo.pop()].output:
            for c in consumers.get(o, []):
                if c not in after_pool:
                    after_pool.add(c)
                    todo.append(c)
    assert not set(first) & after_pool


def test_calibration_images_save_a_share_as_lossy_files():
    png, saved = calibration_images(4, saved=0.0), calibration_images(4, saved=1.0)
    # The same crops and corruptions, then every one saved and decoded: same sizes, other bytes.
    assert [x.shape for x in png] == [x.shape for x in saved]
    assert all(not np.array_equal(x, y) for x, y in zip(png, saved))
    assert len({x.shape for x in png}) > 1  # sizes differ: the calibrator must take one image a pass
    with pytest.raises(ValueError, match="saved share"):
        calibration_images(2, saved=1.5)


def test_the_calibration_saves_are_named_not_every_save_there_is():
    """Adding a kind to heldout.SAVES for the evaluation must not change the shipped int8
    graph's calibration: its lossy saves are the five it was calibrated with."""
    from export.quantize import LOSSY_SAVES
    from restore_core.heldout import SAVES

    assert LOSSY_SAVES == ("jpeg-75-420", "jpeg-90-420", "jpeg-95-420", "jpeg-95-444", "webp-90")
    assert set(LOSSY_SAVES) < set(SAVES) and "jpeg-95-422" in SAVES


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_other_calibration_methods(tiny_onnx, tmp_path, method):
    dst = tmp_path / "tiny.int8.onnx"
    report = quantize_verified(tiny_onnx, dst, bounds=LOOSE, max_excluded=0, calibration_method=method,
                               **FAST)
    assert report.passed and dst.exists() and report.calibration["method"] == method
    assert "percentile" not in report.calibration
    with pytest.raises(ValueError, match="calibration method"):
        quantize_verified(tiny_onnx, tmp_path / "x.onnx", calibration_method="median", **FAST)


@pytest.fixture(scope="module")
def int8_graph(tiny_onnx, tmp_path_factory):
    dst = tmp_path_factory.mktemp("int8") / "tiny.int8.onnx"
    report = quantize_verified(tiny_onnx, dst, bounds=LOOSE, **FAST)
    return dst, report


def test_int8_graph_is_quantized_and_exact_outside_the_mask(int8_graph, tiny_onnx):
    import onnxruntime as ort

    dst, report = int8_graph
    assert report.passed and report.deltas["changed_outside_mask"] == 0
    assert report.calibration["method"] == "percentile" and report.calibration["percentile"] == CALIBRATION_PERCENTILE
    assert report.worst_tensors and all(r["nodes"] for r in report.worst_tensors)  # qdq_loss_debug ran
    ops = [n.op_type for n in onnx.load(str(dst)).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    int8 = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).integers(0, 256, (2, 37, 45, 3), dtype=np.uint8)
    restored, mask, predicted = int8.run(["restored", "mask", "predicted"], {"image": x})
    assert restored.dtype == np.uint8 and restored.shape == x.shape
    keep = mask[..., 0] == 0
    assert 0.05 < keep.mean() < 0.95  # not vacuous
    assert np.array_equal(restored[keep], x[keep])  # the input's bytes, bit for bit
    assert np.array_equal(restored[~keep], predicted[~keep])
    # Same interface as the fp32 graph (the random tiny model's mask sits on the threshold, so
    # its int8 mask is no measure of quality; the held-out deltas are).
    assert [o.name for o in int8.get_outputs()] == [o.name for o in fp32.get_outputs()]


def test_missed_bounds_refuse_and_remove_the_file(tiny_onnx, tmp_path):
    dst = tmp_path / "never.onnx"
    # Bounds no int8 graph can meet (it would have to gain 1 dB), one exclusion allowed.
    with pytest.raises(QuantizationRefused, match=r"PSNR-in-mask drop .* \(allowed -1.0\).*nothing written") as e:
        quantize_verified(tiny_onnx, dst, bounds=Bounds(0.005, -1.0), max_excluded=1, **FAST)
    assert not dst.exists()
    assert [t["excluded"] for t in e.value.report["tries"]] == [0, 1]  # it tried one part in float:
    assert e.value.report["excluded"][0]["tensor"] == "first stage"  # the first stage, before any tensor


def test_whole_photos_are_verified_beside_the_crops(int8_graph):
    """The verification also scores whole selection photos saved as JPEG (where the shipped
    model's int8 graph loses 0.83 dB in the mask while crops lose 0.24): recorded with the
    crops' figures, bounded where the caller asks (`--max-whole-iou-drop`, `--max-whole-psnr-drop`)."""
    _, report = int8_graph
    assert report.heldout["whole"] == {"images": 5, "paintings": 1, "saved": "jpeg-90-420"}
    assert {"whole_mask_iou_drop", "whole_psnr_inside_drop", "whole_psnr_drop"} <= set(report.deltas)
    assert set(report.fp32["whole"]) == set(report.int8["whole"]) == {"mask_iou", "psnr_inside", "psnr"}
    assert all({"whole_mask_iou_drop", "whole_psnr_inside_drop"} <= set(t) for t in report.tries)
    d = {"mask_iou_drop": 0.001, "psnr_inside_drop": 0.1, "changed_outside_mask": 0}
    whole = {**d, "whole_mask_iou_drop": 0.04, "whole_psnr_inside_drop": 0.8}
    assert Bounds().holds(d) and Bounds().holds(whole)  # recorded, not bounded, unless asked
    assert Bounds(0.005, 0.3, 0.05, 0.9).holds(whole)
    assert not Bounds(0.005, 0.3, 0.05, 0.5).holds(whole) and not Bounds(0.005, 0.3, 0.03, None).holds(whole)
    assert not Bounds(0.005, 0.3, None, 0.9).holds(d)  # a bound asked for, nothing measured: not held


def test_refused_on_whole_photos_alone(tiny_onnx, tmp_path):
    dst = tmp_path / "never.onnx"
    with pytest.raises(QuantizationRefused, match=r"on whole photos .* \(allowed -1.0\)") as e:
        quantize_verified(tiny_onnx, dst, bounds=Bounds(1.0, 100.0, 1.0, -1.0), max_excluded=0, **FAST)
    assert not dst.exists() and e.value.report["deltas"]["psnr_inside_drop"] <= 100.0


@pytest.mark.parametrize("bound", ["--max-psnr-drop", "--max-whole-psnr-drop"])
def test_cli_int8_refused_writes_nothing(tiny_release, tmp_path, bound):
    from export.cli import main

    out = tmp_path / "m.int8.onnx"
    r = CliRunner().invoke(main, ["onnx", "--model", str(tiny_release), "--output", str(out), "--precision", "int8",
                                  "--no-verify", "--calibration-images", "2", "--heldout-per-photo", "1",
                                  bound, "-1", "--max-excluded", "0"])
    assert r.exit_code == 1, r.output
    assert "misses the quality bounds" in r.output and "mask IoU drop" in r.output
    assert "(allowed -1.0)" in r.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_int8_usage(tiny_release, tmp_path):
    from export.cli import main

    r = CliRunner().invoke(main, ["onnx", "--model", str(tiny_release), "--output", str(tmp_path / "x.onnx"),
                                  "--precision", "int8", "--signature", "tensor"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["onnx", "--model", str(tiny_release), "--output", str(tmp_path / "y.onnx"),
                                  "--precision", "int8", "--calibration-method", "median"])
    assert r.exit_code == 2 and "--calibration-method" in r.output


def test_int8_metadata_and_inspect(tiny_pipeline, tmp_path):
    from export.inspection import describe, format_description
    from export.int8 import export_int8
    from runtime.metadata import read_metadata

    out = tmp_path / "tiny.int8.onnx"
    export_int8(tiny_pipeline, out, bounds=LOOSE, verify=False, **FAST)
    meta = read_metadata(out)
    assert meta.precision == "int8"
    report = json.loads(meta.extra["int8"])
    assert set(report["deltas"]) >= {"mask_iou_drop", "psnr_inside_drop", "changed_outside_mask"}
    assert report["heldout"]["images"] == len(report["heldout"]["sources"])
    text = format_description(describe(out))
    assert "int8 quality on" in text and "PSNR in mask" in text and "kept in float" in text
    assert "percentile" in text
    assert "whole photos saved as jpeg-90-420" in text
