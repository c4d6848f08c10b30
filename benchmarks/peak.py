"""The machine's fp32 matrix-multiply peak, measured in the same run as the backends.

A row's GFLOP/s means little alone; as a fraction of what this machine's best-tuned kernel
(BLAS sgemm through torch.matmul, same thread count) reaches right now, it says how much of the
hardware a backend uses, and it travels across machines and across noisy neighbours.
"""

from __future__ import annotations

import time
from typing import Dict

import torch


def matmul_peak(device: str = "cpu", n: int = 2048, min_seconds: float = 1.0, max_runs: int = 50) -> Dict[str, float]:
    """Best observed fp32 GFLOP/s of an `n`x`n` matmul on `device`.

    Args:
        device: "cpu" or "cuda".
        n: matrix size; 2048 is large enough to reach BLAS's steady state on a CPU.
        min_seconds: keep multiplying at least this long (after one warm-up product).
        max_runs: cap on the number of products.

    Returns:
        gflops (the best run), median_gflops, n, runs, threads, and for CUDA whether TF32 was off.
    """
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    out: Dict[str, float] = {"device": device, "n": n, "threads": torch.get_num_threads()}
    cuda = device.startswith("cuda")
    if cuda:
        # fp32 means fp32: TF32 tensor cores would report a different (and much higher) peak.
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        torch.matmul(a, b)
        if cuda:
            torch.cuda.synchronize()
        rates = []
        t_end = time.perf_counter() + min_seconds
        while len(rates) < max_runs and (len(rates) < 3 or time.perf_counter() < t_end):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            if cuda:
                torch.cuda.synchronize()
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = prev
    rates.sort()
    out.update(gflops=rates[-1], median_gflops=rates[len(rates) // 2], runs=len(rates))
    if cuda:
        out["tf32"] = False
    return out
