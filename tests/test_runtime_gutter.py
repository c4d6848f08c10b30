"""A collage's gutters are not paint (runtime/gutter.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime import gutter, mirrored
from runtime.frame import BAND
from runtime.gutter import CONTRAST, WIDTH, gutter_boxes, panel_runs

RNG = np.random.default_rng(11)


def _photo(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3)).astype(np.uint8)


def gutter_lines(img: np.ndarray):
    """(rows (H,), columns (W,)) bool: the gutters taken across the whole picture."""
    rows, cols = np.zeros(img.shape[0], bool), np.zeros(img.shape[1], bool)
    for run in panel_runs(img):
        if run.taken and run.depth == 0:
            (rows if run.axis == "rows" else cols)[run.start:run.end] = True
    return rows, cols


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


def test_a_gutter_is_read_inside_the_frame():
    """Two photos one above the other, 8 white rows between them, in a white frame of 30: the
    frame is 60 of each row's 160 pixels, so read across the whole picture the rows beside the
    gutter hold its white on more than CONTRAST of their pixels. Inside the frame they hold none:
    the gutter is found, in the picture's rows."""
    img = np.full((238, 160, 3), 255, np.uint8)
    img[30:130, 30:130], img[138:208, 30:130] = _photo(100, 100), _photo(70, 100)
    assert [s for _, _, s in gutter.inner_runs(img, WIDTH * 238)] == [pytest.approx(60 / 160, abs=0.02)]
    assert 60 / 160 > CONTRAST
    rows, cols = gutter_lines(img)
    assert np.array_equal(np.flatnonzero(rows), np.arange(130, 138)) and not cols.any()
    assert gutter_boxes(img) == [(130, 138, 30, 130)]


def test_a_panels_gutter_may_be_as_wide_as_the_pictures():
    """One photo beside two stacked, the stack 40 pixels wide and 14 white rows between its two:
    over a tenth of the stack's 110 rows, under a tenth of the picture's longer side. Found."""
    img = np.full((110, 188, 3), 255, np.uint8)
    img[:, :140], img[:48, 148:], img[62:, 148:] = _photo(110, 140), _photo(48, 40), _photo(48, 40)
    assert 14 > WIDTH * 110 and 14 <= WIDTH * 188
    assert gutter_boxes(img) == [(0, 110, 140, 148), (48, 62, 148, 188)]


def test_the_line_beyond_a_gutters_edge_is_read_too():
    """A gutter whose first line the codec rounded out of it (80 % white, short of FRAME_SHARE):
    the line AWAY beyond its run is the edge's, 40 % white, over CONTRAST; the line beyond that
    holds no white, and the gutter is taken. A sky's rows, its colour on both lines, are not."""
    img = _photo(100, 200)
    img[50:58] = 255
    img[49, :160] = 255  # the gutter's first line, 80 % of it
    img[48, :80] = 255  # two lines beyond the run's start (AWAY): the edge, 40 % white
    assert gutter.AWAY == 2 and 0.4 > CONTRAST
    assert [r for r in gutter.inner_runs(img, 20) if r[1] - r[0] > 1] == [(50, 58, pytest.approx(0.0, abs=0.02))]
    assert np.array_equal(np.flatnonzero(gutter_lines(img)[0]), np.arange(50, 58))
    img[47, :80] = 255  # and the line beyond it: the photo holds the gutter's colour there
    assert not gutter_lines(img)[0].any()


def _zone(rgb: np.ndarray, band: int = 0) -> np.ndarray:
    """(H, W) bool: the gutters and their band, as the restorer leaves them."""
    zone = np.zeros(rgb.shape[:2], bool)
    for top, bottom, left, right in gutter_boxes(rgb, band):
        zone[top:bottom, left:right] = True
    return zone


def test_a_run_is_read_against_its_mean_colour():
    """A light gutter's lines swing in blue at JPEG 75 (the selection collage below: 207 to 228
    across its first rows): one run, though its lines lie further than FRAME_TOLERANCE from its
    first; a line that leaves the run's mean by more ends it, as a step to another colour does."""
    from runtime.frame import FRAME_TOLERANCE

    blue = [228, 221, 213, 207, 207, 213, 221, 225, 224, 218, 209, 214, 217]
    colour = np.array([[238, 232, b] for b in blue], np.int16)
    one = np.ones(len(colour), bool)
    assert max(blue) - min(blue) > FRAME_TOLERANCE
    assert gutter._runs(colour, one) == [(0, len(blue))]
    step = np.concatenate([colour, [[238, 232, 250]]])  # 32 levels above the mean: another colour
    assert gutter._runs(step, np.ones(len(step), bool)) == [(0, len(blue)), (len(blue), len(blue) + 1)]
    ramp = np.array([[100, 100, 100 + 4 * i] for i in range(20)], np.int16)  # a sky's gradient, 4 levels a line:
    # the 9th line lies 18 levels from the mean of the 8 before it (2 * 8 + 2), and starts a run
    assert [end - start for start, end in gutter._runs(ramp, np.ones(20, bool))] == [8, 8, 4]
    one[5] = False  # a line not of one colour cuts the run
    assert gutter._runs(colour, one) == [(0, 5), (6, len(blue))]


def test_the_band_runs_on_both_sides():
    img = np.full((100, 208, 3), 255, np.uint8)
    img[:, :100], img[:, 108:] = _photo(100, 100), _photo(100, 100)
    assert gutter_boxes(img, BAND) == [(0, 100, 100 - BAND, 108 + BAND)]
    assert gutter_boxes(_photo(50, 60), BAND) == [] and gutter_boxes(img) == [(0, 100, 100, 108)]


def test_a_gutter_across_a_panel_is_found_in_it(monkeypatch):
    """One photo beside two stacked (a phone's collage): the rows between the two cross the right
    panel alone, which the columns' gutter bounds; they are found there, with their band within
    that panel, and not with the panels unread (MAX_DEPTH 0). A photo's rows of one colour, in a
    panel, are no gutter where their neighbours hold its colour."""
    img = np.full((126, 246, 3), 255, np.uint8)
    img[:, :120] = _photo(126, 120)
    img[:60, 126:], img[66:, 126:] = _photo(60, 120), _photo(60, 120)
    assert gutter_boxes(img, 3) == [(0, 126, 117, 129), (57, 69, 126, 246)]
    assert [(r.axis, r.depth, r.panel) for r in panel_runs(img)] == [("columns", 0, (0, 126, 0, 246)),
                                                                    ("rows", 1, (0, 126, 126, 246))]
    sky = img.copy()
    sky[50:60, 126:200] = sky[66:76, 126:200] = 255  # the rows beside it hold its white on 62 %
    assert gutter_boxes(sky) == [(0, 126, 120, 126)]
    monkeypatch.setattr(gutter, "MAX_DEPTH", 0)
    assert gutter_boxes(img) == [(0, 126, 120, 126)]


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
    from benchmarks.photo_cases import make_cases

    cases = make_cases("clean-collage-jpeg-90", "selection", 4)
    for case in cases:
        rgb = _decoded(case)
        out = restorer.restore(rgb)
        assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb), case.case.name
    monkeypatch.setattr("runtime.mark_edits.gutter_boxes", lambda rgb, band=0: [])
    painted = sum(not np.array_equal(np.asarray(restorer.restore(_decoded(c)).image), _decoded(c)) for c in cases)
    assert painted >= 3


def test_a_painted_collage_is_restored_outside_its_gutter(restorer):
    """photo_eval's painted selection collages at JPEG 90: no mark in a gutter or its band, the
    gutter as the file held it, and most of the paint found elsewhere."""
    from benchmarks.photo_cases import make_cases

    for case in make_cases("collage-jpeg-90", "selection", 4)[:4]:
        rgb = _decoded(case)
        out = restorer.restore(rgb)
        zone = _zone(rgb, BAND)
        mask = np.asarray(out.mask) > 0
        assert zone.any() and not (mask & zone).any(), case.case.name
        assert np.array_equal(np.asarray(out.image)[zone], rgb[zone]), case.case.name
        paint = case.case.mask & ~zone
        assert (mask & paint).sum() > 0.7 * paint.sum(), case.case.name


def test_a_light_gutter_at_jpeg_75_is_found_whole(restorer, monkeypatch):
    """A clean selection collage at JPEG 75 (more draws than the other tests: photo_eval's
    `--per-photo 12`), in a cream frame with a cream gutter whose blue swings by 21 levels: the
    gutter is one run, taken, and the collage comes back as it was. Read against its first line,
    the gutter was three runs, each beside another of its colour: none was taken and the model
    painted the gutter over (22.8 dB from the input). The graph, reading the collage inside its
    frame (`Restorer.graph_box`), finds nothing in it; reading the frame too, none in the gutter
    or its band (the full-range int8 graph made marks there, which the gutter's run kept out)."""
    from benchmarks.photo_cases import make_cases
    from runtime.restorer import Restorer

    case = next(c for c in make_cases("clean-collage-jpeg-75", "selection", 12)
                if c.case.name == "rocket_10_rocket_11_collage_clean")
    rgb = _decoded(case)
    taken = [(r.start, r.end) for r in panel_runs(rgb) if r.taken and r.axis == "rows"]
    assert taken == [(224, 237)]  # the gutter's 14th line, beside the photo, lies 20 levels from the mean
    assert not np.asarray(restorer.restore(Image.open(io.BytesIO(case.data))).mask).any()
    monkeypatch.setattr(Restorer, "graph_box", staticmethod(lambda rgb: None))
    out = restorer.restore(Image.open(io.BytesIO(case.data)))
    ys, _ = np.nonzero(np.asarray(out.mask))
    assert not ((ys >= 224 - BAND) & (ys < 237 + BAND)).any()  # none in the gutter or its band


def test_a_clean_three_photo_collage_comes_back_as_it_was(restorer, monkeypatch):
    """photo_eval's clean selection collages of three at JPEG 90: the one whose gutter across a
    panel the model marks comes back as it was, and is painted there with the panels unread (and
    the mirrored check off, which drops that mark on its own)."""
    from benchmarks.photo_cases import make_cases

    case = next(c for c in make_cases("clean-collage3-jpeg-90", "selection", 4) if c.case.name.startswith("arc2017_01"))
    rgb = _decoded(case)
    out = restorer.restore(rgb)
    assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb)
    monkeypatch.setattr(gutter, "MAX_DEPTH", 0)
    monkeypatch.setattr(mirrored, "MAX_SIDE", 0)
    out = restorer.restore(rgb)
    ys, xs = np.nonzero(np.asarray(out.mask))
    assert len(ys) and xs.min() >= 40 and xs.max() <= 64 and ys.max() < 43  # in the gutter between the two above


def test_a_collage_framed_in_its_gutters_colour_comes_back_as_it_was(restorer, monkeypatch):
    """The selection's clean collage of three in a cream frame with cream gutters (photo_eval's
    `--per-photo 24`), at JPEG 90 and 75: both gutters are found, the one between the two above
    across their panel, over a tenth of it wide, and the collage comes back as it was. Read
    across the whole picture, the frame's cream beside the gutter (0.30 of its neighbours' pixels)
    hid it, and the model painted both over."""
    from benchmarks.photo_cases import make_cases

    name = "luispedro_09_luispedro_10_luispedro_11_collage3_clean"
    for kind in ("clean-collage3-jpeg-90", "clean-collage3-jpeg-75"):
        rgb = _decoded(next(c for c in make_cases(kind, "selection", 24) if c.case.name == name))
        taken = [(r.axis, r.depth, r.end - r.start) for r in panel_runs(rgb) if r.taken]
        assert taken == [("rows", 0, 18), ("columns", 1, 18)], kind
        out = restorer.restore(rgb)
        assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb), kind
    monkeypatch.setattr(gutter, "photo_box", lambda rgb: None)
    assert not [r for r in panel_runs(rgb) if r.taken]
    assert np.asarray(restorer.restore(rgb).mask).any()
