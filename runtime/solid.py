"""In a lossless file paint is solid: a mark with no solid colour is not paint, and one whose
edge is not solid was resized after it was painted.

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

A painted mark's edge is solid too: where a shape was painted on the picture as it is, the mask's
rim pixels (those with an unmasked neighbour) are still the paint's colour. Where the picture was resized after it
was painted, the resampling blended the paint's edge with the photo and rang a pixel or two past
it, so the rim pixels are blends and the paint reaches beyond the mask. So a kept mark of at
least `MIN_RIM` rim pixels of which under `EDGE_SHARE` lie within `TOLERANCE` of its colour is
grown by a pixel (8-connected), and the grown pixels, which hold paint, take the smooth fill
alone (as a mark grown over its paint does, runtime/paint_grow.py). Chosen on the selection
photos through the real `restore-run` (benchmarks/results/selection5-soft-edges.md against
selection5-resized.md): of 0.1, 0.2, 0.3, 0.5 and 0.7, the largest that changed no painted PNG
(the mask IoU of PNG crops fell from 0.3 on) was 0.2: crops resized to 3/4 after painting
+1.99 dB (29.03 to 31.02, 13 files closer, 6 further by 0.06-0.76 dB), every other kind
unchanged. Growing two pixels instead gained less (+1.85 dB at 0.3, the mask IoU down 0.05).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from runtime.fill import dilated
from runtime.pyramid import label_with_boxes

TOLERANCE = 2  # levels from the mark's commonest colour (the largest of the three channels)
SHARE = 0.1  # of a mark's pixels that must lie within TOLERANCE of that colour
EDGE_SHARE = 0.2  # of a mark's rim pixels within TOLERANCE of its colour, under which it is grown
MIN_RIM = 8  # rim pixels a mark needs for its edge to be judged


def colour_keys(pixels: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) int32: one number per colour, to count colours with np.unique."""
    p = pixels.astype(np.int32)
    return (p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]


def commonest(pixels: np.ndarray) -> Tuple[np.ndarray, int]:
    """(n, 3) uint8, n > 0 -> (its commonest colour (3,) int32, how many pixels hold it exactly)."""
    values, counts = np.unique(colour_keys(pixels), return_counts=True)
    top = int(values[counts.argmax()])
    return np.array([top >> 16, (top >> 8) & 255, top & 255], np.int32), int(counts.max())


def _near_commonest(pixels: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 -> (n,) bool: which pixels lie within `TOLERANCE` of their commonest colour."""
    colour, _ = commonest(pixels)
    return np.abs(pixels.astype(np.int32) - colour).max(axis=1) <= TOLERANCE


def solid_share(pixels: np.ndarray) -> float:
    """(n, 3) uint8 -> the share of the pixels within `TOLERANCE` of their commonest colour."""
    return float(_near_commonest(pixels).mean()) if len(pixels) else 0.0


def judge_marks(rgb: np.ndarray, mask: np.ndarray, share: float = SHARE,
                edge_share: float = EDGE_SHARE) -> Tuple[np.ndarray, np.ndarray]:
    """The marks of `mask` with no solid colour in `rgb`, and the pixel around each kept mark whose
    edge is not solid (module docstring).

    Args:
        rgb: the input (H, W, 3) uint8, as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found (8-connected).
        share: the least share of a mark's pixels near its commonest colour; 0 drops nothing.
        edge_share: the least share of a mark's rim pixels near that colour; 0 grows nothing.

    Returns:
        (drop, grow): (H, W) bool each, the pixels of the marks to drop, and the unmasked pixels
        to add around the marks whose edge was resampled.
    """
    marked = mask > 0
    drop, grow = np.zeros_like(marked), np.zeros_like(marked)
    if not marked.any():
        return drop, grow
    labels, _count, boxes = label_with_boxes(marked)
    h, w = marked.shape
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:], start=1):
        y0, y1, x0, x1 = max(0, r0 - 1), min(h, r1 + 1), max(0, c0 - 1), min(w, c1 + 1)  # with a pixel around
        mark = labels[y0:y1, x0:x1] == i  # (y1 - y0, x1 - x0): this mark in its box
        near = np.zeros_like(mark)
        near[mark] = _near_commonest(rgb[y0:y1, x0:x1][mark])
        if near[mark].mean() < share:
            drop[y0:y1, x0:x1] |= mark
            continue
        rim = mark & dilated(~mark)  # the mark's pixels with an unmasked neighbour (none at the image's border)
        if rim.sum() >= MIN_RIM and (near & rim).sum() < edge_share * rim.sum():
            grow[y0:y1, x0:x1] |= dilated(mark) & ~marked[y0:y1, x0:x1]
    return drop, grow
