"""A picture mostly of flat colour or straight gradients is a graphic, left as it was (runtime/flat.py, runtime/graphic.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from restore_core.graphics import EVALUATION_GRAPHICS, SELECTION_GRAPHICS, graphics
from restore_core.graphics_drawn import chart, poster, screen, sheet
from runtime import flat
from runtime.flat import (
    GRAPHIC_SHARE,
    TEXTURE_SHARE,
    flat_grid,
    flat_share,
    shade_tolerance,
    texture_share,
)
from runtime.graphic import is_graphic_note, read_shares

RNG = np.random.default_rng(5)


def _straight(rgb: np.ndarray, y: int, x: int, tolerance: int) -> bool:
    """Whether (y, x) lies on a straight gradient: every channel's second difference in the four
    directions, REACH and SHADE_REACH away, within `tolerance`, and all of them in the image."""
    h, w = rgb.shape[:2]
    for r in (flat.REACH, flat.SHADE_REACH):
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            ends = [(y - dy * r, x - dx * r), (y + dy * r, x + dx * r)]
            if not all(0 <= a < h and 0 <= b < w for a, b in ends) or min(y, x, h - 1 - y, w - 1 - x) < flat.SHADE_REACH:
                return False
            bend = sum(rgb[a, b].astype(int) for a, b in ends) - 2 * rgb[y, x].astype(int)
            if np.abs(bend).max() > tolerance:
                return False
    return True


def _by_hand(rgb: np.ndarray, mask: np.ndarray, tolerance: int = flat.SHADE_TOLERANCE) -> float:
    """flat_share pixel by pixel: centres on the grid REACH, REACH + STEP, ..., none within MARGIN
    of a marked pixel, flat when the 8 pixels REACH away are exactly its colour, or when it lies on
    a straight gradient (within `tolerance`)."""
    h, w = mask.shape
    r, flat_count, read = flat.REACH, 0, 0
    for y in range(r, h - r, flat.STEP):
        for x in range(r, w - r, flat.STEP):
            if (mask[max(0, y - flat.MARGIN):y + flat.MARGIN + 1, max(0, x - flat.MARGIN):x + flat.MARGIN + 1] > 0).any():
                continue
            ys, xs = np.meshgrid([y - r, y, y + r], [x - r, x, x + r], indexing="ij")
            nb = rgb[ys.ravel(), xs.ravel()].astype(int)  # (9, 3)
            read += 1
            flat_count += int((nb.max(0) - nb.min(0)).max() <= flat.TOLERANCE or _straight(rgb, y, x, tolerance))
    return flat_count / read if read else 0.0


def _ramp(h: int, w: int, angle: float, a=(20, 90, 250), b=(250, 180, 10)) -> np.ndarray:
    """(h, w, 3) uint8: a two-colour gradient across the picture at `angle`, rounded to levels."""
    yy, xx = np.mgrid[0:h, 0:w]
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (t.max() - t.min())
    return (np.array(a) + (np.array(b) - np.array(a)) * t[..., None]).round().astype(np.uint8)


@pytest.mark.parametrize("strip", [1, 7, 256])
def test_the_flat_share_matches_a_count_by_hand(monkeypatch, strip):
    monkeypatch.setattr(flat, "STRIP", strip)  # strips of any height read the same grid
    for h, w in ((61, 47), (9, 9), (130, 33)):
        rgb = np.repeat(RNG.integers(0, 2, (h, w, 1), dtype=np.uint8), 3, axis=-1)
        rgb[: h // 2] = 200  # the top half flat, the bottom half two-level noise
        mask = (RNG.random((h, w)) < 0.01).astype(np.uint8) * 255
        assert flat_share(rgb, mask) == pytest.approx(_by_hand(rgb, mask), abs=1e-12)
    assert flat_share(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.uint8)) == 0.0  # nothing to read


@pytest.mark.parametrize("strip", [1, 7, 256])
def test_the_share_with_gradients_matches_a_count_by_hand(monkeypatch, strip):
    """Gradients at four angles with patches of noise and of flat colour, and pictures too small
    for the far reach, against the count pixel by pixel, with either tolerance."""
    monkeypatch.setattr(flat, "STRIP", strip)
    for (h, w), angle in (((97, 131), 0.3), ((140, 60), 2.0), ((33, 40), 4.0), ((20, 200), 1.0)):
        rgb = _ramp(h, w, angle)
        rgb[h // 3:h // 2, w // 4:w // 2] = RNG.integers(0, 256, (h // 2 - h // 3, w // 2 - w // 4, 3), dtype=np.uint8)
        rgb[h // 2:, w // 2:] = 77
        mask = (RNG.random((h, w)) < 0.002).astype(np.uint8) * 255
        for tolerance in (flat.SHADE_TOLERANCE, flat.FINE_SHADE_TOLERANCE, flat.COARSE_SHADE_TOLERANCE):
            assert flat_share(rgb, mask, tolerance) == pytest.approx(_by_hand(rgb, mask, tolerance), abs=1e-12)
        shares = read_shares(rgb, mask)  # the coarse reading: within 3 levels, texture among the not exactly flat
        coarse, read = flat_grid(rgb, mask, flat.COARSE_SHADE_TOLERANCE)
        exact = _by_hand(rgb, mask, -1)  # no gradient within -1 levels: exactly flat only
        assert shares.coarse_flat == pytest.approx(_by_hand(rgb, mask, flat.COARSE_SHADE_TOLERANCE), abs=1e-12)
        assert shares.coarse_texture == pytest.approx(texture_share(coarse, read) / (1 - exact), abs=1e-12)


def _jpeg(rgb: np.ndarray, quality: int) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)  # 4:2:0, as Pillow writes by default
    return Image.open(buf)


def test_a_drawn_gradient_counts_as_flat_and_noise_does_not():
    """A straight gradient in any direction is flat (its border, within SHADE_REACH, aside) as
    drawn; saved as JPEG 90 more of it is straight within FINE_SHADE_TOLERANCE than to the level.
    A level or two of noise on it breaks it to the level; three levels breaks it at either."""
    none = np.zeros((300, 400), np.uint8)
    fine = flat.FINE_SHADE_TOLERANCE
    for angle in (0.0, 0.7, 1.9, 3.5):
        ramp = _ramp(300, 400, angle)
        assert flat_share(ramp, none) > 0.8 and flat_share(ramp, none, fine) > 0.8
        saved = np.asarray(_jpeg(ramp, 90).convert("RGB"))
        assert flat_share(saved, none, fine) > flat_share(saved, none) + 0.1
        for levels, tolerance in ((2, flat.SHADE_TOLERANCE), (3, fine)):
            noisy = np.clip(ramp.astype(int) + RNG.integers(-levels, levels + 1, ramp.shape), 0, 255).astype(np.uint8)
            assert flat_share(noisy, none, tolerance) < 0.05


def test_only_a_finely_coded_jpeg_widens_the_tolerance():
    """A JPEG at quality 90 or 95 (luma steps (0, 1) and (1, 0) at most FINE_STEP) takes the fine
    tolerance; at 85 or 75, a file with no tables (lossless, WebP, an array) or an odd table, the
    level."""
    ramp = _ramp(32, 32, 0.5)
    for quality, tolerance in ((95, flat.FINE_SHADE_TOLERANCE), (90, flat.FINE_SHADE_TOLERANCE),
                               (85, flat.SHADE_TOLERANCE), (75, flat.SHADE_TOLERANCE)):
        assert shade_tolerance(_jpeg(ramp, quality).quantization) == tolerance, quality
    assert shade_tolerance(None) == shade_tolerance({}) == shade_tolerance({0: [1] * 10}) == flat.SHADE_TOLERANCE


def test_a_photo_scaled_up_without_noise_is_no_gradient():
    """A photo's smooth shading scaled up 6 times (LANCZOS, no noise) is straight to the level over
    4 pixels, but it bends over SHADE_REACH: read at REACH alone it would pass for a graphic."""
    from restore_core.photos import bundled_photos

    crop = bundled_photos()["retina"][500:660, 500:660]
    big = np.asarray(Image.fromarray(crop).resize((960, 960), Image.LANCZOS))
    none = np.zeros(big.shape[:2], np.uint8)
    assert flat_share(big, none) < GRAPHIC_SHARE / 4
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(flat, "SHADE_REACH", flat.REACH)
        assert flat_share(big, none) > GRAPHIC_SHARE


def test_flat_noise_and_blocks_of_one_colour():
    """A flat picture is all flat, noise none; a picture whose every 8x8 block is one colour (a
    JPEG's smooth blocks coded by their mean) is not flat, since each neighbourhood spans two blocks."""
    none = np.zeros((200, 200), np.uint8)
    assert flat_share(np.full((200, 200, 3), 90, np.uint8), none) == 1.0
    assert flat_share(RNG.integers(0, 256, (200, 200, 3), dtype=np.uint8), none) == 0.0
    blocks = np.kron(RNG.integers(0, 256, (25, 25, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    assert flat_share(blocks, none) == 0.0


def test_the_pixels_around_the_marks_are_not_read():
    """Noise right around a mark (its paint's edge) does not count; the same noise further out does."""
    rgb = np.full((200, 200, 3), 240, np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[80:120, 80:120] = 255
    rgb[79:121, 79:121] = RNG.integers(0, 256, (42, 42, 3), dtype=np.uint8)  # a pixel of noise around the mark
    assert flat_share(rgb, mask) == 1.0
    rgb[60:140, 60:140] = RNG.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    rgb[80:120, 80:120] = (250, 0, 0)
    assert flat_share(rgb, mask) < 1.0


def test_graphics_are_flat_and_photos_are_not():
    """A screen saved as PNG and as JPEG 75 reads above the threshold; a painted photo (a training
    photo) saved as JPEG 75, with its paint as the mark, far below it."""
    from restore_core.photos import bundled_photos

    shot = screen(np.random.default_rng(3))
    photo = np.ascontiguousarray(bundled_photos()["astronaut"][:300, :300])
    painted, mask = photo.copy(), np.zeros(photo.shape[:2], np.uint8)
    painted[50:120, 60:150], mask[50:120, 60:150] = (30, 200, 60), 255
    for quality in (None, 75):
        as_saved = []
        for img in (shot, painted):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "PNG" if quality is None else "JPEG", **({"quality": quality} if quality else {}))
            as_saved.append(np.asarray(Image.open(buf).convert("RGB")))
        shot_mask = np.zeros(shot.shape[:2], np.uint8)
        shot_mask[100:140, 100:300] = 255
        shares = read_shares(as_saved[0], shot_mask)
        assert shares.flat >= GRAPHIC_SHARE and shares.texture < TEXTURE_SHARE and shares.graphic
        assert flat_share(as_saved[1], mask) < GRAPHIC_SHARE / 4 and not read_shares(as_saved[1], mask).graphic


def test_texture_is_unflat_among_unflat_neighbours():
    """Grid pixels in texture by hand: a thin unflat line (text, an edge) is not texture, a patch
    of noise three grid pixels wide is texture at its middle column only."""
    flat = np.ones((5, 7), bool)
    read = np.ones((5, 7), bool)
    flat[2, :] = False  # a line one grid pixel thick
    assert texture_share(flat, read) == 0.0
    flat[1:4, 2:5] = False  # a 3x3 patch: its middle pixel has eight unflat neighbours
    assert texture_share(flat, read) == pytest.approx(1 / 35)
    read[2, 3] = False  # not read: not counted either way
    assert texture_share(flat, read) == 0.0
    assert texture_share(flat, np.zeros_like(read)) == 0.0


def test_a_photo_half_painted_over_is_still_a_photo():
    """A photo whose paint covers nearly half of it, the mask finding only its rim, is flat there
    but textured everywhere else: not a graphic, as a drawn picture of the same flatness is."""
    photo = RNG.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    photo[20:300, 20:300] = (40, 170, 220)  # the paint: 49 % of the picture
    rim = np.zeros((400, 400), np.uint8)
    rim[20:300, 20:24] = rim[20:300, 296:300] = rim[20:24, 20:300] = rim[296:300, 20:300] = 255
    flat, read = flat_grid(photo, rim)
    assert flat_share(photo, rim) > GRAPHIC_SHARE and texture_share(flat, read) >= TEXTURE_SHARE
    assert not read_shares(photo, rim).graphic
    drawn = photo.copy()
    drawn[300:, :] = drawn[:, 300:] = 255  # the same panel on a white page, a line of text below it
    drawn[350:356, 40:360] = RNG.integers(0, 256, (6, 320, 3), dtype=np.uint8)
    assert read_shares(drawn, rim).graphic


def test_a_gradient_a_coarse_codec_bent_is_read_within_three_levels():
    """A poster saved as JPEG 75 and WebP 90: its gradient bent past a level, so not flat enough at
    one; within COARSE_SHADE_TOLERANCE flat, with little texture among its unflat pixels. A photo
    painted over half, its paint found at the rim only, is as flat there, but mostly texture
    around the paint: a photo still."""
    from restore_core.photos import bundled_photos

    drawn = poster(np.random.default_rng(1))
    mask = np.zeros(drawn.shape[:2], np.uint8)
    mask[200:260, 300:420] = 255
    for fmt, quality in (("JPEG", 75), ("WEBP", 90)):
        buf = io.BytesIO()
        Image.fromarray(drawn).save(buf, fmt, quality=quality)
        shares = read_shares(np.asarray(Image.open(buf).convert("RGB")), mask)
        assert shares.flat < GRAPHIC_SHARE and shares.top < 0.35, (fmt, shares)  # neither other reading takes it
        assert shares.coarse_flat >= GRAPHIC_SHARE and shares.coarse_texture < flat.COARSE_TEXTURE_SHARE, (fmt, shares)
        assert shares.graphic
    photo = np.asarray(Image.fromarray(bundled_photos()["coffee"]).resize((600, 600), Image.LANCZOS)).copy()
    photo[40:460, 40:460] = (200, 40, 90)
    rim = np.zeros((600, 600), np.uint8)
    rim[36:464, 36:44] = rim[36:464, 456:464] = rim[36:44, 36:464] = rim[456:464, 36:464] = 255
    shares = read_shares(np.asarray(_jpeg(photo, 75).convert("RGB")), rim)
    assert shares.coarse_flat >= GRAPHIC_SHARE and shares.coarse_texture >= flat.COARSE_TEXTURE_SHARE, shares
    assert not shares.graphic


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu")


def test_a_poster_holding_a_photo_in_a_coarse_jpeg_is_a_graphic(restorer):
    """The selection poster with a photo inset over a fifth of it, at JPEG 75: the photo's texture
    counts among its unflat pixels (0.38 of them; the photos with as much flat read 0.449 and
    more), so only COARSE_TEXTURE_SHARE above that takes it, and its orange panel, which the model
    marks, stays."""
    from benchmarks.photo_cases import make_cases

    (case,) = [f for f in make_cases("clean-graphics-jpeg-75", "selection", 4) if f.case.name == "inset_01"]
    image = Image.open(io.BytesIO(case.data))
    rgb = np.asarray(image.convert("RGB"))
    restored = restorer.restore(image)
    assert len(restored.notes) == 1 and is_graphic_note(restored.notes[0])
    assert np.array_equal(np.asarray(restored.image), rgb)
    restorer.graphic_check = False
    try:
        found = np.asarray(restorer.restore(image).mask) > 0
    finally:
        restorer.graphic_check = True
    assert found.sum() > 5000  # the panel, 8,680 pixels
    shares = read_shares(rgb, found, shade_tolerance(None))
    assert shares.graphic and shares.flat < GRAPHIC_SHARE and shares.top < 0.35  # neither other reading takes it
    assert shares.coarse_flat >= GRAPHIC_SHARE and 0.35 < shares.coarse_texture < flat.COARSE_TEXTURE_SHARE, shares


def _graphic_folder(tmp_path):
    """A screen and a poster on a gradient, each saved as PNG and JPEG 90, the poster also as JPEG
    75 (its gradient within 3 levels), a spreadsheet saved as JPEG 90 (nothing flat in it: a
    graphic by its few colours, runtime/palette.py), a chart holding a photo over 45 % of it, saved
    as JPEG 90 (a graphic outside the photo's block, runtime/inset.py), and a painted photo: the
    shipped model marks all eight."""
    from restore_core.photos import bundled_photos

    src = tmp_path / "in"
    src.mkdir()
    shot = Image.fromarray(screen(np.random.default_rng(1)))
    shot.save(src / "screen.png")
    shot.save(src / "screen.jpg", quality=90)
    photo = np.ascontiguousarray(bundled_photos()["astronaut"][:256, :320])
    photo[40:110, 50:140] = (20, 210, 70)
    Image.fromarray(photo).save(src / "photo.png")
    drawn = Image.fromarray(poster(np.random.default_rng(1)))  # on a gradient
    drawn.save(src / "poster.png")
    drawn.save(src / "poster.jpg", quality=90)
    drawn.save(src / "poster-75.jpg", quality=75)  # its gradient bent past a level (within 3)
    Image.fromarray(sheet(np.random.default_rng(2))).save(src / "sheet.jpg", quality=90)
    framed = Image.fromarray(chart(np.random.default_rng(3)))
    w, h = framed.size
    framed.paste(Image.fromarray(bundled_photos()["coffee"]).resize((w * 7 // 10, h * 13 // 20)), (w * 3 // 10, h * 7 // 20))
    framed.save(src / "inset.jpg", quality=90)
    return src


def test_restore_run_leaves_a_graphic_as_it_was_and_says_so(restorer, tmp_path):
    from runtime.batch import RunOptions, run_folder
    from runtime.report import summary_lines

    src = _graphic_folder(tmp_path)
    result = run_folder(restorer, src, tmp_path / "out", RunOptions(progress=False))
    by_name = {r.input: r for r in result.records}
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    graphics = ("screen.png", "screen.jpg", "poster.png", "poster.jpg", "poster-75.jpg", "sheet.jpg", "inset.jpg")
    for name in graphics:
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()  # byte for byte
        assert by_name[name].written == "copied" and any(is_graphic_note(n) for n in by_name[name].notes)
    assert by_name["photo.png"].written == "changed" and not by_name["photo.png"].notes
    assert result.summary.graphics == 7 and result.summary.copied == 7
    lines = summary_lines(result.summary, result.records)
    assert "of the 8 restored: 1 changed, 7 copied as they were (nothing found); 7 of those graphics, not photos, " \
           "each LEFT below" in lines
    assert sum(line.startswith(tuple(f"LEFT {name}:" for name in graphics)) for line in lines) == 7
    restorer.graphic_check = False
    try:  # without the check the model's marks are restored: the screen loses its panels
        kept = run_folder(restorer, src, tmp_path / "kept", RunOptions(progress=False))
    finally:
        restorer.graphic_check = True
    assert {r.input: r.written for r in kept.records} == {name: "changed" for name in (*graphics, "photo.png")}


def test_restore_of_a_graphic_gives_it_back_with_a_note(restorer):
    shot = screen(np.random.default_rng(1))
    out = restorer.restore(Image.fromarray(shot))
    assert np.array_equal(np.asarray(out.image), shot) and not np.asarray(out.mask).any()
    assert len(out.notes) == 1 and is_graphic_note(out.notes[0])
    as_array = restorer.restore(shot)
    assert np.array_equal(as_array.image, shot) and as_array.masked_share == 0.0


def test_the_check_is_the_shipped_models_and_can_be_set(restorer, tiny_onnx):
    from runtime import Restorer

    assert restorer.graphic_check and restorer.solid_check  # the shipped weights
    assert not Restorer(tiny_onnx, device="cpu").graphic_check  # a model of one's own: off unless asked
    assert Restorer(tiny_onnx, device="cpu", graphic_check=True).graphic_check


def test_the_graphics_groups_share_no_generator_and_no_picture():
    """Selection and evaluation graphics come from different generators; drawn again from the same
    seed they are the same pictures."""
    import hashlib

    assert not set(SELECTION_GRAPHICS) & set(EVALUATION_GRAPHICS)
    sel, ev = graphics("selection", 2), graphics("evaluation", 2)
    assert len(sel) == 12 and len(ev) == 16  # 2 of each generator, and the two packages' logos
    digest = lambda pics: {hashlib.sha256(p.tobytes()).hexdigest() for p in pics.values()}  # noqa: E731
    assert not digest(sel) & digest(ev)
    again = graphics("selection", 2)
    assert all(np.array_equal(sel[k], again[k]) for k in sel)
    assert all(img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 for img in {**sel, **ev}.values())
