"""Paint in and across a photo's frame and the band inward of it (runtime/frame.py finds the frame).

A mark's pixels in the frame's lines (a side paint crosses, read at `PAINTED_SHARE`, is read
across by the graph) take the frame's colour (`frame_coloured`): a frame is one colour, and the
fill, reading the photo beside them, painted a cream frame's part of a disc brown, further from
the frame than the disc's pale green (benchmarks/results/selection24-frame-colour.md: 16 painted
collages of 100 nearer the photo, by 0.07 to 2.32 dB, none further). And since a frame is one
colour, paint run into it from the photo is found there whatever the graph made of it
(`paint_in_frame`): a piece of the frame's pixels further than `FRAME_TOLERANCE` from its colour
that reaches the photo, holds a 3 x 3 square of them and touches a mark the graph found (kept,
or in the frame's band), before the band's pieces are read (one touching it may go back to it).
The codec's slivers along the photo's edge hold no such square; a piece clear of the photo (a
stamp, a caption on a print's border) is left; and so is one the graph found nothing beside, as
the top of a roof would be that a white sky's rows, read with a white frame, take in. Chosen on
the selection drawn 24 a photo: of the frame's pieces that reach the photo with such a square in
619 framed pictures (crops and whole photos framed after painting, collages painted after,
clean ones), every one is paint, and they hold 31,016 of the 34,441 painted pixels in the frames;
with the graph's marks asked too, 24 painted collages come back nearer the photo (+0.22 to +7.42
dB), none further, and no clean file changes (benchmarks/results/selection24-frame-paint-found.md);
without them five of those come back 0.22 to 3.69 dB nearer still
(benchmarks/results/selection24-frame-paint.md), but nothing on the photo's side vouches for
such a piece.

A shape painted near the frame crosses into the band, and the band drop left its part there
unrestored (on the selection's framed crops a quarter of the damage lay in the band). So once the
marks are final (grown over their paint and judged by the surround rule, runtime/surround.py), each
piece of what the graph found in the band goes back, with the graph's fill, to a kept mark it
touches (`rejoined`), unless it reaches within `EDGE` pixels of the frame (but see the graph
reading the photo alone, below) or touches a collage's gutter: the model's marks along the frame's
edge touch the frame, and a kept mark is paint. A piece that touches no kept mark stays dropped: a
speck in a corner, or the band's part of a mark of the photo that the surround rule dropped. Chosen
on the selection photos drawn three times as often (benchmarks/photo_eval.py `--per-photo 12`, the
framed and collage kinds, benchmarks/results/selection12-rejoined.md against
selection12-surround.md and selection12-surround-others.md): framed crops 25.50 -> 26.22 dB at JPEG
90 and 25.08 -> 25.67 at JPEG 75, framed whole photos 26.41 -> 27.23, every clean collage as
before; 42 files nearer (up to +16 dB: a disc across the band), 6 further (a blue square's band
part holding some red bin, -0.66 dB; the rest 0.05 dB at most). `EDGE` 1 gained 0.04 dB more at
JPEG 90 with the same six further, 0 made two more further; 2 keeps clear of the two-pixel chroma
blocks of a 4:2:0 JPEG along the frame, where its colour bleeds in; 4 and 8 gained less (26.03,
25.95 at JPEG 90). Tried before and not kept: the pieces put back before the grow and the surround
rule (5 clean collages touched: a gutter's end inside the band read as paint), and with pieces
touching a gutter left out (2: a false mark on a white table that the surround rule drops alone,
kept once its band part joined it, and a speck in a corner).

A shape painted across the photo's edge reaches the frame, and one lying in the band alone
touches no kept mark: either stayed unrestored (on the selection's framed crops drawn three
times as often, 70,138 damage pixels in the band at JPEG 90, 4,963 restored). So each piece the
graph found in the band that did not go back is read for paint on its own (`painted_pieces`):
its inner pixels are flat paint (runtime/paint_grow.py, `flat_paints`: one colour, or a few
touching shapes' colours) of another colour than the frame's (more than twice the paint grow's
`TOLERANCE` from it), and its paint (its pixels within `TOLERANCE` of those colours) differs
from its surroundings almost all round (runtime/surround.py's ring, read off the frame and every
mark: its median pixel further than `RING_MEDIAN` levels from the paint's colour, three quarters
of it further than `RING_QUARTER`) and runs along at most `SPAN` of the photo's height and width
(a white table along a photo's bottom edge, marked with a false mark above it, is the photo's
own edge). Such a piece goes back as the graph found it, as a mark anywhere else is kept, but
for its pixels near the frame's colour (the frame's bleed into the photo's first pixels). A
piece touching a gutter stays dropped. The smooth fill does not read the frame either
(runtime/fill.py, `unread`): a shape run into a white frame was filled half white. Nearly all
that comes back is a kept shape's part run through the band to the photo's edge. Chosen on the
selection photos drawn three times as often (benchmarks/photo_eval.py `--per-photo 12`, the
framed and collage kinds, benchmarks/results/selection12-band-piece.md against
selection12-rejoined.md): framed crops 26.22 -> 28.39 dB at JPEG 90 (Telea given the true mask
27.29) and 25.67 -> 26.61 at JPEG 75 (26.93), framed whole photos 27.23 -> 28.97 (27.27),
collages of two and three +0.03 and +0.13 dB, every clean collage as before; 64 files nearer (up
to +15.3 dB), 10 further (1.63 dB at most: two squares in a portrait's corners, found now and
filled from the little photo beside them). Keeping only the paint's pixels of a piece gained
about half as much (27.27, 26.12 and 28.25 dB, selection12-band-paint.md): a JPEG's paint near
the frame is blended with the frame and the photo past 16 levels. The surroundings' median
alone, at 16, 32 or 48 (the paint's pixels alone kept;
benchmarks/results/selection12-band-same16.md, selection12-band-same32.md,
selection12-band-same48.md): 27.20, 27.28 and 27.24 dB on the crops at JPEG 90, 28.09, 28.09 and
28.26 on the framed whole photos, 16 and 32 adding pixels to clean collages already touched; at
48 the quarter rule takes out a patch of white table at a crop's corner (-1.8 dB), and on the
standard selection run the span rule a clean collage's table strip (-9.2 dB,
benchmarks/results/selection13-band-same48.md; with both, selection13-band-piece.md, every clean
file as before, framed crops 26.54 -> 28.86 dB at JPEG 90). The pieces with the fill reading the
frame gained 0.25 dB less on the crops at JPEG 90 and 0.36 less on the framed whole photos
(selection12-band-fill-reads-frame.md, the median alone at 32). Growing the kept marks over
their paint into the band as well lost 0.38 dB on the crops at JPEG 75 and touched the clean
collages further (tried on the paint's pixels alone).

Reading the photo alone, the graph finds shapes up to its first pixels, and a shape's part in
the band then reaches the frame's edge: `rejoined` now takes such a piece back too where a kept
mark it touches spans `REACH` pixels down or across (a shape, not a false mark's speck or sliver
along the edge), less its pixels near the frame's colour (benchmarks/results/selection24-reach-long.md:
framed crops 28.78 -> 29.39 dB at JPEG 90 and 27.24 -> 28.12 at JPEG 75, framed whole photos
28.31 -> 28.71, none made worse; a false mark already kept on a clean collage runs to the frame
with it, -3.5 and -7.0 dB on one). A kept mark `REACH` pixels down and across both
(selection24-reach.md) left the part of a disc the band cut narrow unrestored (29.11 and 27.71
dB); every piece that reaches the edge back, slivers' too (selection24-inside-edgeless.md), made
one framed crop worse than its input.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from runtime.fill import dilated
from runtime.frame import border_colour, near
from runtime.paint_grow import MIN_INNER, TOLERANCE, flat_paints
from runtime.pyramid import label_with_boxes, marks_in_boxes
from runtime.surround import FAR, ring_distances

EDGE = 2  # pixels inward from the frame: a band's piece that reaches them goes back only to a kept mark REACH long
REACH = 16  # pixels down or across: a kept mark this long takes back a band's piece run to the frame
RING_MEDIAN = 48  # levels: the median pixel of the ring around a band's piece of paint on its own lies further from it
RING_QUARTER = 24  # levels: and three quarters of the ring's pixels further than this (paint differs almost all round)
SPAN = 0.5  # of the photo's height or width: a band's piece longer than this is the photo's own edge, not paint


def paint_in_frame(rgb: np.ndarray, lines: np.ndarray, colour: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(H, W) bool: paint run into the frame (module docstring): each piece of the frame's `lines`'
    pixels (`frame_region`) further than FRAME_TOLERANCE from its `colour` that reaches the photo
    (the frame's line beside it), holds a 3 x 3 square of such pixels (the codec's slivers along
    the photo's edge hold none) and touches what the graph `found` ((H, W) bool: its marks kept
    and those in the frame's band): a shape run into the frame, not the top of a roof that a white
    sky's rows, read with a white frame, take in."""
    h, w = lines.shape
    rows, cols = np.flatnonzero(~lines.all(axis=1)), np.flatnonzero(~lines.all(axis=0))
    if not rows.size or not cols.size:
        return np.zeros((h, w), bool)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # the photo: the lines' hole
    far = np.zeros((h, w), bool)  # read side by side: a large photo's pixels are not copied
    for strip in ((slice(0, top), slice(None)), (slice(bottom, h), slice(None)),
                  (slice(top, bottom), slice(0, left)), (slice(top, bottom), slice(right, w))):
        far[strip] = ~near(rgb[strip], colour)
    inner = np.zeros((h, w), bool)  # the frame's pixels beside the photo, at its corners too
    inner[max(top - 1, 0):bottom + 1, max(left - 1, 0):right + 1] = True
    inner[top:bottom, left:right] = False
    out = np.zeros((h, w), bool)
    for box, piece in marks_in_boxes(far, 1):
        core = ~dilated(~np.pad(piece, 1))  # the piece less its rim, the picture's edge a rim too
        if core.any() and (piece & inner[box]).any() and (dilated(piece) & found[box]).any():
            out[box] |= piece
    return out


def frame_coloured(restored: np.ndarray, mask: np.ndarray, lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """`restored` ((H, W, 3) uint8) with the marks' pixels (`mask`, (H, W) bool or 0/255) in the
    frame's `lines` in its `colour` (`frame_region`): a frame is one colour, so paint across it is
    restored to that colour, not to the photo's beside it, which the fill reads."""
    pixels = lines & (mask > 0)
    if not pixels.any():
        return restored
    out = restored.copy()
    out[pixels] = colour
    return out


def rejoined(rgb: np.ndarray, held: np.ndarray, mask: np.ndarray, edge: np.ndarray,
             gutters: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of `held` ((H, W) bool, the marks' pixels in the band inward of the
    frame as the graph found them) that go back to the marks kept (`mask`, (H, W) bool or 0/255):
    each piece of them that touches a kept mark and no `gutters` ((H, W) bool); one that reaches
    the frame's `edge` ((H, W) bool: the frame and EDGE pixels inward of it) only where a kept mark
    it touches spans `REACH` pixels down or across, and less its pixels near the frame's colour
    (in `rgb`, (H, W, 3) uint8)."""
    back = np.zeros(held.shape, bool)
    kept = mask > 0
    labels, _count, boxes = label_with_boxes(kept)
    large = np.maximum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]) >= REACH  # (count + 1,) per kept mark
    colour: Optional[np.ndarray] = None
    for box, piece in marks_in_boxes(held & ~kept, 1):
        around = dilated(piece)
        touched = labels[box][around & kept[box]]
        if not touched.size or (around & gutters[box]).any():
            continue
        if not (around & edge[box]).any():
            back[box] |= piece
        elif large[touched].any():  # a shape run to the photo's edge, not a sliver's band part
            colour = border_colour(rgb) if colour is None else colour
            back[box] |= piece & ~near(rgb[box], colour)
    return back


def painted_pieces(rgb: np.ndarray, held: np.ndarray, mask: np.ndarray, border: np.ndarray,
                   gutters: np.ndarray) -> np.ndarray:
    """(H, W) bool: the paint in the pieces of `held` ((H, W) bool, what the graph found in the
    frame and its band) that hold paint on their own (module docstring): each piece off the
    `border` ((H, W) bool, the frame itself) and the kept marks (`mask`, (H, W) bool or 0/255)
    that touches no `gutters` ((H, W) bool) and whose inner pixels are flat paint
    (runtime/paint_grow.py, `flat_paints`) of another colour than the frame's, less its pixels
    near the frame's colour, if that paint lies among surroundings (off the frame and every mark,
    runtime/surround.py's ring) further than `RING_MEDIAN` levels from its colour, three quarters
    of them further than `RING_QUARTER`, and runs along at most `SPAN` of the photo's side."""
    out = np.zeros(held.shape, bool)
    kept = mask > 0
    colour = border_colour(rgb)
    extent = _spans(~border)  # the photo's height and width
    marked = kept | held | border  # the ring reads the photo alone
    for box, piece in marks_in_boxes(held & ~kept & ~border, FAR):
        if (dilated(piece) & gutters[box]).any():
            continue
        paint = _piece_paint(rgb[box], piece, colour)
        if paint.sum() < MIN_INNER or (_spans(paint) > SPAN * extent).any():
            continue  # too small to read, or a table or a sky along the photo's edge
        ring = ring_distances(rgb[box], marked[box], paint)
        if ring is not None and np.median(ring) > RING_MEDIAN and np.percentile(ring, 25) > RING_QUARTER:
            out[box] |= piece & ~near(rgb[box], colour)
    return out


def _piece_paint(window: np.ndarray, piece: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of `piece` (h, w bool, within `window` (h, w, 3) uint8) within
    `TOLERANCE` of the flat paints of its inner pixels, but for one near the frame's `colour`."""
    paint = np.zeros_like(piece)
    inner = piece & ~dilated(~piece)  # the piece less its rim
    if inner.sum() < MIN_INNER:
        return paint
    for p in flat_paints(window[inner]):
        if np.abs(p - colour).max() > 2 * TOLERANCE:  # the frame's own colour is not paint
            paint |= piece & (np.abs(window.astype(np.float32) - p).max(axis=-1) <= TOLERANCE)
    return paint


def _spans(pixels: np.ndarray) -> np.ndarray:
    """(2,): how many rows and columns the True pixels of `pixels` (H, W bool) span, first to last."""
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return np.array([n[-1] - n[0] + 1 if n.size else 0 for n in (rows, cols)])
