"""A picture drawn in a few colours is a graphic even where its codec left nothing flat (runtime/palette.py)."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from restore_core.graphics_drawn import sheet
from runtime.flat import GRAPHIC_SHARE, REACH, STEP, TEXTURE_SHARE, flat_grid
from runtime.graphic import read_shares
from runtime.palette import OTHERS_SHARE, TOP_SHARE, few_colours, palette_shares

RNG = np.random.default_rng(11)


def _by_hand(rgb: np.ndarray, read: np.ndarray):
    """(top, others) counted pixel by pixel over the grid rows and columns REACH, REACH + STEP, ...,
    each channel binned by 2 levels (BIN)."""
    colours = Counter()
    for i, y in enumerate(range(REACH, rgb.shape[0] - REACH, STEP)):
        for j, x in enumerate(range(REACH, rgb.shape[1] - REACH, STEP)):
            if i < read.shape[0] and j < read.shape[1] and read[i, j]:
                colours[tuple(int(v) // 2 for v in rgb[y, x])] += 1
    counts = [c for _, c in colours.most_common()]
    total = sum(counts)
    return sum(counts[:4]) / total, sum(counts[1:5]) / (total - counts[0])  # 4 colours (COLOURS)


def _saved(img: np.ndarray, fmt: str, **kw) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_the_shares_match_a_count_by_hand():
    """Bands of known colours (254 and 255 share a bin of BIN levels, 253 does not) and noise, read
    everywhere and then with a block left out, as the marks leave theirs."""
    rgb = RNG.integers(0, 256, (97, 83, 3), dtype=np.uint8)
    rgb[:30] = 255
    rgb[30:40] = (254, 255, 254)  # the same bin as white
    rgb[40:48] = (253, 255, 255)  # the next bin
    rgb[48:60, :40] = (10, 120, 200)
    rgb[60:64] = (0, 0, 0)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    _flat, read = flat_grid(rgb, mask)
    top, others = palette_shares(rgb, read)
    assert (top, others) == pytest.approx(_by_hand(rgb, read), abs=1e-12)
    white = sum(1 for y in range(REACH, 40, STEP)) / read.shape[0]  # the white and near-white rows, one bin
    assert top > white > 0.3
    read[2:9, 3:12] = False
    assert palette_shares(rgb, read) == pytest.approx(_by_hand(rgb, read), abs=1e-12)
    assert palette_shares(rgb, np.zeros_like(read)) == (0.0, 0.0)
    assert palette_shares(np.full((40, 40, 3), 7, np.uint8), flat_grid(np.full((40, 40, 3), 7, np.uint8),
                                                                       np.zeros((40, 40)))[1]) == (1.0, 0.0)


def test_a_spreadsheet_saved_lossy_is_a_graphic_by_its_colours():
    """A spreadsheet saved as JPEG 90 and WebP 90: nothing flat enough for the flat share (the
    codec rings around every line and digit), but most of it in a few colours."""
    drawn = sheet(np.random.default_rng(2))
    mask = np.zeros(drawn.shape[:2], np.uint8)
    mask[100:160, 200:300] = 255
    for fmt in ("JPEG", "WEBP"):
        rgb = _saved(drawn, fmt, quality=90)
        shares = read_shares(rgb, mask)
        assert not (shares.flat >= GRAPHIC_SHARE and shares.texture < TEXTURE_SHARE), (fmt, shares)
        assert shares.top >= TOP_SHARE and shares.others >= OTHERS_SHARE and shares.graphic, (fmt, shares)
    assert read_shares(drawn, mask).graphic  # as PNG, flat as well


def test_a_photo_painted_over_half_with_one_colour_is_not():
    """A photo half painted over, saved as JPEG 90, its paint found only at the rim: its paint's
    inside makes its commonest colour, but the rest of it is a photo, in no few colours."""
    from restore_core.photos import bundled_photos

    photo = np.asarray(Image.fromarray(bundled_photos()["coffee"]).resize((600, 600), Image.LANCZOS)).copy()
    photo[40:460, 40:460] = (200, 40, 90)  # 49 % of it
    rgb = _saved(photo, "JPEG", quality=90)
    rim = np.zeros(rgb.shape[:2], np.uint8)
    rim[36:464, 36:44] = rim[36:464, 456:464] = rim[36:44, 36:464] = rim[456:464, 36:464] = 255
    shares = read_shares(rgb, rim)
    assert shares.top >= TOP_SHARE and shares.others < OTHERS_SHARE / 2 and not shares.graphic, shares
    clean = _saved(np.asarray(Image.fromarray(bundled_photos()["coffee"]).resize((600, 600))), "JPEG", quality=90)
    assert read_shares(clean, rim).top < TOP_SHARE / 2  # and unpainted, in no few colours at all


def test_both_shares_are_needed():
    assert few_colours(TOP_SHARE, OTHERS_SHARE)
    assert not few_colours(TOP_SHARE - 0.01, 1.0) and not few_colours(1.0, OTHERS_SHARE - 0.01)


def test_the_note_says_what_each_reading_found():
    from runtime.graphic import Shares, graphic_note, is_graphic_note

    note = graphic_note(Shares(flat=0.15, texture=0.78, coarse_flat=0.58, coarse_texture=0.07, top=0.16, others=0.1,
                                inset_top=0.62, inset_others=0.3, inset_read=900))
    assert is_graphic_note(note)
    for said in ("15% of its pixels are flat colour or a straight gradient and 78% lie in texture",
                 "read within 3 levels, 58% are flat and 7% of the unflat ones lie in texture",
                 "16% hold one of its 4 commonest colours, and 62% of those outside the block that holds its texture",
                 "--no-graphic-check restores it anyway"):
        assert said in note, said
