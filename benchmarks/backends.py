"""One small class per deployment path: why it cannot run here, setup, run, teardown.

Every backend runs the same thing, the pixels signature of `RestorationPipeline` (uint8
(N, H, W, 3) in; restored, mask, predicted out), so a row's latency is what an app would see
for decoded pixels in and restored pixels out. The protocol, called by `benchmarks.runner`:

    skip_reason(ctx)  -> None, or why this backend cannot run on this machine
    setup(ctx)        -> build the model / session (timed as setup)
    load(images)      -> stage one batch (untimed: on CUDA, copied to the device where timed
                         runs keep it; ORT CUDA without IO binding copies inside `run`)
    run()             -> one batch; outputs are kept where the backend leaves them (timed)
    fetch()           -> the last outputs as numpy (restored, mask, predicted) for parity
    run_tensor(x)     -> the tensor signature on a float (N, 3, H, W) input, or None if the
                         backend has none (for float parity)
    teardown()
"""

from __future__ import annotations

import copy
import os
import time
from contextlib import nullcontext
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from benchmarks.context import BenchContext
from benchmarks.timing import CudaEventClock, WallClock

Outputs = Tuple[np.ndarray, np.ndarray, np.ndarray]


def cuda_usable() -> bool:
    return torch.cuda.is_available()


class Backend:
    """Base class: a name, the device and precision it computes in, and the protocol above."""

    name = ""
    device = "cpu"
    precision = "fp32"
    description = ""

    def skip_reason(self, ctx: BenchContext) -> Optional[str]:
        if self.device == "cuda" and not cuda_usable():
            return "no CUDA"
        if ctx.pipeline is None and self.needs_torch_weights:
            return "no PyTorch weights (--onnx given without --checkpoint)"
        if self.device == "cpu" and self.precision == "bf16" and not ctx.force_bf16:
            from restore_core.cpu import bf16_emulated_reason

            slow = bf16_emulated_reason()
            if slow:
                return f"{slow} (--force-bf16 runs it)"
        return None

    needs_torch_weights = True
    # Why the held-out quality set (images of many sizes) is not run through this backend, or None.
    quality_skip: Optional[str] = None

    def clock(self):
        if self.device == "cuda":
            return WallClock(torch.cuda.synchronize)
        return WallClock()

    def artifacts(self) -> List[str]:
        """Files (`BenchContext.artifact` keys) to make before setup; their time is export time."""
        return []

    def setup(self, ctx: BenchContext) -> None:
        raise NotImplementedError

    def load(self, images: np.ndarray) -> float:
        """Stage a batch; returns seconds spent on per-shape preparation (0 for most backends)."""
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def fetch(self) -> Outputs:
        raise NotImplementedError

    def run_tensor(self, x: np.ndarray) -> Optional[Outputs]:
        return None

    def teardown(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# PyTorch: eager (fp32, channels-last, bf16 autocast, CUDA AMP), torch.compile, TorchScript.


class EagerBackend(Backend):
    """`RestorationPipeline` under `torch.inference_mode`, optionally channels-last, autocast or
    `torch.compile`d.

    torch.compile wraps the network, not the pipeline: both signatures then share one compiled
    graph per shape (the pre- and post-processing around it is a few element-wise ops).
    """

    def __init__(self, name: str, device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 autocast: Optional[torch.dtype] = None, compile: bool = False, description: str = ""):
        self.name, self.device, self.precision = name, device, precision
        self.channels_last, self.autocast, self.compile = channels_last, autocast, compile
        self.description = description
        self.pipeline = None
        if compile:
            self.quality_skip = "one compiled graph per image size; the quality set has dozens of sizes"

    def clock(self):
        # Everything eager queues on torch's current stream: events time exactly the GPU work.
        return CudaEventClock() if self.device == "cuda" else WallClock()

    def setup(self, ctx: BenchContext) -> None:
        if self.device == "cuda":
            # fp32 means fp32: cuDNN would otherwise run convolutions in TF32 by default.
            self._tf32 = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = self.precision != "fp32"
        self.pipeline = copy.deepcopy(ctx.pipeline).to(self.device).eval()
        if self.channels_last:
            self.pipeline.model.to(memory_format=torch.channels_last)
        if self.compile:
            # A fresh inductor cache: the first call then shows the full compile time on every
            # run, instead of whatever an earlier run left in the shared on-disk cache.
            self._cache_env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(ctx.workdir / f"inductor-{self.name}")
            # dynamic=False: one specialized graph per (batch, size), as a fixed-shape deployment
            # would use; the compile happens at each shape's first call and is reported there.
            self.pipeline.model = torch.compile(self.pipeline.model, dynamic=False)

    def _context(self):
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.device, dtype=self.autocast)

    def load(self, images: np.ndarray) -> float:
        self.images = torch.from_numpy(images).to(self.device)  # (N, H, W, 3) uint8
        return 0.0

    def run(self) -> None:
        with torch.inference_mode(), self._context():
            self.out = self.pipeline(self.images)

    def fetch(self) -> Outputs:
        return tuple(t.cpu().numpy() for t in self.out)

    def run_tensor(self, x: np.ndarray) -> Optional[Outputs]:
        # Same memory layout as the pixels path (a permuted NHWC tensor), so a compiled graph's
        # stride guards hold and no second compile happens.
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).to(self.device).permute(0, 3, 1, 2)
        with torch.inference_mode(), self._context():
            outs = self.pipeline.forward_tensor(xt)
        return tuple(t.float().cpu().numpy() for t in outs)

    def teardown(self) -> None:
        self.pipeline = self.out = self.images = None
        if self.compile:
            torch._dynamo.reset()
            if self._cache_env is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = self._cache_env
        if self.device == "cuda":
            torch.backends.cudnn.allow_tf32 = self._tf32
            torch.cuda.empty_cache()


class TorchScriptBackend(Backend):
    """The frozen TorchScript file `restore-export torchscript` writes, loaded back from disk."""

    name = "torchscript"
    description = "TorchScript, scripted and frozen, saved and loaded back"

    def artifacts(self) -> List[str]:
        return ["torchscript"]

    def setup(self, ctx: BenchContext) -> None:
        from export.torchscript import load_torchscript

        self.module, _ = load_torchscript(ctx.artifact("torchscript"))

    def load(self, images: np.ndarray) -> float:
        self.images = torch.from_numpy(images)
        return 0.0

    def run(self) -> None:
        with torch.inference_mode():
            self.out = self.module(self.images)

    def fetch(self) -> Outputs:
        return tuple(t.numpy() for t in self.out)

    def run_tensor(self, x: np.ndarray) -> Optional[Outputs]:
        # The export keeps `forward_tensor` through freezing, so float parity is measured too.
        with torch.inference_mode():
            outs = self.module.forward_tensor(torch.from_numpy(x))
        return tuple(t.numpy() for t in outs)

    def teardown(self) -> None:
        self.module = self.out = self.images = None


# ---------------------------------------------------------------------------------------------
# ONNX Runtime: CPU (fp32, int8), CUDA (fp32/fp16, with and without IO binding, CUDA graphs),
# TensorRT.

OUTPUT_NAMES = ("restored", "mask", "predicted")


class OrtBackend(Backend):
    """An ONNX Runtime session on the exported pixels graph.

    Args:
        provider: "cpu", "cuda" or "tensorrt".
        precision: "fp32", "fp16" (converted graph, uint8 I/O kept) or "int8" (static QDQ).
        io_binding: inputs and outputs live on the GPU, bound once per shape (CUDA only).
        cuda_graph: capture the whole run as a CUDA graph (fixed shapes; one session per shape).
    """

    needs_torch_weights = False

    def __init__(self, name: str, provider: str, precision: str = "fp32", io_binding: bool = False,
                 cuda_graph: bool = False, description: str = ""):
        self.name, self.provider, self.precision = name, provider, precision
        self.device = "cpu" if provider == "cpu" else "cuda"
        self.io_binding, self.cuda_graph = io_binding or cuda_graph, cuda_graph
        self.description = description
        self.session = self.tensor_session = None
        if cuda_graph:
            self.quality_skip = "a CUDA graph per fixed shape; the quality set has dozens of sizes"

    def skip_reason(self, ctx: BenchContext) -> Optional[str]:
        import onnxruntime as ort

        reason = super().skip_reason(ctx)
        if reason:
            return reason
        wanted = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "tensorrt": "TensorrtExecutionProvider"}[self.provider]
        if wanted not in ort.get_available_providers():
            return f"{wanted} not in this onnxruntime build"
        if self.precision == "int8" and ctx.int8_onnx is not None and self.provider == "cpu":
            return None  # the given int8 graph
        if self.precision == "int8" and not ctx.calibration:
            return "no calibration images"
        # fp32 rows run, and int8 rows quantize, an fp32 graph: without PyTorch weights only an
        # fp32 --onnx file can be that graph.
        if ctx.pipeline is None and self.precision in ("fp32", "int8") and ctx.onnx_precision != "fp32":
            return f"needs PyTorch weights (--checkpoint) to build an fp32 graph; the --onnx file is {ctx.onnx_precision}"
        return None

    def clock(self):
        if self.io_binding:
            # ORT works on its own CUDA stream, which torch's events do not see: wait for the
            # bound outputs before reading the clock.
            return WallClock(lambda: self.binding.synchronize_outputs())
        return WallClock()  # session.run returns host arrays: the work is done when it returns

    def _session(self, ctx: BenchContext, signature: str, cuda_graph: bool = False):
        return ctx.ort_session(ctx.artifact(f"onnx-{signature}-{self.precision}"), self.provider, signature, cuda_graph)

    def artifacts(self) -> List[str]:
        return [f"onnx-pixels-{self.precision}"]

    def setup(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.shape = None
        if not self.cuda_graph:  # a CUDA graph session is made per shape, in `load`
            self.session = self._session(ctx, "pixels")

    def load(self, images: np.ndarray) -> float:
        self.images = images
        if not self.io_binding:
            return 0.0
        import onnxruntime as ort

        t0 = time.perf_counter()
        if self.cuda_graph and images.shape != self.shape:
            self.session = None
            self.session = self._session(self.ctx, "pixels", cuda_graph=True)
        self.shape = images.shape
        n, h, w, _ = images.shape
        # Fixed device buffers: a CUDA graph replays with the addresses it captured.
        self.device_in = ort.OrtValue.ortvalue_from_numpy(images, "cuda", 0)
        self.device_out = [ort.OrtValue.ortvalue_from_shape_and_type((n, h, w, c), np.uint8, "cuda", 0)
                           for c in (3, 1, 3)]
        self.binding = self.session.io_binding()
        self.binding.bind_ortvalue_input("image", self.device_in)
        for name, value in zip(OUTPUT_NAMES, self.device_out):
            self.binding.bind_ortvalue_output(name, value)
        return time.perf_counter() - t0

    def run(self) -> None:
        if self.io_binding:
            self.session.run_with_iobinding(self.binding)
        else:
            self.out = self.session.run(list(OUTPUT_NAMES), {"image": self.images})

    def fetch(self) -> Outputs:
        if self.io_binding:
            return tuple(v.numpy() for v in self.device_out)
        return tuple(self.out)

    def run_tensor(self, x: np.ndarray) -> Optional[Outputs]:
        if not self.ctx.has_tensor_graph(self.precision):
            return None
        if self.tensor_session is None:
            # Parity only: a plain session of the same provider and precision (no CUDA graph).
            self.tensor_session = self._session(self.ctx, "tensor")
        return tuple(self.tensor_session.run(None, {"input": x}))

    def teardown(self) -> None:
        self.session = self.tensor_session = self.binding = self.out = None
        self.device_in = self.device_out = None


class OrtHalvesBackend(OrtBackend):
    """The int8 graph as `restore-run` runs it on the CPU: two sessions, the encoder and mask
    decoder then the image decoder, on one arena (runtime/split.py). Beside `ort-cpu-int8` it
    shows what running in half the memory costs per call. Both halves run on every call (the raw
    prediction is fetched for the parity table), as for an image in which something is found."""

    def __init__(self, name: str, description: str = ""):
        super().__init__(name, "cpu", precision="int8", description=description)

    def setup(self, ctx: BenchContext) -> None:
        from runtime.split import SplitRunner

        super().setup(ctx)  # the whole graph's session: its checks and thread count
        path = ctx.artifact("onnx-pixels-int8")
        self.runner = SplitRunner.for_model(path, ctx.ort_threads)
        if self.runner is None:
            raise RuntimeError(f"{path}: the graph cannot be run as two halves")

    def run(self) -> None:
        self.out = self.runner.run(self.images)

    def teardown(self) -> None:
        super().teardown()
        self.runner = None


# ---------------------------------------------------------------------------------------------
# OpenVINO: the peer a CPU user would pick instead; it reads the same pixels ONNX file.


class OpenVinoBackend(Backend):
    """OpenVINO's CPU plugin on the same pixels graph ONNX Runtime runs (an optional extra).

    fp32 asks for f32 inference precision explicitly: on CPUs with bf16 OpenVINO would otherwise
    compute in bf16 by default. The int8 row runs the QDQ graph of the ort-cpu-int8 row.
    """

    needs_torch_weights = False

    def __init__(self, name: str, precision: str = "fp32", description: str = ""):
        self.name, self.precision, self.description = name, precision, description
        self.compiled = self.request = None

    def skip_reason(self, ctx: BenchContext) -> Optional[str]:
        reason = super().skip_reason(ctx)
        if reason:
            return reason
        try:
            import openvino  # noqa: F401
        except ImportError:
            return "OpenVINO is not installed (pip install openvino)"
        if ctx.pipeline is None and ctx.onnx_precision != "fp32" and not (self.precision == "int8" and ctx.int8_onnx):
            return f"needs an fp32 graph; the --onnx file is {ctx.onnx_precision}"
        return None

    def artifacts(self) -> List[str]:
        return [f"onnx-pixels-{self.precision}"]

    def setup(self, ctx: BenchContext) -> None:
        import openvino as ov

        from runtime.session import available_cpus

        core = ov.Core()
        model = core.read_model(str(ctx.artifact(f"onnx-pixels-{self.precision}")))
        config = {"INFERENCE_NUM_THREADS": available_cpus(), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.outputs = [self.compiled.output(name) for name in OUTPUT_NAMES]
        ctx.providers_seen[self.name] = [f"openvino {ov.__version__} CPU"]

    def load(self, images: np.ndarray) -> float:
        self.images = images
        return 0.0

    def run(self) -> None:
        self.out = self.request.infer({"image": self.images})

    def fetch(self) -> Outputs:
        return tuple(np.asarray(self.out[o]) for o in self.outputs)

    def teardown(self) -> None:
        self.compiled = self.request = self.out = None


# ---------------------------------------------------------------------------------------------
# The list, in the order the table shows it.


def all_backends() -> List[Backend]:
    bf16, fp16 = torch.bfloat16, torch.float16
    return [
        EagerBackend("eager", description="RestorationPipeline, torch.inference_mode"),
        EagerBackend("eager-channels-last", channels_last=True, description="eager, model and input channels-last"),
        EagerBackend("eager-bf16", precision="bf16", autocast=bf16, description="eager under torch.autocast('cpu', bfloat16)"),
        EagerBackend("compile", compile=True, description="torch.compile (inductor) of the network, one graph per "
                     "shape; the first call includes compiling with an empty cache"),
        TorchScriptBackend(),
        OrtBackend("ort-cpu", "cpu", description="ONNX Runtime, CPU provider"),
        OrtBackend("ort-cpu-int8", "cpu", precision="int8",
                   description="ONNX Runtime CPU, static int8 (QDQ, per-channel weights): the --int8-onnx file, else "
                               "quantized here with the recipe of `restore-export onnx --int8` (network body only)"),
        OrtHalvesBackend("ort-cpu-int8-halves", description="the ort-cpu-int8 graph as restore-run runs it on the CPU: "
                         "two sessions (encoder and mask decoder, then image decoder) on one arena"),
        OpenVinoBackend("openvino", description="OpenVINO CPU plugin on the same pixels ONNX file, f32 inference precision"),
        OpenVinoBackend("openvino-int8", precision="int8", description="OpenVINO CPU plugin on the ort-cpu-int8 QDQ graph"),
        EagerBackend("eager-cuda", device="cuda", description="eager on CUDA, TF32 off"),
        EagerBackend("eager-cuda-amp", device="cuda", precision="fp16", autocast=fp16, description="eager under CUDA autocast fp16"),
        EagerBackend("compile-cuda", device="cuda", compile=True, description="torch.compile on CUDA, TF32 off"),
        OrtBackend("ort-cuda", "cuda", description="ORT CUDA, numpy in and out (copies timed)"),
        OrtBackend("ort-cuda-iobinding", "cuda", io_binding=True, description="ORT CUDA, inputs and outputs bound on the GPU"),
        OrtBackend("ort-cuda-fp16", "cuda", precision="fp16", description="ORT CUDA, fp16 graph, numpy in and out"),
        OrtBackend("ort-cuda-fp16-iobinding", "cuda", precision="fp16", io_binding=True, description="ORT CUDA, fp16 graph, IO binding"),
        OrtBackend("ort-cuda-graph", "cuda", cuda_graph=True, description="ORT CUDA, IO binding + CUDA graph (fixed shape)"),
        OrtBackend("ort-cuda-fp16-graph", "cuda", precision="fp16", cuda_graph=True, description="ORT CUDA, fp16, CUDA graph"),
        OrtBackend("ort-tensorrt", "tensorrt", io_binding=True, description="ORT TensorRT provider, fp32"),
        OrtBackend("ort-tensorrt-fp16", "tensorrt", precision="fp16", io_binding=True, description="ORT TensorRT provider, fp16"),
    ]


BACKEND_NAMES = [b.name for b in all_backends()]


def select(names: Optional[Sequence[str]], exclude: Sequence[str] = (), device: str = "auto") -> List[Backend]:
    """The backends to run, in table order.

    Raises:
        ValueError: an unknown backend name (one line listing the known ones).
    """
    unknown = sorted((set(names or ()) | set(exclude)) - set(BACKEND_NAMES))
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKEND_NAMES)}")
    chosen = [b for b in all_backends() if (not names or b.name in names) and b.name not in exclude]
    return [b for b in chosen if device == "auto" or b.device == device]
