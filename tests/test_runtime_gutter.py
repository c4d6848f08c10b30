"""A collage's gutters are not paint (runtime/gutter.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime.frame import BAND
from runtime.gutter import CONTRAST, WIDTH, gutter_bands, gutter_lines

RNG = np.random.default_rng(11)


def _photo(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_a_gutter_between_two_photos_is_found():
    """Two photos side by side, 8 white columns between them; then one above the other, 6 white
    rows between them, in a white frame of 10: the gutter, not the frame."""
    img = np.full((100, 208, 3), 255, np.uint8)
    img[:, :100], img[:, 108:] = _photo(100, 100), _photo(100, 100)
    rows, cols = gutter_lines(img)
    assert not rows.any() and np.array_equal(np.flatnonzero(cols), np.arange(100, 108))
    img = np.full((216, 120, 3), 255, np.uint8)
    img[10:110, 10:110], img[116:206, 10:110] = _photo(100, 100), _photo(90, 100)
    rows, cols = gutter_lines(img)
    assert np.array_equal(np.flatnonzero(rows), np.arange(110, 116)) and not cols.any()


def test_what_is_not_a_gutter():
    """A single line, a band of one colour along a side (a frame, a sky), one wider than WIDTH of the picture,
    and one whose neighbours hold its colour on more than CONTRAST of their pixels (a sky's rows
    between clouds) are no gutters; a photo has none."""
    assert not any(x.any() for x in gutter_lines(_photo(120, 160)))
    img = _photo(100, 200)
    img[:, 99] = 255  # a single line: an edge as often as a gutter
    assert not gutter_lines(img)[1].any()
    img[:, 100] = 255
    assert np.array_equal(np.flatnonzero(gutter_lines(img)[1]), [99, 100])
    img = _photo(100, 200)
    img[:, :12] = 255  # along the left side
    assert not gutter_lines(img)[1].any()
    img = _photo(100, 200)
    img[:, 90:90 + int(WIDTH * 200) + 1] = 255  # one column too wide
    assert not gutter_lines(img)[1].any()
    img[:, 90:90 + int(WIDTH * 200)] = 255  # as wide as it may be
    img[:, 90 + int(WIDTH * 200):] = _photo(100, 200 - 90 - int(WIDTH * 200))
    assert gutter_lines(img)[1].sum() == int(WIDTH * 200)
    sky = _photo(100, 200)
    sky[40:48] = (120, 160, 220)
    sky[30:40, :110] = sky[48:58, :110] = (120, 160, 220)  # its colour on 55 % of the rows beside it
    assert 110 / 200 > CONTRAST and not gutter_lines(sky)[0].any()
    sky[30:40, :110] = sky[48:58, :110] = _photo(20, 110)[:10]
    assert np.array_equal(np.flatnonzero(gutter_lines(sky)[0]), np.arange(40, 48))


def _zone(rgb: np.ndarray, band: int = 0) -> np.ndarray:
    """(H, W) bool: the gutters and their band, as the restorer leaves them."""
    rows, cols = gutter_bands(rgb, band)
    return rows[:, None] | cols[None, :]


def test_the_band_runs_on_both_sides():
    img = np.full((100, 208, 3), 255, np.uint8)
    img[:, :100], img[:, 108:] = _photo(100, 100), _photo(100, 100)
    rows, cols = gutter_bands(img, BAND)
    assert not rows.any() and np.array_equal(np.flatnonzero(cols), np.arange(100 - BAND, 108 + BAND))
    assert not any(x.any() for x in gutter_bands(_photo(50, 60), BAND)) and gutter_bands(img)[1].sum() == 8


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu")


def _decoded(case) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(case.data)).convert("RGB"))


def test_a_clean_collage_comes_back_as_it_was(restorer, monkeypatch):
    """photo_eval's clean selection collages at JPEG 90: nothing is marked; with the gutters not
    read, the model marks and paints over three of the ten (a gutter between two photos is what
    paint looks like)."""
    from benchmarks.photo_eval import make_cases
    from runtime import restorer as restorer_module

    cases = make_cases("clean-collage-jpeg-90", "selection", 4)
    for case in cases:
        rgb = _decoded(case)
        out = restorer.restore(rgb)
        assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb), case.case.name
    monkeypatch.setattr(restorer_module, "gutter_bands", lambda rgb, band=0: (np.zeros(rgb.shape[0], bool),
                                                                          np.zeros(rgb.shape[1], bool)))
    painted = sum(not np.array_equal(np.asarray(restorer.restore(_decoded(c)).image), _decoded(c)) for c in cases)
    assert painted >= 3


def test_a_painted_collage_is_restored_outside_its_gutter(restorer):
    """photo_eval's painted selection collages at JPEG 90: no mark in a gutter or its band, the
    gutter as the file held it, and most of the paint found elsewhere."""
    from benchmarks.photo_eval import make_cases

    for case in make_cases("collage-jpeg-90", "selection", 4)[:4]:
        rgb = _decoded(case)
        out = restorer.restore(rgb)
        zone = _zone(rgb, BAND)
        mask = np.asarray(out.mask) > 0
        assert zone.any() and not (mask & zone).any(), case.case.name
        assert np.array_equal(np.asarray(out.image)[zone], rgb[zone]), case.case.name
        paint = case.case.mask & ~zone
        assert (mask & paint).sum() > 0.7 * paint.sum(), case.case.name
