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

The classes are in `benchmarks/backends_torch.py` and `benchmarks/backends_onnx.py`; the list of
them, in the table's order, is `benchmarks/backends.py`.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch

from benchmarks.context import BenchContext
from benchmarks.timing import WallClock

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
