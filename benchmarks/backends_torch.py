"""The PyTorch backends: eager (fp32, channels-last, bf16 autocast, CUDA AMP), torch.compile,
and the TorchScript file `restore-export torchscript` writes.

Each follows the protocol of `benchmarks/backend.py`; the list that runs them is
`benchmarks/backends.py`.
"""

from __future__ import annotations

import copy
import os
from contextlib import nullcontext
from typing import List, Optional

import numpy as np
import torch

from benchmarks.backend import Backend, Outputs
from benchmarks.context import BenchContext
from benchmarks.timing import CudaEventClock, WallClock


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
