"""Restoring images too large for one pass, in overlapping tiles that leave no seams.

Each tile is run with a halo of real neighbouring pixels at least as wide as the network's
receptive radius, and only its core is kept. Every output pixel then sees exactly the input it
would see in one whole-image pass, so the tiled result equals the untiled one up to float
operation order (no blending, no seams). Tile and halo sizes are multiples of the network's
stride and every window ends a whole number of strides before the image's far edge, so the
pooling grid of every tile lines up with the whole image's, in the image and in the mirror image
the flip ensemble runs; a tile that touches the bottom or right edge is padded by the graph
exactly as the whole image would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Tiles of the automatic tiling: the larger the tile, the less of each call goes to its halo
# (receptive_radius: 137 pixels, 144 rounded to the stride, on each side for the shipped graph),
# and per window pixel the int8 graph runs at the same speed from 256² up. CPU seconds per
# megapixel for a 12 Mpx photo, tiles of 512 / 768 / 1024 / 1536: 2.29 / 1.76 / 1.53 / 1.33,
# against 1.0 for 256² calls (ORT's thread spinning off so CPU time is work; two runs agreed
# within 4 %; docs/restoring.md "Memory"). So tiles are as large as memory allows
# (runtime/memory.py), up to DEFAULT_TILE, where the gain flattens.
DEFAULT_TILE = 1536
DEFAULT_HALO = 144  # the shipped graph's halo, for the default budget below
# The most input pixels of one graph call: a DEFAULT_TILE window with its halo, so an image is run
# whole exactly when tiling it at DEFAULT_TILE would give one tile (memory may ask for less).
DEFAULT_TILE_BUDGET = (DEFAULT_TILE + 2 * DEFAULT_HALO + 15) ** 2  # window_side(DEFAULT_TILE, 137, 16) squared


def receptive_radius(model_config: Dict[str, int], mask_opening: int = 0) -> int:
    """How far (in input pixels) an output pixel can see, from the model's config.

    Counts, per resolution 2**i: each 3x3 conv adds 2**i, each 2x2 max-pool 2**i, each bilinear
    2x upsample from resolution 2**(i+1) one coarse pixel, 2**(i+1); then the mask opening's
    erosion and dilation (`restore.mask_opening`), k // 2 each. An upper bound: the halo this
    gives makes tiling exact.
    """
    depth = int(model_config.get("depth", 4))
    convs = 1 + int(model_config.get("blocks_per_stage", 1))  # entry conv + ResNet blocks per stage
    radius = convs * 2**depth  # bottleneck
    for i in range(depth):
        radius += convs * 2**i  # encoder stage
        radius += 2**i  # its max-pool
        radius += 2 ** (i + 1)  # the decoder's upsample into this resolution
        radius += convs * 2**i  # decoder stage
    return radius + 2 * (int(mask_opening) // 2)


def decoder_radius(model_config: Dict[str, int], upsamples: int) -> int:
    """How far (in input pixels) the image decoder's output at a pixel can see into its inputs
    (the skips and the bottleneck's features), when it runs its `upsamples` finest bilinear
    upsamples itself (the coarser ones are computed before, with the mask decoder's).

    Counted as `receptive_radius` counts the decoder's part: each 3x3 conv at resolution 2**i
    adds 2**i, each upsample into resolution 2**i adds 2**(i+1).
    """
    depth = int(model_config.get("depth", 4))
    convs = 1 + int(model_config.get("blocks_per_stage", 1))
    return convs * (2**depth - 1) + sum(2 ** (i + 1) for i in range(min(upsamples, depth)))


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """One window of the image (y0:y1, x0:x1) and the core (cy0:cy1, cx0:cx1) it is trusted for."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    @property
    def shape(self) -> Tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def _spans(n: int, tile: int, halo: int, stride: int) -> List[Tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) covering 0..n along one axis.

    As few cores as `tile` allows, of equal size (a multiple of the stride; the last may be
    shorter), so no window is larger than it must be: 4000 pixels in tiles of up to 1264 are
    cores of 1008, 1008, 1008 and 976, not 1264, 1264, 1264 and a sliver of 208 that pays a
    whole halo.
    A window starts a whole number of strides from the image's start (`tile` and `halo` are
    multiples of the stride) and ends a whole number of strides from its end (the halo grows by
    up to stride - 1 pixels). The first keeps the network's pooling grid on the whole image's;
    the second does the same for the mirror image that the flip ensemble also runs, whose grid
    starts at the image's far edge.
    """
    count = -(-n // tile)
    core = min(tile, round_up(-(-n // count), stride))
    spans = []
    for c0 in range(0, n, core):
        c1 = min(n, c0 + core)
        end = min(n, c1 + halo)
        spans.append((max(0, c0 - halo), end + (n - end) % stride, c0, c1))
    return spans


def plan_tiles(height: int, width: int, tile: int, halo: int, stride: int) -> List[Tile]:
    """The tiles covering an image; `tile` and `halo` are rounded up to multiples of `stride`."""
    tile = round_up(max(tile, stride), stride)
    halo = round_up(halo, stride)
    return [
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for (y0, y1, cy0, cy1) in _spans(height, tile, halo, stride)
        for (x0, x1, cx0, cx1) in _spans(width, tile, halo, stride)
    ]


def tile_size_for(height: int, width: int, tile: Optional[int], budget: int = DEFAULT_TILE_BUDGET,
                  halo: Optional[int] = None, stride: int = 1) -> Optional[int]:
    """The tile size to use for an image, or None to run it whole.

    Args:
        tile: None = automatic (above `budget` pixels, the tiling whose windows, `halo` on
            every inner side, each stay within `budget` and together cover the fewest pixels:
            `best_tile`), 0 = never tile, N = tile at N whenever a side exceeds N (N raised to
            `least_tile` where it is smaller).
        budget: the automatic threshold: the most input pixels of one graph call.
        halo: the halo each tile carries (`receptive_radius`); None: unknown, tiles of
            min(DEFAULT_TILE, sqrt(budget) / 2), a quarter of the budget each.
        stride: the network's stride (the tile is a multiple of it).
    """
    if tile == 0:
        return None
    if tile is None:
        if height * width <= budget:
            return None
        if halo is None:
            return min(DEFAULT_TILE, max(16, math.isqrt(budget) // 2))
        return best_tile(height, width, budget, halo, stride)
    tile = max(tile, least_tile(halo, stride))
    return tile if max(height, width) > tile else None


def least_tile(halo: Optional[int], stride: int = 1) -> int:
    """The smallest tile worth running: twice the halo (rounded to the stride), whose window
    computes about 4 times its core. Each window carries the halo on every inner side, so a smaller
    tile computes mostly halo: a 1200x800 photo took 224 s in tiles of 1 (16 once rounded: 3,750
    windows of 320x320 for the default model's halo of 142), 21 s in tiles of 64, 4.3 s in tiles
    of 256 and 2.3 s whole, at the same peak memory within 60 MB (AMD EPYC, AVX2). What bounds
    memory is --max-memory, which sizes the calls itself."""
    return 2 * round_up(halo, stride) if halo else 1


_SEARCH = 64


def best_tile(height: int, width: int, budget: int, halo: int, stride: int) -> int:
    """The tile size whose tiling of a height x width image computes the fewest window pixels
    with no window over `budget` pixels; `window_core(budget)` when none does better.

    Every window adds its halo again, so the fewer the tiles the less is computed twice; and
    with equal cores (`_spans`) a tile size larger than a square window allows can still fit,
    when the image's sides divide into short cores along one axis: a 4000x3000 photo in a
    2.45 Mpx budget takes 3x3 tiles of 1344x1008 (windows up to 1.6 x 1.3 kpx) where square
    tiles of 1264 (the largest square that fits) take 4x3 and compute 6 % more pixels.
    """
    best = window_core(budget, halo, stride)
    halo = round_up(halo, stride)
    best_cost = _axis(height, best, halo, stride)[1] * _axis(width, best, halo, stride)[1]
    for side in (height, width):
        # Only tilings with fewer cores along this axis than `best` has can compute less; past
        # _SEARCH cores the halo's share hardly changes from one count to the next.
        for count in range(1, min(-(-side // best), _SEARCH)):
            candidate = round_up(-(-side // count), stride)
            (tall, rows), (wide, cols) = _axis(height, candidate, halo, stride), _axis(width, candidate, halo, stride)
            if tall * wide <= budget and rows * cols < best_cost:
                best, best_cost = candidate, rows * cols
    return best


def _axis(n: int, tile: int, halo: int, stride: int) -> Tuple[int, int]:
    """(the longest window, all windows' lengths) along one axis of `n` pixels."""
    lengths = [end - start for start, end, _, _ in _spans(n, tile, halo, stride)]
    return max(lengths), sum(lengths)


def largest_window(height: int, width: int, tile: int, halo: int, stride: int) -> int:
    """The pixels of the largest window of `plan_tiles(height, width, tile, halo, stride)`,
    without listing the tiles (a huge image in small tiles has hundreds of thousands)."""
    tile, halo = round_up(max(tile, stride), stride), round_up(halo, stride)
    return _axis(height, tile, halo, stride)[0] * _axis(width, tile, halo, stride)[0]


def window_core(budget: int, halo: int, stride: int) -> int:
    """The largest tile, a multiple of `stride`, whose window (`window_side`) has at most `budget`
    pixels; at least one stride."""
    side = math.isqrt(budget) - window_side(0, halo, stride)
    return max(stride, side // stride * stride)


def window_side(tile: int, halo: int, stride: int) -> int:
    """The longest side of a tile's window: the tile and its halo on both sides, rounded up to the
    stride, and up to stride - 1 more where a window is stretched to end on the far edge's grid."""
    return round_up(max(tile, 0), stride) + 2 * round_up(halo, stride) + stride - 1


def run_tiled(
    infer: Callable[[np.ndarray], Sequence[np.ndarray]],
    rgb: np.ndarray,
    tile: int,
    halo: int,
    stride: int,
    batch_size: int = 1,
) -> List[np.ndarray]:
    """Run the pixels graph over `rgb` in tiles.

    Args:
        infer: uint8 (N, h, w, 3) → [restored (N, h, w, 3), mask (N, h, w, 1), predicted (N, h, w, 3)
            or None where it was not computed].
        rgb: (H, W, 3) uint8.
        tile: core size (rounded up to the stride).
        halo: context on each side (rounded up to the stride); `receptive_radius` makes it exact.
        stride: the network's stride.
        batch_size: tiles of the same shape run together, this many at a time.

    Returns:
        [restored (H, W, 3), mask (H, W, 1), predicted (H, W, 3)] as one pass would give;
        predicted is None if any tile's was not computed.
    """
    h, w = rgb.shape[:2]
    tiles = plan_tiles(h, w, tile, halo, stride)
    outputs: List[Optional[np.ndarray]] = [None, None, None]
    missing = set()  # outputs some tile did not compute: none of it is returned
    by_shape: Dict[Tuple[int, int], List[Tile]] = {}
    for t in tiles:
        by_shape.setdefault(t.shape, []).append(t)
    for group in by_shape.values():
        for start in range(0, len(group), max(1, batch_size)):
            chunk = group[start:start + max(1, batch_size)]
            batch = np.stack([rgb[t.y0:t.y1, t.x0:t.x1] for t in chunk])  # (n, th, tw, 3)
            results = infer(batch)
            for k, out in enumerate(results):
                if out is None:
                    missing.add(k)
                    continue
                if outputs[k] is None:
                    outputs[k] = np.empty((h, w, out.shape[-1]), dtype=out.dtype)
                for j, t in enumerate(chunk):
                    core = out[j, t.cy0 - t.y0:t.cy1 - t.y0, t.cx0 - t.x0:t.cx1 - t.x0]
                    outputs[k][t.cy0:t.cy1, t.cx0:t.cx1] = core
    return [None if k in missing else out for k, out in enumerate(outputs)]  # type: ignore[return-value]
