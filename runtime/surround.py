"""Paint differs from what lies around it: a mark the colour of its surroundings is photo.

The damage this model removes is a shape of one random colour painted over the photo, so the
photo just outside a painted mark is, almost everywhere along it, another colour than the mark.
The model's false marks in a lossy file lie where the photo looks like paint's inside: a flat
patch of sky, a lit flat side of a rocket, a flat page beside a framed photo's edge. The photo
just outside such a mark is the same sky, the same white: the mark is the colour of its
surroundings.

So in a file whose colours are not known to be exact (a JPEG, a lossy WebP, a decoded array),
each mark of the final mask (after the paint grow, so that a mark found in part of its paint
has grown over the rest of it and its ring lies in the photo) is read in a ring `NEAR` to `FAR`
pixels outside it, off every other mark: where the median of the ring's pixels' largest channel
distance from the mark's median colour is at most `SAME` levels, the mark is the colour of its
surroundings and is dropped, its pixels the input's. A painted mark that close to the colour
around it is near invisible, so leaving it costs little. In a lossless file the solid check
(runtime/solid.py) reads the paint exactly instead. A ring of fewer than `MIN_RING` pixels (a
mark filling the picture) says nothing, and the mark is kept.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from runtime.fill import dilated
from runtime.pyramid import marks_in_boxes

NEAR = 2  # pixels outside the mark where the ring starts: past the codec's ringing along its edge
FAR = 5  # pixels outside the mark where it ends
SAME = 16  # levels: a ring whose median pixel lies this close to the mark's colour is its colour
MIN_RING = 8  # ring pixels a mark needs to be judged


def ring_distances(rgb: np.ndarray, marked: np.ndarray, mark: np.ndarray) -> Optional[np.ndarray]:
    """(n,) float32: each pixel of the ring around `mark` (h, w bool, within the window `rgb`
    (h, w, 3) and `marked` (h, w) bool, every mark), its largest channel distance from the mark's
    median colour; None where the ring holds under MIN_RING pixels."""
    near = dilated(mark, NEAR)
    ring = dilated(near, FAR - NEAR) & ~near & ~marked  # the FAR dilation continued from the NEAR one
    if ring.sum() < MIN_RING:
        return None
    colour = np.median(rgb[mark], axis=0)
    return np.abs(rgb[ring].astype(np.float32) - colour).max(axis=1)


def ring_contrast(rgb: np.ndarray, marked: np.ndarray, mark: np.ndarray) -> float:
    """The median of `ring_distances`; inf where the ring holds under MIN_RING pixels."""
    distances = ring_distances(rgb, marked, mark)
    return float("inf") if distances is None else float(np.median(distances))


def same_as_surroundings(rgb: np.ndarray, mask: np.ndarray, same: Optional[float] = None) -> np.ndarray:
    """(H, W) bool: the pixels of the marks of `mask` ((H, W) bool or uint8 0/255) whose ring in
    `rgb` ((H, W, 3) uint8) lies within `same` levels (None: SAME) of their colour (module docstring)."""
    same = SAME if same is None else same
    marked = mask > 0
    drop = np.zeros_like(marked)
    if not marked.any():
        return drop
    for box, mark in marks_in_boxes(marked, FAR):  # each mark in its box, FAR pixels around
        if ring_contrast(rgb[box], marked[box], mark) <= same:
            drop[box] |= mark
    return drop
