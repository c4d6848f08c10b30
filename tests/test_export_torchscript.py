"""TorchScript (.pt) and torch.export (.pt2): scripted/frozen or exported, with metadata inside,
dynamic sizes, parity with eager, and no deprecation noise for users."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from export.onnx_export import build_metadata
from export.parity import FP32, pixel_parity, tensor_parity, violations
from export.torchscript import (
    export_exported_program,
    export_torchscript,
    load_exported_program,
    load_torchscript,
    to_torchscript,
)
from restore_core.checkpoint import weights_sha256
from restore_core.img_utils import normalize
from restore_core.pipeline import RestorationPipeline
from runtime.metadata import ModelFileError
from tests.conftest import random_pixels
from tests.test_export_onnx import SHAPES, confident_tiny_model, one_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def pipeline():
    return RestorationPipeline(confident_tiny_model(seed=1)).eval()


@pytest.fixture(scope="module")
def ts_result(pipeline, tmp_path_factory):
    return export_torchscript(pipeline, tmp_path_factory.mktemp("ts") / "model.pt")


@pytest.fixture(scope="module")
def pt2_result(pipeline, tmp_path_factory):
    return export_exported_program(pipeline, tmp_path_factory.mktemp("pt2") / "model.pt2")


def test_scripted_frozen_without_deprecation_noise(pipeline):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = to_torchscript(pipeline)
    assert isinstance(module, torch.jit.ScriptModule)
    assert not [w for w in caught if "torch.jit" in str(w.message)]
    # Frozen: weights became constants, no parameters remain; both signatures are callable.
    assert list(module.parameters()) == []
    assert hasattr(module, "forward_tensor")


def test_torchscript_parity_both_signatures(pipeline, ts_result):
    assert ts_result.parity["passed"] and ts_result.parity["signatures"] == ["pixels", "tensor"]
    module, meta = load_torchscript(ts_result.path)
    for i, (n, h, w) in enumerate(SHAPES):
        image = random_pixels(n, h, w, seed=30 + i)
        x = normalize(image.permute(0, 3, 1, 2)).contiguous()
        with torch.no_grad():
            figures = pixel_parity(image.numpy(), [t.numpy() for t in pipeline(image)], [t.numpy() for t in module(image)])
            figures.update(tensor_parity([t.numpy() for t in pipeline.forward_tensor(x)],
                                         [t.numpy() for t in module.forward_tensor(x)]))
        assert violations(figures, FP32) == [], figures
        assert figures["outside_mask_exact"] and figures["mask_disagreement"] == 0.0
        assert figures["predicted_max_abs_diff"] < 1e-5


def test_torchscript_metadata_round_trips(pipeline, ts_result):
    _, meta = load_torchscript(ts_result.path)
    expected = build_metadata(pipeline, "pixels", "fp32", ts_result.parity)
    expected.extra["artifact"] = "torchscript"
    assert meta == expected == ts_result.metadata
    assert meta.weights_sha256 == weights_sha256(pipeline.model)
    # Saved with its weights (a module saved after optimize_for_inference would be ~20 kB of code).
    assert ts_result.size_bytes > 30_000


def test_exported_program_any_batch_and_size(pipeline, pt2_result):
    assert pt2_result.parity["passed"]
    program, meta = load_exported_program(pt2_result.path)
    assert meta.extra["artifact"] == "exported-program" and meta.parity == pt2_result.parity
    module = program.module()
    # Batch 1 and stride multiples included: the program must not specialize on either.
    for i, (n, h, w) in enumerate(SHAPES + [(1, 16, 16), (1, 9, 10)]):
        image = random_pixels(n, h, w, seed=40 + i)
        with torch.no_grad():
            ref = [t.numpy() for t in pipeline(image)]
            out = [t.numpy() for t in module(image)]
        assert all(np.array_equal(a, b) for a, b in zip(ref, out)), (n, h, w)


def test_foreign_files_refused(tmp_path):
    class Plain(torch.nn.Module):
        def forward(self, x):
            return x + 1

    foreign = tmp_path / "foreign.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Plain()), str(foreign))
    with pytest.raises(ModelFileError, match="not a restore model"):
        load_torchscript(foreign)
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable torch.export program"):
        load_exported_program(junk)
