"""The backends that run the exported pixels ONNX file: ONNX Runtime on the CPU, CUDA and
TensorRT (the int8 graph also as two halves, as `restore-run` runs it), and OpenVINO.

Together because they read the same file and its outputs by the same names (`OUTPUT_NAMES`).
Each follows the protocol of `benchmarks/backend.py`; the list that runs them is
`benchmarks/backends.py`.
"""

from __future__ import annotations

import time
from typing import List, Optional

import numpy as np

from benchmarks.backend import Backend, Outputs
from benchmarks.context import BenchContext
from benchmarks.timing import WallClock

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
