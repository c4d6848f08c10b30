"""How much memory this process can still get: the least of what the machine, its cgroup and
`ulimit -v` allow.

Shared by the floors above: `runtime.memory` sizes a restoration run's budget with it, and
`restore_core.footprint` refuses a training step or a synthetic sample that could never fit.
Standard library only, so `restore_toolkit` stays free of torch and onnxruntime.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Dict, Optional, Tuple


def _meminfo() -> Dict[str, int]:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in lines if ":" in line)}


def _cgroup_room() -> Optional[int]:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def _address_space_room() -> Optional[int]:
    """Room left under RLIMIT_AS (`ulimit -v`): half of the limit less the address space in use now.

    Half, because address space is reserved well beyond what is resident: each new thread's
    malloc arena takes 64 MB of it, and the threads of a run (a restoration's reader, writer and
    ONNX Runtime threads; torch's) start later."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        vm = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return max(0, soft - vm) // 2


def machine_room() -> Tuple[Optional[int], str]:
    """(bytes this process can still get, which limit says so); None when nothing says."""
    rooms = []
    avail = _meminfo().get("MemAvailable")
    if avail is not None:
        rooms.append((avail, "the machine's available memory"))
    for room, what in ((_cgroup_room(), "the cgroup's memory.max"), (_address_space_room(), "the address-space limit (ulimit -v)")):
        if room is not None:
            rooms.append((room, what))
    return min(rooms) if rooms else (None, "")
