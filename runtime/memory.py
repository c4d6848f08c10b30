"""How much memory a run may use, and what images and tiles cost in it.

A run's peak is three parts: the process as it stands once the model is loaded (measured, not
guessed), the graph's working set for the largest input it is handed (ONNX Runtime's
activations, proportional to the pixels of one call: `GraphCost`), and the images in flight
(decoded, waiting, restored, being encoded: `in_flight_bytes` each). The first is fixed;
the second is bounded by tiling every image above `window_pixels` and batching only up to it;
the third by `MemoryGate`, which lets an image be decoded only when its bytes fit beside the
others and refuses, from the header, one that could never fit. What an image holds in flight
depends on what it is (`in_flight_bytes`): an alpha channel or 16-bit values kept aside cost
more, and a JPEG written back block by block holds its coefficients at the end.

A run may add to the process, as it stands with its model loaded, what the caller names, or
by default half of what the machine can still give it when the run starts (MemAvailable, the
cgroup's memory.max, RLIMIT_AS: `machine_room`) and at least `DEFAULT_RUN_MEMORY`; either is
lowered to 90 % of that room. Half, so that a phone's 108 or 200 Mpx photo restores with no
flag on a machine that has the memory (a 200 Mpx JPEG needs 3.3 GB, 4.3 GB at full speed), while
the programs beside the run keep the other half of what was free. Ray actors, several to a node,
keep the fixed `DEFAULT_RUN_MEMORY` (runtime/ray_engine.py).
`restore-run` starts at about 100 MB; its peak is bounded by the budget whatever the images.
Figures against megapixels: docs/restoring.md, "Memory" (benchmarks/memory.py).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

from restore_toolkit.room import machine_room  # MemAvailable, memory.max, ulimit -v: shared with restore_core
from runtime.images import Header, ImageError

MB = 1_000_000
DEFAULT_RUN_MEMORY = 1_200 * MB  # the least a run may add by default (where the machine has it)
ROOM_SHARE = 0.5  # of what the machine can still give: what a run may add by default, when that is more
# Bytes per pixel of one image in flight (decoded, waiting, restored, being encoded), by what it
# decodes to: the slope of the whole process's peak between painted photos of 6 and 24 Mpx with
# the graph's calls held to 512² tiles, the larger of two runs (where the allocator hands freed
# memory back varies by up to 2 bytes a pixel), rounded up (benchmarks/in_flight.py,
# benchmarks/results/in-flight-cpu.md; with a camera's sensor noise, which leaves the steps
# after the graph many more marks to read, benchmarks/results/in-flight-noise.md). 8-bit without
# alpha (RGB, L, P, 1, CMYK; 11-17 measured): the decoded image, the model's RGB view, the
# outputs and the masks of the steps around the graph.
IMAGE_BYTES_PER_PIXEL = 18
# With an alpha channel, or 16-bit colour kept whole (19-27 measured; 16-bit RGBA 35): the alpha
# or the 16-bit values kept aside, and the write's copy back into them.
WIDE_BYTES_PER_PIXEL = {"LA": 28, "RGBA": 28, "PA": 28, "La": 28, "RGBa": 28, "LA;16": 28, "RGB;16": 28,
                        "RGBA;16": 38}
# A WebP, decoded by libwebp and written back by it: a lossless one's encoder holds several
# whole-image buffers of its own, more on a photo with a camera's noise (measured: 37 bytes a
# pixel for a smooth RGBA one, 43 with σ 2 sensor noise, against 8 and 7 for a lossy RGB one;
# which it is shows only past the header, so every WebP is counted as lossless).
WEBP_BYTES_PER_PIXEL = 46
# A colour JPEG written back block by block, before its write: it is decoded to RGB at once (no
# other mode's pixels kept aside; 12.9-13.6 measured at 4:2:0, write included). Its write,
# below, is counted on its own and binds at 4:2:2, 4:4:4 and where EXIF turned the photo.
JPEG_BYTES_PER_PIXEL = 15
# --save-predicted: the raw prediction (RGB) held beside the rest until it is written (measured
# 3.1-4.3 more on a 4:2:0 JPEG; its PNG is encoded once the restored image is written and freed).
PREDICTED_BYTES_PER_PIXEL = 4
# A JPEG written back block by block (runtime/jpeg_blocks.py), at its peak: the restored pixels
# and the masks (and copies of both on the source's grid where EXIF turned the photo), beside
# its coefficients twice (int16, ours and libjpeg's), and its file three times (the source read
# again, libjpeg's copy, the output).
JPEG_WRITE_BYTES_PER_PIXEL = 10
COEFFICIENT_BYTES = 2 * 2
# ... and where EXIF turned the photo, its restored pixels and masks turned back to the file's
# grid beside them (measured 15.0-15.6 at 4:2:0 turned against 12.9-13.6 not, 20.3 at 4:4:4
# turned against 18.2-18.4: benchmarks/results/in-flight-jpeg.md).
TURNED_WRITE_BYTES_PER_PIXEL = 2
# ONNX Runtime's working set per input pixel of one call (memory patterns off, arena on, see
# runtime/session.py), measured for the shipped graphs (base_channels 16): int8 one view, whole
# and run as two halves on one arena with a first region of `arena_region` bytes
# (runtime/split.py, the CPU default: 236-283 measured from 0.26 to 4.1 Mpx, the image decoder
# on crops, whole or not at all), fp32 with the flip ensemble. Other graphs are costed as the
# fp32 one, scaled by their width.
GRAPH_BYTES_PER_PIXEL = {"int8": 900, "int8-split": 300, "fp32": 1800}
MIN_WINDOW = 256 * 256  # below this the graph's halo would dwarf every tile


def in_flight_bytes(header: Header, predicted: bool = False) -> int:
    """What an image holds from its decoding until its outputs are written, from its header;
    `predicted`: with its raw prediction written too (--save-predicted)."""
    pixels = header.width * header.height
    if predicted:
        return in_flight_bytes(header) + pixels * PREDICTED_BYTES_PER_PIXEL
    per_pixel = WIDE_BYTES_PER_PIXEL.get(header.mode, IMAGE_BYTES_PER_PIXEL)
    if header.format == "WEBP":
        per_pixel = WEBP_BYTES_PER_PIXEL
    if header.coefficients:
        if header.mode == "RGB":
            per_pixel = JPEG_BYTES_PER_PIXEL
        turned = TURNED_WRITE_BYTES_PER_PIXEL if header.turned else 0
        write = pixels * (JPEG_WRITE_BYTES_PER_PIXEL + turned + COEFFICIENT_BYTES * header.coefficients) + 3 * header.file_bytes
        return max(pixels * per_pixel, int(write)) + header.held
    return pixels * per_pixel + header.held


@dataclass(frozen=True)
class GraphCost:
    """The graph's working set, in bytes, for a call of `pixels` input pixels."""

    bytes_per_pixel: int

    @classmethod
    def of(cls, metadata, split: bool = False) -> "GraphCost":
        """From a model's `restore.` metadata: its precision, width and views, and whether it runs
        as two halves (`split`); twice fp32 when unknown."""
        if metadata is None:
            return cls(2 * GRAPH_BYTES_PER_PIXEL["fp32"])
        width = int((metadata.model_config or {}).get("base_channels", 16)) / 16
        if metadata.precision == "int8":
            views = 2 if metadata.extra.get("flip_ensemble") == "true" else 1
            return cls(int(GRAPH_BYTES_PER_PIXEL["int8-split" if split else "int8"] * width * views))
        return cls(int(GRAPH_BYTES_PER_PIXEL["fp32"] * width))

    def bytes(self, pixels: int) -> int:
        return self.bytes_per_pixel * pixels


def process_rss() -> int:
    """This process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def default_run_memory(room: Optional[int], share: float = ROOM_SHARE) -> int:
    """What a run may add to its process when the caller names no figure, before the machine's
    limit (`run_budget`): `share` of `room` (bytes the machine can still give, None: unknown), at
    least `DEFAULT_RUN_MEMORY`."""
    return DEFAULT_RUN_MEMORY if room is None else max(DEFAULT_RUN_MEMORY, int(room * share))


def arena_region() -> int:
    """The address space the CPU arena reserves up front (runtime/split.py): `DEFAULT_RUN_MEMORY`,
    or what a run may add by default when that is less (`run_budget`: under `ulimit -v`, address
    space is what counts); only the pages the graph touches become resident. Not the larger
    default a machine with more free memory gives: the graph's calls stop at the fastest size
    (about 1 GB of working set for the shipped int8 graph), and a 2 GB region left a 12 Mpx
    photo's run 30 MB more resident than a 1.2 GB one (972 against 943 MiB, three runs each);
    ONNX Runtime takes the size as a C int besides. A call past the region grows the arena."""
    return max(MB, min(DEFAULT_RUN_MEMORY, run_budget()[0]))


@dataclass(frozen=True)
class MemoryPlan:
    """What a run may spend: the limit, the process before any image, and the graph's cost."""

    limit: int  # bytes the process may reach: base + what the run may add
    why: str  # where that figure comes from, for messages
    base: int  # the process before any image (model loaded)
    graph: GraphCost
    fastest_window: int  # the graph call (input pixels) that restores fastest per pixel

    @property
    def capacity(self) -> int:
        """Bytes for images in flight and the graph's working set together."""
        return max(0, self.limit - self.base)


    @property
    def smallest_window(self) -> int:
        """The smallest graph call worth making: MIN_WINDOW, or less when asked for less."""
        return min(MIN_WINDOW, self.fastest_window)

    def window_for(self, image_bytes: int) -> int:
        """The largest graph call (input pixels, at most `fastest_window`) that fits beside an image
        of `image_bytes`; under `smallest_window` the image does not fit at all."""
        return min(self.fastest_window, (self.capacity - image_bytes) // self.graph.bytes_per_pixel)

    @property
    def window_pixels(self) -> int:
        """The graph call for a run with no image in flight (the embedding API's default)."""
        return max(self.smallest_window, self.window_for(0))

    def budget_for_fastest(self, image_bytes: int) -> int:
        """The --max-memory (MB, rounded up to 100) that lets an image of `image_bytes` run in
        calls of `fastest_window` pixels."""
        need = image_bytes + self.graph.bytes(self.fastest_window)
        return -(-need // (100 * MB)) * 100

    def max_image_pixels(self, header: Header) -> int:
        """The largest image like `header`'s (its mode, its file's bytes per pixel) that fits at
        all: alone in flight, tiled at `smallest_window`."""
        room = max(0, self.capacity - self.graph.bytes(self.smallest_window))
        per_pixel = in_flight_bytes(header) / max(1, header.width * header.height)
        return int(room / per_pixel) if per_pixel else 0


def run_budget(limit: Optional[int] = None, share: float = ROOM_SHARE) -> Tuple[int, str]:
    """(bytes a run may add to its process, where that figure comes from, for messages): `limit`
    (--max-memory), or by default `default_run_memory` with `share` of the room (0: the fixed
    default, as a Ray actor has); either lowered to 90 % of what the machine (available memory,
    cgroup, RLIMIT_AS) can still give."""
    room, what = machine_room()
    if limit is not None:
        budget, why = limit, f"--max-memory {limit / MB:,.0f} MB"
    else:
        budget = default_run_memory(room, share)
        share = f"{share:.0%} of the {room / MB:,.0f} MB free, " if budget > DEFAULT_RUN_MEMORY else ""
        why = f"the default of {budget / MB:,.0f} MB per run ({share}--max-memory sets another)"
    if room is not None and room * 0.9 < budget:
        budget, why = int(room * 0.9), f"{what} ({room / MB:,.0f} MB free)"
    return budget, why


def plan_memory(cost: GraphCost, fastest_window: int, limit: Optional[int] = None,
                share: float = ROOM_SHARE) -> MemoryPlan:
    """How much a run may spend: measured from this process now, with its model loaded.

    Args:
        cost: the graph's working set per pixel.
        fastest_window: the graph call size (input pixels) that runs fastest per restored pixel.
        limit: bytes the run may add to the process (`run_budget`; None: the default).
        share: of the machine's free memory, what the default may take (`run_budget`).
    """
    base = process_rss()
    budget, why = run_budget(limit, share)
    return MemoryPlan(base + budget, why, base, cost, fastest_window)


@dataclass
class Reservation:
    """What an admitted image holds in the gate, and the graph call size it was given."""

    image_bytes: int = 0
    graph_bytes: int = 0
    window: int = 0


class MemoryGate:
    """Lets images be decoded, in job order, only while their bytes fit beside those in flight.

    An image in flight holds its own bytes from decoding to writing; the graph's working set is
    held once, for the largest call among the images in flight (one call runs at a time). Each
    job has a ticket (its place in the run). `admit` waits for the job's turn and for room, or
    raises ImageError at once when the image could never fit; `skip` gives up a turn without
    taking room (a job that failed before its size was known); `release` returns a reservation
    once the image is written. Turns are taken in order so a large image is never overtaken for
    ever by small ones, and the consumer, which handles jobs in the same order, never waits on a
    job that waits on a later one.
    """

    def __init__(self, plan: MemoryPlan):
        self.plan = plan
        self.images = 0  # bytes held by images in flight
        self._graphs: Dict[int, int] = {}  # graph bytes -> images in flight holding that much
        self._next = 0
        self._passed: Set[int] = set()
        self._closed = False
        self.starved = False  # the job whose turn it is waits for room (the consumer should free some)
        self._cond = threading.Condition()

    def _graph_held(self) -> int:
        return max(self._graphs, default=0)

    @property
    def used(self) -> int:
        return self.images + self._graph_held()

    def _needs(self, header: Header, graph_pixels, predicted: bool) -> Tuple[int, int, int, int]:
        """(the image's bytes in flight, the largest graph call that fits beside it, the input
        pixels of the image's largest call, that call's bytes)."""
        plan = self.plan
        image = in_flight_bytes(header, predicted)
        window = plan.window_for(image)
        call = graph_pixels(max(window, plan.smallest_window))
        return image, window, call, plan.graph.bytes(call)

    def refusal(self, header: Header, graph_pixels, predicted: bool = False) -> Optional[str]:
        """Why an image like `header` could never fit, alone in flight ("needs about ... MB to
        restore; ... allows ..."), or None when it could; arguments as in `admit`. Takes no room
        and never waits. Calls under `smallest_window` are refused (tiles that small crawl),
        unless the image is that small itself and runs in one."""
        return self._refusal(header, *self._needs(header, graph_pixels, predicted))

    def _refusal(self, header: Header, image: int, window: int, call: int, graph: int) -> Optional[str]:
        plan = self.plan
        if image + graph <= plan.capacity and (window >= plan.smallest_window or call <= window):
            return None
        # The least it could run in crawls in small calls: say what runs it at full speed too.
        return (f"needs about {(image + graph) / MB:,.0f} MB to restore ({plan.budget_for_fastest(image):,} MB at "
                f"full speed); {plan.why} allows {plan.capacity / MB:,.0f} MB "
                f"(up to about {plan.max_image_pixels(header) / 1e6:.1f} Mpx)")

    def admit(self, ticket: int, header: Header, graph_pixels, predicted: bool = False) -> Reservation:
        """Wait for `ticket`'s turn and room for the image `header` describes; returns what it holds.

        `graph_pixels(window)`: the input pixels of the image's largest graph call when its tiles
        may be up to `window` pixels (its tiling decides: --tile 0 runs it whole); `predicted`:
        its raw prediction is written too.
        """
        plan = self.plan
        width, height = header.width, header.height
        image, window, call, graph = self._needs(header, graph_pixels, predicted)
        why = self._refusal(header, image, window, call, graph)
        if why is not None:
            self.skip(ticket)
            raise ImageError(f"{width}x{height} = {width * height:,} pixels {why}")
        with self._cond:
            while not self._closed and (self._next != ticket
                                        or self.images + image + max(self._graph_held(), graph) > plan.capacity):
                if self._next == ticket:
                    self.starved = True  # only the job whose turn it is says so
                self._cond.wait()
            if self._next == ticket:
                self.starved = False
            if self._closed:
                raise ImageError("not processed: the run stopped")
            self.images += image
            self._graphs[graph] = self._graphs.get(graph, 0) + 1
            self._advance(ticket)
        return Reservation(image, graph, window)

    def skip(self, ticket: int) -> None:
        with self._cond:
            self._advance(ticket)

    def release(self, r: Optional[Reservation]) -> None:
        if r is None or not (r.image_bytes or r.graph_bytes):
            return
        with self._cond:
            self.images -= r.image_bytes
            self._graphs[r.graph_bytes] -= 1
            if not self._graphs[r.graph_bytes]:
                del self._graphs[r.graph_bytes]
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
