"""In a lossless file, a mark with no solid colour is dropped (runtime/solid.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime import mirrored
from runtime.solid import (
    MIN_PAINT,
    SHARE,
    TOLERANCE,
    beyond_paint,
    distance,
    judge_marks,
    paint_colours,
    sharp_edge,
    solid_share,
)

RNG = np.random.default_rng(11)


def test_the_share_near_the_commonest_colour_by_hand():
    pixels = np.array([[10, 20, 30]] * 6 + [[12, 21, 28]] * 2 + [[13, 20, 30]] + [[50, 50, 50]], np.uint8)
    # The commonest colour is (10, 20, 30); (12, 21, 28) is 2 levels off at most (in), (13, 20, 30) 3 (out).
    assert TOLERANCE == 2
    assert solid_share(pixels) == pytest.approx(8 / 10)
    assert solid_share(np.zeros((0, 3), np.uint8)) == 0.0
    grain = RNG.integers(0, 256, (500, 3), dtype=np.uint8)  # no two alike: nothing solid
    assert solid_share(grain) < SHARE


def _picture():
    """A textured (80, 120) picture with a solid square painted on it, and a mask of three marks:
    the square, a patch of texture, and a patch of a smooth gradient."""
    rgb = RNG.integers(60, 200, (80, 120, 3), dtype=np.uint8)
    rgb[10:30, 10:30] = (250, 40, 90)  # paint
    ramp = np.linspace(0, 120, 30)[None, :, None] + np.linspace(0, 60, 20)[:, None, None]
    rgb[50:70, 80:110] = (ramp + np.array([40, 60, 80])).astype(np.uint8)  # shades, no two neighbours alike
    mask = np.zeros((80, 120), np.uint8)
    mask[9:31, 9:31] = 255  # the paint, a pixel of photo around it
    mask[40:60, 40:60] = 255  # texture
    mask[52:68, 84:106] = 255  # the gradient
    return rgb, mask


def test_marks_with_no_solid_colour_are_dropped_and_paint_is_kept():
    rgb, mask = _picture()
    drop, _grow = judge_marks(rgb, mask)
    assert not drop[9:31, 9:31].any()  # 400 of 484 pixels are the paint: kept
    assert drop[40:60, 40:60].all() and drop[52:68, 84:106].all()
    assert drop.sum() == 400 + 16 * 22
    assert not judge_marks(rgb, mask, share=0)[0].any()
    assert not judge_marks(rgb, np.zeros_like(mask))[0].any()


def test_paint_resized_after_it_was_painted_keeps_its_solid_inside():
    rgb, mask = _picture()
    small = np.asarray(Image.fromarray(rgb).resize((90, 60), Image.LANCZOS))  # 3/4, ringing at every edge
    small_mask = np.asarray(Image.fromarray(mask).resize((90, 60), Image.NEAREST))
    drop, _grow = judge_marks(small, small_mask)
    assert not drop[8:22, 8:22].any()  # the paint's inside is still its colour
    assert drop[30:45, 30:45].all()


def _soft_square():
    """A textured (60, 80) picture with a solid square painted and then the picture blurred, as a
    resize blends the paint's edge: the mask is the square as painted."""
    rgb = RNG.integers(60, 200, (60, 80, 3), dtype=np.uint8)
    rgb[20:40, 30:50] = (250, 40, 90)
    from PIL import ImageFilter

    soft = np.asarray(Image.fromarray(rgb).filter(ImageFilter.BoxBlur(1)))  # each pixel the mean of its 3x3
    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 30:50] = 255
    return rgb, soft, mask


def test_a_mark_whose_edge_is_not_solid_grows_a_pixel_and_a_solid_edge_does_not():
    sharp, soft, mask = _soft_square()
    drop, grow = judge_marks(sharp, mask)
    assert not drop.any() and not grow.any()  # painted as it is: its rim is the paint's colour
    drop, grow = judge_marks(soft, mask)
    ring = np.zeros_like(grow)
    ring[19:41, 29:51] = True
    ring[20:40, 30:50] = False
    assert not drop.any() and np.array_equal(grow, ring)  # one pixel around it, 8-connected
    assert not judge_marks(soft, mask, edge_share=0)[1].any()
    tiny = np.zeros_like(mask)
    tiny[21:23, 31:33] = 255  # 4 rim pixels: too few to judge
    assert not judge_marks(soft, tiny)[1].any()


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu")


def _with_mask(monkeypatch, restorer, mask_for):
    """Make the graph find `mask_for(rgb)` in each image it is handed (None: what it found), those
    pixels filled with 0."""
    infer = type(restorer).infer

    def fake(self, batch, *args, **kwargs):
        restored, mask, raw = infer(self, batch, *args, **kwargs)
        for j, rgb in enumerate(batch):
            found = mask_for(rgb)
            if found is not None:
                mask[j, ..., 0] = found
                restored[j] = np.where(found[..., None] > 0, 0, rgb)
        return [restored, mask, raw]

    monkeypatch.setattr(type(restorer), "infer", fake)
    monkeypatch.setattr(mirrored, "MAX_SIDE", 0)  # given marks: no mirrored view would find them again


def test_a_lossless_file_whose_only_mark_is_not_solid_comes_back_as_it_was(restorer, monkeypatch, tmp_path):
    """restore-run: a PNG whose one mark lies on texture is copied byte for byte; the same picture
    as a JPEG (paint is not solid there) and with --no-solid-check keeps the mark."""
    from runtime.batch import RunOptions, run_folder

    rgb, mask = _picture()
    texture_only = np.where(np.arange(80)[:, None] >= 35, mask, 0).astype(np.uint8)  # the two photo patches
    _with_mask(monkeypatch, restorer, lambda x: texture_only if x.shape == (80, 120, 3) else None)
    src = tmp_path / "in"
    src.mkdir()
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    (src / "a.png").write_bytes(png.getvalue())
    Image.fromarray(rgb).save(src / "b.jpg", quality=95)
    result = run_folder(restorer, src, tmp_path / "out", RunOptions(progress=False, save_mask=True))
    by_name = {r.input: r for r in result.records}
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    assert (tmp_path / "out" / "a.png").read_bytes() == png.getvalue()  # nothing left to restore: a copy
    assert by_name["a.png"].masked_share == 0 and by_name["a.png"].written == "copied"
    assert by_name["b.jpg"].masked_share > 0  # a JPEG: the rule does not apply
    restorer.solid_check = False
    try:
        kept = run_folder(restorer, src, tmp_path / "kept", RunOptions(progress=False))
    finally:
        restorer.solid_check = True
    assert {r.input: r.masked_share for r in kept.records}["a.png"] > 0


def test_only_the_marks_with_no_solid_colour_are_dropped_and_their_pixels_are_the_input(restorer, monkeypatch):
    """Restorer.restore: a Pillow PNG drops the texture and gradient marks (their pixels the input's,
    exactly) and keeps the paint; an array, which may hold a decoded JPEG, keeps every mark."""
    rgb, mask = _picture()
    _with_mask(monkeypatch, restorer, lambda x: mask if x.shape == (80, 120, 3) else None)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    out = restorer.restore(Image.open(io.BytesIO(png.getvalue())))
    found = np.asarray(out.mask) > 0
    assert found[10:30, 10:30].all()
    assert not found[40:60, 40:60].any() and not found[52:68, 84:106].any()
    restored = np.asarray(out.image)
    assert np.array_equal(restored[~found], rgb[~found])
    as_array = restorer.restore(rgb)
    assert (as_array.mask > 0)[40:60, 40:60].all()
    for compression, dropped in (("tiff_deflate", True), ("jpeg", False)):  # a JPEG-compressed TIFF is lossy
        tif = io.BytesIO()
        Image.fromarray(rgb).save(tif, "TIFF", compression=compression)
        found = np.asarray(restorer.restore(Image.open(io.BytesIO(tif.getvalue()))).mask) > 0
        assert found[10:30, 10:30].all() and bool(found[40:60, 40:60].any()) != dropped


def test_the_solid_marks_benchmark_counts_paint_and_photo_apart():
    from benchmarks.solid_marks import markdown, summarize

    rows = [{"image": "a", "pixels": 10, "paint": True, "share": s} for s in (0.05, 0.5, 1.0)]
    rows += [{"image": "b", "pixels": 10, "paint": False, "share": s} for s in (0.02, 0.3)]
    s = summarize(rows)
    assert s["paint"]["marks"] == 3 and s["paint"]["dropped"] == 1 and s["paint"]["min"] == 0.05
    assert s["paint"]["median"] == 0.5 and s["photo"] == {"marks": 2, "dropped": 1, "min": 0.02, "p05": pytest.approx(0.034),
                                                           "median": 0.16, "max": 0.3}
    table = markdown({"photos": "selection", "tolerance": TOLERANCE, "share": SHARE, "kinds": {"whole": s}})
    assert "| whole | 3 | 1 | 0.050 |" in table and table.rstrip().endswith("| 2 | 1 | 0.300 |")


def test_restore_grows_a_soft_edged_mark_of_a_png_and_fills_the_ring_smoothly(restorer, monkeypatch):
    """The grown pixels join the mask and take the smooth fill from around the mark; a JPEG of the
    same picture (its edges are never solid) keeps the mark as found."""
    _sharp, soft, mask = _soft_square()
    _with_mask(monkeypatch, restorer, lambda x: mask if x.shape == (60, 80, 3) else None)
    png = io.BytesIO()
    Image.fromarray(soft).save(png, "PNG")
    out = restorer.restore(Image.open(io.BytesIO(png.getvalue())))
    found = np.asarray(out.mask) > 0
    assert found[19:41, 29:51].all() and found.sum() == 22 * 22
    restored = np.asarray(out.image).astype(int)
    assert np.array_equal(restored[~found], soft[~found])
    ring = found.copy()
    ring[20:40, 30:50] = False
    # The ring held the blurred paint (its red channel far above the photo's 60-200 mean of 130);
    # the smooth fill from the photo around it brings it back among the photo's values.
    assert soft[ring][:, 0].mean() > 150 and abs(restored[ring][:, 0].mean() - 130) < 12
    jpg = io.BytesIO()
    Image.fromarray(soft).save(jpg, "JPEG", quality=95)
    kept = np.asarray(restorer.restore(Image.open(io.BytesIO(jpg.getvalue()))).mask) > 0
    # As found, but for a few pixels of the blurred ring whose blend of paint and photo was told
    # apart (runtime/paint_grow.py, `blend_rims`): not the ring grown whole.
    assert kept[20:40, 30:50].all() and not (kept & ~ring & ~(mask > 0)).any() and (kept & ring).sum() < 0.1 * ring.sum()


def test_distance_from_the_nearest_colour_by_hand():
    """The largest channel difference from the nearest colour, the ends of the range included."""
    pixels = np.array([[0, 0, 0], [255, 255, 255], [10, 200, 30], [12, 190, 40]], np.uint8)
    one = [np.array([255, 0, 0])]
    assert distance(pixels, one).tolist() == [255, 255, 245, 243]
    two = one + [np.array([10, 195, 35])]
    assert distance(pixels, two).tolist() == [195, 245, 5, 5]
    assert distance(pixels[:0], two).tolist() == []


def test_a_marks_paints_by_hand():
    """The commonest colour, then the commonest left while `MIN_PAINT` pixels hold it exactly."""
    a, b, c = [10, 20, 30], [200, 10, 10], [90, 90, 90]
    pixels = np.array([a] * 50 + [[12, 21, 28]] * 5 + [b] * 20 + [c] * (MIN_PAINT - 1), np.uint8)
    # (12, 21, 28) lies within TOLERANCE of a: the same paint, so b is the next; c is too few.
    assert [list(x) for x in paint_colours(pixels)] == [a, b]
    assert [list(x) for x in paint_colours(pixels[:55])] == [a]


def _overshot():
    """A textured (60, 80) picture with a square painted sharp, and the mask after paint grow: what
    was found (the square, a pixel around it and, touching it, a small disc of another paint), and
    6 pixels more to its right, grown over, which hold a patch of the photo of the square's exact
    colour. Returns rgb, mask, found and the disc."""
    rgb = RNG.integers(60, 200, (60, 80, 3), dtype=np.uint8)
    rgb[20:40, 20:40] = (250, 40, 90)
    yy, xx = np.mgrid[:60, :80]
    disc = (yy - 44) ** 2 + (xx - 30) ** 2 <= 9  # 29 pixels
    rgb[disc] = (20, 200, 40)
    mask = np.zeros((60, 80), bool)
    mask[19:41, 19:47] = True
    mask |= disc
    found = mask.copy()
    found[:, 41:] = False
    rgb[30:33, 44:46] = (250, 40, 90)  # photo of the paint's colour, not joined to it
    return rgb, mask, found, disc


def test_beyond_a_sharp_paint_only_a_pixel_is_kept():
    rgb, mask, found, disc = _overshot()
    paint = np.zeros_like(mask)
    paint[20:40, 20:40] = True
    assert sharp_edge(rgb, paint, [np.array([250, 40, 90])])
    beyond = beyond_paint(rgb, mask, found=found, keep=1)
    kept = mask & ~beyond
    expected = np.zeros_like(mask)
    expected[19:41, 19:41] = True  # the square and a pixel around it
    around_disc = np.zeros_like(mask)
    around_disc[40:49, 26:35] = True  # the disc's box and a pixel (the disc is its paint's only pixels there)
    assert np.array_equal(kept & ~around_disc, expected & ~around_disc)
    assert kept[disc].all()  # the second paint is kept
    assert beyond[30:33, 44:46].all()  # the photo of the paint's colour, not reached from the paint
    assert np.array_equal(beyond_paint(rgb, mask, found=found, keep=2), mask & ~kept & ~_ring(kept, mask))
    assert not beyond_paint(rgb, mask, found=mask, keep=1)[30:33, 44:46].any()  # what was found is paint


def _ring(kept: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from runtime.fill import dilated

    return dilated(kept) & mask & ~kept


def test_a_resampled_paint_edge_is_not_sharp_and_nothing_is_trimmed():
    """The square blurred as a resize blends its edge: the pixels just outside its exact colour are
    blends, nearer its colour than those a pixel further, and what lies beyond it is kept."""
    sharp, soft, mask = _soft_square()
    paint = np.zeros(mask.shape, bool)
    paint[21:39, 31:49] = True  # where the blur left the paint's colour
    colour = [np.array([250, 40, 90])]
    assert sharp_edge(sharp, mask > 0, colour) and not sharp_edge(soft, paint, colour)
    wide = np.zeros(mask.shape, bool)
    wide[17:43, 27:53] = True
    assert beyond_paint(sharp, wide, found=wide, keep=1).sum() == 26 * 26 - 22 * 22
    assert not beyond_paint(soft, wide, found=wide, keep=1).any()
    # One blended edge tells a resized picture: a sharp square beside it keeps its overshoot too.
    both, wider = soft.copy(), wide.copy()
    both[5:15, 5:15] = (20, 200, 40)
    wider[3:17, 3:17] = True
    assert not beyond_paint(both, wider, found=wider, keep=1).any()
    sharp_too = sharp.copy()
    sharp_too[5:15, 5:15] = (20, 200, 40)
    assert beyond_paint(sharp_too, wider, found=wider, keep=1)[3:17, 3:17].sum() == 14 * 14 - 12 * 12


def test_a_png_mark_grown_into_the_photo_past_its_paint_comes_back(restorer, monkeypatch):
    """The selection's `rocket_08` PNG crop (photo_eval's `png`, `--per-photo 12`): a dark blue
    disc painted beside clouds within 16 levels of it; the disc grew over 1,200 pixels of cloud
    (paint grow's tolerance) until what lies past its sharp edge was dropped."""
    from benchmarks.photo_cases import make_cases

    case = next(c for c in make_cases("png", "selection", 12) if c.case.name == "rocket_08")
    damage = case.case.mask
    out = np.asarray(restorer.restore(Image.open(io.BytesIO(case.data))).mask) > 0
    assert (out & damage).sum() == damage.sum() and (out & ~damage).sum() < 100
    monkeypatch.setattr("runtime.restorer.beyond_paint", lambda rgb, mask, found: np.zeros(mask.shape, bool))
    grown = np.asarray(restorer.restore(Image.open(io.BytesIO(case.data))).mask) > 0
    assert (grown & ~damage).sum() > 1000
