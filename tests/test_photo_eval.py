"""benchmarks.photo_eval: users' files through the real restore-run, scored, and the least improved
drawn; on the selection photos (the evaluation ones are for reports)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks.photo_cases import EVAL_SEED, make_cases
from benchmarks.photo_eval import evaluate, score, worst_sheet
from restore_toolkit.scores import psnr


@pytest.fixture(scope="module")
def run():
    least: list = []
    report = evaluate("selection", 1, ["png", "jpeg-90-420", "clean-png"], [], log=lambda *_: None,
                      worst=least, keep=3)
    return report, least


def test_report_scores_each_format_on_the_files_restore_run_wrote(run):
    report, _ = run
    assert list(report["formats"]) == ["png", "jpeg-90-420", "clean-png"]
    assert report["sources"] == ["arc2017", "chelsea", "luispedro", "rocket", "voc"] and report["photos"] == "selection"
    assert all(s["images"] == 5 and s["failed"] == 0 for s in report["formats"].values())
    painted = report["formats"]["jpeg-90-420"]
    assert 0.0 <= painted["mask_iou"] <= 1.0 and painted["psnr"] > painted["psnr_input"]
    clean = report["formats"]["clean-png"]
    assert clean["mask_iou"] is None and clean["identical"] + clean["touched"] == 5


def test_the_least_improved_files_are_kept_and_drawn(run, tmp_path):
    report, least = run
    gains = sorted(r["psnr"] - r["psnr_input"] for fmt in ("png", "jpeg-90-420") for r in report["per_image"][fmt])
    # Only painted files compete, the three least improved are kept, least first.
    assert [round(w[0], 6) for w in least] == [round(g, 6) for g in gains[:3]]
    assert {w[1] for w in least} <= {"png", "jpeg-90-420"}
    path = tmp_path / "worst.png"
    worst_sheet(least, str(path))
    with Image.open(path) as sheet:
        assert sheet.width == 4 + 4 * (200 + 4) and sheet.height == 16 + 3 * (14 + 200 + 4)


def test_score_of_an_untouched_file_is_its_input():
    case = make_cases("png", "selection", 1)[0]
    row = score(case, case.data, np.zeros(case.case.mask.shape, bool))
    assert row["identical"] == 1.0 and row["worse"] == 0.0 and row["psnr"] == row["psnr_input"]
    assert row["mask_iou"] == 0.0 and row["psnr_outside_vs_input"] == 100.0


def test_the_paint_alone_against_the_damage():
    """A saved JPEG's damage is its shapes and the ring around them: a mask of exactly the shapes
    scores below 1 against it (the ceiling of a mask that finds only paint); a PNG's is the paint."""
    png, jpeg = make_cases("png", "selection", 1)[0], make_cases("jpeg-75-420", "selection", 1)[0]
    assert np.array_equal(png.paint, png.case.mask)
    assert not (jpeg.paint & ~jpeg.case.mask).any() and jpeg.case.mask.sum() > jpeg.paint.sum()
    exact = score(jpeg, jpeg.data, jpeg.paint)
    assert exact["mask_iou_paint"] == 1.0 and exact["paint_iou"] == exact["mask_iou"] < 0.95
    assert score(png, png.data, png.paint)["paint_iou"] == 1.0


def test_the_clean_kinds_are_the_painted_kinds_pictures_with_nothing_painted(monkeypatch):
    """Clean crops are the painted crops before their paint, clean framed crops the framed crops
    before theirs (the same frames); a clean camera-size photo is the camera kind's photo (its
    noise included); each saved as the painted ones are."""
    import benchmarks.photo_cases as pc

    monkeypatch.setattr(pc, "CAMERA", (60, 80))  # the same pictures, smaller
    for clean_kind, painted_kind in (("clean-crops-jpeg-90", "jpeg-90-420"), ("clean-camera-12mp-jpeg-90", "camera-12mp-jpeg-90"),
                                     ("clean-framed-crops-jpeg-75", "framed-crops-jpeg-75")):
        clean, painted = make_cases(clean_kind, "selection", 1), make_cases(painted_kind, "selection", 1)
        assert len(clean) == len(painted) == 5
        for c, p in zip(clean, painted):
            assert not c.case.mask.any() and np.array_equal(c.case.corrupted, c.case.clean)
            assert np.array_equal(c.case.clean, p.case.clean) and p.case.mask.any()
            assert c.data[:2] == b"\xff\xd8"  # saved as a JPEG


def test_the_camera_kind_of_jpeg_is_saved_4_2_2():
    """JPEG 95 at 4:2:2, as many cameras write: chroma halved across, not down."""
    import io

    from PIL import JpegImagePlugin

    case = make_cases("jpeg-95-422", "selection", 1)[0]
    with Image.open(io.BytesIO(case.data)) as im:
        assert im.format == "JPEG" and JpegImagePlugin.get_sampling(im) == 1
    assert case.case.mask.any() and case.paint is not None


def test_the_webp_and_resized_jpeg_kinds_are_the_crops_saved_so():
    """WebP 75 and 90: the painted crops saved as lossy WebP (a VP8 chunk, not VP8L); JPEG 90
    resized: the crops of the resized PNG kind, saved as a 4:2:0 JPEG 90 instead."""
    import io

    from PIL import JpegImagePlugin

    png = make_cases("png", "selection", 1)
    for kind in ("webp-75", "webp-90"):
        webp = make_cases(kind, "selection", 1)
        assert len(webp) == len(png) == 5
        for w, p in zip(webp, png):
            assert w.data[:4] == b"RIFF" and w.data[12:16] == b"VP8 "  # lossy
            assert np.array_equal(w.paint, p.case.mask) and w.case.mask.any()
    resized_png, resized_jpeg = make_cases("png-resized", "selection", 1), make_cases("jpeg-90-resized", "selection", 1)
    for p, j in zip(resized_png, resized_jpeg):
        assert np.array_equal(j.paint, p.paint) and j.case.mask.shape == p.case.mask.shape
        with Image.open(io.BytesIO(j.data)) as im:
            assert im.format == "JPEG" and JpegImagePlugin.get_sampling(im) == 2 and im.size == p.case.mask.shape[::-1]
        assert psnr(j.case.corrupted, p.case.corrupted) > 30  # the same picture, through the codec


def test_the_framed_kind_is_the_whole_photos_in_a_frame():
    """framed-jpeg-90: each whole photo, the same painting, in a border of one colour (white, then
    black) 4 % of its long side wide; the frame holds no damage."""
    whole, framed = make_cases("whole-jpeg-90", "selection", 3), make_cases("framed-jpeg-90", "selection", 3)
    assert len(whole) == len(framed) == 5
    for i, (w, f) in enumerate(zip(whole, framed)):
        h, wd = w.case.clean.shape[:2]
        b = round(0.04 * max(h, wd))
        assert f.case.clean.shape == (h + 2 * b, wd + 2 * b, 3) and f.data[:2] == b"\xff\xd8"
        colour = 255 if i % 2 == 0 else 0
        outer = (f.case.clean[:4], f.case.clean[:, :4])  # as decoded: the codec's rounding, no photo
        assert all(np.abs(e.astype(int) - colour).max() <= 6 for e in outer), (i, [e.min() for e in outer])
        assert psnr(f.case.clean[b:-b, b:-b], w.case.clean) > 30  # the same picture, on another block grid
        assert np.array_equal(f.paint[b:-b, b:-b], w.paint) and not f.paint[:b].any() and not f.case.mask[:b // 2].any()


def test_the_whole_png_kind_is_the_whole_photos_saved_exactly():
    """whole-png: the whole photos of whole-jpeg-90, the same paintings, as PNG files that decode
    to the painted photo exactly, the damage exactly the paint."""
    whole, png = make_cases("whole-jpeg-90", "selection", 3), make_cases("whole-png", "selection", 3)
    assert [w.case.name for w in whole] == [p.case.name for p in png] and len(png) == 5
    for w, p in zip(whole, png):
        assert p.data[:8] == b"\x89PNG\r\n\x1a\n" and np.array_equal(p.paint, w.paint)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(p.data)).convert("RGB")), p.case.corrupted)
        assert np.array_equal(p.case.mask, p.paint)


def test_the_whole_kind_is_heldout_whole_set_the_int8_verification_draws_too():
    """The whole photos come from one function, `heldout.whole_set`, which the int8 export's
    verification also draws (its own seed): each photo of the group whole, painted anew each time,
    seeded; the selection group never holds an evaluation photo."""
    from restore_core.heldout import EVALUATION_PHOTOS, HELDOUT_SEED, SELECTION_PHOTOS, whole_set

    whole = make_cases("whole-jpeg-90", "selection", 6)
    cases = whole_set(2, seed=EVAL_SEED, photos="selection")
    assert [w.case.name for w in whole] == [c.name for c in cases] and len(cases) == 2 * len(SELECTION_PHOTOS)
    assert all(np.array_equal(w.paint, c.mask) for w, c in zip(whole, cases))
    assert {c.source for c in cases} == set(SELECTION_PHOTOS) and not {c.source for c in cases} & set(EVALUATION_PHOTOS)
    for a, b in zip(cases[::2], cases[1::2]):  # one photo, two paintings
        assert a.source == b.source and np.array_equal(a.clean, b.clean) and not np.array_equal(a.mask, b.mask)
        assert a.mask.any() and a.mask.shape == a.clean.shape[:2]
    again = whole_set(2, seed=EVAL_SEED, photos="selection")
    assert all(np.array_equal(a.corrupted, b.corrupted) for a, b in zip(cases, again))
    other = whole_set(1, seed=HELDOUT_SEED, photos="selection")
    assert not np.array_equal(other[0].mask, cases[0].mask)


def test_the_three_photo_collage_has_a_gutter_across_a_panel():
    """collage3: one crop beside (under) the two others stacked (side by side), gutters of one
    colour: one across the whole picture, one across the pair's panel alone; the clean kind is
    the painted kind's picture with nothing painted, the painted one paints after the layout."""
    from benchmarks.gutter_shares import drawn_lines
    from benchmarks.photo_cases import EVAL_SEED, painted_cases
    from runtime.gutter import _spans

    def inner(lines: np.ndarray) -> list:  # the runs of lines drawn in one colour off both ends (not the frame)
        return [(a, b) for a, b in _spans(drawn_lines(lines)) if a > 0 and b < len(lines)]

    clean, painted = (painted_cases("selection", k, 4, EVAL_SEED) for k in ("clean-collage3", "collage3"))
    assert len(clean) == len(painted) == 6
    for i, (c, p) in enumerate(zip(clean, painted)):
        img = c.clean
        assert np.array_equal(img, p.clean) and p.mask.any() and not c.mask.any()
        across = i % 2  # 0: the pair stacked on the left, the gutter from top to bottom a run of columns
        whole = inner(img if across else img.transpose(1, 0, 2))
        assert len(whole) == 1 and not inner(img.transpose(1, 0, 2) if across else img), i
        start = whole[0][0]
        pair = img[:start] if across else img[:, :start]  # the pair's panel
        assert len(inner(pair.transpose(1, 0, 2) if across else pair)) == 1, i  # its gutter, across it alone
