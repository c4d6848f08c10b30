"""A found mark grown over the rest of its own paint (runtime/paint_grow.py), and the grown pixels
filled by the smooth fill alone (runtime/fill.py, runtime/restorer.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from runtime.fill import even_fill
from runtime.paint_grow import (
    BLEND_MIN,
    CONTRAST,
    FLAT,
    GROWTH,
    RIM,
    SMOOTH,
    STEPS,
    TOLERANCE,
    blend_rims,
    grow_over_paint,
    put_patches,
)

PAINT = (200, 40, 160)


def _photo(shape=(120, 160), seed=0):
    """A textured photo (every pixel 60 to 140: far from the paint) with a 40x40 square of paint,
    a little noisy as a JPEG leaves it, at rows 40:80, columns 60:100."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(60, 141, shape + (3,)).astype(np.uint8)
    square = np.zeros(shape, bool)
    square[40:80, 60:100] = True
    noise = rng.integers(-4, 5, (square.sum(), 3))
    rgb[square] = np.clip(np.array(PAINT) + noise, 0, 255).astype(np.uint8)
    return rgb, square


def test_a_half_found_mark_grows_over_the_rest_of_its_paint_and_no_further():
    rgb, square = _photo()
    mask = np.zeros_like(square)
    mask[40:80, 60:80] = True  # the mask found the left half
    grown = grow_over_paint(rgb, mask)
    assert np.array_equal(grown, square & ~mask)  # exactly the right half: the photo is too far from the paint
    assert not (grown & mask).any()


def test_it_grows_at_most_steps_pixels():
    rgb, square = _photo((60, 200))
    rgb[20:30, :] = PAINT  # a strip of the paint's colour across the whole width
    mask = np.zeros(square.shape, bool)
    mask[20:30, 0:40] = True
    grown = grow_over_paint(rgb, mask)
    cols = np.nonzero(grown.any(axis=0))[0]
    assert cols.min() == 40 and cols.max() == 40 + STEPS - 1  # one pixel a step, STEPS steps


def test_a_mark_that_would_grow_too_far_or_is_too_small_is_left_as_found():
    rgb, square = _photo((120, 160))
    rgb[:, :] = PAINT  # the paint's colour everywhere: a region of the photo, not a mark
    mask = np.zeros(square.shape, bool)
    mask[50:58, 70:78] = True  # 64 pixels that would grow to 72x72, 81 times as many
    assert (72 * 72) > GROWTH * 64 and not grow_over_paint(rgb, mask).any()
    rgb, square = _photo()
    speck = np.zeros_like(square)
    speck[40:45, 60:65] = True  # inside the paint, but 9 inner pixels: too few to judge
    assert not grow_over_paint(rgb, speck).any()


def test_a_large_mark_found_in_part_grows_over_all_of_it():
    """A 40x40 square of paint of which a 12x12 corner was found (a large flat mark the mask is
    unsure of): it grows over the rest, 11 times what was found, within GROWTH."""
    rgb, square = _photo()
    mask = np.zeros_like(square)
    mask[40:52, 60:72] = True
    assert square.sum() <= GROWTH * mask.sum()
    assert np.array_equal(grow_over_paint(rgb, mask), square & ~mask)


def test_a_mark_that_is_not_one_flat_colour_is_not_grown():
    rgb, square = _photo()
    mask = np.zeros_like(square)
    mask[5:25, 5:25] = True  # photo the mask took for paint: 60 to 140 in every channel
    spread = np.percentile(np.abs(rgb[6:24, 6:24].astype(float) - np.median(rgb[6:24, 6:24].reshape(-1, 3), 0)).max(-1), 75)
    assert spread > FLAT
    rgb[25:35, 5:25] = np.median(rgb[6:24, 6:24].reshape(-1, 3), 0).astype(np.uint8)  # its median colour beside it
    assert not grow_over_paint(rgb, mask).any()


def test_touching_marks_of_two_paints_each_grow_over_their_own():
    """Two squares of different paint side by side, found as one mark with the inside of each
    missed in places: each grows over its own paint, and neither over the other's or the photo."""
    rgb, square = _photo()
    other = np.zeros_like(square)
    other[40:80, 100:130] = True
    rgb[other] = (40, 190, 170)
    both = square | other
    mask = both.copy()
    mask[50:70, 70:90] = False  # a pocket in each, and the far end of the second
    mask[45:75, 110:130] = False
    grown = grow_over_paint(rgb, mask)
    assert np.array_equal(grown, both & ~mask)


def test_shades_of_one_colour_are_not_paints():
    """A mark over a shaded surface (three pinks 21 to 24 levels apart, as the lit and shaded
    sides of one object) is a patch of photo: it is not split into paints, and grows over nothing."""
    rgb, square = _photo()
    rgb[40:80, 60:80] = (234, 99, 180)  # half of it
    rgb[40:80, 80:88] = (228, 120, 200)
    rgb[40:80, 88:100] = (234, 75, 160)
    rgb[40:80, 100:110] = (234, 75, 160)  # that shade goes on beside the mark
    mask = np.zeros_like(square)
    mask[40:80, 60:100] = True
    assert not grow_over_paint(rgb, mask).any()


def test_nothing_to_grow():
    rgb, square = _photo()
    assert not grow_over_paint(rgb, np.zeros_like(square)).any()
    half = square.copy()
    half[:, 80:] = False
    assert not grow_over_paint(rgb, half, tolerance=0).any()
    assert TOLERANCE > 0


def _blended(share_first: float, share_second: float, photo=(90, 110, 130), noise: int = 2, seed: int = 5, ramp: float = 0):
    """A smooth photo (`photo` with +-`noise` levels, and `ramp` levels more a column) and a 40x40
    square of paint whose first two rings of pixels outside it are blends: `share_first` of the
    paint in the ring touching it, `share_second` in the next (a JPEG's subsampled chroma, a resize)."""
    rng = np.random.default_rng(seed)
    lit = ramp * np.arange(160)[None, :, None]
    rgb = np.clip(np.array(photo) + lit + rng.integers(-noise, noise + 1, (120, 160, 3)), 0, 255).astype(np.float64)
    square = np.zeros((120, 160), bool)
    square[40:80, 60:100] = True
    first, second = np.zeros_like(square), np.zeros_like(square)
    first[39:81, 59:101] = True
    second[38:82, 58:102] = True
    second &= ~first
    first &= ~square
    for ring, share in ((first, share_first), (second, share_second)):
        rgb[ring] = share * np.array(PAINT) + (1 - share) * rgb[ring]
    rgb[square] = PAINT
    return rgb.round().astype(np.uint8), square, first, second


def _unblended(rgb, square):
    """`blend_rims` on the input `rgb` with the `square` found and filled grey, their values put
    in: (restored, mask, rims)."""
    restored = rgb.copy()
    restored[square] = 128
    mask = np.where(square, np.uint8(255), np.uint8(0))
    rims, patches = blend_rims(rgb, mask)
    put_patches(restored, patches)
    return restored, mask, rims


def test_blends_of_the_paint_and_a_smooth_photo_beside_a_mark_are_unblended():
    """The ring half paint and the one a quarter paint beyond it join the mark, each pixel back to
    the photo within its noise and rounding; a ring a tenth paint (within the photo's own
    variation) does not, nor does anything past RIM pixels; nothing else changes."""
    photo = np.array((90, 110, 130))
    rgb, square, first, second = _blended(0.5, 0.3, photo=photo)
    restored, mask, rims = _unblended(rgb, square)
    assert np.array_equal(rims, first | second)
    assert np.array_equal(mask > 0, square | rims)
    assert np.abs(restored[rims].astype(int) - photo).max() <= 4  # the noise (2) and the rounding
    assert np.array_equal(restored[~(square | rims)], rgb[~(square | rims)])
    assert (restored[square] == 128).all()  # the fill is not touched
    rgb, square, first, second = _blended(0.5, 0.1)
    assert np.array_equal(_unblended(rgb, square)[2], first)
    assert RIM == 2 and BLEND_MIN > 0.1


def test_the_fill_reads_past_the_blends():
    """The smooth fill of a mark reads the pixels around it: with its blended rings joined to the
    mask first it reads the photo past them, and the square comes back the photo's colour; without,
    it reads the rings and is tinted towards the paint."""
    from runtime.mark_edits import filled

    photo = np.array((90, 110, 130))
    rgb, square, first, second = _blended(0.5, 0.3, photo=photo)
    errors = {}
    for unblend in (False, True):
        mask = np.where(square, np.uint8(255), np.uint8(0))
        restored = rgb.copy()
        restored[square] = photo  # the network's fill: the photo; the smooth fill has 3/4 of each pixel
        out = filled(rgb, restored, mask, None, False, [], np.zeros(square.shape, bool), None, unblend=unblend)
        errors[unblend] = np.abs(out[square].astype(int) - photo).max()
        assert np.array_equal((mask > 0), square | (first | second if unblend else False))
    assert errors[True] <= 4 < 20 < errors[False]


def test_no_blend_is_taken_from_texture_or_a_photo_close_to_the_paint():
    """Beside a textured photo (60 to 140 at random: its spread over SMOOTH) or a photo within
    CONTRAST levels of the paint, a blend cannot be told from the photo: the mark stays as found."""
    rgb, square, first, second = _blended(0.5, 0.3, noise=40)
    assert not _unblended(rgb, square)[2].any()
    near = tuple(c + (CONTRAST - 8) * (1 if c < 128 else -1) for c in PAINT)  # each channel 40 levels from the paint
    rgb, square, first, second = _blended(0.5, 0.3, photo=near)
    assert not _unblended(rgb, square)[2].any()
    assert SMOOTH < 20


def test_the_restorer_unblends_the_rim_of_a_mark_it_found_unless_paint_grow_is_off():
    """The shipped model on a square of paint with two blended rings around it (as a resize
    leaves them): with paint_grow (the default) the rings join the mask, back to the photo; off,
    what the model itself left of them stays as it came."""
    from runtime.restorer import Restorer

    photo = np.array((90, 110, 130))
    rgb, square, first, second = _blended(0.5, 0.3, photo=photo, ramp=0.25)  # lit from one side: not a frame
    rings = first | second
    photo = photo + 0.25 * np.nonzero(rings)[1][:, None]  # each ring pixel's photo
    checks = dict(graphic_check=False, solid_check=False)  # a flat photo with one square: a drawing to them
    on = Restorer(device="cpu", **checks).restore(rgb)
    off = Restorer(device="cpu", paint_grow=False, **checks).restore(rgb)
    on_mask, off_mask = (np.asarray(r.mask) > 0 for r in (on, off))
    assert on_mask[square].mean() > 0.99 and rings.sum() > 300
    left = rings & ~off_mask  # what the model left of the rings (it takes part of the first itself)
    assert on_mask[rings].all() and left.sum() > 0.5 * rings.sum()
    assert np.abs(np.asarray(on.image)[rings][left[rings]].astype(int) - photo[left[rings]]).max() <= 4
    assert np.array_equal(np.asarray(off.image)[left], rgb[left])


def test_grown_pixels_take_the_smooth_fill_alone():
    rgb = np.full((60, 80, 3), 100, np.uint8)
    rgb[20:40, 20:50] = 0  # paint
    mask = np.zeros((60, 80), bool)
    mask[20:40, 20:35] = True
    grown = np.zeros_like(mask)
    grown[20:40, 35:50] = True
    restored = rgb.copy()
    restored[mask] = 200  # the network's fill where the mask found the mark; paint (0) where it grew
    out = even_fill(rgb, restored, mask | grown, blend=0.5, smooth_only=grown)
    # Everything read is 100, so the smooth fill is 100: the found pixels 0.5 * 200 + 0.5 * 100,
    # the grown ones 100 (none of their paint).
    assert (out[mask] == 150).all() and (out[grown] == 100).all()
    assert np.array_equal(out[~(mask | grown)], rgb[~(mask | grown)])


@pytest.fixture(scope="module")
def half_found(tmp_path_factory):
    """A selection photo (the rocket) painted and saved as a 4:2:0 JPEG, whose marks the shipped
    model finds only in part (361 pixels of paint grown), through restore-run with and without
    --no-paint-grow."""
    from restore_core.heldout import heldout_set, saved_case

    case, data = saved_case(heldout_set(4, photos="selection")[5], "jpeg-90-420")
    root = tmp_path_factory.mktemp("grow")
    (root / "in").mkdir()
    (root / "in" / "a.jpg").write_bytes(data)
    masks, outs = {}, {}
    for run, extra in (("default", []), ("kept", ["--no-paint-grow"])):
        done = subprocess.run([sys.executable, "-m", "runtime.cli", str(root / "in"), str(root / run), "--device", "cpu",
                               "-q", "--save-mask", "--format", "png", *extra], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        masks[run] = np.asarray(Image.open(root / run / "masks" / "a.png")) > 0
        outs[run] = np.asarray(Image.open(root / run / "a.png"))
    return case, masks, outs


def test_restore_run_grows_marks_over_their_paint_unless_asked_not_to(half_found):
    case, masks, outs = half_found
    grown = grow_over_paint(case.corrupted, masks["kept"])
    found = np.where(masks["kept"] | grown, np.uint8(255), np.uint8(0))
    rims = blend_rims(case.corrupted, found)[0]  # the blends around them
    # The written mask: found, plus grown over paint, plus the blends of paint and photo around it.
    assert np.array_equal(masks["default"], masks["kept"] | grown | rims)
    assert np.array_equal(rims & case.mask, rims)  # the blends are damage (2 pixels here)
    # Here the mask missed part of a mark: the grown pixels are that paint.
    assert grown.sum() > 50 and (grown & case.mask).sum() > 0.9 * grown.sum()
    for run in ("default", "kept"):  # outside its mask each output is the input, bit for bit
        assert np.array_equal(outs[run][~masks[run]], case.corrupted[~masks[run]])
    assert not np.array_equal(outs["default"][grown], outs["kept"][grown])  # the grown pixels were filled
