"""A picture drawn in a handful of colours is a graphic, even where its codec left nothing flat.

runtime/flat.py tells a graphic by its flat colour and straight gradients around the marks. A
spreadsheet, a form or a table of figures saved as JPEG or lossy WebP has neither: a grid line or
a letter lies in nearly every 8x8 block, the codec rings around each of them, and read 4 pixels
apart its white cells are as rough as a photo's texture (the selection spreadsheets at JPEG 90
read as little as 0.01 flat and as much as 0.89 texture). What such a picture keeps is its
colours: most of its pixels still hold one of the few it was drawn in (the page's white, the
header's, a column's, a highlight's), to within a level, where a photo's spread over thousands.

So `palette_shares` reads the same grid pixels as the flat share (away from the marks), each
channel binned by `BIN` levels (a drawn colour and its copies a level off in another block count
as one), and measures two shares:

- `top`: of all of them, those in the `COLOURS` commonest colours;
- `others`: of those not in the commonest colour, the share in the `COLOURS` next commonest.

A graphic reads high on both. A photo reads low on the first; painted over a large area, whose
paint the full-size pass found only at its rim, it reads the paint's inside as its commonest
colour and high on the first, but the rest of it is a photo, low on the second. A picture is
taken for a graphic by its colours at `TOP_SHARE` and `OTHERS_SHARE` or more.

Chosen on the selection pictures with the marks the shipped model finds (docs/restoring.md,
"Graphics drawn in a few colours"): every selection photo file of benchmarks/photo_eval.py
(crops painted, resized after painting and clean, whole photos; PNG, JPEG 75, 85 and 90 at
4:2:0, JPEG 95 at 4:4:4, WebP 75 and 90) and the selection photos at 12 Mpx, with and without
noise, painted over 0, 10, 30 and 50 % by one rectangle (PNG, JPEG 75 and 90, WebP 75 and 90),
against the selection graphics in the same formats (restore_core/graphics.py: charts, screens and
spreadsheets; posters, on a gradient, hold few pixels of any one colour and are the flat share's).
The photo files' `top` reached 0.26 (a crop of sky, WebP 90), the graphics' fell to 0.42 (a
spreadsheet, JPEG 75); the 12 Mpx photos painted over half reached 0.54 on `top`, and 0.11 on
`others`, where the graphics' fell to 0.21.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from runtime.flat import REACH, STEP
from runtime.solid import colour_keys

BIN = 2  # levels per bin, in each channel
COLOURS = 4  # the commonest colours counted
TOP_SHARE = 0.35  # of the pixels read, those in the COLOURS commonest colours, at and above which ...
OTHERS_SHARE = 0.15  # ... and of those not in the commonest, those in the next COLOURS, the picture is a graphic


def grid_pixels(rgb: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """(rows, columns, 3) uint8, a view: the pixels of the read grid of `shape` (rows and columns
    REACH, REACH + STEP, ...)."""
    h, w = rgb.shape[:2]
    return rgb[REACH:h - REACH:STEP, REACH:w - REACH:STEP][:shape[0], :shape[1]]


def palette_shares(rgb: np.ndarray, read: np.ndarray) -> Tuple[float, float]:
    """(top, others): the shares of the read grid pixels in their `COLOURS` commonest colours, and of
    those not in the commonest in the next `COLOURS` (module docstring); 0 where none is read.

    Args:
        rgb: (H, W, 3) uint8, the picture as the file holds it.
        read: (rows, columns) bool, the grid pixels away from the marks (`flat.flat_grid`): rows
            and columns REACH, REACH + STEP, ...
    """
    grid = grid_pixels(rgb, read.shape)
    if not read.any():
        return 0.0, 0.0
    _values, counts = np.unique(colour_keys(grid[read] // BIN), return_counts=True)
    counts = np.sort(counts)[::-1]  # the commonest first
    total, rest = counts.sum(), counts.sum() - counts[0]
    return float(counts[:COLOURS].sum() / total), float(counts[1:1 + COLOURS].sum() / rest) if rest else 0.0


def few_colours(top: float, others: float) -> bool:
    """Whether shares read by `palette_shares` are a graphic's."""
    return top >= TOP_SHARE and others >= OTHERS_SHARE
