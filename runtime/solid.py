"""In a lossless file paint is solid: a mark with no solid colour is not paint, one whose edge is
not solid was resized after it was painted, and past a sharp paint's edge lies photo.

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

Past a sharp paint's edge lies photo, but the final mask can reach over it: the model's mark often
runs a pixel or more past the paint, and paint grow (runtime/paint_grow.py), which takes every
pixel within 16 levels of the paint because a JPEG's paint carries noise, can take photo near the
paint's colour (on a selection PNG, a dark blue disc grew over 1,260 pixels of the dark cloud
beside it). So, after the grow, each mark keeps its paint and `KEEP` pixel around it (an
anti-aliased edge's blends) and drops the rest, its pixels the input's (`beyond_paint`). Its paint
is the pixels within `TOLERANCE` of its colours (`paint_colours` of what the mask found of it: the
commonest, then each next commonest that `MIN_PAINT` pixels hold exactly, up to `PAINTS`, for
shapes of several colours painted touching) that what was found reaches through pixels of those
colours, so that photo of the paint's colour past a gap stays photo. Only where every edge in the
picture is sharp: a picture resized after it was painted has each edge blended into a band, which
is damage too, and there the pixels just outside the paint are blends, nearer its colour than
those a pixel further out. An edge is sharp when the median distance from the paint of the pixels
just outside it is at least `SHARP` times that of the pixels a pixel further out; on the selection
photos' PNG crops (`--per-photo 12`) each picture's least such ratio was 0.73 or more as painted
(0.82 but for one) and 0.65 or less where resized after painting (0.19 but for one).

Chosen on the selection photos through the real `restore-run` (`python -m benchmarks.photo_eval
--photos selection --per-photo 12 --formats png,png-resized,clean-png,clean-graphics-png`,
benchmarks/results/selection12-exact-paint.md against selection12-exact-paint-before.md): PNG
crops mask IoU 0.976 -> 0.986 and 32.47 -> 32.53 dB, 15 files nearer (that disc's crop 0.504 ->
0.971, +0.94 dB), 4 further by 0.01-0.07 dB (the membrane fill reads a mark's new edge); resized
PNG crops, clean photos and graphics unchanged. Tried and not kept: the trim in every picture
(resized crops -5.18 dB at `KEEP` 1, -0.68 at 2: their blends left as they were); the trim before
the grow, with the grow over the paint's exact colour alone (resized crops -0.46 dB); the trim of
each mark whose own edge is sharp, at 0.8 or 0.85 (resized crops -0.07 dB: a light blue square on
a dark sky, its edge's ratio 0.85, lost 3.88 dB), so one blended edge tells a resized picture.
`KEEP` 1 against 2, trimming every picture: PNG crops' mask IoU 0.986 against 0.984.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from runtime.fill import dilated
from runtime.pyramid import label_with_boxes, marks_in_boxes

TOLERANCE = 2  # levels from the mark's commonest colour (the largest of the three channels)
SHARE = 0.1  # of a mark's pixels that must lie within TOLERANCE of that colour
EDGE_SHARE = 0.2  # of a mark's rim pixels within TOLERANCE of its colour, under which it is grown
MIN_RIM = 8  # rim pixels a mark needs for its edge to be judged
PAINTS = 8  # the most paints one mark is read as (shapes of different colours that touch)
KEEP = 1  # pixels beyond its paint a mark keeps (a blended or anti-aliased edge)
SHARP = 0.7  # an edge's pixels at least this share as far from its paint as those a pixel further out
MIN_PAINT = 16  # pixels of exactly one colour, beside a mark's commonest, that make another paint


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
    return near_colours(pixels, [commonest(pixels)[0]])


def paint_colours(pixels: np.ndarray) -> List[np.ndarray]:
    """(n, 3) uint8, a mark's pixels -> its paints' colours, (3,) int32 each.

    Its commonest colour is a paint; so is the commonest of the pixels left (those not within
    `TOLERANCE` of a paint), while at least `MIN_PAINT` pixels hold it exactly, up to `PAINTS`
    (shapes of different colours painted touching: a small one beside a large one is a paint too)."""
    colours: List[np.ndarray] = []
    left = pixels
    while len(left) and len(colours) < PAINTS:
        colour, count = commonest(left)
        if colours and count < MIN_PAINT:
            break
        colours.append(colour)
        left = left[~near_colours(left, colours[-1:])]
    return colours


def distance(pixels: np.ndarray, colours: List[np.ndarray]) -> np.ndarray:
    """(n, 3) uint8 -> (n,) int16: each pixel's distance (largest channel) from the nearest of
    `colours` (one or more). A channel at a time, in int16: a mark of millions of pixels (a
    picture's whole sky) took 36 bytes a pixel in int32 copies of all three channels."""
    nearest = None
    for colour in colours:
        far = np.zeros(len(pixels), np.int16)
        for channel in range(3):
            np.maximum(far, np.abs(pixels[:, channel].astype(np.int16) - np.int16(colour[channel])), out=far)
        nearest = far if nearest is None else np.minimum(nearest, far, out=nearest)
    return nearest


def near_colours(pixels: np.ndarray, colours: List[np.ndarray]) -> np.ndarray:
    """(n, 3) uint8 -> (n,) bool: which pixels lie within `TOLERANCE` of one of `colours`."""
    return distance(pixels, colours) <= TOLERANCE


def solid_share(pixels: np.ndarray) -> float:
    """(n, 3) uint8 -> the share of the pixels within `TOLERANCE` of their commonest colour."""
    return float(_near_commonest(pixels).mean()) if len(pixels) else 0.0


class Judged(NamedTuple):
    """What `judge_marks` found, each (H, W) bool."""

    drop: np.ndarray  # the pixels of the marks with no solid colour
    grow: np.ndarray  # the unmasked pixels around each kept mark whose edge was resampled


def judge_marks(rgb: np.ndarray, mask: np.ndarray, share: float = SHARE,
                edge_share: float = EDGE_SHARE) -> Judged:
    """The marks of `mask` with no solid colour in `rgb`, and the pixel around each kept mark whose
    edge is not solid (module docstring).

    Args:
        rgb: the input (H, W, 3) uint8, as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found (8-connected).
        share: the least share of a mark's pixels near its commonest colour; 0 drops nothing.
        edge_share: the least share of a mark's rim pixels near that colour; 0 grows nothing.
    """
    marked = mask > 0
    judged = Judged(*(np.zeros_like(marked) for _ in range(2)))
    if not marked.any():
        return judged
    for box, mark in marks_in_boxes(marked, 1):  # each mark in its box, with a pixel around
        near = np.zeros_like(mark)
        near[mark] = _near_commonest(rgb[box][mark])
        if near[mark].mean() < share:
            judged.drop[box] |= mark
            continue
        rim = mark & dilated(~mark)  # the mark's pixels with an unmasked neighbour (none at the image's border)
        if rim.sum() >= MIN_RIM and (near & rim).sum() < edge_share * rim.sum():
            judged.grow[box] |= dilated(mark) & ~marked[box]
    return judged


def sharp_edge(window: np.ndarray, paint: np.ndarray, colours: List[np.ndarray]) -> Optional[bool]:
    """Whether the paint's edge in `window` (h, w, 3) is as painted, not resampled: the pixels
    just outside `paint` ((h, w) bool, 2 pixels or more from the window's border) are as far from
    its colours as those a pixel further out (the first median at least `SHARP` times the
    second), not blends between the two. None where that cannot be told (no such pixels, or those
    a pixel further out of the paint's colour)."""
    first = dilated(paint) & ~paint
    second = dilated(paint, 2) & ~dilated(paint)
    if not first.any() or not second.any():
        return None
    near, far = np.median(distance(window[first], colours)), np.median(distance(window[second], colours))
    return bool(near >= SHARP * far) if far > 0 else None


def beyond_paint(rgb: np.ndarray, mask: np.ndarray, found: np.ndarray, keep: Optional[int] = None) -> np.ndarray:
    """In a picture whose paint edges are all sharp (`sharp_edge`: not resized after it was
    painted), the pixels of each mark of `mask` more than `keep` pixels (8-connected; None:
    `KEEP`) from its paint, (H, W) bool: in a lossless file nothing there was painted over. A
    mark's paint is the pixels of its colours (`paint_colours` of what was `found` of it, (H, W)
    bool: the marks before they grew over pixels near their colour) that what was found reaches
    through pixels of those colours. In a picture resized after it was painted every edge is
    blended, and the blends are damage too: nothing is returned."""
    keep = KEEP if keep is None else keep
    marked = mask > 0
    beyond = np.zeros_like(marked)
    if not marked.any():
        return beyond
    for box, mark in marks_in_boxes(marked, 2):  # each mark in its box, 2 pixels around
        window = rgb[box]
        seed = mark & found[box]
        colours = paint_colours(window[seed if seed.any() else mark])
        near = np.zeros_like(mark)
        near[mark] = near_colours(window[mark], colours)
        pieces, _n, _boxes = label_with_boxes(near)
        reached = np.unique(pieces[near & seed])
        paint = np.isin(pieces, reached[reached > 0])  # the pieces of its colours what was found reaches
        if sharp_edge(window, paint, colours) is False:
            return np.zeros_like(marked)  # resized after it was painted
        beyond[box] |= mark & ~dilated(paint, keep)
    return beyond
