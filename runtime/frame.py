"""A photo's frame is not paint: no mark is kept in it.

A print scanned with its white border, a photo shared on a white or black matte, a film still
between black bars: the border is one flat colour with a straight edge against a photo, which is
exactly what this model's damage looks like, and the model marks patches of it. Restored, the
frame gets smudges of the photo's colours (the evaluation's whole photos, each framed, JPEG 90:
4 of 12 made worse, 14.5 dB from the input outside the damage at the worst; docs/restoring.md,
"A photo's frame").

So `frame_lines` reads the picture from each side inward: a row (or column) belongs to the frame
while at least `FRAME_SHARE` of its pixels lie within `FRAME_TOLERANCE` levels, in every
channel, of the border's colour (the median of the picture's outermost pixels; the tolerance
takes in the codec's rounding and, near the photo, part of its ringing). It is a frame only
where it runs along two opposite sides at least (top and bottom, or left and right): one side
alone is as likely a clipped sky or a shadow; a side whose colour reaches a third of the way in
(`DEPTH`) is the picture's background, not a frame; a side of one line (`MIN_LINES`) is an edge
(a screenshot's or a chart's outline) as often as a frame; and a frame's lines run the whole way
across, so the picture's corners hold its colour (`CORNER_SHARE` of a square as wide as its
thinnest side, in three corners of four at least, `MIN_CORNERS`: paint may lie over one): a
page's side margins, between a band across its top and one across its bottom (a web page's bar
and footer) or below a band across its top alone (a screen's title bar), hold the page's colour
on 85 % of their columns but end at the bands. The restorer then drops the marks' pixels in the
frame and within `BAND` pixels inward of it (`frame_mask(rgb, BAND)`), where the codec rings
along the photo's edge: what the model found there is the frame's edge. A shape painted near the
border is restored up to that band (and, where it crosses it or holds paint on its own, in it: below). Chosen on the selection photos, whole and each framed
(benchmarks/photo_eval.py, `framed-jpeg-90`): dropping every mark that touches the frame, whole,
left them 0.777 mask IoU and 27.96 dB (the unframed photos: 0.924 and 33.93), as the frame's
patches join paint near the edge; the band, 0.868 and 30.31, none made worse.

`FRAME_SHARE` was chosen on the selection crops, each in a frame 2, 4 or 8 % of its long side
wide (benchmarks/graphic_shares.py, "framed photo files", its outermost lines' column): a frame thinner than
a JPEG's colour block takes the photo's colours into its outermost line, which at JPEG 75 holds
as few as 93 % of its pixels near the border's colour, so a frame asked 95 % was missed and its
edge restored (one crop went from 36.5 dB to 20.3; tests/test_runtime_frame.py keeps it). Of two
opposite sides, the one further from the border's colour holds 96 % or more in every framed file
of that benchmark, 77 % at most in every unframed photo file (a crop of sky). The corners on the
same files (benchmarks/graphic_shares.py, "files whose sides read as a frame's"): every framed
one holds its colour in each of its four corners, while the four selection graphics whose
margins read as a frame without the rule (two screens, a screen holding a photo, a bulletin:
restore_core/graphics.py) hold it in two corners at most. One corner is let go because a painted
collage's frame lost its corner under the paint (benchmarks/photo_eval.py, `collage-jpeg-90`)
and, with it, its frame: the frame's edge was then restored, 47.8 dB from the input outside the
damage down to 36.9.

A side that paint crosses (a collage painted after it was laid out, a sticker over a bordered
print's edge) holds under `FRAME_SHARE` of the colour on its lines and reads as no side, so the
model's marks up its frame-coloured pixels were kept and painted over with the photo's colours.
Where the other sides make a frame (two opposite ones and `MIN_CORNERS` corners), such a side is
read again with `PAINTED_SHARE` of a line's pixels near the colour, and `frame_mask` takes its
lines' pixels in the frame's colour alone, with no band inward: the paint on it and beside it is
restored as anywhere. Chosen on the selection collages drawn three times as often
(benchmarks/photo_eval.py `--per-photo 12`, benchmarks/results/selection12-painted-sides.md): the
five painted collages whose frame lost a side to paint (of 50; no other selection file, graphic
or photo, of those runs or of benchmarks/graphic_shares.py's 2,034, reads a frame with a side
missing) came back 0.21 to 3.07 dB nearer the photo in three, 0.03 and 0.04 dB further in two,
and the one made worse (a white side painted with a night sky, 19.5 dB from its input outside
the damage) is no longer. Reading the side whole with its band instead (a frame's side like the
others) kept the frame too, but left the paint across it unrestored: mask IoU 0.76 → 0.28 and
24.4 → 19.6 dB on one collage, the mean of the painted collages down 0.1 dB.

Paint may cross two sides that meet (discs over a collage's bottom and its right side); then no
two opposite sides were left and no frame was read. So two sides that meet make a frame too
where the two across from them hold `PAINTED_SHARE` of its colour, read as sides paint crosses
(the corners asked as before). A sky along a photo's top and a wall down its left make none: the
photo's own colours lie across from them. On the selection drawn 24 a photo, five painted
collages of 100 had lost their frame so (benchmarks/results/selection24-two-sides.md); of 1,962
selection pictures read both ways (every kind of benchmarks/photo_eval.py at 4 a photo, 17 of
them at 24: photos, crops, collages and graphics, as PNG, JPEG and WebP), no other reads a frame.

The graph is handed the photo inside the frame alone (`photo_box`, `Restorer.graph_box`): read
with the frame, it marked the band along its edge and flat patches near it, and missed paint
near it that it finds unframed. On the selection's crops in frames drawn six times as often
(benchmarks/results/selection24-inside-frame.md against selection24-frame-before.md), clean ones
touched 16 -> 3 of 120 at JPEG 90 and 18 -> 1 at JPEG 75, painted ones 28.33 -> 28.78 and 26.48 ->
27.24 dB, none made worse. The band and its rules above stay: without the band the graph's marks
along the photo's edge, which it now reads as the picture's, still touched 13 and 11 clean crops.

What is done with paint in and across the frame and its band (the frame's colour on the marks in
its lines, paint run into it, the band's pieces taken back) is runtime/frame_paint.py's.

runtime/inset.py leaves the frame and its band out of its colours too: a frame is one colour,
which outside a photo's block would read as a graphic's.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

FRAME_TOLERANCE = 16  # levels from the border's colour, in each channel, of a frame's pixels
FRAME_SHARE = 0.85  # of a row's or column's pixels, those so near that make it the frame's
DEPTH = 1 / 3  # the frame is looked for this far in from each side, at most
BAND = 16  # pixels inward from the frame where its ringing lies: no mark is kept there (a JPEG's colour block)
CHUNK = 16  # lines read at a time: a photo with no frame fails on its first
MIN_LINES = 2  # a side's frame is this many lines at least: a single line of one colour is an edge as often
CORNER_SHARE = 0.5  # of a corner's square (the frame's thinnest side), those near its colour that make it the frame's
MIN_CORNERS = 3  # corners of the frame's colour a frame has at least: paint or a stamp may cover one
PAINTED_SHARE = 0.5  # of a line's pixels near the colour, on a side the other sides' frame vouches for: paint may cross it


def near(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(...) bool: which of `pixels` (..., 3) uint8 lie within FRAME_TOLERANCE of `colour` in every
    channel ((3,) int16, or one a line broadcast against them)."""
    return np.abs(pixels.astype(np.int16) - colour).max(axis=-1) <= FRAME_TOLERANCE


def near_share(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(...,) float: of each of `lines` (..., length, 3) uint8, the share of its pixels `near`
    `colour` ((3,) or, a colour a line, (..., 1, 3) int16). The frame's, the gutters'
    (runtime/gutter.py) and their benchmarks' one reading of a line."""
    return near(lines, colour).mean(axis=-1)


def _whole_lines(band: np.ndarray, colour: np.ndarray, share: Optional[float] = None) -> int:
    """How many lines of `band` (lines, length, 3) from the first are the frame's: `share` (None:
    FRAME_SHARE) or more of their pixels within FRAME_TOLERANCE of `colour`."""
    share = FRAME_SHARE if share is None else share
    for start in range(0, len(band), CHUNK):
        whole = near_share(band[start:start + CHUNK], colour) >= share  # (<= CHUNK,)
        if not whole.all():
            return start + int(np.argmin(whole))
    return len(band)


def border_colour(rgb: np.ndarray) -> np.ndarray:
    """(3,) int16: the median of the picture's outermost pixels, the colour a frame is read in."""
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])  # (2 (H + W), 3)
    return np.median(ring, axis=0).astype(np.int16)


def side_lines(rgb: np.ndarray, colour: np.ndarray, share: Optional[float] = None) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right): the lines of `colour` on each side, read inward (`share` of a
    line's pixels near it, None: FRAME_SHARE), 0 where they are fewer than MIN_LINES or reach DEPTH: the frame's
    sides, before the two-sides and corner rules."""
    h, w = rgb.shape[:2]
    dh, dw = max(1, int(h * DEPTH)), max(1, int(w * DEPTH))
    top, bottom = _whole_lines(rgb[:dh], colour, share), _whole_lines(rgb[::-1][:dh], colour, share)
    left = _whole_lines(rgb[:, :dw].transpose(1, 0, 2), colour, share)  # columns as lines: views, no copy
    right = _whole_lines(rgb[:, ::-1][:, :dw].transpose(1, 0, 2), colour, share)
    # One colour as deep as DEPTH is the picture's background, not a frame around it.
    top, bottom = (n if MIN_LINES <= n < dh else 0 for n in (top, bottom))
    left, right = (n if MIN_LINES <= n < dw else 0 for n in (left, right))
    return top, bottom, left, right


def corners_held(rgb: np.ndarray, colour: np.ndarray, side: int) -> int:
    """How many of the picture's four corner squares, `side` pixels across, hold CORNER_SHARE or
    more of their pixels near `colour`: a frame's lines run the whole way across, corners
    included, while a page's margins end at a band of another colour across its top or bottom."""
    corners = (rgb[:side, :side], rgb[:side, -side:], rgb[-side:, :side], rgb[-side:, -side:])  # 4 x (side, side, 3)
    return sum(float(near_share(c.reshape(-1, 3), colour)) >= CORNER_SHARE for c in corners)


def read_sides(rgb: np.ndarray) -> Tuple[Tuple[int, int, int, int], Optional[int]]:
    """The frame's sides as `side_lines` reads them, all 0 unless two opposite sides have one, or
    two that meet do and the two across from them hold PAINTED_SHARE of its colour (paint crosses
    them), and there the corners in its colour (`corners_held`, squares as wide as the thinnest
    side; else None)."""
    if min(rgb.shape[:2]) < 3:
        return (0, 0, 0, 0), None
    colour = border_colour(rgb)
    sides = side_lines(rgb, colour)
    top, bottom, left, right = sides
    if not ((top and bottom) or (left and right)):  # one side, or two that meet: paint must cross the others
        if not ((top or bottom) and (left or right) and all(side_lines(rgb, colour, PAINTED_SHARE))):
            return (0, 0, 0, 0), None
    return sides, corners_held(rgb, colour, min(n for n in sides if n))


def frame_lines(rgb: np.ndarray) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right): the rows and columns of the picture's frame on each side (module
    docstring), all 0 where it has none.

    Args:
        rgb: (H, W, 3) uint8.
    """
    sides, corners = read_sides(rgb)
    return sides if corners is not None and corners >= MIN_CORNERS else (0, 0, 0, 0)


def photo_box(rgb: np.ndarray) -> Optional[Tuple[slice, slice]]:
    """The photo inside the picture's frame (`frame_lines`): its rows and columns, or None where
    the picture has no frame. A side paint crosses is not a frame's side here: it stays in."""
    top, bottom, left, right = frame_lines(rgb)
    if not (top or bottom or left or right):
        return None
    h, w = rgb.shape[:2]
    return slice(top, h - bottom), slice(left, w - right)


def frame_mask(rgb: np.ndarray, band: int = 0) -> np.ndarray:
    """(H, W) bool: the picture's frame (`frame_lines`), and `band` pixels more inward on each
    side that has one; on a side paint crosses (module docstring), its lines' pixels in the
    frame's colour alone. Read-only where the picture has no frame (`frame_masks`)."""
    return frame_masks(rgb, (band,))[0]


def _sides_read(rgb: np.ndarray) -> Tuple[Tuple[int, int, int, int], Optional[np.ndarray], Tuple[int, int, int, int]]:
    """(the sides as `frame_lines` reads them, the frame's colour or None where no side needed it
    read again, each side as read at PAINTED_SHARE where a side paint crosses is missing, else the
    sides): what `frame_masks` and `frame_region` read a frame by."""
    sides = frame_lines(rgb)
    if not (any(sides) and 0 in sides):
        return sides, None, sides
    colour = border_colour(rgb)
    return sides, colour, side_lines(rgb, colour, PAINTED_SHARE)


def nothing(shape: Tuple[int, int]) -> np.ndarray:
    """(H, W) bool, all False, read-only and holding no memory (one value seen at every pixel):
    the frame of a picture that has none, as most photos, where whole masks of False were a byte
    a pixel each through every step around the graph."""
    return np.broadcast_to(np.False_, shape)


def frame_masks(rgb: np.ndarray, bands: Sequence[int]) -> List[np.ndarray]:
    """`frame_mask` for each of `bands`, the picture's sides read once; read-only and holding no
    memory where the picture has no frame (`nothing`)."""
    h, w = rgb.shape[:2]
    sides, colour, loose = _sides_read(rgb)
    if not any(sides):
        return [nothing((h, w)) for _ in bands]
    painted = np.zeros((h, w), bool)  # on a side paint crosses, its lines' pixels in the frame's colour
    if colour is not None:
        regions = ((slice(0, loose[0]), slice(None)), (slice(h - loose[1], h), slice(None)),
                   (slice(None), slice(0, loose[2])), (slice(None), slice(w - loose[3], w)))
        for n, m, region in zip(sides, loose, regions):
            if not n and m:
                painted[region] |= near(rgb[region], colour)
    masks = []
    for band in bands:
        top, bottom, left, right = (n + band if n else 0 for n in sides)
        out = painted.copy()
        out[:top], out[h - bottom:], out[:, :left], out[:, w - right:] = True, True, True, True
        masks.append(out)
    return masks


def frame_region(rgb: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(the frame's lines (H, W) bool, its colour (3,) int16), or None where the picture has no
    frame: each side's lines as `frame_lines` reads them, a side paint crosses as read at
    PAINTED_SHARE (module docstring), whole (not only their pixels in its colour)."""
    sides, colour, loose = _sides_read(rgb)
    if not any(sides):
        return None
    colour = border_colour(rgb) if colour is None else colour
    top, bottom, left, right = (n or m for n, m in zip(sides, loose))
    h, w = rgb.shape[:2]
    lines = np.zeros((h, w), bool)
    lines[:top], lines[h - bottom:], lines[:, :left], lines[:, w - right:] = True, True, True, True
    return lines, colour
