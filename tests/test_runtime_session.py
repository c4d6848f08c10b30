"""ONNX Runtime sessions: provider checks, metadata refusal, and the runner's numbers against eager."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export.parity import FP32, pixel_parity, violations
from runtime import session as rs
from runtime.metadata import ModelFileError
from runtime.runner import Runner
from tests.conftest import random_pixels

# ORT's CUDA paths need both a GPU and onnxruntime-gpu: a GPU machine with the CPU-only wheel
# runs the "unusable" tests, not the GPU ones.
CUDA_WORKS = rs.provider_problem("cuda") is None


def _rewrite_props(src, dst, **changes):
    proto = onnx.load(str(src))
    for p in proto.metadata_props:
        key = p.key[len("restore."):]
        if key in changes:
            p.value = changes[key]
    onnx.save(proto, str(dst))
    return dst


def test_cpu_session_runs_on_cpu_with_usable_threads(tiny_onnx):
    sess, info = rs.make_session(tiny_onnx, device="cpu")
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert info.device == "cpu" and info.provider == "cpu"
    assert info.threads == rs.available_cpus() >= 1
    assert info.metadata.signature == "pixels" and info.metadata.stride == 4
    assert info.input_names == ["image"] and info.output_names == ["restored", "mask", "predicted"]


def test_explicit_threads_and_bytes_model(tiny_onnx):
    sess, info = rs.make_session(tiny_onnx.read_bytes(), device="cpu", threads=1)
    assert info.source == "<bytes>" and info.threads == 1
    assert info.metadata.stride == 4


def test_runner_matches_eager_pipeline(tiny_onnx, tiny_pipeline):
    sess, info = rs.make_session(tiny_onnx, device="cpu")
    runner = Runner(sess, info)
    image = random_pixels(2, 37, 45, seed=3)  # not a multiple of the stride
    with torch.no_grad():
        ref = [t.numpy() for t in tiny_pipeline(image)]
    got = runner.run(image.numpy())
    figures = pixel_parity(image.numpy(), ref, got)
    assert violations(figures, FP32) == [], figures
    assert figures["outside_mask_exact"]
    assert 0.2 < (got[1] > 0).mean() < 0.8  # the tiny model masks about half: the check means something


def test_runner_masks_alone_are_the_runs_mask(tiny_onnx):
    sess, info = rs.make_session(tiny_onnx, device="cpu")
    runner = Runner(sess, info)
    image = random_pixels(2, 37, 45, seed=4).numpy()
    mask = runner.run(image)[runner.output_names.index("mask")][..., 0] > 0
    assert mask.any() and not mask.all() and np.array_equal(runner.masks(image), mask)


def test_runner_rejects_wrong_input(tiny_onnx):
    sess, info = rs.make_session(tiny_onnx, device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        Runner(sess, info).run(np.zeros((1, 8, 8, 3), np.float32))


@pytest.mark.skipif(CUDA_WORKS, reason="a GPU is usable here")
def test_cuda_without_gpu_is_an_error_naming_what_is_missing(tiny_onnx):
    with pytest.raises(rs.DeviceUnavailableError) as e:
        rs.make_session(tiny_onnx, device="cuda")
    msg = str(e.value)
    assert "\n" not in msg and ("driver" in msg or "onnxruntime" in msg)
    with pytest.raises(rs.DeviceUnavailableError):
        rs.make_session(tiny_onnx, provider="tensorrt")  # naming a provider is a request, never a fallback


def test_gpu_with_the_cpu_only_onnxruntime_names_the_missing_wheel(tiny_onnx, monkeypatch):
    """A GPU the driver sees, but the CPU-only onnxruntime wheel (as on machines that ship PyTorch
    with CUDA and plain onnxruntime): `cuda` is refused naming onnxruntime-gpu, `auto` runs on the
    CPU and says why, and the GPU tests skip rather than fail."""
    import onnxruntime as ort

    monkeypatch.setattr(rs, "cuda_driver_problem", lambda: None)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert "install onnxruntime-gpu" in rs.provider_problem("cuda")
    with pytest.raises(rs.DeviceUnavailableError, match="CUDAExecutionProvider requested but unusable: .*onnxruntime-gpu"):
        rs.make_session(tiny_onnx, device="cuda")
    with pytest.raises(rs.DeviceUnavailableError, match="TensorrtExecutionProvider"):
        rs.make_session(tiny_onnx, provider="tensorrt")
    _, info = rs.make_session(tiny_onnx, device="auto")
    assert info.device == "cpu" and "auto chose the CPU: CUDAExecutionProvider is not in this onnxruntime build" in info.note


@pytest.mark.skipif(CUDA_WORKS, reason="a GPU is usable here")
def test_auto_without_gpu_says_it_chose_the_cpu(tiny_onnx):
    _, info = rs.make_session(tiny_onnx, device="auto")
    assert info.device == "cpu" and "auto chose the CPU" in info.note
    assert "auto chose the CPU" in info.describe()


@pytest.mark.skipif(CUDA_WORKS, reason="a GPU is usable here")
def test_silent_ort_fallback_is_caught_by_get_providers(tiny_onnx, monkeypatch):
    """Pretend the driver sees a GPU: onnxruntime-gpu then makes a CUDA session that quietly runs
    on the CPU. Only the get_providers() check stands between the user and a silent slow run."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider to fall back from")
    monkeypatch.setattr(rs, "cuda_driver_problem", lambda: None)
    with pytest.raises(rs.DeviceUnavailableError, match="runs CPUExecutionProvider"):
        rs.make_session(tiny_onnx, device="cuda")
    _, info = rs.make_session(tiny_onnx, device="auto")
    assert info.device == "cpu" and "libraries did not load" in info.note


def test_contradictory_device_and_provider(tiny_onnx):
    with pytest.raises(ValueError, match="needs --device cuda"):
        rs.make_session(tiny_onnx, device="cpu", provider="tensorrt")
    with pytest.raises(ValueError, match="unknown device"):
        rs.make_session(tiny_onnx, device="gpu")


def test_refuses_models_that_are_not_ours(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(ModelFileError, match="not a restore model"):
        rs.make_session(path, device="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf at all")
    with pytest.raises(ModelFileError):
        rs.make_session(junk, device="cpu")
    with pytest.raises(ModelFileError, match="no such model file"):
        rs.make_session(tmp_path / "missing.onnx", device="cpu")


def test_refuses_unknown_format_version_and_wrong_signature(tiny_onnx, tmp_path):
    future = _rewrite_props(tiny_onnx, tmp_path / "future.onnx", format_version="99")
    with pytest.raises(ModelFileError, match="unknown restore format version '99'"):
        rs.make_session(future, device="cpu")
    tensor = _rewrite_props(tiny_onnx, tmp_path / "tensor.onnx", signature="tensor")
    with pytest.raises(ModelFileError, match="signature"):
        rs.make_session(tensor, device="cpu")


def test_cuda_provider_options_are_for_mixed_sizes():
    providers = rs._provider_list("tensorrt", 1, "/tmp/cache")
    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    cuda_opts = providers[1][1]
    assert cuda_opts["cudnn_conv_algo_search"] == "HEURISTIC" and cuda_opts["device_id"] == "1"
    assert providers[0][1]["trt_engine_cache_path"] == "/tmp/cache"



@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_cuda_provider_computes_fp32_in_fp32(provider, cuda_graph):
    """TF32 off in every CUDA provider entry: on by default in ONNX Runtime, it put an H200's fp32
    outputs up to 5 levels from the CPU's (benchmarks/results/gpukit-h200.md)."""
    entries = [p for p in rs._provider_list(provider, 0, None, cuda_graph=cuda_graph)
               if isinstance(p, tuple) and p[0] == "CUDAExecutionProvider"]
    assert len(entries) == 1 and entries[0][1]["use_tf32"] == "0"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_WORKS, reason="needs a usable CUDA GPU")
def test_cuda_runner_with_io_binding_matches_cpu(tiny_onnx):
    image = random_pixels(2, 40, 36, seed=5).numpy()
    cpu = Runner(*rs.make_session(tiny_onnx, device="cpu")).run(image)
    sess, info = rs.make_session(tiny_onnx, device="cuda")
    assert sess.get_providers()[0] == "CUDAExecutionProvider" and info.device == "cuda"
    gpu = Runner(sess, info).run(image)
    assert violations(pixel_parity(image, cpu, gpu), FP32) == []


def test_cuda_graph_option_reaches_the_cuda_provider_only():
    from runtime.session import _provider_list

    cuda = dict(_provider_list("cuda", 0, None, cuda_graph=True)[0][1])
    assert cuda["enable_cuda_graph"] == "1" and cuda["cudnn_conv_algo_search"] == "HEURISTIC"
    assert "enable_cuda_graph" not in dict(_provider_list("cuda", 0, None)[0][1])


def test_cuda_graph_on_the_cpu_is_refused(tiny_onnx):
    with pytest.raises(ValueError, match="cuda_graph needs the CUDA provider"):
        rs.make_session(tiny_onnx, device="cpu", cuda_graph=True)
