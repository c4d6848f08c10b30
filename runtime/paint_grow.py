"""A found mark grown over the rest of its own paint.

A painted mark is one flat colour. Where the mask finds only part of it (in a JPEG its colour
is blurred by chroma subsampling and its fill carries block noise, so the mask head is unsure
of some of it; on an exact mark it can stop a pixel or two short of the edge), the rest is
still that colour, right beside what was found. So each mark whose own pixels are flat (paint, not a patch of photo the
mask took for paint) is grown, pixel by pixel (8-connected), over the pixels around it whose
colour is within `TOLERANCE` levels of its paint, at most `STEPS` pixels out. Its paint is the
median colour of its inner pixels (the mark eroded by a pixel, away from its rim); it is flat
when three quarters of those lie within `FLAT` levels of that median. A mark with fewer than
`MIN_INNER` inner pixels is too small to tell paint from photo (a 28-pixel speck the mask once
took from a cat's fur on a selection photo would have grown by 393 pixels of fur), and one that
would grow to more than `GROWTH` times what was found is left as found: it is chasing a region
of the photo in the paint's colour. `GROWTH` was 2 until the selection photos showed that every
mark it stopped was paint, large squares found only in part (a 120-pixel olive square on a dark
sky, 1,311 of its pixels found at JPEG 90); of 2, 4, 8, 16 and no limit, 16 gained most without
a file further (+0.04 / +0.20 / +0.02 / +0.31 dB at JPEG 75 / 90 / 95 / 95 4:4:4, 6 files
closer, PNG, whole photos, 12 Mpx and clean files unchanged; benchmarks/results/selection5-grow16.md
against selection5-paint-colours.md); with no limit a 12 Mpx photo's mark grew into the photo
(-0.32 dB).

Marks of different paint that touch are found as one mark, which is not one flat colour. Such
a mark is split into its paints (`flat_paints`: up to `COLOURS`, each the commonest colour left and
the pixels within `FLAT` of it, together two thirds of the mark, no two within twice
`TOLERANCE` of each other), and each grows, from its own part of the mark, over the pixels
within `TOLERANCE` of it, by the same limits. Shades of one colour (a pink object lit on one
side) are not paints of two: such a mark grows over nothing, as before. Chosen on the selection
photos through the real `restore-run` (benchmarks/results/selection5-paint-colours.md against
selection5-no-jpeg-ringing.md, the same code without the split): +0.32 dB on PNG crops, +0.03 /
+0.03 / +0.12 / +0.13 at JPEG 75 / 90 / 95 / 95 4:4:4, whole and 12 Mpx photos and every clean
file unchanged, 2 of 100 painted files 0.04-0.10 dB further. Without the rule that two paints
differ by more than twice `TOLERANCE`, the shaded pink handle of a pair of scissors, which the
mask takes for paint in a clean selection photo, was split into three pinks and grown (-0.82 dB).

The grown pixels hold paint, not a network fill, so they take the smooth fill alone
(runtime/fill.py, `even_fill(..., smooth_only=)`). A mark whose box, grown by `STEPS` and by
the even fill's widest margin, could exceed `fill.MAX_BOX` pixels is not grown (the large marks
of a camera-size photo, from its smaller copies): the even fill might not fill it, and this
bounds the memory and time of this step.

`TOLERANCE` was chosen on the selection photos (benchmarks/fill_sweep.py, its second table in
benchmarks/results/fill-sweep.md): of 4 to 32 levels, those that lowered no kind's mask IoU were
4 to 16, and of those 16 gained most over not growing, +0.36 dB averaged over the seven kinds of
painted file (+0.80 on PNG crops, where each paint pixel the mask missed costs much; +0.72 at
JPEG 95 4:4:4, +0.52 on whole photos, +0.13 at 12 Mpx, +0.05 to +0.24 at JPEG 4:2:0), with the
mask IoU up on every kind and no file made worse. From 20 levels on it grew into the photo: the
mask IoU of whole photos fell, though the PSNR still rose a little. `STEPS`, `FLAT` and
`MIN_INNER` were set by hand, not swept.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from runtime.fill import MAX_BOX, MAX_MARGIN, dilated
from runtime.pyramid import marks_in_boxes

TOLERANCE = 16  # levels (the largest of the three channels) from the mark's paint
STEPS = 32  # the farthest a mark grows, in pixels
FLAT = 12  # levels: three quarters of a mark's inner pixels this close to its paint
MIN_INNER = 16  # inner pixels a mark needs to be judged flat (and each colour of a mark of several)
GROWTH = 16  # a mark grows to at most this many times what was found, or not at all
COLOURS = 3  # the most paints one mark is split into (marks of different paint that touch)
BIN = 8  # levels per channel of the histogram a mark of several paints is split by


def _paint(pixels: np.ndarray) -> Tuple[np.ndarray, float]:
    """(n, 3) uint8 -> the median colour (3,) and the 75th percentile of the pixels' largest
    channel distance from it (how flat they are)."""
    paint = np.median(pixels, axis=0)
    spread = np.abs(pixels.astype(np.float32) - paint).max(axis=1)
    return paint, float(np.percentile(spread, 75))


def flat_paints(pixels: np.ndarray) -> List[np.ndarray]:
    """(n, 3) uint8, a mark's inner pixels -> the flat paints it is made of.

    One, when three quarters of them lie within `FLAT` of their median. Else, where marks of
    different paint touch and were found as one: the commonest colour left (its median, at
    `BIN`-level bins) with the pixels within `FLAT` of it, then the next, up to `COLOURS`, each
    holding an eighth of the pixels or more. They count only if they hold two thirds of the
    pixels (the rest: the band where a JPEG's paints bleed into each other) and no two are
    within twice `TOLERANCE` of each other, so that each grows over its own pixels alone:
    shades of one surface (a lit and a shaded side of something pink) are a patch of photo,
    and such a mark gets none.
    """
    paint, spread = _paint(pixels)
    if spread <= FLAT:
        return [paint]
    paints: List[np.ndarray] = []
    left = pixels
    for _ in range(COLOURS):
        bins = left.astype(np.int32) // BIN
        key = (bins[:, 0] * 256 + bins[:, 1]) * 256 + bins[:, 2]
        values, counts = np.unique(key, return_counts=True)
        paint = np.median(left[key == values[counts.argmax()]], axis=0)
        near = np.abs(left.astype(np.float32) - paint).max(axis=1) <= FLAT
        if near.sum() < max(MIN_INNER, len(pixels) // 8):
            break
        if any(np.abs(paint - p).max() <= 2 * TOLERANCE for p in paints):
            return []  # shades of one colour, not paints of two
        paints.append(paint)
        left = left[~near]
        if len(left) < MIN_INNER:
            break
    return paints if len(paints) > 1 and 3 * len(left) <= len(pixels) else []


def _grow(region: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """`region` grown a pixel at a time over `allowed`, at most `STEPS` pixels; empty where it
    would grow to more than `GROWTH` times its size (a region of the photo in the paint's colour)."""
    start, limit = region, GROWTH * int(region.sum())
    for _ in range(STEPS):
        step = dilated(region) & allowed
        if np.array_equal(step, region):
            break
        region = step
        if region.sum() > limit:
            return np.zeros_like(region)
    return region & ~start


def grow_over_paint(rgb: np.ndarray, mask: np.ndarray, tolerance: int = TOLERANCE) -> np.ndarray:
    """The pixels each flat mark of `mask` grows over (module docstring).

    Args:
        rgb: the input (H, W, 3) uint8.
        mask: (H, W) bool or uint8 0/255, the marks found.
        tolerance: levels from a mark's paint; 0 grows nothing.

    Returns:
        (H, W) bool: the grown pixels only (none of them in `mask`).
    """
    marked = mask > 0
    grown = np.zeros_like(marked)
    if tolerance <= 0 or not marked.any():
        return grown
    for box, mark in marks_in_boxes(marked, STEPS):  # each mark in its box, STEPS pixels around
        if (mark.shape[0] + 2 * MAX_MARGIN) * (mark.shape[1] + 2 * MAX_MARGIN) > MAX_BOX:
            continue  # the even fill might not fill it: grown pixels would keep their paint
        inner = mark & ~dilated(~mark)  # the mark less its rim
        window = rgb[box]
        if inner.sum() < MIN_INNER:
            continue  # too small to tell paint from photo
        paints = flat_paints(window[inner])  # none: photo the mask took for paint is not chased further
        free = ~marked[box]  # never into another mark
        for paint in paints:
            near = np.abs(window.astype(np.float32) - paint).max(axis=-1) <= tolerance
            # One paint: the whole mark grows over it. Several: each grows from its own part.
            start = mark if len(paints) == 1 else mark & near
            grown[box] |= _grow(start, (near & free) | start)
    return grown
