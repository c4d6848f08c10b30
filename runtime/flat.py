"""A picture mostly of flat colour (or straight gradients) is a graphic, not a photo: its marks are left alone.

The shipped model's damage is paint: solid shapes of one colour over a photo. A chart's bars, a
screen's panels and buttons, a slide's boxes and a document's shaded boxes are solid shapes of
one colour too, and the model takes them for paint: restored, a chart loses its bars and a
screenshot its panels. What tells such a picture from a painted photo is not in the marks but
around them. A photo, away from its marks, is continuous tone: sensor noise, texture, shading,
so hardly any pixel has eight neighbours of its own colour. A graphic is drawn: its background
and panels are exactly one colour, and a JPEG keeps them so (a block of one colour is coded
by its mean alone and decodes exactly).

So when the full-size pass finds marks, `flat_share` measures the share of the pixels away from
them (more than `MARGIN` pixels) whose neighbourhood is flat: the pixels `REACH` steps away in
the eight directions are exactly its colour. A photo painted over by more than a quarter, whose
paint the full-size pass found only at its rim, is that flat too (the paint's inside), so
`texture_share` also measures the share in texture: not flat, and neither are the eight read
pixels around (a photo's continuous tone; a graphic's unflat pixels are thin text, lines and
edges). At `GRAPHIC_SHARE` flat or more and under `TEXTURE_SHARE` texture the picture is taken
for a graphic (runtime/graphic.py, which also reads its colours, runtime/palette.py, and its
colours outside the block that holds its texture, runtime/inset.py): every mark is dropped and
the file comes back as it was.

The neighbours lie 4 pixels away, not 1, because of the codecs. A JPEG block (or a WebP one) in
a smooth part of a photo is often coded by its mean alone and decodes to one colour inside, so
at a reach of 1 a photo's sky reads as flat as a chart (a picture whose every 8x8 block is one
colour: 0.56); at a reach of 4 every neighbourhood spans two blocks, which only a truly flat
surface makes equal (that picture: 0).

Chosen on the selection pictures (docs/restoring.md, "Graphics are left as they are"): every
painted and clean selection photo file of benchmarks/photo_eval.py, as crops, whole and at 12 Mpx,
in every format, against the selection graphics (restore_core/graphics.py: 12 charts and 12
application screens) saved as PNG, JPEG 75 and 90 at 4:2:0, JPEG 95 at 4:4:4 and WebP 90. The
model found marks in every one of the 120 graphic files. The photos' shares reached 0.05 (297
lossy crops, 12 a photo; at a reach of 1: 0.42, of 2: 0.13), the graphics' fell to 0.62 (a chart
saved as JPEG 90; at a reach of 1: 0.65). 0.25 lies between, nearer the photos: a graphic
restored is ruined, a photo left as it was is only not restored. Each selection photo at 12 Mpx
with one rectangle painted over 10, 30 or 50 % of it (JPEG 90) read 0.09, 0.28 and 0.49 flat,
and at least 0.50 texture, where the graphics read at most 0.24 and the selection photo files at
least 0.76: `TEXTURE_SHARE` 0.4 lies between, nearer the photos.

A pixel on a drawn gradient counts as flat too. A slide's, a poster's or a web page's background
often shades from one colour to another along a straight line, so rounded to levels every second
difference across it (the pixels before and after, less twice the pixel) is within a level. A
pixel lies on such a gradient when, in the four directions through it, its second differences
at `REACH` and at `SHADE_REACH` pixels stay within `SHADE_TOLERANCE` in every channel, or in a
finely coded JPEG (`shade_tolerance`: each block's gradient is coded by a few rounded cosines)
within `FINE_SHADE_TOLERANCE`. A photo's shading is not straight: its noise breaks it at 4
pixels, and a photo scaled up without noise, straight over 4 pixels, bends over 16 (a selection
photo at 12 Mpx without noise, painted over a tenth, as PNG, read 0.45 flat and 0.34 texture at 4
alone, a graphic; 0.23 and 0.57 with 16). In a lossy file a photo's sky is as straight as a drawn
gradient, so there the texture condition carries the choice: at 2 levels the selection photo
files read at most 0.11 flat and 0.62 texture, and the 12 Mpx photos painted over up to half
0.42 texture at the least at JPEG 90, while at 3 two of those were taken for graphics; at JPEG 75
2 levels already took two of them (0.36 and 0.38 texture; 0.42 and 0.41 at 1 level), so a
coarser JPEG, a lossy WebP (whose coding is not read) and an array keep 1. A gradient someone's
renderer dithered is not straight.

A coarse codec bends a gradient further: the selection posters at JPEG 75 and 85, WebP 75 and
90 read as little as 0.06 flat at 1 level. So `grids` gives each read pixel its bend in levels
(`_bend`), and runtime/graphic.py also reads the picture at `COARSE_SHADE_TOLERANCE`: every
poster in every format reads 0.27 flat or more there. A photo's sky is straight within 3 levels
in a coarse file too, and a photo painted over a large area, its paint found only at its rim,
reads flat inside the paint; what stays a photo's is its texture around the paint. So at 3
levels the texture is counted among the pixels not of exactly flat colour (the paint's inside
left out): the posters read at most 0.24 so, and a poster holding a photo at JPEG 75 and 85 (its
photo's texture read too) 0.38 and 0.35; no selection photo file reads 0.25 flat at 3 levels
(0.23 at most) but one crop in a frame (0.32 flat, 0.449 texture), and the 12 Mpx photos of the
stress above that do read at least 0.46 so. `COARSE_TEXTURE_SHARE` lies halfway between the
graphics' 0.38 and the photos' 0.449 (benchmarks/results/graphic-shares-selection-coarse41.md).

The share is read on every `STEP`-th pixel of every `STEP`-th row, in strips of rows, so a
12 Mpx photo costs about 0.13 s more (the gradients' bend included), and runtime/graphic.py's
whole reading, colours too, 0.16 s, only when something was found. `STEP` is prime to 8, so that
the centres fall at every place in a JPEG block.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

TOLERANCE = 0  # levels a flat pixel's neighbourhood may span, in each channel
REACH = 4  # the neighbours read lie this many pixels away
MARGIN = REACH + 1  # pixels around each mark not read: their neighbourhood would reach the mark
GRAPHIC_SHARE = 0.25  # of the pixels read, the flat ones at and above which the picture may be a graphic
TEXTURE_SHARE = 0.4  # ... if those in texture stay under this share
COARSE_TEXTURE_SHARE = 0.41  # ... or, read within COARSE_SHADE_TOLERANCE, those in texture among the pixels not exactly flat
STEP = 5  # every STEP-th pixel of every STEP-th row is read
STRIP = 256  # rows per strip
# A pixel on a drawn gradient counts as flat too: straight both REACH and SHADE_REACH pixels away
# (a sky scaled up without noise is straight over 4 pixels, and bends over 16).
SHADE_REACH = 16
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (dy, dx): across, down and the two diagonals
SHADE_TOLERANCE = 1  # levels a straight gradient's second difference may reach, in each channel: its rounding
FINE_SHADE_TOLERANCE = 2  # ... in a finely coded JPEG: its luma quantizer's steps (0, 1) and (1, 0) at most
FINE_STEP = 2  # this (quality 90 and up with the standard tables; 85 has 3)
COARSE_SHADE_TOLERANCE = 3  # ... in any file, read with the texture among the pixels not exactly flat (runtime/graphic.py)


def _bend(rgb: np.ndarray, first: int, last: int, shape: Tuple[int, int]) -> np.ndarray:
    """(n, m) uint8: how far the grid centres of rows first..last-1 are from a straight gradient:
    in the four directions through them, the largest second difference of any channel (the pixels
    before and after, less twice the centre) at REACH and at SHADE_REACH, in levels. Read at
    SHADE_REACH only where REACH held within COARSE_SHADE_TOLERANCE (a photo fails there, and
    above it no rule reads the level): elsewhere, and within SHADE_REACH of the border, 255."""
    h, w = rgb.shape[:2]
    ys, xs = np.arange(first, last, STEP)[:shape[0]], np.arange(REACH, w - REACH, STEP)[:shape[1]]
    out = np.full(shape, 255, np.uint8)
    rows = np.flatnonzero((ys >= SHADE_REACH) & (ys < h - SHADE_REACH))
    cols = np.flatnonzero((xs >= SHADE_REACH) & (xs < w - SHADE_REACH))
    if not rows.size or not cols.size:
        return out
    yb, ye, xb, xe = ys[rows[0]], ys[rows[-1]] + 1, xs[cols[0]], xs[cols[-1]] + 1
    twice = 2 * rgb[yb:ye:STEP, xb:xe:STEP].astype(np.int16)  # (n', m', 3)
    bend = np.zeros(twice.shape[:2], np.int16)
    for dy, dx in DIRECTIONS:  # REACH away, on the whole grid
        before = rgb[yb - dy * REACH:ye - dy * REACH:STEP, xb - dx * REACH:xe - dx * REACH:STEP]
        after = rgb[yb + dy * REACH:ye + dy * REACH:STEP, xb + dx * REACH:xe + dx * REACH:STEP]
        np.maximum(bend, np.abs(before.astype(np.int16) + after - twice).max(axis=-1), out=bend)
    i, j = np.nonzero(bend <= COARSE_SHADE_TOLERANCE)  # SHADE_REACH away, only where it held at REACH
    y, x, centre = yb + i * STEP, xb + j * STEP, twice[i, j]  # (k,), (k,), (k, 3)
    far = bend[i, j]
    for dy, dx in DIRECTIONS:
        ends = rgb[y - dy * SHADE_REACH, x - dx * SHADE_REACH].astype(np.int16) + rgb[y + dy * SHADE_REACH, x + dx * SHADE_REACH]
        far = np.maximum(far, np.abs(ends - centre).max(axis=-1))
    bend[bend > COARSE_SHADE_TOLERANCE] = 255
    bend[i, j] = far
    out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = np.minimum(bend, 255)
    return out


def shade_tolerance(qtables: Optional[Dict[int, Sequence[int]]] = None) -> int:
    """The levels a straight gradient's second difference may reach in a file: FINE_SHADE_TOLERANCE
    in a JPEG whose `qtables` (Pillow's `quantization`, natural order, 0 the luma table) step
    its first luma frequencies by at most FINE_STEP, else SHADE_TOLERANCE (a lossless file, a
    coarser JPEG, a lossy WebP, an array of unknown origin)."""
    luma = (qtables or {}).get(0)
    fine = luma is not None and len(luma) == 64 and max(luma[1], luma[8]) <= FINE_STEP
    return FINE_SHADE_TOLERANCE if fine else SHADE_TOLERANCE


def _strip_flat(rgb: np.ndarray, marked: np.ndarray, y0: int, y1: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, bend, read): (n, m) each, for the sampled pixels of rows y0..y1 (exclusive): which are
    exactly flat (bool), how far from a straight gradient (`_bend`, uint8 levels) and which lie
    away from the marks (bool).

    The sampled centres lie on one grid for the whole image, rows and columns REACH, REACH + STEP,
    ... (each has its eight neighbours REACH away inside the image), and every neighbour is a
    strided view of `rgb`: no copy of the strip is made.
    """
    h, w = marked.shape
    first = max(REACH, y0 + (REACH - y0) % STEP)  # the next row on the grid
    last = min(y1, h - REACH)  # centres in first..last-1
    if first >= last or w <= 2 * REACH:
        return np.zeros((0, 0), bool), np.zeros((0, 0), np.uint8), np.zeros((0, 0), bool)
    lo = rgb[first:last:STEP, REACH:w - REACH:STEP].copy()  # (n, m, 3) uint8
    hi = lo.copy()
    for dy in (-REACH, 0, REACH):
        for dx in (-REACH, 0, REACH):
            if dy or dx:
                v = rgb[first + dy:last + dy:STEP, REACH + dx:w - REACH + dx:STEP]
                np.minimum(lo, v, out=lo)
                np.maximum(hi, v, out=hi)
    flat = (hi - lo).max(axis=-1) <= TOLERANCE  # (n, m); hi >= lo, so no wrap
    bend = _bend(rgb, first, last, flat.shape)
    # Read only where no marked pixel lies within MARGIN: the marks' rows around the strip,
    # padded to MARGIN on every side, ORed over the window's rows and then its columns.
    top, bottom = first - MARGIN, last + MARGIN
    band = np.pad(marked[max(0, top):min(h, bottom)],
                  ((max(0, -top), max(0, bottom - h)), (MARGIN, MARGIN)))  # rows top..bottom-1, columns -MARGIN..w+MARGIN-1
    rows = np.zeros((flat.shape[0], band.shape[1]), bool)
    for dy in range(2 * MARGIN + 1):
        rows |= band[dy:dy + last - first:STEP][:flat.shape[0]]
    near = np.zeros(flat.shape, bool)
    for dx in range(2 * MARGIN + 1):
        near |= rows[:, REACH + dx:w - REACH + dx:STEP][:, :flat.shape[1]]
    return flat, bend, ~near


def grids(rgb: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, bend, read): (rows, columns) each, on the grid of sampled pixels: which are exactly
    flat, how many levels each is from a straight gradient (255: more than COARSE_SHADE_TOLERANCE,
    or not read so), and which lie away from the marks (module docstring).

    Args:
        rgb: (H, W, 3) uint8, the picture as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found.
    """
    marked = mask > 0
    parts = [_strip_flat(rgb, marked, y0, min(rgb.shape[0], y0 + STRIP)) for y0 in range(0, rgb.shape[0], STRIP)]
    parts = [p for p in parts if p[0].size]
    if not parts:
        return np.zeros((0, 0), bool), np.zeros((0, 0), np.uint8), np.zeros((0, 0), bool)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def flat_grid(rgb: np.ndarray, mask: np.ndarray, tolerance: int = SHADE_TOLERANCE) -> Tuple[np.ndarray, np.ndarray]:
    """(flat, read): (rows, columns) bool each, on the grid of sampled pixels: which are flat
    (exactly, or on a gradient straight within `tolerance` levels: `shade_tolerance`), and which
    lie away from the marks (module docstring; `grids` for the arguments)."""
    flat, bend, read = grids(rgb, mask)
    return flat | (bend <= tolerance), read


def grid_share(pixels: np.ndarray, read: np.ndarray) -> float:
    """The share of the read grid pixels that `pixels` (the same grid, bool) marks; 0 when none is read."""
    return float((pixels & read).sum() / read.sum()) if read.any() else 0.0


def flat_share(rgb: np.ndarray, mask: np.ndarray, tolerance: int = SHADE_TOLERANCE) -> float:
    """The share of the pixels away from the marks whose neighbourhood is flat (module
    docstring; `tolerance` as in `flat_grid`); 0 when no pixel is read."""
    return grid_share(*flat_grid(rgb, mask, tolerance))


def texture_grid(flat: np.ndarray) -> np.ndarray:
    """(rows, columns) bool, the grid pixels in texture: not flat, and neither are the eight grid
    pixels around them (`STEP` pixels away; a grid pixel on the border is never texture). A photo
    is mostly texture, a graphic's only unflat pixels are thin (text, lines, edges)."""
    rough = ~flat
    deep = np.zeros_like(rough)
    deep[1:-1, 1:-1] = rough[1:-1, 1:-1]
    n, m = rough.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                deep[1:-1, 1:-1] &= rough[1 + dy:n - 1 + dy, 1 + dx:m - 1 + dx]
    return deep


def texture_share(flat: np.ndarray, read: np.ndarray) -> float:
    """The share of the read grid pixels that lie in texture (`texture_grid`)."""
    return grid_share(texture_grid(flat), read)
