"""A picture mostly of exactly flat colour is a graphic, not a photo: its marks are left alone.

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
the eight directions are exactly its colour. At `GRAPHIC_SHARE` or more the picture is taken for
a graphic: every mark is dropped and the file comes back as it was. A painted graphic is not
restored either; the model knows photos.

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
restored is ruined, a photo left as it was is only not restored.

The share is read on every `STEP`-th pixel of every `STEP`-th row, in strips of rows, so a
12 Mpx photo costs about 0.06 s more, and only when something was found. `STEP` is prime to 8,
so that the centres fall at every place in a JPEG block.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

TOLERANCE = 0  # levels a flat pixel's 3x3 neighbourhood may span, in each channel
MARGIN = 5  # pixels around each mark whose neighbourhood is not read: it would reach the mark (REACH + 1)
GRAPHIC_SHARE = 0.25  # of the pixels read, flat ones at which the picture is a graphic
STEP = 5  # every STEP-th pixel of every STEP-th row is read
STRIP = 256  # rows per strip
REACH = 4  # the neighbours read lie this many pixels away


def _strip_flat(rgb: np.ndarray, marked: np.ndarray, y0: int, y1: int) -> Tuple[int, int]:
    """(flat pixels, pixels read) among the sampled pixels of rows y0..y1 (exclusive).

    The sampled centres lie on one grid for the whole image, rows and columns 1, 1 + STEP, ...
    (each has its eight neighbours), and every neighbour is a strided view of `rgb`: no copy of
    the strip is made.
    """
    h, w = marked.shape
    first = max(REACH, y0 + (REACH - y0) % STEP)  # the next row on the grid
    last = min(y1, h - REACH)  # centres in first..last-1
    if first >= last or w <= 2 * REACH:
        return 0, 0
    lo = rgb[first:last:STEP, REACH:w - REACH:STEP].copy()  # (n, m, 3) uint8
    hi = lo.copy()
    for dy in (-REACH, 0, REACH):
        for dx in (-REACH, 0, REACH):
            if dy or dx:
                v = rgb[first + dy:last + dy:STEP, REACH + dx:w - REACH + dx:STEP]
                np.minimum(lo, v, out=lo)
                np.maximum(hi, v, out=hi)
    flat = (hi - lo).max(axis=-1) <= TOLERANCE  # (n, m); hi >= lo, so no wrap
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
    read = ~near
    return int((flat & read).sum()), int(read.sum())


def flat_share(rgb: np.ndarray, mask: np.ndarray) -> float:
    """The share of the pixels away from the marks whose 3x3 neighbourhood is flat (module
    docstring); 0 when no pixel is read.

    Args:
        rgb: (H, W, 3) uint8, the picture as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found.
    """
    marked = mask > 0
    flat = read = 0
    for y0 in range(0, rgb.shape[0], STRIP):
        f, r = _strip_flat(rgb, marked, y0, min(rgb.shape[0], y0 + STRIP))
        flat, read = flat + f, read + r
    return flat / read if read else 0.0


def is_graphic(rgb: np.ndarray, mask: np.ndarray, share: float = GRAPHIC_SHARE) -> float:
    """`flat_share` when it reaches `share` (the picture is a graphic), else 0.0."""
    s = flat_share(rgb, mask)
    return s if s >= share else 0.0


NOTE_START = "a graphic, not a photo: left as it was"


def graphic_note(share: float) -> str:
    """The report's note for a picture left as it is because it is a graphic."""
    return (f"{NOTE_START} ({share:.0%} of its pixels around what was found are exactly flat colour, as in a chart, "
            "a screen or a document; --no-graphic-check restores it anyway)")


def is_graphic_note(note: str) -> bool:
    return note.startswith(NOTE_START)
