"""ONNX export: the written file runs in ONNX Runtime like eager PyTorch, carries its metadata,
is one self-contained checker-clean file, and a failed export leaves nothing behind."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import onnx
import pytest
import torch

from export.onnx_export import DEFAULT_OPSET, ExportError, build_metadata, export_onnx
from export.parity import FP16, FP32, pixel_parity, tensor_mask_parity, tensor_parity, violations
from restore_core.img_utils import normalize
from restore_core.pipeline import DEFAULT_THRESHOLD, RestorationPipeline
from runtime.metadata import read_metadata
from tests.conftest import TINY, make_tiny_model, random_pixels

# (N, H, W): a stride multiple, odd sizes with batch 3 (tiny stride is 4), a wide one.
SHAPES = [(1, 64, 64), (3, 37, 53), (2, 18, 71)]


@torch.no_grad()
def confident_tiny_model(seed: int = 0, spread: float = 2.0):
    """`make_tiny_model` with a mask head whose logits spread like a trained model's.

    A random tiny network's mask logits span about +-0.01 around the threshold, so a quarter
    of a photo's pixels sit within 1e-7 of it in probability and float rounding alone flips
    them (see `test_tiny_model_flips_are_threshold_ties`). Scaling the head to a logit standard
    deviation of `spread` and re-centring it keeps about half the pixels masked.
    """
    model = make_tiny_model(seed, TINY)
    img = normalize(random_pixels(1, 32, 32, seed=seed).permute(0, 3, 1, 2))
    _, logits = model(img)
    k = spread / logits.std()
    model.mask_decoder.head.weight *= k
    model.mask_decoder.head.bias *= k
    _, logits = model(img)
    model.mask_decoder.head.bias += math.log(DEFAULT_THRESHOLD / (1 - DEFAULT_THRESHOLD)) - logits.median()
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models on a shared 2-core machine: thread hand-offs cost far more than they save.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pipeline():
    return RestorationPipeline(confident_tiny_model()).eval()


@pytest.fixture(scope="module")
def pixels_result(pipeline, tmp_path_factory):
    return export_onnx(pipeline, tmp_path_factory.mktemp("pixels") / "model.onnx")


@pytest.fixture(scope="module")
def tensor_result(pipeline, tmp_path_factory):
    return export_onnx(pipeline, tmp_path_factory.mktemp("tensor") / "model.onnx", signature="tensor")


def _session(path_or_bytes):
    import onnxruntime as ort

    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def test_pixels_runs_like_eager_at_three_shapes(pipeline, pixels_result):
    sess = _session(pixels_result.path)
    for i, (n, h, w) in enumerate(SHAPES):
        image = random_pixels(n, h, w, seed=10 + i)
        with torch.no_grad():
            ref = [t.numpy() for t in pipeline(image)]
        out = sess.run(None, {"image": image.numpy()})
        assert [o.dtype for o in out] == [np.uint8] * 3
        assert out[0].shape == (n, h, w, 3) and out[1].shape == (n, h, w, 1)
        assert set(np.unique(out[1])) <= {0, 255}
        figures = pixel_parity(image.numpy(), ref, out)
        assert violations(figures, FP32) == [], figures
        assert figures["outside_mask_exact"]
        # Not vacuous: the mask covers some pixels and leaves others.
        assert 0.05 < (out[1] > 0).mean() < 0.95


def test_pixels_parity_summary_meets_fp32_rules(pixels_result):
    parity = pixels_result.parity
    assert parity["passed"] and parity["precision"] == "fp32"
    names = [c["case"] for c in parity["cases"]]
    assert "random 3x37x53" in names and any(n.startswith("photo ") for n in names)
    worst = parity["worst"]
    assert worst["max_level_diff"] <= 1 and worst["differing_share"] <= 1e-3
    assert worst["mask_disagreement"] <= 1e-4 and worst["outside_mask_exact"] is True
    # Float parity came from the tensor twin.
    assert worst["predicted_max_abs_diff"] < 1e-4 and worst["mask_prob_max_abs_diff"] < 1e-4


def test_metadata_round_trips(pipeline, pixels_result):
    meta = read_metadata(pixels_result.path)
    assert meta == pixels_result.metadata
    assert meta == build_metadata(pipeline, "pixels", "fp32", parity=pixels_result.parity)
    assert meta.signature == "pixels" and meta.layout == "NHWC" and meta.color_order == "RGB"
    assert meta.threshold == DEFAULT_THRESHOLD and meta.stride == 4 and meta.pads_inside
    assert meta.model_config["base_channels"] == TINY.base_channels
    assert set(meta.exporter) == {"restore-toolkit", "torch", "onnx", "onnxscript"}
    assert json.loads(json.dumps(meta.parity)) == pixels_result.parity


def test_one_self_contained_checker_clean_file(pixels_result):
    path = pixels_result.path
    assert os.listdir(path.parent) == [path.name]  # no .onnx.data, no temp files
    assert pixels_result.size_bytes == path.stat().st_size
    proto = onnx.load(str(path))
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    assert not any(uses_external_data(t) for t in _get_all_tensors(proto))
    onnx.checker.check_model(proto, full_check=True)
    assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == DEFAULT_OPSET
    io = [(v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
          for v in list(proto.graph.input) + list(proto.graph.output)]
    u8 = onnx.TensorProto.UINT8
    assert io == [("image", u8, ["batch", "height", "width", 3]), ("restored", u8, ["batch", "height", "width", 3]),
                  ("mask", u8, ["batch", "height", "width", 1]), ("predicted", u8, ["batch", "height", "width", 3])]


def test_tensor_signature_float_parity(pipeline, tensor_result):
    assert tensor_result.parity["passed"] and tensor_result.metadata.layout == "NCHW"
    sess = _session(tensor_result.path)
    for i, (n, h, w) in enumerate(SHAPES):
        x = normalize(random_pixels(n, h, w, seed=20 + i).permute(0, 3, 1, 2)).contiguous()
        with torch.no_grad():
            ref = [t.numpy() for t in pipeline.forward_tensor(x)]
        out = sess.run(None, {"input": x.numpy()})
        figures = {**tensor_parity(ref, out), **tensor_mask_parity(x.numpy(), ref, out, DEFAULT_THRESHOLD)}
        assert figures["predicted_max_abs_diff"] < 1e-5 and figures["mask_prob_max_abs_diff"] < 1e-5
        assert figures["mask_disagreement"] == 0.0 and figures["outside_mask_exact"]


def test_fp16_tensor_graph_keeps_interface_and_input_values(pipeline, tensor_result):
    from export.fp16 import convert_to_fp16, is_fp16

    proto = onnx.load(str(tensor_result.path))
    half = convert_to_fp16(proto)
    onnx.checker.check_model(half, full_check=True)
    assert is_fp16(half) and not is_fp16(proto)
    assert [v.type.tensor_type.elem_type for v in half.graph.input] == [onnx.TensorProto.FLOAT]
    x = normalize(random_pixels(3, 37, 53, seed=3).permute(0, 3, 1, 2)).contiguous()
    with torch.no_grad():
        ref = [t.numpy() for t in pipeline.forward_tensor(x)]
    out = _session(half.SerializeToString()).run(None, {"input": x.numpy()})
    figures = {**tensor_parity(ref, out), **tensor_mask_parity(x.numpy(), ref, out, DEFAULT_THRESHOLD)}
    assert violations(figures, FP16) == [], figures
    # The composite copies the float32 input, not its fp16 rounding, where the mask is 0.
    assert figures["outside_mask_exact"]
    assert 0 < figures["predicted_max_abs_diff"] < 1e-3


def test_tiny_model_flips_are_threshold_ties(tiny_onnx):
    """The shared tiny model's mask flips are probabilities within float noise of the threshold."""
    from restore_core.photos import bundled_photos

    pipeline = RestorationPipeline(make_tiny_model()).eval()
    image = torch.from_numpy(np.ascontiguousarray(bundled_photos()["chelsea"][:200, :240]))[None]
    with torch.no_grad():
        _, prob, _ = pipeline.forward_tensor(normalize(image.permute(0, 3, 1, 2)).contiguous())
        ref_mask = pipeline(image)[1].numpy()
    mask = _session(tiny_onnx).run(None, {"image": image.numpy()})[1]
    flipped = (mask > 0) != (ref_mask > 0)  # (1, H, W, 1)
    gap = (prob - DEFAULT_THRESHOLD).abs().permute(0, 2, 3, 1).numpy()
    assert np.all(gap[flipped] < 1e-6)  # every flip (if any) is a tie broken by rounding
    assert (gap < 1e-6).mean() > 1e-3  # and such ties are common in this degenerate model


def test_bad_opsets_fail_before_exporting(pipeline, tmp_path):
    for opset in (17, 99):
        with pytest.raises(ExportError, match=f"opset {opset} is not supported"):
            export_onnx(pipeline, tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_and_failed_parity_leaves_nothing(pipeline, pixels_result, tmp_path, monkeypatch):
    import export.onnx_export as onnx_mod
    import export.verify as verify_mod
    from export.parity import Tolerance

    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        export_onnx(pipeline, target)
    # Reuse the exported graph (no second export, no tensor twin) under a tolerance nothing
    # can meet: parity must fail after the file was written, and the file must vanish.
    proto = onnx.load(str(pixels_result.path))
    monkeypatch.setattr(onnx_mod, "to_onnx_proto", lambda *a, **k: proto)
    backend = onnx_mod.onnx_backend
    monkeypatch.setattr(onnx_mod, "onnx_backend", lambda path, pipe, float_parity=True: backend(path, pipe, False))
    impossible = Tolerance(max_level_diff=0, max_differing_share=-1.0, max_mask_disagreement=0.0, max_float_abs_diff=0.0)
    monkeypatch.setattr(verify_mod, "TOLERANCES", {"fp32": impossible})
    monkeypatch.setattr(verify_mod, "RANDOM_SHAPES", ((1, 16, 16),))
    with pytest.raises(verify_mod.ParityError, match=r"(?s)worst.*allowed \(fp32\).*parity FAILED: 0.000%"):
        export_onnx(pipeline, target, force=True)
    assert target.read_bytes() == b"previous"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp file left
