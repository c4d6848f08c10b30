"""What the steps around the graph do to its marks: drop them, hold them, give them back.

`Restorer.after_graph` runs the checks (runtime/frame.py, runtime/gutter.py, runtime/solid.py,
runtime/surround.py, runtime/mirrored.py, ...); each check says which pixels are not paint or
which go back, and these functions carry that out on the restored image (H, W, 3) uint8 and the
mask (H, W) uint8 0/255. A dropped pixel takes the input's value, as where nothing was found, so
an image whose every mark is dropped comes back as it came.

Dropping works in place: a new image and mask beside the old ones were a 200 Mpx photo's peak
(0.8 GB more), as the smaller copies' fill is added in place (runtime/pyramid.py).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from runtime.fill import BLEND, EXACT_EDGE, even_fill
from runtime.frame import BAND as FRAME_BAND
from runtime.frame import nothing
from runtime.frame_paint import frame_coloured, painted_pieces, rejoined
from runtime.gutter import gutter_boxes
from runtime.paint_grow import blend_rims, grow_over_paint, put_patches
from runtime.pyramid import Added
from runtime.solid import judge_marks

Held = Tuple[np.ndarray, np.ndarray]  # pixels (H, W) bool, their fill (n, 3) uint8


def dropped(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray,
            drop: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The marks' pixels in `drop` (H, W bool) dropped: their pixels the input's `rgb`, as where
    nothing was found. In place."""
    np.copyto(restored, rgb, where=drop[..., None])
    mask[drop] = 0
    return restored, mask


def unframed(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray,
             frame: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The marks' pixels in the picture's `frame` (H, W bool, with the band inward of it)
    dropped, their pixels the input's (runtime/frame.py)."""
    if not frame.any():
        return restored, mask
    drop = (mask > 0) & frame
    return dropped(rgb, restored, mask, drop) if drop.any() else (restored, mask)


def judge_solid(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The marks with no solid colour dropped (runtime/solid.py), their pixels the input's as
    where nothing was found, and the pixels to grow around marks whose edge is not solid (H, W)
    bool (the judgement's drop is not kept: a byte a pixel through the steps that follow)."""
    judged = judge_marks(rgb, mask)
    if judged.drop.any():
        restored, mask = dropped(rgb, restored, mask, judged.drop)
    return restored, mask, judged.grow


def gutter_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: a collage's gutters and the band along them (runtime/gutter.py)."""
    boxes = gutter_boxes(rgb, FRAME_BAND)
    if not boxes:
        return nothing(rgb.shape[:2])  # no collage, as most photos: no memory held
    gutters = np.zeros(rgb.shape[:2], bool)
    for top, bottom, left, right in boxes:
        gutters[top:bottom, left:right] = True
    return gutters


def held_in_frame(restored: np.ndarray, mask: np.ndarray, frame: np.ndarray) -> Optional[Held]:
    """What the graph found in the picture's `frame` and its band ((H, W) bool): its pixels
    (H, W) bool and their fill (n, 3), or None where it found nothing there."""
    pixels = (mask > 0) & frame
    return (pixels, restored[pixels]) if pixels.any() else None


def rejoin_held(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, held: Optional[Held],
                edge: np.ndarray, gutters: np.ndarray, border: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The `held` pixels (`held_in_frame`) that go back, with the graph's fill: each piece that
    touches a kept mark and no `gutters`, clear of the frame's `edge` or beside a mark large enough
    (runtime/frame_paint.py, `rejoined`), and the paint of each piece that holds paint on its own
    (`painted_pieces`; `border`, the frame itself); all (H, W) bool."""
    if held is None:
        return restored, mask
    pixels, fill = held
    back = rejoined(rgb, pixels, mask, edge, gutters) if mask.any() else np.zeros_like(pixels)
    back |= painted_pieces(rgb, pixels, np.where(back, np.uint8(255), mask), border, gutters)
    if not back.any():
        return restored, mask
    restored = restored.copy()
    restored[back] = fill[back[pixels]]  # back lies within pixels: the same row-major order
    return restored, np.where(back, np.uint8(255), mask)


def paint_around(rgb: np.ndarray, mask: np.ndarray, resampled: Optional[np.ndarray], frame: np.ndarray,
                 grow_flat: bool = True) -> Optional[np.ndarray]:
    """The unmasked pixels that hold paint (H, W) bool, or None: each flat mark grown over its
    paint (runtime/paint_grow.py; where `grow_flat`) and the pixel around each mark whose edge was
    resampled (`resampled`, (H, W) bool, from `judge_solid`); none in the picture's `frame` (H, W bool)."""
    grown = grow_over_paint(rgb, mask) if grow_flat else np.zeros(mask.shape, bool)
    if resampled is not None:
        grown |= resampled & (mask == 0)
    grown &= ~frame
    return grown if grown.any() else None


def filled(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, grown: Optional[np.ndarray], exact: bool,
           coarse: List[Added], border: np.ndarray, region: Optional[Tuple[np.ndarray, np.ndarray]],
           even: bool = True, unblend: bool = False, keep_out: Optional[np.ndarray] = None) -> np.ndarray:
    """`restored` with the fill inside the mask evened out where `even` (runtime/fill.py; the `grown`
    pixels, which hold paint, take the smooth fill alone, `even` or not; where the file's colours are
    `exact`, the smooth fill alone near each mark's edge; the `border`, the frame, not read), and the
    marks' pixels in the frame's lines in its colour (`region`, runtime/frame_paint.py, `frame_coloured`).
    Where `unblend`, each flat mark's blends with the photo around it, none in `keep_out` (H, W)
    bool, the frame, join `mask` (in place) first, so that the fill reads past them, and then take
    their own values unblended (runtime/paint_grow.py, `blend_rims`)."""
    rims, patches = blend_rims(rgb, mask, keep_out) if unblend and mask.any() else (None, [])
    if patches:  # filled smooth as grown pixels are, for the fill's sake, then given their own values
        grown = rims if grown is None else grown | rims
    if even or grown is not None:
        restored = even_fill(rgb, restored, mask, blend=BLEND if even else 1.0, smooth_only=grown,
                             edge=EXACT_EDGE if even and exact else 0, coarse=coarse, unread=border)
    if region is not None:  # paint across the frame: the frame's colour, not the photo's
        restored = frame_coloured(restored, mask, *region)
    if patches:
        restored = restored if restored.flags.writeable and restored is not rgb else restored.copy()
        put_patches(restored, patches)
    return restored
