"""In a lossless file, a mark with no solid colour is not paint: it is left as it was.

The damage this model removes is paint: shapes of one flat colour drawn over the photo (the
reference design's random squares and circles of random colours). A file that keeps its colours
exactly (PNG, BMP, GIF, lossless WebP, a TIFF not compressed as JPEG) keeps that paint exactly too: most of a painted
mark's pixels are its colour, to the level, and only its edge (and, where the picture was
resized after it was painted, a band the resampling rings in) differs. A patch of photo the mask
takes for paint (in the selection photos, printed graphics on a package) has no such core: in
the false marks of the selection photos' PNG files, at most 9 % of the pixels lay within
`TOLERANCE` of the mark's commonest colour, against at least 42 % in every painted one.

So in a lossless file each mark the full-size pass found is kept only if at least `SHARE` of its
pixels lie within `TOLERANCE` levels (the largest of the three channels) of its commonest colour;
the others are dropped before anything else reads the mask, and their pixels keep the input's. A
lossy file's paint carries the codec's noise (a JPEG's block noise, a WebP's smoothing), so
there the rule does not apply; nor where whether the file was lossless is not known (an array
handed to `Restorer.restore`, a Pillow WebP). It is the shipped model's rule: a model of one's
own may be trained on damage that is not solid paint, so `Restorer` applies it to the shipped
weights unless told otherwise (`solid_check`, restore-run's `--solid-check/--no-solid-check`).

Chosen on the selection photos (`python -m benchmarks.solid_marks --photos selection`,
benchmarks/results/solid-marks-selection.md: whole photos painted with 2-8 shapes of 1-12 % of
the side, as they are and resized to 3/4 and 1/2 after painting, clean photos, and photo_eval's
crops, painted and clean). The false marks held at most 9 %; the painted ones at least 42 % as
painted, and where the picture was resized after painting 7 % at the least (a 41-pixel mark at
1/2, the one painted mark of 268 under `SHARE`, so left unrestored), the next 18 %.
"""

from __future__ import annotations

import numpy as np

from runtime.pyramid import label_with_boxes

TOLERANCE = 2  # levels from the mark's commonest colour (the largest of the three channels)
SHARE = 0.1  # of a mark's pixels that must lie within TOLERANCE of that colour


def solid_share(pixels: np.ndarray) -> float:
    """(n, 3) uint8 -> the share of the pixels within `TOLERANCE` of their commonest colour."""
    if len(pixels) == 0:
        return 0.0
    p = pixels.astype(np.int32)
    key = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    values, counts = np.unique(key, return_counts=True)
    top = int(values[counts.argmax()])
    colour = np.array([top >> 16, (top >> 8) & 255, top & 255], np.int32)
    return float((np.abs(p - colour).max(axis=1) <= TOLERANCE).mean())


def unsolid_marks(rgb: np.ndarray, mask: np.ndarray, share: float = SHARE) -> np.ndarray:
    """The marks of `mask` with no solid colour in `rgb` (module docstring).

    Args:
        rgb: the input (H, W, 3) uint8, as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found (8-connected).
        share: the least share of a mark's pixels near its commonest colour; 0 drops nothing.

    Returns:
        (H, W) bool: the pixels of the marks to drop.
    """
    marked = mask > 0
    drop = np.zeros_like(marked)
    if share <= 0 or not marked.any():
        return drop
    labels, _count, boxes = label_with_boxes(marked)
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:], start=1):
        mark = labels[r0:r1, c0:c1] == i  # (r1 - r0, c1 - c0): this mark in its box
        if solid_share(rgb[r0:r1, c0:c1][mark]) < share:
            drop[r0:r1, c0:c1] |= mark
    return drop
