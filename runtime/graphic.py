"""The graphic check: where the marks lie on a chart, a screen or a page, not a photo, they stay.

The shipped model's damage is paint, solid shapes of one colour, and a graphic's bars, panels,
boxes and highlighted cells are solid shapes of one colour too: restored, a chart loses its bars
and a spreadsheet its highlights. So once the full-size pass has found marks, the picture around
them is read on a grid (runtime/flat.py), and it is taken for a graphic when either

- at least `flat.GRAPHIC_SHARE` of it is flat colour or a straight gradient and under
  `flat.TEXTURE_SHARE` lies in texture (a chart, a screen, a slide or a poster, as PNG or JPEG), or
- the same, with gradients straight within `flat.COARSE_SHADE_TOLERANCE` levels (a slide or a
  poster in a coarse JPEG or a lossy WebP, whose codec bends its gradient past a level), and under
  `flat.COARSE_TEXTURE_SHARE` in texture among the pixels not of exactly flat colour: a photo's
  sky is as straight as that in a coarse file, and a photo painted over a large area, whose
  paint's flat inside lowers its texture share, is still mostly texture around the paint, or
- much of it holds one of its few commonest colours, and not all of that one colour (a spreadsheet
  or a page of dense text in a lossy file, where the codec's ringing leaves nothing flat:
  runtime/palette.py), or
- its texture lies in one block and around that block it is drawn in a few colours (a slide, a
  page or a chart that holds a photo: runtime/inset.py).

Then every mark is dropped and the file comes back as it was, with a note that says why. A
painted graphic is not restored either: the model knows photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from runtime.flat import (
    COARSE_SHADE_TOLERANCE,
    COARSE_TEXTURE_SHARE,
    GRAPHIC_SHARE,
    SHADE_TOLERANCE,
    TEXTURE_SHARE,
    grid_share,
    grids,
    shade_tolerance,
    texture_grid,
    texture_share,
)
from runtime.inset import inset_shares, photo_inset
from runtime.palette import COLOURS, few_colours, palette_shares

NOTE_START = "a graphic, not a photo: left as it was"


@dataclass(frozen=True)
class Shares:
    """What the check read around the marks, each a share of the grid pixels read (one a count)."""

    flat: float  # flat colour or a straight gradient
    texture: float  # in texture: not flat, nor any of the eight around
    coarse_flat: float  # flat colour or a gradient straight within COARSE_SHADE_TOLERANCE
    coarse_texture: float  # so read, in texture, as a share of the pixels not exactly flat
    top: float  # in its COLOURS commonest colours
    others: float  # of those not in the commonest colour, in the next COLOURS
    inset_top: float  # top, outside the block that holds the texture
    inset_others: float  # others, so read
    inset_read: int  # how many grid pixels lie outside that block and the frame (none read under inset.MIN_READ)

    @property
    def graphic(self) -> bool:
        return ((self.flat >= GRAPHIC_SHARE and self.texture < TEXTURE_SHARE)
                or (self.coarse_flat >= GRAPHIC_SHARE and self.coarse_texture < COARSE_TEXTURE_SHARE)
                or few_colours(self.top, self.others) or photo_inset(self.inset_top, self.inset_others))


def read_shares(rgb: np.ndarray, mask: np.ndarray, tolerance: int = SHADE_TOLERANCE,
                frame: Optional[np.ndarray] = None) -> Shares:
    """The shares of the picture around the marks.

    Args:
        rgb: (H, W, 3) uint8, the picture as the file holds it.
        mask: (H, W) bool or uint8 0/255, the marks found.
        tolerance: the levels a straight gradient's second difference may reach in this file
            (`flat.shade_tolerance`).
        frame: (H, W) bool, the picture's frame and its band (`frame.frame_mask(rgb, frame.BAND)`),
            where the caller has read it already; None: read here.
    """
    exact, bend, read = grids(rgb, mask)
    flat, coarse = exact | (bend <= tolerance), exact | (bend <= COARSE_SHADE_TOLERANCE)
    unflat = 1.0 - grid_share(exact, read)  # of the pixels read, those not exactly flat
    coarse_texture = texture_share(coarse, read) / unflat if unflat > 0 else 0.0
    texture = texture_grid(flat)
    return Shares(grid_share(flat, read), grid_share(texture, read), grid_share(coarse, read), coarse_texture,
                  *palette_shares(rgb, read), *inset_shares(rgb, read, texture, frame))


def graphic_marks(rgb: np.ndarray, mask: np.ndarray, qtables: Optional[Dict[int, Sequence[int]]],
                  frame: np.ndarray, notes: Optional[List[str]] = None) -> bool:
    """Whether the marks found (`mask`, (H, W) uint8 0/255) lie on a graphic, not a photo (a JPEG
    whose `qtables` are fine has its gradients straight within more levels, `flat.shade_tolerance`;
    `frame`, the picture's frame and its band, read once); if so, why, added to `notes`."""
    if not mask.any():
        return False
    shares = read_shares(rgb, mask, shade_tolerance(qtables), frame)
    if shares.graphic and notes is not None:
        notes.append(graphic_note(shares))
    return shares.graphic


def graphic_note(shares: Shares) -> str:
    """The report's note for a picture left as it is because it is a graphic."""
    return (f"{NOTE_START} (around what was found, {shares.flat:.0%} of its pixels are flat colour or a straight "
            f"gradient and {shares.texture:.0%} lie in texture; read within {COARSE_SHADE_TOLERANCE} levels, "
            f"{shares.coarse_flat:.0%} are flat and {shares.coarse_texture:.0%} of the unflat ones lie in texture; "
            f"{shares.top:.0%} hold one of its {COLOURS} commonest colours, and {shares.inset_top:.0%} of those outside "
            "the block that holds its texture: as in a chart, a screen or a document; --no-graphic-check restores "
            "it anyway)")


def is_graphic_note(note: str) -> bool:
    return note.startswith(NOTE_START)
