"""The ring a JPEG's paint left around a found mark: found by saving the mark again, and taken out.

In a user's JPEG the paint was compressed together with the photo: each 8x8 block the paint's
edge crosses rings, and with subsampled chroma its colour bleeds over the edge, so pixels
beside the paint differ from the photo saved alone by more than the file's own noise. Those
pixels are part of the damage (the mask target, restore_core/degrade.py: the shapes and every
pixel the paint moved by more than 8 levels in the saved file). The mask head finds the paint;
the ring looks like the photo's own JPEG texture, and it leaves it. A mask that is exactly the
painted shapes scores a mask IoU of only 0.70 against the damage at quality 75 (0.79 at 90, 0.86
at 95, 4:2:0): the rest is ring (MODEL_CARD.md, "What bounds the mask IoU").

The file says how its paint was compressed: its quantization tables and subsampling. So the
ring can be estimated from the restoration itself. Around each mark, the restored window (the
mark filled) and the same window with the mark's pixels as the file has them are each saved
with the file's own tables and subsampling and decoded again; their difference is what the
paint did to the file there. Where it exceeds `LEVELS` in some channel outside the mask, the
pixel joins the mask, and its value becomes the file's less that difference: the photo as the
file would show it without the paint, its texture kept. Blocks the paint does not reach come out
of both saves the same, so only the blocks around a mark can join it.

It is off by default (`Restorer(jpeg_ringing=True)`, `restore-run --jpeg-ringing`): on the
selection photos it takes the mask IoU at JPEG 75 from 0.675 to 0.726 and the restored pixels
closer to the photo (+0.17 dB at JPEG 75, +0.03 to +0.04 at 90, 95 and 4:4:4, as returned by
`Restorer.restore` or written as PNG), but a JPEG written back with its own tables quantizes the
blocks around each mark again, which by itself takes out most of the ring, and there it moves
the files by -0.03 to +0.05 dB: too little, and not on every kind of file, to be the default
(docs/restoring.md, "A JPEG's ring").

The windows are cut on the file's own block grid (a whole MCU: 16 pixels a side at 4:2:0, in the
orientation the file was coded in, turned back first where EXIF turned the photo) with one MCU
more on each side, so each block is saved as the file saved it. A mark whose window would exceed
`fill.MAX_BOX` pixels is left as found (the marks of a camera-size photo, from its smaller copies);
this bounds the time and memory of this step. Colour JPEGs only (a grey or CMYK file has no
chroma to bleed, and is left as found). `LEVELS` is the mask target's tolerance, and of 4, 6, 8,
12 and 16 levels the one whose mask came closest to the damage on the selection photos; 4 and 6
take the pixels a little closer still (+0.23 dB at JPEG 75 at 4) but flag more than the damage
(mask IoU 0.70 at JPEG 75, 0.72 at 90), 12 and 16 less of both.
"""

from __future__ import annotations

import io
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from runtime.fill import MAX_BOX
from runtime.images import ORIENT, UNTURN
from runtime.pyramid import mark_boxes

LEVELS = 8  # a pixel the saved paint moved by more than this, in some channel, is ring
# (horizontal, vertical) pixels of one MCU by Pillow's subsampling code (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0).
MCU = {0: (8, 8), 1: (16, 8), 2: (16, 16)}


def ringing_applies(qtables: Optional[dict], subsampling: Optional[int], orientation: int = 1) -> bool:
    """Whether a JPEG coded this way gets its ring found: a colour JPEG with its tables known."""
    return bool(qtables) and len(qtables) >= 2 and subsampling in MCU and (orientation == 1 or orientation in ORIENT)


def _grid(lo: int, hi: int, size: int, step: int) -> Tuple[int, int]:
    """[lo, hi) widened by a step each way and out to the block grid (multiples of `step`) of an
    axis of `size` pixels."""
    return max(0, (lo - step) // step * step), min(size, -(-(hi + step) // step) * step)


def _saved(pixels: np.ndarray, params: dict) -> np.ndarray:
    """(h, w, 3) uint8 saved as a JPEG with `params` and decoded again, as int16."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, "JPEG", **params)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def remove_ringing(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, qtables: dict, subsampling: int,
                   orientation: int = 1, levels: int = LEVELS) -> np.ndarray:
    """Find the ring the marks of `mask` left in the file and take the paint out of it (module docstring).

    Args:
        rgb: the decoded JPEG (H, W, 3) uint8, as shown (its EXIF `orientation` applied).
        restored: the restored image (H, W, 3) uint8, the marks filled; the ring's pixels are
            set in place to the file's pixels less what the paint moved them by.
        mask: (H, W) bool or uint8 0/255, the marks found.
        qtables, subsampling: how the file was coded (Pillow's `quantization` and subsampling code).
        orientation: the EXIF orientation `rgb` was turned by (1: as coded).
        levels: the difference, in some channel, that counts as moved.

    Returns:
        (H, W) bool: the ring (none of it in `mask`); `restored` changed there only.
    """
    marked = mask > 0
    if not marked.any() or not ringing_applies(qtables, subsampling, orientation):
        return np.zeros_like(marked)
    if orientation != 1:  # on the file's own grid: views of the arrays turned back, written through
        back = UNTURN[orientation]
        coded = remove_ringing(back(rgb), back(restored), back(marked[..., None])[..., 0], qtables, subsampling,
                               levels=levels)
        return np.ascontiguousarray(ORIENT[orientation](coded[..., None])[..., 0])
    ring = np.zeros_like(marked)
    step_x, step_y = MCU[subsampling]
    params = {"qtables": qtables, "subsampling": subsampling}
    h, w = marked.shape
    for r0, r1, c0, c1 in mark_boxes(marked)[1:]:
        y0, y1 = _grid(int(r0), int(r1), h, step_y)
        x0, x1 = _grid(int(c0), int(c1), w, step_x)
        if (y1 - y0) * (x1 - x0) > MAX_BOX:
            continue  # a camera-size mark: left as found (module docstring)
        inside, window, out = marked[y0:y1, x0:x1], rgb[y0:y1, x0:x1], restored[y0:y1, x0:x1]
        painted = np.where(inside[..., None], window, out)  # (h, w, 3): the marks as the file has them
        moved = _saved(painted, params) - _saved(out, params)  # (h, w, 3) int16
        mine = (np.abs(moved).max(axis=-1) > levels) & ~inside & ~ring[y0:y1, x0:x1]  # (h, w)
        out[mine] = np.clip(window[mine].astype(np.int16) - moved[mine], 0, 255).astype(np.uint8)  # a view: in place
        ring[y0:y1, x0:x1] |= mine
    return ring
