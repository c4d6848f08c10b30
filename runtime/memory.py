"""How much memory a run may use, and what images and tiles cost in it.

A run's peak is three parts: the process as it stands once the model is loaded (measured, not
guessed), the graph's working set for the largest input it is handed (ONNX Runtime's
activations, proportional to the pixels of one call: `GraphCost`), and the images in flight
(decoded, waiting, restored, being encoded: `IMAGE_BYTES_PER_PIXEL` each). The first is fixed;
the second is bounded by tiling every image above `window_pixels` and batching only up to it;
the third by `MemoryGate`, which lets an image be decoded only when its bytes fit beside the
others and refuses, from the header, one that could never fit.

The limit is the least of `DEFAULT_MEMORY_LIMIT` and what the machine can still give this
process (MemAvailable, the cgroup's memory.max, RLIMIT_AS), unless the caller names one.
Figures against megapixels: docs/restoring.md, "Memory" (benchmarks/memory.py).
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

from runtime.images import ImageError

MB = 1_000_000
DEFAULT_MEMORY_LIMIT = 1_400 * MB  # the whole process, at peak, unless the caller names a limit
# Bytes per pixel of one image in flight, measured as the peak of the folder pipeline over an
# RGB JPEG and a 16-bit PNG: the decoded image, the model's RGB view, the three outputs and the
# write's copies (back to the source's mode, then the encoder's buffer).
IMAGE_BYTES_PER_PIXEL = 24
# ONNX Runtime's working set per input pixel (with its arena and memory patterns off, see
# runtime/session.py), measured for the shipped graphs at base_channels 16: int8, one view, and
# fp32 with the flip ensemble (two views). Other graphs scale with their width.
GRAPH_BYTES_PER_PIXEL = {"int8": 700, "fp32": 1400}
MIN_WINDOW = 256 * 256  # below this the graph's halo would dwarf every tile


@dataclass(frozen=True)
class GraphCost:
    """The graph's working set, in bytes, for a call of `pixels` input pixels."""

    bytes_per_pixel: int

    @classmethod
    def of(cls, metadata) -> "GraphCost":
        """From a model's `restore.` metadata (precision, width, flip ensemble); fp32-sized when unknown."""
        if metadata is None:
            return cls(GRAPH_BYTES_PER_PIXEL["fp32"] * 2)
        per = GRAPH_BYTES_PER_PIXEL["int8" if metadata.precision == "int8" else "fp32"]
        width = int((metadata.model_config or {}).get("base_channels", 16))
        views = 2 if metadata.extra.get("flip_ensemble") == "true" else 1
        if metadata.precision != "int8":
            views = views / 2  # the fp32 figure is already the two-view one
        return cls(int(per * max(1.0, width / 16) * max(views, 0.5)))

    def bytes(self, pixels: int) -> int:
        return self.bytes_per_pixel * pixels


def process_rss() -> int:
    """This process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


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
    """Room left under RLIMIT_AS (`ulimit -v`): the limit less the address space in use now."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        vm = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return max(0, soft - vm)


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


@dataclass(frozen=True)
class MemoryPlan:
    """What a run may spend: the limit, and how it is split between the graph and the images."""

    limit: int  # bytes the process may reach
    why: str  # where the limit comes from, for messages
    base: int  # the process before any image (model loaded)
    window_pixels: int  # most input pixels of one graph call (larger images are tiled)
    graph_bytes: int  # the graph's working set at window_pixels

    @property
    def image_room(self) -> int:
        """Bytes left for images in flight."""
        return max(0, self.limit - self.base - self.graph_bytes)

    @property
    def max_image_pixels(self) -> int:
        """The largest image that fits at all (alone in flight)."""
        return self.image_room // IMAGE_BYTES_PER_PIXEL

    def image_bytes(self, width: int, height: int, held: int = 0) -> int:
        return width * height * IMAGE_BYTES_PER_PIXEL + held


def plan_memory(cost: GraphCost, fastest_window: int, limit: Optional[int] = None) -> MemoryPlan:
    """Split a run's memory between the graph and the images.

    Args:
        cost: the graph's working set per pixel.
        fastest_window: the graph call size (input pixels) that runs fastest per restored pixel;
            the window is that, or less when the limit asks for it.
        limit: bytes the process may reach; None: DEFAULT_MEMORY_LIMIT, or less when the
            machine (available memory, cgroup, RLIMIT_AS) has less room.
    """
    base = process_rss()
    if limit is not None:
        why = f"--max-memory {limit / MB:,.0f} MB"
    else:
        limit, why = DEFAULT_MEMORY_LIMIT, f"the default limit of {DEFAULT_MEMORY_LIMIT / MB:,.0f} MB"
        room, what = machine_room()
        if room is not None and base + room * 0.9 < limit:
            limit, why = int(base + room * 0.9), f"{what} ({room / MB:,.0f} MB free)"
    # At most half of what the images could have goes to the graph, so an image of a few tens of
    # megapixels still fits beside it; never less than a MIN_WINDOW call.
    window = min(fastest_window, max(MIN_WINDOW, (limit - base) // 2 // cost.bytes_per_pixel))
    return MemoryPlan(limit, why, base, window, cost.bytes(window))


class MemoryGate:
    """Lets images be decoded, in job order, only while their bytes fit beside those in flight.

    Each job has a ticket (its place in the run). `admit` waits for the job's turn and for room,
    or raises ImageError at once when the image could never fit; `skip` gives up a turn without
    taking room (a job that failed before its size was known); `release` returns an image's
    bytes once it is written. Turns are taken in order so a large image is never overtaken for
    ever by small ones, and the consumer, which handles jobs in the same order, never waits on a
    job that waits on a later one.
    """

    def __init__(self, plan: MemoryPlan):
        self.plan = plan
        self.capacity = plan.image_room
        self.used = 0
        self._next = 0
        self._passed: Set[int] = set()
        self._closed = False
        self._cond = threading.Condition()

    def admit(self, ticket: int, width: int, height: int, held: int = 0) -> int:
        """Wait for `ticket`'s turn and room for a width x height image; returns the bytes taken."""
        need = self.plan.image_bytes(width, height, held)
        if need > self.capacity:
            self.skip(ticket)
            fit = self.plan.max_image_pixels
            raise ImageError(f"{width}x{height} = {width * height:,} pixels needs about {need / MB:,.0f} MB to restore; "
                             f"{self.plan.why} leaves room for {fit / 1e6:.1f} Mpx")
        with self._cond:
            while not self._closed and (self._next != ticket or self.used + need > self.capacity):
                self._cond.wait()
            if self._closed:
                raise ImageError("not processed: the run stopped")
            self.used += need
            self._advance(ticket)
        return need

    def skip(self, ticket: int) -> None:
        with self._cond:
            self._advance(ticket)

    def release(self, nbytes: int) -> None:
        if nbytes:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiting reader; they give up (the run is ending)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _advance(self, ticket: int) -> None:
        self._passed.add(ticket)
        while self._next in self._passed:
            self._passed.discard(self._next)
            self._next += 1
        self._cond.notify_all()
