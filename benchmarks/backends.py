"""The backends restore-bench knows, in the order its table shows them, and the choice of those a
run measures.

The protocol every backend follows is in `benchmarks/backend.py`; the classes are in
`benchmarks/backends_torch.py` and `benchmarks/backends_onnx.py`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from benchmarks.backend import Backend
from benchmarks.backends_onnx import OpenVinoBackend, OrtBackend, OrtHalvesBackend
from benchmarks.backends_torch import EagerBackend, TorchScriptBackend


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
