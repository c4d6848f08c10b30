"""Where the image decoder must run: a few rectangles that cover every masked pixel.

The compositing keeps the input wherever the mask is 0, so the image decoder (the second half of
the split graph, runtime/split.py) matters only at masked pixels. Its output at a pixel depends
on its inputs within its receptive radius (`tiling.decoder_radius`: 44 input pixels for the
shipped graph, against 137 for the whole network), so it can be run on a crop of its inputs: a
rectangle around some masked pixels, grown by that radius, gives those pixels exactly what a
pass over the whole window gives. A painted 12 Mpx photo has about 1 % of its pixels masked,
in a few dozen specks and strokes; the decoder runs on rectangles around them instead of on
every tile that any of them touches.

`cover` finds the rectangles on a grid of stride-sized cells (crops must start on the network's
pooling grid). It splits the masked cells in two by a straight cut while the two halves' grown
rectangles cost less than their union's (a binary space partition, greedy): each call also pays
a fixed overhead, counted as `call_cells`, so specks close together share one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

# The fixed cost of one decoder call, in cells of 16x16 pixels (the ONNX Runtime call, and the
# crop's slicing and paste). The shipped int8 second half on 2 cores of an AMD EPYC (avx512):
# 0.19 ms for 1 cell, 5.4 ms for 64, 20 ms for 256, so about 3 cells for the call itself. A
# painted 12 Mpx photo took the same time with 4, 16 or 64 here: the value is not critical.
CALL_CELLS = 8


@dataclass(frozen=True)
class Box:
    """Cells y0:y1, x0:x1 whose masked pixels one call serves (`own`), grown by the margin (`run`)."""

    own: Tuple[int, int, int, int]
    run: Tuple[int, int, int, int]

    @property
    def cells(self) -> int:
        y0, y1, x0, x1 = self.run
        return (y1 - y0) * (x1 - x0)


def cell_grid(mask: np.ndarray, cell: int) -> np.ndarray:
    """(H, W) bool -> (ceil(H / cell), ceil(W / cell)) bool: which cells hold a masked pixel."""
    h, w = mask.shape
    hc, wc = -(-h // cell), -(-w // cell)
    padded = np.zeros((hc * cell, wc * cell), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(hc, cell, wc, cell).any(axis=(1, 3))


def cover(occupied: np.ndarray, margin: int, call_cells: int = CALL_CELLS) -> List[Box]:
    """Boxes whose `own` rectangles together hold every True cell of `occupied` (hc, wc), each
    grown by `margin` cells (clipped to the grid) into the rectangle it is run on."""
    ys, xs = np.nonzero(occupied)
    if ys.size == 0:
        return []
    return _split(ys, xs, occupied.shape, margin, call_cells)


def _grown(own: Tuple[int, int, int, int], shape: Tuple[int, int], margin: int) -> Tuple[int, int, int, int]:
    y0, y1, x0, x1 = own
    return max(0, y0 - margin), min(shape[0], y1 + margin), max(0, x0 - margin), min(shape[1], x1 + margin)


def _box(ys: np.ndarray, xs: np.ndarray, shape, margin: int) -> Box:
    own = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
    return Box(own, _grown(own, shape, margin))


def _split(ys: np.ndarray, xs: np.ndarray, shape, margin: int, call_cells: int) -> List[Box]:
    whole = _box(ys, xs, shape, margin)
    best_cost, best_cut = whole.cells + call_cells, None
    for along, across in ((ys, xs), (xs, ys)):
        order = np.argsort(along, kind="stable")
        a, b = along[order], across[order]
        cut_cost, at = _best_cut(a, b, shape if along is ys else shape[::-1], margin)
        if cut_cost + 2 * call_cells < best_cost:
            best_cost, best_cut = cut_cost + 2 * call_cells, (order, at)
    if best_cut is None:
        return [whole]
    order, at = best_cut
    first, second = order[:at], order[at:]
    return (_split(ys[first], xs[first], shape, margin, call_cells)
            + _split(ys[second], xs[second], shape, margin, call_cells))


def _best_cut(a: np.ndarray, b: np.ndarray, shape, margin: int) -> Tuple[int, int]:
    """The cheapest cut of cells sorted by `a` into a[:at] and a[at:] (at between two distinct
    values of a): (the two grown rectangles' cells, at); (a large number, 0) when a has one value.

    The rectangles' extents come from running minima and maxima, so every cut is priced at once.
    """
    starts = np.flatnonzero(np.diff(a)) + 1  # the first index of each new value of a
    if starts.size == 0:
        return np.iinfo(np.int64).max, 0
    lo_b, hi_b = np.minimum.accumulate(b), np.maximum.accumulate(b)
    lo_b_rev, hi_b_rev = np.minimum.accumulate(b[::-1])[::-1], np.maximum.accumulate(b[::-1])[::-1]

    def cells(a0, a1, b0, b1):  # grown rectangle of cells a0..a1, b0..b1 (inclusive), in cells
        span_a = np.minimum(shape[0], a1 + 1 + margin) - np.maximum(0, a0 - margin)
        span_b = np.minimum(shape[1], b1 + 1 + margin) - np.maximum(0, b0 - margin)
        return span_a * span_b

    head = cells(a[0], a[starts - 1], lo_b[starts - 1], hi_b[starts - 1])
    tail = cells(a[starts], a[-1], lo_b_rev[starts], hi_b_rev[starts])
    k = int(np.argmin(head + tail))
    return int(head[k] + tail[k]), int(starts[k])


@dataclass(frozen=True)
class DecoderCrops:
    """How to run the second half of a split graph on crops of its inputs.

    Attributes:
        condition: the carried bool (N, H, W, 1) tensor the compositing selects with (the
            binarized, opened mask): the cells to cover are read from it.
        stride: the network's stride; crops start and end on its grid.
        margin: cells each crop reaches beyond the masked cells it serves (`decoder_radius`
            rounded up to whole cells).
    """

    condition: str
    stride: int
    margin: int

    def boxes(self, condition: np.ndarray) -> List[Box]:
        """The boxes for one image's condition (H, W, 1); [] when running the whole window costs
        no more (a mask spread over most of it)."""
        occupied = cell_grid(condition[..., 0], self.stride)
        boxes = cover(occupied, self.margin)
        if sum(b.cells for b in boxes) + CALL_CELLS * (len(boxes) - 1) >= occupied.size:
            return []
        return boxes

    def feeds(self, tensors, names: List[str], j: int, box: Box, height: int, width: int):
        """The second half's inputs for image `j` of the batch cropped to `box.run`, or None when
        a carried tensor's shape does not follow the rules below (the caller then runs whole).

        The image and the condition (NHWC, the image's size) are cropped in pixels; every other
        input must be an NCHW activation at 1/f of the padded size, cropped in pixels / f (told
        apart by name, not by shape: a 384x48 image's 384-channel activations at 1/8 are
        (1, 384, 48, 6)). Shape integers are not carried (runtime/split.py leaves them to the
        second half).
        """
        s = self.stride
        padded_h, padded_w = -(-height // s) * s, -(-width // s) * s
        y0, y1, x0, x1 = (v * s for v in box.run)
        feeds = {}
        for name in names:
            t = tensors[name]
            if name in ("image", self.condition):
                if t.shape[1:3] != (height, width):
                    return None
                feeds[name] = np.ascontiguousarray(t[j:j + 1, y0:min(y1, height), x0:min(x1, width)])
                continue
            f = padded_h // t.shape[2] if t.ndim == 4 and t.shape[2] else 0
            if not f or f * t.shape[2] != padded_h or f * t.shape[3] != padded_w or s % f:
                return None
            feeds[name] = np.ascontiguousarray(t[j:j + 1, :, y0 // f:y1 // f, x0 // f:x1 // f])
        return feeds

    def paste(self, restored: np.ndarray, out: np.ndarray, j: int, box: Box, height: int, width: int) -> None:
        """Copy the crop's output over the cells `box` serves (where its output is exact)."""
        s = self.stride
        y0, y1, x0, x1 = box.own[0] * s, min(box.own[1] * s, height), box.own[2] * s, min(box.own[3] * s, width)
        ry0, rx0 = box.run[0] * s, box.run[2] * s
        restored[j, y0:y1, x0:x1] = out[0, y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
