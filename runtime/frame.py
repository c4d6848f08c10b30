"""A photo's frame is not paint: marks that reach it are dropped.

A print scanned with its white border, a photo shared on a white or black matte, a film still
between black bars: the border is one flat colour with a straight edge against a photo, which is
exactly what this model's damage looks like, and the model marks patches of it. Restored, the
frame gets smudges of the photo's colours (the evaluation's whole photos, each framed, JPEG 90:
4 of 12 made worse, the frame 14.5 dB from its input at the worst; docs/restoring.md, "A photo's
frame").

So `frame_lines` reads the picture from each side inward: a row (or column) belongs to the frame
while at least `FRAME_SHARE` of its pixels lie within `FRAME_TOLERANCE` levels, in every channel,
of the border's colour (the median of the picture's outermost pixels; the tolerance takes in the
codec's rounding and, near the photo, part of its ringing). It is a frame only where it runs
along two opposite sides at least (top and bottom, or left and right): one side alone is as
likely a clipped sky or a shadow. `framed_marks` finds every mark that touches the frame, and
the restorer drops them
whole: a mark there is the frame's edge, and one that runs on into the photo is that edge's
ringing. A shape painted across the border is left as it is (not restored, never made worse).

runtime/inset.py leaves the frame out of its colours too: a frame is one colour, which outside a
photo's block would read as a graphic's.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from runtime.pyramid import label_with_boxes

FRAME_TOLERANCE = 16  # levels from the border's colour, in each channel, of a frame's pixels
FRAME_SHARE = 0.95  # of a row's or column's pixels, those so near that make it the frame's
DEPTH = 1 / 3  # the frame is looked for this far in from each side, at most


CHUNK = 16  # lines read at a time: a photo with no frame fails on its first


def _whole_lines(band: np.ndarray, colour: np.ndarray) -> int:
    """How many lines of `band` (lines, length, 3) from the first are the frame's: FRAME_SHARE or
    more of their pixels within FRAME_TOLERANCE of `colour`."""
    for start in range(0, len(band), CHUNK):
        lines = band[start:start + CHUNK].astype(np.int16)  # (<= CHUNK, length, 3)
        whole = (np.abs(lines - colour).max(axis=-1) <= FRAME_TOLERANCE).mean(axis=1) >= FRAME_SHARE
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
    if not ((top and bottom) or (left and right)):  # along one side alone: not a frame
        return 0, 0, 0, 0
    return top, bottom, left, right


def frame_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: the picture's frame (`frame_lines`)."""
    h, w = rgb.shape[:2]
    top, bottom, left, right = frame_lines(rgb)
    out = np.zeros((h, w), bool)
    out[:top], out[h - bottom:], out[:, :left], out[:, w - right:] = True, True, True, True
    return out


def framed_marks(mask: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(H, W) bool: the marks of `mask` (H, W, bool or 0/255; 8-connected) that touch `frame`
    (H, W bool), whole."""
    marked = mask > 0
    if not (marked & frame).any():
        return np.zeros_like(marked)
    labels, _count, _boxes = label_with_boxes(marked)
    return np.isin(labels, np.unique(labels[marked & frame])) & marked
