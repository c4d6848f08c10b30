"""A graphic that holds a photo is a graphic: its texture lies in one block (runtime/inset.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from restore_core.graphics_drawn import chart, screen
from restore_core.graphics_photo import article, inset
from runtime import inset as inset_module
from runtime.flat import REACH, STEP
from runtime.frame import BAND
from runtime.graphic import read_shares
from runtime.inset import MIN_READ, TOP_SHARE, grid_frame, inset_shares, photo_inset, texture_block
from runtime.palette import OTHERS_SHARE, few_colours, palette_shares


def _saved(img: np.ndarray, fmt: str, **kw) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf).convert("RGB"))


def _with_photo(drawn: np.ndarray, share: float) -> np.ndarray:
    """`drawn` with a photo (4:3) pasted into its bottom right corner over `share` of it."""
    from restore_core.photos import bundled_photos

    h, w = drawn.shape[:2]
    pw, ph = min(w, int((share * w * h * 4 / 3) ** 0.5)), min(h, int((share * w * h * 3 / 4) ** 0.5))
    img = Image.fromarray(drawn)
    img.paste(Image.fromarray(bundled_photos()["coffee"]).resize((pw, ph), Image.LANCZOS), (w - pw, h - ph))
    return np.asarray(img)


def test_the_block_spans_the_rows_and_columns_rich_in_texture():
    texture = np.zeros((20, 30), bool)
    texture[5:12, 8:20] = True  # 7 rows of 12, 12 columns of 7
    texture[8, 8:14] = False  # a gap inside: still the block's
    texture[0, 0] = texture[19, 29] = texture[2, 3:8] = True  # stray texture, under half the richest row and column
    want = np.zeros_like(texture)
    want[5:12, 8:20] = True
    assert np.array_equal(texture_block(texture), want)
    assert not texture_block(np.zeros_like(texture)).any()


def test_the_colours_are_read_outside_the_block(monkeypatch):
    """A 10 x 10 grid: a block of noise (the texture) and, around it, colours counted by hand
    (64 pixels: read where MIN_READ allows, nothing read under it)."""
    rng = np.random.default_rng(3)
    size = 2 * REACH + 10 * STEP
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # between the grid pixels: noise, no frame
    texture = np.zeros((10, 10), bool)
    texture[2:8, 3:9] = True
    grid = np.zeros((10, 10, 3), np.uint8)
    grid[texture] = rng.choice(127, 36, replace=False)[:, None] * 2  # 36 greys, each in its own bin (none white's)
    outside = np.flatnonzero(~texture.ravel())  # 64 pixels: 36 white, 10 blue, 6 red, 4 green, 8 of their own
    colours = [(255, 255, 255)] * 36 + [(0, 0, 200)] * 10 + [(200, 0, 0)] * 6 + [(0, 200, 0)] * 4
    colours += [(130 + 2 * i, 60, 60) for i in range(8)]
    grid.reshape(-1, 3)[outside] = np.asarray(colours)[rng.permutation(64)]  # scattered: no border of one colour
    rgb[REACH:size - REACH:STEP, REACH:size - REACH:STEP] = grid  # the grid pixels palette_shares reads
    assert not grid_frame(rgb, (10, 10)).any()
    read = np.ones((10, 10), bool)
    assert MIN_READ > 64 and inset_shares(rgb, read, texture) == (0.0, 0.0, 64)  # too few to read
    monkeypatch.setattr(inset_module, "MIN_READ", 64)
    assert inset_shares(rgb, read, texture) == pytest.approx((56 / 64, 21 / 28, 64))  # (36+10+6+4)/64; (10+6+4+1)/28
    top, others = palette_shares(rgb, read)  # the whole: the noise counts, 36 colours more
    assert top == pytest.approx(56 / 100) and others == pytest.approx(21 / 64)
    read[np.all(grid == (0, 0, 200), axis=-1)] = False  # the 10 blue pixels not read
    assert inset_shares(rgb, read, texture) == (0.0, 0.0, 54)  # 54 left: under MIN_READ
    monkeypatch.setattr(inset_module, "MIN_READ", 54)
    assert inset_shares(rgb, read, texture) == pytest.approx((47 / 54, 12 / 18, 54))  # (36+6+4+1)/54; (6+4+1+1)/18


def test_the_frame_and_its_band_are_not_read():
    """A white frame 20 pixels wide at the top and bottom, 12 at the sides, around noise: the grid
    rows and columns in it or within BAND pixels inward of it are the frame's."""
    rng = np.random.default_rng(0)
    rgb = np.full((200, 300, 3), 255, np.uint8)
    rgb[20:180, 12:288] = rng.integers(0, 200, (160, 276, 3))
    frame = grid_frame(rgb, (40, 60))  # grid rows and columns at REACH + STEP * i
    ys, xs = REACH + STEP * np.arange(40), REACH + STEP * np.arange(60)
    rows = (ys < 20 + BAND) | (ys >= 180 - BAND)
    cols = (xs < 12 + BAND) | (xs >= 288 - BAND)
    assert np.array_equal(frame, rows[:, None] | cols[None, :])
    assert rows.sum() == 7 + 8 and cols.sum() == 5 + 6  # y 4..34 and 164..199, x 4..24 and 274..299: the band counts


def test_a_framed_photo_is_a_photo():
    """A painted photo in a white or black frame, saved as JPEG 90 and 75: outside its texture's
    block lies the frame, of one colour and its ringing, which would read as few colours; the frame
    is left out, and what is left is not a graphic's."""
    from restore_core.photos import bundled_photos

    for name in ("coffee", "chelsea"):
        photo = np.asarray(Image.fromarray(bundled_photos()[name]).resize((480, 360), Image.LANCZOS)).copy()
        photo[60:120, 80:200], photo[200:260, 300:420] = (220, 30, 40), (30, 90, 220)
        for colour in (255, 0):
            framed = np.full((420, 540, 3), colour, np.uint8)
            framed[30:-30, 30:-30] = photo
            mask = np.zeros((420, 540), np.uint8)
            mask[86:154, 106:234] = mask[226:294, 326:454] = 255  # the paint, as found
            for quality in (90, 75):
                shares = read_shares(_saved(framed, "JPEG", quality=quality), mask)
                assert not photo_inset(shares.inset_top, shares.inset_others) and not shares.graphic, (name, colour, quality, shares)


def test_a_chart_holding_a_photo_is_a_graphic_only_by_its_block():
    """A chart with a photo over 45 % of it, saved as JPEG 90: as a whole it reads as a painted
    photo (its texture, its spread of colours), but outside the photo's block it is the chart's few
    colours. A photo painted over half, and a photo unpainted, are not so read."""
    from restore_core.photos import bundled_photos

    for drawn in (chart(np.random.default_rng(3)), screen(np.random.default_rng(1))):
        rgb = _saved(_with_photo(drawn, 0.45), "JPEG", quality=90)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[10:60, 10:120] = 255
        shares = read_shares(rgb, mask)
        assert not few_colours(shares.top, shares.others) and shares.texture > 0.45, shares
        assert photo_inset(shares.inset_top, shares.inset_others) and shares.graphic, shares
    photo = np.asarray(Image.fromarray(bundled_photos()["coffee"]).resize((600, 600), Image.LANCZOS)).copy()
    clean = _saved(photo, "JPEG", quality=90)
    photo[40:460, 40:460] = (200, 40, 90)  # 49 % of it, found only at the rim
    rim = np.zeros((600, 600), np.uint8)
    rim[36:464, 36:44] = rim[36:464, 456:464] = rim[36:44, 36:464] = rim[456:464, 36:464] = 255
    for rgb in (_saved(photo, "JPEG", quality=90), clean):
        shares = read_shares(rgb, rim)
        assert shares.inset_top < TOP_SHARE, shares


def test_both_shares_are_needed():
    assert photo_inset(TOP_SHARE, OTHERS_SHARE)
    assert not photo_inset(TOP_SHARE - 0.01, 1.0) and not photo_inset(1.0, OTHERS_SHARE - 0.01)


def test_the_generators_hold_a_photo_of_the_group_they_are_given():
    """inset pastes one of the photos given over a tenth to a half of its picture; article lays one
    across its column, a sixth to a half of the page."""
    photos = [np.full((300, 400, 3), (7, 201, 99), np.uint8)]  # a colour no generator draws
    for draw, low, high in ((inset, 0.1, 0.5), (article, 0.05, 0.5)):
        for seed in range(3):
            img = draw(np.random.default_rng(seed), photos)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
            share = np.all(img == (7, 201, 99), axis=-1).mean()
            assert low * 0.9 <= share <= high * 1.05, (draw.__name__, seed, share)


def test_a_spreadsheet_holding_a_photo_in_a_jpeg_is_left_as_it_was(monkeypatch):
    """The selection's eleventh inset drawing, a spreadsheet with a photo over a third of it, at
    JPEG 90: outside the photo's block 0.495 of the read pixels hold its 4 commonest colours
    (under the 0.5 asked before, when it lost its header row and label column to the fill)."""
    from restore_core.degrade import encode_file
    from restore_core.graphics import GRAPHICS_SEED, SELECTION_GRAPHICS
    from restore_core.heldout import heldout_photos
    from runtime import Restorer

    rng = np.random.default_rng([GRAPHICS_SEED, SELECTION_GRAPHICS.index("inset")])
    photos = list(heldout_photos("selection").values())
    drawn = [inset(rng, photos) for _ in range(11)][-1]
    image = Image.open(io.BytesIO(encode_file(drawn, "jpeg", 90, "4:2:0")))
    restorer = Restorer(device="cpu")
    restored = restorer.restore(image)
    assert len(restored.notes) == 1 and "a graphic, not a photo" in restored.notes[0]
    assert np.array_equal(np.asarray(restored.image), np.asarray(image.convert("RGB")))
    monkeypatch.setattr(inset_module, "TOP_SHARE", 0.5)
    painted = restorer.restore(image)
    assert not painted.notes and (np.asarray(painted.mask) > 0).sum() > 20_000
