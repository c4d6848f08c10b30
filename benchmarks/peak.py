"""The machine's fp32 matrix-multiply peak, measured in the same run as the backends.

A row's GFLOP/s means little alone; as a fraction of what this machine's best-tuned kernel
(BLAS sgemm through torch.matmul, same thread count) reaches right now, it says how much of the
hardware an fp32 backend uses, and it travels across machines and across noisy neighbours.

A peak is a maximum, so one short burst on a busy machine under-measures it (runs of one second
read 88-189 GFLOP/s on one shared 2-core machine, and rows then read over 200 %). It is
measured in several rounds, before and after the rows (`merge_peaks`); the best round is the
peak, and the spread of the rounds' bests is reported so a reader sees how steady it was.
Only fp32 rows are compared with it: bf16 and int8 kernels have other ceilings.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

import torch


def _round_best(a: torch.Tensor, b: torch.Tensor, seconds: float, max_runs: int, cuda: bool) -> float:
    """Best GFLOP/s of `a @ b` within `seconds` (at least 3 products)."""
    n = a.shape[0]
    best, runs, t_end = 0.0, 0, time.perf_counter() + seconds
    while runs < max_runs and (runs < 3 or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if cuda:
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
        runs += 1
    return best


def matmul_peak(device: str = "cpu", n: int = 2048, rounds: int = 5, round_seconds: float = 0.4,
                max_runs: int = 50, threads: Optional[int] = None) -> Dict:
    """Best observed fp32 GFLOP/s of an `n`x`n` matmul on `device`, over `rounds` rounds.

    Args:
        device: "cpu" or "cuda".
        n: matrix size; 2048 is large enough to reach BLAS's steady state on a CPU.
        rounds, round_seconds: each round keeps multiplying this long (after one warm-up product).
        max_runs: cap on the products in one round.
        threads: torch CPU threads while measuring (default: the current setting, the rows' own).

    Returns:
        gflops (the best round), rounds_gflops (each round's best), spread ((best - worst round)
        / best), n, threads, device, and for CUDA that TF32 was off.
    """
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    cuda = device.startswith("cuda")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    if cuda:
        # fp32 means fp32: TF32 tensor cores would report a different (and much higher) peak.
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out: Dict = {"device": device, "n": n, "threads": torch.get_num_threads()}
        torch.matmul(a, b)
        if cuda:
            torch.cuda.synchronize()
        bests = [_round_best(a, b, round_seconds, max_runs, cuda) for _ in range(rounds)]
    finally:
        torch.set_num_threads(previous_threads)
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = prev
    out.update(_summary(bests))
    if cuda:
        out["tf32"] = False
    return out


def _summary(bests: List[float]) -> Dict:
    best = max(bests)
    return {"gflops": best, "rounds_gflops": [round(v, 1) for v in bests], "spread": (best - min(bests)) / best}


def merge_peaks(before: Dict, after: Dict) -> Dict:
    """One peak from the rounds measured before and after the rows."""
    merged = dict(before)
    merged.update(_summary(before["rounds_gflops"] + after["rounds_gflops"]))
    merged["gflops"] = max(before["gflops"], after["gflops"])  # unrounded
    return merged
