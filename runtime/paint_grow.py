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

Past a mark's paint lies a rim of blends of it and the photo beside it: a JPEG's subsampled
chroma spreads the paint's colour over a chroma pixel past its edge, and a picture resized after
it was painted averages the two over its resampling filter. A blend far enough from the paint
is not within `TOLERANCE` of it, and stays: on a painted 12 Mpx JPEG, a line of red beside a red
mark, visible zoomed in; and the fill of the mark, which reads the pixels around it, reads the
blends and comes back tinted towards the paint. So just before the fill, the pixels at most `RIM`
out from each flat mark (or each paint's part of it) that lie on the line from the photo just
beyond them to the paint (`blend_rim`) join the mask: the fill reads past them. Then each takes
its own value unblended: the paint's share taken out, what is left is the photo, its own texture
kept (`blend_rims`, `put_patches`; runtime/mark_edits.py, `filled`). Chosen on the selection
photos through the real `restore-run` (benchmarks/results/selection20-rims.md against
selection20-base.md, the code before it): mask IoU up or level on every kind of painted file
(+0.000 to +0.003), PSNR +0.27 dB on resized PNG crops (one +3.5 dB), +0.09 at 12 Mpx, +0.04 at
JPEG 75 and 95, +0.02 to +0.03 at JPEG 90, on WebP and on framed crops, −0.003 on collages of
two; 64 of 276 painted files closer, 18 further (the most 0.04 dB); clean files unchanged. The
blends unblended after the fill instead, the fill reading them as before
(benchmarks/results/selection20-unblend.md), gained a tenth to a quarter as much on resized PNG
crops and JPEG crops. `RIM`, `BEYOND`, `BLEND_MIN`, `BLEND_FIT`, `CONTRAST` and `SMOOTH` were set by hand, not swept.

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

from typing import Iterator, List, Optional, Tuple

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
RIM = 2  # pixels out from a grown mark where blends of its paint and the photo are looked for
BEYOND = 3  # pixels past those, whose mean is the photo's colour there
BLEND_MIN = 0.25  # a blend is at least this much paint
BLEND_FIT = 12  # levels from the line between the photo's colour and the paint
CONTRAST = 48  # levels (the largest channel) the paint and the photo must differ by
SMOOTH = 10  # levels: the most the photo beyond may vary (its standard deviation); in texture a blend is not told apart


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


def _box_stats(values: np.ndarray, weights: np.ndarray, radius: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the pixels of `weights` (h, w) bool in each pixel's (2 radius + 1)^2 window: the mean
    of `values` (h, w, 3), their standard deviation (the largest channel's, (h, w)) and how many
    there were (h, w); from summed-area tables."""
    def window_sum(a: np.ndarray) -> np.ndarray:
        c = np.pad(a, [(radius + 1, radius)] * 2 + [(0, 0)] * (a.ndim - 2)).cumsum(0).cumsum(1)
        n = 2 * radius + 1
        return c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]

    count = window_sum(weights.astype(np.float64))
    v = values.astype(np.float64) * weights[..., None]
    n = np.maximum(count, 1)[..., None]
    mean = window_sum(v) / n
    spread = np.sqrt(np.maximum(window_sum(v * v) / n - mean * mean, 0)).max(-1)
    return mean, spread, count


def blend_rim(window: np.ndarray, region: np.ndarray, paint: np.ndarray,
              free: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The pixels at most `RIM` pixels out from `region` ((h, w) bool, a mark over its `paint`)
    that are a blend of the paint and the photo just beyond them, and each one unblended.

    The photo's colour at a pixel is the mean of the `free` pixels `RIM` + 1 to `RIM` + `BEYOND`
    out in its window; the pixel is a blend when it lies within `BLEND_FIT` levels of the line
    from that colour to the paint, at least `BLEND_MIN` of the way to the paint, the two differ
    by `CONTRAST` levels or more and the photo there is smooth (its pixels' standard deviation
    at most `SMOOTH`): else a blend cannot be told from the photo. Only blends joined to the
    region through blends count.

    Returns the blends (h, w) bool, none of them in `region`, and the pixels (h, w, 3) uint8
    with the paint's share taken out of each blend: the photo's colour there plus what of the
    pixel is not paint or that colour (its own texture); elsewhere as `window`.
    """
    near = dilated(region, RIM)
    beyond = dilated(near, BEYOND) & ~near & free
    rim = near & ~region & free
    if not rim.any() or not beyond.any():
        return np.zeros_like(region), window
    photo, spread, count = _box_stats(window, beyond, RIM + BEYOND)
    towards = paint - photo  # (h, w, 3): from the photo to the paint
    offset = window.astype(np.float64) - photo
    share = (offset * towards).sum(-1) / np.maximum((towards * towards).sum(-1), 1e-6)
    fit = np.abs(offset - share[..., None] * towards).max(-1)
    blend = (rim & (count > 0) & (spread <= SMOOTH) & (share >= BLEND_MIN) & (fit <= BLEND_FIT)
             & (np.abs(towards).max(-1) >= CONTRAST))
    joined = region
    for _ in range(RIM):
        joined = dilated(joined) & (blend | region)
    joined &= ~region
    unblended = window.astype(np.float64) - np.minimum(share, 1.0)[..., None] * towards
    return joined, np.where(joined[..., None], np.clip(unblended.round(), 0, 255), window).astype(np.uint8)


FlatMark = Tuple[Tuple[slice, slice], np.ndarray, List[np.ndarray]]  # box, the mark in it (h, w) bool, its paints


def _flat_marks(marked: np.ndarray, rgb: np.ndarray, margin: int) -> Iterator[FlatMark]:
    """Each mark of `marked` (H, W) bool in its box grown by `margin`, with its flat paints
    (`flat_paints`, of its inner pixels); marks too large for the even fill (`fill.MAX_BOX`) or
    too small to judge (`MIN_INNER`), and marks with no flat paint, are passed over."""
    for box, mark in marks_in_boxes(marked, margin):
        if (mark.shape[0] + 2 * MAX_MARGIN) * (mark.shape[1] + 2 * MAX_MARGIN) > MAX_BOX:
            continue  # the even fill might not fill it: grown pixels would keep their paint
        inner = mark & ~dilated(~mark)  # the mark less its rim
        if inner.sum() < MIN_INNER:
            continue  # too small to tell paint from photo
        paints = flat_paints(rgb[box][inner])  # none: photo the mask took for paint is not chased further
        if paints:
            yield box, mark, paints


Patch = Tuple[Tuple[slice, slice], np.ndarray, np.ndarray]  # box, pixels in it (h, w) bool, their values (n, 3) uint8


def blend_rims(rgb: np.ndarray, mask: np.ndarray,
               keep_out: Optional[np.ndarray] = None) -> Tuple[np.ndarray, List[Patch]]:
    """Around each flat mark of `mask` (H, W) uint8 0/255 (`rgb`: the input), its blends with
    the photo (`blend_rim`), none in `keep_out` (H, W) bool (a picture's frame); they are added
    to `mask`, in place. Returns them (H, W) bool and, a box at a time, their values unblended
    (`put_patches` writes them)."""
    marked = mask > 0
    rims = np.zeros_like(marked)
    patches: List[Patch] = []
    for box, mark, paints in _flat_marks(marked, rgb, RIM + BEYOND):
        window = rgb[box]
        free = ~marked[box] & ~rims[box]
        if keep_out is not None:
            free &= ~keep_out[box]
        for paint in paints:
            near = np.abs(window.astype(np.float32) - paint).max(axis=-1) <= TOLERANCE
            part = mark if len(paints) == 1 else mark & near  # several paints: each from its own part
            joined, unblended = blend_rim(window, part, paint, free)
            if joined.any():
                patches.append((box, joined, unblended[joined]))
                rims[box] |= joined
                free &= ~joined
    mask[rims] = 255
    return rims, patches


def put_patches(image: np.ndarray, patches: List[Patch]) -> None:
    """Each patch's values into `image` (H, W, 3), in place (the patches of `blend_rims` never overlap)."""
    for box, pixels, values in patches:
        image[box][pixels] = values


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
    for box, mark, paints in _flat_marks(marked, rgb, STEPS):  # each mark in its box, STEPS pixels around
        window = rgb[box]
        free = ~marked[box]  # never into another mark
        for paint in paints:
            near = np.abs(window.astype(np.float32) - paint).max(axis=-1) <= tolerance
            # One paint: the whole mark grows over it. Several: each grows from its own part.
            start = mark if len(paints) == 1 else mark & near
            grown[box] |= _grow(start, (near & free) | start)
    return grown
