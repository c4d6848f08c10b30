"""Paint is paint in a mirror too: a mark no mirrored view finds again is photo.

A painted shape is paint whichever way the picture is turned: the network, shown the patch
around a painted mark flipped left to right or top to bottom, finds it again. The model's false
marks in a lossy file are not like that. They lie where the photo's block noise and ringing, or
a smooth lit object, sit just past the mask head's threshold in the one view the graph read, and
a mirrored view of the same pixels, whose noise meets the network's filters the other way round,
falls short of it.

So in a file whose colours are not known to be exact (a JPEG, a lossy WebP, a decoded array),
each mark of the final mask whose box is at most `MAX_SIDE` pixels a side is read again: the
patch around it (`PAD` pixels of photo on every side, the network's view of its surroundings)
is run through the graph flipped left to right and flipped top to bottom, one call of two
views, and the masks flipped back. Where neither view marks a single pixel of the mark, it is
dropped, its pixels the input's. A mark larger than `MAX_SIDE` is kept unread: the false marks
are small, and a large patch costs a call of its size. So are the marks past the first
`MAX_READ` of a picture, which bounds what the check may cost (the selection's lossy files hold
six marks at most).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from runtime.pyramid import marks_in_boxes

PAD = 48  # pixels of photo around the mark in each view
MAX_SIDE = 256  # pixels: a mark whose box is larger a side is kept without a look
MAX_READ = 64  # marks read in one picture at most (each one call of two views); the rest are kept

# (N, h, w, 3) uint8 views -> (N, h, w) bool masks: the graph (`Restorer.masks`).
Masks = Callable[[np.ndarray], np.ndarray]


def views(patch: np.ndarray) -> np.ndarray:
    """(2, h, w, 3): `patch` (h, w, 3) flipped left to right and top to bottom."""
    return np.stack([patch[:, ::-1], patch[::-1]])


def flipped_back(masks: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The masks of `views` ((2, h, w) bool) flipped back onto the patch."""
    return masks[0][:, ::-1], masks[1][::-1]


def within(mark: np.ndarray, max_side: Optional[int]) -> bool:
    """Whether `mark` ((h, w) bool) spans at most `max_side` pixels each way (None: any size)."""
    if max_side is None:
        return True
    rows, cols = np.flatnonzero(mark.any(axis=1)), np.flatnonzero(mark.any(axis=0))
    return rows[-1] - rows[0] < max_side and cols[-1] - cols[0] < max_side


def not_found_mirrored(rgb: np.ndarray, mask: np.ndarray, masks: Masks,
                       drop: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W) bool: the pixels of the marks of `mask` ((H, W) bool or uint8 0/255) that no
    mirrored view of `rgb` ((H, W, 3) uint8) finds again (module docstring); `masks` runs the graph.
    `drop` ((H, W) bool): marks already dropped, which are not read; the marks found are added to
    it in place (no second whole-picture array beside it), and it is returned."""
    marked = mask > 0
    drop = np.zeros_like(marked) if drop is None else drop
    if not marked.any():
        return drop
    read = 0
    for box, mark in marks_in_boxes(marked, PAD):
        if not within(mark, MAX_SIDE) or drop[box][mark].any():
            continue
        if read == MAX_READ:
            break
        read += 1
        left_right, top_bottom = flipped_back(masks(np.ascontiguousarray(views(rgb[box]))))
        if not ((left_right & mark).any() or (top_bottom & mark).any()):
            drop[box] |= mark
    return drop
