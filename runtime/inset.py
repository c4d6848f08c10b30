"""A graphic that holds a photo: its texture lies in one block, and around it the graphic's few colours.

A slide with a picture on it, a web article under its photo, a chart beside a snapshot: the
graphic's flat panels and bars are what the shipped model takes for paint (and the flat colour
along the photo's edges too: to the model, a flat area beside a photo is paint over it). Read as
a whole, such a picture is part photo: with a photo over a quarter of it or more, its texture and
its spread of colours are a painted photo's, and neither the flat share (runtime/flat.py) nor the
colours (runtime/palette.py) take it for a graphic. Restored, it loses its panels and its bars.

What tells it from a painted photo is where its texture lies: in one block, with the graphic
around it. So `texture_block` finds the rows and columns that hold at least `HALF` as much
texture as the richest row and the richest column, and takes the block from the first to the
last of them; `inset_shares` reads the colours (`palette.palette_shares`) of the read grid pixels
outside that block. A graphic reads there as a graphic does, its commonest colours (background,
panels, text) holding most of it. A photo's texture spreads over the whole picture, so its block
is most of it, and what lies outside is the photo's own edge, its colours spread as a photo's
are; a photo painted over a large area keeps its texture all around the paint, so its block
spans the paint too. A photo in a frame (a white border, a film's black bars) would read there
as a graphic, its frame one colour and the codec's ringing along the photo's edge a few more, so
the frame is left out as well, with the band inward of it where that ringing lies (runtime/frame.py,
`grid_frame`). What is left of a small photo outside its block and its frame can be a few dozen grid
pixels, whose colours say nothing either way: under `MIN_READ` nothing is read. The picture
is taken for a graphic where, outside the block and the frame, `TOP_SHARE` or
more of the pixels hold one of the `palette.COLOURS` commonest colours and `palette.OTHERS_SHARE`
or more of those not in the commonest hold one of the next: the same two shares as the whole
picture's, the first asked higher, as less of the picture is read.

Chosen on the selection pictures with the marks the shipped model finds (docs/restoring.md, "A
graphic that holds a photo"; the shares of every file in
benchmarks/results/graphic-shares-selection.json): the selection graphics with a selection photo
inset over a tenth to a half of them (restore_core/graphics_photo.py, `inset`), against every selection
photo file and the 12 Mpx selection photos painted over up to half, in PNG, JPEG 75 to 95 and
WebP 75 and 90. The band and `MIN_READ` on the selection crops, each in a frame of a white, black,
grey or cream colour 2, 4 or 8 % of its long side wide ("framed photo files" there): with the
frame alone left out, two of 315 such crops read 49 and 26 grid pixels outside the block, of a
graphic's colours; with its band too, every framed crop reads 5 at most, and the graphics that
this reading alone takes read 739 or more. `TOP_SHARE` was first 0.5; read again with the marks
found once later rules and the 7-bit graph had come (benchmarks/results/graphic-shares-selection-coarse41.md),
spreadsheets holding a photo at JPEG 75 to 90 read 0.468 to 0.495 there and were restored (one at
JPEG 90 lost its header row and label column), while the photo files that reach 0.45 read 0.118
at most on the second share and those that reach 0.15 on it 0.278 at most on the first: 0.45
takes those five graphics and no photo.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from runtime.flat import REACH, STEP
from runtime.frame import BAND, frame_mask
from runtime.palette import OTHERS_SHARE, palette_shares

HALF = 0.5  # a row or column is the block's where its texture reaches this share of the richest one's
TOP_SHARE = 0.45  # outside the block, those in the commonest colours at and above which (with OTHERS_SHARE) ...
MIN_READ = 200  # grid pixels outside the block and the frame under which nothing is read (a 70-pixel square's worth)


def texture_block(texture: np.ndarray) -> np.ndarray:
    """(rows, columns) bool: the block of grid pixels that holds the picture's texture.

    Args:
        texture: (rows, columns) bool, the read grid pixels in texture (`flat.texture_grid`, and
            read). None in texture: no block.
    """
    block = np.zeros_like(texture)
    if not texture.any():
        return block
    rows, cols = texture.sum(axis=1), texture.sum(axis=0)  # (rows,), (columns,)
    r, c = np.flatnonzero(rows >= HALF * rows.max()), np.flatnonzero(cols >= HALF * cols.max())
    block[r[0]:r[-1] + 1, c[0]:c[-1] + 1] = True
    return block


def grid_frame(rgb: np.ndarray, shape: Tuple[int, int], frame: Optional[np.ndarray] = None) -> np.ndarray:
    """(rows, columns) bool: the read grid's pixels (rows and columns REACH, REACH + STEP, ...)
    that lie in the picture's frame or within `frame.BAND` pixels inward of it: `frame` (H, W)
    bool as the restorer drops its marks (`frame.frame_mask(rgb, BAND)`; None: read here)."""
    frame = frame_mask(rgb, BAND) if frame is None else frame
    return frame[np.ix_(REACH + STEP * np.arange(shape[0]), REACH + STEP * np.arange(shape[1]))]


def inset_shares(rgb: np.ndarray, read: np.ndarray, texture: np.ndarray,
                 frame: Optional[np.ndarray] = None) -> Tuple[float, float, int]:
    """(top, others, count): the shares of the read grid pixels outside the texture's block and
    the frame (`palette.palette_shares`; 0 where fewer than `MIN_READ` lie there), and how many lie
    there.

    Args:
        rgb: (H, W, 3) uint8, the picture as the file holds it.
        read: (rows, columns) bool, the grid pixels away from the marks.
        texture: (rows, columns) bool, the grid pixels in texture.
        frame: as in `grid_frame`.
    """
    outside = read & ~texture_block(texture & read) & ~grid_frame(rgb, read.shape, frame)
    count = int(outside.sum())
    return (*palette_shares(rgb, outside), count) if count >= MIN_READ else (0.0, 0.0, count)


def photo_inset(top: float, others: float) -> bool:
    """Whether shares read by `inset_shares` are a graphic's."""
    return top >= TOP_SHARE and others >= OTHERS_SHARE
