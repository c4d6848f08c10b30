"""Shared fixtures: tiny seeded models and the artifacts made from them.

Tiny means 4 base channels and depth 2 (stride 4): every test runs on a CPU in seconds.
A randomly initialized mask head flags every pixel (sigmoid near 0.5 > 0.1), which would make
"outside the mask" tests vacuous, so `make_tiny_model` shifts the mask head's bias until about
half the pixels of a seeded image fall below the threshold.
"""

from __future__ import annotations

import importlib.util
import math
import os
from types import SimpleNamespace

import pytest
import torch

from restore_core.model import DualDecoderUNet, ModelConfig
from restore_core.pipeline import DEFAULT_THRESHOLD, RestorationPipeline

TINY = ModelConfig(base_channels=4, depth=2, blocks_per_stage=1)


def random_pixels(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Seeded uint8 (N, H, W, 3) images."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)


@torch.no_grad()
def make_tiny_model(seed: int = 0, cfg: ModelConfig = TINY) -> DualDecoderUNet:
    torch.manual_seed(seed)
    model = DualDecoderUNet(cfg).eval()
    img = random_pixels(1, 32, 32, seed=seed)
    from restore_core.img_utils import normalize

    _, logits = model(normalize(img.permute(0, 3, 1, 2)))
    # Move the median logit onto the threshold's logit: about half the pixels are masked.
    target = math.log(DEFAULT_THRESHOLD / (1 - DEFAULT_THRESHOLD))
    model.mask_decoder.head.bias += target - logits.median()
    return model


@pytest.fixture
def tiny_model() -> DualDecoderUNet:
    return make_tiny_model()


@pytest.fixture
def tiny_pipeline(tiny_model) -> RestorationPipeline:
    return RestorationPipeline(tiny_model).eval()


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory):
    """A released `.safetensors` of the tiny model."""
    from restore_core.checkpoint import save_release

    path = tmp_path_factory.mktemp("release") / "tiny.safetensors"
    save_release(path, make_tiny_model())
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """The tiny model exported to the 'pixels' ONNX signature (no parity run at export)."""
    from export.onnx_export import build_metadata, save_onnx, to_onnx_proto

    pipeline = RestorationPipeline(make_tiny_model()).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    save_onnx(to_onnx_proto(pipeline, "pixels"), path, build_metadata(pipeline, "pixels", "fp32", parity=None))
    return path


@pytest.fixture(autouse=True, scope="session")
def _short_matmul_peak():
    """restore-bench measures the fp32 matmul peak before and after its rows, seconds each time;
    the tests read the report's fields, not the figure (tests/test_bench_peak.py tests the
    measurement itself), so every bench run in the suite measures a small one."""
    import benchmarks.runner as runner
    from benchmarks.peak import matmul_peak

    patch = pytest.MonkeyPatch()
    patch.setattr(runner, "matmul_peak", lambda device, **_: matmul_peak(device, n=256, rounds=2, round_seconds=0.02))
    yield
    patch.undo()


# restore-bench's shared run (tests/test_bench.py, tests/test_bench_quality.py).
HAS_TORCHSCRIPT = importlib.util.find_spec("export.torchscript") is not None
CPU_BACKENDS = ["eager", "eager-channels-last", "eager-bf16", "ort-cpu"] + (["torchscript"] if HAS_TORCHSCRIPT else [])
CUDA_BACKENDS = ["eager-cuda", "ort-cuda-iobinding", "ort-tensorrt"]
EXTRA_BACKENDS = ["ort-cpu-int8", "ort-cpu-int8-halves", "openvino"]  # int8 at the export's recipe; OpenVINO where installed
SIZE = 30  # not a multiple of the tiny model's stride (4): the padding path is measured too


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory, tiny_release):
    """One `restore-bench` CLI run on the tiny release, shared by every test that reads a report:
    the slowest fixture of the suite (two tiny ONNX exports, the int8 search and the quality
    set), so it runs once per test session. The suite runs on two pytest-xdist workers
    (pyproject.toml), each with its own session: the first to get here makes the run in the
    folder both share, under a file lock, and the other reads it."""
    from click.testing import CliRunner
    from filelock import FileLock

    from benchmarks.cli import main

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the workers' basetemps sit side by side in one folder
    out, done = shared / "bench-run", shared / "bench-run.output"
    with FileLock(str(shared / "bench-run.lock")):
        if not done.exists():
            out.mkdir(exist_ok=True)
            args = ["--model", str(tiny_release), "--backends", ",".join(CPU_BACKENDS + EXTRA_BACKENDS + CUDA_BACKENDS),
                    "--sizes", str(SIZE), "--batch-sizes", "1,2", "--min-runs", "2", "--min-seconds", "0",
                    "--warmup", "0", "--heldout-per-photo", "1",
                    "--force-bf16",  # where bf16 is emulated (an AVX2 CPU) it is skipped by default; tiny here
                    "--report", str(out / "r.json"), "--markdown", str(out / "r.md")]
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
            done.write_text(result.output)
    return out, SimpleNamespace(exit_code=0, output=done.read_text())
