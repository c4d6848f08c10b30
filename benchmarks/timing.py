"""The timing harness: first call, warm-up, timed runs, percentiles and peak memory.

Every backend is timed by the same function so rows are comparable: the first call is timed on
its own (it holds lazy work: kernel selection, graph compilation, allocator growth), then a few
warm-up calls are discarded, then calls are timed until both a minimum count and a minimum total
duration are reached. On CUDA the clock is read only after the device has finished: with CUDA
events for work on torch's stream, with a full synchronize for work on other streams (ONNX
Runtime's).
"""

from __future__ import annotations

import ctypes
import gc
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np


@dataclass
class TimingConfig:
    """How long to measure one backend at one batch size and image size.

    Args:
        warmup_runs: untimed calls after the (separately timed) first call.
        min_runs: timed calls at least.
        min_seconds: total timed duration at least; more calls are made until it is reached.
        max_runs: a cap so a very fast backend does not run for ever at tiny sizes.
    """

    warmup_runs: int = 1
    min_runs: int = 8
    min_seconds: float = 2.0
    max_runs: int = 10_000

    def __post_init__(self):
        if self.min_runs < 1 or self.warmup_runs < 0 or self.min_seconds < 0:
            raise ValueError(f"bad timing settings: {self}")


@dataclass
class Timing:
    """Latencies of one (backend, batch size, image size) cell, in seconds."""

    first_call_s: float
    samples_s: List[float] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.samples_s)

    def percentile(self, q: float) -> float:
        # "linear" interpolation: with few runs p99 lies between the two slowest, not on the max.
        return float(np.percentile(np.asarray(self.samples_s), q))

    def summary(self, batch: int, height: int, width: int) -> Dict[str, float]:
        """Latency percentiles (ms) and throughput derived from the median."""
        median = self.percentile(50)
        return {
            "first_call_ms": self.first_call_s * 1e3,
            "runs": self.runs,
            "timed_s": float(sum(self.samples_s)),
            "median_ms": median * 1e3,
            "p90_ms": self.percentile(90) * 1e3,
            "p99_ms": self.percentile(99) * 1e3,
            "min_ms": min(self.samples_s) * 1e3,
            "ms_per_image": median * 1e3 / batch,
            "images_per_s": batch / median,
            "megapixels_per_s": batch * height * width / median / 1e6,
        }


class WallClock:
    """perf_counter around the call, after `sync` (a no-op on the CPU) has drained the device."""

    def __init__(self, sync: Optional[Callable[[], None]] = None):
        self.sync = sync or (lambda: None)

    def time(self, fn: Callable[[], object]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


class CudaEventClock:
    """CUDA events recorded on torch's current stream: GPU time of the work queued between them."""

    def __init__(self):
        import torch

        self.torch = torch

    def time(self, fn: Callable[[], object]) -> float:
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def measure(fn: Callable[[], object], clock, cfg: TimingConfig) -> Timing:
    """Time `fn` (one batch through a backend) by `cfg`'s rules.

    Args:
        fn: runs one batch; its result is ignored (the backend keeps outputs where they are).
        clock: a `WallClock` or `CudaEventClock`.
        cfg: warm-up count, minimum runs and duration.
    """
    timing = Timing(first_call_s=clock.time(fn))
    for _ in range(cfg.warmup_runs):
        clock.time(fn)
    total = 0.0
    while timing.runs < cfg.max_runs and (timing.runs < cfg.min_runs or total < cfg.min_seconds):
        dt = clock.time(fn)
        timing.samples_s.append(dt)
        total += dt
    return timing


# ---------------------------------------------------------------------------------------------
# Memory. Linux keeps the process's peak resident set (VmHWM) and lets a process reset it by
# writing "5" to /proc/self/clear_refs, so each backend's peak is measured on its own, in this
# process, without a subprocess per backend (importing torch alone costs ~1.7 s).


def _status_kb(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def release_memory() -> None:
    """Free what the last backend left so the next one's baseline is honest."""
    gc.collect()
    try:  # glibc keeps freed arenas; hand them back to the OS
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class MemoryProbe:
    """Peak process RSS since `reset()`, and the CUDA allocator's peak when CUDA is in use."""

    def __init__(self, cuda: bool = False):
        self.cuda = cuda
        self.baseline_mb: Optional[float] = None
        self.resettable = True

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            # Without the reset the figure is the process's peak so far (ru_maxrss semantics).
            self.resettable = False
        rss = _status_kb("VmRSS")
        self.baseline_mb = rss / 1024 if rss is not None else None
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> Dict[str, Optional[float]]:
        """Peak RSS (MB), its rise over the RSS at `reset()`, and CUDA max allocated (MB)."""
        hwm = _status_kb("VmHWM")
        if hwm is None:
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
            self.resettable = False
        peak = hwm / 1024
        out: Dict[str, Optional[float]] = {
            "peak_rss_mb": peak,
            "rss_rise_mb": peak - self.baseline_mb if self.baseline_mb is not None and self.resettable else None,
            "cuda_max_allocated_mb": None,
        }
        if self.cuda:
            import torch

            # Only torch's allocator is seen here; ONNX Runtime's CUDA arena is not.
            out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return out
