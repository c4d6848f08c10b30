"""What this CPU can do natively: the instruction sets that decide bf16 and int8 speed.

`torch.autocast("cpu", torch.bfloat16)` runs fast only where the CPU computes in bf16
(AVX-512 BF16 or AMX on x86, the BF16 extension on Arm); elsewhere PyTorch emulates it, and one
256² image through the default-width model took 69 s against 0.4 s in fp32 on an AVX2-only
CPU. Int8 convolutions gain most with VNNI (AVX-512 VNNI or AVX-VNNI) or AMX. Training,
the benchmarks and the demo check here before offering bf16. No torch needed.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Optional

# The flags worth reporting, as /proc/cpuinfo spells them.
REPORTED = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "bf16")
EMULATED_BF16 = ("autocast bf16 is emulated on this CPU (no avx512_bf16 / amx_bf16): one 256² image took 69 s "
                 "against 0.4 s in fp32 on an AVX2-only CPU")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's name, as /proc/cpuinfo gives it (else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> Optional[FrozenSet[str]]:
    """The CPU's feature flags from /proc/cpuinfo (x86 'flags', Arm 'Features'); None where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def instruction_sets() -> Dict[str, Optional[bool]]:
    """The reported flags (None each where the flags are unknown) plus the summaries
    `native_bf16`, `vnni` and `amx`."""
    flags = cpu_flags()
    out: Dict[str, Optional[bool]] = {f: (None if flags is None else f in flags) for f in REPORTED}
    out["native_bf16"] = native_bf16()
    out["vnni"] = None if flags is None else bool(flags & {"avx512_vnni", "avx_vnni"})
    out["amx"] = None if flags is None else bool(flags & {"amx_bf16", "amx_int8"})
    return out


def native_bf16() -> Optional[bool]:
    """Whether the CPU computes bf16 natively; None where it cannot be told (not Linux)."""
    flags = cpu_flags()
    if flags is None:
        return None
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def bf16_emulated_reason() -> Optional[str]:
    """Why bf16 on this CPU would be slow (emulated), or None when it is native or unknown."""
    return EMULATED_BF16 if native_bf16() is False else None
