"""A photo's frame is not paint: no mark is kept in it.

A print scanned with its white border, a photo shared on a white or black matte, a film still
between black bars: the border is one flat colour with a straight edge against a photo, which is
exactly what this model's damage looks like, and the model marks patches of it. Restored, the
frame gets smudges of the photo's colours (the evaluation's whole photos, each framed, JPEG 90:
4 of 12 made worse, 14.5 dB from the input outside the damage at the worst; docs/restoring.md,
"A photo's frame").

So `frame_lines` reads the picture from each side inward: a row (or column) belongs to the frame
while at least `FRAME_SHARE` of its pixels lie within `FRAME_TOLERANCE` levels, in every channel,
of the border's colour (the median of the picture's outermost pixels; the tolerance takes in the
codec's rounding and, near the photo, part of its ringing). It is a frame only where it runs
along two opposite sides at least (top and bottom, or left and right): one side alone is as
likely a clipped sky or a shadow; a side whose colour reaches a third of the way in (`DEPTH`)
is the picture's background, not a frame; and a side of one line (`MIN_LINES`) is an edge (a
screenshot's or a chart's outline) as often as a frame. The restorer then drops the marks' pixels in the frame and
within `BAND` pixels inward of it (`frame_mask(rgb, BAND)`), where the codec rings along the
photo's edge: what the model found there is the frame's edge. A shape painted near the border
is restored up to that band. Chosen on the selection photos, whole and each framed
(benchmarks/photo_eval.py, `framed-jpeg-90`): dropping every mark that touches the frame, whole,
left them 0.777 mask IoU and 27.96 dB (the unframed photos: 0.924 and 33.93), as the frame's
patches join paint near the edge; the band, 0.868 and 30.31, none made worse.

`FRAME_SHARE` was chosen on the selection crops, each in a frame 2, 4 or 8 % of its long side wide
(benchmarks/graphic_shares.py, "framed photo files", its last column): a frame thinner than a
JPEG's colour block takes the photo's colours into its outermost line, which at JPEG 75 holds as
few as 93 % of its pixels near the border's colour, so a frame asked 95 % was missed and its edge
restored (one crop went from 36.5 dB to 20.3; tests/test_runtime_frame.py keeps it). Of two
opposite sides, the one further from the border's colour holds 96 % or more in every framed
file of that benchmark, 77 % at most in every unframed photo file (a crop of sky).

runtime/inset.py leaves the frame and its band out of its colours too: a frame is one colour, which outside a
photo's block would read as a graphic's.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

FRAME_TOLERANCE = 16  # levels from the border's colour, in each channel, of a frame's pixels
FRAME_SHARE = 0.85  # of a row's or column's pixels, those so near that make it the frame's
DEPTH = 1 / 3  # the frame is looked for this far in from each side, at most
BAND = 16  # pixels inward from the frame where its ringing lies: no mark is kept there (a JPEG's colour block)
CHUNK = 16  # lines read at a time: a photo with no frame fails on its first
MIN_LINES = 2  # a side's frame is this many lines at least: a single line of one colour is an edge as often


def near_share(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(...,) float: of each of `lines` (..., length, 3) uint8, the share of its pixels within
    FRAME_TOLERANCE of `colour` in every channel ((3,) or, a colour a line, (..., 1, 3) int16).
    The frame's, the gutters' (runtime/gutter.py) and their benchmarks' one reading of a line."""
    return (np.abs(lines.astype(np.int16) - colour).max(axis=-1) <= FRAME_TOLERANCE).mean(axis=-1)


def _whole_lines(band: np.ndarray, colour: np.ndarray) -> int:
    """How many lines of `band` (lines, length, 3) from the first are the frame's: FRAME_SHARE or
    more of their pixels within FRAME_TOLERANCE of `colour`."""
    for start in range(0, len(band), CHUNK):
        whole = near_share(band[start:start + CHUNK], colour) >= FRAME_SHARE  # (<= CHUNK,)
        if not whole.all():
            return start + int(np.argmin(whole))
    return len(band)


def frame_lines(rgb: np.ndarray) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right): the rows and columns of the picture's frame on each side (module
    docstring), all 0 where it has none.

    Args:
        rgb: (H, W, 3) uint8.
    """
    h, w = rgb.shape[:2]
    if h < 3 or w < 3:
        return 0, 0, 0, 0
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])  # (2 (H + W), 3): the outermost pixels
    colour = np.median(ring, axis=0).astype(np.int16)
    dh, dw = max(1, int(h * DEPTH)), max(1, int(w * DEPTH))
    top, bottom = _whole_lines(rgb[:dh], colour), _whole_lines(rgb[::-1][:dh], colour)
    left = _whole_lines(rgb[:, :dw].transpose(1, 0, 2), colour)  # columns as lines: views, no copy
    right = _whole_lines(rgb[:, ::-1][:, :dw].transpose(1, 0, 2), colour)
    # One colour as deep as DEPTH is the picture's background, not a frame around it.
    top, bottom = (n if MIN_LINES <= n < dh else 0 for n in (top, bottom))
    left, right = (n if MIN_LINES <= n < dw else 0 for n in (left, right))
    if not ((top and bottom) or (left and right)):  # along one side alone: not a frame
        return 0, 0, 0, 0
    return top, bottom, left, right


def frame_mask(rgb: np.ndarray, band: int = 0) -> np.ndarray:
    """(H, W) bool: the picture's frame (`frame_lines`), and `band` pixels more inward on each
    side that has one."""
    h, w = rgb.shape[:2]
    top, bottom, left, right = (n + band if n else 0 for n in frame_lines(rgb))
    out = np.zeros((h, w), bool)
    out[:top], out[h - bottom:], out[:, :left], out[:, w - right:] = True, True, True, True
    return out
